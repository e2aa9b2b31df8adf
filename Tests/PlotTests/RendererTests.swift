import XCTest
@testable import Plot

/// Layout used by the hand-computed tests: 400×300 figure, no title/caption, margins
/// (top 10, right 10, bottom 40, left 50) -> plot area x ∈ [50, 390], y ∈ [10, 260].
private let testMargins = Margins(top: 10, right: 10, bottom: 40, left: 50)

private func figure(_ panels: [Panel], width: Double = 400, height: Double = 300, title: String = "") -> Figure {
    Figure(title: title, panels: panels, width: width, height: height, margins: testMargins, idPrefix: "t")
}

final class RendererTests: XCTestCase {
    func testPlotAreaOfSinglePanel() {
        let f = figure([Panel()])
        XCTAssertEqual(SVGRenderer.plotAreas(for: f), [Rect(x: 50, y: 10, width: 340, height: 250)])
    }

    func testPlotAreasOfGridWithTitleAndCaption() {
        // 800×600, title band 28, one caption line 15 + 8 -> 549 px for 2 rows (274.5 each),
        // 2 columns of 400. Standard margins (12, 16, 44, 62); panel 3 is titled (+18 on top).
        let panels = [Panel(), Panel(), Panel(), Panel(title: "d")]
        let f = Figure(title: "T", panels: panels, columns: 2, width: 800, height: 600, caption: "c")
        let a = SVGRenderer.plotAreas(for: f)
        XCTAssertEqual(a[0], Rect(x: 62, y: 40, width: 322, height: 218.5))
        XCTAssertEqual(a[3], Rect(x: 462, y: 332.5, width: 322, height: 200.5))
    }

    func testThreePointPolylineExactPath() {
        let p = Panel(x: Axis("x", range: 0...10), y: Axis("y", range: 0...1),
                      layers: [.line(LineSeries(points: [Point(0, 0), Point(5, 0.5), Point(10, 1)]))])
        let svg = SVGRenderer.render(figure([p]))
        let doc = ParsedSVG.parse(svg)
        let series = doc.all("path", class: "series")
        XCTAssertEqual(series.count, 1)
        // x: 50 + v/10·340; y: 260 − v·250.
        XCTAssertEqual(series.first?.attributes["d"], "M50,260L220,135L390,10")
        XCTAssertEqual(series.first?.attributes["stroke"], Palette.series.color(0).hex)
        // Ticks 0, 0.2, ..., 1 and 0, 2, ..., 10: 6 + 6 labels.
        XCTAssertEqual(doc.texts("tick-label"), ["0", "2", "4", "6", "8", "10", "0", "0.2", "0.4", "0.6", "0.8", "1"])
        // y tick label of 0.6 sits at 260 − 0.6·250 = 110 (+ 0.35·font size 11 = 3.85 baseline shift).
        XCTAssertEqual(doc.all("text", class: "tick-label")[9].attributes["y"], "113.85")
        XCTAssertEqual(doc.count("text", class: "axis-label"), 2)
    }

    func testSVGRootIsStandaloneAndAccessible() {
        let p = Panel(title: "loss", x: Axis("step"), y: Axis("loss"),
                      layers: [.line(LineSeries(x: [0, 1, 2], y: [3, 2, 1]))])
        let svg = SVGRenderer.render(figure([p], title: "Figure 1"))
        XCTAssertTrue(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "))
        let doc = ParsedSVG.parse(svg)
        let root = doc.elements[0]
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.attributes["xmlns"], "http://www.w3.org/2000/svg")
        XCTAssertEqual(root.attributes["version"], "1.1")
        XCTAssertEqual(root.attributes["viewBox"], "0 0 400 300")
        XCTAssertEqual(root.attributes["width"], "400")
        XCTAssertEqual(root.attributes["height"], "300")
        XCTAssertEqual(root.attributes["font-family"], "sans-serif")
        XCTAssertEqual(doc.elements[1].name, "title")
        XCTAssertEqual(doc.elements[1].text, "Figure 1")
        // Each panel group starts with its own <title>.
        let panelIndex = doc.elements.firstIndex { $0.name == "g" && $0.cls == "panel" }!
        XCTAssertEqual(doc.elements[panelIndex + 1].name, "title")
        XCTAssertEqual(doc.elements[panelIndex + 1].text, "loss")
        XCTAssertFalse(SVGRenderer.render(figure([p]), xmlDeclaration: false).contains("<?xml"))
    }

