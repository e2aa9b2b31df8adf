import Foundation

// Linearised model and its training (docs/metrics.md, "Linearised model"). Legend: N examples, C classes,
// P parameters. Logits are `[N, C]` row-major; parameter vectors are flat `[P]` in the network's layout.

/// The first-order Taylor model of a network around `w0`:
///
///     f_lin(x; w) = f(x; w0) + J(x) (w - w0),      J(x) = df(x; w)/dw at w0,
///
/// with BatchNorm frozen in inference mode at `w0` (running statistics of `w0`), so `f_lin` is a
/// per-example function that is affine in `w`. Evaluated as one forward pass at `w0` plus one JVP
/// with parameter tangent `w - w0`; the gradient of a loss `L(f_lin)` is `J(x)^T dL/df_lin`, one
/// backward pass at `w0`. The network's parameters stay at `w0`; `weights` holds `w`.
public final class LinearizedModel<T: Real> {
    /// A private copy of the network at `w0` (parameters and BatchNorm state never change).
    public let network: Network<T>
    /// `w0`, `[P]`.
    public let origin: Buffer<T>
    /// The weights `w`, `[P]`; start at `w0`. Callers may write them (e.g. an optimiser step).
    public let weights: Buffer<T>
    /// `w - w0`, refreshed from `weights` by every evaluation.
    private let delta: Buffer<T>
    private var output = Buffer<T>(count: 0), dlogits = Buffer<T>(count: 0)

    /// Linearises `network` at its current parameters and BatchNorm running statistics (copied:
    /// the caller's network is not used afterwards).
    public init(around network: Network<T>) {
        (self.network, origin, weights) = expansionPoint(network)
        delta = Buffer(count: network.parameterCount)
    }

    public var parameterCount: Int { network.parameterCount }
    public var classes: Int { network.classes }

    /// Allocates for batches of up to `maxBatch` examples (grows, never shrinks).
    public func prepare(maxBatch: Int) {
        network.prepare(maxBatch: maxBatch)
        if output.count < maxBatch * classes {
            output = Buffer(count: maxBatch * classes)
            dlogits = Buffer(count: maxBatch * classes)
        }
    }

    /// `f_lin(x; weights)`, `[n, C]`, for inputs `x [n, C_in, H, W]`; valid until the next call.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func logits(_ x: UnsafePointer<T>, n: Int) -> UnsafeMutablePointer<T> {
        prepare(maxBatch: n)
        let w = weights.pointer, w0 = origin.pointer, d = delta.pointer
        for i in 0..<parameterCount { d[i] = w[i] - w0[i] }
        let f0 = network.forward(x, n: n, mode: .eval)
        let jd = network.jvp(inputTangent: nil, parameterTangent: UnsafePointer(d), n: n, mode: .eval)
        let out = output.pointer
        for i in 0..<(n * classes) { out[i] = f0[i] + jd[i] }
        return out
    }

    /// Loss of `f_lin` on one batch and its gradient with respect to `weights`, written into
    /// `gradient` (`[P]`, after a `J^T dL/df_lin` backward pass at `w0`; valid until the next call).
    /// The mean is over `gradientDivisor` examples (default `n`), as in `LossFunction.evaluate`.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func lossAndGradient(_ x: UnsafePointer<T>, labels: UnsafeBufferPointer<Int32>, loss: LossFunction,
                                gradientDivisor: Int? = nil) -> LossSummary {
        let n = labels.count
        let f = logits(x, n: n)
        let summary = loss.evaluate(logits: UnsafeBufferPointer(start: f, count: n * classes), labels: labels,
                                    classes: classes,
                                    dlogits: UnsafeMutableBufferPointer(start: dlogits.pointer, count: n * classes),
                                    gradientDivisor: gradientDivisor)
        network.zeroGrads()
        network.backward(dlogits.pointer, n: n, mode: .eval)
        return summary
    }

    /// The gradient written by the last `lossAndGradient`, `[P]`.
    public var gradient: Buffer<T> { network.grads }
}

extension LinearizedModel where T == Float {
    /// Loss and error of `f_lin` on a data set, in data set order.
    public func evaluate(on data: Dataset, loss: LossFunction, batchSize: Int = metricBatchSize) -> LossSummary {
        network.checkCompatible(data, "linearised evaluation")
        return Core.evaluate(on: data, classes: classes, batchSize: batchSize, loss: loss) { x, n in UnsafePointer(logits(x, n: n)) }
    }
}

