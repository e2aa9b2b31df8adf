import Foundation

/// The cost model of the plan: every task's cost in training-example passes (one forward and
/// backward of one training example), from the experiment's sizes. Only ratios matter for the
/// schedule; `ntkscape plan` turns them into time with a timed calibration.
extension ExperimentRunner {
    /// Cost of one evaluation forward relative to one training step per example (measured ~1/2.5
    /// for SimpleCNN and ResNet-20 on one thread).
    static let forwardCost = 0.4

    /// The cost of `task`.
    func cost(of task: ExperimentTask) -> Double {
        let T = recipe.epochs, n = Double(train.count), f = Self.forwardCost, lin = config.linearized
        // Evaluations at the epoch marks of a run of `epochs` epochs (and at its start).
        func evaluations(_ epochs: Double, _ examples: Int) -> Double {
            Double(Self.epochMarks(epochs).count + 1) * Double(examples) * f
        }
        // A linearised step is a forward, a JVP and a backward: ~1.4 training passes. A second-order
        // step is a forward, a fused first-and-second JVP (~4 forwards) and the forward-over-reverse
        // backward (~5 forwards): ~10 forward units against a training pass's ~3; measured 3.0-3.1
        // training passes on ResNet-20 and SimpleCNN (`ntkscape bench second-order`).
        let linearStep = 1.4, secondOrderStep = 3.0
        switch task {
        case .parent: return T * n
        case let .child(_, s, _):
            // With trajectories: a BatchNorm re-estimation and a forward of the examples per saved time.
            let saves = config.trajectories.enabled ? Double(config.trajectoryChildTimes(spawn: spawnTimes[s]).count) : 0
            let perSave = Double(config.trajectories.examples) * f
                + (config.model.hasBatchNorm ? Double(config.analysis.recomputeBatches * recipe.batchSize) * f : 0)
            return (T - spawnTimes[s]) * n + saves * perSave
        case .pair:
            // BatchNorm networks: a curve under each of the two policies.
            let curves = config.model.hasBatchNorm ? 2.0 : 1.0
            return curves * Double(config.barrier.points) * Double(test.count + barrierTrain.count) * f
        case .timeline: return (n + Double(test.count)) * f
        case .timelinePairs: return Double(measurementTimes.count * probe.count * (train.classCount + 1))
        case .linearizedGrid:
            let e = lin.resolvedGridEpochs
            return Double(lin.learningRates.count) * (e * (n - Double(lin.heldOut)) * linearStep + 2 * evaluations(e, lin.heldOut))
        case .linearized: return lin.epochs * n * linearStep + 2 * evaluations(lin.epochs, test.count)
        // Evaluations of f2: a forward and a fused JVP pair, ~5 forwards each.
        case .secondOrder: return lin.epochs * n * secondOrderStep + 5 * evaluations(lin.epochs, test.count)
        case .nonlinearChild: return lin.child.epochs * n + evaluations(lin.child.epochs, test.count)
        case .plane:
            // Per point: the network (after a BatchNorm re-estimation under recompute) and, with the
            // tangent planes, two linearised models (a forward and a JVP, ~2.5 forwards each).
            let p = config.plane, perPart = Double(p.points * p.points) / Double(p.parts) + 3
            let examples = Double(p.testSubset == 0 ? test.count : min(p.testSubset, test.count))
            let recompute = config.model.hasBatchNorm && config.barrier.bnPolicy == .recompute
                ? Double(config.barrier.recomputeBatches * recipe.batchSize) * f : 0
            return perPart * (examples * f * (p.tangent ? 6 : 1) + recompute)
        case .trajectories:
            return Double(config.trajectoryChildTimes(spawn: 0).count * childrenPerSpawn * config.trajectories.examples) * 1e-3
        case .embedding:
            // t-SNE: the input distances (N^2 d) and the iterations (N^2 each, exact); ~1e-3 of a training pass per unit.
            let N = Double(config.trajectoryPoints), d = Double(config.trajectories.examples * train.classCount)
            return 1e-3 * (N * N * d / 100 + Double(config.trajectories.tsne.iterations) * N * N)
        case .kernelTimeline: return Double(config.parentGramTimes.count) * gramCost(examples: probe.count)
        case .kernelChildren: return Double(childrenPerSpawn) * gramCost(examples: probe.count)
        case .hessian:
            // Products: Lanczos, Hutchinson, quadrature and u'Hu; ~2.5 gradients each (exact) or 2 (central).
            let h = config.hessian
            let products = Double(h.iterations + h.traceSamples + h.densityRuns * h.densitySteps + 1)
            return (h.method == .exact ? 2.5 : 2.0) * products * Double(min(h.examples, train.count))
        case .kernelMachine:
            let m = machineExamples(groupRanks: kernelGroupRanks)
            return Double(config.kernelMachine.draws) * (gramCost(examples: m) + Double(test.count + m) * 6 * f)
        }
    }

    /// Cost of one Gram of `m` examples: the `m C` Jacobian rows plus the `(mC)^2 P` FLOPs of the
    /// lower-triangle contraction. The contraction runs near the GEMM peak while training small
    /// models does not, so FLOPs count a quarter of their training equivalent, and a Jacobian row a
    /// tenth of a training pass (both fitted to the task times of the quick preset, whose Gram units
    /// took 130-570 and its kernel machines ~10,500 units).
    func gramCost(examples m: Int) -> Double {
        let net = config.model.build(input: inputShape, classes: train.classCount, as: Float.self)
        let rows = Double(m * train.classCount), perPass = Double(max(net.trainingFlops, 1))
        return 0.1 * rows + 0.25 * rows * rows * Double(net.parameterCount) / perPass
    }
}
