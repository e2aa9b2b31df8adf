import Foundation

/// How `ntkscape run` shows progress (`--progress`).
public enum ProgressMode: String, CaseIterable, Sendable {
    /// `live` when a terminal is at hand (stderr is one, or the job was started from one), else `lines`.
    case auto
    /// Rank 0 redraws one status block in place on the terminal: every rank's task, epoch, loss,
    /// img/s, tasks done of total and ETA. Log lines go to the rank logs only (and rank 0's to the terminal).
    case live
    /// Timestamped lines on stderr, at most one progress line every `RunStatus.lineInterval` seconds per rank.
    case lines

    /// `auto` decided: live when the job's output goes to a terminal — stderr is one, or under
    /// mpirun (which pipes stderr and gives stdout a pseudo-terminal whatever its own output is)
    /// when the launcher's stdout and stderr are terminals; else lines.
    public func resolved() -> ProgressMode {
        guard self == .auto else { return self }
        return Self.terminal() == nil ? .lines : .live
    }

    /// Where the live block is drawn: stderr when it is a terminal; under mpirun, stdout (forwarded
    /// in order with the rank's printed lines) when the launcher writes to a terminal; else nil.
    static func terminal() -> FileHandle? {
        if ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] == nil {
            return isatty(2) == 1 ? FileHandle.standardError : nil
        }
        func isTerminal(_ link: String) -> Bool {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return false }
            return target.hasPrefix("/dev/pts/") || target.hasPrefix("/dev/tty")
        }
        let launcher = "/proc/\(getppid())/fd/"
        return isatty(1) == 1 && isTerminal(launcher + "1") && isTerminal(launcher + "2") ? FileHandle.standardOutput : nil
    }
}

/// A rank's log: every line timestamped (ISO 8601, UTC) into `logs/rank-<k>.log` and onto stderr
/// (in `live` mode only rank 0's, above the status block). Lines before the run directory exists
/// are kept and written when the file opens.
public final class RunLog: @unchecked Sendable {
    public let rank: Int
    public let mode: ProgressMode
    private let lock = NSLock()
    private var file: FileHandle?
    private var pending: [String] = []
    /// Rank 0's status block in live mode: cleared before a line is written and redrawn after.
    var board: StatusBoard?

    public init(rank: Int, mode: ProgressMode) {
        self.rank = rank
        self.mode = mode.resolved()
    }

    /// Appends to `path` from now on (creating it and its directory), with what was logged so far.
    public func open(_ path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError(path: path, problem: "cannot be opened for writing", fix: "make the run directory writable")
        }
        handle.seekToEndOfFile()
        lock.lock(); defer { lock.unlock() }
        file = handle
        for line in pending { handle.write(Data(line.utf8)) }
        pending = []
    }

    /// `2026-12-03T12:00:00Z <message>` to the log file and stderr.
    public func line(_ message: String) {
        let text = Manifest.timestamp(Date()) + " " + message + "\n"
        lock.lock(); defer { lock.unlock() }
        if let file { file.write(Data(text.utf8)) } else { pending.append(text) }
        if mode == .lines || rank == 0 {
            if let board { board.above(text) } else { FileHandle.standardError.write(Data(text.utf8)) }
        }
    }

    /// Rank 0 in live mode: draws the status block of the ranks whose status files are `files`
    /// on the terminal until `stopStatus()`. Elsewhere nothing.
    public func showStatus(of files: [String]) {
        guard mode == .live, rank == 0, board == nil else { return }
        let terminal = ProgressMode.terminal() ?? FileHandle.standardError
        let board = StatusBoard(files: files, terminal: terminal)
        lock.lock(); self.board = board; lock.unlock()
        board.startDrawing()
    }

    /// Leaves the last status block on the screen; later lines go to stderr again.
    public func stopStatus() {
        lock.lock(); let board = self.board; self.board = nil; lock.unlock()
        board?.stop()
    }

    public func close() {
        lock.lock(); defer { lock.unlock() }
        try? file?.close()
        file = nil
    }
}

