import Foundation

// Linearised training around the parent and the low-learning-rate nonlinear child from the same
// point (one-rank tasks, pipelined behind the parent's checkpoints; docs/linearized.md).

extension ExperimentRunner {
    func linearizedSettings(learningRate: Double, epochs: Double) -> LinearizedSettings {
        config.linearized.modelSettings(recipe: recipe, learningRate: learningRate, epochs: epochs)
    }

    var nonlinearChildRecipe: TrainingRecipe { config.linearized.childRecipe(parent: recipe) }

    /// `TrainingIdentity.child` of seed `k` of the runs from linearisation time index `i` (after every
    /// spawned child), shared by the linearised model and the nonlinear child so both see the same
    /// batches. The grid runs use seed 0's identity on the linearised streams.
    func linearizedIdentity(_ r: Int, _ i: Int, seed k: Int) -> TrainingIdentity {
        TrainingIdentity(seed: config.seed, replicate: r,
                         child: 1 + spawnTimes.count * childrenPerSpawn + i * config.linearized.child.seeds + k)
    }

    /// Epoch boundaries of a run of `epochs` epochs: 1, 2, ..., and the fractional end.
    static func epochMarks(_ epochs: Double) -> [Double] {
        var marks = Array(stride(from: 1.0, to: epochs, by: 1.0))
        marks.append(epochs)
        return marks
    }

    /// Trains the linearised model once per rate of the grid on the training examples minus a
    /// class-balanced held-out set and records each rate's held-out loss; the lowest is chosen.
    func chooseLinearizedLearningRate(_ r: Int, _ i: Int) throws -> TaskRecord {
        let section = config.linearized, time = section.times[i]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let (fit, heldOut) = try train.heldOutSplit(count: section.heldOut, seed: config.seed, replicate: r)
        let settings = linearizedSettings(learningRate: section.learningRates[0], epochs: section.resolvedGridEpochs)
        var progress: [Double: ProgressPrinter] = [:]
        let end = settings.recipe.step(atEpoch: settings.epochs, examples: fit.count)
        let points = try linearizedLearningRateGrid(
            around: net, fit: fit, heldOut: heldOut, settings: settings, learningRates: section.learningRates,
            identity: linearizedIdentity(r, i, seed: 0)) { lr, t, summary in
            if progress[lr] == nil { progress[lr] = ProgressPrinter(label: "r\(r) linearized grid lr \(lr) from \(time)", endStep: end, interval: 30) }
            progress[lr]!.report(step: t.step, epoch: t.epoch, batchSize: settings.batchSize, summary: summary)
        }
        guard let chosen = chosenLearningRateIndex(points) else {
            throw ConfigurationError(field: "linearized.learning_rate",
                                     message: "every rate of the grid diverged from epoch \(time); add smaller rates")
        }
        var record = TaskRecord(id: ExperimentTask.linearizedGrid(replicate: r, time: i).id)
        record.linearizedGrid = points.enumerated().map { k, p in
            LinearizedGridRow(replicate: r, startEpoch: time, learningRate: p.learningRate, epochs: settings.epochs,
                              fitExamples: fit.count, heldOutExamples: heldOut.count, heldOutLoss: p.heldOutLoss,
                              heldOutError: p.heldOutError, stop: p.stop.rawValue, chosen: k == chosen)
        }
        log("rank \(comm.rank): linearized learning rate from epoch \(time): \(points[chosen].learningRate) "
            + "(held-out losses \(points.map { $0.heldOutLoss.map { String(format: "%.4f", $0) } ?? "diverged" }))")
        return record
    }

