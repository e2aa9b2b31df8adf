import Foundation
import XCTest

/// The run-time experience through the built binary: `--set` and `--print-config`, per-rank logs,
/// timestamped progress lines, the manifest's sessions, `train` options named after the experiment
/// keys, and `evaluate --out-dir` writing `.npy`.
final class RunExperienceIntegrationTests: XCTestCase {
    typealias Tool = SelftestIntegrationTests

    /// A directory removed after the test, holding `small.yaml`: the failure tests' micro experiment
    /// (seconds on 2 ranks, with collective NTK tasks).
    private func workspace() throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ntkscape-experience-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FailureIntegrationTests.experiment.write(to: dir.appendingPathComponent("small.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    private func ntkscape(_ args: [String], ranks: Int = 0) throws -> (status: Int32, output: String) {
        let binary = try XCTUnwrap(Tool.binary, "ntkscape binary not found next to the tests")
        return ranks == 0 ? try Tool.run(binary, args)
            : try Tool.run(Tool.mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", binary.path] + args)
    }

    func testOverridesPrintConfigLogsAndManifestSessions() throws {
        let dir = try workspace()
        let file = dir.appendingPathComponent("small.yaml").path, runs = dir.appendingPathComponent("runs").path
        // --print-config: the resolved experiment with the override, read back to the same run directory.
        let printed = try ntkscape(["run", file, "--set", "children=3", "--set", "recipe.epochs=2", "--print-config"])
        XCTAssertEqual(printed.status, 0, printed.output)
        XCTAssertTrue(printed.output.contains("\nchildren: 3\n") && printed.output.contains("\n  epochs: 2\n"), printed.output)
        let resolved = dir.appendingPathComponent("resolved.yaml")
        try printed.output.write(to: resolved, atomically: true, encoding: .utf8)
        let viaFile = try ntkscape(["run", resolved.path, "--runs", runs, "--print-run-dir"])
        let viaSet = try ntkscape(["run", file, "--set", "children=3", "--set", "recipe.epochs=2", "--runs", runs, "--print-run-dir"])
        let plain = try ntkscape(["run", file, "--runs", runs, "--print-run-dir"])
        XCTAssertEqual(viaFile.output, viaSet.output)
        XCTAssertNotEqual(viaSet.output, plain.output, "an override changes the run directory")
        // A bad override is refused naming it, before any work.
        let bad = try ntkscape(["plan", file, "--set", "recipe.epochz=2"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--set recipe.epochz: `recipe.epochz` is not a setting. Fix: did you mean `epochs`?"),
                      bad.output)

        // A run on 2 ranks (output not a terminal: timestamped lines), then a rerun of one task.
        let first = try ntkscape(["run", file, "--runs", runs, "--set", "children=3", "--set", "recipe.epochs=2"], ranks: 2)
        XCTAssertEqual(first.status, 0, first.output)
        let runDir = URL(fileURLWithPath: viaSet.output.trimmingCharacters(in: .whitespacesAndNewlines))
        let config = try String(contentsOf: runDir.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"children\":3"), config)
        XCTAssertTrue(first.output.contains("plan: "), first.output)
        XCTAssertFalse(first.output.contains("plan total") || first.output.contains("rank share"), first.output)
        XCTAssertTrue(first.output.contains("finished in "), first.output)
        XCTAssertTrue(first.output.contains("tables: \(runDir.path)/tables"), first.output)
        XCTAssertTrue(first.output.contains("report: "), first.output)
        let iso = try NSRegularExpression(pattern: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rank \d"#)
        for k in 0..<2 {
            let log = try String(contentsOf: runDir.appendingPathComponent("logs/rank-\(k).log"), encoding: .utf8)
            let lines = log.split(separator: "\n").map(String.init)
            XCTAssertFalse(lines.isEmpty)
            for line in lines { XCTAssertNotNil(iso.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), line) }
            XCTAssertTrue(log.contains("rank \(k): "), log)
            XCTAssertTrue(lines.contains { $0.contains(" done in ") && $0.contains("tasks done") }, log)
            // The same lines reached stderr.
            XCTAssertTrue(first.output.contains(lines.last!), "rank \(k)'s last line not on stderr")
        }
        let task = "r0-s0-pair1-2"
        try FileManager.default.removeItem(at: runDir.appendingPathComponent("tasks/\(task).json"))
        let second = try ntkscape(["run", file, "--runs", runs, "--set", "children=3", "--set", "recipe.epochs=2"], ranks: 2)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("done already (skipped)"), second.output)
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: runDir.appendingPathComponent("manifest.json")))
                                     as? [String: Any])
        let sessions = try XCTUnwrap(manifest["sessions"] as? [[String: Any]])
        XCTAssertEqual(sessions.count, 2)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        for s in sessions {
            XCTAssertEqual(s["ranks"] as? Int, 2)
            XCTAssertEqual((s["hosts"] as? [String])?.count, 2)
            XCTAssertTrue((s["hosts"] as? [String])?.allSatisfy { $0.hasPrefix(host) } ?? false, "\(s["hosts"] ?? "")")
            XCTAssertTrue((s["command"] as? String)?.contains("--set children=3") ?? false)
        }
        let firstTasks = try XCTUnwrap(sessions[0]["tasks"] as? [[String: Any]])
        let secondTasks = try XCTUnwrap(sessions[1]["tasks"] as? [[String: Any]])
        XCTAssertEqual(secondTasks.map { $0["id"] as? String }, [task])
        XCTAssertGreaterThan(firstTasks.count, 5)
        XCTAssertEqual(Set(firstTasks.compactMap { $0["rank"] as? Int }), [0, 1])
        for t in firstTasks + secondTasks {
            XCTAssertNotNil(t["started"] as? String); XCTAssertNotNil(t["finished"] as? String)
            XCTAssertNotNil(t["seconds"] as? Double)
        }
    }

    func testTrainWithExperimentKeyNamesAndEvaluateWritesNPY() throws {
        let dir = try workspace()
        let checkpoint = dir.appendingPathComponent("net.safetensors").path
        let data = ["--dataset", "synthetic", "--train-subset", "120", "--test-subset", "60", "--threads", "1"]
        let trained = try ntkscape(["train", "--model", "simplecnn_w8", "--learning-rate", "0.003", "--batch-size", "40",
                                    "--weight-decay", "0", "--epochs", "1", "--optimizer", "adam", "--output", checkpoint] + data)
        XCTAssertEqual(trained.status, 0, trained.output)
        let help = try ntkscape(["train", "--help"])
        XCTAssertTrue(help.output.contains("--learning-rate") && help.output.contains("--batch-size"), help.output)
        let out = dir.appendingPathComponent("out").path
        let logits = dir.appendingPathComponent("l.npy").path, predictions = dir.appendingPathComponent("p.npy").path
        let evaluated = try ntkscape(["evaluate", checkpoint, "--out-dir", out, "--logits", logits, "--predictions", predictions,
                                      "--batch-size", "25"] + data)
        XCTAssertEqual(evaluated.status, 0, evaluated.output)
        for name in ["train_logits", "train_predictions", "test_logits", "test_predictions"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/\(name).npy"), name)
        }
        // --logits/--predictions (test split) hold the same bytes as --out-dir's test files.
        XCTAssertEqual(FileManager.default.contents(atPath: logits), FileManager.default.contents(atPath: out + "/test_logits.npy"))
        XCTAssertEqual(FileManager.default.contents(atPath: predictions),
                       FileManager.default.contents(atPath: out + "/test_predictions.npy"))
        // Shapes and types in the headers; the test error printed equals the predictions' error.
        let header = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: logits)).prefix(128), as: UTF8.self)
        XCTAssertTrue(header.contains("'descr': '<f4'") && header.contains("'shape': (60, 10)"), header)
        let predictedHeader = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: predictions)).prefix(128), as: UTF8.self)
        XCTAssertTrue(predictedHeader.contains("'descr': '<i8'") && predictedHeader.contains("'shape': (60,)"), predictedHeader)
    }
}
