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
        file.setOptimizerState(t.optimizer.exportState())
    }

    public static func read(_ path: String) throws -> Checkpoint {
        let c = Checkpoint(file: try SafeTensorsFile.read(from: path))
        guard c.file.metadata["format"] == format else {
            throw CheckpointError(path: path, problem: "metadata `format` is \(c.file.metadata["format"] ?? "missing"), not \(format)",
                                  fix: "pass a checkpoint written by ntkscape (train/run)")
        }
        return c
    }

    public func write(to path: String) throws { try file.write(to: path) }

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
    /// Keys sorted, so identical values encode to identical bytes.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
