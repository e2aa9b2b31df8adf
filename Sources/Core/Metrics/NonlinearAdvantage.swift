/// The nonlinear advantage of Fort et al. Fig. 9 (docs/metrics.md, `nonlinear_advantage`).
extension ExperimentTables {
    /// The nonlinear advantage per seed (the linearised run and the nonlinear child of the same
    /// replicate, start epoch and seed) and its summary over seeds per (replicate, start epoch).
    static func advantage(_ runs: [LinearizedRunRow]) -> ([NonlinearAdvantageRow], [NonlinearAdvantageSummaryRow]) {
        struct Key: Hashable, Comparable {
            var replicate: Int, startEpoch: Double, seed: Int
            static func < (a: Key, b: Key) -> Bool { (a.replicate, a.startEpoch, a.seed) < (b.replicate, b.startEpoch, b.seed) }
        }
        var lin: [Key: LinearizedRunRow] = [:], non: [Key: LinearizedRunRow] = [:], second: [Key: LinearizedRunRow] = [:]
        for run in runs {
            let key = Key(replicate: run.replicate, startEpoch: run.startEpoch, seed: run.seed)
            switch run.model {
            case LinearizedRow.linearizedModel: lin[key] = run
            case LinearizedRow.secondOrderModel: second[key] = run
            default: non[key] = run
            }
        }
        let rows = lin.keys.filter { non[$0] != nil }.sorted().map { key -> NonlinearAdvantageRow in
            let a = lin[key]!, b = non[key]!, c = second[key]
            return NonlinearAdvantageRow(
                replicate: key.replicate, startEpoch: key.startEpoch, seed: key.seed, startTestError: b.startTestError,
                linearizedLearningRate: a.learningRate, linearizedEpochs: a.epochs, linearizedTestError: a.testError,
                linearizedTestLoss: a.testLoss, linearizedStop: a.stop, nonlinearOptimizer: b.optimizer,
                nonlinearLearningRate: b.learningRate, nonlinearEpochs: b.epochs, nonlinearTrainLoss: b.trainLoss,
                nonlinearTestError: b.testError, nonlinearTestLoss: b.testLoss, nonlinearStop: b.stop,
                nonlinearAdvantage: a.testError - b.testError, secondOrderEpochs: c?.epochs, secondOrderTestError: c?.testError,
                secondOrderTestLoss: c?.testLoss, secondOrderStop: c?.stop, secondOrderAdvantage: c.map { $0.testError - b.testError })
        }
        var summary: [NonlinearAdvantageSummaryRow] = []
        var start = 0
        while start < rows.count {
            var end = start
            while end < rows.count && rows[end].replicate == rows[start].replicate && rows[end].startEpoch == rows[start].startEpoch { end += 1 }
            let g = Array(rows[start..<end])
            let lin = SampleSummary(g.map(\.linearizedTestError)), non = SampleSummary(g.map(\.nonlinearTestError))
            let adv = SampleSummary(g.map(\.nonlinearAdvantage))
            func count(_ stop: RunStop) -> Int { g.filter { $0.nonlinearStop == stop.rawValue }.count }
            let withSecond = g.filter { $0.secondOrderTestError != nil }
            let secondError = withSecond.isEmpty ? nil : SampleSummary(withSecond.map { $0.secondOrderTestError! })
            let secondAdvantage = withSecond.isEmpty ? nil : SampleSummary(withSecond.map { $0.secondOrderAdvantage! })
            summary.append(NonlinearAdvantageSummaryRow(
                replicate: g[0].replicate, startEpoch: g[0].startEpoch, seeds: g.count, startTestError: g[0].startTestError,
                linearizedTestErrorMean: lin.mean, linearizedTestErrorStd: lin.standardDeviation,
                nonlinearTestErrorMean: non.mean, nonlinearTestErrorStd: non.standardDeviation,
                nonlinearAdvantageMean: adv.mean, nonlinearAdvantageStd: adv.standardDeviation,
                nonlinearAdvantageMin: adv.min, nonlinearAdvantageMax: adv.max,
                nonlinearEpochsMean: SampleSummary(g.map(\.nonlinearEpochs)).mean,
                nonlinearStopsPlateau: count(.plateau), nonlinearStopsMaxEpochs: count(.maxEpochs),
                nonlinearStopsDiverged: count(.diverged),
                linearizedDiverged: g.filter { $0.linearizedStop == RunStop.diverged.rawValue }.count,
                secondOrderTestErrorMean: secondError?.mean, secondOrderTestErrorStd: secondError?.standardDeviation,
                secondOrderAdvantageMean: secondAdvantage?.mean, secondOrderAdvantageStd: secondAdvantage?.standardDeviation,
                secondOrderDiverged: withSecond.isEmpty ? nil : withSecond.filter { $0.secondOrderStop == RunStop.diverged.rawValue }.count))
            start = end
        }
        return (rows, summary)
    }
}
