import Foundation
import XCTest

/// `ntkscape run` end to end on a tiny synthetic experiment: tables independent of the rank count,
/// kill-and-resume equal to an uninterrupted run, bad experiment files refused before any work.
final class ExperimentIntegrationTests: XCTestCase {
    typealias Tool = SelftestIntegrationTests

    static let experiment = """
        name: tiny
        dataset:
          kind: synthetic
        model: simplecnn
        recipe:
          optimizer: adam
          learning_rate: 0.003
          weight_decay: 0
          batch_size: 50
          epochs: 2
        spawn_times: [0, 0.5, 1]
        children: 2
        probe_size: 20
        barrier:
          points: 5
          train_subset: 200
          recompute_batches: 2
        ntk:
          velocity_dt: 0.5
          eigenvectors: 1
          block_size: 40
        kernel_machine:
          times: [0, 2]
          train_examples: 40
        linearized:
          times: [0.5]
          epochs: 0.5
          learning_rate: [0.01, 0.003]
          held_out: 100
          second_order: true
          child:
            epochs: 2
            learning_rate: 0.001
            patience: 1
            tolerance: 0
            seeds: 2
        hessian:
          times: [0, 2]
          examples: 100
          iterations: 4
          top_k: 3
          trace_samples: 3
          density_steps: 4
          density_points: 20
          shards: 3
        plane:
          spawn_times: [0, 1]
          points: 5
          parts: 3
          test_subset: 100
        trajectories:
          enabled: true
          examples: 50
          every: 0.5
          tsne:
            perplexity: 3
            iterations: 300
        statistics:
          resamples: 200
        threads: 1

        """

