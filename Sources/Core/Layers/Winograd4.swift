/// Winograd's F(4x4, 3x3) (Lavin & Gray 2016) for the forward and input-gradient convolutions of
/// 3x3 stride-1 padding-1 layers: each 4x4 output tile is `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` with `d`
/// the 6x6 input patch at `(4ty - 1, 4tx - 1)` (zero outside the image). Summed over input channels
/// the 36 elementwise products are 36 GEMMs, 36 multiply-adds per tile and channel pair for 16
/// outputs: 4x fewer than the direct convolution's 144 (F(2x2, 3x3): 2.25x), and the transformed
/// input holds 36/16 = 2.25 values per input pixel (F(2x2, 3x3): 4). The interpolation points are
/// 0, ±1, ±2 and ∞:
///
///     Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
///     G  = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
///     Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
///
/// Accuracy: the larger coefficients cost about a decimal digit against the direct convolution (in
/// Float, relative error ~1e-6 of an output's magnitude instead of ~1e-7; measured in
/// `docs/performance.md` and bounded by `ConvKernelTests`). The weight gradient, whose error would
/// enter every update, stays with F(2x2, 3x3) (`Winograd`), which rounds like a direct convolution.
///
/// Layouts as in `Winograd`: activations CNHW, `V`/`M` `[36][C][T]` with components
/// `componentStride` apart and `t = (j * tilesH + ty) * tilesW + tx`. Vectorised over 8 (then 4)
/// tiles of a tile row: each input row is split into its four column phases first, so patch
/// column `k` of consecutive tiles is one contiguous load.
enum Winograd4: WinogradAlgorithm {
    static var components: Int { Tiling.components }
    struct Tiling: WinogradPlaneTiling {
        let h, w: Int
        var tilesH: Int { (h + 3) / 4 }
        var tilesW: Int { (w + 3) / 4 }
        /// Output tiles per example plane.
        var tiles: Int { tilesH * tilesW }
        static let components = 36
    }

    // MARK: The three 1-D transforms (applied along rows, then columns)

    /// `Bᵀ x` for a column `x` of 6.
    @inline(__always)
    static func bt<V: SIMD>(_ x0: V, _ x1: V, _ x2: V, _ x3: V, _ x4: V, _ x5: V) -> (V, V, V, V, V, V)
        where V.Scalar: FloatingPoint {
        let two: V.Scalar = 2, four: V.Scalar = 4, five: V.Scalar = 5
        let u = x4 - x2 * four, v = x3 - x1 * four, p = x4 - x2, q = (x3 - x1) * two
        return (x0 * four - x2 * five + x4, u + v, u - v, p + q, p - q, x1 * four - x3 * five + x5)
    }

    /// `Aᵀ x` for a column `x` of 6.
    @inline(__always)
    static func at<V: SIMD>(_ x0: V, _ x1: V, _ x2: V, _ x3: V, _ x4: V, _ x5: V) -> (V, V, V, V)
        where V.Scalar: FloatingPoint {
        let two: V.Scalar = 2, four: V.Scalar = 4, eight: V.Scalar = 8
        let s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4
        return (x0 + s12 + s34, d12 + d34 * two, s12 + s34 * four, d12 + d34 * eight + x5)
    }

    /// `G x` for a column `x` of 3.
    @inline(__always)
    static func gt<V: SIMD>(_ a: V, _ b: V, _ c: V) -> (V, V, V, V, V, V) where V.Scalar: FloatingPoint {
        let quarter = 1 / V.Scalar(4), sixth = -1 / V.Scalar(6)
        let c24 = 1 / V.Scalar(24), c12 = 1 / V.Scalar(12), c6 = 1 / V.Scalar(6)
        let ac = a * c24 + c * c6, bb = b * c12
        return (a * quarter, (a + b + c) * sixth, (a - b + c) * sixth, ac + bb, ac - bb, c)
    }

    // MARK: Filters

