import Core
import Foundation
import MPIShim
import Synchronization

/// Graceful stop of `ntkscape run` on SIGUSR1 (docs/failures.md, slurm/README.md): Slurm
/// sends SIGUSR1 before the time limit (`--signal`), `slurm/ntkscape.sbatch` passes it on to the
/// ranks, and each rank ends its work so that the rerun — or the requeued job — resumes it:
///
/// - a rank that is training stops after its current step, once it has saved its resume state
///   (`StopOnRequest` in Core asks `shouldStop()` after every step); a rank between tasks or waiting
///   for another rank's file stops at once. It then waits (at most `grace` seconds) until every
///   rank has stopped, prints what it saved, and exits with status 75 (`exitStatus`, EX_TEMPFAIL);
/// - a rank inside work that cannot stop midway (pair metrics, a linearised model, an NTK Gram, a
///   collective) is ended by a watchdog thread `grace` seconds (plus three of its training steps)
///   after the signal, with status 75; that task runs again from its start on resume.
///
/// So the whole job ends within about `grace` seconds. Open MPI's `mpirun` forwards SIGUSR1 to the
/// ranks (checked with Open MPI 4.1.4); `srun` delivers it to every rank. SIGTERM keeps its default
/// action — end at once, as after a kill, resuming from the last epoch end: it is also what the
/// launchers send the other ranks when one rank fails (MPI_Abort), and those must end at once
/// rather than finish their tasks and report a stop.
///
/// The handler only stores the signal number in an atomic (async-signal-safe); everything else
/// runs on the main thread at the stop points, or on the watchdog thread, which makes no MPI call.
public final class StopSignal: @unchecked Sendable {
    /// Exit status of a rank that stopped on request (EX_TEMPFAIL: "try again later").
    public static let exitStatus: Int32 = 75

    /// The signal received (0: none); written by the handler.
    private static let received = Atomic<Int32>(0)
    /// Monotonic time (ns) of the last `shouldStop()` call and the interval between the last two:
    /// while the rank trains, one optimiser step.
    private static let lastPoll = Atomic<Int64>(0)
    private static let pollInterval = Atomic<Int64>(0)
    /// Set when the main thread has reached a stop point after the signal: the watchdog stands down.
    private static let acknowledged = Atomic<Bool>(false)

    /// Seconds the stopped ranks wait for each other, and the watchdog waits for a busy rank.
    public let grace: Double
    let rank: Int, size: Int
    /// A duplicate of the world, used only for the ranks' final wait for each other, so that it can
    /// never match a collective of the run.
    private let peers: MPI_Comm?
    /// Called before a rank is ended by the watchdog (rank 0: releases the run directory's lock).
    public var beforeForcedExit: (() -> Void)?

    /// Installs the handler for SIGUSR1 and starts the watchdog. Collective over `world`
    /// (it duplicates the communicator); call once per process, before any work.
    public static func install(world: MPICommunicator, grace: Double = 10) -> StopSignal {
        // Touch the atomics first: a static's lazy initialisation must not happen in the handler.
        received.store(0, ordering: .relaxed)
        lastPoll.store(0, ordering: .relaxed)
        pollInterval.store(0, ordering: .relaxed)
        acknowledged.store(false, ordering: .relaxed)
        var dup: MPI_Comm?
        MPIEnvironment.check(MPI_Comm_dup(world.handle, &dup), "MPI_Comm_dup")
        let stop = StopSignal(grace: grace, rank: world.rank, size: world.size, peers: dup)
        let handler: @convention(c) (Int32) -> Void = { StopSignal.received.store($0, ordering: .relaxed) }
        signal(SIGUSR1, handler)
        let watchdog = Thread { stop.watch() }
        watchdog.name = "ntkscape stop watchdog"
        watchdog.start()
        return stop
    }

    /// Gives SIGUSR1 back its default action (end the process): for a rank that is failing
    /// (`JobFailure.end`), where a stop request has nothing left to save.
    public static func restoreDefaultHandlers() {
        signal(SIGUSR1, SIG_DFL)
    }

    private init(grace: Double, rank: Int, size: Int, peers: MPI_Comm?) {
        self.grace = grace
        self.rank = rank
        self.size = size
        self.peers = peers
    }

