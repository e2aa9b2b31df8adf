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
    /// the learning rate to lower as the user spells it (`recipe.learning_rate`, `--lr`, ...).
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
    public var optimizer: any Optimizer
    /// Optimiser steps taken so far (global over epochs).
    public var step = 0
    public let stepsPerEpoch: Int
    /// The learning-rate setting a divergence message names (`recipe.learning_rate` in a run, `--lr` for `train`).
    public var learningRateSetting = "recipe.learning_rate"
    /// SHA-256 of the training examples (`DataFingerprint`), recorded in checkpoints so a resume can
    /// check it trains on the same data; nil: not recorded.
    public var dataDigest: String?
    private var batch: Batch
    private var dlogits: [Float]
    private var order: (epoch: Int, iterator: BatchIterator)?
    private let augmentation: CIFARAugmentation?

    public init(network: Network<Float>, recipe: TrainingRecipe, data: Dataset, identity: TrainingIdentity) {
        self.network = network; self.recipe = recipe; self.data = data; self.identity = identity
        optimizer = recipe.makeOptimizer()
        stepsPerEpoch = recipe.stepsPerEpoch(examples: data.count)
        batch = Batch(capacity: recipe.batchSize, for: data)
        dlogits = Array(repeating: 0, count: recipe.batchSize * network.classes)
        augmentation = recipe.augment ? CIFARAugmentation(for: data) : nil
        network.prepare(maxBatch: recipe.batchSize)
    }

    /// Draws the initial weights from the `.initialization` stream of this identity.
    public func initializeWeights() {
        var stream = RandomStream(seed: identity.seed, replicate: identity.replicate, role: .initialization,
                                  child: identity.child)
        network.initialize { stream.normal() }
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
        let n = batch.count, classes = network.classes
        let logits = batch.images.withUnsafeBufferPointer { network.forward($0.baseAddress!, n: n, mode: .train) }
        let summary = batch.labels.withUnsafeBufferPointer { labels in
            dlogits.withUnsafeMutableBufferPointer { d in
                recipe.loss.evaluate(logits: UnsafeBufferPointer(start: logits, count: n * classes),
                                     labels: UnsafeBufferPointer(rebasing: labels[0..<n]), classes: classes,
                                     dlogits: UnsafeMutableBufferPointer(rebasing: d[0..<(n * classes)]))
            }
        }
        if TrainingError.diverges(summary.meanLoss) {
            throw TrainingError.diverged(epoch: e, step: step, loss: summary.meanLoss, setting: learningRateSetting)
        }
        network.zeroGrads()
        dlogits.withUnsafeBufferPointer { network.backward($0.baseAddress!, n: n, mode: .train) }
        let lr = recipe.schedule.lr(base: recipe.learningRate, step: step, stepsPerEpoch: stepsPerEpoch)
        optimizer.step(params: network.params.buffer, grads: UnsafeBufferPointer(network.grads.buffer), lr: lr)
        step += 1
        return summary
    }
}

/// Loss and error of a network on a data set (BatchNorm in the given mode, running statistics by default).
public func evaluate(_ network: Network<Float>, on data: Dataset, batchSize: Int = metricBatchSize,
                     mode: LayerContext<Float>.Mode = .eval, loss: LossFunction = .crossEntropy) -> LossSummary {
    network.checkCompatible(data, "evaluation")
    return evaluate(on: data, classes: network.classes, batchSize: batchSize, loss: loss) { x, n in
        UnsafePointer(network.forward(x, n: n, mode: mode))
    }
}

/// Prints one progress line at most every `interval` seconds: epoch, step, loss, error, img/s, ETA.
public final class ProgressPrinter: TrainingCallback {
    let interval: Double, label: String, endStep: Int
    private var last = Benchmark.now(), start = Benchmark.now(), window = LossSummary(), startStep: Int?

    public init(label: String, endStep: Int, interval: Double = 5) {
        self.label = label; self.endStep = endStep; self.interval = interval
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
        let eta = Double(endStep - step) / max(rate, 1e-9)
        let line = "\(label) " + String(format: "epoch %.2f step %d/%d loss %.4f err %.2f%% %.0f img/s", epoch, step,
                                         endStep, window.meanLoss, 100 * window.errorRate, rate * Double(batchSize))
            + " ETA \(formatDuration(eta))"
        FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
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
