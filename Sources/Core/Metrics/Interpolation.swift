/// What BatchNorm uses for its running statistics at a point `w(alpha)` between two networks
/// (docs/metrics.md, "Error barrier"). Recorded with every curve.
public enum BarrierBatchNorm: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Running statistics interpolated like the parameters: `s(alpha) = (1-alpha) s_a + alpha s_b`.
    case interpolate
    /// Running statistics reset and re-estimated at `w(alpha)` as the cumulative average (PyTorch
    /// `momentum=None`) over `batches` training batches of `batchSize` run in train mode: batch `k`
    /// holds examples `perm[k*batchSize ..< (k+1)*batchSize]` of
    /// `RandomStream(seed: seed, role: .batchNormRecompute).permutation(N)`, the same for every alpha.
    /// Also at the ends, so `e(0)` is the error of `w_a` with re-estimated statistics.
    case recompute(batches: Int, batchSize: Int = 128, seed: UInt64 = 0)

    public var description: String {
        switch self {
        case .interpolate: return "interpolate"
        case let .recompute(k, b, seed): return "recompute(batches=\(k),batchSize=\(b),seed=\(seed))"
        }
    }
}

/// A scratch network that can be placed anywhere on the straight line between two networks `a`, `b`
/// of one architecture; `a` and `b` are never modified.
///
///     w(alpha) = w_a + alpha (w_b - w_a)      (= (1-alpha) w_a + alpha w_b; exactly w_b at alpha = 1)
///
/// This form is exact at both ends and leaves `w` bit-identical along the line when `w_a == w_b`.
/// BatchNorm running statistics follow `batchNorm` (networks without BatchNorm ignore it).
public final class WeightInterpolation {
    public let a: Network<Float>, b: Network<Float>
    /// The network at the current alpha.
    public let network: Network<Float>
    public let batchNorm: BarrierBatchNorm
    /// The current alpha; nil until the first `move(to:)`.
    public private(set) var alpha: Double?
    /// The fixed batches of `.recompute` (nil for `.interpolate` or a network without BatchNorm).
    private let recomputer: BatchNormRecomputer?

    /// `recomputeFrom`: the training examples `.recompute` draws its batches from (needed only when
    /// the network has BatchNorm). `scratch`: a network of the same architecture to reuse, else one
    /// is built. Call `move(to:)` before using `network`.
    public init(from a: Network<Float>, to b: Network<Float>, batchNorm: BarrierBatchNorm,
                recomputeFrom data: Dataset? = nil, scratch: Network<Float>? = nil) {
        precondition(a.sameArchitecture(b), "WeightInterpolation: \(a.kind) and \(b.kind) networks differ in architecture")
        let net = scratch ?? a.rebuilt(as: Float.self)
        precondition(net.sameArchitecture(a), "WeightInterpolation: the scratch network differs in architecture")
        precondition(net !== a && net !== b, "WeightInterpolation: the scratch network must not be an endpoint")
        self.a = a; self.b = b; network = net; self.batchNorm = batchNorm
        if case let .recompute(k, size, seed) = batchNorm, !net.batchNorms.isEmpty {
            guard let data else {
                preconditionFailure("WeightInterpolation: BatchNorm recompute needs training data (recomputeFrom:)")
            }
            net.checkCompatible(data, "WeightInterpolation")
            do {
                recomputer = try BatchNormRecomputer(data: data, batches: k, batchSize: size, seed: seed)
            } catch {
                preconditionFailure("WeightInterpolation: \(error)")
            }
        } else {
            recomputer = nil
        }
    }

    /// Places `network` at `w(alpha)` and sets its BatchNorm statistics by the policy.
    public func move(to alpha: Double) {
        self.alpha = alpha
        Self.line(a.params, b.params, Float(alpha), into: network.params)
        guard !network.batchNorms.isEmpty else { return }
        switch batchNorm {
        case .interpolate:
            Self.line(a.state, b.state, Float(alpha), into: network.state)
        case .recompute:
            recompute()
        }
    }

    private static func line(_ x: Buffer<Float>, _ y: Buffer<Float>, _ alpha: Float, into out: Buffer<Float>) {
        Vec.interpolate(x.pointer, y.pointer, alpha: alpha, into: out.pointer, count: out.count)
    }

    /// Reset, then the cumulative average of batch statistics over the fixed batches (train mode).
    private func recompute() { recomputer?.recompute(network) }
}

/// Error and loss at one point of the line between two networks.
public struct InterpolationPoint: Codable, Equatable, Sendable {
    public var alpha: Double
    public var testError: Double
    public var testLoss: Double
    public var trainError: Double
    public var trainLoss: Double

    public init(alpha: Double, testError: Double, testLoss: Double, trainError: Double, trainLoss: Double) {
        self.alpha = alpha; self.testError = testError; self.testLoss = testLoss
        self.trainError = trainError; self.trainLoss = trainLoss
    }
}