extension LinearizedModel: TaylorModel where T == Float {}

/// The expansion point of a Taylor model: a private copy of `network` (parameters, BatchNorm running
/// statistics and counters) and two copies of its parameters, `w0` and the trained `w`.
func expansionPoint<T: Real>(_ network: Network<T>) -> (copy: Network<T>, origin: Buffer<T>, weights: Buffer<T>) {
    let copy = network.rebuilt(as: T.self), P = network.parameterCount
    copy.params.pointer.update(from: network.params.pointer, count: P)
    copy.state.pointer.update(from: network.state.pointer, count: network.layout.stateCount)
    for (a, b) in zip(copy.batchNorms, network.batchNorms) { a.batchesTracked = b.batchesTracked }
    let origin = Buffer<T>(count: P), weights = Buffer<T>(count: P)
    origin.pointer.update(from: network.params.pointer, count: P)
    weights.pointer.update(from: network.params.pointer, count: P)
    return (copy, origin, weights)
}

/// A Taylor model of a network around a checkpoint `w0` (BatchNorm frozen in inference mode at
/// `w0`), trained in its weights by `TaylorTrainer`: the first-order `LinearizedModel` and the
/// second-order `SecondOrderModel`. The trainer needs only these members, so both models train
/// with the same data order, optimiser and run loop.
public protocol TaylorModel: AnyObject {
    /// Expands `network` at its current parameters and BatchNorm running statistics (copied).
    init(around network: Network<Float>)
    /// The model's copy of the network at `w0` (its input shape and classes check the data).
    var network: Network<Float> { get }
    /// The trained weights `w` `[P]`, starting at `w0`; the optimiser writes them.
    var weights: Buffer<Float> { get }
    /// The gradient written by the last `lossAndGradient`, `[P]`.
    var gradient: Buffer<Float> { get }
    /// Allocates for batches of up to `maxBatch` examples.
    func prepare(maxBatch: Int)
    /// Loss of the model on one batch and its gradient with respect to `weights` (into `gradient`);
    /// the mean is over `gradientDivisor` examples (nil: the batch's).
    @discardableResult
    func lossAndGradient(_ x: UnsafePointer<Float>, labels: UnsafeBufferPointer<Int32>, loss: LossFunction,
                         gradientDivisor: Int?) -> LossSummary
    /// Loss and error of the model on a data set, in data set order.
    func evaluate(on data: Dataset, loss: LossFunction, batchSize: Int) -> LossSummary
}

/// How a linearised run is trained: SGD with heavy-ball momentum or Adam, both with L2 weight decay
/// (PyTorch semantics, `SGD`, `Adam`), at a constant learning rate. Weight decay pulls `w` toward 0,
/// not toward `w0`, exactly as it would for the nonlinear network.
public struct LinearizedSettings: Codable, Equatable, Sendable {
    /// Training length; fractional values stop after `round(epochs * stepsPerEpoch)` steps.
    public var epochs: Double = 1
    public var optimizer: OptimizerKind = .sgd
    public var learningRate: Double = 0.01
    /// SGD momentum (ignored by Adam).
    public var momentum: Double = 0.9
    public var weightDecay: Double = 0
    public var batchSize: Int = 128
    public var loss: LossFunction = .crossEntropy
    /// CIFAR augmentation (random crop, flip), as in ordinary training.
    public var augment: Bool = false
    /// Batch size of the per-epoch test evaluation (memory, not results: f_lin is per-example).
    public var evaluationBatchSize: Int = metricBatchSize

    public init() {}

    /// The optimiser settings, batch size, length, loss and augmentation of `recipe` (its schedule is
    /// not used: linearised runs train at a constant learning rate).
    public init(recipe: TrainingRecipe) {
        epochs = recipe.epochs; optimizer = recipe.optimizer; learningRate = recipe.learningRate; momentum = recipe.momentum
        weightDecay = recipe.weightDecay; batchSize = recipe.batchSize; loss = recipe.loss; augment = recipe.augment
    }