    private func workspace() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.experiment.write(to: dir.appendingPathComponent("tiny.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    /// Runs `ntkscape run <file> --runs <root>` on `ranks` ranks (0 = without mpirun).
    private func runExperiment(in dir: URL, root: String, ranks: Int, file: String = "tiny.yaml") throws -> URL {
        let binary = try XCTUnwrap(Tool.binary, "ntkscape binary not found next to the tests")
        let args = ["run", dir.appendingPathComponent(file).path, "--runs", dir.appendingPathComponent(root).path]
        let (status, output) = ranks == 0
            ? try Tool.run(binary, args)
            : try Tool.run(Tool.mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", binary.path] + args)
        XCTAssertEqual(status, 0, "run on \(ranks) ranks failed:\n\(output)")
        return try runDirectory(dir.appendingPathComponent(root))
    }

    private func runDirectory(_ root: URL) throws -> URL {
        try XCTUnwrap(findRun(root), "no run directory under \(root.path)")
    }

    private func findRun(_ root: URL) -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.first { $0.hasPrefix("tiny-") }.map { root.appendingPathComponent($0) }
    }

    /// Relative paths of the tables, figures and final child checkpoints, with their bytes.
    private func results(_ run: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let files = FileManager.default.enumerator(atPath: run.path)!.compactMap { $0 as? String }
        for f in files where f.hasPrefix("tables/") || f.hasPrefix("figures/") || f.hasSuffix("final.safetensors") {
            out[f] = try Data(contentsOf: run.appendingPathComponent(f))
        }
        return out
    }

    func testTablesAreByteIdenticalOnOneTwoAndThreeRanks() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = try results(runExperiment(in: dir, root: "runs1", ranks: 0))
        XCTAssertEqual(one.keys.filter { $0.hasSuffix(".csv") }.count, 25, "twenty-four CSV tables and statistics.csv")
        // Every analysis produced its rows: spectra at the 4 measurement times (0, 0.5, 1, 2), distances
        // between them (10 pairs), velocity from 0, 0.5 and 1, machines at two times (3 draws x 2 forms,
        // 13 ridges each; 40 examples: 30 fit + 10 held out, distributed eigendecomposition), two Hessians (3 eigenvalues,
        // 20 density points and 4 quadrature nodes each; products sharded over the ranks), the
        // learning-rate grid (two rates), the linearised and second-order runs (0.5 epoch: one row per
        // seed each) and the nonlinear children (2 epochs, or 1 on a plateau: patience 1) for 2 seeds,
        // the advantage per seed (with the second-order model's columns) and its summary, kernel
        // distance per pair.
        let lines = { (name: String) in String(decoding: one["tables/\(name).csv"]!, as: UTF8.self).split(separator: "\n").count - 1 }
        XCTAssertEqual(lines("ntk_spectrum"), 4)
        XCTAssertEqual(lines("ntk_eigenvalues"), 4 * 200)
        XCTAssertEqual(lines("ntk_eigenvectors"), 4 * 200)
        XCTAssertEqual(lines("kernel_distance"), 10)
        XCTAssertEqual(lines("kernel_velocity"), 3)
        XCTAssertEqual(lines("ntk_machine"), 2 * 3 * 2)
        XCTAssertEqual(lines("ntk_machine_summary"), 2 * 2)
        XCTAssertEqual(lines("ntk_machine_ridges"), 2 * 3 * 2 * 13)
        XCTAssertEqual(lines("hessian"), 2)
        XCTAssertEqual(lines("hessian_eigenvalues"), 2 * 3)
        XCTAssertEqual(lines("hessian_density"), 2 * 20)
        XCTAssertEqual(lines("hessian_quadrature"), 2 * 4)
        XCTAssertEqual(lines("linearized_grid"), 2)
        // Two planes of 5 x 5 points and the three networks, for the network and two tangent models.
        XCTAssertEqual(lines("loss_plane"), 2 * (25 + 3) * 3)
        // Child prediction times: spawn 0 at 0, 0.5, 1, 1.5, 2; spawn 0.5 at 0.5 ... 2; spawn 1 at 1, 1.5, 2.
        XCTAssertEqual(lines("function_trajectories"), 5 + 4 + 3)
        XCTAssertEqual(lines("function_embedding"), 4 + 2 * (5 + 4 + 3), "the parent at 4 times and 6 children")
        XCTAssertGreaterThan(lines("statistics"), 30)
        XCTAssertEqual(String(decoding: one["tables/linearized_grid.csv"]!, as: UTF8.self).components(separatedBy: ",true\n").count, 2,
                       "exactly one chosen rate")
        let linearizedRows = String(decoding: one["tables/linearized.csv"]!, as: UTF8.self).split(separator: "\n")
        let children = linearizedRows.filter { $0.contains(",nonlinear,") }
        XCTAssertEqual(linearizedRows.filter { $0.contains(",second_order,") }.count, 2, "one second-order row per seed")
        XCTAssertEqual(lines("linearized") - children.count, 4, "one linearised and one second-order row per seed")
        XCTAssertTrue((2...4).contains(children.count), "1 or 2 epochs per child")
        XCTAssertEqual(lines("nonlinear_advantage"), 2)
        XCTAssertEqual(lines("nonlinear_advantage_summary"), 1)
        let advantage = String(decoding: one["tables/nonlinear_advantage.csv"]!, as: UTF8.self).split(separator: "\n")
        XCTAssertTrue(advantage[0].hasSuffix(",second_order_test_error,second_order_test_loss,second_order_stop,second_order_advantage"))
        XCTAssertFalse(advantage.contains { $0.hasSuffix(",") }, "every seed has its second-order run")
        // Training curves every 12 of the 40 steps (20 per epoch) and at the end: the parent and the
        // children of spawn 0 at steps 12, 24, 36, 40; of spawn 0.5 (step 10) the same; of spawn 1
        // (step 20) at 24, 36, 40.
        XCTAssertEqual(lines("training_curves"), 4 + 2 * (4 + 4 + 3))
        // The report: one figure per paper panel these tables feed, and the page.
        XCTAssertEqual(one.keys.filter { $0.hasPrefix("figures/") && $0.hasSuffix(".svg") }.count, 20, "every figure drawn")
        let report = try String(contentsOf: try runDirectory(dir.appendingPathComponent("runs1")).appendingPathComponent("report.html"),
                                encoding: .utf8)
        // "Finished: n of n tasks done", n the planned tasks (TaskGraph.ids).
        let status = try XCTUnwrap(report.range(of: #"Finished: (\d+) of (\d+) tasks done"#, options: .regularExpression),
                                   "report.html status")
        let counts = report[status].split(separator: " ").compactMap { Int($0) }
        XCTAssertEqual(counts.count, 2)
        XCTAssertEqual(counts.first, counts.last, "every planned task done: \(report[status])")
        XCTAssertGreaterThan(counts.first ?? 0, 25, "the grid and per-seed linearised tasks are planned")
        XCTAssertFalse(report.contains("Figures without data"))
        XCTAssertFalse(String(decoding: one["tables/child_pairs.csv"]!, as: UTF8.self).contains(",\n"),
                       "every child pair has its kernel distance")
        XCTAssertEqual(one.keys.filter { $0.hasSuffix("final.safetensors") }.count, 6, "3 spawn times x 2 children")
        let pairs = String(decoding: one["tables/child_pairs.csv"]!, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(pairs.count, 4, "header + one pair per spawn time")
        for ranks in [2, 3] {
            let other = try results(runExperiment(in: dir, root: "runs\(ranks)", ranks: ranks))
            XCTAssertEqual(Set(other.keys), Set(one.keys))
            for (name, bytes) in one { XCTAssertEqual(other[name], bytes, "\(name) differs between 1 and \(ranks) ranks") }
        }
        // Two NTK groups of one rank each build their Grams concurrently (an execution setting: the
        // same run, the same tables).
        let grouped = Self.experiment.replacingOccurrences(of: "  block_size: 40\n", with: "  block_size: 40\n  group_size: 1\n")
        XCTAssertNotEqual(grouped, Self.experiment)
        try grouped.write(to: dir.appendingPathComponent("grouped.yaml"), atomically: true, encoding: .utf8)
        let split = try results(runExperiment(in: dir, root: "runs-groups", ranks: 2, file: "grouped.yaml"))
        for (name, bytes) in one { XCTAssertEqual(split[name], bytes, "\(name) differs with NTK groups of one rank") }
    }

    /// SIGKILL twice — once while children train, once (after resuming) while pair metrics run —
    /// then rerun to the end: tables and checkpoints identical to an uninterrupted run.
    func testKillAndResumeEqualsUninterruptedRun() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = try results(runExperiment(in: dir, root: "straight", ranks: 0))
        let root = dir.appendingPathComponent("killed")
        let triggers = ["child-0/training-state.safetensors", "tasks/r0-s0-pair0-1.json", "tasks/r0-ntk-timeline.json"]
        for trigger in triggers {
            XCTAssertTrue(try runUntilKilled(dir: dir, root: root, when: trigger), "the run finished before \(trigger) appeared")
            XCTAssertFalse(FileManager.default.fileExists(atPath: try runDirectory(root).appendingPathComponent("tables/child_pairs.csv").path))
        }
        let resumed = try results(runExperiment(in: dir, root: "killed", ranks: 0))
        XCTAssertEqual(Set(resumed.keys), Set(reference.keys))
        for (name, bytes) in reference { XCTAssertEqual(resumed[name], bytes, "\(name) differs after kill and resume") }
    }

    /// Starts `ntkscape run` and SIGKILLs it as soon as a file whose path ends in `suffix` exists in
    /// its run directory; false if it finished first.
    private func runUntilKilled(dir: URL, root: URL, when suffix: String) throws -> Bool {
        let process = Process()
        process.executableURL = try XCTUnwrap(Tool.binary)
        process.arguments = ["run", dir.appendingPathComponent("tiny.yaml").path, "--runs", root.path]
        process.environment = Tool.childEnvironment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.waitUntilExit() }
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            if let run = findRun(root),
               let files = FileManager.default.enumerator(atPath: run.path)?.compactMap({ $0 as? String }),
               files.contains(where: { $0.hasSuffix(suffix) }) {
                kill(process.processIdentifier, SIGKILL)
                return true
            }
            usleep(20_000)
        }
        return false
    }

