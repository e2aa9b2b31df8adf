import Foundation

/// Winograd's minimal filtering algorithm F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for
/// Convolutional Neural Networks", CVPR 2016) for 3x3 convolutions with stride 1 and padding 1.
///
/// Each 2x2 block ("tile") of an output plane is `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`, where `g` is
/// the 3x3 filter and `d` the 4x4 input patch around the tile (zero outside the image). Summed over
/// input channels, the 16 elementwise products become 16 GEMMs
/// `M[ξ][co][t] = sum_ci U[ξ][co][ci] V[ξ][ci][t]` with `U = G g G^T` and `V = B^T d B`:
/// 16 multiply-adds per tile and channel pair instead of the direct convolution's 36 (2.25x fewer),
/// and `V` holds 4 values per input pixel where im2col's columns hold 9. The transforms only add,
/// subtract and halve, so the rounding error stays of the order of a direct convolution's
/// (F(2x2, 3x3) is the accurate member of the family; larger tiles trade accuracy for fewer
/// multiplications).
///
/// Layouts: activations CNHW (`[C, batch, H, W]`); `V`/`M` are `[16][C][T]` (components
/// `componentStride` apart) with the tiles of `count` consecutive examples,
/// `t = (j * tilesH + ty) * tilesW + tx`.
struct WinogradTiling {
    let h, w: Int
    var tilesH: Int { (h + 1) / 2 }
    var tilesW: Int { (w + 1) / 2 }
    /// Output tiles per example plane.
    var tiles: Int { tilesH * tilesW }
    static let components = 16
}


/// One Winograd filter transform (`WinogradAlgorithm.transformWeights`) kept between calls, with a copy
/// of the weights it was computed from: reused only while the weights passed in are bit-identical to
/// the copy (`memcmp`, `9 Cout Cin` values: far cheaper than the transform), so it follows the
/// weights' values, never their address. Owned by one layer, used like its scratch (one caller at a
/// time).
final class WinogradFilterCache<T: Real> {
    private var weights = Buffer<T>(count: 0), transform = Buffer<T>(count: 0)
    private var valid = false

    /// `U` for `w` (`A.transformWeights(w, outputs:, inputs:, adjoint:)`), recomputed when `w` differs
    /// from the weights of the stored transform (a cache serves one layer and one algorithm).
    func transformed<A: WinogradAlgorithm>(_: A.Type, _ w: UnsafePointer<T>, outputs: Int, inputs: Int, adjoint: Bool) -> UnsafePointer<T> {
        let count = 9 * outputs * inputs, size = A.components * outputs * inputs
        if valid && weights.count == count && transform.count == size
            && memcmp(weights.pointer, w, count * MemoryLayout<T>.stride) == 0 {
            return UnsafePointer(transform.pointer)
        }
        if weights.count != count || transform.count != size {
            weights = Buffer(count: count)
            transform = Buffer(count: size)
        }
        A.transformWeights(w, outputs: outputs, inputs: inputs, adjoint: adjoint, into: transform.pointer)
        weights.pointer.update(from: w, count: count)
        valid = true
        return UnsafePointer(transform.pointer)
    }
}

/// A Winograd algorithm F(m x m, 3x3) as the convolution uses it: filters, input and output
/// transforms around `components` GEMMs (`Winograd`, F(2x2, 3x3); `Winograd4`, F(4x4, 3x3)).
protocol WinogradAlgorithm {
    associatedtype Tiling: WinogradPlaneTiling
    static var components: Int { get }
    static func transformWeights<T: Real>(_ w: UnsafePointer<T>, outputs: Int, inputs: Int, adjoint: Bool,
                                          into u: UnsafeMutablePointer<T>)
    static func transformInput<T: Real>(_ x: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                        _ g: Tiling, into v: UnsafeMutablePointer<T>, parallel: Bool)
    static func transformOutput<T: Real>(_ m: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                         _ g: Tiling, into y: UnsafeMutablePointer<T>, bias: UnsafePointer<T>?,
                                         store mode: Winograd.Store, parallel: Bool)
}

