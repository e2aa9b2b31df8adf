// t-distributed Stochastic Neighbour Embedding (t-SNE), exact and Barnes–Hut.
//
// References:
//   L. J. P. van der Maaten and G. E. Hinton, "Visualizing Data using t-SNE",
//     Journal of Machine Learning Research 9 (2008) 2579–2605.
//   L. J. P. van der Maaten, "Accelerating t-SNE using Tree-Based Algorithms",
//     Journal of Machine Learning Research 15 (2014) 3221–3245.
//   J. Venna and S. Kaski, "Neighborhood preservation in nonlinear projection
//     methods: An experimental study", ICANN 2001 (trustworthiness).
//
// Determinism: the implementation uses no random numbers and no threads, and every
// floating-point reduction is evaluated in a fixed order. The result is therefore a
// pure function of the input and the settings, bit-identical from run to run on the
// same platform and compiler.

import Foundation

// MARK: - Settings

/// Algorithm used to evaluate the gradient of the t-SNE objective.
public enum TSNEMethod: String, Codable, Hashable, Sendable, CaseIterable {
    /// All-pairs evaluation of P and of the gradient: O(N²) time per iteration and
    /// O(N²) memory for the dense joint-probability matrix.
    case exact
    /// Sparse P on the k = min(N − 1, ⌊3·perplexity + 1⌋) nearest neighbours of each
    /// point and Barnes–Hut approximation of the repulsive forces on a quadtree:
    /// O(N log N) time per iteration. Requires a 2-dimensional embedding.
    case barnesHut = "barnes_hut"
    /// `barnesHut` when the embedding is 2-dimensional and N > 2000
    /// (``TSNESettings/barnesHutThreshold``), otherwise `exact`.
    case auto
}

/// Parameters of a t-SNE run. All defaults follow scikit-learn's `TSNE`.
public struct TSNESettings: Equatable, Sendable {
    /// Perplexity 2^H of each conditional distribution P(·|i), where H is its Shannon
    /// entropy in bits (equivalently, the entropy in nats equals ln(perplexity)).
    /// Must be positive and smaller than N − 1.
    public var perplexity: Double
    /// Maximum number of gradient-descent iterations (≥ 0; 0 returns the initial
    /// embedding).
    public var iterations: Int
    /// Gradient evaluation method.
    public var method: TSNEMethod
    /// Barnes–Hut accuracy parameter θ ≥ 0: a quadtree cell of side length w whose
    /// centre of mass lies at distance r from the point (and whose box does not contain
    /// the point) is summarised as a single body when w / r < θ. θ = 0 is exact.
    public var theta: Double
    /// Factor α ≥ 1 multiplying P in the attractive term during the first
    /// ``exaggerationIterations`` iterations.
    public var earlyExaggeration: Double
    /// Number of initial iterations run with early exaggeration.
    public var exaggerationIterations: Int
    /// Iteration index from which the momentum is 0.8 instead of 0.5.
    public var momentumSwitchIteration: Int
    /// Gradient-descent step size η. `nil` selects
    /// η = max(N / earlyExaggeration / 4, 50) (scikit-learn's `learning_rate='auto'`).
    public var learningRate: Double?
    /// Dimension of the embedding space (≥ 1; Barnes–Hut requires 2).
    public var dimensions: Int
    /// After the exaggeration phase, the optimisation stops once the Euclidean norm of
    /// the gradient is ≤ this value (0 disables the test).
    public var minGradientNorm: Double

    /// Number of points above which ``TSNEMethod/auto`` selects Barnes–Hut.
    public static let barnesHutThreshold = 2000

    public init(
        perplexity: Double = 30,
        iterations: Int = 1000,
        method: TSNEMethod = .auto,
        theta: Double = 0.5,
        earlyExaggeration: Double = 12,
        exaggerationIterations: Int = 250,
        momentumSwitchIteration: Int = 250,
        learningRate: Double? = nil,
        dimensions: Int = 2,
        minGradientNorm: Double = 1e-7
    ) {
        self.perplexity = perplexity
        self.iterations = iterations
        self.method = method
        self.theta = theta
        self.earlyExaggeration = earlyExaggeration
        self.exaggerationIterations = exaggerationIterations
        self.momentumSwitchIteration = momentumSwitchIteration
        self.learningRate = learningRate
        self.dimensions = dimensions
        self.minGradientNorm = minGradientNorm
    }

    /// Checks every field independently of the data; throws
    /// ``TSNEError/invalidSetting(field:message:)`` naming the first offending field.
    /// Data-dependent constraints (perplexity < N − 1) are checked by ``tsne(_:settings:)``.
    public func validate() throws {
        func bad(_ field: String, _ message: String) -> TSNEError {
            .invalidSetting(field: field, message: message)
        }
        guard perplexity.isFinite, perplexity > 0 else {
            throw bad("perplexity", "must be finite and > 0 (got \(perplexity))")
        }
        guard iterations >= 0 else { throw bad("iterations", "must be ≥ 0 (got \(iterations))") }
        guard theta.isFinite, theta >= 0 else {
            throw bad("theta", "must be finite and ≥ 0 (got \(theta))")
        }
        guard earlyExaggeration.isFinite, earlyExaggeration >= 1 else {
            throw bad("earlyExaggeration", "must be finite and ≥ 1 (got \(earlyExaggeration))")
        }
        guard exaggerationIterations >= 0 else {
            throw bad("exaggerationIterations", "must be ≥ 0 (got \(exaggerationIterations))")
        }
        guard momentumSwitchIteration >= 0 else {
            throw bad("momentumSwitchIteration", "must be ≥ 0 (got \(momentumSwitchIteration))")
        }
        if let eta = learningRate, !(eta.isFinite && eta > 0) {
            throw bad("learningRate", "must be nil (automatic) or finite and > 0 (got \(eta))")
        }
        guard dimensions >= 1 else { throw bad("dimensions", "must be ≥ 1 (got \(dimensions))") }
        if method == .barnesHut && dimensions != 2 {
            throw bad("dimensions", "Barnes–Hut requires dimensions = 2 (got \(dimensions))")
        }
        guard minGradientNorm.isFinite, minGradientNorm >= 0 else {
            throw bad("minGradientNorm", "must be finite and ≥ 0 (got \(minGradientNorm))")
        }
    }

    /// The method actually used for `pointCount` points (`.exact` or `.barnesHut`).
    public func resolvedMethod(pointCount: Int) -> TSNEMethod {
        switch method {
        case .exact, .barnesHut: return method
        case .auto:
            return (dimensions == 2 && pointCount > TSNESettings.barnesHutThreshold) ? .barnesHut : .exact
        }
    }

    /// The learning rate actually used for `pointCount` points.
    public func resolvedLearningRate(pointCount: Int) -> Double {
        learningRate ?? max(Double(pointCount) / earlyExaggeration / 4, 50)
    }

    /// Number of nearest neighbours k = min(N − 1, ⌊3·perplexity + 1⌋) on which the
    /// Barnes–Hut method builds P (scikit-learn's choice).
    public func neighborCount(pointCount: Int) -> Int {
        tsneNeighborCount(perplexity: perplexity, pointCount: pointCount)
    }
}

