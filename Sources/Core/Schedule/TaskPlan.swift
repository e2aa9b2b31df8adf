/// A unit of work of an experiment, for planning: an estimated cost and what it waits for.
public struct PlannedTask: Sendable, Equatable {
    /// Unique, stable identifier (also names the task's result record).
    public var id: String
    /// Estimated cost in arbitrary but common units (e.g. training-example passes): its time on one rank.
    public var cost: Double
    /// Outputs of other tasks this one needs: `(task, fraction)` means "task `task` has done
    /// `fraction` of its work" — a child spawned at epoch `s` of a `T`-epoch parent needs
    /// `(parent, s / T)`, which is how children start while the parent still trains (pipelining).
    public var needs: [(task: String, fraction: Double)]
    /// The task's time on a group of more than one rank, for each group size it may use (powers of
    /// two, increasing): a network trained by a data-parallel group (`Trainer.group`). Empty: the
    /// task runs on one rank only.
    public var groups: [(ranks: Int, duration: Double)]

    public init(id: String, cost: Double, needs: [(task: String, fraction: Double)] = [],
                groups: [(ranks: Int, duration: Double)] = []) {
        precondition(groups.allSatisfy { $0.ranks > 1 && $0.ranks & ($0.ranks - 1) == 0 && $0.duration > 0 },
                     "PlannedTask \(id): group sizes must be powers of two above 1 with positive durations")
        self.id = id; self.cost = cost; self.needs = needs; self.groups = groups
    }
    public static func == (a: PlannedTask, b: PlannedTask) -> Bool {
        a.id == b.id && a.cost == b.cost && a.needs.map(\.task) == b.needs.map(\.task)
            && a.needs.map(\.fraction) == b.needs.map(\.fraction)
            && a.groups.map(\.ranks) == b.groups.map(\.ranks) && a.groups.map(\.duration) == b.groups.map(\.duration)
    }
}

/// A static assignment of tasks to ranks, identical on every rank (computed, not communicated).
///
/// List scheduling in simulated time: repeatedly take the task whose inputs are ready earliest
/// (ties: larger cost first, then id), and give it to the ranks on which it ends earliest. Without
/// groups that is the one rank on which it can start earliest (ties: lower rank). With groups a
/// task that may train on a group (`PlannedTask.groups`) may also take an aligned block of `g`
/// ranks `[g i, g i + g)` (g a power of two, so few sub-communicators exist): it starts when the
/// block's last rank is free and takes its `g`-rank duration; ties prefer the smaller group (it
/// leaves ranks to the others), then the lower block. Tasks ready first — the parent and the early
/// children, the critical path — thus get the large groups while ranks are plentiful, and the later
/// tasks are packed onto what is free.
///
/// Each rank runs its list in order and waits for inputs produced elsewhere. Every dependency
/// finishes (in simulated time) before its dependent starts, each rank's list is sorted by
/// simulated start, and a group task has one simulated start on all its members, so the real
/// execution cannot deadlock whatever the actual speeds: the unfinished task of earliest simulated
/// start has its inputs done and every member past its earlier tasks.
public struct TaskPlan: Sendable {
    public struct Slot: Sendable, Equatable {
        public var task: String
        /// The rank whose list holds this slot.
        public var rank: Int
        public var start: Double
        public var end: Double
        /// The ranks that run the task together (`rank..<rank + 1` for a one-rank task); the same
        /// slot is in every member's list.
        public var group: Range<Int>

        public init(task: String, rank: Int, start: Double, end: Double, group: Range<Int>? = nil) {
            self.task = task; self.rank = rank; self.start = start; self.end = end
            self.group = group ?? rank..<(rank + 1)
        }
    }
    /// `ranks[r]` = the tasks rank `r` runs, in order.
    public private(set) var ranks: [[Slot]]
    public var makespan: Double { ranks.flatMap { $0 }.map(\.end).max() ?? 0 }
    /// Per rank, the simulated time it is busy (a group task counts on each member).
    public var busy: [Double] { ranks.map { $0.reduce(0) { $0 + $1.end - $1.start } } }
    /// Rank-time of the plan: the work including the groups' communication.
    public var totalCost: Double { busy.reduce(0, +) }
    /// Each task's slot (a group task's on its first member).
    public var slots: [String: Slot] {
        var out: [String: Slot] = [:]
        for list in ranks { for s in list where s.rank == s.group.lowerBound { out[s.task] = s } }
        return out
    }
    /// The distinct groups of more than one rank the plan uses, by size then first rank: the
    /// sub-communicators a run creates up front.
    public var groups: [Range<Int>] {
        Set(ranks.flatMap { $0 }.map(\.group).filter { $0.count > 1 }).sorted { ($0.count, $0.lowerBound) < ($1.count, $1.lowerBound) }
    }

    /// The plan of `tasks` on `count` ranks; `groups: false` puts every task on one rank.
    public init(tasks: [PlannedTask], ranks count: Int, groups useGroups: Bool = false) {
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
            // One rank: the earliest start (ties: lower rank).
            let r = (0..<count).min { (max(free[$0], chosen.ready), $0) < (max(free[$1], chosen.ready), $1) }!
            var members = r..<(r + 1), start = max(free[r], chosen.ready), end = start + t.cost
            if useGroups {
                // Aligned blocks of every size the task may use: the earliest end (ties: smaller group, lower block).
                for (g, duration) in t.groups where g <= count {
                    for first in stride(from: 0, through: count - g, by: g) {
                        let s = max(chosen.ready, free[first..<(first + g)].max()!)
                        if s + duration < end { (members, start, end) = (first..<(first + g), s, s + duration) }
                    }
                }
            }
            for m in members {
                let s = Slot(task: t.id, rank: m, start: start, end: end, group: members)
                ranks[m].append(s)
                free[m] = end
            }
            slot[t.id] = Slot(task: t.id, rank: members.lowerBound, start: start, end: end, group: members)
        }
        self.ranks = ranks
    }

    /// The chain of tasks that ends last: from the task that ends at the makespan, back through
    /// whatever made it start when it did — the input that became ready last (`tasks`' needs) or the
    /// task before it on its busiest member — to a task that started at 0.
    public func criticalPath(tasks: [PlannedTask]) -> [Slot] {
        let all = slots, byID = Dictionary(uniqueKeysWithValues: tasks.map { ($0.id, $0) })
        guard var current = all.values.max(by: { ($0.end, $1.task) < ($1.end, $0.task) }) else { return [] }
        var chain = [current]
        let eps = 1e-9 * max(1, makespan)
        while current.start > eps {
            var previous: Slot?
            for n in byID[current.task]?.needs ?? [] {
                if let s = all[n.task], abs(s.start + n.fraction * (s.end - s.start) - current.start) <= eps { previous = s; break }
            }
            if previous == nil {
                for m in current.group {
                    if let s = ranks[m].last(where: { $0.end <= current.start + eps && $0.task != current.task }),
                       abs(s.end - current.start) <= eps { previous = all[s.task]; break }
                }
            }
            guard let p = previous else { break }
            chain.append(p)
            current = p
        }
        return chain.reversed()
    }
}