/// One rank's progress through its share of the plan: the task it runs, the training loop's latest
/// report, tasks done of its total and the estimated time left. Written (atomically, at most every
/// `fileInterval` seconds) to `logs/status-<k>.json`, from which rank 0 draws the live block; in
/// `lines` mode shown as a log line at most every `lineInterval` seconds. No MPI: a rank that stops
/// only stops updating its file.
public final class RunStatus: @unchecked Sendable {
    public struct Snapshot: Codable, Equatable, Sendable {
        public var rank: Int
        public var host: String
        public var task: String?
        /// The training loop's report (`epoch ... img/s ETA ...`) or what the rank does (waiting, ...).
        public var detail: String
        public var tasksDone: Int
        public var tasksTotal: Int
        /// Seconds left for this rank's share, nil before anything was measured.
        public var eta: Double?
        /// Unix time of this snapshot.
        public var updated: Double
    }

    public static let fileInterval = 2.0
    public static let lineInterval = 10.0

    let log: RunLog, path: String?
    private let lock = NSLock()
    private var snapshot: Snapshot
    /// Costs of this rank's tasks (plan units), done or not, and the work done in this session.
    private var costs: [String: Double] = [:], done = Set<String>()
    private var workDone = 0.0, current: (id: String, cost: Double, fraction: Double)?
    private let start = Date()
    private var lastFile = 0.0, lastLine = 0.0

    /// `tasks`: this rank's tasks with their costs; `finished`: those already done (earlier session).
    public init(log: RunLog, path: String?, host: String, tasks: [(id: String, cost: Double)], finished: Set<String>) {
        self.log = log; self.path = path
        for t in tasks { costs[t.id] = t.cost }
        done = finished.intersection(costs.keys)
        snapshot = Snapshot(rank: log.rank, host: host, task: nil,
                            detail: done.count == tasks.count ? "nothing to do" : "starting", tasksDone: done.count,
                            tasksTotal: tasks.count, eta: nil, updated: Date().timeIntervalSince1970)
        write(force: true)
    }

    /// Seconds left at the rate so far (nil before any work was measured).
    private func estimate() -> Double? {
        let partial = current.map { $0.cost * $0.fraction } ?? 0
        let measured = workDone + partial
        guard measured > 0 else { return nil }
        let remaining = costs.filter { !done.contains($0.key) }.values.reduce(0, +) - partial
        return Date().timeIntervalSince(start) / measured * max(remaining, 0)
    }

    public func started(_ task: String) {
        lock.lock()
        current = (task, costs[task] ?? 0, 0)
        snapshot.task = task; snapshot.detail = "started"
        lock.unlock()
        write(force: true)
    }

    public func finished(_ task: String, seconds: Double) {
        lock.lock()
        if done.insert(task).inserted, costs[task] != nil { workDone += costs[task]! }
        current = nil
        snapshot.task = nil; snapshot.detail = "finished \(task) in \(formatDuration(seconds))"
        snapshot.tasksDone = done.count
        let eta = estimate()
        lock.unlock()
        log.line("rank \(log.rank): \(task) done in \(formatDuration(seconds)); this rank: \(done.count) of \(costs.count) tasks done"
                 + (eta.map { ", ETA \(formatDuration($0))" } ?? ""))
        write(force: true)
    }

    /// A training loop's report (from `ProgressPrinter.output`).
    public func training(_ r: ProgressPrinter.Report) {
        lock.lock()
        if var c = current { c.fraction = min(max(r.fraction, 0), 1); current = c }
        snapshot.detail = r.label + " " + r.text
        let now = Date().timeIntervalSince1970, show = log.mode == .lines && now - lastLine >= Self.lineInterval
        if show { lastLine = now }
        let eta = estimate(), line = "rank \(log.rank): \(snapshot.detail); this rank: \(done.count) of \(costs.count) tasks done"
            + (eta.map { ", ETA \(formatDuration($0))" } ?? "")
        lock.unlock()
        if show { log.line(line) }
        write(force: false)
    }

