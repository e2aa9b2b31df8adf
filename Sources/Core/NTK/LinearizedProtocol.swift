import Foundation

// The protocol of Fort et al. 2020 appendix D.3/D.4 around linearised training (docs/linearized.md):
// a learning rate for the linearised model chosen on held-out training data, a low-learning-rate
// nonlinear child trained until its training loss plateaus, several seeds, and their summary.

/// Why a run ended.
public enum RunStop: String, Codable, CaseIterable, Sendable {
    /// The training loss stopped improving (`PlateauStop`).
    case plateau
    /// The maximum length was reached.
    case maxEpochs = "max_epochs"
    /// A batch loss was not finite; the run's results are those of its last whole epoch.
    case diverged
}

/// Stops a run when its training loss has plateaued. After every whole epoch `e = 1, 2, ...` it is
/// given the epoch's training loss `L_e`; with `B_e = min(L_1, ..., L_e)` it fires at the first
/// epoch `e > patience` with
///
///     B_{e - patience} - B_e <= tolerance * |B_{e - patience}|,
///
/// i.e. when the best training loss improved by at most the fraction `tolerance` over the last
/// `patience` epochs. `patience == 0` never fires.
public struct PlateauStop: Codable, Equatable, Sendable {
    public var patience: Int
    public var tolerance: Double
    /// `B_1, B_2, ...` so far.
    public private(set) var best: [Double] = []

    public init(patience: Int = 0, tolerance: Double = 0) {
        self.patience = patience; self.tolerance = tolerance
    }

    /// Records `L_e` of the epoch just finished; true when the run should stop after it.
    public mutating func shouldStop(epochLoss loss: Double) -> Bool {
        best.append(min(best.last ?? .infinity, loss))
        let e = best.count
        guard patience > 0, e > patience else { return false }
        let before = best[e - 1 - patience], now = best[e - 1]
        return before - now <= tolerance * abs(before)
    }
}

/// The rows of a run evaluated at every whole epoch and at its end, and why it ended.
public struct EpochRun {
    public var rows: [LinearizedEpoch]
    public var stop: RunStop
    /// The error that ended a diverged run.
    public var divergence: TrainingError?
}

/// The loop shared by linearised and nonlinear runs: steps until `end`; after every whole epoch and
/// at `end` evaluates (`evaluate`) and writes a row; after every whole epoch feeds the epoch's mean
/// training loss to `plateau` and stops when it fires. A non-finite batch loss ends the run as `.diverged`.
/// `agree` turns this process's plateau decision into the one every process training the same
/// network takes (`Trainer.anyMember`; the identity alone).
func runEpochs(end: Int, stepsPerEpoch: Int, plateau: PlateauStop, step: () -> Int, trainStep: () throws -> LossSummary,
               evaluate: () -> LossSummary, agree: (Bool) -> Bool = { $0 }) throws -> EpochRun {
    var plateau = plateau, rows: [LinearizedEpoch] = [], window = LossSummary()
    while step() < end {
        let s: LossSummary
        do {
            s = try trainStep()
        } catch let e as TrainingError {
            return EpochRun(rows: rows, stop: .diverged, divergence: e)
        }
        window += s
        let t = step(), whole = t % stepsPerEpoch == 0
        guard whole || t == end else { continue }
        let e = evaluate()
        rows.append(LinearizedEpoch(epoch: Double(t) / Double(stepsPerEpoch), step: t, trainLoss: window.meanLoss,
                                    trainError: window.errorRate, testLoss: e.meanLoss, testError: e.errorRate))
        let trainLoss = window.meanLoss
        window = LossSummary()
        if whole && agree(plateau.shouldStop(epochLoss: trainLoss)) { return EpochRun(rows: rows, stop: .plateau) }
    }
    return EpochRun(rows: rows, stop: .maxEpochs)
}

/// Trains `trainer` (an ordinary network: the nonlinear child) up to `trainer.finalStep`,
/// evaluating on `test` after every whole epoch and at the end, and stopping early on `plateau` —
/// a decision every member of `trainer.group` takes together (`Trainer.anyMember`).
public func trainUntilPlateau(_ trainer: Trainer, test: Dataset, loss: LossFunction, plateau: PlateauStop,
                              callbacks: [TrainingCallback] = []) throws -> EpochRun {
    try runEpochs(end: trainer.finalStep, stepsPerEpoch: trainer.stepsPerEpoch, plateau: plateau,
                  step: { trainer.step },
                  trainStep: {
                      let s = try trainer.trainStep()
                      for c in callbacks { try c.afterStep(trainer, summary: s) }
                      return s
                  },
                  evaluate: { evaluate(trainer.network, on: test, loss: loss) },
                  agree: { trainer.anyMember($0) })
}

