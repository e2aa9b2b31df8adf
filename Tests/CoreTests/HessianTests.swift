import Core
import Foundation
import TestSupport
import XCTest

final class HessianTests: XCTestCase {
    /// Lanczos on `diag(d)` returns the largest *algebraic* eigenvalue (250) even when a negative one
    /// (-500) dominates in magnitude, where power iteration would return -500.
    func testLanczosOnDiagonalOperator() {
        var d = (0..<198).map { Double($0) }
        d.append(250); d.append(-500)
        let est = lanczosTopEigenvalue(dimension: d.count, maxIterations: 80, tolerance: 1e-13,
                                       start: RandomKey(seed: 1, role: .hessian)) { (v: UnsafePointer<Double>, out: UnsafeMutablePointer<Double>) in
            for i in 0..<d.count { out[i] = d[i] * v[i] }
        }
        XCTAssertTrue(est.converged)
        assertClose(est.lambdaMax, 250, Tol(rel: 1e-10, abs: 0), "top eigenvalue")
        XCTAssertLessThan(est.iterations, 80)
        assertClose(est.ritzValues.first!, -500, Tol(rel: 1e-8, abs: 0), "bottom Ritz value")
        XCTAssertLessThan(est.ritzResidual, 1e-4 * 250)
    }

    /// With three distinct eigenvalues the Krylov space is invariant after three steps and the Ritz
    /// values are exact.
    func testLanczosStopsOnInvariantSubspace() {
        let d = (0..<60).map { Double([-1, 2, 7][$0 % 3]) }
        let est = lanczosTopEigenvalue(dimension: d.count, maxIterations: 20, tolerance: 1e-30,
                                       start: RandomKey(seed: 2, role: .hessian)) { (v: UnsafePointer<Double>, out: UnsafeMutablePointer<Double>) in
            for i in 0..<d.count { out[i] = d[i] * v[i] }
        }
        XCTAssertEqual(est.iterations, 3)
        XCTAssertTrue(est.converged)
        assertClose(est.ritzValues, [-1, 2, 7], Tol(rel: 1e-12, abs: 0), "Ritz values")
    }

    /// Linear least squares: for `z = W x + b` and `L = (1/n) sum_i (1/2) ||z_i - y_i||²` (our `mse`,
    /// mean over examples, halved, summed over classes) the Hessian is `I_C ⊗ (1/n) X~^T X~`,
    /// `X~ = [X, 1]`, so `λmax = λmax(X~^T X~ / n)` (LAPACK) — plus `wd` with an L2 term. Both
    /// difference schemes (exact on a quadratic up to rounding), Double (1e-9) and Float (1e-4), gradients chunked by 7 of the 20 examples.
    func testTopEigenvalueOfLinearLeastSquares() throws {
        let input = Shape(1, 2, 3), f = 6, classes = 3, n = 20
        var r = TestRandom(3)
        let x = r.array(n * f).map { $0 + 0.5 }   // a non-zero mean makes the top eigenvalue isolated
        let labels = (0..<n).map { Int32($0 % classes) }
        var gram = [Double](repeating: 0, count: (f + 1) * (f + 1))
        for i in 0..<n {
            let row = Array(x[(i * f)..<((i + 1) * f)]) + [1]
            for a in 0...f { for b in 0...f { gram[a + b * (f + 1)] += row[a] * row[b] / Double(n) } }
        }
        let want = try LAPACK.symmetricEigenvalues(gram, n: f + 1).last!
        for scheme in HVPScheme.allCases {
            for wd in [0, 0.01] {
                var s = HessianSettings()
                s.loss = .mse; s.scheme = scheme; s.weightDecay = wd; s.maxIterations = 30; s.batchSize = 7
                s.tolerance = 1e-12
                let netD = ModelKind.linear.build(input: input, classes: classes, as: Double.self)
                var init1 = TestRandom(4)
                netD.initialize { init1.normal() }
                let w0 = netD.params.array
                let lossD = TrainingLoss(network: netD, images: x, labels: labels, loss: .mse, batchSize: 7, weightDecay: wd)
                let d = try topHessianEigenvalue(of: lossD, settings: s, start: RandomKey(seed: 5, role: .hessian))
                assertClose(d.lambdaMax, want + wd, Tol(rel: 1e-9, abs: 0), "Double \(scheme) wd \(wd)")
                XCTAssertTrue(d.converged)
                XCTAssertEqual(netD.params.array, w0, "parameters restored")

                s.tolerance = 1e-6
                let netF = ModelKind.linear.build(input: input, classes: classes, as: Float.self)
                netF.params.copy(from: w0.map { Float($0) })
                let lossF = TrainingLoss(network: netF, images: x.map { Float($0) }, labels: labels, loss: .mse, batchSize: 7,
                                         weightDecay: wd)
                let e = try topHessianEigenvalue(of: lossF, settings: s, start: RandomKey(seed: 5, role: .hessian))
                assertClose(e.lambdaMax, want + wd, Tol(rel: 1e-4, abs: 0), "Float \(scheme) wd \(wd)")
            }
        }
        let ratios = EscapeRatios(lambdaMax: 40, learningRate: 0.1, momentum: 0.9)
        XCTAssertEqual(ratios.gradientDescent, 2, accuracy: 1e-15)
        XCTAssertEqual(ratios.heavyBall, 0.1 * 40 / 3.8, accuracy: 1e-15)
    }

