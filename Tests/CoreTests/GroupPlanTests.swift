import Core
import Foundation
import XCTest

/// The static plan with data-parallel training groups (`TaskPlan(groups: true)`, `ExperimentPlanner`):
/// its no-deadlock invariants, a hand-worked schedule, the ResNet-20 CIFAR-10 preset's makespan
/// over rank counts (from the published data sizes, no data needed), and the NTK groups sized by memory.
final class GroupPlanTests: XCTestCase {
    /// The package root (this file is Tests/CoreTests/GroupPlanTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Every invariant the runner's deadlock freedom rests on, checked by brute force over the slots.
    func assertInvariants(_ plan: TaskPlan, _ tasks: [PlannedTask], file: StaticString = #filePath, line: UInt = #line) {
        let slots = plan.slots
        XCTAssertEqual(Set(slots.keys), Set(tasks.map(\.id)), "every task planned once", file: file, line: line)
        let eps = 1e-9 * max(1, plan.makespan)
        for t in tasks {
            guard let s = slots[t.id] else { continue }
            // Dependencies reach their fraction before the dependent starts.
            for n in t.needs {
                let d = slots[n.task]!
                XCTAssertLessThanOrEqual(d.start + n.fraction * (d.end - d.start), s.start + eps, "\(t.id) starts before \(n.task)",
                                         file: file, line: line)
            }
            // Groups: an aligned block of a power-of-two size the task allows, with its duration there.
            let g = s.group.count
            XCTAssertEqual(g & (g - 1), 0, "\(t.id): group of \(g)", file: file, line: line)
            XCTAssertEqual(s.group.lowerBound % g, 0, "\(t.id): group \(s.group) not aligned", file: file, line: line)
            let duration = g == 1 ? t.cost : t.groups.first { $0.ranks == g }?.duration
            XCTAssertNotNil(duration, "\(t.id) on \(g) ranks, which it does not allow", file: file, line: line)
            if let duration { XCTAssertEqual(s.end - s.start, duration, accuracy: eps, file: file, line: line) }
            // The same slot (start, end, members) in every member's list, and in no other.
            for r in 0..<plan.ranks.count {
                let mine = plan.ranks[r].filter { $0.task == t.id }
                if s.group.contains(r) {
                    XCTAssertEqual(mine.count, 1, "\(t.id) on member \(r)", file: file, line: line)
                    XCTAssertEqual(mine.first.map { [$0.start, $0.end] }, [s.start, s.end], file: file, line: line)
                    XCTAssertEqual(mine.first?.group, s.group, file: file, line: line)
                } else {
                    XCTAssertTrue(mine.isEmpty, "\(t.id) on rank \(r), outside its group \(s.group)", file: file, line: line)
                }
            }
        }
        // Each rank's list in simulated-start order, without overlaps.
        for (r, list) in plan.ranks.enumerated() {
            for (a, b) in zip(list, list.dropFirst()) {
                XCTAssertLessThanOrEqual(a.end, b.start + eps, "rank \(r): \(a.task) overlaps \(b.task)", file: file, line: line)
            }
        }
    }

    /// Worked by hand on 4 ranks: the parent (8 units; 4.5 on 2 ranks, 2.5 on 4) takes all 4 ranks
    /// (ends first); children a and b are ready at 1.25 (half of the parent); a (id order) takes the
    /// block [0, 2) (2.5 - 5.0, before 6.5 on one rank; block [2, 4) ties and is higher); b runs on
    /// one rank only, the first free: rank 2, 2.5 - 6.5. Without groups: parent 0 - 8 on rank 0,
    /// children 4 - 8 on ranks 1 and 2: makespan 8.
    func testHandWorkedExample() {
        let tasks = [PlannedTask(id: "parent", cost: 8, groups: [(2, 4.5), (4, 2.5)]),
                     PlannedTask(id: "a", cost: 4, needs: [("parent", 0.5)], groups: [(2, 2.5)]),
                     PlannedTask(id: "b", cost: 4, needs: [("parent", 0.5)])]
        let plan = TaskPlan(tasks: tasks, ranks: 4, groups: true)
        assertInvariants(plan, tasks)
        XCTAssertEqual(plan.makespan, 6.5)
        let slots = plan.slots
        XCTAssertEqual(slots["parent"], TaskPlan.Slot(task: "parent", rank: 0, start: 0, end: 2.5, group: 0..<4))
        XCTAssertEqual(slots["a"], TaskPlan.Slot(task: "a", rank: 0, start: 2.5, end: 5, group: 0..<2))
        XCTAssertEqual(slots["b"], TaskPlan.Slot(task: "b", rank: 2, start: 2.5, end: 6.5))
        XCTAssertEqual(plan.ranks.map { $0.map(\.task) }, [["parent", "a"], ["parent", "a"], ["parent", "b"], ["parent"]])
        XCTAssertEqual(plan.groups, [0..<2, 0..<4])
        XCTAssertEqual(plan.criticalPath(tasks: tasks).map(\.task), ["parent", "b"])
        let single = TaskPlan(tasks: tasks, ranks: 4)
        assertInvariants(single, tasks)
        XCTAssertEqual(single.makespan, 8)
        XCTAssertEqual(single.slots["b"]?.start, 4)
        XCTAssertTrue(single.groups.isEmpty)
    }

