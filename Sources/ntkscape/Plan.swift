import ArgumentParser
import Core
import Foundation

/// `ntkscape plan EXPERIMENT --ranks N`: task counts, cost and makespan estimates, sbatch resources.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate tasks, core-hours and makespan of an experiment on N ranks, and suggest sbatch resources.",
        discussion: "Costs come from a short calibration: a few training steps of the experiment's model on its data, timed here.")

    @OptionGroup var experiment: ExperimentOptions
    @Option(help: "Ranks to plan for.") var ranks: Int = 2
    @Option(help: "Threads per rank (as for run).") var threads: Int?
    @Option(name: .customLong("calibration-steps"), help: "Training steps timed for the calibration.") var calibrationSteps = 5

    func validate() throws {
        try OptionChecks.positive(ranks, option: "--ranks", what: "MPI ranks to plan for", example: 2)
        try OptionChecks.positive(calibrationSteps, option: "--calibration-steps", what: "training steps timed to calibrate the costs", example: 5)
        try OptionChecks.threads(threads)
    }

    func run() throws {
        if try experiment.printConfigIfAsked() { return }
        let config = try experiment.load()
        let t = BLASThreads.configure(option: threads ?? config.threads ?? 1, ranksOnNode: 1).threads
        // Set-up checks are made below for --ranks ranks, not for this one process.
        let runner = try ExperimentRunner(config: config, runsRoot: "runs", comm: SerialCommunicator(), log: { _ in }, checks: false)
        // Seconds per cost unit (one training-example pass) from timed steps of the real recipe.
        let trainer = Trainer(network: config.model.build(input: Shape(runner.train.channels, runner.train.height, runner.train.width),
                                                          classes: runner.train.classCount),
                              recipe: config.trainingRecipe, data: runner.train, identity: TrainingIdentity(seed: config.seed))
        trainer.initializeWeights()
        try trainer.trainStep()
        let t0 = Benchmark.now()
        for _ in 0..<calibrationSteps { try trainer.trainStep() }
        let perUnit = (Benchmark.now() - t0) / Double(calibrationSteps * config.recipe.batchSize)
        let tasks = runner.tasks(), kernel = runner.kernelTasks()
        let counts = Dictionary(grouping: tasks + kernel, by: { "\($0.task)".prefix { $0 != "(" } }).mapValues(\.count)
        print("tasks: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        print(String(format: "calibration: %.0f training images/s with %d thread(s)", 1 / perUnit, t))
        // The collective NTK tasks run after the pipelined ones, spread over the groups of ranks.
        func kernelPhase(_ n: Int) -> Double {
            runner.kernelAssignment(groups: runner.kernelGroups(ranks: n)).map { group in
                group.reduce(0.0) { sum, task in sum + kernel.first { $0.task == task }!.planned.cost }
            }.max() ?? 0
        }
        let kernelTotal = kernel.reduce(0.0) { $0 + $1.planned.cost }
        let plan = TaskPlan(tasks: tasks.map(\.planned), ranks: ranks)
        let coreHours = (plan.totalCost + kernelTotal) * perUnit * Double(t) / 3600
        print(String(format: "total work: %.2f core-hours", coreHours)
              + " (\(formatDuration((plan.totalCost + kernelTotal) * perUnit)) on one rank; NTK part \(formatDuration(kernelTotal * perUnit)))")
        print("ranks  makespan   efficiency")
        for n in Set([1, 2, 4, 8, 16, 32, ranks]).sorted() {
            let p = TaskPlan(tasks: tasks.map(\.planned), ranks: n)
            let makespan = p.makespan + kernelPhase(n)
            print(String(format: "%5d  ", n) + formatDuration(makespan * perUnit).leftPadded(9)
                  + String(format: "  %5.0f%%", 100 * (p.totalCost + kernelTotal) / (Double(n) * makespan)))
        }
        // Memory per rank (MemoryEstimate, the estimate `run` checks at set-up) and disk.
        let memory = runner.memoryEstimate(ranks: ranks)
        print("memory per rank on \(ranks) rank(s) (NTK groups of \(memory.groupRanks)): peak \(MemoryEstimate.format(memory.peak.bytes)) "
              + "in \(memory.peak.name)")
        memory.lines.forEach { print($0) }
        do { try memory.check() } catch { print("refused at set-up on \(ranks) rank(s): \(error)") }
        let disk = runner.checkpointBytes()
        print("disk: \(disk.count) checkpoints, about \(MemoryEstimate.format(disk.bytes)) in the run directory")
        let wall = (plan.makespan + kernelPhase(ranks)) * perUnit * 1.3 + 300
        print("suggested: sbatch --ntasks=\(ranks) --cpus-per-task=\(t) --mem-per-cpu=\(memoryPerCPU(memory.peak.bytes, threads: t)) "
              + "--time=\(slurmTime(wall)) slurm/ntkscape.sbatch \(experiment.experiment ?? "")")
    }

    /// Slurm's `--mem-per-cpu` for `bytes` per rank over `threads` CPUs: 25% headroom, whole GiB
    /// (at least 1), or MiB below 4 GiB.
    func memoryPerCPU(_ bytes: Int, threads: Int) -> String {
        let perCPU = Double(bytes) * 1.25 / Double(max(1, threads))
        if perCPU < 4 * 1_073_741_824 { return "\(max(256, Int((perCPU / 1_048_576).rounded(.up))))M" }
        return "\(Int((perCPU / 1_073_741_824).rounded(.up)))G"
    }

    func slurmTime(_ s: Double) -> String {
        let m = Int(s / 60) + 1
        return String(format: "%d-%02d:%02d:00", m / 1440, (m % 1440) / 60, m % 60)
    }
}