    func testNaNSplitsLineIntoTwoSegments() {
        let s = LineSeries(x: [0, 1, 2, 3, 4], y: [0, 1, .nan, 1, 0], marker: .circle)
        let p = Panel(x: Axis(range: 0...4), y: Axis(range: 0...1), layers: [.line(s)])
        let svg = SVGRenderer.render(figure([p]))
        let doc = ParsedSVG.parse(svg)
        let d = doc.all("path", class: "series")[0].attributes["d"]!
        // x: 50 + 85·v; y: 260 − 250·v.
        XCTAssertEqual(d, "M50,260L135,10M305,10L390,260")
        XCTAssertEqual(subpathCount(d), 2)
        XCTAssertEqual(doc.count("circle", class: "marker"), 4)
        XCTAssertFalse(svg.lowercased().contains("nan"))
        XCTAssertFalse(svg.contains("inf"))
    }

    func testLogAxisSkipsNonPositivePoints() {
        let s = LineSeries(x: [-1, 0, 1, 10, 100], y: [1, 2, 3, 4, 5])
        let p = Panel(x: Axis("n", scale: .log10), y: Axis(range: 0...5), layers: [.line(s)])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        let d = doc.all("path", class: "series")[0].attributes["d"]!
        // Auto log range of [1, 100]: whole decades 1...100 -> x = 50 + 170·log10(v).
        XCTAssertEqual(d, "M50,110L220,60L390,10")
        // Exactly two decades: 1, 2, 5 × 10^k ticks.
        XCTAssertEqual(Array(doc.texts("tick-label").prefix(7)), ["1", "2", "5", "10", "20", "50", "100"])
    }

    func testLogAxisDecadeTicksAndLabels() {
        let p = Panel(x: Axis("lr", scale: .log10, range: 1e-4...1e2), y: Axis(range: 0...1),
                      layers: [.scatter(Scatter(points: [Point(1e-3, 0.5)]))])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        let labels = doc.texts("tick-label")
        XCTAssertEqual(Array(labels.prefix(7)), ["1e-4", "1e-3", "1e-2", "1e-1", "1e0", "1e1", "1e2"])
        // The decade 1e-1 is 3 of 6 decades along 340 px: x = 50 + 170 = 220.
        XCTAssertEqual(doc.all("text", class: "tick-label")[3].attributes["x"], "220")
        // Marker at 1e-3: 50 + 340/6 = 106.67; y 0.5 -> 135.
        let m = doc.all("circle", class: "marker")[0]
        XCTAssertEqual(m.attributes["cx"], "106.67")
        XCTAssertEqual(m.attributes["cy"], "135")
    }

    func testSinglePointSeries() {
        let p = Panel(x: Axis("x"), y: Axis("y"), layers: [.line(LineSeries(x: [2], y: [3]))])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        XCTAssertEqual(doc.count("path", class: "series"), 0)
        let m = doc.all("circle", class: "marker")
        XCTAssertEqual(m.count, 1)
        // Constant data: 2 ± 10% and 3 ± 10% -> the point sits in the middle of the plot area;
        // ticks: [1.8, 2.2] span 0.4 -> step 0.1; [2.7, 3.3] span 0.6 -> step 0.2.
        XCTAssertEqual(m[0].attributes["cx"], "220")
        XCTAssertEqual(m[0].attributes["cy"], "135")
        XCTAssertEqual(doc.texts("tick-label"), ["1.8", "1.9", "2", "2.1", "2.2", "2.8", "3", "3.2"])
    }

