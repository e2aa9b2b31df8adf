import Foundation
import XCTest
import Core

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

    /// Runs `ntkscape <arguments>` on `ranks` ranks (0: without mpirun) with `NTKSCAPE_FAULT=fault`;
    /// the launcher is killed well after the limit (a hang fails the test instead of stalling it).
    private func launch(_ arguments: [String], ranks: Int, fault: String? = nil) throws -> Outcome {
        let r = try Tool.launch(arguments, ranks: ranks, fault: fault, timeout: Self.limit * 4)
        return Outcome(status: r.status, output: r.output, seconds: r.seconds)
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
        XCTAssertEqual(tables.keys.filter { $0.hasSuffix(".csv") }.count, 25, "every table and statistics.csv")
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
        // A checkpoint deleted after the task that wrote it finished: the rerun checks the finished
        // tasks' checkpoints first and recomputes that task (and the unfinished tasks waiting for it).
        let run = try runDirectory("chain3")
        let parent = run.appendingPathComponent("replicate-0/parent")
        try FileManager.default.removeItem(at: parent.appendingPathComponent("epoch-0000.500.safetensors"))
        try FileManager.default.removeItem(at: parent.appendingPathComponent("children"))
        for task in ["r0-s0-c0", "r0-s0-c1", "r0-s0-pair0-1", "r0-s0-ntk-children"] {
            try FileManager.default.removeItem(at: run.appendingPathComponent("tasks/\(task).json"))
        }
        let rerun = try self.run(root: "chain3", ranks: 3)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertTrue(rerun.output.contains("recomputing task r0-parent from its start although it finished: "
                                            + "\(parent.path)/epoch-0000.500.safetensors is missing"), rerun.output)
        XCTAssertEqual(try tables(run), try reference())
    }

    /// The runs directory cannot be created (a regular file where it should be; root ignores
    /// permission bits): rank 0 fails in set-up, every rank ends, nothing waits.
    func testUnwritableRunsDirectory() throws {
        let blocker = Self.workspace.appendingPathComponent("not-a-directory")
        _ = FileManager.default.createFile(atPath: blocker.path, contents: Data())
        for ranks in [2, 3] {
            let outcome = try run(root: "not-a-directory", ranks: ranks)
            assertFailed(outcome, rank: 0, ranks: ranks, task: "creating the run directory",
                         mentions: "(--runs): is a file, but a directory is needed here",
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
                     task: "writing \(out.path)/gram.npy", mentions: "(--out): cannot be created: \(Self.workspace.path)/no-such-dir is a file",
                     "ntk --out unwritable")
        assertFailed(try launch(["selftest", "--threads", "1", "--n", "40", "--block", "8"], ranks: 3, fault: "setup:2"),
                     rank: 2, ranks: 3, task: "selftest set-up", mentions: "injected fault", "selftest")
        assertFailed(try launch(["bench", "eval", "--model", "simplecnn", "--repeats", "1"], ranks: 0, fault: "setup:0"),
                     rank: 0, ranks: 1, task: "bench set-up", mentions: "injected fault", "bench")
    }
}

