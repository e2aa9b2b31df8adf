@testable import Core
import TestSupport
import XCTest

/// Runs one layer in Double on CNHW buffers so its derivatives can be checked numerically.
final class LayerHarness {
    let layout = ParameterLayout()
    let layer: any Layer<Double>
    let n: Int
    let mode: LayerContext<Double>.Mode
    let params: Buffer<Double>, grads: Buffer<Double>, state: Buffer<Double>
    var inCount: Int { n * layer.inShape.count }
    var outCount: Int { n * layer.outShape.count }

    init(n: Int, mode: LayerContext<Double>.Mode = .train, seed: UInt64 = 1, _ make: (ParameterLayout) -> any Layer<Double>) {
        self.n = n; self.mode = mode
        layer = make(layout)
        layer.prepare(maxBatch: n)
        params = Buffer(count: layout.parameterCount)
        grads = Buffer(count: layout.parameterCount)
        state = Buffer(count: layout.stateCount)
        var r = TestRandom(seed)
        for i in 0..<params.count { params[i] = r.uniform() }
        // Running statistics: means in [-1, 1], variances in [0.5, 1.5].
        for v in layout.state { for i in v.range { state[i] = v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : r.uniform() } }
    }

    func ctx(tangent: UnsafePointer<Double>? = nil) -> LayerContext<Double> {
        LayerContext(params: params.pointer, grads: grads.pointer, state: state.pointer, tangent: tangent, mode: mode)
    }

