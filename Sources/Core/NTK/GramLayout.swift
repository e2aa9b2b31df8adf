/// How the rows of an `mC x mC` empirical-NTK Gram are spread over a `p x 1` process grid.
///
/// Row `i*C + c` is logit `c` of probe example `i` (example-major). Rows are cut into blocks of
/// `blockSize` (a multiple of `C`, so the `C` rows of an example never straddle two blocks) and
/// dealt block-cyclically over the `p` ranks (`BlockCyclic`); each rank stores all `mC` columns of
/// its rows. This is exactly ScaLAPACK's layout for a `p x 1` grid with square `blockSize` blocks,
/// so the local array can go to `pdsyevd`/`pdpotrf` as it is.
///
/// Tiles: block row `I` x block column `J`. The Gram builder computes the tiles with `J <= I`; only
/// the lower triangle (column <= row) is meaningful and read by anything here. LAPACK and ScaLAPACK read
/// the lower triangle (`uplo = 'L'`); `DistributedGram.gatherFull` mirrors it.
public struct GramLayout: Hashable, Sendable {
    /// Probe examples `m`.
    public let examples: Int
    /// Logits per example `C`.
    public let classes: Int
    /// Rows per block `nb`, a multiple of `classes`.
    public let blockSize: Int
    /// Ranks `p` of the `p x 1` grid, and this rank.
    public let processes: Int
    public let rank: Int

    public init(examples: Int, classes: Int, blockSize: Int, processes: Int, rank: Int) {
        precondition(examples >= 1 && classes >= 1, "GramLayout: \(examples) examples, \(classes) classes")
        precondition(blockSize >= classes && blockSize % classes == 0,
                     "GramLayout: block size \(blockSize) is not a positive multiple of \(classes) classes")
        precondition(processes >= 1 && (0..<processes).contains(rank), "GramLayout: rank \(rank) of \(processes)")
        self.examples = examples; self.classes = classes; self.blockSize = blockSize
        self.processes = processes; self.rank = rank
    }

    /// Default rows per block: about 500 (`C * floor(500 / C)`). Fixed by `C` alone — never by the
    /// rank or thread count — because the tile shape decides the GEMM shape and hence the bits.
    public static func defaultBlockSize(classes: Int) -> Int { classes * max(1, 500 / classes) }

    /// Matrix order `mC`.
    public var order: Int { examples * classes }
    public var rowMap: BlockCyclic { BlockCyclic(count: order, blockSize: blockSize, processes: processes) }
    public var blockCount: Int { (order + blockSize - 1) / blockSize }
    /// Rows stored on `process` (ScaLAPACK `NUMROC`).
    public func localRows(process: Int) -> Int { rowMap.localCount(process: process) }
    public var localRows: Int { localRows(process: rank) }
    /// Leading dimension of the local column-major array (ScaLAPACK's `LLD`, at least 1).
    public var leadingDimension: Int { max(1, localRows) }
    /// Global rows of block `b`.
    public func rows(ofBlock b: Int) -> Range<Int> { (b * blockSize)..<min(order, (b + 1) * blockSize) }
    public func owner(ofBlock b: Int) -> Int { b % processes }
    /// Blocks stored on `process`, in local order.
    public func blocks(of process: Int) -> [Int] { Array(stride(from: process, to: blockCount, by: processes)) }
    public var ownBlocks: [Int] { blocks(of: rank) }
    /// Local row of global row `g` on its owner.
    public func localRow(ofGlobal g: Int) -> Int { rowMap.localIndex(ofGlobal: g) }
    /// Canonical index of lower tile `(I, J)`, `J <= I`: the order reductions add tiles in.
    public static func tileIndex(_ i: Int, _ j: Int) -> Int { i * (i + 1) / 2 + j }
    public var tileCount: Int { blockCount * (blockCount + 1) / 2 }

    /// The same layout for the logit-traced `m x m` kernel: blocks of `blockSize / C` examples, so
    /// example `i`'s traced row lives on the rank holding its `C` Gram rows.
    public var traced: GramLayout {
        GramLayout(examples: examples, classes: 1, blockSize: blockSize / classes, processes: processes, rank: rank)
    }
}

/// One rank's rows of a symmetric `mC x mC` Gram (`GramLayout`): column-major `Double`, leading
/// dimension `layout.leadingDimension`; element `(g, j)` of an owned global row `g` is
/// `local[layout.localRow(ofGlobal: g) + j * ld]`. Only the lower triangle `j <= g` is meaningful.
///
/// Reductions over it (`frobeniusInner`, `trace`, alignment) are collective over a communicator of
/// `layout.processes` ranks and deterministic: every lower tile's partial sum is computed in a fixed
/// element order by its owner, the partials are all-gathered, and every rank adds them in canonical
/// tile order — so the result is bitwise the same for any rank count.
public struct DistributedGram: Sendable {
    public let layout: GramLayout
    public var local: [Double]
    /// What the matrix is, for tables: `"full mC x mC"` or `"traced m x m"`.
    public var form: String

    public init(layout: GramLayout, form: String = "full") {
        self.layout = layout
        self.form = form
        local = [Double](repeating: 0, count: layout.leadingDimension * layout.order)
    }

    public var order: Int { layout.order }

    /// Element `(g, j)` of global row `g` stored on this rank (meaningful for `j <= g`).
    public func element(row g: Int, col j: Int) -> Double {
        precondition(layout.owner(ofBlock: g / layout.blockSize) == layout.rank, "row \(g) is not stored on rank \(layout.rank)")
        return local[layout.localRow(ofGlobal: g) + j * layout.leadingDimension]
    }

