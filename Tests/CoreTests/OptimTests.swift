import Core
import Foundation
import TestSupport
import XCTest

/// Hand-computed optimiser values are checked to Float rounding.
private let optimTolerance = Tolerance.absolute(1e-6)

/// Per-step gradients for 3 parameters, fixed so every reference sees the same inputs.
private let grads3: [[Float]] = [[0.5, 0.25, -1], [-0.5, 1, 0], [0.125, -0.75, 2]]
private let w0: [Float] = [1, -2, 0.5]

// MARK: Independent Double references (textbook formulas, written without looking at the Float code)

private func referenceSGD(lr: Double, momentum mu: Double, weightDecay wd: Double, dampening: Double,
                          nesterov: Bool, steps: Int) -> [[Double]] {
    var w = w0.map(Double.init)
    var buf: [Double]? = nil
    var history: [[Double]] = []
    for t in 0..<steps {
        let grad = grads3[t].map(Double.init)
        let g = (0..<3).map { grad[$0] + wd * w[$0] }
        var d = g
        if mu != 0 {
            if let b = buf { buf = (0..<3).map { mu * b[$0] + (1 - dampening) * g[$0] } } else { buf = g }
            d = nesterov ? (0..<3).map { g[$0] + mu * buf![$0] } : buf!
        }
        w = (0..<3).map { w[$0] - lr * d[$0] }
        history.append(w)
    }
    return history
}

