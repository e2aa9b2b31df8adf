// Classification losses on logits. Legend: N examples, C classes.
//   logits  [N, C] row-major     labels  [N], each in 0..<C     dlogits [N, C] row-major (overwritten)
//
// Both losses return a `LossSummary` (sum of per-example losses in Double, count of correct
// predictions) and, when `dlogits` is given, write d(mean loss)/d(logits) into it. The mean is over
// `gradientDivisor` examples (default N): pass the global batch size when a batch is sharded across
// ranks so that the allreduced gradient is the gradient of the global mean.
//
// Prediction = argmax over the row; ties go to the lowest class index (a NaN is never the argmax,
// so a diverged network shows up as a NaN loss rather than as a plausible error rate).

/// Totals over a set of examples; add summaries of batches to get a whole-set result.
public struct LossSummary: Equatable, Sendable {
    /// Sum over examples of the per-example loss (accumulated in Double whatever the scalar type).
    public var lossSum: Double
    /// Examples whose argmax equals the label.
    public var correct: Int
    /// Examples seen.
    public var count: Int

    @inlinable public init(lossSum: Double = 0, correct: Int = 0, count: Int = 0) {
        self.lossSum = lossSum; self.correct = correct; self.count = count
    }
    /// Mean per-example loss; NaN when `count == 0`.
    public var meanLoss: Double { lossSum / Double(count) }
    /// Fraction misclassified, `1 - correct / count` (docs/metrics.md, "Error").
    public var errorRate: Double { Double(count - correct) / Double(count) }

    public static func + (a: LossSummary, b: LossSummary) -> LossSummary {
        LossSummary(lossSum: a.lossSum + b.lossSum, correct: a.correct + b.correct, count: a.count + b.count)
    }
    public static func += (a: inout LossSummary, b: LossSummary) { a = a + b }
}

/// The training losses, named as in experiment files.
public enum LossFunction: String, Codable, CaseIterable, Sendable {
    /// `softmaxCrossEntropy`.
    case crossEntropy = "cross_entropy"
    /// `oneHotMSE`.
    case mse

    @inlinable
    public func evaluate<T: Real, L: BinaryInteger>(
        logits: UnsafeBufferPointer<T>, labels: UnsafeBufferPointer<L>, classes: Int,
        dlogits: UnsafeMutableBufferPointer<T>? = nil, gradientDivisor: Int? = nil
    ) -> LossSummary {
        switch self {
        case .crossEntropy:
            return softmaxCrossEntropy(logits: logits, labels: labels, classes: classes, dlogits: dlogits,
                                       gradientDivisor: gradientDivisor)
        case .mse:
            return oneHotMSE(logits: logits, labels: labels, classes: classes, dlogits: dlogits,
                             gradientDivisor: gradientDivisor)
        }
    }
}

extension LossFunction {
    /// The tangent of the logit gradient for a logit tangent `tangent [N, C]`: `(∇²_z loss) ż`, with the
    /// same `1/divisor` scaling as `evaluate`'s `dlogits`:
    ///
    ///     cross-entropy:  (p ⊙ ż - p (pᵀ ż)) / divisor    (p = softmax(z_i), per example)
    ///     MSE:            ż / divisor
    @inlinable
    public func hessianProduct<T: Real>(logits: UnsafePointer<T>, tangent: UnsafePointer<T>, n: Int, classes C: Int,
                                        divisor: Int, into out: UnsafeMutablePointer<T>) {
        let inv = 1 / T(divisor)
        switch self {
        case .mse:
            for i in 0..<(n * C) { out[i] = tangent[i] * inv }
        case .crossEntropy:
            for i in 0..<n {
                let z = logits + i * C, t = tangent + i * C, o = out + i * C
                var m = z[0]
                for c in 1..<C where z[c] > m { m = z[c] }
                var s: T = 0
                for c in 0..<C { let e = T.exp(z[c] - m); o[c] = e; s += e }
                var pt: T = 0
                for c in 0..<C { o[c] /= s; pt += o[c] * t[c] }
                for c in 0..<C { o[c] = o[c] * (t[c] - pt) * inv }
            }
        }
    }
}

