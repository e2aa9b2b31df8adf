/// How a residual block maps its input onto the output's shape.
public enum ShortcutKind: String, Codable, Sendable, CaseIterable {
    /// He et al. 2016 option A: identity when shapes agree; otherwise subsample spatially by the
    /// stride and zero-pad channels equally on both sides (the CIFAR ResNet20 shortcut).
    case optionA
    /// Identity when shapes agree; otherwise a strided 1x1 convolution (option B).
    case projection
}

/// A residual block `y = post(main(pre(x)) + shortcut(s))`, covering both families we need:
/// - post-activation basic block (He et al. 2016): no `pre`, `main = conv-bn-relu-conv-bn`,
///   `s = x`, `post = ReLU`;
/// - pre-activation block (Zagoruyko & Komodakis 2016, WRN): `pre = bn-relu`,
///   `main = conv-bn-relu-conv`, `s = pre(x)` when the shortcut projects and `x` otherwise, no `post`.
public final class ResidualBlock<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape, outShape: Shape
    let pre: LayerChain<T>?
    let main: LayerChain<T>
    /// Projection convolution (and optional BatchNorm) when the shortcut projects.
    let projection: LayerChain<T>?
    /// Whether the shortcut reads the `pre` output instead of the block input.
    let shortcutFromPre: Bool
    let post: ReLU<T>?
    private var sumGrad: Buffer<T> = Buffer(count: 0)
    private var sumTangent: Buffer<T> = Buffer(count: 0), preGrad: Buffer<T> = Buffer(count: 0)
    private var sumTangentGrad: Buffer<T> = Buffer(count: 0), preTangentGrad: Buffer<T> = Buffer(count: 0)
    private var sumSecondTangent: Buffer<T> = Buffer(count: 0)
    private var capacity = 0

    public init(pre: LayerChain<T>?, main: LayerChain<T>, projection: LayerChain<T>?, shortcutFromPre: Bool,
                postReLU: Bool) {
        self.pre = pre; self.main = main; self.projection = projection
        self.shortcutFromPre = shortcutFromPre
        inShape = pre?.inShape ?? main.inShape
        outShape = main.outShape
        if let projection { precondition(projection.outShape == outShape, "projection shape mismatch") }
        post = postReLU ? ReLU(shape: outShape) : nil
    }

    public func prepare(maxBatch: Int) {
        pre?.prepare(maxBatch: maxBatch); main.prepare(maxBatch: maxBatch); projection?.prepare(maxBatch: maxBatch)
        guard maxBatch > capacity else { return }
        capacity = maxBatch
        sumGrad = Buffer(count: maxBatch * outShape.count)
        sumTangent = Buffer(count: maxBatch * outShape.count)
        sumTangentGrad = Buffer(count: maxBatch * outShape.count)
        sumSecondTangent = Buffer(count: maxBatch * outShape.count)
        if let pre {
            preGrad = Buffer(count: maxBatch * pre.outShape.count)
            preTangentGrad = Buffer(count: maxBatch * pre.outShape.count)
        }
    }

    /// Stride of the spatial subsampling the option-A shortcut applies.
    private var stride: Int { inShape.h / outShape.h }

    /// `z += A(s)` for the option-A/identity shortcut; with `adjoint`, `s += A^T(z)`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func optionA(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, n: Int, adjoint: Bool) {
        let cin = inShape.c, cout = outShape.c, pad = (cout - cin) / 2
        let (h, w, oh, ow, s) = (inShape.h, inShape.w, outShape.h, outShape.w, stride)
        if pad == 0 && s == 1 {   // identity shortcut: a plain sum, either direction
            Workers.split(n * outShape.count) { r in for i in r { dst[i] += src[i] } }
            return
        }
        Workers.split(cin, cost: n * oh * ow) { channels in
        for c in channels {
            for b in 0..<n {
                let xi = (c * n + b) * h * w, zi = ((c + pad) * n + b) * oh * ow
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        if adjoint {
                            dst[xi + oy * s * w + ox * s] += src[zi + oy * ow + ox]
                        } else {
                            dst[zi + oy * ow + ox] += src[xi + oy * s * w + ox * s]
                        }
                    }
                }
            }
        }
        }
    }

    /// Shortcut input for a block input `x`.
    private func shortcutSource(_ x: UnsafePointer<T>) -> UnsafePointer<T> {
        shortcutFromPre ? UnsafePointer(pre!.output) : x
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        let count = n * outShape.count
        let mainIn = pre.map { UnsafePointer($0.forward(x, n: n, ctx)) } ?? x
        // With a post-activation the sum is formed in place in the main path's output buffer (no
        // layer reads its own output in backward or JVP); without one it goes straight to `y`.
        let mainOut = main.forward(mainIn, n: n, ctx)
        let z = post == nil ? y : mainOut
        if post == nil { y.update(from: mainOut, count: count) }
        let s = shortcutSource(x)
        if let post, fusesSumAndReLU(ctx) {
            // Sum and ReLU in one pass (training shards), `z` left unwritten: backward gates by `y`.
            Workers.split(count) { r in for i in r { let v = z[i] + s[i]; y[i] = v <= 0 ? 0 : v } }   // as `ReLU.forward`
            post.fusedForward(output: y, n: n)
            return
        }
        if let projection {
            let p = projection.forward(s, n: n, ctx)
            Workers.split(count) { r in for i in r { z[i] += p[i] } }
        } else {
            optionA(s, z, n: n, adjoint: false)
        }
        post?.forward(z, y, n: n, ctx)
    }

    /// Whether `forward` forms the sum and the post-activation in one pass: an identity shortcut (no
    /// projection, equal shapes) in training shards (`LayerContext.fusesActivations`).
    private func fusesSumAndReLU(_ ctx: LayerContext<T>) -> Bool {
        post != nil && projection == nil && inShape == outShape && ctx.fusesActivations
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        var dz = dy
        if let post {
            var overwrite = ctx
            overwrite.overwriteInputGradient = true
            // After a fused forward the sum was not written; the ReLU's output gates alike.
            post.backward(x: fusesSumAndReLU(ctx) ? y : UnsafePointer(main.output), y: y, dy: dy, dx: sumGrad.pointer, n: n, overwrite)
            dz = UnsafePointer(sumGrad.pointer)
        }
        // Gradient w.r.t. the main path's input: the block input, or the pre-chain output.
        let mainIn = pre.map { UnsafePointer($0.output) } ?? x
        let dMainIn: UnsafeMutablePointer<T>? = pre == nil ? dx : preGrad.pointer
        if let pre { Workers.zero(preGrad.pointer, count: n * pre.outShape.count) }
        main.backward(x: mainIn, dy: dz, dx: dMainIn, n: n, ctx)
        let dShortcut = shortcutFromPre ? dMainIn : dx
        if let projection {
            projection.backward(x: shortcutSource(x), dy: dz, dx: dShortcut, n: n, ctx)
        } else if let dShortcut {
            optionA(dz, dShortcut, n: n, adjoint: true)
        }
        if let pre { pre.backward(x: x, dy: preGrad.pointer, dx: dx, n: n, ctx) }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        let count = n * outShape.count
        let mainIn = pre.map { UnsafePointer($0.output) } ?? x
        let tMainIn = pre.map { UnsafePointer($0.jvp(x: x, tx: tx, n: n, ctx)) } ?? tx
        let tz = post == nil ? ty : sumTangent.pointer
        tz.update(from: main.jvp(x: mainIn, tx: tMainIn, n: n, ctx), count: count)
        let (s, ts) = shortcutFromPre ? (mainIn, tMainIn) : (x, tx)
        if let projection {
            let p = projection.jvp(x: s, tx: ts, n: n, ctx)
            Workers.split(count) { r in for i in r { tz[i] += p[i] } }
        } else if let ts {
            optionA(ts, tz, n: n, adjoint: false)
        }
        post?.jvp(x: main.output, y: y, tx: tz, ty: ty, n: n, ctx)
    }

    /// `jvp`'s structure with both tangents: the chains' `jvp2`, the shortcut (linear) applied to
    /// both tangents, the post-activation's `jvp2`. Leaves the first tangents where `jvp` leaves them.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        let count = n * outShape.count
        let mainIn = pre.map { UnsafePointer($0.output) } ?? x
        var tMainIn = tx, ttMainIn = ttx
        if let pre {
            let (t, tt) = pre.jvp2(x: x, tx: tx, ttx: ttx, n: n, ctx)
            (tMainIn, ttMainIn) = (UnsafePointer(t), UnsafePointer(tt))
        }
        let tz = post == nil ? ty : sumTangent.pointer, ttz = post == nil ? tty : sumSecondTangent.pointer
        let (mt, mtt) = main.jvp2(x: mainIn, tx: tMainIn, ttx: ttMainIn, n: n, ctx)
        tz.update(from: mt, count: count)
        ttz.update(from: mtt, count: count)
        let (s, ts, tts) = shortcutFromPre ? (mainIn, tMainIn, ttMainIn) : (x, tx, ttx)
        if let projection {
            let (p, pp) = projection.jvp2(x: s, tx: ts, ttx: tts, n: n, ctx)
            Workers.split(count) { r in for i in r { tz[i] += p[i]; ttz[i] += pp[i] } }
        } else {
            if let ts { optionA(ts, tz, n: n, adjoint: false) }
            if let tts { optionA(tts, ttz, n: n, adjoint: false) }
        }
        if let post {
            post.jvp2(x: main.output, y: y, tx: tz, ttx: ttz, ty: ty, tty: tty, n: n, ctx)
        }
    }

    /// `backward`'s structure with every piece replaced by its tangent: the inner chains'
    /// `backwardTangent` read the gradients `backward` left in them (`sumGrad`, `preGrad`, the chains'
    /// own buffers) and the tangents `jvp` left (`sumTangent`, the chains' outputs).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        var dz = dy, tdz = tdy
        if let post {
            Workers.zero(sumTangentGrad.pointer, count: n * outShape.count)
            post.backwardTangent(x: main.output, tx: sumTangent.pointer, y: y, dy: dy, tdy: tdy, tdx: sumTangentGrad.pointer,
                                 n: n, ctx)
            dz = UnsafePointer(sumGrad.pointer)
            tdz = UnsafePointer(sumTangentGrad.pointer)
        }
        let mainIn = pre.map { UnsafePointer($0.output) } ?? x
        let tMainIn = pre.map { UnsafePointer($0.outputTangent) } ?? tx
        let tdMainIn: UnsafeMutablePointer<T>? = pre == nil ? tdx : preTangentGrad.pointer
        if let pre { Workers.zero(preTangentGrad.pointer, count: n * pre.outShape.count) }
        main.backwardTangent(x: mainIn, tx: tMainIn, dy: dz, tdy: tdz, tdx: tdMainIn, n: n, ctx)
        let tdShortcut = shortcutFromPre ? tdMainIn : tdx
        if let projection {
            let (s, ts) = shortcutFromPre ? (mainIn, tMainIn) : (x, tx)
            projection.backwardTangent(x: s, tx: ts, dy: dz, tdy: tdz, tdx: tdShortcut, n: n, ctx)
        } else if let tdShortcut {
            optionA(tdz, tdShortcut, n: n, adjoint: true)
        }
        if let pre { pre.backwardTangent(x: x, tx: tx, dy: preGrad.pointer, tdy: preTangentGrad.pointer, tdx: tdx, n: n, ctx) }
    }

    public var forwardFlops: Int {
        (pre?.forwardFlops ?? 0) + main.forwardFlops + (projection?.forwardFlops ?? 0) + outShape.count
    }
    public func backwardFlops(inputGradient: Bool) -> Int {
        (pre?.backwardFlops(inputGradient: inputGradient) ?? 0) + main.backwardFlops(inputGradient: true)
            + (projection?.backwardFlops(inputGradient: true) ?? 0)
    }
    public var reluLayers: [ReLU<T>] {
        (pre?.reluLayers ?? []) + main.reluLayers + (post.map { [$0] } ?? [])
    }
}
