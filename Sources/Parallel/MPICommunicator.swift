import Core
import Foundation
import MPIShim

/// `Communicator` over an MPI communicator. Every MPI call's return code is checked; a failure names
/// the call and MPI's error string and aborts the job (a collective cannot be retried on one rank).
///
/// Counts passed to MPI are 32-bit: reductions and broadcasts are chunked; a gather's total must stay
/// below 2 GiB.
public final class MPICommunicator: Communicator {
    /// The MPI handle. Valid while this object lives.
    public let handle: MPI_Comm
    public let rank: Int
    public let size: Int
    /// Communicators this object created (by splitting) are freed with it; the world is not.
    private let owned: Bool

    /// Elements per MPI call in chunked collectives (well below `Int32.max` for any element size).
    private static let chunk = 1 << 28

    /// Wraps `handle`; `owned` handles are freed (`MPI_Comm_free`) on deinit.
    public init(handle: MPI_Comm, owned: Bool) {
        MPIEnvironment.initialize()
        var r: Int32 = 0, s: Int32 = 0
        MPIEnvironment.check(MPI_Comm_rank(handle, &r), "MPI_Comm_rank")
        MPIEnvironment.check(MPI_Comm_size(handle, &s), "MPI_Comm_size")
        self.handle = handle
        self.rank = Int(r)
        self.size = Int(s)
        self.owned = owned
    }

    deinit {
        // After MPI_Finalize no MPI call is allowed; the communicator died with MPI.
        guard owned, !MPIEnvironment.isFinalized else { return }
        var h: MPI_Comm? = handle
        MPIEnvironment.check(MPI_Comm_free(&h), "MPI_Comm_free")
    }

    /// Every process of the job (`MPI_COMM_WORLD`); initialises MPI on first use. Without `mpirun`
    /// this is a 1-rank singleton world.
    public static func world() -> MPICommunicator {
        MPIEnvironment.initialize()
        return MPICommunicator(handle: ntk_comm_world(), owned: false)
    }

    /// This process alone (`MPI_COMM_SELF`).
    public static func selfOnly() -> MPICommunicator {
        MPIEnvironment.initialize()
        return MPICommunicator(handle: ntk_comm_self(), owned: false)
    }

    private func checkRoot(_ root: Int, _ call: String) {
        if !(0..<size).contains(root) {
            MPIEnvironment.fatal("\(call): root \(root) out of range 0..<\(size)")
        }
    }

    // MARK: Communicator

