import Foundation
import XCTest
import Core

/// Philox4x32-10 against Random123's known-answer vectors, the documented stream layout, addressing
/// (same address reproduces, any field change gives another stream), and distributions checked with
/// tolerances derived from the central limit theorem.
///
/// Statistical tolerances: a sample mean of `n` i.i.d. draws with standard deviation `sigma` has
/// standard error `sigma / sqrt(n)`; the checks allow 5 standard errors (two-sided probability of a
/// spurious failure ~6e-7 for a correct generator; the seeds are fixed, so results are deterministic).
/// Chi-square checks use the 1 - 1e-6 quantile of the chi-square distribution (values from
/// `scipy.stats.chi2.ppf(1 - 1e-6, dof)`).
final class RandomTests: XCTestCase {
    private static let sigmas = 5.0

    private func hex(_ b: Philox4x32.Counter) -> String {
        [b.0, b.1, b.2, b.3].map { String(format: "%08x", $0) }.joined(separator: " ")
    }

    // MARK: Philox4x32-10 known answers

    /// Random123 `examples/kat_vectors`, lines `philox4x32 10 CTR[4] KEY[2] EXPECTED[4]`.
    func testPhiloxKnownAnswerVectors() {
        let kat: [(Philox4x32.Counter, Philox4x32.Key, Philox4x32.Counter)] = [
            ((0, 0, 0, 0), (0, 0), (0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8)),
            ((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff),
             (0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd)),
            ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
             (0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1)),
        ]
        for (ctr, key, expected) in kat {
            XCTAssertEqual(hex(Philox4x32.block(counter: ctr, key: key)), hex(expected),
                           "counter \(hex(ctr)) key \(String(format: "%08x %08x", key.0, key.1))")
        }
    }

    // MARK: Stream layout and addressing

    /// The stream is Philox blocks at counters (b, 0, epoch, step) under the key derived from
    /// (replicate, role, child) and the seed, exactly as documented on `RandomStream`.
    func testStreamFollowsDocumentedLayout() {
        let seed: UInt64 = 0x0123_4567_89ab_cdef
        var s = RandomStream(seed: seed, replicate: 3, role: .augment, child: 5, epoch: 7, step: 11)
        let k = Philox4x32.block(counter: (3, RandomRole.augment.rawValue, 5, 0x4E54_4B53),
                                 key: (0x89ab_cdef, 0x0123_4567))
        XCTAssertEqual(s.philoxKey.0, k.0)
        XCTAssertEqual(s.philoxKey.1, k.1)
        var expected: [UInt32] = []
        for b in 0..<3 as Range<UInt32> {
            let o = Philox4x32.block(counter: (b, 0, 7, 11), key: (k.0, k.1))
            expected += [o.0, o.1, o.2, o.3]
        }
        let got = (0..<12).map { _ in s.nextUInt32() }
        XCTAssertEqual(got, expected)
        // nextUInt64 puts the first word in the high half.
        var t = RandomStream(seed: seed, replicate: 3, role: .augment, child: 5, epoch: 7, step: 11)
        XCTAssertEqual(t.nextUInt64(), UInt64(expected[0]) << 32 | UInt64(expected[1]))
    }

    func testSameAddressReproducesAndInterleavingDoesNotMatter() {
        let key = RandomKey(seed: 42, replicate: 1, role: .shuffle, child: 2, epoch: 3, step: 4)
        var a = RandomStream(key)
        var fresh = RandomStream(key)
        let reference = (0..<1000).map { _ in fresh.nextUInt32() }
        var first = (0..<500).map { _ in a.nextUInt32() }
        // Drawing from other streams in between does not perturb `a`.
        var other = RandomStream(key.at(epoch: 9))
        _ = (0..<777).map { _ in other.nextUInt32() }
        first += (0..<500).map { _ in a.nextUInt32() }
        XCTAssertEqual(first, reference)
    }

    func testEveryAddressFieldSelectsADifferentStream() {
        let base = RandomKey(seed: 7, replicate: 1, role: .initialization, child: 1, epoch: 1, step: 1)
        var variants: [String: RandomKey] = [:]
        var k = base; k.seed = 8; variants["seed"] = k
        k = base; k.seed = 7 | (1 << 32); variants["seed high word"] = k
        k = base; k.replicate = 2; variants["replicate"] = k
        k = base; k.role = .shuffle; variants["role"] = k
        k = base; k.child = 0; variants["child"] = k
        k = base; k.epoch = 2; variants["epoch"] = k
        k = base; k.step = 0; variants["step"] = k
        func words(_ key: RandomKey) -> [UInt32] {
            var s = RandomStream(key)
            return (0..<8).map { _ in s.nextUInt32() }
        }
        let reference = words(base)
        var seen = Set([reference.description])
        for (field, key) in variants.sorted(by: { $0.key < $1.key }) {
            let w = words(key)
            XCTAssertNotEqual(w, reference, "changing \(field) must change the stream")
            XCTAssertTrue(seen.insert(w.description).inserted, "\(field) collides with another variant")
        }
        // Streams whose epoch and step are swapped differ too (they sit in different counter words).
        XCTAssertNotEqual(words(base.at(epoch: 1, step: 2)), words(base.at(epoch: 2, step: 1)))
    }

    // MARK: Distributions

    func testUniformFloatMomentsAndRange() {
        var s = RandomStream(seed: 1, role: .other)
        let n = 100_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n {
            let u = Double(s.uniformFloat())
            XCTAssert(u >= 0 && u < 1)
            sum += u
            sumSq += u * u
        }
        let mean = sum / Double(n)
        let variance = sumSq / Double(n) - mean * mean
        // U(0,1): mean 1/2, variance 1/12; Var(U^2) = 1/5 - 1/9 = 4/45.
        XCTAssertEqual(mean, 0.5, accuracy: Self.sigmas * (1.0 / 12).squareRoot() / Double(n).squareRoot())
        XCTAssertEqual(variance, 1.0 / 12, accuracy: Self.sigmas * (4.0 / 45).squareRoot() / Double(n).squareRoot())
        var d = RandomStream(seed: 2, role: .other)
        let dm = (0..<n).reduce(0.0) { acc, _ in acc + d.uniformDouble() } / Double(n)
        XCTAssertEqual(dm, 0.5, accuracy: Self.sigmas * (1.0 / 12).squareRoot() / Double(n).squareRoot())
    }

    /// 1e5 Box-Muller normals: mean 0 (SE 1/sqrt(n)), variance 1 (SE sqrt(2/n)), E[z^4] = 3
    /// (SE sqrt(96/n)), and P(|z| < 1) = 0.682689 (SE sqrt(p(1-p)/n)); Float and Double paths.
    func testNormalMomentsMatchStandardNormal() {
        let n = 100_000
        let sn = Double(n).squareRoot()
        for useFloat in [false, true] {
            var s = RandomStream(seed: 2024, replicate: useFloat ? 1 : 0, role: .other)
            var m1 = 0.0, m2 = 0.0, m4 = 0.0, inside = 0
            for _ in 0..<n {
                let z = useFloat ? Double(s.normalFloat()) : s.normal()
                XCTAssert(z.isFinite)
                m1 += z; m2 += z * z; m4 += z * z * z * z
                if abs(z) < 1 { inside += 1 }
            }
            m1 /= Double(n); m2 /= Double(n); m4 /= Double(n)
            let label = useFloat ? "Float" : "Double"
            XCTAssertEqual(m1, 0, accuracy: Self.sigmas / sn, label)
            XCTAssertEqual(m2 - m1 * m1, 1, accuracy: Self.sigmas * 2.0.squareRoot() / sn, label)
            XCTAssertEqual(m4, 3, accuracy: Self.sigmas * 96.0.squareRoot() / sn, label)
            let p = 0.682_689_492
            XCTAssertEqual(Double(inside) / Double(n), p, accuracy: Self.sigmas * (p * (1 - p)).squareRoot() / sn, label)
        }
    }

    func testFillNormalMatchesSequentialDraws() {
        var a = RandomStream(seed: 5, role: .initialization)
        var b = a
        var buf = [Float](repeating: 0, count: 101)
        buf.withUnsafeMutableBufferPointer { a.fillNormal($0, mean: 1, std: 2) }
        let expected = (0..<101).map { _ in 1 + 2 * Float(b.normal()) }
        XCTAssertEqual(buf, expected)
    }

    /// Chi-square over the 7 values of `uniformInt(below: 7)`.
    func testUniformIntSmallBoundIsUniform() {
        var s = RandomStream(seed: 3, role: .other)
        let n = 70_000
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<n {
            let v = s.uniformInt(below: 7)
            XCTAssert((0..<7).contains(v))
            counts[v] += 1
        }
        let e = Double(n) / 7
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
        XCTAssertLessThan(chi2, 38.26, "counts \(counts)")  // chi2(6) quantile 1 - 1e-6
        var one = RandomStream(seed: 3, role: .other)
        XCTAssertEqual((0..<100).map { _ in one.uniformInt(below: 1) }, [Int](repeating: 0, count: 100))
    }

    /// Bounds where the two classic biased methods are far off: `n = 3 * 2^30` (32-bit path) and
    /// `n = 3 * 2^61` (64-bit path). Unbiased: P(v < n/3) = 1/3 and P(v mod 3 == 0) = 1/3. Plain
    /// modulo gives P(v < n/3) = 1/2 (32-bit) or 3/8 (64-bit); multiply-shift without rejection
    /// gives P(v mod 3 == 0) = 1/2.
    func testUniformIntLargeBoundsAreUnbiased() {
        for n in [3 << 30, 3 << 61] {
            var s = RandomStream(seed: 11, role: .other, step: n == 3 << 30 ? 0 : 1)
            let draws = 100_000
            var low = 0, mod0 = 0
            for _ in 0..<draws {
                let v = s.uniformInt(below: n)
                XCTAssert(v >= 0 && v < n)
                if v < n / 3 { low += 1 }
                if v % 3 == 0 { mod0 += 1 }
            }
            let tol = Self.sigmas * (2.0 / 9).squareRoot() / Double(draws).squareRoot()
            XCTAssertEqual(Double(low) / Double(draws), 1.0 / 3, accuracy: tol, "n = \(n): P(v < n/3)")
            XCTAssertEqual(Double(mod0) / Double(draws), 1.0 / 3, accuracy: tol, "n = \(n): P(v mod 3 = 0)")
        }
    }

    // MARK: Permutations

    func testPermutationIsAPermutationAndReproducible() {
        var a = RandomStream(seed: 9, role: .shuffle, epoch: 4)
        var b = RandomStream(seed: 9, role: .shuffle, epoch: 4)
        var c = RandomStream(seed: 9, role: .shuffle, epoch: 5)
        let p = a.permutation(1000)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertEqual(b.permutation(1000), p)
        XCTAssertNotEqual(c.permutation(1000), p)
        // The allocation-free variant gives the same permutation.
        var d = RandomStream(seed: 9, role: .shuffle, epoch: 4)
        var buf = [Int](repeating: -1, count: 1000)
        buf.withUnsafeMutableBufferPointer { d.permutation(into: $0) }
        XCTAssertEqual(buf, p)
        // shuffled applies the same Fisher-Yates to arbitrary elements.
        var e = RandomStream(seed: 9, role: .shuffle, epoch: 4)
        XCTAssertEqual(e.shuffled((0..<1000).map { "x\($0)" }), p.map { "x\($0)" })
    }

    /// All 24 permutations of 4 elements are equally likely (chi-square, 23 degrees of freedom).
    func testPermutationsOfFourAreUniform() {
        var s = RandomStream(seed: 12, role: .other)
        let trials = 48_000
        var counts: [[Int]: Int] = [:]
        for _ in 0..<trials { counts[s.permutation(4), default: 0] += 1 }
        XCTAssertEqual(counts.count, 24)
        let e = Double(trials) / 24
        let chi2 = counts.values.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
        XCTAssertLessThan(chi2, 70.55)  // chi2(23) quantile 1 - 1e-6
    }

    func testSampleGivesDistinctElementsUniformly() {
        var s = RandomStream(seed: 13, role: .subset)
        var counts = [Int](repeating: 0, count: 10)
        let trials = 20_000
        for _ in 0..<trials {
            let k = s.sample(3, from: 10)
            XCTAssertEqual(Set(k).count, 3)
            for v in k { counts[v] += 1 }
        }
        // Each element is chosen with probability 3/10 per trial.
        let p = 0.3
        for (v, c) in counts.enumerated() {
            XCTAssertEqual(Double(c) / Double(trials), p,
                           accuracy: Self.sigmas * (p * (1 - p)).squareRoot() / Double(trials).squareRoot(), "element \(v)")
        }
    }
}
