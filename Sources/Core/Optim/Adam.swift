import Foundation

/// Adam with L2 weight decay added to the gradient (not decoupled AdamW), exactly
/// `torch.optim.Adam` (single-tensor path, `amsgrad=False`, `maximize=False`). Per element, at
/// step `t = 1, 2, ...`:
///
///     g  = grad + weightDecay * w
///     m  = lerp(m, g, 1 - beta1)                  = beta1 m + (1 - beta1) g
///     v  = beta2 * v + (1 - beta2) * g * g
///     stepSize = lr / (1 - beta1^t)               (Double)
///     denom    = sqrt(v) / sqrt(1 - beta2^t) + eps
///     w  = w - stepSize * m / denom
///
/// which equals `w -= lr * mhat / (sqrt(vhat) + eps)` up to where eps enters; the ordering above
/// is PyTorch's, so results agree to Float rounding (PyTorch's vectorised CPU kernels may fuse
/// multiply-adds, so agreement is not promised to the last bit).
public struct Adam: Optimizer {
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    public let weightDecay: Double
    public private(set) var stepCount = 0
    /// First and second moments (`exp_avg`, `exp_avg_sq`); empty before the first step.
    public private(set) var expAvg: [Float] = []
    public private(set) var expAvgSq: [Float] = []

    public init(lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        precondition(lr >= 0 && eps >= 0 && weightDecay >= 0, "Adam: lr, eps and weightDecay must be >= 0")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam: betas must lie in [0, 1)")
        self.learningRate = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    public mutating func step(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>, lr: Double) {
        precondition(params.count == grads.count, "Adam.step: \(params.count) parameters but \(grads.count) gradients")
        if expAvg.isEmpty {
            expAvg = [Float](repeating: 0, count: params.count)
            expAvgSq = [Float](repeating: 0, count: params.count)
        }
        precondition(expAvg.count == params.count, "Adam.step: state holds \(expAvg.count) elements but params have \(params.count)")
        stepCount += 1
        let t = Double(stepCount)
        let biasCorrection1 = 1 - pow(beta1, t)
        let biasCorrection2 = 1 - pow(beta2, t)
        let negStepSize = Float(-(lr / biasCorrection1))
        let bc2Sqrt = Float(biasCorrection2.squareRoot())
        let wd = Float(weightDecay), w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2)
        let epsF = Float(eps)
        // torch.lerp switches formula at weight 0.5 for accuracy; keep the same branch.
        let smallWeight = abs(w1) < 0.5
        let oneMinusW1: Float = 1 - w1
        expAvg.withUnsafeMutableBufferPointer { m in
            expAvgSq.withUnsafeMutableBufferPointer { v in
                for i in 0..<params.count {
                    var g = grads[i]
                    if wd != 0 { g = g + wd * params[i] }
                    m[i] = smallWeight ? m[i] + w1 * (g - m[i]) : g - (g - m[i]) * oneMinusW1
                    v[i] = v[i] * b2 + w2 * g * g
                    let denom = v[i].squareRoot() / bc2Sqrt + epsF
                    params[i] = params[i] + negStepSize * m[i] / denom
                }
            }
        }
    }

    public func exportState() -> OptimizerState {
        OptimizerState(kind: "adam", stepCount: stepCount,
                       buffers: expAvg.isEmpty ? [:] : ["exp_avg": expAvg, "exp_avg_sq": expAvgSq])
    }

    public mutating func importState(_ state: OptimizerState) throws {
        _ = try state.validated(kind: "adam", names: ["exp_avg", "exp_avg_sq"], required: false)
        if state.stepCount > 0, state.buffers.isEmpty {
            throw OptimizerStateError(message: "Adam state after \(state.stepCount) steps has no exp_avg/exp_avg_sq buffers")
        }
        stepCount = state.stepCount
        expAvg = state.buffers["exp_avg"] ?? []
        expAvgSq = state.buffers["exp_avg_sq"] ?? []
    }
}
