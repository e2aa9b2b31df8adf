/// Register transposes for the Winograd transforms, the GEMM packing and the stride-2 im2col:
/// pure data movement, so every path gives the same values bit for bit.
///
/// Float has a fast path built from the x86 unpack pattern (`unpackLow`/`unpackHigh` of 32-bit
/// lanes, then of 64-bit pairs, then 128-bit halves joined): 12 shuffles for a 4 x 8 transpose, 24
/// for 8 x 8. Each step passes through a bit cast between `SIMD8<Float>` and `SIMD4<Double>`, which
/// keeps LLVM from fusing the steps into one permutation that it then lowers lane by lane (the
/// generic even/odd rounds below compile to ~50 inserts and blends for a 4 x 8 transpose with
/// `-target-cpu haswell`; perf showed F(4x4)'s output transform spending most of its time there).
/// Other scalar types take the generic rounds.
enum Transpose {
    typealias Four<V> = (V, V, V, V)

    /// The `4 n` values `r.k[l]` (`k = 0...3`, `l < n`, `n` lanes: 8 or 4) in the order `l k` — `n`
    /// rows of 4 stored one after another — as four vectors: `out[i / n][i % n] = r.(i % 4)[i / 4]`.
    @inline(__always)
    static func interleave<V: SIMD>(_ r: Four<V>) -> Four<V> where V.Scalar: Real {
        if V.self == SIMD8<Float>.self { return unsafeBitCast(floatInterleave8(unsafeBitCast(r, to: Four<SIMD8<Float>>.self)), to: Four<V>.self) }
        if V.self == SIMD4<Float>.self { return unsafeBitCast(floatInterleave4(unsafeBitCast(r, to: Four<SIMD4<Float>>.self)), to: Four<V>.self) }
        // log2 n rounds of even/odd splits, each rotating the index bits `k l` of the `4 n` values by one: `l k`.
        if V.self == SIMD8<V.Scalar>.self {
            return unsafeBitCast(evenOddRounds(unsafeBitCast(r, to: Four<SIMD8<V.Scalar>>.self), 3), to: Four<V>.self)
        }
        precondition(V.self == SIMD4<V.Scalar>.self, "Transpose.interleave: vectors of 8 or 4")
        var v = unsafeBitCast(r, to: Four<SIMD4<V.Scalar>>.self)
        for _ in 0..<2 {
            let a = SIMD8(lowHalf: v.0, highHalf: v.1), b = SIMD8(lowHalf: v.2, highHalf: v.3)
            v = (a.evenHalf, b.evenHalf, a.oddHalf, b.oddHalf)
        }
        return unsafeBitCast(v, to: Four<V>.self)
    }

    /// The inverse of `interleave`: from 32 consecutive values `m` (8 rows of 4), the four columns
    /// `out.k[l] = m[4 l + k]`.
    @inline(__always)
    static func deinterleave<T: Real>(_ m: Four<SIMD8<T>>) -> Four<SIMD8<T>> {
        if T.self == Float.self {
            return unsafeBitCast(floatDeinterleave8(unsafeBitCast(m, to: Four<SIMD8<Float>>.self)), to: Four<SIMD8<T>>.self)
        }
        // Two rounds rotate the five index bits `l k` by two: `k l`.
        return evenOddRounds(m, 2)
    }

    /// `rounds` rounds of splitting the 32 values `v` into their even and odd positions (each
    /// round moves the lowest index bit to the top).
    @inline(__always)
    private static func evenOddRounds<S: SIMDScalar>(_ v: Four<SIMD8<S>>, _ rounds: Int) -> Four<SIMD8<S>> {
        var v = v
        for _ in 0..<rounds {
            let a = SIMD16(lowHalf: v.0, highHalf: v.1), b = SIMD16(lowHalf: v.2, highHalf: v.3)
            v = (a.evenHalf, b.evenHalf, a.oddHalf, b.oddHalf)
        }
        return v
    }

    /// `a` and `b` zipped: `(a0 b0 a1 b1 a2 b2 a3 b3)`, `(a4 b4 ... a7 b7)`.
    @inline(__always)
    static func zip<T: Real>(_ a: SIMD8<T>, _ b: SIMD8<T>) -> (low: SIMD8<T>, high: SIMD8<T>) {
        let j = SIMD16(lowHalf: a, highHalf: b)
        return (SIMD8(j[0], j[8], j[1], j[9], j[2], j[10], j[3], j[11]), SIMD8(j[4], j[12], j[5], j[13], j[6], j[14], j[7], j[15]))
    }

    /// The even lanes of `e` and the odd lanes of `o`.
    @inline(__always)
    static func evensFrom<T: Real>(_ e: SIMD8<T>, oddsFrom o: SIMD8<T>) -> SIMD8<T> {
        SIMD8(e[0], o[1], e[2], o[3], e[4], o[5], e[6], o[7])
    }

