/// 2-D convolution, `y[co, n, oy, ox] = b[co] + sum_{ci, ky, kx} W[co, ci, ky, kx] x[ci, n, oy*s-p+ky, ox*s-p+kx]`
/// with zero padding `p` and stride `s`. Weight `[Cout, Cin, KH, KW]` (PyTorch layout), bias `[Cout]`.
///
/// Two fast paths, both tested against the direct-loop oracle `naiveConv2D`:
/// - 3x3, stride 1, padding 1 (all of SimpleCNN's convolutions, all but two of ResNet-20's):
///   Winograd F(2x2, 3x3) (`Winograd.swift`), 16 GEMMs over transformed tiles per chunk of examples,
///   2.25x fewer multiply-adds than the direct convolution and 4 instead of 9 values per input pixel.
///   Measured (`ntkscape bench --conv im2col|winograd`, one run, 2 threads): ResNet-20 training
///   263 -> 380 img/s, evaluation 796 -> 1156; SimpleCNN training 418 -> 611, evaluation 1234 -> 1811.
///   On planes at least 13 wide the forward and input-gradient convolutions use F(4x4, 3x3)
///   (`Winograd4.swift`, 36 GEMMs, 4x fewer multiply-adds, about ten times a direct sum's Float
///   rounding); the weight gradient and the second-order passes stay F(2x2, 3x3)
///   (docs/performance.md, "Winograd F(4x4, 3x3)").
/// - otherwise: im2col into `col[K, n*OH*OW]` (`K = Cin*KH*KW`, row order `(ci, ky, kx)` = the
///   weight's column order) and one GEMM per chunk of examples; the CNHW layout makes the GEMM
///   output land in place.
public final class Conv2D<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape, outShape: Shape
    public let kernel: Int, stride: Int, padding: Int
    public let weightOffset: Int
    public let biasOffset: Int?
    /// Upper bound on the im2col columns of one chunk (elements): 1 MiB of Float, so a chunk's columns
    /// stay in L2 between im2col and the GEMM that packs them. Measured (ResNet-20, 1 thread):
    /// 2^23 (32 MiB, DRAM-bound) -> 2^18 raised train ratio 0.22-0.24 -> 0.30-0.31, eval 0.22-0.26 -> 0.39-0.43.
    /// Rechecked after the AVX2 build (paired single-thread runs on the two cores): 2^17 ties 2^18 for
    /// ResNet-20 training but is 16-30% slower for its evaluation; 2^16 and 2^19 are slower. Winograd
    /// chunks have their own budget (`winogradChunkElements`); the fused second-order passes
    /// (`winogradJVP2`, `winogradBackwardTangent`) still use this one.
    static var chunkElements: Int { 1 << 18 }

    /// How the convolution is computed. Both compute the same function (up to rounding); `.im2col`
    /// can be chosen for any layer, `.winograd` for 3x3 stride-1 padding-1 ones (tests compare them).
    public enum Algorithm: String, Sendable {
        case im2col, winograd
        /// Winograd for calls with at least `winogradMinimumPixels` output pixels (`n * OH * OW`),
        /// else im2col: the filter transforms cost `O(Cin Cout)` per call, which a call on one
        /// small image (the NTK's per-example Jacobian rows) does not repay.
        case automatic
    }
    /// `.automatic` for 3x3 stride-1 padding-1 layers (all of SimpleCNN's convolutions, all but two of
    /// ResNet-20's) unless built with `convolutions: .im2col`, else `.im2col`.
    public var algorithm: Algorithm {
        didSet { precondition(algorithm == .im2col || supportsWinograd, "Winograd needs a 3x3 stride-1 padding-1 convolution") }
    }
    private var supportsWinograd: Bool { kernel == 3 && stride == 1 && padding == 1 }
    /// Measured with `ntkscape bench ntk` (Jacobian rows at batch 1, same machine state): SimpleCNN's
    /// m = 500 Jacobian took 17.3 s with Winograd on every call, 12.7 s with this threshold (its 8x8
    /// and 16x16 layers then use im2col).
    static var winogradMinimumPixels: Int { 512 }
    private func usesWinograd(_ n: Int) -> Bool {
        algorithm == .winograd || (algorithm == .automatic && n * outShape.plane >= Self.winogradMinimumPixels)
    }

    public init(_ name: String, in inShape: Shape, out cout: Int, kernel: Int, stride: Int = 1,
                padding: Int, bias: Bool, layout: ParameterLayout, convolutions: ConvolutionChoice = .winograd) {
        self.inShape = inShape
        self.kernel = kernel; self.stride = stride; self.padding = padding
        let oh = (inShape.h + 2 * padding - kernel) / stride + 1
        let ow = (inShape.w + 2 * padding - kernel) / stride + 1
        precondition(oh > 0 && ow > 0, "\(name): input \(inShape) too small for kernel \(kernel)")
        outShape = Shape(cout, oh, ow)
        weightOffset = layout.addParameter("\(name).weight", [cout, inShape.c, kernel, kernel])
        biasOffset = bias ? layout.addParameter("\(name).bias", [cout]) : nil
        algorithm = kernel == 3 && stride == 1 && padding == 1 && convolutions == .winograd ? .automatic : .im2col
    }

    var k: Int { inShape.c * kernel * kernel }

    /// Examples per im2col chunk.
    func chunk(_ n: Int) -> Int { max(1, min(n, Self.chunkElements / (k * outShape.plane))) }

    /// Per-worker im2col slots, then per-chunk weight-gradient partials (grown on demand, never shrunk).
    private var scratch = Buffer<T>(count: 0)
    /// The Winograd transforms of the weights last used forward and (adjoint) backward, reused while
    /// the weights are unchanged (evaluation; the shards of one training step).
    private let forwardFilters = WinogradFilterCache<T>(), adjointFilters = WinogradFilterCache<T>()

    /// `Workers.count` slots of `slot` elements followed by `partials` elements.
    private func scratch(slot: Int, partials: Int) -> UnsafeMutablePointer<T> {
        let need = Workers.count * slot + partials
        if scratch.count < need { scratch = Buffer(count: need) }
        return scratch.pointer
    }

    public var forwardFlops: Int { 2 * k * outShape.count }
    public func backwardFlops(inputGradient: Bool) -> Int { forwardFlops * (inputGradient ? 2 : 1) }

    private var geometry: ConvGeometry {
        ConvGeometry(cin: inShape.c, h: inShape.h, w: inShape.w, oh: outShape.h, ow: outShape.w,
                     kernel: kernel, stride: stride, padding: padding)
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        convolve(x, weights: ctx.params + weightOffset, into: y, bias: biasOffset.map { ctx.params + $0 }, n: n)
    }

    /// `y = conv(x, W) + b` (`bias` nil: no bias; `accumulate`: `y += conv(x, W)`) in chunks of
    /// examples (`chunk(n)`): whole chunks per worker when there are several (im2col into the
    /// worker's own L2-resident slot and a single-threaded GEMM, so each chunk's arithmetic is the
    /// same whichever worker runs it), else one chunk on the calling thread with the GEMM split over
    /// the workers. A bias is written first and the GEMMs accumulate onto it (`beta = 1`): one pass
    /// over `y` instead of OpenBLAS's zeroing pass for `beta = 0` plus a bias pass, with the same
    /// result (`fl(acc + b)` either way).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func convolve(_ x: UnsafePointer<T>, weights: UnsafePointer<T>, into y: UnsafeMutablePointer<T>,
                          bias: UnsafePointer<T>?, alpha: T = 1, accumulate: Bool = false, n: Int) {
        if usesWinograd(n) {
            winograd(x, weights: weights, into: y, bias: bias, alpha: alpha, store: accumulate ? .accumulate : .write, n: n)
            return
        }
        let g = geometry, plane = outShape.plane, ld = n * plane, step = chunk(n), k = k, cout = outShape.c
        let chunks = (n + step - 1) / step, slot = k * step * plane, single = chunks < 2
        if let bias { broadcastBias(bias, y, channels: cout, stride: ld) }
        let beta: T = bias != nil || accumulate ? 1 : 0, gemm = single ? T.gemm : T.gemmSingleThreaded
        let slots = scratch(slot: slot, partials: 0)
        Workers.splitIndexed(chunks, cost: slot) { t, range in
            let col = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0)
                im2col(x, g, batch: n, first: n0, count: nc, col: col, parallel: single)
                gemm(false, false, cout, nc * plane, k, alpha, weights, k, col, nc * plane, beta, y + n0 * plane, ld)
            }
        }
    }

    /// Backward in chunks of examples (`chunk(n)`), whole chunks per worker when there are several:
    /// each chunk's weight gradient goes to its own partial, summed afterwards in chunk order (so
    /// the result does not depend on the worker count), and its input gradient to its own examples
    /// of `dx`. A single chunk runs on the calling thread with the GEMMs split over the workers.
    ///
    /// The partial is formed transposed, `dW^T[K, Cout] = col[K, P] dy[Cout, P]^T`: the same
    /// arithmetic, but OpenBLAS runs this shape 1.1-1.5x faster than `dy col^T` for the narrow
    /// `Cout` of these networks (measured single-threaded, SkylakeX kernels: 16x144x1024 at 67 vs 46
    /// GFLOP/s, 32x288x768 at 93 vs 62); the transposition is folded into the chunk sum.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        let grads = ctx.parameterGradients
        backward(x: x, weights: ctx.params + weightOffset, dy: dy, dx: dx, overwrite: ctx.overwriteInputGradient,
                 weightGradient: grads ? ctx.grads + weightOffset : nil,
                 biasGradient: grads ? biasOffset.map { ctx.grads + $0 } : nil, n: n)
    }

    /// `d(dW) = tdy x^T + dy tx^T`, `d(db) = sum tdy`, `d(dx) = W^T tdy + V^T dy` (`V` the weight
    /// tangent): two backward passes, the second with the tangent weights and no bias term.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        if let v = ctx.tangent, let tx, let tdx, usesWinograd(n) {
            // Every term present (a layer inside the network along a weight tangent): one fused pass.
            winogradBackwardTangent(x: x, tx: tx, weights: ctx.params + weightOffset, tangent: v + weightOffset, dy: dy, tdy: tdy,
                                    tdx: tdx, weightGradient: ctx.grads + weightOffset, n: n)
            if let b = biasOffset { accumulateChannelSums(tdy, into: ctx.grads + b, channels: outShape.c, stride: n * outShape.plane) }
            return
        }
        backward(x: x, weights: ctx.params + weightOffset, dy: tdy, dx: tdx, overwrite: false,
                 weightGradient: ctx.grads + weightOffset, biasGradient: biasOffset.map { ctx.grads + $0 }, n: n)
        guard let v = ctx.tangent, tx != nil || tdx != nil else { return }
        // Without an input tangent only `V^T dy` is needed; `x` is then not read.
        backward(x: tx ?? x, weights: v + weightOffset, dy: dy, dx: tdx, overwrite: false,
                 weightGradient: tx == nil ? nil : ctx.grads + weightOffset, biasGradient: nil, n: n)
    }

    /// Adds `dy x^T` into `weightGradient`, `sum dy` into `biasGradient` (each when non-nil) and
    /// `W^T dy` into `dx` (written instead with `overwrite`), `W` = `weights`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func backward(x: UnsafePointer<T>, weights w: UnsafePointer<T>, dy: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?,
                          overwrite: Bool, weightGradient dw: UnsafeMutablePointer<T>?, biasGradient: UnsafeMutablePointer<T>?,
                          n: Int) {
        if usesWinograd(n) {
            winogradBackward(x: x, weights: w, dy: dy, dx: dx, overwrite: overwrite, weightGradient: dw, n: n)
        } else {
            im2colBackward(x: x, weights: w, dy: dy, dx: dx, overwrite: overwrite, weightGradient: dw, n: n)
        }
        if let biasGradient { accumulateChannelSums(dy, into: biasGradient, channels: outShape.c, stride: n * outShape.plane) }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func im2colBackward(x: UnsafePointer<T>, weights w: UnsafePointer<T>, dy: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?,
                                overwrite: Bool, weightGradient dw: UnsafeMutablePointer<T>?, n: Int) {
        guard dw != nil || dx != nil else { return }
        let g = geometry, plane = outShape.plane, ld = n * plane, step = chunk(n), k = k, cout = outShape.c
        let chunks = (n + step - 1) / step, slot = k * step * plane, size = cout * k
        let single = chunks < 2
        let gemm = single ? T.gemm : T.gemmSingleThreaded
        let slots = scratch(slot: slot, partials: chunks * size)
        let partials = slots + Workers.count * slot
        Workers.splitIndexed(chunks, cost: slot) { t, range in
            let col = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0)
                if dw != nil {
                    im2col(x, g, batch: n, first: n0, count: nc, col: col, parallel: single)
                    gemm(false, true, k, cout, nc * plane, 1, col, nc * plane, dy + n0 * plane, ld, 0,
                         partials + c * size, cout)
                }
                if let dx {
                    // dcol[K, nc*P] = W^T dy, then scatter(-add) back to the input positions.
                    gemm(true, false, k, nc * plane, cout, 1, w, k, dy + n0 * plane, ld, 0, col, nc * plane)
                    col2im(col, g, batch: n, first: n0, count: nc, dx: dx, overwrite: overwrite, parallel: single)
                }
            }
        }
        // Sum the partials into the first, then add it transposed into dW.
        guard let dw else { return }
        sumPartials(partials, size: size, chunks: chunks)
        Workers.split(k, cost: cout) { rows in
            for r in rows { for co in 0..<cout { dw[co * k + r] += partials[r * cout + co] } }
        }
    }

    // MARK: Winograd F(2x2, 3x3)

    /// Examples per F(2x2, 3x3) chunk (the weight gradient, the second-order passes; `winogradChunk`
    /// below for either algorithm).
    public func winogradChunk(_ n: Int) -> Int { winogradChunk(Winograd.self, n, inputs: inShape.c, outputs: outShape.c) }
    /// Budget of a Winograd chunk's transformed input and output (elements): 2^17 (512 KiB of
    /// Float, half of L2 here), so `V` and `M` stay in L2 between the transforms and the component
    /// products. Measured with the products on `SmallGEMM` (`ntkscape bench train --threads 1
    /// --batch 16 --model resnet20 --repeats 40`, runs alternating): 2^16 177-184 img/s, 2^17
    /// 198, 2^18 183-191, 2^19 163-164; evaluation (2 threads, batch 1000): 2^17 0.87-0.90 of the
    /// same-run sgemm, 2^18 0.80-0.82; training at batch 128 on 2 threads: the same (0.81).
    static var winogradChunkElements: Int { 1 << 17 }

    private var tiling: WinogradTiling { WinogradTiling(h: inShape.h, w: inShape.w) }

    /// A worker's Winograd scratch for chunks of `step` examples: the transformed input and output.
    private func winogradSlot(_ step: Int) -> Int {
        let ct = step * tiling.tiles
        return WinogradTiling.components * (Winograd.componentStride(channels: inShape.c, tiles: ct)
                                            + Winograd.componentStride(channels: outShape.c, tiles: ct))
    }

    /// Whether the forward and input-gradient convolutions use F(4x4, 3x3) (`Winograd4`): planes at
    /// least 13 wide (4 or more tiles per tile row, so the transforms run on vectors of 4 or 8
    /// tiles). Narrower planes (ResNet-20's 8x8 stage) keep F(2x2, 3x3), whose 4 tiles per row fill
    /// a vector. (F(4x4, 3x3) on 8x8 planes with the plane's four tiles gathered into one vector
    /// was measured no faster: ResNet-20 evaluation, 1 thread, 0.91-0.93 against 0.91-0.95.)
    var usesWinograd4: Bool { Winograd4.Tiling(h: inShape.h, w: inShape.w).tilesW >= 4 }

    /// Examples per chunk of `A`'s convolution from `inputs` to `outputs` channels: the chunk's
    /// transformed input and output (`components (inputs + outputs)` values per tile) stay within
    /// `winogradChunkElements`, for the same reason as im2col's columns.
    func winogradChunk<A: WinogradAlgorithm>(_: A.Type, _ n: Int, inputs: Int, outputs: Int) -> Int {
        let perExample = A.components * (inputs + outputs) * A.Tiling(h: inShape.h, w: inShape.w).tiles
        return max(1, min(n, Self.winogradChunkElements / perExample))
    }

    /// `y (=|+=) conv(x, W) (+ b)` by Winograd (`usesWinograd4`: F(4x4, 3x3), else F(2x2, 3x3)).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func winograd(_ x: UnsafePointer<T>, weights: UnsafePointer<T>, into y: UnsafeMutablePointer<T>,
                          bias: UnsafePointer<T>?, alpha: T = 1, store: Winograd.Store, n: Int) {
        func run<A: WinogradAlgorithm>(_ a: A.Type) {
            let u = forwardFilters.transformed(a, weights, outputs: outShape.c, inputs: inShape.c, adjoint: false)
            winogradConvolution(a, x, filters: u, inputs: inShape.c, outputs: outShape.c, into: y, bias: bias,
                                alpha: alpha, store: store, n: n)
        }
        if usesWinograd4 { run(Winograd4.self) } else { run(Winograd.self) }
    }

    /// `y (=|+=) alpha conv(x, U) (+ b)` by `A` for transformed filters `U` `[components][outputs][inputs]`
    /// (`A.transformWeights`) on planes of this layer's size: the forward convolution, and with the
    /// adjoint filters from `outputs` to `inputs` channels, the input gradient. Chunks of examples as
    /// in `convolve`: transform the chunk's input into the worker's slot, single-threaded component
    /// GEMMs, transform back into `y`.
    private func winogradConvolution<A: WinogradAlgorithm>(_: A.Type, _ x: UnsafePointer<T>, filters u: UnsafePointer<T>,
                                                           inputs: Int, outputs: Int, into y: UnsafeMutablePointer<T>,
                                                           bias: UnsafePointer<T>?, alpha: T, store: Winograd.Store, n: Int) {
        let g = A.Tiling(h: inShape.h, w: inShape.w), step = winogradChunk(A.self, n, inputs: inputs, outputs: outputs)
        let chunks = (n + step - 1) / step, single = chunks < 2
        func strides(_ tiles: Int) -> (v: Int, m: Int) {
            (A.componentStride(channels: inputs, tiles: tiles), A.componentStride(channels: outputs, tiles: tiles))
        }
        let full = strides(step * g.tiles), slot = A.components * (full.v + full.m)
        let slots = scratch(slot: slot, partials: 0)
        Workers.splitIndexed(chunks, cost: slot) { t, range in
            let v = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0), ct = nc * g.tiles, (sv, sm) = strides(ct)
                let m = v + A.components * sv
                A.transformInput(x, channels: inputs, batch: n, first: n0, count: nc, g, into: v, parallel: single)
                componentProducts(A.components, transB: false, m: outputs, n: ct, k: inputs, alpha: alpha, a: u, b: v, c: m,
                                  strides: (outputs * inputs, sv, sm), parallel: single)
                A.transformOutput(m, channels: outputs, batch: n, first: n0, count: nc, g, into: y, bias: bias,
                                  store: store, parallel: single)
            }
        }
    }

    /// Backward by Winograd: the weight gradient by F(2x2, 3x3), per chunk the partial
    /// `dU[ξ] = dM[ξ] V[ξ]^T` (`dM` the transformed output gradient, `V` the transformed input;
    /// summed in chunk order and mapped back by `G^T dU G`); then the input gradient as the
    /// adjoint-filter convolution of `dy` (`winogradConvolution`, F(4x4, 3x3) where `usesWinograd4`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func winogradBackward(x: UnsafePointer<T>, weights: UnsafePointer<T>, dy: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?,
                                  overwrite: Bool, weightGradient dw: UnsafeMutablePointer<T>?, n: Int) {
        if let dw {
            let g = tiling, step = winogradChunk(n), chunks = (n + step - 1) / step, single = chunks < 2
            let cin = inShape.c, cout = outShape.c, components = WinogradTiling.components
            let size = components * cout * cin, slot = winogradSlot(step)
            // On one worker the chunks' weight-gradient terms are added into one partial as they come
            // (`P = p0`, then `P += p_c` in chunk order: the same additions, in the same order, as
            // summing per-chunk partials afterwards, so the same bits), saving the partials' memory
            // traffic; with several workers each chunk keeps its own partial.
            let direct = Workers.count == 1 || chunks == 1
            let slots = scratch(slot: slot, partials: (direct ? 1 : chunks) * size)
            let partials = slots + Workers.count * slot
            Workers.splitIndexed(chunks, cost: slot) { t, range in
                let v = slots + t * slot
                for c in range {
                    let n0 = c * step, nc = min(step, n - n0), ct = nc * g.tiles
                    let sv = Winograd.componentStride(channels: cin, tiles: ct), sm = Winograd.componentStride(channels: cout, tiles: ct)
                    let dm = v + components * sv
                    Winograd.transformInput(x, channels: cin, batch: n, first: n0, count: nc, g, into: v, parallel: single)
                    Winograd.transformOutputGradient(dy, channels: cout, batch: n, first: n0, count: nc, g, into: dm, parallel: single)
                    componentProducts(components, transB: true, m: cout, n: cin, k: ct, a: dm, b: v, beta: direct && c > 0 ? 1 : 0,
                                      c: partials + (direct ? 0 : c) * size, strides: (sm, sv, cout * cin), parallel: single)
                }
            }
            if !direct { sumPartials(partials, size: size, chunks: chunks) }
            Winograd.accumulateWeightGradient(partials, outputs: cout, inputs: cin, into: dw)
        }
        if let dx {
            // The input gradient is the convolution of dy with the adjoint (transposed, rotated) filter.
            func run<A: WinogradAlgorithm>(_ a: A.Type) {
                let u = adjointFilters.transformed(a, weights, outputs: inShape.c, inputs: outShape.c, adjoint: true)
                winogradConvolution(a, dy, filters: u, inputs: outShape.c, outputs: inShape.c, into: dx, bias: nil, alpha: 1,
                                    store: overwrite ? .write : .accumulate, n: n)
            }
            if usesWinograd4 { run(Winograd4.self) } else { run(Winograd.self) }
        }
    }

    /// `backwardTangent` by Winograd with every term present, fused: per chunk the weight-gradient
    /// partial `dU = T'(tdy) T(x)^T + T'(dy) T(tx)^T` (one partial, one reduction and one transform
    /// back for both terms) and the input-gradient tangent `W^T tdy + V^T dy` as the adjoint-filter
    /// convolutions of `tdy` and `dy` summed before one output transform (accumulated into `tdx`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func winogradBackwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>, weights w: UnsafePointer<T>,
                                         tangent v: UnsafePointer<T>, dy: UnsafePointer<T>, tdy: UnsafePointer<T>,
                                         tdx: UnsafeMutablePointer<T>, weightGradient dw: UnsafeMutablePointer<T>, n: Int) {
        let g = tiling, cin = inShape.c, cout = outShape.c, components = WinogradTiling.components
        let perExample = components * 2 * (cin + cout) * g.tiles
        let step = max(1, min(n, Self.chunkElements / perExample)), chunks = (n + step - 1) / step, single = chunks < 2
        let ctMax = step * g.tiles
        let slot = 2 * components * (Winograd.componentStride(channels: cin, tiles: ctMax) + Winograd.componentStride(channels: cout, tiles: ctMax))
        let size = components * cout * cin
        let slots = scratch(slot: slot, partials: (chunks + 2) * size)
        let partials = slots + Workers.count * slot, adjointW = partials + chunks * size, adjointV = adjointW + size
        Winograd.transformWeights(w, outputs: cin, inputs: cout, adjoint: true, into: adjointW)
        Winograd.transformWeights(v, outputs: cin, inputs: cout, adjoint: true, into: adjointV)
        Workers.splitIndexed(chunks, cost: slot) { t, range in
            let base = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0), ct = nc * g.tiles
                let sv = Winograd.componentStride(channels: cin, tiles: ct), sm = Winograd.componentStride(channels: cout, tiles: ct)
                let vx = base, vt = vx + components * sv, mt = vt + components * sv, md = mt + components * sm
                let partial = partials + c * size
                Winograd.transformInput(x, channels: cin, batch: n, first: n0, count: nc, g, into: vx, parallel: single)
                Winograd.transformInput(tx, channels: cin, batch: n, first: n0, count: nc, g, into: vt, parallel: single)
                Winograd.transformOutputGradient(tdy, channels: cout, batch: n, first: n0, count: nc, g, into: mt, parallel: single)
                Winograd.transformOutputGradient(dy, channels: cout, batch: n, first: n0, count: nc, g, into: md, parallel: single)
                componentProducts(transB: true, m: cout, n: cin, k: ct, a: mt, b: vx, c: partial,
                                  strides: (sm, sv, cout * cin), parallel: single)
                componentProducts(transB: true, m: cout, n: cin, k: ct, a: md, b: vt, beta: 1, c: partial,
                                  strides: (sm, sv, cout * cin), parallel: single)
                // The transformed tdy and dy replace T'(tdy), T'(dy); the product replaces T(x).
                Winograd.transformInput(tdy, channels: cout, batch: n, first: n0, count: nc, g, into: mt, parallel: single)
                Winograd.transformInput(dy, channels: cout, batch: n, first: n0, count: nc, g, into: md, parallel: single)
                componentProducts(transB: false, m: cin, n: ct, k: cout, a: adjointW, b: mt, c: vx,
                                  strides: (cin * cout, sm, sv), parallel: single)
                componentProducts(transB: false, m: cin, n: ct, k: cout, a: adjointV, b: md, beta: 1, c: vx,
                                  strides: (cin * cout, sm, sv), parallel: single)
                Winograd.transformOutput(vx, channels: cin, batch: n, first: n0, count: nc, g, into: tdx, bias: nil,
                                         store: .accumulate, parallel: single)
            }
        }
        sumPartials(partials, size: size, chunks: chunks)
        Winograd.accumulateWeightGradient(partials, outputs: cout, inputs: cin, into: dw)
    }

    /// The `components` (16, or 36 for F(4x4, 3x3)) products `C[ξ] = alpha A[ξ] op(B[ξ]) (+ C[ξ] with beta = 1)` (`A[ξ]` `m x k`, `B[ξ]`
    /// `k x n`, or `n x k` with `transB`), each on one thread (`SmallGEMM`, whose result for an
    /// element does not depend on the shape around it), split over the workers when `parallel`.
    /// Measured against OpenBLAS's `sgemm` for these products (paired runs, same window): see
    /// `docs/performance.md`.
    private func componentProducts(_ components: Int = WinogradTiling.components, transB: Bool, m: Int, n: Int, k: Int, alpha: T = 1, a: UnsafePointer<T>, b: UnsafePointer<T>,
                                   beta: T = 0, c: UnsafeMutablePointer<T>, strides: (a: Int, b: Int, c: Int), parallel: Bool) {
        precondition(beta == 0 || beta == 1, "componentProducts: beta \(beta)")
        Workers.split(components, cost: m * n * k, parallel: parallel) { r in
            for q in r {
                if transB {
                    SmallGEMM.nt(m: m, n: n, k: k, alpha: alpha, a: a + q * strides.a, b: b + q * strides.b,
                                 accumulate: beta == 1, c: c + q * strides.c)
                } else {
                    SmallGEMM.nn(m: m, n: n, k: k, alpha: alpha, a: a + q * strides.a, b: b + q * strides.b,
                                 accumulate: beta == 1, c: c + q * strides.c)
                }
            }
        }
    }

    /// Sums `chunks` consecutive partials of `size` elements into the first, in chunk order
    /// (contiguous, vectorised; the result does not depend on the worker count).
    private func sumPartials(_ partials: UnsafeMutablePointer<T>, size: Int, chunks: Int) {
        Workers.split(size, cost: chunks) { r in
            for c in 1..<max(1, chunks) {
                let p = partials + c * size
                for i in r { partials[i] += p[i] }
            }
        }
    }

    /// Stride-1 "same" convolutions write their input gradient (the centre tap covers every input
    /// position once); others need it zeroed.
    public var overwritesInputGradient: Bool { geometry.isSameSizeStride1 }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        // d(conv(x, W) + b) = conv(x, dW) + conv(dx, W) + db
        if let t = ctx.tangent {
            convolve(x, weights: t + weightOffset, into: ty, bias: biasOffset.map { t + $0 }, n: n)
        }
        if let tx {
            convolve(tx, weights: ctx.params + weightOffset, into: ty, bias: nil, accumulate: ctx.tangent != nil, n: n)
        } else if ctx.tangent == nil {
            ty.update(repeating: 0, count: n * outShape.count)
        }
    }

    /// `ty = conv(x, V) + b_V + conv(tx, W)` (what `jvp` writes, up to rounding) and
    /// `tty = conv(ttx, W) + 2 conv(tx, V)`: the convolution is bilinear in `(W, x)` and affine in the
    /// bias, so along `W + εV` the second derivative has no `W''` and no bias term. With both a weight
    /// and an input tangent the pass is fused: each input (`x`, `tx`, `ttx`) is transformed once
    /// (Winograd) or unfolded once (im2col, every other geometry: same-size, strided, 1x1), `tx`'s
    /// for both of its products, and each output is formed from its two products at once (Winograd:
    /// summed before the output transform).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        guard let v = ctx.tangent, let tx else {
            // No `conv(tx, V)` term: the two tangents are independent convolutions.
            jvp(x: x, y: y, tx: tx, ty: ty, n: n, ctx)
            if let ttx {
                convolve(ttx, weights: ctx.params + weightOffset, into: tty, bias: nil, n: n)
            } else {
                tty.update(repeating: 0, count: n * outShape.count)
            }
            return
        }
        let w = ctx.params + weightOffset, tangent = v + weightOffset, bias = biasOffset.map { v + $0 }
        if usesWinograd(n) {
            winogradJVP2(x: x, tx: tx, ttx: ttx, weights: w, tangent: tangent, bias: bias, ty: ty, tty: tty, n: n)
        } else {
            im2colJVP2(x: x, tx: tx, ttx: ttx, weights: w, tangent: tangent, bias: bias, ty: ty, tty: tty, n: n)
        }
    }

    /// `jvp2` by im2col + GEMM, chunks of examples as in `convolve` (chunks of `chunk(n)` examples,
    /// whole chunks per worker when there are several): per chunk `col(x)` for `V`, `col(tx)` for `W`
    /// and `2V`, `col(ttx)` for `W`, each unfolded once into the worker's slot.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func im2colJVP2(x: UnsafePointer<T>, tx: UnsafePointer<T>, ttx: UnsafePointer<T>?, weights w: UnsafePointer<T>,
                            tangent v: UnsafePointer<T>, bias: UnsafePointer<T>?, ty: UnsafeMutablePointer<T>,
                            tty: UnsafeMutablePointer<T>, n: Int) {
        let g = geometry, plane = outShape.plane, ld = n * plane, step = chunk(n), k = k, cout = outShape.c
        let chunks = (n + step - 1) / step, slot = k * step * plane, single = chunks < 2
        if let bias { broadcastBias(bias, ty, channels: cout, stride: ld) }
        let beta: T = bias != nil ? 1 : 0, gemm = single ? T.gemm : T.gemmSingleThreaded
        let slots = scratch(slot: slot, partials: 0)
        Workers.splitIndexed(chunks, cost: 4 * slot) { t, range in
            let col = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0), cols = nc * plane
                im2col(x, g, batch: n, first: n0, count: nc, col: col, parallel: single)
                gemm(false, false, cout, cols, k, 1, v, k, col, cols, beta, ty + n0 * plane, ld)
                im2col(tx, g, batch: n, first: n0, count: nc, col: col, parallel: single)
                gemm(false, false, cout, cols, k, 1, w, k, col, cols, 1, ty + n0 * plane, ld)
                gemm(false, false, cout, cols, k, 2, v, k, col, cols, 0, tty + n0 * plane, ld)
                if let ttx {
                    im2col(ttx, g, batch: n, first: n0, count: nc, col: col, parallel: single)
                    gemm(false, false, cout, cols, k, 1, w, k, col, cols, 1, tty + n0 * plane, ld)
                }
            }
        }
    }

    /// `jvp2` by Winograd F(2x2, 3x3), chunks as in `winograd` (sized for two transformed inputs
    /// and one output per example): per chunk `T(tx)` and `T(x)`, `M = U_V T(x) + U_W T(tx)` into `ty`
    /// (with the bias tangent), then `T(ttx)` over `T(x)`, `M = 2 U_V T(tx) + U_W T(ttx)` into `tty`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func winogradJVP2(x: UnsafePointer<T>, tx: UnsafePointer<T>, ttx: UnsafePointer<T>?, weights w: UnsafePointer<T>,
                              tangent v: UnsafePointer<T>, bias: UnsafePointer<T>?, ty: UnsafeMutablePointer<T>,
                              tty: UnsafeMutablePointer<T>, n: Int) {
        let g = tiling, cin = inShape.c, cout = outShape.c, components = WinogradTiling.components
        let perExample = components * (2 * cin + cout) * g.tiles
        let step = max(1, min(n, Self.chunkElements / perExample)), chunks = (n + step - 1) / step, single = chunks < 2
        let ctMax = step * g.tiles, svMax = Winograd.componentStride(channels: cin, tiles: ctMax)
        let slot = components * (2 * svMax + Winograd.componentStride(channels: cout, tiles: ctMax))
        let size = components * cout * cin
        let slots = scratch(slot: slot, partials: 2 * size)
        let uw = slots + Workers.count * slot, uv = uw + size
        Winograd.transformWeights(w, outputs: cout, inputs: cin, adjoint: false, into: uw)
        Winograd.transformWeights(v, outputs: cout, inputs: cin, adjoint: false, into: uv)
        Workers.splitIndexed(chunks, cost: 4 * slot) { t, range in
            let base = slots + t * slot
            for c in range {
                let n0 = c * step, nc = min(step, n - n0), ct = nc * g.tiles
                let sv = Winograd.componentStride(channels: cin, tiles: ct), sm = Winograd.componentStride(channels: cout, tiles: ct)
                let vt = base, vx = base + components * sv, m = vx + components * sv
                Winograd.transformInput(tx, channels: cin, batch: n, first: n0, count: nc, g, into: vt, parallel: single)
                Winograd.transformInput(x, channels: cin, batch: n, first: n0, count: nc, g, into: vx, parallel: single)
                componentProducts(transB: false, m: cout, n: ct, k: cin, a: uv, b: vx, c: m, strides: (cout * cin, sv, sm),
                                  parallel: single)
                componentProducts(transB: false, m: cout, n: ct, k: cin, a: uw, b: vt, beta: 1, c: m,
                                  strides: (cout * cin, sv, sm), parallel: single)
                Winograd.transformOutput(m, channels: cout, batch: n, first: n0, count: nc, g, into: ty, bias: bias,
                                         store: .write, parallel: single)
                componentProducts(transB: false, m: cout, n: ct, k: cin, alpha: 2, a: uv, b: vt, c: m,
                                  strides: (cout * cin, sv, sm), parallel: single)
                if let ttx {
                    Winograd.transformInput(ttx, channels: cin, batch: n, first: n0, count: nc, g, into: vx, parallel: single)
                    componentProducts(transB: false, m: cout, n: ct, k: cin, a: uw, b: vx, beta: 1, c: m,
                                      strides: (cout * cin, sv, sm), parallel: single)
                }
                Winograd.transformOutput(m, channels: cout, batch: n, first: n0, count: nc, g, into: tty, bias: nil,
                                         store: .write, parallel: single)
            }
        }
    }
}

