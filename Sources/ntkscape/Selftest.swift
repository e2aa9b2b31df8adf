import ArgumentParser
import Core
import Foundation
import Parallel

/// `ntkscape selftest`: collective checks of MPI and ScaLAPACK on the ranks it is started with.
/// Prints `PASS|FAIL  name  error (tolerance)` per check on rank 0; exits 1 if any rank failed any.
struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check MPI collectives and the ScaLAPACK wrappers against closed forms and serial LAPACK.")

    @OptionGroup var threadOptions: ThreadOptions

    @Option(help: "Order of the test matrices (default 500 = 15 * 32 + 20: an uneven last block).")
    var n = 500

    @Option(help: "ScaLAPACK block size.")
    var block = 32

    func validate() throws {
        if n < 1 { throw ValidationError("--n must be at least 1, got \(n)") }
        if block < 1 { throw ValidationError("--block must be at least 1, got \(block)") }
    }

    func run() throws {
        let world = Parallel.worldCommunicator()
        let decision = world.configureBLASThreads(option: threadOptions.threads)
        let grid = nearSquareGrid(size: world.size)
        let start = Date()
        try during("selftest set-up", fix: rerunFix) { try FaultInjection.check(.setup, rank: world.rank) }
        if world.rank == 0 {
            print("selftest: \(world.size) rank(s), grid \(grid.rows) x \(grid.cols), n = \(n), block = \(block), "
                  + "\(decision.threads) thread(s) per rank (\(decision.rule.rawValue))")
        }
        let results = SelfTest.run(comm: world, n: n, block: block, threads: decision) { check in
            if world.rank == 0 { print(check.line) }
        }
        let failed = results.filter { !$0.passed }.count
        if world.rank == 0 {
            print("selftest: \(results.count - failed)/\(results.count) checks passed on \(world.size) rank(s) "
                  + "in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
        // Agreed: every rank ends with the same status, and rank 0 alone reports.
        try world.agree {
            if failed > 0 {
                throw TaskFailure(task: "selftest", message: "\(failed) of \(results.count) checks failed (FAIL lines above)",
                                  fix: "check the MPI, OpenBLAS and ScaLAPACK installation (ntkscape info); see docs/failures.md")
            }
        }
    }
}
