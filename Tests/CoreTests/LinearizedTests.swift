import Core
import Foundation
import TestSupport
import XCTest

final class LinearizedTests: XCTestCase {
    /// A network with non-trivial BatchNorm parameters and running statistics.
    private func resnet<T: Real>(_ type: T.Type, input: Shape, classes: Int, seed: UInt64) -> Network<T> {
        let net = ModelKind.resnet20.build(input: input, classes: classes, as: T.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        for v in net.layout.parameters where v.shape.count == 1 { for i in v.range { net.params[i] = T(1 + 0.3 * r.uniform()) } }
        for v in net.layout.state {
            for i in v.range { net.state[i] = T(v.name.hasSuffix("var") ? 1 + 0.5 * r.uniform() : 0.2 * r.uniform()) }
        }
        return net
    }

    /// At `w = w0` the linearised model is the network in inference mode, bit for bit.
    func testAtOriginEqualsNetwork() {
        let input = Shape(3, 8, 8), n = 5
        let net = resnet(Float.self, input: input, classes: 4, seed: 1)
        var r = TestRandom(2)
        let x = r.array(n * input.count).map { Float($0) }
        let model = LinearizedModel(around: net)
        let lin = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.logits($0.baseAddress!, n: n), count: n * 4)) }
        let ref = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: net.forward($0.baseAddress!, n: n, mode: .eval), count: n * 4)) }
        XCTAssertEqual(lin, ref)
    }

    /// `(f_lin(w0 + εd) - f_lin(w0)) / ε` equals `J d` from central differences of the network in
    /// Double (BatchNorm in inference mode), and `f_lin` is affine along `d`.
    func testDirectionalChangeMatchesFiniteDifferencesOfNetwork() {
        let input = Shape(3, 8, 8), n = 3, classes = 4
        let net = resnet(Double.self, input: input, classes: classes, seed: 3)
        var r = TestRandom(4)
        let x = r.array(n * input.count)
        let w0 = net.params.array
        var d = r.array(w0.count)
        let norm = dot(d, d).squareRoot()
        d = d.map { $0 / norm }
        let model = LinearizedModel(around: net)
        func lin(_ s: Double) -> [Double] {
            model.weights.copy(from: zip(w0, d).map { $0 + s * $1 })
            return x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.logits($0.baseAddress!, n: n), count: n * classes)) }
        }
        func f(_ s: Double) -> [Double] {
            net.params.copy(from: zip(w0, d).map { $0 + s * $1 })
            return x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: net.forward($0.baseAddress!, n: n, mode: .eval), count: n * classes)) }
        }
        let eps = 0.01, h = 1e-6
        let base = lin(0), step = lin(eps), double = lin(2 * eps)
        let jd = zip(f(h), f(-h)).map { ($0 - $1) / (2 * h) }
        assertClose(zip(step, base).map { ($0 - $1) / eps }, jd, Tolerance.finiteDifference, "J d")
        assertClose(zip(double, base).map { $0 - $1 }, zip(step, base).map { 2 * ($0 - $1) }, Tolerance.double, "affine in w")
    }

    /// The gradient of `loss(f_lin(w))` against central differences of that loss (smooth: `f_lin` is
    /// affine in `w`) along random directions and on single coordinates, for both losses, at `w != w0`.
    func testLossGradientMatchesFiniteDifferences() {
        let input = Shape(3, 8, 8), n = 4, classes = 3
        let net = resnet(Double.self, input: input, classes: classes, seed: 5)
        var r = TestRandom(6)
        let x = r.array(n * input.count)
        let labels: [Int32] = [0, 2, 1, 2]
        let model = LinearizedModel(around: net)
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

    /// A linear model is its own linearisation: linearised training on the ordinary streams follows
    /// `Trainer` step for step (momentum, weight decay, augmentation), within Float rounding of the
    /// `f(w0) + J (w - w0)` evaluation. On its own streams it sees other batches.
    func testLinearModelTrainsLikeOrdinaryTraining() throws {
        let data = SyntheticData.make(SyntheticSpec(trainCount: 100, testCount: 10, channels: 3, height: 8, width: 8, classCount: 4)).train
        var recipe = TrainingRecipe()
        recipe.learningRate = 0.05; recipe.momentum = 0.9; recipe.weightDecay = 5e-4; recipe.batchSize = 16; recipe.augment = true
        let id = TrainingIdentity(seed: 9, replicate: 1, child: 2)
        for loss in LossFunction.allCases {
            recipe.loss = loss
            let trainer = Trainer(network: ModelKind.linear.build(input: Shape(3, 8, 8), classes: 4), recipe: recipe, data: data, identity: id)
            trainer.initializeWeights()
            let settings = LinearizedSettings(recipe: recipe)
            let lin = LinearizedTrainer(model: LinearizedModel(around: trainer.network), settings: settings, data: data,
                                        identity: id, streams: .training)
            let own = LinearizedTrainer(model: LinearizedModel(around: trainer.network), settings: settings, data: data, identity: id)
            for k in 1...10 {
                let a = try trainer.trainStep(), b = try lin.trainStep()
                try own.trainStep()
                assertClose(b.meanLoss, a.meanLoss, Tol(rel: 1e-5, abs: 0), "\(loss) step \(k) loss")
                let want = trainer.network.params.array.map(Double.init)
                let scale = want.map(abs).max()!
                assertClose(lin.model.weights.array, want, Tol(rel: 0, abs: 1e-6 * scale), "\(loss) step \(k) weights")
            }
            let diff = zip(own.model.weights.array, lin.model.weights.array).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(diff, 1e-3, "\(loss): the linearised streams should order the data differently")
        }
    }

    /// `trainLinearized` lowers the test loss of the linearisation below that of the network it
    /// started from (evaluated independently), writes one row per epoch, and gives bit-identical rows
    /// on 1 and 2 threads. (SimpleCNN: `f_lin` is affine in `w`, so the cross-entropy of `f_lin` is
    /// convex and a small step must lower it.)
    func testTrainLinearizedLearnsAndIsThreadIndependent() throws {
        let (train, test) = SyntheticData.make(SyntheticSpec(trainCount: 64, testCount: 32, channels: 3, height: 8, width: 8, classCount: 4))
        let net = ModelKind.simplecnn.build(input: Shape(3, 8, 8), classes: 4, as: Float.self)
        var r = TestRandom(7)
        net.initialize { r.normal() }
        var s = LinearizedSettings()
        s.epochs = 3; s.batchSize = 16; s.learningRate = 0.01; s.momentum = 0.9; s.augment = true
        Workers.splitsGEMM = false
        defer { Workers.splitsGEMM = true }
        // The reference evaluation runs in the thread state of the final one (one compute thread,
        // OpenBLAS single-threaded): before any `BLASThreads.set` OpenBLAS runs its own default
        // thread count, whose GEMMs differ from the single-threaded ones in the last bits (48.16436940431595
        // vs 48.164368867874146 here) although the network is the same.
        BLASThreads.set(1)
        let before = evaluate(net, on: test, mode: .eval)
        let params = net.params.array, state = net.state.array
        func run(threads: Int) throws -> [LinearizedEpoch] {
            BLASThreads.set(threads)
            defer { BLASThreads.set(1) }
            return try trainLinearized(around: net, train: train, test: test, settings: s, identity: TrainingIdentity(seed: 11))
        }
        let one = try run(threads: 1), two = try run(threads: 2)
        XCTAssertEqual(one, two)
        XCTAssertEqual(one.map(\.step), [4, 8, 12])
        XCTAssertEqual(one.map(\.epoch), [1, 2, 3])
        XCTAssertLessThan(one.last!.testLoss, before.meanLoss, "test loss \(one.map(\.testLoss)) vs start \(before.meanLoss)")
        XCTAssertEqual(net.params.array, params, "the caller's parameters must be untouched")
        XCTAssertEqual(net.state.array, state, "the caller's BatchNorm state must be untouched")
        XCTAssertEqual(evaluate(net, on: test, mode: .eval), before, "the caller's network must be untouched")
    }
}
