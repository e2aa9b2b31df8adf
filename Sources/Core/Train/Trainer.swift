import Foundation

/// Where a network's random decisions come from: initialisation, data order and augmentation are
/// drawn from streams addressed by `(seed, replicate, role, child, epoch, step)`, so a network
/// trained on any rank, resumed or not, is bit-identical.
public struct TrainingIdentity: Codable, Equatable, Sendable {
    public var seed: UInt64
    public var replicate: Int
    /// 0 for the parent; children are numbered from 1.
    public var child: Int
    public init(seed: UInt64, replicate: Int = 0, child: Int = 0) {
        self.seed = seed; self.replicate = replicate; self.child = child
    }
}

/// Observes training; evaluation, logging and checkpoints hang here, not inside the loop.
public protocol TrainingCallback: AnyObject {
    /// After every optimiser step; `summary` covers the batch just trained on.
    func afterStep(_ trainer: Trainer, summary: LossSummary) throws
}

public enum TrainingError: Error, CustomStringConvertible {
    /// The mean batch loss was NaN, infinite or above `divergenceBound` in magnitude; `setting` names
    /// the learning rate to lower as the user spells it (`recipe.learning_rate`, `--learning-rate`, ...).
    case diverged(epoch: Int, step: Int, loss: Double, setting: String)

    /// A finite loss above this magnitude counts as divergence (docs/failures.md): no loss of a
    /// network that still learns comes near it (cross-entropy of Float logits stays below ~1e5),
    /// while a blown-up network reaches it steps before it overflows to infinity or NaN.
    public static let divergenceBound = 1e30

    /// Whether a mean batch loss means training diverged.
    public static func diverges(_ loss: Double) -> Bool { !loss.isFinite || abs(loss) > divergenceBound }

    public var description: String {
        switch self {
        case let .diverged(epoch, step, loss, setting):
            return "training diverged: loss \(loss) at epoch \(epoch), global step \(step) "
                + "(NaN, infinite, or above \(Self.divergenceBound) in magnitude). "
                + "Fix: lower \(setting) (or check the data normalisation)."
        }
    }
}

/// Mini-batch training of one network on one data set.
public final class Trainer {
    public let network: Network<Float>
    public let recipe: TrainingRecipe
    public let data: Dataset
    public let identity: TrainingIdentity
    /// The ranks that train this network together (data parallelism, `DataParallelStep`); every
    /// member runs the same steps and holds the same weights. `SerialCommunicator()`: this process alone.
    public let group: Communicator
    public var optimizer: any Optimizer
    /// Optimiser steps taken so far (global over epochs).
    public var step = 0
    public let stepsPerEpoch: Int
    /// The learning-rate setting a divergence message names (`recipe.learning_rate` in a run, `--learning-rate` for `train`).
    public var learningRateSetting = "recipe.learning_rate"
    /// SHA-256 of the training examples (`DataFingerprint`), recorded in checkpoints so a resume can
    /// check it trains on the same data; nil: not recorded.
    public var dataDigest: String?
    private var batch: Batch
    /// Computes each step's gradient shard by shard over `group` (DataParallel.swift).
    private let parallel: DataParallelStep<Float>
    private var order: (epoch: Int, iterator: BatchIterator)?
    private let augmentation: CIFARAugmentation?

    public init(network: Network<Float>, recipe: TrainingRecipe, data: Dataset, identity: TrainingIdentity,
                group: Communicator = SerialCommunicator()) {
        self.network = network; self.recipe = recipe; self.data = data; self.identity = identity; self.group = group
        optimizer = recipe.makeOptimizer()
        stepsPerEpoch = recipe.stepsPerEpoch(examples: data.count)
        batch = Batch(capacity: recipe.batchSize, for: data)
        augmentation = recipe.augment ? CIFARAugmentation(for: data) : nil
        parallel = DataParallelStep(master: network, group: group, shards: recipe.shards)
    }

    /// Draws the initial weights from the `.initialization` stream of this identity.
    public func initializeWeights() {
        var stream = RandomStream(seed: identity.seed, replicate: identity.replicate, role: .initialization,
                                  child: identity.child)
        network.initialize { stream.normal() }
    }

    /// Whether any member of the group passes `true` (one collective; every member must call it at
    /// the same step). A decision that ends or changes training — a stop request — must be agreed
    /// on, or the members that go on would wait forever for the ones that stopped.
    public func anyMember(_ flag: Bool) -> Bool {
        group.size == 1 ? flag : group.allreduce(flag ? 1 : 0, .max) == 1
    }

    /// Training time in epochs.
    public var epoch: Double { Double(step) / Double(stepsPerEpoch) }
    public var finalStep: Int { recipe.step(atEpoch: recipe.epochs, examples: data.count) }

    /// Trains until the global step `end` (e.g. `recipe.step(atEpoch:examples:)`).
    public func train(until end: Int, callbacks: [TrainingCallback] = []) throws {
        while step < end {
            let summary = try trainStep()
            for c in callbacks { try c.afterStep(self, summary: summary) }
        }
    }

