import Foundation

/// The sizes of an experiment's data that its plan depends on — counts only, so the plan (and
/// `ntkscape plan`) needs no data: `ExperimentRunner` takes them from the loaded data, `nominal`
/// from the data set's published sizes.
public struct PlanSizes: Sendable, Equatable {
    public var trainExamples: Int
    public var testExamples: Int
    /// Examples of the probe set (`probe_size`, at most the training examples).
    public var probeExamples: Int
    /// Training examples of the barrier curves (`barrier.train_subset`).
    public var barrierTrainExamples: Int
    public var classes: Int
    public var input: Shape
    /// Examples of the smallest class of the training subset (caps the kernel machine's draws).
    public var smallestClass: Int

    public init(trainExamples: Int, testExamples: Int, probeExamples: Int, barrierTrainExamples: Int, classes: Int,
                input: Shape, smallestClass: Int) {
        self.trainExamples = trainExamples; self.testExamples = testExamples; self.probeExamples = probeExamples
        self.barrierTrainExamples = barrierTrainExamples; self.classes = classes; self.input = input
        self.smallestClass = smallestClass
    }

    /// Published sizes of the real data sets' splits (train, test).
    static func publishedCounts(_ kind: DatasetKind) -> (train: Int, test: Int)? {
        switch kind {
        case .cifar10, .cifar100: return (50_000, 10_000)
        case .mnist, .fashionMNIST: return (60_000, 10_000)
        case .synthetic: return nil
        }
    }

    /// The sizes of `config`'s data from the data set's published split sizes and the subsets the
    /// experiment asks for, without reading the data (the smallest class taken as an equal share):
    /// what `ntkscape plan` uses when the data are not on this machine. nil for the synthetic data.
    public static func nominal(_ config: ExperimentConfig) -> PlanSizes? {
        let c = config.resolved()
        guard let counts = publishedCounts(c.dataset.kind), let shape = c.dataset.kind.imageShape,
              let classes = c.dataset.kind.classCount else { return nil }
        let train = c.dataset.trainSubset > 0 ? min(c.dataset.trainSubset, counts.train) : counts.train
        let test = c.dataset.testSubset > 0 ? min(c.dataset.testSubset, counts.test) : counts.test
        return PlanSizes(trainExamples: train, testExamples: test, probeExamples: min(c.probeSize, train),
                         barrierTrainExamples: min(c.barrier.trainSubset, train), classes: classes,
                         input: Shape(shape.channels, shape.height, shape.width), smallestClass: train / classes)
    }
}

/// The assumed machine behind the groups' communication cost: named, printed by `ntkscape plan`
/// and documented (docs/performance.md, "Plan"), not measured; the experiment's `plan` section
/// (`PlanSection`) states other values. Per optimiser step a group of `g`
/// ranks exchanges its shard gradients (an allgather of `S` shards of `P` Float parameters: each
/// rank receives `(g-1)/g S P 4` bytes) and runs two small allreduces per BatchNorm layer (the batch
/// statistics forward, the gradient sums backward); each collective costs `ceil(log2 g)` latencies.
public struct NetworkModel: Sendable, Equatable {
    /// Point-to-point bandwidth per rank, bytes/s (default 5 GB/s: an InfiniBand-class link shared
    /// by a few ranks).
    public var bandwidth: Double
    /// Latency of one stage of a small collective, seconds (default 20 us).
    public var latency: Double
    /// One rank's training throughput in FLOP/s, to turn seconds into the cost model's units (one
    /// training-example pass = `Network.trainingFlops`).
    public var rankFlops: Double

    public init(_ section: PlanSection = PlanSection()) {
        bandwidth = section.bandwidthGbS * 1e9
        latency = section.latencyUs * 1e-6
        rankFlops = section.rankTflops * 1e12
    }

    /// Seconds of communication per optimiser step of a group of `g` ranks training a network of
    /// `parameters` parameters and `batchNormLayers` BatchNorm layers cut into `shards` shards.
    public func secondsPerStep(ranks g: Int, parameters: Int, batchNormLayers: Int, shards: Int) -> Double {
        guard g > 1 else { return 0 }
        let stages = Double(Int.bitWidth - (g - 1).leadingZeroBitCount)   // ceil(log2 g)
        let bytes = Double(g - 1) / Double(g) * Double(shards * parameters * 4)
        return bytes / bandwidth + stages * latency * Double(1 + 2 * batchNormLayers)
    }

