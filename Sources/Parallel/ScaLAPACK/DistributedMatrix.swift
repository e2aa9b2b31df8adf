import CLinAlg
import Core
import MPIShim

/// A dense `rows x cols` `Double` matrix in ScaLAPACK's 2-D block-cyclic layout on a `BLACSGrid`.
///
/// Square `blockSize x blockSize` blocks; block `(I, J)` lives on grid process
/// `(I mod p, J mod q)` (first block on process `(0, 0)`). Each rank stores its
/// `localRows x localCols` part column-major in `local` with leading dimension
/// `leadingDimension = max(1, localRows)`: local element `(li, lj)` is `local[li + lj * lld]` and is
/// global element `(rowMap.globalIndex(ofLocal: li, process: myRow),
/// colMap.globalIndex(ofLocal: lj, process: myCol))`.
///
/// Operations are collective over the grid: every rank calls them in the same order.
public struct DistributedMatrix {
    public let grid: BLACSGrid
    public let rows: Int
    public let cols: Int
    public let blockSize: Int
    /// Distribution of the row indices over the grid's process rows, and of the columns over its
    /// process columns.
    public let rowMap: BlockCyclic
    public let colMap: BlockCyclic
    public let localRows: Int
    public let localCols: Int
    public let leadingDimension: Int
    /// This rank's part, column-major, `leadingDimension * localCols` elements.
    public var local: [Double]
    /// ScaLAPACK array descriptor (`DESCA`, 9 integers).
    public let descriptor: [Int32]
    /// True after `choleskyFactorize()`: the lower triangle holds `L` with `A = L L^T`.
    public private(set) var isCholeskyFactor = false

    /// A zero matrix. Collective only in that every rank must create it with the same arguments.
    public init(grid: BLACSGrid, rows: Int, cols: Int, blockSize: Int) throws {
        guard rows >= 0, cols >= 0, blockSize >= 1 else {
            throw BLACSError("DistributedMatrix: invalid shape \(rows) x \(cols), block \(blockSize)")
        }
        guard grid.context >= 0 else { throw BLACSError("DistributedMatrix: the BLACS grid is closed") }
        self.grid = grid
        self.rows = rows
        self.cols = cols
        self.blockSize = blockSize
        rowMap = BlockCyclic(count: rows, blockSize: blockSize, processes: grid.rows)
        colMap = BlockCyclic(count: cols, blockSize: blockSize, processes: grid.cols)
        localRows = rowMap.localCount(process: grid.myRow)
        localCols = colMap.localCount(process: grid.myCol)
        leadingDimension = max(1, localRows)
        local = [Double](repeating: 0, count: leadingDimension * localCols)
        var desc = [Int32](repeating: 0, count: 9)
        var m = Int32(rows), n = Int32(cols), mb = Int32(blockSize), nb = Int32(blockSize)
        var zero: Int32 = 0, ctx = grid.context, lld = Int32(leadingDimension), info: Int32 = 0
        descinit_(&desc, &m, &n, &mb, &nb, &zero, &zero, &ctx, &lld, &info)
        guard info == 0 else { throw LAPACKError(routine: "descinit_", info: Int(info)) }
        descriptor = desc
    }

    /// A zero matrix with the layout of `other`.
    public init(like other: DistributedMatrix) throws {
        try self.init(grid: other.grid, rows: other.rows, cols: other.cols, blockSize: other.blockSize)
    }

    /// True if `other` has the same grid, shape and blocking, i.e. the same local layout.
    public func hasSameLayout(as other: DistributedMatrix) -> Bool {
        grid === other.grid && rows == other.rows && cols == other.cols && blockSize == other.blockSize
    }

    /// Global indices `(i, j)` of local element `(li, lj)`.
    @inline(__always)
    public func globalIndex(localRow li: Int, localCol lj: Int) -> (row: Int, col: Int) {
        (rowMap.globalIndex(ofLocal: li, process: grid.myRow),
         colMap.globalIndex(ofLocal: lj, process: grid.myCol))
    }

    /// Where global element `(i, j)` lives: the grid communicator's rank that stores it and its
    /// offset in that rank's `local` (whose leading dimension is that rank's, not necessarily ours).
    public func location(ofGlobalRow i: Int, col j: Int) -> (rank: Int, offset: Int) {
        precondition((0..<rows).contains(i) && (0..<cols).contains(j),
                     "location: (\(i), \(j)) outside \(rows) x \(cols)")
        let pr = rowMap.owner(ofGlobal: i), pc = colMap.owner(ofGlobal: j)
        let ld = max(1, rowMap.localCount(process: pr))
        return (grid.rank(row: pr, col: pc), rowMap.localIndex(ofGlobal: i) + colMap.localIndex(ofGlobal: j) * ld)
    }