// MARK: - Errors

/// Errors thrown for invalid settings or input.
public enum TSNEError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// A setting is out of its domain; `field` is the ``TSNESettings`` property name.
    case invalidSetting(field: String, message: String)
    /// The per-point dimension of a flat input is < 1.
    case invalidDimension(Int)
    /// The flat input length is not a multiple of the per-point dimension.
    case countNotMultipleOfDimension(count: Int, dimension: Int)
    /// Row `row` has `found` coordinates where `expected` (the length of row 0) was expected.
    case raggedRows(row: Int, expected: Int, found: Int)
    /// Fewer than `minimum` points were supplied.
    case tooFewPoints(count: Int, minimum: Int)
    /// The perplexity is not smaller than N − 1.
    case perplexityTooLarge(perplexity: Double, pointCount: Int)
    /// Coordinate `coordinate` of point `point` is NaN or infinite.
    case nonFiniteValue(point: Int, coordinate: Int)
    /// All input points coincide, so no embedding direction is defined.
    case degenerateInput(String)
    /// A supplied initial embedding has the wrong size or non-finite values.
    case invalidInitialEmbedding(String)
    /// Invalid argument to a helper function (gradient, trustworthiness).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .invalidSetting(field, message):
            return "Invalid t-SNE setting '\(field)': \(message)."
        case let .invalidDimension(d):
            return "Invalid point dimension \(d): must be ≥ 1."
        case let .countNotMultipleOfDimension(count, dimension):
            return "Input length \(count) is not a multiple of the point dimension \(dimension)."
        case let .raggedRows(row, expected, found):
            return "Ragged input: row \(row) has \(found) coordinates, row 0 has \(expected)."
        case let .tooFewPoints(count, minimum):
            return "t-SNE needs at least \(minimum) points (got \(count))."
        case let .perplexityTooLarge(perplexity, n):
            return "Perplexity \(perplexity) is too large for \(n) points: it must be smaller than N − 1 = \(n - 1)."
        case let .nonFiniteValue(point, coordinate):
            return "Non-finite input value at point \(point), coordinate \(coordinate)."
        case let .degenerateInput(message):
            return "Degenerate input: \(message)."
        case let .invalidInitialEmbedding(message):
            return "Invalid initial embedding: \(message)."
        case let .invalidArgument(message):
            return "Invalid argument: \(message)."
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Result

/// Output of ``tsne(_:settings:)``.
public struct TSNEResult: Equatable, Sendable {
    /// Number of points N.
    public let count: Int
    /// Embedding dimension d.
    public let dimensions: Int
    /// Embedding coordinates, N × d, row-major: point i is `embedding[i*d ..< (i+1)*d]`.
    public let embedding: [Double]
    /// KL(P‖Q) = Σ_{i≠j} p_ij ln(p_ij / q_ij) of the final embedding, in nats, for the P
    /// used by the run (dense for exact, k-nearest-neighbour sparse for Barnes–Hut) and
    /// the exact Student-t Q (normalisation over all pairs, no exaggeration).
    public let klDivergence: Double
    /// Per-point Gaussian precision β_i of the conditional distribution
    /// p_{j|i} ∝ exp(−β_i ‖x_i − x_j‖²).
    public let betas: [Double]
    /// Iterations actually run (≤ settings.iterations; fewer when the gradient-norm
    /// stopping criterion fired).
    public let iterations: Int
    /// Method actually used (`.exact` or `.barnesHut`).
    public let method: TSNEMethod
    /// Learning rate actually used.
    public let learningRate: Double

    /// Gaussian bandwidth σ_i = (2 β_i)^(−1/2), so that p_{j|i} ∝ exp(−‖x_i − x_j‖² / 2σ_i²).
    public var sigmas: [Double] { betas.map { 1 / (2 * $0).squareRoot() } }

    /// The embedding as one array per point.
    public var rows: [[Double]] {
        (0..<count).map { Array(embedding[($0 * dimensions)..<(($0 + 1) * dimensions)]) }
    }
}

// MARK: - Joint probabilities

/// Symmetric joint-probability matrix P with p_ij = (p_{j|i} + p_{i|j}) / (2N),
/// p_ii = 0 and Σ_ij p_ij = 1, stored in compressed sparse row (CSR) form with both
/// (i, j) and (j, i) present and columns ascending within each row.
public struct TSNEJointProbabilities: Equatable, Sendable {
    /// Number of points N.
    public let count: Int
    /// Row i occupies `columns[rowOffsets[i] ..< rowOffsets[i+1]]`; length N + 1.
    public let rowOffsets: [Int]
    /// Column indices of the stored entries.
    public let columns: [Int]
    /// Values p_ij of the stored entries.
    public let values: [Double]

    /// Creates a matrix from CSR arrays, verifying the structure (not symmetry).
    public init(count: Int, rowOffsets: [Int], columns: [Int], values: [Double]) throws {
        guard count >= 0, rowOffsets.count == count + 1, rowOffsets.first == 0,
              rowOffsets.last == columns.count, columns.count == values.count
        else { throw TSNEError.invalidArgument("inconsistent CSR arrays") }
        for i in 0..<count {
            guard rowOffsets[i] <= rowOffsets[i + 1] else {
                throw TSNEError.invalidArgument("row offsets must be non-decreasing")
            }
            var previous = -1
            for e in rowOffsets[i]..<rowOffsets[i + 1] {
                let j = columns[e]
                guard j > previous, j < count, j != i, values[e].isFinite, values[e] >= 0 else {
                    throw TSNEError.invalidArgument("row \(i): columns must be ascending, in range, off-diagonal, with finite non-negative values")
                }
                previous = j
            }
        }
        self.count = count
        self.rowOffsets = rowOffsets
        self.columns = columns
        self.values = values
    }

    /// Creates a matrix from a dense row-major N × N array, storing every off-diagonal entry.
    public init(dense: [Double], count: Int) throws {
        guard dense.count == count * count else {
            throw TSNEError.invalidArgument("dense matrix must have N² = \(count * count) entries")
        }
        var offsets = [0]
        var cols: [Int] = []
        var vals: [Double] = []
        cols.reserveCapacity(count * max(count - 1, 0))
        vals.reserveCapacity(count * max(count - 1, 0))
        for i in 0..<count {
            for j in 0..<count where j != i {
                cols.append(j)
                vals.append(dense[i * count + j])
            }
            offsets.append(cols.count)
        }
        try self.init(count: count, rowOffsets: offsets, columns: cols, values: vals)
    }

    /// Unchecked initialiser for internally constructed matrices.
    init(uncheckedCount count: Int, rowOffsets: [Int], columns: [Int], values: [Double]) {
        self.count = count
        self.rowOffsets = rowOffsets
        self.columns = columns
        self.values = values
    }

