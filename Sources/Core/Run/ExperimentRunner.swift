import Foundation

/// A task of the experiment's graph.
public enum ExperimentTask: Hashable, Sendable {
    /// Train the parent of replicate `r`, writing checkpoints at every spawn and measurement time.
    case parent(replicate: Int)
    /// Train child `k` (0-based) of spawn time index `s` from the parent's checkpoint to the end.
    case child(replicate: Int, spawn: Int, child: Int)
    /// Compare children `a < b` of spawn time index `s` (barrier, distances).
    case pair(replicate: Int, spawn: Int, a: Int, b: Int)
    /// Errors and losses of the parent at measurement time index `t`.
    case timeline(replicate: Int, time: Int)
    /// ReLU-pattern distance and logit-gradient alignment between all pairs of measurement times.
    case timelinePairs(replicate: Int)
    /// The linearised model's learning-rate grid at `linearized.times[time]` (when it lists several rates).
    case linearizedGrid(replicate: Int, time: Int)
    /// Linearised training around the parent at `linearized.times[time]`, seed `seed`.
    case linearized(replicate: Int, time: Int, seed: Int)
    /// The low-learning-rate nonlinear child from the same point, seed `seed` (the same batches).
    case nonlinearChild(replicate: Int, time: Int, seed: Int)
    /// Top Hessian eigenvalue of the parent at `hessian.times[time]`.
    case hessian(replicate: Int, time: Int)
    /// Collective over a group of ranks: the parent's NTK Grams at every NTK time (spectra,
    /// alignment, kernel distances, velocity).
    case kernelTimeline(replicate: Int)
    /// Collective: kernel distances between the children of spawn time index `s`.
    case kernelChildren(replicate: Int, spawn: Int)
    /// Collective: the NTK kernel machine at `kernel_machine.times[time]`.
    case kernelMachine(replicate: Int, time: Int)

    public var id: String {
        switch self {
        case let .parent(r): return "r\(r)-parent"
        case let .child(r, s, k): return "r\(r)-s\(s)-c\(k)"
        case let .pair(r, s, a, b): return "r\(r)-s\(s)-pair\(a)-\(b)"
        case let .timeline(r, t): return "r\(r)-t\(t)"
        case let .timelinePairs(r): return "r\(r)-timeline-pairs"
        case let .linearizedGrid(r, t): return "r\(r)-lin\(t)-grid"
        case let .linearized(r, t, k): return "r\(r)-lin\(t)-k\(k)"
        case let .nonlinearChild(r, t, k): return "r\(r)-lin\(t)-nonlinear-k\(k)"
        case let .hessian(r, t): return "r\(r)-hessian\(t)"
        case let .kernelTimeline(r): return "r\(r)-ntk-timeline"
        case let .kernelChildren(r, s): return "r\(r)-s\(s)-ntk-children"
        case let .kernelMachine(r, t): return "r\(r)-ntk-machine\(t)"
        }
    }

