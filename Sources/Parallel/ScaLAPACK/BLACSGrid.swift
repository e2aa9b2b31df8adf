import Core
import MPIShim

/// A BLACS process grid, a failed BLACS/ScaLAPACK set-up, or misuse of a distributed matrix.
public struct BLACSError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A `rows x cols` BLACS process grid over the ranks of an MPI communicator, in row-major order:
/// rank `r` sits at `(r / cols, r mod cols)`.
///
/// ScaLAPACK routines need the grid's `context`. The context is released (`Cblacs_gridexit`) by
/// `close()` or on deinit; both are collective in spirit, so every rank must drop its grid at the
/// same point of the program.
public final class BLACSGrid {
    /// The ranks of the grid; distributed reductions (Frobenius products) run on it.
    public let communicator: MPICommunicator
    /// Grid shape `p x q`, `p <= q`, `p * q == communicator.size`.
    public let rows: Int
    public let cols: Int
    /// This rank's grid coordinates.
    public let myRow: Int
    public let myCol: Int
    /// BLACS context; `-1` after `close()`.
    public private(set) var context: Int32

    /// A near-square grid (`nearSquareGrid`) over `communicator`, which must be an `MPICommunicator`,
    /// or any 1-process communicator (then the grid runs on `MPI_COMM_SELF`). Collective.
    public convenience init(_ communicator: Communicator) throws {
        let mpi: MPICommunicator
        if let c = communicator as? MPICommunicator {
            mpi = c
        } else if communicator.size == 1 {
            mpi = MPICommunicator.selfOnly()
        } else {
            throw BLACSError("BLACSGrid: a \(communicator.size)-rank \(type(of: communicator)) is not "
                             + "an MPICommunicator; ScaLAPACK needs MPI")
        }
        let shape = nearSquareGrid(size: mpi.size)
        try self.init(communicator: mpi, rows: shape.rows, cols: shape.cols)
    }

    /// A `rows x cols` grid over all ranks of `communicator` (`rows * cols == size`). Collective.
    public init(communicator: MPICommunicator, rows: Int, cols: Int) throws {
        guard rows >= 1, cols >= 1, rows * cols == communicator.size else {
            throw BLACSError("BLACSGrid: a \(rows) x \(cols) grid does not cover \(communicator.size) ranks")
        }
        self.communicator = communicator
        self.rows = rows
        self.cols = cols
        // A BLACS system handle names the MPI communicator; gridinit derives the grid's own
        // communicator from it, after which the handle can be released.
        let system = Csys2blacs_handle(communicator.handle)
        var ctx = system
        var order: [CChar] = Array("R".utf8CString)
        Cblacs_gridinit(&ctx, &order, Int32(rows), Int32(cols))
        Cfree_blacs_system_handle(system)
        var p: Int32 = 0, q: Int32 = 0, r: Int32 = 0, c: Int32 = 0
        Cblacs_gridinfo(ctx, &p, &q, &r, &c)
        context = ctx
        myRow = Int(r)
        myCol = Int(c)
        let rank = communicator.rank
        guard ctx >= 0, p == rows, q == cols, myRow == rank / cols, myCol == rank % cols else {
            throw BLACSError("Cblacs_gridinit(\(rows) x \(cols)) gave context \(ctx), grid \(p) x \(q), "
                             + "coordinates (\(r), \(c)) for rank \(rank); expected row-major placement")
        }
    }

    /// Releases the BLACS context. Idempotent.
    public func close() {
        guard context >= 0 else { return }
        if !MPIEnvironment.isFinalized { Cblacs_gridexit(context) }
        context = -1
    }

    deinit { close() }

    /// `communicator.rank` of the process at grid coordinates `(row, col)`.
    public func rank(row: Int, col: Int) -> Int { row * cols + col }

    /// A 1 x 1 grid holding only `root` (`Cblacs_gridmap`): its context on `root`, `-1` elsewhere.
    /// Collective over the grid's communicator; release with `Cblacs_gridexit` on `root`.
    func singleProcessContext(root: Int) -> Int32 {
        let system = Csys2blacs_handle(communicator.handle)
        var ctx = system
        var map: [Int32] = [Int32(root)]
        Cblacs_gridmap(&ctx, &map, 1, 1, 1)
        Cfree_blacs_system_handle(system)
        return communicator.rank == root ? ctx : -1
    }
}
