import Foundation

/// Loads the train and test splits of a data set, validated, pixels in `[0, 1]` (not normalised:
/// apply `Normalization` next, e.g. `kind.standardNormalization`).
public enum DatasetLoader {
    /// IDX file names, in the order images/labels of train, images/labels of test. Each may also be
    /// present with a `.gz` suffix (the content decides whether it is decompressed).
    public static let idxFiles = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    /// - Parameters:
    ///   - kind: which data set.
    ///   - path: the directory holding the files; `nil` uses `kind.defaultPath` (Fashion-MNIST:
    ///     `/usr/share/datasets/fashion-mnist`). CIFAR-10 wants `data_batch_1.bin` ...
    ///     `data_batch_5.bin` and `test_batch.bin` in `path` or `path/cifar-10-batches-bin`;
    ///     CIFAR-100 `train.bin`, `test.bin` in `path` or `path/cifar-100-binary`; (Fashion-)MNIST the
    ///     four `idxFiles`, each plain or `.gz`. Ignored for `.synthetic`.
    ///   - synthetic: parameters of the synthetic data set.
    ///   - cifar100Labels: fine (100 classes, default) or coarse (20).
    public static func load(kind: DatasetKind, path: String? = nil, synthetic: SyntheticSpec = SyntheticSpec(),
                            cifar100Labels: CIFAR100LabelKind = .fine) throws -> (train: Dataset, test: Dataset) {
        if kind == .synthetic { return SyntheticData.make(synthetic) }
        guard let dir = path ?? kind.defaultPath else { throw DatasetError.noDataPath(kind: kind) }
        let join = { (d: String, f: String) in (d as NSString).appendingPathComponent(f) }
        if FileBytes.isRegularFile(dir) { throw DatasetError.notADirectory(path: dir, kind: kind) }
        if !FileBytes.isDirectory(dir) { throw DatasetError.noSuchDirectory(path: dir, kind: kind) }
        switch kind {
        case .cifar10:
            let required = CIFARReader.cifar10TrainFiles + CIFARReader.cifar10TestFiles
            let d = try CIFARReader.locate(required, in: dir, subfolder: "cifar-10-batches-bin", kind: kind)
            let names = CIFARReader.classNames(file: join(d, "batches.meta.txt"), count: 10) ?? kind.classNames
            return (try CIFARReader.readCIFAR10(files: CIFARReader.cifar10TrainFiles.map { join(d, $0) },
                                                name: "cifar10-train", classNames: names),
                    try CIFARReader.readCIFAR10(files: CIFARReader.cifar10TestFiles.map { join(d, $0) },
                                                name: "cifar10-test", classNames: names))
        case .cifar100:
            let required = CIFARReader.cifar100TrainFiles + CIFARReader.cifar100TestFiles
            let d = try CIFARReader.locate(required, in: dir, subfolder: "cifar-100-binary", kind: kind)
            let namesFile = cifar100Labels == .fine ? "fine_label_names.txt" : "coarse_label_names.txt"
            let names = CIFARReader.classNames(file: join(d, namesFile), count: cifar100Labels == .fine ? 100 : 20)
            return (try CIFARReader.readCIFAR100(files: [join(d, "train.bin")], labels: cifar100Labels,
                                                 name: "cifar100-train", classNames: names),
                    try CIFARReader.readCIFAR100(files: [join(d, "test.bin")], labels: cifar100Labels,
                                                 name: "cifar100-test", classNames: names))
        case .mnist, .fashionMNIST:
            let files = try locateIDX(in: dir, kind: kind)
            return (try IDXReader.readDataset(images: files[0], labels: files[1], kind: kind,
                                              name: "\(kind.rawValue)-train", classNames: kind.classNames),
                    try IDXReader.readDataset(images: files[2], labels: files[3], kind: kind,
                                              name: "\(kind.rawValue)-test", classNames: kind.classNames))
        case .synthetic:
            fatalError("unreachable")
        }
    }

    /// CIFAR-10 from explicit file lists (e.g. the sample `data_batch_1_first4000.bin`,
    /// `test_batch_first1000.bin`).
    public static func loadCIFAR10(trainFiles: [String], testFiles: [String]) throws -> (train: Dataset, test: Dataset) {
        (try CIFARReader.readCIFAR10(files: trainFiles, name: "cifar10-train"),
         try CIFARReader.readCIFAR10(files: testFiles, name: "cifar10-test"))
    }

    /// Paths of the four IDX files in `directory`, preferring the plain name, then `.gz`.
    static func locateIDX(in directory: String, kind: DatasetKind) throws -> [String] {
        var found: [String] = []
        var missing: [String] = []
        for name in idxFiles {
            let plain = (directory as NSString).appendingPathComponent(name)
            if FileBytes.isRegularFile(plain) { found.append(plain) }
            else if FileBytes.isRegularFile(plain + ".gz") { found.append(plain + ".gz") }
            else if FileBytes.isDirectory(plain) { throw DatasetError.isADirectory(file: plain, kind: kind) }
            else { missing.append(name + "[.gz]") }
        }
        guard missing.isEmpty else {
            throw DatasetError.missingFiles(directory: directory, missing: missing,
                                            expected: idxFiles.map { $0 + "[.gz]" }, kind: kind)
        }
        return found
    }
}
