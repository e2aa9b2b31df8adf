/// Predicted labels of a network on a data set, and its error there.
///
/// `labels[i] = argmax_c f_c(w, x_i)` (ties to the lowest class, as `argmaxRows`), BatchNorm in
/// inference mode (running statistics), evaluated in batches of `batchSize` in data set order.
public struct Predictions: Codable, Equatable, Sendable {
    /// `[N]` predicted class of each example.
    public var labels: [Int32]
    /// Fraction of examples whose prediction differs from the data set's label, `e(w)`.
    public var errorRate: Double
    public var classes: Int

    public init(labels: [Int32], errorRate: Double, classes: Int) {
        self.labels = labels; self.errorRate = errorRate; self.classes = classes
    }

    /// Runs `network` (eval mode) over `data`.
    public init(_ network: Network<Float>, on data: Dataset, batchSize: Int = metricBatchSize) {
        network.checkCompatible(data, "Predictions")
        precondition(data.count > 0, "Predictions: data set \(data.name) is empty")
        let classes = network.classes
        var predicted = [Int32](repeating: 0, count: data.count)
        var wrong = 0
        predicted.withUnsafeMutableBufferPointer { p in
            data.forEachBatch(size: batchSize) { start, n, x, y in
                let logits = network.forward(x, n: n, mode: .eval)
                let out = UnsafeMutableBufferPointer(rebasing: p[start..<(start + n)])
                argmaxRows(logits: UnsafeBufferPointer(start: logits, count: n * classes), classes: classes,
                           predictions: out)
                for i in 0..<n where out[i] != y[i] { wrong += 1 }
            }
        }
        self.init(labels: predicted, errorRate: Double(wrong) / Double(data.count),
                  classes: classes)
    }
}

/// How differently two networks classify one data set (docs/metrics.md, "Function distance").
///
/// With predictions `p_a, p_b` and true labels `y` of `N` examples of `C` classes:
///
///     disagreement            D     = (1/N) #{i : p_a[i] != p_b[i]}
///     errorA, errorB          e     = (1/N) #{i : p[i] != y[i]}
///     independentDisagreement D_ind = e_a + e_b - e_a e_b C / (C - 1)
///     normalized                    = D / D_ind
///
/// `D_ind` is the disagreement expected of two independent classifiers with these error rates whose
/// errors spread uniformly over the `C - 1` wrong classes (Fort et al. 2020): they disagree unless
/// both are right (`(1-e_a)(1-e_b)`) or both wrong with the same label (`e_a e_b / (C-1)`).
/// `normalized = 1` means errors as uncorrelated as chance. `D_ind = 0` only when both networks are
/// perfect (or `C = 2` and both always wrong); then `D` is 0 too and `normalized` is `nil`.
public struct FunctionDistance: Codable, Equatable, Sendable {
    /// `D`, fraction of examples with different predicted labels.
    public var disagreement: Double
    public var errorA: Double
    public var errorB: Double
    /// `D_ind = e_a + e_b - e_a e_b C/(C-1)`.
    public var independentDisagreement: Double
    /// `D / D_ind`; nil when `D_ind == 0`.
    public var normalized: Double?
    public var classes: Int

    /// From predicted labels `a, b [N]`, true `labels [N]`, `classes >= 2`.
    public init(a: [Int32], b: [Int32], labels: [Int32], classes: Int) {
        precondition(a.count == b.count && a.count == labels.count && !a.isEmpty,
                     "FunctionDistance: \(a.count) and \(b.count) predictions for \(labels.count) labels")
        precondition(classes >= 2, "FunctionDistance: needs at least 2 classes, got \(classes)")
        var differ = 0, wrongA = 0, wrongB = 0
        for i in 0..<labels.count {
            if a[i] != b[i] { differ += 1 }
            if a[i] != labels[i] { wrongA += 1 }
            if b[i] != labels[i] { wrongB += 1 }
        }
        let n = Double(labels.count), c = Double(classes)
        disagreement = Double(differ) / n
        errorA = Double(wrongA) / n
        errorB = Double(wrongB) / n
        independentDisagreement = errorA + errorB - errorA * errorB * c / (c - 1)
        normalized = independentDisagreement > 0 ? disagreement / independentDisagreement : nil
        self.classes = classes
    }

    /// From two networks' `Predictions` on the data set whose true labels are `labels`.
    public init(_ a: Predictions, _ b: Predictions, labels: [Int32]) {
        precondition(a.classes == b.classes, "FunctionDistance: \(a.classes) vs \(b.classes) classes")
        self.init(a: a.labels, b: b.labels, labels: labels, classes: a.classes)
    }

    /// Both networks evaluated on `data` (eval mode).
    public init(_ a: Network<Float>, _ b: Network<Float>, on data: Dataset, batchSize: Int = metricBatchSize) {
        self.init(Predictions(a, on: data, batchSize: batchSize), Predictions(b, on: data, batchSize: batchSize),
                  labels: data.labels)
    }
}
