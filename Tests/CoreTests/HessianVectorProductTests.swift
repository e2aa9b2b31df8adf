import Core
import TestSupport
import XCTest

extension LayerHarness {
    /// `(dx, dw)` of `backward` at `(x, w, dy)`.
    private func gradients(_ x: [Double], _ w: [Double], _ dy: [Double]) -> [Double] {
        let (dx, dw) = backward(x, w, dy)
        return dx + dw
    }

    /// `backwardTangent` (after `forward`, `jvp` and `backward` at `(x, w, dy)`) along `(tx, tw, tdy)`:
    /// the concatenated tangents of the input and parameter gradients.
    func backwardTangent(_ x: [Double], _ w: [Double], _ dy: [Double], tx: [Double], tw: [Double], tdy: [Double]) -> [Double] {
        _ = jvp(x, w, tx: tx, tw: tw)
        _ = backward(x, w, dy)
        let y = forward(x, w)
        _ = jvp(x, w, tx: tx, tw: tw)
        _ = backward(x, w, dy)
        let tgrads = Buffer<Double>(count: params.count)
        var tdx = [Double](repeating: 0, count: inCount)
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in dy.withUnsafeBufferPointer { gp in
        tx.withUnsafeBufferPointer { txp in tw.withUnsafeBufferPointer { twp in tdy.withUnsafeBufferPointer { tgp in
        tdx.withUnsafeMutableBufferPointer { op in
            let c = LayerContext(params: params.pointer, grads: tgrads.pointer, state: state.pointer, tangent: twp.baseAddress!,
                                 mode: mode)
            layer.backwardTangent(x: xp.baseAddress!, tx: txp.baseAddress!, y: yp.baseAddress!, dy: gp.baseAddress!,
                                  tdy: tgp.baseAddress!, tdx: op.baseAddress!, n: n, c)
        } } } } } } }
        return tdx + tgrads.array
    }

    /// `backwardTangent` against central differences (Double, step `h`) of `backward`'s input and
    /// parameter gradients along a random direction of `(x, w, dy)`. A convolution's gradients are
    /// bilinear in `(w, dy)` and `(x, dy)`, so along the line they are quadratics, whose central
    /// difference is exact for any step: there a large step keeps the rounding of the gradients
    /// (F(4x4, 3x3)'s several times a direct sum's) from being divided by a tiny one.
    func checkBackwardTangent(_ what: String, h: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        var r = TestRandom(31)
        let x = r.array(inCount), w = params.array, dy = r.array(outCount)
        let tx = r.array(inCount), tw = r.array(w.count), tdy = r.array(outCount)
        func moved(_ a: [Double], _ t: [Double], _ s: Double) -> [Double] { zip(a, t).map { $0 + s * $1 } }
        let fd = zip(gradients(moved(x, tx, h), moved(w, tw, h), moved(dy, tdy, h)),
                     gradients(moved(x, tx, -h), moved(w, tw, -h), moved(dy, tdy, -h))).map { ($0 - $1) / (2 * h) }
        assertClose(backwardTangent(x, w, dy, tx: tx, tw: tw, tdy: tdy), fd, Tolerance.finiteDifference,
                    "\(what) backward tangent vs finite differences", file: file, line: line)
    }
}

final class HessianVectorProductTests: XCTestCase {
    private func conv3x3(_ algorithm: Conv2D<Double>.Algorithm, _ shape: Shape, out: Int, bias: Bool,
                         _ layout: ParameterLayout) -> Conv2D<Double> {
        let conv = Conv2D<Double>("c", in: shape, out: out, kernel: 3, stride: 1, padding: 1, bias: bias, layout: layout)
        conv.algorithm = algorithm
        return conv
    }

