import Foundation

/// The gradient of one training batch, computed shard by shard so that it is bit-identical however
/// many ranks share the work (data parallelism that does not change the numbers).
///
/// The batch is cut into `shards` consecutive shards (fewer when the batch has fewer examples); the
/// `G` ranks of `group` take consecutive runs of them (`BatchShards.owned`).
/// Each shard runs its forward, loss and backward alone, on its own copy of the network (a
/// *replica*), single-threaded; a rank with several threads runs that many shards at once. The
/// shards meet only where the mathematics couples the examples of a batch:
///
/// - BatchNorm in training mode normalises with the statistics of the *whole* batch (the paper's
///   and PyTorch's semantics, not per-shard "ghost" statistics). Its per-channel sums — `Σx` with
///   the squared deviations (`BatchNorm2D.shardStatistics`), and in the backward pass `Σg` and
///   `Σg(x - μ)` — are summed over the shards in shard order, in Double (`ShardSums`): two
///   collectives per BatchNorm layer and step.
/// - The loss is the mean over the whole batch (each shard divides by the batch size).
/// - The parameter gradient is the sum of the shards' gradients, added in shard order on every
///   rank after an allgather of the shards' gradients.
///
/// Every floating-point operation therefore happens in the same order with the same operands for
/// any `G` — including one process with `SerialCommunicator` — and so do the loss summaries and the
/// BatchNorm running statistics: checkpoints and tables are byte-identical for any rank count.
/// A shard's arithmetic does not depend on the threads either: it always runs single-threaded.
final class DataParallelStep<T: Real> {
    let master: Network<T>
    let group: Communicator
    let shards: Int
    /// One network per shard this rank computes (grown on demand), with the master's weights.
    private var replicas: [Network<T>] = []
    /// Per replica, the logit gradients of its shard.
    private var logitGradients: [Buffer<T>] = []
    /// `ShardSums` calls per step: one per BatchNorm layer in the forward pass, one in the backward.
    private let rounds: Int
    /// One thread per replica, kept between steps.
    private let threads = ShardThreads()

    init(master: Network<T>, group: Communicator, shards: Int) {
        precondition(shards >= 1, "DataParallelStep: \(shards) shards")
        self.master = master; self.group = group; self.shards = shards
        rounds = 2 * master.batchNorms.count
    }

    /// Writes the batch's loss gradient into `master.grads` and returns the batch's loss summary
    /// (both identical on every rank of the group). `images` `[n, C, H, W]`, `labels` `[n]`; the
    /// BatchNorm running statistics of `master` advance by one batch. `concurrency`: shards this
    /// rank runs at once (its threads).
    func gradient(images: UnsafePointer<T>, labels: UnsafePointer<Int32>, n: Int, loss: LossFunction,
                  concurrency: Int) -> LossSummary {
        let ranges = BatchShards.ranges(examples: n, shards: shards)
        let mine = BatchShards.owned(ranges.count, rank: group.rank, ranks: group.size)
        let local = mine.count, classes = master.classes, inputCount = master.inputShape.count
        prepareReplicas(local, examples: ranges.map(\.count).max() ?? 0)
        let coordinator = ShardRounds(group: group, shards: ranges.count, local: local, batchExamples: n,
                                      concurrency: concurrency)
        // Each shard thread writes only its own summary slot and its replica's buffers.
        let summaries = UnsafeMutableBufferPointer<LossSummary>.allocate(capacity: local)
        summaries.initialize(repeating: LossSummary())
        defer { summaries.deallocate() }
        for j in 0..<local {
            let replica = replicas[j], range = ranges[mine.lowerBound + j], m = range.count, dlogits = logitGradients[j]
            replica.shardSums = coordinator.member(j)
            let x = SharedPointer(images + range.lowerBound * inputCount), y = SharedPointer(labels + range.lowerBound)
            let summary = SharedPointer(summaries.baseAddress! + j)
            threads.start(j) {
                coordinator.enter()
                Workers.serially {
                    let logits = replica.forward(x.pointer, n: m, mode: .train)
                    summary.pointer.pointee = loss.evaluate(
                        logits: UnsafeBufferPointer(start: logits, count: m * classes), labels: UnsafeBufferPointer(start: y.pointer, count: m),
                        classes: classes, dlogits: UnsafeMutableBufferPointer(start: dlogits.pointer, count: m * classes), gradientDivisor: n)
                    replica.zeroGrads()
                    replica.backward(dlogits.pointer, n: m, mode: .train)
                }
                coordinator.leave()
            }
        }
        for _ in 0..<rounds { coordinator.round() }
        threads.wait(for: local)
        for r in replicas.prefix(local) { r.shardSums = nil }
        sumGradients(local: local, shardCount: ranges.count)
        // BatchNorm running statistics: every replica holds the same (from the whole batch's
        // statistics); a rank without a shard this step takes them from rank 0, which always has one.
        if local > 0 { master.state.pointer.update(from: replicas[0].state.pointer, count: master.state.count) }
        if ranges.count < group.size {
            group.broadcast(UnsafeMutableRawBufferPointer(start: master.state.pointer, count: master.state.count * MemoryLayout<T>.stride), root: 0)
        }
        return sumSummaries(Array(summaries))
    }

