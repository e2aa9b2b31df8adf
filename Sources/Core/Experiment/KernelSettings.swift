import Yams
/// The experiment file's `ntk` section: empirical-NTK Grams of the parent and of the children on the
/// probe set (docs/metrics.md), their spectra, kernel distances and velocity.
public struct NTKSection: Codable, Equatable, Sendable, ConfigSection {
    /// Parent epochs at which the Gram is built; nil = the measurement times; empty = no parent Grams.
    public var times: [Double]?
    /// Kernel distance between the children of each spawn time (a Gram per child).
    public var children = true
    /// Step of the kernel velocity `S(K_t, K_{t+dt}) / dt`; 0 = no velocity.
    public var velocityDt = 0.4
    /// Eigenvectors (largest eigenvalues first) written per parent Gram.
    public var eigenvectors = 0
    /// Memory per rank for Jacobian chunks and Gram blocks, GiB (`ntkscape ntk --memory-gb` too).
    public var memoryGb = NTKSection.defaultMemoryGb
    /// The one default of the memory budget: experiments, `ntkscape ntk`, `bench ntk` and
    /// `NTKGramOptions()`.
    public static let defaultMemoryGb = 4.0
    /// Ranks that build one Gram together; 0 = automatic (`ExperimentPlanner.kernelGroups`: the
    /// size whose NTK units fit `memoryGb` and that ends the collective phase first).
    public var groupSize = 0
    /// Rows per block of the block-cyclic Gram layout (a multiple of the class count); 0 = automatic.
    public var blockSize = 0

    public init() {}

