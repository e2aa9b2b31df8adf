import Core
import Foundation
import TestSupport
import XCTest

/// Empirical-NTK Gram and its analyses against independent references: the linear model's closed
/// form, finite differences of the network in `Double`, naive sums over the gathered matrix, and
/// primal ridge regression.
final class NTKTests: XCTestCase {
    override func setUp() { BLASThreads.set(2) }

    private func randomNetwork(_ kind: ModelKind, input: Shape, classes: Int, seed: UInt64) -> Network<Float> {
        let net = kind.build(input: input, classes: classes, as: Float.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        for v in net.layout.parameters where v.shape.count == 1 {   // non-trivial biases and BN affine
            for i in v.range { net.params[i] = Float(v.name.contains("bn") && v.name.hasSuffix("weight") ? 1 + 0.3 * r.uniform() : 0.2 * r.uniform()) }
        }
        for v in net.layout.state {
            for i in v.range { net.state[i] = Float(v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : 0.2 * r.uniform()) }
        }
        return net
    }

    private func inputs(_ m: Int, _ shape: Shape, seed: UInt64) -> [Float] {
        var r = TestRandom(seed)
        return (0..<(m * shape.count)).map { _ in Float(r.uniform()) }
    }

    private func fullGram(_ net: Network<Float>, _ x: [Float], budget: Int = 1 << 31, blockSize: Int? = nil) throws -> [Double] {
        let (g, _) = try GramBuilder.build(network: net, inputs: x, communicator: SerialCommunicator(),
                                           options: NTKGramOptions(memoryBudgetBytes: budget, blockSize: blockSize))
        return g.gatherFull(SerialCommunicator())!
    }

    private func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }

    /// A linear model `f = W x + b` has `df_c/dW[c',k] = [c = c'] x_k`, `df_c/db_c' = [c = c']`, so
    /// `K[(i,c),(j,c')] = (x_i . x_j + 1) [c = c']`. Integer-valued inputs make the reference exact.
    func testLinearModelGramIsXXtPlusOneKroneckerIdentity() throws {
        let shape = Shape(1, 2, 3), m = 5, c = 3
        let net = randomNetwork(.linear, input: shape, classes: c, seed: 1)
        var r = TestRandom(2)
        let x = (0..<(m * shape.count)).map { _ in Float((r.uniform() * 3).rounded()) }
        let k = try fullGram(net, x, blockSize: 3)   // 5 blocks: every tile kind, uneven ownership
        var expected = [Double](repeating: 0, count: m * c * m * c)
        for i in 0..<m { for j in 0..<m {
            var d = 1.0
            for q in 0..<shape.count { d += Double(x[i * shape.count + q]) * Double(x[j * shape.count + q]) }
            for cc in 0..<c { expected[(i * c + cc) * m * c + j * c + cc] = d }
        } }
        assertClose(k, expected, Tolerance.absolute(0), "linear Gram")
    }

    /// `K e_(j,c') = J (J^T e_(j,c'))`: `g = J^T e` by a `Double` backward pass, then `J g` by central
    /// differences of the `Double` network along `g` — independent of the Jacobian rows and tiles.
    private func checkAgainstFiniteDifferences(_ kind: ModelKind, input: Shape, classes c: Int, m: Int, blockSize: Int) throws {
        let net = randomNetwork(kind, input: input, classes: c, seed: 7)
        let x = inputs(m, input, seed: 8)
        let k = try fullGram(net, x, blockSize: blockSize)
        let dnet = kind.build(input: input, classes: c, as: Double.self)
        for i in 0..<net.parameterCount { dnet.params[i] = Double(net.params[i]) }
        for i in 0..<net.layout.stateCount { dnet.state[i] = Double(net.state[i]) }
        let xd = x.map(Double.init), n = m * c, p = net.parameterCount
        let w0 = dnet.params.array
        var reference = [Double](repeating: 0, count: n * n)
        for col in 0..<n {
            let (j, cc) = (col / c, col % c)
            dnet.zeroGrads()
            _ = xd.withUnsafeBufferPointer { dnet.forward($0.baseAddress! + j * input.count, n: 1, mode: .eval) }
            var e = [Double](repeating: 0, count: c); e[cc] = 1
            e.withUnsafeBufferPointer { dnet.backward($0.baseAddress!, n: 1, mode: .eval) }
            let g = dnet.grads.array
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let h = 1e-5
            func f(_ s: Double) -> [Double] {
                for q in 0..<p { dnet.params[q] = w0[q] + s * h * g[q] / norm }
                let y = xd.withUnsafeBufferPointer { dnet.forward($0.baseAddress!, n: m, mode: .eval) }
                return Array(UnsafeBufferPointer(start: y, count: n))
            }
            let plus = f(1), minus = f(-1)
            for row in 0..<n { reference[row * n + col] = (plus[row] - minus[row]) / (2 * h) * norm }
            for q in 0..<p { dnet.params[q] = w0[q] }
        }
        XCTAssertGreaterThan(maxAbs(reference), 0)
        assertGramClose(k, reference, n: n, Self.floatGram, "\(kind.rawValue) Gram vs finite differences")
    }

