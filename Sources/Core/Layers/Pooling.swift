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
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearJVP2(x: x, y: y, tx: tx, ttx: ttx, ty: ty, tty: tty, n: n, ctx)
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
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearJVP2(x: x, y: y, tx: tx, ttx: ttx, ty: ty, tty: tty, n: n, ctx)
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
    public var forwardFlops: Int { inShape.count }
}
