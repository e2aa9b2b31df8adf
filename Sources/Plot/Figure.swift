// Chart specification: plain values, no rendering logic.
//
// A `Figure` holds `Panel`s laid out on a grid; every panel has an x and a y `Axis` and a list of
// `Layer`s drawn in order. `SVGRenderer.render(_:)` turns a figure into an SVG string.

/// A point in data coordinates.
public struct Point: Hashable, Sendable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

/// Margins in pixels (top, right, bottom, left).
public struct Margins: Hashable, Sendable {
    public var top: Double
    public var right: Double
    public var bottom: Double
    public var left: Double
    public init(top: Double, right: Double, bottom: Double, left: Double) {
        self.top = top
        self.right = right
        self.bottom = bottom
        self.left = left
    }
    /// Default room around each panel's plot area for tick labels and axis labels.
    public static let standard = Margins(top: 12, right: 16, bottom: 44, left: 62)
}

/// A whole figure: an optional title, panels on a grid of `columns`, an overall size, a caption.
public struct Figure: Sendable, Equatable {
    /// Figure title (drawn on top, and used as the accessible `<title>` of the SVG).
    public var title: String
    public var panels: [Panel]
    /// Number of grid columns; rows = ceil(panels.count / columns).
    public var columns: Int
    /// Overall size in px (also the `viewBox`).
    public var width: Double
    public var height: Double
    /// Optional caption drawn under the panels (and emitted as `<desc>`).
    public var caption: String?
    /// Room around each panel's plot area (a panel title adds `Layout.panelTitleHeight` on top;
    /// a colour bar adds `Layout.colorBarRoom` on the right).
    public var margins: Margins
    /// Prefix for the SVG ids (clip paths, gradients, patterns). `nil`: derived deterministically
    /// from the titles, so several figures can be inlined in one HTML page without clashes.
    public var idPrefix: String?
    /// Base font size in px.
    public var fontSize: Double

    public init(title: String = "", panels: [Panel], columns: Int = 1, width: Double = 640,
                height: Double = 420, caption: String? = nil, margins: Margins = .standard,
                idPrefix: String? = nil, fontSize: Double = 11) {
        self.title = title
        self.panels = panels
        self.columns = columns
        self.width = width
        self.height = height
        self.caption = caption
        self.margins = margins
        self.idPrefix = idPrefix
        self.fontSize = fontSize
    }
}

/// Where a panel's legend goes (inside the plot area), or `.none`.
public enum LegendPosition: Sendable, Equatable {
    case none, topLeft, topRight, bottomLeft, bottomRight
}

/// One chart: axes, layers, legend.
public struct Panel: Sendable, Equatable {
    public var title: String
    public var x: Axis
    public var y: Axis
    /// Drawn in order (first is at the bottom).
    public var layers: [Layer]
    public var legend: LegendPosition
    /// Light grid lines at the major ticks.
    public var grid: Bool

    public init(title: String = "", x: Axis = Axis(), y: Axis = Axis(), layers: [Layer] = [],
                legend: LegendPosition = .topRight, grid: Bool = true) {
        self.title = title
        self.x = x
        self.y = y
        self.layers = layers
        self.legend = legend
        self.grid = grid
    }
}

/// Axis scale kind.
public enum AxisScale: Sendable, Equatable {
    case linear
    /// Base-10 logarithmic; non-positive values are skipped.
    case log10
}

/// An axis: label (with units), scale, optional explicit range and tick override.
public struct Axis: Sendable, Equatable {
    /// Label, units included, e.g. "learning rate η (log)" or "time (s)".
    public var label: String
    public var scale: AxisScale
    /// Explicit range; `nil` = automatic (data extent plus 5% margin on linear axes; whole decades,
    /// or 1-2-5 values when the data span under two decades, on log axes).
    public var range: ClosedRange<Double>?
    /// Explicit tick positions (only those inside the range are drawn); `nil` = nice ticks.
    public var ticks: [Double]?
    /// Labels for explicit `ticks` (same count); `nil` = `TickFormatter`.
    public var tickLabels: [String]?

    public init(_ label: String = "", scale: AxisScale = .linear, range: ClosedRange<Double>? = nil,
                ticks: [Double]? = nil, tickLabels: [String]? = nil) {
        self.label = label
        self.scale = scale
        self.range = range
        self.ticks = ticks
        self.tickLabels = tickLabels
    }
}

/// Stroke dash pattern.
public enum DashStyle: Sendable, Equatable {
    case solid, dashed, dotted, dashDot

    /// Value of `stroke-dasharray`, `nil` for solid.
    public var dashArray: String? {
        switch self {
        case .solid: return nil
        case .dashed: return "6,4"
        case .dotted: return "1.5,3"
        case .dashDot: return "6,3,1.5,3"
        }
    }
}

/// Marker shapes for line and scatter layers.
public enum MarkerShape: Sendable, Equatable {
    case circle, square, triangle, diamond, cross
}

/// A layer of a panel.
public enum Layer: Sendable, Equatable {
    case line(LineSeries)
    case scatter(Scatter)
    case heatMap(HeatMap)
    case contour(Contour)
    case reference(ReferenceLine)
}

