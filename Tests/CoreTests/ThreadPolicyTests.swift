import Core
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

    func testSetAppliesToOpenBLAS() {
        let before = BLASThreads.current
        BLASThreads.set(1)
        XCTAssertEqual(BLASThreads.current, 1)
        BLASThreads.set(max(1, before))
        XCTAssertEqual(BLASThreads.current, max(1, before))
        XCTAssertTrue(BLASThreads.config.hasPrefix("OpenBLAS"), BLASThreads.config)
    }
}
