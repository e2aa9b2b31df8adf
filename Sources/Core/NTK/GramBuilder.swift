import CLinAlg
import Dispatch
import Foundation

extension Network {
    /// An independent copy (same architecture, parameters and BatchNorm state, its own buffers), so
    /// several threads can run forward/backward passes at once.
    public func replica() -> Network<T> {
        let r = rebuilt(as: T.self)
        precondition(r.parameterCount == parameterCount && r.layout.stateCount == layout.stateCount,
                     "replica: \(kind.rawValue) rebuilt with a different layout")
        r.params.pointer.update(from: params.pointer, count: parameterCount)
        r.state.pointer.update(from: state.pointer, count: layout.stateCount)
        return r
    }
}

/// Per-example Jacobian rows `df_c(x)/dw` (BatchNorm in inference mode), the simple path: one
/// forward at batch 1, then one backward per logit `c` with `dlogits = e_c`, copying the chosen
/// parameter range of the gradient out.
///
/// Examples are spread over the rank's threads, one network replica per thread, each running
/// single-threaded code (`Workers.serially`) at batch 1: an example's rows are then the same bits
/// whichever thread, rank, or batch of examples computes them.
public final class JacobianRows {
    public let network: Network<Float>
    private var replicas: [Network<Float>]
    private var inputs: [Float]
    private let exampleSize: Int

    /// `inputs` are `[m, C_in, H, W]` (NCHW) probe images for `network`.
    public init(network: Network<Float>, inputs: [Float]) {
        self.network = network
        self.inputs = inputs
        exampleSize = network.inputShape.count
        precondition(inputs.count % exampleSize == 0, "JacobianRows: \(inputs.count) values are not whole \(network.inputShape) examples")
        let threads = max(1, Workers.count)
        replicas = (0..<threads).map { _ in network.replica() }
        for r in replicas { r.prepare(maxBatch: 1) }
    }

    public var examples: Int { inputs.count / exampleSize }

    /// First flat parameter of each top-level layer (`nil`: the layer has none), or `nil` when a
    /// layer type is not known here (then every backward pass goes all the way down).
    static func parameterStarts(_ net: Network<Float>) -> [Int?]? {
        func first(_ l: any Layer<Float>) -> Int?? {
            switch l {
            case let c as Conv2D<Float>: return .some(c.weightOffset)
            case let f as Linear<Float>: return .some(f.weightOffset)
            case let b as BatchNorm2D<Float>: return .some(b.weightOffset)
            case is ReLU<Float>, is MaxPool2D<Float>, is GlobalAvgPool<Float>, is Flatten<Float>: return .some(nil)
            case let r as ResidualBlock<Float>:
                var best: Int? = nil
                for chain in [r.pre, r.main, r.projection].compactMap({ $0 }) {
                    for inner in chain.layers {
                        guard let s = first(inner) else { return nil }
                        if let s { best = min(best ?? s, s) }
                    }
                }
                return .some(best)
            default: return nil
            }
        }
        var starts: [Int?] = []
        for l in net.chain.layers {
            guard let s = first(l) else { return nil }
            starts.append(s)
        }
        return starts
    }

    /// The lowest top-level layer a backward pass must reach for the gradients of parameters from
    /// `p0` on: the layer holding `p0` (layers register their parameters in forward order).
    func lowestLayer(from p0: Int) -> Int {
        guard let starts = Self.parameterStarts(network) else { return 0 }
        var lowest = 0
        for (i, s) in starts.enumerated() { if let s, s <= p0 { lowest = i } }
        return lowest
    }