/// How a model's 3x3 stride-1 padding-1 convolutions are computed: a build option
/// (`ModelKind.build(convolutions:)`), kept by the network so that its replicas and copies match.
/// `ntkscape bench --conv im2col` compares the two; results differ only by rounding.
public enum ConvolutionChoice: String, Sendable, Codable, CaseIterable {
    /// Winograd F(2x2, 3x3) for calls of at least `winogradMinimumPixels` output pixels, im2col
    /// below (`Conv2D.Algorithm.automatic`): the default everywhere.
    case winograd
    /// im2col + GEMM always.
    case im2col
}

/// Geometry of a convolution (per example): input `Cin x H x W`, output `OH x OW`.
struct ConvGeometry {
    var cin, h, w, oh, ow, kernel, stride, padding: Int

    /// Stride 1 with "same" padding (`OH = H`, `OW = W`): every im2col row is the input plane shifted
    /// by `(ky - p, kx - p)`, so it can be moved as one contiguous block plus border fix-ups.
    var isSameSizeStride1: Bool { stride == 1 && oh == h && ow == w && 2 * padding == kernel - 1 }

    /// For the shift `(dy, dx)` of kernel tap `(ky, kx)`: the output rows with a valid input row, and
    /// the contiguous index range `lo..<hi` of the output plane to move (input index = `i + dy*W + dx`;
    /// its elements in border columns wrap to a neighbouring row and are fixed up by the caller).
    @inline(__always)
    func shift(_ ky: Int, _ kx: Int) -> (dy: Int, dx: Int, rows: Range<Int>, lo: Int, hi: Int) {
        let dy = ky - padding, dx = kx - padding
        let rows = max(0, -dy)..<max(max(0, -dy), min(h, h - dy))
        return (dy, dx, rows, rows.lowerBound * w + max(0, -dx), rows.upperBound * w - max(0, dx))
    }

