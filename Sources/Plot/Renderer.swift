import Foundation

/// A rectangle in pixels.
public struct Rect: Hashable, Sendable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
    public var midX: Double { x + width / 2 }
    public var midY: Double { y + height / 2 }
}

/// Layout constants (px) used by `SVGRenderer`.
public enum Layout {
    /// Band on top of the figure for a non-empty figure title.
    public static let titleHeight = 28.0
    /// Height per caption line (captions are word-wrapped to the figure width), plus `captionPadding`.
    public static let captionLineHeight = 15.0
    public static let captionPadding = 8.0
    /// Extra room above a plot area for a non-empty panel title.
    public static let panelTitleHeight = 18.0
    /// Extra room right of a plot area holding a colour bar.
    public static let colorBarRoom = 84.0
    /// Gap between plot area and colour bar, and the bar's width.
    public static let colorBarGap = 10.0
    public static let colorBarWidth = 12.0
    /// Minimum plot-area side.
    public static let minPlotSide = 10.0
}

/// Renders a `Figure` to a standalone SVG 1.1 document. Pure and deterministic: the same figure
/// always gives byte-identical output.
public enum SVGRenderer {
    /// The SVG document. `xmlDeclaration: false` omits `<?xml ...?>` (for inlining into HTML).
    public static func render(_ figure: Figure, xmlDeclaration: Bool = true) -> String {
        var r = FigureRenderer(figure: figure)
        return r.render(xmlDeclaration: xmlDeclaration)
    }

    /// Plot areas (inside the axes) of the figure's panels, in panel order: the figure minus the
    /// title band and caption is split into a grid of equal cells (`columns` wide); each cell minus
    /// `figure.margins` (plus `Layout.panelTitleHeight` on top for a titled panel and
    /// `Layout.colorBarRoom` on the right for a panel with a colour bar) is the plot area.
    public static func plotAreas(for figure: Figure) -> [Rect] {
        let n = figure.panels.count
        guard n > 0 else { return [] }
        let cols = max(1, min(figure.columns, n))
        let rows = (n + cols - 1) / cols
        let top = figure.title.isEmpty ? 0 : Layout.titleHeight
        let bottom = captionHeight(figure)
        let cellW = figure.width / Double(cols)
        let cellH = max(figure.height - top - bottom, 0) / Double(rows)
        let m = figure.margins
        return figure.panels.enumerated().map { k, panel in
            let cx = Double(k % cols) * cellW
            let cy = top + Double(k / cols) * cellH
            let t = m.top + (panel.title.isEmpty ? 0 : Layout.panelTitleHeight)
            let r = m.right + (hasColorBar(panel) ? Layout.colorBarRoom : 0)
            return Rect(x: cx + m.left, y: cy + t,
                        width: max(cellW - m.left - r, Layout.minPlotSide),
                        height: max(cellH - t - m.bottom, Layout.minPlotSide))
        }
    }

    static func hasColorBar(_ p: Panel) -> Bool {
        p.layers.contains { if case .heatMap(let h) = $0, h.colorBar != nil { return true } else { return false } }
    }

    static func captionLines(_ f: Figure) -> [String] {
        guard let c = f.caption, !c.isEmpty else { return [] }
        let perLine = max(Int((f.width - 16) / (f.fontSize * 0.55)), 10)
        var lines: [String] = []
        for para in c.split(separator: "\n", omittingEmptySubsequences: false) {
            var cur = ""
            for w in para.split(separator: " ") {
                if !cur.isEmpty && cur.count + 1 + w.count > perLine {
                    lines.append(cur)
                    cur = ""
                }
                cur += (cur.isEmpty ? "" : " ") + w
            }
            lines.append(cur)
        }
        return lines
    }

    static func captionHeight(_ f: Figure) -> Double {
        let n = captionLines(f).count
        return n == 0 ? 0 : Double(n) * Layout.captionLineHeight + Layout.captionPadding
    }
}

// MARK: - Implementation

private let idToken = "\u{1}ID\u{1}"

private func n(_ v: Double) -> String { SVGText.number(v) }
private func esc(_ s: String) -> String { SVGText.escape(s) }

/// Data extent along one axis.
private struct Extent {
    var lo = Double.infinity
    var hi = -Double.infinity
    var isEmpty: Bool { lo > hi }
    mutating func add(_ v: Double) {
        lo = min(lo, v)
        hi = max(hi, v)
    }
}

