/// Distances between two networks' trainable parameter vectors (docs/metrics.md, "Weight distance").
///
/// For `a, b` of length `P` (all trainable parameters, BatchNorm weight and bias included; the
/// running statistics are state and excluded), accumulated in `Double`:
///
///     l2         = ||a - b||_2
///     normalized = ||a - b||_2 / sqrt(||a||_2 ||b||_2)
///     cosine     = <a, b> / (||a||_2 ||b||_2)
///
/// `normalized` and `cosine` are `nil` when either norm is 0 (a zero vector has no scale or direction).
public struct WeightDistance: Codable, Equatable, Sendable {
    /// `||a - b||_2`.
    public var l2: Double
    /// `||a - b||_2 / sqrt(||a|| ||b||)`; nil if a norm is 0.
    public var normalized: Double?
    /// `<a, b> / (||a|| ||b||)`; nil if a norm is 0.
    public var cosine: Double?

    public init(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
        precondition(a.count == b.count, "WeightDistance: vectors of \(a.count) and \(b.count) parameters")
        var aa = 0.0, bb = 0.0, ab = 0.0, dd = 0.0
        for i in 0..<a.count {
            let x = Double(a[i]), y = Double(b[i]), d = x - y
            aa += x * x; bb += y * y; ab += x * y; dd += d * d
        }
        let na = aa.squareRoot(), nb = bb.squareRoot()
        l2 = dd.squareRoot()
        let scale = na * nb
        normalized = scale > 0 ? l2 / scale.squareRoot() : nil
        cosine = scale > 0 ? ab / scale : nil
    }

    public init(_ a: [Float], _ b: [Float]) {
        self = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in WeightDistance(pa, pb) } }
    }

    /// Between the trainable parameters of two networks of one architecture.
    public init(_ a: Network<Float>, _ b: Network<Float>) {
        precondition(a.layout.parameters == b.layout.parameters,
                     "WeightDistance: networks \(a.kind) and \(b.kind) have different parameter layouts")
        self.init(UnsafeBufferPointer(a.params.buffer), UnsafeBufferPointer(b.params.buffer))
    }
}
