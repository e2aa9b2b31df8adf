import Foundation

/// Exact 10^k for integer k (powers of ten up to 10^22 are exact doubles; for negative k the
/// division is correctly rounded, so 10^-3 is the double nearest to 0.001).
@inline(__always)
func pow10(_ k: Int) -> Double {
    k >= 0 ? Foundation.pow(10.0, Double(k)) : 1 / Foundation.pow(10.0, Double(-k))
}

/// m × 10^k computed so that the result is the double nearest to the decimal value
/// (e.g. 3 × 2 × 10^-1 = 0.6, not 0.6000000000000001).
@inline(__always)
func decimal(_ m: Int, _ k: Int) -> Double {
    k >= 0 ? Double(m) * Foundation.pow(10.0, Double(k)) : Double(m) / Foundation.pow(10.0, Double(-k))
}

/// Tick positions.
public enum NiceTicks {
    /// Heckbert's "nice number" (Graphics Gems, 1990): a number 1, 2, 5 or 10 × 10^k close to `x`
    /// (`round`: nearest; otherwise the smallest nice number ≥ x). Returned as (mantissa, exponent).
    static func niceNumber(_ x: Double, round: Bool) -> (m: Int, k: Int) {
        let k = Int(Foundation.floor(Foundation.log10(x)))
        let f = x / pow10(k)
        let m: Int
        if round {
            m = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10
        } else {
            m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
        }
        return m == 10 ? (1, k + 1) : (m, k)
    }

    /// Heckbert's nice step for ~`count` ticks over [min, max], as (mantissa, exponent).
    static func niceStep(min: Double, max: Double, count: Int) -> (m: Int, k: Int) {
        let range = niceNumber(max - min, round: false)
        return niceNumber(decimal(range.m, range.k) / Double(Swift.max(count - 1, 1)), round: true)
    }

    /// Heckbert's loose labelling: ~`count` ticks with step 1, 2 or 5 × 10^k, from
    /// floor(min/step)·step to ceil(max/step)·step (so the first tick is ≤ min and the last ≥ max).
    /// Every tick is the double nearest to its decimal value. Degenerate input (min == max) is
    /// widened to ±10% (or ±1 around 0); non-finite input gives [].
    public static func linear(min: Double, max: Double, count: Int = 5) -> [Double] {
        guard min.isFinite, max.isFinite else { return [] }
        var (lo, hi) = min <= max ? (min, max) : (max, min)
        if hi - lo <= Swift.max(abs(lo), abs(hi)) * 1e-12 {
            (lo, hi) = widen(lo)
        }
        let step = niceStep(min: lo, max: hi, count: count)
        let d = decimal(step.m, step.k)
        let first = Int(Foundation.floor(lo / d + 1e-9))
        let last = Int(Foundation.ceil(hi / d - 1e-9))
        guard last >= first, last - first < 10_000 else { return [] }
        return (first...last).map { decimal($0 * step.m, step.k) }
    }

    /// Nice ticks inside [min, max] (those of `linear` that fall in the closed interval, with a
    /// relative tolerance of 1e-9 of the span). If that leaves fewer than 3, the step is refined
    /// (count doubled) once.
    public static func within(min: Double, max: Double, count: Int = 5) -> [Double] {
        func inside(_ c: Int) -> [Double] {
            let (lo, hi) = min <= max ? (min, max) : (max, min)
            let eps = (hi - lo) * 1e-9
            return linear(min: lo, max: hi, count: c).filter { $0 >= lo - eps && $0 <= hi + eps }
        }
        let t = inside(count)
        return t.count >= 3 ? t : inside(count * 2)
    }

