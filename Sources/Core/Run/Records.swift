import Foundation

/// One row of `parent_timeline.csv`: the parent of `replicate` at `epoch` (BatchNorm in inference mode).
public struct ParentTimelineRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var trainError: Double
    public var trainLoss: Double
    public var testError: Double
    public var testLoss: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `child_pairs.csv`: two children spawned from the same parent at `spawnEpoch`, compared
/// on their final weights. Column names carry the variant (docs/metrics.md). The unsuffixed barrier columns
/// and `test_error_a/b` (the barrier's end points) follow `barrier.bn_policy`; for BatchNorm networks
/// the `_interpolate` and `_recompute` columns give both policies (empty without BatchNorm). The
/// other metrics see the children prepared by `analysis.batchnorm` (`batch_norm`).
public struct ChildPairRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var testErrorA: Double
    public var testErrorB: Double
    public var barrierTestErrorMaxMinusMean: Double
    public var barrierTestErrorMaxMinusLine: Double
    public var barrierTrainErrorMaxMinusMean: Double
    public var barrierTrainErrorMaxMinusLine: Double
    public var barrierTestLossMaxMinusMean: Double
    public var barrierTestLossMaxMinusLine: Double
    public var barrierBatchNorm: String
    public var weightL2: Double
    public var weightL2Normalized: Double?
    public var weightCosine: Double?
    public var functionDisagreement: Double
    public var functionDisagreementOverIndependent: Double?
    public var reluPatternDistance: Double
    public var logitGradientAlignment: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
    public var testErrorAInterpolate: Double?
    public var testErrorBInterpolate: Double?
    public var barrierTestErrorMaxMinusMeanInterpolate: Double?
    public var barrierTestErrorMaxMinusLineInterpolate: Double?
    public var barrierTrainErrorMaxMinusMeanInterpolate: Double?
    public var barrierTestLossMaxMinusMeanInterpolate: Double?
    public var testErrorARecompute: Double?
    public var testErrorBRecompute: Double?
    public var barrierTestErrorMaxMinusMeanRecompute: Double?
    public var barrierTestErrorMaxMinusLineRecompute: Double?
    public var barrierTrainErrorMaxMinusMeanRecompute: Double?
    public var barrierTestLossMaxMinusMeanRecompute: Double?
    /// `S(K_a, K_b)` of the children's mC x mC NTK Grams on the probe set; empty when `ntk.children` is off.
    public var kernelDistance: Double?

    /// Fills the `_interpolate` or `_recompute` columns from the curve under that policy.
    public mutating func setBarrier(_ policy: BatchNormPolicy, _ c: InterpolationCurve) {
        let a = c.points.first!.testError, b = c.points.last!.testError
        switch policy {
        case .interpolate:
            testErrorAInterpolate = a; testErrorBInterpolate = b
            barrierTestErrorMaxMinusMeanInterpolate = c.testError.maxMinusMean
            barrierTestErrorMaxMinusLineInterpolate = c.testError.maxMinusLine
            barrierTrainErrorMaxMinusMeanInterpolate = c.trainError.maxMinusMean
            barrierTestLossMaxMinusMeanInterpolate = c.testLoss.maxMinusMean
        case .recompute:
            testErrorARecompute = a; testErrorBRecompute = b
            barrierTestErrorMaxMinusMeanRecompute = c.testError.maxMinusMean
            barrierTestErrorMaxMinusLineRecompute = c.testError.maxMinusLine
            barrierTrainErrorMaxMinusMeanRecompute = c.trainError.maxMinusMean
            barrierTestLossMaxMinusMeanRecompute = c.testLoss.maxMinusMean
        }
    }
}

/// One row of `barrier_curves.csv`: a point of the interpolation between two children under the
/// BatchNorm policy `batch_norm` (`interpolate`, `recompute`; `none` without BatchNorm — BatchNorm
/// networks get a curve per policy).
public struct BarrierCurveRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var batchNorm: String
    public var alpha: Double
    public var testError: Double
    public var testLoss: Double
    public var trainError: Double
    public var trainLoss: Double
}

/// One row of `timeline_pairs.csv` (long format): parent times `epochA <= epochB` of one replicate.
public struct TimelinePairRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epochA: Double
    public var epochB: Double
    public var reluPatternDistance: Double
    public var logitGradientAlignment: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `kernel_distance.csv` (long format): `S(K_a, K_b)` between the parent's Grams at two
