import Foundation
import XCTest
import Core

/// Refuse early, with the numbers (docs/experiment.md "Checked before training", docs/failures.md):
/// the memory estimate and its set-up check, values that used to trap, and the messages that used
/// to be vague. Every test asserts the message's content: the file or field, the numbers, the fix.
final class RefusalTests: XCTestCase {
    private func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-refusal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func assertMessage(_ expression: @autoclosure () throws -> Any, contains parts: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            let message = "\(error)"
            for part in parts { XCTAssertTrue(message.contains(part), "'\(part)' missing from: \(message)", file: file, line: line) }
        }
    }

    /// Tests/Fixtures/refusal-experiment.yaml (200 synthetic training examples, 10 classes, probe
    /// 100; shared with ParallelTests/RefusalIntegrationTests) with `extra` settings.
    private func config(_ extra: String) throws -> ExperimentConfig {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/refusal-experiment.yaml")
        return try ExperimentConfig.parse(yaml: try String(contentsOf: fixture, encoding: .utf8) + extra)
    }

    // MARK: Memory

    /// The Gram part of the estimate is the closed form (mC)^2 x 8 bytes, a rank of p holding
    /// ceil(blocks / p) blocks of nb rows.
    func testGramBytesAreTheClosedForm() throws {
        XCTAssertEqual(MemoryEstimate.gramBytes(examples: 100, classes: 10), 1000 * 1000 * 8)
        XCTAssertEqual(MemoryEstimate.localGramBytes(examples: 100, classes: 10, blockSize: 500, ranks: 1), 1000 * 1000 * 8)
        XCTAssertEqual(MemoryEstimate.localGramBytes(examples: 100, classes: 10, blockSize: 500, ranks: 2), 500 * 1000 * 8)
        // 3 blocks on 2 ranks: the first rank holds two.
        XCTAssertEqual(MemoryEstimate.localGramBytes(examples: 150, classes: 10, blockSize: 500, ranks: 2), 1000 * 1500 * 8)
        // The timeline phase: kept Grams x local share + the construction of one Gram (GramPlan) ...
        let c = try config("ntk: {times: [0, 1, 2, 3], velocity_dt: 0}")
        let sizes = MemoryEstimate.Sizes(parameters: 10_000, activationsPerExample: 1000, inputCount: 192, classes: 10,
                                         trainExamples: 200, testExamples: 100, machineExamples: 0)
        let estimate = MemoryEstimate(config: c, sizes: sizes, groupRanks: 1)
        let timeline = try XCTUnwrap(estimate.phases.first { $0.name == "ntk-timeline" })
        let kept = try XCTUnwrap(timeline.items.first { $0.label.hasPrefix("3 kept parent Gram(s) of 1000 x 1000") })
        XCTAssertEqual(kept.bytes, 3 * 8_000_000)
        let layout = GramLayout(examples: 100, classes: 10, blockSize: 500, processes: 1, rank: 0)
        // ... and the traced 100 x 100 copy of each of the 4 Grams (the timeline's traced kernel distances).
        let traced = try XCTUnwrap(timeline.items.first { $0.label.hasPrefix("4 traced Gram(s) of 100 x 100") })
        XCTAssertEqual(traced.bytes, 4 * 100 * 100 * 8)
        XCTAssertEqual(timeline.requiredBytes, 3 * 8_000_000 + 4 * 80_000 + GramPlan.minimumBytes(layout: layout, parameters: 10_000))
        XCTAssertEqual(GramPlan.minimumBytes(layout: layout, parameters: 10_000),
                       max(3 * 8_000_000, 8_000_000 + 1500 * 4096 * 4) + (256 << 20) + 64 * 10_000)
        // Data: both splits as F32 with their labels.
        XCTAssertEqual(timeline.items[0].bytes, 300 * 193 * 4)
        // Training: parameters, gradients and two Adam slots; two more networks; activations at the batch;
        // 8 shard replicas' parameters and gradients and the exchange of the 8 shard gradients.
        let training = try XCTUnwrap(estimate.phases.first { $0.name == "training" })
        XCTAssertEqual(training.bytes, 300 * 193 * 4 + 4 * 10_000 * 4 + 2 * 10_000 * 4 + 2 * 4 * 50 * 1000 + 3 * 8 * 10_000 * 4)
    }

    /// An experiment keeping too many parent Grams for `ntk.memory_gb` is refused at set-up — before
    /// any training — with the needed and available memory and the settings to change.
    func testTooManyKeptGramsAreRefusedAtSetUp() throws {
        let times = (0..<20).map { canonicalString(Double($0) * 0.25) }.joined(separator: ", ")
        let c = try config("ntk: {times: [\(times)], velocity_dt: 0, memory_gb: 0.3}")
        let root = try temporaryDirectory() + "/runs"
        assertMessage(try ExperimentRunner(config: c, runsRoot: root, comm: SerialCommunicator(), log: { _ in }),
                      contains: ["ntk.memory_gb", "is 0.3 GiB per rank", "ntk-timeline", "19 kept parent Gram(s) of 1000 x 1000",
                                 MemoryEstimate.format(19 * 8_000_000), "on each of 1 rank(s)", "ntk.times", "probe_size",
                                 "raise ntk.memory_gb to at least"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: root), "set-up wrote \(root)")
        // Two times fit the same budget.
        XCTAssertNoThrow(try ExperimentRunner(config: try config("ntk: {times: [0, 1], velocity_dt: 0, memory_gb: 0.3}"),
                                              runsRoot: root, comm: SerialCommunicator(), log: { _ in }))
    }

    private func canonicalString(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }

    /// The Gram refusal names the real settings and never prints 0.00 GiB for a small part.
    func testGramRefusalNamesRealSettingsAndSmallAmounts() {
        let layout = GramLayout(examples: 10, classes: 10, blockSize: 100, processes: 1, rank: 0)
        assertMessage(try GramPlan(layout: layout, parameters: 1000, budgetBytes: 1 << 20),
                      contains: ["probe_size", "ntk.memory_gb", "--memory-gb", "--probe", "79 KiB for the Gram", "budget is 1.0 MiB", "at least 0.3 GiB"])
        XCTAssertEqual(MemoryEstimate.format(0), "1 KiB")
        XCTAssertEqual(MemoryEstimate.format(3 << 20), "3.0 MiB")
        XCTAssertEqual(MemoryEstimate.format(3 << 30), "3.00 GiB")
    }

    // MARK: Values that used to trap

    func testHugeEpochsAreRefused() throws {
        assertMessage(try ExperimentConfig.parse(yaml: "recipe: {epochs: 1e300}\n").validate(),
                      contains: ["recipe.epochs", "1e+300", "1000000"])
        assertMessage(try ExperimentConfig.parse(yaml: "linearized: {times: [1], epochs: 1e300}\n").validate(),
                      contains: ["linearized.epochs", "1000000"])
        var recipe = TrainingRecipe()
        recipe.epochs = .infinity
        assertMessage(try recipe.validate(), contains: ["epochs", "1000000"])
    }

    /// Checkpoint metadata `input_shape: 1,0,28` (a crafted file without checksum) is refused, not a trap.
    func testCheckpointWithImpossibleInputShapeIsRefused() throws {
        let dir = try temporaryDirectory()
        let net = ModelKind.simplecnn_w8.build(input: Shape(1, 28, 28), classes: 10, as: Float.self)
        var file = Checkpoint(network: net).file
        file.metadata["input_shape"] = "1,0,28"
        file.metadata["content_sha256"] = nil
        let path = dir + "/crafted.safetensors"
        try file.write(to: path)
        assertMessage(try Checkpoint.read(path).makeNetwork(),
                      contains: [path, "input_shape 1,0,28", "simplecnn_w8", "every size in 1...4096", "Fix:"])
        file.metadata["input_shape"] = "1,4,4"
        try file.write(to: path)
        assertMessage(try Checkpoint.read(path).makeNetwork(), contains: ["at least 8 x 8, not 4 x 4"])
    }

    // MARK: Precise messages

    func testCheckpointPathThatIsADirectory() throws {
        let dir = try temporaryDirectory()
        assertMessage(try Checkpoint.read(dir), contains: [dir, "is a directory, not a checkpoint file", "Fix:"])
        let net = ModelKind.linear.build(input: Shape(1, 28, 28), classes: 10, as: Float.self)
        try Checkpoint(network: net).write(to: dir + "/epoch-0000.000.safetensors")
        assertMessage(try Checkpoint.read(dir), contains: ["pass one of the checkpoints in it", "epoch-0000.000.safetensors"])
    }

    /// A CIFAR checkpoint given Fashion-MNIST data: both shapes and class counts, and the data set to pass.
    func testCheckpointOnOtherData() throws {
        let net = ModelKind.linear.build(input: Shape(3, 32, 32), classes: 10, as: Float.self)
        let data = Dataset(name: "fashion-mnist-train", images: [Float](repeating: 0, count: 2 * 784), labels: [0, 1],
                           channels: 1, height: 28, width: 28, classCount: 10)
        assertMessage(try Checkpoint.checkData(network: net, checkpoint: "ckpt.safetensors", data: data),
                      contains: ["ckpt.safetensors", "3x32x32", "10 classes", "fashion-mnist-train has 1x28x28", "--dataset cifar10"])
    }

    func testDataPathThatIsAFileOrMissing() throws {
        let dir = try temporaryDirectory()
        let file = dir + "/train-images-idx3-ubyte.gz"
        FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3]))
        assertMessage(try DatasetLoader.load(kind: .fashionMNIST, path: file),
                      contains: [file, "is a file", "must be the directory holding the files", "t10k-labels-idx1-ubyte", "Fix: pass its directory, \(dir)"])
        assertMessage(try DatasetLoader.load(kind: .cifar10, path: dir + "/nope"),
                      contains: [dir + "/nope", "no such directory", "dataset.path"])
        // A data file's name that is a directory.
        let sub = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: sub + "/train-images-idx3-ubyte", withIntermediateDirectories: true)
        assertMessage(try DatasetLoader.load(kind: .fashionMNIST, path: sub),
                      contains: [sub + "/train-images-idx3-ubyte", "is a directory, but a Fashion-MNIST data file is expected"])
        assertMessage(try CIFARReader.readCIFAR10(files: [sub]), contains: [sub, "is a directory"])
    }

    func testIDXWithNoExamples() throws {
        let dir = try temporaryDirectory()
        func idx(_ magic: UInt32, _ dims: [UInt32]) -> Data {
            Data(([magic] + dims).flatMap { v in [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] })
        }
        try idx(0x803, [0, 28, 28]).write(to: URL(fileURLWithPath: dir + "/images"))
        try idx(0x801, [0]).write(to: URL(fileURLWithPath: dir + "/labels"))
        assertMessage(try IDXReader.readDataset(images: dir + "/images", labels: dir + "/labels"),
                      contains: [dir + "/images", "counts 0 examples", "download it again"])
        // A header whose sizes overflow is reported as truncated, not a trap.
        try idx(0x803, [0xffff_ffff, 0xffff_ffff, 0xffff_ffff]).write(to: URL(fileURLWithPath: dir + "/images"))
        assertMessage(try IDXReader.readDataset(images: dir + "/images", labels: dir + "/labels"), contains: ["truncated"])
    }

    /// `hessian.examples` beyond the training examples used is refused (it was silently capped).
    func testHessianExamplesBeyondTheTrainingSet() throws {
        let c = try config("hessian: {times: [1], examples: 1000}")
        assertMessage(try c.validate(trainExamples: 1000),
                      contains: ["hessian.examples", "is 1000, more than the 200 training examples used", "use at most 200"])
        XCTAssertNoThrow(try config("hessian: {times: [1], examples: 200}").validate(trainExamples: 1000))
    }

    /// An empty experiment file is refused, saying it would run the defaults and how to do either.
    func testEmptyExperimentFile() throws {
        let dir = try temporaryDirectory()
        for text in ["", "\n  \n", "# only a comment\n---\n"] {
            let path = dir + "/empty.yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            assertMessage(try ExperimentConfig.load(path: path),
                          contains: [path, "holds no settings", "would run every default", "10-epoch simplecnn",
                                     "`name: experiment`", "give no file"])
        }
    }

    func testOutputPaths() throws {
        let dir = try temporaryDirectory()
        let file = dir + "/file"
        FileManager.default.createFile(atPath: file, contents: Data())
        assertMessage(try OutputPath.checkWritableFile(file + "/model.safetensors", option: "-o/--output"),
                      contains: [file, "(-o/--output)", "is a file, but a directory is needed"])
        assertMessage(try OutputPath.checkWritableFile(file + "/sub/model.safetensors", option: "--out"),
                      contains: [file + "/sub", "cannot be created: \(file) is a file", "remove or rename \(file)"])
        assertMessage(try OutputPath.checkWritableFile(dir + "/missing/model.safetensors", option: "--out"),
                      contains: [dir + "/missing", "does not exist", "mkdir -p"])
        assertMessage(try OutputPath.checkWritableFile(dir, option: "--out"), contains: [dir, "is a directory, but a file is written"])
        XCTAssertNoThrow(try OutputPath.checkWritableFile(dir + "/model.safetensors", option: "-o"))
        XCTAssertNoThrow(try OutputPath.checkWritableDirectory(dir + "/a/b", option: "--runs", create: true))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["file"], "the probe file is removed")
        if getuid() != 0 {   // root writes into read-only directories
            let ro = dir + "/ro"
            try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o555])
            assertMessage(try OutputPath.checkWritableFile(ro + "/x", option: "--out"), contains: [ro, "cannot take new files", "chmod u+w"])
        }
    }

    func testSummaryTargets() throws {
        let root = try temporaryDirectory()
        assertMessage(try RunPaths.checkRunDirectory(root + "/nope", command: "summary"), contains: [root + "/nope", "no such directory"])
        for name in ["quick-aaaa", "quick-bbbb"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)/tasks", withIntermediateDirectories: true)
        }
        assertMessage(try RunPaths.checkRunDirectory(root, command: "summary"),
                      contains: ["is a runs root holding 2 run directories", root + "/quick-aaaa", root + "/quick-bbbb",
                                 "ntkscape summary \(root)/quick-aaaa"])
        XCTAssertNoThrow(try RunPaths.checkRunDirectory(root + "/quick-aaaa", command: "summary"))
    }

    /// The checkpoint disk estimate counts the parent's times, the children and the rolling states.
    func testCheckpointDiskEstimate() throws {
        let c = try config("measurement_times: [0, 5]\nntk: {times: [], children: false}\nchildren: 2")
        let runner = try ExperimentRunner(config: c, runsRoot: try temporaryDirectory(), comm: SerialCommunicator(), log: { _ in })
        let p = ModelKind.simplecnn_w8.build(input: Shape(3, 8, 8), classes: 10, as: Float.self).parameterCount
        let (count, bytes) = runner.checkpointBytes()
        // Parent at 0, 0.5, 5 + its rolling state; 2 children, final and rolling state each.
        XCTAssertEqual(count, 3 + 1 + 2 + 2)
        XCTAssertEqual(bytes, 5 * (4 * p + 65_536) + 3 * (12 * p + 65_536))
    }
}
