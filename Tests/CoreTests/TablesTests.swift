import Core
import Foundation
import XCTest

final class TablesTests: XCTestCase {
    /// Records from two tasks, in scrambled order, become one sorted table whose CSV is written out
    /// here by hand (header from the field names in snake_case, Swift's shortest round-trip numbers).
    func testTimelineRecordsBecomeSortedCSV() throws {
        let json = """
            [{"id": "r0-t1", "timeline": [{"replicate": 0, "epoch": 0.5, "trainError": 0.25, "trainLoss": 0.75,
                                           "testError": 0.3, "testLoss": 0.8, "batchNorm": "none"}],
              "pairs": [], "curves": [], "timelinePairs": [], "seconds": 1},
             {"id": "r0-t0", "timeline": [{"replicate": 0, "epoch": 0, "trainError": 0.9, "trainLoss": 2.302585092994046,
                                           "testError": 0.875, "testLoss": 2.3, "batchNorm": "none"}],
              "pairs": [], "curves": [], "timelinePairs": [], "seconds": 2}]
            """
        let records = try JSONDecoder().decode([TaskRecord].self, from: Data(json.utf8))
        let tables = ExperimentTables(records: records)
        XCTAssertEqual(try CSV.render(tables.parentTimeline), """
            replicate,epoch,train_error,train_loss,test_error,test_loss,batch_norm
            0,0.0,0.9,2.302585092994046,0.875,2.3,none
            0,0.5,0.25,0.75,0.3,0.8,none

            """)
        // Same records in another order: the same bytes (tables do not depend on gather order).
        XCTAssertEqual(try CSV.render(ExperimentTables(records: records.reversed()).parentTimeline),
                       try CSV.render(tables.parentTimeline))
    }

    func testCellsQuoteAndMarkMissingValues() {
        XCTAssertEqual(CSV.cell(nil), "")
        XCTAssertEqual(CSV.cell("recompute(batches=10,batchSize=128,seed=0)"), "\"recompute(batches=10,batchSize=128,seed=0)\"")
        XCTAssertEqual(CSV.cell(Double.nan), "nan")
        XCTAssertEqual(CSV.cell(0.1), "0.1")
    }

    /// A table without rows is written as its header alone (pandas reads it as an empty frame with
    /// the columns); the header is the one a non-empty table gets.
    func testEmptyTablesKeepTheirHeader() throws {
        XCTAssertEqual(try CSV.render([ParentTimelineRow]()),
                       "replicate,epoch,train_error,train_loss,test_error,test_loss,batch_norm\n")
        let header = try CSV.render([ChildPairRow]())
        XCTAssertTrue(header.hasPrefix("replicate,spawn_epoch,child_a,child_b,test_error_a,"), header)
        XCTAssertTrue(header.hasSuffix(",kernel_distance\n"), header)
        XCTAssertEqual(header.filter { $0 == "\n" }.count, 1)

        let dir = NSTemporaryDirectory() + "tables-empty-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = RunPaths(runDirectory: dir)
        try FileManager.default.createDirectory(atPath: paths.tablesDirectory, withIntermediateDirectories: true)
        try ExperimentTables(records: []).write(to: paths)
        let hessian = try String(contentsOfFile: paths.table(RunPaths.Table.hessian, ext: "csv"), encoding: .utf8)
        XCTAssertTrue(hessian.hasPrefix("replicate,epoch,"), hessian)
        XCTAssertEqual(hessian.filter { $0 == "\n" }.count, 1)
        // Every table of an empty run has a header line.
        for name in try FileManager.default.contentsOfDirectory(atPath: paths.tablesDirectory) where name.hasSuffix(".csv") {
            let text = try String(contentsOfFile: paths.tablesDirectory + "/" + name, encoding: .utf8)
            XCTAssertFalse(text.isEmpty, name)
            XCTAssertEqual(text.split(separator: "\n").count, 1, name)
        }
    }

    /// The summary shows a spread only where there is one: one pair per spawn time gives its
    /// barrier and distances without `±0.0000`; the two children's test errors keep theirs; two
    /// pairs show mean ± sd.
    func testSummaryShowsNoSpreadForOnePair() throws {
        func pair(_ a: Int, _ b: Int, barrier: Double) -> String {
            """
            {"replicate": 0, "spawnEpoch": 0.5, "childA": \(a), "childB": \(b), "testErrorA": 0.2, "testErrorB": 0.3,
             "barrierTestErrorMaxMinusMean": \(barrier), "barrierTestErrorMaxMinusLine": 0, "barrierTrainErrorMaxMinusMean": 0,
             "barrierTrainErrorMaxMinusLine": 0, "barrierTestLossMaxMinusMean": 0.125, "barrierTestLossMaxMinusLine": 0,
             "barrierBatchNorm": "none", "weightL2": 1, "weightL2Normalized": 0.5, "functionDisagreement": 0.1,
             "reluPatternDistance": 0.25, "logitGradientAlignment": 0.75, "batchNorm": "none"}
            """
        }
        func summary(_ pairs: [String]) throws -> String {
            let json = "[{\"id\": \"r0-s0\", \"pairs\": [\(pairs.joined(separator: ","))], \"seconds\": 1}]"
            return ExperimentTables(records: try JSONDecoder().decode([TaskRecord].self, from: Data(json.utf8))).summary()
        }
        let one = try summary([pair(0, 1, barrier: 0.0625)])
        XCTAssertFalse(one.contains("±0.0000"), one)
        let row = one.split(separator: "\n")[1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        XCTAssertEqual(Array(row.prefix(5)), ["0.5", "1", "0.2500±0.0707", "0.0625", "0.1250"])
        let two = try summary([pair(0, 1, barrier: 0.0625), pair(0, 2, barrier: 0.125)])
        let row2 = two.split(separator: "\n")[1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        XCTAssertEqual(Array(row2.prefix(5)), ["0.5", "2", "0.2500±0.0577", "0.0938±0.0442", "0.1250±0.0000"])
    }
}
