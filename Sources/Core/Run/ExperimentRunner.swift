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
    let spawnTimes: [Double], measurementTimes: [Double]
    let recipe: TrainingRecipe
    var log: (String) -> Void
    /// Dense linear algebra on Grams held by a group of ranks (ScaLAPACK under MPI, LAPACK alone).
    let algebra: (Communicator) throws -> GramLinearAlgebra
    /// The tasks and their dependencies (TaskGraph.swift); costs in CostModel.swift, the schedule in
    /// Scheduling.swift, training in TrainingTasks.swift, the measurements in ComparisonTasks.swift,
    /// LinearizedTasks.swift, HessianTasks.swift and KernelTasks.swift, waiting and failures in
    /// RunnerFailures.swift.
    public let graph: TaskGraph
    /// Longest wait, in seconds, for a file another task writes (nil: until it can no longer appear).
    public var waitTimeout: Double?
    /// Asked after every training step, between tasks and while waiting for a file: true ends the
    /// rank's work with `StopRequested`, saving training's resume state first (StopRequest.swift).
    public var shouldStop: () -> Bool = { false }

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
        graph = TaskGraph(self.config)
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

    /// Runs this rank's share; returns the gathered records on rank 0 (nil elsewhere).
    public func run() throws -> [TaskRecord]? {
        let byID = Dictionary(uniqueKeysWithValues: tasks().map { ($0.planned.id, $0.task) })
        let plan = plan()
        let total = plan.totalCost, start = Benchmark.now()
        var done = 0.0, records: [TaskRecord] = []
        clearFailureMarkers()
        recheckCheckpoints()   // RunIntegrity.swift: finished tasks with missing or corrupt checkpoints run again
        for slot in plan.ranks[comm.rank] {
            let task = byID[slot.task]!
            if let record = TaskRecord.decoded(storedRecord(task)) {
                records.append(record)
                continue
            }
            if shouldStop() { throw StopRequested(task: "between tasks (next: \(task.id))") }
            log("rank \(comm.rank): \(task.id) starts")
            let t0 = Benchmark.now()
            var record = try runTask(task) { try execute(task) }
            record.seconds = Benchmark.now() - t0
            try store(record)
            records.append(record)
            done += slot.end - slot.start
            let elapsed = Benchmark.now() - start
            log("rank \(comm.rank): \(task.id) done in \(formatDuration(record.seconds)); "
                + "rank share \(Int(100 * done / max(plan.busy[comm.rank], 1e-9)))%, "
                + "ETA \(formatDuration(elapsed / max(done, 1e-9) * (plan.busy[comm.rank] - done))) (plan total \(Int(total)))")
        }
        records += try runKernelTasks()
        let mine = try JSONEncoder.sorted.encode(records)
        try during("gathering the task records on rank 0", fix: rerunFix) {
            try FaultInjection.check(.gather, rank: comm.rank)
        }
        guard let all = comm.gather(Array(mine), root: 0) else { return nil }
        return try all.flatMap { try JSONDecoder.records.decode([TaskRecord].self, from: Data($0)) }
    }

    func execute(_ task: ExperimentTask) throws -> TaskRecord {
        switch task {
        case let .parent(r): return try trainParent(r)
        case let .child(r, s, k): return try trainChild(r, s, k)
        case let .pair(r, s, a, b): return try comparePair(r, s, a, b)
        case let .timeline(r, t): return try measureTimeline(r, t)
        case let .timelinePairs(r): return try compareTimes(r)
        case let .linearizedGrid(r, t): return try chooseLinearizedLearningRate(r, t)
        case let .linearized(r, t, k): return try trainLinearizedModel(r, t, seed: k)
        case let .nonlinearChild(r, t, k): return try trainNonlinearChild(r, t, seed: k)
        case .kernelTimeline, .kernelChildren, .kernelMachine, .hessian:
            preconditionFailure("\(task.id) is collective: run it through runKernelTasks")
        }
    }

    /// This rank's part of the collective NTK tasks, after its pipelined ones: the ranks split into
    /// groups, each group runs its static share; the group's first rank keeps the records.
    func runKernelTasks() throws -> [TaskRecord] {
        let groups = kernelGroups(ranks: comm.size)
        let assignment = kernelAssignment(groups: groups)
        guard assignment.contains(where: { !$0.isEmpty }) else { return [] }
        let color = comm.rank % groups
        guard let group = comm.split(color: color, key: comm.rank) else { return [] }
        let ntk = NTKAnalysis(communicator: group, algebra: try algebra(group), options: ntkOptions)
        var records: [TaskRecord] = []
        for task in assignment[color] {
            // The group's first rank decides, so every member skips or runs the same tasks.
            let existing = group.broadcast(bytes: group.rank == 0 ? storedRecord(task) : [], root: 0)
            if let record = TaskRecord.decoded(existing) {
                if group.rank == 0 { records.append(record) }
                continue
            }
            if group.rank == 0 { log("rank \(comm.rank): \(task.id) starts on \(group.size) rank(s)") }
            let t0 = Benchmark.now()
            var record = try runTask(task) {
                switch task {
                case let .kernelTimeline(r): return try kernelTimeline(r, ntk: ntk)
                case let .kernelChildren(r, s): return try kernelChildren(r, s, ntk: ntk)
                case let .kernelMachine(r, t): return try kernelMachine(r, t, ntk: ntk)
                case let .hessian(r, t): return try measureHessian(r, t, group: group)
                default: preconditionFailure("\(task.id) is not a kernel task")
                }
            }
            record.seconds = Benchmark.now() - t0
            if group.rank == 0 {
                try store(record)
                records.append(record)
                log("rank \(comm.rank): \(task.id) done in \(formatDuration(record.seconds))")
            }
        }
        return records
    }
}