/// times `epochA <= epochB`, on the full mC x mC Gram and on the logit-traced m x m kernel.
public struct KernelDistanceRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epochA: Double
    public var epochB: Double
    public var kernelDistance: Double
    public var kernelDistanceTraced: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `kernel_velocity.csv`: `v(t) = S(K_t, K_{t+dt}) / dt` of the parent.
public struct KernelVelocityRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var dt: Double
    public var kernelDistance: Double
    public var velocity: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `ntk_spectrum.csv`: summary of the parent's mC x mC Gram at `epoch` (eigenvalues from
/// ScaLAPACK's pdsyevd, on a grid of 9 significant digits of lambda_max, see `NTKSpectrum`).
public struct NTKSpectrumRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var size: Int
    public var trace: Double
    public var lambdaMax: Double
    public var lambdaMin: Double
    /// `lambda_max / lambda_min`; infinite when `lambda_min <= 0` (rank-deficient).
    public var conditionNumber: Double
    /// Participation ratio `(sum lambda)^2 / sum lambda^2`.
    public var effectiveRank: Double
    /// `<K, y y^T>_F / (||K||_F ||y y^T||_F)` with `y` the probe set's one-hot labels (mC vector).
    public var targetAlignment: Double
    /// The same on the traced m x m kernel with `Y Y^T` (m x m, 1 where labels agree).
    public var targetAlignmentTraced: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `ntk_eigenvalues.csv` (long format): eigenvalue `index` (0 = largest) of a parent Gram.
public struct NTKEigenvalueRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var index: Int
    public var eigenvalue: Double
}

/// One row of `ntk_eigenvectors.csv` (long format): component `row` (`example * C + class`) of
/// eigenvector `index` (0 = largest eigenvalue), sign fixed so the largest-magnitude component is positive.
public struct NTKEigenvectorRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var index: Int
    public var row: Int
    public var value: Double
}

/// One row of `ntk_machine.csv`: one draw of the NTK kernel machine of the parent at `epoch`, in one
/// `form` (`offset`: `f_t(X*) + K* (K + lambda I)^-1 (Y - f_t(X))`; `kernel`: the after-kernel machine
/// `K* (K + lambda I)^-1 Y`), refitted on all `train_examples` at the ridge chosen on the held-out part.
public struct NTKMachineRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var draw: Int
    public var form: String
    public var trainExamples: Int
    /// Examples of the fit and held-out parts that chose the ridge.
    public var fitExamples: Int
    public var heldOutExamples: Int
    /// The chosen ridge relative to the Gram's mean diagonal, and absolute (added to the diagonal).
    public var ridgeRelative: Double
    public var ridge: Double
    /// Held-out squared loss at the chosen ridge (mean over examples of the sum over classes).
    public var heldOutLoss: Double
    /// Error and RMS residual `sqrt(mean (Y - f(X))^2)` of the refitted machine on its training examples.
    public var trainError: Double
    public var trainResidual: Double
    public var testError: Double
    /// Test error of the network itself at `epoch`, for comparison.
    public var networkTestError: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `ntk_machine_ridges.csv`: the held-out squared loss and error of one ridge of the grid
/// (fitted on the fit part, from one eigendecomposition), per draw and form.
public struct NTKMachineRidgeRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var draw: Int
    public var form: String
    public var ridgeRelative: Double
    public var ridge: Double
    public var heldOutLoss: Double
    public var heldOutError: Double
    public var chosen: Bool
}

/// One row of `ntk_machine_summary.csv`: the kernel machine over its draws, per parent time and form.
public struct NTKMachineSummaryRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var form: String
    public var draws: Int
    public var trainExamples: Int
    public var testErrorMean: Double
    /// Sample standard deviation over the draws (0 for one draw), minimum and maximum.
    public var testErrorStd: Double
    public var testErrorMin: Double
    public var testErrorMax: Double
    public var trainErrorMean: Double
    public var trainResidualMean: Double
    /// Geometric mean of the chosen relative ridges.
    public var ridgeRelativeGeometricMean: Double
    public var networkTestError: Double
    public var batchNorm: String
}

