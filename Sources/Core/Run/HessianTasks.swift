import Foundation

// Hessian sharpness of the parent: a task collective over a group of ranks (docs/ntk.md).

extension ExperimentRunner {
    /// The Hessian of the training loss of the parent at `hessian.times[i]`, collective over `group`
    /// (every member runs the same Lanczos iterations; the exact products are sharded over the
    /// group's ranks and every member gets the same record).
    ///
    /// Random streams (role `.hessian`, keyed by seed, replicate and the training step of the time):
    /// child 0 the Lanczos start, child 1 the Hutchinson probes, child 2 the quadrature starts.
    func measureHessian(_ r: Int, _ i: Int, group: Communicator) throws -> TaskRecord {
        let section = config.hessian, time = section.times[i]
        let path = paths.parentCheckpoint(replicate: r, epoch: time)
        let net = try loadForAnalysis(path)
        let settings = section.settings(loss: recipe.loss, weightDecay: recipe.weightDecay)
        let data = try train.prefix(count: min(section.examples, train.count))
        let step = recipe.step(atEpoch: time, examples: train.count)
        func key(_ purpose: Int) -> RandomKey { RandomKey(seed: config.seed, replicate: r, role: .hessian, child: purpose, step: step) }
        let objective = TrainingLoss(network: net, data: data, loss: settings.loss, batchSize: settings.batchSize,
                                     weightDecay: settings.weightDecay, shards: settings.shards)
        let p = objective.parameterCount
        let product = { (v: UnsafePointer<Float>, hv: UnsafeMutablePointer<Float>) in
            objective.hessianVectorProduct(v, into: hv, settings: settings, communicator: group)
        }
        let (estimate, vectors) = try topHessianEigenpairs(of: objective, settings: settings, start: key(0), vectors: true,
                                                           communicator: group)
        let trace = section.traceSamples > 0 ? hutchinsonTrace(dimension: p, samples: section.traceSamples, key: key(1), apply: product) : nil
        var record = TaskRecord(id: ExperimentTask.hessian(replicate: r, time: i).id)
        if section.densityRuns > 0 {
            let density = stochasticLanczosQuadrature(dimension: p, runs: section.densityRuns, steps: section.densitySteps,
                                                      key: key(2), as: Float.self, apply: product)
            let nodes = density.nodes.flatMap { $0 }
            let sigma = section.densitySigma * max(nodes.max()! - nodes.min()!, max(abs(nodes.max()!), 1e-12))
            record.hessianDensity = density.smoothed(points: section.densityPoints, sigma: sigma).map {
                HessianDensityRow(replicate: r, epoch: time, lambda: $0.lambda, density: $0.density)
            }
            for (run, (ns, ws)) in zip(density.nodes, density.weights).enumerated() {
                record.hessianQuadrature += zip(ns, ws).map {
                    HessianQuadratureRow(replicate: r, epoch: time, run: run, node: $0.0, weight: $0.1)
                }
            }
        }
        // The eigenvectors' overlap with the span of the logit-gradient centroids on the same examples.
        let centroids = LogitGradientCentroids(net, probe: data)
        let basis = (0..<net.classes).map { centroids.centroid($0).map(Double.init) }
        let fractions = spanFractions(of: vectors.map { $0.map(Double.init) }, in: basis)
        record.hessianEigenvalues = estimate.topEigenvalues.indices.map {
            HessianEigenvalueRow(replicate: r, epoch: time, index: $0, eigenvalue: estimate.topEigenvalues[$0],
                                 residual: estimate.topResiduals[$0], centroidSpanFraction: fractions[$0])
        }
        // The escape criteria: the scheduled learning rate, and the step the optimiser takes here.
        let lr = recipe.schedule.lr(base: recipe.learningRate, epoch: time)
        let mu = recipe.optimizer == .sgd ? recipe.momentum : 0
        let ratios = estimate.escapeRatios(learningRate: lr, momentum: mu)
        let step1 = try optimizerUpdate(objective, checkpoint: path)
        let hu = Buffer<Float>(count: p)
        step1.update.map(Float.init).withUnsafeBufferPointer { product($0.baseAddress!, hu.pointer) }
        var uHu = 0.0, gu = 0.0
        for k in 0..<p { uHu += step1.update[k] * Double(hu[k]); gu += Double(step1.gradient[k]) * step1.update[k] }
        record.hessians = [HessianRow(
            replicate: r, epoch: time, method: settings.method.rawValue, examples: data.count, lambdaMax: estimate.lambdaMax,
            trace: trace?.mean, traceStandardError: trace.flatMap { $0.samples > 1 ? $0.standardError : nil },
            learningRate: lr, momentum: mu, escapeRatio: ratios.gradientDescent, escapeRatioMomentum: ratios.heavyBall,
            update: step1.source, gradientDotUpdate: gu, updateCurvature: uHu, lossChangeSecondOrder: lr * uHu / 2 - gu,
            escapeRatioUpdate: lr * uHu / (2 * gu), iterations: estimate.iterations, converged: estimate.converged,
            relativeStep: settings.method == .finiteDifference ? settings.relativeStep ?? HessianSettings.defaultRelativeStep : nil,
            batchNorm: batchNormLabel(net))]
        return record
    }

    /// The gradient `g` of `objective` (with its L2 term) at its origin and the update direction `u`
    /// of the recipe's optimiser there — its state restored from the checkpoint at `path` (the
    /// momentum buffer or Adam's moments before this step) — so that the step is `w -> w - eta u`
    /// (`Optimizer.nextUpdateDirection`; the optimiser adds the L2 term to the data gradient itself).
    func optimizerUpdate(_ objective: TrainingLoss<Float>, checkpoint path: String) throws
        -> (gradient: [Float], update: [Double], source: String)
    {
        let p = objective.parameterCount, w = objective.origin.array
        var gradient = [Float](repeating: 0, count: p)
        gradient.withUnsafeMutableBufferPointer { _ = objective.gradient(into: $0.baseAddress!) }
        let wd = Float(objective.weightDecay)
        let data = (0..<p).map { gradient[$0] - wd * w[$0] }
        var optimizer = recipe.makeOptimizer()
        let file = try Checkpoint.read(path).file
        let stored = file.metadata["optimizer.kind"] != nil
        if stored { try optimizer.importState(try file.optimizerState()) }
        let source = recipe.optimizer.rawValue + (stored && optimizer.stepCount > 0 ? "" : "_first_step")
        return (gradient, optimizer.nextUpdateDirection(weights: w, gradient: data), source)
    }
}
