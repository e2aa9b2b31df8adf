import Foundation

/// `ntkscape bench linearized`: a linearised training step against an ordinary training step of the
/// same model in the same run (target: ratio >= 0.5).
public struct LinearizedBenchResult: Encodable, Sendable {
    public var model: String
    public var batch: Int
    public var threads: Int
    /// Seconds per step (fastest of the timed repetitions).
    public var ordinarySeconds: Double
    public var linearizedSeconds: Double
    public var ordinaryImagesPerSecond: Double
    public var linearizedImagesPerSecond: Double
    /// `linearizedImagesPerSecond / ordinaryImagesPerSecond`.
    public var ratio: Double
    public var sgemmGFLOPs: Double
}

/// `ntkscape bench second-order`: a second-order Taylor training step (`SecondOrderTrainer`) against
/// an ordinary training step of the same model and batch in the same run, with the linearised step
/// between them for reference (target: ordinary / second-order >= 0.3).
public struct SecondOrderBenchResult: Encodable, Sendable {
    public var model: String
    public var input: String
    public var classes: Int
    public var parameters: Int
    public var batch: Int
    public var threads: Int
    /// Seconds per step (fastest of the timed repetitions).
    public var ordinarySeconds: Double
    public var linearizedSeconds: Double
    public var secondOrderSeconds: Double
    /// `ordinarySeconds / secondOrderSeconds` and `ordinarySeconds / linearizedSeconds`.
    public var ratio: Double
    public var linearizedRatio: Double
    public var sgemmGFLOPs: Double
}

/// `ntkscape bench hvp`: seconds per exact (R-op) and finite-difference Hessian-vector product
/// against seconds per full gradient on the same examples, side by side in one run (target: exact
/// ratio <= 2.5; PyTorch's double-backward product measured 2.1 on these machines).
public struct HVPBenchResult: Encodable, Sendable {
    public var model: String
    public var examples: Int
    public var threads: Int
    public var gradientSeconds: Double
    /// The exact product (forward-over-reverse, `TrainingLoss.exactHessianVectorProduct`).
    public var exactSeconds: Double
    public var exactRatio: Double
    public var centralSeconds: Double
    /// Forward differences with `g(w)` already computed (one gradient per product).
    public var forwardSeconds: Double
    public var centralRatio: Double
    public var forwardRatio: Double
    /// `||Hv_forward - Hv_central|| / ||Hv_central||` for one random unit `v`.
    public var forwardVsCentral: Double
    /// `||Hv_central - Hv_exact|| / ||Hv_exact||`: the secant's error at the default step.
    public var centralVsExact: Double
    public var sgemmGFLOPs: Double
}

extension Benchmark {
    /// Ordinary (`Trainer`) and linearised (`LinearizedTrainer`) SGD steps of `kind` on synthetic data
    /// of `input` shape, alternating in the same process.
    public static func linearized(_ kind: ModelKind, batch: Int, input: Shape, classes: Int, repeats: Int,
                                  sgemm: Double, threads: Int, convolutions: ConvolutionChoice = .winograd) -> LinearizedBenchResult {
        let trainer = syntheticTrainer(kind, batch: batch, input: input, classes: classes, convolutions: convolutions)
        let train = trainer.data, recipe = trainer.recipe
        let lin = LinearizedTrainer(model: LinearizedModel(around: trainer.network), settings: LinearizedSettings(recipe: recipe),
                                    data: train, identity: TrainingIdentity(seed: 0))
        let best = bestSecondsInterleaved(repeats: repeats, [{ _ = try? trainer.trainStep() }, { _ = try? lin.trainStep() }])
        let ordinary = best[0], linear = best[1]
        return LinearizedBenchResult(model: kind.rawValue, batch: batch, threads: threads, ordinarySeconds: ordinary,
                                     linearizedSeconds: linear, ordinaryImagesPerSecond: Double(batch) / ordinary,
                                     linearizedImagesPerSecond: Double(batch) / linear, ratio: ordinary / linear,
                                     sgemmGFLOPs: sgemm)
    }

