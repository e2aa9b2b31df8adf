import Foundation

/// How the runner's tasks fail (docs/failures.md): every task runs inside `during` (its error names
/// the task and the fix), injected faults fire at the start of their phase, a failed task leaves a
/// marker next to its record, and waiting for another task's file knows when to give up.
extension ExperimentRunner {
    /// The fault-injection phase a task belongs to.
    static func faultPhase(_ task: ExperimentTask) -> FaultInjection.Phase {
        switch task {
        case .parent, .child, .linearizedGrid, .linearized, .secondOrder, .nonlinearChild: return .train
        case .pair, .timeline, .timelinePairs, .plane, .trajectories, .embedding: return .pairs
        case .kernelTimeline, .kernelChildren, .kernelMachine, .hessian: return .ntk
        }
    }

    /// Runs `task` through `body`: injected faults first, errors named after the task, and a
    /// failure marker (`<record>.failed`, the error text) that ranks waiting on its files see.
    func runTask(_ task: ExperimentTask, _ body: () throws -> TaskRecord) throws -> TaskRecord {
        do {
            return try during("task \(task.id)", fix: rerunFix) {
                try FaultInjection.check(Self.faultPhase(task), rank: comm.rank)
                return try body()
            }
        } catch let stop as StopRequested {
            throw stop   // not a failure: no marker, the rerun resumes the task (StopRequest.swift)
        } catch {
            let failure = TaskFailure.wrapping(error, task: "task \(task.id)", fix: rerunFix)
            try? AtomicFile.write("rank \(comm.rank): \(failure.message)\n",
                                  to: ProducedFile.failureMarker(record: paths.taskDone(task.id)))
            throw failure
        }
    }

    /// Removes the failure markers a previous job left (rank 0), before any rank waits on a file.
    /// Collective.
    func clearFailureMarkers() {
        if comm.rank == 0 {
            let fm = FileManager.default
            for name in (try? fm.contentsOfDirectory(atPath: paths.tasksDirectory)) ?? [] where name.hasSuffix(".failed") {
                try? fm.removeItem(atPath: paths.tasksDirectory + "/" + name)
            }
        }
        comm.barrier()
    }

    /// The file `path` with the task that writes it: a parent checkpoint (its parent), a child's
    /// final weights (that child), or a learning-rate grid's task record (that grid task).
    func producedFile(_ path: String) throws -> ProducedFile {
        var producer: ExperimentTask?, state: String?
        for r in 0..<config.replicates where producer == nil {
            for i in config.linearized.times.indices where paths.taskDone(ExperimentTask.linearizedGrid(replicate: r, time: i).id) == path {
                producer = .linearizedGrid(replicate: r, time: i)
            }
            if config.parentCheckpointTimes.contains(where: { paths.parentCheckpoint(replicate: r, epoch: $0) == path }) {
                (producer, state) = (.parent(replicate: r), paths.parentTrainingState(replicate: r))
            }
            for (s, spawn) in spawnTimes.enumerated() {
                for k in 0..<childrenPerSpawn where paths.childCheckpoint(replicate: r, spawn: spawn, child: k) == path {
                    (producer, state) = (.child(replicate: r, spawn: s, child: k),
                                         paths.childTrainingState(replicate: r, spawn: spawn, child: k))
                }
            }
        }
        guard let producer else {
            throw TaskFailure(task: "waiting for \(path)", message: "no task of this run writes the file",
                              fix: "this is a bug in ntkscape: report it with the experiment file")
        }
        let record = paths.taskDone(producer.id)
        return ProducedFile(path: path, producer: producer.id, producerRecord: record,
                            producerFailure: ProducedFile.failureMarker(record: record), producerState: state.map { [$0] } ?? [])
    }

    /// Blocks until checkpoint `path` (written by another task, maybe on another rank) exists;
    /// throws when it cannot appear any more or after `waitTimeout` seconds.
    func waitFor(_ path: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        status?.note("waiting for \((path as NSString).lastPathComponent) from another task")
        try producedFile(path).wait(timeout: waitTimeout, shouldStop: shouldStop) { self.log("rank \(self.comm.rank): \($0)") }
    }
}