    /// Collective tasks run by a group of ranks after the pipelined ones.
    public var isCollective: Bool {
        switch self {
        case .kernelTimeline, .kernelChildren, .kernelMachine: return true
        default: return false
        }
    }
}

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
    /// Longest wait, in seconds, for a file another task writes (nil: until it can no longer appear).
    public var waitTimeout: Double?
    /// Asked after every training step, between tasks and while waiting for a file: true ends the
    /// rank's work with `StopRequested`, saving training's resume state first (StopRequest.swift).
    public var shouldStop: () -> Bool = { false }

    /// `algebra` makes the eigen/Cholesky solver for a group's Grams; the default (LAPACK) only
    /// serves one-rank groups.
    public init(config: ExperimentConfig, runsRoot: String, comm: Communicator,
                algebra: @escaping (Communicator) throws -> GramLinearAlgebra = { _ in LAPACKGramAlgebra() },
                log: @escaping (String) -> Void) throws {
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

    // MARK: Plan

    /// Cost of one evaluation forward relative to one training step per example (measured ~1/2.5
    /// for SimpleCNN and ResNet-20 on one thread).
    static let forwardCost = 0.4

    /// The task graph with relative costs in training-example passes.
    public func tasks() -> [(task: ExperimentTask, planned: PlannedTask)] {
        let T = recipe.epochs, n = Double(train.count), K = childrenPerSpawn, f = Self.forwardCost
        let evalCost = Double(test.count + barrierTrain.count) * f
        var out: [(ExperimentTask, PlannedTask)] = []
        for r in 0..<config.replicates {
            let parent = ExperimentTask.parent(replicate: r)
            out.append((parent, PlannedTask(id: parent.id, cost: T * n)))
            for (s, time) in spawnTimes.enumerated() {
                for k in 0..<K {
                    let c = ExperimentTask.child(replicate: r, spawn: s, child: k)
                    out.append((c, PlannedTask(id: c.id, cost: (T - time) * n, needs: [(parent.id, time / T)])))
                }
                for a in 0..<K { for b in (a + 1)..<K {
                    let p = ExperimentTask.pair(replicate: r, spawn: s, a: a, b: b)
                    let needs = [a, b].map { (ExperimentTask.child(replicate: r, spawn: s, child: $0).id, 1.0) }
                    // BatchNorm networks: a curve under each of the two policies.
                    let curves = config.model.hasBatchNorm ? 2.0 : 1.0
                    out.append((p, PlannedTask(id: p.id, cost: curves * Double(config.barrier.points) * evalCost, needs: needs)))
                } }
            }
            for (t, time) in measurementTimes.enumerated() {
                let task = ExperimentTask.timeline(replicate: r, time: t)
                out.append((task, PlannedTask(id: task.id, cost: (n + Double(test.count)) * f, needs: [(parent.id, time / T)])))
            }
            let tp = ExperimentTask.timelinePairs(replicate: r)
            out.append((tp, PlannedTask(id: tp.id, cost: Double(measurementTimes.count * probe.count * (train.classCount + 1)),
                                        needs: [(parent.id, 1)])))
            let lin = config.linearized
            for (i, time) in lin.times.enumerated() {
                let needs = [(parent.id, time / T)]
                let evals = { (epochs: Double, examples: Int) in Double(Self.epochMarks(epochs).count + 1) * Double(examples) * f }
                // A linearised step is a forward, a JVP and a backward: ~1.4 training passes.
                var linNeeds = needs
                if lin.searchesLearningRate {
                    let g = ExperimentTask.linearizedGrid(replicate: r, time: i), e = lin.resolvedGridEpochs
                    let fit = n - Double(lin.heldOut)
                    let cost = Double(lin.learningRates.count) * (e * fit * 1.4 + 2 * evals(e, lin.heldOut))
                    out.append((g, PlannedTask(id: g.id, cost: cost, needs: needs)))
                    linNeeds = [(g.id, 1)]
                }
                for k in 0..<lin.child.seeds {
                    let a = ExperimentTask.linearized(replicate: r, time: i, seed: k)
                    let b = ExperimentTask.nonlinearChild(replicate: r, time: i, seed: k)
                    out.append((a, PlannedTask(id: a.id, cost: lin.epochs * n * 1.4 + 2 * evals(lin.epochs, test.count), needs: linNeeds)))
                    out.append((b, PlannedTask(id: b.id, cost: lin.child.epochs * n + evals(lin.child.epochs, test.count), needs: needs)))
                }
            }
        }
        return out
    }

    /// Ids of every task of `config`'s plan, pipelined and collective, without loading any data:
    /// what `report` and `summary` count an unfinished run against (the same tasks as `tasks()` and
    /// `kernelTasks()`; ExperimentTests checks it).
    public static func taskIDs(_ config: ExperimentConfig) -> [String] {
        let c = config.resolved()
        let spawns = c.resolvedSpawnTimes, K = c.children
        var ids: [ExperimentTask] = []
        for r in 0..<c.replicates {
            ids.append(.parent(replicate: r))
            for s in spawns.indices {
                ids += (0..<K).map { ExperimentTask.child(replicate: r, spawn: s, child: $0) }
                for a in 0..<K { for b in (a + 1)..<K { ids.append(.pair(replicate: r, spawn: s, a: a, b: b)) } }
            }
            ids += c.resolvedMeasurementTimes.indices.map { ExperimentTask.timeline(replicate: r, time: $0) }
            ids.append(.timelinePairs(replicate: r))
            for i in c.linearized.times.indices {
                if c.linearized.searchesLearningRate { ids.append(.linearizedGrid(replicate: r, time: i)) }
                for k in 0..<c.linearized.child.seeds {
                    ids += [.linearized(replicate: r, time: i, seed: k), .nonlinearChild(replicate: r, time: i, seed: k)]
                }
            }
            if !Set(c.resolvedNTKTimes + c.velocityPairs.map(\.to)).isEmpty { ids.append(.kernelTimeline(replicate: r)) }
            if c.ntk.children { ids += spawns.indices.map { ExperimentTask.kernelChildren(replicate: r, spawn: $0) } }
            ids += c.hessian.times.indices.map { ExperimentTask.hessian(replicate: r, time: $0) }
            ids += c.kernelMachine.times.indices.map { ExperimentTask.kernelMachine(replicate: r, time: $0) }
        }
        return ids.map(\.id)
    }

    public func plan() -> TaskPlan { TaskPlan(tasks: tasks().map(\.planned), ranks: comm.size) }

    /// Cost of one Gram of `m` examples in training-example passes: the `m C` Jacobian rows plus the
    /// `(mC)^2 P` FLOPs of the lower-triangle contraction. The contraction runs near the GEMM peak
    /// while training small models does not, so FLOPs count a quarter of their training
    /// equivalent, and a Jacobian row a tenth of a training pass (both fitted to the task times of
    /// the quick preset, whose Gram units took 130-570 and its kernel machines ~10,500 units).
    func gramCost(examples m: Int) -> Double {
        let net = config.model.build(input: inputShape, classes: train.classCount, as: Float.self)
        let rows = Double(m * train.classCount), perPass = Double(max(net.trainingFlops, 1))
        return 0.1 * rows + 0.25 * rows * rows * Double(net.parameterCount) / perPass
    }

    /// The collective NTK tasks, run after the pipelined ones by groups of `ntk.group_size` ranks.
    public func kernelTasks() -> [(task: ExperimentTask, planned: PlannedTask)] {
        let probeGram = gramCost(examples: probe.count)
        var out: [(ExperimentTask, PlannedTask)] = []
        for r in 0..<config.replicates {
            if !parentGramTimes.isEmpty {
                let t = ExperimentTask.kernelTimeline(replicate: r)
                out.append((t, PlannedTask(id: t.id, cost: Double(parentGramTimes.count) * probeGram)))
            }
            if config.ntk.children {
                for s in spawnTimes.indices {
                    let t = ExperimentTask.kernelChildren(replicate: r, spawn: s)
                    out.append((t, PlannedTask(id: t.id, cost: Double(childrenPerSpawn) * probeGram)))
                }
            }
            let h = config.hessian
            for i in h.times.indices {
                let t = ExperimentTask.hessian(replicate: r, time: i)
                // Products: Lanczos, Hutchinson, quadrature and u'Hu; ~2.5 gradients each (exact) or 2 (central).
                let products = Double(h.iterations + h.traceSamples + h.densityRuns * h.densitySteps + 1)
                let perProduct = h.method == .exact ? 2.5 : 2.0
                out.append((t, PlannedTask(id: t.id, cost: perProduct * products * Double(min(h.examples, train.count)))))
            }
            let machineN = machineExamples(groupRanks: kernelGroupRanks)
            for i in config.kernelMachine.times.indices {
                let t = ExperimentTask.kernelMachine(replicate: r, time: i)
                let cost = Double(config.kernelMachine.draws)
                    * (gramCost(examples: machineN) + Double(test.count + machineN) * 6 * Self.forwardCost)
                out.append((t, PlannedTask(id: t.id, cost: cost)))
            }
        }
        return out
    }

    /// Ranks per NTK group and the number of groups for `ranks` ranks: `ntk.group_size` (0 = all),
    /// groups of equal size, leftover ranks joining the groups round-robin.
    public func kernelGroups(ranks: Int) -> Int {
        let size = config.ntk.groupSize == 0 ? ranks : min(config.ntk.groupSize, ranks)
        return max(1, ranks / size)
    }

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
            let recordPath = paths.taskDone(task.id)
            if let data = FileManager.default.contents(atPath: recordPath),
               let record = try? JSONDecoder.records.decode(TaskRecord.self, from: data) {
                records.append(record)
                continue
            }
            if shouldStop() { throw StopRequested(task: "between tasks (next: \(task.id))") }
            log("rank \(comm.rank): \(task.id) starts")
            let t0 = Benchmark.now()
            var record = try runTask(task) { try execute(task) }
            record.seconds = Benchmark.now() - t0
            try AtomicFile.write(try JSONEncoder.sorted.encode(record), to: recordPath)
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
            let recordPath = paths.taskDone(task.id)
            // The group's first rank decides, so every member skips or runs the same tasks.
            var existing = group.rank == 0 ? (FileManager.default.contents(atPath: recordPath).map { [UInt8]($0) } ?? []) : []
            existing = group.broadcast(bytes: existing, root: 0)
            if let record = try? JSONDecoder.records.decode(TaskRecord.self, from: Data(existing)) {
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
                try AtomicFile.write(try JSONEncoder.sorted.encode(record), to: recordPath)
                records.append(record)
                log("rank \(comm.rank): \(task.id) done in \(formatDuration(record.seconds))")
            }
        }
        return records
    }

    /// Blocks until `path` exists (another rank writes it atomically); throws when it can no longer
    /// appear (its producer finished without it or failed) or after `waitTimeout` (RunnerFailures.swift).
    func waitFor(_ path: String) throws {
        try waitForProduced(path)
    }

    func makeTrainer(identity: TrainingIdentity) -> Trainer {
        Trainer(network: config.model.build(input: inputShape, classes: train.classCount), recipe: recipe, data: train,
                identity: identity)
    }

    func trainParent(_ r: Int) throws -> TaskRecord {
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r))
        let state = paths.parentTrainingState(replicate: r)
        if FileManager.default.fileExists(atPath: state) {
            try Checkpoint.read(state).restore(into: trainer)
        } else {
            trainer.initializeWeights()
        }
        let saves = config.parentCheckpointTimes.map { (time: $0, step: recipe.step(atEpoch: $0, examples: train.count)) }
        let saver = TimedCheckpoints(saves: saves) { self.paths.parentCheckpoint(replicate: r, epoch: $0) }
        try saver.save(trainer)   // time 0 (and anything at the resumed step)
        let curve = curveRecorder(trainer, replicate: r, run: "parent", spawnEpoch: nil,
                                  path: paths.parentTrainingCurve(replicate: r))
        // The curve is written before the rolling state (TrainingCurveRecorder explains why).
        try trainer.train(until: trainer.finalStep, callbacks: [saver] + (curve.map { [$0] } ?? []) + [
            RollingState(path: state),
            StopOnRequest(path: state, task: "task \(ExperimentTask.parent(replicate: r).id)", curve: curve, shouldStop: shouldStop),
            ProgressPrinter(label: "r\(r) parent", endStep: trainer.finalStep, interval: 15),
        ])
        var record = TaskRecord(id: ExperimentTask.parent(replicate: r).id)
        record.trainingCurves = curve?.rows ?? []
        return record
    }

    /// The training-curve recorder of a network (nil when `training_curves.every_steps` is 0).
    func curveRecorder(_ trainer: Trainer, replicate: Int, run: String, spawnEpoch: Double?, path: String) -> TrainingCurveRecorder? {
        let every = config.trainingCurves.everySteps
        guard every > 0 else { return nil }
        return TrainingCurveRecorder(trainer: trainer, everySteps: every, replicate: replicate, run: run,
                                     spawnEpoch: spawnEpoch, path: path)
    }

    func trainChild(_ r: Int, _ s: Int, _ k: Int) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let final = paths.childCheckpoint(replicate: r, spawn: spawn, child: k)
        let trainer = makeTrainer(identity: TrainingIdentity(seed: config.seed, replicate: r, child: childNumber(spawn: s, child: k)))
        let state = paths.childTrainingState(replicate: r, spawn: spawn, child: k)
        if FileManager.default.fileExists(atPath: state) {
            try Checkpoint.read(state).restore(into: trainer)
        } else {
            let source = paths.parentCheckpoint(replicate: r, epoch: spawn)
            try waitFor(source)
            try Checkpoint.read(source).restore(into: trainer)   // weights, BN state, optimiser, step
        }
        let curve = curveRecorder(trainer, replicate: r, run: "child-\(k)", spawnEpoch: spawn,
                                  path: paths.childTrainingCurve(replicate: r, spawn: spawn, child: k))
        try trainer.train(until: trainer.finalStep, callbacks: (curve.map { [$0] } ?? []) + [
            RollingState(path: state),
            StopOnRequest(path: state, task: "task \(ExperimentTask.child(replicate: r, spawn: s, child: k).id)", curve: curve,
                          shouldStop: shouldStop),
            ProgressPrinter(label: "r\(r) spawn \(spawn) child \(k)", endStep: trainer.finalStep, interval: 30),
        ])
        try Checkpoint(trainer: trainer).write(to: final)
        var record = TaskRecord(id: ExperimentTask.child(replicate: r, spawn: s, child: k).id)
        record.trainingCurves = curve?.rows ?? []
        record.finalTestError = evaluate(trainer.network, on: test).errorRate
        return record
    }

    func loadNetwork(_ path: String) throws -> Network<Float> {
        try waitFor(path)
        return try Checkpoint.read(path).makeNetwork()
    }

    /// The barrier's BatchNorm policy `policy` with its batches (`barrier.recompute_batches`).
    func interpolationBatchNorm(_ policy: BatchNormPolicy) -> BarrierBatchNorm {
        policy == .interpolate
            ? .interpolate
            : .recompute(batches: config.barrier.recomputeBatches, batchSize: recipe.batchSize, seed: config.seed)
    }

    /// The re-estimation of `analysis.batchnorm: recompute`: `analysis.recompute_batches` batches of
    /// `recipe.batch_size` training examples, the same procedure (and random stream) as the barrier's.
    func analysisRecomputer() throws -> BatchNormRecomputer {
        try BatchNormRecomputer(data: train, batches: config.analysis.recomputeBatches, batchSize: recipe.batchSize,
                                seed: config.seed)
    }

    /// Prepares `net` for an inference-mode analysis by `analysis.batchnorm`: `recompute` resets and
    /// re-estimates its BatchNorm running statistics on fixed training batches; `running` keeps the
    /// checkpoint's. A network without BatchNorm is untouched. Returns `net`.
    @discardableResult
    public func prepareForAnalysis(_ net: Network<Float>) throws -> Network<Float> {
        if config.analysis.batchnorm == .recompute && !net.batchNorms.isEmpty {
            try analysisRecomputer().recompute(net)
        }
        return net
    }

    /// The network of checkpoint `path`, prepared for inference-mode analysis (`prepareForAnalysis`).
    public func loadForAnalysis(_ path: String) throws -> Network<Float> {
        try prepareForAnalysis(try loadNetwork(path))
    }

    /// The `batch_norm` column of a table measured on `net`: the analysis policy, `none` without BatchNorm.
    func batchNormLabel(_ net: Network<Float>) -> String {
        net.batchNorms.isEmpty ? "none" : config.analysis.batchnorm.rawValue
    }

    /// The barrier and the pair metrics of two children. The barrier reads the checkpoints as they
    /// are (its policy sets the statistics along the line); for BatchNorm networks it is measured
    /// under both policies, the configured one filling the headline columns and `test_error_a/b`
    /// (its end points). The other metrics see the children prepared for analysis.
    func comparePair(_ r: Int, _ s: Int, _ a: Int, _ b: Int) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let na = try loadNetwork(paths.childCheckpoint(replicate: r, spawn: spawn, child: a))
        let nb = try loadNetwork(paths.childCheckpoint(replicate: r, spawn: spawn, child: b))
        let primary = config.barrier.bnPolicy
        // BatchNorm networks: both policies, the configured one first; otherwise the policy is moot.
        let policies = na.batchNorms.isEmpty ? [primary] : [primary] + BatchNormPolicy.allCases.filter { $0 != primary }
        var curves: [BatchNormPolicy: InterpolationCurve] = [:]
        for policy in policies {
            curves[policy] = InterpolationCurve(na, nb, gridPoints: config.barrier.points, test: test, train: barrierTrain,
                                                batchNorm: interpolationBatchNorm(policy), recomputeFrom: train, loss: recipe.loss)
        }
        let curve = curves[primary]!
        try prepareForAnalysis(na); try prepareForAnalysis(nb)
        let weights = WeightDistance(na, nb)
        let function = FunctionDistance(na, nb, on: test)
        let relu = ReLUPattern.distance(ReLUPattern(na, probe: probe), ReLUPattern(nb, probe: probe))
        let align = LogitGradientCentroids.alignment(LogitGradientCentroids(na, probe: probe),
                                                     LogitGradientCentroids(nb, probe: probe))
        func ends(_ c: InterpolationCurve) -> (Double, Double) { (c.points.first!.testError, c.points.last!.testError) }
        var record = TaskRecord(id: ExperimentTask.pair(replicate: r, spawn: s, a: a, b: b).id)
        var row = ChildPairRow(
            replicate: r, spawnEpoch: spawn, childA: a, childB: b, testErrorA: ends(curve).0, testErrorB: ends(curve).1,
            barrierTestErrorMaxMinusMean: curve.testError.maxMinusMean, barrierTestErrorMaxMinusLine: curve.testError.maxMinusLine,
            barrierTrainErrorMaxMinusMean: curve.trainError.maxMinusMean, barrierTrainErrorMaxMinusLine: curve.trainError.maxMinusLine,
            barrierTestLossMaxMinusMean: curve.testLoss.maxMinusMean, barrierTestLossMaxMinusLine: curve.testLoss.maxMinusLine,
            barrierBatchNorm: curve.batchNormLayers == 0 ? "none" : curve.batchNorm.description,
            weightL2: weights.l2, weightL2Normalized: weights.normalized, weightCosine: weights.cosine,
            functionDisagreement: function.disagreement, functionDisagreementOverIndependent: function.normalized,
            reluPatternDistance: relu, logitGradientAlignment: align.alignment, batchNorm: batchNormLabel(na))
        if !na.batchNorms.isEmpty {
            for policy in policies { row.setBarrier(policy, curves[policy]!) }
        }
        record.pairs = [row]
        for policy in policies {
            let c = curves[policy]!
            let label = c.batchNormLayers == 0 ? "none" : policy.rawValue
            record.curves += c.points.map {
                BarrierCurveRow(replicate: r, spawnEpoch: spawn, childA: a, childB: b, batchNorm: label, alpha: $0.alpha,
                                testError: $0.testError, testLoss: $0.testLoss, trainError: $0.trainError, trainLoss: $0.trainLoss)
            }
        }
        return record
    }

    func measureTimeline(_ r: Int, _ t: Int) throws -> TaskRecord {
        let time = measurementTimes[t]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let tr = evaluate(net, on: train, loss: recipe.loss), te = evaluate(net, on: test, loss: recipe.loss)
        var record = TaskRecord(id: ExperimentTask.timeline(replicate: r, time: t).id)
        record.timeline = [ParentTimelineRow(replicate: r, epoch: time, trainError: tr.errorRate, trainLoss: tr.meanLoss,
                                             testError: te.errorRate, testLoss: te.meanLoss, batchNorm: batchNormLabel(net))]
        return record
    }

    func compareTimes(_ r: Int) throws -> TaskRecord {
        var patterns: [ReLUPattern] = [], centroids: [LogitGradientCentroids] = [], label = "none"
        for time in measurementTimes {
            let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
            label = batchNormLabel(net)
            patterns.append(ReLUPattern(net, probe: probe))
            centroids.append(LogitGradientCentroids(net, probe: probe))
        }
        var record = TaskRecord(id: ExperimentTask.timelinePairs(replicate: r).id)
        for i in measurementTimes.indices {
            for j in i..<measurementTimes.count {
                record.timelinePairs.append(TimelinePairRow(
                    replicate: r, epochA: measurementTimes[i], epochB: measurementTimes[j],
                    reluPatternDistance: ReLUPattern.distance(patterns[i], patterns[j]),
                    logitGradientAlignment: LogitGradientCentroids.alignment(centroids[i], centroids[j]).alignment,
                    batchNorm: label))
            }
        }
        return record
    }
}

/// Writes a checkpoint (with optimiser state, so children can continue from it) when training
/// reaches each planned step; `path(time)` names the file.
final class TimedCheckpoints: TrainingCallback {
    let saves: [(time: Double, step: Int)]
    let path: (Double) -> String
    init(saves: [(time: Double, step: Int)], path: @escaping (Double) -> String) { self.saves = saves; self.path = path }

    func save(_ t: Trainer) throws {
        for s in saves where s.step == t.step { try Checkpoint(trainer: t).write(to: path(s.time)) }
    }
    func afterStep(_ t: Trainer, summary: LossSummary) throws { try save(t) }
}

/// Overwrites the rolling resume state at every epoch end.
final class RollingState: TrainingCallback {
    let path: String
    init(path: String) { self.path = path }
    func afterStep(_ t: Trainer, summary: LossSummary) throws {
        if t.step % t.stepsPerEpoch == 0 { try Checkpoint(trainer: t).write(to: path) }
    }
}
