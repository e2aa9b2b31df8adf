import CLinAlg
import Foundation

/// Throughput measurements for `ntkscape bench`. Every figure is reported next to a 1024^3 `sgemm`
/// measured in the same run with the same threads, because these machines are shared and noisy.
public enum Benchmark {
    /// Seconds since an arbitrary origin (monotonic).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// The fastest time of each of `bodies`, run in interleaved rounds (one warm-up round, then
    /// `repeats` timed ones): on a shared machine the least disturbed run is the best estimate of
    /// what the code can do, and a disturbance hits every side of a comparison alike.
    public static func bestSecondsInterleaved(repeats: Int, _ bodies: [() -> Void]) -> [Double] {
        var best = [Double](repeating: .infinity, count: bodies.count)
        for round in 0...max(repeats, 1) {
            for (i, body) in bodies.enumerated() {
                let t0 = now(); body()
                if round > 0 { best[i] = min(best[i], now() - t0) }
            }
        }
        return best
    }

    /// GFLOP/s of a row-major `n x n x n` single-precision GEMM (fastest of `repeats`).
    public static func sgemmGFLOPs(n: Int = 1024, repeats: Int = 9) -> Double {
        let probe = SgemmProbe(n: n)
        return probe.gflops(seconds: bestSecondsInterleaved(repeats: repeats, [probe.run])[0])
    }
}

/// The reference of every ratio: a row-major `n x n x n` sgemm through `Float.gemm` (the path the
/// layers use, split over the same threads).
struct SgemmProbe {
    let n: Int
    let a: Buffer<Float>, b: Buffer<Float>, c: Buffer<Float>
    init(n: Int = 1024) {
        self.n = n
        a = Buffer(count: n * n, value: 0.5); b = Buffer(count: n * n, value: 0.25); c = Buffer(count: n * n)
    }
    func run() {
        Float.gemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: a.pointer, lda: n,
                   b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
    }
    func gflops(seconds: Double) -> Double { 2 * Double(n * n * n) / seconds / 1e9 }
}

/// One throughput figure of `ntkscape bench`, next to the same-run sgemm rate.
public struct BenchResult: Encodable, Sendable {
    public var name: String
    public var model: String
    public var batch: Int
    public var threads: Int
    /// Seconds per batch (fastest of the timed repetitions).
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Analytic FLOPs per batch divided by `seconds`.
    public var gflops: Double
    public var sgemmGFLOPs: Double
    public var ratio: Double { gflops / sgemmGFLOPs }

    enum CodingKeys: String, CodingKey { case name, model, batch, threads, seconds, imagesPerSecond, gflops, sgemmGFLOPs, ratio }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name); try c.encode(model, forKey: .model); try c.encode(batch, forKey: .batch)
        try c.encode(threads, forKey: .threads); try c.encode(seconds, forKey: .seconds)
        try c.encode(imagesPerSecond, forKey: .imagesPerSecond); try c.encode(gflops, forKey: .gflops)
        try c.encode(sgemmGFLOPs, forKey: .sgemmGFLOPs); try c.encode(ratio, forKey: .ratio)
    }
}

extension Benchmark {
    /// An initialised SGD trainer of `kind` on one batch of synthetic data of `input` shape.
    public static func syntheticTrainer(_ kind: ModelKind, batch: Int, input: Shape, classes: Int,
                                        convolutions: ConvolutionChoice = .winograd, shards: Int = TrainingRecipe().shards,
                                        group: Communicator = SerialCommunicator()) -> Trainer {
        let (train, _) = SyntheticData.make(SyntheticSpec(trainCount: batch, testCount: 1, channels: input.c,
                                                          height: input.h, width: input.w, classCount: classes))
        var recipe = TrainingRecipe()
        recipe.batchSize = batch; recipe.learningRate = 0.01; recipe.shards = shards
        let trainer = Trainer(network: kind.build(input: input, classes: classes, convolutions: convolutions), recipe: recipe, data: train,
                              identity: TrainingIdentity(seed: 0), group: group)
        trainer.initializeWeights()
        return trainer
    }

    /// Training steps (forward, loss, backward, SGD update) or evaluation forwards of `model` on
    /// synthetic inputs of `input` shape; FLOPs counted analytically from the layers.
    ///
    /// The 1024^3 sgemm and the model step alternate (`bestSecondsInterleaved`): both ends of the
    /// ratio are sampled over the same stretch of a shared machine's load, instead of an sgemm timed
    /// minutes away from the model.
    public static func model(_ kind: ModelKind, training: Bool, batch: Int, input: Shape, classes: Int,
                             repeats: Int, threads: Int, convolutions: ConvolutionChoice = .winograd) -> BenchResult {
        let trainer = syntheticTrainer(kind, batch: batch, input: input, classes: classes, convolutions: convolutions)
        let train = trainer.data, net = trainer.network
        func step() {
            if training {
                _ = try? trainer.trainStep()
            } else {
                _ = train.images.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: batch, mode: .eval) }
            }
        }
        let probe = SgemmProbe()
        let best = bestSecondsInterleaved(repeats: repeats, [probe.run, step])
        let sgemmSeconds = best[0], seconds = best[1]
        let flops = Double(training ? net.trainingFlops : net.forwardFlops) * Double(batch)
        return BenchResult(name: training ? "train" : "eval", model: kind.rawValue, batch: batch, threads: threads,
                           seconds: seconds, imagesPerSecond: Double(batch) / seconds, gflops: flops / seconds / 1e9,
                           sgemmGFLOPs: probe.gflops(seconds: sgemmSeconds))
    }
}
