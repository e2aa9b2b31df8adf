/// `y = max(x, 0)`. The on/off pattern `x > 0` is what the ReLU-pattern distance compares.
/// NaN propagates as in PyTorch (`relu(nan) = nan`, and `threshold_backward` passes the gradient
/// where `x <= 0` is false, NaN included): every select below is `x <= 0 ? 0 : value`, never
/// `x > 0 ? value : 0`, which would map NaN to 0 and hide a diverged network.
public final class ReLU<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape
    public var outShape: Shape { inShape }
    /// Pre-activations `[C, N, H, W]` of the last forward (valid until the network's next forward)
    /// and their batch size: unit `(c, n, h, w)` is on when its pre-activation is `> 0`.
    public private(set) var lastInput: UnsafePointer<T>?
    public private(set) var lastBatch = 0

    public init(shape: Shape) { inShape = shape }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        lastInput = x; lastBatch = n
        Workers.split(n * inShape.count) { r in for i in r { let v = x[i]; y[i] = v <= 0 ? 0 : v } }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        guard let dx else { return }
        let overwrite = ctx.overwriteInputGradient
        Workers.split(n * inShape.count) { r in
            if overwrite {
                for i in r {
                    let g = dy[i]   // loaded unconditionally so the select vectorises
                    dx[i] = x[i] <= 0 ? 0 : g
                }
            } else {
                for i in r {
                    let g = dy[i]
                    dx[i] += x[i] <= 0 ? 0 : g
                }
            }
        }
    }
    public var overwritesInputGradient: Bool { true }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        let count = n * inShape.count
        guard let tx else { ty.update(repeating: 0, count: count); return }
        Workers.split(count) { r in
            for i in r {
                let t = tx[i]
                ty[i] = x[i] <= 0 ? 0 : t
            }
        }
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
    public var reluLayers: [ReLU<T>] { [self] }
}

/// Max pooling with a square window `k` and stride `k` (no padding); ties go to the first maximum
/// in row-major window order. The winning input index of each output is cached for backward/JVP.
/// NaN propagates as in PyTorch's `max_pool2d`: a window holding a NaN outputs NaN, and its winner
/// is the last NaN in window order (PyTorch's `val > max || isnan(val)`).
public final class MaxPool2D<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape, outShape: Shape
    public let size: Int
    private var argmax: [Int32] = []

    public init(shape: Shape, size: Int = 2) {
        precondition(shape.h >= size && shape.w >= size, "MaxPool2D: input \(shape) smaller than window \(size)")
        inShape = shape; self.size = size
        outShape = Shape(shape.c, shape.h / size, shape.w / size)
    }
    public func prepare(maxBatch: Int) {
        if argmax.count < maxBatch * outShape.count { argmax = Array(repeating: 0, count: maxBatch * outShape.count) }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        prepare(maxBatch: n)
        let (h, w, oh, ow) = (inShape.h, inShape.w, outShape.h, outShape.w)
        argmax.withUnsafeMutableBufferPointer { arg in
            let size = size, base = arg.baseAddress!
            Workers.split(inShape.c * n, cost: h * w) { planes in
            for plane in planes {
                let src = x + plane * h * w, dst = y + plane * oh * ow
                let a = base + plane * oh * ow
                if size == 2 {   // the common window, unrolled (same comparisons and tie rule)
                    for oy in 0..<oh {
                        let top = 2 * oy * w, out = oy * ow
                        for ox in 0..<ow {
                            let i = top + 2 * ox
                            var best = i, v = src[i]
                            let b = src[i + 1], c = src[i + w], d = src[i + w + 1]
                            if b > v || b != b { v = b; best = i + 1 }
                            if c > v || c != c { v = c; best = i + w }
                            if d > v || d != d { v = d; best = i + w + 1 }
                            dst[out + ox] = v
                            a[out + ox] = Int32(truncatingIfNeeded: best)
                        }
                    }
                    continue
                }
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = (oy * size) * w + ox * size
                        var v = src[best]
                        for dy in 0..<size {
                            for dx in 0..<size {
                                let i = (oy * size + dy) * w + ox * size + dx
                                let u = src[i]
                                if u > v || u != u { v = u; best = i }
                            }
                        }
                        dst[oy * ow + ox] = v
                        a[oy * ow + ox] = Int32(best)
                    }
                }
            }
            }
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        guard let dx else { return }
        let ip = inShape.plane, op = outShape.plane
        argmax.withUnsafeBufferPointer { arg in
            let arg = arg.baseAddress!
            Workers.split(inShape.c * n, cost: ip) { planes in
                for plane in planes {
                    for o in 0..<op { dx[plane * ip + Int(arg[plane * op + o])] += dy[plane * op + o] }
                }
            }
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        let ip = inShape.plane, op = outShape.plane
        guard let tx else { ty.update(repeating: 0, count: n * outShape.count); return }
        argmax.withUnsafeBufferPointer { arg in
            for plane in 0..<(inShape.c * n) {
                for o in 0..<op { ty[plane * op + o] = tx[plane * ip + Int(arg[plane * op + o])] }
            }
        }
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
    public var forwardFlops: Int { inShape.count }
}

/// Global average pooling `[C, N, H, W] -> [C, N]`: `y[c, n] = mean_{h,w} x[c, n, h, w]`.
public final class GlobalAvgPool<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape
    public var outShape: Shape { Shape(inShape.c) }
    public init(shape: Shape) { inShape = shape }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        average(x, y, n: n)
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func average(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int) {
        let p = inShape.plane, scale = 1 / T(p)
        Workers.split(inShape.c * n, cost: p) { planes in
            for i in planes { y[i] = Reduce.sum(x + i * p, count: p) * scale }
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        guard let dx else { return }
        let p = inShape.plane, scale = 1 / T(p), overwrite = ctx.overwriteInputGradient
        Workers.split(inShape.c * n, cost: p) { planes in
            for i in planes {
                let g = dy[i] * scale, d = dx + i * p
                if overwrite { d.update(repeating: g, count: p) } else { for j in 0..<p { d[j] += g } }
            }
        }
    }
    public var overwritesInputGradient: Bool { true }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        guard let tx else { ty.update(repeating: 0, count: n * inShape.c); return }
        average(tx, ty, n: n)
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
    public var forwardFlops: Int { inShape.count }
}

/// `[C, N, H, W] -> [C*H*W, N]` in PyTorch's `flatten` order `(c, h, w)`.
public final class Flatten<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape
    public var outShape: Shape { Shape(inShape.count) }
    public init(shape: Shape) { inShape = shape }

    /// `out[(c*P + p), n] = in[c, n, p]` (or the inverse, accumulating, when `inverse`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func permute(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, n: Int, inverse: Bool) {
        let p = inShape.plane
        for c in 0..<inShape.c {
            for b in 0..<n {
                for j in 0..<p {
                    let cnhw = (c * n + b) * p + j, flat = (c * p + j) * n + b
                    if inverse { dst[cnhw] += src[flat] } else { dst[flat] = src[cnhw] }
                }
            }
        }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        permute(x, y, n: n, inverse: false)
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        if let dx { permute(dy, dx, n: n, inverse: true) }
    }
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        guard let tx else { ty.update(repeating: 0, count: n * inShape.count); return }
        permute(tx, ty, n: n, inverse: false)
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
}

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
    public var forwardFlops: Int { 2 * f * o }
    public func backwardFlops(inputGradient: Bool) -> Int { forwardFlops * (inputGradient ? 2 : 1) }
}
