import Core
import Foundation
import Plot

/// The figure builders: each reads tables and returns a chart specification, or nil when its
/// tables are empty. Mean ± SD bands are over pairs (and replicates) at one x; heat maps show the
/// first replicate.
public enum Figures {
    typealias T = RunPaths.Table

    static let registry: [FigureSpec] = [
        FigureSpec(name: "fig2_error_vs_time", paper: "Figs. 2/3 A", title: "Parent: train and test error over training",
                   claim: "The parent's training and test error fall fastest in the first few epochs and slowly afterwards.",
                   tables: [T.parentTimeline, T.trainingCurves], build: errorVsTime, numbers: errorVsTimeNumbers),
        FigureSpec(name: "fig2_barrier_vs_spawn", paper: "Figs. 2/3 B–C", title: "Error and loss barrier between children vs spawn time",
                   claim: "The error and loss barriers between two children fall sharply with the spawn time: children spawned "
                    + "after the first few epochs end up in one linearly connected basin.",
                   tables: [T.childPairs], build: barrierVsSpawn, numbers: barrierNumbers),
        FigureSpec(name: "fig2_relu_distance", paper: "Figs. 2/3 D (ReLU)", title: "ReLU-pattern distance between parent times",
                   claim: "The ReLU activation pattern changes quickly early in training and slowly later: distances between "
                    + "later times are small.",
                   tables: [T.timelinePairs], build: reluHeatMap, numbers: reluNumbers),
        FigureSpec(name: "fig2_kernel_distance", paper: "Figs. 2/3 D (kernel)", title: "NTK kernel distance between parent times",
                   claim: "The NTK moves fast early in training and then settles: the kernel distance between later times is small.",
                   tables: [T.kernelDistance], build: kernelHeatMap, numbers: kernelDistanceNumbers),
        FigureSpec(name: "fig2_child_distances", paper: "Figs. 2/3 E", title: "Distances between children vs spawn time",
                   claim: "Children spawned later end closer together in weight space, in function space, in ReLU patterns "
                    + "and in their kernels.",
                   tables: [T.childPairs], build: childDistances, numbers: childDistanceNumbers),
        FigureSpec(name: "fig6_function_distance", paper: "Fig. 6", title: "Function distance vs spawn time and vs error barrier",
                   claim: "The function-space distance between children falls with the spawn time and goes together with the error barrier.",
                   tables: [T.childPairs], build: functionDistance, numbers: functionDistanceNumbers),
        FigureSpec(name: "fig7_barrier_velocity", paper: "Fig. 7", title: "Error barrier and kernel velocity over early epochs",
                   claim: "The kernel velocity is high in the first epochs and drops at the same time as the error barrier: "
                    + "the two are strongly correlated.",
                   tables: [T.childPairs, T.kernelVelocity], build: barrierVelocity, numbers: barrierVelocityNumbers),
        FigureSpec(name: "fig8_linearized", paper: "Fig. 8", title: "Linearised vs low-learning-rate child vs network",
                   claim: "Training the linearised network around the parent at time t̃ falls short of the nonlinear "
                    + "low-learning-rate child from the same point, the more so the earlier t̃.",
                   tables: [T.linearized, T.nonlinearAdvantage, T.parentTimeline], build: linearized, numbers: linearizedNumbers),
        FigureSpec(name: "fig9_nonlinear_advantage", paper: "Fig. 9", title: "Nonlinear advantage vs t̃ and vs error barrier",
                   claim: "The nonlinear advantage shrinks as t̃ grows and is small once the error barrier has vanished.",
                   tables: [T.nonlinearAdvantage, T.childPairs], build: nonlinearAdvantage, numbers: advantageNumbers),
        FigureSpec(name: "appendix_hessian", paper: "Appendix (per network): top Hessian eigenvalue, escape threshold",
                   title: "Top Hessian eigenvalue and escape ratios",
                   claim: "Early in training the optimiser's step leaves the local quadratic basin (escape ratio above 1); "
                    + "later steps stay inside it.",
                   tables: [T.hessian], build: hessian, numbers: hessianNumbers),
        FigureSpec(name: "appendix_hessian_spectrum", paper: "Appendix: Hessian spectrum",
                   title: "Top Hessian eigenvalues and spectral density",
                   claim: "A few outlier eigenvalues, about one per class, separate from the bulk of the Hessian spectrum.",
                   tables: [T.hessianEigenvalues, T.hessianDensity], build: hessianSpectrum, numbers: hessianSpectrumNumbers),
        FigureSpec(name: "appendix_logit_gradient_alignment", paper: "Appendix (per network): logit-gradient alignment",
                   title: "Logit-gradient alignment",
                   claim: "Logit gradients of children align more the later they are spawned, and the parent's logit "
                    + "gradients stabilise early.",
                   tables: [T.childPairs, T.timelinePairs], build: alignment, numbers: alignmentNumbers),
        FigureSpec(name: "appendix_weight_distances", paper: "Appendix (per network): weight distances",
                   title: "Weight distances between children vs spawn time",
                   claim: "Children spawned later stay closer in weight space (smaller L2 distance, larger cosine similarity).",
                   tables: [T.childPairs], build: weightDistances, numbers: weightNumbers),
        FigureSpec(name: "ntk_spectrum", paper: "NTK spectra (Figs. 4/5 context)", title: "NTK spectrum of the parent over training",
                   claim: "During training the NTK's spectrum becomes dominated by a few large eigenvalues and the kernel "
                    + "aligns with the labels.",
                   tables: [T.ntkSpectrum, T.ntkEigenvalues], build: ntkSpectrum, numbers: ntkNumbers),
        FigureSpec(name: "kernel_machine", paper: "Kernel machines (Fig. 5 context)", title: "NTK kernel machine vs network",
                   claim: "A kernel machine with the parent's data-dependent NTK from time t improves rapidly over the "
                    + "first epochs, approaching the network.",
                   tables: [T.ntkMachine], build: kernelMachine, numbers: machineNumbers),
        FigureSpec(name: "interpolation_curves", paper: "Figs. 2/3 B–C (curves)", title: "Interpolation between children, per spawn time",
                   claim: "Along the straight line between two children, the error rises in the middle for early spawn "
                    + "times and stays flat for later ones.",
                   tables: [T.barrierCurves], build: interpolation, numbers: interpolationNumbers),
        FigureSpec(name: "training_curves", paper: "Figs. 2/3 A (per step)", title: "Training curves of the parent and children",
                   claim: "Per-interval training loss and error of the parent (thick) and of every child from its spawn time.",
                   tables: [T.trainingCurves], build: trainingCurves, numbers: trainingCurveNumbers),
    ] + trajectorySpecs

