import ArgumentParser
import Core
import Foundation
import Parallel

/// `ntkscape bench`: throughput next to a same-run 1024^3 sgemm (same threads), as a table and JSON.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training/evaluation throughput against a same-run sgemm.",
        discussion: "ratio = achieved GFLOP/s (analytic FLOPs of the model) / GFLOP/s of a 1024^3 sgemm measured in the same run with the same threads. Each timed repetition runs one sgemm and then one model step; both sides of the ratio are the fastest of their repetitions after one warm-up (the least disturbed run on a shared machine), so both are sampled over the same stretch of the machine's load.")

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case train, eval, ntk, linearized, hvp, plane
        case secondOrder = "second-order"
    }

    @Argument(help: "What to measure: train (forward+loss+backward+SGD), eval (forward, BN inference), ntk (empirical-NTK Gram per --probe size; see BenchNTK.swift for the FLOP count), linearized (linearised vs ordinary training step), hvp (exact and finite-difference Hessian-vector products vs a full gradient), second-order (second-order Taylor training step vs an ordinary and a linearised step of the same model and batch), plane (a loss-plane grid point, with and without the tangent-plane models, vs a plain evaluation of the same --examples).")
    var target: Target
    @Option(help: "Models (comma-separated).") var model: String = "resnet20,simplecnn"
    @Option(help: "Batch size (default: 128 train, 1000 eval).") var batch: Int?
    @Option(help: "Input shape CxHxW.") var input: Shape = Shape(3, 32, 32)
    @Option(help: "Classes.") var classes: Int = 10
    @Option(help: "Timed repetitions (fastest reported).") var repeats: Int = 5
    @Option(help: "OpenBLAS threads (default: $OPENBLAS_NUM_THREADS, else all cores).") var threads: Int?
    @Option(help: "Also write the results as JSON to this file.") var json: String?
    @Option(help: "ntk: probe sizes m (comma-separated).") var probe: String = "100,200,500"
    @Option(name: .customLong("memory-gb"), help: "ntk: memory budget in GiB.") var memoryGB: Double = NTKSection.defaultMemoryGb
    @Option(name: .customLong("block-size"), help: "ntk: rows per block.") var blockSize: Int?
    @Option(help: "hvp: examples in the gradient / Hessian-vector product; plane: test examples per grid point.") var examples: Int = 1000
    @Option(help: "Convolution algorithm of 3x3 stride-1 padding-1 layers: winograd (Winograd F(2x2,3x3) for calls of at least 512 output pixels, im2col below; the default everywhere) or im2col (im2col + GEMM always), to compare the two. GFLOP/s always count the direct convolution's FLOPs.")
    var conv: ConvolutionChoice = .winograd
    @Option(name: .customLong("ranks-per-network"),
            help: "train, under mpirun: also train each model on a group of this many ranks sharing one network (data parallelism, recipe.shards), alternating with rank 0 alone, and report the speedup and parallel efficiency. Needs at least this many ranks; --threads is per rank (default 1 here).")
    var ranksPerNetwork: Int?
    @Option(help: "train: shards each batch is cut into (recipe.shards).") var shards: Int = TrainingRecipe().shards
    @Flag(help: "hvp: instead of timings, the accuracy of Float products against Double over a range of steps.") var scan = false

    func validate() throws {
        for m in model.split(separator: ",") where ModelKind(rawValue: String(m)) == nil {
            throw ValidationError("unknown model \(m); choose from \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        try OptionChecks.threads(threads)
        if let batch { try OptionChecks.positive(batch, option: "--batch", what: "examples per step", example: 128) }
        try OptionChecks.positive(shards, option: "--shards", what: "shards per batch", example: 8)
        if let ranksPerNetwork {
            try OptionChecks.positive(ranksPerNetwork, option: "--ranks-per-network", what: "ranks sharing one network", example: 2)
            if target != .train { throw ValidationError("--ranks-per-network applies to `bench train` only") }
        }
    }

    func run() throws {
        try during("bench set-up", fix: rerunFix) { try FaultInjection.check(.setup, rank: JobFailure.launchRank ?? 0) }
        if [.linearized, .hvp, .secondOrder, .plane].contains(target) { return try runNTKBench() }
        if let ranksPerNetwork { return try runGroupBench(ranksPerNetwork) }
        let decision = BLASThreads.configure(option: threads, ranksOnNode: 1)
        if target == .ntk {
            return try BenchNTK.run(models: model.split(separator: ",").map { ModelKind(rawValue: String($0))! },
                                    probes: probe.split(separator: ",").compactMap { Int($0) }, input: input, classes: classes,
                                    threads: decision.threads, memoryGiB: memoryGB, blockSize: blockSize, convolutions: conv, json: json)
        }
        let results = model.split(separator: ",").map { name in
            Benchmark.model(ModelKind(rawValue: String(name))!, training: target == .train,
                            batch: batch ?? (target == .train ? 128 : 1000), input: input, classes: classes,
                            repeats: repeats, threads: decision.threads, convolutions: conv)
        }
        print("\(decision.threads) thread(s); sgemm = 1024^3 sgemm interleaved with the model's repetitions")
        print("target  model          batch      img/s    GFLOP/s    sgemm   ratio")
        for r in results {
            print(r.name.padding(toLength: 8, withPad: " ", startingAt: 0) + r.model.padding(toLength: 14, withPad: " ", startingAt: 0)
                  + String(format: "%6d %10.1f %10.1f %8.1f %7.2f", r.batch, r.imagesPerSecond, r.gflops, r.sgemmGFLOPs, r.ratio))
        }
        let data = try JSONEncoder.pretty.encode(results)
        print(String(decoding: data, as: UTF8.self))
        if let json {
            try during("writing \(json)", fix: "free disk space or choose a writable --json file, then rerun") {
                try AtomicFile.write(data, to: json)
            }
        }
    }
}

extension Bench {
    /// `bench train --ranks-per-network G` on every rank of the job (rank 0 prints).
    func runGroupBench(_ ranks: Int) throws {
        let world = Parallel.worldCommunicator()
        guard ranks <= world.size else {
            throw ValidationError("--ranks-per-network \(ranks) needs at least \(ranks) MPI ranks; this job has \(world.size). "
                                  + "Run it as: mpirun -np \(ranks) ntkscape bench train --ranks-per-network \(ranks)")
        }
        guard ranks <= shards else {
            throw ValidationError("--ranks-per-network \(ranks) exceeds --shards \(shards): at most one rank per shard")
        }
        let decision = BLASThreads.configure(option: threads ?? 1, ranksOnNode: world.size)
        let results = model.split(separator: ",").compactMap { name in
            Benchmark.groupTraining(ModelKind(rawValue: String(name))!, batch: batch ?? 128, shards: shards, input: input,
                                    classes: classes, repeats: repeats, ranks: ranks, threads: decision.threads, world: world)
        }
        guard world.rank == 0 else { return }
        print("\(decision.threads) thread(s) per rank; each batch in \(shards) shards; one rank alone and \(ranks) ranks sharing "
              + "the network, in alternating steps (fastest of \(repeats))")
        print("model          batch  ranks   1 rank img/s   group img/s   speedup   efficiency")
        for r in results {
            print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0)
                  + String(format: "%6d %6d %14.1f %13.1f %9.2f %11.0f%%", r.batch, r.ranks, r.singleImagesPerSecond,
                           r.groupImagesPerSecond, r.speedup, 100 * r.efficiency))
        }
        let data = try JSONEncoder.pretty.encode(results)
        print(String(decoding: data, as: UTF8.self))
        if let json {
            try during("writing \(json)", fix: "free disk space or choose a writable --json file, then rerun") {
                try AtomicFile.write(data, to: json)
            }
        }
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
