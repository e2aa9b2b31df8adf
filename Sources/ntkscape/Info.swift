import ArgumentParser
import Core
import Foundation
import Parallel

/// `ntkscape info`: how this job is laid out (ranks, nodes, threads, libraries, ScaLAPACK grid).
/// Every rank reports its own line to rank 0, which prints.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print ranks, ranks per node, threads per rank, library versions and the ScaLAPACK grid.")

    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        let world = Parallel.worldCommunicator()
        let decision = world.configureBLASThreads(option: threadOptions.threads)
        let node = world.nodeLayout()
        let mine = "\(world.rank)\t\(node.processorName)\t\(node.nodeRank)/\(node.ranksOnNode)\t"
            + "\(decision.threads)\t\(decision.rule.rawValue): \(decision.detail)"
        guard let rows = world.gather(Array(mine.utf8), root: 0) else { return }

        let perNode = world.size / max(1, node.nodeCount)
        let grid = nearSquareGrid(size: world.size)
        print("ntkscape \(NTKScapeVersion.string)")
        print("ranks:             \(world.size) on \(node.nodeCount) node(s)")
        print("ranks per node:    \(node.ranksOnNode) on rank 0's node\(node.nodeCount > 1 ? " (\(perNode) on average)" : "")")
        print("threads per rank:  \(decision.threads) on rank 0, chosen by \(decision.rule.rawValue) (\(decision.detail))")
        print("OpenBLAS:          \(BLASThreads.config)")
        print("OpenBLAS kernels:  \(BLASKernels.coreName)"
              + (ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""))
        print("MPI library:       \(MPIEnvironment.libraryVersion)")
        print("MPI thread level:  \(MPIEnvironment.threadLevel) (requested MPI_THREAD_FUNNELED)")
        print("ScaLAPACK grid:    \(grid.rows) x \(grid.cols) (row-major)")
        print("rank\tnode\tnode-rank\tthreads\trule")
        for row in rows { print(String(decoding: row, as: UTF8.self)) }
    }
}
