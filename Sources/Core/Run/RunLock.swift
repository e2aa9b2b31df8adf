import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `<run>/run.lock`: one job at a time in a run directory (docs/experiment.md, "One job per run
/// directory"). Rank 0 creates it exclusively (`O_CREAT | O_EXCL`) before any work and removes it
/// when the job ends; it holds `pid=<pid> host=<host> started=<ISO 8601 time>`.
///
/// A second job into the same directory fails at once, naming the holder. A lock left by a job that
/// was killed (no clean exit, e.g. a Slurm time limit) is stale, removed with a note and taken over,
/// when its host is this host and its process no longer exists, or — on any host — when it has not
/// been refreshed for `staleAfter` seconds: the holder touches the file every `heartbeat` seconds
/// while it runs, so a job resubmitted onto another node takes over the lock of a killed one.
public final class RunLock {
    public let path: String
    private let content: String
    private var held = true
    private var timer: DispatchSourceTimer?

    /// Seconds between the holder's refreshes of the lock's modification time.
    public static let heartbeat = 30.0
    /// A lock not refreshed for this long belongs to a job that no longer runs.
    public static let staleAfter = 600.0

    private init(path: String, content: String) { self.path = path; self.content = content }

    /// This machine's host name (no DNS lookup).
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }

    /// Takes the lock of the run directory holding `path`, or throws a `TaskFailure` naming its holder.
    public static func acquire(_ path: String, log: (String) -> Void = { _ in }) throws -> RunLock {
        let started = ISO8601DateFormatter().string(from: Date())
        let content = "pid=\(getpid()) host=\(hostName) started=\(started)\n"
        for _ in 0..<3 {
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o644)
            if fd >= 0 {
                let bytes = Array(content.utf8)
                let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
                guard written == bytes.count else {
                    unlink(path)
                    throw TaskFailure(task: "locking the run directory", message: "cannot write \(path)",
                                      fix: "free disk space or make the run directory writable, then rerun")
                }
                let lock = RunLock(path: path, content: content)
                lock.startHeartbeat()
                return lock
            }
            let err = errno
            guard err == EEXIST else {
                throw TaskFailure(task: "locking the run directory",
                                  message: "cannot create \(path): \(String(cString: strerror(err)))",
                                  fix: "make the run directory writable, then rerun")
            }
            let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let holder = Holder(existing)
            let age = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
                .map { Date().timeIntervalSince($0) } ?? 0
            if holder.isStale || age > staleAfter {
                log("note: removing the stale lock \(path) (\(holder.text): "
                    + (holder.isStale ? "that process no longer runs on this host)" : "not refreshed for \(Int(age)) s)"))
                // Remove it only if it is still the same stale lock (another job may have replaced it).
                if (try? String(contentsOfFile: path, encoding: .utf8)) == existing { unlink(path) }
                continue
            }
            throw TaskFailure(task: "locking the run directory",
                              message: "another ntkscape job is running in this run directory (\(holder.text); lock \(path)); "
                                  + "two jobs in one directory would do the same work twice and write the same files",
                              fix: "wait for that job to finish (a rerun then continues where it stopped), or run into another "
                                  + "--runs directory; if that job no longer runs (killed on another node), delete \(path) and rerun "
                                  + "(a lock not refreshed for \(Int(staleAfter)) s is taken over by itself)")
        }
        throw TaskFailure(task: "locking the run directory", message: "\(path) keeps reappearing while a stale lock is removed",
                          fix: "make sure no other job runs in the directory, delete \(path) and rerun")
    }

    /// Refreshes the lock's modification time every `heartbeat` seconds while it is held.
    private func startHeartbeat() {
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        t.schedule(deadline: .now() + Self.heartbeat, repeating: Self.heartbeat)
        let path = self.path
        t.setEventHandler { _ = utimes(path, nil) }
        t.resume()
        timer = t
    }

    /// Removes the lock (if it is still ours). Idempotent.
    public func release() {
        guard held else { return }
        held = false
        timer?.cancel()
        timer = nil
        if (try? String(contentsOfFile: path, encoding: .utf8)) == content { unlink(path) }
    }

    deinit { release() }

    /// Whether process `pid` has exited but not been reaped (state `Z` or `X` in `/proc/<pid>/stat`).
    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state == "Z" || state == "X"
    }

    /// The process named by a lock file.
    struct Holder {
        var pid: Int32?, host: String?, text: String

        init(_ content: String) {
            var fields: [String: String] = [:]
            for part in content.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
            }
            pid = fields["pid"].flatMap { Int32($0) }
            host = fields["host"]
            text = content.isEmpty ? "holder unknown: empty lock file"
                : "pid \(fields["pid"] ?? "?") on host \(fields["host"] ?? "?"), started \(fields["started"] ?? "?")"
        }

        /// Held by a process of this host that no longer exists (or is a zombie: killed, not yet reaped).
        var isStale: Bool {
            guard let pid, pid > 0, host == RunLock.hostName else { return false }
            if kill(pid, 0) != 0 { return errno == ESRCH }
            return RunLock.isZombie(pid)
        }
    }
}