    /// The linearised model's learning rate at time index `i`: the single rate, or the grid's choice
    /// (read from the grid task's record, waiting for it if another rank runs it).
    func linearizedLearningRate(_ r: Int, _ i: Int) throws -> Double {
        let section = config.linearized
        guard section.searchesLearningRate else { return section.learningRates[0] }
        let path = paths.taskDone(ExperimentTask.linearizedGrid(replicate: r, time: i).id)
        try waitFor(path)
        let record = try JSONDecoder().decode(TaskRecord.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
        guard let chosen = record.linearizedGrid.first(where: \.chosen) else {
            throw CheckpointError(path: path, problem: "the grid record has no chosen learning rate",
                                  fix: "delete it and rerun (ntkscape run) to redo the grid")
        }
        return chosen.learningRate
    }

    /// The last evaluated state of a run (the start when no epoch finished) as a run row.
    func runRow(_ run: EpochRun, model: String, r: Int, time: Double, seed k: Int, optimizer: OptimizerKind,
                learningRate: Double, start: LossSummary) -> LinearizedRunRow {
        let last = run.rows.last
        return LinearizedRunRow(replicate: r, startEpoch: time, model: model, seed: k, optimizer: optimizer.rawValue,
                                learningRate: learningRate, startTestError: start.errorRate, startTestLoss: start.meanLoss,
                                epochs: last?.epoch ?? 0, trainLoss: last?.trainLoss, testError: last?.testError ?? start.errorRate,
                                testLoss: last?.testLoss ?? start.meanLoss, stop: run.stop.rawValue)
    }

    func linearizedRows(_ run: EpochRun, model: String, r: Int, time: Double, seed k: Int, network: Network<Float>) -> [LinearizedRow] {
        run.rows.map {
            LinearizedRow(replicate: r, startEpoch: time, model: model, seed: k, epochs: $0.epoch, trainLoss: $0.trainLoss,
                          trainError: $0.trainError, testError: $0.testError, testLoss: $0.testLoss, batchNorm: batchNormLabel(network))
        }
    }

    func trainLinearizedModel(_ r: Int, _ i: Int, seed k: Int) throws -> TaskRecord {
        try trainTaylorModel(LinearizedModel<Float>.self, r, i, seed: k, task: .linearized(replicate: r, time: i, seed: k),
                             label: LinearizedRow.linearizedModel, name: "linearized")
    }

    /// The second-order Taylor model from the same point as the linearised run of seed `k`: its
    /// settings, learning rate (or grid choice), identity and streams, so both see the same batches.
    func trainSecondOrderModel(_ r: Int, _ i: Int, seed k: Int) throws -> TaskRecord {
        try trainTaylorModel(SecondOrderModel<Float>.self, r, i, seed: k, task: .secondOrder(replicate: r, time: i, seed: k),
                             label: LinearizedRow.secondOrderModel, name: "second-order")
    }

    /// Trains the Taylor model `Model` around the parent at `linearized.times[i]` with the linearised
    /// settings and learning rate, on the batches of seed `k`; its rows are labelled `label`.
    func trainTaylorModel<Model: TaylorModel>(_ model: Model.Type, _ r: Int, _ i: Int, seed k: Int, task: ExperimentTask,
                                              label: String, name: String) throws -> TaskRecord {
        let time = config.linearized.times[i]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let lr = try linearizedLearningRate(r, i)
        let settings = linearizedSettings(learningRate: lr, epochs: config.linearized.epochs)
        let start = evaluate(net, on: test, loss: settings.loss)
        let progress = ProgressPrinter(label: "r\(r) \(name) from \(time) seed \(k)",
                                       endStep: settings.recipe.step(atEpoch: settings.epochs, examples: train.count), interval: 30)
        let run = try trainTaylorRun(model, around: net, train: train, test: test, settings: settings,
                                     identity: linearizedIdentity(r, i, seed: k), streams: .training) { t, summary in
            progress.report(step: t.step, epoch: t.epoch, batchSize: settings.batchSize, summary: summary)
        }
        var record = TaskRecord(id: task.id)
        record.linearized = linearizedRows(run, model: label, r: r, time: time, seed: k, network: net)
        record.linearizedRuns = [runRow(run, model: label, r: r, time: time, seed: k, optimizer: settings.optimizer,
                                        learningRate: lr, start: start)]
        return record
    }

    /// The low-learning-rate nonlinear child, on one rank or a data-parallel `group` (every member
    /// trains and evaluates; the plateau stop is agreed, `trainUntilPlateau`; it writes no files).
    func trainNonlinearChild(_ r: Int, _ i: Int, seed k: Int, group: Communicator = SerialCommunicator()) throws -> TaskRecord {
        let section = config.linearized, time = section.times[i]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let childRecipe = nonlinearChildRecipe
        let start = evaluate(net, on: test, loss: recipe.loss)
        // A fresh optimiser (no momentum or moments from the parent), step 0: the batches of seed k
        // are those of the linearised run of seed k.
        let trainer = Trainer(network: net, recipe: childRecipe, data: train, identity: linearizedIdentity(r, i, seed: k), group: group)
        trainer.learningRateSetting = "linearized.child.learning_rate"
        let progress = ProgressPrinter(label: "r\(r) low-lr child from \(time) seed \(k)", endStep: trainer.finalStep, interval: 30)
        let run = try trainUntilPlateau(trainer, test: test, loss: recipe.loss,
                                        plateau: PlateauStop(patience: section.child.patience, tolerance: section.child.tolerance),
                                        callbacks: [progress])
        var record = TaskRecord(id: ExperimentTask.nonlinearChild(replicate: r, time: i, seed: k).id)
        record.linearized = linearizedRows(run, model: LinearizedRow.nonlinearModel, r: r, time: time, seed: k, network: net)
        record.linearizedRuns = [runRow(run, model: LinearizedRow.nonlinearModel, r: r, time: time, seed: k,
                                        optimizer: childRecipe.optimizer, learningRate: childRecipe.learningRate, start: start)]
        return record
    }
}
