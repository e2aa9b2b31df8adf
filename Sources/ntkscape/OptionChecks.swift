import ArgumentParser

/// Checks of command-line values shared by the commands: each refuses a value the command cannot
/// use (it would trap or divide by zero) with the option, the value and the fix, before any work.
enum OptionChecks {
    /// `--threads`: nil (the default) or at least 1.
    static func threads(_ threads: Int?) throws {
        if let threads, threads < 1 {
            throw ValidationError("--threads must be at least 1, got \(threads). Fix: give the compute threads per rank "
                                  + "(e.g. --threads 1), or leave it out for the default.")
        }
    }

    /// An option that counts something and must be at least 1.
    static func positive(_ value: Int, option: String, what: String, example: Int) throws {
        if value < 1 {
            throw ValidationError("\(option) must be at least 1 (\(what)), got \(value). Fix: e.g. \(option) \(example).")
        }
    }
}