/// Axis after range and tick resolution.
private struct ResolvedAxis {
    var range: ClosedRange<Double>
    var scale: any Scale
    var ticks: [Double]
    var labels: [String]
}

private struct FigureRenderer {
    let figure: Figure
    var defs: [String] = []
    var body: [String] = []
    var needsNaNPattern = false

    init(figure: Figure) { self.figure = figure }

    var fs: Double { figure.fontSize }

    mutating func render(xmlDeclaration: Bool) -> String {
        let W = figure.width, H = figure.height
        if !figure.title.isEmpty {
            body.append("<text class=\"figure-title\" x=\"\(n(W / 2))\" y=\"\(n(Layout.titleHeight - 9))\" text-anchor=\"middle\" font-size=\"\(n(fs + 3))\" font-weight=\"bold\">\(esc(figure.title))</text>")
        }
        let areas = SVGRenderer.plotAreas(for: figure)
        let cols = max(1, min(figure.columns, figure.panels.count))
        let cellW = W / Double(cols)
        for (k, panel) in figure.panels.enumerated() {
            let cellX = Double(k % cols) * cellW
            renderPanel(panel, index: k, area: areas[k], cellX: cellX)
        }
        let lines = SVGRenderer.captionLines(figure)
        if !lines.isEmpty {
            let top = H - SVGRenderer.captionHeight(figure) + Layout.captionPadding / 2
            for (i, line) in lines.enumerated() {
                body.append("<text class=\"caption\" x=\"8\" y=\"\(n(top + Double(i) * Layout.captionLineHeight + fs))\" fill=\"#333333\">\(esc(line))</text>")
            }
        }
        if needsNaNPattern {
            defs.append("<pattern id=\"\(idToken)-nan\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\"><rect class=\"nan-bg\" width=\"6\" height=\"6\" fill=\"\(Color.missing.hex)\"/><path d=\"M0,6L6,0M-1,1L1,-1M5,7L7,5\" stroke=\"#888888\" stroke-width=\"1\"/></pattern>")
        }

        var out: [String] = []
        if xmlDeclaration { out.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") }
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(n(W))\" height=\"\(n(H))\" viewBox=\"0 0 \(n(W)) \(n(H))\" font-family=\"sans-serif\" font-size=\"\(n(fs))\">")
        out.append("<title>\(esc(figure.title.isEmpty ? "Figure" : figure.title))</title>")
        if let c = figure.caption, !c.isEmpty { out.append("<desc>\(esc(c))</desc>") }
        if !defs.isEmpty { out.append("<defs>"); out += defs; out.append("</defs>") }
        out.append("<rect class=\"background\" x=\"0\" y=\"0\" width=\"\(n(W))\" height=\"\(n(H))\" fill=\"#ffffff\"/>")
        out += body
        out.append("</svg>")
        let doc = out.joined(separator: "\n") + "\n"
        // Ids: the given prefix, or a hash of the document (identical figures share identical
        // definitions, so clashes between inlined copies are harmless).
        let prefix = figure.idPrefix.map(SVGText.sanitizeID)
            ?? "plot-" + String(String(SVGText.fnv1a(doc), radix: 16).suffix(12))
        return doc.replacingOccurrences(of: idToken, with: prefix)
    }

    // MARK: Axes

