import Core
import Foundation
import TestSupport
import XCTest

/// The linearised-training protocol of docs/linearized.md (Fort et al. 2020 appendix D.3/D.4): the
/// learning-rate grid on held-out data, the plateau stop, the child's optimiser, the linearised
/// model's loss, and the summary over seeds. Each test compares with a reference computed another way.
final class LinearizedProtocolTests: XCTestCase {
    private let input = Shape(3, 8, 8)

    private func data(train: Int = 96, test: Int = 32, classes: Int = 4, seed: UInt64 = 0) -> (Dataset, Dataset) {
        SyntheticData.make(SyntheticSpec(trainCount: train, testCount: test, channels: 3, height: 8, width: 8,
                                         classCount: classes, seed: seed))
    }

    private func network(_ kind: ModelKind, classes: Int = 4, seed: UInt64) -> Network<Float> {
        let net = kind.build(input: input, classes: classes, as: Float.self)
        var r = TestRandom(seed)
        net.initialize { r.normal() }
        return net
    }

    // MARK: Learning-rate grid

    /// The held-out split is class-balanced, disjoint from the fit set and covers the rest; the grid
    /// chooses the rate whose held-out loss is smallest, where the reference loss is that of an
    /// ordinary network carrying weights trained step by step by a separate `LinearizedTrainer`
    /// (a linear model is its own linearisation) evaluated by `evaluate`; a rate whose run
    /// diverges has no loss and is not chosen.
    func testGridChoosesRateWithLowestIndependentHeldOutLoss() throws {
        let (train, _) = data()
        let (fit, heldOut) = try train.heldOutSplit(count: 24, seed: 3, replicate: 1)
        XCTAssertEqual(heldOut.count, 24)
        XCTAssertEqual(fit.count, train.count - 24)
        XCTAssertEqual((0..<4).map { c in (0..<heldOut.count).filter { heldOut.label($0) == c }.count }, [6, 6, 6, 6])
        // Every training example is in exactly one of the two (compared by image bytes and label).
        func key(_ d: Dataset, _ i: Int) -> [Float] { Array(d.image(i)) + [Float(d.label(i))] }
        let all = (0..<train.count).map { key(train, $0) }, parts = (0..<fit.count).map { key(fit, $0) } + (0..<heldOut.count).map { key(heldOut, $0) }
        XCTAssertEqual(Set(all.map { $0.description }), Set(parts.map { $0.description }))
        XCTAssertEqual(parts.count, all.count)

        let net = network(.linear, seed: 1)
        var settings = LinearizedSettings()
        settings.epochs = 3; settings.batchSize = 16; settings.momentum = 0.9; settings.loss = .mse
        // 0.3 diverges within the three epochs here (in this test and in the reference alike); 1e7 overflows.
        let rates = [0.01, 0.001, 0.03, 1e7]
        let id = TrainingIdentity(seed: 5, replicate: 1, child: 7)
        let points = try linearizedLearningRateGrid(around: net, fit: fit, heldOut: heldOut, settings: settings,
                                                    learningRates: rates, identity: id)
        XCTAssertEqual(points.map(\.learningRate), rates)

        var reference: [Double?] = []
        for lr in rates {
            var s = settings
            s.learningRate = lr
            let trainer = LinearizedTrainer(model: LinearizedModel(around: net), settings: s, data: fit, identity: id)
            var diverged = false
            for _ in 0..<(3 * trainer.stepsPerEpoch) {
                do { try trainer.trainStep() } catch { diverged = true; break }
            }
            let copy = ModelKind.linear.build(input: input, classes: 4, as: Float.self)
            copy.params.copy(from: trainer.model.weights.array)
            let loss = evaluate(copy, on: heldOut, loss: .mse).meanLoss
            reference.append(diverged || !loss.isFinite ? nil : loss)
        }
        XCTAssertNil(reference[3], "the 1e7 rate should diverge")
        XCTAssertEqual(points[3].stop, .diverged)
        XCTAssertNil(points[3].heldOutLoss)
        for k in 0..<3 {
            assertClose(points[k].heldOutLoss!, reference[k]!, Tol(rel: 1e-4, abs: 1e-6), "held-out loss at \(rates[k])")
            XCTAssertEqual(points[k].stop, .maxEpochs)
        }
        let want = (0..<3).min { reference[$0]! < reference[$1]! }!
        XCTAssertEqual(chosenLearningRateIndex(points), want)
        // Distinct enough that Float rounding cannot swap the choice.
        let sorted = (0..<3).map { reference[$0]! }.sorted()
        XCTAssertGreaterThan(sorted[1] - sorted[0], 1e-3 * sorted[0])
    }