    /// Ticks of a base-10 log axis over [min, max] (both > 0): the decades 10^k inside the range;
    /// when the range spans at most 2 decades also 2·10^k and 5·10^k. When the range spans more than
    /// 10 decades only every n-th decade is kept (n = 2, 5, 10, ...). If fewer than two ticks fall
    /// inside (a narrow range), nice linear ticks are returned instead. Invalid input gives [].
    public static func log(min: Double, max: Double) -> [Double] {
        guard min.isFinite, max.isFinite, min > 0, max > 0 else { return [] }
        let (lo, hi) = min <= max ? (min, max) : (max, min)
        let eps = 1e-9
        let kLo = Int(Foundation.floor(Foundation.log10(lo))) - 1
        let kHi = Int(Foundation.ceil(Foundation.log10(hi))) + 1
        let decades = Foundation.log10(hi / lo)
        let mantissas = decades <= 2 + 1e-9 ? [1, 2, 5] : [1]
        var every = 1
        if decades > 10 {
            for n in [2, 5, 10, 20, 50, 100] where Double(n) * 10 >= decades { every = n; break }
        }
        var ticks: [Double] = []
        for k in kLo...kHi {
            if every > 1 && ((k % every) + every) % every != 0 { continue }
            for m in mantissas {
                let v = decimal(m, k)
                if v >= lo * (1 - eps) && v <= hi * (1 + eps) { ticks.append(v) }
            }
        }
        if ticks.count < 2 { return within(min: lo, max: hi) }
        return ticks
    }

    /// Automatic axis range for data extent [min, max] on a linear axis: 5% margin on each side;
    /// zero span becomes ±10% around the value (±1 around 0).
    public static func paddedRange(min: Double, max: Double, margin: Double = 0.05) -> ClosedRange<Double> {
        var (lo, hi) = min <= max ? (min, max) : (max, min)
        if hi - lo <= Swift.max(abs(lo), abs(hi)) * 1e-12 { (lo, hi) = widen(lo); return lo...hi }
        let pad = (hi - lo) * margin
        return (lo - pad)...(hi + pad)
    }

    /// Automatic range for positive data extent [min, max] on a log axis: whole decades when the
    /// data span at least 2 decades, otherwise the enclosing 1-2-5 values. Constant data get the
    /// neighbouring 1-2-5 values on both sides.
    public static func logRange(min: Double, max: Double) -> ClosedRange<Double> {
        let (lo, hi) = min <= max ? (min, max) : (max, min)
        guard lo > 0, lo.isFinite, hi.isFinite else { return 1...10 }
        let decades = Foundation.log10(hi / lo)
        if decades >= 2 {
            return pow10(Int(Foundation.floor(Foundation.log10(lo) + 1e-9)))
                ... pow10(Int(Foundation.ceil(Foundation.log10(hi) - 1e-9)))
        }
        var a = nice125(atMost: lo), b = nice125(atLeast: hi)
        if a >= b {
            a = nice125(atMost: lo * (1 - 1e-9), strictly: true)
            b = nice125(atLeast: hi * (1 + 1e-9), strictly: true)
        }
        return a...b
    }

    static func widen(_ v: Double) -> (Double, Double) {
        v == 0 ? (-1, 1) : (v - abs(v) * 0.1, v + abs(v) * 0.1)
    }

    /// Largest {1,2,5}·10^k ≤ x (< x if strictly).
    static func nice125(atMost x: Double, strictly: Bool = false) -> Double {
        let k = Int(Foundation.floor(Foundation.log10(x)))
        var best = decimal(1, k - 1)
        for kk in (k - 1)...(k + 1) {
            for m in [1, 2, 5] {
                let v = decimal(m, kk)
                if (strictly ? v < x : v <= x * (1 + 1e-12)) && v > best { best = v }
            }
        }
        return best
    }

    /// Smallest {1,2,5}·10^k ≥ x (> x if strictly).
    static func nice125(atLeast x: Double, strictly: Bool = false) -> Double {
        let k = Int(Foundation.floor(Foundation.log10(x)))
        var best = decimal(1, k + 2)
        for kk in (k - 1)...(k + 1) {
            for m in [1, 2, 5] {
                let v = decimal(m, kk)
                if (strictly ? v > x : v >= x * (1 - 1e-12)) && v < best { best = v }
            }
        }
        return best
    }
}