    /// Extents of drawable data; `padded` when line/scatter data are present.
    func extents(_ p: Panel) -> (x: Extent, y: Extent, padded: Bool, hasData: Bool) {
        var ex = Extent(), ey = Extent()
        var padded = false, hasData = false
        let xs = p.x.scale, ys = p.y.scale
        for layer in p.layers {
            switch layer {
            case .line(let s):
                for (i, pt) in s.points.enumerated() where xs.accepts(pt.x) {
                    var any = false
                    if ys.accepts(pt.y) { ey.add(pt.y); any = true }
                    if let b = s.band, i < b.lower.count, i < b.upper.count {
                        for v in [b.lower[i], b.upper[i]] where ys.accepts(v) { ey.add(v); any = true }
                    }
                    if any { ex.add(pt.x); padded = true; hasData = true }
                }
            case .scatter(let s):
                for pt in s.points where xs.accepts(pt.x) && ys.accepts(pt.y) {
                    ex.add(pt.x); ey.add(pt.y); padded = true; hasData = true
                }
            case .heatMap(let h):
                guard let (xe, ye) = heatEdges(h, p) else { continue }
                let gx = xe.filter(xs.accepts), gy = ye.filter(ys.accepts)
                if gx.count >= 2 && gy.count >= 2 {
                    gx.forEach { ex.add($0) }; gy.forEach { ey.add($0) }; hasData = true
                }
            case .contour(let c):
                let gx = c.xs.filter(xs.accepts), gy = c.ys.filter(ys.accepts)
                if gx.count >= 2 && gy.count >= 2 && c.field.contains(where: { $0.contains { $0.isFinite } }) {
                    gx.forEach { ex.add($0) }; gy.forEach { ey.add($0) }; hasData = true
                }
            case .reference(let r):
                switch r.orientation {
                case .horizontal(let y): if ys.accepts(y) { ey.add(y) }
                case .vertical(let x): if xs.accepts(x) { ex.add(x) }
                }
            }
        }
        return (ex, ey, padded, hasData)
    }

    func resolveRange(_ axis: Axis, _ e: Extent, padded: Bool) -> ClosedRange<Double> {
        if let r = axis.range, r.lowerBound.isFinite, r.upperBound.isFinite,
           axis.scale == .linear || r.lowerBound > 0 {
            if r.lowerBound < r.upperBound { return r }
            let w = NiceTicks.widen(r.lowerBound)
            return axis.scale == .linear ? w.0...w.1 : NiceTicks.logRange(min: r.lowerBound, max: r.upperBound)
        }
        switch axis.scale {
        case .linear:
            if e.isEmpty { return 0...1 }
            if padded || e.lo == e.hi { return NiceTicks.paddedRange(min: e.lo, max: e.hi) }
            return e.lo...e.hi
        case .log10:
            if e.isEmpty { return 1...10 }
            if padded || e.lo == e.hi { return NiceTicks.logRange(min: e.lo, max: e.hi) }
            return e.lo...e.hi
        }
    }

    func resolveAxis(_ axis: Axis, _ e: Extent, padded: Bool, pixels: (Double, Double)) -> ResolvedAxis {
        let range = resolveRange(axis, e, padded: padded)
        let scale = axis.scale.scale(domain: range, range: pixels)
        let eps = (range.upperBound - range.lowerBound) * 1e-9
        func inside(_ v: Double) -> Bool {
            v >= range.lowerBound - eps && v <= range.upperBound + eps && axis.scale.accepts(v)
        }
        if let t = axis.ticks {
            let keep = t.indices.filter { inside(t[$0]) }
            let ticks = keep.map { t[$0] }
            if let l = axis.tickLabels, l.count == t.count {
                return ResolvedAxis(range: range, scale: scale, ticks: ticks, labels: keep.map { l[$0] })
            }
            let labels = axis.scale == .linear ? TickFormatter.labels(for: ticks) : TickFormatter.logLabels(for: ticks)
            return ResolvedAxis(range: range, scale: scale, ticks: ticks, labels: labels)
        }
        switch axis.scale {
        case .linear:
            let ticks = NiceTicks.within(min: range.lowerBound, max: range.upperBound)
            return ResolvedAxis(range: range, scale: scale, ticks: ticks, labels: TickFormatter.labels(for: ticks))
        case .log10:
            let ticks = NiceTicks.log(min: range.lowerBound, max: range.upperBound)
            let decades = Foundation.log10(range.upperBound / range.lowerBound)
            let labels = decades < 1 ? TickFormatter.labels(for: ticks) : TickFormatter.logLabels(for: ticks)
            return ResolvedAxis(range: range, scale: scale, ticks: ticks, labels: labels)
        }
    }

    // MARK: Panel

