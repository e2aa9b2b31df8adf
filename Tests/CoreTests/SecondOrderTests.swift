import Core
import Foundation
import TestSupport
import XCTest

/// `(body)` with the array's base address, or nil for a nil array.
private func withOptional<R>(_ a: [Double]?, _ body: (UnsafePointer<Double>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// `(y(h) - 2 y(0) + y(-h)) / h²`, elementwise.
private func secondDifference(_ plus: [Double], _ zero: [Double], _ minus: [Double], _ h: Double) -> [Double] {
    (0..<zero.count).map { (plus[$0] - 2 * zero[$0] + minus[$0]) / (h * h) }
}

extension LayerHarness {
    /// `(ty, tty)` of `jvp2` after a forward at `(x, w)`, along `tx`, `ttx`, `tw` (nil = absent).
    func jvp2(_ x: [Double], _ w: [Double], tx: [Double]?, ttx: [Double]?, tw: [Double]?) -> (ty: [Double], tty: [Double]) {
        let y = forward(x, w)
        var ty = [Double](repeating: 0, count: outCount), tty = [Double](repeating: 0, count: outCount)
        withOptional(tx) { txp in withOptional(ttx) { ttxp in withOptional(tw) { twp in
            x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in
                ty.withUnsafeMutableBufferPointer { a in tty.withUnsafeMutableBufferPointer { b in
                    layer.jvp2(x: xp.baseAddress!, y: yp.baseAddress!, tx: txp, ttx: ttxp, ty: a.baseAddress!, tty: b.baseAddress!,
                               n: n, ctx(tangent: twp))
                } }
            } }
        } } }
        return (ty, tty)
    }

    /// `jvp2` along the curve `x(ε) = x + ε tx + ε²/2 ttx`, `w(ε) = w + ε tw` (Double): `tty` against the
    /// central second difference `(y(h) - 2 y(0) + y(-h)) / h²` of `forward` (exact up to rounding for
    /// a layer bilinear in `(w, x)`, whose `y(ε)` is a cubic; O(h²) otherwise), and `ty` against
    /// `jvp` (to rounding: a fused convolution sums its products in another order); for every pattern
    /// of absent tangents (an absent one is zero).
    func checkSecondTangent(_ what: String, h: Double = 1e-4, file: StaticString = #filePath, line: UInt = #line) {
        var r = TestRandom(41)
        let x = r.array(inCount), w = params.array
        let txAll = r.array(inCount), ttxAll = r.array(inCount), twAll = r.array(w.count)
        for (hasTx, hasTtx, hasTw) in [(true, true, true), (false, false, true), (true, false, true), (false, true, false),
                                       (true, true, false), (false, false, false)] {
            let tx = hasTx ? txAll : nil, ttx = hasTtx ? ttxAll : nil, tw = hasTw ? twAll : nil
            func y(_ e: Double) -> [Double] {
                let xe = (0..<inCount).map { x[$0] + e * (tx?[$0] ?? 0) + e * e / 2 * (ttx?[$0] ?? 0) }
                return forward(xe, (0..<w.count).map { w[$0] + e * (tw?[$0] ?? 0) })
            }
            let y0 = y(0), fd = secondDifference(y(h), y0, y(-h), h)
            let (ty, tty) = jvp2(x, w, tx: tx, ttx: ttx, tw: tw)
            let scale = max(1, y0.map(abs).max()!)
            let label = "\(what) [tx \(hasTx) ttx \(hasTtx) tw \(hasTw)]"
            assertClose(tty, fd, Tol(rel: 1e-6, abs: 1e-6 * scale), "\(label) second tangent vs second difference", file: file, line: line)
            let first = jvp(x, w, tx: tx ?? [Double](repeating: 0, count: inCount), tw: tw ?? [Double](repeating: 0, count: w.count))
            assertClose(ty, first, Tolerance.double, "\(label): jvp2's first tangent is jvp's", file: file, line: line)
        }
        params.copy(from: w)
    }
}

/// The second-order Taylor model (docs/linearized.md, "Second-order model"; Fort et al. Fig. 18):
/// second directional derivatives of every layer and network, the model's Taylor accuracy, its loss
/// gradient, and its training with the generic trainer. Every test compares with a reference
/// computed another way (finite differences in Double, the network itself, the previous trainer).
final class SecondOrderTests: XCTestCase {
    private func conv(_ algorithm: Conv2D<Double>.Algorithm, _ shape: Shape, out: Int, kernel: Int = 3, stride: Int = 1,
                      padding: Int = 1, bias: Bool, _ layout: ParameterLayout) -> Conv2D<Double> {
        let c = Conv2D<Double>("c", in: shape, out: out, kernel: kernel, stride: stride, padding: padding, bias: bias, layout: layout)
        c.algorithm = algorithm
        return c
    }

    // MARK: Layers

