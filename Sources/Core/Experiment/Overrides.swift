import Foundation
import Yams

/// One `--set key=value` of `ntkscape run`/`plan`: a setting of the experiment file given on the
/// command line. The value is read as YAML (`3` an integer, `0.01` a number, `[0, 1]` a list,
/// `{milestones: [2], gamma: 0.1}` a mapping, `null`), put into the file's document at `key` (a
/// dotted key path such as `recipe.epochs`), and the document is then read and validated as a
/// whole: an override obeys exactly the file's rules, and errors name `--set key`.
public struct ConfigOverride: Equatable, Sendable, CustomStringConvertible {
    /// Dotted key path, e.g. `recipe.learning_rate`.
    public let keyPath: String
    /// The value as written (YAML).
    public let value: String

    /// Parses `key=value` (the text of one `--set`).
    public init(argument: String) throws {
        guard let eq = argument.firstIndex(of: "=") else {
            throw ExperimentConfigError(kind: .syntax, file: "--set", keyPath: "",
                                        problem: "`\(argument)` is not `key=value`.",
                                        fix: "write --set KEY=VALUE with the experiment file's key path, e.g. --set recipe.epochs=3.")
        }
        try self.init(keyPath: String(argument[..<eq]).trimmingCharacters(in: .whitespaces),
                      value: String(argument[argument.index(after: eq)...]))
    }

    public init(keyPath: String, value: String) throws {
        self.keyPath = keyPath
        self.value = value
        guard !keyPath.isEmpty, keyPath.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty }) else {
            throw ExperimentConfigError(kind: .syntax, file: source, keyPath: "", problem: "`\(keyPath)` is not a key path.",
                                        fix: "name a setting as in the experiment file, sections joined by dots, e.g. recipe.learning_rate.")
        }
    }

    /// `--set recipe.epochs=3`.
    public var description: String { "--set \(keyPath)=\(value)" }
    /// Where errors say the setting came from.
    var source: String { "--set \(keyPath)" }

    /// The value as a YAML node.
    func node() throws -> Node {
        do {
            return try Yams.compose(yaml: value) ?? Node("", .implicit, .plain)
        } catch {
            throw ExperimentConfigError(kind: .syntax, file: source, keyPath: keyPath,
                                        problem: "value `\(value)` is not valid YAML: \(error)",
                                        fix: "write the value as in the experiment file (a number, a word, [a, list], {key: value}).")
        }
    }

    /// `root` (an experiment document, nil for an empty one) with each override put in, in order
    /// (a later one for the same key wins). Missing sections are created.
    static func apply(_ overrides: [ConfigOverride], to root: Node?) throws -> Node? {
        guard !overrides.isEmpty else { return root }
        var root = root ?? Node.mapping(Node.Mapping([]))
        for o in overrides {
            root = put(try o.node(), at: o.keyPath.split(separator: ".").map(String.init)[...], into: root)
        }
        return root
    }

    private static func put(_ value: Node, at keys: ArraySlice<String>, into node: Node) -> Node {
        guard let key = keys.first else { return value }
        // A null or non-mapping in the way becomes a mapping; the reader then reports what the key
        // expects (e.g. `recipe.learning_rate` expects a number, found a mapping).
        var pairs: [(Node, Node)] = node.mapping.map { $0.map { ($0.key, $0.value) } } ?? []
        if let i = pairs.lastIndex(where: { $0.0.scalar?.string == key }) {
            pairs[i].1 = put(value, at: keys.dropFirst(), into: pairs[i].1)
        } else {
            pairs.append((Node(key), put(value, at: keys.dropFirst(), into: Node.mapping(Node.Mapping([])))))
        }
        let m = node.mapping
        return .mapping(Node.Mapping(pairs, m?.tag ?? .implicit, m?.style ?? .any, m?.mark))
    }

    /// `error` attributed to the override that set its key (or a section holding it): the file is
    /// replaced by `--set key` and the file position dropped. Other errors are returned unchanged.
    static func attribute(_ error: ExperimentConfigError, to overrides: [ConfigOverride]) -> ExperimentConfigError {
        func covers(_ o: ConfigOverride) -> Bool {
            let k = error.keyPath
            // The override's key, inside its value, or a section on its path.
            return k == o.keyPath || k.hasPrefix(o.keyPath + ".") || k.hasPrefix(o.keyPath + "[")
                || (!k.isEmpty && o.keyPath.hasPrefix(k + "."))
        }
        guard let o = overrides.last(where: covers) else { return error }
        var e = ExperimentConfigError(kind: error.kind, file: o.source, keyPath: error.keyPath,
                                      problem: error.problem, fix: error.fix)
        e.validKeys = error.validKeys
        e.suggestion = error.suggestion
        return e
    }
}
