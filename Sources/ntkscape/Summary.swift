import ArgumentParser
import Core
import Foundation
import Report

/// `ntkscape summary RUN_DIR`: the key table of a run; an unfinished run is summarised from the
/// task records that exist.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print spawn time vs barrier and distances of a run (an unfinished one from its finished tasks).")
    @Argument(help: "A run directory written by ntkscape run.") var runDirectory: String

    func run() throws {
        let data = try during("reading the run \(runDirectory)", fix: "give the directory `ntkscape run` printed") {
            try RunPaths.checkRunDirectory(runDirectory, command: "summary")
            return try ReportData.load(RunPaths(runDirectory: runDirectory))
        }
        if let p = data.progress, !p.isComplete {
            print("unfinished run: \(p.description); the rows below come from the finished tasks\n")
        }
        let tables = data.tables
        print(tables.summary())
        let kernel = tables.kernelSummary()
        if !kernel.isEmpty { print("\n" + kernel) }
        print("\nparent timeline (epoch: train err / test err)")
        for row in tables.parentTimeline {
            print(String(format: "  r%d  %7.3f: %.4f / %.4f", row.replicate, row.epoch, row.trainError, row.testError))
        }
    }
}