    func forward(_ x: [Double], _ w: [Double]? = nil) -> [Double] {
        if let w { params.copy(from: w) }
        var y = [Double](repeating: 0, count: outCount)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            layer.forward(xp.baseAddress!, yp.baseAddress!, n: n, ctx())
        } }
        return y
    }

    /// `(d<u, y>/dx, d<u, y>/dw)` from `backward`, after a forward at `(x, w)`.
    func backward(_ x: [Double], _ w: [Double], _ u: [Double]) -> (dx: [Double], dw: [Double]) {
        let y = forward(x, w)
        grads.zero()
        var dx = [Double](repeating: 0, count: inCount)
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in u.withUnsafeBufferPointer { up in
            dx.withUnsafeMutableBufferPointer { dp in
                layer.backward(x: xp.baseAddress!, y: yp.baseAddress!, dy: up.baseAddress!, dx: dp.baseAddress!, n: n, ctx())
            } } } }
        return (dx, grads.array)
    }

    /// The input gradient written by `backward` into `dx0` (stale values), with or without
    /// `overwriteInputGradient`.
    func inputGradient(_ x: [Double], _ u: [Double], into dx0: [Double], overwrite: Bool) -> [Double] {
        let y = forward(x)
        var dx = dx0, c = ctx()
        c.overwriteInputGradient = overwrite
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in u.withUnsafeBufferPointer { up in
            dx.withUnsafeMutableBufferPointer { dp in
                layer.backward(x: xp.baseAddress!, y: yp.baseAddress!, dy: up.baseAddress!, dx: dp.baseAddress!, n: n, c)
            } } } }
        return dx
    }

    /// A layer that declares `overwritesInputGradient` writes the same input gradient over stale
    /// values as it adds onto zeros; without the flag it adds onto what is there.
    func checkOverwrite(_ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(layer.overwritesInputGradient, "\(what) should declare overwritesInputGradient", file: file, line: line)
        var r = TestRandom(7)
        let x = r.array(inCount), u = r.array(outCount), stale = r.array(inCount, scale: 100)
        let reference = inputGradient(x, u, into: [Double](repeating: 0, count: inCount), overwrite: false)
        assertClose(inputGradient(x, u, into: stale, overwrite: true), reference, Tolerance.double,
                    "\(what) overwritten input gradient", file: file, line: line)
        let added = zip(inputGradient(x, u, into: stale, overwrite: false), stale).map { $0 - $1 }
        assertClose(added, reference, Tol(rel: 1e-11, abs: 1e-11), "\(what) accumulated input gradient", file: file, line: line)
    }

    func jvp(_ x: [Double], _ w: [Double], tx: [Double], tw: [Double]) -> [Double] {
        let y = forward(x, w)
        var ty = [Double](repeating: 0, count: outCount)
        x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { yp in tx.withUnsafeBufferPointer { tp in
            tw.withUnsafeBufferPointer { wp in ty.withUnsafeMutableBufferPointer { op in
                layer.jvp(x: xp.baseAddress!, y: yp.baseAddress!, tx: tp.baseAddress!, ty: op.baseAddress!, n: n,
                          ctx(tangent: wp.baseAddress!))
            } } } } }
        return ty
    }

    /// Checks backward and JVP against central differences and against each other (adjoint identity).
    func checkDerivatives(_ what: String, inputScale: Double = 1, file: StaticString = #filePath, line: UInt = #line) {
        var r = TestRandom(99)
        let x = r.array(inCount, scale: inputScale), w = params.array, u = r.array(outCount)
        let h = 1e-6
        let (dx, dw) = backward(x, w, u)
        func objective(_ x: [Double], _ w: [Double]) -> Double { dot(u, forward(x, w)) }
        var fdx = [Double](), fdw = [Double]()
        for i in 0..<x.count {
            var xp = x, xm = x; xp[i] += h; xm[i] -= h
            fdx.append((objective(xp, w) - objective(xm, w)) / (2 * h))
        }
        for i in 0..<w.count {
            var wp = w, wm = w; wp[i] += h; wm[i] -= h
            fdw.append((objective(x, wp) - objective(x, wm)) / (2 * h))
        }
        assertClose(dx, fdx, Tolerance.finiteDifference, "\(what) input gradient vs finite differences", file: file, line: line)
        assertClose(dw, fdw, Tolerance.finiteDifference, "\(what) parameter gradient vs finite differences", file: file, line: line)

        let tx = r.array(x.count), tw = r.array(w.count)
        let ty = jvp(x, w, tx: tx, tw: tw)
        let xp = zip(x, tx).map { $0 + h * $1 }, xm = zip(x, tx).map { $0 - h * $1 }
        let wp = zip(w, tw).map { $0 + h * $1 }, wm = zip(w, tw).map { $0 - h * $1 }
        let fdt = zip(forward(xp, wp), forward(xm, wm)).map { ($0 - $1) / (2 * h) }
        assertClose(ty, fdt, Tolerance.finiteDifference, "\(what) JVP vs finite differences", file: file, line: line)
        // <u, J t> == <J^T u, t>
        assertClose(dot(u, ty), dot(dx, tx) + dot(dw, tw), Tolerance.double, "\(what) adjoint identity", file: file, line: line)
    }
}

final class LayerTests: XCTestCase {
    /// A 3x3 stride-1 padding-1 convolution computed by `algorithm` (the automatic choice depends on
    /// the batch's pixel count, so the tests name the algorithm).
    private func conv3x3(_ algorithm: Conv2D<Double>.Algorithm, _ shape: Shape, out: Int, bias: Bool,
                         _ layout: ParameterLayout) -> Conv2D<Double> {
        let conv = Conv2D<Double>("c", in: shape, out: out, kernel: 3, stride: 1, padding: 1, bias: bias, layout: layout)
        conv.algorithm = algorithm
        return conv
    }
    private let bothAlgorithms: [Conv2D<Double>.Algorithm] = [.im2col, .winograd]