    /// The matrix as a dense row-major N × N array (zeros where not stored).
    public func dense() -> [Double] {
        var m = [Double](repeating: 0, count: count * count)
        for i in 0..<count {
            for e in rowOffsets[i]..<rowOffsets[i + 1] { m[i * count + columns[e]] = values[e] }
        }
        return m
    }
}

/// Input affinities: the joint probabilities together with the calibrated precisions.
public struct TSNEAffinities: Equatable, Sendable {
    /// Symmetrised joint probabilities P.
    public let joint: TSNEJointProbabilities
    /// Per-point precision β_i of p_{j|i} ∝ exp(−β_i ‖x_i − x_j‖²), j ranging over all
    /// other points (exact) or over the k nearest neighbours of i (sparse).
    public let betas: [Double]
    /// Number of candidate neighbours per point (N − 1 for exact).
    public let neighbors: Int
}

/// k = min(N − 1, ⌊3·perplexity + 1⌋).
func tsneNeighborCount(perplexity: Double, pointCount n: Int) -> Int {
    let k = (3 * perplexity + 1).rounded(.down)
    return k >= Double(n - 1) ? n - 1 : max(1, Int(k))
}

/// Binary search (bisection on β after doubling/halving brackets) for the precision β such
/// that the Shannon entropy of p_j = exp(−β d_j) / Σ_l exp(−β d_l) equals `targetEntropy`
/// (nats) to within 1e-5, with at most 200 evaluations, starting from β = 1.
/// Distances are shifted by their minimum before exponentiation, which leaves p and H
/// unchanged and prevents underflow. Writes the normalised p for the returned β to `p`.
func calibrateRow(
    distances d: UnsafeBufferPointer<Double>,
    targetEntropy: Double,
    into p: UnsafeMutableBufferPointer<Double>
) -> Double {
    let n = d.count
    var dmin = Double.infinity
    for j in 0..<n where d[j] < dmin { dmin = d[j] }
    var beta = 1.0
    var betaLow = 0.0, hasLow = false
    var betaHigh = Double.infinity
    var sum = 0.0
    let maxSteps = 200
    for step in 0..<maxSteps {
        sum = 0
        var weighted = 0.0
        for j in 0..<n {
            let s = d[j] - dmin
            let w = exp(-beta * s)
            p[j] = w
            sum += w
            weighted += s * w
        }
        let entropy = log(sum) + beta * weighted / sum
        let diff = entropy - targetEntropy
        if abs(diff) <= 1e-5 || step == maxSteps - 1 { break }
        if diff > 0 {  // too flat: increase precision
            betaLow = beta; hasLow = true
            beta = betaHigh.isInfinite ? beta * 2 : (beta + betaHigh) / 2
        } else {
            betaHigh = beta
            beta = hasLow ? (beta + betaLow) / 2 : beta / 2
        }
    }
    let inv = 1 / sum
    for j in 0..<n { p[j] *= inv }
    return beta
}

/// Computes the t-SNE input affinities of `data` (N points × `dimension`, row-major).
///
/// Squared Euclidean distances ‖x_i − x_j‖² are used. For each point i, β_i is calibrated
/// so that the entropy of p_{·|i} equals ln(perplexity). With `neighbors == nil` every other
/// point is a candidate (exact t-SNE); otherwise only the `neighbors` nearest points
/// (exact k-NN, ties broken by lower index) are, as in Barnes–Hut t-SNE. The result is
/// symmetrised: p_ij = (p_{j|i} + p_{i|j}) / (2N).
public func tsneAffinities(
    _ data: [Double], dimension: Int, perplexity: Double, neighbors: Int? = nil
) throws -> TSNEAffinities {
    let n = try validateData(data, dimension: dimension)
    guard perplexity.isFinite, perplexity > 0 else {
        throw TSNEError.invalidSetting(field: "perplexity", message: "must be finite and > 0 (got \(perplexity))")
    }
    guard perplexity < Double(n - 1) else {
        throw TSNEError.perplexityTooLarge(perplexity: perplexity, pointCount: n)
    }
    if let k = neighbors {
        guard k >= 1, k <= n - 1, perplexity < Double(k) else {
            throw TSNEError.invalidArgument("neighbors must satisfy perplexity < k ≤ N − 1 (got \(k))")
        }
        return sparseAffinities(data, n: n, dim: dimension, perplexity: perplexity, k: k)
    }
    let (dense, betas) = denseAffinities(data, n: n, dim: dimension, perplexity: perplexity)
    return TSNEAffinities(joint: csrFromDense(dense, n: n), betas: betas, neighbors: n - 1)
}

@inline(__always)
private func squaredDistance(_ x: UnsafeBufferPointer<Double>, _ i: Int, _ j: Int, _ dim: Int) -> Double {
    var s = 0.0
    let a = i * dim, b = j * dim
    for k in 0..<dim {
        let t = x[a + k] - x[b + k]
        s += t * t
    }
    return s
}

/// Exact affinities as a dense row-major N × N matrix, with the calibrated precisions.
private func denseAffinities(
    _ data: [Double], n: Int, dim: Int, perplexity: Double
) -> (dense: [Double], betas: [Double]) {
    var P = [Double](repeating: 0, count: n * n)
    var betas = [Double](repeating: 0, count: n)
    let target = log(perplexity)
    var dist = [Double](repeating: 0, count: n - 1)
    var row = [Double](repeating: 0, count: n - 1)
    data.withUnsafeBufferPointer { x in
        for i in 0..<n {
            var c = 0
            for j in 0..<n where j != i {
                dist[c] = squaredDistance(x, i, j, dim); c += 1
            }
            betas[i] = dist.withUnsafeBufferPointer { d in
                row.withUnsafeMutableBufferPointer { p in calibrateRow(distances: d, targetEntropy: target, into: p) }
            }
            c = 0
            for j in 0..<n where j != i { P[i * n + j] = row[c]; c += 1 }
        }
    }
    let scale = 1 / (2 * Double(n))
    for i in 0..<n {
        for j in (i + 1)..<n {
            let v = (P[i * n + j] + P[j * n + i]) * scale
            P[i * n + j] = v
            P[j * n + i] = v
        }
    }
    return (P, betas)
}

/// CSR form of a dense matrix, storing every off-diagonal entry.
private func csrFromDense(_ P: [Double], n: Int) -> TSNEJointProbabilities {
    var offsets = [Int](repeating: 0, count: n + 1)
    var cols: [Int] = []
    var vals: [Double] = []
    cols.reserveCapacity(n * (n - 1))
    vals.reserveCapacity(n * (n - 1))
    for i in 0..<n {
        for j in 0..<n where j != i {
            cols.append(j)
            vals.append(P[i * n + j])
        }
        offsets[i + 1] = cols.count
    }
    return TSNEJointProbabilities(uncheckedCount: n, rowOffsets: offsets, columns: cols, values: vals)
}