    /// Columns of an output row whose input column `ox + dx` lies outside the image.
    @inline(__always)
    func borderColumns(_ dx: Int) -> Range<Int> {
        dx < 0 ? 0..<min(-dx, w) : max(0, w - dx)..<w
    }
}

/// `im2col` for stride-1 "same" convolutions: one block copy per (tap, example), then zero the rows
/// and border columns that fall outside the image.
func im2colSameSize<T: Real>(_ x: UnsafePointer<T>, _ g: ConvGeometry, batch: Int, first: Int, count: Int,
                             col: UnsafeMutablePointer<T>, parallel: Bool = true) {
    let plane = g.h * g.w, rowLen = count * plane
    Workers.split(g.cin, cost: g.kernel * g.kernel * rowLen, parallel: parallel) { channels in
        for ci in channels {
            for ky in 0..<g.kernel {
                for kx in 0..<g.kernel {
                    let (dy, dx, rows, lo, hi) = g.shift(ky, kx), border = g.borderColumns(dx)
                    let row = col + ((ci * g.kernel + ky) * g.kernel + kx) * rowLen
                    for j in 0..<count {
                        let out = row + j * plane, src = x + (ci * batch + first + j) * plane + dy * g.w + dx
                        for i in 0..<(rows.lowerBound * g.w) { out[i] = 0 }
                        for i in (rows.upperBound * g.w)..<plane { out[i] = 0 }
                        if lo < hi { for i in lo..<hi { out[i] = src[i] } }
                        if dx != 0 { for oy in rows { let line = out + oy &* g.w; for c in border { line[c] = 0 } } }
                    }
                }
            }
        }
    }
}

