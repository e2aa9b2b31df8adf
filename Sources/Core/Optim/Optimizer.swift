/// A first-order optimiser over one flat `Float` parameter vector: a single loop per
/// step, no allocation after the first step (which sizes the state buffers).
///
/// State (moment buffers, step count) round-trips exactly through `exportState()` /
/// `importState(_:)`, so a run resumed from a checkpoint continues bit for bit.
public protocol Optimizer {
    /// Updates applied so far.
    var stepCount: Int { get }
    /// Base learning rate; a schedule scales it and passes the result to `step(params:grads:lr:)`.
    var learningRate: Double { get set }

    /// One update of `params` (length P) with gradient `grads` (length P) at learning rate `lr`.
    mutating func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>, lr: Double)

    /// A copy of the complete optimiser state.
    func exportState() -> OptimizerState
    /// Replaces the state with `state`; throws if it belongs to another optimiser kind or is malformed.
    mutating func importState(_ state: OptimizerState) throws
}

public extension Optimizer {
    /// One update at the base learning rate.
    mutating func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>) {
        step(params: params, grads: grads, lr: learningRate)
    }
    /// Array convenience (tests, small models).
    mutating func step(params: inout [Float], grads: [Float], lr: Double? = nil) {
        let rate = lr ?? learningRate
        params.withUnsafeMutableBufferPointer { p in
            grads.withUnsafeBufferPointer { g in step(params: p, grads: g, lr: rate) }
        }
    }
}

public extension Optimizer {
    /// The direction `u` of the step this optimiser takes next from `weights` with data gradient
    /// `gradient` (its L2 term added by the optimiser, as in training): the step at learning rate
    /// `eta` moves `w` to `w - eta u` (SGD with momentum and Adam are linear in `eta`). The state
    /// is left unchanged. Evaluated as one step at learning rate `2^20` on a copy, in Double
    /// (`u = (w - w') / 2^20`), so `u` keeps Float's relative precision even where `|u| << |w|`.
    func nextUpdateDirection(weights: [Float], gradient: [Float]) -> [Double] {
        precondition(weights.count == gradient.count, "nextUpdateDirection: \(weights.count) weights but \(gradient.count) gradients")
        let scale = 1048576.0
        var copy = self
        var moved = weights
        copy.step(params: &moved, grads: gradient, lr: scale)
        return zip(weights, moved).map { (Double($0) - Double($1)) / scale }
    }
}

/// An optimiser's complete mutable state as named flat arrays, using PyTorch's `state_dict` names
/// (`momentum_buffer`, `exp_avg`, `exp_avg_sq`). Buffers are empty before the first step.
public struct OptimizerState: Equatable, Sendable {
    /// `"sgd"` or `"adam"`.
    public var kind: String
    public var stepCount: Int
    public var buffers: [String: [Float]]

    public init(kind: String, stepCount: Int, buffers: [String: [Float]]) {
        self.kind = kind; self.stepCount = stepCount; self.buffers = buffers
    }
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "optimiser state: \(message)" }
}

extension OptimizerState {
    /// Checks kind, that exactly `names` are present (or none, before the first step), and that all
    /// buffers have one common length. Returns that length (0 when absent).
    func validated(kind expected: String, names: [String], required: Bool) throws -> Int {
        guard kind == expected else {
            throw OptimizerStateError(message: "state was saved by a '\(kind)' optimiser but this run uses '\(expected)'; resume with the optimiser the checkpoint was trained with, or start from a fresh optimiser state")
        }
        guard stepCount >= 0 else { throw OptimizerStateError(message: "negative step count \(stepCount)") }
        if buffers.isEmpty && !required { return 0 }
        guard Set(buffers.keys) == Set(names) else {
            throw OptimizerStateError(message: "\(expected) state needs buffers \(names.sorted()) but has \(buffers.keys.sorted())")
        }
        let lengths = Set(names.map { buffers[$0]!.count })
        guard lengths.count == 1 else {
            throw OptimizerStateError(message: "buffers have different lengths \(names.map { "\($0): \(buffers[$0]!.count)" })")
        }
        return lengths.first!
    }
}

// MARK: - Checkpoint storage

public extension SafeTensorsFile {
    /// Stores `state` as F32 tensors `<prefix><buffer>`, the step count as an I64 scalar
    /// `<prefix>step`, and the kind in metadata `<prefix>kind`.
    mutating func setOptimizerState(_ state: OptimizerState, prefix: String = "optimizer.") {
        for (name, values) in state.buffers { set(prefix + name, floats: values) }
        set(prefix + "step", int64s: [Int64(state.stepCount)], shape: [])
        metadata[prefix + "kind"] = state.kind
    }

    /// Reads back what `setOptimizerState` stored.
    func optimizerState(prefix: String = "optimizer.") throws -> OptimizerState {
        guard let kind = metadata[prefix + "kind"] else {
            throw SafeTensorsError(.missingTensor, file: origin,
                                   problem: "no optimiser state (metadata key '\(prefix)kind' is absent)",
                                   fix: "this checkpoint holds weights only; start the optimiser fresh")
        }
        let step = try int64s(prefix + "step")
        guard step.count == 1 else {
            throw SafeTensorsError(.shapeMismatch, file: origin, problem: "'\(prefix)step' has \(step.count) elements, expected 1",
                                   fix: "the checkpoint is corrupt; rewrite it")
        }
        var buffers: [String: [Float]] = [:]
        for name in names where name.hasPrefix(prefix) && name != prefix + "step" {
            buffers[String(name.dropFirst(prefix.count))] = try floats(name)
        }
        return OptimizerState(kind: kind, stepCount: Int(step[0]), buffers: buffers)
    }
}
