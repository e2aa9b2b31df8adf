import Core
import Foundation
import MPIShim

/// The one way a command ends after an error (docs/failures.md): the rank that met it prints it once
/// — rank, task, message, fix — and, if other ranks are running, ends the whole job with
/// `MPI_Abort`, so no rank is left waiting at a barrier or for a file until the wall-clock limit.
///
/// Failures every rank agreed on (`Communicator.agree`: set-up, the end of `selftest`) end without an
/// abort: the reporting rank prints, the others stay silent, and all exit through `MPI_Finalize`.
public enum JobFailure {
    /// A file in a directory every rank sees (`ntkscape run`: `<run>/tasks/job.failed`), created
    /// exclusively by the first rank to report a failure: when several ranks fail at once (all
    /// waiting for the same missing file, say), the first reports and aborts, the others stay silent
    /// while the abort reaches them. nil: no such directory (every failing rank reports).
    /// Set once by the command, before the work that can fail on several ranks at once.
    public static var reportLock: String?

    /// How long a rank that lost the report to another waits for that rank's abort before reporting
    /// and aborting itself (in case the other died before it could).
    static let lostReportGrace: UInt32 = 10

    /// Prints `error` (unless another rank reports it) and ends this process — and the job, when
    /// other ranks may still run — with exit status `code`. `task` names what was running when the
    /// error names no task itself.
    public static func end(_ error: Error, task: String, code: Int32 = 1) -> Never {
        let code = code == 0 ? 1 : code
        fflush(stdout)
        // A failing rank is not stopped gracefully: a stop request (SIGUSR1) arriving now ends it
        // instead of waking it from its wait to report the failure a second time.
        StopSignal.restoreDefaultHandlers()
        if error is ReportedElsewhere { exit(code) }
        let failure = TaskFailure.wrapping(error, task: task, fix: rerunFix)
        let (rank, size) = worldPosition()
        if !failure.agreed && (size ?? 1) > 1, let lock = reportLock, !claimReport(lock, failure, rank: rank, size: size) {
            sleep(lostReportGrace)   // another rank reports and aborts the job
        }
        report(failure, rank: rank, size: size)
        if failure.agreed { exit(code) }
        if MPIEnvironment.isInitialized && !MPIEnvironment.isFinalized && (size ?? 1) > 1 {
            MPIEnvironment.abort(code)   // MPI_Abort(MPI_COMM_WORLD, code): every rank ends
        }
        exit(code)
    }

    /// The text printed for `failure` on rank `rank` of `size` (nil: not known; 1 rank: not named).
    public static func message(_ failure: TaskFailure, rank: Int?, size: Int?) -> String {
        let place = rank.flatMap { r in (size ?? 2) > 1 ? " on rank \(r)" + (size.map { " of \($0)" } ?? "") : nil } ?? ""
        let lines = failure.message.split(separator: "\n", omittingEmptySubsequences: false)
        var text = "ntkscape: error\(place) in \(failure.task ?? "ntkscape"): \(lines.first ?? "")\n"
        for line in lines.dropFirst() { text += "ntkscape:   \(line)\n" }
        text += "ntkscape: fix: \(failure.fix)\n"
        return text
    }

    /// True if this rank is the first to report (it created `lock`, holding the message), or if the
    /// lock cannot be used; false if another rank already reports.
    static func claimReport(_ lock: String, _ failure: TaskFailure, rank: Int?, size: Int?) -> Bool {
        let fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { return errno != EEXIST }
        let bytes = Array(message(failure, rank: rank, size: size).utf8)
        bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return true
    }

    /// Writes the message to stderr in one `write`, so ranks' reports do not interleave.
    static func report(_ failure: TaskFailure, rank: Int?, size: Int?) {
        let bytes = Array(message(failure, rank: rank, size: size).utf8)
        bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// This process's world rank and size: from MPI if it runs, else from the launcher's
    /// environment (Open MPI, PMIx, Slurm), else unknown.
    public static func worldPosition() -> (rank: Int?, size: Int?) {
        if MPIEnvironment.isInitialized && !MPIEnvironment.isFinalized {
            var rank: Int32 = 0, size: Int32 = 0
            MPI_Comm_rank(ntk_comm_world(), &rank)
            MPI_Comm_size(ntk_comm_world(), &size)
            return (Int(rank), Int(size))
        }
        return (launchRank, launchSize)
    }

    /// The rank the launcher gave this process (`OMPI_COMM_WORLD_RANK`, `PMIX_RANK`, `SLURM_PROCID`).
    public static var launchRank: Int? {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"].lazy.compactMap { env[$0].flatMap(Int.init) }.first
    }

    /// The number of processes the launcher started (`OMPI_COMM_WORLD_SIZE`, `SLURM_NTASKS`).
    public static var launchSize: Int? {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"].lazy.compactMap { env[$0].flatMap(Int.init) }.first
    }
}