    /// Ties go to the earlier rate; all-diverged grids have no choice.
    func testChosenIndexTiesAndAllDiverged() {
        let p = { (lr: Double, loss: Double?) in
            LinearizedGridPoint(learningRate: lr, heldOutLoss: loss, heldOutError: loss, stop: loss == nil ? .diverged : .maxEpochs)
        }
        XCTAssertEqual(chosenLearningRateIndex([p(1, nil), p(2, 0.5), p(3, 0.5), p(4, 0.7)]), 1)
        XCTAssertNil(chosenLearningRateIndex([p(1, nil), p(2, nil)]))
    }

    // MARK: Plateau stop

    /// patience 2, tolerance 0.01 on L = 1, 0.8, 0.7, 0.695, 0.694, 0.5: best B = 1, 0.8, 0.7,
    /// 0.695, 0.694. Epoch 3: B1 - B3 = 0.3 > 0.01; epoch 4: B2 - B4 = 0.105 > 0.008; epoch 5:
    /// B3 - B5 = 0.006 <= 0.007, stop after epoch 5. A rise does not reset the best.
    func testPlateauStopFiresAtHandComputedEpoch() {
        var stop = PlateauStop(patience: 2, tolerance: 0.01)
        let fired = [1.0, 0.8, 0.7, 0.695, 0.694, 0.5].map { stop.shouldStop(epochLoss: $0) }
        XCTAssertEqual(fired, [false, false, false, false, true, false])
        var rise = PlateauStop(patience: 1, tolerance: 0)
        // B = 1, 1, 0.9: epoch 2 improves by 0 <= 0 -> stop.
        XCTAssertEqual([1.0, 1.2, 0.9].map { rise.shouldStop(epochLoss: $0) }, [false, true, false])
        var off = PlateauStop(patience: 0, tolerance: 0.5)
        XCTAssertEqual([1.0, 1.0, 1.0].map { off.shouldStop(epochLoss: $0) }, [false, false, false])
    }

    /// `trainUntilPlateau` on a real child stops after the epoch the rule says, applied by hand to
    /// the per-epoch training losses of the same run without a plateau stop (same identity, so the
    /// same steps), and its rows are that run's first rows.
    func testTrainUntilPlateauStopsWhereTheRuleSaysOnRealLosses() throws {
        let (train, test) = data()
        let parent = network(.simplecnn_w8, seed: 2)
        var recipe = TrainingRecipe()
        recipe.optimizer = .sgd; recipe.learningRate = 0.05; recipe.momentum = 0.9; recipe.weightDecay = 0
        recipe.batchSize = 16; recipe.epochs = 12
        let id = TrainingIdentity(seed: 1, replicate: 0, child: 3)
        func child(_ plateau: PlateauStop) throws -> EpochRun {
            let net = ModelKind.simplecnn_w8.build(input: input, classes: 4, as: Float.self)
            net.params.copy(from: parent.params.array)
            return try trainUntilPlateau(Trainer(network: net, recipe: recipe, data: train, identity: id), test: test,
                                         loss: .crossEntropy, plateau: plateau)
        }
        let full = try child(PlateauStop())
        XCTAssertEqual(full.stop, .maxEpochs)
        XCTAssertEqual(full.rows.map(\.epoch), (1...12).map(Double.init))
        let losses = full.rows.map(\.trainLoss)
        // A tolerance between the smallest and largest 2-epoch relative improvement, so it fires mid-run.
        let patience = 2
        func improvement(_ e: Int) -> Double {   // e is 1-based, e > patience
            let b = { (k: Int) in losses[0..<k].min()! }
            return (b(e - patience) - b(e)) / abs(b(e - patience))
        }
        let improvements = ((patience + 1)...12).map(improvement)
        let tolerance = (improvements.min()! + improvements.max()!) / 2
        let expected = ((patience + 1)...12).first { improvement($0) <= tolerance }!
        let run = try child(PlateauStop(patience: patience, tolerance: tolerance))
        XCTAssertEqual(run.stop, .plateau)
        XCTAssertEqual(run.rows.count, expected)
        XCTAssertEqual(run.rows, Array(full.rows.prefix(expected)))
    }

