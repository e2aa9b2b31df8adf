import ArgumentParser
import Core
import Foundation

/// `ntkscape plan EXPERIMENT --ranks N`: task counts, cost and makespan estimates (with and without
/// data-parallel training groups, over a sweep of rank counts), the critical path, NTK groups and
/// memory, sbatch resources.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate tasks, core-hours and makespan of an experiment on N ranks, and suggest sbatch resources.",
        discussion: "Costs come from a short calibration: a few training steps of the experiment's model on its data, timed here "
            + "(on random images of the data's shape when the data are not on this machine: the plan then uses the data set's "
            + "published sizes). Training groups' communication comes from an assumed network model, printed.")

    @OptionGroup var experiment: ExperimentOptions
    @Option(help: "Ranks to plan for.") var ranks: Int = 2
    @Option(help: "Threads per rank (as for run).") var threads: Int?
    @Option(name: .customLong("calibration-steps"), help: "Training steps timed for the calibration.") var calibrationSteps = 5

    func validate() throws {
        try OptionChecks.positive(ranks, option: "--ranks", what: "MPI ranks to plan for", example: 2)
        try OptionChecks.positive(calibrationSteps, option: "--calibration-steps", what: "training steps timed to calibrate the costs", example: 5)
        try OptionChecks.threads(threads)
    }

    /// The rank counts of the makespan table: powers of two up to 256 (and `--ranks`).
    static func sweep(_ ranks: Int) -> [Int] { Set([1, 2, 4, 8, 16, 32, 64, 128, 256, ranks]).sorted() }

    func run() throws {
        if try experiment.printConfigIfAsked() { return }
        let config = try experiment.load()
        let t = BLASThreads.configure(option: threads ?? config.threads ?? 1, ranksOnNode: 1).threads
        // The data when they are here (exact sizes), else the data set's published sizes.
        let planner: ExperimentPlanner, calibrationData: Dataset
        do {
            // Set-up checks are made below for --ranks ranks, not for this one process.
            let runner = try ExperimentRunner(config: config, runsRoot: "runs", comm: SerialCommunicator(), log: { _ in }, checks: false)
            (planner, calibrationData) = (runner.planner, runner.train)
        } catch let error as DatasetError {
            guard let sizes = PlanSizes.nominal(config) else { throw error }
            print("note: the data are not here (\(error)); planning from \(config.dataset.kind.displayName)'s published sizes "
                  + "(\(sizes.trainExamples) training, \(sizes.testExamples) test examples), calibrating on random images")
            planner = ExperimentPlanner(config: config, sizes: sizes)
            calibrationData = Self.randomImages(sizes, count: config.recipe.batchSize * (calibrationSteps + 1), seed: config.seed)
        }
        let sizes = planner.sizes
        // Seconds per cost unit (one training-example pass) from timed steps of the real recipe.
        let trainer = Trainer(network: config.model.build(input: sizes.input, classes: sizes.classes),
                              recipe: config.trainingRecipe, data: calibrationData, identity: TrainingIdentity(seed: config.seed))
        trainer.initializeWeights()
        try trainer.trainStep()
        let t0 = Benchmark.now()
        for _ in 0..<calibrationSteps { try trainer.trainStep() }
        let perUnit = (Benchmark.now() - t0) / Double(calibrationSteps * config.recipe.batchSize)
        let tasks = planner.tasks(ranks: ranks), kernel = planner.kernelTasks()
        let counts = Dictionary(grouping: tasks + kernel, by: { "\($0.task)".prefix { $0 != "(" } }).mapValues(\.count)
        print("tasks: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        print(String(format: "calibration: %.0f training images/s with %d thread(s)", 1 / perUnit, t))
        let kernelTotal = kernel.reduce(0.0) { $0 + $1.planned.cost }
        let pipelinedTotal = tasks.reduce(0.0) { $0 + $1.planned.cost }
        let coreHours = (pipelinedTotal + kernelTotal) * perUnit * Double(t) / 3600
        print(String(format: "total work: %.2f core-hours", coreHours)
              + " (\(formatDuration((pipelinedTotal + kernelTotal) * perUnit)) on one rank; NTK part \(formatDuration(kernelTotal * perUnit)))")
        print(planner.network.summary)
        print("training groups: at most \(planner.maxTrainingGroup(ranks: Int.max)) ranks per network "
              + "(recipe.shards \(config.recipe.shards)" + (config.plan.groupRanks > 0 ? ", plan.group_ranks \(config.plan.groupRanks)" : "")
              + "); times below are estimates from the cost model, not measurements")
        print("ranks  no groups  groups     efficiency  NTK/Hessian phase (groups x ranks)")
        for n in Self.sweep(ranks) {
            let single = planner.makespan(ranks: n, groups: false), grouped = planner.makespan(ranks: n)
            let kernelGroups = planner.kernelGroups(ranks: n)
            let phase = planner.kernelPhase(groups: kernelGroups, ranks: n)
            print(String(format: "%5d  ", n) + formatDuration(single * perUnit).leftPadded(9) + "  "
                  + formatDuration(grouped * perUnit).leftPadded(9)
                  + String(format: "  %5.0f%%      ", 100 * (pipelinedTotal + kernelTotal) / (Double(n) * grouped))
                  + formatDuration(phase * perUnit) + " (\(kernelGroups) x \(n / kernelGroups))")
        }
        let plan = planner.plan(ranks: ranks)
        let planned = tasks.map(\.planned)
        print("critical path on \(ranks) rank(s) (task, ranks, start - end):")
        for slot in plan.criticalPath(tasks: planned) {
            print("  \(slot.task.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(slot.group.count).leftPadded(3))  "
                  + "\(formatDuration(slot.start * perUnit)) - \(formatDuration(slot.end * perUnit))")
        }
        let grouped = plan.slots.values.filter { $0.group.count > 1 }
        if !grouped.isEmpty {
            let bySize = Dictionary(grouping: grouped, by: { $0.group.count }).mapValues(\.count)
            print("training tasks on groups: " + bySize.sorted { $0.key > $1.key }.map { "\($0.value) on \($0.key) ranks" }.joined(separator: ", ")
                  + "; \(plan.groups.count) sub-communicator(s)")
        }
        // NTK groups and memory per rank (MemoryEstimate, the estimate `run` checks at set-up) and disk.
        let kernelGroups = planner.kernelGroups(ranks: ranks)
        let memory = planner.memoryEstimate(groupRanks: planner.kernelGroupRanks(ranks: ranks))
        print("NTK/Hessian groups on \(ranks) rank(s): \(kernelGroups) group(s) of \(memory.groupRanks) rank(s)"
              + (config.ntk.groupSize > 0 ? " (ntk.group_size)" : " (automatic: fits ntk.memory_gb, shortest phase)"))
        for phase in memory.phases where phase.requiredBytes != nil {
            print("  \(phase.name): Gram memory per rank \(MemoryEstimate.format(phase.requiredBytes!)) of ntk.memory_gb "
                  + "\(MemoryEstimate.format(memory.budgetBytes))")
        }
        print("memory per rank on \(ranks) rank(s) (NTK groups of \(memory.groupRanks)): peak \(MemoryEstimate.format(memory.peak.bytes)) "
              + "in \(memory.peak.name)")
        memory.lines.forEach { print($0) }
        do { try memory.check() } catch { print("refused at set-up on \(ranks) rank(s): \(error)") }
        let disk = planner.checkpointBytes()
        print("disk: \(disk.count) checkpoints, about \(MemoryEstimate.format(disk.bytes)) in the run directory")
        let wall = planner.makespan(ranks: ranks) * perUnit * 1.3 + 300
        print("suggested: sbatch --ntasks=\(ranks) --cpus-per-task=\(t) --mem-per-cpu=\(memoryPerCPU(memory.peak.bytes, threads: t)) "
              + "--time=\(slurmTime(wall)) slurm/ntkscape.sbatch \(experiment.experiment ?? "")")
    }

    /// `count` random images of the data's shape (for timing only: speed does not depend on the values).
    static func randomImages(_ sizes: PlanSizes, count: Int, seed: UInt64) -> Dataset {
        var stream = RandomStream(seed: seed, replicate: 0, role: .initialization, child: 0)
        let images = (0..<(count * sizes.input.count)).map { _ in Float(stream.normal()) }
        let labels = (0..<count).map { Int32($0 % sizes.classes) }
        return Dataset(name: "calibration", images: images, labels: labels, channels: sizes.input.c, height: sizes.input.h,
                       width: sizes.input.w, classCount: sizes.classes)
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
