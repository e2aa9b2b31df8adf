import Foundation
import XCTest
import Core

/// Fixed-seed 64-bit linear congruential generator (Knuth's MMIX constants); test-only.
private struct TestLCG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    /// Uniform in [0, 1) from the top 53 bits.
    mutating func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) * 0x1p-53
    }
    /// Standard normal by Box–Muller.
    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

/// Random symmetric joint-probability matrix: zero diagonal, positive off-diagonal, sum 1.
private func randomJointP(_ n: Int, _ rng: inout TestLCG) -> [Double] {
    var p = [Double](repeating: 0, count: n * n)
    var total = 0.0
    for i in 0..<n {
        for j in (i + 1)..<n {
            let v = 0.05 + rng.uniform()
            p[i * n + j] = v; p[j * n + i] = v
            total += 2 * v
        }
    }
    return p.map { $0 / total }
}

/// Reference KL(P‖Q) for a dense P, straight from the definition.
private func referenceKL(_ p: [Double], _ y: [Double], n: Int, d: Int) -> Double {
    func w(_ i: Int, _ j: Int) -> Double {
        var s = 0.0
        for k in 0..<d { let t = y[i * d + k] - y[j * d + k]; s += t * t }
        return 1 / (1 + s)
    }
    var z = 0.0
    for i in 0..<n { for j in 0..<n where j != i { z += w(i, j) } }
    var kl = 0.0
    for i in 0..<n {
        for j in 0..<n where j != i && p[i * n + j] > 0 {
            kl += p[i * n + j] * log(p[i * n + j] / (w(i, j) / z))
        }
    }
    return kl
}

/// 5 isotropic unit-variance Gaussian clusters × 40 points in 10-D, centres (10/√2)·e_c,
/// i.e. pairwise 10σ apart. Returns (flat data, labels).
private func clusterData() -> ([Double], [Int]) {
    var rng = TestLCG(seed: 2024)
    var x: [Double] = []
    var labels: [Int] = []
    let offset = 10 / 2.0.squareRoot()
    for c in 0..<5 {
        for _ in 0..<40 {
            for k in 0..<10 { x.append((k == c ? offset : 0) + rng.gaussian()) }
            labels.append(c)
        }
    }
    return (x, labels)
}

/// Fraction of (point, neighbour) pairs among the k nearest embedding neighbours that
/// share the point's label.
private func knnPurity(_ y: [Double], d: Int, labels: [Int], k: Int) -> Double {
    let n = labels.count
    var same = 0
    for i in 0..<n {
        var dist: [(Double, Int)] = []
        for j in 0..<n where j != i {
            var s = 0.0
            for a in 0..<d { let t = y[i * d + a] - y[j * d + a]; s += t * t }
            dist.append((s, j))
        }
        dist.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        for t in 0..<k where labels[dist[t].1] == labels[i] { same += 1 }
    }
    return Double(same) / Double(n * k)
}

/// Entropy (nats) of p_j ∝ exp(−β d_j).
private func rowEntropy(beta: Double, distances d: [Double]) -> Double {
    let dmin = d.min()!
    let w = d.map { exp(-beta * ($0 - dmin)) }
    let s = w.reduce(0, +)
    var h = 0.0
    for v in w where v > 0 { let p = v / s; h -= p * log(p) }
    return h
}

final class TSNETests: XCTestCase {

    // 1. Exact gradient vs central finite differences of KL(P‖Q).
    func testExactGradientMatchesFiniteDifferences() throws {
        for d in [2, 3] {  // d = 2 uses the specialised loop, d = 3 the generic one
            var rng = TestLCG(seed: 7 + UInt64(d))
            let n = 9
            let p = randomJointP(n, &rng)
            let P = try TSNEJointProbabilities(dense: p, count: n)
            let y = (0..<(n * d)).map { _ in 2 * rng.gaussian() }
            let g = try tsneGradient(P, embedding: y, dimensions: d)
            XCTAssertEqual(try tsneKLDivergence(P, embedding: y, dimensions: d), referenceKL(p, y, n: n, d: d),
                           accuracy: 1e-12)
            let h = 1e-5
            var maxErr = 0.0, maxG = 0.0
            for c in 0..<(n * d) {
                var yp = y, ym = y
                yp[c] += h; ym[c] -= h
                let fd = (referenceKL(p, yp, n: n, d: d) - referenceKL(p, ym, n: n, d: d)) / (2 * h)
                maxErr = max(maxErr, abs(fd - g[c]))
                maxG = max(maxG, abs(g[c]))
            }
            XCTAssertGreaterThan(maxG, 1e-3)
            XCTAssertLessThan(maxErr / maxG, 1e-7, "d = \(d)")
        }
    }