/// Resuming never mixes results (issue 12 §2, docs/experiment.md "Resuming never mixes results"):
/// changed data refused, corrupt checkpoints of finished tasks recomputed, one job per run
/// directory, non-finite checkpoints refused by the commands that load them.
extension FailureIntegrationTests {
    /// Tiny Fashion-MNIST-format IDX files (100 train, 20 test images, pixels from a fixed formula).
    private func writeIDX(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func be32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xff) } }
        for (prefix, n) in [("train", 100), ("t10k", 20)] {
            var images = be32(0x803) + be32(n) + be32(28) + be32(28)
            for i in 0..<(n * 784) { images.append(UInt8((i * 7 + i / 784 * 13) % 256)) }
            try Data(images).write(to: dir.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try Data(be32(0x801) + be32(n) + (0..<n).map { UInt8($0 % 10) }).write(to: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
    }

    /// The data change under an interrupted run: the rerun is refused at set-up, naming what changed;
    /// with the data restored it continues. Jobs stop at their first training task (injected fault).
    func testChangedDataIsRefused() throws {
        let data = Self.workspace.appendingPathComponent("idx")
        try writeIDX(to: data)
        let yaml = Self.workspace.appendingPathComponent("idx.yaml")
        try """
            name: idx
            dataset:
              kind: fashion-mnist
              path: \(data.path)
            model: linear
            recipe:
              batch_size: 50
              epochs: 1
            spawn_times: [0.5]
            children: 2
            probe_size: 10
            threads: 1

            """.write(to: yaml, atomically: true, encoding: .utf8)
        let args = ["run", yaml.path, "--runs", Self.workspace.appendingPathComponent("idx-runs").path]
        let first = try launch(args, ranks: 1, fault: "train:0")
        assertFailed(first, rank: 0, ranks: 1, task: "task r0-", mentions: "injected fault", "first start")
        let images = data.appendingPathComponent("train-images-idx3-ubyte")
        let original = try Data(contentsOf: images)
        var changed = original
        changed[16 + 5000] ^= 0x40
        try changed.write(to: images)
        let refused = try launch(args, ranks: 1, fault: "train:0")
        assertFailed(refused, rank: 0, ranks: 1, task: "checking the run directory", mentions: "the data differ from those the run started with",
                     "changed data")
        XCTAssertTrue(refused.output.contains("training examples' SHA-256"), refused.output)
        XCTAssertTrue(refused.output.contains("restore the data files the run started with"), refused.output)
        XCTAssertFalse(refused.output.contains("starts"), "no task may start\n\(refused.output)")
        try original.write(to: images)
        let restored = try launch(args, ranks: 1, fault: "train:0")
        assertFailed(restored, rank: 0, ranks: 1, task: "task r0-", mentions: "injected fault", "data restored")
    }

    /// Corrupt (one flipped byte), truncated and deleted checkpoints of finished tasks: the rerun
    /// recomputes those tasks, says so, and writes tables byte-identical to a clean run.
    func testCorruptCheckpointsOfFinishedTasksAreRecomputed() throws {
        let expected = try reference()
        let first = try run(root: "corrupt", ranks: 2)
        XCTAssertEqual(first.status, 0, first.output)
        let run = try runDirectory("corrupt")
        let parent = run.appendingPathComponent("replicate-0/parent")
        let child = parent.appendingPathComponent("children/spawn-0000.500/child-1/final.safetensors")
        var bytes = try Data(contentsOf: child)
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: child)
        let spawn = parent.appendingPathComponent("epoch-0000.500.safetensors")
        try Data(try Data(contentsOf: spawn).prefix(200)).write(to: spawn)
        // The consumers of the child and the parent's spawn checkpoint are not finished: recomputed too.
        for task in ["r0-s0-c0", "r0-s0-pair0-1", "r0-s0-ntk-children"] {
            try FileManager.default.removeItem(at: run.appendingPathComponent("tasks/\(task).json"))
        }
        try FileManager.default.removeItem(at: run.appendingPathComponent("tables"))
        let rerun = try self.run(root: "corrupt", ranks: 2)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertTrue(rerun.output.contains("recomputing task r0-parent from its start although it finished: \(spawn.path) is unreadable"),
                      rerun.output)
        XCTAssertTrue(rerun.output.contains("recomputing task r0-s0-c1 from its start although it finished: \(child.path) is unreadable")
                      && rerun.output.contains("corrupt"), rerun.output)
        XCTAssertEqual(try tables(run), expected)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("run.lock").path))
        // Deleted: likewise.
        try FileManager.default.removeItem(at: child)
        let again = try self.run(root: "corrupt", ranks: 2)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("recomputing task r0-s0-c1 from its start although it finished: \(child.path) is missing"),
                      again.output)
        XCTAssertFalse(again.output.contains("recomputing task r0-parent"), again.output)
        XCTAssertEqual(try tables(run), expected)
    }

    /// A second job into a run directory that a running job holds fails at set-up, at once, naming
    /// the holder; a lock left by a killed job of this host is taken over.
    func testSecondConcurrentRunIsRefused() throws {
        let yaml = Self.workspace.appendingPathComponent("slow.yaml")
        try Self.experiment.replacingOccurrences(of: "name: micro", with: "name: slow")
            .replacingOccurrences(of: "epochs: 1", with: "epochs: 40")
            .write(to: yaml, atomically: true, encoding: .utf8)
        let root = Self.workspace.appendingPathComponent("concurrent").path
        let binary = try XCTUnwrap(Tool.binary)
        let first = Process()
        first.executableURL = Tool.mpirun
        first.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "1", binary.path, "run", yaml.path, "--runs", root]
        var environment = Tool.childEnvironment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        first.environment = environment
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        // Wait for its lock.
        var lock: String?
        let deadline = Date().addingTimeInterval(60)
        while lock == nil && Date() < deadline {
            if let name = (try? FileManager.default.contentsOfDirectory(atPath: root))?.first(where: { $0.hasPrefix("slow-") }),
               FileManager.default.fileExists(atPath: "\(root)/\(name)/run.lock") {
                lock = "\(root)/\(name)/run.lock"
            } else {
                usleep(100_000)
            }
        }
        let lockPath = try XCTUnwrap(lock, "the first job never took its lock")
        XCTAssertTrue(first.isRunning, "the first job ended too soon for the test")
        let second = try launch(["run", yaml.path, "--runs", root], ranks: 2)
        assertFailed(second, rank: 0, ranks: 2, task: "locking the run directory",
                     mentions: "another ntkscape job is running in this run directory (pid", "second job")
        XCTAssertLessThan(second.seconds, 15, second.output)
        XCTAssertTrue(first.isRunning, "the refused job must not disturb the first")
        XCTAssertTrue(FileManager.default.fileExists(atPath: lockPath))
        // Kill the first job: its lock stays behind (stale); the next job takes it over.
        first.terminate()
        first.waitUntilExit()
        if !FileManager.default.fileExists(atPath: lockPath) {
            try "pid=999999 host=\(RunLock.hostName) started=x\n".write(toFile: lockPath, atomically: true, encoding: .utf8)
        }
        let third = try launch(["run", yaml.path, "--runs", root], ranks: 1, fault: "train:0")
        assertFailed(third, rank: 0, ranks: 1, task: "task r0-", mentions: "injected fault", "after the stale lock")
        XCTAssertTrue(third.output.contains("removing the stale lock"), third.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockPath), "the failed job releases its lock")
    }

    /// A learning rate that blows the parent up: the job fails in that task, naming the setting.
    func testDivergenceNamesTheTaskAndTheSetting() throws {
        let yaml = Self.workspace.appendingPathComponent("diverge.yaml")
        try Self.experiment.replacingOccurrences(of: "name: micro", with: "name: diverge")
            .replacingOccurrences(of: "optimizer: adam", with: "optimizer: sgd")
            .replacingOccurrences(of: "learning_rate: 0.003", with: "learning_rate: 1000000")
            .replacingOccurrences(of: "epochs: 1", with: "epochs: 3")
            .write(to: yaml, atomically: true, encoding: .utf8)
        let outcome = try launch(["run", yaml.path, "--runs", Self.workspace.appendingPathComponent("diverge").path], ranks: 1)
        assertFailed(outcome, rank: 0, ranks: 1, task: "task r0-parent", mentions: "Fix: lower recipe.learning_rate", "divergence")
        XCTAssertTrue(outcome.output.contains("training diverged: loss"), outcome.output)
    }

    /// A NaN in a checkpoint is refused by every command that loads one, naming the tensor; `train
    /// --resume` also refuses other settings, naming the option.
    func testNonFiniteCheckpointIsRefused() throws {
        let dir = Self.workspace.appendingPathComponent("nan")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let good = dir.appendingPathComponent("good.safetensors").path
        let trained = try launch(["train", "--model", "simplecnn", "--dataset", "synthetic", "--train-subset", "100",
                                  "--test-subset", "50", "--epochs", "1", "--batch", "50", "--lr", "0.01", "--threads", "1",
                                  "--output", good], ranks: 0)
        XCTAssertEqual(trained.status, 0, trained.output)
        var checkpoint = try Checkpoint.read(good)
        var weights = try checkpoint.file.floats("conv1.weight")
        weights[3] = .nan
        checkpoint.file.set("conv1.weight", floats: weights, shape: checkpoint.file.tensors["conv1.weight"]!.shape)
        let bad = dir.appendingPathComponent("nan.safetensors").path
        try checkpoint.write(to: bad)
        let common = ["--dataset", "synthetic", "--train-subset", "100", "--test-subset", "50", "--threads", "1"]
        let evaluated = try launch(["evaluate", bad] + common, ranks: 0)
        assertFailed(evaluated, rank: 0, ranks: 1, task: "ntkscape evaluate", mentions: "tensor `conv1.weight` holds NaN at element 3",
                     "evaluate")
        let resumed = try launch(["train", "--model", "simplecnn", "--epochs", "1", "--batch", "50", "--lr", "0.01",
                                  "--output", dir.appendingPathComponent("out.safetensors").path, "--resume", bad] + common, ranks: 0)
        assertFailed(resumed, rank: 0, ranks: 1, task: "ntkscape train", mentions: "tensor `conv1.weight` holds NaN", "train --resume")
        let ntk = try launch(["ntk", bad, "--dataset", "synthetic", "--probe", "10", "--threads", "1"], ranks: 0)
        XCTAssertNotEqual(ntk.status, 0, ntk.output)
        XCTAssertTrue(ntk.output.contains("tensor `conv1.weight` holds NaN"), ntk.output)
        // Other settings on resume: refused naming the option.
        let otherLR = try launch(["train", "--model", "simplecnn", "--epochs", "1", "--batch", "50", "--lr", "0.02",
                                  "--output", dir.appendingPathComponent("out.safetensors").path, "--resume", good] + common, ranks: 0)
        assertFailed(otherLR, rank: 0, ranks: 1, task: "resuming from \(good)", mentions: "--learning-rate 0.01 in the checkpoint, 0.02 given",
                     "train --resume --lr")
        let otherData = try launch(["train", "--model", "simplecnn", "--epochs", "1", "--batch", "50", "--lr", "0.01",
                                    "--output", dir.appendingPathComponent("out.safetensors").path, "--resume", good,
                                    "--dataset", "synthetic", "--train-subset", "99", "--test-subset", "50", "--threads", "1"], ranks: 0)
        assertFailed(otherData, rank: 0, ranks: 1, task: "resuming from \(good)", mentions: "the data (", "train --resume data")
    }
}