    /// Ordinary (`Trainer`), linearised and second-order (`TaylorTrainer`) SGD steps of `kind` on the
    /// same synthetic batch of `input` shape, alternating in the same process. The Taylor models
    /// expand the trainer's initial network (BatchNorm frozen at its running statistics).
    public static func secondOrder(_ kind: ModelKind, batch: Int, input: Shape, classes: Int, repeats: Int,
                                   sgemm: Double, threads: Int, convolutions: ConvolutionChoice = .winograd) -> SecondOrderBenchResult {
        let trainer = syntheticTrainer(kind, batch: batch, input: input, classes: classes, convolutions: convolutions)
        let train = trainer.data, settings = LinearizedSettings(recipe: trainer.recipe)
        let lin = LinearizedTrainer(model: LinearizedModel(around: trainer.network), settings: settings, data: train,
                                    identity: TrainingIdentity(seed: 0))
        let second = SecondOrderTrainer(model: SecondOrderModel(around: trainer.network), settings: settings, data: train,
                                        identity: TrainingIdentity(seed: 0))
        let best = bestSecondsInterleaved(repeats: repeats, [
            { _ = try? trainer.trainStep() }, { _ = try? lin.trainStep() }, { _ = try? second.trainStep() },
        ])
        return SecondOrderBenchResult(model: kind.rawValue, input: "\(input.c)x\(input.h)x\(input.w)", classes: classes,
                                      parameters: trainer.network.parameterCount, batch: batch, threads: threads,
                                      ordinarySeconds: best[0], linearizedSeconds: best[1], secondOrderSeconds: best[2],
                                      ratio: best[0] / best[2], linearizedRatio: best[0] / best[1], sgemmGFLOPs: sgemm)
    }

    /// A full gradient of the cross-entropy loss of `kind` (Kaiming-initialised, BatchNorm in inference
    /// mode) on `examples` synthetic examples, and exact / central / forward Hessian-vector products
    /// on them, interleaved.
    public static func hvp(_ kind: ModelKind, examples: Int, input: Shape, classes: Int, repeats: Int,
                           sgemm: Double, threads: Int, convolutions: ConvolutionChoice = .winograd) -> HVPBenchResult {
        let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: examples, testCount: 1, channels: input.c,
                                                          height: input.h, width: input.w, classCount: classes))
        let net = kind.build(input: input, classes: classes, as: Float.self, convolutions: convolutions)
        var init0 = RandomStream(seed: 0, role: .initialization)
        net.initialize { init0.normal() }
        let objective = TrainingLoss(network: net, data: train, loss: .crossEntropy)
        let p = net.parameterCount
        var stream = RandomStream(seed: 0, role: .hessian)
        var v = (0..<p).map { _ in Float(stream.normal()) }
        let norm = Float(Vec.norm(v))
        v = v.map { $0 / norm }
        var g = [Float](repeating: 0, count: p), exact = g, central = g, forward = g
        func product(_ scheme: HVPScheme, _ out: inout [Float]) {
            v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
                objective.hessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!, scheme: scheme)
            } }
        }
        // The warm-up round also computes the g(w) the forward scheme reuses.
        let best = bestSecondsInterleaved(repeats: repeats, [
            { _ = g.withUnsafeMutableBufferPointer { objective.gradient(into: $0.baseAddress!) } },
            { v.withUnsafeBufferPointer { vp in exact.withUnsafeMutableBufferPointer {
                objective.exactHessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!)
            } } },
            { product(.central, &central) }, { product(.forward, &forward) },
        ])
        let gradient = best[0], exactSeconds = best[1], centralSeconds = best[2], forwardSeconds = best[3]
        let difference = Vec.distance(forward, central) / Vec.norm(central)
        return HVPBenchResult(model: kind.rawValue, examples: examples, threads: threads, gradientSeconds: gradient,
                              exactSeconds: exactSeconds, exactRatio: exactSeconds / gradient, centralSeconds: centralSeconds, forwardSeconds: forwardSeconds,
                              centralRatio: centralSeconds / gradient, forwardRatio: forwardSeconds / gradient,
                              forwardVsCentral: difference, centralVsExact: Vec.distance(central, exact) / Vec.norm(exact),
                              sgemmGFLOPs: sgemm)
    }
}

