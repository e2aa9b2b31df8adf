import Foundation

/// Ridge-regression solutions for a whole grid of ridges from one eigendecomposition
/// `K = Q diag(w) Q^T`: `X(lambda) = Q diag(1 / (w + lambda)) Q^T B`. The `GramLinearAlgebra`
/// implementations call this with their rows of `Q` (all of it for LAPACK, the block-cyclic rows
/// of `pdsyevd`'s eigenvectors for ScaLAPACK), so both paths run the same arithmetic.
public enum RidgeGrid {
    /// `values`: all `n` eigenvalues (any order matching the columns of `Q`). `localVectors`: this
    /// rank's rows of `Q`, column-major with leading dimension `ld`; local row `li` is global row
    /// `globalRow(li)`. `rhs`: `B`, `n x columns` column-major, the same on every rank. Returns, per
    /// ridge, `X` (`n x columns`, column-major) on every rank. Collective over `communicator`.
    public static func solutions(values w: [Double], localVectors q: [Double], leadingDimension ld: Int, localRows: Int,
                                 globalRow: (Int) -> Int, communicator: Communicator, ridges: [Double], rhs: [Double],
                                 columns: Int) -> [[Double]] {
        let n = w.count
        precondition(rhs.count == n * columns, "RidgeGrid: \(rhs.count) right-hand-side values for \(n) x \(columns)")
        let rows = (0..<localRows).map(globalRow)
        // P = Q^T B: this rank's partial sums over its rows, added over ranks in rank order.
        var partial = [Double](repeating: 0, count: n * columns)
        q.withUnsafeBufferPointer { q in
            for c in 0..<columns {
                let b = rows.map { rhs[$0 + c * n] }
                for k in 0..<n {
                    var s = 0.0
                    let col = k * ld
                    for li in 0..<localRows { s += q[col + li] * b[li] }
                    partial[k + c * n] = s
                }
            }
        }
        var p = [Double](repeating: 0, count: n * columns)
        for part in communicator.allgather(partial.withUnsafeBytes { Array($0) }) {
            part.withUnsafeBytes { raw in
                let v = raw.bindMemory(to: Double.self)
                for e in 0..<(n * columns) { p[e] += v[e] }
            }
        }
        // X(lambda) rows on this rank: Q_local diag(1/(w + lambda)) P.
        var mine = [Double](repeating: 0, count: ridges.count * localRows * columns)
        q.withUnsafeBufferPointer { q in
            for (r, lambda) in ridges.enumerated() {
                for c in 0..<columns {
                    let base = (r * columns + c) * localRows
                    for k in 0..<n {
                        let coefficient = p[k + c * n] / (w[k] + lambda)
                        let col = k * ld
                        for li in 0..<localRows { mine[base + li] += q[col + li] * coefficient }
                    }
                }
            }
        }
        // Assemble by global row.
        let parts = communicator.allgather(mine.withUnsafeBytes { Array($0) })
        let allRows = communicator.allgather(rows.withUnsafeBytes { Array($0) })
        var out = [[Double]](repeating: [Double](repeating: 0, count: n * columns), count: ridges.count)
        for (part, rowBytes) in zip(parts, allRows) {
            let theirRows = rowBytes.withUnsafeBytes { Array($0.bindMemory(to: Int.self)) }
            let m = theirRows.count
            part.withUnsafeBytes { raw in
                let v = raw.bindMemory(to: Double.self)
                for r in ridges.indices {
                    for c in 0..<columns {
                        let base = (r * columns + c) * m
                        for li in 0..<m { out[r][theirRows[li] + c * n] = v[base + li] }
                    }
                }
            }
        }
        return out
    }
}

extension DistributedGram {
    /// The leading principal `mC x mC` submatrix (the first `m` examples), in the same block-cyclic
    /// layout (same block size and ranks: its rows are the first local rows of this one). Local.
    public func leading(examples m: Int) -> DistributedGram {
        precondition(m <= layout.examples, "leading: \(m) examples of \(layout.examples)")
        let sub = GramLayout(examples: m, classes: layout.classes, blockSize: layout.blockSize,
                             processes: layout.processes, rank: layout.rank)
        var out = DistributedGram(layout: sub, form: form)
        let ld = layout.leadingDimension, sld = sub.leadingDimension, rows = sub.localRows
        for j in 0..<sub.order {
            for li in 0..<rows { out.local[li + j * sld] = local[li + j * ld] }
        }
        return out
    }

