import Foundation

/// The statistics the paper reads off its figures, computed from a run's tables on rank 0
/// (`statistics.csv` / `statistics.json`, docs/metrics.md "Statistics"):
///
/// - per spawn time, the mean of every `child_pairs` summary column with a clustered bootstrap
///   interval (replicates, then pairs within each), and per t~ the mean nonlinear advantage (seeds
///   within replicates);
/// - the basin-fate time (first spawn time whose mean test-error barrier is below
///   `statistics.barrier_threshold`) and the kernel velocity's plateau time, with intervals;
/// - Pearson and Spearman correlations (closed-form and bootstrap intervals) of barrier vs kernel
///   velocity (Fig. 7), nonlinear advantage vs barrier (Fig. 9) and function distance vs barrier (Fig. 6).
///
/// Deterministic: every resampling draws from `RandomStream(seed: seed, role: .bootstrap)`.
public extension ExperimentTables {
    /// The `child_pairs` columns summarised per spawn time (those of `summary`).
    static let summarisedPairColumns: [(name: String, value: (ChildPairRow) -> [Double])] = [
        ("test_error", { [$0.testErrorA, $0.testErrorB] }),
        ("barrier_test_error_max_minus_mean", { [$0.barrierTestErrorMaxMinusMean] }),
        ("barrier_test_loss_max_minus_mean", { [$0.barrierTestLossMaxMinusMean] }),
        ("weight_l2_normalized", { $0.weightL2Normalized.map { [$0] } ?? [] }),
        ("function_disagreement", { [$0.functionDisagreement] }),
        ("function_disagreement_over_independent", { $0.functionDisagreementOverIndependent.map { [$0] } ?? [] }),
        ("relu_pattern_distance", { [$0.reluPatternDistance] }),
        ("logit_gradient_alignment", { [$0.logitGradientAlignment] }),
        ("kernel_distance", { $0.kernelDistance.map { [$0] } ?? [] }),
    ]

