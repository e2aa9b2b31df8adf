import Foundation

// Statistics for NTKScape's summaries: bootstrap intervals, correlations, basin-fate time and
// kernel-velocity plateau time.
//
// Conventions shared by every function here:
//
// * Resampling uses only `RandomStream.uniformInt(below:)` of the stream
//   `RandomStream(seed: settings.seed, role: .bootstrap)`, in the draw order each function
//   documents, so a result is a pure function of its inputs and `BootstrapSettings`.
// * Percentile interval. For `B` resampled statistics sorted ascending, `x_(1) <= ... <= x_(B)`,
//   the `q`-quantile is the inverse empirical CDF `Q(q) = x_(k)`, `k = ceil(q * B)` clamped to
//   `1...B` (`q * B` is taken to be an integer when within 1e-9 of one, so that rounding of `q`
//   cannot move the index). The interval at level `L` is `[Q((1 - L) / 2), Q((1 + L) / 2)]`;
//   with `B = 2000`, `L = 0.95` that is `[x_(50), x_(1950)]`. The quantiles are always resampled
//   values (never interpolated), so e.g. a time interval lands on the time grid.
// * No global mutable state; every type is a value type.

/// Errors thrown for invalid statistical inputs or settings.
public enum StatisticsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A confidence level outside the open interval (0, 1).
    case invalidLevel(Double)
    /// Fewer bootstrap resamples than `BootstrapSettings.minimumResamples`.
    case tooFewResamples(Int)
    /// A plateau fraction outside [0, 1).
    case invalidFraction(Double)
    /// A threshold that is not finite.
    case invalidThreshold(Double)
    /// Inputs whose lengths must agree do not.
    case lengthMismatch(String)
    /// Times that are not finite and strictly increasing.
    case timesNotIncreasing
    /// An input that must not be empty is.
    case emptyInput(String)
    /// A value that must be finite is not.
    case nonFiniteValue(String)

    public var description: String {
        switch self {
        case .invalidLevel(let l):
            return "confidence level \(l) must lie strictly between 0 and 1"
        case .tooFewResamples(let b):
            return "bootstrap resamples = \(b) must be at least \(BootstrapSettings.minimumResamples)"
        case .invalidFraction(let f):
            return "plateau fraction \(f) must lie in [0, 1)"
        case .invalidThreshold(let t):
            return "threshold \(t) must be finite"
        case .lengthMismatch(let what):
            return "length mismatch: \(what)"
        case .timesNotIncreasing:
            return "times must be finite and strictly increasing"
        case .emptyInput(let what):
            return "empty input: \(what)"
        case .nonFiniteValue(let what):
            return "non-finite value: \(what)"
        }
    }
}

/// Settings of a percentile bootstrap.
public struct BootstrapSettings: Codable, Equatable, Sendable {
    /// The smallest accepted number of resamples.
    public static let minimumResamples = 100

    /// Two-sided confidence level `L` of the interval, in (0, 1).
    public var level: Double
    /// Number of bootstrap resamples `B`, at least `minimumResamples`.
    public var resamples: Int
    /// Seed of the resampling stream `RandomStream(seed: seed, role: .bootstrap)`.
    public var seed: UInt64

    public init(level: Double = 0.95, resamples: Int = 2000, seed: UInt64) {
        self.level = level
        self.resamples = resamples
        self.seed = seed
    }

    /// Throws `StatisticsError.invalidLevel` unless `0 < level < 1`, and
    /// `StatisticsError.tooFewResamples` unless `resamples >= minimumResamples`.
    public func validate() throws {
        guard level > 0, level < 1 else { throw StatisticsError.invalidLevel(level) }
        guard resamples >= Self.minimumResamples else { throw StatisticsError.tooFewResamples(resamples) }
    }

    /// The resampling stream.
    func makeStream() -> RandomStream { RandomStream(seed: seed, role: .bootstrap) }
}

