import Foundation

// Second-order Taylor model and its training (docs/linearized.md, "Second-order model"; Fort et al.
// 2020 Fig. 18). Legend: N examples, C classes, P parameters. Logits are `[N, C]` row-major;
// parameter vectors are flat `[P]` in the network's layout.

/// The second-order Taylor model of a network around `w0`:
///
///     f2(x; w0 + d) = f(x; w0) + J(x) d + ½ f''(x)[d, d],     f''[d, d] = Σ_ij d_i d_j ∂²f/∂w_i∂w_j at w0,
///
/// with BatchNorm frozen in inference mode at `w0` exactly as in `LinearizedModel` (running
/// statistics of `w0`; BatchNorm is then affine in its input and bilinear in `(γ, x)`), so `f2` is a
/// per-example function, quadratic in `d = w - w0`. Evaluated as a forward pass at `w0` and one fused
/// pass of first and second tangents along `d` (`Network.jvp2`).
///
/// The gradient of a loss `L(f2)` with respect to `w`, with `g = dL/df2` per logit, is
///
///     ∇_w L = J^T g + (Σ_k g_k ∇²f_k) d,
///
/// the ordinary backward pass at `w0` with output gradient `g` plus the forward-over-reverse
/// product that Hessian-vector products use (`Network.backwardTangent` along `d` with the logit
/// gradient's tangent 0). The backward pass is linear in its output gradient, so both are one
/// `backwardTangent` call whose logit-gradient tangent is `g` itself: its tangent pass propagates
/// the ordinary gradient and the curvature term together. The network's parameters stay at `w0`;
/// `weights` holds `w`.
public final class SecondOrderModel<T: Real> {
    /// A private copy of the network at `w0` (parameters and BatchNorm state never change).
    public let network: Network<T>
    /// `w0`, `[P]`.
    public let origin: Buffer<T>
    /// The weights `w`, `[P]`; start at `w0`. Callers may write them (e.g. an optimiser step).
    public let weights: Buffer<T>
    /// `d = w - w0`, refreshed from `weights` by every evaluation.
    private let delta: Buffer<T>
    /// `[P]`, the gradient of the last `lossAndGradient`.
    private let gradientBuffer: Buffer<T>
    private var output = Buffer<T>(count: 0), dlogits = Buffer<T>(count: 0)

    /// Expands `network` at its current parameters and BatchNorm running statistics (copied: the
    /// caller's network is not used afterwards).
    public init(around network: Network<T>) {
        (self.network, origin, weights) = expansionPoint(network)
        delta = Buffer(count: network.parameterCount)
        gradientBuffer = Buffer(count: network.parameterCount)
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

    /// The three terms at `weights` for inputs `x [n, C_in, H, W]`: `f(x; w0)`, `J d` and `f''[d, d]`
    /// (each `[n, C]`, valid until the next call on the model). Leaves the network's activations
    /// and tangents for `lossAndGradient`'s backward pass.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func terms(_ x: UnsafePointer<T>, n: Int)
        -> (value: UnsafeMutablePointer<T>, first: UnsafeMutablePointer<T>, second: UnsafeMutablePointer<T>) {
        prepare(maxBatch: n)
        let w = weights.pointer, w0 = origin.pointer, d = delta.pointer
        for i in 0..<parameterCount { d[i] = w[i] - w0[i] }
        let f0 = network.forward(x, n: n, mode: .eval)
        let (jd, hdd) = network.jvp2(parameterTangent: UnsafePointer(d), n: n, mode: .eval)
        return (f0, jd, hdd)
    }

    /// `f2(x; weights) = f0 + J d + ½ f''[d, d]`, `[n, C]`, for inputs `x [n, C_in, H, W]`; valid
    /// until the next call.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func logits(_ x: UnsafePointer<T>, n: Int) -> UnsafeMutablePointer<T> {
        let (f0, jd, hdd) = terms(x, n: n)
        let out = output.pointer
        for i in 0..<(n * classes) { out[i] = f0[i] + jd[i] + hdd[i] / 2 }
        return out
    }

    /// Loss of `f2` on one batch and its gradient `J^T g + (Σ_k g_k ∇²f_k) d` with respect to
    /// `weights` (`g = dL/df2`), written into `gradient` (`[P]`, valid until the next call). The mean
    /// is over `gradientDivisor` examples (default `n`), as in `LossFunction.evaluate`.
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
        gradientBuffer.zero()
        // J^T g (tangent of the logit gradient: g itself) + (Σ g_k ∇²f_k) d, in one pass (see the type's comment).
        network.backwardTangent(dlogits.pointer, dlogits.pointer, parameterTangent: UnsafePointer(delta.pointer), n: n,
                                mode: .eval, into: gradientBuffer.pointer)
        return summary
    }

    /// The gradient written by the last `lossAndGradient`, `[P]`.
    public var gradient: Buffer<T> { gradientBuffer }
}

extension SecondOrderModel where T == Float {
    /// Loss and error of `f2` on a data set, in data set order.
    public func evaluate(on data: Dataset, loss: LossFunction, batchSize: Int = metricBatchSize) -> LossSummary {
        network.checkCompatible(data, "second-order evaluation")
        return Core.evaluate(on: data, classes: classes, batchSize: batchSize, loss: loss) { x, n in UnsafePointer(logits(x, n: n)) }
    }
}

extension SecondOrderModel: TaylorModel where T == Float {}

/// Mini-batch SGD or Adam on a `SecondOrderModel` (the linearised model's trainer).
public typealias SecondOrderTrainer = TaylorTrainer<SecondOrderModel<Float>>

/// `trainLinearizedRun` with the second-order Taylor model of `network` in place of the linearised
/// one: the same settings, data order and augmentation streams, optimiser and run loop.
public func trainSecondOrderRun(around network: Network<Float>, train: Dataset, test: Dataset, settings: LinearizedSettings,
                                identity: TrainingIdentity, streams: LinearizedDataStreams = .linearized,
                                plateau: PlateauStop = PlateauStop(),
                                progress: ((SecondOrderTrainer, LossSummary) -> Void)? = nil) throws -> EpochRun {
    try trainTaylorRun(SecondOrderModel<Float>.self, around: network, train: train, test: test, settings: settings,
                       identity: identity, streams: streams, plateau: plateau, progress: progress)
}
