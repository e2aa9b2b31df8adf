import Core
import Foundation
@testable import Report
import TestSupport
import XCTest

/// `ReportWriter` on run directories: a finished one (rendered in a headless browser when one is
/// installed) and an unfinished one reported from its task records.
final class ReportWriterTests: XCTestCase {
    private func temporaryRun(_ name: String) throws -> RunPaths {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-report-\(UUID().uuidString)/\(name)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        return RunPaths(runDirectory: dir.path)
    }

    static let tinyYAML = """
        name: tiny
        dataset: {kind: synthetic}
        model: simplecnn
        recipe: {optimizer: adam, learning_rate: 0.003, batch_size: 50, epochs: 2}
        spawn_times: [0, 1, 1.5]
        children: 2
        probe_size: 20
        """

    func testUnfinishedRunIsReportedFromItsTaskRecords() throws {
        let paths = try temporaryRun("tiny-partial")
        let config = try ExperimentConfig.parse(yaml: Self.tinyYAML)
        try AtomicFile.write(config.canonicalJSON(), to: paths.resolvedConfig)
        var parent = TaskRecord(id: "r0-parent")
        parent.trainingCurves = FigureTests.fullData().tables.trainingCurves
        var pair = TaskRecord(id: "r0-s0-pair0-1")
        pair.pairs = [FigureTests.pair(0, 0, 1, barrier: 0.3)]
        pair.seconds = 2.5
        for r in [parent, pair] { try AtomicFile.write(try JSONEncoder().encode(r), to: paths.taskDone(r.id)) }
        let planned = TaskGraph(config).ids
        XCTAssertTrue(planned.contains("r0-parent") && planned.contains("r0-s2-pair0-1") && planned.contains("r0-timeline-pairs"))

        let data = try ReportData.load(paths)
        XCTAssertEqual(data.progress?.done, 2)
        XCTAssertEqual(data.progress?.planned.count, planned.count)
        XCTAssertTrue(data.isPartial)
        XCTAssertEqual(data.tables.childPairs.count, 1)
        XCTAssertEqual(data.taskSeconds["r0-s0-pair0-1"], 2.5)

        let result = try ReportWriter.write(paths)
        let html = try String(contentsOfFile: result.report, encoding: .utf8)
        XCTAssertTrue(html.contains("Unfinished run: 2 of \(planned.count) tasks done"), html)
        XCTAssertTrue(result.figures.contains(paths.figure("fig2_barrier_vs_spawn")))
        XCTAssertTrue(result.figures.contains(paths.figure("training_curves")))
        let barrier = try String(contentsOfFile: paths.figure("fig2_barrier_vs_spawn"), encoding: .utf8)
        XCTAssertTrue(barrier.contains("pending"), "spawn times 1 and 1.5 are marked as still to come")
        _ = try ParsedXML(barrier)
    }

    func testFinishedRunRendersInAHeadlessBrowser() throws {
        let paths = try temporaryRun("tiny-finished")
        try FigureTests.fullData().tables.write(to: paths)
        try AtomicFile.write(Self.tinyYAML, to: paths.configCopy)
        let result = try ReportWriter.write(paths)
        XCTAssertEqual(result.figures.count, FigureSpec.all.count)
        for f in result.figures { _ = try ParsedXML(try String(contentsOfFile: f, encoding: .utf8)) }

        // `$NTKSCAPE_BROWSER`, else Chromium or Chrome from `$PATH`.
        let named = ProcessInfo.processInfo.environment["NTKSCAPE_BROWSER"].map { URL(fileURLWithPath: $0) }
        guard let browser = (named.map { [$0] } ?? ["chromium", "chromium-browser", "google-chrome"].compactMap(executableOnPath))
            .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) })?.path else {
            try referenceMissing("no headless browser on PATH (Debian's chromium, installed by scripts/install-deps.sh; "
                                 + "or set NTKSCAPE_BROWSER)")
        }
        let url = URL(fileURLWithPath: result.report).absoluteString
        // The whole page parses: the last section is in the DOM.
        let (domStatus, dom) = try Self.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url])
        XCTAssertEqual(domStatus, 0, dom.stderr)
        XCTAssertTrue(dom.stdout.contains("id=\"tables\""), "page did not load completely")
        XCTAssertEqual(dom.stdout.components(separatedBy: "<svg ").count - 1, FigureSpec.all.count)
        XCTAssertFalse(dom.stderr.contains("ERR_"), dom.stderr)
        // A screenshot of the expected size that is not blank.
        let png = URL(fileURLWithPath: paths.runDirectory).appendingPathComponent("screenshot.png")
        let (status, output) = try Self.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                      "--screenshot=\(png.path)", "--window-size=1200,2000", url])
        XCTAssertEqual(status, 0, output.stderr)
        let image = try PNGImage(data: try Data(contentsOf: png))
        XCTAssertEqual(image.width, 1200)
        XCTAssertEqual(image.height, 2000)
        XCTAssertGreaterThan(image.variance, 100, "the screenshot is blank")
        let dark = image.luminance.filter { $0 < 128 }.count
        XCTAssertGreaterThan(dark, 5000, "hardly any text or lines drawn")
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, (stdout: String, stderr: String)) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        // Files, not pipes: the browser's logging cannot fill a pipe and block it.
        let outURL = home.appendingPathComponent("stdout"), errURL = home.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.environment = ProcessInfo.processInfo.environment.merging(["HOME": home.path]) { $1 }
        try process.run()
        process.waitUntilExit()
        try? out.close()
        try? err.close()
        let stdout = try Data(contentsOf: outURL), stderr = try Data(contentsOf: errURL)
        return (process.terminationStatus, (String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)))
    }
}