    // MARK: - Helpers

    static let grey = Color(hex: 0x999999)

    static func color(_ i: Int) -> Color { Palette.series.color(i) }

    /// Mean line with a ±SD band (when a group has more than one value).
    static func meanSeries(_ stats: [GroupStat], label: String, color: Color? = nil, marker: MarkerShape? = .circle,
                           dash: DashStyle = .solid) -> LineSeries {
        LineSeries(points: stats.map { Point($0.x, $0.mean) }, label: label, color: color, dash: dash, marker: marker,
                   band: stats.contains { $0.n > 1 }
                       ? ConfidenceBand(lower: stats.map { $0.mean - $0.sd }, upper: stats.map { $0.mean + $0.sd }) : nil)
    }

    /// Dotted vertical lines at the expected times that have no data yet (only for unfinished runs).
    static func missing(_ expected: [Double]?, present: [Double], data: ReportData) -> [Plot.Layer] {
        guard data.isPartial, let expected else { return [] }
        let have = Set(present)
        return expected.filter { !have.contains($0) }.enumerated().map { i, x in
            .reference(ReferenceLine(.vertical(x: x), label: i == 0 ? "pending" : "", color: Color.missing, dash: .dotted))
        }
    }

    static func caption(_ data: ReportData, _ text: String) -> String {
        guard let p = data.progress, !p.isComplete else { return text }
        return text + " Unfinished run (\(p.description)): dotted lines mark times still to come."
    }

    /// "falls from X at spawn a to Y at spawn b" for the first and last group.
    static func trend(_ stats: [GroupStat], what: String, at: String) -> String? {
        guard let first = stats.first, let last = stats.last, stats.count >= 2 else {
            return stats.first.map { "\(what) is \(num($0.mean)) at \(at) \(epochText($0.x))" }
        }
        let verb = last.mean < first.mean ? "falls" : (last.mean > first.mean ? "rises" : "stays")
        return "\(what) \(verb) from \(num(first.mean)) at \(at) \(epochText(first.x)) to \(num(last.mean)) at \(at) \(epochText(last.x))"
    }

    static func sentence(_ parts: [String?]) -> String? {
        let p = parts.compactMap { $0 }
        guard !p.isEmpty else { return nil }
        return p.joined(separator: "; ") + "."
    }

    static func firstReplicate<Row>(_ rows: [Row], _ replicate: (Row) -> Int) -> [Row] {
        guard let r = rows.map(replicate).min() else { return [] }
        return rows.filter { replicate($0) == r }
    }

    /// A symmetric heat map over the distinct times of long-format rows `(a <= b, value)`: cells on
    /// an index grid (uneven times get equal cells), ticks labelled with the epochs.
    static func timeHeatMap(_ rows: [(a: Double, b: Double, value: Double)], title: String, bar: String,
                            range: ClosedRange<Double>? = nil) -> Panel? {
        let times = Set(rows.flatMap { [$0.a, $0.b] }).sorted()
        guard !times.isEmpty else { return nil }
        let index = Dictionary(uniqueKeysWithValues: times.enumerated().map { ($1, $0) })
        let n = times.count
        var values = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
        for r in rows {
            let i = index[r.a]!, j = index[r.b]!
            values[j][i] = r.value
            values[i][j] = r.value
        }
        let edges = (0...n).map(Double.init), centres = (0..<n).map { Double($0) + 0.5 }
        let labels = times.map(epochText)
        return Panel(title: title,
                     x: Axis("parent epoch", range: 0...Double(n), ticks: centres, tickLabels: labels),
                     y: Axis("parent epoch", range: 0...Double(n), ticks: centres, tickLabels: labels),
                     layers: [.heatMap(HeatMap(values: values, x: .edges(edges), y: .edges(edges), range: range,
                                               colorBar: ColorBar(label: bar)))],
                     legend: .none, grid: false)
    }

    // MARK: - Figs. 2/3 A: parent error over time

    public static func errorVsTime(_ data: ReportData) -> Figure? {
        let timeline = data.tables.parentTimeline
        let curves = data.tables.trainingCurves.filter { $0.spawnEpoch == nil }
        guard !timeline.isEmpty || !curves.isEmpty else { return nil }
        var layers: [Plot.Layer] = []
        for (i, r) in Set(curves.map(\.replicate)).sorted().enumerated() {
            let c = curves.filter { $0.replicate == r }
            layers.append(.line(LineSeries(x: c.map(\.epoch), y: c.map(\.trainError), label: i == 0 ? "train (running, batches)" : "",
                                           color: color(2), lineWidth: 1)))
        }
        for (i, r) in Set(timeline.map(\.replicate)).sorted().enumerated() {
            let t = timeline.filter { $0.replicate == r }
            layers.append(.line(LineSeries(x: t.map(\.epoch), y: t.map(\.trainError), label: i == 0 ? "train" : "",
                                           color: color(0), marker: .circle)))
            layers.append(.line(LineSeries(x: t.map(\.epoch), y: t.map(\.testError), label: i == 0 ? "test" : "",
                                           color: color(1), marker: .square)))
        }
        layers += missing(data.measurementTimes, present: timeline.map(\.epoch), data: data)
        return Figure(title: "Parent error over training",
                      panels: [Panel(x: Axis("epoch"), y: Axis("error"), layers: layers)],
                      caption: caption(data, "Markers: the parent at the measurement times (parent_timeline, BatchNorm in "
                                       + "inference mode). Line: running training error over the batches of each interval (training_curves)."))
    }