/// One learning rate of the linearised model's grid: the loss and error of `f_lin` on the held-out
/// examples after training on the others (nil when the run diverged).
public struct LinearizedGridPoint: Codable, Equatable, Sendable {
    public var learningRate: Double
    public var heldOutLoss: Double?
    public var heldOutError: Double?
    public var stop: RunStop

    public init(learningRate: Double, heldOutLoss: Double?, heldOutError: Double?, stop: RunStop) {
        self.learningRate = learningRate; self.heldOutLoss = heldOutLoss; self.heldOutError = heldOutError; self.stop = stop
    }
}

/// Trains the linearisation of `network` once per learning rate of `learningRates` on `fit` (each
/// from `w0`, the `.linearizedShuffle`/`.linearizedAugment` streams of `identity`, `settings` with
/// its learning rate replaced) and measures it on `heldOut` at the end.
public func linearizedLearningRateGrid(around network: Network<Float>, fit: Dataset, heldOut: Dataset,
                                       settings: LinearizedSettings, learningRates: [Double], identity: TrainingIdentity,
                                       progress: ((Double, LinearizedTrainer, LossSummary) -> Void)? = nil)
    throws -> [LinearizedGridPoint] {
    try taylorLearningRateGrid(LinearizedModel<Float>.self, around: network, fit: fit, heldOut: heldOut, settings: settings,
                               learningRates: learningRates, identity: identity, progress: progress)
}

/// `linearizedLearningRateGrid` for any Taylor model (`trainTaylorRun` per rate).
public func taylorLearningRateGrid<Model: TaylorModel>(_ model: Model.Type, around network: Network<Float>, fit: Dataset,
                                                       heldOut: Dataset, settings: LinearizedSettings, learningRates: [Double],
                                                       identity: TrainingIdentity,
                                                       progress: ((Double, TaylorTrainer<Model>, LossSummary) -> Void)? = nil)
    throws -> [LinearizedGridPoint] {
    try learningRates.map { lr in
        var s = settings
        s.learningRate = lr
        let run = try trainTaylorRun(Model.self, around: network, train: fit, test: heldOut, settings: s, identity: identity,
                                     streams: .linearized, progress: progress.map { p in { p(lr, $0, $1) } })
        // The final row is the held-out measurement (the run ends at its last row unless it diverged).
        guard run.stop != .diverged, let last = run.rows.last, last.testLoss.isFinite else {
            return LinearizedGridPoint(learningRate: lr, heldOutLoss: nil, heldOutError: nil, stop: .diverged)
        }
        return LinearizedGridPoint(learningRate: lr, heldOutLoss: last.testLoss, heldOutError: last.testError, stop: run.stop)
    }
}

/// The index of the grid point with the smallest held-out loss (ties: the earlier point); nil when
/// every run diverged.
public func chosenLearningRateIndex(_ points: [LinearizedGridPoint]) -> Int? {
    var best: Int?
    for (i, p) in points.enumerated() {
        guard let loss = p.heldOutLoss else { continue }
        if best == nil || loss < points[best!].heldOutLoss! { best = i }
    }
    return best
}

public extension Dataset {
    /// A class-balanced held-out set of `n` examples (stream role `.linearizedHeldOut` of `seed`,
    /// `replicate`) and the remaining examples, both in data set order.
    func heldOutSplit(count n: Int, seed: UInt64, replicate: Int) throws -> (fit: Dataset, heldOut: Dataset) {
        let held = try classBalancedIndices(count: n, key: RandomKey(seed: seed, replicate: replicate, role: .linearizedHeldOut))
        let isHeld = Set(held)
        return (subset(indices: (0..<count).filter { !isHeld.contains($0) }), subset(indices: held))
    }
}

/// Mean and spread of a few values (e.g. over seeds).
public struct SampleSummary: Codable, Equatable, Sendable {
    public var count: Int
    public var mean: Double
    /// Sample standard deviation `sqrt(sum (x - mean)^2 / (n - 1))`; nil for fewer than 2 values.
    public var standardDeviation: Double?
    public var min: Double
    public var max: Double

    /// Needs at least one value.
    public init(_ xs: [Double]) {
        precondition(!xs.isEmpty, "SampleSummary: no values")
        count = xs.count
        mean = xs.reduce(0, +) / Double(xs.count)
        let m = mean
        standardDeviation = xs.count > 1 ? (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : nil
        min = xs.min()!
        max = xs.max()!
    }
}
