import ArgumentParser
import Core

extension ProgressMode: ExpressibleByArgument {}

/// The experiment of `run` and `plan`: the file, its `--set` overrides, and `--print-config`.
struct ExperimentOptions: ParsableArguments {
    @Argument(help: "Experiment file (YAML); omitted = configs/quick.yaml, built in.") var experiment: String?

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp(
        "Override a setting of the experiment file: --set KEY=VALUE (repeatable), e.g. --set recipe.epochs=3.",
        discussion: "KEY is the setting's key path as in the file (`ntkscape run --explain`); VALUE is read as YAML "
            + "(`3`, `0.01`, `[0, 0.5]`, `{milestones: [2], gamma: 0.1}`) and checked like the file. Overrides are "
            + "part of the experiment: they change the run directory like an edit of the file (docs/experiment.md).",
        valueName: "key=value"))
    var set: [String] = []

    @Flag(name: .customLong("print-config"),
          help: "Print the resolved experiment (every setting, after --set) as YAML, and exit.")
    var printConfig = false

    /// The `--set` overrides, parsed.
    func overrides() throws -> [ConfigOverride] { try set.map { try ConfigOverride(argument: $0) } }

    /// The experiment with its overrides, validated.
    func load() throws -> ExperimentConfig {
        try ExperimentConfig.load(experiment: experiment, overrides: overrides())
    }

    /// Prints the resolved experiment when `--print-config` is given; true when it did.
    func printConfigIfAsked() throws -> Bool {
        guard printConfig else { return false }
        print(try load().resolvedYAML(), terminator: "")
        return true
    }
}
