import Core
import Foundation

/// `size` communicators for threads of one process, standing in for MPI ranks in tests that run a
/// collective algorithm on several "ranks" at once (`ThreadGroup.run`). Every collective is one
/// exchange of byte buffers: each member deposits its bytes and, once all have, every member reads
/// all of them in rank order and computes the collective's result from them alike (reductions add
/// in rank order). `split` and `sendrecv` are not provided.
final class ThreadGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var slots: [[UInt8]?]
    private var arrived = 0, generation = 0
    private var delivered: [[UInt8]] = []

    init(size: Int) {
        precondition(size >= 1)
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    /// The member communicators, rank 0 first.
    var communicators: [Communicator] { (0..<size).map { Member(group: self, rank: $0) } }

    /// Runs `body` for every member on its own thread and returns the results in rank order.
    static func run<R>(size: Int, _ body: @escaping @Sendable (Communicator) throws -> R) rethrows -> [R] {
        let group = ThreadGroup(size: size), members = group.communicators
        let results = UnsafeMutableBufferPointer<Result<R, Error>?>.allocate(capacity: size)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let done = DispatchSemaphore(value: 0)
        let slots = UncheckedPointer(results.baseAddress!)
        for (r, comm) in members.enumerated() {
            let member = UncheckedBox(comm)
            let thread = Thread {
                (slots.pointer + r).pointee = Result { try body(member.value) }
                done.signal()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        for _ in 0..<size { done.wait() }
        return try results.map { try $0!.get() }
    }

    /// Every member's `bytes`, in rank order, once all members have called.
    func exchange(rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        let round = generation
        slots[rank] = bytes
        arrived += 1
        if arrived == size {
            delivered = slots.map { $0! }
            slots = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == round { condition.wait() }
        }
        return delivered
    }

    private final class Member: Communicator {
        let group: ThreadGroup, rank: Int
        init(group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }
        var size: Int { group.size }

        func barrier() { _ = group.exchange(rank: rank, []) }

        private func reduce<T: Numeric & Comparable>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp) {
            let parts = group.exchange(rank: rank, Array(UnsafeRawBufferPointer(buffer)))
            for i in buffer.indices {
                let values = parts.map { $0.withUnsafeBytes { $0.load(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self) } }
                switch op {
                case .sum: buffer[i] = values.dropFirst().reduce(values[0], +)
                case .max: buffer[i] = values.max()!
                case .min: buffer[i] = values.min()!
                }
            }
        }
        func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOp) { reduce(buffer, op) }
        func allreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReduceOp) { reduce(buffer, op) }
        func allreduce(_ buffer: UnsafeMutableBufferPointer<Int>, _ op: ReduceOp) { reduce(buffer, op) }

        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
            let parts = group.exchange(rank: rank, Array(UnsafeRawBufferPointer(buffer)))
            precondition(parts[root].count == buffer.count, "ThreadGroup.broadcast: sizes differ")
            parts[root].withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
        func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]? {
            let parts = group.exchange(rank: rank, bytes)
            return rank == root ? parts : nil
        }
        func allgather(_ bytes: [UInt8]) -> [[UInt8]] { group.exchange(rank: rank, bytes) }
        func split(color: Int, key: Int) -> Communicator? { fatalError("ThreadGroup: split is not provided") }
        func sendrecv(_ send: UnsafeRawBufferPointer, to destination: Int, _ receive: UnsafeMutableRawBufferPointer, from source: Int) {
            fatalError("ThreadGroup: sendrecv is not provided")
        }
    }
}

/// Hands a value that is used by one thread at a time to another thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A pointer written by exactly one thread (its own element).
struct UncheckedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
