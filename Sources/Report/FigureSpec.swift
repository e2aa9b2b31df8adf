import Core
import Foundation
import Plot

/// One figure of the report: a function from the run's tables to a chart specification, with what
/// the paper says about it. A later analysis joins by adding a `FigureSpec` to `FigureSpec.all`.
public struct FigureSpec {
    /// File name without extension: `figures/<name>.svg` (letters, digits, `_`).
    public let name: String
    /// The panel of Fort et al. 2020 it reproduces, e.g. `Fig. 2/3 B–C`.
    public let paper: String
    public let title: String
    /// The one-sentence claim the paper makes about it.
    public let claim: String
    /// Tables it reads (`RunPaths.Table` names).
    public let tables: [String]
    /// nil when the tables hold nothing to plot.
    public let build: (ReportData) -> Figure?
    /// Our numbers for the claim, one or two sentences; nil when there are none.
    public let numbers: (ReportData) -> String?

    public init(name: String, paper: String, title: String, claim: String, tables: [String],
                build: @escaping (ReportData) -> Figure?,
                numbers: @escaping (ReportData) -> String?) {
        self.name = name
        self.paper = paper
        self.title = title
        self.claim = claim
        self.tables = tables
        self.build = build
        self.numbers = numbers
    }

    /// Every figure, in report order.
    public static let all: [FigureSpec] = Figures.registry
}

/// A built figure: its spec, chart and numbers.
public struct BuiltFigure {
    public let spec: FigureSpec
    public let figure: Figure
    public let numbers: String?
    public var svg: String { SVGRenderer.render(figure) }
}

public extension FigureSpec {
    /// Builds every figure the data can feed (in registry order), each with a fixed id prefix so
    /// the SVGs can be inlined into one page.
    static func buildAll(_ data: ReportData, specs: [FigureSpec] = all) -> [BuiltFigure] {
        specs.compactMap { spec in
            guard var figure = spec.build(data) else { return nil }
            figure.idPrefix = figure.idPrefix ?? "fig-\(spec.name)"
            return BuiltFigure(spec: spec, figure: figure, numbers: spec.numbers(data))
        }
    }
}