    static var fields: [ConfigField<NTKSection>] { [
        .init("times", \.times,
              "Parent epochs at which the mC x mC Gram is built on the probe set (spectrum, target alignment, kernel "
                + "distance between times); null = measurement_times; [] = none."),
        .init("children", \.children, "Kernel distance between the final children of each spawn time (one Gram per child)."),
        .init("velocity_dt", \.velocityDt,
              "Step dt (epochs) of the kernel velocity S(K_t, K_t+dt)/dt at each of ntk.times with t+dt <= epochs; 0 = none."),
        .init("eigenvectors", \.eigenvectors, "Top eigenvectors written per parent Gram (0 = eigenvalues only)."),
        .init("memory_gb", \.memoryGb, identity: false,
              "Memory per rank (GiB) for Jacobian chunks and Gram blocks; a Gram that cannot fit is refused up front."),
        .init("group_size", \.groupSize, identity: false,
              "Ranks that build one Gram or Hessian together (ScaLAPACK process group); 0 = automatic: the size whose NTK "
                + "units fit ntk.memory_gb and that ends the NTK/Hessian phase first (docs/plan.md). Smaller groups build "
                + "several Grams at once."),
        .init("block_size", \.blockSize, identity: false,
              "Rows per block of the block-cyclic Gram layout (a multiple of the class count); 0 = automatic."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `kernel_machine` section: kernel regression with the parent's
/// data-dependent NTK (an NTKScape addition; `t = 0` is the classic random-initialisation NTK).
/// Each of `draws` class-balanced draws of examples is split into a fit part and a held-out part;
/// the ridge is chosen from `ridges` by the held-out squared loss (every ridge from one
/// eigendecomposition of the fit part's Gram), then the machine is refitted on all the draw's
/// examples at that ridge, in two forms (with the network's outputs `f_t` as offset, and without).
public struct KernelMachineSection: Codable, Equatable, Sendable, ConfigSection {
    /// Parent epochs at which the kernel machine is fitted; empty = none.
    public var times: [Double] = []
    /// Training examples the machine is fitted on (class-balanced); 0 = automatic from the group's memory.
    public var trainExamples = 0
    /// Independent class-balanced draws of the training examples.
    public var draws = 3
    /// Fraction of each draw held out to choose the ridge (rounded to whole examples per class).
    public var heldOut = 0.2
    /// Ridge grid, relative to the Gram's mean diagonal: `K + ridge * tr(K)/(nC) I`.
    public var ridges: [Double] = KernelMachineSection.defaultRidges

    /// Half decades from 1e-6 to 1 (13 values).
    public static let defaultRidges: [Double] = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1]
    /// Ridges of the grid at least.
    public static let minimumRidges = 10

    public init() {}

    static var fields: [ConfigField<KernelMachineSection>] { [
        .init("times", \.times, "Parent epochs at which the NTK kernel machine is fitted and tested; [] = none."),
        .init("train_examples", \.trainExamples,
              "Training examples n of each draw (class-balanced, a multiple of the class count; its Gram is nC x nC); "
                + "0 = automatic: the most whose Gram and eigendecomposition fit in half of ntk.memory_gb on each rank "
                + "of the group (so it depends on the group's rank count; set it for rank-independent tables)."),
        .init("draws", \.draws, "Independent class-balanced draws of the machine's training examples (mean and spread reported)."),
        .init("held_out", \.heldOut,
              "Fraction of each draw held out to choose the ridge by squared loss (whole examples per class, at least one)."),
        .init("ridges", \.ridges,
              "Ridge grid relative to the Gram's mean diagonal, K + ridge * trace(K)/(nC) * I (at least 10 positive values); "
                + "every one is evaluated from one eigendecomposition."),
    ] }

    static var retiredKeys: [String: (problem: String, fix: String)] { [
        "ridge": ("was replaced: the ridge is now chosen on held-out examples from the grid `kernel_machine.ridges`.",
                  "remove `ridge`; to fix the ridge, give a grid of your own, e.g. `ridges: [...]` with at least 10 values."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `linearized` section: the first-order Taylor model of the parent at `t~`
/// trained with SGD, a low-learning-rate nonlinear child from the same point, and the nonlinear
/// advantage `e(linearised) - e(child)` (docs/metrics.md).
public struct LinearizedSection: Codable, Equatable, Sendable, ConfigSection {
    /// Parent epochs `t~` the linearised runs start from; empty = none.
    public var times: [Double] = []
    /// Training epochs of the linearised model (a fixed length).
    public var epochs = 1.0
    /// The linearised model's learning rate, or a grid chosen on held-out training examples.
    public var learningRate = LearningRateGrid([0.01])
    public var optimizer: OptimizerKind = .sgd
    /// Loss of the linearised model; nil = the recipe's.
    public var loss: LossFunction?
    public var momentum = 0.9
    public var weightDecay = 0.0
    /// Batch size; 0 = the recipe's.
    public var batchSize = 0
    /// Class-balanced training examples held out to choose the learning rate from a grid.
    public var heldOut = 1000
    /// Training epochs of each grid run; nil = `epochs`.
    public var gridEpochs: Double?
    /// Also train the second-order Taylor model (Fig. 18) per time and seed, like the linearised one.
    public var secondOrder = false
    /// The low-learning-rate nonlinear child.
    public var child = LinearizedChildSection()

    public init() {}

    static var fields: [ConfigField<LinearizedSection>] { [
        .init("times", \.times, "Parent epochs t~ around which the network is linearised; [] = none."),
        .init("epochs", \.epochs, "Training epochs of the linearised model (from t~, a fixed length)."),
        .init("learning_rate", \.learningRate,
              "Constant learning rate of the linearised model; a list is a grid: each rate trains on the training "
                + "examples minus held_out for grid_epochs, and the rate with the lowest held-out loss is used."),
        .init("optimizer", \.optimizer, "Optimiser of the linearised model: sgd (heavy-ball momentum) or adam."),
        .init("loss", \.loss, "Loss of the linearised model: cross_entropy or mse; null = recipe.loss."),
        .init("momentum", \.momentum, "SGD heavy-ball momentum of both runs (ignored by adam)."),
        .init("weight_decay", \.weightDecay, "L2 weight decay of both runs (PyTorch weight_decay)."),
        .init("batch_size", \.batchSize, "Examples per step of both runs; 0 = recipe.batch_size."),
        .init("held_out", \.heldOut,
              "Class-balanced training examples held out to choose learning_rate from a grid (a multiple of the class "
                + "count; unused with a single rate)."),
        .init("grid_epochs", \.gridEpochs, "Training epochs of each grid run; null = epochs."),
        .init("second_order", \.secondOrder,
              "Also train the second-order Taylor model f(w~) + J d + d'(Hessian of f)d/2 (BatchNorm frozen as in the "
                + "linearised model; the paper's Fig. 18) per time and seed, with the linearised model's settings, learning "
                + "rate (or its grid's choice) and batches; rows with model second_order in linearized and nonlinear_advantage. "
                + "A step costs about two linearised steps."),
        .init("child", \.child,
              "The low-learning-rate nonlinear child trained from the same t~ on the same batches as the linearised model."),
    ] }

    /// The rates of `learningRate`, in the order written.
    public var learningRates: [Double] { learningRate.values }
    /// Whether a grid task chooses the learning rate.
    public var searchesLearningRate: Bool { learningRate.values.count > 1 }
    public var resolvedGridEpochs: Double { gridEpochs ?? epochs }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

public extension LinearizedSection {
    /// The linearised model's settings (docs/linearized.md) for a parent trained with `recipe`:
    /// `optimizer`, a constant `learningRate`, `loss` (default the recipe's), the shared momentum,
    /// weight decay and batch size (0 = the recipe's), the recipe's augmentation.
    func modelSettings(recipe: TrainingRecipe, learningRate: Double, epochs: Double) -> LinearizedSettings {
        var s = LinearizedSettings()
        s.epochs = epochs
        s.optimizer = optimizer
        s.learningRate = learningRate
        s.momentum = momentum
        s.weightDecay = weightDecay
        s.batchSize = batchSize > 0 ? batchSize : recipe.batchSize
        s.loss = loss ?? recipe.loss
        s.augment = recipe.augment
        return s
    }

    /// The low-learning-rate child's recipe for a parent trained with `parent`: `child.optimizer`
    /// (default the parent's), the constant `child.learningRate`, at most `child.epochs`, the
    /// parent's loss and augmentation, the shared momentum, weight decay and batch size.
    func childRecipe(parent: TrainingRecipe) -> TrainingRecipe {
        var r = TrainingRecipe()
        r.optimizer = child.optimizer ?? parent.optimizer
        r.learningRate = child.learningRate
        r.momentum = momentum
        r.weightDecay = weightDecay
        r.schedule = .constant
        r.batchSize = batchSize > 0 ? batchSize : parent.batchSize
        r.epochs = child.epochs
        r.loss = parent.loss
        r.augment = parent.augment
        return r
    }
}

/// The `linearized.child` section: the nonlinear comparison run from the same parent checkpoint.
public struct LinearizedChildSection: Codable, Equatable, Sendable, ConfigSection {
    /// Maximum training length in epochs.
    public var epochs = 1.0
    /// nil = the recipe's optimiser.
    public var optimizer: OptimizerKind?
    public var learningRate = 0.001
    /// Plateau stop: epochs without enough improvement; 0 = run to `epochs`.
    public var patience = 5
    /// Plateau stop: relative improvement of the best training loss over `patience` epochs below which training stops.
    public var tolerance = 0.001
    /// Independent runs (data order); each also trains the linearised model on the same batches.
    public var seeds = 2

    public init() {}

    static var fields: [ConfigField<LinearizedChildSection>] { [
        .init("epochs", \.epochs, "Maximum training epochs of the child (it stops earlier on a training-loss plateau)."),
        .init("optimizer", \.optimizer, "Optimiser of the child: sgd or adam; null = recipe.optimizer (fresh state)."),
        .init("learning_rate", \.learningRate, "Constant learning rate of the child."),
        .init("patience", \.patience,
              "Plateau stop: after each epoch e > patience, stop when the best training loss improved by at most "
                + "tolerance x its value over the last patience epochs; 0 = always train the full epochs."),
        .init("tolerance", \.tolerance, "Plateau stop: relative improvement threshold (see patience)."),
        .init("seeds", \.seeds,
              "Independent seeds (data order) of the child; the linearised model is trained once per seed on the same "
                + "batches, and the tables report each seed and the mean and spread."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// A learning rate or a grid of them: written as a number (`0.01`) or a list (`[0.0003, 0.001, 0.003]`).
public struct LearningRateGrid: Equatable, Sendable, ConfigRepresentable {
    public var values: [Double]
    public init(_ values: [Double]) { self.values = values }

    static var configType: String { "a number or a list of numbers" }

    static func decode(_ node: Node, at path: ConfigPath) throws -> LearningRateGrid {
        if case .sequence = node { return LearningRateGrid(try [Double].decode(node, at: path)) }
        if case .scalar = node, !node.isNull { return LearningRateGrid([try Double.decode(node, at: path)]) }
        throw path.wrongType(node, expected: configType, example: "[0.0003, 0.001, 0.003]")
    }

    /// One rate is written as a number, so `0.01` and `[0.01]` are the same setting.
    var configValue: ConfigValue { values.count == 1 ? values[0].configValue : values.configValue }
}

/// The experiment file's `hessian` section: PyHessian's three measurements of the Hessian of the
/// training loss (top-k eigenpairs by Lanczos, the trace by Hutchinson, the spectral density by
/// stochastic Lanczos quadrature), the escape criteria, and the eigenvectors' overlap with the
/// logit-gradient centroids.
public struct HessianSection: Codable, Equatable, Sendable, ConfigSection {
    /// Parent epochs at which the Hessian is measured; empty = none.
    public var times: [Double] = []
    /// Training examples (the first N of the training subset) defining the loss.
    public var examples = 1000
    public var method: HVPMethod = .exact
    /// Top eigenpairs reported.
    public var topK = 5
    /// Lanczos iterations (Hessian-vector products) at most.
    public var iterations = 30
    /// Stop when each of the top-k Ritz values changes by less than this, relative.
    public var tolerance = 1e-3
    /// Hutchinson probes of the trace; 0 = no trace.
    public var traceSamples = 10
    /// Stochastic-Lanczos-quadrature runs; 0 = no spectral density.
    public var densityRuns = 1
    /// Lanczos steps per quadrature run.
    public var densitySteps = 20
    /// Points of the smoothed density.
    public var densityPoints = 100
    /// Gaussian smoothing width relative to the spread of the quadrature nodes.
    public var densitySigma = 0.01
    /// Fixed shards of the examples for exact products (results depend on this, not on ranks or threads).
    public var shards = 8
    /// Finite-difference step `h` of the Hessian-vector products; nil = `HessianSettings.defaultRelativeStep`.
    public var relativeStep: Double?

    public init() {}

    static var fields: [ConfigField<HessianSection>] { [
        .init("times", \.times, "Parent epochs at which the Hessian of the training loss is measured; [] = none."),
        .init("examples", \.examples, "Training examples (the first N of the training subset) of the loss; BatchNorm in inference mode."),
        .init("method", \.method,
              "Hessian-vector products: exact (forward-over-reverse through every layer, what autodiff frameworks compute) "
                + "or finite_difference (central differences of gradients over a step of relative_step |w|, for comparison)."),
        .init("top_k", \.topK, "Top Hessian eigenpairs reported (largest algebraic eigenvalues)."),
        .init("iterations", \.iterations, "Lanczos iterations (Hessian-vector products) at most for the top-k eigenpairs."),
        .init("tolerance", \.tolerance, "Stop when each of the top-k Ritz values changes by less than this, relative."),
        .init("trace_samples", \.traceSamples, "Rademacher probes of Hutchinson's trace estimate; 0 = no trace."),
        .init("density_runs", \.densityRuns, "Stochastic Lanczos quadrature runs of the spectral density; 0 = no density."),
        .init("density_steps", \.densitySteps, "Lanczos steps per quadrature run (quadrature nodes per run)."),
        .init("density_points", \.densityPoints, "Points of the Gaussian-smoothed density in hessian_density."),
        .init("density_sigma", \.densitySigma, "Width of the Gaussian smoothing of the density, relative to the spread of the quadrature nodes."),
        .init("shards", \.shards,
              "Fixed shards of the examples of an exact product, dealt to the ranks of a group and their threads; "
                + "results depend on this, never on the rank or thread count."),
        .init("relative_step", \.relativeStep,
              "finite_difference only: step h, relative: eps = h max(||w||, 1) / ||v||; "
                + "null = 0.01, where lambda_max levels off for ReLU networks (smaller steps see activation switching)."),
    ] }

    /// The library settings of this section for a recipe's loss and L2 coefficient.
    public func settings(loss: LossFunction, weightDecay: Double) -> HessianSettings {
        var s = HessianSettings()
        s.maxIterations = iterations
        s.tolerance = tolerance
        s.topK = topK
        s.method = method
        s.shards = shards
        s.loss = loss
        s.weightDecay = weightDecay
        s.relativeStep = relativeStep
        return s
    }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}
