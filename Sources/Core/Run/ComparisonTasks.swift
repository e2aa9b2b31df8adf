import Foundation

// The measurements on trained networks: child pairs (barrier and distances), the parent's timeline
// and its pairs of times, and the BatchNorm preparation every analysis shares.

extension ExperimentRunner {
    func loadNetwork(_ path: String) throws -> Network<Float> {
        try waitFor(path)
        return try Checkpoint.read(path).makeNetwork()
    }

    /// The barrier's BatchNorm policy `policy` with its batches (`barrier.recompute_batches`).
    func interpolationBatchNorm(_ policy: BatchNormPolicy) -> BarrierBatchNorm {
        policy == .interpolate
            ? .interpolate
            : .recompute(batches: config.barrier.recomputeBatches, batchSize: recipe.batchSize, seed: config.seed)
    }

    /// The re-estimation of `analysis.batchnorm: recompute`: `analysis.recompute_batches` batches of
    /// `recipe.batch_size` training examples, the same procedure (and random stream) as the barrier's.
    func analysisRecomputer() throws -> BatchNormRecomputer {
        try BatchNormRecomputer(data: train, batches: config.analysis.recomputeBatches, batchSize: recipe.batchSize,
                                seed: config.seed)
    }

    /// Prepares `net` for an inference-mode analysis by `analysis.batchnorm`: `recompute` resets and
    /// re-estimates its BatchNorm running statistics on fixed training batches; `running` keeps the
    /// checkpoint's. A network without BatchNorm is untouched. Returns `net`.
    @discardableResult
    public func prepareForAnalysis(_ net: Network<Float>) throws -> Network<Float> {
        if config.analysis.batchnorm == .recompute && !net.batchNorms.isEmpty {
            try analysisRecomputer().recompute(net)
        }
        return net
    }

    /// The network of checkpoint `path`, prepared for inference-mode analysis (`prepareForAnalysis`).
    public func loadForAnalysis(_ path: String) throws -> Network<Float> {
        try prepareForAnalysis(try loadNetwork(path))
    }

    /// The `batch_norm` column of a table measured on `net`: the analysis policy, `none` without BatchNorm.
    func batchNormLabel(_ net: Network<Float>) -> String {
        net.batchNorms.isEmpty ? "none" : config.analysis.batchnorm.rawValue
    }

    /// The barrier and the pair metrics of two children. The barrier reads the checkpoints as they
    /// are (its policy sets the statistics along the line); for BatchNorm networks it is measured
    /// under both policies, the configured one filling the headline columns and `test_error_a/b`
    /// (its end points). The other metrics see the children prepared for analysis.
    func comparePair(_ r: Int, _ s: Int, _ a: Int, _ b: Int) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let na = try loadNetwork(paths.childCheckpoint(replicate: r, spawn: spawn, child: a))
        let nb = try loadNetwork(paths.childCheckpoint(replicate: r, spawn: spawn, child: b))
        let primary = config.barrier.bnPolicy
        // BatchNorm networks: both policies, the configured one first; otherwise the policy is moot.
        let policies = na.batchNorms.isEmpty ? [primary] : [primary] + BatchNormPolicy.allCases.filter { $0 != primary }
        var curves: [BatchNormPolicy: InterpolationCurve] = [:]
        for policy in policies {
            curves[policy] = InterpolationCurve(na, nb, gridPoints: config.barrier.points, test: test, train: barrierTrain,
                                                batchNorm: interpolationBatchNorm(policy), recomputeFrom: train, loss: recipe.loss)
        }
        let curve = curves[primary]!
        try prepareForAnalysis(na); try prepareForAnalysis(nb)
        let weights = WeightDistance(na, nb)
        let function = FunctionDistance(na, nb, on: test)
        let relu = ReLUPattern.distance(ReLUPattern(na, probe: probe), ReLUPattern(nb, probe: probe))
        let align = LogitGradientCentroids.alignment(LogitGradientCentroids(na, probe: probe),
                                                     LogitGradientCentroids(nb, probe: probe))
        func ends(_ c: InterpolationCurve) -> (Double, Double) { (c.points.first!.testError, c.points.last!.testError) }
        var record = TaskRecord(id: ExperimentTask.pair(replicate: r, spawn: s, a: a, b: b).id)
        var row = ChildPairRow(
            replicate: r, spawnEpoch: spawn, childA: a, childB: b, testErrorA: ends(curve).0, testErrorB: ends(curve).1,
            barrierTestErrorMaxMinusMean: curve.testError.maxMinusMean, barrierTestErrorMaxMinusLine: curve.testError.maxMinusLine,
            barrierTrainErrorMaxMinusMean: curve.trainError.maxMinusMean, barrierTrainErrorMaxMinusLine: curve.trainError.maxMinusLine,
            barrierTestLossMaxMinusMean: curve.testLoss.maxMinusMean, barrierTestLossMaxMinusLine: curve.testLoss.maxMinusLine,
            barrierBatchNorm: curve.batchNormLayers == 0 ? "none" : curve.batchNorm.description,
            weightL2: weights.l2, weightL2Normalized: weights.normalized, weightCosine: weights.cosine,
            functionDisagreement: function.disagreement, functionDisagreementOverIndependent: function.normalized,
            reluPatternDistance: relu, logitGradientAlignment: align.alignment, batchNorm: batchNormLabel(na))
        if !na.batchNorms.isEmpty {
            for policy in policies { row.setBarrier(policy, curves[policy]!) }
        }
        record.pairs = [row]
        for policy in policies {
            let c = curves[policy]!
            let label = c.batchNormLayers == 0 ? "none" : policy.rawValue
            record.curves += c.points.map {
                BarrierCurveRow(replicate: r, spawnEpoch: spawn, childA: a, childB: b, batchNorm: label, alpha: $0.alpha,
                                testError: $0.testError, testLoss: $0.testLoss, trainError: $0.trainError, trainLoss: $0.trainLoss)
            }
        }
        return record
    }

    func measureTimeline(_ r: Int, _ t: Int) throws -> TaskRecord {
        let time = measurementTimes[t]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let tr = evaluate(net, on: train, loss: recipe.loss), te = evaluate(net, on: test, loss: recipe.loss)
        if config.trajectories.enabled { try savePredictions(net, to: paths.parentPredictions(replicate: r, epoch: time)) }
        var record = TaskRecord(id: ExperimentTask.timeline(replicate: r, time: t).id)
        record.timeline = [ParentTimelineRow(replicate: r, epoch: time, trainError: tr.errorRate, trainLoss: tr.meanLoss,
                                             testError: te.errorRate, testLoss: te.meanLoss, batchNorm: batchNormLabel(net))]
        return record
    }

    func compareTimes(_ r: Int) throws -> TaskRecord {
        var patterns: [ReLUPattern] = [], centroids: [LogitGradientCentroids] = [], label = "none"
        for time in measurementTimes {
            let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
            label = batchNormLabel(net)
            patterns.append(ReLUPattern(net, probe: probe))
            centroids.append(LogitGradientCentroids(net, probe: probe))
        }
        var record = TaskRecord(id: ExperimentTask.timelinePairs(replicate: r).id)
        for i in measurementTimes.indices {
            for j in i..<measurementTimes.count {
                record.timelinePairs.append(TimelinePairRow(
                    replicate: r, epochA: measurementTimes[i], epochB: measurementTimes[j],
                    reluPatternDistance: ReLUPattern.distance(patterns[i], patterns[j]),
                    logitGradientAlignment: LogitGradientCentroids.alignment(centroids[i], centroids[j]).alignment,
                    batchNorm: label))
            }
        }
        return record
    }
}
