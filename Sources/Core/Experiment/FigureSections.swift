import Foundation

// The experiment file's sections of the paper's figure analyses: loss planes (Fig. 5),
// function-space trajectories and their embedding (Figs. 10, 11), and the statistics read off
// the figures (docs/metrics.md).

/// The experiment file's `plane` section: test error and loss on the plane through the parent at a
/// spawn time and two of its children (children 0 and 1), and the tangent-plane models there.
public struct PlaneSection: Codable, Equatable, Sendable, ConfigSection {
    /// Spawn times (each one of `spawn_times`) whose plane is measured; empty = none.
    public var spawnTimes: [Double] = []
    /// Grid points per axis.
    public var points = 21
    /// How far the grid reaches beyond the three networks, as a fraction of their extent on each axis.
    public var margin = 0.25
    /// Tasks each plane's grid is cut into (point `i` of the row-major grid goes to part `i mod parts`).
    public var parts = 8
    /// Test examples (the first N of the test subset; 0 = all) evaluated at every grid point.
    public var testSubset = 1000
    /// Also evaluate the tangent-plane models (the linearisations around the parent and around child 0).
    public var tangent = true

    public init() {}

    static var fields: [ConfigField<PlaneSection>] { [
        .init("spawn_times", \.spawnTimes,
              "Spawn times whose plane through the parent there and children 0 and 1 is measured; [] = none."),
        .init("points", \.points, "Grid points per axis of the plane (points x points evaluations per model)."),
        .init("margin", \.margin, "Extent of the grid beyond the three networks, as a fraction of their spread on each axis."),
        .init("parts", \.parts,
              "Tasks each plane's grid is cut into, spread over the ranks (point i of the row-major grid goes to part i mod parts)."),
        .init("test_subset", \.testSubset, "Test examples (the first N of the test subset; 0 = all) evaluated at every grid point."),
        .init("tangent", \.tangent,
              "Also evaluate the linearised models around the parent at the spawn time and around child 0 on the same grid."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

extension TSNEMethod: ConfigEnum {}

/// The `trajectories.tsne` subsection.
public struct TSNESection: Codable, Equatable, Sendable, ConfigSection {
    public var perplexity = 30.0
    public var iterations = 1000
    public var method: TSNEMethod = .auto
    /// Barnes–Hut opening angle.
    public var theta = 0.5

    public init() {}

    /// The embedding's settings (the rest at their defaults: early exaggeration 12 for 250 iterations,
    /// learning rate max(N / 48, 50)).
    public var settings: TSNESettings {
        var s = TSNESettings()
        s.perplexity = perplexity; s.iterations = iterations; s.method = method; s.theta = theta
        return s
    }

    static var fields: [ConfigField<TSNESection>] { [
        .init("perplexity", \.perplexity, "Perplexity of the input affinities (effective neighbours); below the number of points less one."),
        .init("iterations", \.iterations, "Gradient-descent iterations (the first 250 with early exaggeration 12)."),
        .init("method", \.method, "exact (all pairs), barnes_hut (quadtree, O(N log N)) or auto (Barnes-Hut above 2,000 points)."),
        .init("theta", \.theta, "Barnes-Hut opening angle (0 = exact forces)."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `trajectories` section: softmax predictions of the parent and of every
/// child along training on a fixed test subset, the child–child function distance along training,
/// and a joint t-SNE embedding of every saved prediction vector.
public struct TrajectoriesSection: Codable, Equatable, Sendable, ConfigSection {
    /// Whether predictions are saved and the distances and embedding computed.
    public var enabled = false
    /// Class-balanced test examples whose predictions are saved.
    public var examples = 1000
    /// Child times: every `every` epochs after the spawn, and the end.
    public var every = 1.0
    /// Window (points) of the centred moving average of the distances; 1 = no smoothing.
    public var smoothing = 3
    public var tsne = TSNESection()

    public init() {}

    static var fields: [ConfigField<TrajectoriesSection>] { [
        .init("enabled", \.enabled, "Save predictions along training and compute the distances over time and the t-SNE embedding."),
        .init("examples", \.examples,
              "Class-balanced test examples whose softmax predictions are saved at every parent measurement time and "
                + "along every child's training (a multiple of the class count)."),
        .init("every", \.every, "Child prediction times: the spawn, every `every` epochs after it, and the end of training."),
        .init("smoothing", \.smoothing,
              "Window (in points, odd) of the centred moving average of the child-child distances; 1 = none."),
        .init("tsne", \.tsne, "The joint t-SNE embedding of every saved prediction vector (parent and children, all times)."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

/// The experiment file's `statistics` section: intervals, thresholds and correlations computed from
/// the tables (`statistics.json`, `statistics.csv`).
public struct StatisticsSection: Codable, Equatable, Sendable, ConfigSection {
    /// Confidence level of every interval.
    public var level = 0.95
    /// Bootstrap resamples.
    public var resamples = 2000
    /// The basin-fate time is the first spawn time whose mean test-error barrier is below this.
    public var barrierThreshold = 0.01
    /// The kernel velocity's plateau time: from it on the velocity stays within this fraction of its drop.
    public var velocityFraction = 0.1

    public init() {}

    static var fields: [ConfigField<StatisticsSection>] { [
        .init("level", \.level, "Confidence level of every interval (bootstrap percentile and Fisher z)."),
        .init("resamples", \.resamples, "Bootstrap resamples (replicates, then pairs within each, drawn with replacement)."),
        .init("barrier_threshold", \.barrierThreshold,
              "Basin-fate time: the first spawn time whose mean test-error barrier (max minus mean) is below this."),
        .init("velocity_fraction", \.velocityFraction,
              "Kernel-velocity plateau time: the first time from which the velocity stays within this fraction of its "
                + "drop (v - v_end <= fraction (v_max - v_end))."),
    ] }

    public init(from decoder: Decoder) throws { self = try Self.decodeConfig(from: decoder) }
    public func encode(to encoder: Encoder) throws { try configValue.encode(to: encoder) }
}

public extension ExperimentConfig {
    /// The prediction times of a child spawned at `spawn`: the spawn, every `trajectories.every`
    /// epochs after it, and the end (rounded to 1e-9 epoch, as the velocity times).
    func trajectoryChildTimes(spawn: Double) -> [Double] {
        let T = recipe.epochs, every = trajectories.every
        var times = [spawn]
        var k = 1.0
        while true {
            let t = ((spawn + k * every) * 1e9).rounded() / 1e9
            guard t < T else { break }
            times.append(t)
            k += 1
        }
        times.append(T)
        return times
    }

    /// Prediction vectors the trajectories save per replicate (parent times plus every child's times).
    var trajectoryPoints: Int {
        guard trajectories.enabled else { return 0 }
        return resolvedMeasurementTimes.count + resolvedSpawnTimes.map { trajectoryChildTimes(spawn: $0).count * children }.reduce(0, +)
    }
}
