import Foundation
import XCTest

/// Test helpers shared by every test target (one implementation): tolerances, the per-entry
/// closeness assertion, deterministic test inputs and naive reference solvers.

/// A tolerance `|actual - expected| <= abs + rel * |expected|`, per entry.
public struct Tol: Sendable, CustomStringConvertible {
    public var rel: Double
    public var abs: Double
    public init(rel: Double, abs: Double) { self.rel = rel; self.abs = abs }
    public func bound(_ expected: Double) -> Double { abs + rel * Swift.abs(expected) }
    public var description: String { "abs \(abs) + rel \(rel)" }
}

/// Tolerances, defined once (neural-tangents style): relative + absolute per comparison kind.
public enum Tolerance {
    /// Integer-valued arithmetic, copies and permutations: bit-exact.
    public static let exact = Tol(rel: 0, abs: 0)
    /// Central finite differences in Double, step 1e-6: truncation ~1e-12, rounding ~1e-10.
    public static let finiteDifference = Tol(rel: 1e-6, abs: 1e-8)
    /// Algebraic identities evaluated in Double (adjoint identity, oracle agreement).
    public static let double = Tol(rel: 1e-11, abs: 1e-12)
    /// Float kernels against a Double or naive reference.
    public static let float = Tol(rel: 1e-4, abs: 1e-5)
    /// Backward-stable dense Double factorisations of order <= 100 with O(1) entries.
    public static let lapack = Tol(rel: 0.0, abs: 1e-12)
    /// An absolute bound, for hand-computed values.
    public static func absolute(_ bound: Double) -> Tol { Tol(rel: 0, abs: bound) }
    /// A relative bound with an absolute floor.
    public static func relative(_ rel: Double, floor: Double = 0) -> Tol { Tol(rel: rel, abs: floor) }
}

/// Asserts `|actual[i] - expected[i]| <= tol.abs + tol.rel * |expected[i]|` for every `i` (NaN
/// never passes); on failure names the first mismatching indices with both values, their error and
/// the bound, and the largest error, so a wrong index shows up immediately.
public func assertClose<A: BinaryFloatingPoint>(_ actual: [A], _ expected: [Double], _ tol: Tol,
                                                _ what: String = "",
                                                file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var bad: [String] = [], failures = 0, maxErr = 0.0, maxAt = -1
    for i in actual.indices {
        let err = Swift.abs(Double(actual[i]) - expected[i])
        let e = err.isNaN ? Double.infinity : err
        if e > maxErr || maxAt < 0 { maxErr = e; maxAt = i }
        if !(err <= tol.bound(expected[i])) {
            failures += 1
            if bad.count < 5 {
                bad.append("[\(i)] got \(actual[i]) want \(expected[i]) (err \(err) > \(tol.bound(expected[i])))")
            }
        }
    }
    if failures > 0 {
        XCTFail("\(what): \(failures) of \(actual.count) entries outside \(tol); max error \(maxErr) at [\(maxAt)]; "
                + "first mismatches: \(bad.joined(separator: "; "))", file: file, line: line)
    }
}

public func assertClose(_ actual: Double, _ expected: Double, _ tol: Tol, _ what: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], tol, what, file: file, line: line)
}

public func assertClose(_ actual: Float, _ expected: Double, _ tol: Tol, _ what: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], tol, what, file: file, line: line)
}

/// Deterministic pseudo-random values for test inputs (SplitMix64), independent of the code under test.
public struct TestRandom {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) * 2 - 1 }
    public mutating func normal() -> Double {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
    public mutating func array(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in scale * uniform() } }
}

public func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

/// `A x = b` for a dense row-major `n x n` `A` by Gaussian elimination with partial pivoting, in
/// Double: the naive reference the LAPACK/ScaLAPACK solves are checked against.
public func gaussianSolve(_ a0: [Double], _ b0: [Double], _ n: Int) -> [Double] {
    var a = a0, b = b0
    for col in 0..<n {
        let piv = (col..<n).max { Swift.abs(a[$0 * n + col]) < Swift.abs(a[$1 * n + col]) }!
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

/// True when the tests run under CI (`CI=true`), where every reference must be present.
public var runningUnderCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

/// A reference a test needs (data files, a Python package) is missing: under `CI=true` the test
/// fails (CI must provide it); elsewhere it is skipped with `message`, which names what to install.
public func referenceMissing(_ message: String, file: StaticString = #filePath, line: UInt = #line) throws -> Never {
    if runningUnderCI { XCTFail("\(message) (required under CI=true)", file: file, line: line) }
    throw XCTSkip(message)
}

/// The first executable called `name` on `$PATH` (the tools tests run: gzip, mpirun, a browser).
public func executableOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }
}
