import Foundation

// Training the parent and the children: pipelined one-rank tasks that write the checkpoints
// every other task reads.

extension ExperimentRunner {
    func makeTrainer(identity: TrainingIdentity) -> Trainer {
        Trainer(network: config.model.build(input: inputShape, classes: train.classCount), recipe: recipe, data: train,
                identity: identity)
    }

    func trainParent(_ r: Int) throws -> TaskRecord {
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r))
        let state = paths.parentTrainingState(replicate: r)
        if FileManager.default.fileExists(atPath: state) {
            try Checkpoint.read(state).restore(into: trainer)
        } else {
            trainer.initializeWeights()
        }
        let saves = config.parentCheckpointTimes.map { (time: $0, step: recipe.step(atEpoch: $0, examples: train.count)) }
        // Checkpoints with the optimiser state, so children can continue from them.
        let saver = TimedSaves(saves: saves) { t, time in
            try Checkpoint(trainer: t).write(to: self.paths.parentCheckpoint(replicate: r, epoch: time))
        }
        try saver.fire(trainer)   // time 0 (and anything at the resumed step)
        let curve = curveRecorder(trainer, replicate: r, run: "parent", spawnEpoch: nil,
                                  path: paths.parentTrainingCurve(replicate: r))
        // The curve is written before the rolling state (TrainingCurveRecorder explains why).
        try trainer.train(until: trainer.finalStep, callbacks: [saver] + (curve.map { [$0] } ?? []) + [
            RollingState(path: state),
            StopOnRequest(path: state, task: "task \(ExperimentTask.parent(replicate: r).id)", curve: curve, shouldStop: shouldStop),
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

    func trainChild(_ r: Int, _ s: Int, _ k: Int) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let final = paths.childCheckpoint(replicate: r, spawn: spawn, child: k)
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r, child: childNumber(spawn: s, child: k)))
        let state = paths.childTrainingState(replicate: r, spawn: spawn, child: k)
        if FileManager.default.fileExists(atPath: state) {
            try Checkpoint.read(state).restore(into: trainer)
        } else {
            let source = paths.parentCheckpoint(replicate: r, epoch: spawn)
            try waitFor(source)
            try Checkpoint.read(source).restore(into: trainer)   // weights, BN state, optimiser, step
        }
        let curve = curveRecorder(trainer, replicate: r, run: "child-\(k)", spawnEpoch: spawn,
                                  path: paths.childTrainingCurve(replicate: r, spawn: spawn, child: k))
        let predictions = predictionSaver(replicate: r, spawn: spawn, child: k)
        try predictions?.fire(trainer)   // the spawn time (and anything at the resumed step)
        // Predictions before the rolling state, so a resumed child never skips a prediction time.
        try trainer.train(until: trainer.finalStep, callbacks: (predictions.map { [$0] } ?? []) + (curve.map { [$0] } ?? []) + [
            RollingState(path: state),
            StopOnRequest(path: state, task: "task \(ExperimentTask.child(replicate: r, spawn: s, child: k).id)", curve: curve,
                          shouldStop: shouldStop),
            ProgressPrinter(label: "r\(r) spawn \(spawn) child \(k)", endStep: trainer.finalStep, interval: 30),
        ])
        try Checkpoint(trainer: trainer).write(to: final)
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