    /// Writes, for each `examples[k]`, its `C` rows restricted to `parameters` into
    /// `out + row(examples[k]) * ld` (row `row + c` for logit `c`; `ld >= parameters.count`).
    public func compute(examples: [Int], parameters: Range<Int>, into out: UnsafeMutablePointer<Float>, ld: Int,
                        row: (Int) -> Int) {
        let classes = network.classes, threads = replicas.count
        let rows = examples.map(row), lowest = lowestLayer(from: parameters.lowerBound)
        let sharedOut = SharedPointer(out)   // each thread writes the rows of its own examples
        inputs.withUnsafeBufferPointer { x in
            let sharedX = SharedPointer(x.baseAddress!)   // read only
            DispatchQueue.concurrentPerform(iterations: min(threads, max(1, examples.count))) { t in
                Workers.serially {
                    let net = replicas[t]
                    let out = sharedOut.pointer, x = sharedX.pointer
                    var dlogits = [Float](repeating: 0, count: classes)
                    for k in stride(from: t, to: examples.count, by: threads) {
                        net.forward(x + examples[k] * exampleSize, n: 1, mode: .eval)
                        for c in 0..<classes {
                            // Only the chunk's gradients are read; the rest may accumulate freely.
                            (net.grads.pointer + parameters.lowerBound).update(repeating: 0, count: parameters.count)
                            dlogits[c] = 1
                            dlogits.withUnsafeBufferPointer { net.backward($0.baseAddress!, n: 1, mode: .eval, lowestLayer: lowest) }
                            dlogits[c] = 0
                            (out + (rows[k] + c) * ld).update(from: net.grads.pointer + parameters.lowerBound,
                                                              count: parameters.count)
                        }
                    }
                }
            }
        }
    }

    /// The full Jacobian `[examples * C, P]` (row `i*C + c`), for tests and small cases.
    public func full() -> [Float] {
        let p = network.parameterCount, n = examples * network.classes
        var j = [Float](repeating: 0, count: n * p)
        j.withUnsafeMutableBufferPointer { jp in
            compute(examples: Array(0..<examples), parameters: 0..<p, into: jp.baseAddress!, ld: p) { $0 * network.classes }
        }
        return j
    }
}

/// Timings and sizes of one Gram computation.
public struct GramBuildStats: Sendable, Codable {
    public var seconds = 0.0
    public var jacobianSeconds = 0.0
    public var contractionSeconds = 0.0
    public var communicationSeconds = 0.0
    public var parameterChunks = 0
    public var chunkSize = 0
    public var plannedBytes = 0
    /// FLOPs of the tile GEMMs this rank ran (`2 * rows * cols * P` per tile, `rows (rows + 1) P` on the diagonal).
    public var contractionFlops = 0.0
    /// FLOPs of the Jacobian passes on this rank (per chunk and example: forward + `C` backwards).
    public var jacobianFlops = 0.0
}

/// Builds the empirical-NTK Gram `K = J J^T` (`J` the `mC x P` Jacobian of the logits, BatchNorm in
/// inference mode) collectively over a communicator, in `GramLayout`.
///
/// One algorithm for any rank count (the serial Gram is the same code on a `SerialCommunicator`):
/// for each parameter chunk of the `GramPlan`, every rank computes the Jacobian rows of its own
/// row blocks; it contracts its own blocks against each other, then the other ranks' blocks come
/// round a ring one block at a time (`sendrecv` to `rank + 1`, from `rank - 1`), and each arriving
/// block is contracted against the own blocks below it. Only tiles `J <= I` are computed.
///
/// Every tile is one single-threaded `sgemm` (`ssyrk` on the diagonal) of fixed shape
/// (`rows(I) x rows(J) x step`, steps of `GramPlan.accumulationStep` parameters) whose `Float` result is added into the `Double` tile,
/// steps in parameter order; a rank's threads take whole tiles. The shapes and the order depend only
/// on `(m, C, P, nb, budget)`, so the Gram is bitwise the same for any rank and thread count.
public enum GramBuilder {
    public static func build(network: Network<Float>, inputs: [Float], communicator: Communicator,
                             options: NTKGramOptions = NTKGramOptions()) throws -> (gram: DistributedGram, stats: GramBuildStats) {
        // Tiles are spread over threads here; each sgemm runs on one.
        try BLASThreads.singleThreaded {
            try buildSingleThreaded(network: network, inputs: inputs, communicator: communicator, options: options)
        }
    }