/// A point estimate with a percentile-bootstrap interval.
public struct BootstrapInterval: Codable, Equatable, Sendable {
    /// The statistic on the data (e.g. the plain mean of all kept values).
    public var estimate: Double
    /// `Q((1 - level) / 2)` of the resampled statistics (see the file header).
    public var lower: Double
    /// `Q((1 + level) / 2)` of the resampled statistics.
    public var upper: Double
    public var level: Double
    /// Number of resampled statistics the interval was taken over (0 when the interval is
    /// degenerate by construction, e.g. a single value).
    public var resamples: Int
    /// Number of kept observations (values for means, pairs for correlations, replicates for the
    /// plateau time).
    public var count: Int
    /// Number of clusters (replicates) the observations came in; equals `count` when unclustered.
    public var clusters: Int

    public init(estimate: Double, lower: Double, upper: Double, level: Double, resamples: Int,
                count: Int, clusters: Int) {
        self.estimate = estimate; self.lower = lower; self.upper = upper; self.level = level
        self.resamples = resamples; self.count = count; self.clusters = clusters
    }
}

/// A correlation coefficient with a normal-theory interval on Fisher's z scale.
public struct CorrelationResult: Codable, Equatable, Sendable {
    /// Pearson r or Spearman ρ on the kept pairs, in [-1, 1].
    public var estimate: Double
    /// Lower end of the interval; nil when `count <= 3`.
    public var lower: Double?
    /// Upper end of the interval; nil when `count <= 3`.
    public var upper: Double?
    public var level: Double
    /// Number of kept pairs.
    public var count: Int
    /// "pearson-fisher" or "spearman-fieller".
    public var method: String

    public init(estimate: Double, lower: Double?, upper: Double?, level: Double, count: Int, method: String) {
        self.estimate = estimate; self.lower = lower; self.upper = upper; self.level = level
        self.count = count; self.method = method
    }
}

/// The basin-fate time and its bootstrap interval (see `Statistics.basinFateTime`).
public struct BasinFateResult: Codable, Equatable, Sendable {
    /// First spawn time whose mean barrier is below the threshold; nil if none is.
    public var estimate: Double?
    /// `Q((1 - level) / 2)` of the resampled first-crossing times; nil if that quantile is a
    /// resample without a crossing (+∞, "not reached").
    public var lower: Double?
    /// `Q((1 + level) / 2)` of the resampled first-crossing times; nil ("not reached") if that
    /// quantile is a resample without a crossing.
    public var upper: Double?
    public var level: Double
    public var resamples: Int
    /// Number of replicates.
    public var replicates: Int
    /// Fraction of resamples with a crossing.
    public var reachedFraction: Double
    /// Mean barrier (over all kept values) at each spawn time; NaN where there are none.
    public var meanBarriers: [Double]
    /// The threshold used.
    public var threshold: Double

    public init(estimate: Double?, lower: Double?, upper: Double?, level: Double, resamples: Int,
                replicates: Int, reachedFraction: Double, meanBarriers: [Double], threshold: Double) {
        self.estimate = estimate; self.lower = lower; self.upper = upper; self.level = level
        self.resamples = resamples; self.replicates = replicates; self.reachedFraction = reachedFraction
        self.meanBarriers = meanBarriers; self.threshold = threshold
    }
}

/// One row of `statistics.csv` / `statistics.json`: one estimated quantity with its interval. nil
/// numbers are empty CSV fields / JSON null.
public struct StatisticRow: Codable, Equatable, Sendable {
    /// What was estimated: `mean`, `basin_fate_time`, `plateau_time`, `pearson`, `spearman`, ...
    public var quantity: String
    /// The table column(s) it was computed from, e.g. `child_pairs.barrier_test_error_max_minus_mean`.
    public var column: String
    /// The spawn time (or t~) of a per-time quantity; nil otherwise.
    public var epoch: Double?
    public var estimate: Double?
    public var lower: Double?
    public var upper: Double?
    public var level: Double
    /// Number of observations (see the source result's `count` / `replicates`).
    public var n: Int
    /// How the interval was obtained, e.g. "clustered-percentile-bootstrap".
    public var method: String

