/// Per-class centroids of the logit gradients over a probe set `S` of `m` examples (docs/metrics.md
/// "Logit-gradient alignment"):
///
///     g_c(w) = grad_w (1/m) sum_{x in S} f_c(w, x),      c = 0..<C,  g_c in R^P
///
/// BatchNorm in inference mode (running statistics), so each `f_c(w, x)` is a per-example function.
/// One backward pass per class and batch with `dlogits[i, c'] = [c' == c] / m`; each batch is run
/// forward once and its caches serve the `C` backward passes. Float accumulation over batches.
///
/// Memory: `C * P` floats (10 classes of WRN-16-4: 110 MB).
public struct LogitGradientCentroids: Sendable {
    /// `[C, P]` row-major: row `c` is `g_c`.
    public var values: [Float]
    public let classes: Int
    public let parameterCount: Int

    public init(values: [Float], classes: Int) {
        precondition(classes > 0 && values.count % classes == 0,
                     "LogitGradientCentroids: \(values.count) values are not \(classes) rows")
        self.values = values; self.classes = classes; parameterCount = values.count / classes
    }

    /// Computes the centroids of `network` over `probe`. Uses `network.grads` as scratch and leaves
    /// them zero; parameters and BatchNorm statistics are unchanged.
    public init(_ network: Network<Float>, probe: Dataset, batchSize: Int = metricBatchSize) {
        network.checkCompatible(probe, "LogitGradientCentroids")
        precondition(probe.count > 0, "LogitGradientCentroids: probe set \(probe.name) is empty")
        let C = network.classes, P = network.parameterCount, m = probe.count
        var g = [Float](repeating: 0, count: C * P)
        var dlogits = [Float](repeating: 0, count: Swift.min(batchSize, m) * C)
        let grads = network.grads.pointer
        g.withUnsafeMutableBufferPointer { g in
            dlogits.withUnsafeMutableBufferPointer { d in
                probe.forEachBatch(size: batchSize) { _, n, x, _ in
                    network.forward(x, n: n, mode: .eval)
                    for c in 0..<C {
                        for i in 0..<(n * C) { d[i] = i % C == c ? 1 / Float(m) : 0 }
                        // grads <- g_c so far; backward adds this batch's share; copy back.
                        let row = g.baseAddress! + c * P
                        grads.update(from: row, count: P)
                        network.backward(d.baseAddress!, n: n, mode: .eval)
                        row.update(from: grads, count: P)
                    }
                }
            }
        }
        network.zeroGrads()
        self.init(values: g, classes: C)
    }

    /// `g_c`, `[P]`.
    public func centroid(_ c: Int) -> ArraySlice<Float> {
        precondition(c >= 0 && c < classes, "class \(c) outside 0..<\(classes)")
        return values[(c * parameterCount)..<((c + 1) * parameterCount)]
    }

    /// `A(w, w')` between the centroids of two networks of one architecture on one probe set.
    public static func alignment(_ a: LogitGradientCentroids, _ b: LogitGradientCentroids) -> LogitGradientAlignment {
        precondition(a.classes == b.classes && a.parameterCount == b.parameterCount,
                     "LogitGradientCentroids.alignment: [\(a.classes), \(a.parameterCount)] vs "
                         + "[\(b.classes), \(b.parameterCount)] centroids")
        let P = a.parameterCount
        let cosines = a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                (0..<a.classes).map { c in
                    let ra = UnsafeBufferPointer(rebasing: pa[(c * P)..<((c + 1) * P)])
                    let rb = UnsafeBufferPointer(rebasing: pb[(c * P)..<((c + 1) * P)])
                    return WeightDistance(ra, rb).cosine ?? .nan
                }
            }
        }
        return LogitGradientAlignment(classCosines: cosines)
    }
}

/// Logit-gradient alignment (docs/metrics.md):
///
///     A(w, w') = (1/C) sum_c cos(g_c(w), g_c(w')),      distance = 1 - A
///
/// A centroid's norm is at least 1 when the last layer has a bias (`d f_c / d b_c = 1`), true of
/// every `ModelKind`, so the cosines are defined; a zero centroid would make its cosine NaN.
public struct LogitGradientAlignment: Codable, Equatable, Sendable {
    /// `cos(g_c(w), g_c(w'))` for each class `c`, `[C]`.
    public var classCosines: [Double]
    /// `A`, the mean of `classCosines`.
    public var alignment: Double
    /// `1 - A`.
    public var distance: Double

    public init(classCosines: [Double]) {
        precondition(!classCosines.isEmpty, "LogitGradientAlignment: no classes")
        self.classCosines = classCosines
        alignment = classCosines.reduce(0, +) / Double(classCosines.count)
        distance = 1 - alignment
    }
}
