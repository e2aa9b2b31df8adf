import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `<run>/run.lock`: one job at a time in a run directory (docs/experiment.md, "One job per run
/// directory"). Rank 0 creates it exclusively (`O_CREAT | O_EXCL`) before any work and removes it
/// when the job ends; it holds `pid=<pid> host=<host> started=<ISO 8601 time>`.
///
/// A second job into the same directory fails at once, naming the holder. A lock left by a job that
/// was killed (no clean exit) is stale: when its host is this host and its process no longer
/// exists, it is removed with a note and taken over; on another host that cannot be checked, and
/// the message says to delete it once that job is known to be gone.
public final class RunLock {
    public let path: String
    private let content: String
    private var held = true

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
                return RunLock(path: path, content: content)
            }
            let err = errno
            guard err == EEXIST else {
                throw TaskFailure(task: "locking the run directory",
                                  message: "cannot create \(path): \(String(cString: strerror(err)))",
                                  fix: "make the run directory writable, then rerun")
            }
            let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let holder = Holder(existing)
            if holder.isStale {
                log("note: removing the stale lock \(path) (\(holder.text): that process no longer runs on this host)")
                // Remove it only if it is still the same stale lock (another job may have replaced it).
                if (try? String(contentsOfFile: path, encoding: .utf8)) == existing { unlink(path) }
                continue
            }
            throw TaskFailure(task: "locking the run directory",
                              message: "another ntkscape job is running in this run directory (\(holder.text); lock \(path)); "
                                  + "two jobs in one directory would do the same work twice and write the same files",
                              fix: "wait for that job to finish (a rerun then continues where it stopped), or run into another "
                                  + "--runs directory; if that job no longer runs (killed on another node), delete \(path) and rerun")
        }
        throw TaskFailure(task: "locking the run directory", message: "\(path) keeps reappearing while a stale lock is removed",
                          fix: "make sure no other job runs in the directory, delete \(path) and rerun")
    }

    /// Removes the lock (if it is still ours). Idempotent.
    public func release() {
        guard held else { return }
        held = false
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
