import Core
import Foundation
import XCTest

/// docs/checkpoints.md's PyTorch modules register their submodules in the order of NTKScape's flat
/// parameter vector, so `model.parameters()` (registration order) lines up with an optimiser state.
/// The reference is the doc's Python code, read from the file: per class, the order of its
/// `self.<name> = ...` / `setattr(self, ...)` assignments in `__init__`, expanded with PyTorch's
/// rule (own `weight` before `bias`, then submodules depth-first in assignment order,
/// `nn.Sequential` children `0, 1, ...`). If PyTorch is importable the snippet is also run.
final class CheckpointDocTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// One module assignment in a class's `__init__`: attribute name (a literal or an f-string
    /// pattern such as `layer{i + 1}`), its right-hand side, and whether it sits under an `if`.
    struct Registration { var name: String; var rhs: String; var conditional: Bool }

    /// Reads the Python block that defines the modules and returns its classes' registrations.
    static func docClasses() throws -> (code: String, classes: [String: [Registration]]) {
        let text = try String(contentsOf: root.appendingPathComponent("docs/checkpoints.md"), encoding: .utf8)
        let blocks = text.components(separatedBy: "```python").dropFirst().map { $0.components(separatedBy: "```")[0] }
        guard let code = blocks.first(where: { $0.contains("class BasicBlock") }) else {
            throw NSError(domain: "CheckpointDocTests", code: 1,
                          userInfo: [NSLocalizedDescriptionKey: "no python block with class BasicBlock in docs/checkpoints.md"])
        }
        let lines = code.components(separatedBy: "\n")
        func indent(_ l: String) -> Int { l.prefix { $0 == " " }.count }
        var classes: [String: [Registration]] = [:]
        var names: [String] = []
        var i = 0
        while i < lines.count {
            let l = lines[i]
            if l.hasPrefix("class "), let name = l.dropFirst(6).split(separator: "(").first {
                names.append(String(name)); classes[String(name)] = []
            }
            i += 1
        }
        // Second pass: __init__ bodies.
        var current: String? = nil
        var inInit = false
        var initLines: [String: [String]] = [:]
        for l in lines {
            if l.hasPrefix("class ") { current = String(l.dropFirst(6).split(separator: "(")[0]); inInit = false; continue }
            guard let c = current else { continue }
            let t = l.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            if indent(l) == 4 { inInit = t.hasPrefix("def __init__"); continue }
            if inInit && indent(l) > 4 { initLines[c, default: []].append(l) }
        }
        for (c, body) in initLines {
            var regs: [Registration] = []
            for (k, l) in body.enumerated() {
                let t = l.trimmingCharacters(in: .whitespaces)
                // Enclosing statement: the nearest earlier line with less indentation.
                let enclosing = body[..<k].last { indent($0) < indent(l) }?.trimmingCharacters(in: .whitespaces) ?? ""
                let conditional = enclosing.hasPrefix("if ")
                if t.hasPrefix("setattr(self, ") {
                    // setattr(self, f"name{i}", rhs)
                    let rest = t.dropFirst("setattr(self, ".count)
                    let q = rest.drop { $0 != "\"" }.dropFirst()
                    let name = String(q.prefix { $0 != "\"" })
                    let after = q.drop { $0 != "\"" }.dropFirst().drop { $0 == "," || $0 == " " }
                    regs.append(Registration(name: name, rhs: String(after.dropLast()), conditional: conditional))
                } else if t.hasPrefix("self."), let eq = t.range(of: " = ") {
                    let lhs = t[..<eq.lowerBound].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    guard lhs.allSatisfy({ $0.hasPrefix("self.") }) else { continue }
                    let rhs = String(t[eq.upperBound...])
                    let parts = lhs.count == 1 ? [rhs] : topLevelSplit(rhs)
                    guard parts.count == lhs.count else { continue }
                    for (n, r) in zip(lhs, parts) {
                        regs.append(Registration(name: String(n.dropFirst(5)), rhs: r, conditional: conditional))
                    }
                }
            }
            // Only module assignments register parameters.
            classes[c] = regs.filter { r in r.rhs.hasPrefix("nn.") || names.contains { r.rhs.hasPrefix($0 + "(") } }
            // Where an nn.Sequential's blocks come from: `*[X(` or `*blocks` with `blocks.append(X(`.
            for (j, r) in classes[c]!.enumerated() where r.rhs.hasPrefix("nn.Sequential(") {
                var element: String? = nil
                if let m = r.rhs.range(of: "*[") { element = String(r.rhs[m.upperBound...].prefix { $0 != "(" }) }
                else if let m = r.rhs.range(of: "*") {
                    let variable = r.rhs[m.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                    if let a = body.first(where: { $0.contains("\(variable).append(") }),
                       let s = a.range(of: "\(variable).append(") {
                        element = String(a[s.upperBound...].prefix { $0 != "(" })
                    }
                }
                classes[c]![j].rhs = "nn.Sequential:" + (element ?? "?")
            }
        }
        return (code, classes)
    }

    /// Splits `a(b, c), d` at top-level commas.
    static func topLevelSplit(_ s: String) -> [String] {
        var parts: [String] = [], depth = 0, cur = ""
        for ch in s {
            if "([{".contains(ch) { depth += 1 }
            if ")]}".contains(ch) { depth -= 1 }
            if ch == "," && depth == 0 { parts.append(cur.trimmingCharacters(in: .whitespaces)); cur = ""; continue }
            cur.append(ch)
        }
        parts.append(cur.trimmingCharacters(in: .whitespaces))
        return parts
    }

    /// The parameter names of doc class `cls` at `prefix`, in PyTorch's registration order. Which
    /// loop indices and conditional submodules exist is read from `present` (the network's names);
    /// their *order* comes from the doc alone (loop indices ascending, as a Python loop runs).
    static func expand(_ cls: String, prefix: String, classes: [String: [Registration]], present: [String],
                       batchNorm: Bool, problems: inout [String]) -> [String] {
        guard let regs = classes[cls] else { problems.append("class \(cls) not in the doc"); return [] }
        var out: [String] = []
        // Immediate child names under `prefix` in the network.
        let children: [String] = {
            var seen: [String] = []
            for n in present where n.hasPrefix(prefix) {
                let c = String(n.dropFirst(prefix.count).split(separator: ".")[0])
                if !seen.contains(c) { seen.append(c) }
            }
            return seen
        }()
        for r in regs {
            var names: [String]
            if let brace = r.name.firstIndex(of: "{") {
                // f-string pattern: literal head, a number, literal tail.
                let head = String(r.name[..<brace])
                let tail = String(r.name[r.name.index(after: r.name.firstIndex(of: "}")!)...])
                names = children.filter { $0.hasPrefix(head) && $0.hasSuffix(tail)
                    && Int($0.dropFirst(head.count).dropLast(tail.count)) != nil }
                names.sort { Int($0.dropFirst(head.count).dropLast(tail.count))! < Int($1.dropFirst(head.count).dropLast(tail.count))! }
                if names.isEmpty { problems.append("\(prefix)\(r.name): no such submodules in the network") }
            } else {
                names = [r.name]
            }
            for n in names {
                let p = prefix + n + "."
                guard present.contains(where: { $0.hasPrefix(p) }) else {
                    if !r.conditional { problems.append("the doc registers \(prefix)\(n) but the network has no such parameters") }
                    continue
                }
                if r.rhs.hasPrefix("nn.Sequential:") {
                    let element = String(r.rhs.dropFirst("nn.Sequential:".count))
                    let indices = Set(present.filter { $0.hasPrefix(p) }.compactMap { Int($0.dropFirst(p.count).split(separator: ".")[0]) })
                    for k in indices.sorted() {
                        out += expand(element, prefix: p + "\(k).", classes: classes, present: present, batchNorm: batchNorm,
                                      problems: &problems)
                    }
                } else if r.rhs.hasPrefix("nn.") {
                    // Leaf: weight, then bias if the doc's module has one.
                    let hasBias: Bool
                    if r.rhs.hasPrefix("nn.BatchNorm2d(") { hasBias = true }
                    else if r.rhs.contains("bias=False") { hasBias = false }
                    else if r.rhs.contains("bias=not bn") { hasBias = !batchNorm }
                    else { hasBias = true }   // nn.Conv2d / nn.Linear default bias=True
                    out.append(p + "weight")
                    if hasBias { out.append(p + "bias") }
                } else {
                    let sub = String(r.rhs.prefix { $0 != "(" })
                    out += expand(sub, prefix: p, classes: classes, present: present, batchNorm: batchNorm, problems: &problems)
                }
            }
        }
        return out
    }

    /// (doc class, constructor call for the optional PyTorch run, model, input, classes)
    static let cases: [(cls: String, call: String, model: ModelKind, input: Shape, classes: Int)] = [
        ("ResNet20", "ResNet20(num_classes=10)", .resnet20, Shape(3, 32, 32), 10),
        ("ResNet20", "ResNet20(num_classes=10, bn=False)", .resnet20_nobn, Shape(3, 32, 32), 10),
        ("WRN16_4", "WRN16_4(num_classes=100)", .wrn16_4, Shape(3, 32, 32), 100),
        ("SimpleCNN", "SimpleCNN(num_classes=10)", .simplecnn, Shape(3, 32, 32), 10),
        ("SimpleCNN", "SimpleCNN(in_channels=1, num_classes=10, width=8)", .simplecnn_w8, Shape(1, 28, 28), 10),
        ("MLP", "MLP(in_features=784, num_classes=10)", .mlp, Shape(1, 28, 28), 10),
        ("Linear", "Linear(in_features=3072, num_classes=10)", .linear, Shape(3, 32, 32), 10),
    ]

    func testDocumentedModulesRegisterParametersInLayoutOrder() throws {
        let (_, classes) = try Self.docClasses()
        // The block order the fix is about, read straight from the doc.
        XCTAssertEqual(classes["BasicBlock"]?.map(\.name), ["conv1", "bn1", "conv2", "bn2"])
        XCTAssertEqual(classes["WideBlock"]?.map(\.name), ["bn1", "conv1", "bn2", "conv2", "convShortcut"])
        for c in Self.cases {
            let net = c.model.build(input: c.input, classes: c.classes, as: Float.self)
            let layout = net.layout.parameters.map(\.name)
            var problems: [String] = []
            let doc = Self.expand(c.cls, prefix: "", classes: classes, present: layout,
                                  batchNorm: c.model != .resnet20_nobn, problems: &problems)
            XCTAssertEqual(problems, [], "\(c.model)")
            XCTAssertEqual(doc, layout, "\(c.model): docs/checkpoints.md's \(c.call) registers parameters in another order")
        }
        // Published block counts (He et al. 2016: ResNet-20 = 3 stages x 3 blocks; Zagoruyko &
        // Komodakis 2016: WRN-16-k = 3 stages x (16 - 4) / 6 = 2 blocks), so the walk above saw them all.
        let rn = ModelKind.resnet20.build(input: Shape(3, 32, 32), classes: 10, as: Float.self).layout.parameters.map(\.name)
        XCTAssertEqual(Set(rn.filter { $0.hasSuffix(".conv1.weight") && $0.hasPrefix("layer") }).count, 9)
        let wrn = ModelKind.wrn16_4.build(input: Shape(3, 32, 32), classes: 10, as: Float.self).layout.parameters.map(\.name)
        XCTAssertEqual(Set(wrn.filter { $0.hasSuffix(".conv1.weight") && $0.hasPrefix("block") }).count, 6)
    }

    /// The parser itself, on a snippet with the order the doc used to have (convolutions first).
    func testParserSeesTheOldScrambledOrder() {
        XCTAssertEqual(Self.topLevelSplit("nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)"),
                       ["nn.BatchNorm2d(cout)", "nn.BatchNorm2d(cout)"])
        let classes: [String: [Registration]] = ["B": [
            Registration(name: "conv1", rhs: "nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn)", conditional: false),
            Registration(name: "conv2", rhs: "nn.Conv2d(cout, cout, 3, 1, 1, bias=not bn)", conditional: false),
            Registration(name: "bn1", rhs: "nn.BatchNorm2d(cout)", conditional: true),
            Registration(name: "bn2", rhs: "nn.BatchNorm2d(cout)", conditional: true)]]
        let present = ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"]
        var problems: [String] = []
        let doc = Self.expand("B", prefix: "", classes: classes, present: present, batchNorm: true, problems: &problems)
        XCTAssertEqual(doc, ["conv1.weight", "conv2.weight", "bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"])
        XCTAssertNotEqual(doc, present)
    }

    /// With PyTorch installed, runs the doc's code and compares `named_parameters()` to the layout;
    /// without it the test is reported as skipped (it used to pass silently).
    func testDocumentedModulesUnderPyTorchIfAvailable() throws {
        let probe = Self.python(["-c", "import torch"])
        guard probe?.status == 0 else {
            throw XCTSkip("python3 with torch is not importable; the PyTorch run of docs/checkpoints.md is not checked")
        }
        let (code, _) = try Self.docClasses()
        var script = code + "\nimport json\nout = {}\n"
        for (k, c) in Self.cases.enumerated() {
            script += "out['\(k)'] = [n for n, _ in \(c.call).named_parameters()]\n"
        }
        script += "print(json.dumps(out))\n"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-checkpoint-doc-\(getpid()).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try XCTUnwrap(Self.python([file.path]))
        XCTAssertEqual(run.status, 0, run.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: [String]])
        for (k, c) in Self.cases.enumerated() {
            let layout = c.model.build(input: c.input, classes: c.classes, as: Float.self).layout.parameters.map(\.name)
            XCTAssertEqual(json["\(k)"], layout, "\(c.call)")
        }
    }

    static func python(_ arguments: [String]) -> (status: Int32, output: String)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