    /// What the rank does besides training (waiting for a file, ...).
    public func note(_ message: String) {
        lock.lock(); snapshot.detail = message; lock.unlock()
        write(force: false)
    }

    private func write(force: Bool) {
        lock.lock()
        let now = Date().timeIntervalSince1970
        guard let path, force || now - lastFile >= Self.fileInterval else { lock.unlock(); return }
        lastFile = now
        snapshot.eta = estimate()
        snapshot.updated = now
        let s = snapshot
        lock.unlock()
        try? AtomicFile.write(try JSONEncoder.sorted.encode(s), to: path)
    }
}

/// Rank 0's live status block in `live` mode: a thread that every second reads every rank's
/// `logs/status-<k>.json` and redraws the block in place on the terminal. It reads files only, so
/// it cannot hold up the job; a rank whose file is missing or old shows as such.
final class StatusBoard: @unchecked Sendable {
    let files: [String]
    private let out: FileHandle
    private let lock = NSLock()
    private var drawn = 0, stopped = false
    private let start = Date()

    init(files: [String], terminal: FileHandle) { self.files = files; out = terminal }

    func startDrawing() {
        let thread = Thread { [self] in
            while true {
                lock.lock(); let stop = stopped; lock.unlock()
                if stop { return }
                redraw()
                Thread.sleep(forTimeInterval: 1)
            }
        }
        thread.start()
    }

    /// Stops redrawing and leaves the last block on the screen.
    func stop() {
        redraw()
        lock.lock(); stopped = true; drawn = 0; lock.unlock()
    }

    /// Writes `text` (whole lines) above the block.
    func above(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        out.write(Data((clear() + text + render()).utf8))
    }

    private func redraw() {
        lock.lock(); defer { lock.unlock() }
        guard !stopped else { return }
        out.write(Data((clear() + render()).utf8))
    }

    /// Moves up over the block drawn last and erases it.
    private func clear() -> String {
        guard drawn > 0 else { return "" }
        return "\u{1B}[\(drawn)A\r\u{1B}[J"
    }

    private func render() -> String {
        // Files left by an earlier session (older than this board) do not count.
        let since = start.timeIntervalSince1970 - 5
        let lines = Self.lines(files.map { FileManager.default.contents(atPath: $0).flatMap {
            try? JSONDecoder().decode(RunStatus.Snapshot.self, from: $0)
        }.flatMap { $0.updated >= since ? $0 : nil } }, elapsed: Date().timeIntervalSince(start), now: Date().timeIntervalSince1970)
        drawn = lines.count
        return lines.map { $0 + "\n" }.joined()
    }

    /// The block: a total line, then one line per rank.
    static func lines(_ snapshots: [RunStatus.Snapshot?], elapsed: Double, now: Double) -> [String] {
        let known = snapshots.compactMap { $0 }
        let done = known.map(\.tasksDone).reduce(0, +), total = known.map(\.tasksTotal).reduce(0, +)
        let etas = known.filter { $0.tasksDone < $0.tasksTotal }.map { s in s.eta.map { max($0 - (now - s.updated), 0) } }
        let eta = etas.contains(where: { $0 == nil }) || etas.isEmpty ? nil : etas.compactMap { $0 }.max()
        var out = ["\(done) of \(total) tasks done, \(formatDuration(elapsed)) elapsed, ETA "
                   + (eta.map(formatDuration) ?? (done == total && total > 0 ? "0s" : "unknown"))]
        for (k, s) in snapshots.enumerated() {
            guard let s else { out.append("  rank \(k): no status yet"); continue }
            let stale = now - s.updated > 120 ? " (no update for \(formatDuration(now - s.updated)))" : ""
            out.append("  rank \(k) \(s.tasksDone)/\(s.tasksTotal): " + (s.task.map { $0 + " " } ?? "") + s.detail + stale)
        }
        return out
    }
}