    /// Every convolution path: Winograd and im2col for 3x3 stride-1 padding-1 (one chunk and three),
    /// the same-size 1x1 path, 3x3 and 1x1 with stride 2, with and without bias. The second
    /// difference's step is large, so the forward passes' rounding (F(4x4, 3x3)'s several times a
    /// direct sum's) is divided by h² = 1e-4 rather than 1e-8.
    func testConvolutionSecondTangents() {
        let h = 1e-2   // a convolution is bilinear in (w, x): its y(ε) is a cubic, whose second difference is exact for any h
        for a: Conv2D<Double>.Algorithm in [.im2col, .winograd] {
            LayerHarness(n: 2) { self.conv(a, Shape(2, 5, 4), out: 3, bias: true, $0) }.checkSecondTangent("conv 3x3 \(a)", h: h)
            LayerHarness(n: 3) { self.conv(a, Shape(16, 32, 32), out: 4, bias: false, $0) }.checkSecondTangent("conv 3x3 three chunks \(a)", h: h)
        }
        LayerHarness(n: 2) { self.conv(.automatic, Shape(2, 16, 16), out: 3, bias: true, $0) }.checkSecondTangent("conv 3x3 automatic", h: h)
        LayerHarness(n: 2) { self.conv(.im2col, Shape(3, 5, 5), out: 4, kernel: 1, padding: 0, bias: true, $0) }
            .checkSecondTangent("conv 1x1 s1", h: h)
        LayerHarness(n: 3) { self.conv(.im2col, Shape(1, 7, 5), out: 2, stride: 2, bias: false, $0) }.checkSecondTangent("conv 3x3 s2", h: h)
        LayerHarness(n: 2) { self.conv(.im2col, Shape(3, 6, 6), out: 4, kernel: 1, stride: 2, padding: 0, bias: true, $0) }
            .checkSecondTangent("conv 1x1 s2", h: h)
    }

    func testOtherLayerSecondTangents() {
        LayerHarness(n: 3, mode: .eval) { BatchNorm2D<Double>("bn", shape: Shape(2, 7, 5), layout: $0) }.checkSecondTangent("batchnorm eval")
        LayerHarness(n: 3) { Linear<Double>("fc", in: 5, out: 4, layout: $0) }.checkSecondTangent("linear")
        LayerHarness(n: 2) { _ in ReLU<Double>(shape: Shape(3, 5, 4)) }.checkSecondTangent("relu")
        LayerHarness(n: 2) { _ in MaxPool2D<Double>(shape: Shape(2, 4, 6)) }.checkSecondTangent("maxpool")
        LayerHarness(n: 2) { _ in GlobalAvgPool<Double>(shape: Shape(3, 3, 2)) }.checkSecondTangent("global average pool")
        LayerHarness(n: 2) { _ in Flatten<Double>(shape: Shape(2, 2, 3)) }.checkSecondTangent("flatten")
    }

    /// Post-activation blocks with option-A and projection shortcuts (with and without BatchNorm) and
    /// pre-activation blocks with identity and projection shortcuts, BatchNorm in inference mode.
    func testResidualSecondTangents() {
        for (pre, projection, bn) in [(false, false, true), (false, true, true), (false, false, false), (true, true, true),
                                      (true, false, true)] {
            LayerHarness(n: 2, mode: .eval) { LayerTests.residualBlock($0, pre: pre, projection: projection, bn: bn) }
                .checkSecondTangent("block pre \(pre) projection \(projection) bn \(bn)")
        }
    }

