import Foundation

/// The cost model of the plan: every task's cost in training-example passes (one forward and
/// backward of one training example), from the experiment's sizes. Only ratios matter for the
/// schedule; `ntkscape plan` turns them into time with a timed calibration.
extension ExperimentPlanner {
    /// Cost of one evaluation forward relative to one training step per example (measured ~1/2.5
    /// for SimpleCNN and ResNet-20 on one thread).
    static let forwardCost = 0.4

    var spawnTimes: [Double] { config.resolvedSpawnTimes }
    var measurementTimes: [Double] { config.resolvedMeasurementTimes }
    var childrenPerSpawn: Int { config.children }

    /// The part of training task `task`'s cost a data-parallel group divides (its optimiser steps'
    /// training passes; evaluations and saved predictions stay on one rank) and its optimiser steps;
    /// nil for a task that does not train a network with `Trainer`.
    func trainingWork(_ task: ExperimentTask) -> (divisible: Double, steps: Double)? {
        let n = Double(sizes.trainExamples), T = recipe.epochs
        func steps(_ epochs: Double, _ r: TrainingRecipe) -> Double { epochs * Double(r.stepsPerEpoch(examples: sizes.trainExamples)) }
        switch task {
        case .parent: return (T * n, steps(T, recipe))
        case let .child(_, s, _): return ((T - spawnTimes[s]) * n, steps(T - spawnTimes[s], recipe))
        case .nonlinearChild:
            let epochs = config.linearized.child.epochs
            return (epochs * n, steps(epochs, config.linearized.childRecipe(parent: recipe)))
        default: return nil
        }
    }

    /// The cost of `task` (a kernel machine's on a group of `groupRanks` ranks: its examples depend on the group's memory).
    func cost(of task: ExperimentTask, groupRanks: Int = 1) -> Double {
        let T = recipe.epochs, n = Double(sizes.trainExamples), f = Self.forwardCost, lin = config.linearized
        let testCount = Double(sizes.testExamples), probeCount = sizes.probeExamples, classes = sizes.classes
        // Evaluations at the epoch marks of a run of `epochs` epochs (and at its start).
        func evaluations(_ epochs: Double, _ examples: Int) -> Double {
            Double(ExperimentRunner.epochMarks(epochs).count + 1) * Double(examples) * f
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
            return curves * Double(config.barrier.points) * (testCount + Double(sizes.barrierTrainExamples)) * f
        case .timeline: return (n + testCount) * f
        case .timelinePairs: return Double(measurementTimes.count * probeCount * (classes + 1))
        case .linearizedGrid:
            let e = lin.resolvedGridEpochs
            return Double(lin.learningRates.count) * (e * (n - Double(lin.heldOut)) * linearStep + 2 * evaluations(e, lin.heldOut))
        case .linearized: return lin.epochs * n * linearStep + 2 * evaluations(lin.epochs, sizes.testExamples)
        // Evaluations of f2: a forward and a fused JVP pair, ~5 forwards each.
        case .secondOrder: return lin.epochs * n * secondOrderStep + 5 * evaluations(lin.epochs, sizes.testExamples)
        case .nonlinearChild: return lin.child.epochs * n + evaluations(lin.child.epochs, sizes.testExamples)
        case .plane:
            // Per point: the network (after a BatchNorm re-estimation under recompute) and, with the
            // tangent planes, two linearised models (a forward and a JVP, ~2.5 forwards each).
            let p = config.plane, perPart = Double(p.points * p.points) / Double(p.parts) + 3
            let examples = Double(p.testSubset == 0 ? sizes.testExamples : min(p.testSubset, sizes.testExamples))
            let recompute = config.model.hasBatchNorm && config.barrier.bnPolicy == .recompute
                ? Double(config.barrier.recomputeBatches * recipe.batchSize) * f : 0
            return perPart * (examples * f * (p.tangent ? 6 : 1) + recompute)
        case .trajectories:
            return Double(config.trajectoryChildTimes(spawn: 0).count * childrenPerSpawn * config.trajectories.examples) * 1e-3
        case .embedding:
            // t-SNE: the input distances (N^2 d) and the iterations (N^2 each, exact); ~1e-3 of a training pass per unit.
            let N = Double(config.trajectoryPoints), d = Double(config.trajectories.examples * classes)
            return 1e-3 * (N * N * d / 100 + Double(config.trajectories.tsne.iterations) * N * N)
        case .kernelTimeline: return Double(config.parentGramTimes.count) * gramCost(examples: probeCount)
        case .kernelChildren: return Double(childrenPerSpawn) * gramCost(examples: probeCount)
        case .hessian:
            // Products: Lanczos, Hutchinson, quadrature and u'Hu; ~2.5 gradients each (exact) or 2 (central).
            let h = config.hessian
            let products = Double(h.iterations + h.traceSamples + h.densityRuns * h.densitySteps + 1)
            return (h.method == .exact ? 2.5 : 2.0) * products * Double(min(h.examples, sizes.trainExamples))
        case .kernelMachine:
            let m = machineExamples(groupRanks: groupRanks)
            return Double(config.kernelMachine.draws) * (gramCost(examples: m) + (testCount + Double(m)) * 6 * f)
        }
    }

    /// Cost of one Gram of `m` examples: the `m C` Jacobian rows plus the `(mC)^2 P` FLOPs of the
    /// lower-triangle contraction. The contraction runs near the GEMM peak while training small
    /// models does not, so FLOPs count a quarter of their training equivalent, and a Jacobian row a
    /// tenth of a training pass (both fitted to the task times of the quick preset, whose Gram units
    /// took 130-570 and its kernel machines ~10,500 units).
    func gramCost(examples m: Int) -> Double {
        let rows = Double(m * sizes.classes)
        return 0.1 * rows + 0.25 * rows * rows * Double(parameters) / Double(trainingFlops)
    }
}
