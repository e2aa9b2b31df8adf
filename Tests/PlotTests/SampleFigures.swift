import Foundation
import XCTest
@testable import Plot

/// Writes sample figures for visual inspection when PLOT_SAMPLE_DIR is set
/// (`PLOT_SAMPLE_DIR=/tmp/plots swift test --filter SampleFigures`), and checks that every layer of
/// the sample is drawn: element counts derived by hand from its inputs.
final class SampleFigures: XCTestCase {
    static func samples() -> [(String, Figure)] {
        let epochs = (0..<40).map { pow(10, Double($0) / 13) }
        let ntk = epochs.map { 0.35 + 0.5 * exp(-$0 / 20) }
        let sgd = epochs.enumerated().map { i, e in i == 17 ? .nan : 0.2 + 0.7 * exp(-e / 8) }
        let lines = Panel(
            title: "Test error vs. training time", x: Axis("epoch (log)", scale: .log10), y: Axis("test error"),
            layers: [
                .line(LineSeries(x: epochs, y: ntk, label: "linearised (NTK)", dash: .dashed,
                                 band: ConfidenceBand(lower: ntk.map { $0 - 0.03 }, upper: ntk.map { $0 + 0.03 }))),
                .line(LineSeries(x: epochs, y: sgd, label: "full network", marker: .circle)),
                .reference(.vertical(x: 10, label: "t = 10")),
            ])
        let g = (0..<12).map { Double($0) }
        let kernel = (0..<9).map { j in g.map { i in exp(-abs(i - 2 * Double(j)) / 4) * (j == 4 && i == 7 ? .nan : 1) } }
        let heat = Panel(
            title: "Kernel distance", x: Axis("epoch"), y: Axis("layer"),
            layers: [.heatMap(HeatMap(values: kernel, x: .centres(g), y: .centres((0..<9).map(Double.init)),
                                      colorBar: ColorBar(label: "distance")))])
        let xs = (0...40).map { Double($0) / 20 - 1 }
        let field = xs.map { y in xs.map { x in x * x + 2 * y * y } }
        let contour = Panel(
            title: "Loss landscape", x: Axis("θ₁"), y: Axis("θ₂"),
            layers: [.contour(Contour(field: field, xs: xs, ys: xs, levels: [0.1, 0.25, 0.5, 1, 2], showLabels: true)),
                     .scatter(Scatter(points: [Point(0, 0), Point(0.5, -0.3)], pointLabels: ["min", "init"], label: "points", marker: .diamond)),
                     .reference(.horizontal(y: 0.8, label: "y = 0.8 escape"))],
            legend: .bottomRight)
        let lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1]
        let scatter = Panel(
            title: "Escape vs. learning rate", x: Axis("learning rate η", scale: .log10), y: Axis("ratio", scale: .log10),
            layers: [.line(LineSeries(x: lrs, y: lrs.map { 0.5 + $0 * 20 }, label: "ratio", marker: .square)),
                     .reference(.horizontal(y: 1, label: "y = 1 escape threshold"))])
        let fig = Figure(title: "NTKScape sample figure", panels: [lines, heat, contour, scatter, Panel(title: "empty")],
                         columns: 2, width: 1000, height: 1050,
                         caption: "Sample figure exercising every layer kind: lines with a band, markers and a NaN gap; heat map with a NaN cell; contours with labels; log–log axes; and an empty panel.")
        return [("sample", fig)]
    }

    func testSamplesRenderAndOptionallyWrite() throws {
        let dir = ProcessInfo.processInfo.environment["PLOT_SAMPLE_DIR"]
        for (name, fig) in Self.samples() {
            let svg = SVGRenderer.render(fig)
            let doc = ParsedSVG.parse(svg)
            XCTAssertEqual(doc.count("g", class: "panel"), fig.panels.count)
            // Markers: 40 circles of "full network" but its NaN point, 9 squares of "ratio", the 2
            // diamonds of the scatter; one band (the dashed series).
            XCTAssertEqual(doc.count("circle", class: "marker"), 39)
            XCTAssertEqual(doc.count("rect", class: "marker"), 9)
            XCTAssertEqual(doc.count("path", class: "marker"), 2)
            XCTAssertEqual(doc.count("path", class: "band"), 1)
            XCTAssertEqual(doc.texts("point-label"), ["min", "init"])
            // Heat map: 12 x 9 cells, one NaN (hatched).
            let cells = doc.all("rect", class: "cell")
            XCTAssertEqual(cells.count, 12 * 9)
            XCTAssertEqual(cells.filter { $0.attributes["fill"]?.hasSuffix("-nan)") ?? false }.count, 1)
            // x² + 2y² on [-1, 1]² reaches 3: all five levels are drawn, one path and label each.
            XCTAssertEqual(doc.count("path", class: "contour"), 5)
            XCTAssertEqual(doc.texts("contour-label"), ["0.1", "0.25", "0.5", "1", "2"])
            // Three reference lines, all inside their panels' ranges; one empty panel.
            XCTAssertEqual(doc.count("line", class: "reference"), 3)
            XCTAssertEqual(doc.texts("reference-label"), ["t = 10", "y = 0.8 escape", "y = 1 escape threshold"])
            XCTAssertEqual(doc.texts("no-data"), ["no data"])
            if let dir {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try svg.write(toFile: dir + "/\(name).svg", atomically: true, encoding: .utf8)
            }
        }
    }
}
