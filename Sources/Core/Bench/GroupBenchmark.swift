import Foundation

/// Data-parallel training throughput (`ntkscape bench train --ranks-per-network G`, under mpirun):
/// one network trained by rank 0 alone and the same network trained by a group of ranks `0..<G`
/// (`Trainer.group`, `DataParallelStep`), in alternating timed steps of the same run, so both
/// sides see the same machine load.
public struct GroupTrainingResult: Encodable, Sendable {
    public var model: String
    public var batch: Int
    public var shards: Int
    /// Ranks sharing the network.
    public var ranks: Int
    public var threadsPerRank: Int
    /// Fastest step of one rank alone and of the group, in seconds.
    public var singleSeconds: Double, groupSeconds: Double
    public var singleImagesPerSecond: Double { Double(batch) / singleSeconds }
    public var groupImagesPerSecond: Double { Double(batch) / groupSeconds }
    /// Group throughput over one rank's.
    public var speedup: Double { singleSeconds / groupSeconds }
    /// `speedup / ranks` (1 = perfect scaling).
    public var efficiency: Double { speedup / Double(ranks) }

    enum CodingKeys: String, CodingKey {
        case model, batch, shards, ranks, threadsPerRank, singleSeconds, groupSeconds, singleImagesPerSecond,
             groupImagesPerSecond, speedup, efficiency
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model); try c.encode(batch, forKey: .batch); try c.encode(shards, forKey: .shards)
        try c.encode(ranks, forKey: .ranks); try c.encode(threadsPerRank, forKey: .threadsPerRank)
        try c.encode(singleSeconds, forKey: .singleSeconds); try c.encode(groupSeconds, forKey: .groupSeconds)
        try c.encode(singleImagesPerSecond, forKey: .singleImagesPerSecond)
        try c.encode(groupImagesPerSecond, forKey: .groupImagesPerSecond)
        try c.encode(speedup, forKey: .speedup); try c.encode(efficiency, forKey: .efficiency)
    }
}

extension Benchmark {
    /// Times training steps of `kind` on rank 0 alone and on ranks `0..<ranks` of `world` together
    /// (one warm-up step each, then `repeats` alternating timed steps; the fastest of each side).
    /// Every rank of `world` must call it; the result is returned on rank 0 (nil elsewhere).
    public static func groupTraining(_ kind: ModelKind, batch: Int, shards: Int, input: Shape, classes: Int, repeats: Int,
                                     ranks: Int, threads: Int, world: Communicator) -> GroupTrainingResult? {
        precondition(ranks >= 1 && ranks <= world.size, "groupTraining: \(ranks) ranks of \(world.size)")
        func trainer(_ group: Communicator?) -> Trainer? {
            group.map { syntheticTrainer(kind, batch: batch, input: input, classes: classes, shards: shards, group: $0) }
        }
        let single = trainer(world.split(color: world.rank == 0 ? 0 : -1, key: world.rank))
        let group = trainer(world.split(color: world.rank < ranks ? 0 : -1, key: world.rank))
        var best = (single: Double.infinity, group: Double.infinity)
        for round in 0...repeats {
            world.barrier()
            if let single {
                let t0 = now(); _ = try? single.trainStep()
                if round > 0 { best.single = min(best.single, now() - t0) }
            }
            world.barrier()
            if let group {
                let t0 = now(); _ = try? group.trainStep()
                if round > 0 { best.group = min(best.group, now() - t0) }
            }
        }
        guard world.rank == 0 else { return nil }
        return GroupTrainingResult(model: kind.rawValue, batch: batch, shards: shards, ranks: ranks, threadsPerRank: threads,
                                   singleSeconds: best.single, groupSeconds: best.group)
    }
}
