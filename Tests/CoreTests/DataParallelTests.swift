@testable import Core
import Foundation
import TestSupport
import XCTest

/// Data-parallel training (`DataParallelStep`): how batches are cut into shards, and the sharded
/// gradient against the one-call forward/backward of the whole batch. That groups of ranks train
/// to the bits of one process is tested in ParallelTests (`DataParallelGroupTests`).
final class DataParallelTests: XCTestCase {
    func testShardsCoverTheBatchAndRankZeroAlwaysHasTheFirst() {
        XCTAssertEqual(BatchShards.ranges(examples: 10, shards: 4), [0..<2, 2..<5, 5..<7, 7..<10])
        XCTAssertEqual(BatchShards.ranges(examples: 3, shards: 8), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(BatchShards.ranges(examples: 128, shards: 8).map(\.count), Array(repeating: 16, count: 8))
        for k in 1...9 {
            for ranks in 1...5 {
                let owned = (0..<ranks).map { BatchShards.owned(k, rank: $0, ranks: ranks) }
                XCTAssertEqual(owned.flatMap { Array($0) }, Array(0..<k), "k \(k), \(ranks) ranks")
                XCTAssertEqual(owned[0].first, 0, "rank 0 computes shard 0 (k \(k), \(ranks) ranks)")
                XCTAssertLessThanOrEqual(owned.map(\.count).max()! - owned.map(\.count).min()!, 1)
            }
        }
        XCTAssertEqual(BatchShards.owned(2, rank: 2, ranks: 3), 2..<2, "a rank may have no shard of a short batch")
    }

    /// One step's gradient, loss and BatchNorm running statistics by 8 shards against one forward
    /// and backward of the whole batch in training mode (whole-batch BatchNorm statistics), both in
    /// Double, where the two differ only by rounding (~1e-16). The shards run each BatchNorm and the
    /// ReLU after it, and a residual sum and its ReLU, as one pass (`LayerContext.fusesActivations`;
    /// ResNet-20's and WRN's pre-activation pairs, ResNet-20's identity shortcuts), the whole batch layer by layer, so this also checks the fusion. In Float the sharded gradient is also
    /// held against the Double one, loosely: a rounding difference can flip a ReLU gate that sits
    /// within rounding of zero, which moves the gradient by ~1e-4 of its norm (measured on ResNet-20
    /// here; finite differences land between the two there).
    func testShardedGradientEqualsTheWholeBatchGradient() throws {
        for kind in [ModelKind.resnet20, .simplecnn, .wrn16_4] {
            let input = Shape(3, 8, 8), classes = 4, n = 24
            let (data, _) = SyntheticData.make(SyntheticSpec(trainCount: n, testCount: 1, channels: 3, height: 8, width: 8,
                                                             classCount: classes, seed: 3))
            let float = kind.build(input: input, classes: classes, as: Float.self)
            var stream = RandomStream(seed: 5, replicate: 0, role: .initialization, child: 0)
            float.initialize { stream.normal() }
            let whole = float.rebuilt(as: Double.self), sharded = float.rebuilt(as: Double.self)
            for i in 0..<float.parameterCount { (whole.params[i], sharded.params[i]) = (Double(float.params[i]), Double(float.params[i])) }
            let images = data.images.map(Double.init)

            let reference = Self.wholeBatchStep(whole, images: images, labels: data.labels, n: n)
            let summary = Self.shardedStep(sharded, images: images, labels: data.labels, n: n, shards: 8)
            XCTAssertEqual(summary.count, n)
            XCTAssertEqual(summary.correct, reference.correct, "\(kind)")
            assertClose(summary.lossSum, reference.lossSum, Tol(rel: 1e-12, abs: 0), "\(kind) loss")
            let g = (0..<whole.parameterCount).map { whole.grads[$0] }
            let norm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertGreaterThan(norm, 1e-2, "\(kind): a gradient to compare")
            assertClose((0..<sharded.parameterCount).map { sharded.grads[$0] }, g, Tol(rel: 1e-9, abs: 1e-12 * norm), "\(kind) gradient")
            assertClose((0..<sharded.state.count).map { sharded.state[$0] }, (0..<whole.state.count).map { whole.state[$0] },
                        Tol(rel: 1e-12, abs: 1e-15), "\(kind) running statistics")

            let floatSummary = Self.shardedStep(float, images: data.images, labels: data.labels, n: n, shards: 8)
            assertClose(floatSummary.lossSum, reference.lossSum, Tol(rel: 1e-5, abs: 0), "\(kind) Float loss")
            let error = (0..<float.parameterCount).map { Double(float.grads[$0]) - g[$0] }.map { $0 * $0 }.reduce(0, +).squareRoot()
            XCTAssertLessThan(error, 1e-3 * norm, "\(kind): Float sharded gradient against the Double whole-batch one")
        }
    }

    /// `DataParallelStep` on one process: the gradient left in `net.grads`.
    static func shardedStep<T: Real>(_ net: Network<T>, images: [T], labels: [Int32], n: Int, shards: Int) -> LossSummary {
        let step = DataParallelStep(master: net, group: SerialCommunicator(), shards: shards)
        return images.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                step.gradient(images: x.baseAddress!, labels: y.baseAddress!, n: n, loss: .crossEntropy, concurrency: 2)
            }
        }
    }

    /// Forward, cross-entropy and backward of the whole batch in training mode; the gradient is
    /// left in `net.grads`, the running statistics in `net.state`.
    static func wholeBatchStep<T: Real>(_ net: Network<T>, images: [T], labels: [Int32], n: Int) -> LossSummary {
        let classes = net.classes
        var dlogits = [T](repeating: 0, count: n * classes)
        let logits = images.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: n, mode: .train) }
        let summary = labels.withUnsafeBufferPointer { y in
            dlogits.withUnsafeMutableBufferPointer { d in
                LossFunction.crossEntropy.evaluate(logits: UnsafeBufferPointer(start: logits, count: n * classes),
                                                   labels: UnsafeBufferPointer(rebasing: y[0..<n]), classes: classes, dlogits: d)
            }
        }
        net.zeroGrads()
        dlogits.withUnsafeBufferPointer { net.backward($0.baseAddress!, n: n, mode: .train) }
        return summary
    }
}
