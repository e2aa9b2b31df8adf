import Core
import Plot
@testable import Report
import XCTest

/// Figure builders on small synthetic tables, against hand-computed expectations.
final class FigureTests: XCTestCase {
    /// A row from its fields (Core's memberwise initialisers are internal): keys as in the Swift type.
    static func row<T: Decodable>(_ fields: [String: Any]) -> T {
        // Every analysed row names its BatchNorm statistics; these fixtures are of networks without BatchNorm.
        var fields = fields
        if fields["batchNorm"] == nil { fields["batchNorm"] = "none" }
        do {
            return try JSONDecoder().decode(T.self, from: try JSONSerialization.data(withJSONObject: fields))
        } catch {
            fatalError("fixture \(T.self): \(error)")
        }
    }

    static func pair(_ spawn: Double, _ a: Int, _ b: Int, barrier: Double, loss: Double = 0.5, replicate: Int = 0) -> ChildPairRow {
        row([
            "replicate": replicate, "spawnEpoch": spawn, "childA": a, "childB": b, "testErrorA": 0.2, "testErrorB": 0.22,
            "barrierTestErrorMaxMinusMean": barrier, "barrierTestErrorMaxMinusLine": barrier,
            "barrierTrainErrorMaxMinusMean": barrier / 2, "barrierTrainErrorMaxMinusLine": barrier / 2,
            "barrierTestLossMaxMinusMean": loss, "barrierTestLossMaxMinusLine": loss, "barrierBatchNorm": "none",
            "weightL2": 10 * barrier, "weightL2Normalized": barrier, "weightCosine": 1 - barrier,
            "functionDisagreement": barrier, "functionDisagreementOverIndependent": 2 * barrier,
            "reluPatternDistance": barrier / 3, "logitGradientAlignment": 1 - barrier, "kernelDistance": barrier / 4,
        ])
    }

