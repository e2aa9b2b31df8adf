import Foundation

/// The checkpoints of a rerun are checked before any rank uses them (docs/failures.md, "Missing or
/// corrupt checkpoints"): every checkpoint carries a SHA-256 of its content (`Checkpoint.checksumKey`),
/// and at the start of a run rank 0 verifies the files of the training tasks.
///
/// - A **finished** task (its record exists) whose output is missing, truncated or corrupt has its
///   record, its rolling state and the bad files removed, so it runs again from its start and
///   writes them again — bit for bit the same, training being deterministic. Tasks that read the
///   file and have not finished wait for it; tasks that read it and finished keep their records:
///   a checkpoint is verified whenever it is read, so they read an intact copy of the same bytes.
/// - An **unfinished** task's corrupt rolling state is removed (the task starts again from its
///   beginning); so is its rolling state when an output it already wrote is bad or missing (it
///   would not write it again from there), with the bad files.
extension ExperimentRunner {
    /// The checkpoints a training task writes with the global step at which each is written, and its
    /// rolling state (nil for other tasks).
    func trainingOutputs(_ task: ExperimentTask) -> (files: [(path: String, step: Int)], state: String)? {
        switch task {
        case let .parent(r):
            return (config.parentCheckpointTimes.map {
                (paths.parentCheckpoint(replicate: r, epoch: $0), recipe.step(atEpoch: $0, examples: train.count))
            }, paths.parentTrainingState(replicate: r))
        case let .child(r, s, k):
            let spawn = spawnTimes[s]
            return ([(paths.childCheckpoint(replicate: r, spawn: spawn, child: k), recipe.step(atEpoch: recipe.epochs, examples: train.count))],
                    paths.childTrainingState(replicate: r, spawn: spawn, child: k))
        default:
            return nil
        }
    }

    /// What is wrong with checkpoint `path` (nil: present and intact).
    static func checkpointProblem(_ path: String) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return "is missing" }
        do {
            try Checkpoint.verify(path)
            return nil
        } catch {
            return "is unreadable: " + TaskFailure.describe(error)
        }
    }

    /// Rank 0 checks the training tasks' checkpoints and rolling states and removes what must be
    /// recomputed (see the type's comment), logging each decision. Collective (ends in a barrier).
    func recheckCheckpoints() {
        if comm.rank == 0 {
            let fm = FileManager.default
            for (task, _) in tasks() {
                guard let outputs = trainingOutputs(task) else { continue }
                let record = paths.taskDone(task.id)
                let finished = fm.fileExists(atPath: record)
                var stateStep: Int?
                if fm.fileExists(atPath: outputs.state), let problem = Self.checkpointProblem(outputs.state) {
                    // Only the task itself reads its rolling state: a finished task's is just removed.
                    log("rank 0: \(task.id): its rolling state \(outputs.state) \(problem); "
                        + (finished ? "removed (the task finished; nothing reads it)" : "it starts again from its beginning"))
                    try? fm.removeItem(atPath: outputs.state)
                } else if !finished, fm.fileExists(atPath: outputs.state) {
                    stateStep = (try? SafeTensorsFile.read(from: outputs.state))?.metadata["step"].flatMap { Int($0) }
                }
                // Outputs that are bad, or missing although they should exist by now.
                var bad: [(path: String, problem: String)] = []
                for file in outputs.files {
                    let exists = fm.fileExists(atPath: file.path)
                    let due = finished || (stateStep.map { file.step < $0 } ?? false)
                    guard exists || due, let problem = Self.checkpointProblem(file.path) else { continue }
                    bad.append((file.path, problem))
                }
                guard !bad.isEmpty else { continue }
                let what = bad.map { "\($0.path) \($0.problem)" }.joined(separator: "; ")
                log("rank 0: recomputing task \(task.id) from its start" + (finished ? " although it finished" : "")
                    + ": \(what)")
                for file in bad { try? fm.removeItem(atPath: file.path) }
                try? fm.removeItem(atPath: outputs.state)
                try? fm.removeItem(atPath: record)
            }
        }
        comm.barrier()
    }
}
