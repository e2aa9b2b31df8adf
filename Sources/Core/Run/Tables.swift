import Foundation

/// The tables of a run, assembled on rank 0 from every task's record, in a canonical order.
public struct ExperimentTables: Codable, Equatable, Sendable {
    public var parentTimeline: [ParentTimelineRow]
    public var childPairs: [ChildPairRow]
    public var barrierCurves: [BarrierCurveRow]
    public var timelinePairs: [TimelinePairRow]
    public var kernelDistance: [KernelDistanceRow]
    public var kernelVelocity: [KernelVelocityRow]
    public var ntkSpectrum: [NTKSpectrumRow]
    public var ntkEigenvalues: [NTKEigenvalueRow]
    public var ntkEigenvectors: [NTKEigenvectorRow]
    public var ntkMachine: [NTKMachineRow]
    public var ntkMachineSummary: [NTKMachineSummaryRow]
    public var ntkMachineRidges: [NTKMachineRidgeRow]
    public var linearized: [LinearizedRow]
    public var linearizedGrid: [LinearizedGridRow]
    public var nonlinearAdvantage: [NonlinearAdvantageRow]
    public var nonlinearAdvantageSummary: [NonlinearAdvantageSummaryRow]
    public var hessian: [HessianRow]
    public var hessianEigenvalues: [HessianEigenvalueRow]
    public var hessianDensity: [HessianDensityRow]
    public var hessianQuadrature: [HessianQuadratureRow]
    public var trainingCurves: [TrainingCurveRow]
    public var lossPlane: [LossPlaneRow]
    public var functionTrajectories: [FunctionTrajectoryRow]
    public var functionEmbedding: [FunctionEmbeddingRow]

    public init(records: [TaskRecord]) {
        let rs = records.sorted { $0.id < $1.id }
        parentTimeline = rs.flatMap(\.timeline).sorted { ($0.replicate, $0.epoch) < ($1.replicate, $1.epoch) }
        let childKernel = Dictionary(rs.flatMap(\.childKernelDistances).map {
            (ChildKey(replicate: $0.replicate, spawnEpoch: $0.spawnEpoch, childA: $0.childA, childB: $0.childB), $0.kernelDistance)
        }, uniquingKeysWith: { a, _ in a })
        childPairs = rs.flatMap(\.pairs).map { row in
            var row = row
            row.kernelDistance = childKernel[ChildKey(replicate: row.replicate, spawnEpoch: row.spawnEpoch,
                                                      childA: row.childA, childB: row.childB)]
            return row
        }.sorted {
            ($0.replicate, $0.spawnEpoch, $0.childA, $0.childB) < ($1.replicate, $1.spawnEpoch, $1.childA, $1.childB)
        }
        kernelDistance = rs.flatMap(\.kernelDistances).sorted {
            ($0.replicate, $0.epochA, $0.epochB) < ($1.replicate, $1.epochA, $1.epochB)
        }
        kernelVelocity = rs.flatMap(\.kernelVelocities).sorted { ($0.replicate, $0.epoch) < ($1.replicate, $1.epoch) }
        ntkSpectrum = rs.flatMap(\.spectra).sorted { ($0.replicate, $0.epoch) < ($1.replicate, $1.epoch) }
        ntkEigenvalues = rs.flatMap(\.eigenvalues).sorted {
            ($0.replicate, $0.epoch, $0.index) < ($1.replicate, $1.epoch, $1.index)
        }
        ntkEigenvectors = rs.flatMap(\.eigenvectors).sorted {
            ($0.replicate, $0.epoch, $0.index, $0.row) < ($1.replicate, $1.epoch, $1.index, $1.row)
        }
        ntkMachine = rs.flatMap(\.machines).sorted {
            ($0.replicate, $0.epoch, $0.form, $0.draw) < ($1.replicate, $1.epoch, $1.form, $1.draw)
        }
        ntkMachineRidges = rs.flatMap(\.machineRidges).sorted {
            ($0.replicate, $0.epoch, $0.form, $0.draw, $0.ridgeRelative) < ($1.replicate, $1.epoch, $1.form, $1.draw, $1.ridgeRelative)
        }
        ntkMachineSummary = Self.machineSummary(ntkMachine)
        linearized = rs.flatMap(\.linearized).sorted {
            ($0.replicate, $0.startEpoch, $0.model, $0.seed, $0.epochs) < ($1.replicate, $1.startEpoch, $1.model, $1.seed, $1.epochs)
        }
        // Within a (replicate, start epoch) the grid keeps the order the rates were written in.
        linearizedGrid = rs.flatMap(\.linearizedGrid).enumerated().sorted {
            ($0.element.replicate, $0.element.startEpoch, $0.offset) < ($1.element.replicate, $1.element.startEpoch, $1.offset)
        }.map(\.element)
        (nonlinearAdvantage, nonlinearAdvantageSummary) = Self.advantage(rs.flatMap(\.linearizedRuns))
        hessian = rs.flatMap(\.hessians).sorted { ($0.replicate, $0.epoch) < ($1.replicate, $1.epoch) }
        hessianEigenvalues = rs.flatMap(\.hessianEigenvalues).sorted {
            ($0.replicate, $0.epoch, $0.index) < ($1.replicate, $1.epoch, $1.index)
        }
        // Within a (replicate, epoch) the rows keep their computed order (grid / run, node order).
        hessianDensity = rs.flatMap(\.hessianDensity)
        hessianQuadrature = rs.flatMap(\.hessianQuadrature)
        // The parent first, then children by spawn time and index; each curve in step order.
        trainingCurves = rs.flatMap(\.trainingCurves).sorted {
            ($0.replicate, $0.spawnEpoch ?? -1, $0.run, $0.step) < ($1.replicate, $1.spawnEpoch ?? -1, $1.run, $1.step)
        }
        lossPlane = rs.flatMap(\.plane).sorted {
            ($0.replicate, $0.spawnEpoch, $0.model, $0.point, $0.j ?? -1, $0.i ?? -1)
                < ($1.replicate, $1.spawnEpoch, $1.model, $1.point, $1.j ?? -1, $1.i ?? -1)
        }
        functionTrajectories = rs.flatMap(\.trajectories).sorted {
            ($0.replicate, $0.spawnEpoch, $0.childA, $0.childB, $0.epoch) < ($1.replicate, $1.spawnEpoch, $1.childA, $1.childB, $1.epoch)
        }
        // Within a replicate the embedding keeps the order of its points (parent, then children).
        functionEmbedding = rs.flatMap(\.embedding).enumerated().sorted {
            ($0.element.replicate, $0.offset) < ($1.element.replicate, $1.offset)
        }.map(\.element)
        barrierCurves = rs.flatMap(\.curves).sorted {
            ($0.replicate, $0.spawnEpoch, $0.childA, $0.childB, $0.alpha) < ($1.replicate, $1.spawnEpoch, $1.childA, $1.childB, $1.alpha)
        }
        timelinePairs = rs.flatMap(\.timelinePairs).sorted {
            ($0.replicate, $0.epochA, $0.epochB) < ($1.replicate, $1.epochA, $1.epochB)
        }
    }