    /// `U[ξ][o][i] = (G g Gᵀ)_ξ` with `g = W[o, i]` from `W [outputs, inputs, 3, 3]`, or with
    /// `adjoint`, `g = W[i, o]` rotated by 180 degrees from `W [inputs, outputs, 3, 3]` (the filter
    /// whose convolution of `dy` is the input gradient). Eight inputs at a time (a zero-padded group
    /// for the last), so the 36 components go out as vector stores.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformWeights<T: Real>(_ w: UnsafePointer<T>, outputs: Int, inputs: Int, adjoint: Bool,
                                          into u: UnsafeMutablePointer<T>) {
        let stride = outputs * inputs
        for o in 0..<outputs {
            var i0 = 0
            while i0 < inputs {
                let lanes = min(8, inputs - i0)
                @inline(__always) func g(_ k: Int) -> SIMD8<T> {
                    var v = SIMD8<T>()
                    for l in 0..<lanes { v[l] = adjoint ? w[((i0 + l) * outputs + o) * 9 + 8 - k] : w[(o * inputs + i0 + l) * 9 + k] }
                    return v
                }
                // t = G g (6x3) by columns, then U = t Gᵀ (6x6) by rows of t.
                let c0 = gt(g(0), g(3), g(6)), c1 = gt(g(1), g(4), g(7)), c2 = gt(g(2), g(5), g(8))
                let base = u + o * inputs + i0
                @inline(__always) func row(_ r: Int, _ t0: SIMD8<T>, _ t1: SIMD8<T>, _ t2: SIMD8<T>) {
                    @inline(__always) func put(_ s: Int, _ x: SIMD8<T>) {
                        let p = base + (6 * r + s) * stride
                        if lanes == 8 { store(x, p) } else { for l in 0..<lanes { p[l] = x[l] } }
                    }
                    let v = gt(t0, t1, t2)
                    put(0, v.0); put(1, v.1); put(2, v.2); put(3, v.3); put(4, v.4); put(5, v.5)
                }
                row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
                row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
                i0 += 8
            }
        }
    }

    // MARK: Input

    /// `V[ξ][c][t] = (Bᵀ d B)_ξ` for the 6x6 input patch `d` of every tile of examples
    /// `first..<first+count` of the CNHW batch `x` (`batch` examples, `channels` channels).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformInput<T: Real>(_ x: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                        _ g: Tiling, into v: UnsafeMutablePointer<T>, parallel: Bool) {
        let plane = g.h * g.w, tw = g.tilesW, tiles = g.tiles, ct = count * tiles, vs = componentStride(channels: channels, tiles: ct)
        // Phase rows for image rows -1 ... 4 tilesH (those outside the image stay zero), padded for vector loads.
        let len = tw + 1 + Winograd.lanes, rows = 4 * g.tilesH + 2, phase = rows * len
        withPhases(T.self, channels, cost: 36 * ct, parallel: parallel, phase: phase) { range, ph, tail in
            for c in range {
                for j in 0..<count {
                    let src = x + (c * batch + first + j) * plane
                    for r in 0..<g.h { split(src + r * g.w, g.w, tw, ph + (r + 1) * len, phase) }
                    for ty in 0..<g.tilesH {
                        let d = ph + 4 * ty * len, out = v + c * ct + j * tiles + ty * tw
                        // Patch row a, column k of tiles tx, tx+1, ...: phase k % 4 at offset k / 4.
                        @inline(__always) func row<V: SIMD>(_ tx: Int) -> (Int, Int) -> V where V.Scalar == T {
                            { a, k in load(d + (k & 3) * phase + tx + (k >> 2) + a * len) }
                        }
                        Winograd.forEachGroup(tw) { tx, wide in
                            if wide {
                                transformTiles(SIMD8<T>.self, out: out + tx, stride: vs, row(tx))
                            } else {
                                transformTiles(SIMD4<T>.self, out: out + tx, stride: vs, row(tx))
                            }
                        } tail: { tx in
                            transformTiles(SIMD4<T>.self, out: tail, stride: 4, row(tx))
                            for q in 0..<36 { for i in 0..<(tw - tx) { out[q * vs + tx + i] = tail[q * 4 + i] } }
                        }
                    }
                }
            }
        }
    }

    /// Splits `channels` over the workers; each gets zeroed scratch: four phase buffers of `phase`
    /// values (none for the output transform) and a tail of 36 x 4.
    @inline(__always)
    private static func withPhases<T: Real>(_: T.Type, _ channels: Int, cost: Int, parallel: Bool, phase: Int,
                                            _ body: (Range<Int>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>) -> Void) {
        Workers.split(channels, cost: cost, parallel: parallel) { range in
            let size = 4 * phase + 36 * 4
            let buffer = UnsafeMutablePointer<T>.allocate(capacity: size)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 0, count: size)
            body(range, buffer, buffer + 4 * phase)
        }
    }

    /// `P_r[j] = row[4j + r - 1]` for `r = 0...3`, `j = 0...tw`, zero outside `0..<w` (`P_r` at
    /// `p + r * phase`): 32 row values at a time (`Transpose.deinterleave`), then 16 (the 4 x 4
    /// transpose, its own inverse), then one by one.
    @inline(__always)
    private static func split<T: Real>(_ row: UnsafePointer<T>, _ w: Int, _ tw: Int, _ p: UnsafeMutablePointer<T>, _ phase: Int) {
        let p0 = p, p1 = p + phase, p2 = p1 + phase, p3 = p2 + phase
        p0[0] = 0
        var j = 0
        while 4 &* j &+ 32 <= w {
            let s = row + 4 &* j
            let (k0, k1, k2, k3) = Transpose.deinterleave((load(s), load(s + 8), load(s + 16), load(s + 24)) as Transpose.Four<SIMD8<T>>)
            store(k0, p1 + j); store(k1, p2 + j); store(k2, p3 + j); store(k3, p0 + (j &+ 1))
            j &+= 8
        }
        if 4 &* j &+ 16 <= w {   // 16 values (a 16-wide plane's row): the 4 x 4 transpose
            let s = row + 4 &* j
            let (k0, k1, k2, k3) = Transpose.interleave((load(s), load(s + 4), load(s + 8), load(s + 12)) as Transpose.Four<SIMD4<T>>)
            store(k0, p1 + j); store(k1, p2 + j); store(k2, p3 + j); store(k3, p0 + (j &+ 1))
            j &+= 4
        }
        @inline(__always) func at(_ i: Int) -> T { i < w ? row[i] : 0 }
        for q in j...tw { p1[q] = at(4 &* q); p2[q] = at(4 &* q &+ 1); p3[q] = at(4 &* q &+ 2) }
        if j + 1 <= tw { for q in (j + 1)...tw { p0[q] = at(4 &* q &- 1) } }
    }

    /// `Bᵀ d B` for `V.scalarCount` tiles, `patch(a, k)` their patches' row `a`, column `k`;
    /// component `q` goes to `out + q*stride`.
    @inline(__always)
    private static func transformTiles<V: SIMD>(_: V.Type, out: UnsafeMutablePointer<V.Scalar>, stride: Int,
                                                _ patch: (Int, Int) -> V) where V.Scalar: FloatingPoint {
        // Bᵀ along each patch column, then B along each row of the result.
        @inline(__always) func column(_ k: Int) -> (V, V, V, V, V, V) {
            bt(patch(0, k), patch(1, k), patch(2, k), patch(3, k), patch(4, k), patch(5, k))
        }
        let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3), k4 = column(4), k5 = column(5)
        @inline(__always) func row(_ i: Int, _ x0: V, _ x1: V, _ x2: V, _ x3: V, _ x4: V, _ x5: V) {
            let r = bt(x0, x1, x2, x3, x4, x5), o = out + 6 * i * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
        row(0, k0.0, k1.0, k2.0, k3.0, k4.0, k5.0); row(1, k0.1, k1.1, k2.1, k3.1, k4.1, k5.1)
        row(2, k0.2, k1.2, k2.2, k3.2, k4.2, k5.2); row(3, k0.3, k1.3, k2.3, k3.3, k4.3, k5.3)
        row(4, k0.4, k1.4, k2.4, k3.4, k4.4, k5.4); row(5, k0.5, k1.5, k2.5, k3.5, k4.5, k5.5)
    }

    // MARK: Output

    /// `y[c, first+j, 4ty.., 4tx..] (=|+=) (Aᵀ M_t A)` for every tile `t` of the examples
    /// `first..<first+count` (rows and columns past the plane dropped); a bias is added when writing.
    /// Each output row of 8 (4) tiles leaves the registers interleaved into its 32 (16) columns;
    /// on 16-wide planes two tile rows (8 consecutive tiles) go through one vector of 8; tiles that
    /// reach past the plane's width go out one value at a time.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformOutput<T: Real>(_ m: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                         _ g: Tiling, into y: UnsafeMutablePointer<T>, bias: UnsafePointer<T>?,
                                         store mode: Winograd.Store, parallel: Bool) {
        let plane = g.h * g.w, tw = g.tilesW, tiles = g.tiles, ct = count * tiles, ms = componentStride(channels: channels, tiles: ct)
        withPhases(T.self, channels, cost: 36 * ct, parallel: parallel, phase: 0) { range, _, tail in
            for c in range {
                let b = bias?[c] ?? 0
                for j in 0..<count {
                    let dst = y + (c * batch + first + j) * plane
                    /// Row `i` of tile row `ty` from tile `tx` on: plane row `4ty + i` (if inside), columns `4tx...`.
                    @inline(__always) func row(_ i: Int, _ ty: Int, _ tx: Int) -> (UnsafeMutablePointer<T>, columns: Int)? {
                        4 * ty + i < g.h ? (dst + (4 * ty + i) * g.w + 4 * tx, g.w - 4 * tx) : nil
                    }
                    var ty = 0
                    if g.w == 16 {
                        // Two tile rows of 4 tiles are 8 consecutive tiles: one vector of 8 (not two of 4).
                        while ty + 2 <= g.tilesH {
                            let s = m + c * ct + j * tiles + ty * tw
                            untransformTiles(SIMD8<T>.self, s, ms) { i, r in
                                let v = Transpose.interleave(r)
                                put((v.0, v.1), row(i, ty, 0)?.0, b, mode)
                                put((v.2, v.3), row(i, ty + 1, 0)?.0, b, mode)
                            }
                            ty += 2
                        }
                    }
                    for ty in ty..<g.tilesH {
                        let s = m + c * ct + j * tiles + ty * tw
                        Winograd.forEachGroup(tw) { tx, wide in
                            if wide {
                                untransformTiles(SIMD8<T>.self, s + tx, ms) { i, r in put(r, row(i, ty, tx), b, mode) }
                            } else {
                                untransformTiles(SIMD4<T>.self, s + tx, ms) { i, r in put(r, row(i, ty, tx), b, mode) }
                            }
                        } tail: { tx in
                            // Gather the last tiles' components so the vector loads stay in bounds.
                            for q in 0..<36 { for i in 0..<(tw - tx) { tail[q * 4 + i] = s[q * ms + tx + i] } }
                            untransformTiles(SIMD4<T>.self, tail, 4) { i, r in put(r, row(i, ty, tx), b, mode) }
                        }
                    }
                }
            }
        }
    }

    /// `d[4l + k] (=|+=) r.k[l] (+ b)` for the `n` (8 or 4) tiles `l` of an output row, `target`
    /// `(d, columns)` (nil: the row lies past the plane). A full row of `4n` columns leaves the
    /// registers through `interleave` (`Transpose`); a row cut by the plane's edge goes out value by value.
    @inline(__always)
    private static func put<V: SIMD>(_ r: (V, V, V, V), _ target: (UnsafeMutablePointer<V.Scalar>, columns: Int)?, _ b: V.Scalar,
                                     _ mode: Winograd.Store) where V.Scalar: Real {
        guard let (d, columns) = target else { return }
        let n = V.scalarCount
        guard columns >= 4 * n else { return putEdge(r, d, columns, b, mode) }
        let v = Transpose.interleave(r)
        put((v.0, v.1), d, b, mode)
        put((v.2, v.3), d + 2 * n, b, mode)
    }

    /// `put` for a row cut by the plane's edge after `columns < 4 n` values, value by value. Not
    /// inlined: indexing lanes keeps vectors in memory, which would slow the common path's registers.
    @inline(never)
    private static func putEdge<V: SIMD>(_ r: (V, V, V, V), _ d: UnsafeMutablePointer<V.Scalar>, _ columns: Int, _ b: V.Scalar,
                                         _ mode: Winograd.Store) where V.Scalar: Real {
        for i in 0..<columns {
            let l = i >> 2, value = i & 3 == 0 ? r.0[l] : i & 3 == 1 ? r.1[l] : i & 3 == 2 ? r.2[l] : r.3[l]
            switch mode {
            case .write: d[i] = value + b
            case .accumulate: d[i] += value
            }
        }
    }

    /// `d[i] (=|+=) v[i] (+ b)` for the `2 n` values of `v` (nil: the row lies past the plane).
    @inline(__always)
    private static func put<V: SIMD>(_ v: (V, V), _ d: UnsafeMutablePointer<V.Scalar>?, _ b: V.Scalar,
                                     _ mode: Winograd.Store) where V.Scalar: FloatingPoint {
        guard let d else { return }
        let n = V.scalarCount
        switch mode {
        case .write: store(v.0 + b, d); store(v.1 + b, d + n)
        case .accumulate: store(load(d) + v.0, d); store(load(d + n) + v.1, d + n)
        }
    }

    /// `Aᵀ M A` for `V.scalarCount` tiles whose component `q` is at `m + q*stride`: `put(i, r)` gets
    /// output row `i` of the tiles, `r.c` its column `c` (row by row, so one row's values are live at a time).
    @inline(__always)
    private static func untransformTiles<V: SIMD>(_: V.Type, _ m: UnsafePointer<V.Scalar>, _ stride: Int,
                                                  _ put: (Int, (V, V, V, V)) -> Void) where V.Scalar: FloatingPoint {
        // Aᵀ along each component column, then A along each row of the result.
        @inline(__always) func column(_ j: Int) -> (V, V, V, V) {
            let p = m + j * stride, s6 = 6 * stride
            return at(load(p), load(p + s6), load(p + 2 * s6), load(p + 3 * s6), load(p + 4 * s6), load(p + 5 * s6))
        }
        let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3), k4 = column(4), k5 = column(5)
        put(0, at(k0.0, k1.0, k2.0, k3.0, k4.0, k5.0)); put(1, at(k0.1, k1.1, k2.1, k3.1, k4.1, k5.1))
        put(2, at(k0.2, k1.2, k2.2, k3.2, k4.2, k5.2)); put(3, at(k0.3, k1.3, k2.3, k3.3, k4.3, k5.3))
    }
}