    /// At least `count` replicas for shards of up to `examples`, each with the master's weights and
    /// BatchNorm state.
    private func prepareReplicas(_ count: Int, examples: Int) {
        while replicas.count < count {
            replicas.append(master.rebuilt(as: T.self))
            logitGradients.append(Buffer(count: 0))
        }
        for j in 0..<count {
            let r = replicas[j]
            r.prepare(maxBatch: examples)
            r.params.pointer.update(from: master.params.pointer, count: master.parameterCount)
            r.state.pointer.update(from: master.state.pointer, count: master.state.count)
            if logitGradients[j].count < examples * master.classes {
                logitGradients[j] = Buffer(count: examples * master.classes)
            }
        }
    }

    /// `master.grads` = the shards' gradients added in shard order: `((g0 + g1) + g2) + ...`.
    private func sumGradients(local: Int, shardCount: Int) {
        let P = master.parameterCount, out = master.grads.pointer
        out.update(repeating: 0, count: P)
        func add(_ g: UnsafePointer<T>) {
            Workers.split(P) { r in for i in r { out[i] += g[i] } }
        }
        if group.size == 1 {
            for j in 0..<local { add(replicas[j].grads.pointer) }
            return
        }
        let bytesPerShard = P * MemoryLayout<T>.stride
        var mine = [UInt8](repeating: 0, count: local * bytesPerShard)
        mine.withUnsafeMutableBytes { b in
            for j in 0..<local {
                (b.baseAddress! + j * bytesPerShard).copyMemory(from: replicas[j].grads.pointer, byteCount: bytesPerShard)
            }
        }
        for (rank, bytes) in group.allgather(mine).enumerated() {
            let count = BatchShards.owned(shardCount, rank: rank, ranks: group.size).count
            precondition(bytes.count == count * bytesPerShard,
                         "DataParallelStep: rank \(rank) sent \(bytes.count) gradient bytes, not \(count * bytesPerShard)")
            bytes.withUnsafeBytes { b in
                let g = b.bindMemory(to: T.self).baseAddress
                for j in 0..<count { add(g! + j * P) }
            }
        }
    }

    /// The batch's loss summary: the shards' summaries added in shard order on every rank.
    private func sumSummaries(_ summaries: [LossSummary]) -> LossSummary {
        guard group.size > 1 else { return summaries.reduce(LossSummary(), +) }
        var mine: [Double] = []
        for s in summaries { mine += [s.lossSum, Double(s.correct), Double(s.count)] }
        var total = LossSummary()
        for bytes in group.allgather(mine.withUnsafeBytes { Array($0) }) {
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            for i in stride(from: 0, to: values.count, by: 3) {
                total += LossSummary(lossSum: values[i], correct: Int(values[i + 1]), count: Int(values[i + 2]))
            }
        }
        return total
    }
}

/// The threads that run the shards of a step, one per local shard, started once and kept for the
/// step's life (starting threads and mapping their stacks anew every step cost ~5% of a step).
/// Each thread owns a slot: a semaphore it waits on and the job to run.
final class ShardThreads: @unchecked Sendable {
    private final class Slot: @unchecked Sendable {
        let go = DispatchSemaphore(value: 0)
        var job: (() -> Void)?
        var exit = false
    }
    private var slots: [Slot] = []
    private let done = DispatchSemaphore(value: 0)

    /// Runs `job` on thread `j` (started on first use).
    func start(_ j: Int, _ job: @escaping () -> Void) {
        while slots.count <= j {
            let slot = Slot(), done = done
            let thread = Thread {
                while true {
                    slot.go.wait()
                    if slot.exit { return }
                    slot.job!()
                    slot.job = nil
                    done.signal()
                }
            }
            thread.stackSize = 16 << 20
            thread.start()
            slots.append(slot)
        }
        slots[j].job = job
        slots[j].go.signal()
    }