    /// Mean and spread over the draws of each (replicate, epoch, form), in the order of `rows`.
    static func machineSummary(_ rows: [NTKMachineRow]) -> [NTKMachineSummaryRow] {
        var out: [NTKMachineSummaryRow] = []
        var start = 0
        while start < rows.count {
            let first = rows[start]
            var end = start
            while end < rows.count && rows[end].replicate == first.replicate && rows[end].epoch == first.epoch
                    && rows[end].form == first.form { end += 1 }
            let group = Array(rows[start..<end])
            let k = Double(group.count)
            let errors = SampleSummary(group.map(\.testError))
            out.append(NTKMachineSummaryRow(
                replicate: first.replicate, epoch: first.epoch, form: first.form, draws: group.count,
                trainExamples: first.trainExamples, testErrorMean: errors.mean, testErrorStd: errors.standardDeviation ?? 0,
                testErrorMin: errors.min, testErrorMax: errors.max, trainErrorMean: group.map(\.trainError).reduce(0, +) / k,
                trainResidualMean: group.map(\.trainResidual).reduce(0, +) / k,
                ridgeRelativeGeometricMean: exp(group.map { log($0.ridgeRelative) }.reduce(0, +) / k),
                networkTestError: first.networkTestError, batchNorm: first.batchNorm))
            start = end
        }
        return out
    }

    /// Something done to every table, with its file name (`RunPaths.Table`).
    private protocol TableVisitor {
        mutating func visit<Row: Codable>(_ rows: inout [Row], _ name: String) throws
    }