    func statistics(_ section: StatisticsSection, seed: UInt64) throws -> [StatisticRow] {
        let settings = BootstrapSettings(level: section.level, resamples: section.resamples, seed: seed)
        try settings.validate()
        var rows: [StatisticRow] = []
        let replicates = Set(childPairs.map(\.replicate) + nonlinearAdvantage.map(\.replicate) + kernelVelocity.map(\.replicate)).sorted()
        /// Values of `rows` grouped by replicate (the clusters of the bootstrap).
        func clusters<Row>(_ rows: [Row], _ replicate: (Row) -> Int, _ value: (Row) -> [Double]) -> [[Double]] {
            replicates.map { r in rows.filter { replicate($0) == r }.flatMap(value) }.filter { !$0.isEmpty }
        }
        let spawns = Set(childPairs.map(\.spawnEpoch)).sorted()

        // Means with intervals, per spawn time / t~.
        for (name, value) in Self.summarisedPairColumns {
            for spawn in spawns {
                let groups = clusters(childPairs.filter { $0.spawnEpoch == spawn }, \.replicate, value)
                guard let interval = try Statistics.clusteredBootstrapMean(groups, settings: settings) else { continue }
                rows.append(StatisticRow(quantity: "mean", column: "\(RunPaths.Table.childPairs).\(name)", epoch: spawn, interval,
                                         method: "clustered-percentile-bootstrap"))
            }
        }
        for start in Set(nonlinearAdvantage.map(\.startEpoch)).sorted() {
            let groups = clusters(nonlinearAdvantage.filter { $0.startEpoch == start }, \.replicate) { [$0.nonlinearAdvantage] }
            guard let interval = try Statistics.clusteredBootstrapMean(groups, settings: settings) else { continue }
            rows.append(StatisticRow(quantity: "mean", column: "\(RunPaths.Table.nonlinearAdvantage).nonlinear_advantage",
                                     epoch: start, interval, method: "clustered-percentile-bootstrap"))
        }

        // Basin-fate time: barriers[spawn][replicate][pair].
        let barrierColumn = "\(RunPaths.Table.childPairs).barrier_test_error_max_minus_mean"
        if !spawns.isEmpty {
            let barriers = spawns.map { s in
                replicates.map { r in childPairs.filter { $0.spawnEpoch == s && $0.replicate == r }.map(\.barrierTestErrorMaxMinusMean) }
            }
            let fate = try Statistics.basinFateTime(spawnTimes: spawns, barriers: barriers, threshold: section.barrierThreshold,
                                                    settings: settings)
            rows.append(StatisticRow(column: barrierColumn, fate))
        }

        // Kernel-velocity plateau time over the replicates that have the full curve.
        let velocityTimes = Set(kernelVelocity.map(\.epoch)).sorted()
        let curves = replicates.compactMap { r -> [Double]? in
            let curve = velocityTimes.compactMap { t in kernelVelocity.first { $0.replicate == r && $0.epoch == t }?.velocity }
            return curve.count == velocityTimes.count && curve.allSatisfy(\.isFinite) ? curve : nil
        }
        if velocityTimes.count >= 2, !curves.isEmpty {
            let plateau = try Statistics.plateauTime(times: velocityTimes, velocities: curves, fraction: section.velocityFraction,
                                                     settings: settings)
            rows.append(StatisticRow(quantity: "plateau_time", column: "\(RunPaths.Table.kernelVelocity).velocity", plateau,
                                     method: "settling-time-replicate-bootstrap"))
        }

        // Correlations, one point per (replicate, spawn time) or per pair.
        func meanBarrier(_ r: Int, _ t: Double) -> Double? {
            let b = childPairs.filter { $0.replicate == r && $0.spawnEpoch == t }.map(\.barrierTestErrorMaxMinusMean)
            return b.isEmpty ? nil : b.reduce(0, +) / Double(b.count)
        }
        var velocityPairs: [(Double, Double)] = []
        for v in kernelVelocity { if let b = meanBarrier(v.replicate, v.epoch) { velocityPairs.append((b, v.velocity)) } }
        var advantagePairs: [(Double, Double)] = []
        for a in nonlinearAdvantageSummary {
            if let b = meanBarrier(a.replicate, a.startEpoch) { advantagePairs.append((b, a.nonlinearAdvantageMean)) }
        }
        let functionPairs = childPairs.compactMap { p in p.functionDisagreementOverIndependent.map { (p.barrierTestErrorMaxMinusMean, $0) } }
        for (column, points) in [("\(barrierColumn) ~ \(RunPaths.Table.kernelVelocity).velocity", velocityPairs),
                                 ("\(barrierColumn) ~ \(RunPaths.Table.nonlinearAdvantageSummary).nonlinear_advantage_mean", advantagePairs),
                                 ("\(barrierColumn) ~ \(RunPaths.Table.childPairs).function_disagreement_over_independent", functionPairs)] {
            let x = points.map(\.0), y = points.map(\.1)
            if let r = try Statistics.pearson(x, y, level: section.level) { rows.append(StatisticRow(column: column, r)) }
            if let r = try Statistics.bootstrapPearson(x, y, settings: settings) {
                rows.append(StatisticRow(quantity: "pearson", column: column, r, method: "pearson-percentile-bootstrap"))
            }
            if let r = try Statistics.spearman(x, y, level: section.level) { rows.append(StatisticRow(column: column, r)) }
            if let r = try Statistics.bootstrapSpearman(x, y, settings: settings) {
                rows.append(StatisticRow(quantity: "spearman", column: column, r, method: "spearman-percentile-bootstrap"))
            }
        }
        return rows
    }

    /// Writes `statistics.csv` and `statistics.json` next to the tables.
    func writeStatistics(_ section: StatisticsSection, seed: UInt64, to paths: RunPaths) throws {
        let rows = try statistics(section, seed: seed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = NonFinite.encoding
        try AtomicFile.write(try CSV.render(rows), to: paths.table(RunPaths.statistics, ext: "csv"))
        try AtomicFile.write(try encoder.encode(rows), to: paths.table(RunPaths.statistics, ext: "json"))
    }
}
