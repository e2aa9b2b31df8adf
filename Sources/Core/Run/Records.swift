import Foundation

/// One row of `parent_timeline.csv`: the parent of `replicate` at `epoch` (BatchNorm in inference mode).
public struct ParentTimelineRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epoch: Double
    public var trainError: Double
    public var trainLoss: Double
    public var testError: Double
    public var testLoss: Double
}

/// One row of `child_pairs.csv`: two children spawned from the same parent at `spawnEpoch`, compared
/// on their final weights. Column names carry the variant (DESIGN §4).
public struct ChildPairRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var testErrorA: Double
    public var testErrorB: Double
    public var barrierTestErrorMaxMinusMean: Double
    public var barrierTestErrorMaxMinusLine: Double
    public var barrierTrainErrorMaxMinusMean: Double
    public var barrierTrainErrorMaxMinusLine: Double
    public var barrierTestLossMaxMinusMean: Double
    public var barrierTestLossMaxMinusLine: Double
    public var barrierBatchNorm: String
    public var weightL2: Double
    public var weightL2Normalized: Double?
    public var weightCosine: Double?
    public var functionDisagreement: Double
    public var functionDisagreementOverIndependent: Double?
    public var reluPatternDistance: Double
    public var logitGradientAlignment: Double
}

/// One row of `barrier_curves.csv`: a point of the interpolation between two children.
public struct BarrierCurveRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var spawnEpoch: Double
    public var childA: Int
    public var childB: Int
    public var alpha: Double
    public var testError: Double
    public var testLoss: Double
    public var trainError: Double
    public var trainLoss: Double
}

/// One row of `timeline_pairs.csv` (long format): parent times `epochA <= epochB` of one replicate.
public struct TimelinePairRow: Codable, Equatable, Sendable {
    public var replicate: Int
    public var epochA: Double
    public var epochB: Double
    public var reluPatternDistance: Double
    public var logitGradientAlignment: Double
}

/// Everything a finished task contributes to the tables; stored as `tasks/<id>.json` (its presence
/// marks the task done) and gathered to rank 0.
public struct TaskRecord: Codable, Equatable, Sendable {
    public var id: String
    public var timeline: [ParentTimelineRow] = []
    public var pairs: [ChildPairRow] = []
    public var curves: [BarrierCurveRow] = []
    public var timelinePairs: [TimelinePairRow] = []
    /// Final test error of a child (training tasks).
    public var finalTestError: Double?
    /// Wall-clock seconds of the task (manifest only; not part of any table).
    public var seconds: Double = 0

    public init(id: String) { self.id = id }
}

/// CSV writing with one number format (Swift's shortest round-trip decimal), so identical values
/// give identical bytes.
public enum CSV {
    public static func cell(_ v: Any?) -> String {
        switch v {
        case nil: return ""
        case let d as Double: return d.isFinite ? "\(d)" : (d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf"))
        case let i as Int: return "\(i)"
        case let s as String: return s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        case let o as Double?: return cell(o as Any?)
        default: return "\(v!)"
        }
    }

    /// Header from the `Codable` keys of `T` (snake_case), rows in the given order.
    public static func render<T: Encodable>(_ rows: [T]) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        // Column order: the struct's declaration order, read from a Mirror of the first row.
        guard let first = rows.first else { return "" }
        let columns = Mirror(reflecting: first).children.compactMap(\.label)
        var out = columns.map(snakeCase).joined(separator: ",") + "\n"
        for row in rows {
            out += Mirror(reflecting: row).children.map { cell(unwrap($0.value)) }.joined(separator: ",") + "\n"
        }
        return out
    }

    private static func unwrap(_ v: Any) -> Any? {
        let m = Mirror(reflecting: v)
        guard m.displayStyle == .optional else { return v }
        return m.children.first?.value
    }

    static func snakeCase(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
