import ArgumentParser
import Core
import Foundation
import Parallel
import Report

/// `ntkscape run [EXPERIMENT.yaml]`: the whole measurement programme over the ranks of the job.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment (default: the built-in quick experiment) over all MPI ranks.",
        discussion: """
            Every rank computes the same static plan (parents, children pipelined behind the parent's \
            spawn checkpoints, pair and timeline metrics), runs its share, and rank 0 writes the tables \
            into the run directory <runs>/<name>-<hash>. Rerunning the same experiment skips finished \
            tasks and resumes unfinished training from its last epoch. Threads per rank come from \
            --threads, else the experiment's `threads`, else 1, so results do not depend on how many \
            ranks share a node.
            """)

    @OptionGroup var experiment: ExperimentOptions
    @Option(help: "Directory holding run directories.") var runs: String = "runs"
    @Option(help: "Compute threads per rank (overrides the experiment's `threads`).") var threads: Int?
    @Flag(name: .customLong("print-run-dir"), help: "Print the run directory and exit without running.") var printRunDir = false
    @Flag(help: "Print every experiment setting with its default and meaning, and exit.") var explain = false
    @Option(help: ArgumentHelp(
        "Progress display: auto, live or lines.",
        discussion: "live: rank 0 redraws one status block in place on the terminal (every rank's task, epoch, loss, "
            + "img/s, tasks done of total, ETA); lines: timestamped lines on stderr, at most one progress line every "
            + "10 s per rank (log files, Slurm). auto: live when started from a terminal, else lines. Every rank's "
            + "lines are also in <run>/logs/rank-<k>.log."))
    var progress: ProgressMode = .auto

    @Option(name: .customLong("wait-timeout"), help: ArgumentHelp(
        "Longest wait, in seconds, for a checkpoint another rank writes (default: no limit).",
        discussion: "A last resort: a rank already stops waiting when the file can no longer appear "
            + "(its producing task finished without it or failed; docs/failures.md)."))
    var waitTimeout: Double?

    func validate() throws {
        try OptionChecks.threads(threads)
        if let waitTimeout, !(waitTimeout > 0) { throw ValidationError("--wait-timeout must be positive, got \(waitTimeout)") }
    }

    func run() throws {
        if explain { print(ExperimentConfig.documentation()); return }
        if try experiment.printConfigIfAsked() { return }
        if printRunDir {
            let config = try experiment.load()
            print(RunPaths(root: runs, config: config).runDirectory)
            return
        }
        let world = Parallel.worldCommunicator()
        // Rank 0 decides how progress is shown (it has the terminal), so every rank shows it alike.
        let mode = world.broadcast(bytes: world.rank == 0 ? Array(progress.resolved().rawValue.utf8) : [], root: 0)
        let runLog = RunLog(rank: world.rank, mode: ProgressMode(rawValue: String(decoding: mode, as: UTF8.self)) ?? .lines)
        // SIGUSR1: training saves its state and the job ends with status 75 (StopSignal).
        let stop = StopSignal.install(world: world)
        let log: (String) -> Void = { runLog.line($0) }
        // Set-up: the same on every rank, and agreed, so a bad experiment file or data set is reported
        // once. Data are loaded and every setting checked before anything is written.
        let (config, runner, threadCount, lock) = try world.agree {
            try during("set-up", fix: "correct the experiment file or the data set named above (docs/experiment.md), then rerun") {
                let config = try experiment.load()
                let decision = BLASThreads.configure(option: threads ?? config.threads ?? 1, ranksOnNode: 1)
                let runner = try ExperimentRunner(config: config, runsRoot: runs, comm: world, algebra: gramAlgebra, log: log)
                runner.waitTimeout = waitTimeout
                runner.shouldStop = { StopSignal.shouldStop() }
                try FaultInjection.check(.setup, rank: world.rank)
                let lock = world.rank == 0 ? try createRunDirectory(runner, config: config, log: log) : nil
                return (config, runner, decision.threads, lock)
            }
        }
        // Rank 0 holds the run directory's lock until the job ends (a killed job leaves a stale lock
        // that the next run on this host removes; RunLock).
        defer { lock?.release() }
        stop.beforeForcedExit = { lock?.release() }
        let paths = runner.paths
        try during("opening the log \(paths.log(rank: world.rank))", fix: "make \(paths.runDirectory) writable, then rerun") {
            try runLog.open(paths.log(rank: world.rank))
        }
        defer { runLog.close() }
        runLog.line("rank \(world.rank) on \(runner.host): ntkscape \(NTKScapeVersion.string), "
                    + CommandLine.arguments.joined(separator: " "))
        runner.runLog = runLog
        if world.rank == 0 {
            print("run directory: \(paths.runDirectory)")
            print("\(world.size) rank(s) x \(threadCount) thread(s)")
        }
        let plan = runner.plan()
        if world.rank == 0 { print(Self.planLine(runner, plan)) }
        let start = Benchmark.now(), startDate = Date()
        runLog.showStatus(of: (0..<world.size).map { paths.status(rank: $0) })
        // When several ranks fail at once, the first reports (docs/failures.md); runner.run() clears
        // a previous job's lock with its failure markers before any rank can fail.
        JobFailure.reportLock = ProducedFile.failureMarker(record: paths.tasksDirectory + "/job")
        // Errors here end the job through the entry point's abort path (NTKScape.main); a stop on
        // request (SIGUSR1) ends it with status 75 once the ranks saved their state.
        let gathered: ExperimentRunner.Outcome?
        do {
            gathered = try runner.run()
        } catch let request as StopRequested {
            runLog.stopStatus()
            lock?.release()
            stop.finish(request)
        }
        runLog.stopStatus()
        guard let outcome = gathered else {
            // The other ranks wait here while rank 0 writes the tables.
            try during("waiting for rank 0 to write the tables", fix: rerunFix) {
                try FaultInjection.check(.tables, rank: world.rank)
            }
            world.barrier()
            return
        }
        let tables = try during("writing the tables and the manifest in \(paths.runDirectory)",
                                fix: "free disk space or make \(paths.runDirectory) writable, then rerun the same command: "
                                    + "every task is done, only the tables are written again") {
            try FaultInjection.check(.tables, rank: world.rank)
            let tables = ExperimentTables(records: outcome.records)
            removeTemporaries(in: paths.tablesDirectory)
            try tables.write(to: paths)
            try tables.writeStatistics(config.statistics, seed: config.seed, to: paths)
            try Manifest.write(config: config, paths: paths, plan: plan, records: outcome.records, ranks: world.size,
                               threads: threadCount, wallSeconds: Benchmark.now() - start, started: startDate,
                               hosts: outcome.hosts, ran: outcome.ran)
            return tables
        }
        print(tables.summary())
        let kernel = tables.kernelSummary()
        if !kernel.isEmpty { print("\n" + kernel) }
        noteNonFiniteRows(in: paths)
        let ran = outcome.ran.count, total = outcome.records.count
        print("\nfinished in \(formatDuration(Benchmark.now() - start)) ("
              + (ran == total ? "all \(total) tasks run now)" : "\(ran) of \(total) tasks run now, the others in earlier sessions)"))
        print("tables: \(paths.tablesDirectory)")
        print("logs: \(paths.logs)")
        // The report only warns when it fails: the tables are complete and written, and
        // `ntkscape report` makes the report again from them (docs/report.md). The other ranks wait
        // at the barrier; a crash here ends the job through mpirun like any rank failure.
        do {
            let report = try during("writing the report in \(paths.runDirectory)",
                                    fix: "the tables are complete; rerun `ntkscape report \(paths.runDirectory)`") {
                try ReportWriter.write(paths)
            }
            print("report: \(report.report)")
        } catch {
            FileHandle.standardError.write(Data("warning: the report was not written: \(error)\n".utf8))
        }
        world.barrier()
    }

    /// `plan: 40 tasks: 32 pipelined, 5 of them on training groups of 2 ranks (rank 0: 17, rank 1: 15;
    /// work 100% / 97% of the busiest rank), then 8 NTK/Hessian tasks on 1 group of 2 ranks; 12 done already`.
    static func planLine(_ runner: ExperimentRunner, _ plan: TaskPlan) -> String {
        let counts = plan.ranks.map(\.count), kernel = runner.kernelTasks().count
        let slots = plan.slots, busiest = max(plan.makespan, 1e-9)
        let grouped = slots.values.filter { $0.group.count > 1 }
        let sizes = Set(grouped.map(\.group.count)).sorted().map(String.init).joined(separator: ", ")
        var line = "plan: \(slots.count + kernel) tasks: \(slots.count) pipelined"
            + (grouped.isEmpty ? " on one rank each (" : ", \(grouped.count) of them on training groups of \(sizes) ranks (")
            + counts.enumerated().map { "rank \($0.offset): \($0.element)" }.joined(separator: ", ")
        if counts.count > 1 {
            line += "; estimated work " + plan.busy.map { String(format: "%.0f%%", 100 * $0 / busiest) }.joined(separator: " / ")
                + " of the busiest rank"
        }
        line += ")"
        if kernel > 0 {
            let groups = runner.kernelGroups(ranks: runner.comm.size)
            line += ", then \(kernel) NTK/Hessian task(s) on \(groups) group(s) of \(runner.comm.size / groups) rank(s)"
        }
        let done = runner.graph.ids.filter { FileManager.default.fileExists(atPath: runner.paths.taskDone($0)) }.count
        if done > 0 { line += "; \(done) done already (skipped)" }
        return line
    }

    /// Names the tables with rows holding NaN or infinite values (recorded as `nan`/`inf`, docs/experiment.md).
    private func noteNonFiniteRows(in paths: RunPaths) {
        let fm = FileManager.default
        for name in ((try? fm.contentsOfDirectory(atPath: paths.tablesDirectory)) ?? []).sorted() where name.hasSuffix(".csv") {
            guard let text = try? String(contentsOfFile: paths.tablesDirectory + "/" + name, encoding: .utf8) else { continue }
            let rows = NonFinite.rows(inCSV: text)
            if !rows.isEmpty {
                print("note: \(name): \(rows.count) row(s) hold non-finite values, recorded as nan/inf "
                      + "(rows \(rows.prefix(8).map(String.init).joined(separator: ", "))\(rows.count > 8 ? ", ..." : ""))")
            }
        }
    }

    /// Removes the temporary files (`<file>.tmp-<pid>-<hex>`, AtomicFile) a job killed while writing
    /// left in `directory`.
    private func removeTemporaries(in directory: String) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.contains(".tmp-") {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
    }

    /// Rank 0: the run directory, locked, its fingerprint checked (or written at the first start), with
    /// the experiment file as given and the resolved configuration.
    private func createRunDirectory(_ runner: ExperimentRunner, config: ExperimentConfig,
                                    log: (String) -> Void) throws -> RunLock {
        let paths = runner.paths
        try during("creating the run directory \(paths.runDirectory)",
                   fix: "make \(runs) a writable directory with free space (or choose another with --runs), then rerun") {
            try FileManager.default.createDirectory(atPath: paths.tasksDirectory, withIntermediateDirectories: true)
        }
        let lock = try RunLock.acquire(paths.lock, log: log)
        do {
            try RunFingerprint(train: runner.train, test: runner.test).establish(in: paths, log: log)
            try during("creating the run directory \(paths.runDirectory)",
                       fix: "make \(runs) a writable directory with free space (or choose another with --runs), then rerun") {
                if let experiment = experiment.experiment { try AtomicFile.write(try String(contentsOfFile: experiment, encoding: .utf8), to: paths.configCopy) }
                try AtomicFile.write(config.canonicalJSON(), to: paths.resolvedConfig)
            }
        } catch {
            lock.release()
            throw error
        }
        return lock
    }
}

/// Eigen-decompositions and Cholesky solves of a group's Grams: LAPACK for one rank, ScaLAPACK on
/// the group's `p x 1` BLACS grid otherwise.
func gramAlgebra(_ group: Communicator) throws -> GramLinearAlgebra {
    if group.size == 1 { return LAPACKGramAlgebra() }
    guard let mpi = group as? MPICommunicator else {
        throw ValidationError("internal: a \(group.size)-rank group without MPI")
    }
    return try ScaLAPACKGramAlgebra(communicator: mpi)
}
