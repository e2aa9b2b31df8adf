/// An sRGB colour with 8-bit channels.
public struct Color: Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(r: UInt8, g: UInt8, b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// `Color(hex: 0x0072B2)`.
    public init(hex: UInt32) {
        self.init(r: UInt8((hex >> 16) & 0xFF), g: UInt8((hex >> 8) & 0xFF), b: UInt8(hex & 0xFF))
    }

    /// "#rrggbb" (lower case), as written into SVG.
    public var hex: String {
        let digits = Array("0123456789abcdef")
        var s = "#"
        for c in [r, g, b] {
            s.append(digits[Int(c >> 4)])
            s.append(digits[Int(c & 0xF)])
        }
        return s
    }

    public static let black = Color(hex: 0x000000)
    public static let white = Color(hex: 0xFFFFFF)
    /// Neutral grey used for NaN heat-map cells.
    public static let missing = Color(hex: 0xBBBBBB)
}

/// Categorical colours, assigned in order to the line and scatter layers of a panel (wrapping).
public struct Palette: Hashable, Sendable {
    public var colors: [Color]
    public init(colors: [Color]) { self.colors = colors }

    /// The `i`-th colour (wraps around).
    public func color(_ i: Int) -> Color {
        guard !colors.isEmpty else { return .black }
        let n = colors.count
        return colors[((i % n) + n) % n]
    }

    /// Okabe & Ito (2008) colour-blind-safe palette, canonical order: black, orange, sky blue,
    /// bluish green, yellow, blue, vermillion, reddish purple.
    public static let okabeIto = Palette(colors: [
        Color(hex: 0x000000), Color(hex: 0xE69F00), Color(hex: 0x56B4E9), Color(hex: 0x009E73),
        Color(hex: 0xF0E442), Color(hex: 0x0072B2), Color(hex: 0xD55E00), Color(hex: 0xCC79A7),
    ])

    /// The 8 Okabe–Ito colours in the order used for series on a white background (yellow, the
    /// least visible, last): blue, vermillion, bluish green, reddish purple, orange, sky blue,
    /// black, yellow. This is the default series palette.
    public static let series = Palette(colors: [
        Color(hex: 0x0072B2), Color(hex: 0xD55E00), Color(hex: 0x009E73), Color(hex: 0xCC79A7),
        Color(hex: 0xE69F00), Color(hex: 0x56B4E9), Color(hex: 0x000000), Color(hex: 0xF0E442),
    ])
}

/// A sequential colormap: equally spaced colour stops, linearly interpolated in sRGB.
public struct Colormap: Hashable, Sendable {
    public var stops: [Color]
    /// Colour for NaN values.
    public var missing: Color

    public init(stops: [Color], missing: Color = .missing) {
        self.stops = stops
        self.missing = missing
    }

    /// Colour at `t` in [0, 1] (clamped; NaN gives `missing`). Channels are rounded to nearest.
    public func color(at t: Double) -> Color {
        guard !t.isNaN, !stops.isEmpty else { return missing }
        if stops.count == 1 { return stops[0] }
        let u = min(max(t, 0), 1) * Double(stops.count - 1)
        let i = min(Int(u.rounded(.down)), stops.count - 2)
        let f = u - Double(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ p: UInt8, _ q: UInt8) -> UInt8 {
            UInt8(min(max((Double(p) + (Double(q) - Double(p)) * f).rounded(), 0), 255))
        }
        return Color(r: mix(a.r, b.r), g: mix(a.g, b.g), b: mix(a.b, b.b))
    }

    /// Colour of `value` normalised to `range` (constant range maps to the middle).
    public func color(for value: Double, in range: ClosedRange<Double>) -> Color {
        let span = range.upperBound - range.lowerBound
        guard value.isFinite else { return missing }
        return color(at: span > 0 ? (value - range.lowerBound) / span : 0.5)
    }

    /// Viridis (van der Walt & Smith, matplotlib's default): its values at 0, 1/8, ..., 1.
    public static let viridis = Colormap(stops: [
        Color(hex: 0x440154), Color(hex: 0x472D7B), Color(hex: 0x3B528B), Color(hex: 0x2C728E),
        Color(hex: 0x21918C), Color(hex: 0x28AE80), Color(hex: 0x5EC962), Color(hex: 0xADDC30),
        Color(hex: 0xFDE725),
    ])

    /// Light grey to black.
    public static let greys = Colormap(stops: [Color(hex: 0xF0F0F0), Color(hex: 0x000000)],
                                       missing: Color(hex: 0xE8C0C0))
}
