import XCTest

/// Tolerances for this target, defined once. `exact` is for integer-valued arithmetic.
enum Tolerance {
    static let exact = 0.0
    /// Backward-stable dense `Double` factorisations of order <= 100 with O(1) entries.
    static let lapack = 1e-12
}

/// Asserts `|actual[i] - expected[i]| <= tolerance` for all `i`, reporting the max error and the
/// first few mismatches.
func assertClose(_ actual: [Double], _ expected: [Double], tolerance: Double, _ what: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var maxError = 0.0
    var mismatches: [String] = []
    for i in actual.indices {
        let e = abs(actual[i] - expected[i])
        if !(e <= tolerance) {
            if mismatches.count < 5 { mismatches.append("[\(i)] \(actual[i]) vs \(expected[i])") }
        }
        maxError = max(maxError, e.isNaN ? .infinity : e)
    }
    if !mismatches.isEmpty {
        XCTFail("\(what): max error \(maxError) > \(tolerance); first mismatches: "
                + mismatches.joined(separator: ", "), file: file, line: line)
    }
}