    /// The transpose of the 8 x 8 matrix with rows `r.0...r.7`.
    @inline(__always)
    static func transpose8<T: Real>(_ r: Eight<SIMD8<T>>) -> Eight<SIMD8<T>> {
        if T.self == Float.self {
            return unsafeBitCast(floatTranspose8(unsafeBitCast(r, to: Eight<SIMD8<Float>>.self)), to: Eight<SIMD8<T>>.self)
        }
        // Three rounds of splitting the row-major 64 values into even and odd positions (each
        // rotates the 6 index bits by one; three swap row and column).
        @inline(__always) func even(_ x: SIMD8<T>, _ y: SIMD8<T>) -> SIMD8<T> { SIMD16(lowHalf: x, highHalf: y).evenHalf }
        @inline(__always) func odd(_ x: SIMD8<T>, _ y: SIMD8<T>) -> SIMD8<T> { SIMD16(lowHalf: x, highHalf: y).oddHalf }
        var v = r
        for _ in 0..<3 {
            v = (even(v.0, v.1), even(v.2, v.3), even(v.4, v.5), even(v.6, v.7),
                 odd(v.0, v.1), odd(v.2, v.3), odd(v.4, v.5), odd(v.6, v.7))
        }
        return v
    }
    typealias Eight<V> = (V, V, V, V, V, V, V, V)

    // MARK: Float building blocks

    /// 32-bit lanes `(a0 b0 a1 b1 | a4 b4 a5 b5)` and `(a2 b2 a3 b3 | a6 b6 a7 b7)`, as 64-bit pairs.
    @inline(__always) private static func unpackLow(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD4<Double> {
        unsafeBitCast(SIMD8(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]), to: SIMD4<Double>.self)
    }
    @inline(__always) private static func unpackHigh(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD4<Double> {
        unsafeBitCast(SIMD8(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]), to: SIMD4<Double>.self)
    }
    /// 64-bit pairs `(p0 q0 | p2 q2)` and `(p1 q1 | p3 q3)`, as 32-bit lanes.
    @inline(__always) private static func pairLow(_ p: SIMD4<Double>, _ q: SIMD4<Double>) -> SIMD8<Float> {
        unsafeBitCast(SIMD4(p[0], q[0], p[2], q[2]), to: SIMD8<Float>.self)
    }
    @inline(__always) private static func pairHigh(_ p: SIMD4<Double>, _ q: SIMD4<Double>) -> SIMD8<Float> {
        unsafeBitCast(SIMD4(p[1], q[1], p[3], q[3]), to: SIMD8<Float>.self)
    }
    @inline(__always) private static func lows(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(lowHalf: a.lowHalf, highHalf: b.lowHalf)
    }
    @inline(__always) private static func highs(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(lowHalf: a.highHalf, highHalf: b.highHalf)
    }

    /// Within each 128-bit half, the 4 x 4 transpose of rows `a b c d`.
    @inline(__always)
    private static func transposeHalves(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>)
        -> Four<SIMD8<Float>> {
        let t0 = unpackLow(a, b), t1 = unpackHigh(a, b), t2 = unpackLow(c, d), t3 = unpackHigh(c, d)
        return (pairLow(t0, t2), pairHigh(t0, t2), pairLow(t1, t3), pairHigh(t1, t3))
    }

    @inline(__always) private static func floatInterleave8(_ r: Four<SIMD8<Float>>) -> Four<SIMD8<Float>> {
        // Rows l and l + 4 of the result in the halves of u.l, then the halves regrouped.
        let u = transposeHalves(r.0, r.1, r.2, r.3)
        return (lows(u.0, u.1), lows(u.2, u.3), highs(u.0, u.1), highs(u.2, u.3))
    }

    @inline(__always) private static func floatDeinterleave8(_ m: Four<SIMD8<Float>>) -> Four<SIMD8<Float>> {
        transposeHalves(lows(m.0, m.2), highs(m.0, m.2), lows(m.1, m.3), highs(m.1, m.3))
    }

    @inline(__always) private static func floatInterleave4(_ r: Four<SIMD4<Float>>) -> Four<SIMD4<Float>> {
        @inline(__always) func low(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD2<Double> {
            unsafeBitCast(SIMD4(a[0], b[0], a[1], b[1]), to: SIMD2<Double>.self)
        }
        @inline(__always) func high(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD2<Double> {
            unsafeBitCast(SIMD4(a[2], b[2], a[3], b[3]), to: SIMD2<Double>.self)
        }
        @inline(__always) func join(_ p: Double, _ q: Double) -> SIMD4<Float> { unsafeBitCast(SIMD2(p, q), to: SIMD4<Float>.self) }
        let t0 = low(r.0, r.1), t1 = high(r.0, r.1), t2 = low(r.2, r.3), t3 = high(r.2, r.3)
        return (join(t0[0], t2[0]), join(t0[1], t2[1]), join(t1[0], t3[0]), join(t1[1], t3[1]))
    }

    @inline(__always) private static func floatTranspose8(_ r: Eight<SIMD8<Float>>) -> Eight<SIMD8<Float>> {
        let u = transposeHalves(r.0, r.1, r.2, r.3), v = transposeHalves(r.4, r.5, r.6, r.7)
        return (lows(u.0, v.0), lows(u.1, v.1), lows(u.2, v.2), lows(u.3, v.3),
                highs(u.0, v.0), highs(u.1, v.1), highs(u.2, v.2), highs(u.3, v.3))
    }
}
