import Foundation

/// Runs an experiment over the ranks of `comm`: every rank computes the same static plan, runs its
/// share (waiting on files other ranks produce), and rank 0 gathers the records and writes the tables.
/// A rerun skips tasks whose record exists and resumes training from rolling checkpoints.
public final class ExperimentRunner {
    public let config: ExperimentConfig
    public let paths: RunPaths
    public let comm: Communicator
    public let train: Dataset, test: Dataset
    /// Class-balanced probe set (ReLU patterns, logit gradients).
    public let probe: Dataset
    /// Training examples on which barrier curves report train error.
    public let barrierTrain: Dataset
    /// Indices in `test` of the class-balanced examples whose predictions trace function-space
    /// trajectories (`trajectories.examples`; empty when off).
    let trajectoryIndices: [Int]
    let spawnTimes: [Double], measurementTimes: [Double]
    let recipe: TrainingRecipe
    var log: (String) -> Void
    /// Dense linear algebra on Grams held by a group of ranks (ScaLAPACK under MPI, LAPACK alone).
    let algebra: (Communicator) throws -> GramLinearAlgebra
    /// The tasks and their dependencies (TaskGraph.swift); costs in CostModel.swift, the schedule
    /// (`planner`, with data-parallel training groups) in Scheduling.swift, training in
    /// TrainingTasks.swift, the measurements in ComparisonTasks.swift, LinearizedTasks.swift,
    /// HessianTasks.swift and KernelTasks.swift, waiting and failures in RunnerFailures.swift.
    public let graph: TaskGraph
    /// The plan's costs and schedule from the experiment and its data's sizes (Scheduling.swift).
    public let planner: ExperimentPlanner
    /// Longest wait, in seconds, for a file another task writes (nil: until it can no longer appear).
    public var waitTimeout: Double?
    /// Asked after every training step, between tasks and while waiting for a file: true ends the
    /// rank's work with `StopRequested`, saving training's resume state first (StopRequest.swift).
    public var shouldStop: () -> Bool = { false }
    /// This rank's log; when set, `run()` keeps the rank's progress (`RunStatus`) in the run's
    /// `logs/status-<k>.json` and shows it through the log.
    public var runLog: RunLog?
    /// This rank's progress during `run()`.
    public private(set) var status: RunStatus?
    /// This rank's host name (manifest, status).
    public let host = hostName()

    /// `algebra` makes the eigen/Cholesky solver for a group's Grams; the default (LAPACK) only
    /// serves one-rank groups. `checks: false` skips the set-up checks for `comm`'s size (`plan`
    /// checks for the ranks it plans).
    public init(config: ExperimentConfig, runsRoot: String, comm: Communicator,
                algebra: @escaping (Communicator) throws -> GramLinearAlgebra = { _ in LAPACKGramAlgebra() },
                log: @escaping (String) -> Void, checks: Bool = true) throws {
        self.config = config.resolved()
        self.comm = comm
        self.algebra = algebra
        self.log = log
        paths = RunPaths(root: runsRoot, config: config)
        spawnTimes = self.config.resolvedSpawnTimes
        measurementTimes = self.config.resolvedMeasurementTimes
        recipe = self.config.trainingRecipe
        (train, test) = try Self.loadData(self.config)
        try self.config.validate(trainExamples: train.count)
        probe = try train.probeSubset(count: self.config.probeSize, seed: self.config.seed)
        barrierTrain = try train.prefix(count: min(self.config.barrier.trainSubset, train.count))
        do {
            trajectoryIndices = self.config.trajectories.enabled
                ? try test.classBalancedIndices(count: self.config.trajectories.examples,
                                                key: RandomKey(seed: self.config.seed, role: .trajectories))
                : []
        } catch let e as DatasetError {
            throw ConfigurationError(field: "trajectories.examples", message: "\(e) (the examples come from the test subset)")
        }
        graph = TaskGraph(self.config)
        planner = ExperimentPlanner(config: self.config, sizes: PlanSizes(
            trainExamples: train.count, testExamples: test.count, probeExamples: probe.count,
            barrierTrainExamples: barrierTrain.count, classes: train.classCount,
            input: Shape(train.channels, train.height, train.width), smallestClass: train.classCounts().min() ?? 0))
        if checks {   // SetupChecks.swift: NTK memory against ntk.memory_gb, disk space; before any training
            try checkBeforeTraining()
            warnAboutDiskSpace()
        }
    }