/// Tick-label and number formatting without float noise (deterministic, locale-independent).
public enum TickFormatter {
    /// Labels for a set of linear ticks: plain decimals with the fewest decimal places that
    /// represent every tick (trailing zeros trimmed per label: 0, 0.2, ..., 1); exponent style
    /// ("1e-4", "2.5e6") when the largest magnitude is ≥ 1e5 or < 1e-3.
    public static func labels(for ticks: [Double]) -> [String] {
        let finite = ticks.filter { $0.isFinite }
        let maxMag = finite.map(abs).max() ?? 0
        if maxMag != 0 && (maxMag >= 1e5 || maxMag < 1e-3) {
            return ticks.map { exponential($0, significantDigits: 4) }
        }
        let sorted = finite.sorted()
        var step = Double.infinity
        for (a, b) in zip(sorted, sorted.dropFirst()) where b - a > 0 { step = min(step, b - a) }
        if !step.isFinite { step = maxMag == 0 ? 1 : maxMag }
        var places = 0
        while places < 12 {
            let q = pow10(places)
            if finite.allSatisfy({ abs(($0 * q).rounded() / q - $0) <= step * 1e-6 }) { break }
            places += 1
        }
        return ticks.map { fixed($0, places: places) }
    }

    /// A single number with at most `significantDigits` significant digits, trailing zeros
    /// trimmed: 0.30000000000000004 -> "0.3", 1234.5 -> "1234.5", 0.0001 -> "1e-4",
    /// 250000 -> "2.5e5". Exponent style when |v| ≥ 1e5 or |v| < 1e-3.
    public static func format(_ v: Double, significantDigits: Int = 6) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        if v == 0 { return "0" }
        let mag = abs(v)
        if mag >= 1e5 || mag < 1e-3 { return exponential(v, significantDigits: significantDigits) }
        let e = Int(Foundation.floor(Foundation.log10(mag)))
        return fixed(v, places: max(0, significantDigits - 1 - e))
    }

    /// Log-axis labels: plain ("0.001", "0.5", "100") when every tick lies in [1e-3, 1e5),
    /// otherwise exponent style for all of them ("1e-4", "1e-3", ..., "1e0", "1e2") so that a
    /// decade axis reads uniformly.
    public static func logLabels(for ticks: [Double]) -> [String] {
        let plain = ticks.allSatisfy { $0.isFinite && abs($0) >= 1e-3 && abs($0) < 1e5 }
        return ticks.map { plain ? format($0, significantDigits: 3) : exponential($0, significantDigits: 3) }
    }

    /// Fixed-point with `places` decimals, trailing zeros (and a trailing point) trimmed, no "-0".
    public static func fixed(_ v: Double, places: Int) -> String {
        guard v.isFinite else { return format(v) }
        let p = min(max(places, 0), 15)
        let q = pow10(p)
        let scaled = (abs(v) * q).rounded()
        guard scaled < 9e15 else { return exponential(v, significantDigits: 6) }
        let n = UInt64(scaled)
        let qi = UInt64(q.rounded())
        var s = String(n / qi)
        if p > 0 {
            var frac = String(n % qi)
            frac = String(repeating: "0", count: p - frac.count) + frac
            while frac.hasSuffix("0") { frac.removeLast() }
            if !frac.isEmpty { s += "." + frac }
        }
        return (v < 0 && n != 0 ? "-" : "") + s
    }

    /// Exponent style "m e k" with a trimmed mantissa: 1e-4, 2.5e6, -3e-5.
    public static func exponential(_ v: Double, significantDigits: Int = 6) -> String {
        guard v.isFinite else { return format(v) }
        if v == 0 { return "0" }
        var k = Int(Foundation.floor(Foundation.log10(abs(v))))
        var mant = abs(v) / pow10(k)
        let digits = max(significantDigits - 1, 0)
        // Rounding can carry the mantissa to 10 (9.9999999 -> 10.0).
        let q = pow10(digits)
        if (mant * q).rounded() / q >= 10 { k += 1; mant = abs(v) / pow10(k) }
        if (mant * q).rounded() / q < 1 { k -= 1; mant = abs(v) / pow10(k) }
        return (v < 0 ? "-" : "") + fixed(mant, places: digits) + "e" + String(k)
    }
}