    /// A non-finite loss ends the run as `diverged` with the rows of the finished epochs.
    func testDivergenceIsAStopNotAnError() throws {
        let (train, test) = data()
        var recipe = TrainingRecipe()
        recipe.optimizer = .sgd; recipe.learningRate = 1e7; recipe.momentum = 0.9; recipe.batchSize = 16; recipe.epochs = 4
        recipe.loss = .mse; recipe.weightDecay = 0
        let run = try trainUntilPlateau(Trainer(network: network(.linear, seed: 4), recipe: recipe, data: train,
                                                identity: TrainingIdentity(seed: 0)),
                                        test: test, loss: .mse, plateau: PlateauStop())
        XCTAssertEqual(run.stop, .diverged)
        XCTAssertNotNil(run.divergence)
        XCTAssertTrue(run.rows.allSatisfy { $0.testLoss.isFinite })
    }

    // MARK: Optimisers and loss

    /// The child of an Adam-trained parent uses Adam (`child.optimizer: null`), and its first step
    /// is the hand-computed Adam update `w - lr g / (|g| + eps)` (bias-corrected moments after one
    /// step are `g` and `g^2`), with `g` the full-batch gradient formed in Double; not the SGD
    /// update `w - lr g`. The linearised model's Adam step from `w0` (where its gradient is the
    /// network's) is the same update.
    func testAdamChildAndAdamLinearizedModelTakeAHandComputedAdamStep() throws {
        let (train, _) = data(train: 32)
        var parent = TrainingRecipe()
        parent.optimizer = .adam; parent.learningRate = 1e-3; parent.batchSize = 32; parent.loss = .crossEntropy
        var section = LinearizedSection()
        section.child.learningRate = 0.01; section.weightDecay = 0; section.batchSize = 0
        let recipe = section.childRecipe(parent: parent)
        XCTAssertEqual(recipe.optimizer, .adam)
        XCTAssertEqual(recipe.learningRate, 0.01)
        XCTAssertEqual(recipe.schedule, .constant)
        section.child.optimizer = .sgd
        XCTAssertEqual(section.childRecipe(parent: parent).optimizer, .sgd)

        let net = network(.simplecnn_w8, seed: 6)
        let w0 = net.params.array.map(Double.init)
        // Reference gradient of the mean cross-entropy over all 32 examples, in Double.
        let d = ModelKind.simplecnn_w8.build(input: input, classes: 4, as: Double.self)
        d.params.copy(from: w0)
        let x = train.images.map(Double.init), n = train.count
        let logits = x.withUnsafeBufferPointer { d.forward($0.baseAddress!, n: n, mode: .train) }
        var dlogits = [Double](repeating: 0, count: n * 4)
        _ = train.labels.withUnsafeBufferPointer { y in
            dlogits.withUnsafeMutableBufferPointer {
                LossFunction.crossEntropy.evaluate(logits: UnsafeBufferPointer(start: logits, count: n * 4), labels: y,
                                                   classes: 4, dlogits: $0)
            }
        }
        d.zeroGrads()
        dlogits.withUnsafeBufferPointer { d.backward($0.baseAddress!, n: n, mode: .train) }
        let g = d.grads.array
        let lr = 0.01, eps = 1e-8
        let adam = zip(w0, g).map { $0 - lr * $1 / (abs($1) + eps) }
        let sgd = zip(w0, g).map { $0 - lr * $1 }
        let scale = adam.map(abs).max()!

        section.child.optimizer = nil
        let child = ModelKind.simplecnn_w8.build(input: input, classes: 4, as: Float.self)
        child.params.copy(from: net.params.array)
        let trainer = Trainer(network: child, recipe: section.childRecipe(parent: parent), data: train, identity: TrainingIdentity(seed: 2))
        try trainer.trainStep()
        // |g| much larger than eps on almost every coordinate; compare where the step is well defined.
        let defined = g.indices.filter { abs(g[$0]) > 1e-5 }
        XCTAssertGreaterThan(defined.count, g.count / 2)
        let got = trainer.network.params.array.map(Double.init)
        assertClose(defined.map { got[$0] }, defined.map { adam[$0] }, Tol(rel: 0, abs: 2e-6 * scale), "child Adam step")
        XCTAssertGreaterThan(defined.map { abs(got[$0] - sgd[$0]) }.max()!, 1e-3, "the child must not take an SGD step")

        var settings = section.modelSettings(recipe: parent, learningRate: lr, epochs: 1)
        settings.optimizer = .adam
        let lin = LinearizedTrainer(model: LinearizedModel(around: net), settings: settings, data: train, identity: TrainingIdentity(seed: 2))
        try lin.trainStep()
        XCTAssertEqual(lin.optimizer.exportState().kind, "adam")
        let linGot = lin.model.weights.array.map(Double.init)
        assertClose(defined.map { linGot[$0] }, defined.map { adam[$0] }, Tol(rel: 0, abs: 2e-6 * scale), "linearised Adam step")
    }

