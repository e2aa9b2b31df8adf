/// A trainable network: one flat parameter vector with named views, a flat BatchNorm state buffer,
/// and a chain of layers. The boundary is conventional — inputs `[N, C, H, W]`, logits
/// `[N, classes]` row-major — while activations inside are channel-major `[C, N, H, W]`.
public final class Network<T: Real> {
    public let kind: ModelKind
    public let inputShape: Shape
    public let classes: Int
    public let layout: ParameterLayout
    /// Trainable parameters, their gradient accumulator, and BatchNorm running statistics.
    public let params: Buffer<T>, grads: Buffer<T>, state: Buffer<T>
    public let chain: LayerChain<T>
    public let batchNorms: [BatchNorm2D<T>]
    /// The build option its convolutions were built with.
    public let convolutions: ConvolutionChoice
    private var inputCN = Buffer<T>(count: 0), inputTangentCN = Buffer<T>(count: 0)
    private var logits = Buffer<T>(count: 0), logitGradCN = Buffer<T>(count: 0), tangentNC = Buffer<T>(count: 0)
    private var inputGradCN = Buffer<T>(count: 0), logitTangentGradCN = Buffer<T>(count: 0)
    private var secondTangentNC = Buffer<T>(count: 0)
    public private(set) var capacity = 0

    init(kind: ModelKind, inputShape: Shape, classes: Int, layout: ParameterLayout, layers: [any Layer<T>],
         batchNorms: [BatchNorm2D<T>], convolutions: ConvolutionChoice) {
        self.kind = kind; self.inputShape = inputShape; self.classes = classes; self.layout = layout
        self.batchNorms = batchNorms; self.convolutions = convolutions
        chain = LayerChain(layers, inShape: inputShape)
        precondition(chain.outShape == Shape(classes), "network output \(chain.outShape) is not \(classes) logits")
        params = Buffer(count: layout.parameterCount)
        grads = Buffer(count: layout.parameterCount)
        state = Buffer(count: layout.stateCount)
        for bn in batchNorms { bn.initialize(params: params.pointer, state: state.pointer) }
    }

    public var parameterCount: Int { layout.parameterCount }

    /// A new network of the same architecture and build options in precision `U` (parameters zero).
    public func rebuilt<U: Real>(as: U.Type) -> Network<U> {
        kind.build(input: inputShape, classes: classes, as: U.self, convolutions: convolutions)
    }

    /// Kaiming-normal weights (`std = sqrt(2 / fan_in)`, He et al. 2015; PyTorch's
    /// `kaiming_normal_(mode="fan_in", nonlinearity="relu")`), zero biases, BatchNorm weight 1 / bias 0,
    /// running statistics reset. `normal()` supplies standard normal draws in parameter order.
    /// Not PyTorch's default (`kaiming_uniform_(a=sqrt 5)`, uniform biases) nor torchvision's
    /// `fan_out`: docs/initialisation.md compares them.
    public func initialize(normal: () -> Double) {
        for v in layout.parameters where v.shape.count >= 2 {
            let fanIn = v.shape.dropFirst().reduce(1, *)
            let std = (2.0 / Double(fanIn)).squareRoot()
            for i in v.range { params[i] = T(std * normal()) }
        }
        for v in layout.parameters where v.shape.count == 1 { (params.pointer + v.offset).update(repeating: 0, count: v.count) }
        for bn in batchNorms { bn.initialize(params: params.pointer, state: state.pointer) }
    }

    /// Allocates activations for batches of up to `maxBatch` (grows, never shrinks).
    public func prepare(maxBatch: Int) {
        guard maxBatch > capacity else { return }
        capacity = maxBatch
        chain.prepare(maxBatch: maxBatch)
        inputCN = Buffer(count: maxBatch * inputShape.count)
        inputTangentCN = Buffer(count: maxBatch * inputShape.count)
        inputGradCN = Buffer(count: maxBatch * inputShape.count)
        logits = Buffer(count: maxBatch * classes)
        logitGradCN = Buffer(count: maxBatch * classes)
        logitTangentGradCN = Buffer(count: maxBatch * classes)
        tangentNC = Buffer(count: maxBatch * classes)
        secondTangentNC = Buffer(count: maxBatch * classes)
    }

    /// Set while this network computes one shard of a larger batch (`DataParallelStep`): BatchNorm in
    /// training mode then normalises with the whole batch's statistics.
    public var shardSums: ShardSums?

    func context(_ mode: LayerContext<T>.Mode, tangent: UnsafePointer<T>? = nil) -> LayerContext<T> {
        var ctx = LayerContext(params: params.pointer, grads: grads.pointer, state: state.pointer, tangent: tangent, mode: mode)
        ctx.shardSums = shardSums
        return ctx
    }

