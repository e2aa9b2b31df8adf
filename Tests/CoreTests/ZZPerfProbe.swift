import Core
import XCTest
import Foundation

final class ZZPerfProbe: XCTestCase {
    func testProbe() {
        let sg = Benchmark.sgemmGFLOPs()
        print("sgemm 1024: \(sg) GFLOP/s")
        for kind in [ModelKind.resnet20, .simplecnn] {
            let net = kind.build(input: Shape(3, 32, 32), classes: 10, as: Float.self)
            var r = TestRandom(1)
            net.initialize { r.normal() }
            for (batch, train) in [(128, true), (1000, false)] {
                let x = Buffer<Float>((0..<(batch * 3072)).map { _ in Float(r.uniform()) })
                let g = Buffer<Float>((0..<(batch * 10)).map { _ in Float(r.uniform()) * 0.01 })
                let t = Benchmark.medianSeconds(repeats: 3) {
                    net.forward(x.pointer, n: batch, mode: train ? .train : .eval)
                    if train { net.zeroGrads(); net.backward(g.pointer, n: batch, mode: .train) }
                }
                let flops = Double(train ? net.trainingFlops : net.forwardFlops) * Double(batch)
                let gf = flops / t / 1e9
                print("\(kind) \(train ? "train" : "eval") batch \(batch): \(Double(batch) / t) img/s, \(gf) GFLOP/s, ratio \(gf / sg)")
            }
        }
    }
}