/// One row of `linearized.csv`: run `seed` from the parent at `startEpoch` after `epochs` epochs of
/// its own training (every whole epoch and the end); `model` is `linearized` (first-order Taylor
/// model), `second_order` (second-order Taylor model, `linearized.second_order`) or `nonlinear` (the
/// low-learning-rate child). Seed `k` of every model sees the same batches.
public struct LinearizedRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var startEpoch: Double
    public var model: String
    public var seed: Int
    public var epochs: Double
    /// Mean loss and error over the epoch's training batches (before each step's update).
    public var trainLoss: Double
    public var trainError: Double
    public var testError: Double
    public var testLoss: Double
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `linearized_grid.csv`: a learning rate of the linearised model's grid at `startEpoch`,
/// trained `epochs` epochs on `fitExamples` training examples and measured on the `heldOutExamples`
/// others; `chosen` marks the rate with the lowest held-out loss, used by the linearised runs.
public struct LinearizedGridRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var startEpoch: Double
    public var learningRate: Double
    public var epochs: Double
    public var fitExamples: Int
    public var heldOutExamples: Int
    /// Empty when the run diverged.
    public var heldOutLoss: Double?
    public var heldOutError: Double?
    /// `max_epochs` or `diverged`.
    public var stop: String
    public var chosen: Bool
}

/// The end of one linearised or nonlinear run (task records only; joined into `nonlinear_advantage`).
public struct LinearizedRunRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var startEpoch: Double
    public var model: String
    public var seed: Int
    public var optimizer: String
    public var learningRate: Double
    /// Test error and loss of the parent at `startEpoch` (= of `f_lin` at `w0`).
    public var startTestError: Double
    public var startTestLoss: Double
    /// Epochs trained, and the metrics of the last evaluated epoch (the start, if none finished).
    public var epochs: Double
    public var trainLoss: Double?
    public var testError: Double
    public var testLoss: Double
    /// `plateau`, `max_epochs` or `diverged`.
    public var stop: String

    public init(replicate: Int, startEpoch: Double, model: String, seed: Int, optimizer: String, learningRate: Double,
                startTestError: Double, startTestLoss: Double, epochs: Double, trainLoss: Double?, testError: Double,
                testLoss: Double, stop: String) {
        self.replicate = replicate; self.startEpoch = startEpoch; self.model = model; self.seed = seed
        self.optimizer = optimizer; self.learningRate = learningRate; self.startTestError = startTestError
        self.startTestLoss = startTestLoss; self.epochs = epochs; self.trainLoss = trainLoss; self.testError = testError
        self.testLoss = testLoss; self.stop = stop
    }
}

/// One row of `nonlinear_advantage.csv`, per seed: the linearised model and the low-learning-rate
/// nonlinear child from the parent at `startEpoch`, trained on the same batches, at their ends;
/// `nonlinearAdvantage = linearizedTestError - nonlinearTestError` (positive: the nonlinear child is better).
/// With `linearized.second_order`, the second-order Taylor model of the same seed (same settings and
/// batches as the linearised one) at its end, and `secondOrderAdvantage = secondOrderTestError -
/// nonlinearTestError`; these columns are empty without it.
public struct NonlinearAdvantageRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var startEpoch: Double
    public var seed: Int
    /// Test error of the parent at `startEpoch`, where both runs start.
    public var startTestError: Double
    public var linearizedLearningRate: Double
    public var linearizedEpochs: Double
    public var linearizedTestError: Double
    public var linearizedTestLoss: Double
    public var linearizedStop: String
    public var nonlinearOptimizer: String
    public var nonlinearLearningRate: Double
    public var nonlinearEpochs: Double
    public var nonlinearTrainLoss: Double?
    public var nonlinearTestError: Double
    public var nonlinearTestLoss: Double
    public var nonlinearStop: String
    public var nonlinearAdvantage: Double
    public var secondOrderEpochs: Double?
    public var secondOrderTestError: Double?
    public var secondOrderTestLoss: Double?
    public var secondOrderStop: String?
    public var secondOrderAdvantage: Double?
}

