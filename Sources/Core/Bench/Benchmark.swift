import CLinAlg
import Foundation

/// Throughput measurements for `ntkscape bench`. Every figure is reported next to a 1024^3 `sgemm`
/// measured in the same run with the same threads, because these machines are shared and noisy.
public enum Benchmark {
    /// Seconds since an arbitrary origin (monotonic).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Median of `repeats` timings of `body` after one warm-up call.
    public static func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = now(); body(); times.append(now() - t0)
        }
        return times.sorted()[times.count / 2]
    }

    /// GFLOP/s of a row-major `n x n x n` single-precision GEMM (median of `repeats`).
    public static func sgemmGFLOPs(n: Int = 1024, repeats: Int = 5) -> Double {
        let a = Buffer<Float>(count: n * n, value: 0.5), b = Buffer<Float>(count: n * n, value: 0.25)
        let c = Buffer<Float>(count: n * n)
        let t = medianSeconds(repeats: repeats) {
            Float.gemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                       b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
        }
        return 2 * Double(n * n * n) / t / 1e9
    }
}
