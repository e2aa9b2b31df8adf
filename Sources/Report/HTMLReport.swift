import Core
import Foundation
import Plot

/// `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network) with every
/// figure, the paper's claim and our numbers next to it, the experiment file, the run's provenance
/// and links to the tables.
public enum HTMLReport {
    /// Everything the page shows besides the figures.
    public struct Context {
        public var runName: String
        /// The experiment file as given (or the resolved configuration), shown verbatim.
        public var experiment: String?
        public var experimentFile: String
        /// `manifest.json`, parsed; nil for an unfinished run.
        public var manifest: [String: Any]?
        /// Seconds per task from the records (used when there is no manifest).
        public var taskSeconds: [String: Double]
        /// Table files present (`tables/<name>.csv|json`), relative paths.
        public var tableFiles: [String]
        public var generated: String

        public init(runName: String, experiment: String?, experimentFile: String, manifest: [String: Any]?,
                    taskSeconds: [String: Double], tableFiles: [String], generated: String) {
            self.runName = runName
            self.experiment = experiment
            self.experimentFile = experimentFile
            self.manifest = manifest
            self.taskSeconds = taskSeconds
            self.tableFiles = tableFiles
            self.generated = generated
        }
    }

    static let css = """
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1180px;margin:0 auto;padding:16px 24px;color:#222;background:#fff;line-height:1.45}
        h1{font-size:1.6em;margin:.3em 0}h2{font-size:1.25em;margin:1.6em 0 .3em;border-bottom:1px solid #ddd;padding-bottom:.2em}
        .status{padding:8px 12px;border-radius:4px;background:#eef6ee;border:1px solid #9c9}.status.partial{background:#fff6e0;border-color:#e6b800}
        .paper{color:#555;font-size:.92em;margin:.2em 0}.claim{margin:.4em 0}.ours{margin:.4em 0;background:#f3f6fb;padding:6px 10px;border-left:3px solid #0072B2}
        figure{margin:8px 0;overflow-x:auto}figure svg{max-width:100%;height:auto}
        table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f5f5f5}
        td.num{text-align:right;font-variant-numeric:tabular-nums}
        pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:10px;overflow-x:auto;font-size:.85em}
        nav ol{columns:2;font-size:.92em}.files{font-size:.88em;color:#555}a{color:#0060a0}
        """

