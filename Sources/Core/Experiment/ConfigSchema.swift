import Foundation
import Yams

// The experiment file's schema: each section lists its fields once (key, Swift property, help), and
// that list drives parsing (walking the YAML node tree, so unknown keys and wrong types are errors,
// not silently ignored), writing (canonical JSON, identity) and the documentation.

// MARK: - Errors

/// A problem with an experiment file: where (file, line, key path), what, and how to fix it.
public struct ExperimentConfigError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public enum Kind: String, Sendable {
        case fileNotFound, unreadable, syntax, unknownKey, duplicateKey, wrongType, invalidValue
    }
    public let kind: Kind
    /// The experiment file, if the text came from one.
    public let file: String?
    /// Dotted key path, e.g. `recipe.learning_rate` or `spawn_times[2]`; empty for the whole file.
    public let keyPath: String
    /// 1-based position in the file, where known.
    public let line: Int?
    public let column: Int?
    public let problem: String
    public internal(set) var fix: String
    /// For `unknownKey`: the keys valid at that place, and the closest one (a full key path when the
    /// key belongs to another section).
    public internal(set) var validKeys: [String] = []
    public internal(set) var suggestion: String?

    public init(kind: Kind, file: String?, keyPath: String, line: Int? = nil, column: Int? = nil,
                problem: String, fix: String) {
        self.kind = kind; self.file = file; self.keyPath = keyPath
        self.line = line; self.column = column; self.problem = problem; self.fix = fix
    }

    public var description: String {
        var location = file ?? "experiment settings"
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        let key = keyPath.isEmpty ? "" : " `\(keyPath)`"
        return "\(location):\(key) \(problem) Fix: \(fix)"
    }
    public var errorDescription: String? { description }
}

/// Where the walker is: file and key path, for error messages.
struct ConfigPath {
    let file: String?
    private(set) var keyPath = ""

    init(file: String?) { self.file = file }

    func child(_ key: String) -> ConfigPath {
        var p = self; p.keyPath = keyPath.isEmpty ? key : keyPath + "." + key; return p
    }
    func element(_ index: Int) -> ConfigPath {
        var p = self; p.keyPath += "[\(index)]"; return p
    }

    func error(_ kind: ExperimentConfigError.Kind, at node: Node?, _ problem: String, fix: String)
        -> ExperimentConfigError {
        ExperimentConfigError(kind: kind, file: file, keyPath: keyPath, line: node?.mark?.line,
                              column: node?.mark?.column, problem: problem, fix: fix)
    }

    /// `expected` names the type, e.g. "an integer".
    func wrongType(_ node: Node, expected: String, example: String? = nil) -> ExperimentConfigError {
        // `children: 2` for a key; just `0.5` for a list element.
        let key = keyPath.hasSuffix("]") ? nil : keyPath.split(separator: ".").last.map(String.init)
        let shown = example.map { e in key.map { "\($0): \(e)" } ?? e }
        return error(.wrongType, at: node, "expects \(expected), found \(node.foundDescription).",
                     fix: "write \(expected)" + (shown.map { ", e.g. `\($0)`" } ?? "") + ".")
    }

    /// The text of a scalar written without quotes (numbers, booleans), else a wrong-type error.
    func plainText(_ node: Node, expected: String, example: String? = nil) throws -> String {
        guard case let .scalar(s) = node, s.style == .plain || s.style == .any, !node.isNull else {
            throw wrongType(node, expected: expected, example: example)
        }
        return s.string
    }
}

extension Node {
    /// A plain `null`, `~` or empty value.
    var isNull: Bool {
        guard case let .scalar(s) = self, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// How a value appears in error messages.
    var foundDescription: String {
        if isNull { return "nothing (null)" }
        switch self {
        case let .scalar(s):
            return s.style == .plain || s.style == .any ? "`\(s.string)`" : "the quoted string \"\(s.string)\""
        case let .mapping(m):
            return "a mapping (keys: \(m.keys.compactMap { $0.scalar?.string }.joined(separator: ", ")))"
        case let .sequence(s):
            return "a list of \(s.count) item\(s.count == 1 ? "" : "s")"
        }
    }
}

// MARK: - Values as written out

/// A setting's value in written form: canonical JSON (identity, manifest) and flow YAML (docs).
enum ConfigValue: Equatable, Codable {
    case null
    case bool(Bool)
    /// Already formatted by `canonicalNumber` (or an integer's decimal digits).
    case number(String)
    case string(String)
    case list([ConfigValue])
    case map([String: ConfigValue])

