import Foundation
import XCTest
import Core

/// Deterministic data generator local to these tests (SplitMix64 + Box–Muller), independent of
/// the bootstrap's `RandomStream`.
private struct DataGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(nextUInt64() >> 11) + 0.5) / 9_007_199_254_740_992.0 }
    mutating func normal() -> Double {
        (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())
    }
    mutating func normals(_ n: Int, mean: Double = 0, sd: Double = 1) -> [Double] {
        (0..<n).map { _ in mean + sd * normal() }
    }
}

final class StatisticsTests: XCTestCase {

    // MARK: Normal quantile

    /// Φ⁻¹ against published values (Abramowitz–Stegun tables / R qnorm / scipy norm.ppf).
    func testNormalQuantilePublishedValues() {
        let table: [(Double, Double)] = [
            (0.975, 1.959963984540054), (0.995, 2.5758293035489004), (0.9, 1.2815515655446004),
            (0.95, 1.6448536269514722), (0.999, 3.090232306167813), (0.5, 0),
            (0.8413447460685429, 1.0), (0.3, -0.5244005127080409), (0.02425, -1.972961051311885),
            (1e-10, -6.361340902404056),
        ]
        for (p, z) in table {
            XCTAssertEqual(Statistics.normalQuantile(p), z, accuracy: 1e-12, "p = \(p)")
        }
        XCTAssertEqual(Statistics.normalQuantile(1e-300), -37.0470962993612, accuracy: 1e-11)
    }

    /// Edge values, exact antisymmetry about 0.5, and monotonicity on a grid.
    func testNormalQuantileEdgesSymmetryMonotonicity() {
        XCTAssertEqual(Statistics.normalQuantile(0), -.infinity)
        XCTAssertEqual(Statistics.normalQuantile(1), .infinity)
        XCTAssertTrue(Statistics.normalQuantile(-0.1).isNaN)
        XCTAssertTrue(Statistics.normalQuantile(1.1).isNaN)
        XCTAssertTrue(Statistics.normalQuantile(.nan).isNaN)
        for p in [0.01, 0.1, 0.25, 0.4, 0.49] {
            XCTAssertEqual(Statistics.normalQuantile(1 - p), -Statistics.normalQuantile(p), accuracy: 1e-15)
        }
        var previous = -Double.infinity
        for i in 1..<1000 {
            let z = Statistics.normalQuantile(Double(i) / 1000)
            XCTAssertGreaterThan(z, previous)
            previous = z
        }
    }

    // MARK: Settings and percentile convention

    /// validate() rejects level outside (0, 1) and resamples < 100, with descriptive errors.
    func testBootstrapSettingsValidation() throws {
        XCTAssertNoThrow(try BootstrapSettings(seed: 1).validate())
        XCTAssertNoThrow(try BootstrapSettings(level: 0.5, resamples: 100, seed: 1).validate())
        for level in [0.0, 1.0, -0.2, 1.5, Double.nan] {
            XCTAssertThrowsError(try BootstrapSettings(level: level, seed: 1).validate()) { e in
                guard case StatisticsError.invalidLevel = e else { return XCTFail("\(e)") }
            }
        }
        XCTAssertThrowsError(try BootstrapSettings(resamples: 99, seed: 1).validate()) { e in
            XCTAssertEqual(e as? StatisticsError, .tooFewResamples(99))
            XCTAssertTrue("\(e)".contains("at least 100"))
        }
        XCTAssertThrowsError(try Statistics.clusteredBootstrapMean([[1, 2]], settings: .init(resamples: 10, seed: 1)))
    }

    /// Inverse-ECDF percentile: B = 2000, L = 0.95 gives x_(50) and x_(1950); B = 100 gives x_(3)... x_(98).
    func testPercentileIndexConvention() {
        let x = (1...2000).map(Double.init)
        XCTAssertEqual(Statistics.percentileInterval(Array(x.reversed()), level: 0.95).lower, 50)
        XCTAssertEqual(Statistics.percentileInterval(x, level: 0.95).upper, 1950)
        let y = (1...100).map(Double.init)
        let ci = Statistics.percentileInterval(y, level: 0.95)
        XCTAssertEqual(ci.lower, 3)   // ceil(2.5)
        XCTAssertEqual(ci.upper, 98)  // ceil(97.5)
        XCTAssertEqual(Statistics.inverseECDFQuantile(sorted: [7], 0.001), 7)
    }