/// `col2im` for stride-1 "same" convolutions: zero the border-column entries of `col` (they belong
/// to padding), then add each (tap, example) block into the input gradient in one contiguous pass.
/// With `overwrite` the centre tap (no shift: it covers the whole plane) goes first and is written,
/// so `dx` need not be zeroed.
func col2imSameSize<T: Real>(_ col: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, first: Int, count: Int,
                             dx dxOut: UnsafeMutablePointer<T>, overwrite: Bool = false, parallel: Bool = true) {
    let plane = g.h * g.w, rowLen = count * plane, taps = g.kernel * g.kernel, centre = g.padding * (g.kernel + 1)
    Workers.split(g.cin, cost: taps * rowLen, parallel: parallel) { channels in
        for ci in channels {
            for step in 0..<taps {
                // Tap order: the centre first when overwriting, then the others in (ky, kx) order.
                let tap = !overwrite ? step : step == 0 ? centre : step <= centre ? step - 1 : step
                let ky = tap / g.kernel, kx = tap % g.kernel
                let (dy, dx, rows, lo, hi) = g.shift(ky, kx), border = g.borderColumns(dx)
                let row = col + (ci * taps + tap) * rowLen
                for j in 0..<count {
                    let src = row + j * plane, dst = dxOut + (ci * batch + first + j) * plane + dy * g.w + dx
                    if overwrite && step == 0 {
                        dst.update(from: src, count: plane)
                        continue
                    }
                    if dx != 0 { for oy in rows { let line = src + oy &* g.w; for c in border { line[c] = 0 } } }
                    if lo < hi { for i in lo..<hi { dst[i] += src[i] } }
                }
            }
        }
    }
}