    /// `A[rows, 0..<k] v` for every vector `v` (length `k <= rows.lowerBound`, so only the stored
    /// lower triangle is read), on every rank. Each row's dot product is computed by its owner in
    /// column order: bitwise the same for any rank count.
    public func lowerBlockProducts(rows: Range<Int>, vectors: [[Double]], _ communicator: Communicator) -> [[Double]] {
        let k = vectors.first?.count ?? 0
        precondition(k <= rows.lowerBound && rows.upperBound <= order, "lowerBlockProducts: block outside the lower triangle")
        let ld = layout.leadingDimension
        var owned: [Int] = [], values: [Double] = []
        for g in rows where layout.owner(ofBlock: g / layout.blockSize) == layout.rank {
            owned.append(g)
            let lr = layout.localRow(ofGlobal: g)
            for v in vectors {
                var s = 0.0
                for j in 0..<k { s += local[lr + j * ld] * v[j] }
                values.append(s)
            }
        }
        var out = [[Double]](repeating: [Double](repeating: 0, count: rows.count), count: vectors.count)
        let gs = communicator.allgather(owned.withUnsafeBytes { Array($0) })
        let vs = communicator.allgather(values.withUnsafeBytes { Array($0) })
        for (gBytes, vBytes) in zip(gs, vs) {
            let g = gBytes.withUnsafeBytes { Array($0.bindMemory(to: Int.self)) }
            let v = vBytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            for (i, row) in g.enumerated() {
                for q in vectors.indices { out[q][row - rows.lowerBound] = v[i * vectors.count + q] }
            }
        }
        return out
    }

    /// `A v` of the symmetric matrix from its lower triangle, on every rank (partials per rank added
    /// in rank order).
    public func symmetricProduct(_ v: [Double], _ communicator: Communicator) -> [Double] {
        precondition(v.count == order, "symmetricProduct: vector of \(v.count) for order \(order)")
        let ld = layout.leadingDimension
        var y = [Double](repeating: 0, count: order)
        for b in layout.ownBlocks {
            for g in layout.rows(ofBlock: b) {
                let lr = layout.localRow(ofGlobal: g)
                var s = 0.0
                for j in 0..<g {
                    let a = local[lr + j * ld]
                    s += a * v[j]
                    y[j] += a * v[g]
                }
                y[g] += s + local[lr + g * ld] * v[g]
            }
        }
        var out = [Double](repeating: 0, count: order)
        for part in communicator.allgather(y.withUnsafeBytes { Array($0) }) {
            part.withUnsafeBytes { raw in
                let p = raw.bindMemory(to: Double.self)
                for i in 0..<order { out[i] += p[i] }
            }
        }
        return out
    }
}

/// The two kernel machines of `NTKAnalysis.selectedMachine`.
public enum KernelMachineForm: String, CaseIterable, Sendable, Codable {
    /// `f_t(X*) + K* (K + lambda I)^-1 (Y - f_t(X))`: the linearised network trained to convergence
    /// on the machine's examples with squared loss (Lee et al. 2019), starting from `f_t`.
    case offset
    /// `K* (K + lambda I)^-1 Y`: kernel ridge regression with the network's NTK as a fixed kernel
    /// (the "after kernel"), without the network's outputs.
    case kernel
}

/// One ridge of the grid on the held-out part.
public struct RidgeEvaluation: Sendable, Equatable {
    /// Relative to the Gram's mean diagonal, and absolute.
    public var relative: Double
    public var absolute: Double
    /// Mean over held-out examples of `sum_c (f_c - y_c)^2`, on 7 significant digits.
    public var heldOutLoss: Double
    public var heldOutError: Double
}

/// A kernel machine chosen on held-out examples and refitted on all of them.
public struct SelectedKernelMachine: Sendable {
    public var form: KernelMachineForm
    public var ridges: [RidgeEvaluation]
    /// Index into `ridges` of the chosen ridge (least held-out loss; ties: the larger ridge).
    public var chosen: Int
    public var trainCount: Int
    public var fitCount: Int
    /// On all `trainCount` examples after the refit: error and RMS residual `sqrt(mean (Y - f)^2)`
    /// (7 significant digits).
    public var trainError: Double
    public var trainResidual: Double
    public var testError: Double
}

/// `x` on 7 significant digits. The eigen- and Cholesky solvers' last bits depend on the process
/// grid, and at the smallest ridges the solutions amplify them by the condition number (up to
/// ~1e9 for a near-singular Gram at ridge 1e-6 of the mean diagonal: ~1e-7 relative); reported
/// losses and residuals are rounded far above that so tables do not depend on the rank count.
func significant(_ x: Double, digits: Int = 7) -> Double {
    guard x.isFinite, x != 0 else { return x }
    let quantum = pow(10, log10(abs(x)).rounded(.down) - Double(digits - 1))
    return (x / quantum).rounded() * quantum + 0
}

