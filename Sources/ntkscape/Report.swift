import ArgumentParser
import Core
import Foundation
import Report

/// `ntkscape report RUN_DIR`: figures (`figures/<name>.svg`) and `report.html` of a run, finished
/// or not (an unfinished run is reported from its task records).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write figures/<name>.svg and report.html of a run directory (finished or not).",
        discussion: """
            One SVG per paper panel the run's tables can feed (docs/report.md) and one self-contained \
            HTML page (inline SVG and CSS, no scripts, no network) with the paper's claim and this run's \
            numbers next to every figure, the experiment file, provenance and links to the tables. An \
            unfinished run is reported from the task records that exist ("k of n tasks done"). \
            `ntkscape run` writes the report at its end.
            """)

    @Argument(help: "A run directory written by ntkscape run.") var runDirectory: String

    func run() throws {
        try during("reading the run \(runDirectory)", fix: "give the directory `ntkscape run` printed") {
            try RunPaths.checkRunDirectory(runDirectory, command: "report")
        }
        let paths = RunPaths(runDirectory: runDirectory)
        let result = try during("writing the report of \(runDirectory)",
                                fix: "check that \(runDirectory) is a run directory and is writable, then rerun ntkscape report") {
            try ReportWriter.write(paths)
        }
        if let p = result.progress, !p.isComplete { print("unfinished run: \(p.description)") }
        print("\(result.figures.count) figures: \(paths.figuresDirectory)")
        print("report: \(result.report)")
    }
}
