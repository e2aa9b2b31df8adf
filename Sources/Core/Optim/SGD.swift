/// Stochastic gradient descent with momentum and L2 weight decay, exactly `torch.optim.SGD`
/// (single-tensor path, `maximize=False`). Per element, with `b` the momentum buffer:
///
///     g = grad + weightDecay * w
///     b = g                                      on the first step
///     b = momentum * b + (1 - dampening) * g     afterwards
///     g = nesterov ? g + momentum * b : b        (only when momentum != 0)
///     w = w - lr * g
///
/// Arithmetic is in `Float` in PyTorch's operation order; hyperparameters are `Double` (Python
/// floats) and derived constants such as `1 - dampening` are formed in `Double` first, as PyTorch does.
public struct SGD: Optimizer {
    public var learningRate: Double
    public let momentum: Double
    public let weightDecay: Double
    public let nesterov: Bool
    public let dampening: Double
    public private(set) var stepCount = 0
    /// Empty until the first step when `momentum != 0`; never allocated otherwise.
    public private(set) var momentumBuffer: [Float] = []

    public init(lr: Double, momentum: Double = 0, weightDecay: Double = 0, nesterov: Bool = false,
                dampening: Double = 0) {
        precondition(lr >= 0 && momentum >= 0 && weightDecay >= 0, "SGD: lr, momentum and weightDecay must be >= 0")
        // PyTorch raises the same error: Nesterov needs a momentum and no dampening.
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        self.learningRate = lr; self.momentum = momentum; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.dampening = dampening
    }

    public mutating func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>, lr: Double) {
        precondition(params.count == grads.count, "SGD.step: \(params.count) parameters but \(grads.count) gradients")
        let wd = Float(weightDecay), mu = Float(momentum), keep = Float(1 - dampening), negLr = Float(-lr)
        let nesterov = self.nesterov
        defer { stepCount += 1 }
        if momentum == 0 {
            for i in 0..<params.count {
                var g = grads[i]
                if wd != 0 { g = g + wd * params[i] }
                params[i] = params[i] + negLr * g
            }
            return
        }
        // PyTorch's first-step rule: the buffer starts as a copy of the gradient, not as zero.
        let first = momentumBuffer.isEmpty
        if first { momentumBuffer = [Float](repeating: 0, count: params.count) }
        precondition(momentumBuffer.count == params.count, "SGD.step: state holds \(momentumBuffer.count) elements but params have \(params.count)")
        momentumBuffer.withUnsafeMutableBufferPointer { b in
            for i in 0..<params.count {
                var g = grads[i]
                if wd != 0 { g = g + wd * params[i] }
                b[i] = first ? g : b[i] * mu + keep * g
                g = nesterov ? g + mu * b[i] : b[i]
                params[i] = params[i] + negLr * g
            }
        }
    }

    public func exportState() -> OptimizerState {
        OptimizerState(kind: "sgd", stepCount: stepCount,
                       buffers: momentumBuffer.isEmpty ? [:] : ["momentum_buffer": momentumBuffer])
    }

    public mutating func importState(_ state: OptimizerState) throws {
        _ = try state.validated(kind: "sgd", names: ["momentum_buffer"], required: false)
        if momentum != 0, state.stepCount > 0, state.buffers.isEmpty {
            throw OptimizerStateError(message: "SGD with momentum \(momentum) resumed after \(state.stepCount) steps needs a momentum_buffer, but the state has none (was it saved without momentum?)")
        }
        stepCount = state.stepCount
        momentumBuffer = state.buffers["momentum_buffer"] ?? []
    }
}
