import ArgumentParser
import Core
import Foundation

/// `ntkscape bench linearized`, `second-order`, `plane` and `hvp` (docs/performance.md; targets: linearised
/// step >= 0.5 of an ordinary step, second-order step >= 0.3, exact HVP <= 2.5 gradients).
extension Bench {
    func runNTKBench() throws {
        let decision = BLASThreads.configure(option: threads, ranksOnNode: 1)
        let models = model.split(separator: ",").map { ModelKind(rawValue: String($0))! }
        let before = Benchmark.sgemmGFLOPs()
        print("sgemm 1024^3: " + String(format: "%.1f GFLOP/s", before) + " with \(decision.threads) thread(s)")
        let data: Data
        if target == .linearized {
            let results = models.map {
                Benchmark.linearized($0, batch: batch ?? 128, input: input, classes: classes, repeats: repeats, sgemm: before,
                                     threads: decision.threads, convolutions: conv)
            }
            print("model          batch  ordinary img/s  linearized img/s   ratio (target >= 0.5)")
            for r in results {
                print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + String(format: "%6d %15.1f %17.1f %7.2f", r.batch, r.ordinaryImagesPerSecond, r.linearizedImagesPerSecond, r.ratio))
            }
            data = try JSONEncoder.pretty.encode(results)
        } else if target == .secondOrder {
            let results = models.map {
                Benchmark.secondOrder($0, batch: batch ?? 128, input: input, classes: classes, repeats: repeats, sgemm: before,
                                      threads: decision.threads, convolutions: conv)
            }
            print("seconds per step, fastest of \(repeats) interleaved repetitions; ratio = ordinary / other")
            print("model          input      classes  parameters  batch  ordinary s  linearized s  second-order s  "
                  + "lin ratio  second-order ratio (target >= 0.3)")
            for r in results {
                print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0) + " " + r.input.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + String(format: "%8d %11d %6d %11.4f %13.4f %15.4f %10.2f %19.2f", r.classes, r.parameters, r.batch,
                               r.ordinarySeconds, r.linearizedSeconds, r.secondOrderSeconds, r.linearizedRatio, r.ratio))
            }
            data = try JSONEncoder.pretty.encode(results)
        } else if target == .plane {
            if examples < 1 { throw ValidationError("--examples must be at least 1") }
            let results = try models.map {
                try Benchmark.plane($0, examples: examples, input: input, classes: classes, repeats: repeats,
                                    threads: decision.threads, convolutions: conv)
            }
            print("model          examples  forward s  point s  point+tangents s  points/s over forwards/s: network  with tangents")
            for r in results {
                print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + String(format: "%8d %10.4f %8.4f %17.4f %34.2f %14.2f", r.examples, r.forwardSeconds, r.pointSeconds,
                               r.pointWithTangentsSeconds, r.pointRatio, r.pointWithTangentsRatio))
            }
            data = try JSONEncoder.pretty.encode(results)
        } else {
            if examples < 1 { throw ValidationError("--examples must be at least 1") }
            if scan {
                for m in models {
                    let rows = Benchmark.hvpStepScan(m, examples: examples, input: input, classes: classes, convolutions: conv)
                    print("\(m.rawValue): Float vs Double finite-difference HVP along one random unit v")
                    print("scheme   rel.step   v'Hv Float   v'Hv Double   |Hv_F-Hv_D|/|Hv_D|   |Hv_D(h)-Hv_D(1e-3)|/|.|")
                    for r in rows {
                        print(r.scheme.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                              + String(format: "%9.0e %12.5f %13.5f %20.2e %26.2e", r.relativeStep, r.rayleighFloat,
                                       r.rayleighDouble, r.floatError, r.stepDependence))
                    }
                    let data = try JSONEncoder.pretty.encode(rows)
                    if let json { try AtomicFile.write(data, to: json) }
                    print("rel.step   lambda_max (Lanczos, central, Float)   iterations  converged  ritz residual")
                    for (h, e) in try Benchmark.lambdaStepScan(m, examples: examples, input: input, classes: classes,
                                                                   convolutions: conv) {
                        print(String(format: "%8.0e %20.5f %26d ", h, e.lambdaMax, e.iterations) + (e.converged ? "       yes" : "        no")
                              + String(format: " %14.2e", e.ritzResidual))
                    }
                }
                return
            }
            let results = models.map {
                Benchmark.hvp($0, examples: examples, input: input, classes: classes, repeats: repeats, sgemm: before,
                              threads: decision.threads, convolutions: conv)
            }
            print("model          examples  gradient s  exact s  exact/grad (target <= 2.5)  central/grad  forward/grad  |cen-exact|/|exact|")
            for r in results {
                print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + String(format: "%8d %11.3f %8.3f %27.2f %13.2f %13.2f %20.2e", r.examples, r.gradientSeconds,
                               r.exactSeconds, r.exactRatio, r.centralRatio, r.forwardRatio, r.centralVsExact))
            }
            data = try JSONEncoder.pretty.encode(results)
        }
        print(String(decoding: data, as: UTF8.self))
        if let json { try AtomicFile.write(data, to: json) }
    }
}
