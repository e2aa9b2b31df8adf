import ArgumentParser
import Core
import Foundation
import Parallel

/// `ntkscape ntk CHECKPOINT --probe M`: one empirical-NTK Gram, its spectrum and label alignment.
/// Runs as one process or under `mpirun -np N` (the Gram's rows spread over the ranks; rank 0
/// prints and writes).
struct NTK: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute the empirical-NTK Gram of a checkpoint on a class-balanced probe set.",
        discussion: """
            The Gram K[(i,c),(j,c')] = <df_c(x_i)/dw, df_c'(x_j)/dw> (mC x mC, row i*C+c, BatchNorm in \
            inference mode) is built in ScaLAPACK's block-cyclic layout over the ranks and analysed in place \
            (pdsyevd under mpirun, dsyevd on one rank). Prints the spectrum of the full Gram and of the \
            logit-traced m x m kernel (eigenvalues on a grid of 9 significant digits of the largest), trace, condition \
            number, effective rank (participation ratio), kernel-target alignment, and timings. \
            The probe set is m/C examples per class of the training split, chosen by --seed (stream role probe).             --machine N fits the experiment's kernel machines (kernel_machine, docs/ntk.md) on N class-balanced             training examples: the ridge chosen on the held-out part from the grid --ridges (relative to the             Gram's mean diagonal), both forms, with the experiment's defaults.
            """)

    @Argument(help: "A checkpoint written by ntkscape.") var checkpoint: String
    @Option(help: "Probe examples m (a multiple of the class count).") var probe: Int
    @OptionGroup var data: DataOptions
    @Option(help: "Seed of the probe set (and --balanced-subset).") var seed: UInt64 = 0
    @Option(help: "Write the full symmetric Gram as .npy ('<f8', C order; at most \(NPY.maxOrder) rows).") var out: String?
    @Option(name: .customLong("eigenvalues"), help: "Write the full Gram's eigenvalues (descending) as CSV.") var eigenvaluesCSV: String?
    @Option(name: .customLong("top-k"), help: "Leading eigenvectors to compute (printed: their first entries).") var topK: Int = 0
    @Option(name: .customLong("memory-gb"), help: "Memory budget per rank in GiB (ntk.memory_gb, same default).")
    var memoryGB: Double = NTKSection.defaultMemoryGb
    @Option(name: .customLong("block-size"), help: "Rows per block of the block-cyclic layout (multiple of the class count; default ~500).") var blockSize: Int?
    @Option(help: "Also fit the NTK kernel machines on this many class-balanced training examples (at least 2 per class) and report their test errors (0: skip).")
    var machine: Int = 0
    @Option(parsing: .upToNextOption,
            help: "Ridge grid of the machines relative to the Gram's mean diagonal, K + ridge * trace(K)/(nC) * I (kernel_machine.ridges, same default).")
    var ridges: [Double] = KernelMachineSection.defaultRidges
    @Option(name: .customLong("held-out"), help: "Fraction of the machine's examples held out to choose the ridge (kernel_machine.held_out, same default).")
    var heldOut: Double = KernelMachineSection().heldOut
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if probe < 1 { throw ValidationError("--probe must be at least 1") }
        if topK < 0 { throw ValidationError("--top-k must be >= 0") }
        if memoryGB <= 0 { throw ValidationError("--memory-gb must be positive") }
        if machine < 0 { throw ValidationError("--machine must be >= 0") }
        if ridges.isEmpty || ridges.contains(where: { !($0 > 0) }) { throw ValidationError("--ridges must be positive numbers") }
        if !(heldOut > 0 && heldOut < 1) { throw ValidationError("--held-out must lie strictly between 0 and 1") }
    }

    func run() throws {
        let world = Parallel.worldCommunicator()
        let decision = world.configureBLASThreads(option: threadOptions.threads)
        let root = world.rank == 0
        let say = { (s: String) in if root { print(s) } }
        // Set-up, agreed over the ranks: a bad checkpoint or data set is reported once.
        let (net, train, test, probeSet) = try world.agree {
            try during("set-up", fix: "check the checkpoint and data options named above, then rerun") {
                if root {   // the outputs, before the Gram is built
                    for (path, option) in [(out, "--out"), (eigenvaluesCSV, "--eigenvalues")] {
                        guard let path else { continue }
                        try during("writing \(path)", fix: "give \(option) a path in a writable directory, then rerun") {
                            try OutputPath.checkWritableFile(path, option: option)
                        }
                    }
                }
                let (net, train, test) = try data.load(checkpoint: checkpoint, seed: seed)
                let probeSet = try train.probeSubset(count: probe, seed: seed)
                try FaultInjection.check(.setup, rank: world.rank)
                return (net, train, test, probeSet)
            }
        }
        let algebra: GramLinearAlgebra = world.size == 1 ? LAPACKGramAlgebra() : try ScaLAPACKGramAlgebra(communicator: world)
        let analysis = NTKAnalysis(communicator: world, algebra: algebra,
                                   options: NTKGramOptions(memoryGiB: memoryGB, blockSize: blockSize))
        say("\(net.kind.rawValue) (\(net.parameterCount) parameters), probe m = \(probe) x C = \(net.classes): "
            + "\(probe * net.classes) x \(probe * net.classes) Gram on \(world.size) rank(s) x \(decision.threads) thread(s)")

        let (gram, stats) = try during("building the Gram", fix: rerunFix) {
            try FaultInjection.check(.ntk, rank: world.rank)
            return try analysis.gram(net, probe: probeSet)
        }
        say(String(format: "gram: %.2f s (Jacobian %.2f s, contraction %.2f s, exchange %.2f s); %d parameter chunk(s) of %d; planned %.2f GiB/rank",
                   stats.seconds, stats.jacobianSeconds, stats.contractionSeconds, stats.communicationSeconds,
                   stats.parameterChunks, stats.chunkSize, Double(stats.plannedBytes) / 1_073_741_824))
        if let out {
            let full = gram.gatherFull(world)
            if let full {
                try during("writing \(out)", fix: "free disk space or choose a writable --out, then rerun") {
                    try FaultInjection.check(.tables, rank: world.rank)
                    try NPY.writeSquare(full, order: gram.order, to: out)
                }
                say("wrote \(out)")
            }
        }
        var t = Benchmark.now()
        let spectrum = try analysis.spectrum(gram, topVectors: topK)
        let eigenSeconds = Benchmark.now() - t
        let traced = try analysis.spectrum(gram.traced())
        let alignment = analysis.alignment(gram, labels: (0..<probeSet.count).map(probeSet.label))
        for s in [spectrum, traced] {
            let cond = s.conditionNumber.isFinite ? String(format: "%.6e", s.conditionNumber) : "inf (lambda_min <= 0)"
            say("\(s.form) \(s.order) x \(s.order): " + String(format: "trace %.9e  lambda_max %.9e  lambda_min %.9e  ",
                                                          s.trace, s.largest, s.smallest)
                + "cond \(cond)  " + String(format: "eff. rank %.4f", s.effectiveRank))
            say("  top eigenvalues: " + s.eigenvalues.prefix(10).map { String(format: "%.9e", $0) }.joined(separator: " "))
        }
        for (q, v) in spectrum.topVectors.enumerated() {
            say("  eigenvector \(q): " + v.prefix(8).map { String(format: "%+.6f", $0) }.joined(separator: " ") + (v.count > 8 ? " ..." : ""))
        }
        say(String(format: "alignment (uncentred, one-hot): full %.9f  traced %.9f", alignment.full, alignment.traced))
        say(String(format: "eigen-decomposition: %.2f s", eigenSeconds))
        if root, let eigenvaluesCSV {
            try during("writing \(eigenvaluesCSV)", fix: "free disk space or choose a writable --eigenvalues file, then rerun") {
                try AtomicFile.write("index,eigenvalue\n" + spectrum.eigenvalues.enumerated().map { "\($0.offset),\(String(format: "%.9e", $0.element))" }.joined(separator: "\n") + "\n", to: eigenvaluesCSV)
            }
            print("wrote \(eigenvaluesCSV)")
        }
        if machine > 0 {
            t = Benchmark.now()
            guard machine >= 2 * train.classCount else {
                throw ValidationError("--machine \(machine): at least 2 examples per class (\(2 * train.classCount)) are needed to hold some out")
            }
            let indices = try train.classBalancedIndices(count: machine, key: RandomKey(seed: seed, replicate: 0, role: .subset))
            let (data, fitCount) = train.fitThenHeldOut(indices: indices, heldOut: heldOut)
            for m in try analysis.selectedMachine(net, data: data, fitCount: fitCount, test: test, relativeRidges: ridges) {
                let chosen = m.ridges[m.chosen]
                say("NTK machine (\(m.form.rawValue)): " + String(format: "%d train (%d fit, %d held out), %d test; ridge %g x mean "
                    + "diagonal = %g (held-out loss %.6g): test error %.4f", m.trainCount, m.fitCount, m.trainCount - m.fitCount,
                    test.count, chosen.relative, chosen.absolute, chosen.heldOutLoss, m.testError))
            }
            say(String(format: "kernel machines: %.2f s", Benchmark.now() - t))
        }
    }
}
