import Foundation

// Top Hessian eigenvalue of the training loss and the escape ratios (docs/metrics.md). Legend: n examples,
// C classes, P parameters; parameter vectors are flat `[P]` in the network's layout.

/// The finite-difference scheme of a Hessian-vector product (see `TrainingLoss.hessianVectorProduct`).
public enum HVPScheme: String, Codable, CaseIterable, Sendable {
    /// `(g(w + εv) - g(w - εv)) / 2ε`: two gradients per product, error O(ε²).
    case central
    /// `(g(w + εv) - g(w)) / ε` reusing `g(w)`: one gradient per product, error O(ε).
    case forward
}

/// How a Hessian-vector product is computed.
public enum HVPMethod: String, Codable, CaseIterable, Sendable {
    /// Forward-over-reverse through every layer (`TrainingLoss.exactHessianVectorProduct`).
    case exact
    /// Differences of gradients (`TrainingLoss.hessianVectorProduct`, `scheme`, `relativeStep`).
    case finiteDifference = "finite_difference"
}

/// How the top eigenvalues are estimated.
public struct HessianSettings: Codable, Equatable, Sendable {
    /// Lanczos steps at most (one Hessian-vector product each).
    public var maxIterations: Int = 20
    /// Stop when each of the top `topK` Ritz values changes by less than this, relative, between two steps.
    public var tolerance: Double = 1e-3
    /// Eigenpairs reported (the largest algebraic eigenvalues).
    public var topK: Int = 1
    public var method: HVPMethod = .exact
    /// Shards of the examples of an exact product (see `exactHessianVectorProduct`); the result
    /// depends on this, never on the rank or thread count.
    public var shards: Int = 8
    public var scheme: HVPScheme = .central
    /// `h` in the step `ε = h max(||w||, 1) / ||v||`; nil = `defaultRelativeStep` (1e-2).
    public var relativeStep: Double? = nil
    /// Examples per forward/backward chunk of a gradient (memory, not results).
    public var batchSize: Int = metricBatchSize
    public var loss: LossFunction = .crossEntropy
    /// L2 coefficient `wd` of a `(wd/2) ||w||²` term (adds `wd` to every eigenvalue); 0 = the data loss alone.
    public var weightDecay: Double = 0

    public init() {}

    /// Range checks; the message names the field and the fix.
    public func validate() throws {
        func fail(_ field: String, _ message: String) throws { throw ConfigurationError(field: field, message: message) }
        if maxIterations < 1 { try fail("hessian.max_iterations", "must be at least 1, got \(maxIterations)") }
        if topK < 1 || topK > maxIterations { try fail("hessian.top_k", "must lie in 1...\(maxIterations) (the Lanczos steps), got \(topK)") }
        if shards < 1 { try fail("hessian.shards", "must be at least 1, got \(shards)") }
        if !(tolerance > 0) { try fail("hessian.tolerance", "must be positive, got \(tolerance)") }
        if let h = relativeStep, !(h > 0 && h < 1) { try fail("hessian.relative_step", "must lie in (0, 1), got \(h)") }
        if batchSize < 1 { try fail("hessian.batch_size", "must be at least 1, got \(batchSize)") }
        if weightDecay < 0 { try fail("hessian.weight_decay", "must be >= 0, got \(weightDecay)") }
    }

    /// `1e-2` for both schemes and scalar types: the step is set by the ReLU/max-pool switching of the
    /// network, not by the precision (see `TrainingLoss.hessianVectorProduct`). Pass a smaller
    /// `relativeStep` only for smooth objectives (e.g. a linear model), where the classical
    /// `u^(1/3)` (central) or `u^(1/2)` (forward) balance of truncation and rounding applies.
    public static let defaultRelativeStep = 1e-2
}

