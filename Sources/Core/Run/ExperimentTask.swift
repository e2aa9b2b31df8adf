import Foundation

/// A task of the experiment's graph.
public enum ExperimentTask: Hashable, Sendable {
    /// Train the parent of replicate `r`, writing checkpoints at every spawn and measurement time.
    case parent(replicate: Int)
    /// Train child `k` (0-based) of spawn time index `s` from the parent's checkpoint to the end.
    case child(replicate: Int, spawn: Int, child: Int)
    /// Compare children `a < b` of spawn time index `s` (barrier, distances).
    case pair(replicate: Int, spawn: Int, a: Int, b: Int)
    /// Errors and losses of the parent at measurement time index `t`.
    case timeline(replicate: Int, time: Int)
    /// ReLU-pattern distance and logit-gradient alignment between all pairs of measurement times.
    case timelinePairs(replicate: Int)
    /// The linearised model's learning-rate grid at `linearized.times[time]` (when it lists several rates).
    case linearizedGrid(replicate: Int, time: Int)
    /// Linearised training around the parent at `linearized.times[time]`, seed `seed`.
    case linearized(replicate: Int, time: Int, seed: Int)
    /// Second-order Taylor training around the parent at `linearized.times[time]`, seed `seed`
    /// (`linearized.second_order`; the linearised run's settings, learning rate and batches).
    case secondOrder(replicate: Int, time: Int, seed: Int)
    /// The low-learning-rate nonlinear child from the same point, seed `seed` (the same batches).
    case nonlinearChild(replicate: Int, time: Int, seed: Int)
    /// Part `part` of the loss plane through the parent at `plane.spawn_times[plane]` and children 0, 1.
    case plane(replicate: Int, plane: Int, part: Int)
    /// The function distance between the children of spawn index `s` along their training.
    case trajectories(replicate: Int, spawn: Int)
    /// The joint t-SNE embedding of every saved prediction vector of the replicate.
    case embedding(replicate: Int)
    /// Top Hessian eigenvalue of the parent at `hessian.times[time]`.
    case hessian(replicate: Int, time: Int)
    /// Collective over a group of ranks: the parent's NTK Grams at every NTK time (spectra,
    /// alignment, kernel distances, velocity).
    case kernelTimeline(replicate: Int)
    /// Collective: kernel distances between the children of spawn time index `s`.
    case kernelChildren(replicate: Int, spawn: Int)
    /// Collective: the NTK kernel machine at `kernel_machine.times[time]`.
    case kernelMachine(replicate: Int, time: Int)

    public var id: String {
        switch self {
        case let .parent(r): return "r\(r)-parent"
        case let .child(r, s, k): return "r\(r)-s\(s)-c\(k)"
        case let .pair(r, s, a, b): return "r\(r)-s\(s)-pair\(a)-\(b)"
        case let .timeline(r, t): return "r\(r)-t\(t)"
        case let .timelinePairs(r): return "r\(r)-timeline-pairs"
        case let .linearizedGrid(r, t): return "r\(r)-lin\(t)-grid"
        case let .linearized(r, t, k): return "r\(r)-lin\(t)-k\(k)"
        case let .secondOrder(r, t, k): return "r\(r)-lin\(t)-second-k\(k)"
        case let .nonlinearChild(r, t, k): return "r\(r)-lin\(t)-nonlinear-k\(k)"
        case let .plane(r, p, k): return "r\(r)-plane\(p)-part\(k)"
        case let .trajectories(r, s): return "r\(r)-s\(s)-trajectories"
        case let .embedding(r): return "r\(r)-embedding"
        case let .hessian(r, t): return "r\(r)-hessian\(t)"
        case let .kernelTimeline(r): return "r\(r)-ntk-timeline"
        case let .kernelChildren(r, s): return "r\(r)-s\(s)-ntk-children"
        case let .kernelMachine(r, t): return "r\(r)-ntk-machine\(t)"
        }
    }

    /// Collective tasks run by a group of ranks after the pipelined ones.
    public var isCollective: Bool {
        switch self {
        case .kernelTimeline, .kernelChildren, .kernelMachine: return true
        default: return false
        }
    }
}