    func testConvStride1PaddedWithBias() {
        for a in bothAlgorithms {
            LayerHarness(n: 2) { self.conv3x3(a, Shape(2, 5, 4), out: 3, bias: true, $0) }.checkDerivatives("conv 3x3 s1 p1 \(a)")
            LayerHarness(n: 3) { self.conv3x3(a, Shape(3, 3, 7), out: 2, bias: false, $0) }.checkDerivatives("conv 3x3 s1 p1 odd \(a)")
        }
    }
    func testConvStride2NonSquareSingleChannel() {
        LayerHarness(n: 3) { Conv2D<Double>("c", in: Shape(1, 7, 5), out: 2, kernel: 3, stride: 2, padding: 1, bias: false, layout: $0) }
            .checkDerivatives("conv 3x3 s2 p1 1ch")
    }
    /// Rows wide enough for the stride-2 im2col/col2im vector path (8 outputs from 16 inputs),
    /// with odd widths and both paddings, so the vector loop stops at the row's end and hands over
    /// to the scalar tail.
    func testConvStride2WideRows() {
        LayerHarness(n: 2) { Conv2D<Double>("c", in: Shape(2, 5, 35), out: 2, kernel: 3, stride: 2, padding: 1, bias: false, layout: $0) }
            .checkDerivatives("conv 3x3 s2 p1, 35 wide")
        LayerHarness(n: 2) { Conv2D<Double>("c", in: Shape(1, 4, 34), out: 2, kernel: 3, stride: 2, padding: 0, bias: true, layout: $0) }
            .checkDerivatives("conv 3x3 s2 p0, 34 wide")
    }
    func testConv1x1Stride2() {
        LayerHarness(n: 2) { Conv2D<Double>("c", in: Shape(3, 6, 6), out: 4, kernel: 1, stride: 2, padding: 0, bias: true, layout: $0) }
            .checkDerivatives("conv 1x1 s2")
    }
    func testBatchNormTrainMode() {
        LayerHarness(n: 3, mode: .train) { BatchNorm2D<Double>("bn", shape: Shape(2, 3, 2), layout: $0) }
            .checkDerivatives("batchnorm train")
    }
    func testBatchNormEvalMode() {
        LayerHarness(n: 3, mode: .eval) { BatchNorm2D<Double>("bn", shape: Shape(2, 3, 2), layout: $0) }
            .checkDerivatives("batchnorm eval")
    }
    /// Channels longer than the 32-lane vector loop of the reductions, with a tail.
    func testBatchNormLongChannels() {
        LayerHarness(n: 4, mode: .train) { BatchNorm2D<Double>("bn", shape: Shape(2, 7, 5), layout: $0) }
            .checkDerivatives("batchnorm train, 140 values per channel")
    }
    func testOverwritingInputGradients() {
        LayerHarness(n: 2) { _ in ReLU<Double>(shape: Shape(3, 5, 4)) }.checkOverwrite("relu")
        LayerHarness(n: 3, mode: .train) { BatchNorm2D<Double>("bn", shape: Shape(2, 7, 5), layout: $0) }.checkOverwrite("bn train")
        LayerHarness(n: 3, mode: .eval) { BatchNorm2D<Double>("bn", shape: Shape(2, 7, 5), layout: $0) }.checkOverwrite("bn eval")
        LayerHarness(n: 2) { _ in GlobalAvgPool<Double>(shape: Shape(3, 3, 2)) }.checkOverwrite("gap")
        // One chunk (GEMMs split over workers) and several chunks (one per worker).
        for a in bothAlgorithms {
            LayerHarness(n: 2) { self.conv3x3(a, Shape(2, 5, 4), out: 3, bias: true, $0) }.checkOverwrite("conv 3x3 s1 p1, one chunk, \(a)")
            LayerHarness(n: 3) { self.conv3x3(a, Shape(16, 32, 32), out: 32, bias: false, $0) }
                .checkOverwrite("conv 3x3 s1 p1, three chunks, \(a)")
        }
        let strided = LayerHarness(n: 2) { Conv2D<Double>("c", in: Shape(2, 6, 6), out: 3, kernel: 3, stride: 2, padding: 1, bias: false, layout: $0) }
        XCTAssertFalse(strided.layer.overwritesInputGradient, "a strided convolution's col2im leaves positions unwritten")
    }
    /// The chunked weight gradient (partials per chunk, summed in chunk order) against finite
    /// differences, for both algorithms (three chunks each).
    func testConvSeveralChunks() {
        for a in bothAlgorithms {
            let h = LayerHarness(n: 3) { self.conv3x3(a, Shape(16, 32, 32), out: 32, bias: true, $0) }
            let conv = h.layer as! Conv2D<Double>
            XCTAssertEqual(a == .winograd ? conv.winogradChunk(3) : 1, 1, "one example per chunk")
            var r = TestRandom(5)
            let x = r.array(h.inCount), w = h.params.array, u = r.array(h.outCount)
            let dw = h.backward(x, w, u).dw
            // The objective is linear in w, so the central difference has no truncation error at any
            // step; a large one keeps the rounding of the ~1e5-term sums far below the tolerance.
            let step = 0.1, checked = Array(stride(from: 0, to: w.count, by: 97)) + [w.count - 1]
            let fd = checked.map { i -> Double in
                var wp = w, wm = w; wp[i] += step; wm[i] -= step
                return (dot(u, h.forward(x, wp)) - dot(u, h.forward(x, wm))) / (2 * step)
            }
            assertClose(checked.map { dw[$0] }, fd, Tolerance.finiteDifference, "3-chunk conv weight gradient vs finite differences, \(a)")
        }
    }
    func testReLU() {
        LayerHarness(n: 2) { _ in ReLU<Double>(shape: Shape(3, 2, 2)) }.checkDerivatives("relu")
    }
    func testMaxPool() {
        LayerHarness(n: 2) { _ in MaxPool2D<Double>(shape: Shape(2, 4, 6)) }.checkDerivatives("maxpool")
    }
    func testGlobalAvgPool() {
        LayerHarness(n: 2) { _ in GlobalAvgPool<Double>(shape: Shape(3, 3, 2)) }.checkDerivatives("gap")
    }
    func testFlatten() {
        LayerHarness(n: 2) { _ in Flatten<Double>(shape: Shape(2, 2, 3)) }.checkDerivatives("flatten")
    }
    func testLinear() {
        LayerHarness(n: 3) { Linear<Double>("fc", in: 5, out: 4, layout: $0) }.checkDerivatives("linear")
    }