/// The result of a Lanczos run.
public struct HessianEstimate: Codable, Equatable, Sendable {
    /// The largest Ritz value: the estimate of the largest (algebraic) eigenvalue.
    public var lambdaMax: Double
    /// Lanczos steps taken.
    public var iterations: Int
    /// Hessian-vector products computed (= iterations).
    public var hvps: Int
    /// Whether the top Ritz value changed by less than the tolerance, or the Krylov space became invariant.
    public var converged: Bool
    /// Relative change of the top Ritz value in the last step (infinity after one step).
    public var relativeChange: Double
    /// `||H y - λ y||` for the top Ritz pair `(λ, y)`, `= β_k |s_k|` in exact arithmetic.
    public var ritzResidual: Double
    /// All Ritz values of the last step, ascending.
    public var ritzValues: [Double]
    /// The top `topK` Ritz values, descending (`topEigenvalues[0] == lambdaMax`), and their
    /// residuals `||H y - θ y|| = β_m |s_m|`.
    public var topEigenvalues: [Double] = []
    public var topResiduals: [Double] = []

    /// Escape ratios of this `lambdaMax` for a step size and momentum.
    public func escapeRatios(learningRate: Double, momentum: Double) -> EscapeRatios {
        EscapeRatios(lambdaMax: lambdaMax, learningRate: learningRate, momentum: momentum)
    }
}

/// Whether a step of size `eta` leaves the local quadratic basin of curvature `λ` (docs/metrics.md): above 1
/// it does. Gradient descent on `λ x²/2` diverges for `eta λ > 2`; heavy ball with momentum `mu`
/// for `eta λ > 2 (1 + mu)`.
public struct EscapeRatios: Codable, Equatable, Sendable {
    /// `eta λ / 2`.
    public var gradientDescent: Double
    /// `eta λ / (2 (1 + mu))`.
    public var heavyBall: Double

    public init(lambdaMax: Double, learningRate eta: Double, momentum mu: Double) {
        gradientDescent = eta * lambdaMax / 2
        heavyBall = eta * lambdaMax / (2 * (1 + mu))
    }
}

public struct HessianError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "Hessian: \(message)" }
}

/// The training loss on a fixed set of examples as a deterministic function of the weights,
///
///     L(w) = (1/n) sum_i loss(f(x_i; w), y_i) + (wd/2) ||w||²,
///
/// with BatchNorm in inference mode (running statistics), so every example is scored on its own and
/// the loss does not depend on the chunking. Gradients sum consecutive chunks of `batchSize`
/// examples in a fixed order. The network's parameters are used as scratch by the gradient and
/// Hessian-vector calls and are restored to `origin` (bit for bit) after each.
public final class TrainingLoss<T: Real> {
    public let network: Network<T>
    /// `w0`, the point the Hessian is taken at (the network's parameters at construction).
    public let origin: Buffer<T>
    /// `[n, C_in, H, W]` and `[n]`.
    public let images: [T], labels: [Int32]
    public let loss: LossFunction
    public let batchSize: Int
    public let weightDecay: Double
    /// Full gradients computed so far (the cost unit of the benches).
    public private(set) var gradientEvaluations = 0
    /// Exact Hessian-vector products computed so far.
    public internal(set) var hessianProducts = 0
    /// Fixed shards of the examples for exact products (`exactHessianVectorProduct`).
    public let shards: Int
    /// The shards' products `[S, P]`.
    lazy var shardProducts = Buffer<T>(count: shards * parameterCount)
    /// One network per worker for the exact products (the first is `network`).
    private var shardWorkers: [ShardNetwork<T>] = []
    private let dlogits: Buffer<T>, plus: Buffer<T>
    private var gradientAtOrigin: Buffer<T>?
    /// A replica of `network` with its own logit-gradient buffer: the second gradient of a central
    /// product runs on it, concurrently with the first (see `hessianVectorProduct`).
    private var partner: (network: Network<T>, dlogits: Buffer<T>)?

    /// `images [n, C_in, H, W]` (scalar type of the network) and `labels [n]`.
    public init(network: Network<T>, images: [T], labels: [Int32], loss: LossFunction,
                batchSize: Int = metricBatchSize, weightDecay: Double = 0, shards: Int = 8) {
        precondition(!labels.isEmpty && images.count == labels.count * network.inputShape.count,
                     "TrainingLoss: \(images.count) input values for \(labels.count) examples of shape \(network.inputShape)")
        precondition(batchSize > 0, "TrainingLoss: batchSize must be positive")
        self.network = network; self.images = images; self.labels = labels; self.loss = loss
        self.batchSize = min(batchSize, labels.count); self.weightDecay = weightDecay
        self.shards = Swift.max(1, Swift.min(shards, labels.count))
        origin = Buffer(count: network.parameterCount)
        origin.pointer.update(from: network.params.pointer, count: network.parameterCount)
        dlogits = Buffer(count: self.batchSize * network.classes)
        plus = Buffer(count: network.parameterCount)
        network.prepare(maxBatch: self.batchSize)
    }

