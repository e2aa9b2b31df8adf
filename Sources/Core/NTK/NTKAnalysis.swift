import Dispatch
import Foundation

/// Spectrum summary of a Gram (docs/metrics.md), identical on every rank and for any rank count.
///
/// Eigen-solvers are accurate to about `n eps ||K||` in absolute terms, and `pdsyevd`'s last bits
/// depend on the process grid (its reductions and Householder blocking change with `p`), while the
/// tables written from the spectrum must be byte-identical for any rank count. So eigenvalues are
/// reported on one absolute grid, `10^(e-8)` for `lambda_max = d.ddd... x 10^e` (9 significant
/// digits of `lambda_max`): far coarser than the solver's noise (~1e-14 `lambda_max`), far finer than
/// the Gram's own accuracy (entries from `Float` Jacobians, ~1e-7 relative); eigenvalues below it
/// read 0. Eigenvectors get a sign convention (largest-magnitude component positive) and components
/// on a 1e-7 grid. Eigenvectors of (nearly) repeated eigenvalues are not unique, so only isolated
/// ones are comparable across runs. Derived figures are computed from the reported values.
public struct NTKSpectrum: Sendable, Codable, Equatable {
    /// `"full"` (`mC x mC`) or `"traced"` (`m x m`).
    public var form: String
    public var order: Int
    /// All eigenvalues, largest first (on the reporting grid).
    public var eigenvalues: [Double]
    /// `tr K` from the diagonal (deterministic reduction, not the eigenvalue sum).
    public var trace: Double
    /// `lambda_max / lambda_min`; `+inf` when `lambda_min <= 0` (singular to working precision).
    public var conditionNumber: Double
    /// Participation ratio `(sum lambda)^2 / sum lambda^2` over the eigenvalues clipped at 0: the
    /// number of equally large eigenvalues with the same first and second moments (1 for rank one,
    /// `n` for a multiple of the identity).
    public var effectiveRank: Double
    /// Unit eigenvectors of the largest eigenvalues (only when asked for), rows of the Gram's order.
    public var topVectors: [[Double]]

    public var largest: Double { eigenvalues.first ?? 0 }
    public var smallest: Double { eigenvalues.last ?? 0 }

    /// `values` on the grid `10^(floor(log10 max|v|) - digits + 1)`.
    public static func quantized(_ values: [Double], digits: Int = 9) -> [Double] {
        guard let top = values.lazy.map({ abs($0) }).max(), top > 0, top.isFinite else { return values }
        let quantum = pow(10, (log10(top)).rounded(.down) - Double(digits - 1))
        return values.map { ($0 / quantum).rounded() * quantum + 0 }   // + 0: no negative zero
    }

    public init(form: String, eigenvalues raw: [Double], trace: Double, topVectors: [[Double]]) {
        self.form = form
        order = raw.count
        eigenvalues = Self.quantized(raw)
        self.trace = trace
        let lmax = eigenvalues.first ?? 0, lmin = eigenvalues.last ?? 0
        conditionNumber = lmin > 0 ? lmax / lmin : .infinity
        let clipped = eigenvalues.map { max(0, $0) }
        let s1 = clipped.reduce(0, +), s2 = clipped.reduce(0) { $0 + $1 * $1 }
        effectiveRank = s2 > 0 ? s1 * s1 / s2 : 0
        self.topVectors = topVectors.map { v in
            let pivot = v.indices.max { abs(v[$0]) < abs(v[$1]) }
            let sign: Double = pivot.map { v[$0] < 0 ? -1 : 1 } ?? 1
            return v.map { ($0 * sign * 1e7).rounded() / 1e7 + 0 }
        }
    }
}

/// Result of an NTK kernel machine (docs/metrics.md).
public struct NTKMachineResult: Sendable {
    public var trainCount: Int
    public var testCount: Int
    public var ridge: Double
    /// Fraction of misclassified test examples.
    public var testError: Double
    /// Predicted logits `[testCount, C]`.
    public var testPredictions: [Double]
    public var gramStats: GramBuildStats
    public var seconds: Double
}