    /// Loads, subsets and normalises the data exactly as every rank must see it.
    public static func loadData(_ config: ExperimentConfig) throws -> (train: Dataset, test: Dataset) {
        var (train, test) = try DatasetLoader.load(kind: config.dataset.kind, path: config.dataset.path)
        if config.dataset.trainSubset > 0 {
            train = try train.trainingSubset(config.dataset.trainingSubset, seed: config.seed)
        }
        if config.dataset.testSubset > 0 { test = try test.prefix(count: min(config.dataset.testSubset, test.count)) }
        let norm = config.dataset.kind.standardNormalization ?? Normalization.computed(from: train)
        norm.apply(to: &train)
        norm.apply(to: &test)
        return (train, test)
    }

    var inputShape: Shape { Shape(train.channels, train.height, train.width) }
    var childrenPerSpawn: Int { config.children }
    /// `TrainingIdentity.child` of child `k` of spawn index `s` (the parent is 0).
    func childNumber(spawn s: Int, child k: Int) -> Int { 1 + s * childrenPerSpawn + k }

    // MARK: Run

    /// What rank 0 gathers at the end of `run()`.
    public struct Outcome: Sendable {
        /// Every task's record.
        public var records: [TaskRecord]
        /// Host name of each rank.
        public var hosts: [String]
        /// Tasks run (not skipped) in this invocation, by any rank.
        public var ran: Set<String>
    }

    /// One rank's part of the gather.
    private struct RankReport: Codable {
        var host: String
        var ran: [String]
        var records: [TaskRecord]
    }

    /// Runs this rank's share; returns the gathered records on rank 0 (nil elsewhere).
    public func run() throws -> Outcome? {
        let byID = Dictionary(uniqueKeysWithValues: tasks().map { ($0.planned.id, $0.task) })
        let plan = plan()
        var records: [TaskRecord] = [], ran: [String] = []
        clearFailureMarkers()
        recheckCheckpoints()   // RunIntegrity.swift: finished tasks with missing or corrupt checkpoints run again
        let groups = trainingGroups(plan)
        startStatus(plan)
        defer { ProgressPrinter.output = nil }
        for slot in plan.ranks[comm.rank] {
            let task = byID[slot.task]!
            // A group's first rank decides whether the task is done, so every member skips or runs it.
            let group = slot.group.count > 1 ? groups[slot.group]! : SerialCommunicator()
            let stored = group.broadcast(bytes: group.rank == 0 ? storedRecord(task) : [], root: 0)
            if let record = TaskRecord.decoded(stored) {
                if group.rank == 0 { records.append(record) }
                continue
            }
            // Agreed: a member that stopped alone would leave the others waiting in the task's collectives.
            if Self.anyMember(of: group, shouldStop()) { throw StopRequested(task: "between tasks (next: \(task.id))") }
            if group.rank == 0 { log("rank \(comm.rank): \(task.id) starts" + (group.size > 1 ? " on ranks \(slot.group)" : "")) }
            let record = try runTimed(task, ranks: group.size) { try execute(task, group: group) }
            if try !keep(record, of: task, group: group, records: &records, ran: &ran) {
                status?.finished(task.id, seconds: record.seconds)   // a member: done here too, the record is rank 0's
            }
        }
        let kernel = try runKernelTasks()
        records += kernel.records
        ran += kernel.ran
        status?.note("done; waiting for the other ranks")
        let mine = try JSONEncoder.sorted.encode(RankReport(host: host, ran: ran, records: records))
        try during("gathering the task records on rank 0", fix: rerunFix) {
            try FaultInjection.check(.gather, rank: comm.rank)
        }
        guard let all = comm.gather(Array(mine), root: 0) else { return nil }
        let reports = try all.map { try JSONDecoder.records.decode(RankReport.self, from: Data($0)) }
        return Outcome(records: reports.flatMap(\.records), hosts: reports.map(\.host), ran: Set(reports.flatMap(\.ran)))
    }

