/// Optimiser families (PyTorch semantics, see `SGD` and `Adam`).
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
    case sgd, adam
}

/// How a network is trained: optimiser, learning-rate schedule, batch size and length.
/// The experiment file's `recipe` section and `ntkscape train`'s flags both decode into this.
public struct TrainingRecipe: Codable, Equatable, Sendable {
    public var optimizer: OptimizerKind = .sgd
    public var learningRate: Double = 0.1
    /// SGD momentum (ignored by Adam).
    public var momentum: Double = 0.9
    /// L2 penalty added to the gradient (PyTorch `weight_decay`).
    public var weightDecay: Double = 5e-4
    public var schedule: LRSchedule = .constant
    public var batchSize: Int = 128
    /// Training length in epochs; fractional values stop after `round(epochs * stepsPerEpoch)` steps.
    public var epochs: Double = 10
    public var loss: LossFunction = .crossEntropy
    /// CIFAR augmentation (4-pixel zero-pad random crop, horizontal flip).
    public var augment: Bool = false
    /// Shards each batch is cut into for data-parallel training (`DataParallelStep`): a shard's
    /// forward and backward are computed alone and their gradients (and BatchNorm's batch sums) are
    /// added in shard order, so training is bit-identical whether 1 or up to `shards` ranks share a
    /// network. At most `shards` ranks train one network.
    public var shards: Int = 8

    public init() {}

    public func makeOptimizer() -> any Optimizer {
        switch optimizer {
        case .sgd: return SGD(lr: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .adam: return Adam(lr: learningRate, weightDecay: weightDecay)
        }
    }

    /// Batches per epoch (the last, partial batch is kept).
    public func stepsPerEpoch(examples: Int) -> Int { (examples + batchSize - 1) / batchSize }

    /// The global step at which epoch time `epoch` (possibly fractional) is reached.
    public func step(atEpoch epoch: Double, examples: Int) -> Int {
        Int((epoch * Double(stepsPerEpoch(examples: examples))).rounded())
    }

    /// Longest training, in epochs, that any setting may ask for: a million epochs of a million
    /// steps still count in an `Int`; `1e300` would not (and would trap).
    public static let maximumEpochs = 1e6

    /// Cross-field rules; the message names the field and the fix.
    public func validate() throws {
        func fail(_ field: String, _ message: String) throws { throw ConfigurationError(field: field, message: message) }
        if !(learningRate > 0) { try fail("learning_rate", "must be positive, got \(learningRate)") }
        if batchSize < 1 { try fail("batch_size", "must be at least 1, got \(batchSize)") }
        if shards < 1 { try fail("shards", "must be at least 1, got \(shards)") }
        if !(epochs > 0) { try fail("epochs", "must be positive, got \(epochs)") }
        if !(epochs <= Self.maximumEpochs) {
            try fail("epochs", "is \(epochs), more than the \(Int(Self.maximumEpochs)) epochs a run can count (its steps must fit an integer)")
        }
        if !learningRate.isFinite { try fail("learning_rate", "must be finite, got \(learningRate)") }
        if momentum < 0 || momentum >= 1 { try fail("momentum", "must lie in [0, 1), got \(momentum)") }
        if weightDecay < 0 { try fail("weight_decay", "must be >= 0, got \(weightDecay)") }
        if case .step(let milestones, let gamma) = schedule {
            if !(gamma > 0) { try fail("schedule.gamma", "must be positive, got \(gamma)") }
            if milestones != milestones.sorted() { try fail("schedule.milestones", "must be increasing, got \(milestones)") }
        }
    }
}

/// A setting that is out of range or inconsistent, with the field it concerns.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let field: String
    public let message: String
    public init(field: String, message: String) { self.field = field; self.message = message }
    public var description: String { "invalid setting `\(field)`: \(message)" }
}