/// The empirical-NTK measurements on a communicator of ranks (docs/metrics.md): build Grams, then
/// spectrum, alignment, kernel distance and the NTK machine on the distributed matrices. Every call
/// is collective over `communicator` (all ranks, same arguments) and returns the same value on every
/// rank, bitwise independent of the rank count (eigenvalues: after the documented rounding).
public struct NTKAnalysis {
    public let communicator: Communicator
    public let algebra: GramLinearAlgebra
    public var options: NTKGramOptions

    /// `algebra` must fit the communicator: `LAPACKGramAlgebra` for one rank, ScaLAPACK for more.
    public init(communicator: Communicator = SerialCommunicator(), algebra: GramLinearAlgebra = LAPACKGramAlgebra(),
                options: NTKGramOptions = NTKGramOptions()) {
        self.communicator = communicator
        self.algebra = algebra
        self.options = options
    }

    /// The Gram of `network` on the examples of `probe` (all of them, in order).
    public func gram(_ network: Network<Float>, probe: Dataset) throws -> (gram: DistributedGram, stats: GramBuildStats) {
        guard probe.exampleSize == network.inputShape.count else {
            throw NTKError("NTK probe set \(probe.name) has \(probe.channels)x\(probe.height)x\(probe.width) images, "
                           + "the network expects \(network.inputShape). Fix: use the network's data set")
        }
        return try GramBuilder.build(network: network, inputs: probe.images, communicator: communicator, options: options)
    }

    /// Eigenvalues, trace, condition number, effective rank, and `topVectors` leading eigenvectors.
    public func spectrum(_ gram: DistributedGram, topVectors k: Int = 0) throws -> NTKSpectrum {
        let trace = gram.trace(communicator)
        let e = try algebra.eigen(gram, vectors: k)
        return NTKSpectrum(form: gram.form, eigenvalues: e.values, trace: trace, topVectors: e.vectors)
    }

    /// NTK kernel machine at the network's current weights `w_t`:
    /// `f(X*) = f_t(X*) + K(X*, X) (K(X, X) + ridge I)^-1 (Y - f_t(X))` with one-hot `Y` on the
    /// examples of `train`, evaluated on `test` without forming `K(X*, X)`:
    /// `alpha = (K + ridge I)^-1 (Y - f_t(X))` (`mC` vector), `v = J(X)^T alpha` (one backward pass
    /// with `dlogits = alpha`), predictions `f_t(X*) + J(X*) v` (forward + JVP with parameter
    /// tangent `v`). `gram`: the Gram of `network` on `train` if already built (else built here).
    public func machine(_ network: Network<Float>, train: Dataset, test: Dataset, ridge: Double,
                        gram prebuilt: DistributedGram? = nil) throws -> NTKMachineResult {
        let t0 = Benchmark.now()
        let c = network.classes, n = train.count
        let (gram, stats) = try prebuilt.map { ($0, GramBuildStats()) } ?? self.gram(network, probe: train)
        guard gram.layout.examples == n, gram.layout.classes == c else {
            throw NTKError("NTK machine: the Gram is for \(gram.layout.examples) examples x \(gram.layout.classes) classes, "
                           + "the training set has \(n) x \(c). Fix: pass the Gram of the same examples")
        }
        let runner = BatchRunner(network: network)
        // rhs = Y - f_t(X), example-major.
        let f = runner.outputs(train, tangent: nil)
        var rhs = [Double](repeating: 0, count: n * c)
        for i in 0..<n { for k in 0..<c { rhs[i * c + k] = (train.label(i) == k ? 1 : 0) - f[i * c + k] } }
        let alpha = try algebra.solve(gram, ridge: ridge, rhs: rhs, columns: 1)
        let v = runner.vjp(train, cotangent: alpha)
        let predictions = runner.outputs(test, tangent: v)
        var wrong = 0
        for i in 0..<test.count {
            var best = 0
            for k in 1..<c where predictions[i * c + k] > predictions[i * c + best] { best = k }
            if best != test.label(i) { wrong += 1 }
        }
        return NTKMachineResult(trainCount: n, testCount: test.count, ridge: ridge,
                                testError: Double(wrong) / Double(max(1, test.count)), testPredictions: predictions,
                                gramStats: stats, seconds: Benchmark.now() - t0)
    }
}