    /// The sub-communicators of the plan's training groups, keyed by their ranks. Collective on
    /// `comm`: every rank splits once per group size, in increasing size, in the same order; a rank
    /// in no group of a size passes a negative colour.
    func trainingGroups(_ plan: TaskPlan) -> [Range<Int>: Communicator] {
        let used = plan.groups
        var out: [Range<Int>: Communicator] = [:]
        for size in Set(used.map(\.count)).sorted() {
            let mine = used.first { $0.count == size && $0.contains(comm.rank) }
            if let sub = comm.split(color: mine?.lowerBound ?? -1, key: comm.rank), let mine {
                precondition(sub.size == size, "training group \(mine): \(sub.size) ranks")
                out[mine] = sub
            }
        }
        return out
    }

    /// Whether any rank of `group` passes `flag` (one collective on a group of several ranks).
    static func anyMember(of group: Communicator, _ flag: Bool) -> Bool {
        group.size == 1 ? flag : group.allreduce(flag ? 1 : 0, .max) == 1
    }

    /// This rank's tasks with their costs: its pipelined share, and the collective tasks of its group
    /// when it is the group's first rank (each collective task is counted once).
    func ownTasks(_ plan: TaskPlan) -> [(id: String, cost: Double)] {
        let groups = kernelGroups(ranks: comm.size)
        let costs = Dictionary(uniqueKeysWithValues: kernelTasks().map { ($0.task.id, $0.planned.cost) })
        let collective = comm.rank < groups ? kernelAssignment(groups: groups)[comm.rank] : []
        return plan.ranks[comm.rank].map { ($0.task, $0.end - $0.start) } + collective.map { ($0.id, costs[$0.id] ?? 0) }
    }

    /// Starts this rank's `RunStatus` (when there is a log) and routes training progress to it.
    private func startStatus(_ plan: TaskPlan) {
        guard let runLog else { return }
        let own = ownTasks(plan)
        let finished = Set(own.map(\.id).filter { FileManager.default.fileExists(atPath: paths.taskDone($0)) })
        let status = RunStatus(log: runLog, path: paths.status(rank: comm.rank), host: host, tasks: own, finished: finished)
        self.status = status
        ProgressPrinter.output = { status.training($0) }
    }

    /// Logs a finished task (with this rank's tasks done and ETA when there is a status).
    /// Runs `task` (`runTask`: fault injection, failure marker) on `ranks` rank(s) and stamps its
    /// record with the wall time, start and end.
    private func runTimed(_ task: ExperimentTask, ranks: Int, _ body: () throws -> TaskRecord) throws -> TaskRecord {
        status?.started(task.id)
        let t0 = Benchmark.now(), started = Date()
        var record = try runTask(task, body)
        record.seconds = Benchmark.now() - t0
        record.timing = TaskTiming(rank: comm.rank, ranks: ranks, host: host, started: started, finished: Date())
        return record
    }

    private func finished(_ task: String, seconds: Double) {
        if let status { status.finished(task, seconds: seconds) } else { log("rank \(comm.rank): \(task) done in \(formatDuration(seconds))") }
    }