    /// The examples of `data` (converted to `T`), e.g. a `prefix` or class-balanced subset.
    public convenience init(network: Network<T>, data: Dataset, loss: LossFunction, batchSize: Int = metricBatchSize,
                            weightDecay: Double = 0, shards: Int = 8) {
        precondition(Shape(data.channels, data.height, data.width) == network.inputShape && data.classCount == network.classes,
                     "TrainingLoss: data set \(data.name) (\(data.channels)x\(data.height)x\(data.width), \(data.classCount) classes) "
                         + "does not fit the network (\(network.inputShape), \(network.classes) classes)")
        self.init(network: network, images: data.images.map { T($0) }, labels: data.labels, loss: loss,
                  batchSize: batchSize, weightDecay: weightDecay, shards: shards)
    }

    /// `workers` networks at `origin` with BatchNorm state as `network`'s (replicas made once).
    func shardNetworks(_ workers: Int) -> [ShardNetwork<T>] {
        while shardWorkers.count < workers {
            let net = shardWorkers.isEmpty ? network : network.replica()
            shardWorkers.append(ShardNetwork(net, batchSize: batchSize))
        }
        return shardWorkers
    }

    /// `H v` by `settings.method`.
    public func hessianVectorProduct(_ v: UnsafePointer<T>, into hv: UnsafeMutablePointer<T>, settings: HessianSettings,
                                     communicator: Communicator = SerialCommunicator()) {
        switch settings.method {
        case .exact: exactHessianVectorProduct(v, into: hv, communicator: communicator)
        case .finiteDifference: hessianVectorProduct(v, into: hv, scheme: settings.scheme, relativeStep: settings.relativeStep)
        }
    }

    public var count: Int { labels.count }
    public var parameterCount: Int { network.parameterCount }

    /// `L(w)` and its gradient (into `gradient [P]`) at `w` (`[P]`; nil = `origin`).
    @discardableResult
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func gradient(at w: UnsafePointer<T>? = nil, into gradient: UnsafeMutablePointer<T>) -> LossSummary {
        let p = parameterCount, params = network.params.pointer
        if let w { params.update(from: w, count: p) }
        defer { if w != nil { params.update(from: origin.pointer, count: p) } }
        var total = gradientWithoutDecay(into: gradient)
        if weightDecay != 0 {
            let wd = T(weightDecay)
            var sq = 0.0
            for i in 0..<p { gradient[i] += wd * params[i]; sq += Double(params[i]) * Double(params[i]) }
            total.lossSum += Double(count) * weightDecay / 2 * sq
        }
        return total
    }

