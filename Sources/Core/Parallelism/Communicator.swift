/// The collective operations distributed algorithms need, with no dependency on MPI.
///
/// `Core` takes a communicator as a parameter wherever work is shared between processes; `Parallel`
/// provides the MPI implementation and `SerialCommunicator` is the single-process default. A sharded
/// computation must return exactly what it returns on a `SerialCommunicator`.
public protocol Communicator: AnyObject {
    /// This process's index in `0..<size`.
    var rank: Int { get }
    /// Number of processes in the group.
    var size: Int { get }

    func barrier()

    /// Element-wise reduction across ranks, in place, result on every rank.
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOp)
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReduceOp)
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Int>, _ op: ReduceOp)

    /// Overwrites `buffer` on every rank with its contents on `root`. Sizes must agree.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)

    /// Variable-length byte buffers from every rank, in rank order, delivered to `root`
    /// (other ranks receive `nil`).
    func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]?
    /// Variable-length byte buffers from every rank, in rank order, delivered to every rank.
    func allgather(_ bytes: [UInt8]) -> [[UInt8]]

    /// Partitions the group: ranks passing the same `color` form a sub-communicator, ordered by
    /// `key` then by rank. A negative `color` opts out and returns `nil`.
    func split(color: Int, key: Int) -> Communicator?

    /// Point-to-point exchange (`MPI_Sendrecv`): sends `send` to rank `destination` while receiving
    /// `receive.count` bytes from rank `source`. Every rank passing `(rank + 1, rank - 1) mod size`
    /// is a ring shift. The byte counts must match the peers' (empty buffers are allowed); messages of
    /// any size (over 2^31 bytes too).
    func sendrecv(_ send: UnsafeRawBufferPointer, to destination: Int,
                  _ receive: UnsafeMutableRawBufferPointer, from source: Int)
}

public enum ReduceOp: Sendable {
    case sum, max, min
}

public extension Communicator {
    var isRoot: Bool { rank == 0 }

    func allreduce(_ array: inout [Float], _ op: ReduceOp = .sum) {
        array.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }
    func allreduce(_ array: inout [Double], _ op: ReduceOp = .sum) {
        array.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }
    func allreduce(_ array: inout [Int], _ op: ReduceOp = .sum) {
        array.withUnsafeMutableBufferPointer { allreduce($0, op) }
    }
    func allreduce(_ value: Double, _ op: ReduceOp = .sum) -> Double {
        var v = [value]; allreduce(&v, op); return v[0]
    }
    func allreduce(_ value: Int, _ op: ReduceOp = .sum) -> Int {
        var v = [value]; allreduce(&v, op); return v[0]
    }

    /// Broadcasts a variable-length byte buffer: its length first, then its contents.
    func broadcast(bytes: [UInt8], root: Int) -> [UInt8] {
        var count = [rank == root ? bytes.count : 0]
        count.withUnsafeMutableBytes { broadcast($0, root: root) }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: count[0])
        out.withUnsafeMutableBytes { broadcast($0, root: root) }
        return out
    }
    func broadcast<T>(_ array: inout [T], root: Int) where T: BitwiseCopyable {
        array.withUnsafeMutableBytes { broadcast($0, root: root) }
    }
}

/// The one-process group: every collective is the identity.
public final class SerialCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func barrier() {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOp) {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReduceOp) {}
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Int>, _ op: ReduceOp) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        precondition(root == 0, "SerialCommunicator: root \(root) out of range 0..<1")
    }
    public func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]? {
        precondition(root == 0, "SerialCommunicator: root \(root) out of range 0..<1")
        return [bytes]
    }
    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
    public func split(color: Int, key: Int) -> Communicator? {
        color < 0 ? nil : SerialCommunicator()
    }
    /// With one rank the only exchange is with itself: `receive` gets a copy of `send`.
    public func sendrecv(_ send: UnsafeRawBufferPointer, to destination: Int,
                         _ receive: UnsafeMutableRawBufferPointer, from source: Int) {
        precondition(destination == 0 && source == 0, "SerialCommunicator: sendrecv peers \(destination), \(source) out of range 0..<1")
        precondition(send.count == receive.count, "SerialCommunicator: sendrecv of \(send.count) bytes into \(receive.count)")
        if send.count > 0 { receive.baseAddress!.copyMemory(from: send.baseAddress!, byteCount: send.count) }
    }
}
