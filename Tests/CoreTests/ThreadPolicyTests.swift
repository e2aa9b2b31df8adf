import CLinAlg
import Core
import Foundation
import XCTest

final class ThreadPolicyTests: XCTestCase {
    func testRulesInOrder() {
        let explicit = ThreadDecision.decide(option: 3, environment: "5", coresOnNode: 8, ranksOnNode: 2,
                                             allowedCores: nil)
        XCTAssertEqual(explicit.threads, 3)
        XCTAssertEqual(explicit.rule, .option)

        let env = ThreadDecision.decide(option: nil, environment: " 5 ", coresOnNode: 8, ranksOnNode: 2,
                                        allowedCores: nil)
        XCTAssertEqual(env.threads, 5)
        XCTAssertEqual(env.rule, .environment)

        let split = ThreadDecision.decide(option: nil, environment: nil, coresOnNode: 8, ranksOnNode: 3,
                                          allowedCores: nil)
        XCTAssertEqual(split.threads, 2)   // floor(8 / 3)
        XCTAssertEqual(split.rule, .coresPerRank)
    }

    func testFallbacksAndFloor() {
        // More ranks than cores still runs one thread.
        XCTAssertEqual(ThreadDecision.decide(option: nil, environment: nil, coresOnNode: 2, ranksOnNode: 3,
                                             allowedCores: nil).threads, 1)
        // A malformed environment value is ignored, and said so.
        let bad = ThreadDecision.decide(option: nil, environment: "abc", coresOnNode: 4, ranksOnNode: 1,
                                        allowedCores: nil)
        XCTAssertEqual(bad.threads, 4)
        XCTAssertEqual(bad.rule, .coresPerRank)
        XCTAssertTrue(bad.detail.contains("ignored OPENBLAS_NUM_THREADS"))
        XCTAssertEqual(ThreadDecision.decide(option: nil, environment: "0", coresOnNode: 4, ranksOnNode: 4,
                                             allowedCores: nil).threads, 1)
        // A rank bound to one core gets one thread.
        XCTAssertEqual(ThreadDecision.decide(option: nil, environment: nil, coresOnNode: 8, ranksOnNode: 1,
                                             allowedCores: 1).threads, 1)
        // A zero option falls through to the next rule.
        XCTAssertEqual(ThreadDecision.decide(option: 0, environment: "2", coresOnNode: 8, ranksOnNode: 1,
                                             allowedCores: nil).rule, .environment)
    }

    func testCPUListCount() {
        XCTAssertEqual(BLASThreads.cpuListCount("0-3,8,10-11"), 7)
        XCTAssertEqual(BLASThreads.cpuListCount("\t0\n"), 1)
        XCTAssertEqual(BLASThreads.cpuListCount("0-1"), 2)
        XCTAssertNil(BLASThreads.cpuListCount("3-1"))
        XCTAssertNil(BLASThreads.cpuListCount("x"))
        XCTAssertNil(BLASThreads.cpuListCount(""))
    }

    /// `BLASThreads.with` gives the scope its compute threads and OpenBLAS one thread (read back
    /// from the library itself), hands the count on to the workers a split starts, and restores both
    /// afterwards, even when OpenBLAS was set to something else before.
    func testScopedThreadsApplyToOpenBLASAndAreRestored() {
        let workersBefore = Workers.count, openBLASBefore = Int(openblas_get_num_threads())
        openblas_set_num_threads(2)
        defer { openblas_set_num_threads(Int32(openBLASBefore)) }
        XCTAssertEqual(Int(openblas_get_num_threads()), 2)
        let lock = NSLock()
        var seen: Set<Int> = []
        BLASThreads.with(threads: 3) {
            XCTAssertEqual(BLASThreads.current, 3)
            XCTAssertEqual(Int(openblas_get_num_threads()), 1)
            XCTAssertEqual(Workers.serially { Workers.count }, 1)
            XCTAssertEqual(Workers.with(splitsGEMM: false) { Workers.splitsGEMM }, false)
            XCTAssertTrue(Workers.splitsGEMM)
            Workers.split(1 << 16) { _ in
                let count = Workers.count
                lock.lock(); seen.insert(count); lock.unlock()
            }
        }
        XCTAssertEqual(seen, [3], "workers of a split see the scope's count")
        XCTAssertEqual(Workers.count, workersBefore)
        XCTAssertEqual(Int(openblas_get_num_threads()), 2)
        XCTAssertTrue(BLASThreads.config.hasPrefix("OpenBLAS"), BLASThreads.config)
    }
}
