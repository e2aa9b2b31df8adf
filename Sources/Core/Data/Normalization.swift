/// Per-channel standardisation `x' = (x[c] - mean[c]) / std[c]` of pixels already scaled to `[0, 1]`
/// (torchvision's `Normalize` after `ToTensor`, computed in `Float` like it).
///
/// The standard constants are the population mean and standard deviation of each channel over all
/// pixels of all images of the *training* split (`N * H * W` values per channel):
/// - CIFAR-10 mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616). The means are the values
///   used across the PyTorch CIFAR literature (e.g. kuangliu/pytorch-cifar); the stds are the
///   pixel-level ones, not the often copied (0.2023, 0.1994, 0.2010), which average per-image stds.
/// - CIFAR-100 mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762), the same statistics of the
///   CIFAR-100 training set.
/// - MNIST mean 0.1307, std 0.3081, from the official PyTorch MNIST example (pytorch/examples).
/// - Fashion-MNIST mean 0.2860, std 0.3530, these statistics of its 60,000 training images
///   (checked by `DataTests` against the Debian files).
/// `computed(from:)` gives the same statistics for any training split.
public struct Normalization: Codable, Sendable, Equatable {
    /// `[C]`.
    public var mean: [Float]
    /// `[C]`, all positive.
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty, "Normalization: mean/std length mismatch")
        precondition(std.allSatisfy { $0 > 0 }, "Normalization: std must be positive")
        self.mean = mean
        self.std = std
    }

    public static let cifar10 = Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
    public static let cifar100 = Normalization(mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762])
    public static let mnist = Normalization(mean: [0.1307], std: [0.3081])
    public static let fashionMNIST = Normalization(mean: [0.2860], std: [0.3530])

    public var channels: Int { mean.count }

    /// Per-channel population mean and standard deviation over every pixel of `dataset`, accumulated
    /// in `Double`: `mean[c] = sum x / (N H W)`, `std[c] = sqrt(sum (x - mean[c])^2 / (N H W))`
    /// (two passes, so no cancellation). Pass the training split, un-normalised.
    public static func computed(from dataset: Dataset) -> Normalization {
        let (n, c, hw) = (dataset.count, dataset.channels, dataset.height * dataset.width)
        precondition(n > 0, "Normalization.computed: empty data set \(dataset.name)")
        var mean = [Double](repeating: 0, count: c)
        var variance = [Double](repeating: 0, count: c)
        dataset.images.withUnsafeBufferPointer { x in
            for ch in 0..<c {
                var s = 0.0
                for i in 0..<n {
                    let p = x.baseAddress! + (i * c + ch) * hw
                    var row = 0.0
                    for k in 0..<hw { row += Double(p[k]) }
                    s += row
                }
                let m = s / Double(n * hw)
                var ss = 0.0
                for i in 0..<n {
                    let p = x.baseAddress! + (i * c + ch) * hw
                    for k in 0..<hw {
                        let d = Double(p[k]) - m
                        ss += d * d
                    }
                }
                mean[ch] = m
                variance[ch] = ss / Double(n * hw)
            }
        }
        return Normalization(mean: mean.map { Float($0) }, std: variance.map { Float($0.squareRoot()) })
    }

    /// Standardises `dataset.images` in place and records `self` in `dataset.normalization`.
    /// The data set must not be normalised already.
    public func apply(to dataset: inout Dataset) {
        precondition(dataset.normalization == nil, "\(dataset.name) is already normalised")
        precondition(dataset.channels == channels,
                     "Normalization for \(channels) channels applied to \(dataset.name) with \(dataset.channels)")
        let (n, c, hw) = (dataset.count, dataset.channels, dataset.height * dataset.width)
        dataset.images.withUnsafeMutableBufferPointer { x in
            for i in 0..<n {
                for ch in 0..<c {
                    let (m, s) = (mean[ch], std[ch])
                    let p = x.baseAddress! + (i * c + ch) * hw
                    for k in 0..<hw { p[k] = (p[k] - m) / s }
                }
            }
        }
        dataset.normalization = self
    }

    /// The value a raw pixel of 0 (black) takes after normalisation, `-mean[c] / std[c]`: what
    /// torchvision's zero padding (applied before `Normalize`) becomes. `[C]`.
    public var zeroPixelValues: [Float] { zip(mean, std).map { (0 - $0) / $1 } }
}

public extension Dataset {
    /// A copy standardised with `normalization`.
    func normalized(_ normalization: Normalization) -> Dataset {
        var d = self
        normalization.apply(to: &d)
        return d
    }
}
