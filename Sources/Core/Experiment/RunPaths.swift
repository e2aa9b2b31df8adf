/// Every file name of a run, and the only code that builds them (STYLE 7).
///
/// Layout (`<run>` = `<root>/<name>-<12 hex digits of the run hash>`; `<e>` an epoch label such as
/// `0000.250`, see `epochLabel`):
///
///     <run>/manifest.json                 resolved configuration, versions, ranks, timings, metric variants
///     <run>/experiment.yaml               the experiment file as given
///     <run>/config.json                   the resolved configuration, canonical JSON
///     <run>/fingerprint.json              format version and data digests, checked on every rerun
///     <run>/run.lock                      held by the job running in the directory (pid, host)
///     <run>/tables/<table>.csv|.json      parent_timeline, child_pairs, barrier_curves, timeline_pairs, ...
///     <run>/figures/<figure>.svg
///     <run>/report.html
///     <run>/tasks/<task id>.json          a finished task's result record (its presence = done)
///     <run>/logs/rank-<k>.log              rank k's timestamped log lines (appended by every session)
///     <run>/logs/status-<k>.json           rank k's latest progress (RunStatus), rewritten every few seconds
///     <run>/replicate-<r>/parent/epoch-<e>.safetensors                       parent at time e
///     <run>/replicate-<r>/parent/training-state.safetensors                  parent's rolling resume state
///     <run>/replicate-<r>/parent/training-curve.json                         its training curve so far (resume)
///     <run>/replicate-<r>/parent/children/spawn-<e>/child-<k>/final.safetensors
///     <run>/replicate-<r>/parent/children/spawn-<e>/child-<k>/training-state.safetensors
///     <run>/replicate-<r>/parent/children/spawn-<e>/child-<k>/training-curve.json
///     <run>/replicate-<r>/parent/predictions/epoch-<e>.npy                    softmax on the trajectory examples
///     <run>/replicate-<r>/parent/children/spawn-<e>/child-<k>/predictions/epoch-<e>.npy
///     <run>/replicate-<r>/trajectory-examples.npy                            their indices in the test subset
///
/// Children live under the parent they were spawned from.
public struct RunPaths: Sendable, Equatable {
    /// The run's directory.
    public let runDirectory: String

    /// The run of `config` under `root` (a directory holding many runs).
    public init(root: String = "runs", config: ExperimentConfig) {
        self.init(runDirectory: Self.join(root, config.runName))
    }

    /// An existing run directory (e.g. given to `ntkscape report`).
    public init(runDirectory: String) { self.runDirectory = runDirectory }

    // MARK: Run-level files

    public var manifest: String { file("manifest.json") }
    /// The experiment file as the user wrote it.
    public var configCopy: String { file("experiment.yaml") }
    /// `ExperimentConfig.canonicalJSON()` of the run.
    public var resolvedConfig: String { file("config.json") }
    /// `RunFingerprint` of the run: the run-directory format version and the data, checked on a rerun.
    public var fingerprint: String { file("fingerprint.json") }
    /// `RunLock`: exists while a job runs in the directory.
    public var lock: String { file("run.lock") }
    public var report: String { file("report.html") }
    public var tablesDirectory: String { file("tables") }
    public var figuresDirectory: String { file("figures") }
    public var tasksDirectory: String { file("tasks") }
    /// Directory of the per-rank logs.
    public var logs: String { file("logs") }

    /// Table `name` in format `ext` (`csv` or `json`): `<run>/tables/<name>.<ext>`.
    public func table(_ name: String, ext: String) -> String {
        precondition(Self.isSafeComponent(name) && Self.isSafeComponent(ext), "RunPaths: bad table name \(name).\(ext)")
        return Self.join(tablesDirectory, "\(name).\(ext)")
    }

    /// `statistics.csv` / `.json` in the tables directory (`ExperimentTables.writeStatistics`).
    public static let statistics = "statistics"

    /// Table names (one per family of metrics).
    public enum Table {
        public static let parentTimeline = "parent_timeline"
        public static let childPairs = "child_pairs"
        public static let barrierCurves = "barrier_curves"
        public static let timelinePairs = "timeline_pairs"
        public static let kernelDistance = "kernel_distance"
        public static let kernelVelocity = "kernel_velocity"
        public static let ntkSpectrum = "ntk_spectrum"
        public static let ntkEigenvalues = "ntk_eigenvalues"
        public static let ntkEigenvectors = "ntk_eigenvectors"
        public static let ntkMachine = "ntk_machine"
        public static let ntkMachineSummary = "ntk_machine_summary"
        public static let ntkMachineRidges = "ntk_machine_ridges"
        public static let linearized = "linearized"
        public static let linearizedGrid = "linearized_grid"
        public static let nonlinearAdvantage = "nonlinear_advantage"
        public static let nonlinearAdvantageSummary = "nonlinear_advantage_summary"
        public static let hessian = "hessian"
        public static let hessianEigenvalues = "hessian_eigenvalues"
        public static let hessianDensity = "hessian_density"
        public static let hessianQuadrature = "hessian_quadrature"
        public static let trainingCurves = "training_curves"
        public static let lossPlane = "loss_plane"
        public static let functionTrajectories = "function_trajectories"
        public static let functionEmbedding = "function_embedding"
    }

    public var parentTimelineCSV: String { table(Table.parentTimeline, ext: "csv") }
    public var parentTimelineJSON: String { table(Table.parentTimeline, ext: "json") }
    public var childPairsCSV: String { table(Table.childPairs, ext: "csv") }
    public var childPairsJSON: String { table(Table.childPairs, ext: "json") }
    public var barrierCurvesCSV: String { table(Table.barrierCurves, ext: "csv") }
    public var barrierCurvesJSON: String { table(Table.barrierCurves, ext: "json") }
    public var timelinePairsCSV: String { table(Table.timelinePairs, ext: "csv") }
    public var timelinePairsJSON: String { table(Table.timelinePairs, ext: "json") }

