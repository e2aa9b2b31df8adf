import Foundation

/// A file one task writes and another reads (a checkpoint), with what is needed to tell whether
/// waiting for it can still succeed.
public struct ProducedFile: Sendable {
    /// The file awaited.
    public var path: String
    /// The id of the task that writes it.
    public var producer: String
    /// The producer's task record: its presence means the producer finished, and it writes the
    /// file before the record.
    public var producerRecord: String
    /// Written when the producer failed (`<record>.failed`); nil: not tracked.
    public var producerFailure: String?
    /// The producer's resume state: deleted with its record, the producer runs again from its start
    /// (and writes the file again).
    public var producerState: [String]

    public init(path: String, producer: String, producerRecord: String, producerFailure: String? = nil,
                producerState: [String] = []) {
        self.path = path
        self.producer = producer
        self.producerRecord = producerRecord
        self.producerFailure = producerFailure
        self.producerState = producerState
    }

    /// Marker of a failed task next to its record: `<record>.failed`.
    public static func failureMarker(record: String) -> String { record + ".failed" }

    /// Blocks until the file exists. Throws at once if it cannot appear any more — the producer
    /// finished without it (deleted since, or never written) or failed — and after `timeout`
    /// seconds (nil: no limit). `log` hears about long waits every `report` seconds. Throws
    /// `StopRequested` when `shouldStop()` says so (checked at every poll).
    public func wait(timeout: Double? = nil, poll: Double = 0.2, report: Double = 60,
                     shouldStop: () -> Bool = { false }, log: (String) -> Void = { _ in }) throws {
        let fm = FileManager.default
        let start = Date()
        var lastReport = 0.0
        while true {
            if fm.fileExists(atPath: path) { return }
            // The producer writes the file before its record: re-check the file after the record.
            if fm.fileExists(atPath: producerRecord) {
                if fm.fileExists(atPath: path) { return }
                throw TaskFailure(
                    task: "waiting for \(path)",
                    message: "the file is missing although task \(producer), which writes it, finished "
                        + "(its record \(producerRecord) exists): the file was deleted or never written",
                    fix: "rerun the same command: at its start a run checks the checkpoints of finished tasks, and task "
                        + "\(producer) runs again from its start and writes the file again (it removes "
                        + "\(([producerRecord] + producerState).joined(separator: " and ")) itself; docs/failures.md)")
            }
            if let marker = producerFailure, fm.fileExists(atPath: marker) {
                let reason = (try? String(contentsOfFile: marker, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                throw TaskFailure(
                    task: "waiting for \(path)",
                    message: "task \(producer), which writes the file, failed" + (reason.isEmpty ? "" : ": \(reason)"),
                    fix: "see that task's error (printed by its rank), fix its cause and rerun the same command")
            }
            if shouldStop() { throw StopRequested(task: "waiting for \(path) (written by task \(producer))") }
            let waited = Date().timeIntervalSince(start)
            if let timeout, waited >= timeout {
                throw TaskFailure(
                    task: "waiting for \(path)",
                    message: "task \(producer), which writes the file, has not finished after \(Int(waited)) s "
                        + "(--wait-timeout \(formatSeconds(timeout)))",
                    fix: "check the progress of task \(producer) in the job's log; if it is merely slow, rerun "
                        + "the same command with a larger --wait-timeout (or none): finished tasks are kept")
            }
            if waited - lastReport >= report {
                lastReport = waited
                log("waiting \(Int(waited)) s for \(path) (written by task \(producer))")
            }
            usleep(UInt32(max(poll, 0.001) * 1e6))
        }
    }

    private func formatSeconds(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(s)
    }
}
