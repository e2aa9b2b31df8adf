import Foundation

/// A graceful stop asked for from outside the run — `ntkscape run` asks on SIGUSR1
/// (`StopSignal` in Parallel; Slurm sends the signal before a time limit, docs/failures.md). Not a
/// failure: the run directory stays consistent and a rerun (or a requeue) resumes where it stopped.
///
/// The runner learns of the request only through the closure `ExperimentRunner.shouldStop` (a
/// value, no global state here) and ends with this error:
/// - a training task (parent, child) stops after its current optimiser step, once its resume
///   state is saved (`StopOnRequest`): the rerun continues from that very step, bit for bit;
/// - a rank between tasks, or waiting for another task's file, stops at once (nothing to save).
/// Other work (pair metrics, linearised models, NTK Grams) is not interrupted here; the command
/// ends such a rank after a grace period, and its task runs again from its start on resume.
///
/// `during` and `runTask` pass it through unchanged: no failure marker is written, so ranks waiting
/// for this task's files do not report a failure.
public struct StopRequested: Error, CustomStringConvertible, Sendable {
    /// What was running or awaited (`task r0-s1-c0`, `waiting for <file>`, `between tasks`).
    public var task: String
    /// The resume state written when training stopped (nil: nothing to save).
    public var saved: String?
    /// The optimiser step of that resume state.
    public var step: Int?

    public init(task: String, saved: String? = nil, step: Int? = nil) {
        self.task = task
        self.saved = saved
        self.step = step
    }

    public var description: String {
        if let saved {
            return "stopped on request in \(task) after step \(step.map(String.init) ?? "?"); resume state saved to \(saved)"
        }
        return "stopped on request in \(task); nothing to save"
    }
}

/// Training callback of a resumable task: when `shouldStop()` says so after a step (before the
/// task's last step), writes the resume state at this step — the training curve's first (it must
/// match the checkpoint's step, `TrainingCurveRecorder`), then the rolling checkpoint `path` — and
/// throws `StopRequested`. Runs after `RollingState` and the curve recorder of the same step, so at
/// an epoch end it only rewrites what they wrote. A trainer resumed from that state continues
/// exactly as an uninterrupted one: data order, augmentation and learning rate are functions of the
/// step (Trainer).
///
/// In a data-parallel group (`Trainer.group`) the members decide together (`Trainer.anyMember`: a
/// request seen by one stops all at the same step, so none waits in a collective for the others)
/// and only the member with `writes` writes the resume state.
public final class StopOnRequest: TrainingCallback {
    let path: String, task: String
    let curve: TrainingCurveRecorder?
    let shouldStop: () -> Bool
    let writes: Bool

    public init(path: String, task: String, curve: TrainingCurveRecorder?, writes: Bool = true, shouldStop: @escaping () -> Bool) {
        self.path = path
        self.task = task
        self.curve = curve
        self.writes = writes
        self.shouldStop = shouldStop
    }

    public func afterStep(_ t: Trainer, summary: LossSummary) throws {
        guard t.step < t.finalStep, t.anyMember(shouldStop()) else { return }
        if writes {
            try curve?.saveResumeState(t)
            try Checkpoint(trainer: t).write(to: path)
        }
        throw StopRequested(task: task, saved: path, step: t.step)
    }
}
