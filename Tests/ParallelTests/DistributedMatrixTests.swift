import Core
import Foundation
import Parallel
import TestSupport
import XCTest

/// `DistributedMatrix` on the test process's 1-rank world, against serial LAPACK and closed forms.
/// (Several ranks: `SelftestIntegrationTests` runs the same operations under mpirun.)
final class DistributedMatrixTests: XCTestCase {
    func testSerialCommunicatorIsRejectedOnlyAboveOneRank() throws {
        // A 1-rank serial communicator runs ScaLAPACK on MPI_COMM_SELF.
        let grid = try BLACSGrid(SerialCommunicator())
        XCTAssertEqual(grid.rows * grid.cols, 1)
        grid.close()
        grid.close()   // idempotent
        XCTAssertEqual(grid.context, -1)
    }

    func testFillGatherAndFrobenius() throws {
        let grid = try BLACSGrid(Parallel.worldCommunicator())
        let (m, k) = (37, 23)
        var a = try DistributedMatrix(grid: grid, rows: m, cols: k, blockSize: 5)
        a.fill { i, j in Double(i * 100 + j) }
        let full = try XCTUnwrap(try a.gather(root: 0))
        let expected = (0..<(m * k)).map { Double(($0 % m) * 100 + $0 / m) }
        assertClose(full, expected, Tolerance.exact, "gathered matrix")
        // <A, A> = sum_ij (100 i + j)^2.
        var exact = 0.0
        for i in 0..<m { for j in 0..<k { exact += Double((i * 100 + j) * (i * 100 + j)) } }
        XCTAssertEqual(a.frobeniusInner(a), exact)
    }

    func testEigenvaluesMatchSerialLAPACK() throws {
        let grid = try BLACSGrid(Parallel.worldCommunicator())
        let n = 41
        let f: (Int, Int) -> Double = { i, j in 1 / Double(i + j + 1) + (i == j ? Double(i) : 0) }
        var a = try DistributedMatrix(grid: grid, rows: n, cols: n, blockSize: 8)
        a.fill(f)
        let serialInput = (0..<(n * n)).map { f($0 % n, $0 / n) }
        var z = try DistributedMatrix(like: a)
        let w = try a.symmetricEigen(vectors: &z)
        assertClose(w, try LAPACK.symmetricEigenvalues(serialInput, n: n), Tolerance.lapack,
                    "pdsyevd vs dsyevd")
    }

    func testCholeskySolveMatchesSerialLAPACK() throws {
        let grid = try BLACSGrid(Parallel.worldCommunicator())
        let n = 29, nrhs = 2
        // Diagonally dominant, hence SPD.
        let f: (Int, Int) -> Double = { i, j in i == j ? Double(n) : 1 / Double(1 + abs(i - j)) }
        let g: (Int, Int) -> Double = { i, c in Double((i * 7 + c * 3) % 11) - 5 }
        var a = try DistributedMatrix(grid: grid, rows: n, cols: n, blockSize: 4)
        var b = try DistributedMatrix(grid: grid, rows: n, cols: nrhs, blockSize: 4)
        a.fill(f)
        b.fill(g)
        XCTAssertThrowsError(try a.choleskySolve(&b))   // not factorised yet
        try a.choleskyFactorize()
        try a.choleskySolve(&b)
        let x = try XCTUnwrap(try b.gather())
        let serial = try LAPACK.choleskySolve((0..<(n * n)).map { f($0 % n, $0 / n) }, n: n,
                                              (0..<(n * nrhs)).map { g($0 % n, $0 / n) }, nrhs: nrhs)
        assertClose(x, serial, Tolerance.lapack, "pdpotrs vs dpotrs")
    }

    func testIndefiniteMatrixThrowsWithRoutineAndInfo() throws {
        let grid = try BLACSGrid(Parallel.worldCommunicator())
        var a = try DistributedMatrix(grid: grid, rows: 6, cols: 6, blockSize: 2)
        a.fill { i, j in i == j ? (i == 4 ? -1 : 1) : 0 }
        XCTAssertThrowsError(try a.choleskyFactorize()) { error in
            let e = error as? LAPACKError
            XCTAssertEqual(e?.routine, "pdpotrf_")
            XCTAssertEqual(e?.info, 5)
        }
    }

    func testInProcessSelfTestPasses() {
        let results = SelfTest.run(comm: Parallel.worldCommunicator(), n: 120, block: 16)
        XCTAssertEqual(results.count, SelfTest.checkCount)
        for r in results where !r.passed { XCTFail(r.line) }
    }
}