    private static func buildSingleThreaded(network: Network<Float>, inputs: [Float], communicator: Communicator,
                                            options: NTKGramOptions) throws -> (gram: DistributedGram, stats: GramBuildStats) {
        let t0 = Benchmark.now()
        let m = inputs.count / network.inputShape.count, classes = network.classes
        guard m >= 1 else { throw NTKError("NTK Gram: no probe examples") }
        let nb = options.blockSize ?? GramLayout.defaultBlockSize(classes: classes)
        guard nb >= classes, nb % classes == 0 else {
            throw NTKError("NTK Gram: block size \(nb) is not a multiple of the \(classes) classes. Fix: pass a multiple of \(classes) (--block-size)")
        }
        let layout = GramLayout(examples: m, classes: classes, blockSize: nb, processes: communicator.size,
                                rank: communicator.rank)
        let plan = try GramPlan(layout: layout, parameters: network.parameterCount, budgetBytes: options.memoryBudgetBytes)
        var stats = GramBuildStats()
        stats.parameterChunks = plan.chunks.count
        stats.chunkSize = plan.chunkSize
        stats.plannedBytes = plan.plannedBytes

        var gram = DistributedGram(layout: layout)
        let jacobian = JacobianRows(network: network, inputs: inputs)
        let p = layout.processes, rank = layout.rank, own = layout.ownBlocks
        let ownExamples = own.flatMap { b in Array(stride(from: layout.rows(ofBlock: b).lowerBound / classes,
                                                          to: layout.rows(ofBlock: b).upperBound / classes, by: 1)) }
        // Forward + C backward passes down to the chunk's lowest layer (input gradient of layer i > lowest).
        let perExampleFlops = { (p0: Int) -> Double in
            let lowest = jacobian.lowestLayer(from: p0), layers = network.chain.layers
            var backward = 0
            for i in lowest..<layers.count { backward += layers[i].backwardFlops(inputGradient: i > lowest) }
            return Double(network.forwardFlops) + Double(classes * backward)
        }
        let ownRows = Buffer<Float>(count: layout.localRows * plan.chunkSize)
        let travel = p > 1 ? [Buffer<Float>(count: nb * plan.chunkSize), Buffer<Float>(count: nb * plan.chunkSize)] : []
        let contractor = TileContractor(layout: layout, threads: max(1, Workers.count))

        for chunk in plan.chunks {
            let pc = chunk.count
            var t = Benchmark.now()
            jacobian.compute(examples: ownExamples, parameters: chunk, into: ownRows.pointer, ld: pc) {
                layout.localRow(ofGlobal: $0 * classes)
            }
            stats.jacobianFlops += perExampleFlops(chunk.lowerBound) * Double(ownExamples.count)
            stats.jacobianSeconds += Benchmark.now() - t
            let ownBlock = { (b: Int) in UnsafePointer(ownRows.pointer + layout.localRow(ofGlobal: b * nb) * pc) }

            // Own blocks against own blocks.
            t = Benchmark.now()
            var tiles: [Tile] = []
            for bi in own { for bj in own where bj <= bi { tiles.append(Tile(i: bi, j: bj, a: ownBlock(bi), b: ownBlock(bj))) } }
            stats.contractionFlops += contractor.run(tiles, parameters: pc, into: &gram)
            stats.contractionSeconds += Benchmark.now() - t

            // The other ranks' blocks, one block round the ring at a time.
            guard p > 1 else { continue }
            let maxOwn = layout.blocks(of: 0).count
            let next = (rank + 1) % p, previous = (rank - 1 + p) % p
            for k in 0..<maxOwn {
                var current: UnsafePointer<Float>? = k < own.count ? ownBlock(own[k]) : nil
                for s in 1..<p {
                    let sentBlock = (rank - s + 1 + p) % p + k * p, arriving = (rank - s + p) % p + k * p
                    let sendCount = sentBlock < layout.blockCount ? layout.rows(ofBlock: sentBlock).count * pc : 0
                    let receiveCount = arriving < layout.blockCount ? layout.rows(ofBlock: arriving).count * pc : 0
                    let target = travel[s % 2]
                    t = Benchmark.now()
                    communicator.sendrecv(UnsafeRawBufferPointer(start: current, count: sendCount * 4), to: next,
                                          UnsafeMutableRawBufferPointer(start: target.pointer, count: receiveCount * 4),
                                          from: previous)
                    stats.communicationSeconds += Benchmark.now() - t
                    current = UnsafePointer(target.pointer)
                    guard receiveCount > 0 else { continue }
                    t = Benchmark.now()
                    let tiles = own.filter { $0 >= arriving }.map { Tile(i: $0, j: arriving, a: ownBlock($0), b: UnsafePointer(target.pointer)) }
                    stats.contractionFlops += contractor.run(tiles, parameters: pc, into: &gram)
                    stats.contractionSeconds += Benchmark.now() - t
                }
            }
        }
        stats.seconds = Benchmark.now() - t0
        return (gram, stats)
    }
}

