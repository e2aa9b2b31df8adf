@testable import Core
import Foundation
import TestSupport
import XCTest

/// The loss plane (Fig. 5), the trajectory helpers (Fig. 10) and the statistics of a run's tables,
/// each against an independent reference.
final class FigureAnalysisTests: XCTestCase {
    /// A linear model `f(x) = W x + b` (3 classes, 2x2 inputs) with random weights.
    private func linearNetwork(seed: UInt64) -> Network<Float> {
        let net = ModelKind.linear.build(input: Shape(1, 2, 2), classes: 3, as: Float.self)
        var stream = RandomStream(seed: seed, role: .other)
        net.initialize { stream.normal() }
        // Non-zero biases too, so the plane moves them.
        for v in net.layout.parameters where v.shape.count == 1 { for i in v.range { net.params[i] = Float(stream.normal()) } }
        return net
    }

    private func data(_ n: Int) -> Dataset {
        var stream = RandomStream(seed: 9, role: .other)
        let images = (0..<(n * 4)).map { _ in Float(stream.normal()) }
        let labels = (0..<n).map { Int32($0 % 3) }
        return Dataset(name: "plane", images: images, labels: labels, channels: 1, height: 2, width: 2, classCount: 3)
    }

    /// The one-hot MSE loss of `f(x) = W x + b` (W `[3, 4]` then b `[3]`, PyTorch layout), naive Double.
    private func mseLoss(_ w: [Double], _ d: Dataset) -> Double {
        var total = 0.0
        for i in 0..<d.count {
            let x = Array(d.image(i)).map(Double.init)
            for c in 0..<3 {
                var z = w[12 + c]
                for f in 0..<4 { z += w[c * 4 + f] * x[f] }
                let r = z - (c == d.label(i) ? 1 : 0)
                total += r * r / 2
            }
        }
        return total / Double(d.count)
    }