    func testLayerBackwardTangents() {
        for a: Conv2D<Double>.Algorithm in [.im2col, .winograd] {
            LayerHarness(n: 2) { self.conv3x3(a, Shape(2, 5, 4), out: 3, bias: true, $0) }.checkBackwardTangent("conv 3x3 \(a)", h: 1e-2)
            LayerHarness(n: 3) { self.conv3x3(a, Shape(16, 32, 32), out: 8, bias: false, $0) }
                .checkBackwardTangent("conv 3x3 three chunks \(a)", h: 1e-2)
        }
        LayerHarness(n: 3) { Conv2D<Double>("c", in: Shape(1, 7, 5), out: 2, kernel: 3, stride: 2, padding: 1, bias: false, layout: $0) }
            .checkBackwardTangent("conv 3x3 s2", h: 1e-2)
        LayerHarness(n: 2) { Conv2D<Double>("c", in: Shape(3, 6, 6), out: 4, kernel: 1, stride: 2, padding: 0, bias: true, layout: $0) }
            .checkBackwardTangent("conv 1x1 s2", h: 1e-2)
        LayerHarness(n: 3, mode: .train) { BatchNorm2D<Double>("bn", shape: Shape(2, 7, 5), layout: $0) }
            .checkBackwardTangent("batchnorm train")
        LayerHarness(n: 3, mode: .eval) { BatchNorm2D<Double>("bn", shape: Shape(2, 3, 2), layout: $0) }
            .checkBackwardTangent("batchnorm eval")
        LayerHarness(n: 2) { _ in ReLU<Double>(shape: Shape(3, 2, 2)) }.checkBackwardTangent("relu")
        LayerHarness(n: 2) { _ in MaxPool2D<Double>(shape: Shape(2, 4, 6)) }.checkBackwardTangent("maxpool")
        LayerHarness(n: 2) { _ in GlobalAvgPool<Double>(shape: Shape(3, 3, 2)) }.checkBackwardTangent("gap")
        LayerHarness(n: 2) { _ in Flatten<Double>(shape: Shape(2, 2, 3)) }.checkBackwardTangent("flatten")
        LayerHarness(n: 3) { Linear<Double>("fc", in: 5, out: 4, layout: $0) }.checkBackwardTangent("linear")
    }

    func testResidualBackwardTangents() {
        LayerHarness(n: 2) { LayerTests.residualBlock($0, pre: false, projection: false, bn: true) }
            .checkBackwardTangent("block option A")
        LayerHarness(n: 2, mode: .eval) { LayerTests.residualBlock($0, pre: false, projection: false, bn: true) }
            .checkBackwardTangent("block option A eval")
        LayerHarness(n: 2, mode: .eval) { LayerTests.residualBlock($0, pre: false, projection: true, bn: true) }
            .checkBackwardTangent("block projection eval")
        LayerHarness(n: 3, mode: .train) { LayerTests.residualBlock($0, pre: true, projection: true, bn: true) }
            .checkBackwardTangent("pre-activation block train")
        LayerHarness(n: 2, mode: .eval) { LayerTests.residualBlock($0, pre: true, projection: false, bn: true) }
            .checkBackwardTangent("pre-activation block identity eval")
    }

    /// The loss's logit Hessian product against central differences of its logit gradient.
    func testLossHessianProduct() {
        var r = TestRandom(8)
        let n = 3, c = 4
        let z = r.array(n * c, scale: 2), t = r.array(n * c), labels: [Int32] = [0, 3, 1]
        for loss in LossFunction.allCases {
            func grad(_ z: [Double]) -> [Double] {
                var d = [Double](repeating: 0, count: n * c)
                z.withUnsafeBufferPointer { zp in labels.withUnsafeBufferPointer { lp in d.withUnsafeMutableBufferPointer { dp in
                    _ = loss.evaluate(logits: zp, labels: lp, classes: c, dlogits: dp, gradientDivisor: 5)
                } } }
                return d
            }
            let h = 1e-6
            let fd = zip(grad(zip(z, t).map { $0 + h * $1 }), grad(zip(z, t).map { $0 - h * $1 })).map { ($0 - $1) / (2 * h) }
            var out = [Double](repeating: 0, count: n * c)
            z.withUnsafeBufferPointer { zp in t.withUnsafeBufferPointer { tp in out.withUnsafeMutableBufferPointer { op in
                loss.hessianProduct(logits: zp.baseAddress!, tangent: tp.baseAddress!, n: n, classes: c, divisor: 5, into: op.baseAddress!)
            } } }
            assertClose(out, fd, Tolerance.finiteDifference, "\(loss) logit Hessian product")
        }
    }

