@testable import Core
import Foundation
import TestSupport
import XCTest

/// What a user sees of a run: rank logs, progress status, the manifest's sessions, and
/// per-example logits as `.npy`.
final class RunExperienceTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "run-experience-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private let isoLine = try! NSRegularExpression(pattern: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "#)
    private func isTimestamped(_ line: Substring) -> Bool {
        let s = String(line)
        return isoLine.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// Lines logged before the log file opens are kept; every line is timestamped (ISO 8601, UTC).
    func testRankLogHoldsTimestampedLines() throws {
        let paths = RunPaths(runDirectory: try temporaryDirectory())
        let log = RunLog(rank: 1, mode: .lines)
        log.line("rank 1: before the directory exists")
        try log.open(paths.log(rank: 1))
        log.line("rank 1: r0-s0-c0 starts")
        log.close()
        XCTAssertTrue(paths.log(rank: 1).hasSuffix("/logs/rank-1.log"))
        let lines = try String(contentsOfFile: paths.log(rank: 1), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines.allSatisfy(isTimestamped), "\(lines)")
        XCTAssertTrue(lines[0].hasSuffix(" rank 1: before the directory exists"))
        XCTAssertTrue(lines[1].hasSuffix(" rank 1: r0-s0-c0 starts"))
        // A second session appends.
        let again = RunLog(rank: 1, mode: .lines)
        try again.open(paths.log(rank: 1))
        again.line("rank 1: second session")
        again.close()
        XCTAssertEqual(try String(contentsOfFile: paths.log(rank: 1), encoding: .utf8).split(separator: "\n").count, 3)
    }

    /// In lines mode a rank logs at most one progress line per `RunStatus.lineInterval`, with no
    /// internal units: tasks done of this rank's total and an ETA in time. Its status file holds the
    /// same for rank 0's live block.
    func testStatusLinesAreThrottledAndReadable() throws {
        let paths = RunPaths(runDirectory: try temporaryDirectory())
        let log = RunLog(rank: 0, mode: .lines)
        try log.open(paths.log(rank: 0))
        let status = RunStatus(log: log, path: paths.status(rank: 0), host: "node7",
                               tasks: [("r0-parent", 100), ("r0-t0", 10), ("r0-t1", 10)], finished: ["r0-t1"])
        status.started("r0-parent")
        for step in 1...50 {
            status.training(ProgressPrinter.Report(label: "r0 parent", epoch: Double(step) / 10, step: step, endStep: 100,
                                                   loss: 0.5, errorRate: 0.25, imagesPerSecond: 1000, eta: 3,
                                                   fraction: Double(step) / 100))
        }
        status.finished("r0-parent", seconds: 65)
        log.close()
        let text = try String(contentsOfFile: paths.log(rank: 0), encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("img/s") }.count, 1, text)
        XCTAssertTrue(lines.allSatisfy(isTimestamped), text)
        let progress = try XCTUnwrap(lines.first { $0.contains("img/s") })
        XCTAssertTrue(progress.contains("rank 0: r0 parent epoch 0.10 step 1/100 loss 0.5000 err 25.00% 1000 img/s ETA 3s; "
                                        + "this rank: 1 of 3 tasks done, ETA "), String(progress))
        let done = try XCTUnwrap(lines.last)
        XCTAssertTrue(done.contains("rank 0: r0-parent done in 1m05s; this rank: 2 of 3 tasks done, ETA "), String(done))
        XCTAssertFalse(text.contains("plan total") || text.contains("share"), text)
        let snapshot = try JSONDecoder().decode(RunStatus.Snapshot.self,
                                                from: XCTUnwrap(FileManager.default.contents(atPath: paths.status(rank: 0))))
        XCTAssertEqual(snapshot.rank, 0)
        XCTAssertEqual(snapshot.host, "node7")
        XCTAssertEqual(snapshot.tasksDone, 2)
        XCTAssertEqual(snapshot.tasksTotal, 3)
        XCTAssertNotNil(snapshot.eta)
    }

    /// Rank 0's live block: the total over the ranks, then one line per rank.
    func testLiveBlockSumsTheRanks() {
        let now = 1_000_000.0
        let a = RunStatus.Snapshot(rank: 0, host: "a", task: "r0-parent", detail: "r0 parent epoch 1.00 loss 0.5",
                                   tasksDone: 2, tasksTotal: 5, eta: 130, updated: now - 10)
        let b = RunStatus.Snapshot(rank: 1, host: "b", task: nil, detail: "waiting for epoch-0001.000.safetensors from another task",
                                   tasksDone: 3, tasksTotal: 4, eta: 40, updated: now - 200)
        XCTAssertEqual(StatusBoard.lines([a, b, nil], elapsed: 65, now: now), [
            "5 of 9 tasks done, 1m05s elapsed, ETA 2m00s",
            "  rank 0 2/5: r0-parent r0 parent epoch 1.00 loss 0.5",
            "  rank 1 3/4: waiting for epoch-0001.000.safetensors from another task (no update for 3m20s)",
            "  rank 2: no status yet",
        ])
        var unknown = a; unknown.eta = nil
        XCTAssertEqual(StatusBoard.lines([unknown], elapsed: 1, now: now)[0], "2 of 5 tasks done, 1s elapsed, ETA unknown")
    }

    /// Each finished invocation appends a session (command, ranks, threads, hosts, and per task its
    /// rank, host, start and end); earlier sessions are kept.
    func testManifestAppendsSessions() throws {
        let paths = RunPaths(runDirectory: try temporaryDirectory())
        let config = try ExperimentConfig.parse(yaml: "dataset: {kind: synthetic}\nspawn_times: [0]\nrecipe: {epochs: 1}\n")
        let plan = TaskPlan(tasks: [PlannedTask(id: "r0-parent", cost: 1), PlannedTask(id: "r0-t0", cost: 1)], ranks: 2)
        func record(_ id: String, rank: Int, start: Double) -> TaskRecord {
            var r = TaskRecord(id: id)
            r.seconds = 2
            r.timing = TaskTiming(rank: rank, ranks: 1, host: "node\(rank)", started: Date(timeIntervalSince1970: start),
                                  finished: Date(timeIntervalSince1970: start + 2))
            return r
        }
        let parent = record("r0-parent", rank: 0, start: 1_800_000_000)
        try Manifest.write(config: config, paths: paths, plan: plan, records: [parent], ranks: 2, threads: 1, wallSeconds: 5,
                           started: Date(timeIntervalSince1970: 1_800_000_000), hosts: ["node0", "node1"], ran: ["r0-parent"],
                           command: ["ntkscape", "run", "a.yaml"])
        let timeline = record("r0-t0", rank: 1, start: 1_800_000_100)
        try Manifest.write(config: config, paths: paths, plan: plan, records: [parent, timeline], ranks: 2, threads: 2,
                           wallSeconds: 3, started: Date(timeIntervalSince1970: 1_800_000_100), hosts: ["node0", "node1"],
                           ran: ["r0-t0"], command: ["ntkscape", "run", "a.yaml", "--threads", "2"])
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(FileManager.default.contents(atPath: paths.manifest)))
                              as? [String: Any])
        let sessions = try XCTUnwrap(m["sessions"] as? [[String: Any]])
        XCTAssertEqual(sessions.count, 2)
        XCTAssertEqual(sessions[0]["command"] as? String, "ntkscape run a.yaml")
        XCTAssertEqual(sessions[0]["started"] as? String, "2027-01-15T08:00:00Z")
        XCTAssertEqual(sessions[0]["threads_per_rank"] as? Int, 1)
        XCTAssertEqual(sessions[1]["threads_per_rank"] as? Int, 2)
        XCTAssertEqual(sessions[1]["hosts"] as? [String], ["node0", "node1"])
        XCTAssertEqual(sessions[1]["ntkscape_version"] as? String, NTKScapeVersion.string)
        let first = try XCTUnwrap(sessions[0]["tasks"] as? [[String: Any]])
        XCTAssertEqual(first.map { $0["id"] as? String }, ["r0-parent"])
        XCTAssertEqual(first[0]["started"] as? String, "2027-01-15T08:00:00Z")
        XCTAssertEqual(first[0]["finished"] as? String, "2027-01-15T08:00:02Z")
        XCTAssertEqual(first[0]["host"] as? String, "node0")
        XCTAssertEqual(first[0]["seconds"] as? Double, 2)
        let second = try XCTUnwrap(sessions[1]["tasks"] as? [[String: Any]])
        XCTAssertEqual(second.map { $0["id"] as? String }, ["r0-t0"])
        XCTAssertEqual(second[0]["rank"] as? Int, 1)
        // Top level: started of the first session, the latest command.
        XCTAssertEqual(m["started"] as? String, "2027-01-15T08:00:00Z")
        XCTAssertEqual(m["command"] as? String, "ntkscape run a.yaml --threads 2")
        XCTAssertEqual(((m["timings"] as? [String: Any])?["tasks"] as? [[String: Any]])?.count, 2)
        // The timing survives the task record's JSON round trip.
        let back = try JSONDecoder.records.decode(TaskRecord.self, from: JSONEncoder.sorted.encode(timeline))
        XCTAssertEqual(back.timing, timeline.timing)
    }

    /// `predictions` (behind `evaluate --logits/--predictions`) gives the network's forward logits
    /// in data set order and their argmax; the `.npy` files hold exactly those, readable by numpy.
    func testLogitsAndPredictionsAsNPY() throws {
        let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: 70, testCount: 10, channels: 1, height: 8, width: 8,
                                                          classCount: 10, noise: 0.3, seed: 3))
        let net = ModelKind.mlp.build(input: Shape(1, 8, 8), classes: 10, as: Float.self)
        var g = TestRandom(5)
        net.initialize { g.normal() }
        let out = predictions(net, on: train, batchSize: 32)   // batches of 32, 32, 6
        net.prepare(maxBatch: train.count)
        let reference = train.images.withUnsafeBufferPointer {
            Array(UnsafeBufferPointer(start: net.forward($0.baseAddress!, n: train.count, mode: .eval), count: train.count * 10))
        }
        XCTAssertEqual(out.logits.count, 700)
        assertClose(out.logits, reference.map(Double.init), Tolerance.float)
        // numpy.argmax: the first largest logit.
        func argmax(_ f: [Float]) -> [Int64] {
            var out: [Int64] = []
            for i in 0..<train.count {
                var best = 0
                for c in 1..<10 where f[i * 10 + c] > f[i * 10 + best] { best = c }
                out.append(Int64(best))
            }
            return out
        }
        XCTAssertEqual(out.predicted, argmax(out.logits))
        XCTAssertGreaterThanOrEqual(zip(argmax(reference), out.predicted).filter { $0 == $1 }.count, 69)
        let expected = argmax(out.logits)
        XCTAssertEqual(out.summary.count, 70)

        let dir = try temporaryDirectory()
        try NPY.write(out.logits, shape: [70, 10], to: dir + "/logits.npy")
        try NPY.write(out.predicted, shape: [70], to: dir + "/predictions.npy")
        let logits = try XCTUnwrap(NPY.decode(XCTUnwrap(FileManager.default.contents(atPath: dir + "/logits.npy")), as: Float.self))
        XCTAssertEqual(logits.shape, [70, 10])
        XCTAssertEqual(logits.values, out.logits)
        let predicted = try XCTUnwrap(NPY.decode(XCTUnwrap(FileManager.default.contents(atPath: dir + "/predictions.npy")),
                                                 as: Int64.self))
        XCTAssertEqual(predicted.shape, [70])
        XCTAssertEqual(predicted.values, expected)
        XCTAssertNil(NPY.decode(try XCTUnwrap(FileManager.default.contents(atPath: dir + "/logits.npy")), as: Double.self))

        // numpy reads them as float32 [70, 10] and int64 [70], argmax agreeing.
        guard let python = executableOnPath("python3") else { try referenceMissing("python3 is not on PATH") }
        let script = """
            import sys
            try:
                import numpy as np
            except ImportError:
                print("no numpy"); sys.exit(0)
            l = np.load(sys.argv[1]); p = np.load(sys.argv[2])
            assert l.dtype == np.float32 and l.shape == (70, 10), (l.dtype, l.shape)
            assert p.dtype == np.int64 and p.shape == (70,), (p.dtype, p.shape)
            assert (l.argmax(axis=1) == p).all()
            print("ok %.9g" % l.sum(dtype=np.float64))
            """
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", script, dir + "/logits.npy", dir + "/predictions.npy"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, output)
        if output.hasPrefix("no numpy") { try referenceMissing("numpy is missing for \(python.path) (pip install numpy)") }
        XCTAssertEqual(output, String(format: "ok %.9g\n", out.logits.reduce(0.0) { $0 + Double($1) }))
    }
}
