import Foundation

/// Settings of an empirical-NTK Gram computation (`ntk.memory_gb`, `--block-size`).
public struct NTKGramOptions: Sendable, Equatable {
    /// Memory one rank may use for the Gram, the Jacobian rows and the analyses, in bytes.
    public var memoryBudgetBytes: Int
    /// Rows per block of the block-cyclic layout (a multiple of the class count); nil: the default
    /// of `GramLayout.defaultBlockSize`.
    public var blockSize: Int?

    /// Default budget: the experiment's `ntk.memory_gb` (`NTKSection.defaultMemoryGb`).
    public init(memoryBudgetBytes: Int = Int(NTKSection.defaultMemoryGb * 1_073_741_824), blockSize: Int? = nil) {
        self.memoryBudgetBytes = memoryBudgetBytes
        self.blockSize = blockSize
    }

    public init(memoryGiB: Double, blockSize: Int? = nil) {
        self.init(memoryBudgetBytes: Int(memoryGiB * 1_073_741_824), blockSize: blockSize)
    }
}

/// A Gram that cannot be computed as asked; the message names the numbers and the fix.
public struct NTKError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How a Gram is computed within the memory budget: the parameters are processed in `chunks`
/// (contiguous ranges of the flat parameter vector), and for each chunk every rank holds the
/// Jacobian rows `J[rows, chunk]` of its examples in `Float`.
///
/// Everything here is a function of `(m, C, P, nb, budget)` only — never of the rank or thread
/// count — because the chunk boundaries decide the GEMM shapes and hence the bits of the Gram.
/// Memory per rank, in bytes:
///
///     gram      = (mC)^2 * 8                       (the serial Gram; a rank of p holds ~1/p)
///     analysis  = 3 * gram                         (eigen-decomposition: matrix, copy, eigenvectors)
///     reserve   = 256 MiB + 64 * P                 (networks, tile scratch, runtime)
///     jacobian  = rowsFactor * chunk * 4,          rowsFactor = max over p of (own rows + 2 travelling blocks)
///
/// and `chunk` is the largest parameter count with `gram + reserve + jacobian <= budget`.
public struct GramPlan: Sendable, Equatable {
    public let layout: GramLayout
    public let parameters: Int
    /// Parameter ranges, in order; all but the last have `chunkSize` parameters.
    public let chunks: [Range<Int>]
    public let chunkSize: Int
    public let gramBytes: Int
    public let reserveBytes: Int
    /// Worst-case Jacobian bytes on a rank over every rank count.
    public let jacobianBytes: Int
    public let budgetBytes: Int

    /// Parameters per `Double` accumulation step of a tile: each step's `Float` GEMM result is
    /// added into the `Double` Gram, so `Float` round-off grows with this, not with `P`.
    public static let accumulationStep = 16384

    public init(layout: GramLayout, parameters: Int, budgetBytes: Int) throws {
        self.layout = layout
        self.parameters = parameters
        self.budgetBytes = budgetBytes
        let n = layout.order
        gramBytes = n * n * 8
        reserveBytes = 256 << 20 + 64 * parameters
        let rowsFactor = Self.rowsFactor(layout)
        let minChunk = min(parameters, 4096)
        let jacobianRoom = budgetBytes - gramBytes - reserveBytes
        let needed = Self.minimumBytes(layout: layout, parameters: parameters)
        if needed > budgetBytes {
            let format = MemoryEstimate.format
            throw NTKError("NTK Gram of \(layout.examples) examples x \(layout.classes) classes (\(n) x \(n)) "
                           + "needs at least \(format(needed)) per rank — \(format(gramBytes)) for the Gram (x3 for its eigen-decomposition), "
                           + "\(format(reserveBytes)) working memory, at least \(format(rowsFactor * minChunk * 4)) for Jacobian rows — "
                           + "but the memory budget is \(format(budgetBytes)). Fix: raise the memory per rank to at least "
                           + "\(MemoryEstimate.gibCeiling(needed)) GiB (ntk.memory_gb in an experiment, --memory-gb for `ntkscape ntk`) "
                           + "or use fewer examples (probe_size or kernel_machine.train_examples in an experiment, --probe or --machine for `ntkscape ntk`).")
        }
        var size = min(parameters, jacobianRoom / (rowsFactor * 4))
        let count = (parameters + size - 1) / size
        size = (parameters + count - 1) / count            // equal chunks, as few as fit
        size = min(parameters, (size + 15) / 16 * 16)      // 64-byte aligned rows
        chunkSize = size
        chunks = stride(from: 0, to: parameters, by: size).map { $0..<min(parameters, $0 + size) }
        jacobianBytes = rowsFactor * size * 4
    }

    /// Rows a rank holds at once, worst case over rank counts: its own blocks plus, with p > 1, two
    /// travelling blocks.
    static func rowsFactor(_ layout: GramLayout) -> Int {
        let blocks = layout.blockCount
        var maxBlocks = blocks
        if blocks > 1 {
            for p in 2...blocks { maxBlocks = max(maxBlocks, (blocks + p - 1) / p + 2) }
        }
        return maxBlocks * layout.blockSize
    }

    /// The least budget with which a Gram of `layout` can be built and eigen-decomposed: the larger of
    /// the eigen-decomposition (3 Grams) and the Gram with Jacobian rows of the smallest chunk, plus
    /// the reserve.
    public static func minimumBytes(layout: GramLayout, parameters: Int) -> Int {
        let gram = layout.order * layout.order * 8, reserve = 256 << 20 + 64 * parameters
        return max(3 * gram + reserve, gram + reserve + rowsFactor(layout) * min(parameters, 4096) * 4)
    }

    /// Total planned bytes per rank (worst case over rank counts).
    public var plannedBytes: Int { max(gramBytes + reserveBytes + jacobianBytes, 3 * gramBytes + reserveBytes) }
}
