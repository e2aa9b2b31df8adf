import Foundation
import XCTest

/// A failure on any rank ends the whole job fast (docs/failures.md): the built `ntkscape` under
/// `mpirun` on 2 and 3 ranks, with a fault injected (`NTKSCAPE_FAULT=<phase>:<rank>`) in every
/// phase, exits non-zero within 30 s with the error printed once, naming the rank and the task; a
/// rerun without the fault writes tables byte-identical to a clean run. Also: a runs directory that
/// cannot be created, a tables directory that cannot be written, a checkpoint deleted under a
/// finished task, and the `ntk`, `selftest` and `bench` commands.
final class FailureIntegrationTests: XCTestCase {
    typealias Tool = SelftestIntegrationTests

    /// Small enough that a whole run takes seconds, with every phase: training (parent, children),
    /// pair and timeline metrics, collective NTK tasks, gather, tables.
    static let experiment = """
        name: micro
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
          epochs: 1
        spawn_times: [0.5]
        children: 2
        probe_size: 10
        barrier:
          points: 3
          train_subset: 50
          recompute_batches: 1
        ntk:
          block_size: 20
        threads: 1

        """

    /// Longest time from a rank's error to the end of the job.
    static let limit: TimeInterval = 30

    private static var workspace: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-failure-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try! experiment.write(to: dir.appendingPathComponent("micro.yaml"), atomically: true, encoding: .utf8)
        return dir
    }()

    /// The tables of one clean 2-rank run, shared by every test.
    private static var referenceTables: [String: Data]?

    override class func tearDown() {
        try? FileManager.default.removeItem(at: workspace)
        super.tearDown()
    }

    struct Outcome {
        var status: Int32, output: String, seconds: Double
    }

    /// Runs `ntkscape <arguments>` on `ranks` ranks (0: without mpirun) with `NTKSCAPE_FAULT=fault`.
    private func launch(_ arguments: [String], ranks: Int, fault: String? = nil) throws -> Outcome {
        let binary = try XCTUnwrap(Tool.binary, "ntkscape binary not found next to the tests")
        let log = Self.workspace.appendingPathComponent("out-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        if ranks == 0 {
            process.executableURL = binary
            process.arguments = arguments
        } else {
            process.executableURL = Tool.mpirun
            process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", binary.path] + arguments
        }
        var environment = Tool.childEnvironment
        environment["NTKSCAPE_FAULT"] = fault
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        let start = Date()
        try process.run()
        // A hang must fail the test, not stall it: kill the launcher well after the limit.
        if done.wait(timeout: .now() + Self.limit * 4) == .timedOut {
            process.terminate()
            done.wait()
        }
        let seconds = Date().timeIntervalSince(start)
        try handle.close()
        return Outcome(status: process.terminationStatus, output: try String(contentsOf: log, encoding: .utf8), seconds: seconds)
    }

    private func run(root: String, ranks: Int, fault: String? = nil) throws -> Outcome {
        try launch(["run", Self.workspace.appendingPathComponent("micro.yaml").path,
                    "--runs", Self.workspace.appendingPathComponent(root).path], ranks: ranks, fault: fault)
    }

    private func runDirectory(_ root: String) throws -> URL {
        let base = Self.workspace.appendingPathComponent(root)
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: base.path).first { $0.hasPrefix("micro-") })
        return base.appendingPathComponent(name)
    }

    private func tables(_ run: URL) throws -> [String: Data] {
        let dir = run.appendingPathComponent("tables")
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return out
    }

    private func reference() throws -> [String: Data] {
        if let tables = Self.referenceTables { return tables }
        let clean = try run(root: "reference", ranks: 2)
        XCTAssertEqual(clean.status, 0, clean.output)
        let tables = try tables(try runDirectory("reference"))
        XCTAssertEqual(tables.keys.filter { $0.hasSuffix(".csv") }.count, 16, "every table")
        Self.referenceTables = tables
        return tables
    }

    /// Non-zero exit within the limit; exactly one error report, by `rank` of `ranks` (nil: any),
    /// naming `task`.
    private func assertFailed(_ outcome: Outcome, rank: Int?, ranks: Int, task: String, mentions: String? = nil,
                              _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(outcome.status, 0, "\(label): exit status 0\n\(outcome.output)", file: file, line: line)
        XCTAssertLessThan(outcome.seconds, Self.limit, "\(label): took \(outcome.seconds) s\n\(outcome.output)", file: file, line: line)
        let lines = outcome.output.split(separator: "\n").map(String.init)
        let errors = lines.filter { $0.hasPrefix("ntkscape: error") }
        XCTAssertEqual(errors.count, 1, "\(label): error printed \(errors.count) times\n\(outcome.output)", file: file, line: line)
        XCTAssertEqual(lines.filter { $0.hasPrefix("ntkscape: fix: ") }.count, 1, "\(label): one fix\n\(outcome.output)", file: file, line: line)
        guard let error = errors.first else { return }
        let place = ranks > 1 ? "ntkscape: error on rank \(rank ?? 0) of \(ranks) in \(task)" : "ntkscape: error in \(task)"
        let shown = rank == nil ? error.replacingOccurrences(of: #"rank \d+ of"#, with: "rank 0 of", options: .regularExpression) : error
        XCTAssertTrue(shown.hasPrefix(place), "\(label): expected '\(place)...'\n\(outcome.output)", file: file, line: line)
        if let mentions {
            XCTAssertTrue(outcome.output.contains(mentions), "\(label): no '\(mentions)'\n\(outcome.output)", file: file, line: line)
        }
    }

    /// Faults in every phase, one after another in the same run directory (each rerun resumes where
    /// the previous job stopped), then a rerun without a fault: identical tables.
    private func faultChain(ranks: Int, faults: [(phase: String, rank: Int?, task: String)]) throws {
        let expected = try reference()
        let root = "chain\(ranks)"
        for (phase, rank, task) in faults {
            // No rank: the phase on every rank at once (still reported once).
            let fault = rank.map { "\(phase):\($0)" } ?? (0..<ranks).map { "\(phase):\($0)" }.joined(separator: ",")
            let outcome = try run(root: root, ranks: ranks, fault: fault)
            assertFailed(outcome, rank: rank, ranks: ranks, task: task,
                         mentions: "injected fault NTKSCAPE_FAULT=\(fault)", "\(ranks) ranks, \(fault)")
            if phase != "tables" || rank == 0, let run = try? runDirectory(root) {
                XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("tables").path),
                               "\(fault): tables written by a failed run")
            }
        }
        let rerun = try run(root: root, ranks: ranks)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        let got = try tables(try runDirectory(root))
        XCTAssertEqual(Set(got.keys), Set(expected.keys))
        for (name, bytes) in expected { XCTAssertEqual(got[name], bytes, "\(name) differs after the faults (\(ranks) ranks)") }
    }

    func testEveryPhaseOnTwoRanks() throws {
        try faultChain(ranks: 2, faults: [
            ("setup", 1, "set-up"),
            ("train", 0, "task r0-parent"),
            ("pairs", 1, "task r0-t0"),
            ("ntk", 1, "task r0-"),
            ("gather", 1, "gathering the task records on rank 0"),
            ("tables", 0, "writing the tables and the manifest"),
        ])
        // The tables cannot be written (a file where the tables directory goes, as a full or
        // read-only disk would): rank 0 fails, the job ends; after the fix the rerun writes them.
        let run = try runDirectory("chain2")
        let tablesDir = run.appendingPathComponent("tables")
        try FileManager.default.removeItem(at: tablesDir)
        _ = FileManager.default.createFile(atPath: tablesDir.path, contents: Data())
        let blocked = try self.run(root: "chain2", ranks: 2)
        assertFailed(blocked, rank: 0, ranks: 2, task: "writing the tables and the manifest", mentions: "exists", "tables blocked")
        try FileManager.default.removeItem(at: tablesDir)
        let rerun = try self.run(root: "chain2", ranks: 2)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertEqual(try tables(run), try reference())
    }

    func testEveryPhaseOnThreeRanks() throws {
        try faultChain(ranks: 3, faults: [
            ("setup", 2, "set-up"),
            ("train", 1, "task r0-"),
            ("pairs", 2, "task r0-t"),
            ("pairs", nil, "task r0-"),
            ("ntk", 2, "task r0-"),
            ("gather", 0, "gathering the task records on rank 0"),
            ("tables", 0, "writing the tables and the manifest"),
            // Rank 0 may finish the tables before the abort reaches it: not checked for absence.
            ("tables", 2, "waiting for rank 0 to write the tables"),
        ])
        // A checkpoint deleted after the task that wrote it finished: the waiting rank fails at once,
        // naming the file, the task and the records to delete; doing so and rerunning recomputes it.
        let run = try runDirectory("chain3")
        let parent = run.appendingPathComponent("replicate-0/parent")
        try FileManager.default.removeItem(at: parent.appendingPathComponent("epoch-0000.500.safetensors"))
        try FileManager.default.removeItem(at: parent.appendingPathComponent("children"))
        for task in ["r0-s0-c0", "r0-s0-c1", "r0-s0-pair0-1", "r0-s0-ntk-children"] {
            try FileManager.default.removeItem(at: run.appendingPathComponent("tasks/\(task).json"))
        }
        let missing = try self.run(root: "chain3", ranks: 3)
        let record = run.appendingPathComponent("tasks/r0-parent.json").path
        assertFailed(missing, rank: nil, ranks: 3,
                     task: "waiting for \(parent.path)/epoch-0000.500.safetensors", mentions: "delete \(record)", "deleted checkpoint")
        try FileManager.default.removeItem(atPath: record)
        try FileManager.default.removeItem(at: parent.appendingPathComponent("training-state.safetensors"))
        let rerun = try self.run(root: "chain3", ranks: 3)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertEqual(try tables(run), try reference())
    }

    /// The runs directory cannot be created (a regular file where it should be; root ignores
    /// permission bits): rank 0 fails in set-up, every rank ends, nothing waits.
    func testUnwritableRunsDirectory() throws {
        let blocker = Self.workspace.appendingPathComponent("not-a-directory")
        _ = FileManager.default.createFile(atPath: blocker.path, contents: Data())
        for ranks in [2, 3] {
            let outcome = try run(root: "not-a-directory", ranks: ranks)
            assertFailed(outcome, rank: 0, ranks: ranks, task: "creating the run directory", mentions: "Not a directory",
                         "unwritable runs directory, \(ranks) ranks")
            XCTAssertTrue(outcome.output.contains("fix: make \(blocker.path) a writable directory"), outcome.output)
        }
    }

    /// The other commands share the abort path.
    func testNTKSelftestAndBenchFailFast() throws {
        let checkpoint = NTKIntegrationTests.checkpoint
        let ntk = ["ntk", checkpoint, "--dataset", "synthetic", "--probe", "10", "--block-size", "20", "--threads", "1"]
        for (fault, task) in [("setup:1", "set-up"), ("ntk:1", "building the Gram")] {
            assertFailed(try launch(ntk, ranks: 2, fault: fault), rank: 1, ranks: 2, task: task,
                         mentions: "injected fault", "ntk \(fault)")
        }
        let out = Self.workspace.appendingPathComponent("no-such-dir/sub")
        _ = FileManager.default.createFile(atPath: Self.workspace.appendingPathComponent("no-such-dir").path, contents: Data())
        assertFailed(try launch(ntk + ["--out", out.path + "/gram.npy"], ranks: 3), rank: 0, ranks: 3,
                     task: "writing \(out.path)/gram.npy", mentions: "Not a directory", "ntk --out unwritable")
        assertFailed(try launch(["selftest", "--threads", "1", "--n", "40", "--block", "8"], ranks: 3, fault: "setup:2"),
                     rank: 2, ranks: 3, task: "selftest set-up", mentions: "injected fault", "selftest")
        assertFailed(try launch(["bench", "eval", "--model", "simplecnn", "--repeats", "1"], ranks: 0, fault: "setup:0"),
                     rank: 0, ranks: 1, task: "bench set-up", mentions: "injected fault", "bench")
    }
}