    /// Random task graphs (a fixed generator): both plans keep every invariant, the grouped plan is
    /// the same when computed twice, and never ends after the one-rank plan.
    func testInvariantsOnRandomGraphs() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        for trial in 0..<40 {
            var tasks: [PlannedTask] = []
            for i in 0..<(5 + trial % 20) {
                let cost = 1 + 20 * next()
                var needs: [(task: String, fraction: Double)] = []
                if i > 0 && next() < 0.7 { needs.append((tasks[Int(next() * Double(i))].id, next() < 0.5 ? 1 : next())) }
                // Training-like tasks: near-ideal speed-up plus a per-group overhead.
                let groups = next() < 0.5 ? [2, 4, 8].map { (ranks: $0, duration: cost / Double($0) + 0.1 * Double($0)) } : []
                tasks.append(PlannedTask(id: "t\(i)", cost: cost, needs: needs, groups: groups))
            }
            for ranks in [1, 2, 3, 5, 8, 16] {
                let grouped = TaskPlan(tasks: tasks, ranks: ranks, groups: true), single = TaskPlan(tasks: tasks, ranks: ranks)
                assertInvariants(grouped, tasks)
                assertInvariants(single, tasks)
                XCTAssertEqual(grouped.ranks, TaskPlan(tasks: tasks, ranks: ranks, groups: true).ranks, "not a pure function")
                XCTAssertTrue(grouped.slots.values.allSatisfy { $0.group.upperBound <= ranks })
                if ranks == 1 { XCTAssertEqual(grouped.ranks, single.ranks) }
            }
        }
    }

    /// The paper's ResNet-20 CIFAR-10 preset (160 epochs, 13 spawn times, Hessian) from CIFAR-10's
    /// published sizes: with groups the makespan falls from 16 to 64 to 256 ranks, groups beat one
    /// rank per network there, and the plan keeps its invariants; no CIFAR files are read.
    func testResNet20PresetMakespanFallsWithRanks() throws {
        let config = try ExperimentConfig.load(path: Self.root.appendingPathComponent("configs/resnet20-cifar10.yaml").path)
        let sizes = try XCTUnwrap(PlanSizes.nominal(config))
        XCTAssertEqual(sizes.trainExamples, 50_000)
        XCTAssertEqual(sizes.testExamples, 10_000)
        let planner = ExperimentPlanner(config: config, sizes: sizes)
        let T = 160.0, n = 50_000.0
        var makespans: [Int: Double] = [:]
        for ranks in [16, 64, 256] {
            let tasks = planner.tasks(ranks: ranks).map(\.planned)
            let plan = planner.plan(ranks: ranks)
            assertInvariants(plan, tasks)
            let grouped = planner.makespan(ranks: ranks), single = planner.makespan(ranks: ranks, groups: false)
            XCTAssertLessThan(grouped, single, "\(ranks) ranks: groups do not help")
            makespans[ranks] = grouped
            // Lower bounds, independent of the scheduler: each task's least rank-time over the ranks,
            // and the parent's training on the largest group (8 = recipe.shards) alone.
            let work = tasks.reduce(0.0) { sum, t in sum + min(t.cost, t.groups.map { Double($0.ranks) * $0.duration }.min() ?? t.cost) }
            XCTAssertGreaterThanOrEqual(plan.makespan, T * n / 8)
            XCTAssertGreaterThanOrEqual(plan.makespan * Double(ranks), work * (1 - 1e-9))
        }
        // One rank per network: nothing past one full training run of the parent (T n) can be gained.
        XCTAssertGreaterThanOrEqual(planner.makespan(ranks: 256, groups: false), T * n)
        XCTAssertLessThan(makespans[64]!, 0.8 * makespans[16]!, "16 -> 64 ranks")
        XCTAssertLessThan(makespans[256]!, 0.8 * makespans[64]!, "64 -> 256 ranks")
        // The parent, first ready, gets the largest group on every rank count of the sweep.
        XCTAssertEqual(planner.plan(ranks: 64).slots["r0-parent"]?.group.count, 8)
        // plan.group_ranks 1 is the one-rank plan.
        var off = config
        off.plan.groupRanks = 1
        let offPlanner = ExperimentPlanner(config: off, sizes: sizes)
        XCTAssertEqual(offPlanner.plan(ranks: 64).ranks, planner.plan(ranks: 64, groups: false).ranks)
    }

    /// The communication model's closed form: no cost on one rank; on g ranks (g-1)/g S P 4 bytes
    /// over the bandwidth plus ceil(log2 g) latencies for the allgather and 2 per BatchNorm layer.
    func testNetworkModelClosedForm() {
        var section = PlanSection()
        section.bandwidthGbS = 2
        section.latencyUs = 10
        let model = NetworkModel(section)
        XCTAssertEqual(model.secondsPerStep(ranks: 1, parameters: 1000, batchNormLayers: 5, shards: 8), 0)
        XCTAssertEqual(model.secondsPerStep(ranks: 4, parameters: 1000, batchNormLayers: 5, shards: 8),
                       0.75 * 32_000 / 2e9 + 2 * 10e-6 * 11, accuracy: 1e-15)
        XCTAssertEqual(model.secondsPerStep(ranks: 5, parameters: 1000, batchNormLayers: 0, shards: 8),
                       0.8 * 32_000 / 2e9 + 3 * 10e-6, accuracy: 1e-15)
    }

    // MARK: NTK memory

    /// A unit keeping k Grams needs k Grams' bytes (plus the construction workspace), and the plan
    /// sizes the NTK groups so every rank fits `ntk.memory_gb`: a budget between the 1-rank and the
    /// 2-rank need gives groups of at least 2 ranks, which the set-up check accepts.
    func testNTKGroupsAreSizedByMemory() throws {
        let times = (0..<12).map { String($0) }.joined(separator: ", ")
        var config = try ExperimentConfig.parse(yaml: """
            dataset: {kind: synthetic}
            model: simplecnn
            recipe: {epochs: 12}
            spawn_times: [0]
            probe_size: 100
            ntk: {times: [\(times)], velocity_dt: 0, children: false}
            """)
        let sizes = PlanSizes(trainExamples: 1000, testExamples: 200, probeExamples: 100, barrierTrainExamples: 200, classes: 10,
                              input: Shape(3, 8, 8), smallestClass: 100)
        config.ntk.memoryGb = 64
        let planner = ExperimentPlanner(config: config, sizes: sizes)
        func required(_ g: Int) throws -> Int {
            try XCTUnwrap(planner.memoryEstimate(groupRanks: g).phases.first { $0.name == "ntk-timeline" }?.requiredBytes)
        }
        // Closed form: 12 Grams of 1000 x 1000 doubles (11 kept, 1 under construction in the minimum)
        // and 12 traced 100 x 100 copies, on one rank; 500-row blocks: half of each on 2 ranks.
        let layout = GramLayout(examples: 100, classes: 10, blockSize: 500, processes: 1, rank: 0)
        let minimum = GramPlan.minimumBytes(layout: layout, parameters: planner.parameters)
        XCTAssertEqual(try required(1), 11 * 8_000_000 + 12 * 80_000 + minimum)
        XCTAssertEqual(try required(2), 11 * 4_000_000 + 12 * 40_000 + minimum)
        XCTAssertGreaterThanOrEqual(try required(1) - minimum + 3 * 8_000_000, 12 * 8_000_000, "k Grams need k Grams' bytes")
        config.ntk.memoryGb = Double(try required(1) + required(2)) / 2 / 1_073_741_824
        let tight = ExperimentPlanner(config: config, sizes: sizes)
        XCTAssertThrowsError(try tight.memoryEstimate(groupRanks: 1).check())
        for ranks in [2, 4, 8] {
            let groupRanks = tight.kernelGroupRanks(ranks: ranks)
            XCTAssertGreaterThanOrEqual(groupRanks, 2, "\(ranks) ranks")
            XCTAssertNoThrow(try tight.memoryEstimate(groupRanks: groupRanks).check(), "\(ranks) ranks")
        }
        // ntk.group_size, when set, is the user's choice.
        config.ntk.groupSize = 1
        XCTAssertEqual(ExperimentPlanner(config: config, sizes: sizes).kernelGroups(ranks: 4), 4)
    }
}