    // MARK: Clustered bootstrap of a mean

    /// n = 400 draws of N(μ, 1): the interval covers μ and its width ≈ 2·1.96/√n within 15 %.
    func testBootstrapMeanOfNormalSampleCoversMuAndHasNormalTheoryWidth() throws {
        let mu = 3.7
        var g = DataGenerator(seed: 2024)
        let x = g.normals(400, mean: mu)
        let ci = try XCTUnwrap(Statistics.clusteredBootstrapMean([x], settings: .init(seed: 11)))
        XCTAssertEqual(ci.estimate, x.reduce(0, +) / 400, accuracy: 1e-12)
        XCTAssertEqual(ci.count, 400)
        XCTAssertEqual(ci.clusters, 1)
        XCTAssertEqual(ci.resamples, 2000)
        XCTAssertLessThan(ci.lower, mu)
        XCTAssertGreaterThan(ci.upper, mu)
        XCTAssertLessThan(ci.lower, ci.estimate)
        XCTAssertGreaterThan(ci.upper, ci.estimate)
        let expected = 2 * 1.96 / 20
        XCTAssertEqual(ci.upper - ci.lower, expected, accuracy: 0.15 * expected)
    }

    /// 10 replicates × 50 values with replicate offsets N(0, 1) and noise N(0, 0.3): the clustered
    /// interval is more than twice as wide as the naive one (all values pooled as one replicate).
    func testClusteredBootstrapWiderThanNaiveWithReplicateOffsets() throws {
        var g = DataGenerator(seed: 7)
        let groups = (0..<10).map { _ -> [Double] in
            let offset = g.normal()
            return g.normals(50, mean: offset, sd: 0.3)
        }
        let s = BootstrapSettings(seed: 5)
        let clustered = try XCTUnwrap(Statistics.clusteredBootstrapMean(groups, settings: s))
        let naive = try XCTUnwrap(Statistics.clusteredBootstrapMean([groups.flatMap { $0 }], settings: s))
        XCTAssertEqual(clustered.estimate, naive.estimate, accuracy: 1e-12)
        XCTAssertEqual(clustered.clusters, 10)
        XCTAssertEqual(clustered.count, 500)
        XCTAssertGreaterThan(clustered.upper - clustered.lower, 2 * (naive.upper - naive.lower))
    }

    /// Coverage of the true mean 0 over 100 data sets of the design above: clustered ≥ 0.8 (nominal
    /// 0.95, percentile with 10 clusters undercovers a little), naive ≤ 0.5 (expected ≈ 0.25).
    func testClusteredBootstrapCoverageSanity() throws {
        var g = DataGenerator(seed: 99)
        var clusteredHits = 0, naiveHits = 0
        let trials = 100
        for t in 0..<trials {
            let groups = (0..<10).map { _ -> [Double] in
                let offset = g.normal()
                return g.normals(50, mean: offset, sd: 0.3)
            }
            let s = BootstrapSettings(resamples: 200, seed: UInt64(t))
            let c = try XCTUnwrap(Statistics.clusteredBootstrapMean(groups, settings: s))
            let n = try XCTUnwrap(Statistics.clusteredBootstrapMean([groups.flatMap { $0 }], settings: s))
            if c.lower <= 0 && 0 <= c.upper { clusteredHits += 1 }
            if n.lower <= 0 && 0 <= n.upper { naiveHits += 1 }
        }
        XCTAssertGreaterThanOrEqual(Double(clusteredHits) / Double(trials), 0.8)
        XCTAssertLessThanOrEqual(Double(naiveHits) / Double(trials), 0.5)
    }