/// Softmax cross-entropy, mean over examples:
///
///     loss = (1/N) sum_i [ logsumexp_c z_ic - z_{i,y_i} ]
///     dloss/dz_ic = (softmax(z_i)_c - [c == y_i]) / N
///
/// Stable for any finite logits: with `m_i = max_c z_ic`, the per-example loss is computed as
/// `log(sum_c exp(z_ic - m_i)) - (z_{i,y_i} - m_i)`; every exponent is <= 0 and the sum is >= 1,
/// and no large `m_i` is added and subtracted back (which would cancel the small loss of a
/// confident correct prediction in Float).
@inlinable
public func softmaxCrossEntropy<T: Real, L: BinaryInteger>(
    logits: UnsafeBufferPointer<T>, labels: UnsafeBufferPointer<L>, classes C: Int,
    dlogits: UnsafeMutableBufferPointer<T>? = nil, gradientDivisor: Int? = nil
) -> LossSummary {
    let N = labels.count
    checkLossShapes(logits.count, N, C, dlogits?.count, gradientDivisor)
    let invN = 1 / T(gradientDivisor ?? N)
    var summary = LossSummary(count: N)
    for i in 0..<N {
        let row = i * C
        let y = Int(labels[i])
        precondition(y >= 0 && y < C, "softmaxCrossEntropy: label \(y) of example \(i) is outside 0..<\(C)")
        var m = logits[row], best = 0
        for c in 1..<C where logits[row + c] > m { m = logits[row + c]; best = c }
        if best == y { summary.correct += 1 }
        var s: T = 0
        if let d = dlogits {
            for c in 0..<C { let e = T.exp(logits[row + c] - m); d[row + c] = e; s += e }
            let invS = 1 / s
            for c in 0..<C { d[row + c] = (d[row + c] * invS - (c == y ? 1 : 0)) * invN }
        } else {
            for c in 0..<C { s += T.exp(logits[row + c] - m) }
        }
        summary.lossSum += Double(T.log(s) - (logits[row + y] - m))
    }
    return summary
}

/// Squared error against one-hot targets, halved and averaged over examples (not over classes):
///
///     loss = (1/N) sum_i (1/2) sum_c (z_ic - [c == y_i])^2
///     dloss/dz_ic = (z_ic - [c == y_i]) / N
///
/// Why this convention: the gradient is the plain residual, so gradient flow on it is exactly the
/// kernel-regression dynamics `df/dt = -(eta/N) K (f - Y)` used by the linearised model and the
/// kernel machine (docs/metrics.md). Note `torch.nn.MSELoss()` (reduction='mean') averages over N*C and
/// has no 1/2: its value is ours times 2/C.
@inlinable
public func oneHotMSE<T: Real, L: BinaryInteger>(
    logits: UnsafeBufferPointer<T>, labels: UnsafeBufferPointer<L>, classes C: Int,
    dlogits: UnsafeMutableBufferPointer<T>? = nil, gradientDivisor: Int? = nil
) -> LossSummary {
    let N = labels.count
    checkLossShapes(logits.count, N, C, dlogits?.count, gradientDivisor)
    let invN = 1 / T(gradientDivisor ?? N)
    var summary = LossSummary(count: N)
    for i in 0..<N {
        let row = i * C
        let y = Int(labels[i])
        precondition(y >= 0 && y < C, "oneHotMSE: label \(y) of example \(i) is outside 0..<\(C)")
        var best = 0
        var sq: T = 0
        for c in 0..<C {
            let z = logits[row + c]
            if z > logits[row + best] { best = c }
            let r = z - (c == y ? 1 : 0)
            sq += r * r
            if let d = dlogits { d[row + c] = r * invN }
        }
        if best == y { summary.correct += 1 }
        summary.lossSum += Double(sq / 2)
    }
    return summary
}

/// Predicted class of each example: `predictions[i] = argmax_c logits[i, c]`, ties to the lowest
/// index. `logits` [N, C], `predictions` [N].
@inlinable
public func argmaxRows<T: Real>(logits: UnsafeBufferPointer<T>, classes C: Int,
                                predictions: UnsafeMutableBufferPointer<Int32>) {
    precondition(C > 0 && logits.count == predictions.count * C,
                 "argmaxRows: \(logits.count) logits do not form [\(predictions.count), \(C)]")
    for i in 0..<predictions.count {
        let row = i * C
        var best = 0
        for c in 1..<C where logits[row + c] > logits[row + best] { best = c }
        predictions[i] = Int32(best)
    }
}

@inlinable
func checkLossShapes(_ logitCount: Int, _ n: Int, _ c: Int, _ gradCount: Int?, _ divisor: Int?) {
    precondition(c > 0, "loss: class count must be positive, got \(c)")
    precondition(logitCount == n * c, "loss: \(logitCount) logits do not form [N = \(n) labels, C = \(c)]")
    precondition(gradCount == nil || gradCount == logitCount, "loss: dlogits has \(gradCount ?? 0) elements, logits \(logitCount)")
    precondition(divisor == nil || divisor! > 0, "loss: gradientDivisor must be positive")
}
