import Foundation
import Yams

/// Whether the training data are augmented (pad-4 random crop + horizontal flip).
public enum AugmentPolicy: String, Codable, CaseIterable, Sendable, ConfigEnum {
    /// On for CIFAR-10/100, off otherwise.
    case auto
    case on
    case off
}

/// BatchNorm running statistics at points interpolated between two networks (docs/metrics.md, barrier).
public enum BatchNormPolicy: String, Codable, CaseIterable, Sendable, ConfigEnum {
    /// Reset the running statistics and re-estimate them on a fixed set of training batches.
    case recompute
    /// Interpolate the running statistics like the parameters.
    case interpolate
}

/// BatchNorm running statistics of a checkpoint when it is analysed in inference mode.
public enum AnalysisBatchNorm: String, Codable, CaseIterable, Sendable, ConfigEnum {
    /// Reset and re-estimate them on fixed training batches first (`BatchNormRecomputer`).
    case recompute
    /// Use the running statistics stored in the checkpoint (the defaults 0 / 1 at initialisation).
    case running
}

extension DatasetKind: ConfigEnum {}
extension ModelKind: ConfigEnum {}
extension OptimizerKind: ConfigEnum {}
extension LossFunction: ConfigEnum {}
extension HVPMethod: ConfigEnum {}

/// The experiment file's `dataset` section: which data, how much of it, and augmentation.
public struct DatasetSettings: Codable, Equatable, Sendable, ConfigSection {
    public var kind: DatasetKind = .fashionMNIST
    /// Directory with the data files; nil = `kind.defaultPath`.
    public var path: String?
    /// Training examples used (0 = the whole training split): the first N, or N class-balanced.
    public var trainSubset = 0
    /// Choose the `trainSubset` examples class-balanced by the experiment seed instead of the first N.
    public var balancedSubset = false
    /// Test examples used (0 = all): the first N.
    public var testSubset = 0
    public var augment: AugmentPolicy = .auto

    public init() {}

    static var fields: [ConfigField<DatasetSettings>] { [
        .init("kind", \.kind, "Data set."),
        .init("path", \.path, identity: false,
              "Directory with the data files; null = the data set's default location (fashion-mnist: "
                + "/usr/share/datasets/fashion-mnist; CIFAR and MNIST need a path)."),
        .init("train_subset", \.trainSubset, "Training examples used; 0 = the whole training split, N = the first N."),
        .init("balanced_subset", \.balancedSubset,
              "If true, the train_subset examples are chosen class-balanced by the seed instead of the first N "
                + "(train_subset must then be a multiple of the class count)."),
        .init("test_subset", \.testSubset, "Test examples used; 0 = all, N = the first N."),
        .init("augment", \.augment,
              "Pad-4 random crop + horizontal flip of training images; auto = on for CIFAR, off otherwise."),
    ] }

    /// The training-split choice in the data layer's terms.
    public var trainingSubset: TrainingSubset {
        trainSubset == 0 ? .all : balancedSubset ? .classBalanced(trainSubset) : .first(trainSubset)
    }
    /// `path`, else the data set's default location (nil when it has none).
    public var resolvedPath: String? { path ?? kind.defaultPath }
    /// `augment` with `auto` decided by the data set.
    public var augmentsTraining: Bool { augment == .on || (augment == .auto && kind.usesCIFARAugmentation) }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `barrier` section: the error/loss curve along the straight line between
/// two children (docs/metrics.md).
public struct BarrierSettings: Codable, Equatable, Sendable, ConfigSection {
    /// Evenly spaced interpolation coefficients in [0, 1], both ends included.
    public var points = 31
    public var bnPolicy: BatchNormPolicy = .recompute
    /// Training batches used to re-estimate BatchNorm statistics at each point (`recompute` only).
    public var recomputeBatches = 10
    /// Training examples (the first N of the training subset; 0 = all) on which the curve's train
    /// error and loss are measured.
    public var trainSubset = 1000

    public init() {}