    /// Sets every element to `f(i, j)` of its global indices; each rank evaluates its own elements.
    public mutating func fill(_ f: (_ row: Int, _ col: Int) -> Double) {
        isCholeskyFactor = false
        let (lr, lc, ld) = (localRows, localCols, leadingDimension)
        let (rm, cm, myRow, myCol) = (rowMap, colMap, grid.myRow, grid.myCol)
        local.withUnsafeMutableBufferPointer { a in
            for lj in 0..<lc {
                let j = cm.globalIndex(ofLocal: lj, process: myCol)
                for li in 0..<lr {
                    a[li + lj * ld] = f(rm.globalIndex(ofLocal: li, process: myRow), j)
                }
            }
        }
    }

    // MARK: Reductions

    /// Frobenius inner product `<A, B>_F = sum_ij A_ij B_ij` (local dot, then allreduce).
    /// `other` must have the same layout.
    public func frobeniusInner(_ other: DistributedMatrix) -> Double {
        precondition(hasSameLayout(as: other), "frobeniusInner: layouts differ")
        var dot = 0.0
        if localRows > 0 && localCols > 0 {
            // lld == localRows here, so the local part is one contiguous run.
            let n = Int32(localRows * localCols)
            dot = local.withUnsafeBufferPointer { a in
                other.local.withUnsafeBufferPointer { b in cblas_ddot(n, a.baseAddress, 1, b.baseAddress, 1) }
            }
        }
        return grid.communicator.allreduce(dot, .sum)
    }

    /// `||A||_F = sqrt(<A, A>_F)`.
    public func frobeniusNorm() -> Double { frobeniusInner(self).squareRoot() }

    // MARK: Redistribution

    /// The whole matrix, column-major (`rows * cols`), on `root` of the grid's communicator; `nil`
    /// elsewhere. `pdgemr2d` copies into a 1 x 1 grid holding `root`; the other ranks pass a
    /// descriptor with context `-1`, as ScaLAPACK requires of processes outside the target grid.
    /// Meant for small matrices (checks, reports).
    public func gather(root: Int = 0) throws -> [Double]? {
        let comm = grid.communicator
        guard (0..<comm.size).contains(root) else {
            throw BLACSError("gather: root \(root) out of range 0..<\(comm.size)")
        }
        let target = grid.singleProcessContext(root: root)
        let isRoot = comm.rank == root
        var full = [Double](repeating: 0, count: isRoot ? max(1, rows * cols) : 1)
        var descB = [Int32](repeating: 0, count: 9)
        var m = Int32(rows), n = Int32(cols), one: Int32 = 1, ctx = grid.context
        if isRoot {
            var mb = max(1, m), nb = max(1, n), zero: Int32 = 0, lld = max(1, m), info: Int32 = 0
            var tctx = target
            descinit_(&descB, &m, &n, &mb, &nb, &zero, &zero, &tctx, &lld, &info)
            guard info == 0 else {
                Cblacs_gridexit(target)
                throw LAPACKError(routine: "descinit_ (gather target)", info: Int(info))
            }
        } else {
            descB = [1, -1, m, n, max(1, m), max(1, n), 0, 0, 1]
        }
        if rows > 0 && cols > 0 {
            var descA = descriptor
            local.withUnsafeBufferPointer { a in
                pdgemr2d_(&m, &n, a.baseAddress, &one, &one, &descA, &full, &one, &one, &descB, &ctx)
            }
        }
        guard isRoot else { return nil }
        Cblacs_gridexit(target)
        return rows * cols == 0 ? [] : full
    }

    // MARK: Factorisations

    /// Eigenvalues of this symmetric matrix, ascending (`pdsyevd`, lower triangle read).
    /// Overwrites the matrix.
    public mutating func symmetricEigenvalues() throws -> [Double] {
        var z = try DistributedMatrix(like: self)
        return try symmetricEigen(vectors: &z)
    }

