/// `y = max(x, 0)`. The on/off pattern `x > 0` is what the ReLU-pattern distance compares.
/// NaN propagates as in PyTorch (`relu(nan) = nan`, and `threshold_backward` passes the gradient
/// where `x <= 0` is false, NaN included): every select below is `x <= 0 ? 0 : value`, never
/// `x > 0 ? value : 0`, which would map NaN to 0 and hide a diverged network.
public final class ReLU<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape
    public var outShape: Shape { inShape }
    /// Pre-activations `[C, N, H, W]` of the last forward (valid until the network's next forward)
    /// and their batch size: unit `(c, n, h, w)` is on when its pre-activation is `> 0`. After a
    /// forward fused into the layer before it (`LayerContext.fusesActivations`), the outputs, which
    /// are `> 0` exactly where the pre-activations are (NaN included: neither is).
    public private(set) var lastInput: UnsafePointer<T>?
    public private(set) var lastBatch = 0

    /// Records a forward computed in one pass with the layer before (`LayerContext.fusesActivations`)
    /// with outputs `y`.
    func fusedForward(output y: UnsafePointer<T>, n: Int) { lastInput = y; lastBatch = n }

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
    /// `ty = gate tx`, `tty = gate ttx` (the gate `x > 0` held) in one pass over `x`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        guard let tx, let ttx else {
            fixedLinearJVP2(x: x, y: y, tx: tx, ttx: ttx, ty: ty, tty: tty, n: n, ctx)
            return
        }
        Workers.split(n * inShape.count) { r in
            for i in r {
                let t = tx[i], tt = ttx[i], off = x[i] <= 0
                ty[i] = off ? 0 : t
                tty[i] = off ? 0 : tt
            }
        }
    }
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        fixedLinearBackwardTangent(x: x, y: y, tdy: tdy, tdx: tdx, n: n, ctx)
    }
    public var reluLayers: [ReLU<T>] { [self] }
}
