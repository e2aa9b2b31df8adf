import Foundation

/// A network (and optionally its optimiser) in a safetensors file.
///
/// Tensor names and layouts are those of the equivalent PyTorch module's `state_dict`
/// (`docs/checkpoints.md`): parameters and BatchNorm `running_mean`/`running_var` as F32,
/// `num_batches_tracked` as an I64 scalar. Optimiser buffers are stored under `optimizer.` (filter
/// them out before `load_state_dict`). Metadata records the model, data shape, training position
/// (epoch, step) and identity, which together with the counter-based random streams is the
/// complete RNG position: a resumed run continues bit for bit.
public struct Checkpoint {
    public static let format = "ntkscape-checkpoint-1"
    public var file: SafeTensorsFile

    public init(file: SafeTensorsFile) { self.file = file }

    /// Snapshot of a network (parameters + BatchNorm state), with `metadata` added.
    public init(network: Network<Float>, metadata: [String: String] = [:]) {
        file = SafeTensorsFile()
        for v in network.layout.parameters {
            file.set(v.name, floats: UnsafeBufferPointer(start: network.params.pointer + v.offset, count: v.count), shape: v.shape)
        }
        for v in network.layout.state {
            file.set(v.name, floats: UnsafeBufferPointer(start: network.state.pointer + v.offset, count: v.count), shape: v.shape)
        }
        for (name, bn) in zip(Self.batchNormNames(network), network.batchNorms) {
            file.set("\(name).num_batches_tracked", int64s: [Int64(bn.batchesTracked)], shape: [])
        }
        let s = network.inputShape
        file.metadata = metadata.merging([
            "format": Self.format, "model": network.kind.rawValue,
            "input_shape": "\(s.c),\(s.h),\(s.w)", "classes": "\(network.classes)",
        ]) { _, new in new }
    }

    /// Snapshot of a trainer: network, optimiser state, position and identity.
    public init(trainer t: Trainer) {
        self.init(network: t.network, metadata: [
            "step": "\(t.step)", "epoch": "\(t.epoch)", "steps_per_epoch": "\(t.stepsPerEpoch)",
            "seed": "\(t.identity.seed)", "replicate": "\(t.identity.replicate)", "child": "\(t.identity.child)",
            "recipe": String(decoding: try! JSONEncoder.sorted.encode(t.recipe), as: UTF8.self),
        ])
        if let digest = t.dataDigest { file.metadata["data_sha256"] = digest }
        file.setOptimizerState(t.optimizer.exportState())
    }

    /// The settings of this training checkpoint that differ from those of a resume with `recipe`,
    /// `seed`, `model` and training data `dataDigest` (`DataDigest.digest`): `(setting, stored, given)`,
    /// with recipe fields named by their `TrainingRecipe` coding keys (`learningRate`, ...) and the
    /// others `seed`, `model`, `data`. Settings the checkpoint does not record are not compared.
    public func resumeMismatches(recipe: TrainingRecipe, seed: UInt64, model: ModelKind,
                                 dataDigest: String?) -> [(setting: String, stored: String, given: String)] {
        var out: [(String, String, String)] = []
        if let stored = file.metadata["model"], stored != model.rawValue { out.append(("model", stored, model.rawValue)) }
        if let stored = file.metadata["seed"], stored != "\(seed)" { out.append(("seed", stored, "\(seed)")) }
        if let text = file.metadata["recipe"],
           let stored = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
           let given = (try? JSONSerialization.jsonObject(with: JSONEncoder.sorted.encode(recipe))) as? [String: Any] {
            for key in Set(stored.keys).union(given.keys).sorted() {
                let a = stored[key].map(Self.canonical) ?? "absent", b = given[key].map(Self.canonical) ?? "absent"
                if a != b { out.append((key, a, b)) }
            }
        }
        if let stored = file.metadata["data_sha256"], let dataDigest, stored != dataDigest {
            out.append(("data", "SHA-256 \(stored.prefix(12))...", "SHA-256 \(dataDigest.prefix(12))..."))
        }
        return out
    }

    private static func canonical(_ value: Any) -> String {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }

    /// Reads a checkpoint, verifying its content checksum (when it has one).
    public static func read(_ path: String) throws -> Checkpoint {
        let c = Checkpoint(file: try SafeTensorsFile.read(from: path))
        guard c.file.metadata["format"] == format else {
            throw CheckpointError(path: path, problem: "metadata `format` is \(c.file.metadata["format"] ?? "missing"), not \(format)",
                                  fix: "pass a checkpoint written by ntkscape (train/run)")
        }
        try c.verifyChecksum()
        return c
    }

