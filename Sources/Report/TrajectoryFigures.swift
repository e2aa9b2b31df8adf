import Core
import Foundation
import Plot

/// The figures of the loss plane (Fig. 5), the function-space trajectories (Fig. 10) and their
/// t-SNE embedding (Fig. 11).
extension Figures {
    static let trajectorySpecs: [FigureSpec] = [
        FigureSpec(name: "fig5_loss_plane", paper: "Fig. 5", title: "Test error on the plane through the parent and two children",
                   claim: "For an early spawn time the two children sit in separate basins with a ridge between them, and the "
                    + "tangent-plane (linearised) model misses it; for a later spawn time the plane is one basin.",
                   tables: [T.lossPlane], build: lossPlane, numbers: lossPlaneNumbers),
        FigureSpec(name: "fig10_function_trajectories", paper: "Fig. 10", title: "Function distance between children along training",
                   claim: "Children spawned early drift apart in function space as they train; children spawned later stay close.",
                   tables: [T.functionTrajectories], build: functionTrajectories, numbers: trajectoryNumbers),
        FigureSpec(name: "fig11_function_tsne", paper: "Fig. 11", title: "t-SNE of the predictions of the parent and the children",
                   claim: "In function space the children of early spawn times fan out to different end points, while later "
                    + "children end near each other and near the parent.",
                   tables: [T.functionEmbedding], build: functionEmbedding, numbers: embeddingNumbers),
    ]

    /// A panel per plane model (network, tangent at the spawn point, tangent at child a) for each
    /// spawn time of the first replicate: test error on the grid, contours, and the three networks.
    public static func lossPlane(_ data: ReportData) -> Figure? {
        let rows = firstReplicate(data.tables.lossPlane, \.replicate)
        guard !rows.isEmpty else { return nil }
        let spawns = Set(rows.map(\.spawnEpoch)).sorted()
        let models = [LossPlaneRow.network, LossPlaneRow.tangentSpawn, LossPlaneRow.tangentChild].filter { m in rows.contains { $0.model == m } }
        let grid = rows.filter { $0.point == "grid" }.map(\.testError).filter(\.isFinite)
        let range = (grid.min() ?? 0)...max((grid.max() ?? 1), (grid.min() ?? 0) + 1e-9)
        var panels: [Panel] = []
        for spawn in spawns {
            for model in models {
                let cells = rows.filter { $0.spawnEpoch == spawn && $0.model == model && $0.point == "grid" }
                let xs = Set(cells.map(\.x)).sorted(), ys = Set(cells.map(\.y)).sorted()
                guard xs.count >= 2, ys.count >= 2 else { continue }
                var field = [[Double]](repeating: [Double](repeating: .nan, count: xs.count), count: ys.count)
                for c in cells { if let i = c.i, let j = c.j, j < ys.count, i < xs.count { field[j][i] = c.testError } }
                let marks = rows.filter { $0.spawnEpoch == spawn && $0.model == model && $0.point != "grid" }
                let levels = (1...6).map { range.lowerBound + (range.upperBound - range.lowerBound) * Double($0) / 7 }
                let title = model == LossPlaneRow.network ? "network, spawn \(epochText(spawn))"
                    : model == LossPlaneRow.tangentSpawn ? "tangent at spawn \(epochText(spawn))" : "tangent at child a"
                panels.append(Panel(title: title, x: Axis("x (along child a)", range: xs.first!...xs.last!),
                                    y: Axis("y", range: ys.first!...ys.last!), layers: [
                    .heatMap(HeatMap(values: field, x: .centres(xs), y: .centres(ys), range: range,
                                     colorBar: ColorBar(label: "test error"))),
                    .contour(Contour(field: field, xs: xs, ys: ys, levels: levels, color: Color.white, lineWidth: 0.8)),
                    .scatter(Scatter(points: marks.map { Point($0.x, $0.y) },
                                     pointLabels: marks.map { $0.point == "spawn" ? "parent" : $0.point.replacingOccurrences(of: "_", with: " ") },
                                     color: Color.black, marker: .diamond, size: 5)),
                ], legend: .none, grid: false))
            }
        }
        guard !panels.isEmpty else { return nil }
        let columns = max(1, models.count)
        return Figure(title: "Loss plane: test error", panels: panels, columns: columns, width: 360 * Double(columns),
                      height: 320 * Double((panels.count + columns - 1) / columns),
                      caption: caption(data, "Test error on the plane through the parent at the spawn time and children 0 and 1 "
                        + "(orthonormal coordinates in weight space; loss_plane). Tangent panels: the linearised model around "
                        + "that point, evaluated at the same weights. First replicate."))
    }