/// One row of `nonlinear_advantage_summary.csv`: the seeds of one `(replicate, startEpoch)`, mean and
/// sample standard deviation (empty for one seed), and how the nonlinear children ended.
public struct NonlinearAdvantageSummaryRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var startEpoch: Double
    public var seeds: Int
    public var startTestError: Double
    public var linearizedTestErrorMean: Double
    public var linearizedTestErrorStd: Double?
    public var nonlinearTestErrorMean: Double
    public var nonlinearTestErrorStd: Double?
    public var nonlinearAdvantageMean: Double
    public var nonlinearAdvantageStd: Double?
    public var nonlinearAdvantageMin: Double
    public var nonlinearAdvantageMax: Double
    public var nonlinearEpochsMean: Double
    /// Nonlinear children that stopped on a plateau, at the maximum length, or diverged.
    public var nonlinearStopsPlateau: Int
    public var nonlinearStopsMaxEpochs: Int
    public var nonlinearStopsDiverged: Int
    /// Linearised runs that diverged.
    public var linearizedDiverged: Int
    /// Over the seeds with a second-order run (`linearized.second_order`; empty without): its test
    /// error and `secondOrderAdvantage`, mean and sample standard deviation, and how many diverged.
    public var secondOrderTestErrorMean: Double?
    public var secondOrderTestErrorStd: Double?
    public var secondOrderAdvantageMean: Double?
    public var secondOrderAdvantageStd: Double?
    public var secondOrderDiverged: Int?
}

/// One row of `hessian.csv`: the Hessian of the training loss of the parent at `epoch` — top
/// eigenvalue, trace — and the escape criteria for the step the optimiser takes there.
public struct HessianRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    /// `exact` or `finite_difference` Hessian-vector products.
    public var method: String
    public var examples: Int
    public var lambdaMax: Double
    /// Hutchinson's estimate of `tr(H)` and its standard error (nil without `trace_samples`, or for one sample).
    public var trace: Double?
    public var traceStandardError: Double?
    /// The scheduled learning rate `eta` at `epoch` and the SGD momentum (0 for Adam).
    public var learningRate: Double
    public var momentum: Double
    /// `eta * lambda_max / 2` (plain gradient descent leaves the quadratic basin above 1).
    public var escapeRatio: Double
    /// `eta * lambda_max / (2 (1 + mu))` (heavy-ball momentum `mu`).
    public var escapeRatioMomentum: Double
    /// The optimiser's update direction `u` at `epoch` (the step is `-eta u`): `sgd` (momentum buffer
    /// from the checkpoint), `adam` (moments from the checkpoint), `sgd_first_step` / `adam_first_step`
    /// when the checkpoint holds no optimiser state yet (epoch 0).
    public var update: String
    /// `g'u` and `u'Hu` with `g` the gradient of the same loss.
    public var gradientDotUpdate: Double
    public var updateCurvature: Double
    /// Fort et al. 2020 Eq. 10: the second-order change of the loss along the step, per unit `eta`,
    /// `eta u'Hu / 2 - g'u` (positive: the step goes up the local quadratic), and the ratio
    /// `eta u'Hu / (2 g'u)` (above 1: the step escapes the local quadratic basin).
    public var lossChangeSecondOrder: Double
    public var escapeRatioUpdate: Double
    public var iterations: Int
    public var converged: Bool
    /// `h` of the finite-difference products (step `h max(||w||, 1) / ||v||`; the measured curvature
    /// is averaged over that step, so it belongs with the number); nil for exact products.
    public var relativeStep: Double?
    /// BatchNorm statistics the network was analysed with: `recompute` / `running` (`analysis.batchnorm`),
    /// `none` without BatchNorm.
    public var batchNorm: String
}

/// One row of `hessian_eigenvalues.csv`: the `index`-th largest Hessian eigenvalue (Ritz value),
/// its residual `||H y - θ y||`, and the fraction `||P y||² / ||y||²` of its Ritz vector in the
/// span `P` of the `C` logit-gradient centroids on the same examples (Fort et al. 2020 appendix B).
public struct HessianEigenvalueRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var index: Int
    public var eigenvalue: Double
    public var residual: Double
    public var centroidSpanFraction: Double
}

/// One row of `hessian_density.csv`: the spectral density `ρ(λ)` from stochastic Lanczos quadrature,
/// smoothed by a Gaussian (`∫ρ = 1`).
public struct HessianDensityRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var lambda: Double
    public var density: Double
}

