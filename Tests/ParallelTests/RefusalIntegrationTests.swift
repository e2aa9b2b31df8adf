import Foundation
import XCTest
import Core

/// The built `ntkscape` refuses bad command-line values, paths and experiments before any work,
/// with a message naming the option or file, the numbers and the fix (docs/failures.md, "Refused
/// before any work"): exit status and message of each case.
final class RefusalIntegrationTests: XCTestCase {
    typealias Tool = SelftestIntegrationTests

    private func workspace() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-refuse-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Runs `ntkscape arguments` and checks a non-zero `status` (nil: any non-zero) and the message.
    @discardableResult
    private func assertRefused(_ arguments: [String], status: Int32? = nil, contains parts: [String], usage: Bool? = nil,
                               file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let binary = try XCTUnwrap(Tool.binary, "ntkscape binary not found next to the tests")
        let (code, output) = try Tool.run(binary, arguments, timeout: 120)
        let label = arguments.joined(separator: " ")
        if let status { XCTAssertEqual(code, status, "\(label)\n\(output)", file: file, line: line) }
        XCTAssertNotEqual(code, 0, "\(label) was accepted\n\(output)", file: file, line: line)
        for part in parts { XCTAssertTrue(output.contains(part), "\(label): '\(part)' missing from:\n\(output)", file: file, line: line) }
        if let usage { XCTAssertEqual(output.contains("Usage:"), usage, "\(label): usage line\n\(output)", file: file, line: line) }
        return output
    }

    /// Tests/Fixtures/refusal-experiment.yaml, shared with CoreTests/RefusalTests.
    private static let experiment = try! String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/refusal-experiment.yaml").path, encoding: .utf8)

    func testCommandLineValues() throws {
        try assertRefused(["plan", "--ranks", "0"], status: 64, contains: ["--ranks must be at least 1", "got 0", "--ranks 2"])
        try assertRefused(["plan", "--ranks=-1"], status: 64, contains: ["--ranks must be at least 1", "got -1"])
        try assertRefused(["plan", "--calibration-steps", "0"], status: 64, contains: ["--calibration-steps must be at least 1"])
        try assertRefused(["evaluate", "model.safetensors", "--batch", "0"], status: 64, contains: ["--batch must be at least 1", "got 0"])
        for command in [["run"], ["plan"], ["train"], ["evaluate", "m.safetensors"], ["ntk", "m.safetensors", "--probe", "10"],
                        ["bench", "train"], ["selftest"], ["info"]] {
            try assertRefused(command + ["--threads", "0"], status: 64, contains: ["--threads must be at least 1, got 0"])
        }
    }

    /// A CIFAR-shaped checkpoint evaluated on Fashion-MNIST: both shapes, exit 1, no usage line;
    /// a checkpoint path that is a directory likewise.
    func testCheckpointMismatchAndDirectory() throws {
        let dir = try workspace()
        let ckpt = dir + "/cifar.safetensors"
        try Checkpoint(network: ModelKind.linear.build(input: Shape(3, 32, 32), classes: 10, as: Float.self)).write(to: ckpt)
        try assertRefused(["evaluate", ckpt, "--train-subset", "10", "--test-subset", "10"], status: 1,
                          contains: [ckpt, "3x32x32", "1x28x28", "--dataset cifar10"], usage: false)
        try assertRefused(["evaluate", dir], status: 1, contains: [dir, "is a directory, not a checkpoint file", "cifar.safetensors"], usage: false)
    }

    func testOutputPathsCheckedBeforeWork() throws {
        let dir = try workspace()
        FileManager.default.createFile(atPath: dir + "/file", contents: Data())
        let output = try assertRefused(["train", "--dataset", "synthetic", "--model", "linear", "--epochs", "1", "--threads", "1",
                                        "-o", dir + "/file/model.safetensors"], status: 1,
                                       contains: [dir + "/file", "(-o/--output)", "is a file, but a directory is needed"])
        XCTAssertFalse(output.contains("epoch 1.00"), "trained before refusing:\n\(output)")
        let ckpt = dir + "/fmnist.safetensors"
        try Checkpoint(network: ModelKind.linear.build(input: Shape(1, 28, 28), classes: 10, as: Float.self)).write(to: ckpt)
        try assertRefused(["ntk", ckpt, "--probe", "10", "--train-subset", "100", "--test-subset", "10", "--threads", "1",
                           "--out", dir + "/missing/gram.npy"], status: 1,
                          contains: [dir + "/missing", "(--out)", "does not exist"])
    }

