import Core
import MPIShim
import Parallel
import XCTest

/// The MPI world of the test process itself: a 1-rank singleton, which must behave exactly like
/// `SerialCommunicator`. MPI is initialised once per process (idempotently) and finalised at exit.
final class MPICommunicatorTests: XCTestCase {
    func testInitialisationIsIdempotent() {
        MPIEnvironment.initialize()
        MPIEnvironment.initialize()
        XCTAssertTrue(MPIEnvironment.isInitialized)
        XCTAssertFalse(MPIEnvironment.isFinalized)
        XCTAssertGreaterThanOrEqual(MPIEnvironment.threadLevel, Int(ntk_thread_funneled()))
        XCTAssertTrue(MPIEnvironment.libraryVersion.contains("Open MPI"), MPIEnvironment.libraryVersion)
        XCTAssertFalse(MPIEnvironment.processorName.isEmpty)
    }

    func testSingletonWorldMatchesSerialCommunicator() {
        let mpi: Communicator = Parallel.worldCommunicator()
        let serial: Communicator = SerialCommunicator()
        XCTAssertEqual(mpi.rank, serial.rank)
        XCTAssertEqual(mpi.size, serial.size)
        mpi.barrier()

        for op in [ReduceOp.sum, .max, .min] {
            var f1: [Float] = [1.5, -2, 3e7], f2 = f1
            mpi.allreduce(&f1, op); serial.allreduce(&f2, op)
            XCTAssertEqual(f1, f2)
            var d1: [Double] = [0.1, -7, .pi], d2 = d1
            mpi.allreduce(&d1, op); serial.allreduce(&d2, op)
            XCTAssertEqual(d1, d2)
            var i1 = [Int.max, -3, 1 << 40], i2 = i1
            mpi.allreduce(&i1, op); serial.allreduce(&i2, op)
            XCTAssertEqual(i1, i2)
        }
        var empty: [Double] = []
        mpi.allreduce(&empty, .sum)
        XCTAssertEqual(empty, [])

        var x: [Double] = [1, 2, 3]
        mpi.broadcast(&x, root: 0)
        XCTAssertEqual(x, [1, 2, 3])
        XCTAssertEqual(mpi.broadcast(bytes: [9, 8, 7], root: 0), serial.broadcast(bytes: [9, 8, 7], root: 0))
        XCTAssertEqual(mpi.gather([4, 5], root: 0), serial.gather([4, 5], root: 0))
        XCTAssertEqual(mpi.gather([], root: 0), serial.gather([], root: 0))
        XCTAssertEqual(mpi.allgather([6]), serial.allgather([6]))
        XCTAssertEqual(mpi.allgather([]), serial.allgather([]))

        let sub = mpi.split(color: 3, key: 7)
        XCTAssertEqual(sub?.size, 1)
        XCTAssertEqual(sub?.rank, 0)
        XCTAssertEqual(sub?.allreduce(5, .sum), 5)
        XCTAssertNil(mpi.split(color: -1, key: 0))

        let node = Parallel.worldCommunicator().nodeLayout()
        XCTAssertEqual(node.nodeRank, 0)
        XCTAssertEqual(node.ranksOnNode, 1)
        XCTAssertEqual(node.nodeCount, 1)
        XCTAssertEqual(node.processorName, MPIEnvironment.processorName)
    }

    /// `sendrecv` to itself matches `SerialCommunicator` (a copy), for an empty message and for one
    /// of 2^28 + 13 bytes, which goes through both parts (whole 2^28-byte blocks, then the rest).
    func testSendrecvToSelfCopiesAcrossTheBlockBoundary() {
        let mpi: Communicator = Parallel.worldCommunicator()
        for count in [0, 5, (1 << 28) + 13] {
            var send = [UInt8](repeating: 0, count: count)
            for i in stride(from: 0, to: count, by: 4093) { send[i] = UInt8(truncatingIfNeeded: i / 4093 + 1) }
            if count > 0 { send[count - 1] = 0xAB }
            var received = [UInt8](repeating: 0, count: count), serial = received
            send.withUnsafeBytes { s in
                received.withUnsafeMutableBytes { mpi.sendrecv(s, to: 0, $0, from: 0) }
                serial.withUnsafeMutableBytes { SerialCommunicator().sendrecv(s, to: 0, $0, from: 0) }
            }
            XCTAssertTrue(received == send, "sendrecv of \(count) bytes")
            XCTAssertTrue(serial == send, "serial sendrecv of \(count) bytes")
        }
    }

    func testFailureMessageNamesCallAndMPIError() {
        MPIEnvironment.initialize()
        let message = MPIEnvironment.failureMessage(call: "MPI_Allreduce", code: MPI_ERR_COMM)
        XCTAssertTrue(message.contains("MPI_Allreduce"), message)
        XCTAssertTrue(message.contains("MPI_ERR_COMM: invalid communicator"), message)
    }
}
