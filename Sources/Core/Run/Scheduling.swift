import Foundation

/// The static schedule every rank computes alike: the pipelined tasks over the ranks (`TaskPlan`,
/// from the task graph and the cost model), then the collective tasks over groups of ranks.
extension ExperimentRunner {
    /// The pipelined tasks with their costs, in plan order.
    public func tasks() -> [(task: ExperimentTask, planned: PlannedTask)] {
        graph.pipelined.map { ($0.task, PlannedTask(id: $0.task.id, cost: cost(of: $0.task), needs: $0.needs)) }
    }

    /// The collective NTK and Hessian tasks with their costs, run after the pipelined ones by groups
    /// of `ntk.group_size` ranks.
    public func kernelTasks() -> [(task: ExperimentTask, planned: PlannedTask)] {
        graph.collective.map { ($0, PlannedTask(id: $0.id, cost: cost(of: $0))) }
    }

    public func plan() -> TaskPlan { TaskPlan(tasks: tasks().map(\.planned), ranks: comm.size) }

    /// Ranks per NTK group and the number of groups for `ranks` ranks: `ntk.group_size` (0 = all),
    /// groups of equal size, leftover ranks joining the groups round-robin.
    public func kernelGroups(ranks: Int) -> Int {
        let size = config.ntk.groupSize == 0 ? ranks : min(config.ntk.groupSize, ranks)
        return max(1, ranks / size)
    }

    /// Ranks of the NTK groups for `comm`'s size.
    var kernelGroupRanks: Int { comm.size / kernelGroups(ranks: comm.size) }

    /// The kernel tasks of each group: longest first onto the least-loaded group (ties: lower group).
    public func kernelAssignment(groups: Int) -> [[ExperimentTask]] {
        var load = [Double](repeating: 0, count: groups), out = [[ExperimentTask]](repeating: [], count: groups)
        let sorted = kernelTasks().sorted { ($1.planned.cost, $0.planned.id) < ($0.planned.cost, $1.planned.id) }
        for (task, planned) in sorted {
            let g = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            load[g] += planned.cost
            out[g].append(task)
        }
        return out
    }
}
