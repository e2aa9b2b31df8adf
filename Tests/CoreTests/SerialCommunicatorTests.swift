import Core
import XCTest

/// The single-process communicator: every collective is the identity on its input.
final class SerialCommunicatorTests: XCTestCase {
    let comm = SerialCommunicator()

    func testRankAndSize() {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
    }

    func testAllreduceLeavesValuesUnchanged() {
        for op in [ReduceOp.sum, .max, .min] {
            var f: [Float] = [1.5, -2, 3e7]
            comm.allreduce(&f, op)
            XCTAssertEqual(f, [1.5, -2, 3e7])
            var d: [Double] = [0.1, -7, .pi]
            comm.allreduce(&d, op)
            XCTAssertEqual(d, [0.1, -7, .pi])
            var i = [Int.max, -3, 1 << 40]
            comm.allreduce(&i, op)
            XCTAssertEqual(i, [Int.max, -3, 1 << 40])
            XCTAssertEqual(comm.allreduce(2.5, op), 2.5)
            XCTAssertEqual(comm.allreduce(-9, op), -9)
        }
    }

    func testBroadcastAndGathers() {
        var x: [Double] = [1, 2, 3]
        comm.broadcast(&x, root: 0)
        XCTAssertEqual(x, [1, 2, 3])
        XCTAssertEqual(comm.broadcast(bytes: [9, 8, 7], root: 0), [9, 8, 7])
        XCTAssertEqual(comm.broadcast(bytes: [], root: 0), [])
        XCTAssertEqual(comm.gather([4, 5], root: 0), [[4, 5]])
        XCTAssertEqual(comm.gather([], root: 0), [[]])
        XCTAssertEqual(comm.allgather([6]), [[6]])
    }

    func testSplit() {
        let sub = comm.split(color: 3, key: 7)
        XCTAssertEqual(sub?.size, 1)
        XCTAssertEqual(sub?.rank, 0)
        XCTAssertNil(comm.split(color: -1, key: 0))
    }
}