    /// Eigen-decomposition `A = Z diag(w) Z^T` of this symmetric `n x n` matrix (`pdsyevd`, lower
    /// triangle read; `pdsyevd` always computes `Z`). Overwrites the matrix.
    ///
    /// - Parameter z: receives the orthonormal eigenvectors, column `k` for `w[k]`; same layout.
    /// - Returns: `w`, the `n` eigenvalues ascending, identical on every rank.
    public mutating func symmetricEigen(vectors z: inout DistributedMatrix) throws -> [Double] {
        guard rows == cols else { throw BLACSError("pdsyevd: matrix is \(rows) x \(cols), not square") }
        guard hasSameLayout(as: z) else { throw BLACSError("pdsyevd: eigenvector matrix layout differs") }
        isCholeskyFactor = false
        var w = [Double](repeating: 0, count: max(1, rows))
        if rows == 0 { return [] }
        var n = Int32(rows), one: Int32 = 1, info: Int32 = 0
        var descA = descriptor, descZ = z.descriptor

        // Workspace query: lwork = liwork = -1 returns the optimal sizes in work[0], iwork[0].
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery = [Double](repeating: 0, count: 1), iworkQuery = [Int32](repeating: 0, count: 1)
        pdsyevd_("V", "L", &n, &local, &one, &one, &descA, &w, &z.local, &one, &one, &descZ,
                 &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1)
        guard info == 0 else { throw LAPACKError(routine: "pdsyevd_ (workspace query)", info: Int(info)) }

        lwork = Int32(max(Int(workQuery[0].rounded(.up)),
                          Self.pdsyevdInnerWorkspace(n: rows, nb: blockSize, myRow: grid.myRow,
                                                     myCol: grid.myCol, nprow: grid.rows, npcol: grid.cols)))
        liwork = max(1, iworkQuery[0])
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        pdsyevd_("V", "L", &n, &local, &one, &one, &descA, &w, &z.local, &one, &one, &descZ,
                 &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else {
            throw LAPACKError(routine: "pdsyevd_", info: Int(info),
                              detail: info > 0 ? "eigenvalue computation did not converge" : "")
        }
        // W is documented as global, but when one block holds the whole matrix (n <= nb) only its
        // owner, process (0, 0), returns the eigenvalues; the others keep the tridiagonal's diagonal.
        grid.communicator.broadcast(&w, root: grid.rank(row: 0, col: 0))
        return w
    }

    /// Workspace `pdsyevd` needs for the inner routines its query (ScaLAPACK 2.2.1) under-counts when
    /// the block size is large against `n / p`: both get the work array minus its first `2n` entries.
    ///
    /// - `PDORMTR('L', 'L')`: `max(nb(nb-1)/2, (mpc0 + nqc0) nb) + nb^2`, where `mpc0` counts the local
    ///   rows of `Z(2:n, :)` (row offset 1 in its first block) and `nqc0` the local columns of `Z`.
    /// - `PDLASRT` (inside `PDSTEDC`): `max(n, np (nb + nq))`, `np x nq` the local part of `Z`.
    /// Without this, `pdsyevd` prints "PDORMTR parameter number 16 had an illegal value" and returns
    /// `info = 0` with wrong eigenvectors and eigenvalues.
    static func pdsyevdInnerWorkspace(n: Int, nb: Int, myRow: Int, myCol: Int, nprow: Int, npcol: Int) -> Int {
        guard n > 0 else { return 1 }
        let rowOffset = 1 % nb                       // IROFFC of row 2 (global index 1)
        let firstRowOwner = (1 / nb) % nprow         // ICROW
        let mpc0 = BlockCyclic(count: n - 1 + rowOffset, blockSize: nb, processes: nprow,
                               source: firstRowOwner).localCount(process: myRow)
        let nqc0 = BlockCyclic(count: n, blockSize: nb, processes: npcol).localCount(process: myCol)
        let ormtr = max(nb * (nb - 1) / 2, (mpc0 + nqc0) * nb) + nb * nb
        let np = BlockCyclic(count: n, blockSize: nb, processes: nprow).localCount(process: myRow)
        let lasrt = max(n, np * (nb + nqc0))
        return 2 * n + max(ormtr, lasrt)
    }

    /// Cholesky factorisation `A = L L^T` of this symmetric positive definite matrix in place
    /// (`pdpotrf`, lower triangle read and overwritten by `L`).
    public mutating func choleskyFactorize() throws {
        guard rows == cols else { throw BLACSError("pdpotrf: matrix is \(rows) x \(cols), not square") }
        var n = Int32(rows), one: Int32 = 1, info: Int32 = 0, descA = descriptor
        if rows > 0 {
            pdpotrf_("L", &n, &local, &one, &one, &descA, &info, 1)
        }
        guard info == 0 else {
            throw LAPACKError(routine: "pdpotrf_", info: Int(info),
                              detail: info > 0 ? "leading minor of order \(info) is not positive definite" : "")
        }
        isCholeskyFactor = true
    }

    /// Solves `A X = B` in place of `b` (`n x nrhs`, same grid and block size) with the factor from
    /// `choleskyFactorize()` (`pdpotrs`).
    public func choleskySolve(_ b: inout DistributedMatrix) throws {
        guard isCholeskyFactor else { throw BLACSError("pdpotrs: call choleskyFactorize() first") }
        guard b.grid === grid, b.rows == rows, b.blockSize == blockSize else {
            throw BLACSError("pdpotrs: right-hand side \(b.rows) x \(b.cols) (block \(b.blockSize)) does not "
                             + "match the \(rows) x \(cols) factor (block \(blockSize)) on the same grid")
        }
        var n = Int32(rows), nrhs = Int32(b.cols), one: Int32 = 1, info: Int32 = 0
        var descA = descriptor, descB = b.descriptor
        if rows > 0 && b.cols > 0 {
            local.withUnsafeBufferPointer { a in
                pdpotrs_("L", &n, &nrhs, a.baseAddress, &one, &one, &descA, &b.local, &one, &one, &descB,
                         &info, 1)
            }
        }
        guard info == 0 else { throw LAPACKError(routine: "pdpotrs_", info: Int(info)) }
    }
}
