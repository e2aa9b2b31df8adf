import Foundation

/// Per-rank memory of an experiment, in bytes, from its settings and the data's sizes alone — the
/// one estimate behind the set-up check of `ntkscape run` (`check`, before any training) and the
/// memory that `ntkscape plan` prints and asks Slurm for.
///
/// Phases (a rank is in one at a time; the peak is the largest):
///
///     data       (train + test) x (C H W + 1) x 4                 every rank holds both splits
///     training   parameters, gradients, optimiser state (SGD 1, Adam 2 slots), 2 more networks
///                (pair metrics: two children and the interpolated point) 4 P each;
///                activations and their gradients 2 x 4 x batch x A (A: activations per example);
///                data parallelism: a replica per shard (parameters, gradients) and the shards'
///                gradients exchanged, 3 x shards x 4 P
///     NTK unit   every Gram it holds at once: the finished ones (each (mC)^2 x 8 bytes, a rank
///                of a group of p holding ceil(blocks/p) blocks of nb rows), the parent
///                timeline's traced m x m copies, and one Gram under construction (`GramPlan`)
///     Hessian    Lanczos vectors (iterations + 4) x P x 8, four activation buffers per example
///                of a shard (forward-over-reverse), 4 networks' worth of parameters
///     plane      the basis in Double 3 x P x 8, 6 networks, activations and tangents of a batch
///     t-SNE      the prediction vectors (points x examples C x 8) and 3 points^2 x 8 of affinities
///     second     (`linearized.second_order`) the second-order Taylor model: its network copy,
///     order      w0, w, d, gradient and optimiser state, (6 + slots) x 4 P; activations, their
///                gradients, first and second tangents and the tangents' gradients, 5 x 4 x batch x A
///
/// `check` refuses an experiment whose NTK units cannot fit `ntk.memory_gb`: the Grams a unit keeps
/// plus the least one Gram's construction needs (`GramPlan.minimumBytes`) must fit on each rank of
/// the smallest NTK group.
public struct MemoryEstimate: Sendable {
    public struct Item: Sendable, Equatable {
        public let label: String
        public let bytes: Int
    }

    public struct Phase: Sendable {
        /// `training`, `ntk-timeline`, `ntk-children`, `ntk-machine`, `hessian`, `second-order`, `plane`, `trajectories`.
        public let name: String
        public let items: [Item]
        /// For NTK units: bytes that must fit `ntk.memory_gb` (kept Grams + the least construction).
        public let requiredBytes: Int?
        public var bytes: Int { items.reduce(0) { $0 + $1.bytes } }
    }

    /// The sizes the estimate needs; `ExperimentRunner` fills them from the loaded data.
    public struct Sizes: Sendable {
        public var parameters: Int
        public var activationsPerExample: Int
        public var inputCount: Int
        public var classes: Int
        public var trainExamples: Int
        public var testExamples: Int
        /// Examples of each kernel-machine draw (`ExperimentRunner.machineExamples`).
        public var machineExamples: Int

        public init(parameters: Int, activationsPerExample: Int, inputCount: Int, classes: Int,
                    trainExamples: Int, testExamples: Int, machineExamples: Int) {
            self.parameters = parameters; self.activationsPerExample = activationsPerExample
            self.inputCount = inputCount; self.classes = classes
            self.trainExamples = trainExamples; self.testExamples = testExamples
            self.machineExamples = machineExamples
        }

        /// Sizes of `model` on data of `input` shape and `classes` classes.
        public init(model: ModelKind, input: Shape, classes: Int, trainExamples: Int, testExamples: Int, machineExamples: Int) {
            let net = model.build(input: input, classes: classes, as: Float.self)
            self.init(parameters: net.parameterCount,
                      activationsPerExample: net.chain.layers.reduce(input.count) { $0 + $1.outShape.count },
                      inputCount: input.count, classes: classes, trainExamples: trainExamples,
                      testExamples: testExamples, machineExamples: machineExamples)
        }
    }

    public let phases: [Phase]
    public let budgetBytes: Int
    /// `ntk.memory_gb` as written.
    public let memoryGb: Double
    public let groupRanks: Int

    /// The phase with the largest per-rank memory.
    public var peak: Phase { phases.max { $0.bytes < $1.bytes }! }

    /// Bytes of one Gram of `examples` x `classes` rows, and the share of it one rank of `ranks` holds.
    public static func gramBytes(examples: Int, classes: Int) -> Int { (examples * classes) * (examples * classes) * 8 }
    public static func localGramBytes(examples: Int, classes: Int, blockSize: Int, ranks: Int) -> Int {
        let n = examples * classes, blocks = (n + blockSize - 1) / blockSize
        return min(n, (blocks + ranks - 1) / ranks * blockSize) * n * 8
    }