    /// A small data set touching every table.
    static func fullData() -> ReportData {
        var t = ExperimentTables(records: [])
        t.parentTimeline = [0.0, 1, 2].map { (e: Double) -> ParentTimelineRow in
            row(["replicate": 0, "epoch": e, "trainError": 0.9 - 0.3 * e, "trainLoss": 2 - e / 2,
                 "testError": 0.9 - 0.25 * e, "testLoss": 2.1 - e / 2])
        }
        t.childPairs = [pair(0, 0, 1, barrier: 0.3, loss: 1.0), pair(0, 0, 2, barrier: 0.1, loss: 0.6), pair(1, 0, 1, barrier: 0.05, loss: 0.2)]
        var curves: [BarrierCurveRow] = []
        for s in [0.0, 1] {
            for a in [0.0, 0.5, 1] {
                let error: Double = a == 0.5 ? 0.5 - 0.2 * s : 0.2
                curves.append(row(["replicate": 0, "spawnEpoch": s, "childA": 0, "childB": 1, "alpha": a, "testError": error,
                                   "testLoss": 1.0, "trainError": 0.1, "trainLoss": 0.5]))
            }
        }
        t.barrierCurves = curves
        let triples: [(Double, Double, Double)] = [(0, 0, 0), (0, 1, 0.4), (0, 2, 0.5), (1, 1, 0), (1, 2, 0.1), (2, 2, 0)]
        t.timelinePairs = triples.map { (x: (Double, Double, Double)) -> TimelinePairRow in
            row(["replicate": 0, "epochA": x.0, "epochB": x.1, "reluPatternDistance": x.2, "logitGradientAlignment": 1 - x.2])
        }
        t.kernelDistance = triples.map { (x: (Double, Double, Double)) -> KernelDistanceRow in
            row(["replicate": 0, "epochA": x.0, "epochB": x.1, "kernelDistance": x.2 / 2, "kernelDistanceTraced": x.2 / 4])
        }
        t.kernelVelocity = [
            row(["replicate": 0, "epoch": 0.0, "dt": 0.5, "kernelDistance": 0.2, "velocity": 0.4]),
            row(["replicate": 0, "epoch": 1.0, "dt": 0.5, "kernelDistance": 0.05, "velocity": 0.1]),
        ]
        t.ntkSpectrum = [0.0, 2].map { (e: Double) -> NTKSpectrumRow in
            row(["replicate": 0, "epoch": e, "size": 4, "trace": 10 + e, "lambdaMax": 5 + e, "lambdaMin": 0.1,
                 "conditionNumber": 50.0, "effectiveRank": 3 - e / 2, "targetAlignment": 0.1 + e / 10,
                 "targetAlignmentTraced": 0.2 + e / 10])
        }
        var eigen: [NTKEigenvalueRow] = []
        for e in [0.0, 2] {
            for i in 0..<4 { eigen.append(row(["replicate": 0, "epoch": e, "index": i, "eigenvalue": 5 / Double(i + 1)])) }
        }
        t.ntkEigenvalues = eigen
        t.ntkMachine = [0.0, 2].map { (e: Double) -> NTKMachineRow in
            row(["replicate": 0, "epoch": e, "draw": 0, "form": "offset", "trainExamples": 40, "fitExamples": 32,
                 "heldOutExamples": 8, "ridgeRelative": 1e-2, "ridge": 1e-4, "heldOutLoss": 0.5, "trainError": 0.1,
                 "trainResidual": 0.2, "testError": 0.6 - e / 10, "networkTestError": 0.9 - e / 4])
        }
        func linearized(_ model: String, _ error: Double, _ loss: Double) -> LinearizedRow {
            row(["replicate": 0, "startEpoch": 1.0, "model": model, "seed": 0, "epochs": 0.5, "trainLoss": loss,
                 "trainError": error, "testError": error, "testLoss": loss])
        }
        t.linearized = [linearized("linearized", 0.5, 1.0), linearized("nonlinear", 0.4, 0.9)]
        t.nonlinearAdvantage = [row(["replicate": 0, "startEpoch": 1.0, "seed": 0, "startTestError": 0.6,
                                     "linearizedLearningRate": 1e-3, "linearizedEpochs": 0.5, "linearizedTestError": 0.5,
                                     "linearizedTestLoss": 1.0, "linearizedStop": "max_epochs", "nonlinearOptimizer": "adam",
                                     "nonlinearLearningRate": 1e-3, "nonlinearEpochs": 0.5, "nonlinearTestError": 0.4,
                                     "nonlinearTestLoss": 0.9, "nonlinearStop": "plateau", "nonlinearAdvantage": 0.1])]
        t.hessian = [0.0, 2].map { (e: Double) -> HessianRow in
            row(["replicate": 0, "epoch": e, "method": "exact", "examples": 100, "lambdaMax": 10 * (e + 1),
                 "learningRate": 0.003, "momentum": 0.0, "escapeRatio": 0.015 * (e + 1), "escapeRatioMomentum": 0.015 * (e + 1),
                 "update": "adam", "gradientDotUpdate": 1.0, "updateCurvature": 1.0, "lossChangeSecondOrder": 0.1,
                 "escapeRatioUpdate": e == 0 ? 1.5 : 0.5, "iterations": 4, "converged": true])
        }
        var hev: [HessianEigenvalueRow] = []
        for e in [0.0, 2] {
            for i in 0..<2 {
                hev.append(row(["replicate": 0, "epoch": e, "index": i, "eigenvalue": 10 / Double(i + 1), "residual": 0.0,
                                "centroidSpanFraction": 0.5]))
            }
        }
        t.hessianEigenvalues = hev
        t.hessianDensity = [0.0, 1, 2].map { (l: Double) -> HessianDensityRow in
            row(["replicate": 0, "epoch": 0.0, "lambda": l, "density": 1 / (l + 1)])
        }
        let parent = [4, 8].map { (s: Int) -> TrainingCurveRow in
            row(["replicate": 0, "run": "parent", "step": s, "epoch": Double(s) / 4, "trainLoss": 2 / Double(s),
                 "trainError": 0.5 / Double(s), "learningRate": 0.003])
        }
        let child = [6, 8].map { (s: Int) -> TrainingCurveRow in
            row(["replicate": 0, "run": "child-0", "spawnEpoch": 1.0, "step": s, "epoch": Double(s) / 4, "trainLoss": 1 / Double(s),
                 "trainError": 0.2, "learningRate": 0.003])
        }
        t.trainingCurves = parent + child
        // A 3 x 2 plane grid (test error i + 10 j) and the three networks, for the network and one tangent model.
        var plane: [LossPlaneRow] = []
        for model in ["network", "tangent_spawn"] {
            for j in 0..<2 { for i in 0..<3 {
                plane.append(row(["replicate": 0, "spawnEpoch": 1.0, "childA": 0, "childB": 1, "model": model, "point": "grid",
                                  "i": i, "j": j, "x": Double(i), "y": 0.5 * Double(j), "testError": Double(i + 10 * j) / 100,
                                  "testLoss": 1.0]))
            } }
            for (name, x, y) in [("spawn", 0.0, 0.0), ("child_a", 2.0, 0.0), ("child_b", 1.0, 0.5)] {
                plane.append(row(["replicate": 0, "spawnEpoch": 1.0, "childA": 0, "childB": 1, "model": model, "point": name,
                                  "x": x, "y": y, "testError": 0.1, "testLoss": 1.0]))
            }
        }
        t.lossPlane = plane
        t.functionTrajectories = [1.0, 1.5, 2].map { (e: Double) -> FunctionTrajectoryRow in
            row(["replicate": 0, "spawnEpoch": 1.0, "childA": 0, "childB": 1, "epoch": e, "epochsSinceSpawn": e - 1,
                 "testErrorA": 0.2, "testErrorB": 0.2, "disagreement": (e - 1) / 10, "disagreementOverIndependent": (e - 1) / 5,
                 "disagreementSmoothed": (e - 1) / 10, "disagreementOverIndependentSmoothed": (e - 1) / 5])
        }
        t.functionEmbedding = [("parent", nil, 0.0), ("parent", nil, 2.0), ("child-0", 1.0, 1.0), ("child-0", 1.0, 2.0)].enumerated()
            .map { (k: Int, p: (String, Double?, Double)) -> FunctionEmbeddingRow in
                var fields: [String: Any] = ["replicate": 0, "run": p.0, "epoch": p.2, "x": Double(k), "y": Double(k * k), "testError": 0.2]
                if let s = p.1 { fields["spawnEpoch"] = s }
                return row(fields)
            }
        return ReportData(tables: t, spawnTimes: [0, 1], measurementTimes: [0, 1, 2],
                          progress: RunProgress(planned: ["a", "b"], missing: []))
    }

