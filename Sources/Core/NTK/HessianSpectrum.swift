import Dispatch
import Foundation

// Exact Hessian-vector products and the three spectral measurements of PyHessian (Yao et al. 2020):
// top-k eigenpairs (Lanczos), the trace (Hutchinson), and the spectral density (stochastic Lanczos
// quadrature). Legend: n examples, C classes, P parameters, S shards; vectors are flat `[P]`.

extension TrainingLoss {
    /// Exact `H v` at `origin` by forward-over-reverse through every layer (`Network.backwardTangent`):
    ///
    ///     H v = (1/n) sum_i d/dε ∇_w loss(f(x_i; w + εv), y_i) |_{ε=0}  +  wd v.
    ///
    /// The examples are cut into `shards` fixed contiguous shards (independent of the rank and thread
    /// counts); each shard's product is computed single-threaded on one network replica, the shards
    /// are dealt round-robin to the ranks of `communicator` and, within a rank, to its workers; every
    /// rank then receives all shard products and sums them in shard order. The result is therefore
    /// bitwise the same for any rank and thread count (it depends on `shards`). BatchNorm in
    /// inference mode; ReLU gates and max-pool winners are held fixed, as in autodiff frameworks.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func exactHessianVectorProduct(_ v: UnsafePointer<T>, into hv: UnsafeMutablePointer<T>,
                                          communicator: Communicator = SerialCommunicator()) {
        let p = parameterCount, s = shards
        let mine = Array(stride(from: communicator.rank, to: s, by: communicator.size))
        let partials = shardProducts.pointer
        let workers = Swift.max(1, Swift.min(Workers.count, mine.count))
        let replicas = shardNetworks(workers)
        // `v` is read only; each shard's product goes to its own slot of `partials`.
        let sharedV = SharedPointer(v), sharedPartials = SharedPointer(partials)
        DispatchQueue.concurrentPerform(iterations: workers) { t in
            Workers.serially {
                let v = sharedV.pointer, partials = sharedPartials.pointer
                for (j, shard) in mine.enumerated() where j % workers == t {
                    shardProduct(replicas[t], shard: shard, v, into: partials + shard * p)
                }
            }
        }
        if communicator.size > 1 {
            let bytes = mine.flatMap { shard in
                Array(UnsafeRawBufferPointer(start: partials + shard * p, count: p * MemoryLayout<T>.stride))
            }
            for (rank, received) in communicator.allgather(bytes).enumerated() {
                received.withUnsafeBytes { raw in
                    for (j, shard) in stride(from: rank, to: s, by: communicator.size).enumerated() {
                        (partials + shard * p).update(from: raw.baseAddress!.assumingMemoryBound(to: T.self) + j * p, count: p)
                    }
                }
            }
        }
        hv.update(from: partials, count: p)
        for shard in 1..<s {
            let q = partials + shard * p
            for i in 0..<p { hv[i] += q[i] }
        }
        if weightDecay != 0 { let wd = T(weightDecay); for i in 0..<p { hv[i] += wd * v[i] } }
        hessianProducts += 1
    }

    /// Examples `[start, end)` of `shard`.
    func shardRange(_ shard: Int) -> Range<Int> { (shard * count / shards)..<((shard + 1) * count / shards) }

    /// The shard's share of `H v` (data loss only) into `out`, on `net` (single-threaded by the caller).
    private func shardProduct(_ net: ShardNetwork<T>, shard: Int, _ v: UnsafePointer<T>, into out: UnsafeMutablePointer<T>) {
        let e = net.network.inputShape.count, classes = net.network.classes, range = shardRange(shard)
        out.update(repeating: 0, count: parameterCount)
        images.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                var start = range.lowerBound
                while start < range.upperBound {
                    let m = Swift.min(batchSize, range.upperBound - start)
                    let f = net.network.forward(x.baseAddress! + start * e, n: m, mode: .eval)
                    _ = loss.evaluate(logits: UnsafeBufferPointer(start: f, count: m * classes),
                                  labels: UnsafeBufferPointer(rebasing: y[start..<(start + m)]), classes: classes,
                                  dlogits: UnsafeMutableBufferPointer(start: net.dlogits.pointer, count: m * classes),
                                  gradientDivisor: count)
                    let t = net.network.jvp(inputTangent: nil, parameterTangent: v, n: m, mode: .eval)
                    loss.hessianProduct(logits: f, tangent: t, n: m, classes: classes, divisor: count, into: net.tangentDlogits.pointer)
                    net.network.backwardTangent(net.dlogits.pointer, net.tangentDlogits.pointer, parameterTangent: v, n: m,
                                                mode: .eval, into: out)
                    start += m
                }
            }
        }
    }
}