    /// The assumptions as one line for `ntkscape plan`.
    public var summary: String {
        String(format: "network model (plan section): %g GB/s per rank, %g us per collective stage, %g TFLOP/s per rank; ",
               bandwidth / 1e9, latency * 1e6, rankFlops / 1e12)
            + "per step a group of g ranks allgathers S shard gradients (S P 4 bytes) and runs 2 allreduces per BatchNorm layer, "
            + "ceil(log2 g) stages each; collective NTK/Hessian tasks scale ideally up to their parallelism "
            + "(Hessian shards, Gram row blocks)"
    }
}

/// The static schedule every rank computes alike, a pure function of the experiment, its data's
/// sizes and the rank count: the pipelined tasks over the ranks (`TaskPlan`, from the task graph and
/// the cost model, CostModel.swift), training tasks on data-parallel groups, then the collective
/// NTK/Hessian tasks over groups of ranks.
public struct ExperimentPlanner: Sendable {
    public let config: ExperimentConfig
    public let graph: TaskGraph
    public let sizes: PlanSizes
    public let network: NetworkModel
    /// Parameters, training FLOPs per example and BatchNorm layers of the experiment's model.
    public let parameters: Int, trainingFlops: Int, batchNormLayers: Int

    public init(config: ExperimentConfig, sizes: PlanSizes) {
        self.config = config.resolved()
        self.sizes = sizes
        network = NetworkModel(self.config.plan)
        graph = TaskGraph(self.config)
        let net = self.config.model.build(input: sizes.input, classes: sizes.classes, as: Float.self)
        parameters = net.parameterCount
        trainingFlops = max(net.trainingFlops, 1)
        batchNormLayers = net.batchNorms.count
    }

    var recipe: TrainingRecipe { config.trainingRecipe }

    /// The largest group a training task may use on `ranks` ranks: `recipe.shards` (a network's batch
    /// has that many shards), `plan.group_ranks` when set, and the rank count, rounded down
    /// to a power of two.
    public func maxTrainingGroup(ranks: Int) -> Int {
        var g = min(recipe.shards, ranks)
        if config.plan.groupRanks > 0 { g = min(g, config.plan.groupRanks) }
        var p = 1
        while p * 2 <= g { p *= 2 }
        return p
    }

    /// The pipelined tasks with their costs and group durations, in plan order.
    public func tasks(ranks: Int = 1) -> [(task: ExperimentTask, planned: PlannedTask)] {
        let largest = maxTrainingGroup(ranks: ranks)
        return graph.pipelined.map { node in
            let cost = cost(of: node.task)
            var groups: [(ranks: Int, duration: Double)] = []
            if ExperimentRunner.trainsWithGroups(node.task), let (divisible, steps) = trainingWork(node.task) {
                var g = 2
                while g <= largest {
                    let comm = network.secondsPerStep(ranks: g, parameters: parameters, batchNormLayers: batchNormLayers,
                                                      shards: recipe.shards) * network.rankFlops / Double(trainingFlops)
                    groups.append((g, cost - divisible + divisible / Double(g) + steps * comm))
                    g *= 2
                }
            }
            return (node.task, PlannedTask(id: node.task.id, cost: cost, needs: node.needs, groups: groups))
        }
    }

    /// The collective NTK and Hessian tasks with their costs on one rank, run after the pipelined ones.
    public func kernelTasks(groupRanks: Int = 1) -> [(task: ExperimentTask, planned: PlannedTask)] {
        graph.collective.map { ($0, PlannedTask(id: $0.id, cost: cost(of: $0, groupRanks: groupRanks))) }
    }

    /// The plan of the pipelined tasks on `ranks` ranks: with groups (`groups: true`, the run's plan)
    /// training tasks may run on data-parallel groups; the one-rank plan when it is no longer.
    public func plan(ranks: Int, groups: Bool = true) -> TaskPlan {
        let planned = tasks(ranks: ranks).map(\.planned)
        let single = TaskPlan(tasks: planned, ranks: ranks)
        guard groups, maxTrainingGroup(ranks: ranks) > 1 else { return single }
        let grouped = TaskPlan(tasks: planned, ranks: ranks, groups: true)
        return grouped.makespan <= single.makespan ? grouped : single
    }

