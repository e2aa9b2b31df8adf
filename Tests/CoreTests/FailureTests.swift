import Core
import Foundation
import XCTest

/// Waiting for another task's file (`ProducedFile.wait`), `during`, and fault injection
/// (docs/failures.md). The end-to-end behaviour under mpirun is in ParallelTests/FailureIntegrationTests.
final class FailureTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-failure-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private var produced: ProducedFile {
        let record = file("tasks/r0-parent.json")
        return ProducedFile(path: file("epoch-0001.000.safetensors"), producer: "r0-parent", producerRecord: record,
                            producerFailure: ProducedFile.failureMarker(record: record))
    }

    private func touch(_ path: String, _ text: String = "x") throws {
        try AtomicFile.write(text, to: path)
    }

    private func failure(_ body: () throws -> Void) -> TaskFailure? {
        do { try body(); return nil } catch { return error as? TaskFailure }
    }

    func testReturnsAtOnceWhenTheFileExists() throws {
        try touch(produced.path)
        let t0 = Date()
        try produced.wait(timeout: 0.01)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5)
    }

    /// The producer finished (its record exists) but the file is gone: no point in waiting.
    func testProducerFinishedButFileMissingFailsAtOnce() throws {
        try touch(produced.producerRecord)
        let t0 = Date()
        let error = try XCTUnwrap(failure { try produced.wait() }, "did not fail")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1)
        XCTAssertEqual(error.task, "waiting for \(produced.path)")
        XCTAssertTrue(error.message.contains("r0-parent"), error.message)
        XCTAssertTrue(error.message.contains("finished"), error.message)
        XCTAssertTrue(error.fix.contains("rerun the same command"), error.fix)
        XCTAssertTrue(error.fix.contains("removes \(produced.producerRecord)"), error.fix)
        XCTAssertTrue(error.fix.contains("runs again from its start"), error.fix)
    }

    /// The producer left a failure marker: fail at once with its reason.
    func testProducerFailedFailsAtOnce() throws {
        try touch(try XCTUnwrap(produced.producerFailure), "rank 1: disk full")
        let t0 = Date()
        let error = try XCTUnwrap(failure { try produced.wait() }, "did not fail")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1)
        XCTAssertTrue(error.message.contains("task r0-parent, which writes the file, failed: rank 1: disk full"), error.message)
    }

    /// The producer is still running: wait until the file appears.
    func testWaitsWhileTheProducerRuns() throws {
        let target = produced
        let writer = Thread {
            usleep(600_000)
            try? AtomicFile.write("weights", to: target.path)
            try? AtomicFile.write("{}", to: target.producerRecord)
        }
        let t0 = Date()
        writer.start()
        try target.wait(timeout: 30, poll: 0.05)
        let waited = Date().timeIntervalSince(t0)
        XCTAssertGreaterThanOrEqual(waited, 0.5)
        XCTAssertLessThan(waited, 10)
        XCTAssertTrue(FileManager.default.fileExists(atPath: target.path))
    }

    /// The last resort: --wait-timeout.
    func testTimeoutFailsNamingFileAndProducer() throws {
        var logged: [String] = []
        let t0 = Date()
        let error = try XCTUnwrap(failure { try produced.wait(timeout: 0.5, poll: 0.05, report: 0.2) { logged.append($0) } })
        let waited = Date().timeIntervalSince(t0)
        XCTAssertGreaterThanOrEqual(waited, 0.5)
        XCTAssertLessThan(waited, 5)
        XCTAssertEqual(error.task, "waiting for \(produced.path)")
        XCTAssertTrue(error.message.contains("r0-parent") && error.message.contains("--wait-timeout"), error.message)
        XCTAssertTrue(error.fix.contains("--wait-timeout"), error.fix)
        XCTAssertFalse(logged.isEmpty, "long waits are logged")
    }

    func testDuringNamesTheTaskAndKeepsTheInnermost() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let outer = failure {
            try during("outer", fix: "outer fix") { try during("inner", fix: "inner fix") { throw Boom() } }
        }
        XCTAssertEqual(outer?.task, "inner")
        XCTAssertEqual(outer?.message, "boom")
        XCTAssertEqual(outer?.fix, "inner fix")
        // A failure without a task takes the task of the `during` around it, and keeps its own fix.
        let named = failure { try during("task x", fix: "generic") { throw TaskFailure(message: "m", fix: "own fix") } }
        XCTAssertEqual(named?.task, "task x")
        XCTAssertEqual(named?.fix, "own fix")
        XCTAssertEqual(try during("t", fix: "f") { 42 }, 42)
    }

    func testFileErrorsAreReadable() throws {
        let blocker = file("blocker")
        try touch(blocker)
        let error = try XCTUnwrap(failure {
            try during("creating", fix: "f") {
                try FileManager.default.createDirectory(atPath: blocker + "/sub", withIntermediateDirectories: true)
            }
        })
        XCTAssertFalse(error.message.contains("Error Domain"), error.message)
        XCTAssertTrue(error.message.contains(blocker), error.message)
        XCTAssertTrue(error.message.contains("Not a directory"), error.message)
    }

    func testFaultInjection() throws {
        let env = { (v: String) in ["NTKSCAPE_FAULT": v] }
        XCTAssertNoThrow(try FaultInjection.check(.train, rank: 1, environment: [:]))
        XCTAssertNoThrow(try FaultInjection.check(.train, rank: 0, environment: env("train:1")))
        XCTAssertNoThrow(try FaultInjection.check(.pairs, rank: 1, environment: env("train:1")))
        let fault = failure { try FaultInjection.check(.train, rank: 1, environment: env("setup:0,train:1")) }
        XCTAssertTrue(fault?.message.contains("injected fault NTKSCAPE_FAULT=setup:0,train:1") ?? false, "\(String(describing: fault))")
        XCTAssertNil(fault?.task, "the task is named by the `during` around the check")
        for bad in ["train", "train:x", "fly:1", "train:-1"] {
            let error = failure { try FaultInjection.check(.train, rank: 0, environment: env(bad)) }
            XCTAssertTrue(error?.message.contains("is not <phase>:<rank>") ?? false, "\(bad): \(String(describing: error))")
        }
        XCTAssertEqual(FaultInjection.Phase.allCases.map(\.rawValue), ["setup", "train", "pairs", "ntk", "gather", "tables"])
    }
}