    /// A Float Gram against a Double reference, per entry: an entry `J_a . J_b` computed from Float
    /// Jacobian rows carries an error of order `eps_f |J_a| |J_b| = eps_f sqrt(K_aa K_bb)`, so each
    /// entry is compared after dividing both by its own `sqrt(K_aa K_bb)` (reference diagonal) with
    /// `|a - b| <= abs + rel |b|`: the absolute part is per entry, not a fraction of `max |K|`.
    static let floatGram = Tol(rel: 1e-4, abs: 2e-5)

    private func assertGramClose(_ k: [Double], _ reference: [Double], n: Int, _ tol: Tol, _ what: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        let d = (0..<n).map { reference[$0 * n + $0].squareRoot() }
        XCTAssertTrue(d.allSatisfy { $0 > 0 }, "\(what): zero diagonal in the reference", file: file, line: line)
        let scale = (0..<(n * n)).map { d[$0 / n] * d[$0 % n] }
        assertClose((0..<(n * n)).map { k[$0] / scale[$0] }, (0..<(n * n)).map { reference[$0] / scale[$0] }, tol,
                    "\(what) (entries / sqrt(K_aa K_bb))", file: file, line: line)
    }

    /// The Jacobian of a Float network's outputs (`m` examples x `c` classes) by backward passes of
    /// the same network in Double, one output at a time (no `JacobianRows`, no tiles, no chunks).
    private func doubleJacobian(_ net: Network<Float>, _ x: [Float], m: Int) -> [Double] {
        let input = net.inputShape, c = net.classes, p = net.parameterCount
        let dnet = net.kind.build(input: input, classes: c, as: Double.self)
        for i in 0..<p { dnet.params[i] = Double(net.params[i]) }
        for i in 0..<net.layout.stateCount { dnet.state[i] = Double(net.state[i]) }
        let xd = x.map(Double.init)
        var jac = [Double](repeating: 0, count: m * c * p)
        for a in 0..<(m * c) {
            dnet.zeroGrads()
            _ = xd.withUnsafeBufferPointer { dnet.forward($0.baseAddress! + (a / c) * input.count, n: 1, mode: .eval) }
            var e = [Double](repeating: 0, count: c); e[a % c] = 1
            e.withUnsafeBufferPointer { dnet.backward($0.baseAddress!, n: 1, mode: .eval) }
            for q in 0..<p { jac[a * p + q] = dnet.grads[q] }
        }
        // The rows are checked themselves: J v by central differences of the Double network along
        // two random directions v.
        let w0 = dnet.params.array
        var r = TestRandom(99)
        for _ in 0..<2 {
            let v = r.array(p), h = 1e-6
            func f(_ s: Double) -> [Double] {
                for q in 0..<p { dnet.params[q] = w0[q] + s * h * v[q] }
                let y = xd.withUnsafeBufferPointer { dnet.forward($0.baseAddress!, n: m, mode: .eval) }
                return Array(UnsafeBufferPointer(start: y, count: m * c))
            }
            let plus = f(1), minus = f(-1)
            let fd = (0..<(m * c)).map { (plus[$0] - minus[$0]) / (2 * h) }
            let jv = (0..<(m * c)).map { a in (0..<p).reduce(0.0) { $0 + jac[a * p + $1] * v[$1] } }
            assertClose(jv, fd, Tolerance.finiteDifference, "Double Jacobian rows vs central differences")
        }
        for q in 0..<p { dnet.params[q] = w0[q] }
        return jac
    }

    func testMLPGramMatchesFiniteDifferences() throws {
        try checkAgainstFiniteDifferences(.mlp, input: Shape(1, 2, 2), classes: 3, m: 4, blockSize: 3)
    }

    /// ResNet-20 with BatchNorm in inference mode (running statistics), residual blocks and strides.
    func testResNet20GramMatchesFiniteDifferences() throws {
        try checkAgainstFiniteDifferences(.resnet20, input: Shape(3, 8, 8), classes: 2, m: 3, blockSize: 2)
    }

