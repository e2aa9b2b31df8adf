import Foundation

/// The tables of a run, assembled on rank 0 from every task's record, in a canonical order.
public struct ExperimentTables: Codable, Equatable, Sendable {
    public var parentTimeline: [ParentTimelineRow]
    public var childPairs: [ChildPairRow]
    public var barrierCurves: [BarrierCurveRow]
    public var timelinePairs: [TimelinePairRow]

    public init(records: [TaskRecord]) {
        let rs = records.sorted { $0.id < $1.id }
        parentTimeline = rs.flatMap(\.timeline).sorted { ($0.replicate, $0.epoch) < ($1.replicate, $1.epoch) }
        childPairs = rs.flatMap(\.pairs).sorted {
            ($0.replicate, $0.spawnEpoch, $0.childA, $0.childB) < ($1.replicate, $1.spawnEpoch, $1.childA, $1.childB)
        }
        barrierCurves = rs.flatMap(\.curves).sorted {
            ($0.replicate, $0.spawnEpoch, $0.childA, $0.childB, $0.alpha) < ($1.replicate, $1.spawnEpoch, $1.childA, $1.childB, $1.alpha)
        }
        timelinePairs = rs.flatMap(\.timelinePairs).sorted {
            ($0.replicate, $0.epochA, $0.epochB) < ($1.replicate, $1.epochA, $1.epochB)
        }
    }

    /// Writes every table as CSV and JSON (atomically).
    public func write(to paths: RunPaths) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        func put<T: Encodable>(_ rows: [T], _ name: String) throws {
            try AtomicFile.write(try CSV.render(rows), to: paths.table(name, ext: "csv"))
            try AtomicFile.write(try encoder.encode(rows), to: paths.table(name, ext: "json"))
        }
        try put(parentTimeline, RunPaths.Table.parentTimeline)
        try put(childPairs, RunPaths.Table.childPairs)
        try put(barrierCurves, RunPaths.Table.barrierCurves)
        try put(timelinePairs, RunPaths.Table.timelinePairs)
    }

    /// Reads the JSON tables of a finished run.
    public static func read(from paths: RunPaths) throws -> ExperimentTables {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        func get<T: Decodable>(_ name: String) throws -> [T] {
            let path = paths.table(name, ext: "json")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CheckpointError(path: path, problem: "table missing", fix: "run the experiment to the end first (ntkscape run)")
            }
            return try decoder.decode([T].self, from: data)
        }
        var t = ExperimentTables(records: [])
        t.parentTimeline = try get(RunPaths.Table.parentTimeline)
        t.childPairs = try get(RunPaths.Table.childPairs)
        t.barrierCurves = try get(RunPaths.Table.barrierCurves)
        t.timelinePairs = try get(RunPaths.Table.timelinePairs)
        return t
    }

    /// The key table: per spawn time, mean ± standard deviation over pairs and replicates.
    public func summary() -> String {
        func stat(_ xs: [Double]) -> String {
            guard !xs.isEmpty else { return "-" }
            let m = xs.reduce(0, +) / Double(xs.count)
            let sd = xs.count > 1 ? (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : 0
            return String(format: "%.4f±%.4f", m, sd)
        }
        let columns = ["spawn", "pairs", "test err", "err barrier", "loss barrier", "w dist (norm)", "D/D_ind", "ReLU dist", "logit-grad align"]
        var rows = [columns]
        for spawn in Array(Set(childPairs.map(\.spawnEpoch))).sorted() {
            let p = childPairs.filter { $0.spawnEpoch == spawn }
            rows.append([
                "\(spawn)", "\(p.count)", stat(p.flatMap { [$0.testErrorA, $0.testErrorB] }),
                stat(p.map(\.barrierTestErrorMaxMinusMean)), stat(p.map(\.barrierTestLossMaxMinusMean)),
                stat(p.compactMap(\.weightL2Normalized)), stat(p.compactMap(\.functionDisagreementOverIndependent)),
                stat(p.map(\.reluPatternDistance)), stat(p.map(\.logitGradientAlignment)),
            ])
        }
        let widths = columns.indices.map { c in rows.map { $0[c].count }.max()! }
        return rows.map { row in row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}