    static func errorVsTimeNumbers(_ data: ReportData) -> String? {
        let t = firstReplicate(data.tables.parentTimeline, \.replicate)
        let test = grouped(t, by: \.epoch) { $0.testError }, train = grouped(t, by: \.epoch) { $0.trainError }
        let curve = firstReplicate(data.tables.trainingCurves.filter { $0.spawnEpoch == nil }, \.replicate)
        return sentence([trend(test, what: "test error", at: "epoch"), trend(train, what: "train error", at: "epoch"),
                         curve.isEmpty ? nil : "\(curve.count) training-curve points"])
    }

    // MARK: - Figs. 2/3 B–C: barriers vs spawn time

    public static func barrierVsSpawn(_ data: ReportData) -> Figure? {
        let p = data.tables.childPairs
        guard !p.isEmpty else { return nil }
        let pending = missing(data.spawnTimes, present: p.map(\.spawnEpoch), data: data)
        let zero = Plot.Layer.reference(ReferenceLine(.horizontal(y: 0), color: grey))
        let error = Panel(title: "error barrier (max − mean)", x: Axis("spawn epoch"), y: Axis("barrier (error)"), layers: [
            zero,
            .scatter(Scatter(points: p.map { Point($0.spawnEpoch, $0.barrierTestErrorMaxMinusMean) }, label: "pairs (test)",
                             color: grey, size: 2.5)),
            .line(meanSeries(grouped(p, by: \.spawnEpoch) { $0.barrierTestErrorMaxMinusMean }, label: "test", color: color(1))),
            .line(meanSeries(grouped(p, by: \.spawnEpoch) { $0.barrierTrainErrorMaxMinusMean }, label: "train", color: color(0),
                             marker: .square, dash: .dashed)),
        ] + pending)
        let loss = Panel(title: "loss barrier (max − mean)", x: Axis("spawn epoch"), y: Axis("barrier (test loss)"), layers: [
            zero,
            .scatter(Scatter(points: p.map { Point($0.spawnEpoch, $0.barrierTestLossMaxMinusMean) }, label: "pairs", color: grey,
                             size: 2.5)),
            .line(meanSeries(grouped(p, by: \.spawnEpoch) { $0.barrierTestLossMaxMinusMean }, label: "test loss", color: color(1))),
        ] + pending)
        return Figure(title: "Barrier between children vs spawn time", panels: [error, loss], columns: 2, width: 960, height: 400,
                      caption: caption(data, "Max over the interpolation of the metric minus the mean of the two children; "
                                       + "mean ± SD over pairs and replicates (child_pairs)."))
    }

    static func barrierNumbers(_ data: ReportData) -> String? {
        let p = data.tables.childPairs
        return sentence([trend(grouped(p, by: \.spawnEpoch) { $0.barrierTestErrorMaxMinusMean }, what: "the test-error barrier", at: "spawn"),
                         trend(grouped(p, by: \.spawnEpoch) { $0.barrierTestLossMaxMinusMean }, what: "the loss barrier", at: "spawn")])
    }

    // MARK: - Figs. 2/3 D: distances between parent times

    public static func reluHeatMap(_ data: ReportData) -> Figure? {
        let rows = firstReplicate(data.tables.timelinePairs, \.replicate)
        guard let panel = timeHeatMap(rows.map { ($0.epochA, $0.epochB, $0.reluPatternDistance) }, title: "",
                                      bar: "ReLU-pattern distance") else { return nil }
        return Figure(title: "ReLU-pattern distance between parent times", panels: [panel], width: 620, height: 520,
                      caption: caption(data, "Fraction of (probe example, ReLU unit) pairs whose sign differs, replicate "
                                       + "\(rows.first?.replicate ?? 0) (timeline_pairs); equal cells per time."))
    }

    static func pairDistanceNumbers(_ rows: [(a: Double, b: Double, value: Double)], what: String) -> String? {
        let times = Set(rows.flatMap { [$0.a, $0.b] }).sorted()
        guard times.count >= 2 else { return nil }
        func value(_ a: Double, _ b: Double) -> Double? { rows.first { $0.a == a && $0.b == b }?.value }
        let n = times.count
        return sentence([value(times[0], times[1]).map { "\(what) between epochs \(epochText(times[0])) and \(epochText(times[1])) is \(num($0))" },
                         n > 2 ? value(times[n - 2], times[n - 1]).map { "between \(epochText(times[n - 2])) and \(epochText(times[n - 1])) \(num($0))" } : nil,
                         value(times[0], times[n - 1]).map { "from start to end \(num($0))" }])
    }

    static func reluNumbers(_ data: ReportData) -> String? {
        pairDistanceNumbers(firstReplicate(data.tables.timelinePairs, \.replicate).map { ($0.epochA, $0.epochB, $0.reluPatternDistance) },
                            what: "the ReLU distance")
    }

    public static func kernelHeatMap(_ data: ReportData) -> Figure? {
        let rows = firstReplicate(data.tables.kernelDistance, \.replicate)
        guard let full = timeHeatMap(rows.map { ($0.epochA, $0.epochB, $0.kernelDistance) }, title: "full mC × mC Gram",
                                     bar: "kernel distance S"),
              let traced = timeHeatMap(rows.map { ($0.epochA, $0.epochB, $0.kernelDistanceTraced) }, title: "logit-traced m × m",
                                       bar: "kernel distance S") else { return nil }
        return Figure(title: "NTK kernel distance between parent times", panels: [full, traced], columns: 2, width: 1100, height: 480,
                      caption: caption(data, "S(K, K') = 1 − ⟨K, K'⟩ / (‖K‖ ‖K'‖), replicate \(rows.first?.replicate ?? 0) (kernel_distance)."))
    }