    static func lossPlaneNumbers(_ data: ReportData) -> String? {
        let rows = firstReplicate(data.tables.lossPlane, \.replicate)
        let parts = Set(rows.map(\.spawnEpoch)).sorted().compactMap { spawn -> String? in
            let net = rows.filter { $0.spawnEpoch == spawn && $0.model == LossPlaneRow.network && $0.point != "grid" }
            let grid = rows.filter { $0.spawnEpoch == spawn && $0.model == LossPlaneRow.network && $0.point == "grid" }
            guard let a = net.first(where: { $0.point == "child_a" }), let b = net.first(where: { $0.point == "child_b" }),
                  let worst = grid.map(\.testError).max() else { return nil }
            return "spawn \(epochText(spawn)): children at \(num(a.testError)) and \(num(b.testError)) test error, "
                + "grid maximum \(num(worst))"
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ") + "."
    }

    /// Disagreement (smoothed; raw as thin lines) between children against training time, per spawn time.
    public static func functionTrajectories(_ data: ReportData) -> Figure? {
        let rows = data.tables.functionTrajectories
        guard !rows.isEmpty else { return nil }
        let spawns = Set(rows.map(\.spawnEpoch)).sorted()
        func panel(_ title: String, _ raw: @escaping (FunctionTrajectoryRow) -> Double?,
                   _ smooth: @escaping (FunctionTrajectoryRow) -> Double?) -> Panel {
            var layers: [Plot.Layer] = []
            for (i, s) in spawns.enumerated() {
                let r = rows.filter { $0.spawnEpoch == s }
                layers.append(.line(LineSeries(points: grouped(r, by: \.epoch, raw).map { Point($0.x, $0.mean) },
                                               color: color(i), lineWidth: 0.6)))
                layers.append(.line(meanSeries(grouped(r, by: \.epoch, smooth),
                                               label: "spawn \(epochText(s))", color: color(i), marker: nil)))
            }
            return Panel(title: title, x: Axis("parent epoch"), y: Axis(title), layers: layers, legend: .topLeft)
        }
        return Figure(title: "Function distance between children along training",
                      panels: [panel("disagreement", \.disagreement, \.disagreementSmoothed),
                               panel("D / D_ind", \.disagreementOverIndependent, \.disagreementOverIndependentSmoothed)],
                      columns: 2, width: 960, height: 420,
                      caption: caption(data, "Fraction of the trajectory examples the two children classify differently, from the "
                        + "spawn time to the end; thick: moving average (trajectories.smoothing), thin: raw; mean ± SD over pairs "
                        + "(function_trajectories)."))
    }

    static func trajectoryNumbers(_ data: ReportData) -> String? {
        let rows = data.tables.functionTrajectories
        let ends = Set(rows.map(\.spawnEpoch)).sorted().compactMap { s -> String? in
            let r = rows.filter { $0.spawnEpoch == s }
            guard let end = r.map(\.epoch).max() else { return nil }
            let last = r.filter { $0.epoch == end }.map(\.disagreement)
            return "spawn \(epochText(s)): \(num(last.reduce(0, +) / Double(last.count)))"
        }
        return ends.isEmpty ? nil : "Final disagreement between children: " + ends.joined(separator: ", ") + "."
    }

    /// The embedding: the parent's path in black, each child's path in its spawn time's colour.
    public static func functionEmbedding(_ data: ReportData) -> Figure? {
        let rows = firstReplicate(data.tables.functionEmbedding, \.replicate)
        guard !rows.isEmpty else { return nil }
        let spawns = Set(rows.compactMap(\.spawnEpoch)).sorted()
        var layers: [Plot.Layer] = []
        let parent = rows.filter { $0.spawnEpoch == nil }.sorted { $0.epoch < $1.epoch }
        var labelled = Set<String>()
        for (i, s) in spawns.enumerated() {
            let children = rows.filter { $0.spawnEpoch == s }
            for run in Set(children.map(\.run)).sorted() {
                let path = children.filter { $0.run == run }.sorted { $0.epoch < $1.epoch }
                let label = "children of \(epochText(s))"
                layers.append(.line(LineSeries(points: path.map { Point($0.x, $0.y) }, label: labelled.insert(label).inserted ? label : "",
                                               color: color(i + 1), lineWidth: 1, marker: .circle)))
            }
        }
        layers.append(.line(LineSeries(points: parent.map { Point($0.x, $0.y) }, label: "parent", color: Color.black,
                                       lineWidth: 2, marker: .square)))
        let ends = rows.filter { $0.spawnEpoch != nil && $0.epoch == rows.map(\.epoch).max() }
        layers.append(.scatter(Scatter(points: ends.map { Point($0.x, $0.y) }, label: "end of training", color: Color.black,
                                       marker: .cross, size: 5)))
        return Figure(title: "t-SNE of the predictions along training",
                      panels: [Panel(title: "", x: Axis("t-SNE 1"), y: Axis("t-SNE 2"), layers: layers, legend: .topRight, grid: false)],
                      width: 720, height: 560,
                      caption: caption(data, "Joint t-SNE of the softmax predictions on the trajectory examples of the parent at "
                        + "every measurement time and of every child along its training (function_embedding). First replicate."))
    }

    static func embeddingNumbers(_ data: ReportData) -> String? {
        let rows = firstReplicate(data.tables.functionEmbedding, \.replicate)
        guard !rows.isEmpty else { return nil }
        let children = rows.filter { $0.spawnEpoch != nil }
        return "\(rows.count) prediction vectors embedded: the parent at \(rows.count - children.count) times and "
            + "\(Set(children.map { "\($0.spawnEpoch!)|\($0.run)" }).count) children."
    }
}