    public init(quantity: String, column: String, epoch: Double? = nil, estimate: Double?, lower: Double?, upper: Double?,
                level: Double, n: Int, method: String) {
        self.quantity = quantity; self.column = column; self.epoch = epoch
        self.estimate = estimate; self.lower = lower; self.upper = upper
        self.level = level; self.n = n; self.method = method
    }

    /// A row from a bootstrap interval (`n = count`).
    public init(quantity: String, column: String, epoch: Double? = nil, _ r: BootstrapInterval, method: String) {
        self.init(quantity: quantity, column: column, epoch: epoch, estimate: r.estimate, lower: r.lower, upper: r.upper,
                  level: r.level, n: r.count, method: method)
    }

    /// A row from a correlation (`quantity` and `method` = the result's method).
    public init(column: String, _ r: CorrelationResult) {
        self.init(quantity: r.method, column: column, estimate: r.estimate, lower: r.lower, upper: r.upper, level: r.level,
                  n: r.count, method: r.method)
    }

    /// A row from a basin-fate result (`n = replicates`, method "basin-fate-clustered-bootstrap").
    public init(column: String, _ r: BasinFateResult) {
        self.init(quantity: "basin_fate_time", column: column, estimate: r.estimate, lower: r.lower, upper: r.upper,
                  level: r.level, n: r.replicates, method: "basin-fate-clustered-bootstrap")
    }
}

/// Namespace of the statistical functions.
public enum Statistics {

    // MARK: - Normal quantile