    /// The logit-traced `m x m` kernel `Kt[i, j] = sum_c K[(i,c), (j,c)]` (sum of the `C` diagonal
    /// blocks), in `layout.traced`. Local: no communication.
    public func traced() -> DistributedGram {
        let c = layout.classes, tl = layout.traced
        var out = DistributedGram(layout: tl, form: "traced")
        let ld = layout.leadingDimension, tld = tl.leadingDimension
        local.withUnsafeBufferPointer { k in
            out.local.withUnsafeMutableBufferPointer { t in
                for bi in layout.ownBlocks {
                    let rows = layout.rows(ofBlock: bi)
                    for g in stride(from: rows.lowerBound, to: rows.upperBound, by: c) {
                        let lr = layout.localRow(ofGlobal: g), tlr = lr / c
                        for j in stride(from: 0, through: g, by: c) {   // lower triangle
                            var s = 0.0
                            for cc in 0..<c { s += k[lr + cc + (j + cc) * ld] }
                            t[tlr + (j / c) * tld] = s
                        }
                    }
                }
            }
        }
        return out
    }

    /// `sum over the whole symmetric matrix of f(i, j, A_ij)`, reconstructed from the lower tiles
    /// (off-diagonal elements count twice), reduced deterministically over `communicator`.
    /// `f` must be symmetric in `(i, j)`.
    public func symmetricSum(_ communicator: Communicator, _ f: (Int, Int, Double) -> Double) -> Double {
        symmetricSums(communicator, count: 1) { i, j, a, _, out in out[0] += f(i, j, a) }[0]
    }

    /// `count` symmetric sums at once (one all-gather): `body(i, j, A_ij, offset, partials)` adds
    /// element `(i, j)`'s contributions into `partials`; `offset` is its index in `local`.
    public func symmetricSums(_ communicator: Communicator, count: Int,
                              _ body: (Int, Int, Double, Int, inout [Double]) -> Void) -> [Double] {
        precondition(communicator.size == layout.processes && communicator.rank == layout.rank,
                     "Gram laid out for rank \(layout.rank) of \(layout.processes), communicator is rank \(communicator.rank) of \(communicator.size)")
        let ld = layout.leadingDimension
        var mine: [Double] = []   // (tile index, partials...) records
        var tile = [Double](repeating: 0, count: count)
        local.withUnsafeBufferPointer { k in
            for bi in layout.ownBlocks {
                let rows = layout.rows(ofBlock: bi)
                for bj in 0...bi {
                    for q in 0..<count { tile[q] = 0 }
                    let cols = layout.rows(ofBlock: bj)
                    var offDiagonal = [Double](repeating: 0, count: count)
                    let base = layout.localRow(ofGlobal: rows.lowerBound) - rows.lowerBound
                    for j in cols {
                        for g in max(j, rows.lowerBound)..<rows.upperBound {
                            let o = base + g + j * ld, a = k[o]
                            if g == j { body(g, j, a, o, &tile) } else { body(g, j, a, o, &offDiagonal) }
                        }
                    }
                    mine.append(Double(GramLayout.tileIndex(bi, bj)))
                    for q in 0..<count { mine.append(tile[q] + 2 * offDiagonal[q]) }
                }
            }
        }
        let bytes = mine.withUnsafeBytes { Array($0) }
        var byTile = [Double](repeating: 0, count: layout.tileCount * count)
        for part in communicator.allgather(bytes) {
            let values = part.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            for r in stride(from: 0, to: values.count, by: count + 1) {
                let t = Int(values[r])
                for q in 0..<count { byTile[t * count + q] = values[r + 1 + q] }
            }
        }
        var total = [Double](repeating: 0, count: count)
        for t in 0..<layout.tileCount { for q in 0..<count { total[q] += byTile[t * count + q] } }
        return total
    }

    /// `<A, B>_F` of two Grams with the same layout (deterministic, see the type).
    public func frobeniusInner(_ other: DistributedGram, _ communicator: Communicator) -> Double {
        precondition(layout == other.layout, "frobeniusInner: Gram layouts differ (\(layout) vs \(other.layout))")
        return other.local.withUnsafeBufferPointer { b in
            symmetricSums(communicator, count: 1) { _, _, a, o, out in out[0] += a * b[o] }[0]
        }
    }

    /// `||A||_F`.
    public func frobeniusNorm(_ communicator: Communicator) -> Double {
        symmetricSum(communicator) { _, _, a in a * a }.squareRoot()
    }

    /// `tr A`.
    public func trace(_ communicator: Communicator) -> Double {
        symmetricSum(communicator) { i, j, a in i == j ? a : 0 }
    }

    /// The whole symmetric matrix (lower triangle mirrored), `order x order` (row-major = column-major),
    /// on `root`; `nil` elsewhere. Gathers every rank's rows: for small matrices (tests, `.npy`).
    public func gatherFull(_ communicator: Communicator, root: Int = 0) -> [Double]? {
        let n = order, ld = layout.leadingDimension
        let bytes = local.withUnsafeBytes { Array($0) }
        guard let parts = communicator.gather(bytes, root: root) else { return nil }
        var full = [Double](repeating: 0, count: n * n)
        for (p, part) in parts.enumerated() {
            let values = part.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let pld = max(1, layout.localRows(process: p))
            for b in layout.blocks(of: p) {
                for g in layout.rows(ofBlock: b) {
                    let lr = layout.localRow(ofGlobal: g)
                    for j in 0...g {
                        let v = values[lr + j * pld]
                        full[g * n + j] = v
                        full[j * n + g] = v
                    }
                }
            }
        }
        _ = ld
        return full
    }
}
