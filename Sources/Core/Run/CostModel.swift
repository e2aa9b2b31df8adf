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
        case let .child(_, s, _): return (T - spawnTimes[s]) * n
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
