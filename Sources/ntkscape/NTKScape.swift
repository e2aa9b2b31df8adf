import ArgumentParser
import Core
import Foundation

/// The `ntkscape` command line. Runs the same under `mpirun -np N`, `srun`, or as a plain process
/// (a 1-rank MPI world).
@main
struct NTKScape: ParsableCommand {
    // Subcommands are registered here, and only here.
    static let configuration = CommandConfiguration(
        commandName: "ntkscape",
        abstract: "Loss-landscape and neural-tangent-kernel measurements of deep networks, on MPI.",
        version: NTKScapeVersion.string,
        subcommands: [Run.self, Summary.self, Plan.self, Train.self, Evaluate.self, NTK.self, Models.self, Bench.self, Info.self, Selftest.self],
        defaultSubcommand: nil)

    static func main() {
        // Line-buffer stdout: Swift's print is block-buffered into mpirun's pipes, and a rank that
        // dies would take its last lines with it.
        setvbuf(stdout, nil, _IOLBF, 0)
        BLASKernels.reexecWithOptimizedKernelsIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// `--threads`, shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "OpenBLAS threads per rank.",
        discussion: "Default: $OPENBLAS_NUM_THREADS if set, else cores on the node / ranks on the node."))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }
}
