/// Fully connected `y[O, N] = W[O, F] x[F, N] + b[O]`; weight `[out, in]` as PyTorch's `Linear`.
public final class Linear<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape, outShape: Shape
    public let weightOffset: Int, biasOffset: Int?

    public init(_ name: String, in features: Int, out: Int, bias: Bool = true, layout: ParameterLayout) {
        inShape = Shape(features); outShape = Shape(out)
        weightOffset = layout.addParameter("\(name).weight", [out, features])
        biasOffset = bias ? layout.addParameter("\(name).bias", [out]) : nil
    }
    private var f: Int { inShape.c }
    private var o: Int { outShape.c }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        if let b = biasOffset { broadcastBias(ctx.params + b, y, channels: o, stride: n) }
        T.gemm(transA: false, transB: false, m: o, n: n, k: f, alpha: 1, a: ctx.params + weightOffset, lda: f,
               b: x, ldb: n, beta: biasOffset == nil ? 0 : 1, c: y, ldc: n)
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        // dW += dy x^T ; db += sum_n dy ; dx += W^T dy
        if ctx.parameterGradients {
            T.gemm(transA: false, transB: true, m: o, n: f, k: n, alpha: 1, a: dy, lda: n, b: x, ldb: n,
                   beta: 1, c: ctx.grads + weightOffset, ldc: f)
            if let b = biasOffset { accumulateChannelSums(dy, into: ctx.grads + b, channels: o, stride: n) }
        }
        if let dx {
            T.gemm(transA: true, transB: false, m: f, n: n, k: o, alpha: 1, a: ctx.params + weightOffset, lda: f,
                   b: dy, ldb: n, beta: 1, c: dx, ldc: n)
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        // d(dW) = tdy x^T + dy tx^T ; d(db) = sum_n tdy ; d(dx) = W^T tdy + V^T dy
        T.gemm(transA: false, transB: true, m: o, n: f, k: n, alpha: 1, a: tdy, lda: n, b: x, ldb: n,
               beta: 1, c: ctx.grads + weightOffset, ldc: f)
        if let tx {
            T.gemm(transA: false, transB: true, m: o, n: f, k: n, alpha: 1, a: dy, lda: n, b: tx, ldb: n,
                   beta: 1, c: ctx.grads + weightOffset, ldc: f)
        }
        if let b = biasOffset { accumulateChannelSums(tdy, into: ctx.grads + b, channels: o, stride: n) }
        guard let tdx else { return }
        T.gemm(transA: true, transB: false, m: f, n: n, k: o, alpha: 1, a: ctx.params + weightOffset, lda: f,
               b: tdy, ldb: n, beta: 1, c: tdx, ldc: n)
        if let v = ctx.tangent {
            T.gemm(transA: true, transB: false, m: f, n: n, k: o, alpha: 1, a: v + weightOffset, lda: f,
                   b: dy, ldb: n, beta: 1, c: tdx, ldc: n)
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        var beta: T = 0
        if let t = ctx.tangent {
            if let b = biasOffset { broadcastBias(t + b, ty, channels: o, stride: n) }
            T.gemm(transA: false, transB: false, m: o, n: n, k: f, alpha: 1, a: t + weightOffset, lda: f,
                   b: x, ldb: n, beta: biasOffset == nil ? 0 : 1, c: ty, ldc: n)
            beta = 1
        }
        if let tx {
            T.gemm(transA: false, transB: false, m: o, n: n, k: f, alpha: 1, a: ctx.params + weightOffset, lda: f,
                   b: tx, ldb: n, beta: beta, c: ty, ldc: n)
        } else if ctx.tangent == nil {
            ty.update(repeating: 0, count: n * o)
        }
    }
    /// `ty = V x + b_V + W tx` (as `jvp`), `tty = W ttx + 2 V tx` (bilinear in `(W, x)`, affine in `b`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        jvp(x: x, y: y, tx: tx, ty: ty, n: n, ctx)
        var beta: T = 0
        if let ttx {
            T.gemm(transA: false, transB: false, m: o, n: n, k: f, alpha: 1, a: ctx.params + weightOffset, lda: f,
                   b: ttx, ldb: n, beta: 0, c: tty, ldc: n)
            beta = 1
        }
        if let v = ctx.tangent, let tx {
            T.gemm(transA: false, transB: false, m: o, n: n, k: f, alpha: 2, a: v + weightOffset, lda: f,
                   b: tx, ldb: n, beta: beta, c: tty, ldc: n)
            beta = 1
        }
        if beta == 0 { tty.update(repeating: 0, count: n * o) }
    }
    public var forwardFlops: Int { 2 * f * o }
    public func backwardFlops(inputGradient: Bool) -> Int { forwardFlops * (inputGradient ? 2 : 1) }
}