    /// `H v` at `origin` into `hv` (`[P]`) by differences of gradients along `v`:
    ///
    ///     central:  Hv ≈ (g(w + εv) - g(w - εv)) / 2ε      forward:  Hv ≈ (g(w + εv) - g(w)) / ε
    ///
    /// (`g(w)` of the forward scheme is computed once and reused) with `ε = h max(||w||, 1) / ||v||`,
    /// so the step moves the weights by a fraction `h` of their norm whatever the scale of `v`.
    ///
    /// Error terms, with `u` the unit roundoff: truncation `ε²/6 |∇³L[v,v]|` (central) or
    /// `ε/2 |∇³L[v]|` (forward); rounding of the two gradients, `~u G / ε` with `G` the size of the
    /// summed per-example gradient terms; rounding of the perturbed weights `fl(w ± εv)`, which moves
    /// each coordinate by up to `u |w_i|`, an error `~u ||H|| ||w|| / ε`. For a smooth loss, with
    /// `ε ∝ ||w||`, balancing these gives `h ~ u^(1/3)` (central) or `u^(1/2)` (forward).
    ///
    /// A ReLU / max-pool network is only piecewise smooth, and that dominates: every pre-activation
    /// the step carries across 0 adds a gradient jump `Δg` (about one example's gradient / n) divided
    /// by `ε`. Their number grows like `ε` (times millions of units), so the mean contribution is
    /// O(1) — the difference quotient measures the curvature of the loss averaged over the step, which
    /// includes the kinks that an autodiff Hessian ignores — and its scatter grows like `1/sqrt(ε)`.
    /// Measured (`ntkscape bench hvp --model simplecnn --examples 200 --scan`, SimpleCNN at
    /// initialisation, synthetic CIFAR-shaped data, cross-entropy): Float against Double at the same
    /// step differs by 3e-4 (h = 1e-2) to 1.4e-3 (h = 1e-3), so precision is not the limit; but the
    /// Double product itself changes by 40% between h = 1e-3 and 1e-2 and by 1.5–3x for h <= 1e-4,
    /// and Lanczos's `λmax` (Float, central) is 233, 235, 306, 472, 527 for h = 2e-2, 1e-2, 5e-3,
    /// 2e-3, 1e-3: the noise of small steps inflates the top Ritz value, while above h = 1e-2 it sits
    /// on a plateau. Hence the default `h = 1e-2` (a step of 1% of `||w||`) for both schemes and
    /// scalar types. Central differences are the recommended scheme: the forward quotient is
    /// one-sided at every kink and was noisier in the same scan (its `v^T H v` changed sign with h).
    /// The L2 term is exact (`wd v` is added analytically).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func hessianVectorProduct(_ v: UnsafePointer<T>, into hv: UnsafeMutablePointer<T>,
                                     scheme: HVPScheme = .central, relativeStep: Double? = nil) {
        let p = parameterCount, w0 = origin.pointer, params = network.params.pointer
        let h = relativeStep ?? HessianSettings.defaultRelativeStep
        var vv = 0.0, ww = 0.0
        for i in 0..<p { vv += Double(v[i]) * Double(v[i]); ww += Double(w0[i]) * Double(w0[i]) }
        guard vv > 0 else { hv.update(repeating: 0, count: p); return }
        let eps = h * Swift.max(ww.squareRoot(), 1) / vv.squareRoot()
        let decay = weightDecay
        let step = T(eps)
        defer { params.update(from: w0, count: p) }
        // The L2 term is added analytically below, so the differenced gradients leave it out.
        func perturb(_ w: UnsafeMutablePointer<T>, _ sign: T) {
            for i in 0..<p { w[i] = w0[i] + sign * step * v[i] }
        }
        let gp = plus.pointer
        switch scheme {
        case .central:
            centralGradients(perturb, plus: gp, minus: hv)
            let s = T(1 / (2 * eps))
            for i in 0..<p { hv[i] = (gp[i] - hv[i]) * s }
        case .forward:
            perturb(params, 1)
            gradientWithoutDecay(into: gp)
            if gradientAtOrigin == nil {
                let g0 = Buffer<T>(count: p)
                params.update(from: w0, count: p)
                gradientWithoutDecay(into: g0.pointer)
                gradientAtOrigin = g0
            }
            let g0 = gradientAtOrigin!.pointer, s = T(1 / eps)
            for i in 0..<p { hv[i] = (gp[i] - g0[i]) * s }
        }
        if decay != 0 { let wd = T(decay); for i in 0..<p { hv[i] += wd * v[i] } }
    }

    /// The data gradients at `w0 + εv` (into `plus`) and `w0 - εv` (into `minus`), `perturb(w, ±1)`
    /// writing those weights. With two or more workers the two run at once, each single-threaded
    /// on its own network (`network` and `partner`): two independent passes keep both cores busier
    /// than one pass whose GEMMs and loops are split in two — measured (`ntkscape bench hvp`,
    /// 2 threads) 1.63-2.08 (mean 1.83) instead of 1.99-2.10 gradient times per product. With one
    /// worker they run one after the other, also single-threaded, so the product has the same bits
    /// for every thread count (tested).
    private func centralGradients(_ perturb: (UnsafeMutablePointer<T>, T) -> Void, plus: UnsafeMutablePointer<T>,
                                  minus: UnsafeMutablePointer<T>) {
        guard Workers.count >= 2 else {
            perturb(network.params.pointer, 1)
            gradientWithoutDecay(into: plus)
            perturb(network.params.pointer, -1)
            gradientWithoutDecay(into: minus)
            return
        }
        if partner == nil {
            let replica = network.replica()
            replica.prepare(maxBatch: batchSize)
            partner = (replica, Buffer(count: batchSize * network.classes))
        }
        let other = partner!
        other.network.state.pointer.update(from: network.state.pointer, count: network.layout.stateCount)
        perturb(network.params.pointer, 1)
        perturb(other.network.params.pointer, -1)
        let sharedPlus = SharedPointer(plus), sharedMinus = SharedPointer(minus)   // one thread writes each
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            Workers.serially {
                if t == 0 {
                    dataGradient(network, dlogits, into: sharedPlus.pointer)
                } else {
                    dataGradient(other.network, other.dlogits, into: sharedMinus.pointer)
                }
            }
        }
        gradientEvaluations += 2
    }

    /// The data loss and its gradient at the network's current parameters (left as they are).
    @discardableResult
    private func gradientWithoutDecay(into g: UnsafeMutablePointer<T>) -> LossSummary {
        gradientEvaluations += 1
        return dataGradient(network, dlogits, into: g)
    }

    /// The data loss and its gradient at `network`'s current parameters, `dlogits` its scratch.
    @discardableResult
    private func dataGradient(_ network: Network<T>, _ dlogits: Buffer<T>, into g: UnsafeMutablePointer<T>) -> LossSummary {
        let n = count, e = network.inputShape.count, classes = network.classes
        var total = LossSummary()
        network.zeroGrads()
        images.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                var start = 0
                while start < n {
                    let m = Swift.min(batchSize, n - start)
                    let f = network.forward(x.baseAddress! + start * e, n: m, mode: .eval)
                    total += loss.evaluate(logits: UnsafeBufferPointer(start: f, count: m * classes),
                                      labels: UnsafeBufferPointer(rebasing: y[start..<(start + m)]), classes: classes,
                                      dlogits: UnsafeMutableBufferPointer(start: dlogits.pointer, count: m * classes),
                                      gradientDivisor: n)
                    network.backward(dlogits.pointer, n: m, mode: .eval)
                    start += m
                }
            }
        }
        g.update(from: network.grads.pointer, count: parameterCount)
        return total
    }
}

