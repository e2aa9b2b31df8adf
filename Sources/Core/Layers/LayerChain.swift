/// Layers applied one after another, owning the activations between them (forward), their
/// gradients (backward) and tangents (JVP), each sized for `maxBatch` examples.
public final class LayerChain<T: Real> {
    public let layers: [any Layer<T>]
    public let inShape: Shape
    /// At `i`: the BatchNorm `layers[i]` and the ReLU `layers[i + 1]` when the chain has that pair.
    private let batchNormReLUPairs: [(BatchNorm2D<T>, ReLU<T>)?]
    public var outShape: Shape { layers.last?.outShape ?? inShape }
    public private(set) var capacity = 0
    /// `acts[i]` is the output of `layers[i]`; `grads[i]`, `tangents[i]`, `tangentGrads[i]` (the
    /// gradient's tangent, `backwardTangent`) likewise. Buffers are lazily zeroed pages, so those a
    /// caller never uses (the tangent gradients outside Hessian products) cost no memory.
    private var acts: [Buffer<T>] = [], grads: [Buffer<T>] = [], tangents: [Buffer<T>] = []
    private var tangentGrads: [Buffer<T>] = []
    /// `secondTangents[i]`: the second tangent of `layers[i]`'s output (`jvp2`).
    private var secondTangents: [Buffer<T>] = []

    public init(_ layers: [any Layer<T>], inShape: Shape) {
        var shape = inShape
        for l in layers {
            precondition(l.inShape == shape, "layer expects \(l.inShape), gets \(shape)")
            shape = l.outShape
        }
        self.layers = layers
        self.inShape = inShape
        batchNormReLUPairs = layers.indices.map { i in
            guard i + 1 < layers.count, let bn = layers[i] as? BatchNorm2D<T>, let relu = layers[i + 1] as? ReLU<T> else { return nil }
            return (bn, relu)
        }
    }

    public func prepare(maxBatch: Int) {
        guard maxBatch > capacity else { return }
        capacity = maxBatch
        acts = layers.map { Buffer(count: maxBatch * $0.outShape.count) }
        grads = layers.map { Buffer(count: maxBatch * $0.outShape.count) }
        tangents = layers.map { Buffer(count: maxBatch * $0.outShape.count) }
        tangentGrads = layers.map { Buffer(count: maxBatch * $0.outShape.count) }
        secondTangents = layers.map { Buffer(count: maxBatch * $0.outShape.count) }
        layers.forEach { $0.prepare(maxBatch: maxBatch) }
    }