    /// Compact JSON with object keys sorted by their UTF-8 bytes (RFC 8785's ordering for ASCII keys).
    var json: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(n): return n
        case let .string(s): return jsonQuoted(s)
        case let .list(items): return "[" + items.map(\.json).joined(separator: ",") + "]"
        case let .map(m):
            return "{" + m.keys.sorted(by: utf8Less).map { jsonQuoted($0) + ":" + m[$0]!.json }
                .joined(separator: ",") + "}"
        }
    }

    /// Flow-style YAML for one line of documentation: JSON with spaces, strings unquoted where a
    /// YAML reader cannot mistake them for another type.
    var yamlFlow: String {
        switch self {
        case let .string(s):
            let reserved: Set = ["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"]
            let plain = s.first.map { $0.isLetter || $0 == "/" } == true
                && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_./-".contains($0)) }
                && !reserved.contains(s.lowercased())
            return plain ? s : jsonQuoted(s)
        case let .list(items): return "[" + items.map(\.yamlFlow).joined(separator: ", ") + "]"
        case let .map(m):
            return "{" + m.keys.sorted(by: utf8Less).map { $0 + ": " + m[$0]!.yamlFlow }.joined(separator: ", ") + "}"
        default: return json
        }
    }

    /// The value as a YAML node, so JSON decoded through `Codable` goes through the same walker.
    var node: Node {
        switch self {
        case .null: return Node("null", .implicit, .plain)
        case let .bool(b): return Node(b ? "true" : "false", .implicit, .plain)
        case let .number(n): return Node(n, .implicit, .plain)
        case let .string(s): return Node(s, .implicit, .doubleQuoted)
        case let .list(items): return Node(items.map(\.node))
        case let .map(m): return Node(m.keys.sorted(by: utf8Less).map { (Node($0), m[$0]!.node) })
        }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .number(String(i)) }
        else if let u = try? c.decode(UInt64.self) { self = .number(String(u)) }
        else if let d = try? c.decode(Double.self) { self = .number(canonicalNumber(d)) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let l = try? c.decode([ConfigValue].self) { self = .list(l) }
        else { self = .map(try c.decode([String: ConfigValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(n):
            if let i = Int64(n) { try c.encode(i) } else if let u = UInt64(n) { try c.encode(u) } else { try c.encode(Double(n)!) }
        case let .string(s): try c.encode(s)
        case let .list(l): try c.encode(l)
        case let .map(m): try c.encode(m)
        }
    }
}

private func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

/// JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t`, ... or `\u00XX`.
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case _ where u.value < 0x20:
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

/// Shortest round-trip decimal digits of a finite `x >= 0`: `x = 0.d1 d2 ... dk * 10^n` with
/// `d1 != 0` (Swift's `description` chooses the digits; it is deterministic on every platform).
/// Zero gives `([], 0)`.
func decimalDigits(_ x: Double) -> (digits: [Character], exponent: Int) {
    precondition(x.isFinite && x >= 0, "decimalDigits: \(x) must be finite and non-negative")
    let text = x.description.lowercased()
    let parts = text.split(separator: "e", omittingEmptySubsequences: false)
    let mantissa = parts[0], exp = parts.count > 1 ? Int(parts[1])! : 0
    let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
    let intPart = Array(pieces[0]), fracPart = pieces.count > 1 ? Array(pieces[1]) : []
    var digits = intPart + fracPart
    var n = intPart.count + exp
    while digits.first == "0" { digits.removeFirst(); n -= 1 }
    while digits.last == "0" { digits.removeLast() }
    return digits.isEmpty ? ([], 0) : (digits, n)
}

/// The number format of canonical JSON: ECMAScript's `Number.prototype.toString` applied to the
/// shortest round-trip digits (as RFC 8785): `80`, `0.001`, `0.25`, `1e-7`, `1e+21`; `-0` is `0`.
func canonicalNumber(_ x: Double) -> String {
    precondition(x.isFinite, "canonicalNumber: \(x) is not finite")
    if x == 0 { return "0" }
    let (d, n) = decimalDigits(abs(x))
    let k = d.count, s = String(d)
    let sign = x < 0 ? "-" : ""
    if k <= n && n <= 21 { return sign + s + String(repeating: "0", count: n - k) }
    if 0 < n && n <= 21 { return sign + String(d[0..<n]) + "." + String(d[n...]) }
    if -6 < n && n <= 0 { return sign + "0." + String(repeating: "0", count: -n) + s }
    let e = n - 1
    return sign + String(d[0]) + (k > 1 ? "." + String(d[1...]) : "") + "e" + (e > 0 ? "+" : "-") + String(abs(e))
}

// MARK: - Types that can appear in an experiment file

/// A type a setting can have: how it is named in messages, read from YAML and written out.
protocol ConfigRepresentable {
    /// For messages and docs, with an article: "an integer", "a number", "one of sgd, adam".
    static var configType: String { get }
    /// The settings inside, when this is a section.
    static var configFields: [FieldInfo]? { get }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Self
    var configValue: ConfigValue { get }
}

extension ConfigRepresentable {
    static var configFields: [FieldInfo]? { nil }
}

extension Int: ConfigRepresentable {
    static var configType: String { "an integer" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Int {
        let text = try path.plainText(node, expected: configType, example: "2")
        guard let v = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw path.wrongType(node, expected: configType, example: "2")
        }
        return v
    }
    var configValue: ConfigValue { .number(String(self)) }
}

extension UInt64: ConfigRepresentable {
    static var configType: String { "a non-negative integer" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> UInt64 {
        let text = try path.plainText(node, expected: configType, example: "0")
        guard let v = UInt64(text.replacingOccurrences(of: "_", with: "")) else {
            throw path.wrongType(node, expected: configType, example: "0")
        }
        return v
    }
    var configValue: ConfigValue { .number(String(self)) }
}

extension Double: ConfigRepresentable {
    static var configType: String { "a number" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Double {
        let text = try path.plainText(node, expected: configType, example: "0.5")
        guard let v = Double(text.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw path.wrongType(node, expected: "a finite number", example: "0.5")
        }
        return v
    }
    var configValue: ConfigValue { .number(canonicalNumber(self)) }
}

extension Bool: ConfigRepresentable {
    static var configType: String { "true or false" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Bool {
        switch try path.plainText(node, expected: configType, example: "true").lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw path.wrongType(node, expected: configType, example: "true")
        }
    }
    var configValue: ConfigValue { .bool(self) }
}

extension String: ConfigRepresentable {
    static var configType: String { "a string" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> String {
        guard case let .scalar(s) = node, !node.isNull else { throw path.wrongType(node, expected: configType) }
        return s.string
    }
    var configValue: ConfigValue { .string(self) }
}

/// `null` (or an absent key) means "derived" or "not set"; the field's help says which.
extension Optional: ConfigRepresentable where Wrapped: ConfigRepresentable {
    static var configType: String { Wrapped.configType + " or null" }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Wrapped? {
        node.isNull ? nil : try Wrapped.decode(node, at: path)
    }
    var configValue: ConfigValue { map(\.configValue) ?? .null }
}

extension Array: ConfigRepresentable where Element: ConfigRepresentable {
    static var configType: String {
        let element = Element.configType
        let noun = element.hasPrefix("a ") ? element.dropFirst(2)
            : element.hasPrefix("an ") ? element.dropFirst(3) : Substring(element)
        return "a list of \(noun)s"
    }
    static func decode(_ node: Node, at path: ConfigPath) throws -> [Element] {
        guard case let .sequence(items) = node else { throw path.wrongType(node, expected: configType, example: "[0, 0.5, 1]") }
        return try items.enumerated().map { try Element.decode($1, at: path.element($0)) }
    }
    var configValue: ConfigValue { .list(map(\.configValue)) }
}

/// Enumerations named by their raw value in the file (`sgd`, `fashion-mnist`, ...).
protocol ConfigEnum: ConfigRepresentable, RawRepresentable, CaseIterable where RawValue == String {}

extension ConfigEnum {
    static var configType: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
    static func decode(_ node: Node, at path: ConfigPath) throws -> Self {
        guard case let .scalar(s) = node, !node.isNull else { throw path.wrongType(node, expected: configType) }
        if let v = Self(rawValue: s.string) { return v }
        let names = allCases.map(\.rawValue)
        let hint = closest(to: s.string, among: names).map { "did you mean `\($0)`? " } ?? ""
        throw path.error(.invalidValue, at: node, "is \(node.foundDescription), not a valid choice.",
                         fix: hint + "Use one of: \(names.joined(separator: ", ")).")
    }
    var configValue: ConfigValue { .string(rawValue) }
}

// MARK: - Sections

/// One setting as documented: key, type, one-line help, whether it is part of the run identity,
/// and the settings inside when it is a section.
struct FieldInfo {
    let key: String
    let type: String
    let help: String
    let identity: Bool
    let nested: [FieldInfo]?
}

/// A field of section `Section`: its documentation plus how to read and write the property.
struct ConfigField<Section> {
    let info: FieldInfo
    let read: (inout Section, Node, ConfigPath) throws -> Void
    let write: (Section) -> ConfigValue

    /// `identity: false` marks execution settings (threads, paths) that do not change results and
    /// so are left out of the run hash.
    init<V: ConfigRepresentable>(_ key: String, _ property: WritableKeyPath<Section, V>, identity: Bool = true,
                                 _ help: String) {
        info = FieldInfo(key: key, type: V.configFields == nil ? V.configType : "section", help: help,
                         identity: identity, nested: V.configFields)
        read = { section, node, path in section[keyPath: property] = try V.decode(node, at: path) }
        write = { $0[keyPath: property].configValue }
    }
}

/// A mapping of named settings, each with a default (`init()`); absent keys keep their default.
protocol ConfigSection: ConfigRepresentable {
    init()
    static var fields: [ConfigField<Self>] { get }
    /// Keys that were settings once: reading one is an error that says what replaced it.
    static var retiredKeys: [String: (problem: String, fix: String)] { get }
}

extension ConfigSection {
    static var retiredKeys: [String: (problem: String, fix: String)] { [:] }

    static var configType: String { "a mapping of settings" }
    static var configFields: [FieldInfo]? { fields.map(\.info) }

    static func decode(_ node: Node, at path: ConfigPath) throws -> Self {
        var section = Self()
        if node.isNull { return section }
        guard case let .mapping(mapping) = node else {
            throw path.wrongType(node, expected: "a mapping of settings (`key: value` lines)")
        }
        let fields = Self.fields
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            guard case let .scalar(k) = keyNode else {
                throw path.error(.wrongType, at: keyNode, "has a key that is not a name: \(keyNode.foundDescription).",
                                 fix: "keys are setting names such as `\(fields[0].info.key)`.")
            }
            let key = k.string, at = path.child(key)
            if let retired = Self.retiredKeys[key] {
                throw at.error(.invalidValue, at: keyNode, retired.problem, fix: retired.fix)
            }
            guard let field = fields.first(where: { $0.info.key == key }) else {
                let valid = fields.map(\.info.key)
                let suggestion = closest(to: key, among: valid)
                let section = path.keyPath.isEmpty ? "at the top level" : "in `\(path.keyPath)`"
                var e = at.error(.unknownKey, at: keyNode, "is not a setting.",
                                 fix: (suggestion.map { "did you mean `\($0)`? " } ?? "")
                                    + "Valid keys \(section): \(valid.joined(separator: ", ")).")
                e.validKeys = valid
                e.suggestion = suggestion
                throw e
            }
            guard seen.insert(key).inserted else {
                throw at.error(.duplicateKey, at: keyNode, "is set twice.", fix: "keep one of the two lines.")
            }
            try field.read(&section, value, at)
        }
        return section
    }

    var configValue: ConfigValue {
        .map(Dictionary(uniqueKeysWithValues: Self.fields.map { ($0.info.key, $0.write(self)) }))
    }
}

// MARK: - Suggestions

/// Levenshtein distance (insertions, deletions, substitutions), case-insensitive.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.lowercased()), y = Array(b.lowercased())
    guard !x.isEmpty else { return y.count }
    var row = Array(0...y.count)
    for i in 1...x.count {
        var diagonal = row[0]
        row[0] = i
        for j in stride(from: 1, through: y.count, by: 1) {
            let above = row[j]
            row[j] = min(above + 1, row[j - 1] + 1, diagonal + (x[i - 1] == y[j - 1] ? 0 : 1))
            diagonal = above
        }
    }
    return row[y.count]
}

/// The candidate nearest to `word`, if it is plausibly a typo of it (distance at most a third of
/// the word's length, at least 2).
func closest(to word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}