/// One row of `ntkscape bench hvp --scan`: a finite-difference Hessian-vector product in Float
/// against the same product in Double (same weights, direction and step).
public struct HVPStepRow: Encodable, Sendable {
    public var scheme: HVPScheme
    public var relativeStep: Double
    /// `v^T H v` for the unit direction `v`, in Float and in Double.
    public var rayleighFloat: Double
    public var rayleighDouble: Double
    /// `||Hv_Float - Hv_Double|| / ||Hv_Double||`: the rounding error of the Float product.
    public var floatError: Double
    /// `||Hv_Double - Hv_Double(h = 1e-3)|| / ||Hv_Double(h = 1e-3)||`: dependence on the step.
    public var stepDependence: Double
}


extension Benchmark {
    /// Accuracy of Float finite-difference Hessian-vector products as a function of the relative step,
    /// for `kind` at initialisation on `examples` synthetic examples (cross-entropy, BN inference mode).
    public static func hvpStepScan(_ kind: ModelKind, examples: Int, input: Shape, classes: Int,
                                   steps: [Double] = [3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5],
                                   convolutions: ConvolutionChoice = .winograd) -> [HVPStepRow] {
        let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: examples, testCount: 1, channels: input.c,
                                                          height: input.h, width: input.w, classCount: classes))
        let netF = kind.build(input: input, classes: classes, as: Float.self, convolutions: convolutions)
        var init0 = RandomStream(seed: 0, role: .initialization)
        netF.initialize { init0.normal() }
        let netD = netF.rebuilt(as: Double.self)
        for i in 0..<netF.parameterCount { netD.params[i] = Double(netF.params[i]) }
        for i in 0..<netF.layout.stateCount { netD.state[i] = Double(netF.state[i]) }
        let lossF = TrainingLoss(network: netF, data: train, loss: .crossEntropy)
        let lossD = TrainingLoss(network: netD, data: train, loss: .crossEntropy)
        let p = netF.parameterCount
        var stream = RandomStream(seed: 0, role: .hessian)
        var vD = (0..<p).map { _ in stream.normal() }
        let norm = vD.reduce(0) { $0 + $1 * $1 }.squareRoot()
        vD = vD.map { Double(Float($0 / norm)) }
        let vF = vD.map { Float($0) }
        func hvpD(_ scheme: HVPScheme, _ h: Double) -> [Double] {
            var out = [Double](repeating: 0, count: p)
            vD.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
                lossD.hessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!, scheme: scheme, relativeStep: h)
            } }
            return out
        }
        func hvpF(_ scheme: HVPScheme, _ h: Double) -> [Double] {
            var out = [Float](repeating: 0, count: p)
            vF.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer {
                lossF.hessianVectorProduct(vp.baseAddress!, into: $0.baseAddress!, scheme: scheme, relativeStep: h)
            } }
            return out.map(Double.init)
        }
        func dist(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let anchor = hvpD(.central, 1e-3)
        var rows: [HVPStepRow] = []
        for scheme in HVPScheme.allCases {
            for h in steps {
                let d = hvpD(scheme, h), f = hvpF(scheme, h)
                rows.append(HVPStepRow(scheme: scheme, relativeStep: h, rayleighFloat: dot(vD, f), rayleighDouble: dot(vD, d),
                                       floatError: dist(f, d), stepDependence: dist(d, anchor)))
            }
        }
        return rows
    }

    /// `λmax` by Lanczos (central differences, Float) at several relative steps, same setting as
    /// `hvpStepScan`: how much the sharpness itself depends on the step.
    public static func lambdaStepScan(_ kind: ModelKind, examples: Int, input: Shape, classes: Int,
                                      steps: [Double] = [2e-2, 1e-2, 5e-3, 2e-3, 1e-3],
                                      convolutions: ConvolutionChoice = .winograd) throws -> [(Double, HessianEstimate)] {
        let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: examples, testCount: 1, channels: input.c,
                                                          height: input.h, width: input.w, classCount: classes))
        let net = kind.build(input: input, classes: classes, as: Float.self, convolutions: convolutions)
        var init0 = RandomStream(seed: 0, role: .initialization)
        net.initialize { init0.normal() }
        return try steps.map { h in
            var s = HessianSettings()
            s.relativeStep = h
            return (h, try topHessianEigenvalue(network: net, data: train, settings: s, start: RandomKey(seed: 0, role: .hessian)))
        }
    }
}