extension WinogradAlgorithm {
    /// Elements between consecutive components of a transformed `[components][channels][tiles]`
    /// block: the block size plus one cache line, so the streams a transform reads or writes do not
    /// all map to the same L1 set (the block size is a power of two for these networks' layers:
    /// measured, ResNet-20 training spent ~25% of its time in F(2x2, 3x3)'s input transform without
    /// the offset).
    static func componentStride(channels: Int, tiles: Int) -> Int { channels * tiles + 16 }
}

/// The output tiles of an `h x w` plane.
protocol WinogradPlaneTiling {
    init(h: Int, w: Int)
    var tiles: Int { get }
}

extension WinogradTiling: WinogradPlaneTiling {}
extension Winograd: WinogradAlgorithm {
    static var components: Int { WinogradTiling.components }
}

enum Winograd {
    /// `U[ξ][o][i] = (G g G^T)_ξ` with `g = W[o, i]` from `W [outputs, inputs, 3, 3]`, or with
    /// `adjoint`, `g = W[i, o]` rotated by 180 degrees from `W [inputs, outputs, 3, 3]` (the filter
    /// whose convolution of `dy` is the input gradient). `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformWeights<T: Real>(_ w: UnsafePointer<T>, outputs: Int, inputs: Int, adjoint: Bool,
                                          into u: UnsafeMutablePointer<T>) {
        // Everything in registers: the earlier version went through a 21-value scratch array whose
        // scalar stores and wider reloads stalled on store forwarding (perf: over half its time on
        // one reload). Same operations, same order, same bits. `x * 0.5` is `x / 2` exactly.
        let stride = outputs * inputs, half: T = 0.5
        /// `(a, (a + b + c) / 2, (a - b + c) / 2, c)`: `G` applied to one column (or row) `(a, b, c)`.
        @inline(__always) func expand(_ a: T, _ b: T, _ c: T) -> (T, T, T, T) { (a, (a + b + c) * half, (a - b + c) * half, c) }
        /// `expand` lane by lane, for 8 filters at once.
        @inline(__always) func expand8(_ a: SIMD8<T>, _ b: SIMD8<T>, _ c: SIMD8<T>) -> (SIMD8<T>, SIMD8<T>, SIMD8<T>, SIMD8<T>) {
            (a, (a + b + c) * half, (a - b + c) * half, c)
        }
        @inline(__always) func store8(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
        }
        for o in 0..<outputs {
            // Eight consecutive inputs at a time: the 16 components then go out as 16 vector stores
            // (one per component block) instead of 128 scalar ones into 16 streams a power of two apart.
            var i0 = 0
            while i0 + 8 <= inputs {
                @inline(__always) func g8(_ k: Int) -> SIMD8<T> {
                    var v = SIMD8<T>()
                    for l in 0..<8 { v[l] = adjoint ? w[((i0 + l) * outputs + o) * 9 + 8 - k] : w[(o * inputs + i0 + l) * 9 + k] }
                    return v
                }
                let c0 = expand8(g8(0), g8(3), g8(6)), c1 = expand8(g8(1), g8(4), g8(7)), c2 = expand8(g8(2), g8(5), g8(8))
                let base = u + o * inputs + i0
                @inline(__always) func row8(_ r: Int, _ t0: SIMD8<T>, _ t1: SIMD8<T>, _ t2: SIMD8<T>) {
                    let v = expand8(t0, t1, t2)
                    store8(v.0, base + (4 * r) * stride); store8(v.1, base + (4 * r + 1) * stride)
                    store8(v.2, base + (4 * r + 2) * stride); store8(v.3, base + (4 * r + 3) * stride)
                }
                row8(0, c0.0, c1.0, c2.0); row8(1, c0.1, c1.1, c2.1); row8(2, c0.2, c1.2, c2.2); row8(3, c0.3, c1.3, c2.3)
                i0 += 8
            }
            for i in i0..<inputs {
                let src = adjoint ? w + (i * outputs + o) * 9 : w + (o * inputs + i) * 9
                @inline(__always) func g(_ k: Int) -> T { adjoint ? src[8 - k] : src[k] }
                // t = G g (4x3), by columns; then U = t G^T (4x4), by rows of t.
                let c0 = expand(g(0), g(3), g(6)), c1 = expand(g(1), g(4), g(7)), c2 = expand(g(2), g(5), g(8))
                let base = u + o * inputs + i
                @inline(__always) func row(_ r: Int, _ t0: T, _ t1: T, _ t2: T) {
                    let v = expand(t0, t1, t2)
                    base[(4 * r) * stride] = v.0; base[(4 * r + 1) * stride] = v.1
                    base[(4 * r + 2) * stride] = v.2; base[(4 * r + 3) * stride] = v.3
                }
                row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2); row(3, c0.3, c1.3, c2.3)
            }
        }
    }

    /// `dW[o, i] += G^T dU[·][o][i] G` (the adjoint of `transformWeights` without `adjoint`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func accumulateWeightGradient<T: Real>(_ du: UnsafePointer<T>, outputs: Int, inputs: Int,
                                                  into dw: UnsafeMutablePointer<T>) {
        let stride = outputs * inputs, half: T = 0.5
        /// `(d0 + (d1 + d2) / 2, (d1 - d2) / 2, (d1 + d2) / 2 + d3)`: `G^T` applied to `(d0, d1, d2, d3)`.
        @inline(__always) func reduce(_ d0: T, _ d1: T, _ d2: T, _ d3: T) -> (T, T, T) {
            (d0 + (d1 + d2) * half, (d1 - d2) * half, (d1 + d2) * half + d3)
        }
        for o in 0..<outputs {
            for i in 0..<inputs {
                let base = du + o * inputs + i
                // s = dU G (4x3) by rows, then G^T s (3x3) by columns, in registers.
                @inline(__always) func s(_ r: Int) -> (T, T, T) {
                    reduce(base[(4 * r) * stride], base[(4 * r + 1) * stride], base[(4 * r + 2) * stride], base[(4 * r + 3) * stride])
                }
                let s0 = s(0), s1 = s(1), s2 = s(2), s3 = s(3)
                let out = dw + (o * inputs + i) * 9
                let x0 = reduce(s0.0, s1.0, s2.0, s3.0), x1 = reduce(s0.1, s1.1, s2.1, s3.1), x2 = reduce(s0.2, s1.2, s2.2, s3.2)
                out[0] += x0.0; out[3] += x0.1; out[6] += x0.2
                out[1] += x1.0; out[4] += x1.1; out[7] += x1.2
                out[2] += x2.0; out[5] += x2.1; out[8] += x2.2
            }
        }
    }

    /// `V[ξ][c][t] = (B^T d B)_ξ` for the 4x4 input patch `d` of every tile of examples
    /// `first..<first+count` of the CNHW batch `x` (`batch` examples, `channels` channels).
    /// `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`.
    ///
    /// Vectorised over the tiles of a tile row: each input row of an example is first split into
    /// its even and odd columns (`e[j] = x[2j-1]`, `o[j] = x[2j]`, zero outside), so patch column
    /// `k` of tiles `tx..<tx+8` is one contiguous load (`e[tx]`, `o[tx]`, `e[tx+1]`, `o[tx+1]`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformInput<T: Real>(_ x: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                        _ g: WinogradTiling, into v: UnsafeMutablePointer<T>, parallel: Bool) {
        let plane = g.h * g.w, tw = g.tilesW, tiles = g.tiles, ct = count * tiles, vs = componentStride(channels: channels, tiles: ct)
        // Split rows -1 ... 2*tilesH (the ones outside the image stay zero), padded for vector loads.
        let len = tw + 1 + lanes, rows = 2 * g.tilesH + 2
        splitChannels(T.self, channels, cost: 16 * ct, parallel: parallel, rows: rows, length: len) { range, even, odd, tail in
            for c in range {
                for j in 0..<count {
                    let src = x + (c * batch + first + j) * plane
                    for r in 0..<g.h { split(src + r * g.w, g.w, tw, even + (r + 1) * len, odd + (r + 1) * len) }
                    for ty in 0..<g.tilesH {
                        let e = even + 2 * ty * len, o = odd + 2 * ty * len
                        let out = v + c * ct + j * tiles + ty * tw
                        forEachGroup(tw) { tx, wide in
                            if wide {
                                inputTiles(SIMD8<T>.self, e, o, len, tx, out + tx, vs)
                            } else {
                                inputTiles(SIMD4<T>.self, e, o, len, tx, out + tx, vs)
                            }
                        } tail: { tx in
                            inputTiles(SIMD4<T>.self, e, o, len, tx, tail, 4)
                            for q in 0..<16 { for i in 0..<(tw - tx) { out[q * vs + tx + i] = tail[q * 4 + i] } }
                        }
                    }
                }
            }
        }
    }

    /// Vector width of the transforms' row buffers' padding (8 Floats = one AVX2 register).
    static let lanes = 8

    /// Splits `channels` over the workers (`Workers.split(parallel:)`); each gets zeroed scratch:
    /// `even` and `odd` row buffers (`rows` rows of `length`) and a tail of 16 x 4 values.
    @inline(__always)
    private static func splitChannels<T: Real>(_: T.Type, _ channels: Int, cost: Int, parallel: Bool, rows: Int, length: Int,
        _ body: (Range<Int>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>) -> Void) {
        Workers.split(channels, cost: cost, parallel: parallel) { range in
            let size = 2 * rows * length + 16 * 4
            let buffer = UnsafeMutablePointer<T>.allocate(capacity: size)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 0, count: size)
            body(range, buffer, buffer + rows * length, buffer + 2 * rows * length)
        }
    }

    /// Calls `body(tx, wide)` for groups of 8 (`wide`) and then 4 tiles covering `0..<n` as far as
    /// they fit, then `tail(tx)` for the last `n - tx < 4` tiles.
    @inline(__always)
    static func forEachGroup(_ n: Int, _ body: (Int, Bool) -> Void, tail: (Int) -> Void) {
        var tx = 0
        while tx + 8 <= n { body(tx, true); tx += 8 }
        if tx + 4 <= n { body(tx, false); tx += 4 }
        if tx < n { tail(tx) }
    }

    /// `e[j] = row[2j-1]`, `o[j] = row[2j]` for `j = 0...tw`, zero outside `0..<w`.
    @inline(__always)
    private static func split<T: Real>(_ row: UnsafePointer<T>, _ w: Int, _ tw: Int,
                                       _ e: UnsafeMutablePointer<T>, _ o: UnsafeMutablePointer<T>) {
        // o[j] = row[2j], e[j+1] = row[2j+1]: 16 row values at a time split by two shuffles (the
        // scalar loop was the hottest spot of the forward pass, perf), then the rest one by one.
        e[0] = 0
        var j = 0
        while 2 &* j &+ 16 <= w {
            let a: SIMD8<T> = load(row + 2 &* j), b: SIMD8<T> = load(row + (2 &* j &+ 8))
            store(SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), o + j)
            store(SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf), e + (j &+ 1))
            j &+= 8
        }
        if 2 &* j &+ 8 <= w {   // 8 values (an 8-wide plane's row)
            let a: SIMD8<T> = load(row + 2 &* j)
            store(a.evenHalf, o + j); store(a.oddHalf, e + (j &+ 1))
            j &+= 4
        }
        for q in j...tw { o[q] = 2 &* q < w ? row[2 &* q] : 0 }
        if j + 1 <= tw { for q in (j + 1)...tw { e[q] = 2 &* q &- 1 < w ? row[2 &* q &- 1] : 0 } }
    }

    /// `B^T d B` for the tiles `tx..<tx+V.scalarCount` of one tile row (split rows `e`, `o`, `len`
    /// apart); component `q` goes to `out + q*stride`.
    @inline(__always)
    private static func inputTiles<V: SIMD>(_: V.Type, _ e: UnsafePointer<V.Scalar>, _ o: UnsafePointer<V.Scalar>,
                                            _ len: Int, _ tx: Int, _ out: UnsafeMutablePointer<V.Scalar>, _ stride: Int)
        where V.Scalar: FloatingPoint {
        // Patch rows a = 0...3 (columns k = 0...3 as e[tx], o[tx], e[tx+1], o[tx+1]).
        let e0 = e + tx, e1 = e0 + len, e2 = e1 + len, e3 = e2 + len
        let o0 = o + tx, o1 = o0 + len, o2 = o1 + len, o3 = o2 + len
        let d00: V = load(e0), d01: V = load(o0), d02: V = load(e0 + 1), d03: V = load(o0 + 1)
        let d10: V = load(e1), d11: V = load(o1), d12: V = load(e1 + 1), d13: V = load(o1 + 1)
        let d20: V = load(e2), d21: V = load(o2), d22: V = load(e2 + 1), d23: V = load(o2 + 1)
        let d30: V = load(e3), d31: V = load(o3), d32: V = load(e3 + 1), d33: V = load(o3 + 1)
        // B^T d (along the patch's rows) ...
        let r00 = d00 - d20, r01 = d01 - d21, r02 = d02 - d22, r03 = d03 - d23
        let r10 = d10 + d20, r11 = d11 + d21, r12 = d12 + d22, r13 = d13 + d23
        let r20 = d20 - d10, r21 = d21 - d11, r22 = d22 - d12, r23 = d23 - d13
        let r30 = d10 - d30, r31 = d11 - d31, r32 = d12 - d32, r33 = d13 - d33
        // ... then · B (along its columns).
        store(r00 - r02, out); store(r01 + r02, out + stride); store(r02 - r01, out + 2 * stride); store(r01 - r03, out + 3 * stride)
        store(r10 - r12, out + 4 * stride); store(r11 + r12, out + 5 * stride); store(r12 - r11, out + 6 * stride); store(r11 - r13, out + 7 * stride)
        store(r20 - r22, out + 8 * stride); store(r21 + r22, out + 9 * stride); store(r22 - r21, out + 10 * stride); store(r21 - r23, out + 11 * stride)
        store(r30 - r32, out + 12 * stride); store(r31 + r32, out + 13 * stride); store(r32 - r31, out + 14 * stride); store(r31 - r33, out + 15 * stride)
    }

    /// How `transformOutput` stores a tile: `y = bias + tile` (a nil bias: `y = tile`) or `y += tile`.
    enum Store { case write, accumulate }

    /// `y[c, first+j, 2ty.., 2tx..] (=|+=) (A^T M_t A)` for every tile `t` of the examples
    /// `first..<first+count`, `A^T = [1 1 1 0; 0 1 -1 -1]`; a bias is added when writing.
    /// Vectorised over the tiles of a tile row into even/odd output columns, interleaved on store.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformOutput<T: Real>(_ m: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                         _ g: WinogradTiling, into y: UnsafeMutablePointer<T>, bias: UnsafePointer<T>?,
                                         store mode: Store, parallel: Bool) {
        let plane = g.h * g.w, tw = g.tilesW, tiles = g.tiles, ct = count * tiles, ms = componentStride(channels: channels, tiles: ct)
        // Even and odd columns of the example's 2*tilesH output rows, padded for vector stores.
        let len = tw + lanes, rows = 2 * g.tilesH
        splitChannels(T.self, channels, cost: 16 * ct, parallel: parallel, rows: rows, length: len) { range, even, odd, tail in
            for c in range {
                let b = bias?[c] ?? 0
                for j in 0..<count {
                    for ty in 0..<g.tilesH {
                        let s = m + c * ct + j * tiles + ty * tw, e = even + 2 * ty * len, o = odd + 2 * ty * len
                        forEachGroup(tw) { tx, wide in
                            if wide {
                                outputTiles(SIMD8<T>.self, s + tx, ms, e + tx, o + tx, len)
                            } else {
                                outputTiles(SIMD4<T>.self, s + tx, ms, e + tx, o + tx, len)
                            }
                        } tail: { tx in
                            // Gather the last tiles' components so the vector loads stay in bounds.
                            for q in 0..<16 { for i in 0..<(tw - tx) { tail[q * 4 + i] = s[q * ms + tx + i] } }
                            outputTiles(SIMD4<T>.self, tail, 4, e + tx, o + tx, len)
                        }
                    }
                    let dst = y + (c * batch + first + j) * plane
                    for r in 0..<g.h { interleave(even + r * len, odd + r * len, dst + r * g.w, g.w, b, mode) }
                }
            }
        }
    }

    /// `A^T M A` for `V.scalarCount` tiles whose component `q` is at `m + q*stride`: the even and
    /// odd output columns of the tiles' first row (`e`, `o`) and second row (`len` further).
    @inline(__always)
    private static func outputTiles<V: SIMD>(_: V.Type, _ m: UnsafePointer<V.Scalar>, _ stride: Int,
                                             _ e: UnsafeMutablePointer<V.Scalar>, _ o: UnsafeMutablePointer<V.Scalar>,
                                             _ len: Int) where V.Scalar: FloatingPoint {
        let m00: V = load(m), m01: V = load(m + stride), m02: V = load(m + 2 * stride), m03: V = load(m + 3 * stride)
        let m10: V = load(m + 4 * stride), m11: V = load(m + 5 * stride), m12: V = load(m + 6 * stride), m13: V = load(m + 7 * stride)
        let m20: V = load(m + 8 * stride), m21: V = load(m + 9 * stride), m22: V = load(m + 10 * stride), m23: V = load(m + 11 * stride)
        let m30: V = load(m + 12 * stride), m31: V = load(m + 13 * stride), m32: V = load(m + 14 * stride), m33: V = load(m + 15 * stride)
        // A^T M (along rows), then · A (along columns).
        let u0 = m00 + m10 + m20, u1 = m01 + m11 + m21, u2 = m02 + m12 + m22, u3 = m03 + m13 + m23
        let w0 = m10 - m20 - m30, w1 = m11 - m21 - m31, w2 = m12 - m22 - m32, w3 = m13 - m23 - m33
        store(u0 + u1 + u2, e); store(u1 - u2 - u3, o)
        store(w0 + w1 + w2, e + len); store(w1 - w2 - w3, o + len)
    }

    /// `dst[2i] (=|+=) e[i] (+ b)`, `dst[2i+1] (=|+=) o[i] (+ b)` for the `w` columns of one output row.
    @inline(__always)
    private static func interleave<T: Real>(_ e: UnsafePointer<T>, _ o: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>,
                                            _ w: Int, _ b: T, _ mode: Store) {
        let pairs = w / 2
        var i = 0
        while i &+ 4 <= pairs {   // 4 pairs at a time (the rows are padded for the 8-wide loads)
            let zipped = Transpose.zip(load(e + i), load(o + i)).low, d = dst + 2 &* i
            switch mode {
            case .write: store(zipped + b, d)
            case .accumulate: store(load(d) + zipped, d)
            }
            i &+= 4
        }
        switch mode {
        case .write:
            for i in i..<pairs { dst[2 &* i] = e[i] + b; dst[2 &* i &+ 1] = o[i] + b }
            if w & 1 == 1 { dst[w - 1] = e[pairs] + b }
        case .accumulate:
            for i in i..<pairs { dst[2 &* i] += e[i]; dst[2 &* i &+ 1] += o[i] }
            if w & 1 == 1 { dst[w - 1] += e[pairs] }
        }
    }

    /// `dM[ξ][c][t] = (A dY_t A^T)_ξ` for the 2x2 output-gradient tile `dY_t` (zero outside the
    /// plane): the adjoint of `transformOutput`, the first step of the weight gradient.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func transformOutputGradient<T: Real>(_ dy: UnsafePointer<T>, channels: Int, batch: Int, first: Int, count: Int,
                                                 _ g: WinogradTiling, into dm: UnsafeMutablePointer<T>, parallel: Bool) {
        let plane = g.h * g.w, tw = g.tilesW, tiles = g.tiles, ct = count * tiles, ms = componentStride(channels: channels, tiles: ct)
        // Even and odd columns of the example's rows 0..<2*tilesH (rows past the plane stay zero).
        let len = tw + lanes, rows = 2 * g.tilesH
        splitChannels(T.self, channels, cost: 16 * ct, parallel: parallel, rows: rows, length: len) { range, even, odd, tail in
            for c in range {
                for j in 0..<count {
                    let src = dy + (c * batch + first + j) * plane
                    for r in 0..<g.h { deinterleave(src + r * g.w, g.w, even + r * len, odd + r * len) }
                    for ty in 0..<g.tilesH {
                        let e = even + 2 * ty * len, o = odd + 2 * ty * len
                        let out = dm + c * ct + j * tiles + ty * tw
                        forEachGroup(tw) { tx, wide in
                            if wide {
                                gradientTiles(SIMD8<T>.self, e + tx, o + tx, len, out + tx, ms)
                            } else {
                                gradientTiles(SIMD4<T>.self, e + tx, o + tx, len, out + tx, ms)
                            }
                        } tail: { tx in
                            gradientTiles(SIMD4<T>.self, e + tx, o + tx, len, tail, 4)
                            for q in 0..<16 { for i in 0..<(tw - tx) { out[q * ms + tx + i] = tail[q * 4 + i] } }
                        }
                    }
                }
            }
        }
    }

    /// `e[i] = row[2i]`, `o[i] = row[2i+1]` (zero past the row's end).
    @inline(__always)
    private static func deinterleave<T: Real>(_ row: UnsafePointer<T>, _ w: Int, _ e: UnsafeMutablePointer<T>,
                                              _ o: UnsafeMutablePointer<T>) {
        let pairs = w / 2
        var i = 0
        while 2 &* i &+ 16 <= w {
            let a: SIMD8<T> = load(row + 2 &* i), b: SIMD8<T> = load(row + (2 &* i &+ 8))
            store(SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), e + i)
            store(SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf), o + i)
            i &+= 8
        }
        if 2 &* i &+ 8 <= w {
            let a: SIMD8<T> = load(row + 2 &* i)
            store(a.evenHalf, e + i); store(a.oddHalf, o + i)
            i &+= 4
        }
        while i < pairs { e[i] = row[2 &* i]; o[i] = row[2 &* i &+ 1]; i &+= 1 }
        if w & 1 == 1 { e[pairs] = row[w - 1]; o[pairs] = 0 }
    }

    /// `A dY A^T` for `V.scalarCount` tiles (even/odd columns of the tiles' first row at `e`, `o`,
    /// the second row `len` further); component `q` goes to `out + q*stride`.
    @inline(__always)
    private static func gradientTiles<V: SIMD>(_: V.Type, _ e: UnsafePointer<V.Scalar>, _ o: UnsafePointer<V.Scalar>,
                                               _ len: Int, _ out: UnsafeMutablePointer<V.Scalar>, _ stride: Int)
        where V.Scalar: FloatingPoint {
        let x0: V = load(e), x1: V = load(o), y0: V = load(e + len), y1: V = load(o + len)
        // Along the columns (· A^T): (d0, d0 + d1, d0 - d1, -d1) per row, then along the rows.
        let a0 = x0, a1 = x0 + x1, a2 = x0 - x1, a3 = -x1
        let b0 = y0, b1 = y0 + y1, b2 = y0 - y1, b3 = -y1
        store(a0, out); store(a1, out + stride); store(a2, out + 2 * stride); store(a3, out + 3 * stride)
        store(a0 + b0, out + 4 * stride); store(a1 + b1, out + 5 * stride); store(a2 + b2, out + 6 * stride); store(a3 + b3, out + 7 * stride)
        store(a0 - b0, out + 8 * stride); store(a1 - b1, out + 9 * stride); store(a2 - b2, out + 10 * stride); store(a3 - b3, out + 11 * stride)
        store(-b0, out + 12 * stride); store(-b1, out + 13 * stride); store(-b2, out + 14 * stride); store(-b3, out + 15 * stride)
    }
}
