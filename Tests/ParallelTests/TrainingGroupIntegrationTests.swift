import Core
import Foundation
import XCTest

/// `ntkscape run` with data-parallel training groups (the plan's group slots, `Trainer.group`):
/// under mpirun on 2 and 4 ranks, with a network model that makes groups free (`plan` section) and
/// training that dominates the experiment, the parent, the children and the low-learning-rate
/// child train on groups of ranks; the tables and the final checkpoints are byte-identical to the
/// 1-rank run, every record's `timing.ranks` is its plan slot's group size, and a failure on one
/// member ends the whole job fast.
final class TrainingGroupIntegrationTests: XCTestCase {
    typealias Tool = SelftestIntegrationTests

    static let experiment = """
        name: groups
        dataset:
          kind: synthetic
          train_subset: 200
          test_subset: 100
        model: simplecnn
        recipe:
          optimizer: adam
          learning_rate: 0.003
          weight_decay: 0
          batch_size: 50
          epochs: 4
        spawn_times: [0]
        children: 2
        probe_size: 10
        barrier:
          points: 3
          train_subset: 50
          recompute_batches: 1
        ntk:
          block_size: 20
        training_curves:
          every_steps: 3
        linearized:
          times: [0.5]
          epochs: 0.25
          learning_rate: [0.01]
          held_out: 20
          child:
            epochs: 1
            learning_rate: 0.001
            seeds: 1
        plan:
          bandwidth_gb_s: 1000000
          latency_us: 0
        threads: 1

        """

    /// Longest time from a rank's error to the end of the job.
    static let limit: TimeInterval = 30

    private func workspace() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-groups-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.experiment.write(to: dir.appendingPathComponent("groups.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    /// Runs `ntkscape run` on `ranks` ranks (0: without mpirun), `NTKSCAPE_FAULT=fault` if given.
    private func run(_ dir: URL, root: String, ranks: Int, fault: String? = nil) throws -> (status: Int32, output: String, seconds: Double) {
        try Tool.launch(["run", dir.appendingPathComponent("groups.yaml").path, "--runs", dir.appendingPathComponent(root).path],
                        ranks: ranks, fault: fault, timeout: 600)
    }

    private func runDirectory(_ root: URL) throws -> URL {
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: root.path).first { $0.hasPrefix("groups-") })
        return root.appendingPathComponent(name)
    }

    /// The tables and final child checkpoints, with their bytes.
    private func results(_ run: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for f in FileManager.default.enumerator(atPath: run.path)!.compactMap({ $0 as? String })
        where f.hasPrefix("tables/") || f.hasSuffix("final.safetensors") {
            out[f] = try Data(contentsOf: run.appendingPathComponent(f))
        }
        return out
    }

