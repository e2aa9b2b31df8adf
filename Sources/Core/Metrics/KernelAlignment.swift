// Kernel–target alignment of an NTK Gram (docs/metrics.md, `ntk_spectrum.target_alignment`).

/// Kernel–target alignment of one-hot labels `Y` (Cristianini et al. 2002, uncentred):
/// `A = <K, T>_F / (||K||_F ||T||_F)`, on both forms.
public struct NTKAlignment: Sendable, Codable, Equatable {
    /// Full `mC x mC` Gram, `T = y y^T` with `y` the `mC` vector of one-hot entries
    /// (`y[i*C + c] = 1` iff `c = label_i`): `<K, T> = sum_ij K[(i,y_i),(j,y_j)]`, `||T|| = m`.
    public var full: Double
    /// Traced `m x m` kernel, `T = Y Y^T` (`Y` the `m x C` one-hot matrix, `T_ij = [y_i = y_j]`),
    /// `||T|| = sqrt(sum_c m_c^2)`.
    public var traced: Double
}

extension NTKAnalysis {
    /// Kernel–target alignment of the one-hot `labels` (one per probe example), both forms.
    public func alignment(_ gram: DistributedGram, labels: [Int]) -> NTKAlignment {
        let c = gram.layout.classes
        precondition(labels.count == gram.layout.examples, "alignment: \(labels.count) labels for \(gram.layout.examples) examples")
        precondition(gram.form == "full", "alignment: pass the full Gram (it traces it itself)")
        // Full: sum of K[(i,y_i),(j,y_j)] and ||K||^2.
        let full = gram.symmetricSums(communicator, count: 2) { i, j, a, _, s in
            if labels[i / c] == i % c && labels[j / c] == j % c { s[0] += a }
            s[1] += a * a
        }
        let traced = gram.traced()
        let t = traced.symmetricSums(communicator, count: 2) { i, j, a, _, s in
            if labels[i] == labels[j] { s[0] += a }
            s[1] += a * a
        }
        var counts = [Int](repeating: 0, count: c)
        for y in labels { counts[y] += 1 }
        let targetNorm = Double(counts.reduce(0) { $0 + $1 * $1 }).squareRoot()
        return NTKAlignment(full: full[0] / (full[1].squareRoot() * Double(labels.count)),
                            traced: t[0] / (t[1].squareRoot() * targetNorm))
    }
}