    private func residual(_ layout: ParameterLayout, pre: Bool, projection: Bool, bn: Bool) -> any Layer<Double> {
        Self.residualBlock(layout, pre: pre, projection: projection, bn: bn)
    }

    /// A residual block on a 2x4x4 input: post-activation (option A or projection shortcut) or
    /// pre-activation, with or without BatchNorm.
    static func residualBlock(_ layout: ParameterLayout, pre: Bool, projection: Bool, bn: Bool) -> any Layer<Double> {
        let input = Shape(2, 4, 4), out = 4
        var mainLayers: [any Layer<Double>] = []
        let inner = pre ? input : input
        let c1 = Conv2D<Double>("m.conv1", in: inner, out: out, kernel: 3, stride: 2, padding: 1, bias: !bn, layout: layout)
        mainLayers.append(c1)
        if bn { mainLayers.append(BatchNorm2D<Double>("m.bn1", shape: c1.outShape, layout: layout)) }
        mainLayers.append(ReLU<Double>(shape: c1.outShape))
        let c2 = Conv2D<Double>("m.conv2", in: c1.outShape, out: out, kernel: 3, stride: 1, padding: 1, bias: !bn, layout: layout)
        mainLayers.append(c2)
        let preChain: LayerChain<Double>? = pre
            ? LayerChain([BatchNorm2D<Double>("p.bn", shape: input, layout: layout), ReLU<Double>(shape: input)], inShape: input)
            : nil
        let proj: LayerChain<Double>? = projection
            ? LayerChain([Conv2D<Double>("s.conv", in: input, out: out, kernel: 1, stride: 2, padding: 0, bias: false, layout: layout)],
                         inShape: input)
            : nil
        return ResidualBlock(pre: preChain, main: LayerChain(mainLayers, inShape: inner), projection: proj,
                             shortcutFromPre: pre && projection, postReLU: !pre)
    }