/// Lower tile `(i, j)` of the Gram: `a` the Jacobian rows of block `i`, `b` of block `j`
/// (row-major, leading dimension = the chunk's parameter count).
struct Tile {
    let i: Int, j: Int
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>
}

/// Computes tiles on the rank's threads: whole tiles per thread, each a single-threaded `sgemm`
/// (`ssyrk` for diagonal tiles, lower triangle only) per accumulation step into a per-thread `Float`
/// scratch, added into the `Double` Gram.
final class TileContractor {
    let layout: GramLayout
    let scratch: [Buffer<Float>]

    init(layout: GramLayout, threads: Int) {
        self.layout = layout
        scratch = (0..<threads).map { _ in Buffer<Float>(count: layout.blockSize * layout.blockSize) }
    }

    /// Adds `J_i J_j^T` restricted to a chunk of `parameters` into `gram` for every tile; returns FLOPs.
    func run(_ tiles: [Tile], parameters pc: Int, into gram: inout DistributedGram) -> Double {
        guard !tiles.isEmpty else { return 0 }
        let layout = self.layout, ld = layout.leadingDimension, threads = min(scratch.count, tiles.count)
        let step = GramPlan.accumulationStep
        var flops = 0.0
        for tile in tiles {
            let mi = layout.rows(ofBlock: tile.i).count, mj = layout.rows(ofBlock: tile.j).count
            flops += tile.i == tile.j ? Double(mi * (mi + 1) * pc) : 2 * Double(mi * mj * pc)
        }
        gram.local.withUnsafeMutableBufferPointer { g in
            let sharedG = SharedPointer(g.baseAddress!)   // each thread adds into its own tiles
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let g = sharedG.pointer
                let s = scratch[t].pointer
                for index in stride(from: t, to: tiles.count, by: threads) {
                    let tile = tiles[index]
                    let rowsI = layout.rows(ofBlock: tile.i), rowsJ = layout.rows(ofBlock: tile.j)
                    let mi = rowsI.count, mj = rowsJ.count
                    let base = layout.localRow(ofGlobal: rowsI.lowerBound)
                    var k0 = 0
                    while k0 < pc {
                        let kc = min(step, pc - k0)
                        if tile.i == tile.j {
                            // Diagonal tile: ssyrk's upper triangle, s[c, r] for r >= c, is the Gram's
                            // lower triangle (column c, rows r >= c); half the work of a full tile.
                            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(mi), Int32(kc), 1,
                                        tile.a + k0, Int32(pc), 0, s, Int32(mi))
                            for c in 0..<mi {
                                let column = g + base + (rowsJ.lowerBound + c) * ld, src = s + c * mi
                                for r in c..<mi { column[r] += Double(src[r]) }
                            }
                        } else {
                            // s[c, r] = sum_k J_j[c, k] J_i[r, k]: row c of s is column rowsJ[c] of the Gram.
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(mj), Int32(mi), Int32(kc), 1,
                                        tile.b + k0, Int32(pc), tile.a + k0, Int32(pc), 0, s, Int32(mi))
                            for c in 0..<mj {
                                let column = g + base + (rowsJ.lowerBound + c) * ld, src = s + c * mi
                                for r in 0..<mi { column[r] += Double(src[r]) }
                            }
                        }
                        k0 += kc
                    }
                }
            }
        }
        return flops
    }
}
