import Foundation

// Training the parent and the children: pipelined tasks that write the checkpoints every other
// task reads. Each trains on one rank or on a data-parallel group of ranks (`Trainer.group`, the
// plan's group slots): every member trains every step and holds the same weights, only the
// group's rank 0 writes files (checkpoints, rolling state, curves, predictions), and decisions
// that end training are agreed (`Trainer.anyMember`).

extension ExperimentRunner {
    func makeTrainer(identity: TrainingIdentity, group: Communicator) -> Trainer {
        Trainer(network: config.model.build(input: inputShape, classes: train.classCount), recipe: recipe, data: train,
                identity: identity, group: group)
    }

    /// Restores `trainer` from its rolling resume state `state` when there is one — the group's
    /// rank 0 decides, so every member resumes alike — and otherwise runs `start`. Every member has
    /// read what it needs before any member goes on (a barrier): rank 0 rewrites `state` at its
    /// first epoch end.
    func resume(_ trainer: Trainer, from state: String, otherwise start: () throws -> Void) throws {
        let group = trainer.group
        let found = FileManager.default.fileExists(atPath: state)
        let exists = group.size == 1 ? found : group.broadcast(bytes: group.rank == 0 ? [found ? 1 : 0] : [], root: 0) == [1]
        if exists {
            try Checkpoint.read(state).restore(into: trainer)
        } else {
            try start()
        }
        group.barrier()
    }

    func trainParent(_ r: Int, group: Communicator = SerialCommunicator()) throws -> TaskRecord {
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r), group: group)
        let state = paths.parentTrainingState(replicate: r), writes = group.rank == 0
        try resume(trainer, from: state) { trainer.initializeWeights() }
        let saves = config.parentCheckpointTimes.map { (time: $0, step: recipe.step(atEpoch: $0, examples: train.count)) }
        // Checkpoints with the optimiser state, so children can continue from them.
        let saver = TimedSaves(saves: saves) { t, time in
            try Checkpoint(trainer: t).write(to: self.paths.parentCheckpoint(replicate: r, epoch: time))
        }
        if writes { try saver.fire(trainer) }   // time 0 (and anything at the resumed step)
        let curve = writes ? curveRecorder(trainer, replicate: r, run: "parent", spawnEpoch: nil,
                                           path: paths.parentTrainingCurve(replicate: r)) : nil
        // The curve is written before the rolling state (TrainingCurveRecorder explains why).
        let files: [TrainingCallback] = writes ? [saver] + (curve.map { [$0] } ?? []) + [RollingState(path: state)] : []
        try trainer.train(until: trainer.finalStep, callbacks: files + [
            StopOnRequest(path: state, task: "task \(ExperimentTask.parent(replicate: r).id)", curve: curve, writes: writes,
                          shouldStop: shouldStop),
            ProgressPrinter(label: "r\(r) parent", endStep: trainer.finalStep, interval: 15),
        ])
        var record = TaskRecord(id: ExperimentTask.parent(replicate: r).id)
        record.trainingCurves = curve?.rows ?? []
        return record
    }

    /// The training-curve recorder of a network (nil when `training_curves.every_steps` is 0).
    func curveRecorder(_ trainer: Trainer, replicate: Int, run: String, spawnEpoch: Double?, path: String) -> TrainingCurveRecorder? {
        let every = config.trainingCurves.everySteps
        guard every > 0 else { return nil }
        return TrainingCurveRecorder(trainer: trainer, everySteps: every, replicate: replicate, run: run,
                                     spawnEpoch: spawnEpoch, path: path)
    }

    func trainChild(_ r: Int, _ s: Int, _ k: Int, group: Communicator = SerialCommunicator()) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let final = paths.childCheckpoint(replicate: r, spawn: spawn, child: k)
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r, child: childNumber(spawn: s, child: k)),
                                  group: group)
        let state = paths.childTrainingState(replicate: r, spawn: spawn, child: k), writes = group.rank == 0
        try resume(trainer, from: state) {
            let source = paths.parentCheckpoint(replicate: r, epoch: spawn)
            try waitFor(source)   // every member waits for the parent's checkpoint and reads it
            try Checkpoint.read(source).restore(into: trainer)   // weights, BN state, optimiser, step
        }
        let curve = writes ? curveRecorder(trainer, replicate: r, run: "child-\(k)", spawnEpoch: spawn,
                                           path: paths.childTrainingCurve(replicate: r, spawn: spawn, child: k)) : nil
        let predictions = writes ? predictionSaver(replicate: r, spawn: spawn, child: k) : nil
        try predictions?.fire(trainer)   // the spawn time (and anything at the resumed step)
        // Predictions before the rolling state, so a resumed child never skips a prediction time.
        let files: [TrainingCallback] = (predictions.map { [$0] } ?? []) + (curve.map { [$0] } ?? [])
            + (writes ? [RollingState(path: state)] : [])
        try trainer.train(until: trainer.finalStep, callbacks: files + [
            StopOnRequest(path: state, task: "task \(ExperimentTask.child(replicate: r, spawn: s, child: k).id)", curve: curve,
                          writes: writes, shouldStop: shouldStop),
            ProgressPrinter(label: "r\(r) spawn \(spawn) child \(k)", endStep: trainer.finalStep, interval: 30),
        ])
        if writes { try Checkpoint(trainer: trainer).write(to: final) }
        var record = TaskRecord(id: ExperimentTask.child(replicate: r, spawn: s, child: k).id)
        record.trainingCurves = curve?.rows ?? []
        return record
    }
}

/// Overwrites the rolling resume state (a checkpoint with the optimiser state) at every epoch end,
/// so an interrupted run or `train` resumes from its last epoch.
public final class RollingState: TrainingCallback {
    let path: String
    public init(path: String) { self.path = path }
    public func afterStep(_ t: Trainer, summary: LossSummary) throws {
        if t.step % t.stepsPerEpoch == 0 { try Checkpoint(trainer: t).write(to: path) }
    }
}