    mutating func renderPanel(_ p: Panel, index k: Int, area a: Rect, cellX: Double) {
        let e = extents(p)
        let X = resolveAxis(p.x, e.x, padded: e.padded, pixels: (a.x, a.maxX))
        let Y = resolveAxis(p.y, e.y, padded: e.padded, pixels: (a.maxY, a.y))
        let clip = "\(idToken)-clip\(k)"
        defs.append("<clipPath id=\"\(clip)\"><rect x=\"\(n(a.x))\" y=\"\(n(a.y))\" width=\"\(n(a.width))\" height=\"\(n(a.height))\"/></clipPath>")

        body.append("<g class=\"panel\">")
        body.append("<title>\(esc(p.title.isEmpty ? "Panel \(k + 1)" : p.title))</title>")

        if e.hasData {
            if p.grid {
                var d = ""
                for t in X.ticks { let x = X.scale.map(t); if x.isFinite { d += "M\(n(x)),\(n(a.y))V\(n(a.maxY))" } }
                for t in Y.ticks { let y = Y.scale.map(t); if y.isFinite { d += "M\(n(a.x)),\(n(y))H\(n(a.maxX))" } }
                if !d.isEmpty { body.append("<path class=\"grid\" d=\"\(d)\" fill=\"none\" stroke=\"#e6e6e6\" stroke-width=\"1\"/>") }
            }
            body.append("<g clip-path=\"url(#\(clip))\">")
            var colorIndex = 0
            var legend: [(label: String, color: Color, dash: DashStyle, marker: MarkerShape?, line: Bool)] = []
            var colorBar: (HeatMap, ClosedRange<Double>)?
            var references: [ReferenceLine] = []
            for layer in p.layers {
                switch layer {
                case .line(let s):
                    let color = s.color ?? Palette.series.color(colorIndex)
                    if s.color == nil { colorIndex += 1 }
                    drawLine(s, color: color, X, Y)
                    if !s.label.isEmpty { legend.append((s.label, color, s.dash, s.marker, true)) }
                case .scatter(let s):
                    let color = s.color ?? Palette.series.color(colorIndex)
                    if s.color == nil { colorIndex += 1 }
                    drawScatter(s, color: color, X, Y)
                    if !s.label.isEmpty { legend.append((s.label, color, .solid, s.marker, false)) }
                case .heatMap(let h):
                    let vr = drawHeatMap(h, p, X, Y)
                    if colorBar == nil, h.colorBar != nil { colorBar = (h, vr) }
                case .contour(let c):
                    drawContour(c, X, Y)
                case .reference(let r):
                    references.append(r)
                    drawReference(r, a, X, Y, labelPass: false)
                }
            }
            body.append("</g>")
            for r in references { drawReference(r, a, X, Y, labelPass: true) }
            drawAxes(a, X, Y)
            if let (h, vr) = colorBar { drawColorBar(h, range: vr, area: a, index: k) }
            if p.legend != .none && !legend.isEmpty { drawLegend(legend, position: p.legend, area: a) }
        } else {
            body.append("<text class=\"no-data\" x=\"\(n(a.midX))\" y=\"\(n(a.midY))\" text-anchor=\"middle\" fill=\"#888888\">no data</text>")
        }
        body.append("<rect class=\"frame\" x=\"\(n(a.x))\" y=\"\(n(a.y))\" width=\"\(n(a.width))\" height=\"\(n(a.height))\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>")
        if !p.x.label.isEmpty {
            body.append("<text class=\"axis-label\" x=\"\(n(a.midX))\" y=\"\(n(a.maxY + 20 + fs))\" text-anchor=\"middle\">\(esc(p.x.label))</text>")
        }
        if !p.y.label.isEmpty {
            let lx = cellX + fs + 3, ly = a.midY
            body.append("<text class=\"axis-label\" x=\"\(n(lx))\" y=\"\(n(ly))\" text-anchor=\"middle\" transform=\"rotate(-90 \(n(lx)) \(n(ly)))\">\(esc(p.y.label))</text>")
        }
        if !p.title.isEmpty {
            body.append("<text class=\"panel-title\" x=\"\(n(a.midX))\" y=\"\(n(a.y - 7))\" text-anchor=\"middle\" font-weight=\"bold\">\(esc(p.title))</text>")
        }
        body.append("</g>")
    }