    public func barrier() {
        MPIEnvironment.check(MPI_Barrier(handle), "MPI_Barrier")
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOp) {
        allreduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  elementSize: MemoryLayout<Float>.stride, type: ntk_float(), op: op)
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReduceOp) {
        allreduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  elementSize: MemoryLayout<Double>.stride, type: ntk_double(), op: op)
    }

    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Int>, _ op: ReduceOp) {
        precondition(MemoryLayout<Int>.size == 8, "MPICommunicator assumes a 64-bit Int")
        allreduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count,
                  elementSize: MemoryLayout<Int>.stride, type: ntk_int64(), op: op)
    }

    /// In-place `MPI_Allreduce` in chunks of `chunk` elements.
    private func allreduce(_ base: UnsafeMutableRawPointer?, count: Int, elementSize: Int,
                           type: MPI_Datatype, op: ReduceOp) {
        guard let base, count > 0 else { return }
        let mpiOp: MPI_Op
        switch op {
        case .sum: mpiOp = ntk_op_sum()
        case .max: mpiOp = ntk_op_max()
        case .min: mpiOp = ntk_op_min()
        }
        var offset = 0
        while offset < count {
            let n = min(Self.chunk, count - offset)
            MPIEnvironment.check(
                MPI_Allreduce(ntk_in_place(), base + offset * elementSize, Int32(n), type, mpiOp, handle),
                "MPI_Allreduce(\(n) elements, \(op))")
            offset += n
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        checkRoot(root, "broadcast")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var offset = 0
        while offset < buffer.count {
            let n = min(Self.chunk, buffer.count - offset)
            MPIEnvironment.check(MPI_Bcast(base + offset, Int32(n), ntk_byte(), Int32(root), handle),
                                 "MPI_Bcast(\(n) bytes, root \(root))")
            offset += n
        }
    }

    /// `MPI_Gather` of the byte counts, then `MPI_Gatherv` of the bytes into one buffer on `root`.
    public func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]? {
        checkRoot(root, "gather")
        var myCount = Self.count32(bytes.count, "gather")
        let isRoot = rank == root
        var counts = [Int32](repeating: 0, count: isRoot ? size : 1)
        MPIEnvironment.check(
            MPI_Gather(&myCount, 1, ntk_int(), &counts, 1, ntk_int(), Int32(root), handle),
            "MPI_Gather(byte counts, root \(root))")
        let (displacements, total) = isRoot ? Self.displacements(counts, "gather") : ([0], 0)
        var received = [UInt8](repeating: 0, count: max(total, 1))
        bytes.withUnsafeBytes { send in
            MPIEnvironment.check(
                MPI_Gatherv(send.baseAddress, myCount, ntk_byte(), &received, &counts, displacements,
                            ntk_byte(), Int32(root), handle),
                "MPI_Gatherv(\(bytes.count) bytes, root \(root))")
        }
        guard isRoot else { return nil }
        return Self.split(received, counts: counts, displacements: displacements)
    }

    /// `MPI_Allgather` of the byte counts, then `MPI_Allgatherv` of the bytes.
    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        var myCount = Self.count32(bytes.count, "allgather")
        var counts = [Int32](repeating: 0, count: size)
        MPIEnvironment.check(MPI_Allgather(&myCount, 1, ntk_int(), &counts, 1, ntk_int(), handle),
                             "MPI_Allgather(byte counts)")
        let (displacements, total) = Self.displacements(counts, "allgather")
        var received = [UInt8](repeating: 0, count: max(total, 1))
        bytes.withUnsafeBytes { send in
            MPIEnvironment.check(
                MPI_Allgatherv(send.baseAddress, myCount, ntk_byte(), &received, &counts,
                               displacements, ntk_byte(), handle),
                "MPI_Allgatherv(\(bytes.count) bytes)")
        }
        return Self.split(received, counts: counts, displacements: displacements)
    }

    public func split(color: Int, key: Int) -> Communicator? {
        splitMPI(color: color, key: key)
    }

    /// `MPI_Sendrecv` of any size: MPI counts are 32-bit, so every rank makes exactly two calls —
    /// whole 2^28-byte blocks (a contiguous derived type), then the remaining bytes — which pair up
    /// with the peers' two calls whatever the sizes.
    public func sendrecv(_ send: UnsafeRawBufferPointer, to destination: Int,
                         _ receive: UnsafeMutableRawBufferPointer, from source: Int) {
        checkRoot(destination, "sendrecv destination")
        checkRoot(source, "sendrecv source")
        let block = Self.chunk
        var blockType: MPI_Datatype? = nil
        MPIEnvironment.check(MPI_Type_contiguous(Int32(block), ntk_byte(), &blockType), "MPI_Type_contiguous")
        MPIEnvironment.check(MPI_Type_commit(&blockType), "MPI_Type_commit")
        defer { MPIEnvironment.check(MPI_Type_free(&blockType), "MPI_Type_free") }
        let sendBlocks = send.count / block, receiveBlocks = receive.count / block
        guard sendBlocks <= Int(Int32.max), receiveBlocks <= Int(Int32.max) else {
            MPIEnvironment.fatal("sendrecv: \(send.count) / \(receive.count) bytes exceed 2^59")
        }
        let parts: [(type: MPI_Datatype?, sendCount: Int, sendOffset: Int, receiveCount: Int, receiveOffset: Int)] = [
            (blockType, sendBlocks, 0, receiveBlocks, 0),
            (ntk_byte(), send.count - sendBlocks * block, sendBlocks * block,
             receive.count - receiveBlocks * block, receiveBlocks * block),
        ]
        for (i, part) in parts.enumerated() {
            MPIEnvironment.check(
                MPI_Sendrecv(send.baseAddress.map { UnsafeRawPointer($0 + part.sendOffset) }, Int32(part.sendCount),
                             part.type, Int32(destination), Int32(7301 + i),
                             receive.baseAddress.map { $0 + part.receiveOffset }, Int32(part.receiveCount),
                             part.type, Int32(source), Int32(7301 + i), handle, nil),
                "MPI_Sendrecv(\(send.count) bytes to \(destination), \(receive.count) from \(source), part \(i))")
        }
    }

    /// `split(color:key:)` with the concrete type (`MPI_Comm_split`; negative `color` is
    /// `MPI_UNDEFINED` and yields `nil`). Collective.
    public func splitMPI(color: Int, key: Int) -> MPICommunicator? {
        var newComm: MPI_Comm? = nil
        let c = color < 0 ? ntk_undefined() : Int32(color)
        MPIEnvironment.check(MPI_Comm_split(handle, c, Int32(key), &newComm),
                             "MPI_Comm_split(color \(color), key \(key))")
        guard let newComm, newComm != ntk_comm_null() else { return nil }
        return MPICommunicator(handle: newComm, owned: true)
    }

    /// The ranks of this communicator that share this node's memory
    /// (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`), ordered by rank. Collective.
    public func nodeLocal() -> MPICommunicator {
        var newComm: MPI_Comm? = nil
        MPIEnvironment.check(
            MPI_Comm_split_type(handle, ntk_comm_type_shared(), Int32(rank), ntk_info_null(), &newComm),
            "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)")
        guard let newComm, newComm != ntk_comm_null() else {
            MPIEnvironment.fatal("MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) returned MPI_COMM_NULL")
        }
        return MPICommunicator(handle: newComm, owned: true)
    }

    /// Where the ranks of this communicator run. Collective.
    public func nodeLayout() -> NodeLayout {
        let node = nodeLocal()
        let leaders = allreduce(node.rank == 0 ? 1 : 0)
        return NodeLayout(nodeRank: node.rank, ranksOnNode: node.size, nodeCount: leaders,
                          processorName: MPIEnvironment.processorName)
    }

    // MARK: Helpers for variable-length collectives

    private static func count32(_ n: Int, _ call: String) -> Int32 {
        guard n <= Int(Int32.max) else {
            MPIEnvironment.fatal("\(call): \(n) bytes exceed MPI's 32-bit count")
        }
        return Int32(n)
    }

    /// Exclusive prefix sums of `counts` and their total.
    private static func displacements(_ counts: [Int32], _ call: String) -> ([Int32], Int) {
        var displacements = [Int32](repeating: 0, count: counts.count)
        var total = 0
        for (i, c) in counts.enumerated() {
            displacements[i] = count32(total, call)
            total += Int(c)
        }
        _ = count32(total, call)
        return (displacements, total)
    }

    private static func split(_ buffer: [UInt8], counts: [Int32], displacements: [Int32]) -> [[UInt8]] {
        zip(counts, displacements).map { c, d in Array(buffer[Int(d)..<Int(d) + Int(c)]) }
    }
}

/// Placement of one rank among the nodes of a job.
public struct NodeLayout: Equatable, Sendable {
    /// This rank's index among the ranks on its node.
    public let nodeRank: Int
    /// Ranks of the communicator on this node.
    public let ranksOnNode: Int
    /// Distinct nodes of the communicator.
    public let nodeCount: Int
    /// `MPI_Get_processor_name`.
    public let processorName: String
}