/// k-nearest-neighbour affinities (Barnes–Hut t-SNE).
private func sparseAffinities(
    _ data: [Double], n: Int, dim: Int, perplexity: Double, k: Int
) -> TSNEAffinities {
    let target = log(perplexity)
    var betas = [Double](repeating: 0, count: n)
    // Conditional matrix C in CSR, k entries per row, columns ascending.
    var cCols = [Int](repeating: 0, count: n * k)
    var cVals = [Double](repeating: 0, count: n * k)
    var heapD = [Double](repeating: 0, count: k)
    var heapJ = [Int](repeating: 0, count: k)
    var dist = [Double](repeating: 0, count: k)
    var row = [Double](repeating: 0, count: k)
    var order = [Int](repeating: 0, count: k)
    data.withUnsafeBufferPointer { x in
        for i in 0..<n {
            // Max-heap on (distance, index) keeping the k smallest.
            var size = 0
            for j in 0..<n where j != i {
                let dj = squaredDistance(x, i, j, dim)
                if size < k {
                    var c = size; size += 1
                    while c > 0 {
                        let parent = (c - 1) / 2
                        if heapD[parent] < dj || (heapD[parent] == dj && heapJ[parent] < j) {
                            heapD[c] = heapD[parent]; heapJ[c] = heapJ[parent]; c = parent
                        } else { break }
                    }
                    heapD[c] = dj; heapJ[c] = j
                } else if dj < heapD[0] || (dj == heapD[0] && j < heapJ[0]) {
                    var c = 0
                    while true {
                        let l = 2 * c + 1
                        if l >= size { break }
                        var m = l
                        let r = l + 1
                        if r < size && (heapD[r] > heapD[l] || (heapD[r] == heapD[l] && heapJ[r] > heapJ[l])) { m = r }
                        if heapD[m] > dj || (heapD[m] == dj && heapJ[m] > j) {
                            heapD[c] = heapD[m]; heapJ[c] = heapJ[m]; c = m
                        } else { break }
                    }
                    heapD[c] = dj; heapJ[c] = j
                }
            }
            // Ascending column order (deterministic summation order in calibration).
            for t in 0..<k { order[t] = t }
            order.sort { heapJ[$0] < heapJ[$1] }
            for t in 0..<k { dist[t] = heapD[order[t]] }
            betas[i] = dist.withUnsafeBufferPointer { d in
                row.withUnsafeMutableBufferPointer { p in calibrateRow(distances: d, targetEntropy: target, into: p) }
            }
            for t in 0..<k {
                cCols[i * k + t] = heapJ[order[t]]
                cVals[i * k + t] = row[t]
            }
        }
    }
    // Transpose of C by counting sort (rows of Cᵀ come out with ascending columns).
    var tOffsets = [Int](repeating: 0, count: n + 1)
    for e in 0..<(n * k) { tOffsets[cCols[e] + 1] += 1 }
    for i in 0..<n { tOffsets[i + 1] += tOffsets[i] }
    var fill = tOffsets
    var tCols = [Int](repeating: 0, count: n * k)
    var tVals = [Double](repeating: 0, count: n * k)
    for i in 0..<n {
        for t in 0..<k {
            let j = cCols[i * k + t]
            let pos = fill[j]; fill[j] += 1
            tCols[pos] = i
            tVals[pos] = cVals[i * k + t]
        }
    }
    // P = (C + Cᵀ) / 2N by merging sorted rows.
    let scale = 1 / (2 * Double(n))
    var offsets = [Int](repeating: 0, count: n + 1)
    var cols: [Int] = []
    var vals: [Double] = []
    cols.reserveCapacity(2 * n * k)
    vals.reserveCapacity(2 * n * k)
    for i in 0..<n {
        var a = i * k, b = tOffsets[i]
        let aEnd = (i + 1) * k, bEnd = tOffsets[i + 1]
        while a < aEnd || b < bEnd {
            if b >= bEnd || (a < aEnd && cCols[a] < tCols[b]) {
                cols.append(cCols[a]); vals.append(cVals[a] * scale); a += 1
            } else if a >= aEnd || tCols[b] < cCols[a] {
                cols.append(tCols[b]); vals.append(tVals[b] * scale); b += 1
            } else {
                cols.append(cCols[a]); vals.append((cVals[a] + tVals[b]) * scale); a += 1; b += 1
            }
        }
        offsets[i + 1] = cols.count
    }
    let joint = TSNEJointProbabilities(uncheckedCount: n, rowOffsets: offsets, columns: cols, values: vals)
    return TSNEAffinities(joint: joint, betas: betas, neighbors: k)
}

// MARK: - Input validation

/// Returns N after checking the flat layout, N ≥ 4 and finiteness.
private func validateData(_ data: [Double], dimension: Int) throws -> Int {
    guard dimension >= 1 else { throw TSNEError.invalidDimension(dimension) }
    guard data.count % dimension == 0 else {
        throw TSNEError.countNotMultipleOfDimension(count: data.count, dimension: dimension)
    }
    let n = data.count / dimension
    guard n >= 4 else { throw TSNEError.tooFewPoints(count: n, minimum: 4) }
    for (idx, v) in data.enumerated() where !v.isFinite {
        throw TSNEError.nonFiniteValue(point: idx / dimension, coordinate: idx % dimension)
    }
    return n
}

/// Flattens rows, rejecting ragged input; returns (flat, dimension).
private func flatten(_ rows: [[Double]]) throws -> ([Double], Int) {
    let d = rows.first?.count ?? 0
    var flat: [Double] = []
    flat.reserveCapacity(rows.count * d)
    for (r, row) in rows.enumerated() {
        guard row.count == d else { throw TSNEError.raggedRows(row: r, expected: d, found: row.count) }
        flat.append(contentsOf: row)
    }
    return (flat, d)
}

// MARK: - Gradient

/// How ``tsneGradient(_:embedding:dimensions:exaggeration:method:)`` evaluates the
/// repulsive forces.
public enum TSNEGradientMethod: Equatable, Sendable {
    /// All pairs.
    case exact
    /// Barnes–Hut quadtree with accuracy parameter θ (2-D embeddings only).
    case barnesHut(theta: Double)
}

/// Gradient of C = KL(P‖Q) with respect to the embedding Y (N × d, row-major):
///
///   ∂C/∂y_i = 4 Σ_j (α p_ij − q_ij) (1 + ‖y_i − y_j‖²)⁻¹ (y_i − y_j),
///   q_ij = (1 + ‖y_i − y_j‖²)⁻¹ / Z,  Z = Σ_{k≠l} (1 + ‖y_k − y_l‖²)⁻¹,
///
/// with exaggeration factor α (α = 1 gives the exact KL gradient). The attractive term
/// runs over the stored entries of P; the repulsive term over all pairs (`.exact`) or over
/// a Barnes–Hut quadtree (`.barnesHut`, which with θ = 0 is exact up to rounding).
public func tsneGradient(
    _ P: TSNEJointProbabilities, embedding Y: [Double], dimensions d: Int,
    exaggeration: Double = 1, method: TSNEGradientMethod = .exact
) throws -> [Double] {
    guard d >= 1, Y.count == P.count * d else {
        throw TSNEError.invalidArgument("embedding must have N × d = \(P.count) × \(d) entries")
    }
    var grad = [Double](repeating: 0, count: Y.count)
    switch method {
    case .exact:
        let dense = P.dense()
        var ws = GradientWorkspace(count: Y.count)
        exactGradient(P: dense, Y: Y, n: P.count, d: d, exaggeration: exaggeration, grad: &grad, ws: &ws)
    case let .barnesHut(theta):
        guard d == 2 else { throw TSNEError.invalidArgument("Barnes–Hut requires a 2-D embedding") }
        guard theta.isFinite, theta >= 0 else { throw TSNEError.invalidArgument("theta must be finite and ≥ 0") }
        var tree = QuadTree()
        var ws = GradientWorkspace(count: Y.count)
        barnesHutGradient(P: P, Y: Y, n: P.count, theta: theta, exaggeration: exaggeration,
                          grad: &grad, tree: &tree, ws: &ws)
    }
    return grad
}

