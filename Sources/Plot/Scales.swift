import Foundation

/// Maps data values to pixel positions.
public protocol Scale: Sendable {
    /// Pixel position of `value`; NaN when the value cannot be drawn (non-finite, or ≤ 0 on a
    /// log scale). Values outside the domain extrapolate linearly (clipping is the renderer's job).
    func map(_ value: Double) -> Double
    /// Data value at pixel position `px`.
    func invert(_ px: Double) -> Double
}

/// Affine map from `domain` to `range` (pixels; the range may be decreasing, as for a y axis).
public struct LinearScale: Scale, Equatable {
    public var domain: (Double, Double)
    public var range: (Double, Double)

    public init(domain: (Double, Double), range: (Double, Double)) {
        self.domain = domain
        self.range = range
    }

    public func map(_ value: Double) -> Double {
        guard value.isFinite else { return .nan }
        let span = domain.1 - domain.0
        if span == 0 { return (range.0 + range.1) / 2 }
        return range.0 + (value - domain.0) / span * (range.1 - range.0)
    }

    public func invert(_ px: Double) -> Double {
        let span = range.1 - range.0
        if span == 0 { return (domain.0 + domain.1) / 2 }
        return domain.0 + (px - range.0) / span * (domain.1 - domain.0)
    }

    public static func == (a: LinearScale, b: LinearScale) -> Bool {
        a.domain == b.domain && a.range == b.range
    }
}

/// Base-10 logarithmic map: log10(value) is affine in pixels. Domain bounds must be > 0.
public struct LogScale: Scale, Equatable {
    public var domain: (Double, Double)
    public var range: (Double, Double)

    public init(domain: (Double, Double), range: (Double, Double)) {
        self.domain = domain
        self.range = range
    }

    public func map(_ value: Double) -> Double {
        guard value.isFinite, value > 0, domain.0 > 0, domain.1 > 0 else { return .nan }
        let a = log10(domain.0), b = log10(domain.1)
        if a == b { return (range.0 + range.1) / 2 }
        return range.0 + (log10(value) - a) / (b - a) * (range.1 - range.0)
    }

    public func invert(_ px: Double) -> Double {
        let span = range.1 - range.0
        let a = log10(domain.0), b = log10(domain.1)
        if span == 0 { return pow(10, (a + b) / 2) }
        return pow(10, a + (px - range.0) / span * (b - a))
    }

    public static func == (a: LogScale, b: LogScale) -> Bool {
        a.domain == b.domain && a.range == b.range
    }
}

extension AxisScale {
    /// The pixel scale of this kind for a domain and pixel range.
    public func scale(domain: ClosedRange<Double>, range: (Double, Double)) -> any Scale {
        switch self {
        case .linear:
            return LinearScale(domain: (domain.lowerBound, domain.upperBound), range: range)
        case .log10:
            return LogScale(domain: (domain.lowerBound, domain.upperBound), range: range)
        }
    }

    /// Whether `v` can be drawn on this kind of axis.
    public func accepts(_ v: Double) -> Bool {
        switch self {
        case .linear: return v.isFinite
        case .log10: return v.isFinite && v > 0
        }
    }
}