/// One row of `hessian_quadrature.csv`: a node (Ritz value of quadrature run `run`) and its weight.
public struct HessianQuadratureRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var run: Int
    public var node: Double
    public var weight: Double
}

/// One row of `training_curves.csv`: a network's training over the last `training_curves.every_steps`
/// optimiser steps up to `step` (the last interval may be shorter), recorded as it trains.
public struct TrainingCurveRow: Codable, Equatable, Sendable {
    public var replicate: Int
    /// `parent`, or `child-<k>` of the spawn time `spawnEpoch`.
    public var run: String
    /// nil for the parent.
    public var spawnEpoch: Double?
    /// Global optimiser step at the end of the interval.
    public var step: Int
    public var epoch: Double
    /// Mean per-example training loss of the interval's batches (train mode, augmented if the recipe augments).
    public var trainLoss: Double
    /// Fraction of the interval's training examples misclassified.
    public var trainError: Double
    /// The scheduled learning rate of the interval's last step.
    public var learningRate: Double
}

/// One row of `loss_plane.csv`: test error and loss at a point of the plane through the parent at
/// `spawnEpoch` and children `childA`, `childB` (docs/metrics.md, "Loss plane"). `model` is
/// `network` (the network at `w(x, y)`, BatchNorm by `barrier.bn_policy`), `tangent_spawn` or
/// `tangent_child` (the linearisation around the parent, or around child `childA`, BatchNorm frozen
/// as prepared by `analysis.batchnorm`). `point` is `grid` (indices `i` along x, `j` along y) or
/// one of the three networks: `spawn`, `child_a`, `child_b`.
public struct LossPlaneRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var model: String
    public var point: String
    public var i: Int?
    public var j: Int?
    public var x: Double
    public var y: Double
    public var testError: Double
    public var testLoss: Double
    public var batchNorm: String

    public static let network = "network", tangentSpawn = "tangent_spawn", tangentChild = "tangent_child"
}

/// One row of `function_trajectories.csv`: the function distance between children `childA`, `childB`
/// of `spawnEpoch` at parent-time `epoch` of their training, on the trajectory examples
/// (`trajectories.examples`), raw and as a centred moving average over `trajectories.smoothing` times.
public struct FunctionTrajectoryRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var epoch: Double
    public var epochsSinceSpawn: Double
    public var testErrorA: Double
    public var testErrorB: Double
    public var disagreement: Double
    public var disagreementOverIndependent: Double?
    public var disagreementSmoothed: Double
    public var disagreementOverIndependentSmoothed: Double?
}

/// One row of `function_embedding.csv`: the joint t-SNE coordinates of one saved prediction vector
/// (`run` = `parent` or `child-<k>` of `spawnEpoch`, at parent-time `epoch`) among all of a replicate's.
public struct FunctionEmbeddingRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var run: String
    public var spawnEpoch: Double?
    public var epoch: Double
    public var x: Double
    public var y: Double
    public var testError: Double
}

/// Everything a finished task contributes to the tables; stored as `tasks/<id>.json` (its presence
/// marks the task done) and gathered to rank 0.
public struct TaskRecord: Codable, Equatable, Sendable {
    public var id: String
    public var timeline: [ParentTimelineRow] = []
    public var pairs: [ChildPairRow] = []
    public var curves: [BarrierCurveRow] = []
    public var timelinePairs: [TimelinePairRow] = []
    public var kernelDistances: [KernelDistanceRow] = []
    public var kernelVelocities: [KernelVelocityRow] = []
    public var spectra: [NTKSpectrumRow] = []
    public var eigenvalues: [NTKEigenvalueRow] = []
    public var eigenvectors: [NTKEigenvectorRow] = []
    /// Kernel distances between children: `(spawn epoch, child a, child b) -> S`, merged into `child_pairs`.
    public var childKernelDistances: [ChildKernelDistance] = []
    public var machines: [NTKMachineRow] = []
    public var machineRidges: [NTKMachineRidgeRow] = []
    public var linearized: [LinearizedRow] = []
    public var linearizedGrid: [LinearizedGridRow] = []
    public var linearizedRuns: [LinearizedRunRow] = []
    public var hessians: [HessianRow] = []
    public var hessianEigenvalues: [HessianEigenvalueRow] = []
    public var hessianDensity: [HessianDensityRow] = []
    public var hessianQuadrature: [HessianQuadratureRow] = []
    /// Training curve of the parent or child this task trained.
    public var trainingCurves: [TrainingCurveRow] = []
    public var plane: [LossPlaneRow] = []
    public var trajectories: [FunctionTrajectoryRow] = []
    public var embedding: [FunctionEmbeddingRow] = []
    /// Wall-clock seconds of the task (manifest only; not part of any table).
    public var seconds: Double = 0
    /// When and where the task ran (manifest only; absent in records of older versions).
    public var timing: TaskTiming?