    /// `linearized.loss: mse` on a cross-entropy recipe trains the linearised model on MSE (null keeps
    /// the recipe's), and the MSE gradient of `f_lin` matches central differences of
    /// `(1/N) sum_i (1/2) ||f_lin(x_i) - onehot(y_i)||^2` computed from the logits in Double.
    func testMSELinearizedGradientMatchesFiniteDifferences() {
        var recipe = TrainingRecipe()
        recipe.loss = .crossEntropy
        var section = LinearizedSection()
        XCTAssertEqual(section.modelSettings(recipe: recipe, learningRate: 0.1, epochs: 1).loss, .crossEntropy)
        section.loss = .mse
        XCTAssertEqual(section.modelSettings(recipe: recipe, learningRate: 0.1, epochs: 1).loss, .mse)

        let n = 4, classes = 3
        let net = ModelKind.simplecnn_w8.build(input: input, classes: classes, as: Double.self)
        var r = TestRandom(8)
        net.initialize { r.normal() }
        let x = r.array(n * input.count)
        let labels: [Int32] = [2, 0, 1, 2]
        let model = LinearizedModel(around: net)
        let w = zip(model.origin.array, r.array(model.parameterCount)).map { $0 + 0.05 * $1 }
        func mse(_ v: [Double]) -> Double {
            model.weights.copy(from: v)
            let f = x.withUnsafeBufferPointer { model.logits($0.baseAddress!, n: n) }
            var total = 0.0
            for i in 0..<n { for c in 0..<classes { let e = f[i * classes + c] - (Int32(c) == labels[i] ? 1 : 0); total += 0.5 * e * e } }
            return total / Double(n)
        }
        model.weights.copy(from: w)
        let summary = x.withUnsafeBufferPointer { xp in labels.withUnsafeBufferPointer { model.lossAndGradient(xp.baseAddress!, labels: $0, loss: .mse) } }
        let g = model.gradient.array
        assertClose(summary.meanLoss, mse(w), Tolerance.double, "MSE value")
        let h = 1e-5
        var got: [Double] = [], want: [Double] = []
        for i in [0, 7, w.count / 3, w.count / 2, w.count - 2, w.count - 1] {
            var wp = w, wm = w
            wp[i] += h; wm[i] -= h
            got.append(g[i]); want.append((mse(wp) - mse(wm)) / (2 * h))
        }
        var u = r.array(w.count)
        let nu = dot(u, u).squareRoot()
        u = u.map { $0 / nu }
        got.append(dot(g, u)); want.append((mse(zip(w, u).map { $0 + h * $1 }) - mse(zip(w, u).map { $0 - h * $1 })) / (2 * h))
        assertClose(got, want, Tolerance.finiteDifference, "MSE gradient")
    }

    // MARK: Summary over seeds

    /// Mean and sample standard deviation against closed forms: two values a, b have mean (a+b)/2
    /// and standard deviation |a-b|/sqrt(2); 1, 2, 3, 4 have mean 2.5 and sd sqrt(5/3).
    func testSampleSummaryClosedForms() {
        let s = SampleSummary([0.25, 0.125])
        XCTAssertEqual(s.mean, 0.1875)
        assertClose(s.standardDeviation!, 0.125 / 2.0.squareRoot(), Tolerance.double)
        let t = SampleSummary([1, 2, 3, 4])
        XCTAssertEqual(t.mean, 2.5)
        assertClose(t.standardDeviation!, (5.0 / 3).squareRoot(), Tolerance.double)
        XCTAssertEqual([t.min, t.max], [1, 4])
        XCTAssertNil(SampleSummary([0.3]).standardDeviation)
    }