    func testConstantSeriesGetsRange() {
        let p = Panel(layers: [.line(LineSeries(x: [0, 1, 2], y: [2, 2, 2]))])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        // x padded to [-0.1, 2.1] -> ticks 0, 1, 2; y 2 ± 10% -> 1.8 ... 2.2.
        XCTAssertEqual(doc.texts("tick-label"), ["0", "1", "2", "1.8", "1.9", "2", "2.1", "2.2"])
        // Horizontal line through the middle: y = 10 + 125 = 135.
        XCTAssertTrue(doc.all("path", class: "series")[0].attributes["d"]!.hasSuffix(",135"))
    }

    func testEmptyPanelsSayNoData() {
        let panels = [Panel(title: "empty"), Panel(layers: [.line(LineSeries(x: [1, 2], y: [.nan, .infinity]))])]
        let doc = ParsedSVG.parse(SVGRenderer.render(figure(panels)))
        XCTAssertEqual(doc.texts("no-data"), ["no data", "no data"])
        XCTAssertEqual(doc.count("text", class: "tick-label"), 0)
        XCTAssertEqual(doc.count("rect", class: "frame"), 2)
        // A figure without panels is still a valid document.
        let empty = ParsedSVG.parse(SVGRenderer.render(Figure(title: "nothing", panels: [])))
        XCTAssertEqual(empty.elements[0].name, "svg")
    }

    func testConfidenceBandPolygon() {
        let s = LineSeries(x: [0, 10], y: [0.5, 0.5], band: ConfidenceBand(lower: [0.4, 0.2], upper: [0.6, 0.8]))
        let p = Panel(x: Axis(range: 0...10), y: Axis(range: 0...1), layers: [.line(s)])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        let band = doc.all("path", class: "band")
        XCTAssertEqual(band.count, 1)
        // Upper edge forward, lower edge backward, closed: y = 260 − 250·v.
        XCTAssertEqual(band[0].attributes["d"], "M50,110L390,60L390,210L50,160Z")
        XCTAssertEqual(band[0].attributes["fill-opacity"], "0.2")
    }

    func testHeatMapCellsNaNAndColorBar() {
        // 3 rows × 4 columns, values (i + 4j)/11 in [0, 1], one NaN.
        var values = (0..<3).map { j in (0..<4).map { i in Double(i + 4 * j) / 11 } }
        values[1][2] = .nan
        let h = HeatMap(values: values, x: .edges([0, 1, 2, 3, 4]), y: .centres([0, 1, 2]),
                        range: 0...1, colorBar: ColorBar(label: "test accuracy"))
        let p = Panel(x: Axis("width"), y: Axis("depth"), layers: [.heatMap(h)])
        let f = Figure(panels: [p], width: 500, height: 300, margins: testMargins, idPrefix: "hm")
        let doc = ParsedSVG.parse(SVGRenderer.render(f))
        let cells = doc.all("rect", class: "cell")
        XCTAssertEqual(cells.count, 12)
        XCTAssertEqual(cells.filter { $0.attributes["fill"] == "url(#hm-nan)" }.count, 1)
        XCTAssertEqual(doc.count("pattern"), 1)
        XCTAssertEqual(cells[0].attributes["fill"], "#440154")   // value 0
        XCTAssertEqual(cells[11].attributes["fill"], "#fde725")  // value 1
        // Plot area: 500 − 50 − 10 − 84 = 356 wide, 250 high; cell width 356/4 = 89; y centres
        // 0, 1, 2 -> edges −0.5 ... 2.5 (no margin), each row 250/3 px high.
        XCTAssertEqual(cells[0].attributes["x"], "50")
        XCTAssertEqual(cells[0].attributes["width"], "89")
        XCTAssertEqual(cells[0].attributes["y"], "176.67")
        // Colour bar: 0 ... 1 -> ticks 0, 0.2, ..., 1 at y = 260 − 250·v.
        XCTAssertEqual(doc.texts("cbar-tick-label"), ["0", "0.2", "0.4", "0.6", "0.8", "1"])
        XCTAssertEqual(doc.all("line", class: "cbar-tick").map { $0.attributes["y1"]! },
                       ["260", "210", "160", "110", "60", "10"])
        // Bar at x = 50 + 356 + 10.
        XCTAssertEqual(doc.all("rect", class: "colorbar-bar")[0].attributes["x"], "416")
        XCTAssertEqual(doc.texts("cbar-label"), ["test accuracy"])
        XCTAssertEqual(doc.count("stop"), Colormap.viridis.stops.count)
    }

