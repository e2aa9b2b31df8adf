import Foundation

/// A failure as the user sees it: the task that was running, what went wrong, and what to do.
///
/// Errors thrown inside `during(_:fix:_:)` become `TaskFailure`s naming that task; the command-line
/// entry point prints the first one a rank meets — once, with the rank — and ends the whole job
/// (docs/failures.md). No MPI here: the abort lives in Parallel (`JobFailure`).
public struct TaskFailure: Error, CustomStringConvertible, Sendable {
    /// What was running, e.g. `task r0-s0-c1` or `writing the tables`; nil until a `during` names it.
    public var task: String?
    /// What went wrong.
    public var message: String
    /// What the user does about it.
    public var fix: String
    /// Every rank of the job knows of this failure (it was agreed collectively, see
    /// `Communicator.agree`), so the job can end without an abort. Set by `agree`.
    public var agreed = false

    public init(task: String? = nil, message: String, fix: String) {
        self.task = task
        self.message = message
        self.fix = fix
    }

    public var description: String {
        (task.map { "\($0): " } ?? "") + message + "\nfix: " + fix
    }

    /// `error` as a `TaskFailure`: unchanged if it is one (naming `task` if it names none yet),
    /// else its readable description with `task` and `fix`.
    public static func wrapping(_ error: Error, task: String, fix: String) -> TaskFailure {
        if var failure = error as? TaskFailure {
            if failure.task == nil { failure.task = task }
            return failure
        }
        return TaskFailure(task: task, message: describe(error), fix: fix)
    }

    /// A readable one-line description of any error (Foundation's file errors by their message and path).
    public static func describe(_ error: Error) -> String {
        if let failure = error as? TaskFailure { return failure.message }
        if let cocoa = error as? CocoaError {
            let path = (cocoa.userInfo[NSFilePathErrorKey] as? String) ?? cocoa.filePath ?? cocoa.url?.path
            let reason = (cocoa.userInfo[NSUnderlyingErrorKey] as? Error).map { underlying -> String in
                let ns = underlying as NSError
                return ns.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(ns.code))) : ns.localizedDescription
            }
            // Foundation on Linux often says only "The operation could not be completed. (... error 512.)".
            let generic = cocoa.localizedDescription.hasPrefix("The operation could not be completed")
            var text = reason.map { generic ? $0 : cocoa.localizedDescription + " (\($0))" } ?? cocoa.localizedDescription
            if let path, !text.contains(path) { text = "\(path): \(text)" }
            return text
        }
        let text = String(describing: error)
        return text.isEmpty ? "\(type(of: error))" : text
    }

}

/// Runs `body`; an error thrown inside becomes a `TaskFailure` naming `task` and `fix` (a
/// `TaskFailure` that already names a task — an inner, more precise `during` — passes unchanged).
@discardableResult
public func during<T>(_ task: String, fix: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let stop as StopRequested {
        throw stop   // a requested stop is not a failure (StopRequest.swift)
    } catch {
        throw TaskFailure.wrapping(error, task: task, fix: fix)
    }
}

/// The usual advice after a failed task: the run resumes where it stopped.
public let rerunFix = "fix the cause named above and rerun the same command: finished tasks are kept "
    + "and training resumes from its last epoch (docs/failures.md)"

public extension Communicator {
    /// Runs `body` on every rank, then agrees collectively whether any rank failed. No rank failed:
    /// `body`'s result. Some rank failed: every rank throws an agreed `TaskFailure`; the lowest
    /// failing rank's carries its error (it is the one printed), the others' are silent
    /// (`ReportedElsewhere`). Every rank must call it (a collective), so use it where all ranks
    /// pass — set-up, the end of a command — not around work that waits on other ranks.
    func agree<T>(_ body: () throws -> T) throws -> T {
        var result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        if size == 1, case .failure(let error) = result { throw error }
        let failed = { if case .failure = result { return true } else { return false } }()
        let first = allreduce(failed ? rank : Int.max, .min)
        switch result {
        case .success(let value) where first == Int.max:
            return value
        case .failure(let error) where first == rank:
            var failure = error as? TaskFailure ?? TaskFailure(message: TaskFailure.describe(error), fix: rerunFix)
            failure.agreed = true
            throw failure
        default:
            throw ReportedElsewhere(rank: first)
        }
    }
}

/// Thrown on the ranks that stay silent about an agreed failure: rank `rank` reports it.
public struct ReportedElsewhere: Error, CustomStringConvertible, Sendable {
    public let rank: Int
    public var description: String { "failed on rank \(rank) (reported there)" }
}

/// Fault injection for the failure tests: `NTKSCAPE_FAULT=<phase>:<rank>[,<phase>:<rank>...]`
/// makes rank `rank` fail when it reaches `phase` (docs/failures.md). Read from the environment at
/// each check; no state.
public enum FaultInjection {
    public static let variable = "NTKSCAPE_FAULT"

    /// Where faults can be injected.
    public enum Phase: String, CaseIterable, Sendable {
        /// Configuration, data and the run directory (every command's start).
        case setup
        /// A training task (parent, child, linearised or low-learning-rate child).
        case train
        /// A pair or timeline metric task.
        case pairs
        /// A collective NTK or Hessian task (and the `ntk` command's Gram).
        case ntk
        /// Gathering the records on rank 0.
        case gather
        /// Writing the tables and the manifest (rank 0; other ranks fail where they wait for it).
        case tables
    }

    /// The faults named by `value`; throws on a malformed value.
    public static func parse(_ value: String) throws -> [(phase: Phase, rank: Int)] {
        try value.split(separator: ",").map { item in
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let phase = Phase(rawValue: String(parts[0])), let rank = Int(parts[1]), rank >= 0 else {
                throw TaskFailure(task: "reading \(variable)",
                                  message: "\(variable)=\(value) is not <phase>:<rank>[,...] with a phase in "
                                      + Phase.allCases.map(\.rawValue).joined(separator: ", "),
                                  fix: "unset \(variable) (it exists only for the failure tests) or correct it")
            }
            return (phase, rank)
        }
    }

    /// Throws an injected failure if `NTKSCAPE_FAULT` in `environment` names `phase` on `rank`.
    public static func check(_ phase: Phase, rank: Int,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let value = environment[variable], !value.isEmpty else { return }
        if try parse(value).contains(where: { $0.phase == phase && $0.rank == rank }) {
            throw TaskFailure(message: "injected fault \(variable)=\(value) (phase \(phase.rawValue), rank \(rank))",
                              fix: "unset \(variable) and rerun the same command: finished tasks are kept")
        }
    }
}
