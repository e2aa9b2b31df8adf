import Core
import Foundation
import TestSupport
import XCTest

/// Metrics (docs/metrics.md) against hand-computed values and naive per-example loops.
final class MetricsTests: XCTestCase {
    // MARK: helpers

    /// Kaiming weights, random BatchNorm affine parameters and running statistics (so eval mode is
    /// not the identity and recompute changes something).
    private func randomNetwork(_ kind: ModelKind, input: Shape, classes: Int, seed: UInt64) -> Network<Float> {
        let net = kind.build(input: input, classes: classes, as: Float.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        for bn in net.layout.parameters where bn.name.contains("bn") || bn.name.contains("shortcut.1") {
            for i in bn.range { net.params[i] = Float(bn.name.hasSuffix("weight") ? 1 + 0.3 * r.uniform() : 0.2 * r.uniform()) }
        }
        for v in net.layout.state {
            for i in v.range { net.state[i] = Float(v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : 0.2 * r.uniform()) }
        }
        return net
    }

    private func randomData(_ n: Int, _ shape: Shape, classes: Int, seed: UInt64) -> Dataset {
        var r = TestRandom(seed)
        return Dataset(name: "random", images: r.array(n * shape.count).map(Float.init),
                       labels: (0..<n).map { _ in Int32(r.next() % UInt64(classes)) },
                       channels: shape.c, height: shape.h, width: shape.w, classCount: classes)
    }

    private func tinyData(_ images: [[Float]], labels: [Int32], classes: Int) -> Dataset {
        Dataset(name: "tiny", images: images.flatMap { $0 }, labels: labels, channels: 1, height: 2, width: 2,
                classCount: classes)
    }

    /// Writes `value` into parameter `name[index]` (row-major index into its PyTorch shape).
    private func set(_ net: Network<Float>, _ name: String, _ index: Int, _ value: Float) {
        let v = net.layout.parameter(named: name)!
        precondition(index < v.count)
        net.params[v.offset + index] = value
    }

    /// Naive Double forward of `ModelKind.mlp` for one example `x [F]`: pre-activations of both hidden
    /// layers and the logits, straight from the named parameter views.
    private func naiveMLP(_ net: Network<Float>, _ x: ArraySlice<Float>) -> (pre1: [Double], pre2: [Double], logits: [Double]) {
        func linear(_ name: String, _ input: [Double]) -> [Double] {
            let w = net.layout.parameter(named: "\(name).weight")!, b = net.layout.parameter(named: "\(name).bias")!
            let (out, inp) = (w.shape[0], w.shape[1])
            precondition(inp == input.count)
            return (0..<out).map { o in
                (0..<inp).reduce(Double(net.params[b.offset + o])) { $0 + Double(net.params[w.offset + o * inp + $1]) * input[$1] }
            }
        }
        let pre1 = linear("fc1", x.map(Double.init))
        let pre2 = linear("fc2", pre1.map { max($0, 0) })
        return (pre1, pre2, linear("fc3", pre2.map { max($0, 0) }))
    }

    private func argmax(_ v: [Double]) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) }! }

    /// The same network in Double (parameters and running statistics converted).
    private func double(_ net: Network<Float>) -> Network<Double> {
        let d = net.kind.build(input: net.inputShape, classes: net.classes, as: Double.self)
        d.params.copy(from: net.params.array.map(Double.init))
        d.state.copy(from: net.state.array.map(Double.init))
        return d
    }

    // MARK: weight distance

    /// a = (1, 2, 2), b = (2, 1, 2): ||a|| = ||b|| = 3, a - b = (-1, 1, 0), <a, b> = 8.
    func testWeightDistanceHandComputed() {
        let d = WeightDistance([1, 2, 2], [2, 1, 2])
        assertClose(d.l2, 2.0.squareRoot(), Tolerance.double, "l2")
        assertClose(d.normalized!, 2.0.squareRoot() / 3, Tolerance.double, "normalized")
        assertClose(d.cosine!, 8.0 / 9, Tolerance.double, "cosine")
        let zero = WeightDistance([0, 0], [3, 4])
        XCTAssertEqual(zero.l2, 5)
        XCTAssertNil(zero.normalized)
        XCTAssertNil(zero.cosine)
    }

    /// Networks: a naive Double loop over the parameter arrays; BatchNorm running statistics excluded.
    func testWeightDistanceOfNetworksUsesTrainableParametersOnly() {
        let a = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 1)
        let b = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 2)
        let pa = a.params.array.map(Double.init), pb = b.params.array.map(Double.init)
        let na = dot(pa, pa).squareRoot(), nb = dot(pb, pb).squareRoot()
        let l2 = zip(pa, pb).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let d = WeightDistance(a, b)
        assertClose(d.l2, l2, Tolerance.double, "l2")
        assertClose(d.normalized!, l2 / (na * nb).squareRoot(), Tolerance.double, "normalized")
        assertClose(d.cosine!, dot(pa, pb) / (na * nb), Tolerance.double, "cosine")
        // Same parameters, different running statistics: distance 0.
        b.params.copy(from: a.params.array)
        XCTAssertNotEqual(a.state.array, b.state.array)
        XCTAssertEqual(WeightDistance(a, b).l2, 0)
        assertClose(WeightDistance(a, b).cosine!, 1, Tolerance.double, "cosine of equal vectors")
    }

    // MARK: predictions and function distance

    /// Predictions in batches of 8 over 37 examples (partial last batch) equal a naive Double forward
    /// of each example.
    func testPredictionsMatchNaivePerExampleForward() {
        let net = randomNetwork(.mlp, input: Shape(1, 2, 2), classes: 5, seed: 3)
        let data = randomData(37, Shape(1, 2, 2), classes: 5, seed: 4)
        let p = Predictions(net, on: data, batchSize: 8)
        var expected: [Int32] = [], wrong = 0, margin = Double.infinity
        for i in 0..<data.count {
            let z = naiveMLP(net, data.image(i)).logits
            let best = argmax(z)
            margin = min(margin, z[best] - z.indices.filter { $0 != best }.map { z[$0] }.max()!)
            expected.append(Int32(best))
            if best != data.label(i) { wrong += 1 }
        }
        XCTAssertGreaterThan(margin, 1e-4, "reference has a near tie; the comparison would be meaningless")
        XCTAssertEqual(p.labels, expected)
        XCTAssertEqual(p.errorRate, Double(wrong) / 37)
        XCTAssertGreaterThan(Set(expected).count, 1, "a constant classifier would not test the order")
    }

    /// N = 10, C = 3: a wrong at 8, 9; b wrong at 5, 7; they differ at 5, 7, 8, 9.
    /// D = 0.4, e_a = e_b = 0.2, D_ind = 0.4 - 0.04 * 3/2 = 0.34.
    func testFunctionDistanceHandComputed() {
        let y: [Int32] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
        let a: [Int32] = [0, 1, 2, 0, 1, 2, 0, 1, 1, 1]
        let b: [Int32] = [0, 1, 2, 0, 1, 0, 0, 2, 2, 0]
        let d = FunctionDistance(a: a, b: b, labels: y, classes: 3)
        assertClose(d.disagreement, 0.4, Tolerance.double, "D")
        assertClose(d.errorA, 0.2, Tolerance.double, "e_a")
        assertClose(d.errorB, 0.2, Tolerance.double, "e_b")
        assertClose(d.independentDisagreement, 0.34, Tolerance.double, "D_ind")
        assertClose(d.normalized!, 0.4 / 0.34, Tolerance.double, "D / D_ind")
        // D_ind = 0: two perfect classifiers, or C = 2 and both always wrong.
        XCTAssertNil(FunctionDistance(a: y, b: y, labels: y, classes: 3).normalized)
        let wrong: [Int32] = [1, 0, 1]
        let both = FunctionDistance(a: wrong, b: wrong, labels: [0, 1, 0], classes: 2)
        XCTAssertEqual(both.independentDisagreement, 0)
        XCTAssertNil(both.normalized)
    }

    /// D_ind is what two independent classifiers with uniformly spread errors disagree on: simulate
    /// them (C = 4, e_a = 0.3, e_b = 0.5, 200,000 examples) and compare; standard error ~0.0011.
    func testIndependentDisagreementMatchesSimulation() {
        var r = TestRandom(9)
        let n = 200_000, classes = 4
        func classify(_ y: Int32, error: Double) -> Int32 {
            guard (r.uniform() + 1) / 2 < error else { return y }
            return Int32((Int(y) + 1 + Int(r.next() % UInt64(classes - 1))) % classes)
        }
        let y = (0..<n).map { _ in Int32(r.next() % UInt64(classes)) }
        let a = y.map { classify($0, error: 0.3) }, b = y.map { classify($0, error: 0.5) }
        let d = FunctionDistance(a: a, b: b, labels: y, classes: classes)
        assertClose(d.normalized!, 1, Tolerance.absolute(0.01), "independent classifiers: D / D_ind")
        assertClose(d.independentDisagreement, 0.3 + 0.5 - 0.15 * 4 / 3, Tolerance.absolute(0.005), "D_ind")
    }

    func testFunctionDistanceOfNetworks() {
        let a = randomNetwork(.mlp, input: Shape(1, 2, 2), classes: 3, seed: 5)
        let b = randomNetwork(.mlp, input: Shape(1, 2, 2), classes: 3, seed: 6)
        let data = randomData(50, Shape(1, 2, 2), classes: 3, seed: 7)
        let pa = (0..<50).map { Int32(argmax(naiveMLP(a, data.image($0)).logits)) }
        let pb = (0..<50).map { Int32(argmax(naiveMLP(b, data.image($0)).logits)) }
        let differ = zip(pa, pb).filter { $0 != $1 }.count
        XCTAssertGreaterThan(differ, 0)
        let d = FunctionDistance(a, b, on: data, batchSize: 16)
        XCTAssertEqual(d.disagreement, Double(differ) / 50)
        XCTAssertEqual(d.errorA, Double(zip(pa, data.labels).filter { $0 != $1 }.count) / 50)
    }

    // MARK: ReLU patterns

    /// MLP on 1x2x2 inputs (768 ReLU units: fc1's 512 then fc2's 256), all weights 0 except
    ///
    ///     fc1 unit 0: x0            fc2 unit 0: h1[0] - 1
    ///     fc1 unit 1: x1 - x2 + 1/2 fc2 unit 1: h1[1]
    ///     fc1 unit 2: 1
    ///
    /// Zero pre-activations are off. Examples and their on-units (unit index within the example):
    ///     x = (2, 0, 0, 0):   fc1 2, 1/2, 1 -> {0, 1, 2}; fc2 1, 1/2 -> {512, 513}
    ///     x = (-1, 0, 1, 0):  fc1 -1, -1/2, 1 -> {2};      fc2 -1, 0  -> {}
    ///     x = (1/2, 1, 0, 0): fc1 1/2, 3/2, 1 -> {0, 1, 2}; fc2 -1/2, 3/2 -> {513}
    /// U = 768 = 12 words, so example i starts at word 12 i; unit 512 is word 8, bit 0.
    private func handcraftedMLP(flipFirstUnit: Bool = false) -> Network<Float> {
        let net = ModelKind.mlp.build(input: Shape(1, 2, 2), classes: 2, as: Float.self)
        set(net, "fc1.weight", 0 * 4 + 0, flipFirstUnit ? -1 : 1)
        set(net, "fc1.weight", 1 * 4 + 1, 1); set(net, "fc1.weight", 1 * 4 + 2, -1); set(net, "fc1.bias", 1, 0.5)
        set(net, "fc1.bias", 2, 1)
        set(net, "fc2.weight", 0 * 512 + 0, 1); set(net, "fc2.bias", 0, -1)
        set(net, "fc2.weight", 1 * 512 + 1, 1)
        return net
    }
    private let handcraftedInputs: [[Float]] = [[2, 0, 0, 0], [-1, 0, 1, 0], [0.5, 1, 0, 0]]

    func testReLUPatternOfHandcraftedNetwork() {
        let probe = tinyData(handcraftedInputs, labels: [0, 1, 0], classes: 2)
        var expected = [UInt64](repeating: 0, count: 36)
        expected[0] = 0b111; expected[8] = 0b11        // example 0
        expected[12] = 0b100                             // example 1
        expected[24] = 0b111; expected[32] = 0b10        // example 2
        for batchSize in [1, 2, 3, 500] {
            let p = ReLUPattern(handcraftedMLP(), probe: probe, batchSize: batchSize)
            XCTAssertEqual(p.layerUnits, [512, 256])
            XCTAssertEqual(p.bitCount, 3 * 768)
            XCTAssertEqual(p.bits, expected, "batch size \(batchSize)")
        }
        let p = ReLUPattern(handcraftedMLP(), probe: probe)
        XCTAssertTrue(p.isOn(example: 2, unit: 513))
        XCTAssertFalse(p.isOn(example: 2, unit: 512))
        XCTAssertEqual(ReLUPattern.distance(p, p), 0)
    }

    /// Flipping fc1's unit 0 to `-x0` changes: example 0 units 0 (2 -> -2) and 512 (1 -> -1);
    /// example 1 unit 0 (-1 -> 1; unit 512 stays off at 1 - 1 = 0); example 2 unit 0 (1/2 -> -1/2).
    /// 4 of 3 * 768 bits differ.
    func testReLUPatternDistanceHandComputed() {
        let probe = tinyData(handcraftedInputs, labels: [0, 1, 0], classes: 2)
        let a = ReLUPattern(handcraftedMLP(), probe: probe, batchSize: 2)
        let b = ReLUPattern(handcraftedMLP(flipFirstUnit: true), probe: probe, batchSize: 3)
        XCTAssertEqual(ReLUPattern.distance(a, b), 4.0 / Double(3 * 768))
        XCTAssertEqual(ReLUPattern.distance(b, a), 4.0 / Double(3 * 768))
    }

    /// A network without ReLU units (`model: linear`) has an empty pattern; the distance between two
    /// is undefined and recorded as NaN (a run of a linear model used to trap here).
    func testReLUPatternDistanceOfALinearModelIsNaN() {
        let probe = randomData(5, Shape(3, 5, 5), classes: 3, seed: 21)
        let a = ReLUPattern(randomNetwork(.linear, input: Shape(3, 5, 5), classes: 3, seed: 1), probe: probe)
        let b = ReLUPattern(randomNetwork(.linear, input: Shape(3, 5, 5), classes: 3, seed: 2), probe: probe)
        XCTAssertEqual(a.unitsPerExample, 0)
        XCTAssertEqual(a.bitCount, 0)
        XCTAssertTrue(ReLUPattern.distance(a, b).isNaN)
    }

    /// ResNet-20 (BatchNorm in eval mode, 19 ReLU layers of three shapes) on 3x5x5 inputs: 6064
    /// units per example, so examples do not start on word boundaries. Reference: one example per
    /// forward, whose pre-activations `[C, 1, H, W]` are already in canonical (c, h, w) order.
    /// Units within 1e-4 of the kink may legitimately differ between batch sizes; none must otherwise.
    func testReLUPatternOrderIsIndependentOfBatchSize() {
        let net = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 11)
        let other = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 12)
        let probe = randomData(7, Shape(3, 5, 5), classes: 3, seed: 13)
        func reference(_ net: Network<Float>) -> [Float] {
            var pre: [Float] = []
            for i in 0..<probe.count {
                _ = Array(probe.image(i)).withUnsafeBufferPointer { net.forward($0.baseAddress!, n: 1, mode: .eval) }
                for relu in net.reluLayers {
                    pre += UnsafeBufferPointer(start: relu.lastInput!, count: relu.inShape.count)
                }
            }
            return pre
        }
        let pre = reference(net), preOther = reference(other)
        XCTAssertEqual(pre.count, 7 * 6064)
        var mismatches: [String] = []
        var differ = 0
        for batchSize in [7, 3, 1] {
            let p = ReLUPattern(net, probe: probe, batchSize: batchSize)
            XCTAssertEqual(p.unitsPerExample, 6064)
            for k in 0..<pre.count where abs(pre[k]) > 1e-4 && p.isOn(example: k / 6064, unit: k % 6064) != (pre[k] > 0) {
                if mismatches.count < 5 { mismatches.append("batch \(batchSize) bit \(k)") }
            }
        }
        XCTAssert(mismatches.isEmpty, "first mismatches: \(mismatches)")
        let onFraction = Double(pre.filter { $0 > 0 }.count) / Double(pre.count)
        XCTAssert(onFraction > 0.2 && onFraction < 0.8, "pattern nearly constant (\(onFraction))")
        // Distance between two networks: exact count of differing units, up to kink-adjacent ones.
        var ambiguous = 0
        for k in 0..<pre.count {
            if abs(pre[k]) <= 1e-4 || abs(preOther[k]) <= 1e-4 { ambiguous += 1 } else if (pre[k] > 0) != (preOther[k] > 0) { differ += 1 }
        }
        let d = ReLUPattern.distance(ReLUPattern(net, probe: probe, batchSize: 4),
                                     ReLUPattern(other, probe: probe, batchSize: 5)) * Double(7 * 6064)
        XCTAssertLessThanOrEqual(ambiguous, 20)
        XCTAssertGreaterThan(differ, 1000)
        XCTAssert(d >= Double(differ) && d <= Double(differ + ambiguous), "\(d) differing bits, want \(differ) + up to \(ambiguous)")
    }

    // MARK: logit-gradient centroids

    /// Reference: per-example gradients of `f_c` (one example, one class per backward) in a Double
    /// copy of the network, averaged in Double. ResNet-20 with non-trivial running statistics, 7
    /// probe examples in batches of 3.
    func testCentroidsEqualMeanOfPerExampleGradients() {
        let net = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 21)
        let probe = randomData(7, Shape(3, 5, 5), classes: 3, seed: 22)
        let (params, state) = (net.params.array, net.state.array)
        let g = LogitGradientCentroids(net, probe: probe, batchSize: 3)
        XCTAssertEqual(net.params.array, params, "parameters changed")
        XCTAssertEqual(net.state.array, state, "running statistics changed")
        XCTAssertEqual(net.grads.array, [Float](repeating: 0, count: net.parameterCount), "gradients left non-zero")
        let ref = double(net), P = net.parameterCount
        for c in 0..<3 {
            var mean = [Double](repeating: 0, count: P)
            for i in 0..<probe.count {
                let x = probe.image(i).map(Double.init)
                _ = x.withUnsafeBufferPointer { ref.forward($0.baseAddress!, n: 1, mode: .eval) }
                ref.zeroGrads()
                let onehot = (0..<3).map { $0 == c ? 1.0 : 0.0 }
                onehot.withUnsafeBufferPointer { ref.backward($0.baseAddress!, n: 1, mode: .eval) }
                for j in 0..<P { mean[j] += ref.grads[j] / 7 }
            }
            let scale = mean.map(abs).max()!
            assertClose(Array(g.centroid(c)), mean, Tol(rel: Tolerance.float.rel, abs: Tolerance.float.abs * scale), "g_\(c)")
        }
    }

    /// `d f_c / d b_c' = [c == c']` for the bias of the last linear layer, so that slice of every
    /// centroid is exactly the one-hot of its class (16 examples: every partial sum of 1/16 is exact).
    func testCentroidOfLastBiasIsOneHot() {
        for (kind, bias) in [(ModelKind.mlp, "fc3.bias"), (.resnet20, "linear.bias")] {
            let input = kind == .mlp ? Shape(1, 2, 2) : Shape(3, 4, 4)
            let net = randomNetwork(kind, input: input, classes: 4, seed: 31)
            let probe = randomData(16, input, classes: 4, seed: 32)
            let g = LogitGradientCentroids(net, probe: probe, batchSize: 5)
            let view = net.layout.parameter(named: bias)!
            for c in 0..<4 {
                let slice = view.range.map { g.centroid(c)[c * net.parameterCount + $0] }
                XCTAssertEqual(slice, (0..<4).map { $0 == c ? 1 : 0 }, "\(kind) class \(c)")
            }
        }
    }

    func testAlignmentOfANetworkWithItselfIsOne() {
        let net = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 41)
        let probe = randomData(9, Shape(3, 5, 5), classes: 3, seed: 42)
        let g = LogitGradientCentroids(net, probe: probe, batchSize: 4)
        let a = LogitGradientCentroids.alignment(g, g)
        assertClose(a.classCosines, [1, 1, 1], Tolerance.absolute(1e-6), "cosines")
        assertClose(a.alignment, 1, Tolerance.absolute(1e-6), "A")
        assertClose(a.distance, 0, Tolerance.absolute(1e-6), "1 - A")
        // A different network: the cosines of the centroid rows (class c: values[c*P ..< (c+1)*P])
        // computed here in Double, and their mean.
        let other = LogitGradientCentroids(randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 43),
                                           probe: probe, batchSize: 9)
        let p = g.parameterCount
        let cosines = (0..<3).map { c -> Double in
            let x = g.values[(c * p)..<((c + 1) * p)].map(Double.init), y = other.values[(c * p)..<((c + 1) * p)].map(Double.init)
            return dot(x, y) / (dot(x, x) * dot(y, y)).squareRoot()
        }
        let b = LogitGradientCentroids.alignment(g, other)
        assertClose(b.classCosines, cosines, Tolerance.float, "cosines with another network")
        assertClose(b.alignment, cosines.reduce(0, +) / 3, Tolerance.float, "A with another network")
        XCTAssertLessThan(b.alignment, 0.99)
    }

    /// C = 2, P = 2: g_0 = (1, 0) vs (1, 1) -> cos 1/sqrt 2; g_1 = (0, 1) vs (0, -1) -> cos -1.
    func testAlignmentHandComputed() {
        let a = LogitGradientCentroids(values: [1, 0, 0, 1], classes: 2)
        let b = LogitGradientCentroids(values: [1, 1, 0, -1], classes: 2)
        let al = LogitGradientCentroids.alignment(a, b)
        assertClose(al.classCosines, [1 / 2.0.squareRoot(), -1], Tolerance.double, "cosines")
        assertClose(al.alignment, (1 / 2.0.squareRoot() - 1) / 2, Tolerance.double, "A")
        assertClose(al.distance, 1 - (1 / 2.0.squareRoot() - 1) / 2, Tolerance.double, "1 - A")
    }

    // MARK: interpolation and barriers

    /// e = (0, 0.3, 0.1, 0.2, 0.6) at alpha = 0, 1/4, 1/2, 3/4, 1: max 0.6, mean of ends 0.3;
    /// above the line (0, 0.15, 0.3, 0.45, 0.6): 0, 0.15, -0.2, -0.25, 0.
    func testBarrierFormulasOnHandmadeCurve() {
        let b = Barrier(alphas: [0, 0.25, 0.5, 0.75, 1], values: [0, 0.3, 0.1, 0.2, 0.6])
        assertClose(b.maxMinusMean, 0.3, Tolerance.double, "max - mean")
        assertClose(b.maxMinusLine, 0.15, Tolerance.double, "max - line")
        XCTAssert(Barrier(alphas: [0, 0.5, 1], values: [0, .nan, 0]).maxMinusMean.isNaN)
        XCTAssertEqual(InterpolationCurve.grid(5), [0, 0.25, 0.5, 0.75, 1])
    }

    /// The recorded policy survives a JSON round trip and names its variant and settings.
    func testCurveRecordsPolicyInJSON() throws {
        let point = InterpolationPoint(alpha: 0, testError: 0.5, testLoss: 1, trainError: 0.25, trainLoss: 0.5)
        let curve = InterpolationCurve(points: [point, point], batchNorm: .recompute(batches: 10, batchSize: 64, seed: 7),
                                       batchNormLayers: 19, loss: .mse)
        let json = try JSONEncoder().encode(curve)
        XCTAssertEqual(try JSONDecoder().decode(InterpolationCurve.self, from: json), curve)
        let object = try JSONSerialization.jsonObject(with: json) as! [String: Any]
        let policy = (object["batchNorm"] as! [String: Any])["recompute"] as! [String: Any]
        XCTAssertEqual(policy["batches"] as? Int, 10)
        XCTAssertEqual(policy["batchSize"] as? Int, 64)
        XCTAssertEqual(object["loss"] as? String, "mse")
        XCTAssertEqual(BarrierBatchNorm.recompute(batches: 10).description, "recompute(batches=10,batchSize=128,seed=0)")
    }

    /// Identical networks: both policies give a flat curve and zero barriers; the end equals a plain
    /// evaluation of the network (`.interpolate` keeps its own statistics); inputs are untouched.
    func testIdenticalNetworksHaveFlatCurveAndZeroBarriers() {
        let a = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 51)
        let b = randomNetwork(.resnet20, input: Shape(3, 5, 5), classes: 3, seed: 52)
        b.params.copy(from: a.params.array); b.state.copy(from: a.state.array)
        let test = randomData(30, Shape(3, 5, 5), classes: 3, seed: 53)
        let train = randomData(24, Shape(3, 5, 5), classes: 3, seed: 54)
        let before = (a.params.array, a.state.array)
        for policy in [BarrierBatchNorm.interpolate, .recompute(batches: 2, batchSize: 8, seed: 3)] {
            let curve = InterpolationCurve(a, b, gridPoints: 5, test: test, train: train, batchNorm: policy, batchSize: 7)
            XCTAssertEqual(curve.points.map(\.alpha), [0, 0.25, 0.5, 0.75, 1])
            for p in curve.points {
                XCTAssertEqual([p.testError, p.testLoss, p.trainError, p.trainLoss],
                               [curve.points[0].testError, curve.points[0].testLoss, curve.points[0].trainError,
                                curve.points[0].trainLoss], "\(policy) alpha \(p.alpha)")
            }
            for barrier in [curve.testError, curve.testLoss, curve.trainError, curve.trainLoss] {
                XCTAssertEqual(barrier, Barrier(maxMinusMean: 0, maxMinusLine: 0), "\(policy)")
            }
            XCTAssertEqual(curve.batchNorm, policy)
            XCTAssertEqual(curve.batchNormLayers, 19)
        }
        XCTAssertEqual(a.params.array, before.0); XCTAssertEqual(a.state.array, before.1)
        let curve = InterpolationCurve(a, b, gridPoints: 2, test: test, train: train, batchNorm: .interpolate)
        let plain = evaluate(a, on: test, batchSize: 30), plainTrain = evaluate(a, on: train, batchSize: 5)
        XCTAssertEqual(curve.points[0].testError, plain.errorRate)
        assertClose(curve.points[0].testLoss, plain.meanLoss, Tolerance.float, "test loss at alpha 0")
        XCTAssertEqual(curve.points[0].trainError, plainTrain.errorRate)
        assertClose(curve.points[0].trainLoss, plainTrain.meanLoss, Tolerance.float, "train loss at alpha 0")
    }

    /// Two MLPs identical except `fc3.bias`: `logits(alpha) = base + (1-alpha) b_a + alpha b_b`, with
    /// `base` from a naive Double forward. Error, cross-entropy and barriers at 11 alphas from a
    /// naive per-example loop.
    func testKnownCurveFromLastBiasInterpolation() {
        let classes = 3
        let a = randomNetwork(.mlp, input: Shape(1, 2, 2), classes: classes, seed: 61)
        let b = ModelKind.mlp.build(input: Shape(1, 2, 2), classes: classes, as: Float.self)
        b.params.copy(from: a.params.array)
        let bias = a.layout.parameter(named: "fc3.bias")!
        let ba: [Float] = [1.5, -1, 0], bb: [Float] = [-1.5, 0.5, 1.25]
        for c in 0..<classes { a.params[bias.offset + c] = ba[c]; b.params[bias.offset + c] = bb[c] }
        let test = randomData(60, Shape(1, 2, 2), classes: classes, seed: 62)
        let train = randomData(40, Shape(1, 2, 2), classes: classes, seed: 63)
        let curve = InterpolationCurve(a, b, gridPoints: 11, test: test, train: train,
                                       batchNorm: .recompute(batches: 4), batchSize: 16)
        XCTAssertEqual(curve.batchNormLayers, 0)

        func expected(_ data: Dataset) -> (error: [Double], loss: [Double], margin: Double) {
            let base = (0..<data.count).map { i -> [Double] in
                let z = naiveMLP(a, data.image(i)).logits
                return (0..<classes).map { z[$0] - Double(ba[$0]) }
            }
            var errors: [Double] = [], losses: [Double] = [], margin = Double.infinity
            for k in 0...10 {
                let alpha = Double(k) / 10
                var wrong = 0, loss = 0.0
                for (i, z0) in base.enumerated() {
                    let z = (0..<classes).map { z0[$0] + (1 - alpha) * Double(ba[$0]) + alpha * Double(bb[$0]) }
                    let best = argmax(z), y = data.label(i)
                    margin = min(margin, z[best] - z.indices.filter { $0 != best }.map { z[$0] }.max()!)
                    if best != y { wrong += 1 }
                    loss += log(z.map { exp($0) }.reduce(0, +)) - z[y]
                }
                errors.append(Double(wrong) / Double(data.count)); losses.append(loss / Double(data.count))
            }
            return (errors, losses, margin)
        }
        let t = expected(test), r = expected(train)
        XCTAssertGreaterThan(min(t.margin, r.margin), 1e-4, "near tie in the reference")
        XCTAssertGreaterThan(t.error.max()! - t.error.min()!, 0.05, "test-error curve should not be flat")
        assertClose(curve.points.map(\.testError), t.error, Tolerance.double, "test error")
        assertClose(curve.points.map(\.trainError), r.error, Tolerance.double, "train error")
        assertClose(curve.points.map(\.testLoss), t.loss, Tolerance.float, "test loss")
        assertClose(curve.points.map(\.trainLoss), r.loss, Tolerance.float, "train loss")
        for (name, got, e, tol) in [("test error", curve.testError, t.error, Tolerance.double),
                                    ("train error", curve.trainError, r.error, Tolerance.double),
                                    ("test loss", curve.testLoss, t.loss, Tolerance.float),
                                    ("train loss", curve.trainLoss, r.loss, Tolerance.float)] {
            let line = (0...10).map { e[$0] - ((1 - Double($0) / 10) * e[0] + Double($0) / 10 * e[10]) }
            assertClose(got.maxMinusMean, e.max()! - (e[0] + e[10]) / 2, tol, "\(name) max - mean")
            assertClose(got.maxMinusLine, line.max()!, tol, "\(name) max - line")
        }
    }

    /// `.recompute(K batches)` against a reference computed in Double by the test: the weights on
    /// the line in Double, each BatchNorm's statistics the mean over the K batches (of the
    /// `.batchNormRecompute` permutation) of that batch's mean and unbiased variance, then an
    /// eval-mode forward of the Double network with softmax cross-entropy and arg-max error computed
    /// here from the logits. (The recompute under test is a Float cumulative average with
    /// `momentum = nil`; nothing of it is reused.)
    func testRecomputePolicyMatchesDoubleReference() {
        let shape = Shape(3, 5, 5), classes = 3
        let a = randomNetwork(.resnet20, input: shape, classes: classes, seed: 71)
        let b = randomNetwork(.resnet20, input: shape, classes: classes, seed: 72)
        let test = randomData(20, shape, classes: classes, seed: 73), train = randomData(30, shape, classes: classes, seed: 74)
        let policy = BarrierBatchNorm.recompute(batches: 3, batchSize: 8, seed: 11)
        let curve = InterpolationCurve(a, b, gridPoints: 3, test: test, train: train, batchNorm: policy, batchSize: 6)
        let path = WeightInterpolation(from: a, to: b, batchNorm: policy, recomputeFrom: train)
        let order = { () -> [Int] in var s = RandomStream(seed: 11, role: .batchNormRecompute); return s.permutation(30) }()
        let (pa, pb) = (a.params.array.map(Double.init), b.params.array.map(Double.init))
        for (k, alpha) in [0.0, 0.5, 1.0].enumerated() {
            let net = ModelKind.resnet20.build(input: shape, classes: classes, as: Double.self)
            net.params.copy(from: (0..<pa.count).map { (1 - alpha) * pa[$0] + alpha * pb[$0] })
            var mean = [Double](repeating: 0, count: net.state.count)
            for j in 0..<3 {
                // Momentum 1: the running statistics become this batch's mean and unbiased variance.
                for bn in net.batchNorms { bn.momentum = 1 }
                let images = order[(j * 8)..<(j * 8 + 8)].flatMap { i in
                    (0..<shape.count).map { Double(train.images[i * shape.count + $0]) } }
                _ = images.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: 8, mode: .train) }
                for i in 0..<mean.count { mean[i] += net.state[i] / 3 }
            }
            net.state.copy(from: mean)
            func reference(_ data: Dataset) -> (error: Double, loss: Double, margin: Double) {
                let x = data.images.map(Double.init)
                let y = x.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: data.count, mode: .eval) }
                var wrong = 0, loss = 0.0, margin = Double.infinity
                for i in 0..<data.count {
                    let z = (0..<classes).map { y[i * classes + $0] }
                    let top = z.max()!, best = z.firstIndex(of: top)!, label = data.label(i)
                    margin = min(margin, top - z.indices.filter { $0 != best }.map { z[$0] }.max()!)
                    if best != label { wrong += 1 }
                    loss += top + log(z.map { exp($0 - top) }.reduce(0, +)) - z[label]
                }
                return (Double(wrong) / Double(data.count), loss / Double(data.count), margin)
            }
            let t = reference(test), r = reference(train)
            XCTAssertGreaterThan(min(t.margin, r.margin), 1e-3, "near tie in the reference at alpha \(alpha)")
            let p = curve.points[k]
            assertClose([p.testError, p.trainError], [t.error, r.error], Tolerance.exact, "errors at alpha \(alpha)")
            assertClose([p.testLoss, p.trainLoss], [t.loss, r.loss], Tolerance.float, "losses at alpha \(alpha)")
            path.move(to: alpha)
            assertClose(path.network.state.array, mean, Tolerance.float, "BatchNorm statistics at alpha \(alpha)")
            XCTAssertEqual(path.network.batchNorms.map(\.momentum), Array(repeating: 0.1, count: 19))
        }
        XCTAssertNotEqual(curve.points[1].testLoss, curve.points[0].testLoss)
    }

    /// Cumulative average, checked without `momentum = nil`: the running statistics after K batches
    /// are the mean of the K single-batch statistics (each from a reset and one batch at momentum 1,
    /// which stores that batch's mean and unbiased variance).
    func testRecomputeIsAverageOfSingleBatchStatistics() {
        let shape = Shape(3, 5, 5)
        let a = randomNetwork(.resnet20, input: shape, classes: 3, seed: 81)
        let b = randomNetwork(.resnet20, input: shape, classes: 3, seed: 82)
        let train = randomData(40, shape, classes: 3, seed: 83)
        let path = WeightInterpolation(from: a, to: b, batchNorm: .recompute(batches: 4, batchSize: 6, seed: 5),
                                       recomputeFrom: train)
        path.move(to: 0.3)
        let net = path.network
        let order = { () -> [Int] in var s = RandomStream(seed: 5, role: .batchNormRecompute); return s.permutation(40) }()
        let probe = ModelKind.resnet20.build(input: shape, classes: 3, as: Float.self)
        probe.params.copy(from: net.params.array)
        var mean = [Double](repeating: 0, count: net.state.count)
        for j in 0..<4 {
            for bn in probe.batchNorms { bn.resetRunningStatistics(state: probe.state.pointer); bn.momentum = 1 }
            let batch = train.subset(indices: Array(order[(j * 6)..<(j * 6 + 6)]))
            _ = batch.images.withUnsafeBufferPointer { probe.forward($0.baseAddress!, n: 6, mode: .train) }
            for i in 0..<mean.count { mean[i] += Double(probe.state[i]) / 4 }
        }
        assertClose(net.state.array, mean, Tolerance.float, "running statistics")
    }

    /// `.interpolate`: parameters and running statistics both at `(1-alpha) s_a + alpha s_b`; exact
    /// endpoints.
    func testInterpolatePolicyInterpolatesState() {
        let a = randomNetwork(.resnet20, input: Shape(3, 4, 4), classes: 3, seed: 91)
        let b = randomNetwork(.resnet20, input: Shape(3, 4, 4), classes: 3, seed: 92)
        let path = WeightInterpolation(from: a, to: b, batchNorm: .interpolate)
        func line(_ x: [Float], _ y: [Float], _ alpha: Double) -> [Double] {
            zip(x, y).map { (1 - alpha) * Double($0) + alpha * Double($1) }
        }
        path.move(to: 0.25)
        assertClose(path.network.params.array, line(a.params.array, b.params.array, 0.25), Tolerance.float, "params")
        assertClose(path.network.state.array, line(a.state.array, b.state.array, 0.25), Tolerance.float, "state")
        XCTAssertNotEqual(path.network.state.array, a.state.array)
        path.move(to: 1)
        XCTAssertEqual(path.network.params.array, b.params.array)
        XCTAssertEqual(path.network.state.array, b.state.array)
        path.move(to: 0)
        XCTAssertEqual(path.network.params.array, a.params.array)
        XCTAssertEqual(path.network.state.array, a.state.array)
    }
}
