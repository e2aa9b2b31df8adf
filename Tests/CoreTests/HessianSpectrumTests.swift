import Core
import Foundation
import TestSupport
import XCTest

/// The spectral measurements built on Hessian-vector products (top-k Lanczos, Hutchinson's trace,
/// stochastic Lanczos quadrature, span fractions, the optimiser's update direction), each against a
/// closed form on an operator whose spectrum is known.
final class HessianSpectrumTests: XCTestCase {
    private func diagonal(_ d: [Double]) -> (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void {
        { v, out in for i in 0..<d.count { out[i] = d[i] * v[i] } }
    }

    /// Top-3 eigenpairs of `diag(d)`: the three largest algebraic eigenvalues (not the -500 of largest
    /// magnitude), their Ritz vectors the matching unit vectors (up to sign), residuals small.
    func testTopKEigenpairsOfDiagonalOperator() {
        var d = (0..<150).map { Double($0) / 10 }
        d[17] = 40; d[90] = 35; d[3] = 30; d[120] = -500
        let (estimate, vectors) = lanczosTopEigenpairs(dimension: d.count, maxIterations: 120, tolerance: 1e-12, topK: 3,
                                                       start: RandomKey(seed: 7, role: .hessian), vectors: true, apply: diagonal(d))
        assertClose(estimate.topEigenvalues, [40, 35, 30], Tol(rel: 1e-9, abs: 0), "top-3 eigenvalues")
        XCTAssertEqual(vectors.count, 3)
        for (vector, index) in zip(vectors, [17, 90, 3]) {
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            assertClose(abs(vector[index]) / norm, 1, Tol(rel: 0, abs: 1e-6), "Ritz vector \(index) is e_\(index)")
        }
        for r in estimate.topResiduals { XCTAssertLessThan(r, 1e-6 * 40) }
    }

    /// Rademacher probes have `z_i² = 1`, so on a diagonal operator every probe gives `zᵀDz = Σ d_i`:
    /// the estimate is the trace exactly and its standard error 0.
    func testHutchinsonTraceIsExactOnDiagonalOperator() {
        let d = (0..<40).map { sin(Double($0)) * 3 + 0.5 }
        let t = hutchinsonTrace(dimension: d.count, samples: 4, key: RandomKey(seed: 3, role: .hessian), apply: diagonal(d))
        assertClose(t.mean, d.reduce(0, +), Tol(rel: 1e-12, abs: 1e-12), "trace")
        XCTAssertEqual(t.samples, 4)
        XCTAssertLessThan(t.standardError, 1e-12)
    }

    /// On a dense symmetric `A` a probe gives `tr A + Σ_{i≠j} z_i z_j A_ij`, mean `tr A` and variance
    /// `2 Σ_{i≠j} A_ij²` (closed form for Rademacher probes): 4000 probes land within 4 standard
    /// errors of `tr A`, and the reported standard error is within 10% of the closed form's.
    func testHutchinsonTraceOnDenseOperatorMatchesClosedFormMoments() {
        let n = 12
        var r = TestRandom(9)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i { let x = r.normal(); a[i * n + j] = x; a[j * n + i] = x } }
        let trace = (0..<n).reduce(0.0) { $0 + a[$1 * n + $1] }
        var off = 0.0
        for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
        let samples = 4000
        let closedFormSE = (2 * off / Double(samples)).squareRoot()
        let t = hutchinsonTrace(dimension: n, samples: samples, key: RandomKey(seed: 4, role: .hessian)) {
            (v: UnsafePointer<Double>, out: UnsafeMutablePointer<Double>) in
            for i in 0..<n { out[i] = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * v[$1] } }
        }
        XCTAssertLessThan(abs(t.mean - trace), 4 * closedFormSE, "mean \(t.mean) vs trace \(trace)")
        assertClose(t.standardError, closedFormSE, Tol(rel: 0.1, abs: 0), "standard error")
    }

    /// SLQ on an operator with three distinct eigenvalues, each on a third of the coordinates: the
    /// Krylov space is invariant after three steps, so the nodes are exactly {-1, 2, 7}; a Rademacher
    /// start puts weight (number of coordinates)/P = 1/3 on each. The smoothed density integrates to 1.
    func testQuadratureNodesAndWeightsOnThreeEigenvalueOperator() {
        let d = (0..<60).map { Double([-1, 2, 7][$0 % 3]) }
        let density = stochasticLanczosQuadrature(dimension: d.count, runs: 2, steps: 10, key: RandomKey(seed: 5, role: .hessian),
                                                  as: Double.self, apply: diagonal(d))
        XCTAssertEqual(density.nodes.count, 2)
        for (nodes, weights) in zip(density.nodes, density.weights) {
            assertClose(nodes, [-1, 2, 7], Tol(rel: 1e-10, abs: 1e-10), "nodes")
            assertClose(weights, [1.0 / 3, 1.0 / 3, 1.0 / 3], Tol(rel: 1e-10, abs: 0), "weights")
        }
        let sigma = 0.2, curve = density.smoothed(points: 400, sigma: sigma)
        let h = curve[1].lambda - curve[0].lambda
        let integral = curve.reduce(0) { $0 + $1.density } * h
        // The grid spans every node ± 3 sigma, so ~0.27% of each Gaussian's mass lies outside it.
        assertClose(integral, 0.9973, Tol(rel: 0.002, abs: 0), "∫ρ")
    }

    /// Span fractions against the closed form: with basis {e1, e1 + e2, 2 e1} (the third dependent,
    /// dropped) the span is {e1, e2}; (1, 1, 1) has 2/3 of its squared norm there, e3 none, e2 all.
    func testSpanFractionsClosedForm() {
        let basis: [[Double]] = [[1, 0, 0, 0], [1, 1, 0, 0], [2, 0, 0, 0]]
        let f = spanFractions(of: [[1, 1, 1, 0], [0, 0, 1, 0], [0, 3, 0, 0], [0.5, -2, 0, 1]], in: basis)
        assertClose(f, [2.0 / 3, 0, 1, (0.25 + 4) / (0.25 + 4 + 1)], Tol(rel: 1e-12, abs: 1e-15), "span fractions")
    }

    /// The optimiser's next update direction against PyTorch's update rules written out by hand:
    /// SGD with momentum `u = μ b + g + λ w` (first step `u = g + λ w`), Adam
    /// `u = m̂ / (sqrt(v̂) + ε)` with the moments advanced by `g + λ w`; the state is left unchanged.
    func testNextUpdateDirectionMatchesHandComputedRules() throws {
        let p = 6
        var r = TestRandom(21)
        let w = r.array(p).map(Float.init), g = r.array(p).map { Float($0 * 0.01) }
        let b = r.array(p).map { Float($0 * 0.02) }
        let mu = 0.9, wd = 5e-4
        func l2(_ i: Int) -> Double { Double(g[i]) + Double(Float(wd) * w[i]) }

        var sgd = SGD(lr: 0.1, momentum: mu, weightDecay: wd)
        assertClose(sgd.nextUpdateDirection(weights: w, gradient: g), (0..<p).map(l2), Tol(rel: 1e-6, abs: 0), "SGD first step")
        try sgd.importState(OptimizerState(kind: "sgd", stepCount: 7, buffers: ["momentum_buffer": b]))
        let u = sgd.nextUpdateDirection(weights: w, gradient: g)
        assertClose(u, (0..<p).map { mu * Double(b[$0]) + l2($0) }, Tol(rel: 1e-6, abs: 0), "SGD with momentum")
        XCTAssertEqual(sgd.exportState().buffers["momentum_buffer"], b, "state unchanged")
        XCTAssertEqual(sgd.stepCount, 7)

        let m = r.array(p).map { Float($0 * 0.01) }, v = r.array(p).map { Float($0 * $0 * 1e-4) }
        var adam = Adam(lr: 1e-3, weightDecay: wd)
        try adam.importState(OptimizerState(kind: "adam", stepCount: 4, buffers: ["exp_avg": m, "exp_avg_sq": v]))
        let t = 5.0, b1 = 0.9, b2 = 0.999
        let want = (0..<p).map { i -> Double in
            let gi = l2(i)
            let m1 = b1 * Double(m[i]) + (1 - b1) * gi, v1 = b2 * Double(v[i]) + (1 - b2) * gi * gi
            return (m1 / (1 - pow(b1, t))) / ((v1 / (1 - pow(b2, t))).squareRoot() + 1e-8)
        }
        assertClose(adam.nextUpdateDirection(weights: w, gradient: g), want, Tol(rel: 1e-5, abs: 0), "Adam")
        XCTAssertEqual(adam.stepCount, 4, "state unchanged")
    }
}