    /// `<run>/figures/<name>.svg`.
    public func figure(_ name: String) -> String {
        precondition(Self.isSafeComponent(name), "RunPaths: bad figure name \(name)")
        return Self.join(figuresDirectory, name + ".svg")
    }

    /// The result record of finished task `taskID` (letters, digits, `.`, `_`, `-`): `<run>/tasks/<id>.json`.
    public func taskDone(_ taskID: String) -> String {
        precondition(Self.isSafeComponent(taskID), "RunPaths: task id `\(taskID)` is not a file-name-safe string")
        return Self.join(tasksDirectory, taskID + ".json")
    }

    /// `<run>/logs/rank-<rank>.log`.
    public func log(rank: Int) -> String { Self.join(logs, "rank-\(rank).log") }

    /// `<run>/logs/status-<rank>.json`: the rank's latest progress, from which rank 0 draws the live status.
    public func status(rank: Int) -> String { Self.join(logs, "status-\(rank).json") }

    // MARK: Networks

    /// `<run>/replicate-<r>`.
    public func replicateDirectory(_ replicate: Int) -> String {
        precondition(replicate >= 0, "RunPaths: replicate \(replicate) < 0")
        return Self.join(runDirectory, "replicate-\(replicate)")
    }

    /// `<run>/replicate-<r>/parent`.
    public func parentDirectory(replicate: Int) -> String { Self.join(replicateDirectory(replicate), "parent") }

    /// The parent's weights at `epoch`: `.../parent/epoch-<e>.safetensors`.
    public func parentCheckpoint(replicate: Int, epoch: Double) -> String {
        Self.join(parentDirectory(replicate: replicate), "epoch-\(Self.epochLabel(epoch)).safetensors")
    }

    /// The parent's rolling resume checkpoint (weights, optimiser state, step), overwritten as it trains.
    public func parentTrainingState(replicate: Int) -> String {
        Self.join(parentDirectory(replicate: replicate), "training-state.safetensors")
    }

    /// The parent's training curve so far, written with its rolling state (`TrainingCurveRecorder`).
    public func parentTrainingCurve(replicate: Int) -> String {
        Self.join(parentDirectory(replicate: replicate), "training-curve.json")
    }

    /// A child's training curve so far.
    public func childTrainingCurve(replicate: Int, spawn: Double, child: Int) -> String {
        Self.join(childDirectory(replicate: replicate, spawn: spawn, child: child), "training-curve.json")
    }

    /// `.../parent/children/spawn-<e>/child-<k>`.
    public func childDirectory(replicate: Int, spawn: Double, child: Int) -> String {
        precondition(child >= 0, "RunPaths: child \(child) < 0")
        return Self.join(parentDirectory(replicate: replicate),
                         "children/spawn-\(Self.epochLabel(spawn))/child-\(child)")
    }

    /// A child's weights at the end of training.
    public func childCheckpoint(replicate: Int, spawn: Double, child: Int) -> String {
        Self.join(childDirectory(replicate: replicate, spawn: spawn, child: child), "final.safetensors")
    }

    /// A child's rolling resume checkpoint.
    public func childTrainingState(replicate: Int, spawn: Double, child: Int) -> String {
        Self.join(childDirectory(replicate: replicate, spawn: spawn, child: child), "training-state.safetensors")
    }

    /// The parent's softmax predictions on the trajectory examples at `epoch` (`[N, C]` float32).
    public func parentPredictions(replicate: Int, epoch: Double) -> String {
        Self.join(parentDirectory(replicate: replicate), "predictions/epoch-\(Self.epochLabel(epoch)).npy")
    }

    /// A child's softmax predictions on the trajectory examples at parent-time `epoch`.
    public func childPredictions(replicate: Int, spawn: Double, child: Int, epoch: Double) -> String {
        Self.join(childDirectory(replicate: replicate, spawn: spawn, child: child), "predictions/epoch-\(Self.epochLabel(epoch)).npy")
    }

    /// Indices (int64) of the trajectory examples in the test subset, in the order of the prediction rows.
    public func trajectoryExamples(replicate: Int) -> String { Self.join(replicateDirectory(replicate), "trajectory-examples.npy") }

    // MARK: Names

    /// A time in epochs as a file-name label: at least 4 integer digits, `.`, at least 3 fraction
    /// digits — the exact shortest decimal of the `Double`, padded (`0.25` → `0000.250`, `80` →
    /// `0080.000`, `0.0625` → `0000.0625`). Distinct times give distinct labels, and labels sort
    /// as the times do (up to 9999 epochs).
    public static func epochLabel(_ epoch: Double) -> String {
        precondition(epoch.isFinite && epoch >= 0 && epoch < 1e15, "RunPaths: epoch \(epoch) must be in [0, 1e15)")
        let (digits, n) = decimalDigits(epoch)
        let intDigits = n > 0 ? String(digits.prefix(n)) + String(repeating: "0", count: max(0, n - digits.count)) : ""
        let fracDigits = n >= 0 ? String(digits.dropFirst(n)) : String(repeating: "0", count: -n) + String(digits)
        func pad(_ s: String, _ width: Int, left: Bool) -> String {
            let zeros = String(repeating: "0", count: max(0, width - s.count))
            return left ? zeros + s : s + zeros
        }
        return pad(intDigits, 4, left: true) + "." + pad(fracDigits, 3, left: false)
    }

    private func file(_ name: String) -> String { Self.join(runDirectory, name) }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func isSafeComponent(_ s: String) -> Bool {
        !s.isEmpty && !s.hasPrefix(".") && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}