    /// A `LayerChain` (conv, BatchNorm, ReLU, max-pool, 1x1 strided conv, flatten, linear) on its own:
    /// its second output tangent against the second difference of its forward along `w + εv`, its
    /// first against `jvp`.
    func testLayerChainSecondTangent() {
        let layout = ParameterLayout(), input = Shape(2, 6, 6), n = 2
        let c1 = Conv2D<Double>("c1", in: input, out: 3, kernel: 3, padding: 1, bias: true, layout: layout)
        let bn = BatchNorm2D<Double>("bn", shape: c1.outShape, layout: layout)
        let relu = ReLU<Double>(shape: c1.outShape), pool = MaxPool2D<Double>(shape: c1.outShape)
        let c2 = Conv2D<Double>("c2", in: pool.outShape, out: 4, kernel: 1, stride: 2, padding: 0, bias: false, layout: layout)
        let flat = Flatten<Double>(shape: c2.outShape)
        let fc = Linear<Double>("fc", in: flat.outShape.count, out: 3, layout: layout)
        let chain = LayerChain<Double>([c1, bn, relu, pool, c2, flat, fc], inShape: input)
        chain.prepare(maxBatch: n)
        var r = TestRandom(3)
        let params = Buffer<Double>(r.array(layout.parameterCount)), grads = Buffer<Double>(count: layout.parameterCount)
        let state = Buffer<Double>(count: layout.stateCount)
        for v in layout.state { for i in v.range { state[i] = v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : r.uniform() } }
        let x = r.array(n * input.count), v = r.array(layout.parameterCount), w = params.array
        let out = n * 3
        func forward(_ e: Double) -> [Double] {
            params.copy(from: zip(w, v).map { $0 + e * $1 })
            let ctx = LayerContext(params: params.pointer, grads: grads.pointer, state: state.pointer, mode: .eval)
            return x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: chain.forward($0.baseAddress!, n: n, ctx), count: out)) }
        }
        let h = 1e-4, y0 = forward(0), fd = secondDifference(forward(h), y0, forward(-h), h)
        _ = forward(0)
        let (first, second): ([Double], [Double]) = v.withUnsafeBufferPointer { vp in
            let ctx = LayerContext(params: params.pointer, grads: grads.pointer, state: state.pointer, tangent: vp.baseAddress!, mode: .eval)
            let (a, b) = x.withUnsafeBufferPointer { chain.jvp2(x: $0.baseAddress!, tx: nil, ttx: nil, n: n, ctx) }
            let pair = (Array(UnsafeBufferPointer(start: a, count: out)), Array(UnsafeBufferPointer(start: b, count: out)))
            let t = x.withUnsafeBufferPointer { chain.jvp(x: $0.baseAddress!, tx: nil, n: n, ctx) }
            assertClose(pair.0, Array(UnsafeBufferPointer(start: t, count: out)), Tolerance.double, "jvp2's first tangent is jvp's")
            return pair
        }
        assertClose(second, fd, Tol(rel: 1e-6, abs: 1e-6 * max(1, y0.map(abs).max()!)), "chain second tangent vs second difference")
        XCTAssertFalse(first.allSatisfy { $0 == 0 })
    }

    // MARK: Networks

    /// A Kaiming-initialised Double network whose BatchNorm running statistics are those of `x`
    /// (one cumulative train-mode pass), so inference-mode BatchNorm is a non-trivial affine map.
    private func network(_ kind: ModelKind, _ input: Shape, classes: Int = 3, x: [Double], seed: UInt64) -> Network<Double> {
        let net = kind.build(input: input, classes: classes, as: Double.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        for bn in net.batchNorms { bn.momentum = nil; bn.resetRunningStatistics(state: net.state.pointer) }
        x.withUnsafeBufferPointer { _ = net.forward($0.baseAddress!, n: x.count / input.count, mode: .train) }
        return net
    }

    /// A Kaiming-initialised Double network with non-trivial BatchNorm parameters (γ, β in 1 ± 0.3)
    /// and running statistics (means in ±0.2, variances in 1 ± 0.5), independent of any data.
    private func networkWithStatistics(_ kind: ModelKind, _ input: Shape, classes: Int = 3, seed: UInt64) -> Network<Double> {
        let net = kind.build(input: input, classes: classes, as: Double.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        for v in net.layout.parameters where v.shape.count == 1 { for i in v.range { net.params[i] = 1 + 0.3 * r.uniform() } }
        for v in net.layout.state { for i in v.range { net.state[i] = v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : 0.2 * r.uniform() } }
        return net
    }

    private func logits(_ net: Network<Double>, _ x: [Double], at w: [Double]) -> [Double] {
        net.params.copy(from: w)
        let n = x.count / net.inputShape.count
        return x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: net.forward($0.baseAddress!, n: n, mode: .eval), count: n * net.classes)) }
    }

    /// `Network.jvp2` of whole networks — SimpleCNN (conv, ReLU, max-pool, GAP, linear), ResNet-20
    /// with BatchNorm (option-A shortcuts), ResNet-20 without BatchNorm, WRN-16-4 (pre-activation
    /// blocks, projection shortcuts), the MLP and the linear model — against the central second
    /// difference `(f(w+hv) - 2f(w) + f(w-hv)) / h²` of the network in Double along a unit direction;
    /// the first tangent against `jvp`. The network is piecewise polynomial along the line (a ReLU
    /// gate or max-pool winner flips at some distance), so the step is the largest of 0.1, 0.05, ...
    /// whose difference agrees with that of half the step (no flip inside, truncation and rounding
    /// small); measured, the best steps agree with `jvp2` to 1e-8 - 1e-7 relative.
    func testNetworkSecondDerivativesMatchFiniteDifferences() {
        let cases: [(ModelKind, Shape, Int)] = [(.simplecnn_w8, Shape(1, 8, 8), 3), (.resnet20, Shape(3, 4, 4), 4),
                                                (.resnet20_nobn, Shape(3, 4, 4), 3), (.wrn16_4, Shape(3, 4, 4), 3),
                                                (.mlp, Shape(1, 3, 3), 3), (.linear, Shape(2, 3, 3), 3)]
        for (kind, shape, n) in cases {
            var r = TestRandom(21)
            let x = r.array(n * shape.count)
            let net = network(kind, shape, x: x, seed: 22)
            let w0 = net.params.array
            var v = r.array(w0.count)
            let norm = dot(v, v).squareRoot()
            v = v.map { $0 / norm }
            let f0 = logits(net, x, at: w0)
            func second(_ h: Double) -> [Double] {
                secondDifference(logits(net, x, at: zip(w0, v).map { $0 + h * $1 }), f0, logits(net, x, at: zip(w0, v).map { $0 - h * $1 }), h)
            }
            _ = logits(net, x, at: w0)
            let (first, exact): ([Double], [Double]) = v.withUnsafeBufferPointer { vp in
                let (a, b) = net.jvp2(parameterTangent: vp.baseAddress!, n: n, mode: .eval)
                let pair = (Array(UnsafeBufferPointer(start: a, count: n * 3)), Array(UnsafeBufferPointer(start: b, count: n * 3)))
                let t = net.jvp(inputTangent: nil, parameterTangent: vp.baseAddress!, n: n, mode: .eval)
                assertClose(pair.0, Array(UnsafeBufferPointer(start: t, count: n * 3)), Tolerance.double,
                            "\(kind): jvp2's first tangent is jvp's")
                return pair
            }
            XCTAssertFalse(first.allSatisfy { $0 == 0 }, "\(kind)")
            if kind == .linear {
                XCTAssertEqual(exact, [Double](repeating: 0, count: n * 3), "a linear model has no curvature")
                continue
            }
            let scale = exact.map(abs).max()!
            var h = 0.1, fd: [Double]?, previous = second(h), gaps: [Double] = []
            while h > 1e-6 && fd == nil {
                let next = second(h / 2)
                gaps.append(zip(previous, next).map { abs($0 - $1) }.max()!)
                if gaps.last! <= 1e-5 * scale { fd = previous }
                (h, previous) = (h / 2, next)
            }
            guard let fd else { XCTFail("\(kind): no step without a gate flip (gaps \(gaps), scale \(scale))"); continue }
            assertClose(exact, fd, Tol(rel: 1e-5, abs: 1e-5 * scale), "\(kind) f''[v, v] vs second difference at step \(h * 2)")
        }
    }

    // MARK: The model

    /// At `w = w0` the second-order model is the network in inference mode, bit for bit.
    func testAtOriginEqualsNetwork() {
        let input = Shape(3, 8, 8), n = 4
        var r = TestRandom(5)
        let x = r.array(n * input.count)
        let net = network(.resnet20, input, x: x, seed: 6)
        let model = SecondOrderModel(around: net)
        let f2 = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.logits($0.baseAddress!, n: n), count: n * 3)) }
        XCTAssertEqual(f2, logits(net, x, at: net.params.array))
    }

    /// The errors of the Taylor models against the network itself along `w0 + ε d` (Double, BatchNorm
    /// in inference mode): the second-order model's shrinks as `ε³`, the linearised model's as `ε²`
    /// (least-squares slopes of log error against log ε over ε = 1e-1, 1e-2, 1e-3, within ±0.3). `d`
    /// is scaled (halved from a start) until no ReLU gate differs from `w0`'s at any of the ε, so the
    /// network is one polynomial along the segment and the orders are those of the Taylor remainders.
    /// ResNet-20 with BatchNorm (convolutions, option-A residual blocks, global average pooling) and
    /// the MLP; small inputs (ResNet-20: one 3x4x4 image, 2944 ReLU units), so that a direction without
    /// gate flips leaves third-order errors far above rounding (measured: ResNet-20 second-order errors
    /// 5e-8, 5e-11, 6e-14, logits ~20; slopes 2.93 and 2.00).
    func testTaylorErrorsShrinkAsCubeAndSquare() {
        let eps = [1e-1, 1e-2, 1e-3]
        for (kind, shape, n) in [(ModelKind.resnet20, Shape(3, 4, 4), 1), (.mlp, Shape(1, 4, 4), 2)] {
            var r = TestRandom(31)
            let x = r.array(n * shape.count)
            let net = networkWithStatistics(kind, shape, seed: 32)
            let w0 = net.params.array, direction = (0..<w0.count).map { _ in r.normal() }
            let second = SecondOrderModel(around: net), linear = LinearizedModel(around: net)
            func gates(_ w: [Double]) -> [Bool] {
                _ = logits(net, x, at: w)
                return net.reluLayers.flatMap { relu in (0..<(relu.lastBatch * relu.inShape.count)).map { relu.lastInput![$0] > 0 } }
            }
            let origin = gates(w0)
            var scale = 0.1, d: [Double] = []
            repeat {
                scale /= 2
                d = direction.map { scale * $0 }
            } while eps.contains { e in gates(zip(w0, d).map { $0 + e * $1 }) != origin } && scale > 1e-12
            var errors: [(linear: Double, second: Double)] = []
            for e in eps {
                let w = zip(w0, d).map { $0 + e * $1 }
                let f = logits(net, x, at: w)
                second.weights.copy(from: w)
                linear.weights.copy(from: w)
                let f2 = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: second.logits($0.baseAddress!, n: n), count: f.count)) }
                let f1 = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: linear.logits($0.baseAddress!, n: n), count: f.count)) }
                errors.append((zip(f1, f).map { abs($0 - $1) }.max()!, zip(f2, f).map { abs($0 - $1) }.max()!))
            }
            func slope(_ ys: [Double]) -> Double {
                let lx = eps.map(log10), ly = ys.map(log10)
                let mx = lx.reduce(0, +) / 3, my = ly.reduce(0, +) / 3
                return zip(lx, ly).map { ($0 - mx) * ($1 - my) }.reduce(0, +) / lx.map { ($0 - mx) * ($0 - mx) }.reduce(0, +)
            }
            let what = "\(kind) (|d| scale \(scale)): errors (linearised, second-order) \(errors)"
            XCTAssertEqual(slope(errors.map(\.second)), 3, accuracy: 0.3, what)
            XCTAssertEqual(slope(errors.map(\.linear)), 2, accuracy: 0.3, what)
            XCTAssertTrue(zip(errors.map(\.second), errors.map(\.linear)).allSatisfy { $0 < $1 }, what)
        }
    }

    /// The gradient of `loss(f2(w))` against central differences of that loss (`f2` is quadratic in
    /// `w`, the losses smooth) along random directions and on single coordinates, for both losses, at
    /// `w != w0`; and against the two-pass form `J^T g` (ordinary backward) + `(Σ g_k ∇²f_k) d`
    /// (`backwardTangent` with logit-gradient tangent 0) that the model's one pass replaces.
    func testLossGradientMatchesFiniteDifferences() {
        let input = Shape(3, 8, 8), n = 4, classes = 3
        var r = TestRandom(7)
        let x = r.array(n * input.count)
        let labels: [Int32] = [0, 2, 1, 2]
        let net = network(.resnet20, input, x: x, seed: 8)
        let model = SecondOrderModel(around: net)
        let w = zip(model.origin.array, r.array(model.parameterCount)).map { $0 + 0.02 * $1 }
        for loss in LossFunction.allCases {
            func value(_ v: [Double]) -> Double {
                model.weights.copy(from: v)
                let f = x.withUnsafeBufferPointer { model.logits($0.baseAddress!, n: n) }
                return labels.withUnsafeBufferPointer {
                    loss.evaluate(logits: UnsafeBufferPointer(start: f, count: n * classes), labels: $0, classes: classes).meanLoss
                }
            }
            model.weights.copy(from: w)
            let summary = x.withUnsafeBufferPointer { xp in
                labels.withUnsafeBufferPointer { model.lossAndGradient(xp.baseAddress!, labels: $0, loss: loss) }
            }
            let g = model.gradient.array
            assertClose(summary.meanLoss, value(w), Tolerance.double, "\(loss) loss value")

            // The two-pass form, on the model's own network after its forward and jvp2 at w.
            let copy = model.network, p = model.parameterCount
            let f = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.logits($0.baseAddress!, n: n), count: n * classes)) }
            var dlogits = [Double](repeating: 0, count: n * classes)
            f.withUnsafeBufferPointer { fp in labels.withUnsafeBufferPointer { lp in dlogits.withUnsafeMutableBufferPointer {
                _ = loss.evaluate(logits: fp, labels: lp, classes: classes, dlogits: $0)
            } } }
            copy.zeroGrads()
            copy.backward(dlogits, n: n, mode: .eval)
            let jtg = copy.grads.array
            let d = zip(w, model.origin.array).map { $0 - $1 }, zero = [Double](repeating: 0, count: n * classes)
            var hd = [Double](repeating: 0, count: p)
            d.withUnsafeBufferPointer { dp in hd.withUnsafeMutableBufferPointer {
                copy.backwardTangent(dlogits, zero, parameterTangent: dp.baseAddress!, n: n, mode: .eval, into: $0.baseAddress!)
            } }
            let scale = g.map(abs).max()!
            assertClose(g, zip(jtg, hd).map { $0 + $1 }, Tol(rel: 1e-10, abs: 1e-12 * scale), "\(loss) one pass vs J^T g + (Σ g H) d")
            XCTAssertGreaterThan(hd.map(abs).max()!, 1e-3 * scale, "\(loss): the curvature term matters here")

            let h = 1e-5
            var got: [Double] = [], want: [Double] = []
            for _ in 0..<2 {
                var u = r.array(w.count)
                let nu = dot(u, u).squareRoot()
                u = u.map { $0 / nu }
                got.append(dot(g, u))
                want.append((value(zip(w, u).map { $0 + h * $1 }) - value(zip(w, u).map { $0 - h * $1 })) / (2 * h))
            }
            for i in [0, w.count / 2, w.count - 1] {
                var wp = w, wm = w
                wp[i] += h; wm[i] -= h
                got.append(g[i]); want.append((value(wp) - value(wm)) / (2 * h))
            }
            assertClose(got, want, Tolerance.finiteDifference, "\(loss) gradient")
        }
    }

    // MARK: Training

    /// The generic `TaylorTrainer` with the linearised model reproduces the `LinearizedTrainer` that
    /// preceded it (`PreviousLinearizedTrainer`, its code kept below) bit for bit: every step's loss
    /// and error and the weights, on both data streams, with momentum, weight decay and augmentation,
    /// for SGD and Adam, on a network with BatchNorm.
    func testGenericTrainerReproducesPreviousLinearizedTrainer() throws {
        let data = SyntheticData.make(SyntheticSpec(trainCount: 40, testCount: 4, channels: 3, height: 8, width: 8, classCount: 4)).train
        let net = ModelKind.resnet20.build(input: Shape(3, 8, 8), classes: 4, as: Float.self)
        var r = TestRandom(12)
        net.initialize { r.normal() }
        let id = TrainingIdentity(seed: 3, replicate: 1, child: 5)
        for (optimizer, streams) in [(OptimizerKind.sgd, LinearizedDataStreams.linearized), (.adam, .training)] {
            var s = LinearizedSettings()
            s.optimizer = optimizer; s.learningRate = optimizer == .sgd ? 0.01 : 1e-3; s.momentum = 0.9; s.weightDecay = 5e-4
            s.batchSize = 16; s.augment = true; s.epochs = 2
            let generic = LinearizedTrainer(model: LinearizedModel(around: net), settings: s, data: data, identity: id, streams: streams)
            let previous = PreviousLinearizedTrainer(model: LinearizedModel(around: net), settings: s, data: data, identity: id,
                                                     streams: streams)
            for k in 0..<(2 * generic.stepsPerEpoch) {
                let a = try generic.trainStep(), b = try previous.trainStep()
                XCTAssertEqual(a, b, "\(optimizer) step \(k)")
            }
            XCTAssertEqual(generic.model.weights.array, previous.model.weights.array, "\(optimizer) weights")
            XCTAssertEqual(generic.step, previous.step)
        }
    }

    /// A linear model has no curvature (`f'' = 0` exactly), so the second-order trainer takes the
    /// linearised trainer's steps bit for bit, on both streams.
    func testSecondOrderTrainerOfLinearModelIsTheLinearisedOne() throws {
        let data = SyntheticData.make(SyntheticSpec(trainCount: 50, testCount: 4, channels: 3, height: 8, width: 8, classCount: 4)).train
        let net = ModelKind.linear.build(input: Shape(3, 8, 8), classes: 4, as: Float.self)
        var r = TestRandom(13)
        net.initialize { r.normal() }
        var s = LinearizedSettings()
        s.batchSize = 16; s.learningRate = 0.05; s.weightDecay = 1e-3; s.augment = true
        for streams in [LinearizedDataStreams.linearized, .training] {
            let id = TrainingIdentity(seed: 1)
            let lin = LinearizedTrainer(model: LinearizedModel(around: net), settings: s, data: data, identity: id, streams: streams)
            let second = SecondOrderTrainer(model: SecondOrderModel(around: net), settings: s, data: data, identity: id, streams: streams)
            for k in 0..<8 {
                XCTAssertEqual(try second.trainStep(), try lin.trainStep(), "step \(k)")
            }
            XCTAssertEqual(second.model.weights.array, lin.model.weights.array)
        }
    }

    /// `trainSecondOrderRun` lowers the test loss of the second-order model below that of the network
    /// it starts from (evaluated independently), writes a row per epoch, is bit-identical on 1 and 2
    /// threads, and leaves the caller's network untouched; its first step sees the linearised run's
    /// first batch (the loss of both models at `w0` is the network's).
    func testTrainSecondOrderRunLearnsAndIsThreadIndependent() throws {
        let (train, test) = SyntheticData.make(SyntheticSpec(trainCount: 64, testCount: 32, channels: 3, height: 8, width: 8, classCount: 4))
        let net = ModelKind.simplecnn_w8.build(input: Shape(3, 8, 8), classes: 4, as: Float.self)
        var r = TestRandom(14)
        net.initialize { r.normal() }
        var s = LinearizedSettings()
        s.epochs = 3; s.batchSize = 16; s.learningRate = 0.01; s.momentum = 0.9
        try BLASThreads.with(threads: 1) { try Workers.with(splitsGEMM: false) {
            let before = evaluate(net, on: test, mode: .eval)
            let params = net.params.array
            func run(threads: Int) throws -> EpochRun {
                try BLASThreads.with(threads: threads) {
                    try trainSecondOrderRun(around: net, train: train, test: test, settings: s, identity: TrainingIdentity(seed: 11))
                }
            }
            let one = try run(threads: 1), two = try run(threads: 2)
            XCTAssertEqual(one.rows, two.rows)
            XCTAssertEqual(one.stop, .maxEpochs)
            XCTAssertEqual(one.rows.map(\.step), [4, 8, 12])
            XCTAssertLessThan(one.rows.last!.testLoss, before.meanLoss, "test loss \(one.rows.map(\.testLoss)) vs start \(before.meanLoss)")
            XCTAssertEqual(net.params.array, params, "the caller's parameters must be untouched")
            let lin = LinearizedTrainer(model: LinearizedModel(around: net), settings: s, data: train, identity: TrainingIdentity(seed: 11))
            let second = SecondOrderTrainer(model: SecondOrderModel(around: net), settings: s, data: train, identity: TrainingIdentity(seed: 11))
            XCTAssertEqual(try second.trainStep(), try lin.trainStep(), "same first batch, same model at w0")
        } }
    }

    // MARK: Experiment integration

    /// `linearized.second_order` parses (default false, not part of the identity when false) and adds
    /// one task per time and seed next to the linearised one, with its needs (the grid when there is
    /// one, else the parent up to t~).
    func testSettingAndTasks() throws {
        let base = "linearized: {times: [0, 1], learning_rate: [0.01, 0.001], held_out: 100, child: {seeds: 2}}"
        let off = try ExperimentConfig.parse(yaml: base)
        XCTAssertFalse(off.linearized.secondOrder)
        let explicitOff = try ExperimentConfig.parse(yaml: base.replacingOccurrences(of: "held_out: 100", with: "held_out: 100, second_order: false"))
        XCTAssertEqual(off.runHash, explicitOff.runHash)
        let on = try ExperimentConfig.parse(yaml: base.replacingOccurrences(of: "held_out: 100", with: "held_out: 100, second_order: true"))
        XCTAssertTrue(on.linearized.secondOrder)
        XCTAssertNotEqual(on.runHash, off.runHash)
        XCTAssertFalse(TaskGraph(off).ids.contains { $0.contains("second") })
        let graph = TaskGraph(on)
        let second = graph.pipelined.filter { if case .secondOrder = $0.task { return true } else { return false } }
        XCTAssertEqual(second.map(\.task.id), ["r0-lin0-second-k0", "r0-lin0-second-k1", "r0-lin1-second-k0", "r0-lin1-second-k1"])
        for node in second {
            guard case let .secondOrder(r, t, k) = node.task else { continue }
            let linear = graph.pipelined.first { $0.task == .linearized(replicate: r, time: t, seed: k) }!
            XCTAssertEqual(node.needs.map(\.task), linear.needs.map(\.task))
            XCTAssertEqual(node.needs.map(\.task), [ExperimentTask.linearizedGrid(replicate: r, time: t).id])
        }
        XCTAssertEqual(graph.ids.count, TaskGraph(off).ids.count + 4)
        // `ntkscape plan` and the set-up check see its memory: five activation-sized buffers per example.
        let sizes = MemoryEstimate.Sizes(model: .resnet20, input: Shape(3, 32, 32), classes: 10, trainExamples: 1000,
                                         testExamples: 100, machineExamples: 0)
        let phase = try XCTUnwrap(MemoryEstimate(config: on, sizes: sizes, groupRanks: 1).phases.first { $0.name == "second-order" })
        XCTAssertGreaterThanOrEqual(phase.bytes, 5 * 4 * 128 * sizes.activationsPerExample + 7 * 4 * sizes.parameters)
        XCTAssertNil(MemoryEstimate(config: off, sizes: sizes, groupRanks: 1).phases.first { $0.name == "second-order" })
    }

    /// Second-order runs join the advantage table by (replicate, t~, seed): their test error, loss,
    /// epochs, stop and `second_order_advantage = e(second order) - e(child)`, and the summary's mean
    /// and spread over seeds; without them those columns are empty (and the header keeps them).
    func testAdvantageTablesCarryTheSecondOrderModel() throws {
        func run(_ model: String, _ seed: Int, _ err: Double, _ stop: RunStop = .maxEpochs) -> LinearizedRunRow {
            LinearizedRunRow(replicate: 0, startEpoch: 1, model: model, seed: seed, optimizer: "sgd", learningRate: 1e-3,
                             startTestError: 0.3, startTestLoss: 0.9, epochs: 2, trainLoss: 0.5, testError: err, testLoss: 0.6,
                             stop: stop.rawValue)
        }
        var a = TaskRecord(id: "a")
        a.linearizedRuns = [run("linearized", 0, 0.25), run("nonlinear", 0, 0.125), run("second_order", 0, 0.1875),
                            run("linearized", 1, 0.25), run("nonlinear", 1, 0.25), run("second_order", 1, 0.25, .diverged)]
        let t = ExperimentTables(records: [a])
        XCTAssertEqual(t.nonlinearAdvantage.map(\.nonlinearAdvantage), [0.125, 0])
        XCTAssertEqual(t.nonlinearAdvantage.map(\.secondOrderTestError), [0.1875, 0.25])
        XCTAssertEqual(t.nonlinearAdvantage.map(\.secondOrderAdvantage), [0.0625, 0])
        XCTAssertEqual(t.nonlinearAdvantage.map(\.secondOrderStop), ["max_epochs", "diverged"])
        let s = try XCTUnwrap(t.nonlinearAdvantageSummary.first)
        XCTAssertEqual(s.secondOrderTestErrorMean, 0.21875)
        assertClose(s.secondOrderTestErrorStd!, 0.0625 / 2.0.squareRoot(), Tolerance.double)
        XCTAssertEqual(s.secondOrderAdvantageMean, 0.03125)
        XCTAssertEqual(s.secondOrderDiverged, 1)
        XCTAssertTrue(t.kernelSummary().contains("second-order err"))
        let csv = try CSV.render(t.nonlinearAdvantage)
        XCTAssertTrue(csv.hasPrefix("replicate,start_epoch,seed,"), csv)
        XCTAssertTrue(csv.split(separator: "\n")[0].hasSuffix(",second_order_epochs,second_order_test_error,second_order_test_loss,"
                                                              + "second_order_stop,second_order_advantage"), csv)

        var b = TaskRecord(id: "b")
        b.linearizedRuns = a.linearizedRuns.filter { $0.model != "second_order" }
        let without = ExperimentTables(records: [b])
        XCTAssertEqual(without.nonlinearAdvantage.map(\.secondOrderTestError), [nil, nil])
        XCTAssertNil(without.nonlinearAdvantageSummary[0].secondOrderTestErrorMean)
        XCTAssertFalse(without.kernelSummary().contains("second-order"))
        XCTAssertEqual(without.nonlinearAdvantage.map(\.nonlinearAdvantage), t.nonlinearAdvantage.map(\.nonlinearAdvantage))
    }
}

