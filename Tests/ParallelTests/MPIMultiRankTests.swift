import Core
import Foundation
import Parallel
import TestSupport
import XCTest

/// `MPICommunicator` on 3 ranks against a serial computation: the test relaunches this test bundle
/// under `mpirun -np 3`, running only `testCollectivesOnEveryRank`; there every rank generates all
/// ranks' inputs (TestRandom seeded by rank), so it computes each collective's result serially, in
/// Double, and compares. Non-integer values on purpose: the sums exercise rounding, not just counts.
final class MPIMultiRankTests: XCTestCase {
    static let ranks = 3
    static let childFlag = "NTKSCAPE_TEST_MPI_CHILD"

    /// The inputs of rank `r`: `count` values in [-1, 1) times a rank-dependent scale.
    static func values(rank r: Int, count: Int) -> [Double] {
        var g = TestRandom(1000 + UInt64(r))
        return g.array(count, scale: Double(r + 1))
    }

    func testMPICommunicatorMatchesSerialComputationOnThreeRanks() throws {
        if ProcessInfo.processInfo.environment[Self.childFlag] != nil { return }   // the child runs the other test
        let bundle = try XCTUnwrap(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        let (status, output) = try SelftestIntegrationTests.run(SelftestIntegrationTests.mpirun, [
            "--allow-run-as-root", "--oversubscribe", "-np", "\(Self.ranks)", "-x", "\(Self.childFlag)=1", bundle,
            "ParallelTests.MPIMultiRankTests/testCollectivesOnEveryRank"], timeout: 120)
        XCTAssertEqual(status, 0, output)
        for r in 0..<Self.ranks {
            XCTAssertTrue(output.contains("MPIMultiRankTests: rank \(r) of \(Self.ranks) checked"), "rank \(r):\n\(output)")
        }
        XCTAssertFalse(output.contains("error:"), output)
    }

    /// Runs only under the relaunch above (skipped in a normal test run).
    func testCollectivesOnEveryRank() throws {
        guard ProcessInfo.processInfo.environment[Self.childFlag] != nil else {
            throw XCTSkip("runs only on the ranks started by testMPICommunicatorMatchesSerialComputationOnThreeRanks")
        }
        let comm = Parallel.worldCommunicator()
        let size = comm.size, rank = comm.rank, count = 1000
        XCTAssertEqual(size, Self.ranks)
        let all = (0..<size).map { Self.values(rank: $0, count: count) }
        func serial(_ op: ReduceOp) -> [Double] {
            (0..<count).map { i in
                let column = all.map { $0[i] }
                switch op {
                case .sum: return column.reduce(0, +)
                case .max: return column.max()!
                case .min: return column.min()!
                }
            }
        }
        for op in [ReduceOp.sum, .max, .min] {
            let reference = serial(op)
            var d = all[rank]
            comm.allreduce(&d, op)
            assertClose(d, reference, op == .sum ? Tolerance.double : Tolerance.exact, "allreduce \(op) Double")
            var f = all[rank].map { Float($0) }
            comm.allreduce(&f, op)
            // Float: the inputs are rounded to Float first (2^-24 relative each), then summed in Float.
            let floatReference = (0..<count).map { i -> Double in
                let column = all.map { Double(Float($0[i])) }
                return op == .sum ? column.reduce(0, +) : (op == .max ? column.max()! : column.min()!)
            }
            assertClose(f, floatReference, op == .sum ? Tolerance.float : Tolerance.exact, "allreduce \(op) Float")
            var n = all[rank].map { Int($0 * 1e15) }
            comm.allreduce(&n, op)
            let intReference = (0..<count).map { i -> Int in
                let column = all.map { Int($0[i] * 1e15) }
                return op == .sum ? column.reduce(0, +) : (op == .max ? column.max()! : column.min()!)
            }
            XCTAssertEqual(n, intReference, "allreduce \(op) Int")
            assertClose(comm.allreduce(all[rank][0], op), reference[0], op == .sum ? Tolerance.double : Tolerance.exact,
                        "scalar allreduce \(op)")
        }
        // Gathers of rank-dependent lengths: the serial concatenation of every rank's bytes.
        let bytes = (0..<size).map { r in all[r].prefix(5 + 7 * r).map { UInt8(truncatingIfNeeded: Int(($0 + 4) * 60)) } }
        XCTAssertEqual(comm.allgather(bytes[rank]), bytes, "allgather")
        for root in 0..<size {
            let gathered = comm.gather(bytes[rank], root: root)
            if rank == root { XCTAssertEqual(gathered, bytes, "gather to \(root)") } else { XCTAssertNil(gathered) }
            XCTAssertEqual(comm.broadcast(bytes: rank == root ? bytes[root] : [], root: root), bytes[root], "broadcast bytes from \(root)")
            var x = rank == root ? all[root] : [Double](repeating: .nan, count: count)
            comm.broadcast(&x, root: root)
            XCTAssertEqual(x, all[root], "broadcast Double from \(root)")
        }
        // Ring: each rank sends its values to the next rank and receives the previous rank's.
        let previous = (rank + size - 1) % size
        var received = [Double](repeating: .nan, count: count)
        all[rank].withUnsafeBytes { s in
            received.withUnsafeMutableBytes { comm.sendrecv(s, to: (rank + 1) % size, $0, from: previous) }
        }
        XCTAssertEqual(received, all[previous], "sendrecv ring")
        // Split by parity: each group's sum is the serial sum over its members.
        let sub = try XCTUnwrap(comm.split(color: rank % 2, key: rank))
        let members = stride(from: rank % 2, to: size, by: 2).map { $0 }
        XCTAssertEqual(sub.size, members.count)
        assertClose(sub.allreduce(all[rank][1], .sum), members.reduce(0.0) { $0 + all[$1][1] }, Tolerance.double, "split sum")
        comm.barrier()
        print("MPIMultiRankTests: rank \(rank) of \(size) checked")
    }
}