/// A network and its logit-gradient scratch for one worker of `exactHessianVectorProduct`.
final class ShardNetwork<T: Real> {
    let network: Network<T>
    let dlogits: Buffer<T>, tangentDlogits: Buffer<T>
    init(_ network: Network<T>, batchSize: Int) {
        self.network = network
        network.prepare(maxBatch: batchSize)
        dlogits = Buffer(count: batchSize * network.classes)
        tangentDlogits = Buffer(count: batchSize * network.classes)
    }
}

// MARK: Lanczos

/// A Lanczos tridiagonalisation `A Q = Q T + β_m q_{m+1} e_mᵀ` of a symmetric operator, with full
/// reorthogonalisation: step `j` forms `z = A q_j - α_j q_j - β_{j-1} q_{j-1}`, orthogonalises `z`
/// twice against every previous `q` ("twice is enough", Giraud et al. 2005), `β_j = ||z||`,
/// `q_{j+1} = z / β_j`. Inner products accumulate in Double; vectors are stored in `T`.
public struct LanczosDecomposition<T: Real> {
    /// `α_1..α_m` (the diagonal of `T`).
    public internal(set) var alphas: [Double] = []
    /// `β_1..β_m`: `β_j` couples `q_j` and `q_{j+1}`; the last is the residual norm of the run.
    public internal(set) var betas: [Double] = []
    /// `q_1..q_m`.
    public internal(set) var basis: [Buffer<T>] = []
    /// Whether the Krylov space became invariant (`β_m` vanished): the Ritz values are then exact.
    public internal(set) var invariant = false
    public var steps: Int { alphas.count }

    /// Eigen-decomposition of `T_m`: values ascending, vectors column-major `m x m`.
    public func ritz() -> (values: [Double], vectors: [Double]) {
        let m = steps
        guard m > 1 else { return (alphas, [1]) }
        var t = [Double](repeating: 0, count: m * m)
        for i in 0..<m { t[i + i * m] = alphas[i] }
        for i in 0..<(m - 1) { t[(i + 1) + i * m] = betas[i]; t[i + (i + 1) * m] = betas[i] }
        return (try? LAPACK.symmetricEigen(t, n: m)) ?? (alphas.sorted(), [Double](repeating: 0, count: m * m))
    }

    /// The Ritz vector `Q s` of column `column` of `ritz().vectors`, in `T`.
    public func ritzVector(_ vectors: [Double], column: Int) -> [T] {
        let m = steps, p = basis.first?.count ?? 0
        var y = [Double](repeating: 0, count: p)
        for j in 0..<m {
            let c = vectors[j + column * m], q = basis[j].pointer
            for i in 0..<p { y[i] += c * Double(q[i]) }
        }
        return y.map { T($0) }
    }
}

