/// Parameters of the synthetic data set (tests, smoke runs, benchmarks).
public struct SyntheticSpec: Codable, Sendable, Equatable {
    public var trainCount: Int
    public var testCount: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var classCount: Int
    /// Standard deviation of the per-pixel Gaussian noise.
    public var noise: Float
    public var seed: UInt64

    public init(trainCount: Int = 1000, testCount: Int = 200, channels: Int = 3, height: Int = 8,
                width: Int = 8, classCount: Int = 10, noise: Float = 0.1, seed: UInt64 = 0) {
        self.trainCount = trainCount
        self.testCount = testCount
        self.channels = channels
        self.height = height
        self.width = width
        self.classCount = classCount
        self.noise = noise
        self.seed = seed
    }
}

/// Class-dependent Gaussian blobs with pixel noise, deterministic in `SyntheticSpec.seed`.
///
/// Class `c` has a prototype: a Gaussian blob of radius `s = max(H, W) / 4` at centre `(cy, cx)`
/// (uniform over the image) with per-channel amplitude `a[c, ch]` uniform in `[-0.4, 0.4]`:
///
///     proto[c, ch, y, x] = 0.5 + a[c, ch] * exp(-((y - cy)^2 + (x - cx)^2) / (2 s^2))
///
/// Example `i` of a split has label `i mod C` and pixels `clamp(proto + noise * N(0, 1), 0, 1)`, like
/// real images in `[0, 1]`. The prototypes come from stream (seed, `.synthetic`, child 0, epoch 0),
/// example `i` of split `k` (0 train, 1 test) from (seed, `.synthetic`, child 1 + k, step `i`), so
/// the test set does not depend on the size of the training set.
public enum SyntheticData {
    public static func make(_ spec: SyntheticSpec = SyntheticSpec()) -> (train: Dataset, test: Dataset) {
        let protos = prototypes(spec)
        return (split(spec, protos, index: 0, count: spec.trainCount),
                split(spec, protos, index: 1, count: spec.testCount))
    }

    /// `[C, channels, H, W]`.
    static func prototypes(_ spec: SyntheticSpec) -> [Float] {
        let (c, ch, h, w) = (spec.classCount, spec.channels, spec.height, spec.width)
        var stream = RandomStream(seed: spec.seed, role: .synthetic)
        let s = Float(max(h, w)) / 4
        var protos = [Float](repeating: 0.5, count: c * ch * h * w)
        for k in 0..<c {
            let cy = stream.uniformFloat() * Float(h - 1)
            let cx = stream.uniformFloat() * Float(w - 1)
            for channel in 0..<ch {
                let a = 0.8 * stream.uniformFloat() - 0.4
                for y in 0..<h {
                    for x in 0..<w {
                        let d2 = (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx)
                        protos[((k * ch + channel) * h + y) * w + x] += a * Float.exp(-d2 / (2 * s * s))
                    }
                }
            }
        }
        return protos
    }

    static func split(_ spec: SyntheticSpec, _ protos: [Float], index: Int, count: Int) -> Dataset {
        let e = spec.channels * spec.height * spec.width
        var images = [Float](repeating: 0, count: count * e)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let label = i % spec.classCount
            labels[i] = Int32(label)
            var stream = RandomStream(seed: spec.seed, role: .synthetic, child: 1 + index, step: i)
            for p in 0..<e {
                let v = protos[label * e + p] + spec.noise * stream.normalFloat()
                images[i * e + p] = min(max(v, 0), 1)
            }
        }
        return Dataset(name: index == 0 ? "synthetic-train" : "synthetic-test", images: images, labels: labels,
                       channels: spec.channels, height: spec.height, width: spec.width,
                       classCount: spec.classCount)
    }
}