    /// The equivalent ordinary training recipe (constant schedule).
    public var recipe: TrainingRecipe {
        var r = TrainingRecipe()
        r.optimizer = optimizer; r.learningRate = learningRate; r.momentum = momentum; r.weightDecay = weightDecay
        r.schedule = .constant; r.batchSize = batchSize; r.epochs = epochs; r.loss = loss; r.augment = augment
        return r
    }

    /// Range checks; the message names the field and the fix.
    public func validate() throws {
        try recipe.validate()
        if evaluationBatchSize < 1 {
            throw ConfigurationError(field: "evaluation_batch_size", message: "must be at least 1, got \(evaluationBatchSize)")
        }
    }
}

/// Which random streams order and augment the training data of a linearised run.
public enum LinearizedDataStreams: Sendable {
    /// `.linearizedShuffle` / `.linearizedAugment` of the identity: the run's own streams (default).
    case linearized
    /// `.shuffle` / `.augment`, the very batches an ordinary `Trainer` with the same identity sees
    /// (for comparisons with ordinary training).
    case training
}

/// Mini-batch SGD or Adam on a `LinearizedModel`.
public typealias LinearizedTrainer = TaylorTrainer<LinearizedModel<Float>>

/// Mini-batch SGD or Adam on a Taylor model (`LinearizedModel`, `SecondOrderModel`) with the same
/// data pipeline as `Trainer`: one trainer for every model order, so the models of one identity see
/// the same batches and take the same optimiser steps on their own gradients.
public final class TaylorTrainer<Model: TaylorModel> {
    public let model: Model
    public let settings: LinearizedSettings
    public let data: Dataset
    public let identity: TrainingIdentity
    public let streams: LinearizedDataStreams
    /// `settings.recipe.makeOptimizer()`, fresh (no moments) at the start.
    public private(set) var optimizer: any Optimizer
    /// Optimiser steps taken so far (global over epochs).
    public private(set) var step = 0
    public let stepsPerEpoch: Int
    private var batch: Batch
    private var order: (epoch: Int, iterator: BatchIterator)?
    private let augmentation: CIFARAugmentation?

    /// Trains `model.weights` (starting wherever they are, normally `w0`).
    public init(model: Model, settings: LinearizedSettings, data: Dataset, identity: TrainingIdentity,
                streams: LinearizedDataStreams = .linearized) {
        model.network.checkCompatible(data, "linearised training")
        self.model = model; self.settings = settings; self.data = data; self.identity = identity; self.streams = streams
        optimizer = settings.recipe.makeOptimizer()
        stepsPerEpoch = settings.recipe.stepsPerEpoch(examples: data.count)
        batch = Batch(capacity: settings.batchSize, for: data)
        augmentation = settings.augment ? CIFARAugmentation(for: data) : nil
        model.prepare(maxBatch: settings.batchSize)
    }

    /// Training time in epochs.
    public var epoch: Double { Double(step) / Double(stepsPerEpoch) }
    /// The step at which `settings.epochs` is reached.
    public var finalStep: Int { settings.recipe.step(atEpoch: settings.epochs, examples: data.count) }

    /// One optimiser step on the next batch of the epoch's order; returns the batch's loss and error at
    /// the weights before the step.
    @discardableResult
    public func trainStep() throws -> LossSummary {
        let e = step / stepsPerEpoch
        let id = identity
        if order?.epoch != e {
            switch streams {
            case .training:
                order = (e, BatchIterator(exampleCount: data.count, batchSize: settings.batchSize, seed: id.seed,
                                          replicate: id.replicate, child: id.child, epoch: e))
            case .linearized:
                var s = RandomStream(seed: id.seed, replicate: id.replicate, role: .linearizedShuffle, child: id.child, epoch: e)
                order = (e, BatchIterator(order: s.permutation(data.count), batchSize: settings.batchSize))
            }
        }
        let indices = order!.iterator.batch(step % stepsPerEpoch)
        if let augmentation {
            var stream = RandomStream(seed: id.seed, replicate: id.replicate,
                                      role: streams == .training ? .augment : .linearizedAugment,
                                      child: id.child, epoch: e, step: step)
            augmentation.gatherAugmented(from: data, indices: indices, into: &batch, stream: &stream)
        } else {
            data.gather(indices, into: &batch)
        }
        let n = batch.count
        let summary = batch.images.withUnsafeBufferPointer { x in
            batch.labels.withUnsafeBufferPointer { y in
                model.lossAndGradient(x.baseAddress!, labels: UnsafeBufferPointer(rebasing: y[0..<n]), loss: settings.loss,
                                      gradientDivisor: nil)
            }
        }
        if TrainingError.diverges(summary.meanLoss) {
            throw TrainingError.diverged(epoch: e, step: step, loss: summary.meanLoss, setting: "linearized.learning_rate")
        }
        optimizer.step(params: model.weights.buffer, grads: UnsafeBufferPointer(model.gradient.buffer),
                       lr: settings.learningRate)
        step += 1
        return summary
    }
}

