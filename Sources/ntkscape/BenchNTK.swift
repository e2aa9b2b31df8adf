import Core
import Foundation

/// `ntkscape bench ntk`: seconds, GFLOP/s and peak memory of the empirical-NTK Gram per probe size,
/// next to a same-run sgemm (single process, synthetic inputs, Kaiming-initialised network).
///
/// FLOPs counted: the Gram contraction `(mC)^2 * P` (the lower triangle `mC(mC+1)/2` entries at
/// `2P` each, rounded to `(mC)^2 P`) plus the Jacobian passes (per parameter chunk and example: one
/// forward and `C` backward passes, analytic layer FLOPs). `gflops` = both / wall seconds;
/// `contractionGFLOPs` = tile GEMM FLOPs actually run / contraction seconds.
struct NTKBenchResult: Encodable {
    var model: String
    var probe: Int
    var order: Int
    var parameters: Int
    var threads: Int
    var seconds: Double
    var jacobianSeconds: Double
    var contractionSeconds: Double
    var parameterChunks: Int
    var gflops: Double
    var contractionGFLOPs: Double
    var sgemmGFLOPs: Double
    /// `VmHWM` of this process after the run (reset before each probe size where the kernel allows).
    var peakRSSBytes: Int
    var peakResetWorked: Bool
}

enum BenchNTK {
    /// `VmHWM` from `/proc/self/status`, bytes.
    static func peakRSS() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }

    /// Resets `VmHWM` to the current RSS (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0).
    static func resetPeakRSS() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        return (try? h.write(contentsOf: Data("5".utf8))) != nil
    }

    static func run(models: [ModelKind], probes: [Int], input: Shape, classes: Int, threads: Int,
                    memoryGiB: Double, blockSize: Int?, convolutions: ConvolutionChoice, json: String?) throws {
        let before = Benchmark.sgemmGFLOPs()
        var results: [NTKBenchResult] = []
        for kind in models {
            for m in probes {
                let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: m, testCount: 1, channels: input.c,
                                                                  height: input.h, width: input.w, classCount: classes))
                let net = kind.build(input: input, classes: classes, as: Float.self, convolutions: convolutions)
                var stream = RandomStream(seed: 0, role: .initialization)
                net.initialize { stream.normal() }
                let reset = resetPeakRSS()
                let (_, stats) = try GramBuilder.build(network: net, inputs: train.images, communicator: SerialCommunicator(),
                                                       options: NTKGramOptions(memoryGiB: memoryGiB, blockSize: blockSize))
                let n = Double(m * classes), p = Double(net.parameterCount)
                let flops = n * n * p + stats.jacobianFlops
                results.append(NTKBenchResult(
                    model: kind.rawValue, probe: m, order: m * classes, parameters: net.parameterCount, threads: threads,
                    seconds: stats.seconds, jacobianSeconds: stats.jacobianSeconds, contractionSeconds: stats.contractionSeconds,
                    parameterChunks: stats.parameterChunks, gflops: flops / stats.seconds / 1e9,
                    contractionGFLOPs: stats.contractionFlops / max(stats.contractionSeconds, 1e-9) / 1e9,
                    sgemmGFLOPs: 0, peakRSSBytes: peakRSS(), peakResetWorked: reset))
                let r = results.last!
                FileHandle.standardError.write(Data((kind.rawValue + String(format: " m=%d done in %.1f s\n", m, r.seconds)).utf8))
            }
        }
        let after = Benchmark.sgemmGFLOPs()
        let sgemm = max(before, after)
        for i in results.indices { results[i].sgemmGFLOPs = sgemm }
        print("sgemm 1024^3: " + String(format: "%.1f GFLOP/s before, %.1f after", before, after) + " with \(threads) thread(s)")
        print("GFLOP/s counts (mC)^2 P for the lower-triangle contraction + the Jacobian passes; contraction GFLOP/s = tile GEMMs run / their time")
        print("model       m    mC     seconds  jacobian  contract  chunks  GFLOP/s  contr.GFLOP/s  sgemm  peak RSS")
        for r in results {
            print(r.model.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: "%4d %5d %10.1f %9.1f %9.1f %7d %8.1f %14.1f %6.1f  %.2f GB (%.2f GiB)",
                           r.probe, r.order, r.seconds, r.jacobianSeconds, r.contractionSeconds, r.parameterChunks,
                           r.gflops, r.contractionGFLOPs, r.sgemmGFLOPs, Double(r.peakRSSBytes) / 1e9,
                           Double(r.peakRSSBytes) / 1_073_741_824))
        }
        let data = try JSONEncoder.pretty.encode(results)
        print(String(decoding: data, as: UTF8.self))
        if let json { try AtomicFile.write(data, to: json) }
    }
}
