import CLinAlg
import Foundation

/// OpenBLAS kernel selection. Debian 12's OpenBLAS 0.3.21 predates recent Intel cores (Sapphire
/// Rapids and later) and falls back to its generic `Prescott` (SSE3) kernels there, which run
/// sgemm ~10x slower (measured here: 25 vs 250 GFLOP/s). The core type can only be chosen through
/// `OPENBLAS_CORETYPE` before the library initialises, so the executable re-executes itself once
/// with the right value. An explicit `OPENBLAS_CORETYPE` is always respected.
public enum BLASKernels {
    /// The kernel family OpenBLAS selected, e.g. `Haswell`, `SkylakeX`, `Zen`, `Prescott`.
    public static var coreName: String {
        guard let c = openblas_get_corename() else { return "unknown" }
        return String(cString: c)
    }

    /// The core type to force, or nil when OpenBLAS's own choice is fine.
    public static func recommendedCoreType(detected: String, cpuFlags: Set<String>) -> String? {
        guard detected.lowercased() == "prescott", cpuFlags.isSuperset(of: ["avx2", "fma"]) else { return nil }
        return cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"]) ? "SkylakeX" : "Haswell"
    }

    /// CPU feature flags of the first processor in `/proc/cpuinfo`.
    public static func cpuFlags() -> Set<String> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes the process with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to generic
    /// kernels on a CPU with AVX2/AVX-512. Returns normally when nothing needs to change.
    public static func reexecWithOptimizedKernelsIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["NTKSCAPE_NO_REEXEC"] == nil,
              let core = recommendedCoreType(detected: coreName, cpuFlags: cpuFlags()) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("NTKSCAPE_NO_REEXEC", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with the generic kernels.
    }
}