    /// One optimiser step on the next batch of the epoch's order.
    @discardableResult
    public func trainStep() throws -> LossSummary {
        let e = step / stepsPerEpoch
        if order?.epoch != e {
            order = (e, BatchIterator(exampleCount: data.count, batchSize: recipe.batchSize, seed: identity.seed,
                                      replicate: identity.replicate, child: identity.child, epoch: e))
        }
        let indices = order!.iterator.batch(step % stepsPerEpoch)
        if let augmentation {
            var stream = CIFARAugmentation.stream(seed: identity.seed, replicate: identity.replicate,
                                                  child: identity.child, epoch: e, step: step)
            augmentation.gatherAugmented(from: data, indices: indices, into: &batch, stream: &stream)
        } else {
            data.gather(indices, into: &batch)
        }
        let summary = batch.images.withUnsafeBufferPointer { x in
            batch.labels.withUnsafeBufferPointer { y in
                parallel.gradient(images: x.baseAddress!, labels: y.baseAddress!, n: batch.count, loss: recipe.loss,
                                  concurrency: Workers.count)
            }
        }
        if TrainingError.diverges(summary.meanLoss) {
            throw TrainingError.diverged(epoch: e, step: step, loss: summary.meanLoss, setting: learningRateSetting)
        }
        let lr = recipe.schedule.lr(base: recipe.learningRate, step: step, stepsPerEpoch: stepsPerEpoch)
        optimizer.step(params: network.params.buffer, grads: UnsafeBufferPointer(network.grads.buffer), lr: lr)
        step += 1
        return summary
    }
}

/// Loss and error of a network on a data set (BatchNorm in the given mode, running statistics by
/// default); `each` sees every batch's logits (first example, count, `n x classes` logits).
public func evaluate(_ network: Network<Float>, on data: Dataset, batchSize: Int = metricBatchSize,
                     mode: LayerContext<Float>.Mode = .eval, loss: LossFunction = .crossEntropy,
                     each: ((_ start: Int, _ n: Int, _ logits: UnsafeBufferPointer<Float>) -> Void)? = nil) -> LossSummary {
    network.checkCompatible(data, "evaluation")
    return evaluate(on: data, classes: network.classes, batchSize: batchSize, loss: loss, logits: { x, n in
        UnsafePointer(network.forward(x, n: n, mode: mode))
    }, each: each)
}

/// A network's logits on every example of `data` (`count x classes`, row-major, in data set order)
/// and the predicted class of each (the first largest logit, as `numpy.argmax`), with the loss summary.
public func predictions(_ network: Network<Float>, on data: Dataset, batchSize: Int = metricBatchSize)
    -> (summary: LossSummary, logits: [Float], predicted: [Int64]) {
    let classes = network.classes
    var logits = [Float](repeating: 0, count: data.count * classes), predicted = [Int64](repeating: 0, count: data.count)
    let summary = evaluate(network, on: data, batchSize: batchSize) { start, n, f in
        for i in 0..<n {
            var best = 0
            for c in 0..<classes {
                logits[(start + i) * classes + c] = f[i * classes + c]
                if f[i * classes + c] > f[i * classes + best] { best = c }
            }
            predicted[start + i] = Int64(best)
        }
    }
    return (summary, logits, predicted)
}

/// Prints one progress line at most every `interval` seconds: epoch, step, loss, error, img/s, ETA.
/// Inside `ntkscape run` the lines go to the rank's status instead (`ProgressPrinter.output`,
/// `RunStatus`), which shows them live or as timestamped log lines.
public final class ProgressPrinter: TrainingCallback {
    /// One progress report of a training loop.
    public struct Report: Sendable {
        public var label: String
        public var epoch: Double
        public var step: Int, endStep: Int
        /// Mean batch loss and error since the previous report.
        public var loss: Double, errorRate: Double
        public var imagesPerSecond: Double
        /// Seconds until `endStep` at the rate so far.
        public var eta: Double
        /// Fraction of this loop's steps (from where it started or resumed) done.
        public var fraction: Double

        /// `epoch 1.25 step 50/80 loss 0.5123 err 12.30% 1530 img/s ETA 42s`.
        public var text: String {
            String(format: "epoch %.2f step %d/%d loss %.4f err %.2f%% %.0f img/s", epoch, step, endStep, loss,
                   100 * errorRate, imagesPerSecond) + " ETA \(formatDuration(eta))"
        }
    }

    /// Where reports go instead of stderr (set by `ntkscape run` for its rank; nil: printed).
    nonisolated(unsafe) public static var output: ((Report) -> Void)?

    let interval: Double, label: String, endStep: Int
    private var last = Benchmark.now(), start = Benchmark.now(), window = LossSummary(), startStep: Int?

    public init(label: String, endStep: Int, interval: Double = 5) {
        self.label = label; self.endStep = endStep
        // A run's status takes reports often and decides itself how often to show them.
        self.interval = Self.output == nil ? interval : min(interval, 2)
    }

    public func afterStep(_ t: Trainer, summary: LossSummary) throws {
        report(step: t.step, epoch: t.epoch, batchSize: t.recipe.batchSize, summary: summary)
    }

    /// The same for any training loop: call after each step with the step's loss summary.
    public func report(step: Int, epoch: Double, batchSize: Int, summary: LossSummary) {
        if startStep == nil { startStep = step - 1; start = Benchmark.now() - 1e-9 }
        window += summary
        let now = Benchmark.now()
        guard now - last >= interval || step == endStep else { return }
        let done = step - startStep!, rate = Double(done) / (now - start)
        let report = Report(label: label, epoch: epoch, step: step, endStep: endStep, loss: window.meanLoss,
                            errorRate: window.errorRate, imagesPerSecond: rate * Double(batchSize),
                            eta: Double(endStep - step) / max(rate, 1e-9),
                            fraction: Double(done) / Double(max(endStep - startStep!, 1)))
        if let output = Self.output {
            output(report)
        } else {
            FileHandle.standardError.write(("\(label) " + report.text + "\n").data(using: .utf8)!)
        }
        window = LossSummary(); last = now
    }
}

/// `1h02m`, `3m05s`, `42s`.
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
