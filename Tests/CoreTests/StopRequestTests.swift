import Core
import Foundation
import XCTest

/// A stop on request (SIGUSR1 in `ntkscape run`, docs/failures.md): training saves its
/// resume state after the current step — between epoch ends too — and a resumed trainer ends
/// exactly where an uninterrupted one does, training curve included.
final class StopRequestTests: XCTestCase {
    private func data() -> Dataset {
        SyntheticData.make(SyntheticSpec(trainCount: 100, testCount: 20, channels: 3, height: 8, width: 8, classCount: 4)).train
    }
    private func recipe() -> TrainingRecipe {
        var r = TrainingRecipe()
        r.optimizer = .adam; r.learningRate = 1e-3; r.batchSize = 16; r.epochs = 2
        r.schedule = .step(milestones: [1], gamma: 0.1)
        return r
    }
    private func trainer(_ data: Dataset) -> Trainer {
        Trainer(network: ModelKind.simplecnn_w8.build(input: Shape(3, 8, 8), classes: 4), recipe: recipe(), data: data,
                identity: TrainingIdentity(seed: 5, replicate: 0, child: 1))
    }
    private func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "ntkscape-stop-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testStopBetweenEpochEndsSavesAStateThatResumesBitIdentically() throws {
        let data = data()
        let straight = trainer(data)
        straight.initializeWeights()
        let dir = try directory()
        let straightCurve = TrainingCurveRecorder(trainer: straight, everySteps: 3, replicate: 0, run: "child-0", spawnEpoch: 0,
                                                  path: dir + "/straight-curve.json")
        try straight.train(until: straight.finalStep, callbacks: [straightCurve])
        XCTAssertGreaterThan(straight.stepsPerEpoch, 5, "step 5 is inside the first epoch")

        // Stop after step 5: not an epoch end, not on the curve's grid of 3 steps.
        let state = dir + "/training-state.safetensors", curvePath = dir + "/curve.json"
        let first = trainer(data)
        first.initializeWeights()
        let firstCurve = TrainingCurveRecorder(trainer: first, everySteps: 3, replicate: 0, run: "child-0", spawnEpoch: 0,
                                               path: curvePath)
        do {
            try first.train(until: first.finalStep, callbacks: [
                firstCurve, StopOnRequest(path: state, task: "task t", curve: firstCurve, shouldStop: { first.step == 5 }),
            ])
            XCTFail("training did not stop")
        } catch let stop as StopRequested {
            XCTAssertEqual(stop.task, "task t")
            XCTAssertEqual(stop.saved, state)
            XCTAssertEqual(stop.step, 5)
            XCTAssertTrue(stop.description.contains("after step 5") && stop.description.contains(state), stop.description)
        }
        XCTAssertEqual(first.step, 5)

        let resumed = trainer(data)
        try Checkpoint.read(state).restore(into: resumed)
        XCTAssertEqual(resumed.step, 5)
        let resumedCurve = TrainingCurveRecorder(trainer: resumed, everySteps: 3, replicate: 0, run: "child-0", spawnEpoch: 0,
                                                 path: curvePath)
        // Asked at every step but never true: no stop (and none at the last step either).
        try resumed.train(until: resumed.finalStep, callbacks: [
            resumedCurve, StopOnRequest(path: state, task: "task t", curve: resumedCurve, shouldStop: { false }),
        ])
        XCTAssertEqual(resumed.network.params.array, straight.network.params.array, "parameters")
        XCTAssertEqual(resumed.optimizer.exportState(), straight.optimizer.exportState(), "optimiser state")
        XCTAssertEqual(resumedCurve.rows, straightCurve.rows, "training curve")
    }

    func testNoStopAtTheLastStep() throws {
        let t = trainer(data())
        t.initializeWeights()
        let dir = try directory()
        try t.train(until: t.finalStep, callbacks: [
            StopOnRequest(path: dir + "/state.safetensors", task: "task t", curve: nil, shouldStop: { t.step == t.finalStep }),
        ])
        XCTAssertEqual(t.step, t.finalStep)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/state.safetensors"), "the task ends normally instead")
    }

    func testAStopIsNotAFailure() throws {
        XCTAssertThrowsError(try during("task x", fix: "f") { throw StopRequested(task: "task x") }) { error in
            XCTAssertTrue(error is StopRequested, "during passes it through: \(error)")
        }
        let dir = try directory()
        let file = ProducedFile(path: dir + "/never", producer: "r0-parent", producerRecord: dir + "/r0-parent.json")
        XCTAssertThrowsError(try file.wait(timeout: 5, shouldStop: { true })) { error in
            XCTAssertEqual((error as? StopRequested)?.task, "waiting for \(dir)/never (written by task r0-parent)")
        }
    }
}
