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
}