    func testContourLayerOnePathPerLevel() {
        let g = (0...20).map { Double($0 - 10) / 10 }
        let field = g.map { y in g.map { x in x * x + y * y } }
        let c = Contour(field: field, xs: g, ys: g, levels: [0.25, 0.5, 5], showLabels: true)
        let p = Panel(x: Axis(range: -1...1), y: Axis(range: -1...1), layers: [.contour(c)])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        let paths = doc.all("path", class: "contour")
        XCTAssertEqual(paths.count, 2, "level 5 is outside the field")
        for path in paths {
            let d = path.attributes["d"]!
            XCTAssertEqual(subpathCount(d), 1)
            XCTAssertTrue(d.hasSuffix("Z"), "closed circle")
        }
        XCTAssertEqual(doc.texts("contour-label"), ["0.25", "0.5"])
        // Levels coloured by viridis over [0.25, 5]: the lowest is viridis(0).
        XCTAssertEqual(paths[0].attributes["stroke"], "#440154")
    }

    func testScatterWithPointLabelsAndReferenceLine() {
        let sc = Scatter(points: [Point(1, 1), Point(2, 0.5), Point(3, 1.5)], pointLabels: ["a", "", "c<1>"],
                         label: "runs", marker: .square)
        let p = Panel(x: Axis(range: 0...4), y: Axis(range: 0...2),
                      layers: [.scatter(sc), .reference(.horizontal(y: 1, label: "escape"))])
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        XCTAssertEqual(doc.count("rect", class: "marker"), 3)
        XCTAssertEqual(doc.texts("point-label"), ["a", "c<1>"])
        let ref = doc.all("line", class: "reference")
        XCTAssertEqual(ref.count, 1)
        // y = 1 on [0, 2] -> 260 − 125 = 135, across the plot area.
        XCTAssertEqual(ref[0].attributes["y1"], "135")
        XCTAssertEqual(ref[0].attributes["x1"], "50")
        XCTAssertEqual(ref[0].attributes["x2"], "390")
        XCTAssertEqual(doc.texts("reference-label"), ["escape"])
        XCTAssertEqual(doc.texts("legend-label"), ["runs"])
        // Reference lines outside the range are not drawn.
        let q = Panel(x: Axis(range: 0...4), y: Axis(range: 0...2),
                      layers: [.scatter(sc), .reference(.vertical(x: 9, label: "far"))])
        XCTAssertEqual(ParsedSVG.parse(SVGRenderer.render(figure([q]))).count("line", class: "reference"), 0)
    }

    func testLegendAndPaletteOrder() {
        let layers: [Layer] = (0..<3).map { k in
            .line(LineSeries(x: [0, 1], y: [Double(k), Double(k) + 1], label: "s\(k)", dash: k == 1 ? .dashed : .solid))
        }
        let p = Panel(layers: layers, legend: .bottomLeft)
        let doc = ParsedSVG.parse(SVGRenderer.render(figure([p])))
        XCTAssertEqual(doc.texts("legend-label"), ["s0", "s1", "s2"])
        XCTAssertEqual(doc.all("path", class: "series").map { $0.attributes["stroke"]! },
                       ["#0072b2", "#d55e00", "#009e73"])
        XCTAssertEqual(doc.all("path", class: "series")[1].attributes["stroke-dasharray"], "6,4")
        XCTAssertEqual(doc.count("line", class: "legend-line"), 3)
        let noLegend = Panel(layers: layers, legend: .none)
        XCTAssertEqual(ParsedSVG.parse(SVGRenderer.render(figure([noLegend]))).count("g", class: "legend"), 0)
    }