    public init(id: String) { self.id = id }

    /// Absent row lists decode as empty, so records written before a table existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func rows<T: Decodable>(_ key: CodingKeys) throws -> [T] { try c.decodeIfPresent([T].self, forKey: key) ?? [] }
        id = try c.decode(String.self, forKey: .id)
        timeline = try rows(.timeline)
        pairs = try rows(.pairs)
        curves = try rows(.curves)
        timelinePairs = try rows(.timelinePairs)
        kernelDistances = try rows(.kernelDistances)
        kernelVelocities = try rows(.kernelVelocities)
        spectra = try rows(.spectra)
        eigenvalues = try rows(.eigenvalues)
        eigenvectors = try rows(.eigenvectors)
        childKernelDistances = try rows(.childKernelDistances)
        machines = try rows(.machines)
        machineRidges = try rows(.machineRidges)
        linearized = try rows(.linearized)
        linearizedGrid = try rows(.linearizedGrid)
        linearizedRuns = try rows(.linearizedRuns)
        hessians = try rows(.hessians)
        hessianEigenvalues = try rows(.hessianEigenvalues)
        hessianDensity = try rows(.hessianDensity)
        hessianQuadrature = try rows(.hessianQuadrature)
        trainingCurves = try rows(.trainingCurves)
        plane = try rows(.plane)
        trajectories = try rows(.trajectories)
        embedding = try rows(.embedding)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
        timing = try c.decodeIfPresent(TaskTiming.self, forKey: .timing)
    }
}

/// When and where a task ran: wall-clock start and end (ISO 8601, UTC), its rank (the first rank of
/// the group for a collective task), the ranks it ran on and the host.
public struct TaskTiming: Codable, Equatable, Sendable {
    public var rank: Int
    public var ranks: Int
    public var host: String
    public var started: String
    public var finished: String
    public var seconds: Double

    public init(rank: Int, ranks: Int, host: String, started: Date, finished: Date) {
        self.rank = rank; self.ranks = ranks; self.host = host
        self.started = Manifest.timestamp(started); self.finished = Manifest.timestamp(finished)
        seconds = finished.timeIntervalSince(started)
    }
}

/// The kernel distance of two children, before it joins their `child_pairs` row.
public struct ChildKernelDistance: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var kernelDistance: Double
}

/// CSV writing with one number format (Swift's shortest round-trip decimal), so identical values
/// give identical bytes.
public enum CSV {
    public static func cell(_ v: Any?) -> String {
        switch v {
        case nil: return ""
        case let b as Bool: return b ? "true" : "false"
        case let d as Double: return d.isFinite ? "\(d)" : (d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf"))
        case let i as Int: return "\(i)"
        case let s as String: return s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        case let o as Double?: return cell(o as Any?)
        default: return "\(v!)"
        }
    }

    /// Header from the `Codable` keys of `T` (snake_case), rows in the given order; a table without
    /// rows is its header alone.
    public static func render<T: Codable>(_ rows: [T]) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        // Column order: the struct's declaration order, read from a Mirror of the first row.
        guard let first = rows.first ?? ColumnProbe.placeholder(T.self) else { return "" }
        let columns = Mirror(reflecting: first).children.compactMap(\.label)
        var out = columns.map(snakeCase).joined(separator: ",") + "\n"
        for row in rows {
            out += Mirror(reflecting: row).children.map { cell(unwrap($0.value)) }.joined(separator: ",") + "\n"
        }
        return out
    }

    private static func unwrap(_ v: Any) -> Any? {
        let m = Mirror(reflecting: v)
        guard m.displayStyle == .optional else { return v }
        return m.children.first?.value
    }

    static func snakeCase(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