    /// Waits until `count` started jobs have finished.
    func wait(for count: Int) { for _ in 0..<count { done.wait() } }

    deinit {
        for slot in slots { slot.exit = true; slot.go.signal() }
    }
}

/// How a batch is cut into shards and the shards shared among the ranks of a group.
enum BatchShards {
    /// The examples of each shard of a batch of `n` (`min(shards, n)` shards of `n / k` or `n / k + 1`).
    static func ranges(examples n: Int, shards: Int) -> [Range<Int>] {
        let k = min(shards, n)
        return (0..<k).map { ($0 * n / k)..<(($0 + 1) * n / k) }
    }

    /// The shards (indices into `ranges`) group rank `rank` of `ranks` computes, of `k` shards:
    /// `ceil(r k / G) ..< ceil((r + 1) k / G)`, so rank 0 always has shard 0 (when `k > 0`).
    static func owned(_ k: Int, rank: Int, ranks: Int) -> Range<Int> {
        ((rank * k + ranks - 1) / ranks)..<(((rank + 1) * k + ranks - 1) / ranks)
    }
}

/// The meeting points of the shards of one step (`ShardSums`): each shard thread deposits its
/// partial sums and waits; the step's calling thread (`round`) exchanges the deposits of this
/// rank's shards with the other ranks of the group, adds all shards' sums in shard order, and
/// releases the shards. MPI is called only from the calling thread, while every shard thread of
/// this rank waits. At most `concurrency` shard threads compute at a time (a waiting thread gives
/// its turn away).
final class ShardRounds: @unchecked Sendable {
    let group: Communicator
    let shards: Int, local: Int, batchExamples: Int
    private let condition = NSCondition()
    private var deposits: [[Double]]
    private var arrived = 0, generation = 0
    private var result: [Double] = []
    private let turns: DispatchSemaphore

    init(group: Communicator, shards: Int, local: Int, batchExamples: Int, concurrency: Int) {
        self.group = group; self.shards = shards; self.local = local; self.batchExamples = batchExamples
        deposits = Array(repeating: [], count: local)
        turns = DispatchSemaphore(value: max(1, concurrency))
    }

    /// The `ShardSums` of local shard `j`.
    func member(_ j: Int) -> ShardSums { Member(rounds: self, index: j) }

    private final class Member: ShardSums {
        let rounds: ShardRounds, index: Int
        init(rounds: ShardRounds, index: Int) { self.rounds = rounds; self.index = index }
        var batchExamples: Int { rounds.batchExamples }
        func sumOverShards(_ values: UnsafeMutableBufferPointer<Double>) { rounds.deposit(index, values) }
    }

    /// A shard thread starts computing (waits for a turn).
    func enter() { turns.wait() }
    /// A shard thread is done.
    func leave() { turns.signal() }

    /// Shard `j`'s partial sums; returns with the sums over every shard in `values`.
    func deposit(_ j: Int, _ values: UnsafeMutableBufferPointer<Double>) {
        condition.lock()
        deposits[j] = Array(values)
        arrived += 1
        let round = generation
        if arrived == local { condition.broadcast() }
        turns.signal()
        while generation == round { condition.wait() }
        precondition(result.count == values.count, "ShardRounds: shard \(j) sums \(values.count) values, the round \(result.count)")
        _ = values.update(fromContentsOf: result)
        condition.unlock()
        turns.wait()
    }

    /// One round, on the step's calling thread: waits for this rank's shards, exchanges, sums.
    func round() {
        condition.lock()
        while arrived < local { condition.wait() }
        let mine = deposits.flatMap { $0 }
        condition.unlock()
        var parts: [[Double]]
        if group.size == 1 {
            parts = [mine]
        } else {
            parts = group.allgather(mine.withUnsafeBytes { Array($0) }).map { bytes in
                bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            }
        }
        // Each rank's part holds its shards' sums one after another, all of the same length.
        var total: [Double] = []
        for (rank, part) in parts.enumerated() {
            let count = BatchShards.owned(shards, rank: rank, ranks: group.size).count
            guard count > 0 else { continue }
            let length = part.count / count
            if total.isEmpty { total = [Double](repeating: 0, count: length) }
            precondition(part.count == count * length && length == total.count, "ShardRounds: rank \(rank) sent \(part.count) values")
            for s in 0..<count { for i in 0..<length { total[i] += part[s * length + i] } }
        }
        condition.lock()
        result = total
        arrived = 0
        generation += 1
        condition.broadcast()
        condition.unlock()
    }
}
