import Foundation

/// The tasks of an experiment and what each needs, derived from the configuration alone (no data):
/// the one source of the plan (`ExperimentRunner.tasks()`/`kernelTasks()` add costs to it) and of
/// the task count `report` and `summary` measure an unfinished run against.
public struct TaskGraph: Sendable {
    /// A pipelined task and the tasks it waits for: `(task, fraction)` is "`task` has done `fraction` of its work"
    /// (a child needs its parent up to the spawn time; `TaskPlan`).
    public struct Node: Sendable {
        public let task: ExperimentTask
        public let needs: [(task: String, fraction: Double)]
    }

    /// Pipelined tasks in plan order (training tasks may run on a data-parallel group, the others on
    /// one rank; `ExperimentPlanner`), per replicate: the parent, per spawn time its children and
    /// their pairs, the timeline, the timeline pairs, the linearised runs.
    public let pipelined: [Node]
    /// Tasks collective over a group of ranks (NTK, Hessian), run after the pipelined ones.
    public let collective: [ExperimentTask]

    public init(_ configuration: ExperimentConfig) {
        let c = configuration.resolved()
        let T = c.trainingRecipe.epochs, K = c.children, spawns = c.resolvedSpawnTimes
        var pipelined: [Node] = [], collective: [ExperimentTask] = []
        func add(_ task: ExperimentTask, _ needs: [(task: String, fraction: Double)] = []) {
            pipelined.append(Node(task: task, needs: needs))
        }
        for r in 0..<c.replicates {
            let parent = ExperimentTask.parent(replicate: r).id
            add(.parent(replicate: r))
            for (s, time) in spawns.enumerated() {
                for k in 0..<K { add(.child(replicate: r, spawn: s, child: k), [(parent, time / T)]) }
                let children = (0..<K).map { (ExperimentTask.child(replicate: r, spawn: s, child: $0).id, 1.0) }
                for a in 0..<K { for b in (a + 1)..<K {
                    add(.pair(replicate: r, spawn: s, a: a, b: b), [children[a], children[b]])
                } }
                if c.trajectories.enabled { add(.trajectories(replicate: r, spawn: s), children) }
                if let p = c.plane.spawnTimes.firstIndex(of: time) {
                    for k in 0..<c.plane.parts { add(.plane(replicate: r, plane: p, part: k), [(parent, time / T)] + children.prefix(2)) }
                }
            }
            for (t, time) in c.resolvedMeasurementTimes.enumerated() { add(.timeline(replicate: r, time: t), [(parent, time / T)]) }
            add(.timelinePairs(replicate: r), [(parent, 1)])
            if c.trajectories.enabled {
                // Every saved prediction: the parent's (timeline tasks) and every child's.
                let timeline = c.resolvedMeasurementTimes.indices.map { (ExperimentTask.timeline(replicate: r, time: $0).id, 1.0) }
                let children = spawns.indices.flatMap { s in (0..<K).map { (ExperimentTask.child(replicate: r, spawn: s, child: $0).id, 1.0) } }
                add(.embedding(replicate: r), timeline + children)
            }
            let lin = c.linearized
            for (i, time) in lin.times.enumerated() {
                let needs = [(task: parent, fraction: time / T)]
                var linearNeeds = needs
                if lin.searchesLearningRate {
                    let grid = ExperimentTask.linearizedGrid(replicate: r, time: i)
                    add(grid, needs)
                    linearNeeds = [(grid.id, 1)]
                }
                for k in 0..<lin.child.seeds {
                    add(.linearized(replicate: r, time: i, seed: k), linearNeeds)
                    if lin.secondOrder { add(.secondOrder(replicate: r, time: i, seed: k), linearNeeds) }
                    add(.nonlinearChild(replicate: r, time: i, seed: k), needs)
                }
            }
            if !c.parentGramTimes.isEmpty { collective.append(.kernelTimeline(replicate: r)) }
            if c.ntk.children { collective += spawns.indices.map { .kernelChildren(replicate: r, spawn: $0) } }
            collective += c.hessian.times.indices.map { .hessian(replicate: r, time: $0) }
            collective += c.kernelMachine.times.indices.map { .kernelMachine(replicate: r, time: $0) }
        }
        self.pipelined = pipelined
        self.collective = collective
    }

    /// Every task's id, pipelined then collective.
    public var ids: [String] { pipelined.map(\.task.id) + collective.map(\.id) }
}

extension ExperimentConfig {
    /// Times of the parent Grams of one replicate: the NTK times and the velocity end points.
    var parentGramTimes: [Double] { Set(resolvedNTKTimes + velocityPairs.map(\.to)).sorted() }
}