    private func dot(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).map(*).reduce(0, +) }

    func testBasisIsOrthonormalAndTheThreeNetworksLandOnTheirCoordinates() throws {
        let o = linearNetwork(seed: 1), a = linearNetwork(seed: 2), b = linearNetwork(seed: 3)
        let plane = try LossPlane(origin: o, a: a, b: b)
        assertClose(dot(plane.u, plane.u), 1, Tol(rel: 0, abs: 1e-12))
        assertClose(dot(plane.v, plane.v), 1, Tol(rel: 0, abs: 1e-12))
        assertClose(dot(plane.u, plane.v), 0, Tol(rel: 0, abs: 1e-12))
        XCTAssertEqual(plane.coordinatesA.y, 0)
        XCTAssertGreaterThan(plane.coordinatesB.y, 0)
        let P = o.parameterCount
        // |w_a - w_o| and <w_b - w_o, w_a - w_o> / |w_a - w_o| computed directly.
        let da = (0..<P).map { Double(a.params[$0]) - Double(o.params[$0]) }
        let db = (0..<P).map { Double(b.params[$0]) - Double(o.params[$0]) }
        let na = dot(da, da).squareRoot()
        assertClose(plane.coordinatesA.x, na, Tol(rel: 1e-12, abs: 0))
        assertClose(plane.coordinatesB.x, dot(db, da) / na, Tol(rel: 1e-12, abs: 0))
        assertClose(plane.coordinatesB.x * plane.coordinatesB.x + plane.coordinatesB.y * plane.coordinatesB.y,
                    dot(db, db), Tol(rel: 1e-12, abs: 0))
        var w = [Float](repeating: 0, count: P)
        for (net, c) in [(o, (x: 0.0, y: 0.0)), (a, plane.coordinatesA), (b, plane.coordinatesB)] {
            plane.weights(x: c.x, y: c.y, into: &w)
            for i in 0..<P { assertClose(Double(w[i]), Double(net.params[i]), Tol(rel: 1e-6, abs: 1e-6)) }
        }
        // The interpolation coefficients of the three points.
        let ca = plane.coefficients(x: plane.coordinatesA.x, y: 0), cb = plane.coefficients(x: plane.coordinatesB.x, y: plane.coordinatesB.y)
        assertClose(ca.alpha, 1, Tol(rel: 0, abs: 1e-12)); assertClose(ca.beta, 0, Tol(rel: 0, abs: 1e-12))
        assertClose(cb.alpha, 0, Tol(rel: 0, abs: 1e-12)); assertClose(cb.beta, 1, Tol(rel: 0, abs: 1e-12))
    }

    /// For a linear model the MSE loss is a quadratic in the weights; on every grid point of the
    /// plane it equals the naive Double loss at `w_o + x u + y v` written out from the three networks
    /// (basis by Gram–Schmidt here), and the tangent-plane model equals the network.
    func testPlaneOfALinearModelEqualsTheClosedFormQuadratic() throws {
        let o = linearNetwork(seed: 4), a = linearNetwork(seed: 5), b = linearNetwork(seed: 6), d = data(60)
        let plane = try LossPlane(origin: o, a: a, b: b)
        let (xs, ys) = plane.grid(points: 7, margin: 0.5)
        XCTAssertEqual(xs.count, 7)
        let lo = min(0, plane.coordinatesA.x, plane.coordinatesB.x), hi = max(0, plane.coordinatesA.x, plane.coordinatesB.x)
        assertClose(xs.first!, lo - 0.5 * (hi - lo), Tol(rel: 1e-12, abs: 0))
        assertClose(ys.last!, 1.5 * plane.coordinatesB.y, Tol(rel: 1e-12, abs: 0))
        let P = o.parameterCount
        let wo = (0..<P).map { Double(o.params[$0]) }
        var u = (0..<P).map { Double(a.params[$0]) - wo[$0] }, v = (0..<P).map { Double(b.params[$0]) - wo[$0] }
        let nu = u.map { $0 * $0 }.reduce(0, +).squareRoot()
        u = u.map { $0 / nu }
        let proj = zip(u, v).map(*).reduce(0, +)
        v = zip(v, u).map { $0 - proj * $1 }
        let nv = v.map { $0 * $0 }.reduce(0, +).squareRoot()
        v = v.map { $0 / nv }
        let scratch = o.rebuilt(as: Float.self)
        let tangent = LinearizedModel(around: o)
        for y in ys { for x in xs {
            plane.place(scratch, x: x, y: y, batchNorm: .interpolate, recomputer: nil)
            let got = evaluate(scratch, on: d, loss: .mse)
            let reference = mseLoss((0..<P).map { wo[$0] + x * u[$0] + y * v[$0] }, d)
            assertClose(got.meanLoss, reference, Tol(rel: 1e-5, abs: 1e-5))
            plane.weights(x: x, y: y, into: tangent.weights.pointer)
            assertClose(tangent.evaluate(on: d, loss: .mse).meanLoss, reference, Tol(rel: 1e-5, abs: 1e-5))
        } }
    }

    func testDegeneratePlanesAreRefused() {
        let o = linearNetwork(seed: 7), a = linearNetwork(seed: 8)
        XCTAssertThrowsError(try LossPlane(origin: o, a: o, b: a))
        // b on the line through o and a: w_b = w_o + 2 (w_a - w_o).
        let b = o.rebuilt(as: Float.self)
        for i in 0..<o.parameterCount { b.params[i] = 2 * a.params[i] - o.params[i] }
        XCTAssertThrowsError(try LossPlane(origin: o, a: a, b: b))
    }

    /// BatchNorm statistics under `interpolate` follow the plane's affine coefficients.
    func testInterpolatedBatchNormStatisticsFollowTheCoefficients() throws {
        func net(_ seed: UInt64) -> Network<Float> {
            let n = ModelKind.resnet20.build(input: Shape(3, 8, 8), classes: 10, as: Float.self)
            var s = RandomStream(seed: seed, role: .other)
            n.initialize { s.normal() }
            for i in 0..<n.state.count { n.state[i] = Float(1 + s.uniformDouble()) }
            return n
        }
        let o = net(1), a = net(2), b = net(3)
        let plane = try LossPlane(origin: o, a: a, b: b)
        let scratch = o.rebuilt(as: Float.self)
        let (x, y) = (0.3 * plane.coordinatesA.x + 0.2 * plane.coordinatesB.x, 0.2 * plane.coordinatesB.y)
        plane.place(scratch, x: x, y: y, batchNorm: .interpolate, recomputer: nil)
        // (x, y) is 0.3 of the way to a and 0.2 to b: s = 0.5 s_o + 0.3 s_a + 0.2 s_b.
        for i in 0..<o.state.count {
            assertClose(Double(scratch.state[i]), 0.5 * Double(o.state[i]) + 0.3 * Double(a.state[i]) + 0.2 * Double(b.state[i]),
                        Tol(rel: 1e-5, abs: 1e-5))
        }
    }

    func testMovingAverageAndChildTimes() {
        let avg = movingAverage([1, 2, nil, 4, 8], window: 3)
        XCTAssertEqual(avg.count, 5)
        assertClose(avg[0]!, 1.5, Tol(rel: 0, abs: 1e-15))        // (1 + 2) / 2: the window is cut at the end
        assertClose(avg[1]!, 1.5, Tol(rel: 0, abs: 1e-15))        // nil skipped
        assertClose(avg[2]!, 3, Tol(rel: 0, abs: 1e-15))
        assertClose(avg[4]!, 6, Tol(rel: 0, abs: 1e-15))
        XCTAssertEqual(movingAverage([nil, nil], window: 3).compactMap { $0 }, [])
        XCTAssertEqual(movingAverage([1, 5, 2], window: 1).map { $0! }, [1, 5, 2])
        var c = ExperimentConfig()
        c.recipe.epochs = 3
        c.trajectories.every = 0.75
        XCTAssertEqual(c.trajectoryChildTimes(spawn: 0.5), [0.5, 1.25, 2, 2.75, 3])
        c.trajectories.every = 0.1
        XCTAssertEqual(c.trajectoryChildTimes(spawn: 2.7), [2.7, 2.8, 2.9, 3])   // rounded: 2.7 + 0.1 names 2.8
    }

    // MARK: Statistics of a run's tables

    private func pair(_ r: Int, _ spawn: Double, barrier: Double, distance: Double) -> ChildPairRow {
        ChildPairRow(replicate: r, spawnEpoch: spawn, childA: 0, childB: 1, testErrorA: 0.1, testErrorB: 0.1,
                     barrierTestErrorMaxMinusMean: barrier, barrierTestErrorMaxMinusLine: barrier,
                     barrierTrainErrorMaxMinusMean: 0, barrierTrainErrorMaxMinusLine: 0, barrierTestLossMaxMinusMean: 0,
                     barrierTestLossMaxMinusLine: 0, barrierBatchNorm: "none", weightL2: 1, weightL2Normalized: 1,
                     weightCosine: 0, functionDisagreement: 0.1, functionDisagreementOverIndependent: distance,
                     reluPatternDistance: 0, logitGradientAlignment: 0, batchNorm: "none")
    }

    /// Synthetic tables with a known threshold crossing, a known plateau and exact linear relations.
    func testRunStatisticsOnSyntheticTables() throws {
        let spawns = [0.0, 1, 2, 3, 4, 5]
        // Barrier 0.5 / (1 + t)^2: below 0.05 first at t = 3 (0.03125); spawn 2 gives 0.0556.
        func barrier(_ t: Double) -> Double { 0.5 / ((1 + t) * (1 + t)) }
        var tables = ExperimentTables(records: [])
        for r in 0..<3 { for t in spawns {
            tables.childPairs.append(pair(r, t, barrier: barrier(t), distance: 2 * barrier(t) + 0.1))
            tables.kernelVelocity.append(KernelVelocityRow(replicate: r, epoch: t, dt: 0.5, kernelDistance: 0,
                                                           velocity: 3 * barrier(t) + 1, batchNorm: "none"))
        } }
        var section = StatisticsSection()
        section.barrierThreshold = 0.05
        section.velocityFraction = 0.1
        section.resamples = 200
        let rows = try tables.statistics(section, seed: 0)
        XCTAssertEqual(rows, try tables.statistics(section, seed: 0), "deterministic")
        let fate = try XCTUnwrap(rows.first { $0.quantity == "basin_fate_time" })
        XCTAssertEqual(fate.estimate, 3); XCTAssertEqual(fate.lower, 3); XCTAssertEqual(fate.upper, 3)
        // Velocity 1.5/(1+t)^2 + 1 (v_max - v_end = 1.4583): v - v_end is 0.333 at t = 1 (> 0.146) and
        // 0.125, 0.052, 0.018, 0 from t = 2 on (<= 0.146): settles at 2.
        let plateau = try XCTUnwrap(rows.first { $0.quantity == "plateau_time" })
        XCTAssertEqual(plateau.estimate, 2)
        // Exact linear relations: Pearson 1 for barrier ~ velocity and barrier ~ D/D_ind; Spearman 1.
        for row in rows where row.quantity == "pearson-fisher" || row.quantity == "spearman-fieller" {
            guard !row.column.contains("nonlinear_advantage") else { continue }
            assertClose(try XCTUnwrap(row.estimate), 1, Tol(rel: 0, abs: 1e-12))
        }
        XCTAssertEqual(rows.filter { $0.quantity == "pearson-fisher" }.count, 2, "no nonlinear advantage rows: no correlation")
        // The mean of a column per spawn time, with its interval around it.
        let mean = try XCTUnwrap(rows.first { $0.quantity == "mean" && $0.column.hasSuffix(".barrier_test_error_max_minus_mean") && $0.epoch == 1 })
        assertClose(try XCTUnwrap(mean.estimate), 0.125, Tol(rel: 0, abs: 1e-15))
        XCTAssertEqual(mean.n, 3)
        XCTAssertEqual(mean.lower, 0.125); XCTAssertEqual(mean.upper, 0.125)   // identical values: no spread
    }
}