/// Runs Lanczos on `apply(v, Av)` (dimension `p`) from `start` (normalised here) for at most
/// `maxSteps` steps; after each step `stop(ritzValues)` (ascending) may end the run.
public func lanczos<T: Real>(dimension p: Int, start: [T], maxSteps: Int,
                             stop: ([Double]) -> Bool = { _ in false },
                             apply: (UnsafePointer<T>, UnsafeMutablePointer<T>) throws -> Void) rethrows -> LanczosDecomposition<T> {
    precondition(p > 0 && maxSteps > 0 && start.count == p, "lanczos: dimension, steps and start vector must agree")
    func dot(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>) -> Double {
        var s = 0.0
        for i in 0..<p { s += Double(a[i]) * Double(b[i]) }
        return s
    }
    func subtract(_ alpha: Double, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        let a = T(alpha)
        for i in 0..<p { y[i] -= a * x[i] }
    }
    var run = LanczosDecomposition<T>()
    var q = Buffer<T>(count: p)
    let s0 = 1 / start.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    for i in 0..<p { q[i] = T(Double(start[i]) * s0) }
    let z = Buffer<T>(count: p)
    for j in 0..<min(maxSteps, p) {
        run.basis.append(q)
        try apply(q.pointer, z.pointer)
        let alpha = dot(q.pointer, z.pointer)
        subtract(alpha, q.pointer, z.pointer)
        if j > 0 { subtract(run.betas[j - 1], run.basis[j - 1].pointer, z.pointer) }
        for _ in 0..<2 { for b in run.basis { subtract(dot(b.pointer, z.pointer), b.pointer, z.pointer) } }
        let beta = dot(z.pointer, z.pointer).squareRoot()
        run.alphas.append(alpha)
        run.betas.append(beta)
        let values = run.ritz().values
        let scale = values.map(abs).max()!
        if beta <= 100 * Double(T.ulpOfOne) * max(scale, .leastNormalMagnitude) {
            run.invariant = true
            break
        }
        if stop(values) { break }
        q = Buffer<T>(count: p)
        let inv = 1 / beta
        for i in 0..<p { q[i] = T(Double(z[i]) * inv) }
    }
    return run
}

/// `k` standard normal (`rademacher` false) or ±1 values from `key`'s stream.
func randomVector<T: Real>(_ p: Int, key: RandomKey, rademacher: Bool) -> [T] {
    var stream = RandomStream(key)
    return (0..<p).map { _ in rademacher ? (stream.nextUInt32() & 1 == 0 ? 1 : -1) : T(stream.normal()) }
}

// MARK: Trace and spectral density

/// Hutchinson's estimate `tr(H) ≈ (1/m) Σ_j z_jᵀ H z_j` over `m` Rademacher vectors `z_j`.
public struct TraceEstimate: Codable, Equatable, Sendable {
    public var mean: Double
    /// Standard error of the mean over the samples (`nan` for one sample).
    public var standardError: Double
    public var samples: Int

    public init(samples values: [Double]) {
        let m = Double(values.count), mu = values.reduce(0, +) / m
        mean = mu
        let variance = values.count > 1 ? values.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / (m - 1) : .nan
        standardError = (variance / m).squareRoot()
        samples = values.count
    }
}

/// `samples` Rademacher probes `z_j`, probe `j` from the stream of `key` with `epoch + j`.
public func hutchinsonTrace<T: Real>(dimension p: Int, samples: Int, key: RandomKey,
                                     apply: (UnsafePointer<T>, UnsafeMutablePointer<T>) throws -> Void) rethrows -> TraceEstimate {
    let hz = Buffer<T>(count: p)
    var values: [Double] = []
    for j in 0..<samples {
        let z: [T] = randomVector(p, key: key.at(epoch: key.epoch + j, step: key.step), rademacher: true)
        try z.withUnsafeBufferPointer { try apply($0.baseAddress!, hz.pointer) }
        var s = 0.0
        for i in 0..<p { s += Double(z[i]) * Double(hz[i]) }
        values.append(s)
    }
    return TraceEstimate(samples: values)
}