/// One row of a linearised run: the state after `step` steps.
public struct LinearizedEpoch: Codable, Equatable, Sendable {
    /// Epochs trained (the last row may be fractional).
    public var epoch: Double
    public var step: Int
    /// Mean loss and error over the batches trained on since the previous row (before each step's update).
    public var trainLoss: Double
    public var trainError: Double
    /// Loss and error of `f_lin` on the test set.
    public var testLoss: Double
    public var testError: Double
}

/// Trains the linearisation of `network` (at its current weights, BatchNorm frozen at its running
/// statistics) on `train` and evaluates `f_lin` on `test` after every whole epoch and at the end.
///
/// Deterministic: the data order and augmentation come from the `.linearizedShuffle` /
/// `.linearizedAugment` streams of `identity` (or the ordinary ones with `streams: .training`), and
/// no computation splits a reduction over threads. `network` is copied, not modified. `progress`
/// is called after every step (e.g. with `ProgressPrinter.report`). Throws `TrainingError.diverged`
/// when a batch loss is not finite (`trainLinearizedRun` records that as a stop instead).
public func trainLinearized(around network: Network<Float>, train: Dataset, test: Dataset, settings: LinearizedSettings,
                            identity: TrainingIdentity, streams: LinearizedDataStreams = .linearized,
                            progress: ((LinearizedTrainer, LossSummary) -> Void)? = nil) throws -> [LinearizedEpoch] {
    let run = try trainLinearizedRun(around: network, train: train, test: test, settings: settings, identity: identity,
                                     streams: streams, progress: progress)
    if let e = run.divergence { throw e }
    return run.rows
}

/// `trainLinearized` that reports how the run ended instead of throwing on divergence: `rows` up to
/// the last whole epoch before the non-finite loss, `stop` `.maxEpochs` or `.diverged` (or
/// `.plateau` when `plateau` fires on the epochs' mean training loss).
public func trainLinearizedRun(around network: Network<Float>, train: Dataset, test: Dataset, settings: LinearizedSettings,
                               identity: TrainingIdentity, streams: LinearizedDataStreams = .linearized,
                               plateau: PlateauStop = PlateauStop(),
                               progress: ((LinearizedTrainer, LossSummary) -> Void)? = nil) throws -> EpochRun {
    try trainTaylorRun(LinearizedModel<Float>.self, around: network, train: train, test: test, settings: settings,
                       identity: identity, streams: streams, plateau: plateau, progress: progress)
}

/// `trainLinearizedRun` for any Taylor model: `Model(around: network)` trained by a `TaylorTrainer`
/// with `settings` on `train`, evaluated on `test` after every whole epoch and at the end (the
/// second-order model trains through this with the linearised model's settings, streams and loop).
public func trainTaylorRun<Model: TaylorModel>(_ model: Model.Type, around network: Network<Float>, train: Dataset,
                                               test: Dataset, settings: LinearizedSettings, identity: TrainingIdentity,
                                               streams: LinearizedDataStreams = .linearized, plateau: PlateauStop = PlateauStop(),
                                               progress: ((TaylorTrainer<Model>, LossSummary) -> Void)? = nil) throws -> EpochRun {
    try settings.validate()
    network.checkCompatible(test, "linearised evaluation")
    let trainer = TaylorTrainer(model: Model(around: network), settings: settings, data: train,
                                identity: identity, streams: streams)
    return try runEpochs(end: trainer.finalStep, stepsPerEpoch: trainer.stepsPerEpoch, plateau: plateau,
                         step: { trainer.step },
                         trainStep: {
                             let s = try trainer.trainStep()
                             progress?(trainer, s)
                             return s
                         },
                         evaluate: { trainer.model.evaluate(on: test, loss: settings.loss, batchSize: settings.evaluationBatchSize) })
}
