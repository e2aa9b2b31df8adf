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
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearJVP2(x: x, y: y, tx: tx, ttx: ttx, ty: ty, tty: tty, n: n, ctx)
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
}