    /// Symmetric PSD, traced kernel = sum of the diagonal blocks, and the Gram equals `J J^T` of the
    /// Jacobian from per-output backward passes of the network in Double (itself checked against
    /// central differences; naive Double product) — including a Gram built in several parameter chunks.
    func testGramEqualsJJtAcrossChunksPSDAndTraced() throws {
        let shape = Shape(3, 8, 8), m = 6, c = 4
        let net = randomNetwork(.simplecnn, input: shape, classes: c, seed: 3)
        let x = inputs(m, shape, seed: 4)
        let jac = doubleJacobian(net, x, m: m)
        let n = m * c, p = net.parameterCount
        var jjt = [Double](repeating: 0, count: n * n)
        for a in 0..<n { for b in 0...a {
            var s = 0.0
            for q in 0..<p { s += jac[a * p + q] * jac[b * p + q] }
            jjt[a * n + b] = s; jjt[b * n + a] = s
        } }
        let scale = maxAbs(jjt)
        // Budget for three parameter chunks (GramPlan's formula): 3 blocks of 8 rows; the worst rank
        // count (p = 2) holds 2 own + 2 travelling blocks = 32 rows of a chunk.
        let layout = GramLayout(examples: m, classes: c, blockSize: 8, processes: 1, rank: 0)
        let reserve = 256 << 20 + 64 * p
        let budget = reserve + 3 * n * n * 8 + 32 * 4 * (p / 3 + 64)
        let plan = try GramPlan(layout: layout, parameters: p, budgetBytes: budget)
        XCTAssertEqual(plan.chunks.count, 3, "chunks of \(plan.chunkSize)")
        XCTAssertEqual(plan.chunks.last?.upperBound, p)
        for (budget, what) in [(1 << 31, "one chunk"), (budget, "three chunks")] {
            let (g, stats) = try GramBuilder.build(network: net, inputs: x, communicator: SerialCommunicator(),
                                                   options: NTKGramOptions(memoryBudgetBytes: budget, blockSize: 8))
            XCTAssertEqual(stats.parameterChunks, what == "one chunk" ? 1 : 3)
            let k = g.gatherFull(SerialCommunicator())!
            assertGramClose(k, jjt, n: n, Self.floatGram, "Gram vs Double J J^T, \(what)")
            let eig = try LAPACK.symmetricEigenvalues(k, n: n)
            XCTAssertGreaterThan(eig.min()!, -1e-6 * eig.max()!, "PSD")
            // Traced kernel against the diagonal blocks of the gathered Gram.
            let t = g.traced().gatherFull(SerialCommunicator())!
            var expected = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m { for cc in 0..<c { expected[i * m + j] += k[(i * c + cc) * n + j * c + cc] } } }
            assertClose(t, expected, Tolerance.absolute(1e-9 * scale), "traced kernel")
        }
    }

    /// The Gram must not depend on the thread count (tiles and Jacobian rows are single-threaded
    /// code of fixed shape): bitwise.
    func testGramIsBitwiseIndependentOfThreads() throws {
        let net = randomNetwork(.simplecnn, input: Shape(3, 8, 8), classes: 3, seed: 5)
        let x = inputs(7, Shape(3, 8, 8), seed: 6)
        var grams: [[Double]] = []
        for threads in [1, 2, 3] {
            BLASThreads.set(threads)
            grams.append(try fullGram(net, x, blockSize: 6))
        }
        XCTAssertEqual(grams[0], grams[1])
        XCTAssertEqual(grams[0], grams[2])
    }

    /// Distance, alignment and trace on the distributed representation against naive sums over
    /// the gathered matrices; `S(K, a K) = 0`, `S` symmetric.
    func testDistanceAlignmentTraceAgainstNaiveSums() throws {
        let shape = Shape(1, 3, 3), m = 6, c = 3
        let a = randomNetwork(.mlp, input: shape, classes: c, seed: 11), b = randomNetwork(.mlp, input: shape, classes: c, seed: 12)
        let x = inputs(m, shape, seed: 13)
        let analysis = NTKAnalysis(options: NTKGramOptions(memoryBudgetBytes: 1 << 31, blockSize: 6))
        let probe = Dataset(name: "probe", images: x, labels: [0, 1, 2, 0, 1, 2].map(Int32.init), channels: 1, height: 3, width: 3, classCount: c)
        let (ka, _) = try analysis.gram(a, probe: probe), (kb, _) = try analysis.gram(b, probe: probe)
        let fa = ka.gatherFull(SerialCommunicator())!, fb = kb.gatherFull(SerialCommunicator())!
        var scaled = ka
        for i in scaled.local.indices { scaled.local[i] *= 3 }
        XCTAssertEqual(analysis.distance(ka, scaled), 0, accuracy: 1e-12)
        let naive = 1 - dot(fa, fb) / (dot(fa, fa).squareRoot() * dot(fb, fb).squareRoot())
        XCTAssertGreaterThan(naive, 1e-3)
        assertClose(analysis.distance(ka, kb), naive, Tolerance.double, "distance")
        XCTAssertEqual(analysis.distance(ka, kb), analysis.distance(kb, ka), accuracy: 1e-15)
        let n = m * c
        assertClose(ka.trace(SerialCommunicator()), (0..<n).reduce(0) { $0 + fa[$1 * n + $1] }, Tolerance.double, "trace")

        let labels = [0, 1, 2, 0, 1, 2]
        var y = [Double](repeating: 0, count: n)
        for i in 0..<m { y[i * c + labels[i]] = 1 }
        var kyy = 0.0
        for i in 0..<n { for j in 0..<n { kyy += fa[i * n + j] * y[i] * y[j] } }
        let al = analysis.alignment(ka, labels: labels)
        assertClose(al.full, kyy / (dot(fa, fa).squareRoot() * dot(y, y)), Tolerance.double, "full alignment")
        var t = [Double](repeating: 0, count: m * m)
        for i in 0..<m { for j in 0..<m { for cc in 0..<c { t[i * m + j] += fa[(i * c + cc) * n + j * c + cc] } } }
        var tyy = 0.0, yyNorm2 = 0.0
        for i in 0..<m { for j in 0..<m where labels[i] == labels[j] { tyy += t[i * m + j]; yyNorm2 += 1 } }
        assertClose(al.traced, tyy / (dot(t, t).squareRoot() * yyNorm2.squareRoot()), Tolerance.double, "traced alignment")
    }

    /// Spectrum of the linear model's Gram: eigenvalues of `(X X^T + 1)`, each `C` times.
    func testSpectrumOfLinearModel() throws {
        let shape = Shape(1, 1, 4), m = 3, c = 2
        let net = randomNetwork(.linear, input: shape, classes: c, seed: 21)
        let x: [Float] = [1, 0, 2, -1, 0, 1, 1, 3, 2, 2, 0, 1]
        let analysis = NTKAnalysis(options: NTKGramOptions(memoryBudgetBytes: 1 << 31, blockSize: 2))
        let probe = Dataset(name: "p", images: x, labels: [0, 1, 0], channels: 1, height: 1, width: 4, classCount: c)
        let (g, _) = try analysis.gram(net, probe: probe)
        let s = try analysis.spectrum(g, topVectors: 1)
        var small = [Double](repeating: 0, count: m * m)
        for i in 0..<m { for j in 0..<m {
            small[i * m + j] = 1 + (0..<4).reduce(0.0) { $0 + Double(x[i * 4 + $1]) * Double(x[j * 4 + $1]) }
        } }
        let lambda = try LAPACK.symmetricEigenvalues(small, n: m).reversed().flatMap { [$0, $0] }
        // Reported on the grid of 9 significant digits of lambda_max = 17.2...: within half of 1e-7.
        assertClose(s.eigenvalues, lambda, Tol(rel: 0, abs: 0.5e-7 + 1e-12), "eigenvalues")
        assertClose(s.trace, small[0] * 2 + small[4] * 2 + small[8] * 2, Tolerance.double, "trace")
        assertClose(s.conditionNumber, lambda[0] / lambda.last!, Tol(rel: 1e-8, abs: 0), "condition number")
        let s1 = lambda.reduce(0, +), s2 = lambda.reduce(0) { $0 + $1 * $1 }
        assertClose(s.effectiveRank, s1 * s1 / s2, Tol(rel: 1e-8, abs: 0), "effective rank")
        // The top eigenvector is an eigenvector of the full Gram with the top eigenvalue.
        let k = g.gatherFull(SerialCommunicator())!, v = s.topVectors[0], n = m * c
        // (Components are reported on a 1e-7 grid.)
        for i in 0..<n { XCTAssertEqual((0..<n).reduce(0) { $0 + k[i * n + $1] * v[$1] }, lambda[0] * v[i], accuracy: 1e-6 * lambda[0]) }
        XCTAssertEqual(v.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertGreaterThan(v.map(abs).max()!, -v.min()!, "sign convention: the largest-magnitude component is positive")
        // The reporting grid: 9 significant digits of the largest magnitude, no negative zero.
        let q = NTKSpectrum.quantized([123.456789012345, 1.234e-8, -2.5e-7])
        XCTAssertEqual(q[0], 123.456789, accuracy: 1e-12)
        XCTAssertEqual(q[1], 0)
        XCTAssertEqual(q[2].sign, .plus)
    }

    /// NTK machine of a linear model = ridge regression on features `[x, 1]` in primal form:
    /// `f0(X*) + Phi* (Phi^T Phi + lambda I)^-1 Phi^T (Y - f0(X))`, solved here by Gaussian elimination.
    func testNTKMachineOfLinearModelEqualsRidgeRegression() throws {
        let shape = Shape(1, 1, 3), c = 3, n = 6, nt = 5, ridge = 0.5
        let net = randomNetwork(.linear, input: shape, classes: c, seed: 31)
        let xs = inputs(n, shape, seed: 32), xt = inputs(nt, shape, seed: 33)
        let labels = [0, 1, 2, 2, 1, 0]
        let train = Dataset(name: "t", images: xs, labels: labels.map(Int32.init), channels: 1, height: 1, width: 3, classCount: c)
        let test = Dataset(name: "s", images: xt, labels: [0, 1, 2, 0, 1].map(Int32.init), channels: 1, height: 1, width: 3, classCount: c)
        let result = try NTKAnalysis(options: NTKGramOptions(memoryBudgetBytes: 1 << 31, blockSize: 3))
            .machine(net, train: train, test: test, ridge: ridge)

        let d = 4   // features x (3) and 1
        let w = (0..<c).map { cc in (0..<3).map { Double(net.params[cc * 3 + $0]) } + [Double(net.params[9 + cc])] }
        func phi(_ x: [Float], _ i: Int) -> [Double] { (0..<3).map { Double(x[i * 3 + $0]) } + [1] }
        func f0(_ f: [Double], _ cc: Int) -> Double { dot(w[cc], f) }
        var a = [Double](repeating: 0, count: d * d)
        for i in 0..<n { let f = phi(xs, i); for p in 0..<d { for q in 0..<d { a[p * d + q] += f[p] * f[q] } } }
        for p in 0..<d { a[p * d + p] += ridge }
        var expected = [Double](repeating: 0, count: nt * c), wrong = 0
        for cc in 0..<c {
            var rhs = [Double](repeating: 0, count: d)
            for i in 0..<n { let f = phi(xs, i); let r = (labels[i] == cc ? 1 : 0) - f0(f, cc); for p in 0..<d { rhs[p] += f[p] * r } }
            let beta = gaussianSolve(a, rhs, d)
            for i in 0..<nt { let f = phi(xt, i); expected[i * c + cc] = f0(f, cc) + dot(f, beta) }
        }
        for i in 0..<nt {
            let row = Array(expected[(i * c)..<(i * c + c)])
            if row.firstIndex(of: row.max()!)! != test.label(i) { wrong += 1 }
        }
        assertClose(result.testPredictions, expected, Tol(rel: 1e-4, abs: 1e-4), "machine predictions")
        XCTAssertEqual(result.testError, Double(wrong) / Double(nt))
    }

    /// A Gram that cannot fit is refused before any work, with the sizes and the fix.
    func testMemoryRefusalNamesTheNumbers() {
        let layout = GramLayout(examples: 5000, classes: 10, blockSize: 500, processes: 1, rank: 0)
        XCTAssertThrowsError(try GramPlan(layout: layout, parameters: 288_298, budgetBytes: 4 << 30)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("50000 x 50000"), message)
            XCTAssertTrue(message.contains("18.63 GiB for the Gram"), message)
            XCTAssertTrue(message.contains("budget is 4.00 GiB"), message)
            XCTAssertTrue(message.contains("ntk.memory_gb") && message.contains("ntk.probe"), message)
        }
        // SimpleCNN at m = 500 fits the default budget in two parameter chunks.
        let plan = try? GramPlan(layout: GramLayout(examples: 500, classes: 10, blockSize: 500, processes: 1, rank: 0),
                                 parameters: 288_298, budgetBytes: NTKGramOptions().memoryBudgetBytes)
        XCTAssertEqual(plan?.chunks.count, 2)
    }

    /// `.npy` v1.0: magic, version, header padded to 64 bytes with the dict, then little-endian f8.
    func testNPYEncoding() {
        let data = [UInt8](NPY.encode([1.5, -2, 3, 4], shape: [2, 2]))
        XCTAssertEqual(Array(data[0..<8]), [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(data[8]) + Int(data[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"), header)
        XCTAssertEqual(header.last, "\n")
        let values = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        XCTAssertEqual(values, [1.5, -2, 3, 4])
    }
}
