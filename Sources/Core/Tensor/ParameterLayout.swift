/// A named view into a flat buffer: `count` elements from `offset`, reshaped to `shape`.
/// Shapes follow PyTorch's for the equivalent module (conv weight `[out, in, kh, kw]`, linear
/// `[out, in]`) so a checkpoint maps one-to-one onto a `state_dict`.
public struct ParameterView: Hashable, Sendable, Codable {
    public var name: String
    public var offset: Int
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The layout of a network's two flat buffers: trainable parameters and non-trainable state
/// (BatchNorm running statistics). Layers register their tensors while the network is built.
public final class ParameterLayout {
    public private(set) var parameters: [ParameterView] = []
    public private(set) var state: [ParameterView] = []
    public var parameterCount: Int { parameters.last.map { $0.offset + $0.count } ?? 0 }
    public var stateCount: Int { state.last.map { $0.offset + $0.count } ?? 0 }
    public init() {}

    /// Appends a trainable tensor; returns its offset in the parameter vector.
    @discardableResult
    public func addParameter(_ name: String, _ shape: [Int]) -> Int {
        precondition(!parameters.contains { $0.name == name }, "duplicate parameter \(name)")
        let v = ParameterView(name: name, offset: parameterCount, shape: shape)
        parameters.append(v)
        return v.offset
    }
    /// Appends a state tensor (not trained, not part of distances); returns its offset.
    @discardableResult
    public func addState(_ name: String, _ shape: [Int]) -> Int {
        precondition(!state.contains { $0.name == name }, "duplicate state \(name)")
        let v = ParameterView(name: name, offset: stateCount, shape: shape)
        state.append(v)
        return v.offset
    }
    public func parameter(named name: String) -> ParameterView? { parameters.first { $0.name == name } }
}