/// The largest eigenvalues of the Hessian of `objective` at its origin (`settings.topK` of them, and
/// their Ritz vectors when `vectors`) by Lanczos on `settings.method`'s Hessian-vector products, from
/// a start vector drawn from `start` (role `.hessian`, e.g. keyed by seed, replicate and step). The
/// exact products are sharded over `communicator`'s ranks; every rank returns the same result.
public func topHessianEigenpairs<T: Real>(of objective: TrainingLoss<T>, settings: HessianSettings, start: RandomKey,
                                          vectors: Bool = false, communicator: Communicator = SerialCommunicator()) throws
    -> (estimate: HessianEstimate, vectors: [[T]])
{
    try settings.validate()
    guard objective.weightDecay == settings.weightDecay, objective.loss == settings.loss else {
        throw HessianError(message: "the objective's loss/weight decay (\(objective.loss), \(objective.weightDecay)) differ from the settings' (\(settings.loss), \(settings.weightDecay)); build the TrainingLoss from the same settings")
    }
    var failure: Double? = nil
    let result = lanczosTopEigenpairs(dimension: objective.parameterCount, maxIterations: settings.maxIterations,
                                      tolerance: settings.tolerance, topK: settings.topK, start: start,
                                      vectors: vectors) { (v: UnsafePointer<T>, hv: UnsafeMutablePointer<T>) in
        objective.hessianVectorProduct(v, into: hv, settings: settings, communicator: communicator)
        if failure == nil { for i in 0..<objective.parameterCount where !hv[i].isFinite { failure = Double(hv[i]); break } }
    }
    if let failure {
        throw HessianError(message: "a Hessian-vector product was not finite (\(failure)); the loss overflows near these weights. Fix: check the checkpoint (a diverged run?)")
    }
    return result
}

