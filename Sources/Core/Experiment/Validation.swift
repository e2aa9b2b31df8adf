public extension ExperimentConfig {
    /// The cross-field rules, in one place. `trainExamples` is the size of the training split when
    /// it is known (after loading the data). The examples actually trained on are
    /// `dataset.train_subset` when set, else `trainExamples`; when that number is known the probe
    /// size and the steps of spawn/measurement times are checked against it. Throws
    /// `ExperimentConfigError` (`invalidValue`) naming the key path and the fix.
    func validate(trainExamples: Int? = nil) throws {
        func fail(_ key: String, _ problem: String, fix: String) throws -> Never {
            throw ExperimentConfigError(kind: .invalidValue, file: nil, keyPath: key, problem: problem, fix: fix)
        }
        func list(_ xs: [Double]) -> String { "[" + xs.map(canonicalNumber).joined(separator: ", ") + "]" }
        let epochs = recipe.epochs, classes = dataset.kind.classCount

        if name.isEmpty || name.hasPrefix(".")
            || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
            try fail("name", "is `\(name)`, which cannot name a run directory.",
                     fix: "use letters, digits, `.`, `_` and `-` only, e.g. `name: resnet20-cifar10`.")
        }

        // dataset
        if dataset.trainSubset < 0 {
            try fail("dataset.train_subset", "is \(dataset.trainSubset).",
                     fix: "use 0 (the whole training split) or a positive count.")
        }
        if dataset.testSubset < 0 {
            try fail("dataset.test_subset", "is \(dataset.testSubset).",
                     fix: "use 0 (the whole test split) or a positive count.")
        }
        if let n = trainExamples, dataset.trainSubset > n {
            try fail("dataset.train_subset", "asks for \(dataset.trainSubset) examples but the training split has \(n).",
                     fix: "use at most \(n), or 0 for all of them.")
        }
        if dataset.balancedSubset {
            if dataset.trainSubset == 0 {
                try fail("dataset.balanced_subset", "is true but dataset.train_subset is 0 (the whole split).",
                         fix: "set dataset.train_subset to the subset size, or balanced_subset: false.")
            }
            if let c = classes, dataset.trainSubset % c != 0 {
                try fail("dataset.train_subset",
                         "is \(dataset.trainSubset), not a multiple of the \(c) classes, so it cannot be class-balanced.",
                         fix: "use a multiple of \(c), e.g. \((dataset.trainSubset + c - 1) / c * c).")
            }
        }
        if dataset.augment == .on && dataset.kind.imageShape == nil {
            try fail("dataset.augment", "is on, but \(dataset.kind.rawValue) data have no fixed image size for the pad-4 crop.",
                     fix: "use auto or off.")
        }

        // recipe
        do {
            try recipe.validate()
        } catch let e as ConfigurationError {
            try fail("recipe." + e.field, e.message + ".", fix: "set `recipe.\(e.field)` accordingly.")
        }

        // measurement plan
        if replicates < 1 {
            try fail("replicates", "is \(replicates).", fix: "use 1 or more.")
        }
        if children < 2 {
            try fail("children", "is \(children), but every metric compares a pair of children.", fix: "use 2 or more.")
        }
        let spawn = resolvedSpawnTimes, measure = resolvedMeasurementTimes
        if let t = spawn.first(where: { !($0 >= 0 && $0 < epochs) }) {
            try fail("spawn_times", "contains \(canonicalNumber(t)), outside [0, recipe.epochs = \(canonicalNumber(epochs))): "
                        + "a child must have time left to train.",
                     fix: "remove it, or raise recipe.epochs above it.")
        }
        if zip(spawn, spawn.dropFirst()).contains(where: { $0 >= $1 }) {
            try fail("spawn_times", "must be increasing without repeats, got \(list(spawn)).",
                     fix: "write \(list(Set(spawn).sorted())).")
        }
        if let t = measure.first(where: { !($0 >= 0 && $0 <= epochs) }) {
            try fail("measurement_times",
                     "contains \(canonicalNumber(t)), outside [0, recipe.epochs = \(canonicalNumber(epochs))].",
                     fix: "remove it, or raise recipe.epochs to at least it.")
        }
        if zip(measure, measure.dropFirst()).contains(where: { $0 >= $1 }) {
            try fail("measurement_times", "must be increasing without repeats, got \(list(measure)).",
                     fix: "write \(list(Set(measure).sorted())).")
        }
        // Known training size: checks that need the number of examples (steps per epoch).
        let used: Int? = dataset.trainSubset > 0 ? dataset.trainSubset : trainExamples
        if let n = used, n > 0 {
            let perEpoch = recipe.stepsPerEpoch(examples: n)
            for (key, times) in [("spawn_times", spawn), ("measurement_times", measure)] {
                for (a, b) in zip(times, times.dropFirst())
                where recipe.step(atEpoch: a, examples: n) == recipe.step(atEpoch: b, examples: n) {
                    try fail(key, "has \(canonicalNumber(a)) and \(canonicalNumber(b)), which fall on the same optimiser "
                                + "step (\(perEpoch) steps per epoch).",
                             fix: "drop one, or space them at least 1/\(perEpoch) epoch apart.")
                }
            }
        }
        if probeSize < 1 {
            try fail("probe_size", "is \(probeSize).", fix: "use a positive multiple of the class count, e.g. 100.")
        }
        if let c = classes, probeSize % c != 0 {
            try fail("probe_size", "is \(probeSize), not a multiple of the \(c) classes (the probe set is class-balanced).",
                     fix: "use a multiple of \(c), e.g. \((probeSize + c - 1) / c * c).")
        }
        if let n = used, probeSize > n {
            try fail("probe_size", "is \(probeSize), more than the \(n) training examples used.",
                     fix: "use at most \(n) (a multiple of the class count), or train on more examples.")
        }

        // barrier
        if barrier.points < 3 {
            try fail("barrier.points", "is \(barrier.points); a barrier needs both ends and at least one interior point.",
                     fix: "use 3 or more (31 is the default).")
        }
        if barrier.bnPolicy == .recompute && barrier.recomputeBatches < 1 {
            try fail("barrier.recompute_batches", "is \(barrier.recomputeBatches), but bn_policy recompute needs batches.",
                     fix: "use 1 or more (10 is the default), or bn_policy: interpolate.")
        }
        if barrier.trainSubset < 0 {
            try fail("barrier.train_subset", "is \(barrier.trainSubset).",
                     fix: "use 0 (all training examples) or a positive count.")
        }

        if trainingCurves.everySteps < 0 {
            try fail("training_curves.every_steps", "is \(trainingCurves.everySteps).",
                     fix: "use a positive number of optimiser steps per point (12 is the default), or 0 for none.")
        }

        // analyses at parent times
        for (key, times) in [("ntk.times", resolvedNTKTimes), ("kernel_machine.times", kernelMachine.times),
                             ("linearized.times", linearized.times), ("hessian.times", hessian.times)] {
            if let t = times.first(where: { !($0 >= 0 && $0 <= epochs) }) {
                try fail(key, "contains \(canonicalNumber(t)), outside [0, recipe.epochs = \(canonicalNumber(epochs))].",
                         fix: "remove it, or raise recipe.epochs to at least it.")
            }
            if zip(times, times.dropFirst()).contains(where: { $0 >= $1 }) {
                try fail(key, "must be increasing without repeats, got \(list(times)).", fix: "write \(list(Set(times).sorted())).")
            }
        }
        if !(ntk.velocityDt >= 0 && ntk.velocityDt.isFinite) {
            try fail("ntk.velocity_dt", "is \(canonicalNumber(ntk.velocityDt)).", fix: "use a positive step in epochs (0.4 is the default), or 0 for none.")
        }
        if ntk.eigenvectors < 0 || ntk.eigenvectors > probeSize * (classes ?? 1) {
            try fail("ntk.eigenvectors", "is \(ntk.eigenvectors); the Gram has probe_size x classes rows.",
                     fix: "use 0 up to the Gram size.")
        }
        if !(ntk.memoryGb > 0) {
            try fail("ntk.memory_gb", "is \(canonicalNumber(ntk.memoryGb)).", fix: "use the memory per rank in GiB, e.g. 4.")
        }
        if ntk.groupSize < 0 {
            try fail("ntk.group_size", "is \(ntk.groupSize).", fix: "use 0 (all ranks) or a positive rank count.")
        }
        if ntk.blockSize < 0 || (classes.map { ntk.blockSize % $0 != 0 } ?? false) {
            try fail("ntk.block_size", "is \(ntk.blockSize); a block must hold whole examples (all class rows).",
                     fix: "use 0 (automatic) or a positive multiple of the class count.")
        }
        let m = kernelMachine.trainExamples
        if !kernelMachine.times.isEmpty {
            if m < 0 || (m > 0 && (classes.map { m % $0 != 0 } ?? false)) {
                try fail("kernel_machine.train_examples", "is \(m); the machine's training set is class-balanced.",
                         fix: "use 0 (automatic) or a positive multiple of the class count, e.g. 2000.")
            }
            if let n = used, m > n {
                try fail("kernel_machine.train_examples", "is \(m), more than the \(n) training examples used.",
                         fix: "use at most \(n), or 0 (automatic).")
            }
            if kernelMachine.draws < 1 {
                try fail("kernel_machine.draws", "is \(kernelMachine.draws).", fix: "use 1 or more (3 gives a spread).")
            }
            if !(kernelMachine.heldOut > 0 && kernelMachine.heldOut < 1) {
                try fail("kernel_machine.held_out", "is \(canonicalNumber(kernelMachine.heldOut)); the ridge is chosen on a held-out part.",
                         fix: "use a fraction in (0, 1), e.g. 0.2.")
            }
            if m > 0, let c = classes, m / c < 2 {
                try fail("kernel_machine.train_examples", "is \(m): fewer than 2 examples per class cannot be split into fit and held-out parts.",
                         fix: "use at least \(2 * c).")
            }
            let ridges = kernelMachine.ridges
            if ridges.count < KernelMachineSection.minimumRidges {
                try fail("kernel_machine.ridges", "has \(ridges.count) values; the ridge is chosen from a grid.",
                         fix: "give at least \(KernelMachineSection.minimumRidges) values, e.g. the default half decades 1e-6 ... 1.")
            }
            if let bad = ridges.first(where: { !($0 > 0 && $0.isFinite) }) {
                try fail("kernel_machine.ridges", "contains \(canonicalNumber(bad)); K + ridge I must be positive definite.",
                         fix: "use positive values only, e.g. 1e-4.")
            }
            if Set(ridges).count != ridges.count || ridges != ridges.sorted() {
                try fail("kernel_machine.ridges", "is not strictly increasing.", fix: "list each ridge once, smallest first.")
            }
        }
        if analysis.recomputeBatches < 1 {
            try fail("analysis.recompute_batches", "is \(analysis.recomputeBatches).",
                     fix: "use 1 or more training batches, e.g. 10.")
        }
        if let n = used, analysis.batchnorm == .recompute, model.hasBatchNorm,
           analysis.recomputeBatches * recipe.batchSize > n {
            try fail("analysis.recompute_batches",
                     "asks for \(analysis.recomputeBatches) batches of \(recipe.batchSize) but \(n) training examples are used.",
                     fix: "use at most \(max(1, n / recipe.batchSize)), or analysis.batchnorm: running.")
        }
        if !linearized.times.isEmpty {
            let lin = linearized, child = linearized.child
            for (key, value) in [("linearized.epochs", lin.epochs), ("linearized.child.epochs", child.epochs),
                                 ("linearized.grid_epochs", lin.gridEpochs ?? 1)] where !(value <= TrainingRecipe.maximumEpochs) {
                try fail(key, "is \(canonicalNumber(value)), more than \(Int(TrainingRecipe.maximumEpochs)) epochs.",
                         fix: "use a number of epochs such as 1.")
            }
            if !(lin.epochs > 0) {
                try fail("linearized.epochs", "is \(canonicalNumber(lin.epochs)).", fix: "use a positive number of epochs, e.g. 1.")
            }
            if lin.learningRates.isEmpty {
                try fail("linearized.learning_rate", "is an empty list.",
                         fix: "write one rate (e.g. 0.01) or a grid of several (e.g. [0.0003, 0.001, 0.003]).")
            }
            if let lr = lin.learningRates.first(where: { !($0 > 0) }) {
                try fail("linearized.learning_rate", "contains \(canonicalNumber(lr)).", fix: "use positive learning rates, e.g. 0.01.")
            }
            if Set(lin.learningRates).count != lin.learningRates.count {
                try fail("linearized.learning_rate", "repeats a rate in \(list(lin.learningRates)).",
                         fix: "write \(list(Set(lin.learningRates).sorted())).")
            }
            if !(lin.momentum >= 0 && lin.momentum < 1) {
                try fail("linearized.momentum", "is \(canonicalNumber(lin.momentum)).", fix: "use a value in [0, 1), e.g. 0.9.")
            }
            if !(lin.weightDecay >= 0) {
                try fail("linearized.weight_decay", "is \(canonicalNumber(lin.weightDecay)).", fix: "use 0 or a positive value.")
            }
            if lin.batchSize < 0 {
                try fail("linearized.batch_size", "is \(lin.batchSize).", fix: "use 0 (the recipe's) or a positive size.")
            }
            if lin.searchesLearningRate {
                if lin.heldOut < 1 || (classes.map { lin.heldOut % $0 != 0 } ?? false) {
                    try fail("linearized.held_out", "is \(lin.heldOut); the held-out set is class-balanced.",
                             fix: "use a positive multiple of the class count, e.g. 1000.")
                }
                if let n = used, lin.heldOut >= n {
                    try fail("linearized.held_out", "is \(lin.heldOut), leaving none of the \(n) training examples to train on.",
                             fix: "use a fraction of them, e.g. \(max(1, n / 10 / (classes ?? 1)) * (classes ?? 1)).")
                }
                if let g = lin.gridEpochs, !(g > 0) {
                    try fail("linearized.grid_epochs", "is \(canonicalNumber(g)).", fix: "use a positive number of epochs, or null for linearized.epochs.")
                }
            }
            if !(child.epochs > 0) {
                try fail("linearized.child.epochs", "is \(canonicalNumber(child.epochs)).",
                         fix: "use a positive maximum number of epochs, e.g. 10.")
            }
            if !(child.learningRate > 0) {
                try fail("linearized.child.learning_rate", "is \(canonicalNumber(child.learningRate)).",
                         fix: "use a positive learning rate, e.g. 0.001.")
            }
            if child.patience < 0 {
                try fail("linearized.child.patience", "is \(child.patience).", fix: "use 0 (no plateau stop) or a positive number of epochs, e.g. 5.")
            }
            if !(child.tolerance >= 0 && child.tolerance < 1) {
                try fail("linearized.child.tolerance", "is \(canonicalNumber(child.tolerance)).",
                         fix: "use a relative improvement in [0, 1), e.g. 0.001.")
            }
            if child.seeds < 1 {
                try fail("linearized.child.seeds", "is \(child.seeds).", fix: "use 1 or more (2 is the default, as in the paper).")
            }
        }
        if !hessian.times.isEmpty {
            if hessian.examples < 1 {
                try fail("hessian.examples", "is \(hessian.examples).", fix: "use a positive count, e.g. 1000.")
            }
            if let n = used, hessian.examples > n {
                try fail("hessian.examples", "is \(hessian.examples), more than the \(n) training examples used; the Hessian "
                            + "would silently be measured on \(n).",
                         fix: "use at most \(n), or train on more examples (dataset.train_subset).")
            }
            if hessian.iterations < 2 {
                try fail("hessian.iterations", "is \(hessian.iterations).", fix: "use at least 2 (30 is the default).")
            }
            if hessian.topK < 1 || hessian.topK > hessian.iterations {
                try fail("hessian.top_k", "is \(hessian.topK) with \(hessian.iterations) iterations.",
                         fix: "use 1...hessian.iterations (Lanczos finds at most one eigenpair per iteration; 5 is the default).")
            }
            if hessian.traceSamples < 0 {
                try fail("hessian.trace_samples", "is \(hessian.traceSamples).", fix: "use 0 (no trace) or a positive count, e.g. 10.")
            }
            if hessian.densityRuns < 0 {
                try fail("hessian.density_runs", "is \(hessian.densityRuns).", fix: "use 0 (no density) or a positive count, e.g. 1.")
            }
            if hessian.densityRuns > 0 && hessian.densitySteps < 2 {
                try fail("hessian.density_steps", "is \(hessian.densitySteps).", fix: "use at least 2 (20 is the default).")
            }
            if hessian.densityRuns > 0 && hessian.densityPoints < 2 {
                try fail("hessian.density_points", "is \(hessian.densityPoints).", fix: "use at least 2 (100 is the default).")
            }
            if !(hessian.densitySigma > 0) {
                try fail("hessian.density_sigma", "is \(canonicalNumber(hessian.densitySigma)).", fix: "use a small positive value, e.g. 0.01.")
            }
            if hessian.shards < 1 {
                try fail("hessian.shards", "is \(hessian.shards).", fix: "use a positive count, e.g. 8 (at least the ranks of a group, to use them all).")
            }
            if let h = hessian.relativeStep, !(h > 0 && h < 1) {
                try fail("hessian.relative_step", "is \(canonicalNumber(h)).", fix: "use a value in (0, 1), e.g. 0.01, or null.")
            }
            if !(hessian.tolerance > 0) {
                try fail("hessian.tolerance", "is \(canonicalNumber(hessian.tolerance)).", fix: "use a small positive value, e.g. 1e-3.")
            }
        }

        try validateFigureAnalyses()

        if plan.groupRanks < 0 {
            try fail("plan.group_ranks", "is \(plan.groupRanks).", fix: "use 0 (automatic), 1 (no groups) or a larger rank count.")
        }
        for (key, value) in [("plan.bandwidth_gb_s", plan.bandwidthGbS), ("plan.latency_us", plan.latencyUs),
                             ("plan.rank_tflops", plan.rankTflops)] where !(value.isFinite && value >= 0) || (key != "plan.latency_us" && value == 0) {
            try fail(key, "is \(value).", fix: key == "plan.latency_us" ? "use 0 or more microseconds." : "use a positive number.")
        }
        if let t = threads, t < 1 {
            try fail("threads", "is \(t).", fix: "use 1 or more, or omit it for the default.")
        }
    }

    /// The rules of the `plane`, `trajectories` and `statistics` sections.
    private func validateFigureAnalyses() throws {
        func fail(_ key: String, _ problem: String, fix: String) throws -> Never {
            throw ExperimentConfigError(kind: .invalidValue, file: nil, keyPath: key, problem: problem, fix: fix)
        }
        let spawn = resolvedSpawnTimes, classes = dataset.kind.classCount
        let p = plane
        if !p.spawnTimes.isEmpty {
            if let t = p.spawnTimes.first(where: { !spawn.contains($0) }) {
                try fail("plane.spawn_times", "contains \(canonicalNumber(t)), which is not one of spawn_times.",
                         fix: "use spawn times from spawn_times: [\(spawn.map(canonicalNumber).joined(separator: ", "))].")
            }
            if zip(p.spawnTimes, p.spawnTimes.dropFirst()).contains(where: { $0 >= $1 }) {
                try fail("plane.spawn_times", "must be increasing without repeats.", fix: "write \(Set(p.spawnTimes).sorted()).")
            }
            if p.points < 2 || p.points > 201 {
                try fail("plane.points", "is \(p.points).", fix: "use 2...201 points per axis (21 is the default).")
            }
            if !(p.margin >= 0 && p.margin <= 10) {
                try fail("plane.margin", "is \(canonicalNumber(p.margin)).", fix: "use a fraction in [0, 10], e.g. 0.25.")
            }
            if p.parts < 1 || p.parts > p.points * p.points {
                try fail("plane.parts", "is \(p.parts) for \(p.points * p.points) grid points.",
                         fix: "use 1...\(p.points * p.points) (8 is the default).")
            }
            if p.testSubset < 0 {
                try fail("plane.test_subset", "is \(p.testSubset).", fix: "use 0 (the whole test subset) or a positive count.")
            }
        }
        let t = trajectories
        if t.enabled {
            if t.examples < 1 {
                try fail("trajectories.examples", "is \(t.examples).", fix: "use a positive multiple of the class count, e.g. 1000.")
            }
            if let c = classes, t.examples % c != 0 {
                try fail("trajectories.examples", "is \(t.examples), not a multiple of the \(c) classes, so it cannot be class-balanced.",
                         fix: "use a multiple of \(c), e.g. \((t.examples + c - 1) / c * c).")
            }
            if dataset.testSubset > 0 && t.examples > dataset.testSubset {
                try fail("trajectories.examples", "is \(t.examples), more than the \(dataset.testSubset) test examples used.",
                         fix: "use at most dataset.test_subset examples.")
            }
            if !(t.every > 0 && t.every.isFinite) {
                try fail("trajectories.every", "is \(canonicalNumber(t.every)).", fix: "use a positive number of epochs, e.g. 1.")
            }
            if t.smoothing < 1 || t.smoothing % 2 == 0 {
                try fail("trajectories.smoothing", "is \(t.smoothing); a centred window has an odd width.",
                         fix: "use 1 (none), 3, 5, ...")
            }
            let e = t.tsne, n = trajectoryPoints
            if e.iterations < 250 {
                try fail("trajectories.tsne.iterations", "is \(e.iterations).", fix: "use at least 250 (the early-exaggeration phase); 1000 is the default.")
            }
            if !(e.perplexity >= 1 && e.perplexity < Double(n - 1)) {
                try fail("trajectories.tsne.perplexity", "is \(canonicalNumber(e.perplexity)), but the embedding has \(n) points per "
                            + "replicate; the perplexity (effective neighbours) must be below the number of other points.",
                         fix: "use 1...\(max(1, n - 3)) (30 is usual), or save more predictions (smaller trajectories.every).")
            }
            if !(e.theta >= 0 && e.theta <= 1) {
                try fail("trajectories.tsne.theta", "is \(canonicalNumber(e.theta)).", fix: "use a value in [0, 1] (0.5 is the default).")
            }
        }
        let s = statistics
        if !(s.level > 0 && s.level < 1) {
            try fail("statistics.level", "is \(canonicalNumber(s.level)).", fix: "use a level in (0, 1), e.g. 0.95.")
        }
        if s.resamples < 100 {
            try fail("statistics.resamples", "is \(s.resamples).", fix: "use at least 100 (2000 is the default).")
        }
        if !(s.barrierThreshold >= 0 && s.barrierThreshold.isFinite) {
            try fail("statistics.barrier_threshold", "is \(canonicalNumber(s.barrierThreshold)).", fix: "use a test-error difference >= 0, e.g. 0.01.")
        }
        if !(s.velocityFraction > 0 && s.velocityFraction < 1) {
            try fail("statistics.velocity_fraction", "is \(canonicalNumber(s.velocityFraction)).", fix: "use a fraction in (0, 1), e.g. 0.1.")
        }
    }
}
