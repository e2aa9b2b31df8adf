/// One dimension of ScaLAPACK's block-cyclic distribution, as pure index arithmetic (0-based).
///
/// `count` indices are cut into blocks of `blockSize` (the last block may be shorter). Block `b`
/// lives on process `(source + b) mod processes`, which stores its blocks one after another in
/// increasing order. A 2-D distribution is one of these for rows and one for columns.
///
/// With `g` a global index, `b = g / nb` its block and `P` the process count:
///
///     owner(g) = (source + b) mod P
///     local(g) = (b / P) * nb + g mod nb
///
/// These are ScaLAPACK's `INDXG2P`, `INDXG2L`, `INDXL2G` and `NUMROC` (which are 1-based).
public struct BlockCyclic: Hashable, Sendable {
    /// Number of global indices (`M` or `N` of the matrix).
    public let count: Int
    /// Block size (`MB` or `NB`).
    public let blockSize: Int
    /// Process count along this dimension (`NPROW` or `NPCOL`).
    public let processes: Int
    /// Process holding the first block (`RSRC` or `CSRC`).
    public let source: Int

    public init(count: Int, blockSize: Int, processes: Int, source: Int = 0) {
        precondition(count >= 0, "BlockCyclic: count \(count) < 0")
        precondition(blockSize >= 1, "BlockCyclic: block size \(blockSize) < 1")
        precondition(processes >= 1, "BlockCyclic: process count \(processes) < 1")
        precondition((0..<processes).contains(source),
                     "BlockCyclic: source \(source) out of range 0..<\(processes)")
        self.count = count
        self.blockSize = blockSize
        self.processes = processes
        self.source = source
    }

    /// Distance of `process` from the source process, going forward cyclically.
    @inline(__always) private func shift(_ process: Int) -> Int {
        (process - source + processes) % processes
    }

    /// Number of indices stored on `process` (ScaLAPACK `NUMROC`).
    ///
    /// Every process gets `(blocks / P) * nb`; the first `blocks mod P` processes after the source get
    /// one more full block, and the next one the trailing partial block of `count mod nb`.
    public func localCount(process: Int) -> Int {
        let fullBlocks = count / blockSize
        let extraBlocks = fullBlocks % processes
        let s = shift(process)
        var n = (fullBlocks / processes) * blockSize
        if s < extraBlocks {
            n += blockSize
        } else if s == extraBlocks {
            n += count % blockSize
        }
        return n
    }

    /// Process that stores global index `global` (ScaLAPACK `INDXG2P`).
    public func owner(ofGlobal global: Int) -> Int {
        (source + global / blockSize) % processes
    }

    /// Position of global index `global` in its owner's local storage (ScaLAPACK `INDXG2L`).
    public func localIndex(ofGlobal global: Int) -> Int {
        (global / blockSize / processes) * blockSize + global % blockSize
    }

    /// Global index of local index `local` on `process` (ScaLAPACK `INDXL2G`).
    public func globalIndex(ofLocal local: Int, process: Int) -> Int {
        let block = (local / blockSize) * processes + shift(process)
        return block * blockSize + local % blockSize
    }
}

/// Shape of a 2-D process grid for `size` processes: the most nearly square `rows x cols` with
/// `rows <= cols` and `rows * cols == size` (a prime `size` gives `1 x size`).
public func nearSquareGrid(size: Int) -> (rows: Int, cols: Int) {
    precondition(size >= 1, "nearSquareGrid: size \(size) < 1")
    var rows = Int(Double(size).squareRoot())
    while rows * rows > size { rows -= 1 }   // guard against rounding up in the square root
    while size % rows != 0 { rows -= 1 }
    return (rows, size / rows)
}
