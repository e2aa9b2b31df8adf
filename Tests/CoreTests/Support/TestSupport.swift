import Foundation
import XCTest

/// Tolerances, defined once (neural-tangents style): relative + absolute per comparison kind.
enum Tolerance {
    /// Central finite differences in Double, step 1e-6: truncation ~1e-12, rounding ~1e-10.
    static let finiteDifference = (rel: 1e-6, abs: 1e-8)
    /// Algebraic identities evaluated in Double (adjoint identity, oracle agreement).
    static let double = (rel: 1e-11, abs: 1e-12)
    /// Float kernels against a Double or naive reference.
    static let float = (rel: 1e-4, abs: 1e-5)
    /// Backward-stable dense Double factorisations of order <= 100 with O(1) entries.
    static let lapack = (rel: 0.0, abs: 1e-12)
    /// An absolute bound, for hand-computed values.
    static func absolute(_ bound: Double) -> (rel: Double, abs: Double) { (0, bound) }
}

/// Asserts `|a - e| <= abs + rel*|e|` element-wise; on failure prints the first mismatches and the
/// maximum error so a wrong index shows up immediately.
func assertClose<A: BinaryFloatingPoint>(_ actual: [A], _ expected: [Double], _ tol: (rel: Double, abs: Double),
                                         _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): length", file: file, line: line)
    var bad: [String] = [], maxErr = 0.0
    for i in 0..<min(actual.count, expected.count) {
        let err = abs(Double(actual[i]) - expected[i])
        maxErr = max(maxErr, err.isNaN ? .infinity : err)
        if !(err <= tol.abs + tol.rel * abs(expected[i])) && bad.count < 5 {
            bad.append("[\(i)] got \(actual[i]) want \(expected[i]) (err \(err))")
        }
    }
    XCTAssert(bad.isEmpty, "\(what): max error \(maxErr); first mismatches: \(bad.joined(separator: "; "))",
              file: file, line: line)
}

func assertClose(_ actual: Double, _ expected: Double, _ tol: (rel: Double, abs: Double), _ what: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], tol, what, file: file, line: line)
}

/// Deterministic pseudo-random values for test inputs (SplitMix64), independent of the code under test.
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) * 2 - 1 }
    mutating func normal() -> Double {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
    mutating func array(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in scale * uniform() } }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

/// `A x = b` for a dense row-major `n x n` `A` by Gaussian elimination with partial pivoting, in
/// Double: the naive reference the LAPACK/ScaLAPACK solves are checked against.
func gaussianSolve(_ a0: [Double], _ b0: [Double], _ n: Int) -> [Double] {
    var a = a0, b = b0
    for col in 0..<n {
        let piv = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
        for k in 0..<n { a.swapAt(col * n + k, piv * n + k) }
        b.swapAt(col, piv)
        for r in (col + 1)..<n {
            let f = a[r * n + col] / a[col * n + col]
            for k in col..<n { a[r * n + k] -= f * a[col * n + k] }
            b[r] -= f * b[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        x[r] = (b[r] - ((r + 1)..<n).reduce(0) { $0 + a[r * n + $1] * x[$1] }) / a[r * n + r]
    }
    return x
}