    // 2. Barnes–Hut with θ = 0 equals the exact gradient; θ = 0.5 is close.
    func testBarnesHutThetaZeroEqualsExactGradient() throws {
        var rng = TestLCG(seed: 99)
        let n = 60
        let p = randomJointP(n, &rng)
        let P = try TSNEJointProbabilities(dense: p, count: n)
        var y = (0..<(2 * n)).map { _ in 3 * rng.gaussian() }
        // Coincident points exercise the quadtree's duplicate handling.
        y[2 * 5] = y[2 * 4]; y[2 * 5 + 1] = y[2 * 4 + 1]
        y[2 * 6] = y[2 * 4]; y[2 * 6 + 1] = y[2 * 4 + 1]
        for alpha in [1.0, 12.0] {
            let exact = try tsneGradient(P, embedding: y, dimensions: 2, exaggeration: alpha)
            let bh0 = try tsneGradient(P, embedding: y, dimensions: 2, exaggeration: alpha, method: .barnesHut(theta: 0))
            let bh5 = try tsneGradient(P, embedding: y, dimensions: 2, exaggeration: alpha, method: .barnesHut(theta: 0.5))
            let scale = exact.map { abs($0) }.max()!
            let err0 = zip(exact, bh0).map { abs($0 - $1) }.max()!
            let err5 = zip(exact, bh5).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err0, 1e-10 * scale)
            XCTAssertLessThan(err5, 0.05 * scale)
        }
        // Sparse (k-NN) P: Barnes–Hut θ = 0 still equals the exact evaluation of the same P.
        let x = (0..<(n * 5)).map { _ in rng.gaussian() }
        let sparse = try tsneAffinities(x, dimension: 5, perplexity: 5, neighbors: 16).joint
        let e = try tsneGradient(sparse, embedding: y, dimensions: 2)
        let b = try tsneGradient(sparse, embedding: y, dimensions: 2, method: .barnesHut(theta: 0))
        let s = e.map { abs($0) }.max()!
        XCTAssertLessThanOrEqual(zip(e, b).map { abs($0 - $1) }.max()!, 1e-10 * s)
    }

    // 3. Perplexity calibration.
    func testPerplexityCalibration() throws {
        // Closed form: point 0 has m neighbours at squared distance a and r at b. If the far
        // group carries mass x, then H = −(1−x) ln((1−x)/m) − x ln(x/r) and
        // β = ln(r(1−x) / (m x)) / (b − a).
        let m = 3, r = 5, a = 1.0, b = 4.0, xFar = 0.3
        let dim = m + r
        var data = [Double](repeating: 0, count: (dim + 1) * dim)
        for k in 0..<dim { data[(k + 1) * dim + k] = k < m ? a.squareRoot() : b.squareRoot() }
        let entropy = -(1 - xFar) * log((1 - xFar) / Double(m)) - xFar * log(xFar / Double(r))
        let perplexity = exp(entropy)
        let expectedBeta = log(Double(r) * (1 - xFar) / (Double(m) * xFar)) / (b - a)
        for neighbors in [nil, dim] as [Int?] {
            let aff = try tsneAffinities(data, dimension: dim, perplexity: perplexity, neighbors: neighbors)
            XCTAssertEqual(aff.betas[0], expectedBeta, accuracy: 5e-5)
            let d0 = (0..<m).map { _ in a } + (0..<r).map { _ in b }
            XCTAssertEqual(rowEntropy(beta: aff.betas[0], distances: d0), log(perplexity), accuracy: 1e-5)
        }

        // Random data: every conditional row (exact and k-NN) has entropy ln(perplexity).
        var rng = TestLCG(seed: 5)
        let n = 120, dd = 6, perp = 12.0
        let x = (0..<(n * dd)).map { _ in rng.gaussian() * (1 + 0.1 * rng.uniform()) }
        let k = TSNESettings(perplexity: perp).neighborCount(pointCount: n)
        XCTAssertEqual(k, 37)
        for neighbors in [nil, k] as [Int?] {
            let aff = try tsneAffinities(x, dimension: dd, perplexity: perp, neighbors: neighbors)
            var total = 0.0
            for i in 0..<n {
                var dist: [(Double, Int)] = []
                for j in 0..<n where j != i {
                    var s = 0.0
                    for c in 0..<dd { let t = x[i * dd + c] - x[j * dd + c]; s += t * t }
                    dist.append((s, j))
                }
                dist.sort { $0.0 < $1.0 }
                let used = dist.prefix(neighbors ?? (n - 1)).map { $0.0 }
                XCTAssertEqual(rowEntropy(beta: aff.betas[i], distances: used), log(perp), accuracy: 1e-5)
            }
            // P is symmetric and sums to 1.
            let dense = aff.joint.dense()
            for i in 0..<n { for j in 0..<n { XCTAssertEqual(dense[i * n + j], dense[j * n + i]) } }
            for v in aff.joint.values { total += v }
            XCTAssertEqual(total, 1, accuracy: 1e-12)
        }
    }

    // 4. Separated clusters: trustworthiness and k-NN label purity of the embedding.
    func testSeparatedClustersAreEmbeddedFaithfully() throws {
        let (x, labels) = clusterData()
        for method in [TSNEMethod.exact, .barnesHut] {
            let result = try tsne(x, dimension: 10, settings: TSNESettings(method: method))
            XCTAssertEqual(result.method, method)
            XCTAssertEqual(result.count, 200)
            XCTAssertTrue(result.embedding.allSatisfy { $0.isFinite })
            let t = try trustworthiness(high: x, highDimension: 10, low: result.embedding, lowDimension: 2, neighbors: 5)
            let purity = knnPurity(result.embedding, d: 2, labels: labels, k: 5)
            XCTAssertGreaterThanOrEqual(t, 0.9, "\(method)")
            XCTAssertGreaterThanOrEqual(purity, 0.95, "\(method)")
            XCTAssertTrue(result.klDivergence.isFinite && result.klDivergence > 0)
        }
    }

    // 5. Trustworthiness against hand-computed values.
    func testTrustworthinessHandComputed() throws {
        // n = 4, k = 1. High x = (0, 1, 3, 7), low y = (7, 0, 3, 1). Low nearest neighbours
        // 0→2, 1→3, 2→3, 3→1 with high ranks 2, 3, 3, 2: penalty 1+2+2+1 = 6,
        // T = 1 − 2·6 / (4·1·(8 − 3 − 1)) = 0.25.
        XCTAssertEqual(try trustworthiness(high: [[0], [1], [3], [7]], low: [[7], [0], [3], [1]], neighbors: 1),
                       0.25, accuracy: 1e-15)
        // n = 5, k = 2. High x = (0, 1, 3, 7, 15), low reversed (15, 7, 3, 1, 0). Low 2-NN
        // {1,2}, {2,3}, {3,4}, {4,2}, {3,2}; penalties 0, 1, 3, 2, 0 = 6,
        // T = 1 − 2·6 / (5·2·(10 − 6 − 1)) = 0.6.
        XCTAssertEqual(try trustworthiness(high: [[0], [1], [3], [7], [15]], low: [[15], [7], [3], [1], [0]],
                                           neighbors: 2), 0.6, accuracy: 1e-15)
        // A similarity transform preserves every distance order: T = 1.
        var rng = TestLCG(seed: 3)
        let high = (0..<30).map { _ in [rng.gaussian(), rng.gaussian()] }
        let c = cos(0.7), s = sin(0.7)
        let low = high.map { [3 * (c * $0[0] - s * $0[1]) + 5, 3 * (s * $0[0] + c * $0[1]) - 1] }
        XCTAssertEqual(try trustworthiness(high: high, low: low, neighbors: 5), 1)
        XCTAssertEqual(try trustworthiness(high: high, low: high, neighbors: 14), 1)
        XCTAssertThrowsError(try trustworthiness(high: high, low: low, neighbors: 15))
    }

    // 6. Determinism: bit-identical embeddings from two runs.
    func testDeterminism() throws {
        let (x, _) = clusterData()
        for method in [TSNEMethod.exact, .barnesHut] {
            let settings = TSNESettings(perplexity: 20, iterations: 400, method: method)
            let a = try tsne(x, dimension: 10, settings: settings)
            let b = try tsne(x, dimension: 10, settings: settings)
            XCTAssertEqual(a.embedding.map(\.bitPattern), b.embedding.map(\.bitPattern))
            XCTAssertEqual(a.klDivergence.bitPattern, b.klDivergence.bitPattern)
            XCTAssertEqual(a.betas.map(\.bitPattern), b.betas.map(\.bitPattern))
        }
    }

    // PCA initialisation against the closed-form eigenvectors of a 2 × 2 covariance.
    func testPCAInitialization() throws {
        var rng = TestLCG(seed: 11)
        let n = 50
        var x: [Double] = []
        for _ in 0..<n {
            let u = 3 * rng.gaussian(), v = rng.gaussian()
            x += [0.8 * u - 0.6 * v + 2, 0.6 * u + 0.8 * v - 1]
        }
        let r = try tsne(x, dimension: 2, settings: TSNESettings(perplexity: 5, iterations: 0))
        XCTAssertEqual(r.iterations, 0)
        var mx = 0.0, my = 0.0
        for i in 0..<n { mx += x[2 * i]; my += x[2 * i + 1] }
        mx /= Double(n); my /= Double(n)
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for i in 0..<n {
            let a = x[2 * i] - mx, b = x[2 * i + 1] - my
            sxx += a * a; sxy += a * b; syy += b * b
        }
        let angle = 0.5 * atan2(2 * sxy, sxx - syy)
        var v1 = [cos(angle), sin(angle)], v2 = [-sin(angle), cos(angle)]
        if abs(v1[1]) > abs(v1[0]) ? v1[1] < 0 : v1[0] < 0 { v1 = v1.map { -$0 } }
        if abs(v2[1]) > abs(v2[0]) ? v2[1] < 0 : v2[0] < 0 { v2 = v2.map { -$0 } }
        var p1 = [Double](), p2 = [Double]()
        for i in 0..<n {
            let a = x[2 * i] - mx, b = x[2 * i + 1] - my
            p1.append(a * v1[0] + b * v1[1]); p2.append(a * v2[0] + b * v2[1])
        }
        let sd = (p1.map { $0 * $0 }.reduce(0, +) / Double(n)).squareRoot()
        for i in 0..<n {
            XCTAssertEqual(r.embedding[2 * i], p1[i] * 1e-4 / sd, accuracy: 1e-12)
            XCTAssertEqual(r.embedding[2 * i + 1], p2[i] * 1e-4 / sd, accuracy: 1e-12)
        }
    }

    func testInvalidInputIsRejected() throws {
        let good = (0..<40).map { Double($0 % 7) + 0.1 * Double($0) }
        func expect(_ error: TSNEError, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { XCTAssertEqual($0 as? TSNEError, error) }
        }
        expect(.tooFewPoints(count: 3, minimum: 4)) { _ = try tsne([[0], [1], [2]]) }
        expect(.raggedRows(row: 2, expected: 2, found: 1)) { _ = try tsne([[0, 1], [1, 2], [3], [4, 5]]) }
        expect(.nonFiniteValue(point: 3, coordinate: 1)) {
            var bad = good; bad[7] = .nan
            _ = try tsne(bad, dimension: 2)
        }
        expect(.perplexityTooLarge(perplexity: 19, pointCount: 20)) {
            _ = try tsne(good, dimension: 2, settings: TSNESettings(perplexity: 19))
        }
        XCTAssertNoThrow(try tsne(good, dimension: 2, settings: TSNESettings(perplexity: 18.9, iterations: 5)))
        expect(.countNotMultipleOfDimension(count: 40, dimension: 3)) { _ = try tsne(good, dimension: 3) }
        expect(.degenerateInput("all input points coincide")) {
            _ = try tsne([Double](repeating: 1, count: 20), dimension: 2, settings: TSNESettings(perplexity: 2))
        }
        let fields: [(String, TSNESettings)] = [
            ("perplexity", TSNESettings(perplexity: 0)),
            ("iterations", TSNESettings(iterations: -1)),
            ("theta", TSNESettings(theta: -0.1)),
            ("earlyExaggeration", TSNESettings(earlyExaggeration: 0.5)),
            ("exaggerationIterations", TSNESettings(exaggerationIterations: -1)),
            ("momentumSwitchIteration", TSNESettings(momentumSwitchIteration: -1)),
            ("learningRate", TSNESettings(learningRate: 0)),
            ("dimensions", TSNESettings(dimensions: 0)),
            ("dimensions", TSNESettings(method: .barnesHut, dimensions: 3)),
            ("minGradientNorm", TSNESettings(minGradientNorm: .infinity)),
        ]
        for (field, settings) in fields {
            XCTAssertThrowsError(try settings.validate()) { error in
                guard case let .invalidSetting(name, _)? = error as? TSNEError else { return XCTFail("\(error)") }
                XCTAssertEqual(name, field)
            }
        }
        XCTAssertNoThrow(try TSNESettings().validate())
        XCTAssertEqual(TSNESettings().resolvedMethod(pointCount: 2000), .exact)
        XCTAssertEqual(TSNESettings().resolvedMethod(pointCount: 2001), .barnesHut)
        XCTAssertEqual(TSNESettings(dimensions: 3).resolvedMethod(pointCount: 5000), .exact)
        XCTAssertEqual(TSNESettings().resolvedLearningRate(pointCount: 1200), 50)
        XCTAssertEqual(TSNESettings().resolvedLearningRate(pointCount: 4800), 100)
    }

    // 7. Optional cross-check with scikit-learn.
    func testComparableToScikitLearn() throws {
        #if os(macOS) || os(Linux)
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import sklearn"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do { try probe.run(); probe.waitUntilExit() } catch {
            throw XCTSkip("python3 not available: \(error)")
        }
        guard probe.terminationStatus == 0 else { throw XCTSkip("python3 with scikit-learn not importable") }

        let (x, labels) = clusterData()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tsne-sklearn-\(getpid()).txt")
        let text = (0..<200).map { i in (0..<10).map { String(x[i * 10 + $0]) }.joined(separator: " ") }
            .joined(separator: "\n")
        try text.write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let script = """
        import sys, numpy as np
        from sklearn.manifold import TSNE
        X = np.loadtxt(sys.argv[1])
        Y = TSNE(n_components=2, perplexity=30, init='pca', learning_rate='auto', random_state=0).fit_transform(X)
        for row in Y: print(repr(float(row[0])), repr(float(row[1])))
        """
        let run = Process()
        run.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        run.arguments = ["python3", "-c", script, input.path]
        let pipe = Pipe()
        run.standardOutput = pipe
        run.standardError = FileHandle.nullDevice
        try run.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        run.waitUntilExit()
        guard run.terminationStatus == 0 else { throw XCTSkip("scikit-learn TSNE failed to run") }
        let reference = String(decoding: out, as: UTF8.self).split(whereSeparator: \.isNewline)
            .flatMap { $0.split(separator: " ").map { Double($0)! } }
        XCTAssertEqual(reference.count, 400)
        let ours = try tsne(x, dimension: 10, settings: TSNESettings(method: .exact))
        let tOurs = try trustworthiness(high: x, highDimension: 10, low: ours.embedding, lowDimension: 2, neighbors: 5)
        let tRef = try trustworthiness(high: x, highDimension: 10, low: reference, lowDimension: 2, neighbors: 5)
        XCTAssertGreaterThanOrEqual(tOurs, tRef - 0.03)
        XCTAssertGreaterThanOrEqual(knnPurity(ours.embedding, d: 2, labels: labels, k: 5),
                                    knnPurity(reference, d: 2, labels: labels, k: 5) - 0.03)
        #else
        throw XCTSkip("Process is unavailable on this platform")
        #endif
    }
}