    /// Whether a stop was requested. Also times the calls: a training rank calls it after every step.
    public static func shouldStop() -> Bool {
        let now = nanoseconds()
        let last = lastPoll.exchange(now, ordering: .relaxed)
        if last > 0 { pollInterval.store(now - last, ordering: .relaxed) }
        return received.load(ordering: .relaxed) != 0
    }

    /// The signal received, by name (`SIGUSR1`), nil if none.
    public static var signalName: String? {
        switch received.load(ordering: .relaxed) {
        case 0: return nil
        case SIGUSR1: return "SIGUSR1"
        case let s: return "signal \(s)"
        }
    }

    /// Ends this rank after `stop` reached it at a stop point: reports what was saved, waits at most
    /// `grace` seconds for the other ranks to stop, and exits with `exitStatus`.
    public func finish(_ stop: StopRequested) -> Never {
        Self.acknowledged.store(true, ordering: .relaxed)
        let signal = Self.signalName ?? "request"
        let place = size > 1 ? "rank \(rank) of \(size)" : "rank \(rank)"
        say("ntkscape: \(place): \(signal): \(stop.description)")
        let allStopped = waitForPeers()
        if rank == 0 || !allStopped {
            say("ntkscape: stopped by \(signal)"
                + (allStopped ? "" : " (some ranks were still busy after \(Int(grace)) s and are ended; their tasks restart)")
                + "; training state saved. Rerun the same command, or requeue the job, to resume: finished tasks are "
                + "kept and training continues from the saved step (docs/failures.md). Exit status \(Self.exitStatus).")
        }
        fflush(stdout)
        fflush(stderr)
        // Every rank stopped: they all pass MPI_Finalize (atexit). Otherwise a rank is busy and would
        // hold MPI_Finalize: leave without it; the launcher ends the busy ranks.
        if allStopped { exit(Self.exitStatus) }
        _exit(Self.exitStatus)
    }

    /// True when every rank reached `finish` within `grace` seconds (a non-blocking barrier on `peers`).
    private func waitForPeers() -> Bool {
        guard size > 1, let peers else { return true }
        var request: MPI_Request?
        guard MPI_Ibarrier(peers, &request) == MPI_SUCCESS else { return false }
        let deadline = Self.nanoseconds() + Int64(grace * 1e9)
        var done: Int32 = 0
        while Self.nanoseconds() < deadline {
            guard MPI_Test(&request, &done, nil) == MPI_SUCCESS else { return false }
            if done != 0 { return true }
            usleep(10_000)
        }
        return false
    }

    /// The watchdog: after a signal, ends this rank if its main thread has not reached a stop point
    /// within `grace` seconds — plus three training steps (at most 2 minutes) when the rank was
    /// training (asking `shouldStop()` at a steady pace) when the signal came: a slow step may be
    /// under way, and the step's end is a stop point.
    private func watch() {
        var deadline: Int64?
        while true {
            usleep(100_000)
            guard Self.received.load(ordering: .relaxed) != 0 else { continue }
            if Self.acknowledged.load(ordering: .relaxed) { return }
            let now = Self.nanoseconds()
            if deadline == nil {
                let last = Self.lastPoll.load(ordering: .relaxed), step = Self.pollInterval.load(ordering: .relaxed)
                let training = last > 0 && step > 0 && now - last <= 2 * step
                deadline = now + Int64(grace * 1e9) + (training ? min(3 * step, 120_000_000_000) : 0)
            }
            guard now > deadline! else { continue }
            if Self.acknowledged.load(ordering: .relaxed) { return }
            say("ntkscape: rank \(rank): \(Self.signalName ?? "stop request") received, but this rank is inside work that "
                + "cannot stop midway (pair metrics, a linearised model, an NTK Gram, or a collective with another rank); "
                + "ending it after \(Int(grace)) s. Its task runs again from its start on resume (finished tasks are kept). "
                + "Exit status \(Self.exitStatus).")
            beforeForcedExit?()
            fflush(stdout)
            _exit(Self.exitStatus)
        }
    }

    /// Writes `line` to stderr in one `write`, so ranks' lines do not interleave.
    private func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    private static func nanoseconds() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }
}