    /// `timing.rank` of task `id`'s record.
    private func recordRank(_ run: URL, _ id: String) throws -> Int? {
        let data = try Data(contentsOf: run.appendingPathComponent("tasks/\(id).json"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (object["timing"] as? [String: Any])?["rank"] as? Int
    }

    /// `timing.ranks` of task `id`'s record.
    private func recordRanks(_ run: URL, _ id: String) throws -> Int? {
        let data = try Data(contentsOf: run.appendingPathComponent("tasks/\(id).json"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (object["timing"] as? [String: Any])?["ranks"] as? Int
    }

    /// The plan `ntkscape run` computes on `ranks` ranks, computed here from the same file and data.
    private func plan(_ dir: URL, ranks: Int) throws -> TaskPlan {
        let config = try ExperimentConfig.load(path: dir.appendingPathComponent("groups.yaml").path)
        let runner = try ExperimentRunner(config: config, runsRoot: dir.appendingPathComponent("scratch").path,
                                          comm: SerialCommunicator(), log: { _ in }, checks: false)
        return runner.planner.plan(ranks: ranks)
    }

    func testGroupsGiveTheOneRankTables() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = try run(dir, root: "runs1", ranks: 0)
        XCTAssertEqual(single.status, 0, single.output)
        let one = try results(runDirectory(dir.appendingPathComponent("runs1")))
        XCTAssertEqual(one.keys.filter { $0.hasSuffix("final.safetensors") }.count, 2, "1 spawn time x 2 children")
        XCTAssertGreaterThan(one.keys.filter { $0.hasSuffix(".csv") }.count, 10)
        // On 4 ranks the parent and both children take all 4 ranks, the low-learning-rate child 2.
        let four = try plan(dir, ranks: 4).slots
        XCTAssertEqual(["r0-parent", "r0-s0-c0", "r0-s0-c1", "r0-lin0-nonlinear-k0"].map { four[$0]?.group.count }, [4, 4, 4, 2])
        for ranks in [2, 4] {
            let outcome = try run(dir, root: "runs\(ranks)", ranks: ranks)
            XCTAssertEqual(outcome.status, 0, outcome.output)
            let runDir = try runDirectory(dir.appendingPathComponent("runs\(ranks)"))
            let other = try results(runDir)
            XCTAssertEqual(Set(other.keys), Set(one.keys))
            for (name, bytes) in one { XCTAssertEqual(other[name], bytes, "\(name) differs between 1 and \(ranks) ranks") }
            // Every pipelined task ran on the ranks of its plan slot.
            let slots = try plan(dir, ranks: ranks).slots
            for (id, slot) in slots {
                XCTAssertEqual(try recordRanks(runDir, id), slot.group.count, "\(id) on \(ranks) ranks")
                XCTAssertEqual(try recordRank(runDir, id), slot.group.lowerBound, "\(id) on \(ranks) ranks")
            }
            if ranks == 4 {
                let log = try String(contentsOf: runDir.appendingPathComponent("logs/rank-0.log"), encoding: .utf8)
                XCTAssertTrue(log.contains("r0-parent starts on ranks 0..<4"), log)
            }
        }
    }

    /// A member of the parent's group of 4 fails (an injected fault on rank 1 as the parent starts)
    /// while the other members wait for it in the group's first collective: the job ends within the
    /// limit, the error reported once, naming rank 1 and the task; the rerun finishes with the same tables.
    func testFailingMemberEndsTheJob() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let failed = try run(dir, root: "runs", ranks: 4, fault: "train:1")
        XCTAssertNotEqual(failed.status, 0, failed.output)
        XCTAssertLessThan(failed.seconds, Self.limit, failed.output)
        let errors = failed.output.split(separator: "\n").filter { $0.hasPrefix("ntkscape: error") }
        XCTAssertEqual(errors.count, 1, failed.output)
        XCTAssertTrue(errors.first?.hasPrefix("ntkscape: error on rank 1 of 4 in task r0-parent") ?? false, failed.output)
        let rerun = try run(dir, root: "runs", ranks: 4)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        let single = try run(dir, root: "runs1", ranks: 0)
        XCTAssertEqual(single.status, 0, single.output)
        XCTAssertEqual(try results(runDirectory(dir.appendingPathComponent("runs"))),
                       try results(runDirectory(dir.appendingPathComponent("runs1"))))
    }
    /// SIGUSR1 (forwarded by mpirun to every rank) while the parent trains on a group of 4: the
    /// members agree to stop at one step (`Trainer.anyMember`) — every rank reports the same step —
    /// the job ends with status 75, and the resumed run's tables equal the uninterrupted 1-rank run's.
    func testStopRequestStopsTheGroupAtOneStep() throws {
        let dir = try workspace()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A longer parent, so the signal arrives while it trains.
        let long = Self.experiment.replacingOccurrences(of: "  epochs: 4\n", with: "  epochs: 30\n")
        XCTAssertNotEqual(long, Self.experiment)
        try long.write(to: dir.appendingPathComponent("groups.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try plan(dir, ranks: 4).slots["r0-parent"]?.group, 0..<4)
        let binary = try XCTUnwrap(Tool.binary)
        let root = dir.appendingPathComponent("runs")
        let log = dir.appendingPathComponent("stop.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = Tool.mpirun
        process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "4", binary.path, "run",
                             dir.appendingPathComponent("groups.yaml").path, "--runs", root.path]
        var environment = Tool.childEnvironment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // The first epoch end of the parent (its rolling state): then ask to stop.
        let deadline = Date().addingTimeInterval(120)
        var signalled = false
        while Date() < deadline && process.isRunning && !signalled {
            let runs = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
            if let name = runs.first(where: { $0.hasPrefix("groups-") }),
               FileManager.default.enumerator(atPath: root.appendingPathComponent(name).path)?.compactMap({ $0 as? String })
                   .contains(where: { $0.hasSuffix("parent/training-state.safetensors") }) == true {
                kill(process.processIdentifier, SIGUSR1)
                signalled = true
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        try handle.close()
        let output = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(signalled, "the parent's rolling state never appeared\n\(output)")
        XCTAssertEqual(process.terminationStatus, 75, output)
        // Every rank stopped in the parent's task at the same step.
        let stops = output.split(separator: "\n").filter { $0.contains("SIGUSR1: stopped on request in task r0-parent after step") }
        XCTAssertEqual(stops.count, 4, output)
        let steps = Set(stops.map { $0.components(separatedBy: "after step ").last!.prefix { $0.isNumber } })
        XCTAssertEqual(steps.count, 1, "the members stopped at different steps\n\(output)")
        // Resume on 4 ranks to the end; the 1-rank run without a stop gives the same tables and checkpoints.
        let resumed = try run(dir, root: "runs", ranks: 4)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let single = try run(dir, root: "runs1", ranks: 0)
        XCTAssertEqual(single.status, 0, single.output)
        XCTAssertEqual(try results(runDirectory(root)), try results(runDirectory(dir.appendingPathComponent("runs1"))))
    }
}