/// `col[(ci, ky, kx), (j, oy, ox)] = x[ci, first+j, oy*s-p+ky, ox*s-p+kx]` (zero outside),
/// for `count` examples of a CNHW batch of `batch`.
@_specialize(where T == Float)
@_specialize(where T == Double)
func im2col<T: Real>(_ x: UnsafePointer<T>, _ g: ConvGeometry, batch: Int, first: Int, count: Int,
                     col: UnsafeMutablePointer<T>, parallel: Bool = true) {
    let plane = g.h * g.w, oplane = g.oh * g.ow, rowLen = count * oplane
    if g.isSameSizeStride1 {
        im2colSameSize(x, g, batch: batch, first: first, count: count, col: col, parallel: parallel)
        return
    }
    Workers.split(g.cin, cost: g.kernel * g.kernel * rowLen, parallel: parallel) { channels in
    for ci in channels {
        for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
                let row = col + ((ci * g.kernel + ky) * g.kernel + kx) * rowLen
                // Valid output columns ox: 0 <= ox*s - p + kx < W.
                let oxLo = max(0, (g.padding - kx + g.stride - 1) / g.stride)
                let oxHi = validColumnEnd(g, kx)
                for j in 0..<count {
                    let src = x + (ci * batch + first + j) * plane
                    for oy in 0..<g.oh {
                        let out = row + (j * g.oh + oy) * g.ow
                        let iy = oy * g.stride - g.padding + ky
                        // Rows are short (one output row): plain loops beat memcpy/memset calls.
                        if iy < 0 || iy >= g.h || oxLo >= oxHi {
                            for ox in 0..<g.ow { out[ox] = 0 }
                            continue
                        }
                        for ox in 0..<oxLo { out[ox] = 0 }
                        for ox in oxHi..<g.ow { out[ox] = 0 }
                        let line = src + iy * g.w - g.padding + kx
                        if g.stride == 1 {
                            for ox in oxLo..<oxHi { out[ox] = line[ox] }
                        } else if g.stride == 2 {
                            // 8 outputs from the even lanes of 16 inputs while those lie in the row.
                            var ox = oxLo
                            while ox + 8 <= oxHi && 2 * ox + 16 <= g.w + g.padding - kx {
                                let a: SIMD8<T> = load(line + 2 * ox), b: SIMD8<T> = load(line + 2 * ox + 8)
                                store(SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), out + ox)
                                ox += 8
                            }
                            for ox in ox..<oxHi { out[ox] = line[2 * ox] }
                        } else {
                            for ox in oxLo..<oxHi { out[ox] = line[ox * g.stride] }
                        }
                    }
                }
            }
        }
    }    }
}