    /// The tables pair seed k of the linearised model with seed k of the child; the advantage is
    /// linearised minus nonlinear error; the summary holds the closed-form mean and spread and
    /// counts the children's stops.
    func testAdvantageTablesPairSeedsAndSummarise() {
        func run(_ model: String, _ start: Double, _ seed: Int, _ err: Double, _ stop: RunStop) -> LinearizedRunRow {
            LinearizedRunRow(replicate: 0, startEpoch: start, model: model, seed: seed, optimizer: "adam", learningRate: 1e-3,
                             startTestError: 0.3, startTestLoss: 0.9, epochs: 2, trainLoss: 0.5, testError: err, testLoss: 0.6,
                             stop: stop.rawValue)
        }
        var a = TaskRecord(id: "a"), b = TaskRecord(id: "b")
        a.linearizedRuns = [run("linearized", 1, 0, 0.25, .maxEpochs), run("nonlinear", 1, 1, 0.125, .maxEpochs),
                            run("linearized", 4, 0, 0.2, .maxEpochs)]
        b.linearizedRuns = [run("nonlinear", 1, 0, 0.1875, .plateau), run("linearized", 1, 1, 0.25, .maxEpochs),
                            run("nonlinear", 4, 0, 0.25, .diverged)]
        let t = ExperimentTables(records: [b, a])
        XCTAssertEqual(t.nonlinearAdvantage.map { [$0.startEpoch, Double($0.seed), $0.nonlinearAdvantage] },
                       [[1, 0, 0.25 - 0.1875], [1, 1, 0.25 - 0.125], [4, 0, 0.2 - 0.25]])
        XCTAssertEqual(t.nonlinearAdvantage.map(\.nonlinearStop), ["plateau", "max_epochs", "diverged"])
        XCTAssertEqual(t.nonlinearAdvantageSummary.count, 2)
        let s = t.nonlinearAdvantageSummary[0]
        XCTAssertEqual(s.seeds, 2)
        XCTAssertEqual(s.nonlinearAdvantageMean, 0.09375)
        assertClose(s.nonlinearAdvantageStd!, 0.0625 / 2.0.squareRoot(), Tolerance.double)
        XCTAssertEqual(s.nonlinearTestErrorMean, 0.15625)
        XCTAssertEqual(s.linearizedTestErrorStd, 0)
        XCTAssertEqual([s.nonlinearStopsPlateau, s.nonlinearStopsMaxEpochs, s.nonlinearStopsDiverged], [1, 1, 0])
        XCTAssertEqual([s.nonlinearAdvantageMin, s.nonlinearAdvantageMax], [0.0625, 0.125])
        XCTAssertNil(t.nonlinearAdvantageSummary[1].nonlinearAdvantageStd)
        XCTAssertEqual(t.nonlinearAdvantageSummary[1].nonlinearStopsDiverged, 1)
    }

    // MARK: Settings

    /// `learning_rate` is a number or a list; one rate is the same setting however written; the
    /// validation names the field and the fix.
    func testLearningRateGridSettingAndValidation() throws {
        let one = try ExperimentConfig.parse(yaml: "linearized: {times: [0], learning_rate: 0.01}")
        let list = try ExperimentConfig.parse(yaml: "linearized: {times: [0], learning_rate: [0.01]}")
        XCTAssertEqual(one.runHash, list.runHash)
        XCTAssertFalse(one.linearized.searchesLearningRate)
        let grid = try ExperimentConfig.parse(yaml: "linearized: {times: [0], learning_rate: [0.003, 0.001], held_out: 100}")
        XCTAssertEqual(grid.linearized.learningRates, [0.003, 0.001])
        XCTAssertTrue(grid.linearized.searchesLearningRate)
        XCTAssertTrue(grid.canonicalJSON().contains("\"learning_rate\":[0.003,0.001]"))
        XCTAssertEqual(try ExperimentConfig.parse(yaml: grid.canonicalJSON()), grid.resolved())
        func rejects(_ yaml: String, _ key: String) {
            XCTAssertThrowsError(try ExperimentConfig.parse(yaml: yaml).validate(trainExamples: 1000)) {
                XCTAssertEqual(($0 as? ExperimentConfigError)?.keyPath, key, "\(yaml): \($0)")
            }
        }
        rejects("linearized: {times: [0], learning_rate: []}", "linearized.learning_rate")
        rejects("linearized: {times: [0], learning_rate: [0.1, -1]}", "linearized.learning_rate")
        rejects("linearized: {times: [0], learning_rate: [0.1, 0.2], held_out: 15}", "linearized.held_out")
        rejects("linearized: {times: [0], learning_rate: [0.1, 0.2], held_out: 1000}", "linearized.held_out")
        rejects("linearized: {times: [0], child: {seeds: 0}}", "linearized.child.seeds")
        rejects("linearized: {times: [0], child: {patience: -1}}", "linearized.child.patience")
        rejects("linearized: {times: [0], child: {learning_rate: 0}}", "linearized.child.learning_rate")
        XCTAssertThrowsError(try ExperimentConfig.parse(yaml: "linearized: {child_learning_rate: 0.1}"))
    }
}