/// A polyline through `points`, optionally with markers and a confidence band.
/// Non-finite points (and non-positive ones on log axes) break the line into segments.
public struct LineSeries: Sendable, Equatable {
    public var points: [Point]
    /// Legend label; empty = not in the legend.
    public var label: String
    /// `nil` = next colour of the palette.
    public var color: Color?
    public var dash: DashStyle
    public var lineWidth: Double
    /// Marker drawn at every point, `nil` = none. Isolated points always get a circle.
    public var marker: MarkerShape?
    /// Confidence band: lower and upper y per point (same count as `points`), drawn as a translucent
    /// polygon in the series colour.
    public var band: ConfidenceBand?

    public init(points: [Point], label: String = "", color: Color? = nil, dash: DashStyle = .solid,
                lineWidth: Double = 1.5, marker: MarkerShape? = nil,
                band: ConfidenceBand? = nil) {
        self.points = points
        self.label = label
        self.color = color
        self.dash = dash
        self.lineWidth = lineWidth
        self.marker = marker
        self.band = band
    }

    /// Convenience: parallel x and y arrays (the shorter length wins).
    public init(x: [Double], y: [Double], label: String = "", color: Color? = nil,
                dash: DashStyle = .solid, lineWidth: Double = 1.5, marker: MarkerShape? = nil,
                band: ConfidenceBand? = nil) {
        self.init(points: zip(x, y).map { Point($0, $1) }, label: label, color: color, dash: dash,
                  lineWidth: lineWidth, marker: marker, band: band)
    }
}

/// Unconnected markers, optionally with a text label next to each point.
public struct Scatter: Sendable, Equatable {
    public var points: [Point]
    /// Per-point labels (same count as `points`, empty strings allowed), `nil` = none.
    public var pointLabels: [String]?
    public var label: String
    public var color: Color?
    public var marker: MarkerShape
    /// Marker radius in px.
    public var size: Double

    public init(points: [Point], pointLabels: [String]? = nil, label: String = "", color: Color? = nil,
                marker: MarkerShape = .circle, size: Double = 3.5) {
        self.points = points
        self.pointLabels = pointLabels
        self.label = label
        self.color = color
        self.marker = marker
        self.size = size
    }
}

/// Cell coordinates along one axis of a heat map.
public enum CellCoordinates: Sendable, Equatable {
    /// n+1 boundaries for n cells.
    case edges([Double])
    /// n cell centres; boundaries are the midpoints (geometric midpoints on a log axis), the outer
    /// ones extrapolated by half a step.
    case centres([Double])
}

/// Colour bar of a heat map (drawn right of the plot area).
public struct ColorBar: Sendable, Equatable {
    public var label: String
    public init(label: String = "") { self.label = label }
}

/// A gridded field drawn as coloured cells. `values[row][column]`: row j spans y cell j, column i
/// spans x cell i (row 0 is at the first y coordinate). NaN cells are drawn hatched grey.
public struct HeatMap: Sendable, Equatable {
    public var values: [[Double]]
    public var x: CellCoordinates
    public var y: CellCoordinates
    public var colormap: Colormap
    /// Value range mapped onto the colormap; `nil` = finite min...max.
    public var range: ClosedRange<Double>?
    /// `nil` = no colour bar.
    public var colorBar: ColorBar?

    public init(values: [[Double]], x: CellCoordinates, y: CellCoordinates, colormap: Colormap = .viridis,
                range: ClosedRange<Double>? = nil, colorBar: ColorBar? = ColorBar()) {
        self.values = values
        self.x = x
        self.y = y
        self.colormap = colormap
        self.range = range
        self.colorBar = colorBar
    }
}

/// Contour lines of a gridded field `field[row][column]` sampled at (`xs[column]`, `ys[row]`),
/// one path per level (marching squares, linear interpolation).
public struct Contour: Sendable, Equatable {
    public var field: [[Double]]
    public var xs: [Double]
    public var ys: [Double]
    public var levels: [Double]
    /// Single colour for all levels; `nil` = levels coloured by `colormap`.
    public var color: Color?
    public var colormap: Colormap
    /// Write each level's value next to its longest contour line.
    public var showLabels: Bool
    public var lineWidth: Double

    public init(field: [[Double]], xs: [Double], ys: [Double], levels: [Double], color: Color? = nil,
                colormap: Colormap = .viridis, showLabels: Bool = false, lineWidth: Double = 1.2) {
        self.field = field
        self.xs = xs
        self.ys = ys
        self.levels = levels
        self.color = color
        self.colormap = colormap
        self.showLabels = showLabels
        self.lineWidth = lineWidth
    }
}

/// A horizontal (y = value) or vertical (x = value) line across the plot area, with a label.
public struct ReferenceLine: Sendable, Equatable {
    public enum Orientation: Sendable, Equatable {
        case horizontal(y: Double)
        case vertical(x: Double)
    }
    public var orientation: Orientation
    public var label: String
    public var color: Color
    public var dash: DashStyle

    public init(_ orientation: Orientation, label: String = "", color: Color = Color(hex: 0x555555),
                dash: DashStyle = .dashed) {
        self.orientation = orientation
        self.label = label
        self.color = color
        self.dash = dash
    }

    public static func horizontal(y: Double, label: String = "") -> ReferenceLine {
        ReferenceLine(.horizontal(y: y), label: label)
    }
    public static func vertical(x: Double, label: String = "") -> ReferenceLine {
        ReferenceLine(.vertical(x: x), label: label)
    }
}

/// Lower and upper y per point of a line series (same count as its points).
public struct ConfidenceBand: Sendable, Equatable {
    public var lower: [Double]
    public var upper: [Double]
    public init(lower: [Double], upper: [Double]) {
        self.lower = lower
        self.upper = upper
    }
}
