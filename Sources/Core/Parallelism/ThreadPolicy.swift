import CLinAlg
import Foundation

/// How many OpenBLAS threads each rank runs, and which rule decided it.
///
/// Rules, first match wins: an explicit `--threads N`; the environment variable
/// `OPENBLAS_NUM_THREADS`; otherwise `cores on this node / ranks on this node`, capped by the cores
/// this process may run on (mpirun may bind a rank to one core). Always at least 1: without an
/// explicit setting every rank starts one thread per core and oversubscribes the node.
public struct ThreadDecision: Equatable, Sendable, CustomStringConvertible {
    public enum Rule: String, Sendable {
        case option = "--threads"
        case environment = "OPENBLAS_NUM_THREADS"
        case coresPerRank = "cores/ranks-on-node"
    }

    public let threads: Int
    public let rule: Rule
    /// The inputs that led to `threads`, for `ntkscape info`.
    public let detail: String

    public var description: String { "\(threads) (\(rule.rawValue): \(detail))" }

    /// The pure decision; `environment` is the raw value of `OPENBLAS_NUM_THREADS`, if set.
    /// A value that is not a positive integer is ignored (and said so in `detail`).
    public static func decide(option: Int?, environment: String?, coresOnNode: Int,
                              ranksOnNode: Int, allowedCores: Int?) -> ThreadDecision {
        if let n = option, n >= 1 {
            return ThreadDecision(threads: n, rule: .option, detail: "--threads \(n)")
        }
        var note = ""
        if let env = environment {
            let trimmed = env.trimmingCharacters(in: .whitespaces)
            if let n = Int(trimmed), n >= 1 {
                return ThreadDecision(threads: n, rule: .environment,
                                      detail: "OPENBLAS_NUM_THREADS=\(trimmed)")
            }
            note = ", ignored OPENBLAS_NUM_THREADS=\"\(env)\""
        }
        let ranks = max(1, ranksOnNode)
        var threads = max(1, coresOnNode / ranks)
        var detail = "\(coresOnNode) cores / \(ranks) ranks on node"
        if let allowed = allowedCores, allowed >= 1, allowed < threads {
            threads = allowed
            detail += ", capped by \(allowed) cores in this rank's affinity mask"
        }
        return ThreadDecision(threads: threads, rule: .coresPerRank, detail: detail + note)
    }
}

/// OpenBLAS's process-wide settings.
///
/// The compute threads are `Workers.count`: GEMMs are split over them by `Real.gemm` (each part a
/// single-threaded OpenBLAS call, for results independent of the thread count), so OpenBLAS itself
/// runs single-threaded; LAPACK/ScaLAPACK routines therefore run on one thread per rank. OpenBLAS's
/// own thread count is process-global inside the library; `setOpenBLAS` is the one place that sets
/// it, from `configure` (once, at the start of a command) and from the scopes `with(threads:)` and
/// `singleThreaded`, which restore the previous count when their body returns.
public enum BLASThreads {
    /// Compute threads of the calling scope (`Workers.count`).
    public static var current: Int { Workers.count }

    /// OpenBLAS's own thread count, read back from the library (`openblas_get_num_threads`).
    public static var openBLASThreads: Int { Int(openblas_get_num_threads()) }

    private static func setOpenBLAS(_ threads: Int) { openblas_set_num_threads(Int32(threads)) }

    /// Runs `body` with OpenBLAS single-threaded (whatever `Workers.count` is), restoring
    /// OpenBLAS's previous thread count afterwards.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        let saved = openBLASThreads
        setOpenBLAS(1)
        defer { setOpenBLAS(saved) }
        return try body()
    }

    /// Runs `body` as a process configured for `threads` compute threads runs (`Workers.with(count:)`,
    /// OpenBLAS single-threaded), then restores both: for tests and tools that compare thread
    /// counts within one process.
    public static func with<R>(threads: Int, _ body: () throws -> R) rethrows -> R {
        precondition(threads >= 1, "BLASThreads.with: \(threads) threads")
        return try singleThreaded { try Workers.with(count: threads, body) }
    }

    /// OpenBLAS's build description, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64`.
    public static var config: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c)
    }

    /// Online cores of this machine.
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Cores this process may run on (`Cpus_allowed_list` of `/proc/self/status`), or `nil` if unknown.
    /// Read from `/proc` because glibc's `sched_getaffinity` is not visible to Swift.
    public static var allowedCores: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
            return nil
        }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return cpuListCount(String(line.dropFirst("Cpus_allowed_list:".count)))
        }
        return nil
    }

    /// Number of CPUs in a Linux CPU list such as `"0-3,8,10-11"` (7), or `nil` if malformed.
    public static func cpuListCount(_ list: String) -> Int? {
        var total = 0
        for part in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard let lo = Int(bounds[0]) else { return nil }
            switch bounds.count {
            case 1: total += 1
            case 2:
                guard let hi = Int(bounds[1]), hi >= lo else { return nil }
                total += hi - lo + 1
            default: return nil
            }
        }
        return total > 0 ? total : nil
    }

    /// Decides and applies the thread count for a process sharing its node with `ranksOnNode` ranks:
    /// called once by the executable at the start of a command (tests use `with(threads:)`).
    @discardableResult
    public static func configure(option: Int?, ranksOnNode: Int) -> ThreadDecision {
        let decision = ThreadDecision.decide(
            option: option, environment: ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"],
            coresOnNode: onlineCores, ranksOnNode: ranksOnNode, allowedCores: allowedCores)
        // The executable's process-wide setting (for the rest of the process, like OpenBLAS's own).
        setOpenBLAS(1)
        Workers.configureProcess(count: decision.threads)
        return decision
    }
}
