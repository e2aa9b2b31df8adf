import Core
import Foundation
import TestSupport
import XCTest

/// Serial LAPACK wrappers against closed forms.
final class LAPACKTests: XCTestCase {
    /// The `n x n` 1-D Laplacian (2 on the diagonal, -1 beside it), column-major.
    static func laplacian(_ n: Int) -> [Double] {
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            a[i + i * n] = 2
            if i > 0 { a[i + (i - 1) * n] = -1; a[i - 1 + i * n] = -1 }
        }
        return a
    }

    func testLaplacianEigenvaluesMatchClosedForm() throws {
        for n in [1, 2, 7, 50] {
            let w = try LAPACK.symmetricEigenvalues(Self.laplacian(n), n: n)
            let exact = (1...n).map { 2 - 2 * cos(Double($0) * .pi / Double(n + 1)) }
            assertClose(w, exact, Tolerance.lapack, "Laplacian n=\(n)")
        }
    }

    func testLaplacianEigenvectorsAreTheSineModes() throws {
        // Eigenvector k (1-based) is sqrt(2/(n+1)) sin(i k pi/(n+1)), up to sign.
        let n = 12
        let (w, z) = try LAPACK.symmetricEigen(Self.laplacian(n), n: n)
        XCTAssertEqual(w.count, n)
        for k in 1...n {
            let exact = (1...n).map { sqrt(2 / Double(n + 1)) * sin(Double($0 * k) * .pi / Double(n + 1)) }
            var column = Array(z[(k - 1) * n..<k * n])
            if zip(column, exact).map(*).reduce(0, +) < 0 { column = column.map { -$0 } }
            assertClose(column, exact, Tolerance.lapack, "eigenvector \(k)")
        }
    }

    func testCholeskySolveKnownSystem() throws {
        // A = L L^T with L = [[2,0,0],[1,3,0],[-1,2,1]]; X chosen, B = A X computed exactly by hand:
        // A = [[4,2,-2],[2,10,5],[-2,5,6]].
        let a: [Double] = [4, 2, -2, 2, 10, 5, -2, 5, 6]   // symmetric, so row/column order agree
        let x: [Double] = [1, -2, 3, 0.5, 0, -1]           // two right-hand sides, column-major
        let b: [Double] = [4 - 4 - 6, 2 - 20 + 15, -2 - 10 + 18,
                           2 + 0 + 2, 1 + 0 - 5, -1 + 0 - 6]
        let solved = try LAPACK.choleskySolve(a, n: 3, b, nrhs: 2)
        assertClose(solved, x, Tolerance.lapack, "A X = B")

        let l = try LAPACK.choleskyFactor(a, n: 3)
        let lower = [l[0], l[1], l[2], l[4], l[5], l[8]]   // L(0,0) L(1,0) L(2,0) L(1,1) L(2,1) L(2,2)
        assertClose(lower, [2, 1, -1, 3, 2, 1], Tolerance.lapack, "Cholesky factor")
    }

    func testCholeskyReportsIndefiniteMatrix() {
        // Leading minors 1, then 1*1 - 2*2 = -3 < 0: LAPACK reports order 2.
        let a: [Double] = [1, 2, 2, 1]
        XCTAssertThrowsError(try LAPACK.choleskySolve(a, n: 2, [1, 1], nrhs: 1)) { error in
            XCTAssertEqual(error as? LAPACKError, LAPACKError(routine: "LAPACKE_dpotrf", info: 2,
                                                              detail: "leading minor of order 2 is not positive definite"))
            XCTAssertTrue("\(error)".contains("LAPACKE_dpotrf"))
        }
    }
}