    public init(config: ExperimentConfig, sizes s: Sizes, groupRanks: Int) {
        let config = config.resolved()
        let p = s.parameters, c = s.classes, ranks = max(1, groupRanks)
        let budget = Int(config.ntk.memoryGb * 1_073_741_824)
        budgetBytes = budget
        memoryGb = config.ntk.memoryGb
        self.groupRanks = ranks
        let data = Item(label: "data (\(s.trainExamples) + \(s.testExamples) examples)",
                        bytes: (s.trainExamples + s.testExamples) * (s.inputCount + 1) * 4)
        var list: [Phase] = []

        let slots = config.recipe.optimizer == .adam ? 2 : 1, shards = min(config.recipe.shards, config.recipe.batchSize)
        list.append(Phase(name: "training", items: [
            data,
            Item(label: "parameters, gradients, \(config.recipe.optimizer.rawValue) state", bytes: (2 + slots) * p * 4),
            Item(label: "2 more networks (pair metrics)", bytes: 2 * p * 4),
            Item(label: "activations at batch \(config.recipe.batchSize)", bytes: 2 * 4 * config.recipe.batchSize * s.activationsPerExample),
            // DataParallelStep: a rank computing every shard (a group of one) keeps a replica per
            // shard; a group exchanges every shard's gradient.
            Item(label: "\(shards) shard replicas (parameters, gradients) and the shard-gradient exchange", bytes: 3 * shards * p * 4),
        ], requiredBytes: nil))

        let nb = config.ntk.blockSize > 0 ? config.ntk.blockSize : GramLayout.defaultBlockSize(classes: c)
        /// An NTK unit keeping `kept` Grams of `m` examples at once — `kept - 1` finished, this rank's
        /// share, and the last one under construction (whole, `GramPlan`'s serial rule) — and
        /// `traced` logit-traced `m x m` copies (the timeline's traced kernel distances).
        func unit(_ name: String, examples m: Int, kept: Int, traced: Int = 0, what: String) -> Phase {
            let layout = GramLayout(examples: max(1, m), classes: c, blockSize: nb, processes: ranks, rank: 0)
            let local = Self.localGramBytes(examples: m, classes: c, blockSize: nb, ranks: ranks)
            let localTraced = Self.localGramBytes(examples: m, classes: 1, blockSize: max(1, nb / c), ranks: ranks)
            let minimum = GramPlan.minimumBytes(layout: layout, parameters: p)
            let planned = (try? GramPlan(layout: layout, parameters: p, budgetBytes: budget))?.plannedBytes ?? minimum
            var items = [data]
            if kept > 1 {
                items.append(Item(label: "\(kept - 1) kept \(what) Gram(s) of \(m * c) x \(m * c), this rank's share of \(ranks)",
                                  bytes: (kept - 1) * local))
            }
            if traced > 0 {
                items.append(Item(label: "\(traced) traced Gram(s) of \(m) x \(m), this rank's share of \(ranks)", bytes: traced * localTraced))
            }
            items.append(Item(label: "one Gram under construction (Gram, Jacobian chunk, eigensolver)", bytes: planned))
            return Phase(name: name, items: items, requiredBytes: (kept - 1) * local + traced * localTraced + minimum)
        }
        let m = config.probeSize
        let gramTimes = config.parentGramTimes.count
        // kernelTimeline holds the Gram of every parent Gram time and, for the kernel distances, their traced copies.
        if gramTimes > 0 { list.append(unit("ntk-timeline", examples: m, kept: gramTimes, traced: gramTimes, what: "parent")) }
        if config.ntk.children { list.append(unit("ntk-children", examples: m, kept: config.children, what: "child")) }
        if !config.kernelMachine.times.isEmpty {
            let n = s.machineExamples
            var machine = unit("ntk-machine", examples: n, kept: 1, what: "machine")
            // The fit Gram, its eigendecomposition's copy, eigenvectors and workspace: ~5 Grams over the group.
            let solve = 5 * Self.localGramBytes(examples: n, classes: c, blockSize: nb, ranks: ranks)
            machine = Phase(name: machine.name, items: [data, Item(label: "kernel machine of \(n) examples: Gram and eigensolver (~5 Grams of \(n * c) x \(n * c) over \(ranks) rank(s))",
                                                               bytes: max(solve, machine.items.last!.bytes))],
                            requiredBytes: machine.requiredBytes)
            list.append(machine)
        }
        if !config.hessian.times.isEmpty {
            let h = config.hessian, examples = min(h.examples, s.trainExamples)
            let shard = (examples + h.shards - 1) / max(1, h.shards)
            list.append(Phase(name: "hessian", items: [
                data,
                Item(label: "Lanczos vectors (\(h.iterations + 4) of \(p))", bytes: (h.iterations + 4) * p * 8),
                Item(label: "networks", bytes: 4 * p * 4),
                Item(label: "activations, gradients and tangents of a shard of \(shard)", bytes: 4 * 4 * shard * s.activationsPerExample),
            ], requiredBytes: nil))
        }
        if !config.plane.spawnTimes.isEmpty {
            list.append(Phase(name: "plane", items: [
                data,
                Item(label: "basis and origin in Double (3 x \(p))", bytes: 3 * p * 8),
                Item(label: "networks (parent, 2 children, grid point, linearised copy)", bytes: 6 * p * 4),
                Item(label: "activations and tangents at batch \(metricBatchSize)", bytes: 3 * 4 * metricBatchSize * s.activationsPerExample),
            ], requiredBytes: nil))
        }
        if config.trajectories.enabled {
            let n = config.trajectoryPoints, d = config.trajectories.examples * c
            list.append(Phase(name: "trajectories", items: [
                data,
                Item(label: "\(n) prediction vectors of \(d) values (Double)", bytes: n * d * 8),
                Item(label: "t-SNE affinities and distances (\(n) x \(n))", bytes: 3 * n * n * 8),
            ], requiredBytes: nil))
        }
        let lin = config.linearized
        if lin.secondOrder && !lin.times.isEmpty {
            let batch = lin.batchSize > 0 ? lin.batchSize : config.recipe.batchSize
            let linSlots = lin.optimizer == .adam ? 2 : 1
            list.append(Phase(name: "second-order", items: [
                data,
                Item(label: "network copy, w0, w, d, gradients, \(lin.optimizer.rawValue) state", bytes: (6 + linSlots) * p * 4),
                Item(label: "activations, gradients, two tangents and their gradients at batch \(batch)",
                     bytes: 5 * 4 * batch * s.activationsPerExample),
            ], requiredBytes: nil))
        }
        phases = list
    }