    /// The one list of tables: `write` and `read` both go through it.
    private mutating func visitTables<V: TableVisitor>(_ v: inout V) throws {
        try v.visit(&parentTimeline, RunPaths.Table.parentTimeline)
        try v.visit(&childPairs, RunPaths.Table.childPairs)
        try v.visit(&barrierCurves, RunPaths.Table.barrierCurves)
        try v.visit(&timelinePairs, RunPaths.Table.timelinePairs)
        try v.visit(&kernelDistance, RunPaths.Table.kernelDistance)
        try v.visit(&kernelVelocity, RunPaths.Table.kernelVelocity)
        try v.visit(&ntkSpectrum, RunPaths.Table.ntkSpectrum)
        try v.visit(&ntkEigenvalues, RunPaths.Table.ntkEigenvalues)
        try v.visit(&ntkEigenvectors, RunPaths.Table.ntkEigenvectors)
        try v.visit(&ntkMachine, RunPaths.Table.ntkMachine)
        try v.visit(&ntkMachineSummary, RunPaths.Table.ntkMachineSummary)
        try v.visit(&ntkMachineRidges, RunPaths.Table.ntkMachineRidges)
        try v.visit(&linearized, RunPaths.Table.linearized)
        try v.visit(&linearizedGrid, RunPaths.Table.linearizedGrid)
        try v.visit(&nonlinearAdvantage, RunPaths.Table.nonlinearAdvantage)
        try v.visit(&nonlinearAdvantageSummary, RunPaths.Table.nonlinearAdvantageSummary)
        try v.visit(&hessian, RunPaths.Table.hessian)
        try v.visit(&hessianEigenvalues, RunPaths.Table.hessianEigenvalues)
        try v.visit(&hessianDensity, RunPaths.Table.hessianDensity)
        try v.visit(&hessianQuadrature, RunPaths.Table.hessianQuadrature)
        try v.visit(&trainingCurves, RunPaths.Table.trainingCurves)
        try v.visit(&lossPlane, RunPaths.Table.lossPlane)
        try v.visit(&functionTrajectories, RunPaths.Table.functionTrajectories)
        try v.visit(&functionEmbedding, RunPaths.Table.functionEmbedding)
    }

    private struct Writer: TableVisitor {
        let paths: RunPaths, encoder: JSONEncoder
        mutating func visit<Row: Codable>(_ rows: inout [Row], _ name: String) throws {
            try AtomicFile.write(try CSV.render(rows), to: paths.table(name, ext: "csv"))
            try AtomicFile.write(try encoder.encode(rows), to: paths.table(name, ext: "json"))
        }
    }

