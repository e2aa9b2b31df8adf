/// The data sets NTKScape reads. The raw value is the name used in experiment files and on the
/// command line.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
    case cifar10
    case cifar100
    case mnist
    case fashionMNIST = "fashion-mnist"
    case synthetic

    /// Lenient parsing of user input: case-insensitive, `-`/`_` ignored (`Fashion_MNIST` works).
    public init?(name: String) {
        let key = name.lowercased().filter { $0 != "-" && $0 != "_" }
        guard let k = Self.allCases.first(where: { $0.rawValue.filter { $0 != "-" } == key }) else { return nil }
        self = k
    }

    public var displayName: String {
        switch self {
        case .cifar10: return "CIFAR-10"
        case .cifar100: return "CIFAR-100"
        case .mnist: return "MNIST"
        case .fashionMNIST: return "Fashion-MNIST"
        case .synthetic: return "synthetic"
        }
    }

    /// Image shape `(C, H, W)` of the real data sets; the synthetic one takes it from `SyntheticSpec`.
    public var imageShape: (channels: Int, height: Int, width: Int)? {
        switch self {
        case .cifar10, .cifar100: return (3, 32, 32)
        case .mnist, .fashionMNIST: return (1, 28, 28)
        case .synthetic: return nil
        }
    }

    /// Number of classes (CIFAR-100: fine labels).
    public var classCount: Int? {
        switch self {
        case .cifar10, .mnist, .fashionMNIST: return 10
        case .cifar100: return 100
        case .synthetic: return nil
        }
    }

    /// Built-in class names, in label order, where they are short enough to carry.
    public var classNames: [String]? {
        switch self {
        case .cifar10:
            return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        case .fashionMNIST:
            return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                    "Bag", "Ankle boot"]
        case .mnist:
            return (0..<10).map(String.init)
        case .cifar100, .synthetic:
            return nil
        }
    }

    /// Where the data set is found when no directory is given.
    public var defaultPath: String? {
        switch self {
        case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
        default: return nil
        }
    }

    /// The documented per-channel normalisation constants (see `Normalization`).
    public var standardNormalization: Normalization? {
        switch self {
        case .cifar10: return .cifar10
        case .cifar100: return .cifar100
        case .mnist: return .mnist
        case .fashionMNIST: return .fashionMNIST
        case .synthetic: return nil
        }
    }

    /// Whether the standard pad-4 random crop + horizontal flip applies (the CIFAR recipe).
    public var usesCIFARAugmentation: Bool { self == .cifar10 || self == .cifar100 }

    /// The files a data directory of this kind holds, for messages.
    public var expectedFiles: String {
        switch self {
        case .cifar10: return "data_batch_1.bin ... data_batch_5.bin, test_batch.bin"
        case .cifar100: return "train.bin, test.bin"
        case .mnist, .fashionMNIST: return "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz"
        case .synthetic: return "none: synthetic data are generated"
        }
    }

    /// How to obtain the files.
    public var downloadHint: String {
        switch self {
        case .cifar10:
            return "download the *binary version* of CIFAR-10 (cifar-10-binary.tar.gz) from "
                + "https://www.cs.toronto.edu/~kriz/cifar.html and extract it; pass the directory that "
                + "holds data_batch_1.bin ... data_batch_5.bin and test_batch.bin (cifar-10-batches-bin/ "
                + "or its parent), or list the batch files explicitly."
        case .cifar100:
            return "download the *binary version* of CIFAR-100 (cifar-100-binary.tar.gz) from "
                + "https://www.cs.toronto.edu/~kriz/cifar.html and extract it; pass the directory that "
                + "holds train.bin and test.bin (cifar-100-binary/ or its parent)."
        case .mnist:
            return "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                + "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (MNIST, LeCun, Cortes & "
                + "Burges; mirrored e.g. by torchvision) into one directory, gzipped or not."
        case .fashionMNIST:
            return "on Debian/Ubuntu run `apt-get install dataset-fashion-mnist` (files land in "
                + "/usr/share/datasets/fashion-mnist), or download the four *-ubyte.gz files from "
                + "https://github.com/zalandoresearch/fashion-mnist (data/fashion) into one directory."
        case .synthetic:
            return "the synthetic data set needs no files."
        }
    }
}

/// An image classification data set held in memory.
///
/// Legend: `N` examples, `C` channels, `H` height, `W` width.
/// `images` is one flat array of shape `[N, C, H, W]` (example `i`, channel `c`, row `y`, column `x`
/// at `((i * C + c) * H + y) * W + x`). Readers scale pixels to `[0, 1]` (`byte / 255`, as
/// torchvision's `ToTensor`); `normalization` records a per-channel standardisation applied since.
/// `labels[i]` lies in `0..<classCount`.
public struct Dataset: Sendable {
    public var name: String
    /// `[N, C, H, W]`.
    public var images: [Float]
    /// `[N]`, each in `0..<classCount`.
    public var labels: [Int32]
    public let channels: Int
    public let height: Int
    public let width: Int
    public let classCount: Int
    /// Class names in label order, if known.
    public var classNames: [String]?
    /// The standardisation `(x - mean[c]) / std[c]` applied to `images`, or `nil` for raw `[0, 1]`.
    public var normalization: Normalization?

    public init(name: String, images: [Float], labels: [Int32], channels: Int, height: Int, width: Int,
                classCount: Int, classNames: [String]? = nil, normalization: Normalization? = nil) {
        precondition(channels > 0 && height > 0 && width > 0 && classCount > 0,
                     "Dataset \(name): shape and class count must be positive")
        precondition(images.count == labels.count * channels * height * width,
                     "Dataset \(name): \(images.count) pixel values for \(labels.count) examples of "
                         + "\(channels)x\(height)x\(width)")
        precondition(classNames == nil || classNames!.count == classCount,
                     "Dataset \(name): \(classNames?.count ?? 0) class names for \(classCount) classes")
        self.name = name
        self.images = images
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classCount = classCount
        self.classNames = classNames
        self.normalization = normalization
    }

    /// `N`.
    public var count: Int { labels.count }
    /// `C * H * W`, the length of one example in `images`.
    public var exampleSize: Int { channels * height * width }

    /// Label of example `i` as an `Int`.
    @inlinable public func label(_ i: Int) -> Int { Int(labels[i]) }

    /// The pixels of example `i`, `[C, H, W]`.
    public func image(_ i: Int) -> ArraySlice<Float> {
        images[i * exampleSize ..< (i + 1) * exampleSize]
    }

    /// The examples at `indices`, in that order (repeats allowed).
    public func subset(indices: [Int]) -> Dataset {
        let e = exampleSize
        var out = [Float](repeating: 0, count: indices.count * e)
        var outLabels = [Int32](repeating: 0, count: indices.count)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "subset: index \(i) outside 0..<\(count)")
                    dst.baseAddress!.advanced(by: k * e).update(from: src.baseAddress!.advanced(by: i * e), count: e)
                    outLabels[k] = labels[i]
                }
            }
        }
        return Dataset(name: name, images: out, labels: outLabels, channels: channels, height: height,
                       width: width, classCount: classCount, classNames: classNames,
                       normalization: normalization)
    }

    /// Number of examples of each class, `[classCount]`.
    public func classCounts() -> [Int] {
        var c = [Int](repeating: 0, count: classCount)
        for l in labels { c[Int(l)] += 1 }
        return c
    }

    /// Indices of the examples of each class, in data set order: `[classCount][*]`.
    public func indicesByClass() -> [[Int]] {
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, l) in labels.enumerated() { byClass[Int(l)].append(i) }
        return byClass
    }
}