extension NTKAnalysis {
    /// The NTK kernel machines of `network` on `data`, whose first `fitCount` examples are the fit
    /// part and the rest the held-out part (whole examples per class in both, in the caller's order):
    ///
    /// 1. the Gram `K` of all of `data` (one build); `m = tr K / (nC)`;
    /// 2. one eigendecomposition of the fit part's Gram `K_FF` gives, for every `lambda = r m` of
    ///    `relativeRidges`, the fit `alpha = (K_FF + lambda I)^-1 B_F` of both forms (`B = Y - f_t(X)`
    ///    with offset, `B = Y` without); held-out predictions `[f_t(X_H) +] K_HF alpha`, scored by
    ///    squared loss against one-hot `Y_H`;
    /// 3. per form, the least-loss ridge is refitted on all of `data` (Cholesky), and scored on its
    ///    training examples (`[f_t(X) +] K alpha`) and on `test` (`[f_t(X*) +] J(X*) J(X)^T alpha`,
    ///    without forming `K(X*, X)`).
    ///
    /// Collective; the same record on every rank.
    public func selectedMachine(_ network: Network<Float>, data: Dataset, fitCount: Int, test: Dataset,
                                relativeRidges: [Double]) throws -> [SelectedKernelMachine] {
        let c = network.classes, n = data.count, nf = fitCount
        precondition(nf > 0 && nf < n, "selectedMachine: fit part of \(nf) of \(n) examples")
        let (gram, _) = try self.gram(network, probe: data)
        let meanDiagonal = gram.trace(communicator) / Double(gram.order)
        let ridges = relativeRidges.map { $0 * meanDiagonal }
        let runner = BatchRunner(network: network)
        let f = runner.outputs(data, tangent: nil)
        func onehot(_ i: Int, _ k: Int) -> Double { data.label(i) == k ? 1 : 0 }
        let forms = KernelMachineForm.allCases
        func target(_ form: KernelMachineForm, _ i: Int, _ k: Int) -> Double {
            form == .offset ? onehot(i, k) - f[i * c + k] : onehot(i, k)
        }
        // 2. Every ridge on the held-out part.
        let fc = nf * c, hc = (n - nf) * c
        var rhs = [Double](repeating: 0, count: fc * forms.count)
        for (q, form) in forms.enumerated() { for i in 0..<nf { for k in 0..<c { rhs[q * fc + i * c + k] = target(form, i, k) } } }
        let fits = try algebra.ridgeSolutions(gram.leading(examples: nf), ridges: ridges, rhs: rhs, columns: forms.count)
        var vectors: [[Double]] = []
        for x in fits { for q in forms.indices { vectors.append(Array(x[(q * fc)..<((q + 1) * fc)])) } }
        let held = gram.lowerBlockProducts(rows: fc..<(fc + hc), vectors: vectors, communicator)
        func score(_ form: KernelMachineForm, _ kv: [Double], examples: Range<Int>, offsetRow: Int) -> (loss: Double, error: Double) {
            var loss = 0.0, wrong = 0
            for i in examples {
                var best = 0, bestValue = -Double.infinity
                for k in 0..<c {
                    let pred = (form == .offset ? f[i * c + k] : 0) + kv[(i - offsetRow) * c + k]
                    loss += (pred - onehot(i, k)) * (pred - onehot(i, k))
                    if pred > bestValue { bestValue = pred; best = k }
                }
                if best != data.label(i) { wrong += 1 }
            }
            return (loss / Double(examples.count), Double(wrong) / Double(examples.count))
        }
        var out: [SelectedKernelMachine] = []
        for (q, form) in forms.enumerated() {
            let evaluations = ridges.indices.map { r -> RidgeEvaluation in
                let s = score(form, held[r * forms.count + q], examples: nf..<n, offsetRow: nf)
                return RidgeEvaluation(relative: relativeRidges[r], absolute: ridges[r], heldOutLoss: significant(s.loss),
                                       heldOutError: s.error)
            }
            var chosen = 0
            for r in evaluations.indices where evaluations[r].heldOutLoss <= evaluations[chosen].heldOutLoss { chosen = r }
            // 3. Refit on all examples at the chosen ridge.
            let b = (0..<(n * c)).map { target(form, $0 / c, $0 % c) }
            let alpha = try algebra.solve(gram, ridge: ridges[chosen], rhs: b, columns: 1)
            let ka = gram.symmetricProduct(alpha, communicator)
            let train = score(form, ka, examples: 0..<n, offsetRow: 0)
            let v = runner.vjp(data, cotangent: alpha)
            let predictions = runner.outputs(test, tangent: v, includeOutputs: form == .offset)
            var wrong = 0
            for i in 0..<test.count {
                var best = 0
                for k in 1..<c where predictions[i * c + k] > predictions[i * c + best] { best = k }
                if best != test.label(i) { wrong += 1 }
            }
            out.append(SelectedKernelMachine(
                form: form, ridges: evaluations, chosen: chosen, trainCount: n, fitCount: nf, trainError: train.error,
                trainResidual: significant((train.loss / Double(c)).squareRoot()),
                testError: Double(wrong) / Double(max(1, test.count))))
        }
        return out
    }
}