    /// Hessian-vector products of a ReLU MLP with cross-entropy against second differences of the
    /// loss *values* (no backward pass): `v^T H v` by the three-point and `u^T H v` by the four-point
    /// stencil, in Double. Steps are small so no ReLU changes state (checked: the stencil sums agree).
    /// With two workers the central product's two gradients run concurrently on two networks, each
    /// single-threaded; with one worker they run one after the other. Both must give the same bits,
    /// and the original network's weights must come back unchanged (SimpleCNN with its BatchNorm-free
    /// max-pool path and ResNet-20 with BatchNorm state, chunked gradients).
    func testConcurrentCentralProductEqualsSequential() {
        for kind in [ModelKind.simplecnn, .resnet20] {
            let net = kind.build(input: Shape(3, 8, 8), classes: 4, as: Float.self)
            var r = TestRandom(11)
            net.initialize { r.normal() }
            for v in net.layout.state { for i in v.range { net.state[i] = v.name.hasSuffix("var") ? Float(1 + 0.5 * r.uniform()) : Float(0.2 * r.uniform()) } }
            let n = 12, x = r.array(n * 3 * 64).map { Float($0) }, labels = (0..<n).map { Int32($0 % 4) }
            let w0 = net.params.array, v = r.array(w0.count).map { Float($0) }
            let objective = TrainingLoss(network: net, images: x, labels: labels, loss: .crossEntropy, batchSize: 5)
            func product(threads: Int) -> [Float] {
                BLASThreads.set(threads)
                defer { BLASThreads.set(1) }
                var out = [Float](repeating: 0, count: w0.count)
                v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
                    objective.hessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!, scheme: .central)
                } }
                return out
            }
            let sequential = product(threads: 1), concurrent = product(threads: 2)
            XCTAssertTrue(sequential == concurrent,
                          "\(kind): \(zip(sequential, concurrent).filter { $0 != $1 }.count) of \(w0.count) values differ")
            XCTAssertGreaterThan(sequential.map { abs($0) }.max()!, 0, "\(kind): a non-trivial product")
            XCTAssertTrue(net.params.array == w0, "\(kind): weights restored")
            XCTAssertEqual(objective.gradientEvaluations, 4)
        }
    }

    func testHessianVectorProductMatchesLossStencil() {
        let input = Shape(1, 2, 2), classes = 3, n = 3
        let net = ModelKind.mlp.build(input: input, classes: classes, as: Double.self)
        var r = TestRandom(8)
        net.initialize { r.normal() }
        let x = r.array(n * input.count), labels: [Int32] = [0, 2, 1]
        let w0 = net.params.array, p = w0.count
        let objective = TrainingLoss(network: net, images: x, labels: labels, loss: .crossEntropy, batchSize: 2)
        func unit() -> [Double] { let v = r.array(p); let s = dot(v, v).squareRoot(); return v.map { $0 / s } }
        func loss(_ w: [Double]) -> Double {
            net.params.copy(from: w)
            let f = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: n, mode: .eval) }
            return labels.withUnsafeBufferPointer {
                LossFunction.crossEntropy.evaluate(logits: UnsafeBufferPointer(start: f, count: n * classes), labels: $0, classes: classes).meanLoss
            }
        }
        func at(_ a: Double, _ u: [Double], _ b: Double, _ v: [Double]) -> Double {
            loss((0..<p).map { w0[$0] + a * u[$0] + b * v[$0] })
        }
        func hvp(_ v: [Double], _ scheme: HVPScheme, _ h: Double) -> [Double] {
            var out = [Double](repeating: 0, count: p)
            v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
                objective.hessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!, scheme: scheme, relativeStep: h)
            } }
            return out
        }
        let u = unit(), v = unit(), h = 1e-4
        let vHv = (at(0, u, h, v) - 2 * at(0, u, 0, v) + at(0, u, -h, v)) / (h * h)
        let uHv = (at(h, u, h, v) - at(h, u, -h, v) - at(-h, u, h, v) + at(-h, u, -h, v)) / (4 * h * h)
        let central = hvp(v, .central, 1e-7), forward = hvp(v, .forward, 1e-8)
        XCTAssertEqual(net.params.array, w0, "parameters restored")
        assertClose([dot(v, central), dot(u, central)], [vHv, uHv], Tol(rel: 1e-5, abs: 1e-6), "central v^T H v, u^T H v")
        assertClose([dot(v, forward), dot(u, forward)], [vHv, uHv], Tol(rel: 1e-4, abs: 1e-5), "forward v^T H v, u^T H v")
        // Symmetry of the finite-difference operator.
        assertClose(dot(v, hvp(u, .central, 1e-7)), dot(u, central), Tol(rel: 1e-6, abs: 1e-8), "u^T H v = v^T H u")
    }
}
