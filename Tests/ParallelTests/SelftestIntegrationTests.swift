import Foundation
import Parallel
import TestSupport
import XCTest

/// Runs the built `ntkscape selftest` under `mpirun` on several rank counts, and without `mpirun`,
/// and requires every check to pass on every rank count (sharding must not change the answer).
final class SelftestIntegrationTests: XCTestCase {
    /// The `ntkscape` executable SwiftPM built next to this test bundle.
    static let binary: URL? = {
        var candidates: [URL] = []
        // The test bundle's own executable (Linux: .build/<config>/NTKScapePackageTests.xctest).
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        // Fallback: the package's build directories, newest binary first.
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let builds = ((try? FileManager.default.contentsOfDirectory(atPath: package.path)) ?? [])
            .filter { $0.hasPrefix(".build") }
            .flatMap { b in ["release", "debug"].map { package.appendingPathComponent(b).appendingPathComponent($0) } }
        candidates += builds.sorted { modified($0) > modified($1) }
        return candidates.map { $0.appendingPathComponent("ntkscape") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    private static func modified(_ dir: URL) -> Date {
        let attributes = try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("ntkscape").path)
        return attributes?[.modificationDate] as? Date ?? .distantPast
    }

    /// This process's environment minus Open MPI's, PMIx's and OPAL's variables: the test process
    /// itself may have called MPI_Init (singleton), and a child mpirun that inherits them exits 1.
    static var childEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "OPAL_"].contains { key.hasPrefix($0) }
        }
    }

    /// `mpirun` from `$PATH` (Open MPI's, installed by scripts/install-deps.sh).
    static var mpirun: URL {
        executableOnPath("mpirun") ?? URL(fileURLWithPath: "mpirun")
    }

    /// Runs `ntkscape arguments` on `ranks` ranks (0: without mpirun), one OpenBLAS thread per rank,
    /// `NTKSCAPE_FAULT=fault` if given; stdout and stderr merged. A hang must fail the test, not
    /// stall it: the launcher is killed after `timeout` s and its status returned.
    static func launch(_ arguments: [String], ranks: Int, fault: String? = nil, timeout: TimeInterval)
        throws -> (status: Int32, output: String, seconds: Double)
    {
        let binary = try XCTUnwrap(binary, "ntkscape binary not found next to the tests")
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-launch-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        if ranks == 0 {
            process.executableURL = binary
            process.arguments = arguments
        } else {
            process.executableURL = mpirun
            process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", binary.path] + arguments
        }
        var environment = childEnvironment
        environment["NTKSCAPE_FAULT"] = fault
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        let start = Date()
        try process.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            done.wait()
        }
        let seconds = Date().timeIntervalSince(start)
        try handle.close()
        return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8), seconds)
    }

    /// Runs `executable arguments` to completion (killed after `timeout` s); stdout and stderr merged.
    static func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval = 300)
        throws -> (status: Int32, output: String)
    {
        let log = FileManager.default.temporaryDirectory
            .appendingPathComponent("ntkscape-selftest-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = childEnvironment
        process.standardOutput = handle
        process.standardError = handle
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            done.wait()
            try? handle.close()
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw NSError(domain: "SelftestIntegrationTests", code: 1, userInfo: [
                NSLocalizedDescriptionKey: "timed out after \(timeout) s: \(arguments)\n\(output)"])
        }
        try handle.close()
        return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8))
    }

    /// Runs the selftest and checks exit status, PASS lines and their count.
    func assertSelftestPasses(ranks: Int?, extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let binary = try XCTUnwrap(Self.binary, "ntkscape binary not found next to the test bundle", file: file, line: line)
        let selftest = [binary.path, "selftest", "--threads", "1"] + extra
        let (status, output) = try ranks.map {
            try Self.run(Self.mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "\($0)"] + selftest)
        } ?? Self.run(binary, Array(selftest.dropFirst()))
        let label = ranks.map { "mpirun -np \($0) \(extra)" } ?? "without mpirun \(extra)"
        let lines = output.split(separator: "\n").map(String.init)
        let checks = lines.filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
        XCTAssertEqual(status, 0, "\(label) exit status\n\(output)", file: file, line: line)
        XCTAssertEqual(checks.count, SelfTest.checkCount, "\(label): number of checks\n\(output)", file: file, line: line)
        for check in checks where !check.hasPrefix("PASS") {
            XCTFail("\(label): \(check)", file: file, line: line)
        }
        let expected = "\(SelfTest.checkCount)/\(SelfTest.checkCount) checks passed on \(ranks ?? 1) rank(s)"
        XCTAssertTrue(output.contains(expected), "\(label): missing '\(expected)'\n\(output)", file: file, line: line)
    }

    func testWithoutMPIRun() throws { try assertSelftestPasses(ranks: nil) }
    func testOneRank() throws { try assertSelftestPasses(ranks: 1) }
    func testTwoRanks() throws { try assertSelftestPasses(ranks: 2) }
    func testThreeRanks() throws { try assertSelftestPasses(ranks: 3) }
    /// A 2 x 2 grid: the only case here with more than one process row.
    func testFourRanks() throws { try assertSelftestPasses(ranks: 4) }
    /// One block holds the whole matrix (n <= nb): pdsyevd's workspace query and eigenvalue
    /// broadcast need the special handling in `DistributedMatrix.symmetricEigen`.
    func testSingleBlockOnThreeRanks() throws {
        try assertSelftestPasses(ranks: 3, extra: ["--n", "10", "--block", "64"])
    }

    func testInfoReportsLayout() throws {
        let binary = try XCTUnwrap(Self.binary)
        let (status, output) = try Self.run(Self.mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "2",
                                                          binary.path, "info", "--threads", "1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("ranks:             2 on 1 node(s)"), output)
        XCTAssertTrue(output.contains("ranks per node:    2"), output)
        XCTAssertTrue(output.contains("threads per rank:  1 on rank 0, chosen by --threads"), output)
        XCTAssertTrue(output.contains("ScaLAPACK grid:    1 x 2"), output)
        XCTAssertTrue(output.contains("Open MPI"), output)
        XCTAssertTrue(output.contains("OpenBLAS"), output)
        // One row per rank, in rank order.
        let rows = output.split(separator: "\n").filter { $0.first?.isNumber == true }
        XCTAssertEqual(rows.map { $0.split(separator: "\t").first.map(String.init) }, ["0", "1"], output)
    }
}
