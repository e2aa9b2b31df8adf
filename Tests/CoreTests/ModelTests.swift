import Core
import TestSupport
import XCTest

final class ModelTests: XCTestCase {
    /// Parameter counts against published / hand-summed values (CIFAR input 3x32x32, 10 classes):
    /// ResNet-20 269,722 with option-A shortcuts (He et al. 2016 report 0.27M; the common PyTorch port
    /// prints 269,722 — option-B projections would add 16*32 + 64 + 32*64 + 128 = 2,752);
    /// WRN-16-4 2,748,890 (sum over the layers of Zagoruyko & Komodakis' table, checked by hand);
    /// SimpleCNN 288,298 (Fort et al. D.1 layer sizes: 896+9248+18496+36928+73856+147584+1290).
    func testParameterCounts() {
        let cifar = Shape(3, 32, 32)
        XCTAssertEqual(ModelKind.resnet20.build(input: cifar, classes: 10, as: Float.self).parameterCount, 269_722)
        XCTAssertEqual(ModelKind.wrn16_4.build(input: cifar, classes: 10, as: Float.self).parameterCount, 2_748_890)
        XCTAssertEqual(ModelKind.simplecnn.build(input: cifar, classes: 10, as: Float.self).parameterCount, 288_298)
        // Half and quarter width, layer by layer (9 c_in c_out + c_out per conv, then the classifier).
        XCTAssertEqual(ModelKind.simplecnn_w16.build(input: cifar, classes: 10, as: Float.self).parameterCount,
                       448 + 2320 + 4640 + 9248 + 18496 + 36928 + 650)
        XCTAssertEqual(ModelKind.simplecnn_w8.build(input: Shape(1, 28, 28), classes: 10, as: Float.self).parameterCount,
                       80 + 584 + 1168 + 2320 + 4640 + 9248 + 330)
        // MLP on 28x28: 784*512+512 + 512*256+256 + 256*10+10
        XCTAssertEqual(ModelKind.mlp.build(input: Shape(1, 28, 28), classes: 10, as: Float.self).parameterCount,
                       784 * 512 + 512 + 512 * 256 + 256 + 2570)
        // BatchNorm state: running mean + var for every BN channel of ResNet-20: 2 * (16 + 18*16... )
        let resnet = ModelKind.resnet20.build(input: cifar, classes: 10, as: Float.self)
        XCTAssertEqual(resnet.layout.stateCount, 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64))
    }

    /// Kaiming init: weight std sqrt(2/fan_in) measured on the largest ResNet-20 tensor; biases 0, BN 1/0.
    func testKaimingInitialisation() {
        let net = ModelKind.resnet20.build(input: Shape(3, 32, 32), classes: 10, as: Float.self)
        var r = TestRandom(5)
        net.initialize { r.normal() }
        let v = net.layout.parameter(named: "layer3.2.conv2.weight")!
        let values = (v.range).map { Double(net.params[$0]) }
        let std = (values.map { $0 * $0 }.reduce(0, +) / Double(values.count)).squareRoot()
        assertClose(std, (2.0 / Double(64 * 9)).squareRoot(), Tol(rel: 0.02, abs: 0), "Kaiming std")
        let bnw = net.layout.parameter(named: "bn1.weight")!, bnb = net.layout.parameter(named: "bn1.bias")!
        XCTAssertEqual(bnw.range.map { net.params[$0] }, Array(repeating: 1, count: 16))
        XCTAssertEqual(bnb.range.map { net.params[$0] }, Array(repeating: 0, count: 16))
        let bias = net.layout.parameter(named: "linear.bias")!
        XCTAssertEqual(bias.range.map { net.params[$0] }, Array(repeating: 0, count: 10))
    }

    /// Whole-model gradient of `<u, logits>` against central differences along random directions
    /// and on individual coordinates of every tensor, in Double.
    private func checkModel(_ kind: ModelKind, input: Shape, classes: Int, n: Int, mode: LayerContext<Double>.Mode,
                            file: StaticString = #filePath, line: UInt = #line) {
        let net = kind.build(input: input, classes: classes, as: Double.self)
        var r = TestRandom(7)
        net.initialize { r.normal() }
        // Non-trivial BN parameters and running statistics.
        for v in net.layout.parameters where v.shape.count == 1 { for i in v.range { net.params[i] = 1 + 0.3 * r.uniform() } }
        for v in net.layout.state { for i in v.range { net.state[i] = v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : 0.2 * r.uniform() } }
        let x = r.array(n * input.count), u = r.array(n * classes)
        func objective() -> Double {
            let out = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: n, mode: mode) }
            return (0..<(n * classes)).reduce(0) { $0 + u[$1] * out[$1] }
        }
        _ = objective()
        net.zeroGrads()
        var dx = [Double](repeating: 0, count: x.count)
        u.withUnsafeBufferPointer { up in dx.withUnsafeMutableBufferPointer { net.backward(up.baseAddress!, n: n, mode: mode, inputGradient: $0.baseAddress!) } }
        let grad = net.grads.array, w0 = net.params.array
        let h = 1e-6
        // Random directions over all parameters.
        // Unit directions keep the perturbation of every pre-activation far below the distance to a
        // ReLU kink, where central differences would be meaningless.
        for _ in 0..<3 {
            var v = r.array(w0.count)
            let norm = dot(v, v).squareRoot()
            v = v.map { $0 / norm }
            net.params.copy(from: zip(w0, v).map { $0 + h * $1 }); let fp = objective()
            net.params.copy(from: zip(w0, v).map { $0 - h * $1 }); let fm = objective()
            assertClose(dot(grad, v), (fp - fm) / (2 * h), Tolerance.finiteDifference, "\(kind) directional derivative",
                        file: file, line: line)
        }
        // Two coordinates of every parameter tensor (first and last element).
        var got = [Double](), want = [Double]()
        for view in net.layout.parameters {
            for i in [view.offset, view.offset + view.count - 1] {
                var w = w0; w[i] += h; net.params.copy(from: w); let fp = objective()
                w[i] -= 2 * h; net.params.copy(from: w); let fm = objective()
                got.append(grad[i]); want.append((fp - fm) / (2 * h))
            }
        }
        // A coordinate whose gradient is ~0 shows the objective's rounding noise: a few ulps of its
        // terms' magnitude `sum |u_i f_i|` per evaluation, divided by `2h` (~1e-8 here); allow 16.
        let out = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: n, mode: mode) }
        let noise = 16 * (0..<(n * classes)).reduce(0) { $0 + abs(u[$1] * out[$1]) }.ulp / (2 * h)
        assertClose(got, want, Tol(rel: Tolerance.finiteDifference.rel, abs: max(Tolerance.finiteDifference.abs, noise)),
                    "\(kind) per-tensor coordinates", file: file, line: line)
        net.params.copy(from: w0)
        // Input gradient along a random direction.
        let t = r.array(x.count)
        var xs = x
        func at(_ s: Double) -> Double {
            xs = zip(x, t).map { $0 + s * $1 }
            let out = xs.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: n, mode: mode) }
            return (0..<(n * classes)).reduce(0) { $0 + u[$1] * out[$1] }
        }
        assertClose(dot(dx, t), (at(h) - at(-h)) / (2 * h), Tolerance.finiteDifference, "\(kind) input gradient",
                    file: file, line: line)
        // JVP equals the gradient contracted with the same tangents (adjoint identity, whole network).
        let tw = r.array(w0.count)
        _ = objective()
        let jv = x.withUnsafeBufferPointer { _ in
            t.withUnsafeBufferPointer { tp in tw.withUnsafeBufferPointer { wp in
                Array(UnsafeBufferPointer(start: net.jvp(inputTangent: tp.baseAddress!, parameterTangent: wp.baseAddress!, n: n, mode: mode),
                                          count: n * classes))
            } }
        }
        assertClose(dot(u, jv), dot(dx, t) + dot(grad, tw), Tolerance.double, "\(kind) JVP adjoint identity", file: file, line: line)
    }

    func testResNet20GradientTrainMode() { checkModel(.resnet20, input: Shape(3, 8, 8), classes: 4, n: 3, mode: .train) }
    func testResNet20GradientEvalMode() { checkModel(.resnet20, input: Shape(3, 8, 8), classes: 4, n: 2, mode: .eval) }
    func testResNet20NoBNGradient() { checkModel(.resnet20_nobn, input: Shape(3, 8, 8), classes: 3, n: 2, mode: .train) }
    func testSimpleCNNGradient() { checkModel(.simplecnn, input: Shape(3, 8, 8), classes: 5, n: 2, mode: .train) }
    func testWRNGradientEvalMode() { checkModel(.wrn16_4, input: Shape(3, 4, 4), classes: 3, n: 2, mode: .eval) }
    func testMLPGradient() { checkModel(.mlp, input: Shape(1, 4, 3), classes: 3, n: 3, mode: .train) }
}