public func topHessianEigenvalue<T: Real>(of objective: TrainingLoss<T>, settings: HessianSettings,
                                          start: RandomKey) throws -> HessianEstimate {
    try topHessianEigenpairs(of: objective, settings: settings, start: start).estimate
}

/// `topHessianEigenvalue` of the loss of `network` (at its current weights, BatchNorm in inference
/// mode) on all of `data` — pass a fixed subset (`prefix(count:)` or `classBalancedSubset`). The
/// network's parameters are restored afterwards.
public func topHessianEigenvalue<T: Real>(network: Network<T>, data: Dataset, settings: HessianSettings,
                                          start: RandomKey) throws -> HessianEstimate {
    try settings.validate()
    let objective = TrainingLoss(network: network, data: data, loss: settings.loss, batchSize: settings.batchSize,
                                 weightDecay: settings.weightDecay, shards: settings.shards)
    return try topHessianEigenvalue(of: objective, settings: settings, start: start)
}

/// The top `topK` eigenvalues (and Ritz vectors when `vectors`) of the symmetric operator
/// `apply(v, Av)` on `R^dimension` by `lanczos` from a standard normal start vector drawn from the
/// stream `start`. Stops when each of the top `topK` Ritz values changes by less than `tolerance`
/// (relative) between two steps, when the Krylov space becomes invariant (the Ritz values are then
/// exact), or after `maxIterations` steps.
public func lanczosTopEigenpairs<T: Real>(dimension p: Int, maxIterations: Int, tolerance: Double, topK: Int = 1,
                                          start: RandomKey, vectors wantVectors: Bool = false,
                                          apply: (UnsafePointer<T>, UnsafeMutablePointer<T>) throws -> Void) rethrows
    -> (estimate: HessianEstimate, vectors: [[T]])
{
    precondition(p > 0 && maxIterations > 0 && topK > 0, "lanczosTopEigenpairs: dimension, maxIterations and topK must be positive")
    var previous: [Double] = [], change = Double.infinity
    func top(_ values: [Double]) -> [Double] { Array(values.reversed().prefix(topK)) }
    let run = try lanczos(dimension: p, start: randomVector(p, key: start, rademacher: false) as [T], maxSteps: maxIterations,
                          stop: { values in
        let current = top(values)
        change = previous.count == current.count
            ? zip(current, previous).map { abs($0 - $1) / max(abs($0), .leastNormalMagnitude) }.max()! : .infinity
        previous = current
        return values.count >= topK && change < tolerance
    }, apply: apply)
    let (values, ritzVectors) = run.ritz()
    let m = run.steps, k = min(topK, m), beta = run.betas.last!
    let columns = (0..<k).map { m - 1 - $0 }
    var estimate = HessianEstimate(lambdaMax: values.last!, iterations: m, hvps: m,
                                   converged: run.invariant || change < tolerance,
                                   relativeChange: m == 1 ? .infinity : change,
                                   ritzResidual: beta * abs(ritzVectors[(m - 1) + (m - 1) * m]), ritzValues: values)
    estimate.topEigenvalues = columns.map { values[$0] }
    estimate.topResiduals = columns.map { beta * abs(ritzVectors[(m - 1) + $0 * m]) }
    let vectors = wantVectors ? columns.map { run.ritzVector(ritzVectors, column: $0) } : []
    return (estimate, vectors)
}

/// The largest eigenvalue of `apply` (`lanczosTopEigenpairs` with `topK` 1).
public func lanczosTopEigenvalue<T: Real>(dimension p: Int, maxIterations: Int, tolerance: Double, start: RandomKey,
                                          apply: (UnsafePointer<T>, UnsafeMutablePointer<T>) throws -> Void) rethrows
    -> HessianEstimate
{
    try lanczosTopEigenpairs(dimension: p, maxIterations: maxIterations, tolerance: tolerance, start: start, apply: apply).estimate
}