    /// Writes the file atomically with its content checksum (`content_sha256`) in the metadata.
    public func write(to path: String) throws {
        var f = file
        f.metadata[Self.checksumKey] = Self.contentDigest(f)
        try f.write(to: path)
    }

    // MARK: Integrity

    /// Metadata key of the content checksum: SHA-256 (hex) of everything else in the file (see
    /// `contentDigest`), so a corrupt or altered tensor is detected on read (docs/checkpoints.md).
    public static let checksumKey = "content_sha256"

    /// SHA-256 over the metadata (sorted by key, without `content_sha256`) and every tensor — name,
    /// dtype, shape and bytes — in name order. Each item is length-prefixed, so no two different
    /// contents hash the same byte stream.
    public static func contentDigest(_ file: SafeTensorsFile) -> String {
        var h = SHA256()
        func item(_ bytes: [UInt8]) {
            h.update(withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) })
            h.update(bytes)
        }
        for key in file.metadata.keys.sorted() where key != checksumKey {
            item(Array(key.utf8)); item(Array(file.metadata[key]!.utf8))
        }
        for name in file.names {
            let t = file.tensors[name]!
            item(Array(name.utf8)); item(Array(t.dtype.rawValue.utf8))
            item(Array(t.shape.map(String.init).joined(separator: ",").utf8))
            item(t.bytes)
        }
        return h.hexDigest()
    }

    /// Throws if the stored checksum does not match the content (a file without one — written
    /// before checksums existed, or by another program — passes).
    public func verifyChecksum() throws {
        guard let stored = file.metadata[Self.checksumKey] else { return }
        let actual = Self.contentDigest(file)
        guard stored == actual else {
            throw CheckpointError(path: file.origin ?? "checkpoint",
                                  problem: "corrupt: its content does not match its checksum (content_sha256 \(stored.prefix(12))..., "
                                      + "content hashes to \(actual.prefix(12))...)",
                                  fix: "do not use it; rerun the command that wrote it (`ntkscape run` recomputes the task "
                                      + "that wrote a corrupt checkpoint of a run)")
        }
    }

    /// Checks that `path` is a readable safetensors file whose checksum matches, without loading a
    /// network (the run's check of finished tasks' outputs). Throws `SafeTensorsError` (missing,
    /// truncated, malformed) or `CheckpointError` (checksum).
    public static func verify(_ path: String) throws {
        try Checkpoint(file: try SafeTensorsFile.read(from: path)).verifyChecksum()
    }

    /// Refuses a tensor holding NaN or an infinity: the first such tensor (in `names` order) and element are named.
    func checkFinite(_ names: [String]) throws {
        for name in names {
            guard let t = file.tensors[name] else { continue }
            var bad: (index: Int, value: Double)?
            switch t.dtype {
            case .f32:
                let v = try file.floats(name)
                if let i = v.firstIndex(where: { !$0.isFinite }) { bad = (i, Double(v[i])) }
            case .f64:
                let v = try file.doubles(name)
                if let i = v.firstIndex(where: { !$0.isFinite }) { bad = (i, v[i]) }
            default: continue
            }
            if let bad {
                throw CheckpointError(path: file.origin ?? "checkpoint",
                                      problem: "tensor `\(name)` holds \(bad.value.isNaN ? "NaN" : "an infinite value (\(bad.value))") "
                                          + "at element \(bad.index) of \(t.elementCount): the network diverged or the file was altered, "
                                          + "and a non-finite value would spread through every result",
                                      fix: "do not load it; retrain from an earlier checkpoint (or from the start) with a lower "
                                          + "learning rate, or restore the file")
            }
        }
    }

    public var model: ModelKind? { file.metadata["model"].flatMap(ModelKind.init(rawValue:)) }
    public var step: Int? { file.metadata["step"].flatMap { Int($0) } }
    public var inputShape: Shape? {
        let p = (file.metadata["input_shape"] ?? "").split(separator: ",").compactMap { Int($0) }
        return p.count == 3 ? Shape(p[0], p[1], p[2]) : nil
    }
    public var classes: Int? { file.metadata["classes"].flatMap { Int($0) } }
    public var recipe: TrainingRecipe? {
        file.metadata["recipe"].flatMap { try? JSONDecoder().decode(TrainingRecipe.self, from: Data($0.utf8)) }
    }

    /// A new network of the recorded architecture holding this checkpoint's weights.
    public func makeNetwork() throws -> Network<Float> {
        guard let model, let inputShape, let classes else {
            throw CheckpointError(path: file.origin ?? "checkpoint", problem: "metadata lacks model/input_shape/classes",
                                  fix: "pass a checkpoint written by ntkscape")
        }
        if let problem = model.inputProblem(inputShape, classes: classes) {
            throw CheckpointError(path: file.origin ?? "checkpoint",
                                  problem: "metadata input_shape \(file.metadata["input_shape"] ?? "?") and classes \(classes) cannot make a \(model.rawValue) network: \(problem)",
                                  fix: "the metadata is corrupt or was edited; pass a checkpoint written by ntkscape train or run")
        }
        let net = model.build(input: inputShape, classes: classes, as: Float.self)
        try restore(into: net)
        return net
    }

    /// Copies weights and BatchNorm state into `network`, checking every name and shape first.
    public func restore(into network: Network<Float>) throws {
        let path = file.origin ?? "checkpoint"
        let bnNames = Self.batchNormNames(network)
        var expected = Set(network.layout.parameters.map(\.name) + network.layout.state.map(\.name))
        expected.formUnion(bnNames.map { "\($0).num_batches_tracked" })
        let stored = Set(file.names.filter { !$0.hasPrefix("optimizer.") })
        let missing = expected.subtracting(stored).sorted(), unexpected = stored.subtracting(expected).sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            throw CheckpointError(path: path,
                                  problem: "tensor names do not match a \(network.kind.rawValue) network: missing \(missing.prefix(5)), unexpected \(unexpected.prefix(5))",
                                  fix: "load it with the model it was written for (metadata model=\(file.metadata["model"] ?? "?"))")
        }
        for v in network.layout.parameters { try file.expectShape(v.name, v.shape) }
        for v in network.layout.state { try file.expectShape(v.name, v.shape) }
        try checkFinite(network.layout.parameters.map(\.name) + network.layout.state.map(\.name))
        for v in network.layout.parameters {
            try file.copyFloats(v.name, into: UnsafeMutableBufferPointer(start: network.params.pointer + v.offset, count: v.count))
        }
        for v in network.layout.state {
            try file.copyFloats(v.name, into: UnsafeMutableBufferPointer(start: network.state.pointer + v.offset, count: v.count))
        }
        for (name, bn) in zip(bnNames, network.batchNorms) {
            bn.batchesTracked = Int(try file.int64s("\(name).num_batches_tracked").first ?? 0)
        }
    }

    /// Restores network, optimiser state and step of `trainer` (whose recipe must match).
    public func restore(into trainer: Trainer) throws {
        try restore(into: trainer.network)
        try checkFinite(file.names.filter { $0.hasPrefix("optimizer.") })
        try trainer.optimizer.importState(file.optimizerState())
        guard let step else {
            throw CheckpointError(path: file.origin ?? "checkpoint", problem: "metadata lacks `step`", fix: "resume from a training checkpoint")
        }
        trainer.step = step
    }

    /// Module names of the network's BatchNorm layers (`layer1.0.bn1` for `layer1.0.bn1.weight`).
    static func batchNormNames(_ network: Network<Float>) -> [String] {
        network.batchNorms.map { bn in
            network.layout.parameters.first { $0.offset == bn.weightOffset }!.name.replacingOccurrences(of: ".weight", with: "")
        }
    }
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String, problem: String, fix: String
    public var description: String { "\(path): \(problem). Fix: \(fix)." }
}

