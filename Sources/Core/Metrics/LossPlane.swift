import Foundation

/// The affine plane through three networks of one architecture (Fort et al. 2020, Fig. 5; the
/// parent at a spawn time and two of its children; docs/metrics.md, "Loss plane").
///
/// With `w_o` the origin (the parent) and `w_a`, `w_b` the two others, the plane's orthonormal
/// basis is Gram–Schmidt on the offsets, in Double:
///
///     u = (w_a - w_o) / |w_a - w_o|
///     v = r / |r|,   r = (w_b - w_o) - <w_b - w_o, u> u
///     w(x, y) = w_o + x u + y v
///
/// so the origin sits at `(0, 0)`, `w_a` at `(|w_a - w_o|, 0)` and `w_b` at
/// `(<w_b - w_o, u>, |r|)` with `|r| > 0`. Equivalently `w(x, y) = w_o + alpha (w_a - w_o) +
/// beta (w_b - w_o)` with `beta = y / y_b`, `alpha = (x - beta x_b) / x_a`; BatchNorm running
/// statistics follow those coefficients under the `interpolate` policy.
public struct LossPlane {
    public let origin: Network<Float>, a: Network<Float>, b: Network<Float>
    /// The basis vectors `u`, `v`, `[P]`.
    public let u: [Double], v: [Double]
    /// Coordinates of `w_a` and `w_b` (the origin is `(0, 0)`).
    public let coordinatesA: (x: Double, y: Double), coordinatesB: (x: Double, y: Double)

    /// What makes three networks span no plane.
    public struct Degenerate: Error, CustomStringConvertible {
        public let description: String
    }

    /// Throws `Degenerate` when `w_a = w_o` or `w_b - w_o` is parallel to `w_a - w_o` (its
    /// component across is below 1e-5 of the offsets: collinear up to Float rounding).
    public init(origin: Network<Float>, a: Network<Float>, b: Network<Float>) throws {
        precondition(origin.sameArchitecture(a) && origin.sameArchitecture(b), "LossPlane: the three networks differ in architecture")
        self.origin = origin; self.a = a; self.b = b
        let P = origin.parameterCount, o = origin.params.pointer, pa = a.params.pointer, pb = b.params.pointer
        var u = [Double](repeating: 0, count: P), r = [Double](repeating: 0, count: P)
        for i in 0..<P { u[i] = Double(pa[i]) - Double(o[i]); r[i] = Double(pb[i]) - Double(o[i]) }
        let na = Self.norm(u), nb = Self.norm(r)
        guard na > 0 else { throw Degenerate(description: "the first child's weights equal the parent's: they span no plane") }
        for i in 0..<P { u[i] /= na }
        let along = Self.dot(r, u)
        for i in 0..<P { r[i] -= along * u[i] }
        let across = Self.norm(r)
        guard across > 1e-5 * max(na, nb) else {   // Float weights: collinear to their precision
            throw Degenerate(description: "the two children lie on one line through the parent: they span no plane")
        }
        for i in 0..<P { r[i] /= across }
        self.u = u; v = r
        coordinatesA = (na, 0); coordinatesB = (along, across)
    }

    /// `(alpha, beta)` with `w(x, y) = w_o + alpha (w_a - w_o) + beta (w_b - w_o)`.
    public func coefficients(x: Double, y: Double) -> (alpha: Double, beta: Double) {
        let beta = y / coordinatesB.y
        return ((x - beta * coordinatesB.x) / coordinatesA.x, beta)
    }

    /// Writes `w(x, y)` (computed in Double, rounded once to Float) into `params` (`[P]`).
    public func weights(x: Double, y: Double, into params: UnsafeMutablePointer<Float>) {
        let o = origin.params.pointer
        for i in 0..<u.count { params[i] = Float(Double(o[i]) + x * u[i] + y * v[i]) }
    }

    /// Places `network` (same architecture, not one of the three) at `w(x, y)`; under `.interpolate`
    /// its BatchNorm running statistics are `s_o + alpha (s_a - s_o) + beta (s_b - s_o)`, under
    /// `.recompute` they are re-estimated by `recomputer` (which is given with `.recompute`).
    public func place(_ network: Network<Float>, x: Double, y: Double, batchNorm: BarrierBatchNorm,
                      recomputer: BatchNormRecomputer?) {
        weights(x: x, y: y, into: network.params.pointer)
        guard !network.batchNorms.isEmpty else { return }
        switch batchNorm {
        case .interpolate:
            let (alpha, beta) = coefficients(x: x, y: y)
            let so = origin.state.pointer, sa = a.state.pointer, sb = b.state.pointer, s = network.state.pointer
            for i in 0..<network.state.count {
                let o = Double(so[i])
                s[i] = Float(o + alpha * (Double(sa[i]) - o) + beta * (Double(sb[i]) - o))
            }
        case .recompute:
            guard let recomputer else { preconditionFailure("LossPlane.place: the recompute policy needs a recomputer") }
            recomputer.recompute(network)
        }
    }

    /// The grid: `points` evenly spaced values per axis over the bounding box of the three points
    /// widened by `margin` times its extent on each side (`x` and `y` independently).
    public func grid(points: Int, margin: Double) -> (xs: [Double], ys: [Double]) {
        precondition(points >= 2 && margin >= 0, "LossPlane.grid: needs >= 2 points and a margin >= 0")
        func axis(_ values: [Double]) -> [Double] {
            let lo = values.min()!, hi = values.max()!, pad = margin * (hi - lo)
            let start = lo - pad, end = hi + pad
            return (0..<points).map { $0 == points - 1 ? end : start + (end - start) * Double($0) / Double(points - 1) }
        }
        return (axis([0, coordinatesA.x, coordinatesB.x]), axis([0, coordinatesA.y, coordinatesB.y]))
    }

    static func dot(_ x: [Double], _ y: [Double]) -> Double {
        var s = 0.0
        for i in 0..<x.count { s += x[i] * y[i] }
        return s
    }

    static func norm(_ x: [Double]) -> Double { dot(x, x).squareRoot() }
}