/// KL(P‖Q) = Σ_{i≠j, p_ij>0} p_ij ln(p_ij / q_ij) in nats, with the exact Student-t Q of
/// the embedding Y (N × d, row-major). O(N² d) time.
public func tsneKLDivergence(_ P: TSNEJointProbabilities, embedding Y: [Double], dimensions d: Int) throws -> Double {
    guard d >= 1, Y.count == P.count * d else {
        throw TSNEError.invalidArgument("embedding must have N × d = \(P.count) × \(d) entries")
    }
    return klDivergence(P: P, Y: Y, n: P.count, d: d)
}

private func klDivergence(P: TSNEJointProbabilities, Y: [Double], n: Int, d: Int) -> Double {
    Y.withUnsafeBufferPointer { y in
        var z = 0.0
        for i in 0..<n {
            for j in (i + 1)..<n { z += 1 / (1 + squaredDistance(y, i, j, d)) }
        }
        z *= 2
        var sumP = 0.0, sum = 0.0
        for i in 0..<n {
            for e in P.rowOffsets[i]..<P.rowOffsets[i + 1] {
                let p = P.values[e]
                guard p > 0 else { continue }
                // ln(p/q) = ln p + ln(1 + d²) + ln Z
                sum += p * (log(p) + log1p(squaredDistance(y, i, P.columns[e], d)))
                sumP += p
            }
        }
        return sum + sumP * log(z)
    }
}

/// KL(P‖Q) for a dense P; same definition and pair order as the CSR version.
private func klDivergenceDense(P: [Double], Y: [Double], n: Int, d: Int) -> Double {
    Y.withUnsafeBufferPointer { y in
        var z = 0.0
        for i in 0..<n {
            for j in (i + 1)..<n { z += 1 / (1 + squaredDistance(y, i, j, d)) }
        }
        z *= 2
        var sumP = 0.0, sum = 0.0
        for i in 0..<n {
            for j in 0..<n where j != i {
                let p = P[i * n + j]
                guard p > 0 else { continue }
                sum += p * (log(p) + log1p(squaredDistance(y, i, j, d)))
                sumP += p
            }
        }
        return sum + sumP * log(z)
    }
}

/// Scratch buffers reused across iterations.
struct GradientWorkspace {
    var attractive: [Double]
    var repulsive: [Double]
    init(count: Int) {
        attractive = [Double](repeating: 0, count: count)
        repulsive = [Double](repeating: 0, count: count)
    }
}