    func testSummaryOfARunsRootOrMissingPath() throws {
        let dir = try workspace()
        try FileManager.default.createDirectory(atPath: dir + "/runs/quick-0123456789ab/tasks", withIntermediateDirectories: true)
        try assertRefused(["summary", dir + "/runs"], status: 1,
                          contains: ["is a runs root holding 1 run directory", dir + "/runs/quick-0123456789ab",
                                     "ntkscape summary \(dir)/runs/quick-0123456789ab"], usage: false)
        try assertRefused(["summary", dir + "/nothing"], status: 1, contains: [dir + "/nothing", "no such directory"], usage: false)
    }

    /// Bad experiments are refused at set-up, before the runs root is created.
    func testExperimentsRefusedAtSetUp() throws {
        let dir = try workspace()
        let dataFile = dir + "/data.bin"
        FileManager.default.createFile(atPath: dataFile, contents: Data([0]))
        let times = (0..<20).map { String(Double($0) * 0.25) }.joined(separator: ", ")
        let cases: [(String, String, [String])] = [
            ("too many kept Grams", Self.experiment + "ntk: {times: [\(times)], velocity_dt: 0, memory_gb: 0.3}\n",
             ["ntk.memory_gb", "is 0.3 GiB per rank", "19 kept parent Gram(s) of 1000 x 1000", "145.0 MiB", "raise ntk.memory_gb to at least"]),
            ("huge epochs", Self.experiment.replacingOccurrences(of: "epochs: 5", with: "epochs: 1e300"), ["recipe.epochs", "1000000"]),
            ("empty file", "# nothing here\n", ["holds no settings", "would run every default"]),
            ("data path is a file", Self.experiment.replacingOccurrences(of: "kind: synthetic", with: "kind: cifar10, path: \(dataFile)"),
             [dataFile, "is a file", "must be the directory holding the files"]),
            ("hessian examples", Self.experiment + "hessian: {times: [1], examples: 1000}\n",
             ["hessian.examples", "more than the 200 training examples used"]),
        ]
        for (what, text, parts) in cases {
            let file = dir + "/bad.yaml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let root = dir + "/runs-bad"
            try assertRefused(["run", file, "--runs", root], status: 1, contains: parts, usage: false)
            XCTAssertFalse(FileManager.default.fileExists(atPath: root), "\(what): wrote \(root) before failing")
        }
        // A runs root under a file.
        let file = dir + "/good.yaml"
        try Self.experiment.write(toFile: file, atomically: true, encoding: .utf8)
        try assertRefused(["run", file, "--runs", dataFile + "/runs"], status: 1,
                          contains: [dataFile + "/runs (--runs)", "cannot be created: \(dataFile) is a file"], usage: false)
    }

    /// `plan` prints the memory per rank (the estimate `run` checks) and asks Slurm for it.
    func testPlanPrintsMemory() throws {
        let dir = try workspace()
        let file = dir + "/exp.yaml"
        try (Self.experiment + "ntk: {times: [0, 1], velocity_dt: 0}\n").write(toFile: file, atomically: true, encoding: .utf8)
        let binary = try XCTUnwrap(Tool.binary)
        let (status, output) = try Tool.run(binary, ["plan", file, "--ranks", "2", "--calibration-steps", "1"], timeout: 120)
        XCTAssertEqual(status, 0, output)
        for part in ["memory per rank on 2 rank(s) (NTK groups of 2): peak", "ntk-timeline:", "1 kept parent Gram(s) of 1000 x 1000",
                     "disk: ", "--mem-per-cpu="] {
            XCTAssertTrue(output.contains(part), "'\(part)' missing from:\n\(output)")
        }
    }
}