/// Kingma & Ba's Algorithm 1 with L2 added to the gradient: w -= lr * mhat / (sqrt(vhat) + eps).
private func referenceAdam(lr: Double, b1: Double, b2: Double, eps: Double, weightDecay wd: Double,
                           steps: Int) -> [[Double]] {
    var w = w0.map(Double.init)
    var m = [Double](repeating: 0, count: 3), v = m
    var history: [[Double]] = []
    for t in 1...steps {
        let grad = grads3[t - 1].map(Double.init)
        for i in 0..<3 {
            let g = grad[i] + wd * w[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mhat = m[i] / (1 - pow(b1, Double(t)))
            let vhat = v[i] / (1 - pow(b2, Double(t)))
            w[i] -= lr * mhat / (vhat.squareRoot() + eps)
        }
        history.append(w)
    }
    return history
}

private func runSteps<O: Optimizer>(_ opt: inout O, steps: Int, lr: Double? = nil) -> [[Float]] {
    var w = w0
    var history: [[Float]] = []
    for t in 0..<steps {
        opt.step(params: &w, grads: grads3[t], lr: lr)
        history.append(w)
    }
    return history
}

final class OptimTests: XCTestCase {
    // MARK: SGD

    /// Worked by hand: lr 0.1, wd 0.01, momentum 0.9, dampening 0.5.
    /// Step 1 (buffer = g, *not* damped):  g = [0.51, 0.23, -0.995], w = [0.949, -2.023, 0.5995].
    /// Step 2: g = [-0.49051, 0.97977, 0.005995], buf = 0.9*buf + 0.5*g = [0.213745, 0.696885, -0.8925025],
    ///         w = [0.9276255, -2.0926885, 0.68875025].
    func testSGDFirstStepMomentumRuleByHand() {
        var opt = SGD(lr: 0.1, momentum: 0.9, weightDecay: 0.01, dampening: 0.5)
        let h = runSteps(&opt, steps: 2)
        assertClose(h[0], [0.949, -2.023, 0.5995], optimTolerance, "step 1")
        assertClose(opt.momentumBuffer, [0.213745, 0.696885, -0.8925025], optimTolerance, "buffer after step 2")
        assertClose(h[1], [0.9276255, -2.0926885, 0.68875025], optimTolerance, "step 2")
        XCTAssertEqual(opt.stepCount, 2)
    }

    func testSGDVariantsMatchReference() {
        let cases: [(String, Double, Double, Double, Bool)] = [
            ("plain", 0, 0, 0, false),
            ("plain + wd", 0, 0.05, 0, false),
            ("momentum", 0.9, 0, 0, false),
            ("momentum + wd", 0.9, 5e-4, 0, false),
            ("momentum + dampening", 0.5, 0.01, 0.3, false),
            ("nesterov + wd", 0.9, 0.01, 0, true),
        ]
        for (name, mu, wd, damp, nesterov) in cases {
            var opt = SGD(lr: 0.05, momentum: mu, weightDecay: wd, nesterov: nesterov, dampening: damp)
            let got = runSteps(&opt, steps: 3)
            let want = referenceSGD(lr: 0.05, momentum: mu, weightDecay: wd, dampening: damp, nesterov: nesterov, steps: 3)
            for t in 0..<3 { assertClose(got[t], want[t], optimTolerance, "\(name), step \(t + 1)") }
        }
    }

    /// Closed form: constant gradient g, momentum mu, no decay: after t steps the buffer is
    /// g (1 + mu + ... + mu^(t-1)) and w = w0 - lr g sum_{s=1..t} (1 - mu^s)/(1 - mu).
    func testSGDMomentumClosedFormConstantGradient() {
        let mu = 0.5, lr = 0.1
        var opt = SGD(lr: lr, momentum: mu)
        var w: [Float] = [0, 1, -1]
        let g: [Float] = [1, -2, 0.25]
        for _ in 0..<4 { opt.step(params: &w, grads: g) }
        let factor = (1...4).reduce(0.0) { $0 + (1 - pow(mu, Double($1))) / (1 - mu) }
        assertClose(w, [0 - lr * 1 * factor, 1 + lr * 2 * factor, -1 - lr * 0.25 * factor], optimTolerance)
        assertClose(opt.momentumBuffer, [1, -2, 0.25].map { $0 * (1 - pow(mu, 4)) / (1 - mu) }, optimTolerance)
    }

    func testSGDUsesLearningRatePassedToStep() {
        var a = SGD(lr: 123), b = SGD(lr: 0.01)
        var wa = w0, wb = w0
        a.step(params: &wa, grads: grads3[0], lr: 0.01)
        b.step(params: &wb, grads: grads3[0])
        XCTAssertEqual(wa, wb)
        assertClose(wa, [1 - 0.005, -2 - 0.0025, 0.5 + 0.01], optimTolerance)
    }

    // MARK: Adam

    /// Step 1 in closed form: mhat = g, vhat = g^2, so w1 = w0 - lr g / (|g| + eps), g including
    /// decay. A large eps makes its placement visible (outside the square root, after bias correction).
    func testAdamFirstStepClosedForm() {
        var opt = Adam(lr: 0.1, eps: 0.1, weightDecay: 0.01)
        let h = runSteps(&opt, steps: 1)
        assertClose(h[0], [1 - 0.1 * 0.51 / 0.61, -2 - 0.1 * 0.23 / 0.33, 0.5 + 0.1 * 0.995 / 1.095], optimTolerance)
        assertClose(opt.expAvg, [0.051, 0.023, -0.0995], optimTolerance)
        assertClose(opt.expAvgSq, [0.001 * 0.51 * 0.51, 0.001 * 0.23 * 0.23, 0.001 * 0.995 * 0.995], Tolerance.absolute(1e-9))
    }

    func testAdamMatchesReference() {
        let cases: [(String, Double, Double, Double, Double)] = [
            ("defaults", 0.9, 0.999, 1e-8, 0),
            ("weight decay", 0.9, 0.999, 1e-8, 0.1),
            ("large eps", 0.9, 0.999, 0.1, 0.01),
            ("other betas", 0.5, 0.9, 1e-3, 0),
            ("beta1 < 0.5 (lerp's other branch)", 0.3, 0.99, 1e-8, 0.05),
        ]
        for (name, b1, b2, eps, wd) in cases {
            var opt = Adam(lr: 0.01, beta1: b1, beta2: b2, eps: eps, weightDecay: wd)
            let got = runSteps(&opt, steps: 3)
            let want = referenceAdam(lr: 0.01, b1: b1, b2: b2, eps: eps, weightDecay: wd, steps: 3)
            for t in 0..<3 { assertClose(got[t], want[t], optimTolerance, "\(name), step \(t + 1)") }
            XCTAssertEqual(opt.stepCount, 3)
        }
    }

    // MARK: State export / import

    private func pseudoGrads(_ count: Int, step: Int) -> [Float] {
        (0..<count).map { i in Float(((i * 7 + step * 13) % 17) - 8) / 8 }
    }

    /// Train 3 steps, checkpoint params + optimiser state to disk, restore into fresh objects,
    /// train 4 more: identical bits to 7 uninterrupted steps.
    private func checkResume<O: Optimizer>(_ make: () -> O, file: StaticString = #filePath, line: UInt = #line) throws {
        let n = 10
        let start = (0..<n).map { Float($0) / 3 - 1 }
        var uninterrupted = make(), w = start
        for s in 0..<7 { uninterrupted.step(params: &w, grads: pseudoGrads(n, step: s)) }

        var first = make(), v = start
        for s in 0..<3 { first.step(params: &v, grads: pseudoGrads(n, step: s)) }
        var ckpt = SafeTensorsFile(metadata: ["epoch": "0.4"])
        ckpt.set("params", floats: v)
        ckpt.setOptimizerState(first.exportState())
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("optim-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ckpt.write(to: path)

        let loaded = try SafeTensorsFile.read(from: path)
        var resumed = make(), u = try loaded.floats("params")
        try resumed.importState(try loaded.optimizerState())
        XCTAssertEqual(resumed.exportState(), first.exportState(), file: file, line: line)
        XCTAssertEqual(resumed.stepCount, 3, file: file, line: line)
        for s in 3..<7 { resumed.step(params: &u, grads: pseudoGrads(n, step: s)) }
        XCTAssertEqual(u.map(\.bitPattern), w.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(resumed.exportState(), uninterrupted.exportState(), file: file, line: line)
    }

    func testSGDResumeIsBitIdentical() throws {
        try checkResume { SGD(lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true) }
        try checkResume { SGD(lr: 0.1, momentum: 0.9, weightDecay: 5e-4, dampening: 0.1) }
        try checkResume { SGD(lr: 0.1) }
    }

    func testAdamResumeIsBitIdentical() throws {
        try checkResume { Adam(lr: 1e-3, weightDecay: 1e-4) }
    }

    func testStateNamesFollowPyTorch() {
        var sgd = SGD(lr: 0.1, momentum: 0.9), adam = Adam(lr: 0.1)
        XCTAssertEqual(sgd.exportState(), OptimizerState(kind: "sgd", stepCount: 0, buffers: [:]))
        _ = runSteps(&sgd, steps: 1)
        _ = runSteps(&adam, steps: 1)
        XCTAssertEqual(sgd.exportState().buffers.keys.sorted(), ["momentum_buffer"])
        XCTAssertEqual(adam.exportState().buffers.keys.sorted(), ["exp_avg", "exp_avg_sq"])
        XCTAssertEqual(adam.exportState().stepCount, 1)
    }

    func testImportRejectsForeignOrIncompleteState() {
        var adam = Adam(lr: 0.1)
        XCTAssertThrowsError(try adam.importState(OptimizerState(kind: "sgd", stepCount: 2, buffers: ["momentum_buffer": [1]]))) {
            XCTAssertTrue("\($0)".contains("'sgd'") && "\($0)".contains("'adam'"), "\($0)")
        }
        XCTAssertThrowsError(try adam.importState(OptimizerState(kind: "adam", stepCount: 2, buffers: ["exp_avg": [1, 2], "exp_avg_sq": [1]]))) {
            XCTAssertTrue("\($0)".contains("different lengths"), "\($0)")
        }
        var sgd = SGD(lr: 0.1, momentum: 0.9)
        XCTAssertThrowsError(try sgd.importState(OptimizerState(kind: "sgd", stepCount: 5, buffers: [:]))) {
            XCTAssertTrue("\($0)".contains("momentum_buffer"), "\($0)")
        }
        XCTAssertThrowsError(try SafeTensorsFile().optimizerState()) {
            XCTAssertTrue("\($0)".contains("no optimiser state"), "\($0)")
        }
    }

    // MARK: Learning-rate schedules

    func testConstantSchedule() {
        for e in [0.0, 0.4, 7, 1e6] { XCTAssertEqual(LRSchedule.constant.lr(base: 0.1, epoch: e), 0.1) }
    }

    func testStepScheduleBoundaries() {
        let s = LRSchedule.step(milestones: [2, 4.5], gamma: 0.1)
        let cases: [(Double, Double)] = [
            (0, 1), (1.999999, 1), (2, 0.1), (2.000001, 0.1),
            (4.499999, 0.1), (4.5, 0.01), (4.500001, 0.01), (100, 0.01),
        ]
        for (epoch, mult) in cases {
            XCTAssertEqual(s.lr(base: 0.2, epoch: epoch), 0.2 * mult, accuracy: 1e-15, "epoch \(epoch)")
        }
    }

    /// Fractional milestone 0.4 with 10 steps per epoch is reached exactly at step 4.
    func testFractionalMilestoneByStep() {
        let s = LRSchedule.step(milestones: [0.4, 1.3], gamma: 0.5)
        let want: [Int: Double] = [0: 1, 3: 1, 4: 0.5, 9: 0.5, 12: 0.5, 13: 0.25, 30: 0.25]
        for (step, mult) in want {
            XCTAssertEqual(s.lr(base: 1, step: step, stepsPerEpoch: 10), mult, "step \(step)")
        }
    }

    /// PyTorch MultiStepLR stepped once per epoch, emulated in its chainable form (`get_lr`:
    /// multiply by gamma^count(milestones == last_epoch) when an epoch starts at a milestone,
    /// including epoch 0 through the constructor's initial step). Duplicates count twice.
    func testMatchesMultiStepLRPerEpoch() {
        let milestones = [3.0, 5, 5, 8], gamma = 0.2, base = 0.1
        let s = LRSchedule.step(milestones: milestones, gamma: gamma)
        var lr = base
        for epoch in 0..<12 {
            let hits = milestones.filter { $0 == Double(epoch) }.count
            lr *= pow(gamma, Double(hits))
            for inside in [0.0, 0.5, 0.999] {
                XCTAssertEqual(s.lr(base: base, epoch: Double(epoch) + inside), lr, accuracy: 1e-15 * base,
                               "epoch \(Double(epoch) + inside)")
            }
        }
    }

    func testScheduleCodableRoundTrip() throws {
        for s in [LRSchedule.constant, .step(milestones: [0.4, 80], gamma: 0.1)] {
            let back = try JSONDecoder().decode(LRSchedule.self, from: JSONEncoder().encode(s))
            XCTAssertEqual(back, s)
        }
    }
}