    /// One replicate = the ordinary bootstrap: identical to a reference implementation using the
    /// documented draw order (one uniformInt(below: 1), then n value draws, per resample).
    func testSingleReplicateIsOrdinaryBootstrap() throws {
        var g = DataGenerator(seed: 3)
        let x = g.normals(37)
        let s = BootstrapSettings(level: 0.9, resamples: 500, seed: 42)
        let ci = try XCTUnwrap(Statistics.clusteredBootstrapMean([x], settings: s))
        var stream = RandomStream(seed: 42, role: .bootstrap)
        var means = [Double]()
        for _ in 0..<500 {
            _ = stream.uniformInt(below: 1)
            var sum = 0.0
            for _ in 0..<x.count { sum += x[stream.uniformInt(below: x.count)] }
            means.append(sum / Double(x.count))
        }
        means.sort()
        XCTAssertEqual(ci.lower, means[24])   // ceil(0.05 · 500) = 25th
        XCTAssertEqual(ci.upper, means[474])  // ceil(0.95 · 500) = 475th
        XCTAssertEqual(ci.level, 0.9)
    }

    /// A single value gives lower = upper = estimate; NaNs are dropped and not counted; empty
    /// (or all-NaN) input gives nil; constant data gives a zero-width interval.
    func testSingleValueNaNAndEmpty() throws {
        let s = BootstrapSettings(seed: 1)
        let one = try XCTUnwrap(Statistics.clusteredBootstrapMean([[.nan], [2.5, .nan]], settings: s))
        XCTAssertEqual(one.estimate, 2.5)
        XCTAssertEqual(one.lower, 2.5)
        XCTAssertEqual(one.upper, 2.5)
        XCTAssertEqual(one.count, 1)
        let withNaN = try XCTUnwrap(Statistics.clusteredBootstrapMean([[1, .nan, 3], [5, .nan]], settings: s))
        XCTAssertEqual(withNaN.count, 3)
        XCTAssertEqual(withNaN.clusters, 2)
        XCTAssertEqual(withNaN.estimate, 3)
        XCTAssertNil(try Statistics.clusteredBootstrapMean([], settings: s))
        XCTAssertNil(try Statistics.clusteredBootstrapMean([[], [.nan]], settings: s))
        let constant = try XCTUnwrap(Statistics.clusteredBootstrapMean([[4, 4], [4]], settings: s))
        XCTAssertEqual(constant.lower, 4)
        XCTAssertEqual(constant.upper, 4)
    }

    /// Same seed → bit-identical results; different seed → different interval ends.
    func testBootstrapDeterminism() throws {
        var g = DataGenerator(seed: 8)
        let groups = (0..<6).map { _ in g.normals(20) }
        let a = try Statistics.clusteredBootstrapMean(groups, settings: .init(seed: 123))
        let b = try Statistics.clusteredBootstrapMean(groups, settings: .init(seed: 123))
        let c = try XCTUnwrap(Statistics.clusteredBootstrapMean(groups, settings: .init(seed: 124)))
        XCTAssertEqual(a, b)
        XCTAssertTrue(a!.lower != c.lower || a!.upper != c.upper)
        let x = g.normals(50), y = g.normals(50)
        XCTAssertEqual(try Statistics.bootstrapSpearman(x, y, settings: .init(seed: 9)),
                       try Statistics.bootstrapSpearman(x, y, settings: .init(seed: 9)))
        XCTAssertNotEqual(try Statistics.bootstrapPearson(x, y, settings: .init(seed: 9)),
                          try Statistics.bootstrapPearson(x, y, settings: .init(seed: 10)))
    }

    // MARK: Correlation

    /// y = a x + b gives r = 1 (−1 for a < 0) with interval [1, 1]; Spearman likewise.
    func testPearsonExactLinear() throws {
        let x = (0..<50).map { Double($0) * 0.37 - 4 }
        let up = try XCTUnwrap(Statistics.pearson(x, x.map { 2.5 * $0 + 1 }))
        XCTAssertEqual(up.estimate, 1, accuracy: 1e-14)
        XCTAssertEqual(try XCTUnwrap(up.lower), 1, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(up.upper), 1, accuracy: 1e-12)
        XCTAssertEqual(up.count, 50)
        let down = try XCTUnwrap(Statistics.pearson(x, x.map { -0.5 * $0 + 7 }))
        XCTAssertEqual(down.estimate, -1, accuracy: 1e-14)
        XCTAssertEqual(try Statistics.spearman(x, x.map { -3 * $0 })?.estimate, -1)
    }