    /// The page. Pure: the same inputs give the same bytes.
    public static func render(data: ReportData, figures: [BuiltFigure], context c: Context,
                              specs: [FigureSpec] = FigureSpec.all) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>NTKScape report: \(esc(c.runName))</title>\n<style>\n\(css)\n</style>\n</head>\n<body>\n"
        h += "<h1>NTKScape report: \(esc(c.runName))</h1>\n"
        h += "<p>Reproduction of Fort et al. 2020, <i>Deep learning versus kernel learning</i> (NeurIPS 2020). "
            + "Generated \(esc(c.generated)) by ntkscape \(esc(NTKScapeVersion.string)).</p>\n"
        if let p = data.progress {
            if p.isComplete {
                h += "<p class=\"status\" id=\"status\">Finished: \(esc(p.description)).</p>\n"
            } else {
                h += "<p class=\"status partial\" id=\"status\">Unfinished run: \(esc(p.description)). Figures show the finished "
                    + "tasks; dotted lines mark points still to come. Missing: \(esc(abbreviated(p.missing))).</p>\n"
            }
        }
        h += "<nav><h2>Figures</h2><ol>\n"
        for f in figures { h += "<li><a href=\"#\(f.spec.name)\">\(esc(f.spec.paper)): \(esc(f.spec.title))</a></li>\n" }
        h += "</ol></nav>\n"
        for f in figures {
            h += "<section id=\"\(f.spec.name)\">\n<h2>\(esc(f.spec.title))</h2>\n"
            h += "<p class=\"paper\">\(esc(f.spec.paper)) · figure <code>\(f.spec.name)</code></p>\n"
            h += "<p class=\"claim\"><b>Paper:</b> \(esc(f.spec.claim))</p>\n"
            h += "<p class=\"ours\"><b>This run:</b> \(esc(f.numbers ?? "no numbers yet."))</p>\n"
            h += "<figure>\n\(SVGRenderer.render(f.figure, xmlDeclaration: false))\n</figure>\n"
            h += "<p class=\"files\"><a href=\"figures/\(f.spec.name).svg\">SVG</a> · tables: "
                + f.spec.tables.map { "<a href=\"tables/\($0).csv\">\($0).csv</a>" }.joined(separator: ", ") + "</p>\n</section>\n"
        }
        let absent = specs.filter { s in !figures.contains { $0.spec.name == s.name } }
        if !absent.isEmpty {
            h += "<section id=\"not-drawn\">\n<h2>Figures without data</h2>\n<ul>\n"
            for s in absent {
                h += "<li>\(esc(s.paper)): \(esc(s.title)) — no rows in \(esc(s.tables.joined(separator: ", "))) "
                    + "(analysis not configured, or not finished).</li>\n"
            }
            h += "</ul>\n</section>\n"
        }
        h += statistics(data.statistics)
        h += "<section id=\"experiment\">\n<h2>Experiment</h2>\n<p class=\"files\"><a href=\"\(esc(c.experimentFile))\">"
            + "\(esc(c.experimentFile))</a></p>\n<pre>\(esc(c.experiment ?? "(not found)"))</pre>\n</section>\n"
        h += provenance(c)
        h += "<section id=\"tables\">\n<h2>Tables</h2>\n"
        if c.tableFiles.isEmpty {
            h += "<p>The tables are written when the run finishes; this report was built from the task records in "
                + "<code>tasks/</code>.</p>\n"
        } else {
            h += "<p>Columns are described in docs/metrics.md.</p>\n<ul>\n"
            for name in Set(c.tableFiles.map { ($0 as NSString).deletingPathExtension }).sorted() {
                let files = c.tableFiles.filter { ($0 as NSString).deletingPathExtension == name }.sorted()
                h += "<li>\(esc((name as NSString).lastPathComponent)): "
                    + files.map { "<a href=\"\(esc($0))\">\(esc(($0 as NSString).pathExtension))</a>" }.joined(separator: " ") + "</li>\n"
            }
            h += "</ul>\n"
        }
        h += "</section>\n</body>\n</html>\n"
        return h
    }

    /// The statistics of `statistics.json` (docs/metrics.md): estimate and interval per row.
    static func statistics(_ rows: [StatisticRow]) -> String {
        guard !rows.isEmpty else { return "" }
        func n(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "–" }
        var h = "<section id=\"statistics\">\n<h2>Statistics</h2>\n<p>Means with clustered bootstrap intervals (replicates, "
            + "then pairs), the basin-fate and kernel-velocity plateau times, and the correlations behind Figs. 6, 7 and 9, at level "
            + "\(esc(n(rows[0].level))) (<a href=\"tables/statistics.csv\">statistics.csv</a>; definitions in docs/metrics.md).</p>\n"
        h += "<table>\n<tr><th>quantity</th><th>column</th><th>epoch</th><th>estimate</th><th>interval</th><th>n</th><th>method</th></tr>\n"
        for r in rows {
            h += "<tr><td>\(esc(r.quantity))</td><td>\(esc(r.column))</td><td class=\"num\">\(r.epoch.map(epochText) ?? "")</td>"
                + "<td class=\"num\">\(n(r.estimate))</td><td class=\"num\">[\(n(r.lower)), \(n(r.upper))]</td>"
                + "<td class=\"num\">\(r.n)</td><td>\(esc(r.method))</td></tr>\n"
        }
        return h + "</table>\n</section>\n"
    }

    static func provenance(_ c: Context) -> String {
        var h = "<section id=\"provenance\">\n<h2>Provenance</h2>\n"
        var taskSeconds = c.taskSeconds
        if let m = c.manifest {
            func s(_ key: String) -> String { m[key].map { "\($0)" } ?? "–" }
            let timings = m["timings"] as? [String: Any]
            var rows: [(String, String)] = [
                ("version", s("ntkscape_version")), ("command", s("command")), ("ranks", s("ranks")),
                ("threads per rank", s("threads_per_rank")), ("started", s("started")), ("finished", s("finished")),
                ("run directory", s("run_directory")), ("OpenBLAS", s("openblas_kernels")),
            ]
            if let wall = timings?["wall_seconds"] as? Double { rows.append(("wall time of the last invocation", formatDuration(wall))) }
            h += "<table>\n" + rows.map { "<tr><th>\(esc($0.0))</th><td>\(esc($0.1))</td></tr>\n" }.joined() + "</table>\n"
            if let t = timings?["task_seconds"] as? [String: Any] {
                for (k, v) in t { if let d = v as? Double { taskSeconds[k] = d } else if let i = v as? Int { taskSeconds[k] = Double(i) } }
            }
        } else {
            h += "<p>No manifest yet (written when the run finishes): task times below come from the task records.</p>\n"
        }
        if !taskSeconds.isEmpty {
            let total = taskSeconds.values.reduce(0, +)
            h += "<h3>Task times</h3>\n<p>\(taskSeconds.count) tasks, \(esc(formatDuration(total))) in total.</p>\n"
            h += "<table>\n<tr><th>task</th><th>time</th><th>seconds</th></tr>\n"
            for k in taskSeconds.keys.sorted() {
                h += "<tr><td>\(esc(k))</td><td class=\"num\">\(esc(formatDuration(taskSeconds[k]!)))</td>"
                    + "<td class=\"num\">\(String(format: "%.2f", taskSeconds[k]!))</td></tr>\n"
            }
            h += "</table>\n"
        }
        return h + "</section>\n"
    }

    static func abbreviated(_ ids: [String]) -> String {
        ids.count <= 12 ? ids.joined(separator: ", ") : ids.prefix(12).joined(separator: ", ") + " and \(ids.count - 12) more"
    }

    /// HTML text escaping.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}

