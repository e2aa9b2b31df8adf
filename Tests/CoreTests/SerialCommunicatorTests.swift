import Core
import Foundation
import TestSupport
import XCTest

/// The single-process communicator against naive references: a collective over the list of every
/// rank's contribution — here the one rank's — folded by hand. (Several ranks: `MPIMultiRankTests`
/// checks `MPICommunicator` under `mpirun -np 3` against the same serial folds.)
final class SerialCommunicatorTests: XCTestCase {
    let comm = SerialCommunicator()

    /// `op` folded over the ranks' contributions, entry by entry (the naive reference).
    private func fold(_ contributions: [[Double]], _ op: ReduceOp) -> [Double] {
        contributions[0].indices.map { i in
            let column = contributions.map { $0[i] }
            switch op {
            case .sum: return column.reduce(0, +)
            case .max: return column.max()!
            case .min: return column.min()!
            }
        }
    }

    func testRankAndSize() {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
    }

    func testAllreduceEqualsTheFoldOverOneRank() {
        var g = TestRandom(5)
        let x = g.array(257, scale: 1e3) + [0, -0.0, 3e7, -4.5e9]
        for op in [ReduceOp.sum, .max, .min] {
            let reference = fold([x], op)
            var d = x
            comm.allreduce(&d, op)
            assertClose(d, reference, Tolerance.exact, "Double \(op)")
            var f = x.map { Float($0) }
            comm.allreduce(&f, op)
            assertClose(f, fold([x.map { Double(Float($0)) }], op), Tolerance.exact, "Float \(op)")
            var i = x.map { Int($0.rounded()) }
            comm.allreduce(&i, op)
            XCTAssertEqual(i, fold([x.map { Double(Int($0.rounded())) }], op).map { Int($0) }, "Int \(op)")
            assertClose(comm.allreduce(x[3], op), reference[3], Tolerance.exact, "scalar Double \(op)")
            XCTAssertEqual(comm.allreduce(-9, op), -9)
            var empty: [Double] = []
            comm.allreduce(&empty, op)
            XCTAssertEqual(empty, [])
        }
    }

    /// Gathers return the list of every rank's bytes (here one list); broadcasts return the root's.
    func testBroadcastAndGathersReturnTheRanksContributions() {
        var g = TestRandom(6)
        let bytes = (0..<301).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        XCTAssertEqual(comm.broadcast(bytes: bytes, root: 0), bytes)
        XCTAssertEqual(comm.broadcast(bytes: [], root: 0), [])
        XCTAssertEqual(comm.gather(bytes, root: 0), [bytes])
        XCTAssertEqual(comm.gather([], root: 0), [[]])
        XCTAssertEqual(comm.allgather(bytes), [bytes])
        // The generic broadcast of a bitwise-copyable element type keeps every bit (NaN payload, -0).
        let values = g.array(17) + [-0.0, Double(nan: 0x5, signaling: false)]
        var x = values
        comm.broadcast(&x, root: 0)
        XCTAssertEqual(x.map(\.bitPattern), values.map(\.bitPattern))
    }

    /// `sendrecv` to itself is a copy of the bytes, for an empty message and for an odd length.
    func testSendrecvToSelfCopiesTheBytes() {
        var g = TestRandom(7)
        for count in [0, 1, 4099] {
            let send = (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            var received = [UInt8](repeating: 0, count: count)
            send.withUnsafeBytes { s in received.withUnsafeMutableBytes { comm.sendrecv(s, to: 0, $0, from: 0) } }
            XCTAssertEqual(received, send, "\(count) bytes")
        }
    }

    func testSplit() {
        let sub = comm.split(color: 3, key: 7)
        XCTAssertEqual(sub?.size, 1)
        XCTAssertEqual(sub?.rank, 0)
        XCTAssertEqual(sub?.allreduce(2.5, .sum), 2.5)
        XCTAssertNil(comm.split(color: -1, key: 0))
    }
}