    static func kernelDistanceNumbers(_ data: ReportData) -> String? {
        pairDistanceNumbers(firstReplicate(data.tables.kernelDistance, \.replicate).map { ($0.epochA, $0.epochB, $0.kernelDistance) },
                            what: "the kernel distance")
    }

    // MARK: - Figs. 2/3 E: child distances vs spawn

    static func spawnPanel(_ p: [ChildPairRow], _ data: ReportData, title: String, y: String, scale: AxisScale = .linear,
                           _ value: @escaping (ChildPairRow) -> Double?) -> Panel? {
        let stats = grouped(p, by: \.spawnEpoch, value)
        guard !stats.isEmpty else { return nil }
        let points = p.compactMap { row in value(row).map { Point(row.spawnEpoch, $0) } }
        return Panel(title: title, x: Axis("spawn epoch"), y: Axis(y, scale: scale), layers: [
            .scatter(Scatter(points: points, label: "pairs", color: grey, size: 2.5)),
            .line(meanSeries(stats, label: "mean ± SD", color: color(0))),
        ] + missing(data.spawnTimes, present: p.map(\.spawnEpoch), data: data), legend: .topRight)
    }

    public static func childDistances(_ data: ReportData) -> Figure? {
        let p = data.tables.childPairs
        let panels = [
            spawnPanel(p, data, title: "weight distance", y: "‖w_a − w_b‖ / √(‖w_a‖‖w_b‖)") { $0.weightL2Normalized },
            spawnPanel(p, data, title: "function distance", y: "disagreement / independent") { $0.functionDisagreementOverIndependent },
            spawnPanel(p, data, title: "ReLU-pattern distance", y: "fraction of signs differing") { $0.reluPatternDistance },
            spawnPanel(p, data, title: "kernel distance", y: "S(K_a, K_b)") { $0.kernelDistance },
        ].compactMap { $0 }
        guard !panels.isEmpty else { return nil }
        return Figure(title: "Distances between children vs spawn time", panels: panels, columns: 2, width: 960,
                      height: panels.count > 2 ? 760 : 400,
                      caption: caption(data, "Final weights of two children of one spawn time (child_pairs); mean ± SD over pairs."))
    }

    static func childDistanceNumbers(_ data: ReportData) -> String? {
        let p = data.tables.childPairs
        return sentence([
            trend(grouped(p, by: \.spawnEpoch) { $0.weightL2Normalized }, what: "the normalised weight distance", at: "spawn"),
            trend(grouped(p, by: \.spawnEpoch) { $0.functionDisagreementOverIndependent }, what: "D/D_ind", at: "spawn"),
            trend(grouped(p, by: \.spawnEpoch) { $0.kernelDistance }, what: "the kernel distance", at: "spawn"),
        ])
    }

    // MARK: - Fig. 6: function distance

    public static func functionDistance(_ data: ReportData) -> Figure? {
        let p = data.tables.childPairs
        guard let vsSpawn = spawnPanel(p, data, title: "vs spawn time", y: "function disagreement / independent",
                                       { $0.functionDisagreementOverIndependent ?? $0.functionDisagreement }) else { return nil }
        let vsBarrier = Panel(title: "vs error barrier", x: Axis("error barrier (test)"), y: Axis("function disagreement / independent"),
                              layers: [.scatter(Scatter(points: p.map { Point($0.barrierTestErrorMaxMinusMean,
                                                                              $0.functionDisagreementOverIndependent ?? $0.functionDisagreement) },
                                                        pointLabels: p.map { epochText($0.spawnEpoch) }, label: "pairs (label: spawn epoch)",
                                                        color: color(1)))], legend: .topLeft)
        return Figure(title: "Function distance between children", panels: [vsSpawn, vsBarrier], columns: 2, width: 960, height: 400,
                      caption: caption(data, "Fraction of test examples the children label differently, over the fraction two "
                                       + "independent classifiers with their errors would (child_pairs)."))
    }

    static func functionDistanceNumbers(_ data: ReportData) -> String? {
        let p = data.tables.childPairs
        let r = pearson(p.map { ($0.barrierTestErrorMaxMinusMean, $0.functionDisagreementOverIndependent ?? $0.functionDisagreement) })
        return sentence([trend(grouped(p, by: \.spawnEpoch) { $0.functionDisagreementOverIndependent ?? $0.functionDisagreement },
                               what: "the function distance", at: "spawn"),
                         r.map { "its correlation with the error barrier over pairs is r = \(num($0))" }])
    }

    // MARK: - Fig. 7: barrier and kernel velocity

    /// Pairs (velocity at t, mean error barrier of spawn time t) over the times both exist, per replicate.
    static func velocityBarrierPairs(_ data: ReportData) -> [(epoch: Double, velocity: Double, barrier: Double)] {
        let barrier = Dictionary(grouping: data.tables.childPairs) { [Double($0.replicate), $0.spawnEpoch] }
            .compactMapValues { meanSD($0.map(\.barrierTestErrorMaxMinusMean))?.mean }
        return data.tables.kernelVelocity.compactMap { v in
            barrier[[Double(v.replicate), v.epoch]].map { (v.epoch, v.velocity, $0) }
        }
    }

