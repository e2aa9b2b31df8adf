/// Eigenvalues (descending) and the eigenvectors of the largest ones.
public struct GramEigen: Sendable {
    /// All `n` eigenvalues, largest first.
    public var values: [Double]
    /// Unit eigenvectors of `values[0..<k]`, each of length `n` (global, on every rank).
    public var vectors: [[Double]]
    public init(values: [Double], vectors: [[Double]]) { self.values = values; self.vectors = vectors }
}

/// The dense linear algebra the NTK analyses need on a `DistributedGram`, collective over the
/// Gram's ranks. `Core` has the one-process LAPACK implementation; `Parallel` provides ScaLAPACK on
/// a `p x 1` BLACS grid. Both read only the lower triangle.
public protocol GramLinearAlgebra {
    /// Eigen-decomposition of the symmetric Gram; `vectors` = how many leading eigenvectors to return.
    func eigen(_ gram: DistributedGram, vectors k: Int) throws -> GramEigen
    /// Solves `(K + ridge I) X = B` by Cholesky; `rhs` is `B`, `order x columns` column-major and the
    /// same on every rank; returns `X` likewise on every rank.
    func solve(_ gram: DistributedGram, ridge: Double, rhs: [Double], columns: Int) throws -> [Double]
    /// `(K + ridge I)^-1 B` for every ridge of `ridges` from one eigendecomposition (`RidgeGrid`);
    /// `rhs` as for `solve`; returns one `X` per ridge, on every rank.
    func ridgeSolutions(_ gram: DistributedGram, ridges: [Double], rhs: [Double], columns: Int) throws -> [[Double]]
}

/// `GramLinearAlgebra` for a Gram held by one process (`dsyevd`, `dpotrf`/`dpotrs`).
public struct LAPACKGramAlgebra: GramLinearAlgebra {
    public init() {}

    private func check(_ gram: DistributedGram) throws {
        guard gram.layout.processes == 1 else {
            throw NTKError("LAPACKGramAlgebra: the Gram is spread over \(gram.layout.processes) ranks. "
                           + "Fix: use the ScaLAPACK implementation (Parallel.ScaLAPACKGramAlgebra) for more than one rank")
        }
    }

    public func eigen(_ gram: DistributedGram, vectors k: Int) throws -> GramEigen {
        try check(gram)
        let n = gram.order
        let (w, z) = try LAPACK.symmetricEigen(gram.local, n: n, vectors: k > 0)
        let top = min(k, n)
        return GramEigen(values: w.reversed(),
                         vectors: (0..<top).map { q in Array(z[((n - 1 - q) * n)..<((n - q) * n)]) })
    }

    public func ridgeSolutions(_ gram: DistributedGram, ridges: [Double], rhs: [Double], columns: Int) throws -> [[Double]] {
        try check(gram)
        let n = gram.order
        let (w, z) = try LAPACK.symmetricEigen(gram.local, n: n, vectors: true)
        return RidgeGrid.solutions(values: w, localVectors: z, leadingDimension: max(1, n), localRows: n, globalRow: { $0 },
                                   communicator: SerialCommunicator(), ridges: ridges, rhs: rhs, columns: columns)
    }

    public func solve(_ gram: DistributedGram, ridge: Double, rhs: [Double], columns: Int) throws -> [Double] {
        try check(gram)
        let n = gram.order
        var a = gram.local
        for i in 0..<n { a[i + i * n] += ridge }
        return try LAPACK.choleskySolve(a, n: n, rhs, nrhs: columns)
    }
}