    func testXMLEscapingOfTitlesAndLabels() {
        let p = Panel(title: "<a & b>", x: Axis("x \"q\""), y: Axis("y'"),
                      layers: [.line(LineSeries(x: [0, 1], y: [0, 1], label: "<a & b>"))])
        let svg = SVGRenderer.render(figure([p], title: "<a & b>"))
        XCTAssertTrue(svg.contains("<title>&lt;a &amp; b&gt;</title>"))
        XCTAssertFalse(svg.contains("<a & b>"))
        let doc = ParsedSVG.parse(svg)
        XCTAssertEqual(doc.all("title").map(\.text), ["<a & b>", "<a & b>"])
        XCTAssertEqual(doc.texts("figure-title"), ["<a & b>"])
        XCTAssertEqual(doc.texts("panel-title"), ["<a & b>"])
        XCTAssertEqual(doc.texts("legend-label"), ["<a & b>"])
        XCTAssertEqual(doc.texts("axis-label"), ["x \"q\"", "y'"])
    }

    func testDeterministicByteIdenticalOutput() {
        func make() -> Figure {
            let g = (0...10).map { Double($0) / 10 }
            let field = g.map { y in g.map { x in sin(3 * x) * cos(2 * y) } }
            return Figure(
                title: "Fort et al. 2020 — Figure", panels: [
                    Panel(title: "error", x: Axis("epoch", scale: .log10), y: Axis("test error"),
                          layers: [.line(LineSeries(x: [1, 2, 5, 10, 20], y: [0.9, 0.5, 0.3, 0.25, 0.2], label: "NTK",
                                                    marker: .diamond,
                                                    band: ConfidenceBand(lower: [0.85, 0.45, 0.25, 0.2, 0.15],
                                                                         upper: [0.95, 0.55, 0.35, 0.3, 0.25]))),
                                   .line(LineSeries(x: [1, 2, 5, 10, 20], y: [0.8, 0.6, .nan, 0.2, 0.1], label: "SGD", marker: .triangle)),
                                   .reference(.horizontal(y: 0.5, label: "chance"))]),
                    Panel(title: "field", x: Axis("x"), y: Axis("y"),
                          layers: [.heatMap(HeatMap(values: field, x: .centres(g), y: .centres(g), colorBar: ColorBar(label: "f"))),
                                   .contour(Contour(field: field, xs: g, ys: g, levels: [-0.5, 0, 0.5], color: .white, showLabels: true))]),
                    Panel(title: "scatter", layers: [.scatter(Scatter(points: [Point(1, 2), Point(3, 4)], pointLabels: ["p", "q"], marker: .cross))]),
                ], columns: 2, width: 900, height: 600, caption: "Caption with <markup> & a fairly long sentence that needs wrapping over more than a single line of the figure width, because the caption of a report figure usually explains every panel in some detail.")
        }
        let a = SVGRenderer.render(make()), b = SVGRenderer.render(make())
        XCTAssertEqual(a, b)
        let doc = ParsedSVG.parse(a)
        XCTAssertEqual(doc.count("g", class: "panel"), 3)
        XCTAssertEqual(doc.count("clipPath"), 3)
        XCTAssertEqual(doc.count("rect", class: "cell"), 121)
        XCTAssertGreaterThanOrEqual(doc.count("text", class: "caption"), 2)
        XCTAssertFalse(a.lowercased().contains("nan"))
        // Derived id prefix: deterministic, well-formed, and referenced consistently.
        let clipIDs = doc.all("clipPath").map { $0.attributes["id"]! }
        XCTAssertTrue(clipIDs[0].hasPrefix("plot-"))
        for id in clipIDs { XCTAssertTrue(a.contains("clip-path=\"url(#\(id))\"")) }
        // Numbers are printed with at most 2 decimals.
        for line in a.split(separator: "\n") where !line.contains("linearGradient") {
            XCTAssertNil(line.range(of: #"\d\.\d{3,}"#, options: .regularExpression), String(line.prefix(120)))
        }
    }
}