    /// Logits `[n, classes]` for inputs `x [n, C, H, W]`; valid until the next call.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, n: Int, mode: LayerContext<T>.Mode) -> UnsafeMutablePointer<T> {
        prepare(maxBatch: n)
        transpose(x, into: inputCN.pointer, outer: n, inner: inputShape.c, block: inputShape.plane)
        let out = chain.forward(inputCN.pointer, n: n, context(mode))
        transpose(out, into: logits.pointer, outer: classes, inner: n, block: 1)
        return logits.pointer
    }

    /// Adds `d loss / d params` into `grads` for `dlogits [n, classes]` after a `forward` of the same
    /// batch and mode; writes `d loss / d x [n, C, H, W]` into `inputGradient` when given.
    /// `lowestLayer > 0` stops below `chain.layers[lowestLayer]` (see `LayerChain.backward`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(_ dlogits: UnsafePointer<T>, n: Int, mode: LayerContext<T>.Mode,
                         inputGradient: UnsafeMutablePointer<T>? = nil, lowestLayer: Int = 0) {
        precondition(lowestLayer == 0 || inputGradient == nil, "backward: no input gradient when stopping at layer \(lowestLayer)")
        transpose(dlogits, into: logitGradCN.pointer, outer: n, inner: classes, block: 1)
        if inputGradient != nil { inputGradCN.pointer.update(repeating: 0, count: n * inputShape.count) }
        chain.backward(x: inputCN.pointer, dy: logitGradCN.pointer, dx: inputGradient == nil ? nil : inputGradCN.pointer,
                       n: n, context(mode), lowest: lowestLayer)
        if let inputGradient {
            transpose(inputGradCN.pointer, into: inputGradient, outer: inputShape.c, inner: n, block: inputShape.plane)
        }
    }

    /// Logit tangent `[n, classes]`: `J_x tx + J_w tw` at the last `forward`'s inputs and mode.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(inputTangent: UnsafePointer<T>?, parameterTangent: UnsafePointer<T>?, n: Int,
                    mode: LayerContext<T>.Mode) -> UnsafeMutablePointer<T> {
        var tx: UnsafePointer<T>? = nil
        if let inputTangent {
            transpose(inputTangent, into: inputTangentCN.pointer, outer: n, inner: inputShape.c, block: inputShape.plane)
            tx = UnsafePointer(inputTangentCN.pointer)
        }
        let t = chain.jvp(x: inputCN.pointer, tx: tx, n: n, context(mode, tangent: parameterTangent))
        transpose(t, into: tangentNC.pointer, outer: classes, inner: n, block: 1)
        return tangentNC.pointer
    }

    /// First and second logit tangents `[n, classes]` along the straight line `w + ε v` in parameter
    /// space (inputs fixed): `first = J v` (what `jvp(inputTangent: nil, parameterTangent: v)`
    /// returns) and `second = f''[v, v] = Σ_ij v_i v_j ∂²f/∂w_i∂w_j`, at the last `forward`'s inputs,
    /// by one fused pass (`Layer.jvp2`). BatchNorm must be in inference mode (`mode: .eval`). Leaves
    /// the tangents `jvp` leaves, so `backwardTangent` with parameter tangent `v` may follow. Both
    /// valid until the next call.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(parameterTangent v: UnsafePointer<T>, n: Int, mode: LayerContext<T>.Mode)
        -> (first: UnsafeMutablePointer<T>, second: UnsafeMutablePointer<T>) {
        let (t, tt) = chain.jvp2(x: inputCN.pointer, tx: nil, ttx: nil, n: n, context(mode, tangent: v))
        transpose(t, into: tangentNC.pointer, outer: classes, inner: n, block: 1)
        transpose(tt, into: secondTangentNC.pointer, outer: classes, inner: n, block: 1)
        return (tangentNC.pointer, secondTangentNC.pointer)
    }

    /// Adds `d/dε [∇_w loss](w + εv)` at ε = 0 into `hv [P]` — the batch's share of a Hessian-vector
    /// product `H v`, by forward-over-reverse (Pearlmutter 1994): a backward pass for the logit
    /// gradient `dlogits` (input gradients only), then its tangent pass. Follows `forward` and
    /// `jvp(inputTangent: nil, parameterTangent: v)` of the same batch and mode; `tdlogits [n, classes]`
    /// is the tangent of `dlogits` (the loss's Hessian times the logit tangent, `LossFunction.hessianProduct`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(_ dlogits: UnsafePointer<T>, _ tdlogits: UnsafePointer<T>, parameterTangent v: UnsafePointer<T>,
                                n: Int, mode: LayerContext<T>.Mode, into hv: UnsafeMutablePointer<T>) {
        transpose(dlogits, into: logitGradCN.pointer, outer: n, inner: classes, block: 1)
        transpose(tdlogits, into: logitTangentGradCN.pointer, outer: n, inner: classes, block: 1)
        var primal = context(mode)
        primal.parameterGradients = false
        chain.backward(x: inputCN.pointer, dy: logitGradCN.pointer, dx: nil, n: n, primal)
        let tangent = LayerContext(params: params.pointer, grads: hv, state: state.pointer, tangent: v, mode: mode)
        chain.backwardTangent(x: inputCN.pointer, tx: nil, dy: logitGradCN.pointer, tdy: logitTangentGradCN.pointer, tdx: nil,
                              n: n, tangent)
    }

    public func zeroGrads() { grads.zero() }

    /// Forward FLOPs per example (2 x multiply-adds of convolutions and linear layers, plus
    /// elementwise work counted once per element).
    public var forwardFlops: Int { chain.forwardFlops }
    /// Forward + backward FLOPs per training example (no gradient for the input).
    public var trainingFlops: Int { chain.forwardFlops + chain.backwardFlops(inputGradient: false) }
    public var reluLayers: [ReLU<T>] { chain.reluLayers }
}

/// `dst[j, i, :] = src[i, j, :]` for `src [outer, inner, block]` — converts NCHW <-> CNHW.
@_specialize(where T == Float)
@_specialize(where T == Double)
func transpose<T: Real>(_ src: UnsafePointer<T>, into dst: UnsafeMutablePointer<T>, outer: Int, inner: Int, block: Int) {
    Workers.split(outer, cost: inner * block) { rows in
        for i in rows {
            for j in 0..<inner {
                (dst + (j * outer + i) * block).update(from: src + (i * inner + j) * block, count: block)
            }
        }
    }
}