    func testResidualOptionAWithChannelPadding() {
        LayerHarness(n: 2) { self.residual($0, pre: false, projection: false, bn: true) }.checkDerivatives("block option A")
    }
    func testResidualProjectionEval() {
        LayerHarness(n: 2, mode: .eval) { self.residual($0, pre: false, projection: true, bn: true) }
            .checkDerivatives("block projection eval")
    }
    func testPreActivationBlockTrain() {
        LayerHarness(n: 3, mode: .train) { self.residual($0, pre: true, projection: true, bn: true) }
            .checkDerivatives("pre-activation block")
    }

    /// Option A maps channel c to c + (Cout - Cin)/2 and subsamples by 2: check against a hand-built map.
    func testOptionAShortcutPlacement() {
        // Main path with zero weights leaves only the shortcut: y = relu(shortcut(x)).
        let h = LayerHarness(n: 1) { self.residual($0, pre: false, projection: false, bn: false) }
        h.params.zero()
        let x = (0..<32).map { Double($0 + 1) }   // 2 channels x 4 x 4, all positive
        let y = h.forward(x)
        var expected = [Double](repeating: 0, count: 16)   // 4 channels x 2 x 2
        for c in 0..<2 { for oy in 0..<2 { for ox in 0..<2 {
            expected[((c + 1) * 2 + oy) * 2 + ox] = x[(c * 4 + 2 * oy) * 4 + 2 * ox]
        } } }
        assertClose(y, expected, Tolerance.double, "option-A shortcut")
    }

    /// Both fast convolutions (im2col + GEMM; Winograd where it applies) equal the direct-loop
    /// oracle (NCHW) on odd shapes, Float and Double. The Winograd cases cover odd heights/widths
    /// (partial tiles), 1x1 and 2x2 images, one input channel, and several chunks. F(4x4, 3x3) runs
    /// on planes 13 or more wide, with every vector path of its transforms: 4 tiles per row (13,
    /// 14: partial last tile), 6 (a 4-tile vector and a tail of 2), 8 (one 8-tile vector), 14
    /// (8 + 4 + tail, and the rows' 32- and 16-value shuffles), and 16-wide planes, whose output
    /// transform takes two tile rows per vector (10 and 7 rows: a pair cut by the plane's bottom,
    /// a single last tile row); narrower planes keep F(2x2, 3x3).
    func testFastConvMatchesNaiveOracle() {
        let cases: [(cin: Int, h: Int, w: Int, cout: Int, k: Int, s: Int, p: Int)] = [
            (1, 7, 5, 2, 3, 2, 1), (3, 6, 9, 4, 3, 1, 1), (2, 5, 5, 3, 3, 2, 0), (3, 8, 8, 5, 1, 2, 0), (2, 1, 1, 3, 3, 1, 1),
            (1, 7, 5, 2, 3, 1, 1), (4, 2, 3, 3, 3, 1, 1), (3, 9, 4, 1, 3, 1, 1), (32, 32, 32, 32, 3, 1, 1),
            (3, 13, 14, 4, 3, 1, 1), (2, 11, 21, 3, 3, 1, 1), (2, 6, 55, 3, 3, 1, 1), (1, 14, 13, 2, 3, 1, 1), (3, 8, 8, 4, 3, 1, 1),
            (2, 10, 16, 3, 3, 1, 1), (2, 7, 16, 2, 3, 1, 1), (3, 16, 16, 2, 3, 1, 1),
            (2, 6, 32, 3, 3, 2, 1), (2, 5, 35, 2, 3, 2, 1), (1, 4, 37, 2, 3, 2, 0),
        ]
        for (ci, c) in cases.enumerated() {
            let n = 3
            var r = TestRandom(UInt64(ci + 10))
            let x = r.array(n * c.cin * c.h * c.w), w = r.array(c.cout * c.cin * c.k * c.k), b = r.array(c.cout)
            let want = naiveConv2D(x: x, n: n, cin: c.cin, h: c.h, w: c.w, weight: w, bias: b, cout: c.cout,
                                   kernel: c.k, stride: c.s, padding: c.p)
            let winograd = c.k == 3 && c.s == 1 && c.p == 1
            for algorithm in winograd ? [Conv2D<Double>.Algorithm.im2col, .winograd] : [.im2col] {
                let got = convNCHW(Double.self, x: x, n: n, shape: Shape(c.cin, c.h, c.w), weight: w + b, c: c, algorithm: algorithm)
                assertClose(got, want, Tolerance.double, "conv case \(ci) \(algorithm) Double")
                let gotF = convNCHW(Float.self, x: x, n: n, shape: Shape(c.cin, c.h, c.w), weight: w + b, c: c, algorithm: algorithm)
                // F(4x4, 3x3)'s Float rounding scales with the layer's values, not each output's
                // (bounded against the direct path in `ConvKernelTests.testWinograd4FloatAccuracy`).
                let scale = want.map(abs).max()!, tol = algorithm == .winograd ? Tol(rel: 1e-4, abs: 1e-5 * scale) : Tolerance.float
                assertClose(gotF, want, tol, "conv case \(ci) \(algorithm) Float")
            }
        }
        let big = Conv2D<Float>("c", in: Shape(32, 32, 32), out: 32, kernel: 3, padding: 1, bias: false, layout: ParameterLayout())
        XCTAssertEqual(big.algorithm, .automatic)
        func usesWinograd4(_ h: Int, _ w: Int) -> Bool {
            Conv2D<Float>("c", in: Shape(2, h, w), out: 2, kernel: 3, padding: 1, bias: false, layout: ParameterLayout()).usesWinograd4
        }
        XCTAssertEqual([(32, 32), (9, 13), (5, 55), (7, 5), (8, 8), (6, 9), (2, 3), (11, 12)].map(usesWinograd4),
                       [true, true, true, false, false, false, false, false])
        XCTAssertEqual(big.winogradChunk(Winograd4.self, 3, inputs: 32, outputs: 32), 1, "the 32x32 case runs in three Winograd chunks")
    }

