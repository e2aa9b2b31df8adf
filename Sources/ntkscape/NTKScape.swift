import ArgumentParser
import Core
import Foundation
import Parallel

/// The `ntkscape` command line. Runs the same under `mpirun -np N`, `srun`, or as a plain process
/// (a 1-rank MPI world).
@main
struct NTKScape: ParsableCommand {
    // Subcommands are registered here, and only here.
    static let configuration = CommandConfiguration(
        commandName: "ntkscape",
        abstract: "Loss-landscape and neural-tangent-kernel measurements of deep networks, on MPI.",
        version: NTKScapeVersion.string,
        subcommands: [Run.self, Summary.self, ReportCommand.self, Plan.self, Train.self, Evaluate.self, NTK.self, Models.self, Bench.self, Info.self, Selftest.self],
        defaultSubcommand: nil)

    static func main() {
        // Line-buffer stdout: Swift's print is block-buffered into mpirun's pipes, and a rank that
        // dies would take its last lines with it.
        setvbuf(stdout, nil, _IOLBF, 0)
        BLASKernels.reexecWithOptimizedKernelsIfNeeded()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // Argument errors (and --help) are the same on every rank: the launcher's first rank prints them.
            if (JobFailure.launchRank ?? 0) == 0 { exit(withError: error) }
            Foundation.exit(exitCode(for: error).rawValue)
        }
        // The one abort path (docs/failures.md): an error on any rank is printed once, by that rank,
        // naming the rank, the task and the fix, and ends the whole job (MPI_Abort when other ranks run).
        let name = type(of: command)._commandName
        do {
            try command.run()
        } catch let code as ExitCode where code.isSuccess {
            return
        } catch let code as ExitCode {
            JobFailure.end(TaskFailure(task: "ntkscape \(name)", message: "exit status \(code.rawValue)", fix: rerunFix),
                           task: "ntkscape \(name)", code: code.rawValue)
        } catch where exitCode(for: error).isSuccess {
            // `--help`, `ntkscape help <command>`: ArgumentParser prints, on the first rank only.
            if (JobFailure.launchRank ?? 0) == 0 { exit(withError: error) }
            Foundation.exit(0)
        } catch {
            JobFailure.end(error, task: "ntkscape \(name)")
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
        try OptionChecks.threads(threads)
    }
}
