import ArgumentParser
import Core

extension ModelKind: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LossFunction: ExpressibleByArgument {}
extension ConvolutionChoice: ExpressibleByArgument {}

extension Shape: ExpressibleByArgument {
    /// `CxHxW`, e.g. `3x32x32`.
    public init?(argument: String) {
        let p = argument.split(separator: "x").compactMap { Int($0) }
        guard p.count == 3, p.allSatisfy({ $0 > 0 }) else { return nil }
        self.init(p[0], p[1], p[2])
    }
}

/// Which data to train and evaluate on; shared by `train` and `evaluate`.
struct DataOptions: ParsableArguments {
    @Option(help: "Data set: \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var dataset: DatasetKind = .fashionMNIST

    @Option(name: .customLong("data-path"),
            help: "Directory with the data set's files (default: Fashion-MNIST /usr/share/datasets/fashion-mnist; CIFAR needs a path).")
    var dataPath: String?

    @Option(name: .customLong("train-file"), parsing: .singleValue,
            help: "CIFAR only: explicit training batch file(s) instead of --data-path (repeatable), e.g. a sample.")
    var trainFiles: [String] = []

    @Option(name: .customLong("test-file"), parsing: .singleValue, help: "CIFAR only: explicit test batch file(s) (repeatable).")
    var testFiles: [String] = []

    @Option(name: .customLong("train-subset"), help: "Train on the first N training examples (0 = all).")
    var trainSubset: Int = 0

    @Option(name: .customLong("balanced-subset"),
            help: "Train on N class-balanced training examples chosen by --seed instead (N a multiple of the class count).")
    var balancedSubset: Int = 0

    @Option(name: .customLong("test-subset"), help: "Evaluate on the first N test examples (0 = all).")
    var testSubset: Int = 0

    func validate() throws {
        if trainSubset < 0 || balancedSubset < 0 || testSubset < 0 { throw ValidationError("subset sizes must be >= 0") }
        if trainSubset > 0 && balancedSubset > 0 { throw ValidationError("use either --train-subset or --balanced-subset, not both") }
        if trainFiles.isEmpty != testFiles.isEmpty { throw ValidationError("--train-file and --test-file go together") }
        if !trainFiles.isEmpty && ![.cifar10, .cifar100].contains(dataset) {
            throw ValidationError("--train-file/--test-file are for CIFAR; for \(dataset.rawValue) use --data-path")
        }
    }

    private func loadSplits() throws -> (train: Dataset, test: Dataset) {
        switch (dataset, trainFiles.isEmpty) {
        case (.cifar10, false):
            return try DatasetLoader.loadCIFAR10(trainFiles: trainFiles, testFiles: testFiles)
        case (.cifar100, false):
            return (try CIFARReader.readCIFAR100(files: trainFiles, name: "cifar100-train"),
                    try CIFARReader.readCIFAR100(files: testFiles, name: "cifar100-test"))
        default:
            return try DatasetLoader.load(kind: dataset, path: dataPath)
        }
    }

    /// Loads, subsets and normalises (standard constants of the data set, else computed on the training split).
    func load(seed: UInt64) throws -> (train: Dataset, test: Dataset) {
        var (train, test) = try loadSplits()
        if balancedSubset > 0 {
            train = train.subset(indices: try train.classBalancedIndices(
                count: balancedSubset, key: RandomKey(seed: seed, role: .subset)))
        } else if trainSubset > 0 {
            train = try train.prefix(count: trainSubset)
        }
        if testSubset > 0 { test = try test.prefix(count: testSubset) }
        let norm = dataset.standardNormalization ?? Normalization.computed(from: train)
        norm.apply(to: &train)
        norm.apply(to: &test)
        return (train, test)
    }

    /// The network of `checkpoint` and these data, refusing data of another shape or class count.
    func load(checkpoint: String, seed: UInt64) throws -> (network: Network<Float>, train: Dataset, test: Dataset) {
        let net = try Checkpoint.read(checkpoint).makeNetwork()
        let (train, test) = try load(seed: seed)
        try Checkpoint.checkData(network: net, checkpoint: checkpoint, data: train)
        return (net, train, test)
    }
}