/// `LinearizedTrainer` as it was before `TaylorTrainer` made it generic (commit b55d569), kept
/// verbatim (public API only) as the reference `testGenericTrainerReproducesPreviousLinearizedTrainer`
/// compares the generic trainer with.
final class PreviousLinearizedTrainer {
    let model: LinearizedModel<Float>
    let settings: LinearizedSettings
    let data: Dataset
    let identity: TrainingIdentity
    let streams: LinearizedDataStreams
    private(set) var optimizer: any Optimizer
    private(set) var step = 0
    let stepsPerEpoch: Int
    private var batch: Batch
    private var order: (epoch: Int, iterator: BatchIterator)?
    private let augmentation: CIFARAugmentation?

    init(model: LinearizedModel<Float>, settings: LinearizedSettings, data: Dataset, identity: TrainingIdentity,
         streams: LinearizedDataStreams = .linearized) {
        self.model = model; self.settings = settings; self.data = data; self.identity = identity; self.streams = streams
        optimizer = settings.recipe.makeOptimizer()
        stepsPerEpoch = settings.recipe.stepsPerEpoch(examples: data.count)
        batch = Batch(capacity: settings.batchSize, for: data)
        augmentation = settings.augment ? CIFARAugmentation(for: data) : nil
        model.prepare(maxBatch: settings.batchSize)
    }

