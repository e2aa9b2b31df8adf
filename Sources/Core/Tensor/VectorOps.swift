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
    /// `out = (1 - alpha) a + alpha b`, the straight line between two networks.
    public static func interpolate(_ a: [Float], _ b: [Float], _ alpha: Float) -> [Float] {
        precondition(a.count == b.count)
        var out = [Float](repeating: 0, count: a.count)
        for i in 0..<a.count { out[i] = (1 - alpha) * a[i] + alpha * b[i] }
        return out
    }
}