/// One past the last output column whose input column `ox*s - p + kx` lies inside the image.
@inline(__always) func validColumnEnd(_ g: ConvGeometry, _ kx: Int) -> Int {
    let last = g.w - 1 + g.padding - kx   // need ox*s <= last
    return last < 0 ? 0 : min(g.ow, last / g.stride + 1)
}

/// Adjoint of `im2col`: `dx[ci, first+j, iy, ix] += col[(ci, ky, kx), (j, oy, ox)]`.
@_specialize(where T == Float)
@_specialize(where T == Double)
/// `overwrite` (stride-1 "same" convolutions only) writes `dx` instead of adding to it.
func col2im<T: Real>(_ col: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, first: Int, count: Int,
                     dx: UnsafeMutablePointer<T>, overwrite: Bool = false, parallel: Bool = true) {
    let plane = g.h * g.w, rowLen = count * g.oh * g.ow
    if g.isSameSizeStride1 {
        col2imSameSize(col, g, batch: batch, first: first, count: count, dx: dx, overwrite: overwrite, parallel: parallel)
        return
    }
    precondition(!overwrite, "col2im: overwrite needs a stride-1 same-size convolution")
    Workers.split(g.cin, cost: g.kernel * g.kernel * rowLen, parallel: parallel) { channels in
    for ci in channels {
        for ky in 0..<g.kernel {
            for kx in 0..<g.kernel {
                let row = col + ((ci * g.kernel + ky) * g.kernel + kx) * rowLen
                let oxLo = max(0, (g.padding - kx + g.stride - 1) / g.stride)
                let oxHi = validColumnEnd(g, kx)
                if oxLo >= oxHi { continue }
                for j in 0..<count {
                    let dst = dx + (ci * batch + first + j) * plane
                    for oy in 0..<g.oh {
                        let iy = oy * g.stride - g.padding + ky
                        if iy < 0 || iy >= g.h { continue }
                        let src = row + (j * g.oh + oy) * g.ow
                        let line = dst + iy * g.w - g.padding + kx
                        if g.stride == 1 {
                            for ox in oxLo..<oxHi { line[ox] += src[ox] }
                        } else if g.stride == 2 {
                            // 8 values into the even lanes of 16 while those lie in the row (the
                            // odd lanes are written back unchanged: this worker owns the channel).
                            var ox = oxLo
                            while ox + 8 <= oxHi && 2 * ox + 16 <= g.w + g.padding - kx {
                                let v: SIMD8<T> = load(src + ox), p = line + 2 * ox
                                let a: SIMD8<T> = load(p), b: SIMD8<T> = load(p + 8)
                                let (low, high) = Transpose.zip(v, SIMD8())
                                store(Transpose.evensFrom(a + low, oddsFrom: a), p)
                                store(Transpose.evensFrom(b + high, oddsFrom: b), p + 8)
                                ox += 8
                            }
                            for ox in ox..<oxHi { line[2 * ox] += src[ox] }
                        } else {
                            for ox in oxLo..<oxHi { line[ox * g.stride] += src[ox] }
                        }
                    }
                }
            }
        }
    }    }
}