/// Stochastic Lanczos quadrature (Golub & Meurant; Ghorbani et al. 2019; PyHessian): for each of
/// `runs` Rademacher start vectors, `steps` Lanczos steps; the eigenvalues `θ_i` of `T` are the
/// quadrature nodes and the squared first components `τ_i = s_{1i}²` (summing to 1) their weights,
/// so `(1/runs) Σ τ_i δ(λ - θ_i)` estimates the spectral density `(1/P) Σ_k δ(λ - λ_k)`.
public struct SpectralDensity: Codable, Equatable, Sendable {
    /// Per run: nodes ascending and their weights.
    public var nodes: [[Double]], weights: [[Double]]

    /// The density smoothed by a Gaussian of standard deviation `sigma` at `points` evenly spaced
    /// values from `min node - 3 sigma` to `max node + 3 sigma`: `(λ, ρ(λ))` with `∫ρ = 1`.
    public func smoothed(points: Int, sigma: Double) -> [(lambda: Double, density: Double)] {
        let all = nodes.flatMap { $0 }
        guard let lo = all.min(), let hi = all.max(), points > 1, sigma > 0 else { return [] }
        let a = lo - 3 * sigma, b = hi + 3 * sigma, runs = Double(nodes.count)
        let norm = 1 / (sigma * (2 * Double.pi).squareRoot())
        return (0..<points).map { k in
            let x = a + (b - a) * Double(k) / Double(points - 1)
            var rho = 0.0
            for (ns, ws) in zip(nodes, weights) {
                for (t, w) in zip(ns, ws) { rho += w * norm * exp(-0.5 * (x - t) * (x - t) / (sigma * sigma)) }
            }
            return (x, rho / runs)
        }
    }
}

/// Runs `runs` Lanczos quadratures of `steps` steps, run `k` from a Rademacher start drawn from the
/// stream of `key` with `epoch + k`.
public func stochasticLanczosQuadrature<T: Real>(dimension p: Int, runs: Int, steps: Int, key: RandomKey, as: T.Type = T.self,
                                                 apply: (UnsafePointer<T>, UnsafeMutablePointer<T>) throws -> Void) rethrows
    -> SpectralDensity
{
    var density = SpectralDensity(nodes: [], weights: [])
    for run in 0..<runs {
        let start: [T] = randomVector(p, key: key.at(epoch: key.epoch + run, step: key.step), rademacher: true)
        let decomposition = try lanczos(dimension: p, start: start, maxSteps: steps, apply: apply)
        let (values, vectors) = decomposition.ritz()
        let m = decomposition.steps
        density.nodes.append(values)
        density.weights.append((0..<values.count).map { vectors[$0 * m] * vectors[$0 * m] })
    }
    return density
}

// MARK: Eigenvectors and the logit-gradient span

/// For each vector `y` of `vectors`, `||P y||² / ||y||²` with `P` the orthogonal projector onto the
/// span of `basis` (e.g. the `C` logit-gradient centroids; Fort et al. 2020 appendix B, Gur-Ari et al.
/// 2018: the top Hessian eigenvectors lie nearly in that span). The basis is orthonormalised by
/// Gram–Schmidt twice in Double; (numerically) dependent members are dropped.
public func spanFractions(of vectors: [[Double]], in basis: [[Double]]) -> [Double] {
    var q: [[Double]] = []
    for b in basis {
        var u = b
        let norm0 = (u.reduce(0) { $0 + $1 * $1 }).squareRoot()
        for _ in 0..<2 {
            for e in q {
                let c = zip(e, u).reduce(0) { $0 + $1.0 * $1.1 }
                for i in u.indices { u[i] -= c * e[i] }
            }
        }
        let norm = (u.reduce(0) { $0 + $1 * $1 }).squareRoot()
        guard norm > 1e-10 * norm0, norm > 0 else { continue }
        q.append(u.map { $0 / norm })
    }
    return vectors.map { y in
        let yy = y.reduce(0) { $0 + $1 * $1 }
        guard yy > 0 else { return .nan }
        return q.reduce(0) { acc, e in let c = zip(e, y).reduce(0) { $0 + $1.0 * $1.1 }; return acc + c * c } / yy
    }
}