    static var fields: [ConfigField<BarrierSettings>] { [
        .init("points", \.points, "Evenly spaced points on the segment between two children, both ends included."),
        .init("bn_policy", \.bnPolicy,
              "BatchNorm statistics at interpolated points: recompute (re-estimate on training batches) or "
                + "interpolate (like the parameters)."),
        .init("recompute_batches", \.recomputeBatches, "Training batches used to re-estimate BatchNorm statistics (recompute)."),
        .init("train_subset", \.trainSubset,
              "Training examples (the first N of the training subset; 0 = all) for the curve's train error and loss."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `analysis` section: how a checkpoint is prepared before it is analysed in
/// inference mode (timeline errors, ReLU patterns, logit gradients, NTK Grams, kernel machines, the
/// linearised model's frozen BatchNorm, the Hessian).
public struct AnalysisSettings: Codable, Equatable, Sendable, ConfigSection {
    public var batchnorm: AnalysisBatchNorm = .recompute
    /// Training batches (of `recipe.batch_size`) that re-estimate the statistics (`recompute` only).
    public var recomputeBatches = 10

    public init() {}

    static var fields: [ConfigField<AnalysisSettings>] { [
        .init("batchnorm", \.batchnorm,
              "BatchNorm running statistics of every analysed checkpoint: recompute (reset and re-estimate them on "
                + "recompute_batches fixed training batches first, as the barrier's recompute policy does; at "
                + "initialisation the stored ones are the defaults 0 and 1) or running (as stored). No effect without BatchNorm."),
        .init("recompute_batches", \.recomputeBatches,
              "Training batches of recipe.batch_size that re-estimate the statistics (batchnorm: recompute)."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `training_curves` section: training loss and error of the parent and of
/// every child, recorded every `every_steps` optimiser steps (table `training_curves`).
public struct TrainingCurvesSettings: Codable, Equatable, Sendable, ConfigSection {
    /// Optimiser steps per recorded point (mean over the interval); 0 = off. The default, 12, gives
    /// the built-in experiment (625 steps) ~50 points per run.
    public var everySteps = 12

    public init() {}

    static var fields: [ConfigField<TrainingCurvesSettings>] { [
        .init("every_steps", \.everySteps,
              "Optimiser steps per point of the parent's and children's training curves (running mean of the batch "
                + "loss and error over the interval, and the learning rate); 0 = off."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `plan` section: how the static plan may use data-parallel training groups,
/// and the network model it assumes for their communication (`ExperimentPlanner`, `NetworkModel`).
/// Execution settings only: every network's bits are the same on any group (`recipe.shards`).
public struct PlanSection: Codable, Equatable, Sendable, ConfigSection {
    /// Most ranks that train one network together; 0 = automatic (up to `recipe.shards`), 1 = none.
    public var groupRanks = 0
    /// Assumed bandwidth per rank, GB/s.
    public var bandwidthGbS = 5.0
    /// Assumed latency of one stage of a small collective, microseconds.
    public var latencyUs = 20.0
    /// Assumed training throughput of one rank, TFLOP/s (turns seconds of communication into the cost model's units).
    public var rankTflops = 0.12

    public init() {}

    static var fields: [ConfigField<PlanSection>] { [
        .init("group_ranks", \.groupRanks, identity: false,
              "Most ranks that train one network together (the plan gives the parent and early children groups of 2, 4, ... "
                + "ranks, at most recipe.shards); 0 = automatic, 1 = every network on one rank. Results are the same bits."),
        .init("bandwidth_gb_s", \.bandwidthGbS, identity: false,
              "Network bandwidth per rank (GB/s) the plan assumes for a group's gradient allgather."),
        .init("latency_us", \.latencyUs, identity: false,
              "Latency (microseconds) of one stage of a small collective the plan assumes (log2 g stages per collective)."),
        .init("rank_tflops", \.rankTflops, identity: false,
              "Training throughput of one rank (TFLOP/s) the plan assumes to weigh communication against computation."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The `recipe` section decodes straight into `TrainingRecipe` (its defaults are the section's).
/// `augment` is not part of the section: it comes from `dataset.augment` (see
/// `ExperimentConfig.trainingRecipe`).
extension TrainingRecipe: ConfigSection {
    static var fields: [ConfigField<TrainingRecipe>] { [
        .init("optimizer", \.optimizer, "Optimiser: sgd (heavy-ball momentum, PyTorch semantics) or adam."),
        .init("learning_rate", \.learningRate, "Base learning rate, before the schedule."),
        .init("momentum", \.momentum, "SGD momentum (ignored by adam)."),
        .init("weight_decay", \.weightDecay, "L2 penalty coefficient added to the gradient (PyTorch weight_decay)."),
        .init("schedule", \.schedule,
              "Learning-rate schedule; step decay multiplies the rate by gamma at each milestone epoch."),
        .init("batch_size", \.batchSize, "Examples per optimiser step."),
        .init("shards", \.shards,
              "Shards each batch is cut into: every shard's gradient is computed alone and the shards' gradients (and "
                + "BatchNorm's batch statistics, over the whole batch) are summed in shard order, so training gives the same "
                + "bits on 1 rank or on a group of up to `shards` ranks sharing one network (data parallelism)."),
        .init("epochs", \.epochs, "Parent training length in epochs (fractional allowed); children train until the same time."),
        .init("loss", \.loss, "Training loss: cross_entropy (softmax) or mse (on one-hot targets)."),
    ] }
}

/// `constant`, or a mapping `{milestones: [epochs], gamma: factor}` for step decay.
extension LRSchedule: ConfigRepresentable {
    private struct Step: ConfigSection {
        var milestones: [Double] = []
        var gamma = 0.1
        static var fields: [ConfigField<Step>] { [
            .init("milestones", \.milestones, "Epochs at which the learning rate is multiplied by gamma."),
            .init("gamma", \.gamma, "Factor applied at each milestone."),
        ] }
    }

    static var configType: String { "`constant` or a mapping {milestones: [epochs], gamma: factor}" }

    static func decode(_ node: Node, at path: ConfigPath) throws -> LRSchedule {
        if case .mapping = node {
            let step = try Step.decode(node, at: path)
            // No milestones is the constant schedule, whatever gamma says: one spelling, one identity.
            return step.milestones.isEmpty ? .constant : .step(milestones: step.milestones, gamma: step.gamma)
        }
        if case let .scalar(s) = node, s.string == "constant" { return .constant }
        throw path.wrongType(node, expected: configType, example: "{milestones: [40, 60], gamma: 0.1}")
    }

    var configValue: ConfigValue {
        switch self {
        case .constant: return .string("constant")
        case let .step(milestones, gamma): return .map(["milestones": milestones.configValue, "gamma": gamma.configValue])
        }
    }
}

/// A whole experiment: data, model, training recipe and measurement plan.
///
/// Written as a YAML file with snake_case keys; every setting has a default, so a file lists only
/// what differs. `parse`/`load` reject unknown keys and wrong types with the key path;
/// `validate(trainExamples:)` checks the cross-field rules. `documentation()` lists every setting.
/// Times (`spawn_times`, `measurement_times`, `recipe.epochs`) are in epochs of the parent and may
/// be fractional.
public struct ExperimentConfig: Codable, Equatable, Sendable, ConfigSection {
    /// Label of the run; the run directory is `<name>-<first 12 hex digits of runHash>`.
    public var name = "experiment"
    /// Root of every random stream (initialisation, data order, augmentation, subsets, probe set).
    public var seed: UInt64 = 0
    public var dataset = DatasetSettings()
    public var model: ModelKind = .simplecnn
    /// The training recipe of the parent and of every child. Its `augment` is ignored: use
    /// `trainingRecipe`, which takes it from `dataset.augment`.
    public var recipe = TrainingRecipe()
    /// Independent parents; parent `r` is initialised and trained with identity (seed, replicate r).
    public var replicates = 1
    /// Parent epochs at which children are spawned; nil = `paperSpawnTimes` below `recipe.epochs`.
    public var spawnTimes: [Double]?
    /// Children trained from each spawn time (at least 2: pair metrics need a pair).
    public var children = 2
    /// Parent epochs at which timeline metrics are measured; nil = spawn times plus 0 and the end.
    public var measurementTimes: [Double]?
    /// Size of the fixed class-balanced probe set drawn from the training split (ReLU patterns,
    /// logit gradients, NTK Gram).
    public var probeSize = 100
    public var barrier = BarrierSettings()
    public var analysis = AnalysisSettings()
    public var ntk = NTKSection()
    public var kernelMachine = KernelMachineSection()
    public var linearized = LinearizedSection()
    public var hessian = HessianSection()
    public var trainingCurves = TrainingCurvesSettings()
    public var plane = PlaneSection()
    public var trajectories = TrajectoriesSection()
    public var statistics = StatisticsSection()
    /// BLAS threads per rank; nil = `$OPENBLAS_NUM_THREADS`, else the cores per rank. An execution
    /// setting: not part of the run identity.
    public var threads: Int?
    /// Data-parallel training groups in the plan and the network model they assume (execution settings).
    public var plan = PlanSection()

    public init() {}

    static var fields: [ConfigField<ExperimentConfig>] { [
        .init("name", \.name, identity: false,
              "Label of the run (letters, digits, . _ -); its directory is <name>-<12 hex digits of the run hash>."),
        .init("seed", \.seed, "Root of every random stream: initialisation, data order, augmentation, subsets, probe set."),
        .init("dataset", \.dataset, "Which data, how much of it, and augmentation."),
        .init("model", \.model, "Architecture (see `ntkscape models`)."),
        .init("recipe", \.recipe, "How the parent and every child are trained."),
        .init("replicates", \.replicates, "Independent parents; parent r uses random streams (seed, replicate r)."),
        .init("spawn_times", \.spawnTimes,
              "Parent epochs at which children are spawned (increasing, each in [0, epochs)); null = the paper's "
                + "0, 0.25, 0.5, 1, 2, 3, 4, 5, 8, 10, 20, 40, 80 below recipe.epochs."),
        .init("children", \.children, "Children trained from each spawn time to the end (at least 2: metrics compare pairs)."),
        .init("measurement_times", \.measurementTimes,
              "Parent epochs of the timeline metrics (increasing, each in [0, epochs]); null = spawn_times plus 0 and epochs."),
        .init("probe_size", \.probeSize,
              "Class-balanced probe set from the training split for ReLU-pattern, logit-gradient and NTK metrics "
                + "(a multiple of the class count)."),
        .init("barrier", \.barrier, "Error barrier between children along the straight line joining them."),
        .init("analysis", \.analysis,
              "How checkpoints are prepared for inference-mode analyses (BatchNorm statistics)."),
        .init("ntk", \.ntk, "Empirical-NTK Grams on the probe set: spectra, target alignment, kernel distance and velocity."),
        .init("kernel_machine", \.kernelMachine, "Kernel regression with the parent's data-dependent NTK."),
        .init("linearized", \.linearized,
              "Linearised training around parent times, a low-learning-rate nonlinear child, and the nonlinear advantage."),
        .init("hessian", \.hessian, "Top Hessian eigenvalue of the training loss and the escape ratios."),
        .init("training_curves", \.trainingCurves, "Training loss and error of the parent and the children every N steps."),
        .init("plane", \.plane, "Test error and loss on the plane through the parent at a spawn time and two children (Fig. 5)."),
        .init("trajectories", \.trajectories,
              "Softmax predictions along training, child-child function distance over time and their t-SNE (Figs. 10, 11)."),
        .init("statistics", \.statistics, "Bootstrap intervals, basin-fate and plateau times, and correlations (statistics.json)."),
        .init("threads", \.threads, identity: false,
              "Compute threads per rank (BLAS and the layers' loops); null = 1. `run --threads` overrides it; slurm/ntkscape.sbatch passes --cpus-per-task."),
        .init("plan", \.plan, identity: false,
              "Data-parallel training groups in the static plan, and the network the plan assumes (execution settings)."),
    ] }

    /// The spawn times of Fort et al. 2020's figures, in epochs.
    public static let paperSpawnTimes: [Double] = [0, 0.25, 0.5, 1, 2, 3, 4, 5, 8, 10, 20, 40, 80]

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

// MARK: - Derived values

public extension ExperimentConfig {
    /// `spawnTimes`, or the paper's times below `recipe.epochs`.
    var resolvedSpawnTimes: [Double] { spawnTimes ?? Self.paperSpawnTimes.filter { $0 < recipe.epochs } }

    /// `measurementTimes`, or the spawn times together with 0 and `recipe.epochs`, increasing.
    var resolvedMeasurementTimes: [Double] {
        measurementTimes ?? Set(resolvedSpawnTimes + [0, recipe.epochs]).sorted()
    }

    /// `ntk.times`, or the measurement times.
    var resolvedNTKTimes: [Double] { ntk.times ?? resolvedMeasurementTimes }

    /// Pairs `(t, t + dt)` of the kernel velocity: every NTK time with `t + dt` within training.
    var velocityPairs: [(from: Double, to: Double)] {
        guard ntk.velocityDt > 0 else { return [] }
        // Rounded to 1e-9 epoch so `0.1 + 0.2` names the checkpoint `0.3`.
        return resolvedNTKTimes.map { ($0, (($0 + ntk.velocityDt) * 1e9).rounded() / 1e9) }.filter { $0.1 <= recipe.epochs }
    }

    /// Every parent time that needs a saved checkpoint, increasing: spawn and measurement times and
    /// the times of the NTK, kernel-machine, linearisation and Hessian analyses.
    var parentCheckpointTimes: [Double] {
        Set(resolvedSpawnTimes + resolvedMeasurementTimes + resolvedNTKTimes + velocityPairs.map(\.to)
            + kernelMachine.times + linearized.times + hessian.times + plane.spawnTimes).sorted()
    }

    /// `recipe` with `augment` decided by `dataset.augment`: what parents and children train with.
    var trainingRecipe: TrainingRecipe {
        var r = recipe
        r.augment = dataset.augmentsTraining
        return r
    }

    /// Every derived default made explicit: data path, augmentation (`on`/`off`), spawn and
    /// measurement times, `recipe.augment`. Equal experiments written differently resolve equal.
    func resolved() -> ExperimentConfig {
        var c = self
        c.dataset.path = dataset.resolvedPath
        c.dataset.augment = dataset.augmentsTraining ? .on : .off
        c.spawnTimes = resolvedSpawnTimes
        c.measurementTimes = resolvedMeasurementTimes
        c.ntk.times = resolvedNTKTimes
        c.recipe = trainingRecipe
        return c
    }
}

// MARK: - Identity

public extension ExperimentConfig {
    /// The resolved configuration as compact JSON: keys sorted, numbers in RFC 8785 form (`0.001`,
    /// `80`, `1e-7`). The manifest's copy of the settings; valid input to `parse(yaml:)`.
    func canonicalJSON() -> String { resolved().configValue.json }

    /// Key paths (`recipe.learning_rate`) of the resolved settings that differ from the resolved
    /// defaults (`ExperimentConfig()`), with their values as canonical JSON. Sections are compared
    /// setting by setting, lists and the schedule as whole values. Execution settings that do not
    /// change results (`name`, `dataset.path`, `threads`) are left out.
    func nonDefaultSettings() -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ fields: [FieldInfo], _ value: ConfigValue, _ base: ConfigValue, _ prefix: String) {
            guard case let .map(v) = value, case let .map(b) = base else { return }
            for f in fields where f.identity {
                let path = prefix + f.key
                if let nested = f.nested { walk(nested, v[f.key]!, b[f.key]!, path + ".") }
                else if v[f.key] != b[f.key] { out[path] = v[f.key]!.json }
            }
        }
        walk(Self.configFields!, resolved().configValue, ExperimentConfig().resolved().configValue, "")
        return out
    }

    /// The text hashed into `runHash`: `nonDefaultSettings()` as one flat JSON object, keys sorted.
    func identityJSON() -> String {
        let settings = nonDefaultSettings()
        return "{" + settings.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .map { jsonQuoted($0) + ":" + settings[$0]! }.joined(separator: ",") + "}"
    }

    /// SHA-256 (hex) of `identityJSON()`: the same experiment, however written and with whatever
    /// execution settings, has the same hash; any change of what is computed changes it.
    var runHash: String { SHA256.hexDigest(identityJSON()) }

    /// `<name>-<first 12 hex digits of runHash>`: the run directory's name.
    var runName: String { "\(name)-\(runHash.prefix(12))" }
}

// MARK: - Reading

public extension ExperimentConfig {
    /// Parses an experiment file's text. Absent keys take their defaults; an empty text is all
    /// defaults. Throws `ExperimentConfigError` for YAML syntax, unknown keys (with the valid keys
    /// and the nearest one) and wrong types, naming `file` and the key path. Does not `validate`.
    /// `overrides` (`--set key=value`) are put into the document first and read with it; errors in
    /// them name `--set key` (`ConfigOverride`).
    static func parse(yaml: String, file: String? = nil, overrides: [ConfigOverride] = []) throws -> ExperimentConfig {
        do {
            return try parseDocument(yaml: yaml, file: file, overrides: overrides)
        } catch let e as ExperimentConfigError {
            throw ConfigOverride.attribute(e, to: overrides)
        }
    }

    private static func parseDocument(yaml: String, file: String?, overrides: [ConfigOverride]) throws -> ExperimentConfig {
        var root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            var line: Int?, column: Int?
            if let e = error as? YamlError {
                switch e {
                case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _):
                    line = mark.line; column = mark.column
                default: break
                }
            }
            throw ExperimentConfigError(kind: .syntax, file: file, keyPath: "", line: line, column: column,
                                        problem: "is not valid YAML: \(error)",
                                        fix: "correct the syntax at the position shown (indentation, `key: value`, brackets).")
        }
        root = try ConfigOverride.apply(overrides, to: root)
        guard let root else { return ExperimentConfig() }
        do {
            return try decode(root, at: ConfigPath(file: file))
        } catch var e as ExperimentConfigError where e.kind == .unknownKey && e.suggestion == nil {
            // A valid key of another section (`epochs` at the top level) is the likelier mistake.
            let key = String(e.keyPath.split(separator: ".").last ?? "")
            if let other = closest(to: key, among: allKeyPaths.filter { $0 != e.keyPath },
                                   comparingLastComponent: true) {
                e.suggestion = other
                e.fix = "did you mean `\(other)`? Write it inside its section. " + e.fix
            }
            throw e
        }
    }

    /// Reads, parses and validates (`trainExamples: nil`) an experiment file with `overrides`
    /// applied; every error names the file, or the `--set` it comes from.
    static func load(path: String, overrides: [ConfigOverride] = []) throws -> ExperimentConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ExperimentConfigError(kind: .fileNotFound, file: path, keyPath: "", problem: "no such file.",
                                        fix: "check the path, or start from a preset in configs/ "
                                            + "(`ntkscape run --explain` lists every setting).")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentConfigError(kind: .unreadable, file: path, keyPath: "",
                                        problem: isDirectory.boolValue ? "is a directory." : "cannot be read.",
                                        fix: "pass a readable experiment .yaml file.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ExperimentConfigError(kind: .unreadable, file: path, keyPath: "", problem: "is not UTF-8 text.",
                                        fix: "save the experiment file as UTF-8 YAML.")
        }
        if overrides.isEmpty && Self.isEmptyDocument(text) {
            throw ExperimentConfigError(kind: .invalidValue, file: path, keyPath: "",
                                        problem: "holds no settings (only blanks or comments), so it would run every default: "
                                            + "a \(canonicalNumber(ExperimentConfig().recipe.epochs))-epoch \(ExperimentConfig().model.rawValue) "
                                            + "on the whole \(ExperimentConfig().dataset.kind.rawValue) training split, not the built-in quick experiment.",
                                        fix: "list the settings that differ from the defaults (`ntkscape run --explain`); to run the defaults "
                                            + "deliberately write `name: experiment`; to run the built-in quick experiment give no file.")
        }
        return try validated(parse(yaml: text, file: path, overrides: overrides), file: path, overrides: overrides)
    }

    /// `config` validated (`trainExamples: nil`); errors name `file`, or the `--set` they come from.
    private static func validated(_ config: ExperimentConfig, file: String, overrides: [ConfigOverride]) throws -> ExperimentConfig {
        do {
            try config.validate(trainExamples: nil)
        } catch let e as ExperimentConfigError {
            throw ConfigOverride.attribute(ExperimentConfigError(kind: e.kind, file: file, keyPath: e.keyPath,
                                                                 problem: e.problem, fix: e.fix), to: overrides)
        }
        return config
    }

    /// Whether `text` holds no YAML content: only blanks, comments and document markers.
    static func isEmptyDocument(_ text: String) -> Bool {
        text.split(whereSeparator: \.isNewline).allSatisfy { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.isEmpty || t.hasPrefix("#") || t == "---" || t == "..."
        }
    }

    /// The built-in experiment (`configs/quick.yaml`, embedded): a few minutes on two cores.
    static func builtinDefault() -> ExperimentConfig {
        do {
            return try parse(yaml: builtinDefaultYAML, file: builtinDefaultFile)
        } catch {
            preconditionFailure("the embedded configs/quick.yaml does not parse: \(error)")
        }
    }

    /// The built-in experiment with `overrides`, validated.
    static func builtinDefault(overrides: [ConfigOverride]) throws -> ExperimentConfig {
        guard !overrides.isEmpty else { return builtinDefault() }
        let file = builtinDefaultFile
        return try validated(parse(yaml: builtinDefaultYAML, file: file, overrides: overrides), file: file, overrides: overrides)
    }

    /// The experiment file `path` (nil: the built-in one) with `overrides`, validated: what
    /// `ntkscape run` and `plan` run.
    static func load(experiment path: String?, overrides: [ConfigOverride]) throws -> ExperimentConfig {
        try path.map { try load(path: $0, overrides: overrides) } ?? builtinDefault(overrides: overrides)
    }

    private static var builtinDefaultFile: String { "built-in configs/quick.yaml" }

    /// Every setting of the resolved configuration (derived defaults made explicit) as plain YAML,
    /// one `key: value` line each: what `--print-config` prints. Parsing it gives `resolved()`.
    func resolvedYAML() -> String { resolved().annotatedYAML(comments: false) }

    /// Every setting with its default and help, as a commented YAML experiment file (for
    /// `ntkscape run --explain` and docs/experiment.md). Parsing it gives `ExperimentConfig()`.
    static func documentation() -> String {
        "# NTKScape experiment file: every setting, its type, default and meaning.\n"
            + "# A file lists only the settings that differ from these defaults.\n"
            + ExperimentConfig().annotatedYAML()
    }

    /// This configuration as YAML, each setting preceded by a comment with its help and type
    /// (without them when `comments` is false).
    func annotatedYAML(comments: Bool = true) -> String {
        var lines: [String] = []
        func render(_ fields: [FieldInfo], _ value: ConfigValue, _ indent: String) {
            guard case let .map(values) = value else { return }
            for f in fields {
                if comments { lines.append(indent + "# " + f.help + (f.nested == nil ? " [" + f.type + "]" : "")
                                + (f.identity ? "" : " Not part of the run identity.")) }
                if let nested = f.nested {
                    lines.append(indent + f.key + ":")
                    render(nested, values[f.key]!, indent + "  ")
                } else {
                    lines.append(indent + f.key + ": " + values[f.key]!.yamlFlow)
                }
            }
        }
        render(Self.configFields!, configValue, "")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every key path of the schema (`recipe.learning_rate`, ...).
    internal static var allKeyPaths: [String] {
        func paths(_ fields: [FieldInfo], _ prefix: String) -> [String] {
            fields.flatMap { [prefix + $0.key] + paths($0.nested ?? [], prefix + $0.key + ".") }
        }
        return paths(configFields!, "")
    }
}

/// The nearest key path whose last component is plausibly `key`.
private func closest(to key: String, among paths: [String], comparingLastComponent: Bool) -> String? {
    let lasts = paths.map { String($0.split(separator: ".").last!) }
    guard let best = closest(to: key, among: lasts), editDistance(best, key) <= 1 else { return nil }
    return paths[lasts.firstIndex(of: best)!]
}

extension ConfigSection {
    /// `Decodable` through the schema walker, so JSON is held to the same rules as YAML.
    static func decodeConfig(from decoder: Decoder) throws -> Self {
        let value = try ConfigValue(from: decoder)
        do {
            return try decode(value.node, at: ConfigPath(file: nil))
        } catch let e as ExperimentConfigError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description,
                                                    underlyingError: e))
        }
    }
}