    /// The standard normal quantile `Φ⁻¹(p)`.
    ///
    /// Acklam's rational approximation (relative error < 1.15e-9) followed by one Halley step on
    /// `Φ(x) - p` with `Φ(x) = erfc(-x/√2)/2`, which brings it to about machine precision.
    /// `p > 0.5` is computed as `-Φ⁻¹(1 - p)` (exact subtraction), so the function is odd about
    /// 0.5. Returns -∞ at 0, +∞ at 1 and NaN outside [0, 1] or for NaN.
    public static func normalQuantile(_ p: Double) -> Double {
        if p.isNaN || p < 0 || p > 1 { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        if p > 0.5 { return -lowerNormalQuantile(1 - p) }
        return lowerNormalQuantile(p)
    }

    /// `Φ⁻¹(p)` for `0 < p <= 0.5`.
    private static func lowerNormalQuantile(_ p: Double) -> Double {
        let a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
        let b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01)
        let c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
        let d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                 3.754408661907416e+00)
        let pLow = 0.02425
        var x: Double
        if p < pLow {
            let q = (-2 * log(p)).squareRoot()
            let num = ((((c.0 * q + c.1) * q + c.2) * q + c.3) * q + c.4) * q + c.5
            let den = (((d.0 * q + d.1) * q + d.2) * q + d.3) * q + 1
            x = num / den
        } else {
            let q = p - 0.5
            let r = q * q
            let num = (((((a.0 * r + a.1) * r + a.2) * r + a.3) * r + a.4) * r + a.5) * q
            let den = ((((b.0 * r + b.1) * r + b.2) * r + b.3) * r + b.4) * r + 1
            x = num / den
        }
        // One Halley step on f(x) = Φ(x) - p.
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        let refined = x - u / (1 + x * u / 2)
        if refined.isFinite { x = refined }
        return x
    }

    // MARK: - Percentiles

    /// `Q(q) = x_(ceil(q * B))` (clamped to `1...B`) of `sorted` (ascending, non-empty); see the
    /// file header.
    public static func inverseECDFQuantile(sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty, "inverseECDFQuantile of an empty sample")
        let b = Double(sorted.count)
        let k = Int((q * b - 1e-9).rounded(.up))
        return sorted[min(max(k, 1), sorted.count) - 1]
    }

    /// `[Q((1 - level) / 2), Q((1 + level) / 2)]` of `values` (sorted here).
    public static func percentileInterval(_ values: [Double], level: Double) -> (lower: Double, upper: Double) {
        let s = values.sorted()
        return (inverseECDFQuantile(sorted: s, (1 - level) / 2), inverseECDFQuantile(sorted: s, (1 + level) / 2))
    }

    // MARK: - Clustered bootstrap of a mean

    /// Mean of values that come as pairs (or other units) within replicates, with a clustered
    /// (two-stage) percentile-bootstrap interval.
    ///
    /// `groups[r]` holds the values of replicate `r`. NaN values are dropped, then replicates left
    /// without values are dropped; `R` is the number of remaining replicates, `n_r` their sizes,
    /// `N = Σ n_r` (reported as `count`, `R` as `clusters`).
    ///
    /// * estimate: the plain mean of all `N` kept values.
    /// * one resample: draw `R` replicate indices `r_1..r_R` uniformly with replacement, then for
    ///   each drawn replicate `r_i` (in draw order) draw `n_{r_i}` of its values with replacement;
    ///   the statistic is the mean of all drawn values (Σ drawn / Σ n_{r_i}). Draw order on the
    ///   stream: `uniformInt(below: R)` ×R, then `uniformInt(below: n_{r_1})` ×n_{r_1}, … .
    ///   With one replicate this is the ordinary (i.i.d.) bootstrap of the mean (after one
    ///   `uniformInt(below: 1)` draw).
    /// * interval: the percentile interval of the `B` resampled means (file header).
    ///
    /// A single kept value gives `lower = upper = estimate` with `resamples = 0`. Returns nil
    /// when no value is kept. Infinite values are kept and propagate.
    public static func clusteredBootstrapMean(_ groups: [[Double]],
                                              settings: BootstrapSettings) throws -> BootstrapInterval? {
        try settings.validate()
        let kept = groups.map { $0.filter { !$0.isNaN } }.filter { !$0.isEmpty }
        let count = kept.reduce(0) { $0 + $1.count }
        guard count > 0 else { return nil }
        var total = 0.0
        for g in kept { for v in g { total += v } }
        let estimate = total / Double(count)
        if count == 1 {
            return BootstrapInterval(estimate: estimate, lower: estimate, upper: estimate,
                                     level: settings.level, resamples: 0, count: 1, clusters: 1)
        }
        var stream = settings.makeStream()
        let r = kept.count
        var stats = [Double]()
        stats.reserveCapacity(settings.resamples)
        var drawn = [Int](repeating: 0, count: r)
        for _ in 0..<settings.resamples {
            for i in 0..<r { drawn[i] = stream.uniformInt(below: r) }
            var sum = 0.0
            var n = 0
            for i in drawn {
                let g = kept[i]
                for _ in 0..<g.count { sum += g[stream.uniformInt(below: g.count)] }
                n += g.count
            }
            stats.append(sum / Double(n))
        }
        let (lo, hi) = percentileInterval(stats, level: settings.level)
        return BootstrapInterval(estimate: estimate, lower: lo, upper: hi, level: settings.level,
                                 resamples: settings.resamples, count: count, clusters: r)
    }

    // MARK: - Correlation

    /// The pairs `(x_i, y_i)` with both values finite.
    private static func finitePairs(_ x: [Double], _ y: [Double]) throws -> ([Double], [Double]) {
        guard x.count == y.count else {
            throw StatisticsError.lengthMismatch("x has \(x.count) values, y has \(y.count)")
        }
        var fx = [Double](), fy = [Double]()
        fx.reserveCapacity(x.count); fy.reserveCapacity(y.count)
        for i in 0..<x.count where x[i].isFinite && y[i].isFinite {
            fx.append(x[i]); fy.append(y[i])
        }
        return (fx, fy)
    }

    /// `r = Σ(x-x̄)(y-ȳ) / sqrt(Σ(x-x̄)² Σ(y-ȳ)²)` clamped to [-1, 1]; nil for fewer than 2
    /// values or a zero sum of squares.
    static func pearsonCoefficient(_ x: [Double], _ y: [Double]) -> Double? {
        let n = x.count
        guard n >= 2 else { return nil }
        var mx = 0.0, my = 0.0
        for i in 0..<n { mx += x[i]; my += y[i] }
        mx /= Double(n); my /= Double(n)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<n {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return nil }
        return min(1, max(-1, sxy / (sxx * syy).squareRoot()))
    }

    /// Ranks `1...n` of `values` in ascending order, tied values receiving the average of the
    /// ranks they span (e.g. `[10, 20, 20, 30] -> [1, 2.5, 2.5, 4]`). Values must not be NaN.
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let rank = Double(i + j + 2) / 2  // average of 1-based ranks i+1 ... j+1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }

    /// `tanh(atanh(r) ± z_{(1+level)/2} · se)`, nil if `se` is not finite and positive.
    private static func zInterval(_ r: Double, se: Double, level: Double) -> (lower: Double, upper: Double)? {
        guard se.isFinite, se > 0 else { return nil }
        let z = atanh(min(1, max(-1, r)))
        let h = normalQuantile((1 + level) / 2) * se
        return (tanh(z - h), tanh(z + h))
    }

    /// Fisher interval of a Pearson r from `n` pairs: `tanh(atanh(r) ± z_{(1+level)/2} / sqrt(n-3))`;
    /// nil unless `n > 3` and `0 < level < 1`. `r = ±1` gives `[r, r]`.
    public static func fisherInterval(r: Double, n: Int, level: Double) -> (lower: Double, upper: Double)? {
        guard n > 3, level > 0, level < 1 else { return nil }
        return zInterval(r, se: 1 / Double(n - 3).squareRoot(), level: level)
    }

    /// Fieller–Hartley–Pearson interval of a Spearman ρ from `n` pairs:
    /// `tanh(atanh(ρ) ± z_{(1+level)/2} · sqrt(1.06/(n-3)))`; nil unless `n > 3` and `0 < level < 1`.
    public static func fiellerInterval(rho: Double, n: Int, level: Double) -> (lower: Double, upper: Double)? {
        guard n > 3, level > 0, level < 1 else { return nil }
        return zInterval(rho, se: (1.06 / Double(n - 3)).squareRoot(), level: level)
    }

    /// Pearson's r of the pairs with both values finite, with its Fisher interval
    /// (`fisherInterval`; nil ends when `count <= 3`). Returns nil for fewer than 2 kept pairs or
    /// when x or y is constant. Throws for unequal lengths or an invalid level.
    public static func pearson(_ x: [Double], _ y: [Double], level: Double = 0.95) throws -> CorrelationResult? {
        guard level > 0, level < 1 else { throw StatisticsError.invalidLevel(level) }
        let (fx, fy) = try finitePairs(x, y)
        guard let r = pearsonCoefficient(fx, fy) else { return nil }
        let ci = fisherInterval(r: r, n: fx.count, level: level)
        return CorrelationResult(estimate: r, lower: ci?.lower, upper: ci?.upper, level: level,
                                 count: fx.count, method: "pearson-fisher")
    }

    /// Spearman's ρ — Pearson's r of the average ranks (`averageRanks`) — of the pairs with both
    /// values finite, with the Fieller–Hartley–Pearson interval (`fiellerInterval`; nil ends when
    /// `count <= 3`). Returns nil for fewer than 2 kept pairs or when x or y is constant.
    public static func spearman(_ x: [Double], _ y: [Double], level: Double = 0.95) throws -> CorrelationResult? {
        guard level > 0, level < 1 else { throw StatisticsError.invalidLevel(level) }
        let (fx, fy) = try finitePairs(x, y)
        guard let rho = pearsonCoefficient(averageRanks(fx), averageRanks(fy)) else { return nil }
        let ci = fiellerInterval(rho: rho, n: fx.count, level: level)
        return CorrelationResult(estimate: rho, lower: ci?.lower, upper: ci?.upper, level: level,
                                 count: fx.count, method: "spearman-fieller")
    }

    /// Percentile-bootstrap interval of Pearson's r: each resample draws `n` kept pairs with
    /// replacement (`uniformInt(below: n)` ×n); resamples in which x or y is constant (r
    /// undefined) are discarded and `resamples` reports the rest (lower = upper = NaN if none is
    /// left). Returns nil when `pearson` does.
    public static func bootstrapPearson(_ x: [Double], _ y: [Double],
                                        settings: BootstrapSettings) throws -> BootstrapInterval? {
        try bootstrapCorrelation(x, y, settings: settings) { pearsonCoefficient($0, $1) }
    }

    /// Percentile-bootstrap interval of Spearman's ρ, resampling pairs as `bootstrapPearson`
    /// (ranks are recomputed on every resample, duplicated pairs being ties).
    public static func bootstrapSpearman(_ x: [Double], _ y: [Double],
                                         settings: BootstrapSettings) throws -> BootstrapInterval? {
        try bootstrapCorrelation(x, y, settings: settings) {
            pearsonCoefficient(averageRanks($0), averageRanks($1))
        }
    }

    private static func bootstrapCorrelation(_ x: [Double], _ y: [Double], settings: BootstrapSettings,
                                             statistic: ([Double], [Double]) -> Double?) throws -> BootstrapInterval? {
        try settings.validate()
        let (fx, fy) = try finitePairs(x, y)
        guard let estimate = statistic(fx, fy) else { return nil }
        let n = fx.count
        var stream = settings.makeStream()
        var stats = [Double]()
        stats.reserveCapacity(settings.resamples)
        var bx = [Double](repeating: 0, count: n), by = [Double](repeating: 0, count: n)
        for _ in 0..<settings.resamples {
            for i in 0..<n {
                let j = stream.uniformInt(below: n)
                bx[i] = fx[j]; by[i] = fy[j]
            }
            if let s = statistic(bx, by) { stats.append(s) }
        }
        let (lo, hi) = stats.isEmpty ? (Double.nan, Double.nan) : percentileInterval(stats, level: settings.level)
        return BootstrapInterval(estimate: estimate, lower: lo, upper: hi, level: settings.level,
                                 resamples: stats.count, count: n, clusters: n)
    }

    // MARK: - Basin-fate time

    /// The basin-fate time: the earliest spawn time whose children no longer see a loss barrier.
    ///
    /// Inputs: spawn times `t_1 < … < t_m` (finite) and `barriers[k][r]`, the barrier values of
    /// the child pairs of replicate `r` spawned at `t_k`; every `barriers[k]` must list the same
    /// `R >= 1` replicates. NaN values are dropped.
    ///
    /// * `mean_k` = the plain mean of all kept values at `t_k` (NaN if there are none).
    /// * estimate: `t_k` for the smallest `k` with `mean_k < threshold`; nil if there is none (a
    ///   spawn time without values never qualifies).
    /// * one resample: draw `R` replicate indices `r_1..r_R` with replacement — one draw shared by
    ///   all spawn times — then, for `k = 1…m` and each drawn `r_i` in order, draw
    ///   `n_{k,r_i}` values with replacement from `barriers[k][r_i]` (kept values; an empty cell
    ///   contributes nothing). `mean*_k` = mean of the values drawn at `t_k`; the resampled time is
    ///   `t_k` for the smallest `k` with `mean*_k < threshold`, or +∞ if there is none. Draw order:
    ///   `uniformInt(below: R)` ×R, then the value draws in the order just given.
    /// * interval: the percentile interval (file header) of the `B` resampled times, where an end
    ///   that is +∞ is reported as nil ("not reached"). `reachedFraction` = share of finite ones.
    ///
    /// Throws for invalid settings, a non-finite threshold, empty or non-increasing times, or
    /// mismatched shapes.
    public static func basinFateTime(spawnTimes: [Double], barriers: [[[Double]]], threshold: Double,
                                     settings: BootstrapSettings) throws -> BasinFateResult {
        try settings.validate()
        guard threshold.isFinite else { throw StatisticsError.invalidThreshold(threshold) }
        try checkTimes(spawnTimes)
        guard barriers.count == spawnTimes.count else {
            throw StatisticsError.lengthMismatch("\(spawnTimes.count) spawn times but barriers for \(barriers.count)")
        }
        let r = barriers[0].count
        guard r > 0 else { throw StatisticsError.emptyInput("barriers have no replicates") }
        for (k, b) in barriers.enumerated() where b.count != r {
            throw StatisticsError.lengthMismatch("spawn time \(k) has \(b.count) replicates, spawn time 0 has \(r)")
        }
        let kept = barriers.map { $0.map { $0.filter { !$0.isNaN } } }
        let m = spawnTimes.count

        func firstCrossing(_ means: [Double]) -> Double? {
            for k in 0..<m where means[k] < threshold { return spawnTimes[k] }
            return nil
        }

        let meanBarriers: [Double] = kept.map { cells in
            var s = 0.0, n = 0
            for c in cells { for v in c { s += v }; n += c.count }
            return n > 0 ? s / Double(n) : .nan
        }
        let estimate = firstCrossing(meanBarriers)

        var stream = settings.makeStream()
        var times = [Double]()
        times.reserveCapacity(settings.resamples)
        var drawn = [Int](repeating: 0, count: r)
        var means = [Double](repeating: .nan, count: m)
        for _ in 0..<settings.resamples {
            for i in 0..<r { drawn[i] = stream.uniformInt(below: r) }
            for k in 0..<m {
                var s = 0.0, n = 0
                for i in drawn {
                    let c = kept[k][i]
                    for _ in 0..<c.count { s += c[stream.uniformInt(below: c.count)] }
                    n += c.count
                }
                means[k] = n > 0 ? s / Double(n) : .nan
            }
            times.append(firstCrossing(means) ?? .infinity)
        }
        let (lo, hi) = percentileInterval(times, level: settings.level)
        let reached = times.reduce(0) { $0 + ($1.isFinite ? 1 : 0) }
        return BasinFateResult(estimate: estimate, lower: lo.isFinite ? lo : nil, upper: hi.isFinite ? hi : nil,
                               level: settings.level, resamples: settings.resamples, replicates: r,
                               reachedFraction: Double(reached) / Double(settings.resamples),
                               meanBarriers: meanBarriers, threshold: threshold)
    }

    private static func checkTimes(_ t: [Double]) throws {
        guard !t.isEmpty else { throw StatisticsError.emptyInput("no times") }
        guard t.allSatisfy({ $0.isFinite }) else { throw StatisticsError.timesNotIncreasing }
        for i in 1..<max(t.count, 1) where !(t[i - 1] < t[i]) { throw StatisticsError.timesNotIncreasing }
    }

    // MARK: - Kernel-velocity plateau time

    /// Settling time of one curve `v_1..v_m` sampled at `t_1 < … < t_m`.
    ///
    /// With `v_end = v_m` and `v_max = max_i v_i`, it is the first `t_i` such that every
    /// `j >= i` satisfies `v_j - v_end <= fraction · (v_max - v_end)`, i.e. from `t_i` on the curve
    /// stays within `fraction` of its total decay above its final value. `t_m` always qualifies,
    /// so the result exists. A curve that never exceeds its final value (flat or monotone
    /// increasing: `v_max = v_end`) settles at `t_1`.
    ///
    /// Throws for empty or non-increasing times, unequal lengths, non-finite values or
    /// `fraction` outside [0, 1).
    public static func settlingTime(times: [Double], values: [Double], fraction: Double = 0.1) throws -> Double {
        try checkTimes(times)
        guard values.count == times.count else {
            throw StatisticsError.lengthMismatch("\(times.count) times but \(values.count) values")
        }
        guard values.allSatisfy({ $0.isFinite }) else { throw StatisticsError.nonFiniteValue("velocity curve") }
        guard fraction >= 0, fraction < 1 else { throw StatisticsError.invalidFraction(fraction) }
        return times[settlingIndex(values, fraction: fraction)!]
    }

    /// Index of the settling time (see `settlingTime`) of a non-empty finite curve.
    private static func settlingIndex(_ v: [Double], fraction: Double) -> Int? {
        guard let vEnd = v.last, let vMax = v.max() else { return nil }
        let bound = fraction * (vMax - vEnd)
        var i = v.count - 1
        while i > 0 && v[i - 1] - vEnd <= bound { i -= 1 }
        return i
    }

    /// Kernel-velocity plateau time: `settlingTime` of the replicate-mean curve, with a
    /// percentile-bootstrap interval over replicates.
    ///
    /// `velocities[r][i]` is replicate `r`'s velocity at `times[i]`; all must be finite.
    /// * estimate: `settlingTime(times, v̄, fraction)` with `v̄_i = (1/R) Σ_r velocities[r][i]`.
    /// * one resample: draw `R` replicate indices with replacement (`uniformInt(below: R)` ×R) and
    ///   take the settling time of the mean curve of the drawn replicates.
    /// * interval: the percentile interval (file header) of the `B` resampled times (always grid
    ///   times). `count` = `clusters` = `R`; with one replicate the interval is `[estimate, estimate]`.
    public static func plateauTime(times: [Double], velocities: [[Double]], fraction: Double = 0.1,
                                   settings: BootstrapSettings) throws -> BootstrapInterval {
        try settings.validate()
        try checkTimes(times)
        guard fraction >= 0, fraction < 1 else { throw StatisticsError.invalidFraction(fraction) }
        let r = velocities.count
        guard r > 0 else { throw StatisticsError.emptyInput("no replicates") }
        for (k, v) in velocities.enumerated() {
            guard v.count == times.count else {
                throw StatisticsError.lengthMismatch("replicate \(k) has \(v.count) values for \(times.count) times")
            }
            guard v.allSatisfy({ $0.isFinite }) else { throw StatisticsError.nonFiniteValue("velocity of replicate \(k)") }
        }
        let m = times.count
        func meanCurve(_ idx: [Int]) -> [Double] {
            var s = [Double](repeating: 0, count: m)
            for k in idx { for i in 0..<m { s[i] += velocities[k][i] } }
            let n = Double(idx.count)
            return s.map { $0 / n }
        }
        let estimate = times[settlingIndex(meanCurve(Array(0..<r)), fraction: fraction)!]
        var stream = settings.makeStream()
        var stats = [Double]()
        stats.reserveCapacity(settings.resamples)
        var drawn = [Int](repeating: 0, count: r)
        for _ in 0..<settings.resamples {
            for i in 0..<r { drawn[i] = stream.uniformInt(below: r) }
            stats.append(times[settlingIndex(meanCurve(drawn), fraction: fraction)!])
        }
        let (lo, hi) = percentileInterval(stats, level: settings.level)
        return BootstrapInterval(estimate: estimate, lower: lo, upper: hi, level: settings.level,
                                 resamples: settings.resamples, count: r, clusters: r)
    }
}