/// `y[c, :] = b[c]` over a channel-major buffer whose channels are `stride` apart (a bias the
/// GEMM then accumulates onto with `beta = 1`).
@_specialize(where T == Float)
@_specialize(where T == Double)
func broadcastBias<T: Real>(_ b: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, channels: Int, stride: Int) {
    Workers.split(channels, cost: stride) { range in
        for c in range { (y + c * stride).update(repeating: b[c], count: stride) }
    }
}

/// `g[c] += sum_i dy[c, i]` (bias gradient).
@_specialize(where T == Float)
@_specialize(where T == Double)
func accumulateChannelSums<T: Real>(_ dy: UnsafePointer<T>, into g: UnsafeMutablePointer<T>, channels: Int, stride: Int) {
    Workers.split(channels, cost: stride) { range in
        for c in range {
            g[c] += Reduce.sum(dy + c * stride, count: stride)
        }
    }
}

/// Direct-loop convolution on NCHW tensors — the oracle the im2col path is tested against. Slow.
/// `x [N, Cin, H, W]`, `w [Cout, Cin, K, K]`, `b [Cout]?` → `[N, Cout, OH, OW]`.
public func naiveConv2D<T: Real>(x: [T], n: Int, cin: Int, h: Int, w: Int, weight: [T], bias: [T]?,
                                 cout: Int, kernel: Int, stride: Int, padding: Int) -> [T] {
    let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
    var y = [T](repeating: 0, count: n * cout * oh * ow)
    for b in 0..<n { for co in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
        var s: T = bias?[co] ?? 0
        for ci in 0..<cin { for ky in 0..<kernel { for kx in 0..<kernel {
            let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
            if iy >= 0 && iy < h && ix >= 0 && ix < w {
                s += weight[((co * cin + ci) * kernel + ky) * kernel + kx] * x[((b * cin + ci) * h + iy) * w + ix]
            }
        } } }
        y[((b * cout + co) * oh + oy) * ow + ox] = s
    } } } }
    return y
}