    /// Output of the last forward (valid until the next forward).
    public var output: UnsafeMutablePointer<T> { acts[layers.count - 1].pointer }

    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, n: Int, _ ctx: LayerContext<T>) -> UnsafeMutablePointer<T> {
        precondition(n <= capacity, "batch \(n) exceeds prepared capacity \(capacity)")
        let fuse = ctx.fusesActivations
        var input = x, i = 0
        while i < layers.count {
            if fuse, let (bn, relu) = batchNormReLUPairs[i] {
                // One pass: BatchNorm's output goes through the ReLU into the ReLU's buffer; the
                // BatchNorm's own buffer is left unwritten.
                bn.forward(input, acts[i + 1].pointer, n: n, ctx, relu: true)
                relu.fusedForward(output: acts[i + 1].pointer, n: n)
                i += 1
            } else {
                layers[i].forward(input, acts[i].pointer, n: n, ctx)
            }
            input = UnsafePointer(acts[i].pointer)
            i += 1
        }
        return output
    }

    /// Adds parameter gradients into `ctx.grads` and, when `dx` is given, the input gradient into it.
    /// With `lowest > 0` the pass stops after `layers[lowest]`'s parameter gradients (no input
    /// gradient): the gradients of layers below are left untouched (NTK Jacobian rows of top layers).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, dy: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?,
                         n: Int, _ ctx: LayerContext<T>, lowest: Int = 0) {
        var gradOut = dy, layerContext = ctx
        let fused = ctx.fusesActivations
        for i in stride(from: layers.count - 1, through: lowest, by: -1) {
            var input = i == 0 ? x : UnsafePointer(acts[i - 1].pointer)
            // A ReLU fused into the BatchNorm before it: its input was never written; its output gates alike.
            if fused && i > 0 && batchNormReLUPairs[i - 1] != nil { input = UnsafePointer(acts[i].pointer) }
            var gradIn: UnsafeMutablePointer<T>? = i == 0 ? dx : nil
            // The chain's own gradient buffers have one writer each: a layer that can overwrite
            // gets a stale buffer; the others (and the caller's `dx`, which accumulates) get zeros.
            layerContext.overwriteInputGradient = false
            if i > lowest {
                gradIn = grads[i - 1].pointer
                if layers[i].overwritesInputGradient {
                    layerContext.overwriteInputGradient = true
                } else {
                    Workers.zero(gradIn!, count: n * layers[i - 1].outShape.count)
                }
            }
            layers[i].backward(x: input, y: acts[i].pointer, dy: gradOut, dx: gradIn, n: n, layerContext)
            if i > 0 { gradOut = UnsafePointer(grads[i - 1].pointer) }
        }
    }

    /// Output tangent for input tangent `tx` (nil = 0) and parameter tangent `ctx.tangent`.
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, tx: UnsafePointer<T>?, n: Int, _ ctx: LayerContext<T>) -> UnsafeMutablePointer<T> {
        var input = x, tangent = tx
        for (i, l) in layers.enumerated() {
            l.jvp(x: input, y: acts[i].pointer, tx: tangent, ty: tangents[i].pointer, n: n, ctx)
            input = UnsafePointer(acts[i].pointer)
            tangent = UnsafePointer(tangents[i].pointer)
        }
        return tangents[layers.count - 1].pointer
    }

    /// First and second output tangents (`Layer.jvp2`) for input tangents `tx`, `ttx` (nil = 0) and
    /// parameter tangent `ctx.tangent`; leaves the tangents `jvp` leaves (`outputTangent`, and what
    /// `backwardTangent` reads).
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?, n: Int, _ ctx: LayerContext<T>)
        -> (first: UnsafeMutablePointer<T>, second: UnsafeMutablePointer<T>) {
        var input = x, tangent = tx, second = ttx
        for (i, l) in layers.enumerated() {
            l.jvp2(x: input, y: acts[i].pointer, tx: tangent, ttx: second, ty: tangents[i].pointer, tty: secondTangents[i].pointer,
                   n: n, ctx)
            input = UnsafePointer(acts[i].pointer)
            tangent = UnsafePointer(tangents[i].pointer)
            second = UnsafePointer(secondTangents[i].pointer)
        }
        return (tangents[layers.count - 1].pointer, secondTangents[layers.count - 1].pointer)
    }

    /// Output tangent of the last `jvp` (valid until the next one).
    public var outputTangent: UnsafeMutablePointer<T> { tangents[layers.count - 1].pointer }

    /// The tangent of `backward` (see `Layer.backwardTangent`): adds the parameter-gradient tangent
    /// into `ctx.grads` and the input-gradient tangent into `tdx` (when given). Follows `forward`,
    /// `jvp` (input tangent `tx`, parameter tangent `ctx.tangent`) and `backward` (with `dy`, down to
    /// layer 0) of the same batch, whose activations, tangents and gradients it reads.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, dy: UnsafePointer<T>, tdy: UnsafePointer<T>,
                                tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        var gradOut = dy, tangentGradOut = tdy
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let input = i == 0 ? x : UnsafePointer(acts[i - 1].pointer)
            let tangentIn = i == 0 ? tx : UnsafePointer(tangents[i - 1].pointer)
            var tangentGradIn = tdx
            if i > 0 {
                tangentGradIn = tangentGrads[i - 1].pointer
                Workers.zero(tangentGradIn!, count: n * layers[i - 1].outShape.count)
            }
            layers[i].backwardTangent(x: input, tx: tangentIn, y: acts[i].pointer, dy: gradOut, tdy: tangentGradOut,
                                      tdx: tangentGradIn, n: n, ctx)
            if i > 0 {
                gradOut = UnsafePointer(grads[i - 1].pointer)
                tangentGradOut = UnsafePointer(tangentGrads[i - 1].pointer)
            }
        }
    }

    public var forwardFlops: Int { layers.reduce(0) { $0 + $1.forwardFlops } }
    public func backwardFlops(inputGradient: Bool) -> Int {
        layers.enumerated().reduce(0) { $0 + $1.element.backwardFlops(inputGradient: inputGradient || $1.offset > 0) }
    }
    public var reluLayers: [ReLU<T>] { layers.flatMap { $0.reluLayers } }
}