    /// Bivariate normal with ρ = 0.6, n = 2000: r within ±0.05 of 0.6, and both the Fisher and the
    /// bootstrap intervals contain 0.6 and have width ≈ 2·1.96·(1−ρ²)/√n (±25 %).
    func testPearsonBivariateNormal() throws {
        var g = DataGenerator(seed: 606)
        var x = [Double](), y = [Double]()
        for _ in 0..<2000 {
            let z1 = g.normal(), z2 = g.normal()
            x.append(z1); y.append(0.6 * z1 + 0.8 * z2)
        }
        let r = try XCTUnwrap(Statistics.pearson(x, y))
        XCTAssertEqual(r.estimate, 0.6, accuracy: 0.05)
        XCTAssertLessThan(try XCTUnwrap(r.lower), 0.6)
        XCTAssertGreaterThan(try XCTUnwrap(r.upper), 0.6)
        let width = 2 * 1.96 * (1 - 0.36) / 2000.0.squareRoot()
        XCTAssertEqual(r.upper! - r.lower!, width, accuracy: 0.25 * width)
        let b = try XCTUnwrap(Statistics.bootstrapPearson(x, y, settings: .init(seed: 4)))
        XCTAssertEqual(b.estimate, r.estimate)
        XCTAssertLessThan(b.lower, 0.6)
        XCTAssertGreaterThan(b.upper, 0.6)
        XCTAssertEqual(b.upper - b.lower, width, accuracy: 0.25 * width)
        XCTAssertEqual(b.resamples, 2000)
    }

