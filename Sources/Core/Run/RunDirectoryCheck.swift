import Foundation

/// A path given as a run directory (`ntkscape summary`, `report`) that is not one.
public struct NotARunDirectory: Error, CustomStringConvertible, Equatable {
    public let path: String, problem: String, fix: String
    public var description: String { "\(path): \(problem). Fix: \(fix)." }
}

public extension RunPaths {
    /// Whether `directory` looks like a run directory: it holds the resolved configuration or the
    /// task records `ntkscape run` writes first.
    static func isRunDirectory(_ directory: String) -> Bool {
        let paths = RunPaths(runDirectory: directory)
        return FileManager.default.fileExists(atPath: paths.resolvedConfig)
            || FileManager.default.fileExists(atPath: paths.tasksDirectory)
    }

    /// Refuses a path that is not a run directory, saying what it is: missing, a file, or a runs root
    /// (a directory of run directories, which are listed so one can be chosen).
    static func checkRunDirectory(_ path: String, command: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw NotARunDirectory(path: path, problem: "no such directory",
                                   fix: "give the run directory `ntkscape run` printed (`ntkscape run EXPERIMENT --print-run-dir` names it)")
        }
        guard isDir.boolValue else {
            throw NotARunDirectory(path: path, problem: "is a file, not a run directory",
                                   fix: "give the run directory `ntkscape run` printed, e.g. runs/quick-<hash>")
        }
        if isRunDirectory(path) { return }
        let runs = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
            .filter { isRunDirectory((path as NSString).appendingPathComponent($0)) }
        if runs.isEmpty {
            throw NotARunDirectory(path: path, problem: "is not a run directory (it holds no config.json or tasks/) and holds none",
                                   fix: "give the run directory `ntkscape run` printed (`ntkscape run EXPERIMENT --print-run-dir` names it)")
        }
        let shown = runs.prefix(20).map { "  " + (path as NSString).appendingPathComponent($0) }.joined(separator: "\n")
        throw NotARunDirectory(path: path,
                               problem: "is a runs root holding \(runs.count) run director\(runs.count == 1 ? "y" : "ies"), not a run directory:\n"
                                   + shown + (runs.count > 20 ? "\n  ..." : ""),
                               fix: "choose one, e.g. `ntkscape \(command) \((path as NSString).appendingPathComponent(runs[0]))`")
    }
}
