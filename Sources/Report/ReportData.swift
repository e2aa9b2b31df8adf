import Core
import Foundation

/// How far a run got: its planned tasks and which of them have a record in `<run>/tasks`.
public struct RunProgress: Equatable, Sendable {
    /// Task ids planned for the run's configuration (`TaskGraph.ids`).
    public var planned: [String]
    /// Planned tasks without a record.
    public var missing: [String]

    public init(planned: [String], missing: [String]) {
        self.planned = planned
        self.missing = missing
    }

    public var done: Int { planned.count - missing.count }
    public var isComplete: Bool { missing.isEmpty }
    /// `k of n tasks done`.
    public var description: String { "\(done) of \(planned.count) tasks done" }
}

/// What the figures are built from: the run's tables and, when the configuration is known, the
/// times the run will measure (so figures of an unfinished run can mark the missing points).
public struct ReportData: Sendable {
    public var tables: ExperimentTables
    /// Spawn and measurement times of the configuration; nil when unknown (then nothing is marked missing).
    public var spawnTimes: [Double]?
    public var measurementTimes: [Double]?
    /// nil when the configuration is unknown.
    public var progress: RunProgress?
    /// Seconds of each task from its record (filled when the tables come from the records).
    public var taskSeconds: [String: Double] = [:]
    /// The run's statistics (`statistics.json`: intervals, basin-fate and plateau times,
    /// correlations), recomputed from the tables when the configuration is known.
    public var statistics: [StatisticRow] = []

    public init(tables: ExperimentTables, spawnTimes: [Double]? = nil, measurementTimes: [Double]? = nil,
                progress: RunProgress? = nil) {
        self.tables = tables
        self.spawnTimes = spawnTimes
        self.measurementTimes = measurementTimes
        self.progress = progress
    }

    /// True when tasks are missing: figures then mark the points still to come.
    public var isPartial: Bool { !(progress?.isComplete ?? true) }

    /// Loads a run directory, finished or not. The tables are read when every one of them exists
    /// and every planned task is done; otherwise they are assembled from the task records that
    /// exist (`<run>/tasks/*.json`), exactly as rank 0 assembles them at the end of a run.
    public static func load(_ paths: RunPaths) throws -> ReportData {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: paths.runDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError("\(paths.runDirectory) is not a run directory",
                              fix: "give the directory `ntkscape run` printed (runs/<name>-<hash>)")
        }
        let config = try? ExperimentConfig.load(path: paths.resolvedConfig)
        let recordNames = ((try? fm.contentsOfDirectory(atPath: paths.tasksDirectory)) ?? []).filter { $0.hasSuffix(".json") }
        let doneIDs = Set(recordNames.map { String($0.dropLast(5)) })
        let progress = config.map { c -> RunProgress in
            let planned = TaskGraph(c).ids
            return RunProgress(planned: planned, missing: planned.filter { !doneIDs.contains($0) })
        }
        var tables: ExperimentTables?, seconds: [String: Double] = [:]
        if progress?.isComplete ?? true { tables = try? ExperimentTables.read(from: paths) }
        if tables == nil {
            guard !recordNames.isEmpty else {
                throw ReportError("\(paths.runDirectory) has neither tables nor task records yet",
                                  fix: "wait until the run has finished its first task, or rerun `ntkscape run`")
            }
            let decoder = JSONDecoder()
            var records: [TaskRecord] = []
            for name in recordNames.sorted() {
                // A record being written appears atomically; one that does not decode is skipped.
                if let data = fm.contents(atPath: paths.tasksDirectory + "/" + name),
                   let record = try? decoder.decode(TaskRecord.self, from: data) {
                    records.append(record)
                }
            }
            tables = ExperimentTables(records: records)
            seconds = Dictionary(records.map { ($0.id, $0.seconds) }, uniquingKeysWith: { a, _ in a })
        }
        var data = ReportData(tables: tables!, spawnTimes: config?.resolvedSpawnTimes,
                              measurementTimes: config?.resolvedMeasurementTimes, progress: progress)
        data.taskSeconds = seconds
        if let config { data.statistics = (try? tables!.statistics(config.statistics, seed: config.seed)) ?? [] }
        return data
    }
}

/// A report that cannot be made, with the fix.
public struct ReportError: Error, CustomStringConvertible {
    public var problem: String, fix: String
    public init(_ problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
    public var description: String { "\(problem). Fix: \(fix)." }
}

// MARK: - Statistics

/// Mean and sample standard deviation (0 for one value) of finite values; nil when there are none.
func meanSD(_ xs: [Double]) -> (mean: Double, sd: Double, n: Int)? {
    let v = xs.filter(\.isFinite)
    guard !v.isEmpty else { return nil }
    let m = v.reduce(0, +) / Double(v.count)
    let sd = v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
    return (m, sd, v.count)
}

/// Rows grouped by a key, keys increasing, with the mean and SD of `value` over each group.
struct GroupStat: Equatable {
    var x: Double, mean: Double, sd: Double, n: Int
}

func grouped<Row>(_ rows: [Row], by key: (Row) -> Double, _ value: (Row) -> Double?) -> [GroupStat] {
    let groups = Dictionary(grouping: rows, by: key)
    return groups.keys.sorted().compactMap { x in
        meanSD(groups[x]!.compactMap(value)).map { GroupStat(x: x, mean: $0.mean, sd: $0.sd, n: $0.n) }
    }
}

/// Pearson correlation of paired finite values; nil below 3 pairs or for constant data.
func pearson(_ pairs: [(Double, Double)]) -> Double? {
    let p = pairs.filter { $0.0.isFinite && $0.1.isFinite }
    guard p.count >= 3 else { return nil }
    let mx = p.map(\.0).reduce(0, +) / Double(p.count), my = p.map(\.1).reduce(0, +) / Double(p.count)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for (x, y) in p {
        sxy += (x - mx) * (y - my)
        sxx += (x - mx) * (x - mx)
        syy += (y - my) * (y - my)
    }
    guard sxx > 0, syy > 0 else { return nil }
    return sxy / (sxx * syy).squareRoot()
}

/// A number for prose: 3 significant digits, no exponent for ordinary magnitudes.
func num(_ x: Double) -> String {
    guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "-∞") }
    if x == 0 { return "0" }
    let a = abs(x)
    if a >= 1e6 || a < 1e-3 { return String(format: "%.2e", x) }
    if a >= 1000 { return String(format: "%.0f", x) }
    return String(format: "%.3g", x)
}

/// An epoch for prose and axis labels: `0.25`, `8`.
func epochText(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : num(x)
}