    mutating func drawAxes(_ a: Rect, _ X: ResolvedAxis, _ Y: ResolvedAxis) {
        var d = ""
        var labels: [String] = []
        // x: thin labels when they would overlap.
        let xs = X.ticks.map { X.scale.map($0) }
        var stride = 1
        if xs.count >= 2 {
            let spacing = abs(xs[1] - xs[0])
            let widest = X.labels.map { SVGText.width($0, fontSize: fs) }.max() ?? 0
            while stride < xs.count && widest > spacing * Double(stride) * 0.9 { stride += 1 }
        }
        for (i, x) in xs.enumerated() where x.isFinite {
            d += "M\(n(x)),\(n(a.maxY))v5"
            if i % stride == 0 {
                labels.append("<text class=\"tick-label\" x=\"\(n(x))\" y=\"\(n(a.maxY + 7 + fs))\" text-anchor=\"middle\">\(esc(X.labels[i]))</text>")
            }
        }
        for (i, t) in Y.ticks.enumerated() {
            let y = Y.scale.map(t)
            guard y.isFinite else { continue }
            d += "M\(n(a.x)),\(n(y))h-5"
            labels.append("<text class=\"tick-label\" x=\"\(n(a.x - 7))\" y=\"\(n(y + fs * 0.35))\" text-anchor=\"end\">\(esc(Y.labels[i]))</text>")
        }
        if !d.isEmpty { body.append("<path class=\"ticks\" d=\"\(d)\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>") }
        body += labels
    }

    // MARK: Layers

