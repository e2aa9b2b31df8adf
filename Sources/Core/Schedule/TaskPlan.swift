/// A unit of work of an experiment, for planning: an estimated cost and what it waits for.
public struct PlannedTask: Sendable, Equatable {
    /// Unique, stable identifier (also names the task's result record).
    public var id: String
    /// Estimated cost in arbitrary but common units (e.g. training-example passes).
    public var cost: Double
    /// Outputs of other tasks this one needs: `(task, fraction)` means "task `task` has done
    /// `fraction` of its work" — a child spawned at epoch `s` of a `T`-epoch parent needs
    /// `(parent, s / T)`, which is how children start while the parent still trains (pipelining).
    public var needs: [(task: String, fraction: Double)]

    public init(id: String, cost: Double, needs: [(task: String, fraction: Double)] = []) {
        self.id = id; self.cost = cost; self.needs = needs
    }
    public static func == (a: PlannedTask, b: PlannedTask) -> Bool {
        a.id == b.id && a.cost == b.cost && a.needs.map(\.task) == b.needs.map(\.task)
            && a.needs.map(\.fraction) == b.needs.map(\.fraction)
    }
}

/// A static assignment of tasks to ranks, identical on every rank (computed, not communicated).
///
/// List scheduling in simulated time: repeatedly take the task whose inputs are ready earliest
/// (ties: larger cost first, then id), and give it to the rank on which it can start earliest
/// (ties: lower rank). Each rank runs its list in order and waits for inputs produced elsewhere.
/// Because every dependency finishes (in simulated time) before its dependent starts and each rank's
/// list is sorted by simulated start, the real execution cannot deadlock whatever the actual speeds.
public struct TaskPlan: Sendable {
    public struct Slot: Sendable, Equatable {
        public var task: String
        public var rank: Int
        public var start: Double
        public var end: Double
    }
    /// `ranks[r]` = the tasks rank `r` runs, in order.
    public private(set) var ranks: [[Slot]]
    public var makespan: Double { ranks.flatMap { $0 }.map(\.end).max() ?? 0 }
    public var busy: [Double] { ranks.map { $0.reduce(0) { $0 + $1.end - $1.start } } }
    public var totalCost: Double { busy.reduce(0, +) }

    public init(tasks: [PlannedTask], ranks count: Int) {
        precondition(count >= 1, "TaskPlan: no ranks")
        var ranks = [[Slot]](repeating: [], count: count)
        var free = [Double](repeating: 0, count: count)
        var slot: [String: Slot] = [:]
        var pending = tasks
        let ids = Set(tasks.map(\.id))
        precondition(ids.count == tasks.count, "TaskPlan: duplicate task ids")
        for t in tasks { for n in t.needs { precondition(ids.contains(n.task), "TaskPlan: \(t.id) needs unknown \(n.task)") } }
        while !pending.isEmpty {
            // Among tasks whose inputs are all planned, the earliest-ready (then costliest, then id).
            var best: (index: Int, ready: Double)? = nil
            for (i, t) in pending.enumerated() {
                var ready = 0.0, planned = true
                for n in t.needs {
                    guard let s = slot[n.task] else { planned = false; break }
                    ready = max(ready, s.start + n.fraction * (s.end - s.start))
                }
                guard planned else { continue }
                if let b = best {
                    let o = pending[b.index]
                    if (ready, -t.cost, t.id) < (b.ready, -o.cost, o.id) { best = (i, ready) }
                } else {
                    best = (i, ready)
                }
            }
            guard let chosen = best else { preconditionFailure("TaskPlan: dependency cycle among \(pending.map(\.id))") }
            let t = pending.remove(at: chosen.index)
            let r = (0..<count).min { (max(free[$0], chosen.ready), $0) < (max(free[$1], chosen.ready), $1) }!
            let start = max(free[r], chosen.ready)
            let s = Slot(task: t.id, rank: r, start: start, end: start + t.cost)
            slot[t.id] = s
            free[r] = s.end
            ranks[r].append(s)
        }
        self.ranks = ranks
    }
}
