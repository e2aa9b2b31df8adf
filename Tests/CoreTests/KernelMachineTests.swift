import Core
import Foundation
import TestSupport
import XCTest

/// The kernel machine with a held-out ridge grid (issue 11 §4) against independent references:
/// direct Cholesky / Gaussian-elimination solves in `Double` for every ridge, the linear model's
/// closed-form NTK, naive loops over the full matrix.
final class KernelMachineTests: XCTestCase {
    override func setUp() { BLASThreads.set(2) }

    /// A symmetric positive semi-definite `n x n` matrix `A A^T / k` (column-major = row-major).
    private func randomGram(_ n: Int, rank k: Int, seed: UInt64) -> [Double] {
        var r = TestRandom(seed)
        let a = r.array(n * k)
        var g = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for q in 0..<k { g[i * n + j] += a[i * k + q] * a[j * k + q] / Double(k) } } }
        return g
    }

    /// The full matrix as a one-process `DistributedGram` (`examples x classes` rows).
    private func distributed(_ full: [Double], examples m: Int, classes c: Int, blockSize: Int) -> DistributedGram {
        var g = DistributedGram(layout: GramLayout(examples: m, classes: c, blockSize: blockSize, processes: 1, rank: 0))
        g.local = full
        return g
    }

    /// Every ridge of a 13-value grid from one eigendecomposition equals a direct LAPACK Cholesky
    /// solve of `(K + lambda I) X = B` in `Double`, two right-hand sides, on a rank-deficient Gram
    /// (rank 30 of 60, so the small ridges are ill-conditioned: cond up to ~1e6).
    func testRidgeGridFromOneEigendecompositionEqualsCholeskySolves() throws {
        let m = 20, c = 3, n = m * c
        let k = randomGram(n, rank: 30, seed: 1)
        var r = TestRandom(2)
        let b = r.array(n * 2)
        let mean = (0..<n).map { k[$0 * n + $0] }.reduce(0, +) / Double(n)
        let ridges = KernelMachineSection.defaultRidges.map { $0 * mean }
        let grid = try LAPACKGramAlgebra().ridgeSolutions(distributed(k, examples: m, classes: c, blockSize: 6),
                                                         ridges: ridges, rhs: b, columns: 2)
        XCTAssertEqual(grid.count, ridges.count)
        for (q, lambda) in ridges.enumerated() {
            var a = k
            for i in 0..<n { a[i * n + i] += lambda }
            let direct = try LAPACK.choleskySolve(a, n: n, b, nrhs: 2)
            // Forward error bound ~ cond * eps: cond = (lambda_max + lambda) / lambda.
            let scale = direct.reduce(0) { max($0, abs($1)) }
            let tolerance = 1e-13 * (1 + 100 / (lambda / mean)) * scale
            assertClose(grid[q], direct, Tol(rel: 0, abs: tolerance), "ridge \(lambda)")
        }
    }

    /// `leading`, `lowerBlockProducts` and `symmetricProduct` against naive loops over the full matrix.
    func testGramBlocksAgainstFullMatrix() {
        let m = 7, c = 2, n = m * c
        let full = randomGram(n, rank: n, seed: 3)
        var lower = full   // only the lower triangle may be read: poison the upper one
        for i in 0..<n { for j in (i + 1)..<n { lower[i + j * n] = .nan } }
        let g = distributed(lower, examples: m, classes: c, blockSize: 4)
        let comm = SerialCommunicator()
        let sub = g.leading(examples: 4)
        XCTAssertEqual(sub.order, 8)
        for i in 0..<8 { for j in 0...i { XCTAssertEqual(sub.element(row: i, col: j), full[i + j * n]) } }
        var r = TestRandom(4)
        let v = r.array(8), w = r.array(8)
        let products = g.lowerBlockProducts(rows: 8..<n, vectors: [v, w], comm)
        for (q, x) in [v, w].enumerated() {
            let expected = (8..<n).map { i in (0..<8).reduce(0.0) { $0 + full[i + $1 * n] * x[$1] } }
            assertClose(products[q], expected, Tolerance.double, "K_HF x")
        }
        let y = r.array(n)
        let expected = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + full[i + $1 * n] * y[$1] } }
        assertClose(g.symmetricProduct(y, comm), expected, Tolerance.double, "K y")
    }

    /// The whole selected machine of a linear model against a naive reference: its NTK is
    /// `(x_i . x_j + 1) [c = c']` (closed form), every ridge's fit on the fit part and the refit on all
    /// examples by Gaussian elimination in `Double`, held-out squared loss and error, the chosen ridge
    /// (least loss), training error and RMS residual, test predictions `[f_0(X*) +] K(X*, X) alpha`.
    /// The kernel has rank 5 (4 inputs + bias) on 9 fit examples, so the small ridges are near-singular.
    func testSelectedMachineOfLinearModelAgainstNaiveKernelRidge() throws {
        let shape = Shape(1, 1, 4), c = 3, n = 12, nf = 9, nt = 10
        let net = ModelKind.linear.build(input: shape, classes: c, as: Float.self)
        var r = TestRandom(5)
        net.initialize { r.normal() }
        for i in 0..<net.params.count { net.params[i] = Float(0.3 * r.uniform()) }
        // Integer inputs: the Float Jacobians and the Gram are exact (the small ridges would amplify
        // the Float rounding of non-integer Gram entries on this rank-deficient kernel).
        let xs = (0..<(n * 4)).map { _ in Float(Int(r.next() % 5) - 2) }, xt = (0..<(nt * 4)).map { _ in Float(Int(r.next() % 5) - 2) }
        let labels = (0..<n).map { $0 % c }, testLabels = (0..<nt).map { ($0 * 7) % c }
        let data = Dataset(name: "t", images: xs, labels: labels.map(Int32.init), channels: 1, height: 1, width: 4, classCount: c)
        let test = Dataset(name: "s", images: xt, labels: testLabels.map(Int32.init), channels: 1, height: 1, width: 4, classCount: c)
        let relative = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10]
        let machines = try NTKAnalysis(options: NTKGramOptions(memoryBudgetBytes: 1 << 31, blockSize: 3))
            .selectedMachine(net, data: data, fitCount: nf, test: test, relativeRidges: relative)
        XCTAssertEqual(machines.map(\.form), [.offset, .kernel])

        func x(_ images: [Float], _ i: Int) -> [Double] { (0..<4).map { Double(images[i * 4 + $0]) } }
        func kernel(_ a: [Double], _ b: [Double]) -> Double { dot(a, b) + 1 }
        func f0(_ v: [Double], _ k: Int) -> Double {
            (0..<4).reduce(Double(net.params[12 + k])) { $0 + Double(net.params[k * 4 + $1]) * v[$1] }
        }
        func y(_ i: Int, _ k: Int) -> Double { labels[i] == k ? 1 : 0 }
        // The Gram is block diagonal over classes: per class k, the n x n kernel matrix.
        let kx = (0..<n).map { i in (0..<n).map { j in kernel(x(xs, i), x(xs, j)) } }
        let mean = (0..<n).map { kx[$0][$0] }.reduce(0, +) / Double(n)
        func fit(_ rows: Int, _ lambda: Double, _ offset: Bool) -> [[Double]] {   // alpha[class][example]
            (0..<c).map { k in
                var a = [Double](repeating: 0, count: rows * rows)
                for i in 0..<rows { for j in 0..<rows { a[i * rows + j] = kx[i][j] + (i == j ? lambda : 0) } }
                let b = (0..<rows).map { y($0, k) - (offset ? f0(x(xs, $0), k) : 0) }
                return gaussianSolve(a, b, rows)
            }
        }
        func predict(_ v: [Double], _ alpha: [[Double]], _ offset: Bool) -> [Double] {
            (0..<c).map { k in
                (offset ? f0(v, k) : 0) + alpha[k].indices.reduce(0.0) { $0 + kernel(v, x(xs, $1)) * alpha[k][$1] }
            }
        }
        func argmax(_ p: [Double]) -> Int { p.indices.max { p[$0] < p[$1] }! }
        for m in machines {
            let offset = m.form == .offset
            var losses: [Double] = []
            for (q, rel) in relative.enumerated() {
                let alpha = fit(nf, rel * mean, offset)
                var loss = 0.0, wrong = 0
                for i in nf..<n {
                    let p = predict(x(xs, i), alpha, offset)
                    loss += (0..<c).reduce(0.0) { $0 + (p[$1] - y(i, $1)) * (p[$1] - y(i, $1)) }
                    if argmax(p) != labels[i] { wrong += 1 }
                }
                losses.append(loss / Double(n - nf))
                assertClose(m.ridges[q].absolute, rel * mean, Tol(rel: 1e-6, abs: 0), "absolute ridge")
                assertClose(m.ridges[q].heldOutLoss, losses[q], Tol(rel: 1e-5, abs: 1e-6), "\(m.form) held-out loss at \(rel)")
                XCTAssertEqual(m.ridges[q].heldOutError, Double(wrong) / Double(n - nf), "\(m.form) held-out error at \(rel)")
            }
            let best = losses.indices.min { losses[$0] < losses[$1] }!
            XCTAssertEqual(m.chosen, best, "\(m.form): least held-out loss")
            let alpha = fit(n, relative[best] * mean, offset)
            var wrong = 0, squares = 0.0
            for i in 0..<n {
                let p = predict(x(xs, i), alpha, offset)
                squares += (0..<c).reduce(0.0) { $0 + (p[$1] - y(i, $1)) * (p[$1] - y(i, $1)) }
                if argmax(p) != labels[i] { wrong += 1 }
            }
            XCTAssertEqual(m.trainError, Double(wrong) / Double(n), "\(m.form) train error")
            assertClose(m.trainResidual, (squares / Double(n * c)).squareRoot(), Tol(rel: 1e-4, abs: 1e-6), "\(m.form) residual")
            let testWrong = (0..<nt).filter { argmax(predict(x(xt, $0), alpha, offset)) != testLabels[$0] }.count
            XCTAssertEqual(m.testError, Double(testWrong) / Double(nt), "\(m.form) test error")
            XCTAssertEqual(m.trainCount, n); XCTAssertEqual(m.fitCount, nf)
        }
    }

    /// Summary rows: mean, sample standard deviation, min, max over draws, per (replicate, epoch, form).
    func testMachineSummaryOverDraws() throws {
        func row(_ form: String, _ draw: Int, _ e: Double, _ ridge: Double) throws -> NTKMachineRow {
            // Rows have no public initialiser: decode one.
            let fields: [String: Any] = [
                "replicate": 0, "epoch": 1.0, "draw": draw, "form": form, "trainExamples": 100, "fitExamples": 80,
                "heldOutExamples": 20, "ridgeRelative": ridge, "ridge": ridge * 2, "heldOutLoss": 0.5, "trainError": 0.1,
                "trainResidual": 0.2, "testError": e, "networkTestError": 0.3, "batchNorm": "none"]
            return try JSONDecoder().decode(NTKMachineRow.self, from: JSONSerialization.data(withJSONObject: fields))
        }
        var record = TaskRecord(id: "x")
        record.machines = [try row("offset", 0, 0.2, 1e-4), try row("offset", 1, 0.3, 1e-2), try row("offset", 2, 0.4, 1e-3),
                           try row("kernel", 0, 0.5, 1e-3)]
        let s = ExperimentTables(records: [record]).ntkMachineSummary
        XCTAssertEqual(s.map(\.form), ["kernel", "offset"])
        XCTAssertEqual(s[1].draws, 3)
        assertClose(s[1].testErrorMean, 0.3, Tolerance.double)
        assertClose(s[1].testErrorStd, 0.1, Tolerance.double)   // sqrt((0.01 + 0 + 0.01) / 2)
        XCTAssertEqual([s[1].testErrorMin, s[1].testErrorMax], [0.2, 0.4])
        assertClose(s[1].ridgeRelativeGeometricMean, 1e-3, Tolerance.double)
        XCTAssertEqual(s[0].testErrorStd, 0)
    }
}