final class BLASKernelTests: XCTestCase {
    /// Only the generic fallback on an AVX2 machine is overridden; AVX-512 gets SkylakeX.
    func testRecommendedCoreType() {
        let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
        let avx512 = avx2.union(["avx512f", "avx512bw", "avx512dq", "avx512vl"])
        XCTAssertEqual(BLASKernels.recommendedCoreType(detected: "Prescott", cpuFlags: avx2), "Haswell")
        XCTAssertEqual(BLASKernels.recommendedCoreType(detected: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertNil(BLASKernels.recommendedCoreType(detected: "Zen", cpuFlags: avx2))
        XCTAssertNil(BLASKernels.recommendedCoreType(detected: "Prescott", cpuFlags: ["sse3"]))
    }
}

final class VectorOpsTests: XCTestCase {
    /// Against hand-computed values on small integer vectors.
    func testVectorOperations() {
        let a: [Float] = [1, 2, 3], b: [Float] = [4, -2, 0]
        XCTAssertEqual(Vec.dot(a, b), 0)                     // 4 - 4 + 0
        XCTAssertEqual(Vec.norm(a), (14.0).squareRoot())
        XCTAssertEqual(Vec.distance(a, b), (9.0 + 16 + 9).squareRoot())
        var y: [Float] = [1, 1, 1]
        a.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { Vec.axpy(2, x, $0) } }
        XCTAssertEqual(y, [3, 5, 7])
        var out = [Float](repeating: 0, count: 3)
        for (alpha, want) in [(Float(0), a), (1, b), (0.5, [2.5, 0, 1.5] as [Float])] {
            a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { z in out.withUnsafeMutableBufferPointer {
                Vec.interpolate(x.baseAddress!, z.baseAddress!, alpha: alpha, into: $0.baseAddress!, count: 3)
            } } }
            XCTAssertEqual(out, want, "alpha \(alpha)")
        }
    }
}