    public static func barrierVelocity(_ data: ReportData) -> Figure? {
        let v = data.tables.kernelVelocity, p = data.tables.childPairs
        guard !v.isEmpty || !p.isEmpty else { return nil }
        // Early epochs: up to the last velocity time (or all spawn times without velocity).
        let horizon = v.map(\.epoch).max() ?? p.map(\.spawnEpoch).max() ?? 0
        let early = p.filter { $0.spawnEpoch <= horizon }
        var panels: [Panel] = []
        if !early.isEmpty {
            panels.append(Panel(title: "error barrier", x: Axis("spawn epoch"), y: Axis("barrier (test error)"), layers: [
                .line(meanSeries(grouped(early, by: \.spawnEpoch) { $0.barrierTestErrorMaxMinusMean }, label: "mean ± SD", color: color(1))),
            ] + missing(data.spawnTimes?.filter { $0 <= horizon }, present: early.map(\.spawnEpoch), data: data)))
        }
        if !v.isEmpty {
            panels.append(Panel(title: "kernel velocity", x: Axis("parent epoch t"), y: Axis("v(t) = S(K_t, K_t+dt) / dt"), layers: [
                .line(meanSeries(grouped(v, by: \.epoch) { $0.velocity }, label: "mean ± SD", color: color(0))),
            ]))
        }
        let both = velocityBarrierPairs(data)
        if !both.isEmpty {
            panels.append(Panel(title: "velocity vs barrier", x: Axis("kernel velocity"), y: Axis("error barrier"), layers: [
                .scatter(Scatter(points: both.map { Point($0.velocity, $0.barrier) }, pointLabels: both.map { epochText($0.epoch) },
                                 label: "t (epochs)", color: color(2))),
            ], legend: .topLeft))
        }
        return Figure(title: "Error barrier and kernel velocity in early training", panels: panels, columns: panels.count,
                      width: 360 * Double(panels.count) + 40, height: 380,
                      caption: caption(data, "Barrier of children spawned at t (child_pairs) and the parent's kernel velocity at t "
                                       + "(kernel_velocity); the scatter pairs them at equal t."))
    }

    static func barrierVelocityNumbers(_ data: ReportData) -> String? {
        let both = velocityBarrierPairs(data)
        return sentence([trend(grouped(data.tables.kernelVelocity, by: \.epoch) { $0.velocity }, what: "kernel velocity", at: "epoch"),
                         pearson(both.map { ($0.velocity, $0.barrier) }).map { "correlation with the barrier r = \(num($0)) over \(both.count) times" }])
    }

    // MARK: - Figs. 8/9: linearised training

    public static func linearized(_ data: ReportData) -> Figure? {
        let lin = data.tables.linearized, adv = data.tables.nonlinearAdvantage
        guard !lin.isEmpty || !adv.isEmpty else { return nil }
        var panels: [Panel] = []
        if !lin.isEmpty {
            var layers: [Plot.Layer] = []
            for (i, start) in Set(lin.map(\.startEpoch)).sorted().enumerated() {
                for model in [LinearizedRow.linearizedModel, LinearizedRow.secondOrderModel, LinearizedRow.nonlinearModel] {
                    let stats = grouped(lin.filter { $0.startEpoch == start && $0.model == model }, by: \.epochs) { $0.testError }
                    guard !stats.isEmpty else { continue }
                    let (name, marker, dash): (String, MarkerShape, DashStyle) = switch model {
                    case LinearizedRow.linearizedModel: ("linearised", .square, .dashed)
                    case LinearizedRow.secondOrderModel: ("second-order", .diamond, .dotted)
                    default: ("low-LR child", .circle, .solid)
                    }
                    layers.append(.line(meanSeries(stats, label: "t̃ = \(epochText(start)) \(name)", color: color(i), marker: marker,
                                                   dash: dash)))
                }
            }
            panels.append(Panel(title: "test error during the run", x: Axis("epochs trained from t̃"), y: Axis("test error"),
                                layers: layers))
        }
        if !adv.isEmpty {
            var layers: [Plot.Layer] = [
                .line(meanSeries(grouped(adv, by: \.startEpoch) { $0.linearizedTestError }, label: "linearised", color: color(0),
                                 marker: .square, dash: .dashed)),
                .line(meanSeries(grouped(adv, by: \.startEpoch) { $0.nonlinearTestError }, label: "low-LR child", color: color(1))),
            ]
            let second = grouped(adv, by: \.startEpoch) { $0.secondOrderTestError }
            if !second.isEmpty {
                layers.append(.line(meanSeries(second, label: "second-order", color: color(3), marker: .diamond, dash: .dotted)))
            }
            if let end = data.tables.parentTimeline.map(\.epoch).max(),
               let net = meanSD(data.tables.parentTimeline.filter { $0.epoch == end }.map(\.testError)) {
                layers.append(.reference(ReferenceLine(.horizontal(y: net.mean), label: "network at epoch \(epochText(end))",
                                                       color: color(2), dash: .dashDot)))
            }
            panels.append(Panel(title: "at the end of the run", x: Axis("t̃ (parent epoch)"), y: Axis("test error"), layers: layers))
        }
        let hasSecond = lin.contains { $0.model == LinearizedRow.secondOrderModel }
        return Figure(title: "Linearised network vs low-learning-rate child vs network", panels: panels, columns: panels.count,
                      width: panels.count == 2 ? 960 : 640, height: 400,
                      caption: caption(data, "All start from the parent at t̃ (linearized, nonlinear_advantage)"
                                       + (hasSecond ? "; second-order: the second-order Taylor model (Fig. 18)" : "")
                                       + "; the network is the parent at the end of its training (parent_timeline)."))
    }

    static func linearizedNumbers(_ data: ReportData) -> String? {
        let adv = data.tables.nonlinearAdvantage
        let lin = grouped(adv, by: \.startEpoch) { $0.linearizedTestError }, non = grouped(adv, by: \.startEpoch) { $0.nonlinearTestError }
        let second = Dictionary(grouped(adv, by: \.startEpoch) { $0.secondOrderTestError }.map { ($0.x, $0.mean) },
                                uniquingKeysWith: { a, _ in a })
        return sentence(zip(lin, non).map {
            "t̃ = \(epochText($0.x)): linearised \(num($0.mean))" + (second[$0.x].map { ", second-order \(num($0))" } ?? "")
                + " vs child \(num($1.mean))"
        })
    }