    /// Runs pipelined `task`; a training task (parent, child, low-learning-rate child) trains with
    /// `group` (its data-parallel group; only the group's rank 0 writes files), the others run on
    /// this rank alone (`group` is then `SerialCommunicator`).
    func execute(_ task: ExperimentTask, group: Communicator = SerialCommunicator()) throws -> TaskRecord {
        precondition(group.size == 1 || Self.trainsWithGroups(task), "\(task.id) runs on one rank")
        switch task {
        case let .parent(r): return try trainParent(r, group: group)
        case let .child(r, s, k): return try trainChild(r, s, k, group: group)
        case let .pair(r, s, a, b): return try comparePair(r, s, a, b)
        case let .timeline(r, t): return try measureTimeline(r, t)
        case let .timelinePairs(r): return try compareTimes(r)
        case let .linearizedGrid(r, t): return try chooseLinearizedLearningRate(r, t)
        case let .linearized(r, t, k): return try trainLinearizedModel(r, t, seed: k)
        case let .secondOrder(r, t, k): return try trainSecondOrderModel(r, t, seed: k)
        case let .nonlinearChild(r, t, k): return try trainNonlinearChild(r, t, seed: k, group: group)
        case let .plane(r, p, k): return try measurePlane(r, p, part: k)
        case let .trajectories(r, s): return try measureTrajectories(r, s)
        case let .embedding(r): return try embedPredictions(r)
        case .kernelTimeline, .kernelChildren, .kernelMachine, .hessian:
            preconditionFailure("\(task.id) is collective: run it through runKernelTasks")
        }
    }

    /// Whether `task` trains a network with `Trainer`, so a data-parallel group may run it.
    public static func trainsWithGroups(_ task: ExperimentTask) -> Bool {
        switch task {
        case .parent, .child, .nonlinearChild: return true
        default: return false
        }
    }

    /// On the group's rank 0: stores the record of a task the group ran, adds it to this rank's
    /// records and logs it; returns whether this rank is the group's rank 0.
    private func keep(_ record: TaskRecord, of task: ExperimentTask, group: Communicator,
                      records: inout [TaskRecord], ran: inout [String]) throws -> Bool {
        guard group.rank == 0 else { return false }
        try store(record)
        records.append(record)
        ran.append(task.id)
        finished(task.id, seconds: record.seconds)
        return true
    }

    /// This rank's part of the collective NTK tasks, after its pipelined ones: the ranks split into
    /// groups, each group runs its static share; the group's first rank keeps the records.
    func runKernelTasks() throws -> (records: [TaskRecord], ran: [String]) {
        let groups = kernelGroups(ranks: comm.size)
        let assignment = kernelAssignment(groups: groups)
        guard assignment.contains(where: { !$0.isEmpty }) else { return ([], []) }
        let color = comm.rank % groups
        guard let group = comm.split(color: color, key: comm.rank) else { return ([], []) }
        let ntk = NTKAnalysis(communicator: group, algebra: try algebra(group), options: ntkOptions)
        var records: [TaskRecord] = [], ran: [String] = []
        for task in assignment[color] {
            // The group's first rank decides, so every member skips or runs the same tasks.
            let existing = group.broadcast(bytes: group.rank == 0 ? storedRecord(task) : [], root: 0)
            if let record = TaskRecord.decoded(existing) {
                if group.rank == 0 { records.append(record) }
                continue
            }
            if group.rank == 0 { log("rank \(comm.rank): \(task.id) starts on \(group.size) rank(s)") }
            let record = try runTimed(task, ranks: group.size) {
                switch task {
                case let .kernelTimeline(r): return try kernelTimeline(r, ntk: ntk)
                case let .kernelChildren(r, s): return try kernelChildren(r, s, ntk: ntk)
                case let .kernelMachine(r, t): return try kernelMachine(r, t, ntk: ntk)
                case let .hessian(r, t): return try measureHessian(r, t, group: group)
                default: preconditionFailure("\(task.id) is not a kernel task")
                }
            }
            if try !keep(record, of: task, group: group, records: &records, ran: &ran) {
                status?.note("\(task.id) done")
            }
        }
        return (records, ran)
    }
}

/// This machine's host name (`gethostname`).
func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
    return String(cString: buffer)
}