    func line(_ layer: Plot.Layer) -> LineSeries? { if case let .line(s) = layer { return s } else { return nil } }

    func testBarrierVsSpawnMeansAndBands() throws {
        let fig = try XCTUnwrap(Figures.barrierVsSpawn(Self.fullData()))
        XCTAssertEqual(fig.panels.count, 2)
        let error = fig.panels[0]
        XCTAssertEqual(error.x.label, "spawn epoch")
        XCTAssertEqual(error.y.scale, .linear)
        guard case let .scatter(pairs) = error.layers[1] else { return XCTFail("second layer: the pairs") }
        XCTAssertEqual(pairs.points, [Point(0, 0.3), Point(0, 0.1), Point(1, 0.05)])
        let test = try XCTUnwrap(line(error.layers[2]))
        XCTAssertEqual(test.label, "test")
        XCTAssertEqual(test.points.map(\.x), [0, 1])
        XCTAssertEqual(test.points[0].y, 0.2, accuracy: 1e-15)
        XCTAssertEqual(test.points[1].y, 0.05)
        // SD of {0.3, 0.1} = sqrt(0.02); one pair at spawn 1: SD 0.
        let band = try XCTUnwrap(test.band)
        XCTAssertEqual(band.lower[0], 0.2 - 0.02.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(band.upper[1], 0.05)
        let loss = try XCTUnwrap(line(fig.panels[1].layers[2]))
        XCTAssertEqual(loss.points.map(\.y), [0.8, 0.2])
        let numbers = try XCTUnwrap(Figures.barrierNumbers(Self.fullData()))
        XCTAssertTrue(numbers.contains("the test-error barrier falls from 0.2 at spawn 0 to 0.05 at spawn 1"), numbers)
        XCTAssertTrue(numbers.contains("the loss barrier falls from 0.8 at spawn 0 to 0.2 at spawn 1"), numbers)
    }

    func testEveryFigureIsNilWithoutRows() {
        let empty = ReportData(tables: ExperimentTables(records: []))
        for spec in FigureSpec.all { XCTAssertNil(spec.build(empty), spec.name) }
        XCTAssertTrue(FigureSpec.buildAll(empty).isEmpty)
    }

    func testRegistryNamesAreUniqueAndFileSafe() {
        let names = FigureSpec.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count)
        for spec in FigureSpec.all {
            XCTAssertTrue(spec.name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }, spec.name)
            XCTAssertFalse(spec.claim.isEmpty)
            XCTAssertFalse(spec.tables.isEmpty)
        }
    }

    func testHeatMapIsSymmetricOnAnIndexGrid() throws {
        let fig = try XCTUnwrap(Figures.reluHeatMap(Self.fullData()))
        let panel = fig.panels[0]
        guard case let .heatMap(map) = panel.layers[0] else { return XCTFail("heat map expected") }
        XCTAssertEqual(map.values, [[0, 0.4, 0.5], [0.4, 0, 0.1], [0.5, 0.1, 0]])
        XCTAssertEqual(map.x, .edges([0, 1, 2, 3]))
        XCTAssertEqual(panel.x.ticks, [0.5, 1.5, 2.5])
        XCTAssertEqual(panel.x.tickLabels, ["0", "1", "2"])
        XCTAssertEqual(Figures.reluNumbers(Self.fullData()),
                       "the ReLU distance between epochs 0 and 1 is 0.4; between 1 and 2 0.1; from start to end 0.5.")
        let kernel = try XCTUnwrap(Figures.kernelHeatMap(Self.fullData()))
        XCTAssertEqual(kernel.panels.count, 2)
    }

    func testHessianAxesAndThreshold() throws {
        let fig = try XCTUnwrap(Figures.hessian(Self.fullData()))
        XCTAssertEqual(fig.panels[0].y.scale, .log10)
        XCTAssertEqual(try XCTUnwrap(line(fig.panels[0].layers[0])).points, [Point(0, 10), Point(2, 30)])
        guard case let .reference(threshold) = fig.panels[1].layers[0] else { return XCTFail("threshold first") }
        XCTAssertEqual(threshold.orientation, .horizontal(y: 1))
        XCTAssertEqual(fig.panels[1].layers.count, 4)
        XCTAssertEqual(Figures.hessianNumbers(Self.fullData()),
                       "λ_max rises from 10 at epoch 0 to 30 at epoch 2; the Eq. 10 ratio is above 1 at 1 of 2 times.")
    }

    func testTrainingCurvesDrawTheParentOnTop() throws {
        let fig = try XCTUnwrap(Figures.trainingCurves(Self.fullData()))
        XCTAssertEqual(fig.panels.count, 3)
        XCTAssertEqual(fig.panels[0].y.scale, .log10)
        let series = fig.panels[0].layers.compactMap(line)
        XCTAssertEqual(series.map(\.label), ["children of 1", "parent"])
        XCTAssertEqual(series[1].points, [Point(1, 0.5), Point(2, 0.25)])
        XCTAssertEqual(series[1].color, Color.black)
        XCTAssertEqual(series[0].points.map(\.x), [1.5, 2])
    }

    func testVelocityBarrierScatterPairsEqualTimes() throws {
        let fig = try XCTUnwrap(Figures.barrierVelocity(Self.fullData()))
        XCTAssertEqual(fig.panels.count, 3)
        guard case let .scatter(s) = fig.panels[2].layers[0] else { return XCTFail("scatter expected") }
        XCTAssertEqual(s.points[0].x, 0.4)
        XCTAssertEqual(s.points[0].y, 0.2, accuracy: 1e-15)
        XCTAssertEqual(s.points[1], Point(0.1, 0.05))
        XCTAssertEqual(s.pointLabels, ["0", "1"])
    }

    func testUnfinishedRunMarksMissingSpawnTimes() throws {
        var data = Self.fullData()
        data.spawnTimes = [0, 1, 2]
        data.progress = RunProgress(planned: ["a", "b", "c"], missing: ["c"])
        let fig = try XCTUnwrap(Figures.barrierVsSpawn(data))
        let pending = fig.panels[0].layers.compactMap { layer -> ReferenceLine? in
            if case let .reference(r) = layer, r.label == "pending" { return r } else { return nil }
        }
        XCTAssertEqual(pending.map(\.orientation), [.vertical(x: 2)])
        XCTAssertTrue(fig.caption?.contains("2 of 3 tasks done") ?? false)
        // A finished run marks nothing.
        XCTAssertFalse(Figures.barrierVsSpawn(Self.fullData())!.panels[0].layers.contains {
            if case let .reference(r) = $0 { return r.label == "pending" } else { return false }
        })
    }

    /// The plane's heat map holds the grid values at their (i, j) cells; the three networks are marked.
    func testLossPlaneHeatMapAndMarkers() throws {
        let figure = try XCTUnwrap(Figures.lossPlane(Self.fullData()))
        XCTAssertEqual(figure.panels.count, 2, "network and tangent panels for one spawn time")
        let layers = figure.panels[0].layers
        guard case let .heatMap(map) = layers[0], case let .scatter(marks) = layers[2] else { return XCTFail("layers \(layers)") }
        XCTAssertEqual(map.values, [[0, 0.01, 0.02], [0.1, 0.11, 0.12]])
        XCTAssertEqual(map.x, .centres([0, 1, 2]))
        XCTAssertEqual(map.y, .centres([0, 0.5]))
        XCTAssertEqual(Set(marks.points), [Point(0, 0), Point(2, 0), Point(1, 0.5)])
        XCTAssertEqual(marks.pointLabels?.sorted(), ["child a", "child b", "parent"])
    }

    func testTrajectoryAndEmbeddingFigures() throws {
        let data = Self.fullData()
        let trajectories = try XCTUnwrap(Figures.functionTrajectories(data))
        let smoothed = try XCTUnwrap(line(trajectories.panels[0].layers[1]))
        XCTAssertEqual(smoothed.points.map(\.y), [0, 0.05, 0.1])
        let embedding = try XCTUnwrap(Figures.functionEmbedding(data))
        let lines = embedding.panels[0].layers.compactMap(line)
        XCTAssertEqual(lines.last?.label, "parent")
        XCTAssertEqual(lines.last?.points, [Point(0, 0), Point(1, 1)])
        XCTAssertEqual(lines.first?.points, [Point(2, 4), Point(3, 9)], "the child's path in time order")
    }

    func testLinearizedAndAdvantage() throws {
        let fig = try XCTUnwrap(Figures.linearized(Self.fullData()))
        XCTAssertEqual(fig.panels.count, 2)
        XCTAssertEqual(fig.panels[0].layers.compactMap(line).map(\.label), ["t̃ = 1 linearised", "t̃ = 1 low-LR child"])
        guard case let .reference(net) = fig.panels[1].layers.last! else { return XCTFail("network reference expected") }
        XCTAssertEqual(net.orientation, .horizontal(y: 0.4))
        let adv = try XCTUnwrap(Figures.nonlinearAdvantage(Self.fullData()))
        guard case let .scatter(s) = adv.panels[1].layers[0] else { return XCTFail("scatter expected") }
        XCTAssertEqual(s.points, [Point(0.05, 0.1)])
    }

    /// With second-order runs (`linearized.second_order`) Fig. 8 draws them next to the linearised run
    /// and the child: during the run, and their final test error vs t̃ (from `nonlinear_advantage`).
    func testLinearizedFigureShowsTheSecondOrderModel() throws {
        var data = Self.fullData()
        var second = data.tables.linearized[0]
        second.model = "second_order"; second.testError = 0.45
        data.tables.linearized.append(second)
        data.tables.nonlinearAdvantage[0].secondOrderTestError = 0.45
        let fig = try XCTUnwrap(Figures.linearized(data))
        XCTAssertEqual(fig.panels[0].layers.compactMap(line).map(\.label),
                       ["t̃ = 1 linearised", "t̃ = 1 second-order", "t̃ = 1 low-LR child"])
        let final = fig.panels[1].layers.compactMap(line)
        XCTAssertEqual(final.map(\.label), ["linearised", "low-LR child", "second-order"])
        XCTAssertEqual(final[2].points, [Point(1, 0.45)])
        XCTAssertEqual(Figures.linearizedNumbers(data), "t̃ = 1: linearised 0.5, second-order 0.45 vs child 0.4.")
    }

    func testEverySVGParsesWithOnePanelGroupPerPanel() throws {
        let built = FigureSpec.buildAll(Self.fullData())
        XCTAssertEqual(built.count, FigureSpec.all.count, "the synthetic data feed every figure")
        for f in built {
            let svg = try ParsedXML(f.svg)
            XCTAssertEqual(svg.count("svg"), 1, f.spec.name)
            XCTAssertEqual(svg.count("g", class: "panel"), f.figure.panels.count, f.spec.name)
            XCTAssertEqual(svg.count("text", class: "no-data"), 0, "\(f.spec.name) has an empty panel")
        }
        let heat = try ParsedXML(built.first { $0.spec.name == "fig2_relu_distance" }!.svg)
        XCTAssertEqual(heat.count("rect", class: "cell"), 9)
    }

    func testHTMLIsSelfContained() throws {
        let data = Self.fullData()
        let figures = FigureSpec.buildAll(data)
        let html = HTMLReport.render(data: data, figures: figures, context: HTMLReport.Context(
            runName: "tiny-0123", experiment: "name: tiny\n", experimentFile: "experiment.yaml", manifest: [
                "ntkscape_version": "1.2.3", "command": "ntkscape run tiny.yaml", "ranks": 2, "threads_per_rank": 1,
                "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:01:00Z",
                "timings": ["wall_seconds": 60.0, "task_seconds": ["r0-parent": 12.5]],
            ], taskSeconds: [:], tableFiles: ["tables/child_pairs.csv", "tables/child_pairs.json"], generated: "now"))
        XCTAssertFalse(html.lowercased().contains("<script"))
        // No resources: the only URLs are the SVG namespace names.
        let stripped = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
            .replacingOccurrences(of: "xmlns:xlink=\"http://www.w3.org/1999/xlink\"", with: "")
        XCTAssertFalse(stripped.contains("http://") || stripped.contains("https://"), "no network resources")
        XCTAssertFalse(html.contains("<link") || html.contains("<img") || html.contains("@import"))
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, figures.count)
        for f in figures {
            XCTAssertTrue(html.contains("<section id=\"\(f.spec.name)\">"))
            XCTAssertTrue(html.contains(HTMLReport.esc(f.spec.claim)))
        }
        XCTAssertTrue(html.contains("ntkscape run tiny.yaml"))
        XCTAssertTrue(html.contains("r0-parent"))
        XCTAssertTrue(html.contains("2 of 2 tasks done"))
        XCTAssertTrue(html.contains("falls from 0.2 at spawn 0 to 0.05 at spawn 1"))
        XCTAssertTrue(html.contains("<a href=\"tables/child_pairs.csv\">"))
    }
}
