import Foundation

/// How non-finite numbers are recorded (docs/experiment.md, "Non-finite values"): a singular or
/// collapsed network (condition number infinite, NaN statistics) must not make a task record or a
/// table unwritable, and must not be masked. One encoding everywhere: the JSON string `"nan"`,
/// `"inf"` or `"-inf"` in task records and JSON tables (Foundation's `JSONEncoder` refuses a bare
/// non-finite number), and the same text as the CSV cell (`CSV.cell`), which pandas, R and numpy
/// read back as the IEEE value. A row is marked by the cell itself; the run prints which tables
/// hold such rows.
public enum NonFinite {
    public static let nan = "nan", positiveInfinity = "inf", negativeInfinity = "-inf"

    static let encoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: positiveInfinity, negativeInfinity: negativeInfinity, nan: nan)
    static let decoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: positiveInfinity, negativeInfinity: negativeInfinity, nan: nan)

    /// Whether a CSV cell holds a non-finite number.
    public static func isNonFiniteCell(_ cell: Substring) -> Bool {
        cell == nan || cell == positiveInfinity || cell == negativeInfinity
    }

    /// Data rows of `csv` (after its header) with a non-finite cell; 0-based row numbers.
    public static func rows(inCSV csv: String) -> [Int] {
        csv.split(separator: "\n").dropFirst().enumerated().compactMap { i, line in
            line.split(separator: ",", omittingEmptySubsequences: false).contains(where: isNonFiniteCell) ? i : nil
        }
    }
}

public extension JSONDecoder {
    /// The decoder of task records: non-finite numbers as `NonFinite` writes them.
    static var records: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = NonFinite.decoding
        return d
    }
}