    /// Whole networks in Double: the exact product against central differences of the gradient with
    /// a small step (1e-6 along a unit-scale direction, where no ReLU gate of these inputs flips),
    /// and the symmetry `u·(Hv) = v·(Hu)`. Covers every layer kind in context: SimpleCNN (conv, ReLU,
    /// max-pool, GAP, linear), ResNet-20 with BatchNorm (eval mode, option-A shortcuts), WRN-16-4
    /// (pre-activation blocks, projection shortcuts), the MLP; both losses; L2 term.
    func testExactProductMatchesGradientDifferences() throws {
        let cases: [(ModelKind, Shape, LossFunction, Double)] = [
            (.simplecnn_w8, Shape(1, 8, 8), .crossEntropy, 0), (.resnet20, Shape(3, 8, 8), .crossEntropy, 0), (.resnet20, Shape(3, 8, 8), .mse, 1e-3),
            (.wrn16_4, Shape(3, 4, 4), .mse, 0), (.mlp, Shape(1, 3, 3), .crossEntropy, 0), (.resnet20_nobn, Shape(3, 4, 4), .mse, 0),
        ]
        for (kind, shape, loss, wd) in cases {
            let n = 6
            let net = kind.build(input: shape, classes: 3, as: Double.self)
            var ri = TestRandom(11)
            net.initialize { ri.normal() }

            var r = TestRandom(12)
            let x = r.array(n * shape.count), labels = (0..<n).map { Int32($0 % 3) }
            // Running statistics of these inputs (one cumulative train-mode pass), so eval-mode
            // BatchNorm is a non-trivial affine map that keeps the activations O(1).
            for bn in net.batchNorms { bn.momentum = nil; bn.resetRunningStatistics(state: net.state.pointer) }
            x.withUnsafeBufferPointer { _ = net.forward($0.baseAddress!, n: n, mode: .train) }
            let objective = TrainingLoss(network: net, images: x, labels: labels, loss: loss, batchSize: 4, weightDecay: wd, shards: 2)
            let p = net.parameterCount
            let v = r.array(p), u = r.array(p)
            func exact(_ v: [Double]) -> [Double] {
                var hv = [Double](repeating: 0, count: p)
                v.withUnsafeBufferPointer { vp in hv.withUnsafeMutableBufferPointer { objective.exactHessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!) } }
                return hv
            }
            func gradient(_ w: [Double]) -> [Double] {
                var g = [Double](repeating: 0, count: p)
                w.withUnsafeBufferPointer { wp in g.withUnsafeMutableBufferPointer { _ = objective.gradient(at: wp.baseAddress!, into: $0.baseAddress!) } }
                return g
            }
            let w0 = net.params.array
            func difference(_ h: Double) -> [Double] {
                zip(gradient(zip(w0, v).map { $0 + h * $1 }), gradient(zip(w0, v).map { $0 - h * $1 })).map { ($0 - $1) / (2 * h) }
            }
            // The gradient jumps where a step flips a ReLU gate or a max-pool winner (measured: ResNet-20
            // here flips one at h = 1e-6 and none at 1e-7), so the reference is the difference quotient
            // at the largest step that agrees with the one at half that step (no flip inside it).
            guard let fd = [1e-6, 3e-7, 1e-7, 3e-8].lazy.map({ (difference($0), difference($0 / 2)) }).first(where: { a, b in
                zip(a, b).map { abs($0 - $1) }.max()! <= 1e-6 * a.map(abs).max()!
            })?.0 else { XCTFail("\(kind): no step without a gate flip"); continue }
            let hv = exact(v)
            let scale = hv.map(abs).max()!
            assertClose(hv, fd, Tol(rel: 1e-5, abs: 1e-6 * scale), "\(kind) exact Hv vs gradient differences")
            assertClose(dot(u, hv), dot(v, exact(u)), Tol(rel: 1e-10, abs: 0), "\(kind) symmetry u·Hv = v·Hu")
            XCTAssertEqual(net.params.array, w0, "\(kind): the product leaves the weights as they were")
        }
    }
}