    /// (t̃, advantage, mean barrier at spawn time t̃) where the spawn time matches.
    static func advantageBarrier(_ data: ReportData) -> [(t: Double, advantage: Double, barrier: Double)] {
        let barrier = Dictionary(grouping: data.tables.childPairs) { [Double($0.replicate), $0.spawnEpoch] }
            .compactMapValues { meanSD($0.map(\.barrierTestErrorMaxMinusMean))?.mean }
        return data.tables.nonlinearAdvantage.compactMap { a in
            barrier[[Double(a.replicate), a.startEpoch]].map { (a.startEpoch, a.nonlinearAdvantage, $0) }
        }
    }

    public static func nonlinearAdvantage(_ data: ReportData) -> Figure? {
        let adv = data.tables.nonlinearAdvantage
        guard !adv.isEmpty else { return nil }
        var panels = [Panel(title: "vs t̃", x: Axis("t̃ (parent epoch)"), y: Axis("e(linearised) − e(child)"), layers: [
            .reference(ReferenceLine(.horizontal(y: 0), color: grey)),
            .line(meanSeries(grouped(adv, by: \.startEpoch) { $0.nonlinearAdvantage }, label: "mean ± SD", color: color(0))),
        ])]
        let both = advantageBarrier(data)
        if !both.isEmpty {
            panels.append(Panel(title: "vs error barrier at t̃", x: Axis("error barrier of children spawned at t̃"),
                                y: Axis("e(linearised) − e(child)"), layers: [
                .scatter(Scatter(points: both.map { Point($0.barrier, $0.advantage) }, pointLabels: both.map { epochText($0.t) },
                                 label: "t̃ (epochs)", color: color(1))),
            ], legend: .topLeft))
        }
        return Figure(title: "Nonlinear advantage", panels: panels, columns: panels.count, width: panels.count == 2 ? 960 : 640,
                      height: 400, caption: caption(data, "Test error of the linearised run minus that of the low-learning-rate "
                                                    + "child (nonlinear_advantage); the barrier where a spawn time equals t̃ (child_pairs)."))
    }

    static func advantageNumbers(_ data: ReportData) -> String? {
        let both = advantageBarrier(data)
        return sentence([trend(grouped(data.tables.nonlinearAdvantage, by: \.startEpoch) { $0.nonlinearAdvantage },
                               what: "the nonlinear advantage", at: "t̃ ="),
                         pearson(both.map { ($0.barrier, $0.advantage) }).map { "correlation with the barrier r = \(num($0))" }])
    }

    // MARK: - Appendix: Hessian

    public static func hessian(_ data: ReportData) -> Figure? {
        let h = data.tables.hessian
        guard !h.isEmpty else { return nil }
        let top = Panel(title: "top eigenvalue", x: Axis("parent epoch"), y: Axis("λ_max of the Hessian", scale: .log10), layers: [
            .line(meanSeries(grouped(h, by: \.epoch) { $0.lambdaMax }, label: "λ_max", color: color(0))),
        ])
        let escape = Panel(title: "escape ratios", x: Axis("parent epoch"), y: Axis("ratio"), layers: [
            .reference(.horizontal(y: 1, label: "escape threshold")),
            .line(meanSeries(grouped(h, by: \.epoch) { $0.escapeRatio }, label: "η λ_max / 2", color: color(0))),
            .line(meanSeries(grouped(h, by: \.epoch) { $0.escapeRatioMomentum }, label: "η λ_max / (2(1+μ))", color: color(2),
                             marker: .square, dash: .dashed)),
            .line(meanSeries(grouped(h, by: \.epoch) { $0.escapeRatioUpdate }, label: "η u'Hu / (2 g'u) (Eq. 10)", color: color(1),
                             marker: .diamond)),
        ])
        return Figure(title: "Hessian sharpness and escape ratios", panels: [top, escape], columns: 2, width: 960, height: 400,
                      caption: caption(data, "Top eigenvalue by Lanczos; above 1 a step leaves the local quadratic basin (hessian)."))
    }

    static func hessianNumbers(_ data: ReportData) -> String? {
        let h = data.tables.hessian
        let above = h.filter { $0.escapeRatioUpdate > 1 }.count
        return sentence([trend(grouped(h, by: \.epoch) { $0.lambdaMax }, what: "λ_max", at: "epoch"),
                         h.isEmpty ? nil : "the Eq. 10 ratio is above 1 at \(above) of \(h.count) times"])
    }

    public static func hessianSpectrum(_ data: ReportData) -> Figure? {
        let ev = data.tables.hessianEigenvalues, density = firstReplicate(data.tables.hessianDensity, \.replicate)
        var panels: [Panel] = []
        if !ev.isEmpty {
            let layers = Set(ev.map(\.index)).sorted().map { k in
                Plot.Layer.line(meanSeries(grouped(ev.filter { $0.index == k }, by: \.epoch) { $0.eigenvalue }, label: "λ_\(k + 1)",
                                           color: color(k), marker: .circle))
            }
            panels.append(Panel(title: "top eigenvalues", x: Axis("parent epoch"), y: Axis("eigenvalue"), layers: layers))
        }
        if !density.isEmpty {
            let layers = Set(density.map(\.epoch)).sorted().enumerated().map { i, t in
                Plot.Layer.line(LineSeries(x: density.filter { $0.epoch == t }.map(\.lambda), y: density.filter { $0.epoch == t }.map(\.density),
                                           label: "epoch \(epochText(t))", color: color(i), lineWidth: 1.2))
            }
            panels.append(Panel(title: "spectral density (SLQ)", x: Axis("λ"), y: Axis("density ρ(λ)"), layers: layers))
        }
        guard !panels.isEmpty else { return nil }
        return Figure(title: "Hessian spectrum", panels: panels, columns: panels.count, width: panels.count == 2 ? 960 : 640, height: 400,
                      caption: caption(data, "Ritz values (hessian_eigenvalues) and the smoothed stochastic-Lanczos density (hessian_density)."))
    }

