import Core
import Foundation
import TestSupport
import XCTest

/// `ntkscape ntk` on 1, 2 and 3 ranks (and without mpirun) must give the same Gram bit for bit,
/// ScaLAPACK's eigenvalues must match LAPACK's, and the NTK machine the same test error.
final class NTKIntegrationTests: XCTestCase {
    /// A Kaiming-initialised SimpleCNN on the synthetic data's 3x8x8 inputs, 10 classes.
    static let checkpoint: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ntk-\(UUID().uuidString).safetensors").path
        let net = ModelKind.simplecnn.build(input: Shape(3, 8, 8), classes: 10, as: Float.self)
        var stream = RandomStream(seed: 3, role: .initialization)
        net.initialize { stream.normal() }
        try! Checkpoint(network: net).write(to: path)
        return path
    }()

    /// Runs `ntkscape ntk` (probe 20: a 200 x 200 Gram in 7 blocks of 30 rows, the last one short).
    func run(ranks: Int?, tag: String) throws -> (output: String, npy: Data, eigenvalues: [Double]) {
        let binary = try XCTUnwrap(SelftestIntegrationTests.binary, "ntkscape binary not found")
        let dir = FileManager.default.temporaryDirectory
        let npy = dir.appendingPathComponent("gram-\(tag)-\(UUID().uuidString).npy").path
        let csv = dir.appendingPathComponent("eig-\(tag)-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: npy); try? FileManager.default.removeItem(atPath: csv) }
        let args = [binary.path, "ntk", Self.checkpoint, "--dataset", "synthetic", "--probe", "20", "--block-size", "30",
                    "--out", npy, "--eigenvalues", csv, "--top-k", "2", "--machine", "30", "--ridge", "0.01", "--threads", "1"]
        let (status, output) = try ranks.map {
            try SelftestIntegrationTests.run(SelftestIntegrationTests.mpirun,
                                             ["--allow-run-as-root", "--oversubscribe", "-np", "\($0)"] + args)
        } ?? SelftestIntegrationTests.run(binary, Array(args.dropFirst()))
        XCTAssertEqual(status, 0, output)
        let eigen = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",")[1])! }
        return (output, try Data(contentsOf: URL(fileURLWithPath: npy)), eigen)
    }

    func testGramIdenticalOnOneTwoThreeRanks() throws {
        let serial = try run(ranks: nil, tag: "serial")
        XCTAssertEqual(serial.npy.count, 128 + 200 * 200 * 8)
        XCTAssertEqual(serial.eigenvalues.count, 200)
        let machine = serial.output.split(separator: "\n").first { $0.hasPrefix("NTK machine") }
        XCTAssertNotNil(machine, serial.output)
        let alignment = serial.output.split(separator: "\n").first { $0.hasPrefix("alignment") }
        for ranks in [1, 2, 3] {
            let r = try run(ranks: ranks, tag: "np\(ranks)")
            XCTAssertTrue(r.npy == serial.npy, "Gram on \(ranks) rank(s) differs from the serial one")
            // ScaLAPACK (p > 1) against LAPACK: 1e-10 relative to the largest eigenvalue.
            let scale = serial.eigenvalues.map(abs).max()!
            assertClose(r.eigenvalues, serial.eigenvalues, Tolerance.absolute(1e-10 * scale), "eigenvalues on \(ranks) rank(s)")
            let lines = r.output.split(separator: "\n")
            XCTAssertEqual(lines.first { $0.hasPrefix("alignment") }, alignment, r.output)
            XCTAssertEqual(lines.first { $0.hasPrefix("NTK machine") }.map { $0.split(separator: "(")[0] },
                           machine.map { $0.split(separator: "(")[0] }, r.output)
        }
    }
}