    // MARK: The collective phase

    /// Ranks `task` can use at once: the Hessian's example shards, a Gram's row blocks.
    func parallelism(of task: ExperimentTask, groupRanks: Int) -> Int {
        let nb = config.ntk.blockSize > 0 ? config.ntk.blockSize : GramLayout.defaultBlockSize(classes: sizes.classes)
        func blocks(_ m: Int) -> Int { max(1, (m * sizes.classes + nb - 1) / nb) }
        switch task {
        case .hessian: return max(1, config.hessian.shards)
        case .kernelTimeline, .kernelChildren: return blocks(sizes.probeExamples)
        case .kernelMachine: return blocks(machineExamples(groupRanks: groupRanks))
        default: return 1
        }
    }

    /// The time of collective `task` on a group of `g` ranks: its cost over the ranks it can use.
    func kernelDuration(_ task: ExperimentTask, groupRanks g: Int) -> Double {
        cost(of: task, groupRanks: g) / Double(min(g, parallelism(of: task, groupRanks: g)))
    }

    /// The number of NTK/Hessian groups on `ranks` ranks (ranks `r` with `r % groups == k` form group
    /// `k`): `ntk.group_size` when set; otherwise (0, automatic) the group size, from 1, 2, 4, ... and
    /// all ranks, whose NTK units fit `ntk.memory_gb` on every rank (`MemoryEstimate`) and that ends
    /// the collective phase first (ties: the larger group, more memory per Gram).
    public func kernelGroups(ranks: Int) -> Int {
        if config.ntk.groupSize > 0 { return max(1, ranks / min(config.ntk.groupSize, ranks)) }
        if graph.collective.isEmpty { return 1 }
        var candidates: [Int] = []
        var g = 1
        while g < ranks { candidates.append(g); g *= 2 }
        candidates.append(ranks)
        let fitting = candidates.filter { (try? memoryEstimate(groupRanks: $0).check()) != nil }
        // None fits: all ranks in one group, the most memory per Gram (the set-up check refuses with the numbers).
        guard !fitting.isEmpty else { return 1 }
        let best = fitting.min { a, b in
            (kernelPhase(groups: ranks / a, ranks: ranks), -a) < (kernelPhase(groups: ranks / b, ranks: ranks), -b)
        }!
        return ranks / best
    }

    /// Ranks of each NTK group (the smallest, when the ranks do not divide evenly).
    public func kernelGroupRanks(ranks: Int) -> Int { max(1, ranks / kernelGroups(ranks: ranks)) }

    /// The kernel tasks of each of `groups` groups on `ranks` ranks: longest first onto the group
    /// that ends it first (ties: lower group).
    public func kernelAssignment(groups: Int, ranks: Int) -> [[ExperimentTask]] {
        kernelSchedule(groups: groups, ranks: ranks).tasks
    }

    /// Simulated time of the collective phase with `groups` groups on `ranks` ranks.
    public func kernelPhase(groups: Int, ranks: Int) -> Double { kernelSchedule(groups: groups, ranks: ranks).load.max() ?? 0 }

    func kernelSchedule(groups: Int, ranks: Int) -> (tasks: [[ExperimentTask]], load: [Double]) {
        let g = max(1, ranks / groups)
        var load = [Double](repeating: 0, count: groups), out = [[ExperimentTask]](repeating: [], count: groups)
        let timed = graph.collective.map { ($0, kernelDuration($0, groupRanks: g)) }
            .sorted { ($1.1, $0.0.id) < ($0.1, $1.0.id) }
        for (task, duration) in timed {
            let k = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            load[k] += duration
            out[k].append(task)
        }
        return (out, load)
    }

    /// The makespan of the whole experiment on `ranks` ranks: the pipelined plan, then the collective phase.
    public func makespan(ranks: Int, groups: Bool = true) -> Double {
        plan(ranks: ranks, groups: groups).makespan + kernelPhase(groups: kernelGroups(ranks: ranks), ranks: ranks)
    }

    // MARK: Memory

    /// The per-rank memory estimate with NTK groups of `groupRanks` ranks.
    public func memoryEstimate(groupRanks: Int) -> MemoryEstimate {
        let s = MemoryEstimate.Sizes(model: config.model, input: sizes.input, classes: sizes.classes,
                                     trainExamples: sizes.trainExamples, testExamples: sizes.testExamples,
                                     machineExamples: machineExamples(groupRanks: groupRanks))
        return MemoryEstimate(config: config, sizes: s, groupRanks: groupRanks)
    }