    static func hessianSpectrumNumbers(_ data: ReportData) -> String? {
        let ev = data.tables.hessianEigenvalues
        guard let last = ev.map(\.epoch).max() else { return nil }
        let at = ev.filter { $0.epoch == last && $0.replicate == ev[0].replicate }.sorted { $0.index < $1.index }
        return sentence(["top eigenvalues at epoch \(epochText(last)): " + at.map { num($0.eigenvalue) }.joined(separator: ", ")])
    }

    // MARK: - Appendix: logit gradients, weights

    public static func alignment(_ data: ReportData) -> Figure? {
        var panels: [Panel] = []
        if let p = spawnPanel(data.tables.childPairs, data, title: "children", y: "logit-gradient alignment", { $0.logitGradientAlignment }) {
            panels.append(p)
        }
        let rows = firstReplicate(data.tables.timelinePairs, \.replicate)
        if let h = timeHeatMap(rows.map { ($0.epochA, $0.epochB, $0.logitGradientAlignment) }, title: "parent times",
                               bar: "alignment") {
            panels.append(h)
        }
        guard !panels.isEmpty else { return nil }
        return Figure(title: "Logit-gradient alignment", panels: panels, columns: panels.count, width: panels.count == 2 ? 1060 : 620,
                      height: 460, caption: caption(data, "Mean over classes of the cosine between the class-c logit gradients "
                                                    + "(child_pairs, timeline_pairs)."))
    }

    static func alignmentNumbers(_ data: ReportData) -> String? {
        sentence([trend(grouped(data.tables.childPairs, by: \.spawnEpoch) { $0.logitGradientAlignment }, what: "the children's alignment",
                        at: "spawn")])
    }

    public static func weightDistances(_ data: ReportData) -> Figure? {
        let p = data.tables.childPairs
        let panels = [
            spawnPanel(p, data, title: "L2 distance", y: "‖w_a − w_b‖") { $0.weightL2 },
            spawnPanel(p, data, title: "normalised", y: "‖w_a − w_b‖ / √(‖w_a‖‖w_b‖)") { $0.weightL2Normalized },
            spawnPanel(p, data, title: "cosine similarity", y: "cos(w_a, w_b)") { $0.weightCosine },
        ].compactMap { $0 }
        guard !panels.isEmpty else { return nil }
        return Figure(title: "Weight distances between children", panels: panels, columns: panels.count,
                      width: 340 * Double(panels.count) + 40, height: 380,
                      caption: caption(data, "Over the trainable parameters of the two children's final weights (child_pairs)."))
    }

    static func weightNumbers(_ data: ReportData) -> String? {
        let p = data.tables.childPairs
        return sentence([trend(grouped(p, by: \.spawnEpoch) { $0.weightL2 }, what: "the L2 distance", at: "spawn"),
                         trend(grouped(p, by: \.spawnEpoch) { $0.weightCosine }, what: "the cosine", at: "spawn")])
    }

    // MARK: - NTK spectrum, kernel machines

    public static func ntkSpectrum(_ data: ReportData) -> Figure? {
        let s = data.tables.ntkSpectrum, ev = firstReplicate(data.tables.ntkEigenvalues, \.replicate)
        var panels: [Panel] = []
        if !ev.isEmpty {
            let times = Set(ev.map(\.epoch)).sorted()
            let layers = times.enumerated().map { i, t -> Plot.Layer in
                let rows = ev.filter { $0.epoch == t }
                return .line(LineSeries(x: rows.map { Double($0.index + 1) }, y: rows.map(\.eigenvalue), label: "epoch \(epochText(t))",
                                        color: Colormap.viridis.color(at: times.count > 1 ? Double(i) / Double(times.count - 1) : 0),
                                        lineWidth: 1.2))
            }
            panels.append(Panel(title: "eigenvalues (replicate \(ev[0].replicate))", x: Axis("index", scale: .log10),
                                y: Axis("eigenvalue", scale: .log10), layers: layers))
        }
        if !s.isEmpty {
            panels.append(Panel(title: "scale", x: Axis("parent epoch"), y: Axis("value", scale: .log10), layers: [
                .line(meanSeries(grouped(s, by: \.epoch) { $0.lambdaMax }, label: "λ_max", color: color(0))),
                .line(meanSeries(grouped(s, by: \.epoch) { $0.trace }, label: "trace", color: color(1), marker: .square)),
            ], legend: .bottomRight))
            panels.append(Panel(title: "effective rank", x: Axis("parent epoch"), y: Axis("(Σλ)² / Σλ²"), layers: [
                .line(meanSeries(grouped(s, by: \.epoch) { $0.effectiveRank }, label: "effective rank", color: color(2))),
            ]))
            panels.append(Panel(title: "target alignment", x: Axis("parent epoch"), y: Axis("alignment with labels"), layers: [
                .line(meanSeries(grouped(s, by: \.epoch) { $0.targetAlignment }, label: "full Gram", color: color(0))),
                .line(meanSeries(grouped(s, by: \.epoch) { $0.targetAlignmentTraced }, label: "traced", color: color(1),
                                 marker: .square, dash: .dashed)),
            ], legend: .bottomRight))
        }
        guard !panels.isEmpty else { return nil }
        return Figure(title: "NTK spectrum of the parent", panels: panels, columns: 2, width: 960,
                      height: panels.count > 2 ? 760 : 400,
                      caption: caption(data, "Eigenvalues of the mC × mC Gram on the probe set (ntk_eigenvalues) and its summaries (ntk_spectrum)."))
    }

    static func ntkNumbers(_ data: ReportData) -> String? {
        let s = data.tables.ntkSpectrum
        return sentence([trend(grouped(s, by: \.epoch) { $0.lambdaMax }, what: "λ_max", at: "epoch"),
                         trend(grouped(s, by: \.epoch) { $0.effectiveRank }, what: "the effective rank", at: "epoch"),
                         trend(grouped(s, by: \.epoch) { $0.targetAlignment }, what: "the target alignment", at: "epoch")])
    }