/// Writes `figures/<name>.svg` and `report.html` of a run directory (finished or not).
public enum ReportWriter {
    public struct Result {
        public var report: String
        public var figures: [String]
        public var progress: RunProgress?
    }

    public static func write(_ paths: RunPaths, now: Date = Date()) throws -> Result {
        let data = try ReportData.load(paths)
        let figures = FigureSpec.buildAll(data)
        try FileManager.default.createDirectory(atPath: paths.figuresDirectory, withIntermediateDirectories: true)
        var written: [String] = []
        for f in figures {
            let path = paths.figure(f.spec.name)
            try AtomicFile.write(f.svg, to: path)
            written.append(path)
        }
        let fm = FileManager.default
        let manifest = fm.contents(atPath: paths.manifest).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let experimentFile = fm.fileExists(atPath: paths.configCopy) ? paths.configCopy : paths.resolvedConfig
        let experiment = fm.contents(atPath: experimentFile).map { String(decoding: $0, as: UTF8.self) }
        let tablesDir = paths.tablesDirectory
        let tableFiles = ((try? fm.contentsOfDirectory(atPath: tablesDir)) ?? [])
            .filter { ($0.hasSuffix(".csv") || $0.hasSuffix(".json")) && !$0.contains(".tmp-") }
            .map { "tables/" + $0 }.sorted()
        let context = HTMLReport.Context(
            runName: (paths.runDirectory as NSString).lastPathComponent, experiment: experiment,
            experimentFile: (experimentFile as NSString).lastPathComponent, manifest: manifest, taskSeconds: data.taskSeconds,
            tableFiles: tableFiles, generated: Manifest.timestamp(now))
        try AtomicFile.write(HTMLReport.render(data: data, figures: figures, context: context), to: paths.report)
        return Result(report: paths.report, figures: written, progress: data.progress)
    }
}