    /// Both backward paths (weight and input gradients, accumulating and overwriting) against the
    /// adjoint identities of the forward (itself checked against the direct-loop oracle above): the
    /// layer is linear in `x` and, jointly, in (weight, bias), so for random probes `x'`, `θ'`
    /// computed with forward passes only:
    /// `<dx - dx0, x'> = <dy, y(x'; θ) - y(0; θ)>` and `<g - g0, θ'> = <dy, y(x; θ')>`, in Double.
    /// Winograd's also equals the im2col path's, in one chunk and in several (the input gradient
    /// by F(2x2, 3x3) on 7x5 and 9x12 planes — rows split and interleaved 8 values at a time, then
    /// one by one — by F(4x4, 3x3) on 9x21, 10x16 and 32x32).
    func testWinogradBackwardMatchesIm2col() {
        for (shape, cout, n) in [(Shape(3, 7, 5), 4, 2), (Shape(3, 9, 12), 4, 2), (Shape(3, 9, 21), 5, 2), (Shape(3, 10, 16), 4, 2),
                                  (Shape(32, 32, 32), 32, 3)] {
            for overwrite in [false, true] {
                var results: [[Double]] = []
                for algorithm in [Conv2D<Double>.Algorithm.im2col, .winograd] {
                    let layout = ParameterLayout()
                    let conv = Conv2D<Double>("c", in: shape, out: cout, kernel: 3, padding: 1, bias: true, layout: layout)
                    conv.algorithm = algorithm
                    var r = TestRandom(7)
                    let params = Buffer<Double>(r.array(layout.parameterCount)), grads = Buffer<Double>(r.array(layout.parameterCount))
                    let x = r.array(n * shape.count), dy = r.array(n * conv.outShape.count)
                    var dx = r.array(n * shape.count), y = [Double](repeating: 0, count: dy.count)
                    let dx0 = overwrite ? [Double](repeating: 0, count: dx.count) : dx, g0 = grads.array
                    var ctx = LayerContext(params: params.pointer, grads: grads.pointer, state: grads.pointer, mode: .train)
                    ctx.overwriteInputGradient = overwrite
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, $0.baseAddress!, n: n, ctx) }
                        dx.withUnsafeMutableBufferPointer { dxp in
                            conv.backward(x: xp.baseAddress!, y: y, dy: dy, dx: dxp.baseAddress!, n: n, ctx)
                        }
                    }
                    results.append(dx + grads.array)
                    // Adjoint identities against forward passes of the same layer.
                    func forward(_ input: [Double], _ theta: [Double]) -> [Double] {
                        let p = Buffer<Double>(theta)
                        var out = [Double](repeating: 0, count: dy.count)
                        let c = LayerContext(params: p.pointer, grads: p.pointer, state: p.pointer, mode: .train)
                        input.withUnsafeBufferPointer { xp in
                            out.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, $0.baseAddress!, n: n, c) }
                        }
                        return out
                    }
                    var probe = TestRandom(8)
                    let theta = params.array, zero = [Double](repeating: 0, count: x.count)
                    let yZero = forward(zero, theta)
                    for _ in 0..<2 {
                        let xp = probe.array(x.count), tp = probe.array(layout.parameterCount)
                        let yx = forward(xp, theta), yt = forward(x, tp)
                        let lhsX = dot((0..<x.count).map { dx[$0] - dx0[$0] }, xp)
                        let rhsX = dot(dy, (0..<dy.count).map { yx[$0] - yZero[$0] })
                        let lhsT = dot((0..<tp.count).map { grads[$0] - g0[$0] }, tp), rhsT = dot(dy, yt)
                        let scale = (0..<dy.count).reduce(0.0) { $0 + abs(dy[$1]) * (abs(yx[$1]) + abs(yZero[$1]) + abs(yt[$1])) }
                        assertClose([lhsX, lhsT], [rhsX, rhsT], Tolerance.absolute(1e-12 * scale),
                                    "\(algorithm) adjoint identities \(shape) overwrite \(overwrite)")
                    }
                }
                assertClose(results[1], results[0], Tolerance.double, "Winograd vs im2col backward \(shape) overwrite \(overwrite)")
            }
        }
    }

    private func convNCHW<T: Real>(_: T.Type, x: [Double], n: Int, shape: Shape, weight: [Double],
                                   c: (cin: Int, h: Int, w: Int, cout: Int, k: Int, s: Int, p: Int),
                                   algorithm: Conv2D<Double>.Algorithm) -> [Double] {
        let layout = ParameterLayout()
        let conv = Conv2D<T>("c", in: shape, out: c.cout, kernel: c.k, stride: c.s, padding: c.p, bias: true, layout: layout)
        conv.algorithm = algorithm == .winograd ? .winograd : .im2col
        let params = Buffer<T>(weight.map { T($0) })
        let empty = Buffer<T>(count: 0)
        // NCHW -> CNHW
        let plane = shape.plane, oplane = conv.outShape.plane
        var xc = [T](repeating: 0, count: x.count)
        for b in 0..<n { for ch in 0..<shape.c { for i in 0..<plane { xc[(ch * n + b) * plane + i] = T(x[(b * shape.c + ch) * plane + i]) } } }
        var y = [T](repeating: 0, count: n * conv.outShape.count)
        let ctx = LayerContext(params: params.pointer, grads: empty.pointer, state: empty.pointer, mode: .eval)
        xc.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, $0.baseAddress!, n: n, ctx) } }
        var out = [Double](repeating: 0, count: y.count)
        for b in 0..<n { for ch in 0..<c.cout { for i in 0..<oplane { out[(b * c.cout + ch) * oplane + i] = Double(y[(ch * n + b) * oplane + i]) } } }
        return out
    }
}