    public static func kernelMachine(_ data: ReportData) -> Figure? {
        let m = data.tables.ntkMachine
        guard !m.isEmpty else { return nil }
        return Figure(title: "NTK kernel machine vs network", panels: [
            Panel(x: Axis("parent epoch t of the kernel"), y: Axis("test error"), layers:
                Set(m.map(\.form)).sorted().enumerated().map { i, form -> Plot.Layer in
                    .line(meanSeries(grouped(m.filter { $0.form == form }, by: \.epoch) { $0.testError },
                                     label: "kernel machine, form \(form)", color: color(i)))
                } + [
                    .line(meanSeries(grouped(m, by: \.epoch) { $0.networkTestError }, label: "network at t", color: color(2),
                                     marker: .square, dash: .dashed)),
                ]),
        ], caption: caption(data, "Kernel regression with the parent's NTK at t on \(m[0].trainExamples) training examples, "
            + "mean ± SD over the draws, ridge chosen on held-out examples; offset: f_t + K*(K + λI)⁻¹(Y - f_t(X)), "
            + "kernel: K*(K + λI)⁻¹Y (ntk_machine)."))
    }

    static func machineNumbers(_ data: ReportData) -> String? {
        let m = data.tables.ntkMachine
        return sentence([trend(grouped(m, by: \.epoch) { $0.testError }, what: "the kernel machine's test error", at: "epoch"),
                         trend(grouped(m, by: \.epoch) { $0.networkTestError }, what: "the network's", at: "epoch")])
    }

    // MARK: - Interpolation curves, training curves

    public static func interpolation(_ data: ReportData) -> Figure? {
        let c = data.tables.barrierCurves
        guard !c.isEmpty else { return nil }
        let spawns = Set(c.map(\.spawnEpoch)).sorted()
        func panel(_ title: String, _ y: String, _ value: @escaping (BarrierCurveRow) -> Double) -> Panel {
            Panel(title: title, x: Axis("α (child a → child b)", range: 0...1), y: Axis(y), layers: spawns.enumerated().map { i, s in
                .line(meanSeries(grouped(c.filter { $0.spawnEpoch == s }, by: \.alpha, value), label: "spawn \(epochText(s))",
                                 color: color(i), marker: nil))
            }, legend: .topRight)
        }
        return Figure(title: "Interpolation curves between children", panels: [panel("test error", "test error", \.testError),
                                                                                panel("test loss", "test loss", \.testLoss)],
                      columns: 2, width: 960, height: 420,
                      caption: caption(data, "Every spawn time; mean ± SD over pairs at each α (barrier_curves)."))
    }

    static func interpolationNumbers(_ data: ReportData) -> String? {
        let c = data.tables.barrierCurves
        let bumps = Set(c.map(\.spawnEpoch)).sorted().map { s -> String in
            let stats = grouped(c.filter { $0.spawnEpoch == s }, by: \.alpha) { $0.testError }
            let ends = ((stats.first?.mean ?? 0) + (stats.last?.mean ?? 0)) / 2
            return "spawn \(epochText(s)): +\(num((stats.map(\.mean).max() ?? 0) - ends))"
        }
        return bumps.isEmpty ? nil : "Height of the mean test-error curve above its ends: " + bumps.joined(separator: ", ") + "."
    }

    public static func trainingCurves(_ data: ReportData) -> Figure? {
        let rows = data.tables.trainingCurves
        guard !rows.isEmpty else { return nil }
        let spawns = Set(rows.compactMap(\.spawnEpoch)).sorted()
        func layers(_ value: @escaping (TrainingCurveRow) -> Double) -> [Plot.Layer] {
            var out: [Plot.Layer] = []
            var labelled = Set<String>()
            let runs = Dictionary(grouping: rows) { "\($0.replicate)|\($0.spawnEpoch.map { String($0) } ?? "parent")|\($0.run)" }
            for key in runs.keys.sorted() {
                let r = runs[key]!.sorted { $0.step < $1.step }
                let spawn = r[0].spawnEpoch
                let label = spawn.map { "children of \(epochText($0))" } ?? "parent"
                let ci = spawn.map { 1 + (spawns.firstIndex(of: $0) ?? 0) } ?? 0
                let series = LineSeries(x: r.map(\.epoch), y: r.map(value), label: labelled.insert(label).inserted ? label : "",
                                        color: spawn == nil ? Color.black : color(ci), lineWidth: spawn == nil ? 2 : 1)
                out.append(.line(series))
            }
            // The parent on top.
            return out.filter { if case let .line(s) = $0 { return s.lineWidth != 2 } else { return true } }
                + out.filter { if case let .line(s) = $0 { return s.lineWidth == 2 } else { return false } }
        }
        return Figure(title: "Training curves", panels: [
            Panel(title: "training loss", x: Axis("epoch"), y: Axis("batch loss (interval mean)", scale: .log10), layers: layers(\.trainLoss)),
            Panel(title: "training error", x: Axis("epoch"), y: Axis("batch error (interval mean)"), layers: layers(\.trainError)),
            Panel(title: "learning rate", x: Axis("epoch"), y: Axis("η", scale: .log10), layers: layers(\.learningRate), legend: .none),
        ], columns: 3, width: 1140, height: 400,
        caption: caption(data, "Mean over the batches of each interval of training_curves.every_steps steps, in training mode (training_curves)."))
    }

    static func trainingCurveNumbers(_ data: ReportData) -> String? {
        let parent = firstReplicate(data.tables.trainingCurves.filter { $0.spawnEpoch == nil }, \.replicate)
        guard let first = parent.first, let last = parent.last else { return nil }
        return "The parent's interval training loss falls from \(num(first.trainLoss)) (step \(first.step)) to \(num(last.trainLoss)) "
            + "(step \(last.step)), its error from \(num(first.trainError)) to \(num(last.trainError)), over \(parent.count) points."
    }
}
