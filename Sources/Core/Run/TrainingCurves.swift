import Foundation

/// Records a network's training curve as it trains: every `everySteps` optimiser steps (and at the
/// final step) one `TrainingCurveRow` with the running mean of the batch losses and errors since
/// the previous row.
///
/// Resume: at every epoch end — the steps at which `RollingState` writes the resume checkpoint, and
/// this callback runs before it — and at a stop on request (`StopOnRequest`), the rows so far and
/// the open interval's sums are written to `path`, together with the sums at every earlier such
/// step. A resumed trainer restarts at one of those steps, so `init` restores exactly the rows and open interval of that step: the curve of a
/// resumed run equals an uninterrupted one, byte for byte, whatever the rank count.
public final class TrainingCurveRecorder: TrainingCallback {
    struct Window: Codable, Equatable {
        var lossSum: Double, correct: Int, count: Int
    }
    struct State: Codable, Equatable {
        var rows: [TrainingCurveRow]
        /// Open-interval sums at every epoch-end (or stop) step written so far, keyed by the step (as a string).
        var windows: [String: Window]
    }

    public let everySteps: Int, endStep: Int
    let replicate: Int, run: String, spawnEpoch: Double?, path: String
    public private(set) var rows: [TrainingCurveRow] = []
    private var window = LossSummary()
    private var windows: [String: Window] = [:]

    /// `trainer` is already restored (resume) or initialised; `path` is the curve file of this network.
    public init(trainer: Trainer, everySteps: Int, replicate: Int, run: String, spawnEpoch: Double?, path: String) {
        precondition(everySteps > 0, "TrainingCurveRecorder: everySteps must be positive")
        self.everySteps = everySteps
        self.endStep = trainer.finalStep
        self.replicate = replicate
        self.run = run
        self.spawnEpoch = spawnEpoch
        self.path = path
        if let data = FileManager.default.contents(atPath: path),
           let state = try? JSONDecoder().decode(State.self, from: data),
           let w = state.windows[String(trainer.step)] {
            rows = state.rows.filter { $0.step <= trainer.step }
            window = LossSummary(lossSum: w.lossSum, correct: w.correct, count: w.count)
            windows = state.windows.filter { (Int($0.key) ?? .max) <= trainer.step }
        }
    }

    public func afterStep(_ t: Trainer, summary: LossSummary) throws {
        window += summary
        if t.step % everySteps == 0 || t.step == endStep, window.count > 0 {
            let lr = t.recipe.schedule.lr(base: t.recipe.learningRate, step: t.step - 1, stepsPerEpoch: t.stepsPerEpoch)
            rows.append(TrainingCurveRow(replicate: replicate, run: run, spawnEpoch: spawnEpoch, step: t.step, epoch: t.epoch,
                                         trainLoss: window.meanLoss, trainError: window.errorRate, learningRate: Double(lr)))
            window = LossSummary()
        }
        if t.step % t.stepsPerEpoch == 0 { try saveResumeState(t) }
    }

    /// Writes the rows so far and the open interval's sums at `t.step` (after this step's
    /// `afterStep`), so that a trainer resumed at that step restores this curve exactly: at every
    /// epoch end, and when training stops on request between them (`StopOnRequest`).
    public func saveResumeState(_ t: Trainer) throws {
        windows[String(t.step)] = Window(lossSum: window.lossSum, correct: window.correct, count: window.count)
        try AtomicFile.write(try JSONEncoder.sorted.encode(State(rows: rows, windows: windows)), to: path)
    }
}
