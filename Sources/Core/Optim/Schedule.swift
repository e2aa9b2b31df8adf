import Foundation

/// Learning-rate schedule as a function of training time in epochs (possibly fractional, since
/// spawn and measurement times such as 0.4 fall inside epochs).
///
/// `step(milestones, gamma)`: `lr = base * gamma^k`, `k = #{ milestones m : m <= epoch }`
/// (duplicates count twice). With integer milestones and `epoch = e + fraction` inside epoch `e`
/// (0-based, `0 <= fraction < 1`) this is `torch.optim.lr_scheduler.MultiStepLR` stepped once at
/// the end of each epoch: the whole of epoch `e` runs at `base * gamma^bisect_right(milestones, e)`.
/// A fractional milestone takes effect mid-epoch, at the first optimiser step whose position
/// `epoch = step / stepsPerEpoch` reaches it — something per-epoch PyTorch cannot express; the
/// closed form `base * gamma^k` is PyTorch's `_get_closed_form_lr`.
public enum LRSchedule: Equatable, Sendable, Codable {
    case constant
    case step(milestones: [Double], gamma: Double)

    /// Factor applied to the base learning rate at `epoch`.
    public func multiplier(epoch: Double) -> Double {
        switch self {
        case .constant:
            return 1
        case let .step(milestones, gamma):
            let k = milestones.reduce(0) { $1 <= epoch ? $0 + 1 : $0 }
            return pow(gamma, Double(k))
        }
    }

    public func lr(base: Double, epoch: Double) -> Double {
        base * multiplier(epoch: epoch)
    }

    /// Learning rate for optimiser step `step` (0-based, counted from the start of training).
    /// `Double(step) / Double(stepsPerEpoch)` is correctly rounded, so a milestone written as a
    /// decimal equal to some `k / stepsPerEpoch` (e.g. 0.4 with 10 steps per epoch) is reached
    /// exactly at step `k`, not one step late.
    public func lr(base: Double, step: Int, stepsPerEpoch: Int) -> Double {
        precondition(stepsPerEpoch > 0, "LRSchedule: stepsPerEpoch must be positive")
        return lr(base: base, epoch: Double(step) / Double(stepsPerEpoch))
    }
}