    private struct Reader: TableVisitor {
        let paths: RunPaths, decoder: JSONDecoder
        mutating func visit<Row: Codable>(_ rows: inout [Row], _ name: String) throws {
            let path = paths.table(name, ext: "json")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CheckpointError(path: path, problem: "table missing", fix: "run the experiment to the end first (ntkscape run)")
            }
            rows = try decoder.decode([Row].self, from: data)
        }
    }

    /// Writes every table as CSV and JSON (atomically).
    public func write(to paths: RunPaths) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = NonFinite.encoding
        var writer = Writer(paths: paths, encoder: encoder), tables = self
        try tables.visitTables(&writer)
    }

    /// Reads the JSON tables of a finished run.
    public static func read(from paths: RunPaths) throws -> ExperimentTables {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = NonFinite.decoding
        var reader = Reader(paths: paths, decoder: decoder), tables = ExperimentTables(records: [])
        try tables.visitTables(&reader)
        return tables
    }

    /// The key table: per spawn time, mean ± standard deviation over pairs and replicates (a single
    /// value, e.g. one pair's barrier, is shown alone: it has no spread).
    public func summary() -> String {
        func stat(_ xs: [Double]) -> String {
            guard !xs.isEmpty else { return "-" }
            let m = xs.reduce(0, +) / Double(xs.count)
            guard xs.count > 1 else { return String(format: "%.4f", m) }
            let sd = (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot()
            return String(format: "%.4f±%.4f", m, sd)
        }
        let columns = ["spawn", "pairs", "test err", "err barrier", "loss barrier", "w dist (norm)", "D/D_ind", "ReLU dist",
                       "logit-grad align", "kernel dist"]
        var rows = [columns]
        for spawn in Array(Set(childPairs.map(\.spawnEpoch))).sorted() {
            let p = childPairs.filter { $0.spawnEpoch == spawn }
            rows.append([
                "\(spawn)", "\(p.count)", stat(p.flatMap { [$0.testErrorA, $0.testErrorB] }),
                stat(p.map(\.barrierTestErrorMaxMinusMean)), stat(p.map(\.barrierTestLossMaxMinusMean)),
                stat(p.compactMap(\.weightL2Normalized)), stat(p.compactMap(\.functionDisagreementOverIndependent)),
                stat(p.map(\.reluPatternDistance)), stat(p.map(\.logitGradientAlignment)), stat(p.compactMap(\.kernelDistance)),
            ])
        }
        return Self.aligned(rows)
    }

    /// The kernel half, per replicate and parent time: NTK spectrum, alignment, velocity, kernel
    /// machine, Hessian sharpness; then linearised training and the nonlinear advantage. Empty when
    /// no such analysis ran.
    public func kernelSummary() -> String {
        func f(_ x: Double?, _ format: String = "%.4f") -> String { x.map { String(format: format, $0) } ?? "-" }
        var out: [String] = []
        let times = Set(ntkSpectrum.map { [Double($0.replicate), $0.epoch] } + ntkMachine.map { [Double($0.replicate), $0.epoch] }
                        + hessian.map { [Double($0.replicate), $0.epoch] }).sorted { $0.lexicographicallyPrecedes($1) }
        if !times.isEmpty {
            var rows = [["rep", "epoch", "NTK trace", "lambda_max", "eff rank", "target align", "velocity",
                         "machine err (mean)", "net err", "hessian lambda", "hessian trace", "escape (Eq. 10)"]]
            for key in times {
                let r = Int(key[0]), t = key[1]
                let spec = ntkSpectrum.first { $0.replicate == r && $0.epoch == t }
                let vel = kernelVelocity.first { $0.replicate == r && $0.epoch == t }
                let machine = ntkMachineSummary.first {
                    $0.replicate == r && $0.epoch == t && $0.form == KernelMachineForm.offset.rawValue
                }
                let h = hessian.first { $0.replicate == r && $0.epoch == t }
                rows.append(["\(r)", "\(t)", f(spec?.trace, "%.4g"), f(spec?.lambdaMax, "%.4g"), f(spec?.effectiveRank, "%.2f"),
                             f(spec?.targetAlignment), f(vel?.velocity), f(machine?.testErrorMean), f(machine?.networkTestError),
                             f(h?.lambdaMax, "%.4g"), f(h?.trace, "%.4g"), f(h?.escapeRatioUpdate, "%.3f")])
            }
            out.append(Self.aligned(rows))
        }
        if !nonlinearAdvantageSummary.isEmpty {
            func pm(_ m: Double, _ sd: Double?) -> String { f(m) + (sd.map { String(format: "±%.4f", $0) } ?? "") }
            // The second-order model's column only when a run trained it (`linearized.second_order`).
            let second = nonlinearAdvantageSummary.contains { $0.secondOrderTestErrorMean != nil }
            var rows = [["rep", "from epoch", "start err", "seeds", "linearized err"] + (second ? ["second-order err"] : [])
                        + ["nonlinear err", "nonlinear advantage (lin - nonlin)", "child epochs", "child stops"]]
            for a in nonlinearAdvantageSummary {
                let stops = [("plateau", a.nonlinearStopsPlateau), ("max_epochs", a.nonlinearStopsMaxEpochs),
                             ("diverged", a.nonlinearStopsDiverged)].filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
                rows.append(["\(a.replicate)", "\(a.startEpoch)", f(a.startTestError), "\(a.seeds)",
                             pm(a.linearizedTestErrorMean, a.linearizedTestErrorStd)]
                            + (second ? [a.secondOrderTestErrorMean.map { pm($0, a.secondOrderTestErrorStd) } ?? "-"] : [])
                            + [pm(a.nonlinearTestErrorMean, a.nonlinearTestErrorStd),
                               pm(a.nonlinearAdvantageMean, a.nonlinearAdvantageStd), f(a.nonlinearEpochsMean, "%.1f"),
                               stops.joined(separator: ", ")])
            }
            out.append(Self.aligned(rows))
        }
        return out.joined(separator: "\n\n")
    }

    /// Columns padded to their widest cell, two spaces apart.
    static func aligned(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max()! }
        return rows.map { row in row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}

/// Identifies a pair of children across record types.
private struct ChildKey: Hashable {
    var replicate: Int, spawnEpoch: Double, childA: Int, childB: Int
}

public extension LinearizedRow {
    static let linearizedModel = "linearized"
    static let nonlinearModel = "nonlinear"
    /// The second-order Taylor model (`linearized.second_order`).
    static let secondOrderModel = "second_order"
}