    /// Bad experiment files fail before any training, naming the key or file.
    func testBadExperimentsFailBeforeTraining() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = try XCTUnwrap(Tool.binary)
        let cases: [(String, String, String)] = [
            ("unknown key", Self.experiment.replacingOccurrences(of: "learning_rate:", with: "learnig_rate:"), "recipe.learnig_rate"),
            ("wrong type", Self.experiment.replacingOccurrences(of: "children: 2", with: "children: two"), "children"),
            ("spawn after end", Self.experiment.replacingOccurrences(of: "[0, 0.5, 1]", with: "[0, 0.5, 3]"), "spawn_times"),
            ("missing dataset", Self.experiment.replacingOccurrences(of: "kind: synthetic", with: "kind: cifar10\n  path: /nonexistent/cifar"),
             "/nonexistent/cifar"),
        ]
        for (what, text, expected) in cases {
            let file = dir.appendingPathComponent("bad.yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let root = dir.appendingPathComponent("runs-bad")
            let (status, output) = try Tool.run(binary, ["run", file.path, "--runs", root.path])
            XCTAssertNotEqual(status, 0, "\(what): accepted")
            XCTAssertTrue(output.contains(expected), "\(what): message does not name \(expected):\n\(output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: root.path), "\(what): wrote \(root.path) before failing")
        }
    }
}
