/// Everything a layer reads besides its input: the network's flat buffers and the mode.
///
/// Shapes use the letters `N` batch, `C` channels, `H`,`W` spatial; activations are `[C, N, H, W]`.
public struct LayerContext<T: Real> {
    /// Trainable parameters (layer tensors are views at fixed offsets).
    public var params: UnsafeMutablePointer<T>
    /// Gradient accumulator with the parameters' layout; `backward` adds into it.
    public var grads: UnsafeMutablePointer<T>
    /// BatchNorm running statistics.
    public var state: UnsafeMutablePointer<T>
    /// Parameter tangent for `jvp` (same layout as `params`); `nil` means zero.
    public var tangent: UnsafePointer<T>?
    public var mode: Mode
    /// Set by the caller of `backward` for a layer with `overwritesInputGradient`: `dx` holds stale
    /// values and is to be *written*, not added to (saves zeroing it and reading it back).
    public var overwriteInputGradient = false
    /// Whether `backward` forms parameter gradients. Off for the primal pass of a Hessian-vector
    /// product, which needs only the input gradients of every layer (`backwardTangent` forms the rest).
    public var parameterGradients = true
    /// Set when the batch is one shard of a larger one (data-parallel training, `DataParallelStep`):
    /// BatchNorm in training mode then normalises with the statistics of the whole batch, summing
    /// its per-channel partial sums over the shards through this. Nil: the batch is the whole batch.
    public var shardSums: ShardSums?

    /// Whether a layer may be fused with the ReLU after it (one pass writing only the ReLU's output:
    /// `LayerChain`'s BatchNorm + ReLU, a residual block's sum + ReLU): in training shards
    /// (`DataParallelStep`), whose only other pass is `backward`, where the ReLU takes its gate from
    /// its own output (`> 0` exactly where its input is). Other callers (tangents, Hessian products,
    /// metrics) read every layer's output, so they run the layers one by one.
    var fusesActivations: Bool { mode == .train && shardSums != nil }

    public init(params: UnsafeMutablePointer<T>, grads: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>,
                tangent: UnsafePointer<T>? = nil, mode: Mode) {
        self.params = params; self.grads = grads; self.state = state
        self.tangent = tangent; self.mode = mode
    }

    public enum Mode: Sendable {
        /// BatchNorm normalises with batch statistics and updates its running statistics.
        case train
        /// BatchNorm normalises with running statistics; the network is a per-example function.
        case eval
    }
}

/// The sums a layer needs over all shards of a batch that is computed shard by shard (on one rank
/// or several): BatchNorm's per-channel sums in training mode.
public protocol ShardSums: AnyObject {
    /// Examples in the whole batch (every shard).
    var batchExamples: Int { get }
    /// Replaces `values`, this shard's partial sums, by their sums over every shard of the batch,
    /// added in shard order (so the result does not depend on which rank holds which shard). Every
    /// shard of the batch calls it the same number of times, with the same count, in the same order.
    func sumOverShards(_ values: UnsafeMutableBufferPointer<Double>)
}

