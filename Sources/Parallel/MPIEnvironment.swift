import Core
import Foundation
import MPIShim

/// Process-wide MPI state: initialise once, finalise once at exit, abort, and report failures.
///
/// `MPI_Init` may run only once per process and never after `MPI_Finalize`, so initialisation is a
/// lazily evaluated global (thread-safe `swift_once`), and finalisation is an `atexit` handler
/// registered by the same initialiser. A process started without `mpirun` becomes a 1-rank world.
public enum MPIEnvironment {
    /// Thread support MPI granted (`MPI_THREAD_FUNNELED` requested: only the main thread calls MPI,
    /// while OpenBLAS threads compute).
    public static var threadLevel: Int { Int(initialisation) }

    /// Initialises MPI if nobody has; idempotent and cheap after the first call.
    public static func initialize() { _ = initialisation }

    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    private static let initialisation: Int32 = {
        if isFinalized {
            fatal("MPI was already finalised in this process; it cannot be initialised again")
        }
        var provided: Int32 = 0
        if isInitialized {
            check(MPI_Query_thread(&provided), "MPI_Query_thread")
        } else {
            check(MPI_Init_thread(nil, nil, ntk_thread_funneled(), &provided), "MPI_Init_thread")
        }
        // Return codes instead of MPI's default abort-on-error, so failures name the failing call.
        // Communicators derived from these inherit the handler.
        check(MPI_Comm_set_errhandler(ntk_comm_world(), ntk_errors_return()),
              "MPI_Comm_set_errhandler(MPI_COMM_WORLD)")
        check(MPI_Comm_set_errhandler(ntk_comm_self(), ntk_errors_return()),
              "MPI_Comm_set_errhandler(MPI_COMM_SELF)")
        atexit { MPIEnvironment.finalizeIfNeeded() }
        return provided
    }()

    /// Finalises MPI unless it never started or already ended. Runs at exit; collective over the world.
    public static func finalizeIfNeeded() {
        guard isInitialized, !isFinalized else { return }
        fflush(stdout)
        let rc = MPI_Finalize()
        if rc != MPI_SUCCESS {
            fputs("ntkscape: MPI_Finalize failed: \(errorString(rc))\n", stderr)
        }
    }

    /// Terminates every process of the job with exit status `code` (`MPI_Abort` on the world).
    public static func abort(_ code: Int32 = 1) -> Never {
        fflush(stdout)
        fflush(stderr)
        if isInitialized && !isFinalized {
            MPI_Abort(ntk_comm_world(), code)
        }
        exit(code)
    }

    /// MPI's description of error code `code` (`MPI_Error_string`).
    public static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(ntk_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else {
            return "unknown MPI error code \(code)"
        }
        return String(cString: buffer)
    }

    /// The message reported when `call` returns `code`.
    public static func failureMessage(call: String, code: Int32) -> String {
        "MPI call \(call) failed with code \(code): \(errorString(code))"
    }

    /// Aborts the job if `code` is not `MPI_SUCCESS`, naming `call` and MPI's error string.
    @inline(__always)
    public static func check(_ code: Int32, _ call: @autoclosure () -> String) {
        if code != MPI_SUCCESS { fatal(failureMessage(call: call(), code: code)) }
    }

    /// Reports `message` on stderr with this process's world rank, then aborts the job.
    public static func fatal(_ message: String) -> Never {
        var rank: Int32 = -1
        if isInitialized && !isFinalized { MPI_Comm_rank(ntk_comm_world(), &rank) }
        fputs("ntkscape[rank \(rank)]: \(message)\n", stderr)
        abort(1)
    }

    /// The MPI library's identification, e.g. `Open MPI v4.1.4, package: Debian OpenMPI, ...`.
    /// (`MPI_Get_library_version` may be called before initialisation.)
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(ntk_max_library_version_string()) + 1)
        var length: Int32 = 0
        check(MPI_Get_library_version(&buffer, &length), "MPI_Get_library_version")
        return String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// This processor's name (`MPI_Get_processor_name`), usually the host name.
    public static var processorName: String {
        initialize()
        var buffer = [CChar](repeating: 0, count: Int(ntk_max_processor_name()) + 1)
        var length: Int32 = 0
        check(MPI_Get_processor_name(&buffer, &length), "MPI_Get_processor_name")
        return String(cString: buffer)
    }
}