    /// x = 1…5, y = (2, 1, 4, 3, 5): by hand Σdxdy = 8, Σdx² = Σdy² = 10, r = 0.8; Fisher 95 %:
    /// tanh(ln 3 ± 1.959963984540054/√2) = (−0.27964004196935477, 0.9861961933012714); 90 %:
    /// (−0.06438567246738358, 0.978528854583393); r = 0.5, n = 28: (0.15602836252908597, 0.7358184794439375).
    func testFisherIntervalHandComputed() throws {
        let r = try XCTUnwrap(Statistics.pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]))
        XCTAssertEqual(r.estimate, 0.8, accuracy: 1e-15)
        XCTAssertEqual(r.method, "pearson-fisher")
        XCTAssertEqual(try XCTUnwrap(r.lower), -0.27964004196935477, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(r.upper), 0.9861961933012714, accuracy: 1e-12)
        let r90 = try XCTUnwrap(Statistics.fisherInterval(r: 0.8, n: 5, level: 0.9))
        XCTAssertEqual(r90.lower, -0.06438567246738358, accuracy: 1e-12)
        XCTAssertEqual(r90.upper, 0.978528854583393, accuracy: 1e-12)
        let r28 = try XCTUnwrap(Statistics.fisherInterval(r: 0.5, n: 28, level: 0.95))
        XCTAssertEqual(r28.lower, 0.15602836252908597, accuracy: 1e-12)
        XCTAssertEqual(r28.upper, 0.7358184794439375, accuracy: 1e-12)
        XCTAssertNil(Statistics.fisherInterval(r: 0.5, n: 3, level: 0.95))
        let small = try XCTUnwrap(Statistics.pearson([1, 2, 3], [1, 3, 2]))
        XCTAssertNil(small.lower)
        XCTAssertNil(small.upper)
    }

    /// x = (1, 2, 2, 3, 4), y = (1, 3, 2, 2, 5): average ranks (1, 2.5, 2.5, 4, 5) and
    /// (1, 4, 2.5, 2.5, 5); by hand ρ = 7.25/9.5 = 0.7631578947368421; FHP 95 % with SE √(1.06/2):
    /// (−0.3995735020739504, 0.9846368383357771).
    func testSpearmanTiesHandComputed() throws {
        XCTAssertEqual(Statistics.averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
        XCTAssertEqual(Statistics.averageRanks([3, 3, 3]), [2, 2, 2])
        XCTAssertEqual(Statistics.averageRanks([1, 2, 2, 3, 4]), [1, 2.5, 2.5, 4, 5])
        XCTAssertEqual(Statistics.averageRanks([1, 3, 2, 2, 5]), [1, 4, 2.5, 2.5, 5])
        let rho = try XCTUnwrap(Statistics.spearman([1, 2, 2, 3, 4], [1, 3, 2, 2, 5]))
        XCTAssertEqual(rho.estimate, 7.25 / 9.5, accuracy: 1e-15)
        XCTAssertEqual(rho.method, "spearman-fieller")
        XCTAssertEqual(try XCTUnwrap(rho.lower), -0.3995735020739504, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(rho.upper), 0.9846368383357771, accuracy: 1e-12)
    }

    /// ρ is unchanged (exactly) by strictly increasing transforms of x and y; a monotone
    /// nonlinear relation has ρ = 1 while Pearson r < 1; bootstrap ρ interval brackets ρ.
    func testSpearmanInvariantUnderMonotoneTransforms() throws {
        var g = DataGenerator(seed: 31)
        let x = g.normals(200)
        let y = x.map { $0 + g.normal() }
        let base = try XCTUnwrap(Statistics.spearman(x, y))
        let transformed = try XCTUnwrap(Statistics.spearman(x.map { exp($0) }, y.map { $0 * $0 * $0 + 2 * $0 }))
        XCTAssertEqual(base, transformed)
        let cubic = x.map { $0 * $0 * $0 }
        XCTAssertEqual(try Statistics.spearman(x, cubic)?.estimate, 1)
        XCTAssertLessThan(try XCTUnwrap(Statistics.pearson(x, cubic)).estimate, 0.95)
        let b = try XCTUnwrap(Statistics.bootstrapSpearman(x, y, settings: .init(seed: 2)))
        XCTAssertEqual(b.estimate, base.estimate)
        XCTAssertLessThan(b.lower, b.estimate)
        XCTAssertGreaterThan(b.upper, b.estimate)
    }

    /// Non-finite pairs are dropped; constant input or < 2 pairs gives nil; unequal lengths throw.
    func testCorrelationDegenerateInputs() throws {
        let r = try XCTUnwrap(Statistics.pearson([1, .nan, 2, 3, 4, 5, .infinity], [2, 5, 1, 4, 3, 5, 1]))
        XCTAssertEqual(r.count, 5)
        XCTAssertEqual(r.estimate, 0.8, accuracy: 1e-15)
        XCTAssertNil(try Statistics.pearson([1, 2, 3], [4, 4, 4]))
        XCTAssertNil(try Statistics.spearman([1], [2]))
        XCTAssertNil(try Statistics.bootstrapPearson([1, 1, 1], [1, 2, 3], settings: .init(seed: 1)))
        XCTAssertThrowsError(try Statistics.pearson([1, 2], [1, 2, 3]))
        XCTAssertThrowsError(try Statistics.spearman([1, 2, 3, 4], [1, 2, 3, 4], level: 1))
    }

    // MARK: Basin-fate time

    /// Spawn times (0, 1, 2, 4, 8, 16), true mean barriers (2, 1.5, 1, 0.3, 0.1, 0.05), threshold
    /// 0.5, small noise: estimate and both interval ends are t = 4; mean barriers are recovered.
    func testBasinFateKnownCrossing() throws {
        let times: [Double] = [0, 1, 2, 4, 8, 16]
        let mu: [Double] = [2, 1.5, 1, 0.3, 0.1, 0.05]
        var g = DataGenerator(seed: 17)
        let offsets = g.normals(5, sd: 0.05)
        let barriers = mu.map { m in offsets.map { o in g.normals(8, mean: m + o, sd: 0.05) } }
        let r = try Statistics.basinFateTime(spawnTimes: times, barriers: barriers, threshold: 0.5,
                                             settings: .init(seed: 3))
        XCTAssertEqual(r.estimate, 4)
        XCTAssertEqual(r.lower, 4)
        XCTAssertEqual(r.upper, 4)
        XCTAssertEqual(r.reachedFraction, 1)
        XCTAssertEqual(r.replicates, 5)
        for (m, hat) in zip(mu, r.meanBarriers) { XCTAssertEqual(hat, m, accuracy: 0.1) }
    }

    /// All mean barriers above the threshold: estimate, lower, upper nil, reachedFraction 0.
    func testBasinFateNotReached() throws {
        let barriers: [[[Double]]] = [[[2, 2.1], [1.9]], [[1, 1.2], [0.9, 1.1]]]
        let r = try Statistics.basinFateTime(spawnTimes: [1, 2], barriers: barriers, threshold: 0.5,
                                             settings: .init(seed: 1))
        XCTAssertNil(r.estimate)
        XCTAssertNil(r.lower)
        XCTAssertNil(r.upper)
        XCTAssertEqual(r.reachedFraction, 0)
    }

    /// Borderline last spawn time: 4 replicates with one barrier each, (0.1, 0.2, 0.9, 0.6), mean
    /// 0.45 < 0.5, earlier times far above. Estimate = lower = last time, upper = nil ("not
    /// reached"), and reachedFraction matches the exact probability that the mean of 4 draws with
    /// replacement is < 0.5 (enumerated over 4⁴ outcomes) within 0.05.
    func testBasinFateBorderlineUpperNotReached() throws {
        let last: [Double] = [0.1, 0.2, 0.9, 0.6]
        let barriers: [[[Double]]] = [[[2], [2], [2], [2]], [[1], [1], [1], [1]], last.map { [$0] }]
        let r = try Statistics.basinFateTime(spawnTimes: [1, 5, 10], barriers: barriers, threshold: 0.5,
                                             settings: .init(seed: 77))
        XCTAssertEqual(r.estimate, 10)
        XCTAssertEqual(r.lower, 10)
        XCTAssertNil(r.upper)
        var hits = 0
        for a in last { for b in last { for c in last { for d in last where (a + b + c + d) / 4 < 0.5 { hits += 1 } } } }
        XCTAssertEqual(r.reachedFraction, Double(hits) / 256, accuracy: 0.05)
    }

    /// The replicate draw is shared across spawn times: replicate 0 has barrier 0, replicate 1
    /// barrier 1 at both times (threshold 0.5, estimate nil). Only the draw {0, 0} crosses, at the
    /// first time, so reachedFraction ≈ 1/4 (independent draws per time would give 7/16).
    func testBasinFateSharesReplicateDrawAcrossSpawnTimes() throws {
        let barriers: [[[Double]]] = [[[0], [1]], [[0], [1]]]
        let r = try Statistics.basinFateTime(spawnTimes: [0, 1], barriers: barriers, threshold: 0.5,
                                             settings: .init(seed: 5))
        XCTAssertNil(r.estimate)
        XCTAssertEqual(r.reachedFraction, 0.25, accuracy: 0.04)
        XCTAssertEqual(r.lower, 0)
        XCTAssertNil(r.upper)
    }

    /// Shape and argument errors: non-increasing times, mismatched counts, NaN threshold.
    func testBasinFateValidation() {
        let s = BootstrapSettings(seed: 1)
        XCTAssertThrowsError(try Statistics.basinFateTime(spawnTimes: [1, 1], barriers: [[[1]], [[1]]], threshold: 0.5, settings: s))
        XCTAssertThrowsError(try Statistics.basinFateTime(spawnTimes: [1, 2], barriers: [[[1]]], threshold: 0.5, settings: s))
        XCTAssertThrowsError(try Statistics.basinFateTime(spawnTimes: [1, 2], barriers: [[[1]], [[1], [2]]], threshold: 0.5, settings: s))
        XCTAssertThrowsError(try Statistics.basinFateTime(spawnTimes: [1], barriers: [[[1]]], threshold: .nan, settings: s))
        XCTAssertThrowsError(try Statistics.basinFateTime(spawnTimes: [], barriers: [], threshold: 0.5, settings: s))
    }

    // MARK: Plateau time

    /// Hand examples, fraction 0.1: (10, 5, 2, 1.5, 1) → bound 0.9 above v_end = 1, first index
    /// from which all v ≤ 1.9 is t = 3; (10, 1.5, 3, 1.2, 1) → the bump at t = 2 pushes it to t = 3.
    func testSettlingTimeHandExamples() throws {
        let t: [Double] = [0, 1, 2, 3, 4]
        XCTAssertEqual(try Statistics.settlingTime(times: t, values: [10, 5, 2, 1.5, 1]), 3)
        XCTAssertEqual(try Statistics.settlingTime(times: t, values: [10, 1.5, 3, 1.2, 1]), 3)
        XCTAssertEqual(try Statistics.settlingTime(times: t, values: [10, 1.5, 1.8, 1.2, 1]), 1)
        XCTAssertEqual(try Statistics.settlingTime(times: [2], values: [5]), 2)
        XCTAssertThrowsError(try Statistics.settlingTime(times: t, values: [1, 2, 3]))
        XCTAssertThrowsError(try Statistics.settlingTime(times: t, values: [1, 2, .nan, 3, 4]))
        XCTAssertThrowsError(try Statistics.settlingTime(times: t, values: [1, 2, 3, 4, 5], fraction: 1))
        XCTAssertThrowsError(try Statistics.settlingTime(times: [0, 2, 1], values: [1, 2, 3]))
    }

    /// v_r(t) = a_r·exp(−t/τ) + c_r on t = 0, 0.01, …, 40 (τ = 2, 6 replicates with different a_r,
    /// c_r): the settling time does not depend on a, c, so estimate and both interval ends lie in
    /// [τ ln(1/f), τ ln(1/f) + 0.01] for f = 0.1 and 0.05 (closed form; the e^(−T/τ) correction is
    /// 2e-9). Replicates with different τ_r give a non-degenerate interval bracketing the estimate.
    func testPlateauExponentialMatchesClosedForm() throws {
        let tau = 2.0, dt = 0.01
        let times = (0...4000).map { Double($0) * dt }
        var g = DataGenerator(seed: 12)
        let reps = (0..<6).map { _ -> [Double] in
            let a = 3 * (1 + 0.2 * g.normal()), c = 0.5 + 0.1 * g.normal()
            return times.map { a * exp(-$0 / tau) + c }
        }
        for f in [0.1, 0.05] {
            let closed = tau * log(1 / f)
            let p = try Statistics.plateauTime(times: times, velocities: reps, fraction: f, settings: .init(seed: 1))
            for v in [p.estimate, p.lower, p.upper] {
                XCTAssertGreaterThanOrEqual(v, closed - 1e-9)
                XCTAssertLessThanOrEqual(v, closed + dt + 1e-9)
            }
            XCTAssertEqual(p.count, 6)
            let single = try Statistics.settlingTime(times: times, values: reps[0], fraction: f)
            XCTAssertEqual(single, closed, accuracy: dt)
        }
        let varied = [1.5, 1.8, 2.0, 2.2, 2.6].map { tr in times.map { exp(-$0 / tr) } }
        let p = try Statistics.plateauTime(times: times, velocities: varied, settings: .init(seed: 2))
        XCTAssertLessThan(p.lower, p.estimate)
        XCTAssertGreaterThan(p.upper, p.estimate)
        XCTAssertGreaterThan(p.lower, 1.5 * log(10) - dt)
        XCTAssertLessThan(p.upper, 2.6 * log(10) + dt)
    }

    /// Flat and monotone-increasing curves settle at the first time (interval [t_1, t_1]); a
    /// single replicate gives a zero-width interval at the estimate; invalid input throws.
    func testPlateauFlatAndIncreasingCurves() throws {
        let times: [Double] = [0.5, 1, 2, 3, 5]
        XCTAssertEqual(try Statistics.settlingTime(times: times, values: [2, 2, 2, 2, 2]), 0.5)
        XCTAssertEqual(try Statistics.settlingTime(times: times, values: [0, 1, 2, 3, 4]), 0.5)
        let flat = try Statistics.plateauTime(times: times, velocities: [[1, 1, 1, 1, 1], [3, 3, 3, 3, 3]],
                                              settings: .init(seed: 1))
        XCTAssertEqual([flat.estimate, flat.lower, flat.upper], [0.5, 0.5, 0.5])
        let one = try Statistics.plateauTime(times: times, velocities: [[9, 4, 2, 1.1, 1]], settings: .init(seed: 1))
        XCTAssertEqual([one.estimate, one.lower, one.upper], [3, 3, 3])
        XCTAssertThrowsError(try Statistics.plateauTime(times: times, velocities: [], settings: .init(seed: 1)))
        XCTAssertThrowsError(try Statistics.plateauTime(times: times, velocities: [[1, 2]], settings: .init(seed: 1)))
        XCTAssertThrowsError(try Statistics.plateauTime(times: times, velocities: [[1, 2, .nan, 3, 4]], settings: .init(seed: 1)))
    }
}
