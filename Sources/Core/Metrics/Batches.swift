/// The evaluation batch size of the metrics: large, so BLAS sees big GEMMs and a pass over a
/// 10,000-image test set is 20 forwards.
public let metricBatchSize = 500

extension Dataset {
    /// Calls `body(start, n, images, labels)` for the consecutive batches `start..<start+n` of at most
    /// `batchSize` examples, in data set order. `images [n, C, H, W]` and `labels [n]` point into the
    /// data set's own arrays: examples are contiguous, so evaluation copies nothing.
    func forEachBatch(size batchSize: Int,
                      _ body: (_ start: Int, _ n: Int, _ images: UnsafePointer<Float>,
                               _ labels: UnsafeBufferPointer<Int32>) -> Void) {
        precondition(batchSize > 0, "batch size must be positive, got \(batchSize)")
        let e = exampleSize
        images.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                var start = 0
                while start < count {
                    let n = Swift.min(batchSize, count - start)
                    body(start, n, x.baseAddress! + start * e, UnsafeBufferPointer(rebasing: y[start..<(start + n)]))
                    start += n
                }
            }
        }
    }
}

extension Network where T == Float {
    /// Checks that `data` fits this network's input and class count.
    func checkCompatible(_ data: Dataset, _ what: String) {
        precondition(Shape(data.channels, data.height, data.width) == inputShape,
                     "\(what): data set \(data.name) has \(data.channels)x\(data.height)x\(data.width) images, "
                         + "the network takes \(inputShape)")
        precondition(data.classCount == classes,
                     "\(what): data set \(data.name) has \(data.classCount) classes, the network \(classes)")
    }

    /// Whether `other` has the same architecture (kind, input, classes, parameter and state layout).
    func sameArchitecture(_ other: Network<Float>) -> Bool {
        kind == other.kind && inputShape == other.inputShape && classes == other.classes
            && layout.parameters == other.layout.parameters && layout.state == other.layout.state
    }
}

/// The one evaluation loop: loss and error of the model whose logits for a batch `(images, n)` are
/// `logits(images, n)` (`[n, classes]`, valid until the next call), over `data` in data set order,
/// in batches of `batchSize` read in place. `each(start, n, logits)` sees every batch's logits (e.g.
/// to save per-example outputs).
public func evaluate(on data: Dataset, classes: Int, batchSize: Int = metricBatchSize, loss: LossFunction = .crossEntropy,
                     logits: (_ images: UnsafePointer<Float>, _ n: Int) -> UnsafePointer<Float>,
                     each: ((_ start: Int, _ n: Int, _ logits: UnsafeBufferPointer<Float>) -> Void)? = nil) -> LossSummary {
    var total = LossSummary()
    data.forEachBatch(size: batchSize) { start, n, x, y in
        let f = UnsafeBufferPointer(start: logits(x, n), count: n * classes)
        each?(start, n, f)
        total += loss.evaluate(logits: f, labels: y, classes: classes)
    }
    return total
}
