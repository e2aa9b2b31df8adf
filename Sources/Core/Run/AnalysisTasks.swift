import Foundation

// The analyses of DESIGN §1 steps 4–6 beyond the barrier metrics: linearised training, the
// low-learning-rate nonlinear child, Hessian sharpness (ordinary one-rank tasks, pipelined behind
// the parent's checkpoints) and the NTK units (collective over a group of ranks, run after this
// rank's pipelined tasks).

extension ExperimentRunner {
    // MARK: Linearised training and the nonlinear advantage

    /// The settings both runs from `t~` share: SGD, constant learning rate, the experiment's loss.
    func linearizedSettings(learningRate: Double) -> LinearizedSettings {
        let section = config.linearized
        var s = LinearizedSettings()
        s.epochs = section.epochs
        s.learningRate = learningRate
        s.momentum = section.momentum
        s.weightDecay = section.weightDecay
        s.batchSize = section.batchSize > 0 ? section.batchSize : recipe.batchSize
        s.loss = recipe.loss
        s.augment = recipe.augment
        return s
    }

    /// `TrainingIdentity.child` of the runs from linearisation time index `i` (after every spawned child),
    /// shared by the linearised model and the nonlinear child so both see the same batches.
    func linearizedIdentity(_ r: Int, _ i: Int) -> TrainingIdentity {
        TrainingIdentity(seed: config.seed, replicate: r, child: 1 + spawnTimes.count * childrenPerSpawn + i)
    }

    /// Epoch boundaries of a run of `epochs` epochs: 1, 2, ..., and the fractional end.
    static func epochMarks(_ epochs: Double) -> [Double] {
        var marks = Array(stride(from: 1.0, to: epochs, by: 1.0))
        marks.append(epochs)
        return marks
    }

    func trainLinearizedRun(_ r: Int, _ i: Int) throws -> TaskRecord {
        let time = config.linearized.times[i]
        let net = try loadNetwork(paths.parentCheckpoint(replicate: r, epoch: time))
        let settings = linearizedSettings(learningRate: config.linearized.learningRate)
        let progress = ProgressPrinter(label: "r\(r) linearized from \(time)",
                                       endStep: settings.recipe.step(atEpoch: settings.epochs, examples: train.count), interval: 30)
        let epochs = try trainLinearized(around: net, train: train, test: test, settings: settings, identity: linearizedIdentity(r, i),
                                         streams: .training) { t, summary in
            progress.report(step: t.step, epoch: t.epoch, batchSize: settings.batchSize, summary: summary)
        }
        var record = TaskRecord(id: ExperimentTask.linearized(replicate: r, time: i).id)
        record.linearized = epochs.map {
            LinearizedRow(replicate: r, startEpoch: time, model: LinearizedRow.linearizedModel, epochs: $0.epoch,
                          testError: $0.testError, testLoss: $0.testLoss)
        }
        return record
    }

    func trainNonlinearChild(_ r: Int, _ i: Int) throws -> TaskRecord {
        let time = config.linearized.times[i]
        let net = try loadNetwork(paths.parentCheckpoint(replicate: r, epoch: time))
        let settings = linearizedSettings(learningRate: config.linearized.resolvedChildLearningRate)
        let trainer = Trainer(network: net, recipe: settings.recipe, data: train, identity: linearizedIdentity(r, i))
        var record = TaskRecord(id: ExperimentTask.nonlinearChild(replicate: r, time: i).id)
        let progress = ProgressPrinter(label: "r\(r) low-lr child from \(time)", endStep: trainer.finalStep, interval: 30)
        for mark in Self.epochMarks(settings.epochs) {
            try trainer.train(until: settings.recipe.step(atEpoch: mark, examples: train.count), callbacks: [progress])
            let e = evaluate(net, on: test, loss: recipe.loss)
            record.linearized.append(LinearizedRow(replicate: r, startEpoch: time, model: LinearizedRow.nonlinearModel,
                                                   epochs: trainer.epoch, testError: e.errorRate, testLoss: e.meanLoss))
        }
        return record
    }

    // MARK: Hessian

    func measureHessian(_ r: Int, _ i: Int) throws -> TaskRecord {
        let time = config.hessian.times[i]
        let net = try loadNetwork(paths.parentCheckpoint(replicate: r, epoch: time))
        var settings = HessianSettings()
        settings.maxIterations = config.hessian.iterations
        settings.tolerance = config.hessian.tolerance
        settings.loss = recipe.loss
        settings.weightDecay = recipe.weightDecay
        settings.relativeStep = config.hessian.relativeStep
        let data = try train.prefix(count: min(config.hessian.examples, train.count))
        let step = recipe.step(atEpoch: time, examples: train.count)
        let estimate = try topHessianEigenvalue(network: net, data: data, settings: settings,
                                                start: RandomKey(seed: config.seed, replicate: r, role: .hessian, step: step))
        let lr = recipe.schedule.lr(base: recipe.learningRate, epoch: time)
        let mu = recipe.optimizer == .sgd ? recipe.momentum : 0
        let ratios = estimate.escapeRatios(learningRate: lr, momentum: mu)
        var record = TaskRecord(id: ExperimentTask.hessian(replicate: r, time: i).id)
        record.hessians = [HessianRow(replicate: r, epoch: time, lambdaMax: estimate.lambdaMax, learningRate: lr, momentum: mu,
                                      escapeRatio: ratios.gradientDescent, escapeRatioMomentum: ratios.heavyBall,
                                      iterations: estimate.iterations, converged: estimate.converged,
                                      relativeStep: config.hessian.relativeStep ?? HessianSettings.defaultRelativeStep)]
        return record
    }
}