/// One differentiable operation. Contract (llm.c style): `forward` writes `y`; `backward` *adds*
/// the input gradient into `dx` (when non-nil; it writes it instead when `ctx.overwriteInputGradient`) and the parameter gradients into `ctx.grads`;
/// `jvp` *writes* the output tangent for input tangent `tx` (nil = zero) and parameter tangent
/// `ctx.tangent`. Both `backward` and `jvp` must follow a `forward` on the same `x` and mode.
public protocol Layer<Scalar>: AnyObject {
    associatedtype Scalar: Real
    var inShape: Shape { get }
    var outShape: Shape { get }
    /// Allocates per-batch caches (argmax indices, batch statistics) for up to `maxBatch` examples.
    func prepare(maxBatch: Int)
    func forward(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, n: Int, _ ctx: LayerContext<Scalar>)
    func backward(x: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, dy: UnsafePointer<Scalar>,
                  dx: UnsafeMutablePointer<Scalar>?, n: Int, _ ctx: LayerContext<Scalar>)
    func jvp(x: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, tx: UnsafePointer<Scalar>?,
             ty: UnsafeMutablePointer<Scalar>, n: Int, _ ctx: LayerContext<Scalar>)
    /// The tangent of `backward` (Pearlmutter's R-operator, forward-over-reverse): the directional
    /// derivative of `(dx, parameter gradients)` along the input tangent `tx` (the one `jvp` was given;
    /// nil = 0), the parameter tangent `ctx.tangent` (nil = 0) and the output-gradient tangent `tdy`.
    /// *Adds* the input-gradient tangent into `tdx` (when non-nil) and the parameter-gradient tangent
    /// into `ctx.grads`. Follows `forward`, `jvp` and `backward` (with `dy`) on the same batch and
    /// mode, and may read their caches (a residual block's inner gradients and tangents).
    func backwardTangent(x: UnsafePointer<Scalar>, tx: UnsafePointer<Scalar>?, y: UnsafePointer<Scalar>,
                         dy: UnsafePointer<Scalar>, tdy: UnsafePointer<Scalar>, tdx: UnsafeMutablePointer<Scalar>?,
                         n: Int, _ ctx: LayerContext<Scalar>)
    /// Second-order forward tangent (a JVP of a JVP) along the straight line `w + ε v` in parameter
    /// space (`v = ctx.tangent`, nil = 0) and an input curve `x(ε)` with first and second tangents
    /// `tx = x'(0)`, `ttx = x''(0)` (nil = 0): *writes* `ty = y'(0)` (what `jvp` writes) and
    /// `tty = y''(0)`. A layer bilinear in `(W, x)` (convolution, linear, inference-mode BatchNorm in
    /// `(γ, x)`; biases enter linearly) has `y'' = L(W, x'') + 2 L(V, x')` (`W'' = 0` on a straight
    /// line); ReLU and pooling are piecewise linear, `y'' = (gated/selected) x''` (a gate's derivative
    /// is 0 almost everywhere, as in `backwardTangent`). Follows `forward` on the same `x` and mode and
    /// leaves the caches `jvp` leaves, so `backwardTangent` may follow it. Inference mode only for
    /// BatchNorm (train mode is refused: the analyses freeze BatchNorm).
    func jvp2(x: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, tx: UnsafePointer<Scalar>?, ttx: UnsafePointer<Scalar>?,
              ty: UnsafeMutablePointer<Scalar>, tty: UnsafeMutablePointer<Scalar>, n: Int, _ ctx: LayerContext<Scalar>)
    /// Multiply-adds ×2 of one example's forward pass.
    var forwardFlops: Int { get }
    /// FLOPs of one example's backward pass (parameter gradients plus, if asked, input gradient).
    func backwardFlops(inputGradient: Bool) -> Int
    /// The ReLU layers inside this layer, in forward order (for ReLU-pattern metrics).
    var reluLayers: [ReLU<Scalar>] { get }
    /// Whether `backward` honours `ctx.overwriteInputGradient` (writes every element of `dx`).
    var overwritesInputGradient: Bool { get }
}

public extension Layer {
    func prepare(maxBatch: Int) {}
    var forwardFlops: Int { 0 }
    func backwardFlops(inputGradient: Bool) -> Int { 0 }
    var reluLayers: [ReLU<Scalar>] { [] }
    var overwritesInputGradient: Bool { false }
}

public extension Layer {
    /// `jvp2` of a parameter-free layer whose JVP is a fixed linear map `A` of `tx` (ReLU and max
    /// pooling with their gates and winners held, average pooling, reshapes): `ty = A tx`, `tty = A ttx`.
    func fixedLinearJVP2(x: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, tx: UnsafePointer<Scalar>?,
                         ttx: UnsafePointer<Scalar>?, ty: UnsafeMutablePointer<Scalar>, tty: UnsafeMutablePointer<Scalar>,
                         n: Int, _ ctx: LayerContext<Scalar>) {
        jvp(x: x, y: y, tx: tx, ty: ty, n: n, ctx)
        jvp(x: x, y: y, tx: ttx, ty: tty, n: n, ctx)
    }

    /// `backwardTangent` of a parameter-free layer whose input gradient is a fixed linear map `B` of
    /// `dy` (ReLU and max pooling with their gates and winners held, average pooling, reshapes):
    /// `tdx += B tdy`. A gate's derivative is 0 almost everywhere, as in autodiff frameworks.
    func fixedLinearBackwardTangent(x: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, tdy: UnsafePointer<Scalar>,
                                    tdx: UnsafeMutablePointer<Scalar>?, n: Int, _ ctx: LayerContext<Scalar>) {
        guard let tdx else { return }
        var accumulate = ctx
        accumulate.overwriteInputGradient = false
        backward(x: x, y: y, dy: tdy, dx: tdx, n: n, accumulate)
    }
}
