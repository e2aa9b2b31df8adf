import CLinAlg

/// Operations on flat parameter vectors (distances, interpolation, updates). Sums accumulate in
/// `Double` so results do not depend on the vector's length-dependent Float rounding.
public enum Vec {
    /// `sum_i a_i b_i`, accumulated in Double.
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }
    public static func dot(_ a: [Float], _ b: [Float]) -> Double {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }
    public static func norm(_ a: [Float]) -> Double { dot(a, a).squareRoot() }
    /// `||a - b||_2`.
    public static func distance(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in 0..<a.count { let d = Double(a[i]) - Double(b[i]); s += d * d }
        return s.squareRoot()
    }
    /// `y += alpha * x`.
    public static func axpy(_ alpha: Float, _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == y.count)
        for i in 0..<x.count { y[i] += alpha * x[i] }
    }
    /// `out = x + alpha (y - x)` — the straight line `(1 - alpha) x + alpha y` between two networks,
    /// written so that both ends are exact (`out = y` at `alpha = 1`, and `out = x` wherever `x == y`).
    public static func interpolate(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, alpha: Float,
                                   into out: UnsafeMutablePointer<Float>, count: Int) {
        if alpha == 1 { out.update(from: y, count: count); return }
        for i in 0..<count { out[i] = x[i] + alpha * (y[i] - x[i]) }
    }
}
