/// A preallocated mini-batch buffer, reused every step so the training loop allocates nothing.
///
/// `images` is `[capacity, C, H, W]` and `labels` `[capacity]`; only the first `count` examples are
/// valid (the last batch of an epoch may be partial).
public struct Batch: Sendable {
    /// `[capacity, C, H, W]`.
    public var images: [Float]
    /// `[capacity]`.
    public var labels: [Int32]
    /// Valid examples, `0...capacity`.
    public internal(set) var count: Int = 0
    public let capacity: Int
    public let channels: Int
    public let height: Int
    public let width: Int

    public init(capacity: Int, channels: Int, height: Int, width: Int) {
        precondition(capacity > 0, "Batch capacity must be positive")
        self.capacity = capacity
        self.channels = channels
        self.height = height
        self.width = width
        images = [Float](repeating: 0, count: capacity * channels * height * width)
        labels = [Int32](repeating: 0, count: capacity)
    }

    /// A buffer for batches of up to `capacity` examples of `dataset`.
    public init(capacity: Int, for dataset: Dataset) {
        self.init(capacity: capacity, channels: dataset.channels, height: dataset.height, width: dataset.width)
    }

    /// `C * H * W`.
    public var exampleSize: Int { channels * height * width }
}

public extension Dataset {
    /// Copies the examples at `indices` (in order) into the front of `batch` and sets `batch.count`.
    /// No allocation (the buffers are uniquely owned by `batch`).
    func gather(_ indices: ArraySlice<Int>, into batch: inout Batch) {
        precondition(indices.count <= batch.capacity,
                     "gather: \(indices.count) examples into a batch of capacity \(batch.capacity)")
        precondition(batch.exampleSize == exampleSize && batch.channels == channels,
                     "gather: batch shape differs from \(name)")
        let e = exampleSize
        images.withUnsafeBufferPointer { src in
            batch.images.withUnsafeMutableBufferPointer { dst in
                labels.withUnsafeBufferPointer { lab in
                    batch.labels.withUnsafeMutableBufferPointer { dstLab in
                        for (k, i) in indices.enumerated() {
                            precondition(i >= 0 && i < lab.count, "gather: index \(i) outside 0..<\(lab.count)")
                            (dst.baseAddress! + k * e).update(from: src.baseAddress! + i * e, count: e)
                            dstLab[k] = lab[i]
                        }
                    }
                }
            }
        }
        batch.count = indices.count
    }
}

/// The batches of one epoch: a permutation of `0..<exampleCount` cut into consecutive batches of
/// `batchSize`. The last batch holds the remainder (`exampleCount % batchSize` examples) unless
/// `dropLast` is set, in which case it is omitted (PyTorch `DataLoader(drop_last=)` semantics).
///
/// The order of a training epoch is `RandomStream(seed, replicate, .shuffle, child, epoch)
/// .permutation(exampleCount)`, so a child's data order depends only on its address. As a
/// `Sequence` it yields index slices (views of `order`, no copies) to pass to `Dataset.gather`.
public struct BatchIterator: Sequence, IteratorProtocol, Sendable {
    /// `[exampleCount]`, the epoch's example order.
    public let order: [Int]
    public let batchSize: Int
    public let dropLast: Bool
    private var nextBatch = 0

    /// Batches over an explicit `order` (e.g. `Array(0..<n)` for evaluation in data set order).
    public init(order: [Int], batchSize: Int, dropLast: Bool = false) {
        precondition(batchSize > 0, "BatchIterator: batchSize must be positive")
        self.order = order
        self.batchSize = batchSize
        self.dropLast = dropLast
    }

    /// The training order of epoch `shuffle.epoch` for the stream `shuffle` (role must be `.shuffle`;
    /// its `step` is ignored and taken as 0).
    public init(exampleCount: Int, batchSize: Int, dropLast: Bool = false, shuffle key: RandomKey) {
        precondition(key.role == .shuffle, "BatchIterator: the order comes from a .shuffle stream, got \(key.role)")
        var stream = RandomStream(key.at(epoch: key.epoch, step: 0))
        self.init(order: stream.permutation(exampleCount), batchSize: batchSize, dropLast: dropLast)
    }

    /// The training order of `epoch` for network `(replicate, child)` of the experiment `seed`.
    public init(exampleCount: Int, batchSize: Int, dropLast: Bool = false, seed: UInt64,
                replicate: Int = 0, child: Int = 0, epoch: Int) {
        self.init(exampleCount: exampleCount, batchSize: batchSize, dropLast: dropLast,
                  shuffle: RandomKey(seed: seed, replicate: replicate, role: .shuffle, child: child, epoch: epoch))
    }

    /// Sequential order `0..<exampleCount` (evaluation).
    public static func sequential(exampleCount: Int, batchSize: Int) -> BatchIterator {
        BatchIterator(order: Array(0..<exampleCount), batchSize: batchSize, dropLast: false)
    }

    /// Number of batches: `floor(n / B)` with `dropLast`, else `ceil(n / B)`.
    public var batchCount: Int {
        dropLast ? order.count / batchSize : (order.count + batchSize - 1) / batchSize
    }

    /// Indices of batch `b`, `0 <= b < batchCount`.
    public func batch(_ b: Int) -> ArraySlice<Int> {
        precondition(b >= 0 && b < batchCount, "batch \(b) outside 0..<\(batchCount)")
        let start = b * batchSize
        return order[start ..< Swift.min(start + batchSize, order.count)]
    }

    public mutating func next() -> ArraySlice<Int>? {
        guard nextBatch < batchCount else { return nil }
        defer { nextBatch += 1 }
        return batch(nextBatch)
    }
}