    @discardableResult
    func trainStep() throws -> LossSummary {
        let e = step / stepsPerEpoch
        let id = identity
        if order?.epoch != e {
            switch streams {
            case .training:
                order = (e, BatchIterator(exampleCount: data.count, batchSize: settings.batchSize, seed: id.seed,
                                          replicate: id.replicate, child: id.child, epoch: e))
            case .linearized:
                var s = RandomStream(seed: id.seed, replicate: id.replicate, role: .linearizedShuffle, child: id.child, epoch: e)
                order = (e, BatchIterator(order: s.permutation(data.count), batchSize: settings.batchSize))
            }
        }
        let indices = order!.iterator.batch(step % stepsPerEpoch)
        if let augmentation {
            var stream = RandomStream(seed: id.seed, replicate: id.replicate,
                                      role: streams == .training ? .augment : .linearizedAugment,
                                      child: id.child, epoch: e, step: step)
            augmentation.gatherAugmented(from: data, indices: indices, into: &batch, stream: &stream)
        } else {
            data.gather(indices, into: &batch)
        }
        let n = batch.count
        let summary = batch.images.withUnsafeBufferPointer { x in
            batch.labels.withUnsafeBufferPointer { y in
                model.lossAndGradient(x.baseAddress!, labels: UnsafeBufferPointer(rebasing: y[0..<n]), loss: settings.loss)
            }
        }
        if TrainingError.diverges(summary.meanLoss) {
            throw TrainingError.diverged(epoch: e, step: step, loss: summary.meanLoss, setting: "linearized.learning_rate")
        }
        optimizer.step(params: model.weights.buffer, grads: UnsafeBufferPointer(model.gradient.buffer),
                       lr: settings.learningRate)
        step += 1
        return summary
    }
}