    /// Bytes of the checkpoints the run writes: the parent at every checkpoint time and its rolling
    /// state, every child's final weights and rolling state, the linearised runs' low-learning-rate
    /// children; a checkpoint holds the parameters and BatchNorm state as F32 (4 P bytes, plus
    /// optimiser state in rolling states) and a header of at most 64 KiB.
    public func checkpointBytes() -> (count: Int, bytes: Int) {
        let p = parameters
        let slots = config.recipe.optimizer == .adam ? 2 : 1
        let weights = 4 * p + 65_536, state = 4 * p * (1 + slots) + 65_536
        let spawns = spawnTimes.count * childrenPerSpawn
        let linearized = config.linearized.times.count * config.linearized.child.seeds
        let perReplicate = (config.parentCheckpointTimes.count, 1 + spawns + linearized, spawns + linearized)
        let count = config.replicates * (perReplicate.0 + perReplicate.1 + perReplicate.2)
        let bytes = config.replicates * (perReplicate.0 * weights + perReplicate.1 * state + perReplicate.2 * weights)
        return (count, bytes)
    }

    /// Examples of each kernel-machine draw for a group of `ranks` ranks: `kernel_machine.train_examples`,
    /// or (0) the most whose matrices fit in half of the group's `ntk.memory_gb`: the Gram, its fit
    /// part, the eigendecomposition's copy, eigenvectors and workspace, ~5 x 8 (nC)^2 bytes over the
    /// group; a multiple of C, at most C x the smallest class of the training subset.
    public func machineExamples(groupRanks ranks: Int) -> Int {
        if config.kernelMachine.trainExamples > 0 { return config.kernelMachine.trainExamples }
        let c = sizes.classes
        let available = c * sizes.smallestClass
        let budget = 0.5 * config.ntk.memoryGb * 1_073_741_824 * Double(max(1, ranks))
        let rows = (budget / 40).squareRoot()
        var n = min(available, max(2, Int(rows) / (c * c)) * c)
        // The Gram is built under the serial rule of GramPlan (3 Grams per rank whatever the group's
        // size): fewer examples until it fits, so a large group is not refused after training.
        let nb = config.ntk.blockSize > 0 ? config.ntk.blockSize : GramLayout.defaultBlockSize(classes: c)
        let budgetBytes = Int(config.ntk.memoryGb * 1_073_741_824)
        while n > 2 * c && GramPlan.minimumBytes(layout: GramLayout(examples: n, classes: c, blockSize: nb, processes: 1, rank: 0),
                                                 parameters: parameters) > budgetBytes {
            n -= c
        }
        return n
    }
}

/// The runner's plan: its planner on `comm`'s ranks.
extension ExperimentRunner {
    /// The pipelined tasks with their costs, in plan order.
    public func tasks() -> [(task: ExperimentTask, planned: PlannedTask)] { planner.tasks(ranks: comm.size) }

    /// The collective NTK and Hessian tasks with their costs, run after the pipelined ones by the NTK groups.
    public func kernelTasks() -> [(task: ExperimentTask, planned: PlannedTask)] {
        planner.kernelTasks(groupRanks: kernelGroupRanks)
    }

    public func plan() -> TaskPlan { planner.plan(ranks: comm.size) }

    /// Ranks per NTK group and the number of groups for `ranks` ranks (`ExperimentPlanner.kernelGroups`).
    public func kernelGroups(ranks: Int) -> Int { planner.kernelGroups(ranks: ranks) }

    /// Ranks of the NTK groups for `comm`'s size.
    var kernelGroupRanks: Int { planner.kernelGroupRanks(ranks: comm.size) }

    /// The kernel tasks of each group on `comm`'s ranks.
    public func kernelAssignment(groups: Int) -> [[ExperimentTask]] { planner.kernelAssignment(groups: groups, ranks: comm.size) }

    /// Examples of each kernel-machine draw for a group of `ranks` ranks (`ExperimentPlanner.machineExamples`).
    func machineExamples(groupRanks ranks: Int) -> Int { planner.machineExamples(groupRanks: ranks) }
}