/// Forward/JVP/VJP over a data set in fixed batches of `batch` examples, batches spread over the
/// threads (one network replica each, single-threaded code): the same bits for any thread count.
/// Every rank computes everything (these passes are cheap next to the Gram).
final class BatchRunner {
    let network: Network<Float>
    let replicas: [Network<Float>]
    static let batch = 50

    init(network: Network<Float>) {
        self.network = network
        replicas = (0..<max(1, Workers.count)).map { _ in network.replica() }
    }

    /// Runs `body(replica, inputs, first example, count)` for every batch of `data`, batches dealt
    /// round-robin over the replicas, each thread running single-threaded code.
    private func eachBatch(_ data: Dataset, _ body: (Network<Float>, UnsafePointer<Float>, Int, Int) -> Void) {
        let n = data.count, size = data.exampleSize, b = Self.batch
        let batches = (n + b - 1) / b, threads = min(replicas.count, max(1, batches))
        data.images.withUnsafeBufferPointer { x in
            let sharedX = SharedPointer(x.baseAddress!)   // read only
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                Workers.serially {
                    let x = sharedX.pointer
                    for q in stride(from: t, to: batches, by: threads) {
                        let i0 = q * b
                        body(replicas[t], x + i0 * size, i0, min(b, n - i0))
                    }
                }
            }
        }
    }

    /// Logits (`tangent == nil`) or `f + J v` (linearised logits) for every example, `[n, C]`.
    /// `includeOutputs: false` with a tangent gives `J v` alone.
    func outputs(_ data: Dataset, tangent: [Float]?, includeOutputs: Bool = true) -> [Double] {
        let c = network.classes
        var out = [Double](repeating: 0, count: data.count * c)
        out.withUnsafeMutableBufferPointer { o in
            let sharedO = SharedPointer(o.baseAddress!)   // each batch writes its own rows
            eachBatch(data) { net, x, i0, nb in
                let o = sharedO.pointer + i0 * c
                let y = net.forward(x, n: nb, mode: .eval)
                for e in 0..<(nb * c) { o[e] = includeOutputs ? Double(y[e]) : 0 }
                if let tangent {
                    let ty = tangent.withUnsafeBufferPointer {
                        net.jvp(inputTangent: nil, parameterTangent: $0.baseAddress!, n: nb, mode: .eval)
                    }
                    for e in 0..<(nb * c) { o[e] += Double(ty[e]) }
                }
            }
        }
        return out
    }

    /// `J(X)^T u` for a cotangent `u [n, C]`: per-batch gradients added in batch order (in `Double`).
    func vjp(_ data: Dataset, cotangent u: [Double]) -> [Float] {
        let c = network.classes, b = Self.batch, p = network.parameterCount
        var perBatch = [[Float]](repeating: [], count: (data.count + b - 1) / b)
        let lock = NSLock()
        eachBatch(data) { net, x, i0, nb in
            net.forward(x, n: nb, mode: .eval)
            let dl = (0..<(nb * c)).map { Float(u[i0 * c + $0]) }
            net.zeroGrads()
            dl.withUnsafeBufferPointer { net.backward($0.baseAddress!, n: nb, mode: .eval) }
            let g = net.grads.array
            lock.lock(); perBatch[i0 / b] = g; lock.unlock()
        }
        var sum = [Double](repeating: 0, count: p)
        for g in perBatch { for k in 0..<p { sum[k] += Double(g[k]) } }
        return sum.map { Float($0) }
    }
}