extension JSONEncoder {
    /// Keys sorted, so identical values encode to identical bytes; non-finite numbers as `NonFinite` strings.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = NonFinite.encoding   // NaN/inf as strings (docs/experiment.md)
        return e
    }
}

public extension Checkpoint {
    /// Refuses data the network of `checkpoint` cannot take: another input shape or class count.
    /// The message gives both sides and the data set to pass.
    static func checkData(network net: Network<Float>, checkpoint: String, data: Dataset) throws {
        let shape = Shape(data.channels, data.height, data.width)
        guard net.inputShape != shape || net.classes != data.classCount else { return }
        let likely = DatasetKind.allCases.filter { kind in
            (kind.imageShape.map { Shape($0.channels, $0.height, $0.width) == net.inputShape } ?? false) && kind.classCount == net.classes
        }.map(\.rawValue)
        throw CheckpointError(
            path: checkpoint,
            problem: "the \(net.kind.rawValue) network takes inputs of \(net.inputShape.c)x\(net.inputShape.h)x\(net.inputShape.w) "
                + "(channels x height x width) with \(net.classes) classes, but \(data.name) has \(shape.c)x\(shape.h)x\(shape.w) "
                + "with \(data.classCount) classes",
            fix: "pass the data set it was trained on"
                + (likely.isEmpty ? "" : " (--dataset \(likely.joined(separator: " or ")) with its --data-path)")
                + ", or a checkpoint trained on \(data.name)")
    }
}