    /// Refuses when an NTK unit's kept Grams and one Gram's construction do not fit `ntk.memory_gb`
    /// on each rank of the group; the message names the numbers, the settings and the fix.
    public func check() throws {
        for phase in phases {
            guard let required = phase.requiredBytes, required > budgetBytes else { continue }
            let detail = phase.items.dropFirst().map { "\($0.label): \(Self.format($0.bytes))" }.joined(separator: "; ")
            let setting: String
            switch phase.name {
            case "ntk-timeline": setting = "probe_size or the number of ntk.times (with their velocity times)"
            case "ntk-children": setting = "probe_size or children, or set ntk.children: false"
            default: setting = "kernel_machine.train_examples"
            }
            throw ExperimentConfigError(
                kind: .invalidValue, file: nil, keyPath: "ntk.memory_gb",
                problem: "is \(canonicalNumber(memoryGb)) GiB per rank, but the \(phase.name) unit needs "
                    + "at least \(Self.format(required)) on each of \(groupRanks) rank(s) of its NTK group (\(detail)).",
                fix: "raise ntk.memory_gb to at least \(Self.gibCeiling(required)), use more ranks per NTK group (ntk.group_size), "
                    + "or lower \(setting); a smaller ntk.block_size also shrinks the Jacobian rows.")
        }
    }

    /// `1.50 GiB`, `12.0 MiB`, `512 KiB`: never `0.00 GiB` for a small amount.
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= 1_073_741_824 { return String(format: "%.2f GiB", b / 1_073_741_824) }
        if b >= 1_048_576 { return String(format: "%.1f MiB", b / 1_048_576) }
        return String(format: "%.0f KiB", max(1, (b / 1024).rounded(.up)))
    }

    /// The smallest number of GiB, in tenths, holding `bytes` (for a suggested setting).
    static func gibCeiling(_ bytes: Int) -> String {
        canonicalNumber((Double(bytes) / 1_073_741_824 * 10).rounded(.up) / 10)
    }

    /// Lines for `ntkscape plan`: each phase's per-rank bytes and its parts.
    public var lines: [String] {
        phases.map { phase in
            "  \(phase.name): \(Self.format(phase.bytes)) ("
                + phase.items.map { "\($0.label) \(Self.format($0.bytes))" }.joined(separator: ", ") + ")"
        }
    }
}
