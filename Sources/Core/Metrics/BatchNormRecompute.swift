/// Re-estimates a network's BatchNorm running statistics on a fixed set of training batches — the
/// one implementation behind the barrier's `recompute` policy (`WeightInterpolation`) and the
/// analysis-time policy `analysis.batchnorm: recompute` (`ExperimentRunner.prepareForAnalysis`).
///
/// Procedure: every BatchNorm layer's running statistics are reset (mean 0, variance 1), then the
/// cumulative average of the batch statistics (PyTorch `momentum=None`) is taken over `batches`
/// batches of `batchSize` examples run forward in train mode. Batch `k` holds examples
/// `perm[k*batchSize ..< (k+1)*batchSize]` of
/// `RandomStream(seed: seed, role: .batchNormRecompute).permutation(N)` of the `N` examples of
/// `data` — the same batches, in the same order, for every network it is applied to. The layers'
/// momenta are restored afterwards; parameters are never touched. A network without BatchNorm is
/// left untouched (bit for bit).
public struct BatchNormRecomputer {
    public let data: Dataset
    public let batches: Int
    public let batchSize: Int
    public let seed: UInt64
    /// Example indices of every batch, in order.
    public let order: [Int]

    /// Throws (naming the fix) when `batches * batchSize` exceeds the examples of `data`.
    public init(data: Dataset, batches: Int, batchSize: Int, seed: UInt64) throws {
        guard batches > 0 && batchSize > 0 && batches * batchSize <= data.count else {
            throw DatasetError.invalidSubset(
                dataset: data.name,
                reason: "BatchNorm recompute asks for \(batches) batches of \(batchSize) but there are \(data.count) "
                    + "examples. Fix: lower the recompute batches or the batch size.")
        }
        self.data = data; self.batches = batches; self.batchSize = batchSize; self.seed = seed
        var stream = RandomStream(seed: seed, role: .batchNormRecompute)
        order = Array(stream.permutation(data.count).prefix(batches * batchSize))
    }

    /// Resets and re-estimates the running statistics of `network` in place (no-op without BatchNorm).
    public func recompute(_ network: Network<Float>) {
        guard !network.batchNorms.isEmpty else { return }
        network.checkCompatible(data, "BatchNormRecomputer")
        let saved = network.batchNorms.map { $0.momentum }
        for bn in network.batchNorms {
            bn.resetRunningStatistics(state: network.state.pointer)
            bn.momentum = nil
        }
        var batch = Batch(capacity: batchSize, for: data)
        for indices in BatchIterator(order: order, batchSize: batchSize) {
            data.gather(indices, into: &batch)
            _ = batch.images.withUnsafeBufferPointer { network.forward($0.baseAddress!, n: indices.count, mode: .train) }
        }
        for (bn, m) in zip(network.batchNorms, saved) { bn.momentum = m }
    }
}