    /// Runs of consecutive drawable pixel points.
    static func runs(_ pts: [(Double, Double)]) -> [[(Double, Double)]] {
        var out: [[(Double, Double)]] = []
        var cur: [(Double, Double)] = []
        for p in pts {
            if p.0.isFinite && p.1.isFinite { cur.append(p) } else if !cur.isEmpty { out.append(cur); cur = [] }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    static func pathData(_ run: [(Double, Double)]) -> String {
        var d = ""
        for (i, p) in run.enumerated() { d += (i == 0 ? "M" : "L") + n(p.0) + "," + n(p.1) }
        return d
    }

    func strokeAttributes(_ color: Color, width: Double, dash: DashStyle) -> String {
        var s = "fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\" stroke-linecap=\"round\""
        if let da = dash.dashArray { s += " stroke-dasharray=\"\(da)\"" }
        return s
    }

    func marker(_ shape: MarkerShape, _ x: Double, _ y: Double, r: Double, color: Color, cls: String = "marker") -> String {
        switch shape {
        case .circle:
            return "<circle class=\"\(cls)\" cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(r))\" fill=\"\(color.hex)\"/>"
        case .square:
            let s = r * 0.9
            return "<rect class=\"\(cls)\" x=\"\(n(x - s))\" y=\"\(n(y - s))\" width=\"\(n(2 * s))\" height=\"\(n(2 * s))\" fill=\"\(color.hex)\"/>"
        case .triangle:
            let h = r * 1.2
            return "<path class=\"\(cls)\" d=\"M\(n(x)),\(n(y - h))L\(n(x + h)),\(n(y + h * 0.8))L\(n(x - h)),\(n(y + h * 0.8))Z\" fill=\"\(color.hex)\"/>"
        case .diamond:
            let h = r * 1.25
            return "<path class=\"\(cls)\" d=\"M\(n(x)),\(n(y - h))L\(n(x + h)),\(n(y))L\(n(x)),\(n(y + h))L\(n(x - h)),\(n(y))Z\" fill=\"\(color.hex)\"/>"
        case .cross:
            return "<path class=\"\(cls)\" d=\"M\(n(x - r)),\(n(y - r))L\(n(x + r)),\(n(y + r))M\(n(x - r)),\(n(y + r))L\(n(x + r)),\(n(y - r))\" fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"1.5\"/>"
        }
    }

    mutating func drawLine(_ s: LineSeries, color: Color, _ X: ResolvedAxis, _ Y: ResolvedAxis) {
        if let b = s.band {
            var poly: [(Double, Double, Double)] = []  // x, yLower, yUpper in px (NaN = gap)
            for (i, p) in s.points.enumerated() {
                let lo = i < b.lower.count ? Y.scale.map(b.lower[i]) : .nan
                let hi = i < b.upper.count ? Y.scale.map(b.upper[i]) : .nan
                poly.append((X.scale.map(p.x), lo, hi))
            }
            var d = ""
            var run: [(Double, Double, Double)] = []
            func flush() {
                if run.count >= 2 {
                    d += "M" + run.map { n($0.0) + "," + n($0.2) }.joined(separator: "L")
                    d += "L" + run.reversed().map { n($0.0) + "," + n($0.1) }.joined(separator: "L") + "Z"
                }
                run = []
            }
            for q in poly {
                if q.0.isFinite && q.1.isFinite && q.2.isFinite { run.append(q) } else { flush() }
            }
            flush()
            if !d.isEmpty { body.append("<path class=\"band\" d=\"\(d)\" fill=\"\(color.hex)\" fill-opacity=\"0.2\" stroke=\"none\"/>") }
        }
        let px = s.points.map { (X.scale.map($0.x), Y.scale.map($0.y)) }
        let runs = Self.runs(px)
        let d = runs.filter { $0.count >= 2 }.map(Self.pathData).joined()
        if !d.isEmpty { body.append("<path class=\"series\" d=\"\(d)\" \(strokeAttributes(color, width: s.lineWidth, dash: s.dash))/>") }
        let r = max(s.lineWidth * 1.6, 2.5)
        for run in runs {
            if let m = s.marker {
                for p in run { body.append(marker(m, p.0, p.1, r: r, color: color)) }
            } else if run.count == 1 {
                body.append(marker(.circle, run[0].0, run[0].1, r: r, color: color))
            }
        }
    }

    mutating func drawScatter(_ s: Scatter, color: Color, _ X: ResolvedAxis, _ Y: ResolvedAxis) {
        for (i, p) in s.points.enumerated() {
            let x = X.scale.map(p.x), y = Y.scale.map(p.y)
            guard x.isFinite, y.isFinite else { continue }
            body.append(marker(s.marker, x, y, r: s.size, color: color))
            if let l = s.pointLabels, i < l.count, !l[i].isEmpty {
                body.append("<text class=\"point-label\" x=\"\(n(x + s.size + 2))\" y=\"\(n(y - s.size - 1))\" font-size=\"\(n(fs - 1))\">\(esc(l[i]))</text>")
            }
        }
    }

    /// Cell edges in data space, or nil if the shape is unusable.
    func heatEdges(_ h: HeatMap, _ p: Panel) -> ([Double], [Double])? {
        let rows = h.values.count
        guard rows > 0, let cols = h.values.first?.count, cols > 0, h.values.allSatisfy({ $0.count == cols }) else { return nil }
        func edges(_ c: CellCoordinates, count: Int, log: Bool) -> [Double] {
            switch c {
            case .edges(let e) where e.count == count + 1:
                return e
            case .centres(let c) where c.count == count:
                if count == 1 { return log ? [c[0] / 2, c[0] * 2] : [c[0] - 0.5, c[0] + 0.5] }
                func mid(_ a: Double, _ b: Double) -> Double { log ? (a * b).squareRoot() : (a + b) / 2 }
                func ext(_ a: Double, _ b: Double) -> Double { log ? a * a / b : 2 * a - b }  // mirror b about a
                var e = [mid(c[0], c[1])]
                for i in 1..<count { e.append(mid(c[i - 1], c[i])) }
                e[0] = ext(c[0], e[0])
                e.append(ext(c[count - 1], e[count - 1]))
                return e
            default:
                return (0...count).map(Double.init)
            }
        }
        return (edges(h.x, count: cols, log: p.x.scale == .log10), edges(h.y, count: rows, log: p.y.scale == .log10))
    }

    /// Draws the cells; returns the value range used for colouring.
    mutating func drawHeatMap(_ h: HeatMap, _ p: Panel, _ X: ResolvedAxis, _ Y: ResolvedAxis) -> ClosedRange<Double> {
        var vr: ClosedRange<Double>
        if let r = h.range, r.lowerBound.isFinite, r.upperBound.isFinite {
            vr = r
        } else {
            var e = Extent()
            for row in h.values { for v in row where v.isFinite { e.add(v) } }
            vr = e.isEmpty ? 0...1 : e.lo...e.hi
        }
        if vr.lowerBound == vr.upperBound { let w = NiceTicks.widen(vr.lowerBound); vr = w.0...w.1 }
        guard let (xe, ye) = heatEdges(h, p) else { return vr }
        let px = xe.map { X.scale.map($0) }, py = ye.map { Y.scale.map($0) }
        body.append("<g class=\"heatmap\" shape-rendering=\"crispEdges\">")
        for (j, row) in h.values.enumerated() {
            for (i, v) in row.enumerated() {
                let x0 = px[i], x1 = px[i + 1], y0 = py[j], y1 = py[j + 1]
                guard x0.isFinite, x1.isFinite, y0.isFinite, y1.isFinite else { continue }
                let fill: String
                if v.isFinite {
                    fill = h.colormap.color(for: v, in: vr).hex
                } else {
                    needsNaNPattern = true
                    fill = "url(#\(idToken)-nan)"
                }
                let xa = n(min(x0, x1)), ya = n(min(y0, y1))
                // Width from rounded edges so neighbouring cells share boundaries exactly.
                let w = n(abs(Double(n(x1))! - Double(n(x0))!)), hh = n(abs(Double(n(y1))! - Double(n(y0))!))
                body.append("<rect class=\"cell\" x=\"\(xa)\" y=\"\(ya)\" width=\"\(w)\" height=\"\(hh)\" fill=\"\(fill)\"/>")
            }
        }
        body.append("</g>")
        return vr
    }

    mutating func drawColorBar(_ h: HeatMap, range vr: ClosedRange<Double>, area a: Rect, index k: Int) {
        let id = "\(idToken)-cbar\(k)"
        let stops = h.colormap.stops
        var g = "<linearGradient id=\"\(id)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for (i, c) in stops.enumerated() {
            let off = stops.count > 1 ? Double(i) / Double(stops.count - 1) : 0
            g += "<stop offset=\"\(TickFormatter.fixed(off, places: 4))\" stop-color=\"\(c.hex)\"/>"
        }
        defs.append(g + "</linearGradient>")
        let bx = a.maxX + Layout.colorBarGap, bw = Layout.colorBarWidth
        body.append("<g class=\"colorbar\">")
        body.append("<rect class=\"colorbar-bar\" x=\"\(n(bx))\" y=\"\(n(a.y))\" width=\"\(n(bw))\" height=\"\(n(a.height))\" fill=\"url(#\(id))\" stroke=\"#333333\" stroke-width=\"0.5\"/>")
        let ticks = NiceTicks.within(min: vr.lowerBound, max: vr.upperBound)
        let labels = TickFormatter.labels(for: ticks)
        let scale = LinearScale(domain: (vr.lowerBound, vr.upperBound), range: (a.maxY, a.y))
        var widest = 0.0
        for (t, l) in zip(ticks, labels) {
            let y = scale.map(t)
            body.append("<line class=\"cbar-tick\" x1=\"\(n(bx + bw))\" y1=\"\(n(y))\" x2=\"\(n(bx + bw + 4))\" y2=\"\(n(y))\" stroke=\"#333333\" stroke-width=\"1\"/>")
            body.append("<text class=\"cbar-tick-label\" x=\"\(n(bx + bw + 6))\" y=\"\(n(y + fs * 0.35))\">\(esc(l))</text>")
            widest = max(widest, SVGText.width(l, fontSize: fs))
        }
        if let label = h.colorBar?.label, !label.isEmpty {
            let lx = bx + bw + 6 + widest + 6 + fs * 0.5, ly = a.midY
            body.append("<text class=\"cbar-label\" x=\"\(n(lx))\" y=\"\(n(ly))\" text-anchor=\"middle\" transform=\"rotate(-90 \(n(lx)) \(n(ly)))\">\(esc(label))</text>")
        }
        body.append("</g>")
    }

    mutating func drawContour(_ c: Contour, _ X: ResolvedAxis, _ Y: ResolvedAxis) {
        let finiteLevels = c.levels.filter { $0.isFinite }
        let lmin = finiteLevels.min() ?? 0, lmax = finiteLevels.max() ?? 1
        for level in finiteLevels {
            let chains = MarchingSquares.contours(field: c.field, xs: c.xs, ys: c.ys, level: level)
            var d = ""
            var longest: [(Double, Double)] = []
            for chain in chains {
                let closed = chain.count > 2 && chain.first == chain.last
                let px = chain.map { (X.scale.map($0.x), Y.scale.map($0.y)) }
                let runs = Self.runs(px)
                if closed && runs.count == 1 && runs[0].count == px.count {
                    d += Self.pathData(Array(px.dropLast())) + "Z"
                } else {
                    d += runs.filter { $0.count >= 2 }.map(Self.pathData).joined()
                }
                for r in runs where r.count > longest.count { longest = r }
            }
            guard !d.isEmpty else { continue }
            let color = c.color ?? c.colormap.color(at: lmax > lmin ? (level - lmin) / (lmax - lmin) : 0.5)
            body.append("<path class=\"contour\" d=\"\(d)\" \(strokeAttributes(color, width: c.lineWidth, dash: .solid))/>")
            if c.showLabels, !longest.isEmpty {
                let p = longest[longest.count / 2]
                body.append("<text class=\"contour-label\" x=\"\(n(p.0))\" y=\"\(n(p.1 - 2))\" text-anchor=\"middle\" font-size=\"\(n(fs - 2))\" fill=\"\(color.hex)\">\(esc(TickFormatter.format(level)))</text>")
            }
        }
    }

    mutating func drawReference(_ r: ReferenceLine, _ a: Rect, _ X: ResolvedAxis, _ Y: ResolvedAxis, labelPass: Bool) {
        let eps = 0.01
        switch r.orientation {
        case .horizontal(let v):
            let y = Y.scale.map(v)
            guard y.isFinite, y >= a.y - eps, y <= a.maxY + eps else { return }
            if labelPass {
                if !r.label.isEmpty {
                    body.append("<text class=\"reference-label\" x=\"\(n(a.maxX - 4))\" y=\"\(n(y - 4))\" text-anchor=\"end\" fill=\"\(r.color.hex)\">\(esc(r.label))</text>")
                }
            } else {
                body.append("<line class=\"reference\" x1=\"\(n(a.x))\" y1=\"\(n(y))\" x2=\"\(n(a.maxX))\" y2=\"\(n(y))\" \(strokeAttributes(r.color, width: 1, dash: r.dash))/>")
            }
        case .vertical(let v):
            let x = X.scale.map(v)
            guard x.isFinite, x >= a.x - eps, x <= a.maxX + eps else { return }
            if labelPass {
                if !r.label.isEmpty {
                    body.append("<text class=\"reference-label\" x=\"\(n(x + 4))\" y=\"\(n(a.y + fs + 2))\" fill=\"\(r.color.hex)\">\(esc(r.label))</text>")
                }
            } else {
                body.append("<line class=\"reference\" x1=\"\(n(x))\" y1=\"\(n(a.y))\" x2=\"\(n(x))\" y2=\"\(n(a.maxY))\" \(strokeAttributes(r.color, width: 1, dash: r.dash))/>")
            }
        }
    }

    mutating func drawLegend(_ entries: [(label: String, color: Color, dash: DashStyle, marker: MarkerShape?, line: Bool)],
                             position: LegendPosition, area a: Rect) {
        let rowH = fs + 5
        let textW = entries.map { SVGText.width($0.label, fontSize: fs) }.max() ?? 0
        let w = 8 + 22 + 6 + textW + 8, h = Double(entries.count) * rowH + 8
        let inset = 8.0
        let x: Double, y: Double
        switch position {
        case .topLeft: (x, y) = (a.x + inset, a.y + inset)
        case .bottomLeft: (x, y) = (a.x + inset, a.maxY - inset - h)
        case .bottomRight: (x, y) = (a.maxX - inset - w, a.maxY - inset - h)
        case .topRight, .none: (x, y) = (a.maxX - inset - w, a.y + inset)
        }
        body.append("<g class=\"legend\">")
        body.append("<rect class=\"legend-box\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#cccccc\" stroke-width=\"1\"/>")
        for (i, e) in entries.enumerated() {
            let cy = y + 4 + Double(i) * rowH + rowH / 2
            if e.line {
                body.append("<line class=\"legend-line\" x1=\"\(n(x + 8))\" y1=\"\(n(cy))\" x2=\"\(n(x + 30))\" y2=\"\(n(cy))\" \(strokeAttributes(e.color, width: 2, dash: e.dash))/>")
            }
            if let m = e.marker {
                body.append(marker(m, x + 19, cy, r: 3.5, color: e.color, cls: "legend-marker"))
            } else if !e.line {
                body.append(marker(.circle, x + 19, cy, r: 3.5, color: e.color, cls: "legend-marker"))
            }
            body.append("<text class=\"legend-label\" x=\"\(n(x + 36))\" y=\"\(n(cy + fs * 0.35))\">\(esc(e.label))</text>")
        }
        body.append("</g>")
    }
}