/// Exact gradient with dense P; each unordered pair is visited once, i ascending then j.
func exactGradient(
    P: [Double], Y: [Double], n: Int, d: Int, exaggeration alpha: Double,
    grad: inout [Double], ws: inout GradientWorkspace
) {
    var halfZ = 0.0
    P.withUnsafeBufferPointer { p in
        Y.withUnsafeBufferPointer { y in
            ws.attractive.withUnsafeMutableBufferPointer { att in
                ws.repulsive.withUnsafeMutableBufferPointer { rep in
                    for c in 0..<(n * d) { att[c] = 0; rep[c] = 0 }
                    if d == 2 {
                        for i in 0..<n {
                            let xi = y[2 * i], yi = y[2 * i + 1]
                            var ax = 0.0, ay = 0.0, rx = 0.0, ry = 0.0
                            let prow = i * n
                            for j in (i + 1)..<n {
                                let dx = xi - y[2 * j], dy = yi - y[2 * j + 1]
                                let w = 1 / (1 + dx * dx + dy * dy)
                                halfZ += w
                                let a = alpha * p[prow + j] * w
                                let r = w * w
                                ax += a * dx; ay += a * dy
                                rx += r * dx; ry += r * dy
                                att[2 * j] -= a * dx; att[2 * j + 1] -= a * dy
                                rep[2 * j] -= r * dx; rep[2 * j + 1] -= r * dy
                            }
                            att[2 * i] += ax; att[2 * i + 1] += ay
                            rep[2 * i] += rx; rep[2 * i + 1] += ry
                        }
                    } else {
                        for i in 0..<n {
                            for j in (i + 1)..<n {
                                let w = 1 / (1 + squaredDistance(y, i, j, d))
                                halfZ += w
                                let a = alpha * p[i * n + j] * w
                                let r = w * w
                                for k in 0..<d {
                                    let t = y[i * d + k] - y[j * d + k]
                                    att[i * d + k] += a * t; att[j * d + k] -= a * t
                                    rep[i * d + k] += r * t; rep[j * d + k] -= r * t
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let invZ = 1 / (2 * halfZ)
    for c in 0..<(n * d) { grad[c] = 4 * (ws.attractive[c] - ws.repulsive[c] * invZ) }
}

// MARK: - Barnes–Hut quadtree

/// One quadtree cell (64 bytes). For a leaf `firstChild` is −1 and `head` starts the
/// linked list of its points; for an internal node the four children are contiguous
/// from `firstChild` (bit 0: x ≥ centre x, bit 1: y ≥ centre y). After ``QuadTree/build``
/// `comX`, `comY` hold the centre of mass.
struct QuadNode {
    var centerX: Double, centerY: Double, half: Double
    var mass: Double, comX: Double, comY: Double
    var firstChild: Int, head: Int
}

/// Point-region quadtree over a square root cell enclosing all points. A leaf holds a
/// linked list of points that are either coincident or at the maximum depth.
struct QuadTree {
    static let maxDepth = 50
    var nodes: [QuadNode] = []
    var next: [Int] = []
    /// All points in depth-first leaf order.
    var order: [Int] = []

    /// Rebuilds the tree for the N points of the 2-D embedding `y` (insertion in index
    /// order, so every node sum is accumulated in a fixed order).
    mutating func build(_ y: [Double], n: Int) {
        nodes.removeAll(keepingCapacity: true)
        if next.count != n { next = [Int](repeating: -1, count: n) }
        var minX = Double.infinity, maxX = -Double.infinity
        var minY = Double.infinity, maxY = -Double.infinity
        for i in 0..<n {
            minX = min(minX, y[2 * i]); maxX = max(maxX, y[2 * i])
            minY = min(minY, y[2 * i + 1]); maxY = max(maxY, y[2 * i + 1])
        }
        var h = max(maxX - minX, maxY - minY) / 2
        if !(h > 0) { h = 1 }
        nodes.append(QuadNode(centerX: (minX + maxX) / 2, centerY: (minY + maxY) / 2, half: h,
                              mass: 0, comX: 0, comY: 0, firstChild: -1, head: -1))
        var links = next
        next = []
        y.withUnsafeBufferPointer { yp in
            links.withUnsafeMutableBufferPointer { nx in
                for p in 0..<n { nx[p] = -1 }
                for p in 0..<n { insert(p, yp, nx) }
            }
        }
        next = links
        nodes.withUnsafeMutableBufferPointer { nd in
            for k in 0..<nd.count where nd[k].mass > 0 {
                nd[k].comX /= nd[k].mass
                nd[k].comY /= nd[k].mass
            }
        }
        // Points in depth-first leaf order (children 0…3), a spatially coherent order for
        // the force queries.
        order.removeAll(keepingCapacity: true)
        var stack = [0]
        while let node = stack.popLast() {
            let cell = nodes[node]
            if cell.firstChild < 0 {
                var r = cell.head
                while r >= 0 { order.append(r); r = next[r] }
            } else {
                for c in stride(from: 3, through: 0, by: -1) where nodes[cell.firstChild + c].mass > 0 {
                    stack.append(cell.firstChild + c)
                }
            }
        }
    }

    private mutating func insert(_ p: Int, _ y: UnsafeBufferPointer<Double>, _ next: UnsafeMutableBufferPointer<Int>) {
        let px = y[2 * p], py = y[2 * p + 1]
        var node = 0
        var depth = 0
        while true {
            nodes[node].mass += 1; nodes[node].comX += px; nodes[node].comY += py
            let cell = nodes[node]
            if cell.firstChild < 0 {
                let q = cell.head
                if q < 0 { nodes[node].head = p; return }
                if (y[2 * q] == px && y[2 * q + 1] == py) || depth >= QuadTree.maxDepth {
                    next[p] = q; nodes[node].head = p; return
                }
                // Subdivide and move the (coincident) resident points to their child.
                let fc = nodes.count
                let h = cell.half / 2
                for c in 0..<4 {
                    nodes.append(QuadNode(centerX: cell.centerX + ((c & 1) != 0 ? h : -h),
                                          centerY: cell.centerY + ((c & 2) != 0 ? h : -h), half: h,
                                          mass: 0, comX: 0, comY: 0, firstChild: -1, head: -1))
                }
                nodes[node].firstChild = fc
                nodes[node].head = -1
                let qx = y[2 * q], qy = y[2 * q + 1]
                let child = fc + ((qx >= cell.centerX ? 1 : 0) | (qy >= cell.centerY ? 2 : 0))
                nodes[child].head = q
                var r = q
                while r >= 0 {
                    nodes[child].mass += 1; nodes[child].comX += y[2 * r]; nodes[child].comY += y[2 * r + 1]
                    r = next[r]
                }
            }
            let cur = nodes[node]
            node = cur.firstChild + ((px >= cur.centerX ? 1 : 0) | (py >= cur.centerY ? 2 : 0))
            depth += 1
        }
    }
}

/// Barnes–Hut gradient (van der Maaten 2014): exact attractive forces over the stored
/// entries of P; repulsive forces and Z from the quadtree with criterion w/r < θ
/// (w = cell side, r = distance to the cell's centre of mass), never summarising a cell
/// whose box contains the query point. Points in a reached leaf interact exactly.
/// Queries run in the tree's depth-first leaf order (cache locality); Z is summed in that
/// order, which is a deterministic function of the embedding.
func barnesHutGradient(
    P: TSNEJointProbabilities, Y: [Double], n: Int, theta: Double, exaggeration alpha: Double,
    grad: inout [Double], tree: inout QuadTree, ws: inout GradientWorkspace
) {
    tree.build(Y, n: n)
    let theta2 = theta * theta
    var z = 0.0
    let stackCapacity = 4 * (QuadTree.maxDepth + 2)
    var stack = [Int](repeating: 0, count: stackCapacity)
    Y.withUnsafeBufferPointer { y in
    tree.nodes.withUnsafeBufferPointer { nodes in
    tree.next.withUnsafeBufferPointer { nexts in
    stack.withUnsafeMutableBufferPointer { st in
    ws.repulsive.withUnsafeMutableBufferPointer { rep in
        for i in tree.order {
            let px = y[2 * i], py = y[2 * i + 1]
            var sumQ = 0.0, fx = 0.0, fy = 0.0
            st[0] = 0
            var sp = 1
            while sp > 0 {
                sp -= 1
                let cell = nodes[st[sp]]
                let m = cell.mass
                if m == 0 { continue }
                let fc = cell.firstChild
                if fc < 0 {
                    var r = cell.head
                    while r >= 0 {
                        if r != i {
                            let dx = px - y[2 * r], dy = py - y[2 * r + 1]
                            let q = 1 / (1 + dx * dx + dy * dy)
                            sumQ += q
                            let q2 = q * q
                            fx += q2 * dx; fy += q2 * dy
                        }
                        r = nexts[r]
                    }
                    continue
                }
                let dx = px - cell.comX, dy = py - cell.comY
                let dist2 = dx * dx + dy * dy
                let h = cell.half
                let inside = abs(px - cell.centerX) <= h && abs(py - cell.centerY) <= h
                if !inside && 4 * h * h < theta2 * dist2 {
                    let q = 1 / (1 + dist2)
                    sumQ += m * q
                    let mq2 = m * q * q
                    fx += mq2 * dx; fy += mq2 * dy
                } else {
                    for c in stride(from: fc + 3, through: fc, by: -1) where nodes[c].mass > 0 {
                        st[sp] = c; sp += 1
                    }
                }
            }
            rep[2 * i] = fx; rep[2 * i + 1] = fy
            z += sumQ
        }
    }}}}}
    let invZ = 1 / z
    Y.withUnsafeBufferPointer { y in
        P.rowOffsets.withUnsafeBufferPointer { off in
            P.columns.withUnsafeBufferPointer { cols in
                P.values.withUnsafeBufferPointer { vals in
                    for i in 0..<n {
                        let xi = y[2 * i], yi = y[2 * i + 1]
                        var ax = 0.0, ay = 0.0
                        for e in off[i]..<off[i + 1] {
                            let j = cols[e]
                            let dx = xi - y[2 * j], dy = yi - y[2 * j + 1]
                            let a = vals[e] / (1 + dx * dx + dy * dy)
                            ax += a * dx; ay += a * dy
                        }
                        grad[2 * i] = 4 * (alpha * ax - ws.repulsive[2 * i] * invZ)
                        grad[2 * i + 1] = 4 * (alpha * ay - ws.repulsive[2 * i + 1] * invZ)
                    }
                }
            }
        }
    }
}

// MARK: - PCA initialisation

/// Cyclic Jacobi eigendecomposition of the symmetric n × n matrix `a` (row-major,
/// destroyed). Returns eigenvalues and eigenvectors (columns of the row-major matrix).
func jacobiEigen(_ a: inout [Double], n: Int) -> (values: [Double], vectors: [Double]) {
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    for sweep in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in (p + 1)..<n { off += abs(a[p * n + q]) } }
        if off == 0 { break }
        for p in 0..<n {
            for q in (p + 1)..<n {
                let apq = a[p * n + q]
                let g = 100 * abs(apq)
                let app = a[p * n + p], aqq = a[q * n + q]
                if sweep > 3 && abs(app) + g == abs(app) && abs(aqq) + g == abs(aqq) {
                    a[p * n + q] = 0; a[q * n + p] = 0
                    continue
                }
                if apq == 0 { continue }
                let h = aqq - app
                let t: Double
                if abs(h) + g == abs(h) {
                    t = apq / h
                } else {
                    let th = 0.5 * h / apq
                    t = (th < 0 ? -1.0 : 1.0) / (abs(th) + (th * th + 1).squareRoot())
                }
                let c = 1 / (t * t + 1).squareRoot()
                let s = t * c
                let tau = s / (1 + c)
                a[p * n + p] = app - t * apq
                a[q * n + q] = aqq + t * apq
                a[p * n + q] = 0; a[q * n + p] = 0
                for r in 0..<n where r != p && r != q {
                    let gr = a[r * n + p], hr = a[r * n + q]
                    let np = gr - s * (hr + gr * tau)
                    let nq = hr + s * (gr - hr * tau)
                    a[r * n + p] = np; a[p * n + r] = np
                    a[r * n + q] = nq; a[q * n + r] = nq
                }
                for r in 0..<n {
                    let gr = v[r * n + p], hr = v[r * n + q]
                    v[r * n + p] = gr - s * (hr + gr * tau)
                    v[r * n + q] = hr + s * (gr - hr * tau)
                }
            }
        }
    }
    return ((0..<n).map { a[$0 * n + $0] }, v)
}

/// PCA initialisation (scikit-learn `init='pca'`): projection of the centred data on the
/// top-`dims` principal directions, each direction's sign fixed so that its entry of
/// largest magnitude (first such entry) is positive, then scaled so that the first
/// coordinate has (population) standard deviation 1e-4. Directions are eigenvectors of
/// the D × D covariance (D ≤ N) or derived from the N × N Gram matrix (D > N), computed by
/// cyclic Jacobi; equal eigenvalues are ordered by index. Cost O(N·m² + m³), m = min(N, D).
/// Missing directions (dims > min(N, D)) are zero.
public func tsnePCAInitialization(_ data: [Double], dimension D: Int, dimensions dims: Int) throws -> [Double] {
    let n = try validateData(data, dimension: D)
    guard dims >= 1 else { throw TSNEError.invalidArgument("dimensions must be ≥ 1") }
    var mean = [Double](repeating: 0, count: D)
    for i in 0..<n { for a in 0..<D { mean[a] += data[i * D + a] } }
    for a in 0..<D { mean[a] /= Double(n) }
    var xc = data
    for i in 0..<n { for a in 0..<D { xc[i * D + a] -= mean[a] } }

    var directions: [[Double]] = []
    if D <= n {
        var cov = [Double](repeating: 0, count: D * D)
        for i in 0..<n {
            for a in 0..<D {
                let xa = xc[i * D + a]
                for b in a..<D { cov[a * D + b] += xa * xc[i * D + b] }
            }
        }
        for a in 0..<D { for b in 0..<a { cov[a * D + b] = cov[b * D + a] } }
        let (values, vectors) = jacobiEigen(&cov, n: D)
        let order = (0..<D).sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        for k in 0..<min(dims, D) {
            directions.append((0..<D).map { vectors[$0 * D + order[k]] })
        }
    } else {
        var gram = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var s = 0.0
                for a in 0..<D { s += xc[i * D + a] * xc[j * D + a] }
                gram[i * n + j] = s; gram[j * n + i] = s
            }
        }
        let (values, vectors) = jacobiEigen(&gram, n: n)
        let order = (0..<n).sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        for k in 0..<min(dims, n) {
            var v = [Double](repeating: 0, count: D)
            for i in 0..<n {
                let u = vectors[i * n + order[k]]
                for a in 0..<D { v[a] += u * xc[i * D + a] }
            }
            var norm = 0.0
            for a in 0..<D { norm += v[a] * v[a] }
            norm = norm.squareRoot()
            if norm > 0 { for a in 0..<D { v[a] /= norm } }
            directions.append(v)
        }
    }
    for k in 0..<directions.count {
        var best = 0
        for a in 0..<D where abs(directions[k][a]) > abs(directions[k][best]) { best = a }
        if directions[k][best] < 0 { for a in 0..<D { directions[k][a] = -directions[k][a] } }
    }
    var y = [Double](repeating: 0, count: n * dims)
    for i in 0..<n {
        for k in 0..<directions.count {
            var s = 0.0
            for a in 0..<D { s += xc[i * D + a] * directions[k][a] }
            y[i * dims + k] = s
        }
    }
    var m0 = 0.0
    for i in 0..<n { m0 += y[i * dims] }
    m0 /= Double(n)
    var v0 = 0.0
    for i in 0..<n { let t = y[i * dims] - m0; v0 += t * t }
    let sd = (v0 / Double(n)).squareRoot()
    guard sd > 0 else { throw TSNEError.degenerateInput("all input points coincide") }
    let scale = 1e-4 / sd
    for c in 0..<(n * dims) { y[c] *= scale }
    return y
}

// MARK: - t-SNE

/// Embeds `points` (N rows of equal length) with t-SNE. See
/// ``tsne(_:dimension:settings:initialEmbedding:)``.
public func tsne(_ points: [[Double]], settings: TSNESettings = TSNESettings()) throws -> TSNEResult {
    let (flat, d) = try flatten(points)
    guard points.count >= 4 else { throw TSNEError.tooFewPoints(count: points.count, minimum: 4) }
    return try tsne(flat, dimension: d, settings: settings)
}

/// Embeds N points given row-major in `data` (N × `dimension`) with t-SNE.
///
/// Steps: (1) input affinities P from squared Euclidean distances with per-point
/// perplexity calibration (``tsneAffinities(_:dimension:perplexity:neighbors:)``; all pairs
/// for `.exact`, k = min(N − 1, ⌊3·perplexity + 1⌋) nearest neighbours for `.barnesHut`);
/// (2) initial embedding `initialEmbedding` (N × settings.dimensions) or, if nil, the PCA
/// initialisation (``tsnePCAInitialization(_:dimension:dimensions:)``); (3) gradient
/// descent for `settings.iterations` iterations t = 0, 1, …:
///
///   g = ∂C/∂Y with exaggeration α = earlyExaggeration for t < exaggerationIterations, else 1;
///   gains_c ← max(0.01, update_c·g_c < 0 ? gains_c + 0.2 : gains_c·0.8);
///   update_c ← μ·update_c − η·gains_c·g_c,  μ = 0.5 for t < momentumSwitchIteration, else 0.8;
///   Y_c ← Y_c + update_c,
///
/// starting from update = 0, gains = 1; it stops early when t ≥ exaggerationIterations and
/// ‖g‖₂ ≤ minGradientNorm. No random numbers are used and all reductions have a fixed
/// order, so the result is deterministic.
///
/// - Throws: ``TSNEError`` for invalid settings, fewer than 4 points, non-finite values,
///   perplexity ≥ N − 1, coincident points (PCA initialisation), or a malformed
///   initial embedding.
public func tsne(
    _ data: [Double], dimension: Int, settings: TSNESettings = TSNESettings(),
    initialEmbedding: [Double]? = nil
) throws -> TSNEResult {
    let n = try validateData(data, dimension: dimension)
    try settings.validate()
    guard settings.perplexity < Double(n - 1) else {
        throw TSNEError.perplexityTooLarge(perplexity: settings.perplexity, pointCount: n)
    }
    let dims = settings.dimensions
    let method = settings.resolvedMethod(pointCount: n)
    let eta = settings.resolvedLearningRate(pointCount: n)

    var Y: [Double]
    if let initial = initialEmbedding {
        guard initial.count == n * dims else {
            throw TSNEError.invalidInitialEmbedding("expected \(n) × \(dims) = \(n * dims) values, got \(initial.count)")
        }
        guard initial.allSatisfy({ $0.isFinite }) else {
            throw TSNEError.invalidInitialEmbedding("non-finite value")
        }
        Y = initial
    } else {
        Y = try tsnePCAInitialization(data, dimension: dimension, dimensions: dims)
    }

    // Exact: dense P only (N² doubles); Barnes–Hut: sparse P.
    var denseP: [Double] = []
    var sparseP: TSNEJointProbabilities? = nil
    let betas: [Double]
    if method == .exact {
        (denseP, betas) = denseAffinities(data, n: n, dim: dimension, perplexity: settings.perplexity)
    } else {
        let k = settings.neighborCount(pointCount: n)
        let affinities = sparseAffinities(data, n: n, dim: dimension, perplexity: settings.perplexity, k: k)
        sparseP = affinities.joint
        betas = affinities.betas
    }

    let m = n * dims
    var grad = [Double](repeating: 0, count: m)
    var update = [Double](repeating: 0, count: m)
    var gains = [Double](repeating: 1, count: m)
    var ws = GradientWorkspace(count: m)
    var tree = QuadTree()
    var run = 0
    for t in 0..<settings.iterations {
        let exaggerating = t < settings.exaggerationIterations
        let alpha = exaggerating ? settings.earlyExaggeration : 1
        let momentum = t < settings.momentumSwitchIteration ? 0.5 : 0.8
        if method == .exact {
            exactGradient(P: denseP, Y: Y, n: n, d: dims, exaggeration: alpha, grad: &grad, ws: &ws)
        } else {
            barnesHutGradient(P: sparseP!, Y: Y, n: n, theta: settings.theta, exaggeration: alpha,
                              grad: &grad, tree: &tree, ws: &ws)
        }
        var norm2 = 0.0
        for c in 0..<m {
            let g = grad[c]
            norm2 += g * g
            var gain = update[c] * g < 0 ? gains[c] + 0.2 : gains[c] * 0.8
            if gain < 0.01 { gain = 0.01 }
            gains[c] = gain
            update[c] = momentum * update[c] - eta * gain * g
            Y[c] += update[c]
        }
        run = t + 1
        if !exaggerating && settings.minGradientNorm > 0 && norm2.squareRoot() <= settings.minGradientNorm { break }
    }

    let kl = sparseP.map { klDivergence(P: $0, Y: Y, n: n, d: dims) }
        ?? klDivergenceDense(P: denseP, Y: Y, n: n, d: dims)
    return TSNEResult(count: n, dimensions: dims, embedding: Y, klDivergence: kl,
                      betas: betas, iterations: run, method: method, learningRate: eta)
}

// MARK: - Trustworthiness

/// Trustworthiness T(k) of an embedding (Venna & Kaski 2001; scikit-learn's definition):
///
///   T(k) = 1 − 2 / (n k (2n − 3k − 1)) · Σ_i Σ_{j ∈ U_i^k} max(0, r(i, j) − k),
///
/// where U_i^k are the k nearest neighbours of i in the low-dimensional space and r(i, j)
/// is the rank (1 = nearest) of j among the other points ordered by distance to i in the
/// high-dimensional space. Euclidean distances; ties are broken by lower index.
/// T ∈ [0, 1], 1 meaning every low-dimensional k-neighbourhood is a high-dimensional one.
/// Requires 1 ≤ k < n/2. O(n² (D + d + log n)) time, O(n) extra memory.
public func trustworthiness(
    high: [Double], highDimension: Int, low: [Double], lowDimension: Int, neighbors k: Int
) throws -> Double {
    guard highDimension >= 1, lowDimension >= 1,
          high.count % highDimension == 0, low.count % lowDimension == 0
    else { throw TSNEError.invalidArgument("array lengths must be multiples of the dimensions") }
    let n = high.count / highDimension
    guard low.count / lowDimension == n else {
        throw TSNEError.invalidArgument("high and low must hold the same number of points")
    }
    guard k >= 1, 2 * k < n else {
        throw TSNEError.invalidArgument("neighbors k must satisfy 1 ≤ k < n/2 (n = \(n), k = \(k))")
    }
    guard high.allSatisfy({ $0.isFinite }), low.allSatisfy({ $0.isFinite }) else {
        throw TSNEError.invalidArgument("non-finite coordinate")
    }
    var rank = [Int](repeating: 0, count: n)
    var dh = [Double](repeating: 0, count: n)
    var dl = [Double](repeating: 0, count: n)
    var order = [Int](repeating: 0, count: n - 1)
    var penalty = 0
    high.withUnsafeBufferPointer { hx in
        low.withUnsafeBufferPointer { lx in
            for i in 0..<n {
                for j in 0..<n where j != i {
                    dh[j] = squaredDistance(hx, i, j, highDimension)
                    dl[j] = squaredDistance(lx, i, j, lowDimension)
                }
                var c = 0
                for j in 0..<n where j != i { order[c] = j; c += 1 }
                order.sort { dh[$0] < dh[$1] || (dh[$0] == dh[$1] && $0 < $1) }
                for (r, j) in order.enumerated() { rank[j] = r + 1 }
                order.sort { dl[$0] < dl[$1] || (dl[$0] == dl[$1] && $0 < $1) }
                for t in 0..<k { penalty += max(0, rank[order[t]] - k) }
            }
        }
    }
    let nn = Double(n), kk = Double(k)
    return 1 - Double(penalty) * (2 / (nn * kk * (2 * nn - 3 * kk - 1)))
}

/// Row-array variant of ``trustworthiness(high:highDimension:low:lowDimension:neighbors:)``.
public func trustworthiness(high: [[Double]], low: [[Double]], neighbors k: Int) throws -> Double {
    let (h, hd) = try flatten(high)
    let (l, ld) = try flatten(low)
    return try trustworthiness(high: h, highDimension: hd, low: l, lowDimension: ld, neighbors: k)
}
