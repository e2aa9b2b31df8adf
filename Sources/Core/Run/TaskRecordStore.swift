import Foundation

/// Persistence of finished tasks: a task is done when its record `tasks/<id>.json` exists and
/// decodes (RunPaths names it); a rerun skips it. A record that does not decode (a job killed while
/// an old version wrote it) counts as absent, and the task runs again.
extension ExperimentRunner {
    /// The bytes of `task`'s stored record, empty when there is none.
    func storedRecord(_ task: ExperimentTask) -> [UInt8] {
        FileManager.default.contents(atPath: paths.taskDone(task.id)).map { [UInt8]($0) } ?? []
    }

    /// Writes `record` atomically: a killed job leaves the old record or none, never half of one.
    func store(_ record: TaskRecord) throws {
        try AtomicFile.write(try JSONEncoder.sorted.encode(record), to: paths.taskDone(record.id))
    }
}

extension TaskRecord {
    /// The record in `bytes`, nil when they are empty or do not decode.
    static func decoded(_ bytes: [UInt8]) -> TaskRecord? {
        bytes.isEmpty ? nil : try? JSONDecoder.records.decode(TaskRecord.self, from: Data(bytes))
    }
}
