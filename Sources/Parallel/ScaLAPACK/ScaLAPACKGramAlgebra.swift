import Core

/// `GramLinearAlgebra` with ScaLAPACK on the `p x 1` BLACS grid of the Gram's ranks: the Gram's
/// local rows are exactly a `DistributedMatrix`'s local part there (block-cyclic rows, all columns,
/// square `nb` blocks, `LLD` = local rows), so they are handed to `pdsyevd`/`pdpotrf` as they are.
public final class ScaLAPACKGramAlgebra: GramLinearAlgebra {
    public let grid: BLACSGrid

    /// A `p x 1` grid over all ranks of `communicator` (rank `r` is process row `r`). Collective.
    public init(communicator: MPICommunicator) throws {
        grid = try BLACSGrid(communicator: communicator, rows: communicator.size, cols: 1)
    }

    private func matrix(_ gram: DistributedGram, columns: Int? = nil) throws -> DistributedMatrix {
        let l = gram.layout
        guard l.processes == grid.rows, l.rank == grid.myRow else {
            throw BLACSError("ScaLAPACKGramAlgebra: Gram laid out for rank \(l.rank) of \(l.processes), grid is "
                             + "process row \(grid.myRow) of \(grid.rows)")
        }
        return try DistributedMatrix(grid: grid, rows: l.order, cols: columns ?? l.order, blockSize: l.blockSize)
    }

    public func eigen(_ gram: DistributedGram, vectors k: Int) throws -> GramEigen {
        var a = try matrix(gram)
        precondition(a.local.count == gram.local.count, "ScaLAPACKGramAlgebra: local sizes differ")
        a.local = gram.local
        var z = try DistributedMatrix(like: a)
        let w = try a.symmetricEigen(vectors: &z)
        let n = gram.order, top = min(k, n)
        guard top > 0 else { return GramEigen(values: w.reversed(), vectors: []) }
        // Each rank sends its rows of the top-k columns (n-1, n-2, ...); assemble by global row.
        var mine: [Double] = []
        for q in 0..<top {
            let col = n - 1 - q
            mine += z.local[(col * z.leadingDimension)..<(col * z.leadingDimension + z.localRows)]
        }
        let parts = grid.communicator.allgather(mine.withUnsafeBytes { Array($0) })
        var vectors = [[Double]](repeating: [Double](repeating: 0, count: n), count: top)
        for (p, part) in parts.enumerated() {
            let values = part.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let rows = z.rowMap.localCount(process: p)
            for q in 0..<top {
                for li in 0..<rows { vectors[q][z.rowMap.globalIndex(ofLocal: li, process: p)] = values[q * rows + li] }
            }
        }
        return GramEigen(values: w.reversed(), vectors: vectors)
    }

    public func ridgeSolutions(_ gram: DistributedGram, ridges: [Double], rhs: [Double], columns: Int) throws -> [[Double]] {
        var a = try matrix(gram)
        a.local = gram.local
        var z = try DistributedMatrix(like: a)
        let w = try a.symmetricEigen(vectors: &z)
        let row = grid.myRow, map = z.rowMap
        return RidgeGrid.solutions(values: w, localVectors: z.local, leadingDimension: z.leadingDimension,
                                   localRows: z.localRows, globalRow: { map.globalIndex(ofLocal: $0, process: row) },
                                   communicator: grid.communicator, ridges: ridges, rhs: rhs, columns: columns)
    }

    public func solve(_ gram: DistributedGram, ridge: Double, rhs: [Double], columns: Int) throws -> [Double] {
        let n = gram.order
        precondition(rhs.count == n * columns, "solve: \(rhs.count) right-hand-side values for \(n) x \(columns)")
        var a = try matrix(gram)
        a.local = gram.local
        let ld = a.leadingDimension
        for li in 0..<a.localRows {
            let g = a.rowMap.globalIndex(ofLocal: li, process: grid.myRow)
            a.local[li + g * ld] += ridge
        }
        try a.choleskyFactorize()
        var b = try matrix(gram, columns: columns)
        b.fill { i, j in rhs[i + j * n] }
        try a.choleskySolve(&b)
        var mine: [Double] = []
        for j in 0..<columns { mine += b.local[(j * b.leadingDimension)..<(j * b.leadingDimension + b.localRows)] }
        let parts = grid.communicator.allgather(mine.withUnsafeBytes { Array($0) })
        var x = [Double](repeating: 0, count: n * columns)
        for (p, part) in parts.enumerated() {
            let values = part.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let rows = b.rowMap.localCount(process: p)
            for j in 0..<columns {
                for li in 0..<rows { x[b.rowMap.globalIndex(ofLocal: li, process: p) + j * n] = values[j * rows + li] }
            }
        }
        return x
    }
}
