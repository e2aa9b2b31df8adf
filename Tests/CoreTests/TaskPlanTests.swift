import Core
import XCTest

final class TaskPlanTests: XCTestCase {
    /// Independent tasks of costs 4,3,3,2 on two ranks: LPT gives {4,2} and {3,3}, makespan 6.
    func testIndependentTasksBalance() {
        let plan = TaskPlan(tasks: [PlannedTask(id: "a", cost: 4), PlannedTask(id: "b", cost: 3),
                                    PlannedTask(id: "c", cost: 3), PlannedTask(id: "d", cost: 2)], ranks: 2)
        XCTAssertEqual(plan.makespan, 6)
        XCTAssertEqual(plan.ranks[0].map(\.task), ["a", "d"])
        XCTAssertEqual(plan.ranks[1].map(\.task), ["b", "c"])
        XCTAssertEqual(plan.busy, [6, 6])
    }

    /// A parent of cost 10 spawning children at 20% and 50%: the children start while it runs.
    func testPipeliningStartsChildrenBeforeTheParentEnds() {
        let tasks = [PlannedTask(id: "parent", cost: 10),
                     PlannedTask(id: "child-late", cost: 5, needs: [("parent", 0.5)]),
                     PlannedTask(id: "child-early", cost: 8, needs: [("parent", 0.2)]),
                     PlannedTask(id: "pair", cost: 1, needs: [("child-early", 1), ("child-late", 1)])]
        let plan = TaskPlan(tasks: tasks, ranks: 3)
        let slots = Dictionary(uniqueKeysWithValues: plan.ranks.flatMap { $0 }.map { ($0.task, $0) })
        XCTAssertEqual(slots["child-early"]!.start, 2)
        XCTAssertEqual(slots["child-late"]!.start, 5)
        XCTAssertEqual(slots["pair"]!.start, 10)    // max(2 + 8, 5 + 5) and rank 0 is free at 10
        XCTAssertEqual(plan.makespan, 11)
        // One rank: everything in dependency order.
        XCTAssertEqual(TaskPlan(tasks: tasks, ranks: 1).ranks[0].map(\.task), ["parent", "child-early", "child-late", "pair"])
        XCTAssertEqual(TaskPlan(tasks: tasks, ranks: 1).makespan, 24)
    }
}