/// The barrier of a curve `e(alpha_k)`, `k = 0..<K`, `alpha_0 = 0`, `alpha_{K-1} = 1`:
///
///     maxMinusMean = max_k e(alpha_k) - (e(0) + e(1)) / 2                       (Frankle et al. 2020)
///     maxMinusLine = max_k [ e(alpha_k) - ((1 - alpha_k) e(0) + alpha_k e(1)) ]
///
/// Both are >= 0 (the ends are on the grid). NaN if any value is NaN.
public struct Barrier: Codable, Equatable, Sendable {
    public var maxMinusMean: Double
    public var maxMinusLine: Double

    public init(maxMinusMean: Double, maxMinusLine: Double) {
        self.maxMinusMean = maxMinusMean; self.maxMinusLine = maxMinusLine
    }

    /// From the curve `values[k] = e(alphas[k])`.
    public init(alphas: [Double], values: [Double]) {
        precondition(alphas.count == values.count && alphas.count >= 2,
                     "Barrier: \(values.count) values on \(alphas.count) alphas (need >= 2)")
        let e0 = values[0], e1 = values[values.count - 1]
        var top = -Double.infinity, aboveLine = -Double.infinity
        for (alpha, e) in zip(alphas, values) {
            guard !e.isNaN else { top = .nan; aboveLine = .nan; break }
            top = max(top, e)
            aboveLine = max(aboveLine, e - ((1 - alpha) * e0 + alpha * e1))
        }
        self.init(maxMinusMean: top - (e0 + e1) / 2, maxMinusLine: aboveLine)
    }
}

/// Test and train error and loss along `w(alpha)` between two networks (docs/metrics.md, "Error barrier"),
/// with the barriers of each of the four curves. Evaluation in inference mode after the BatchNorm
/// policy has set the statistics; `train` is the fixed training subset to evaluate on.
public struct InterpolationCurve: Codable, Equatable, Sendable {
    public var batchNorm: BarrierBatchNorm
    /// BatchNorm layers of the architecture; 0 means the policy had nothing to act on.
    public var batchNormLayers: Int
    public var loss: LossFunction
    public var points: [InterpolationPoint]
    public var testError: Barrier
    public var testLoss: Barrier
    public var trainError: Barrier
    public var trainLoss: Barrier

    /// A curve from its points; computes the barriers.
    public init(points: [InterpolationPoint], batchNorm: BarrierBatchNorm, batchNormLayers: Int, loss: LossFunction) {
        let alphas = points.map(\.alpha)
        self.points = points; self.batchNorm = batchNorm; self.batchNormLayers = batchNormLayers; self.loss = loss
        testError = Barrier(alphas: alphas, values: points.map(\.testError))
        testLoss = Barrier(alphas: alphas, values: points.map(\.testLoss))
        trainError = Barrier(alphas: alphas, values: points.map(\.trainError))
        trainLoss = Barrier(alphas: alphas, values: points.map(\.trainLoss))
    }

    /// Evaluates `a`, `b` and the `gridPoints - 2` evenly spaced points between them
    /// (`alpha_k = k / (gridPoints - 1)`). `recomputeFrom` defaults to `train`.
    public init(_ a: Network<Float>, _ b: Network<Float>, gridPoints: Int = 31, test: Dataset, train: Dataset,
                batchNorm: BarrierBatchNorm, recomputeFrom: Dataset? = nil, loss: LossFunction = .crossEntropy,
                batchSize: Int = metricBatchSize, scratch: Network<Float>? = nil) {
        precondition(gridPoints >= 2, "InterpolationCurve: needs at least the two ends, got \(gridPoints) points")
        let path = WeightInterpolation(from: a, to: b, batchNorm: batchNorm, recomputeFrom: recomputeFrom ?? train,
                                       scratch: scratch)
        a.checkCompatible(test, "InterpolationCurve"); a.checkCompatible(train, "InterpolationCurve")
        var points: [InterpolationPoint] = []
        for alpha in Self.grid(gridPoints) {
            path.move(to: alpha)
            let t = evaluate(path.network, on: test, batchSize: batchSize, loss: loss)
            let r = evaluate(path.network, on: train, batchSize: batchSize, loss: loss)
            points.append(InterpolationPoint(alpha: alpha, testError: t.errorRate, testLoss: t.meanLoss,
                                             trainError: r.errorRate, trainLoss: r.meanLoss))
        }
        self.init(points: points, batchNorm: batchNorm, batchNormLayers: a.batchNorms.count, loss: loss)
    }

    /// `k / (n - 1)` for `k = 0..<n`; exactly 0 and 1 at the ends.
    public static func grid(_ n: Int) -> [Double] {
        precondition(n >= 2, "grid: needs at least 2 points")
        return (0..<n).map { Double($0) / Double(n - 1) }
    }
}
