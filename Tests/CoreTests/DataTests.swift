import Foundation
import TestSupport
import XCTest
import Core

/// Data readers, validation errors, normalisation, augmentation, subsets and batching, each checked
/// against an independent reference: published checksums and label counts of the real CIFAR-10
/// sample, raw bytes read directly at computed offsets, `gzip -d` for the decompression, hand-shifted
/// images for the augmentation, naive loops for statistics.
final class DataTests: XCTestCase {

    // MARK: Fixtures

    /// The CIFAR-10 sample (not part of the repository): `$NTKSCAPE_CIFAR10_SAMPLE` (.ci/run sets it
    /// when the sample is on the machine), else `shared/data/cifar10-sample` in an ancestor of this
    /// source file.
    private static let cifarSampleDirectory: String? = {
        let fm = FileManager.default
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["NTKSCAPE_CIFAR10_SAMPLE"] { candidates.append(env) }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            candidates.append(dir.appendingPathComponent("shared/data/cifar10-sample").path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { fm.fileExists(atPath: ($0 as NSString).appendingPathComponent("SHA256SUMS")) }
    }()

    private func cifarSample() throws -> String {
        guard let d = Self.cifarSampleDirectory else {
            // Data the repository does not ship: absent on a machine, the tests skip (also under CI).
            throw XCTSkip("CIFAR-10 sample not found: set NTKSCAPE_CIFAR10_SAMPLE or put shared/data/cifar10-sample "
                          + "beside the clone")
        }
        return d
    }

    /// Debian's `dataset-fashion-mnist` (the loader's default path), or `$NTKSCAPE_FASHION_MNIST`.
    private static let fashionDirectory = ProcessInfo.processInfo.environment["NTKSCAPE_FASHION_MNIST"]
        ?? DatasetKind.fashionMNIST.defaultPath!

    /// Fashion-MNIST from the Debian package, loaded once (with the load time) for all tests.
    private static let fashion: Result<(train: Dataset, test: Dataset, seconds: Double), Error> = Result {
        let start = Date()
        let d = try DatasetLoader.load(kind: .fashionMNIST, path: fashionDirectory)
        return (d.train, d.test, Date().timeIntervalSince(start))
    }

    private func fashionMNIST() throws -> (train: Dataset, test: Dataset, seconds: Double) {
        guard FileManager.default.fileExists(atPath: Self.fashionDirectory) else {
            try referenceMissing("\(Self.fashionDirectory) is absent: install Debian's dataset-fashion-mnist "
                       + "(`apt-get install dataset-fashion-mnist`) or set NTKSCAPE_FASHION_MNIST")
        }
        return try Self.fashion.get()
    }

    private func makeTemporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    private func path(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    private func write(_ bytes: [UInt8], to file: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    private func readRaw(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    /// Runs a tool from `$PATH`; its standard output goes to `stdoutFile` if given, else is returned.
    @discardableResult
    private func run(_ executable: String, _ arguments: [String], stdoutFile: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = try XCTUnwrap(executableOnPath(executable), "\(executable) is not on PATH")
        p.arguments = arguments
        let pipe = Pipe()
        var outHandle: FileHandle?
        if let f = stdoutFile {
            XCTAssertTrue(FileManager.default.createFile(atPath: f, contents: nil), "cannot create \(f)")
            outHandle = FileHandle(forWritingAtPath: f)
            p.standardOutput = outHandle
        } else {
            p.standardOutput = pipe
        }
        try p.run()
        let out = stdoutFile == nil ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
        p.waitUntilExit()
        try outHandle?.close()
        XCTAssertEqual(p.terminationStatus, 0, "\(executable) \(arguments) failed")
        return String(decoding: out, as: UTF8.self)
    }

    /// A big-endian IDX file: magic, dimensions, data.
    private func idx(magic: UInt32, dims: [Int], data: [UInt8]) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        return be(magic) + dims.flatMap { be(UInt32($0)) } + data
    }

    /// One CIFAR-10 record: label byte, then 3072 pixel bytes `pixel(p)`.
    private func cifar10Record(label: UInt8, pixel: (Int) -> UInt8) -> [UInt8] {
        [label] + (0..<3072).map(pixel)
    }

    /// Asserts that `body` throws exactly `expected` and that the message mentions every string in
    /// `mentions` (the file, the fix).
    private func assertThrows<T>(_ expected: DatasetError, mentions: [String], file: StaticString = #filePath,
                                 line: UInt = #line, _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected \(expected)", file: file, line: line)
        } catch let error as DatasetError {
            XCTAssertEqual(error, expected, file: file, line: line)
            let message = error.localizedDescription
            for m in mentions {
                XCTAssertTrue(message.contains(m), "message lacks \"\(m)\": \(message)", file: file, line: line)
            }
            XCTAssertTrue(message.contains("Fix:"), "message names no fix: \(message)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    // MARK: CIFAR-10 sample (real data)

    func testCIFAR10SampleFilesMatchPublishedSHA256() throws {
        let dir = try cifarSample()
        let sums = try String(contentsOfFile: path(dir, "SHA256SUMS"), encoding: .utf8)
        let expected = Dictionary(uniqueKeysWithValues: sums.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            return (String(parts[1]), String(parts[0]))
        })
        XCTAssertEqual(expected.count, 3)
        for (name, sum) in expected {
            let out = try run("sha256sum", [path(dir, name)])
            XCTAssertEqual(String(out.prefix(64)), sum, name)
        }
    }

    private func loadSample() throws -> (train: Dataset, test: Dataset) {
        let dir = try cifarSample()
        return try DatasetLoader.loadCIFAR10(trainFiles: [path(dir, "data_batch_1_first4000.bin")],
                                             testFiles: [path(dir, "test_batch_first1000.bin")])
    }

    /// Label counts published in the sample's README.
    func testCIFAR10SampleShapesAndLabelCounts() throws {
        let (train, test) = try loadSample()
        XCTAssertEqual(train.count, 4000)
        XCTAssertEqual(test.count, 1000)
        for d in [train, test] {
            XCTAssertEqual([d.channels, d.height, d.width, d.classCount], [3, 32, 32, 10])
            XCTAssertEqual(d.images.count, d.count * 3072)
            XCTAssertNil(d.normalization)
        }
        XCTAssertEqual(test.classCounts(), [103, 89, 100, 103, 90, 86, 112, 102, 106, 109])
        XCTAssertEqual(train.classCounts(), [396, 366, 420, 384, 422, 393, 414, 385, 407, 413])
    }

    /// Pixel (i, c, y, x) is byte `i * 3073 + 1 + c * 1024 + y * 32 + x` of the file, over 255; the
    /// label is byte `i * 3073`.
    func testCIFAR10SamplePixelsEqualRawBytes() throws {
        let dir = try cifarSample()
        let (train, test) = try loadSample()
        for (d, name) in [(train, "data_batch_1_first4000.bin"), (test, "test_batch_first1000.bin")] {
            let raw = try readRaw(path(dir, name))
            for (i, c, y, x) in [(0, 0, 0, 0), (d.count - 1, 2, 31, 31), (123, 1, 17, 5), (777, 0, 3, 29)] {
                let byte = raw[i * 3073 + 1 + c * 1024 + y * 32 + x]
                XCTAssertEqual(d.images[((i * 3 + c) * 32 + y) * 32 + x], Float(byte) / 255, "\(name) \((i, c, y, x))")
                XCTAssertEqual(d.label(i), Int(raw[i * 3073]))
            }
        }
        // Spot values read with an independent tool (numpy.fromfile(...).reshape(-1, 3073)).
        XCTAssertEqual(train.label(0), 6)
        XCTAssertEqual(train.images[0], 59 / 255)
        XCTAssertEqual(test.label(0), 3)
        XCTAssertEqual(test.images[0], 158 / 255)
        XCTAssertEqual(test.images[999 * 3072 + 3071], 131 / 255)
    }

    func testCIFAR10SampleClassNamesMatchBuiltIn() throws {
        let dir = try cifarSample()
        XCTAssertEqual(CIFARReader.classNames(file: path(dir, "batches.meta.txt"), count: 10),
                       DatasetKind.cifar10.classNames)
    }

    /// The documented CIFAR-10 constants are full-training-set statistics; 4,000 real images must
    /// reproduce them to about 0.01 (their sample statistics are ~0.002 away).
    func testCIFAR10ConstantsAgreeWithSampleStatistics() throws {
        let (train, _) = try loadSample()
        let computed = Normalization.computed(from: train)
        for c in 0..<3 {
            XCTAssertEqual(computed.mean[c], Normalization.cifar10.mean[c], accuracy: 0.01)
            XCTAssertEqual(computed.std[c], Normalization.cifar10.std[c], accuracy: 0.01)
        }
    }

    // MARK: Fashion-MNIST (Debian package)

    /// Content of the published files: 6000/1000 examples per class, the first ten labels of each
    /// split, the pixel mean and standard deviation of the training split (0.2860 and 0.3530, the
    /// normalisation constants published with Fashion-MNIST), and the exact byte sums of all pixels
    /// and of the first image (computed with Python's `gzip` module from Debian's files).
    func testFashionMNISTFromDebian() throws {
        let (train, test, seconds) = try fashionMNIST()
        XCTAssertEqual(train.count, 60_000)
        XCTAssertEqual(test.count, 10_000)
        for d in [train, test] {
            XCTAssertEqual([d.channels, d.height, d.width, d.classCount], [1, 28, 28, 10])
            XCTAssertEqual(d.images.count, d.count * 784)
            XCTAssertEqual(d.classNames?.count, 10)
        }
        XCTAssertEqual(train.classCounts(), [Int](repeating: 6000, count: 10))
        XCTAssertEqual(test.classCounts(), [Int](repeating: 1000, count: 10))
        XCTAssertEqual((0..<10).map { train.label($0) }, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        XCTAssertEqual((0..<10).map { test.label($0) }, [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        // Pixels are bytes / 255: their byte sums are exact in Double.
        func byteSum(_ d: Dataset, _ range: Range<Int>) -> Int {
            range.reduce(0) { $0 + Int((Double(d.images[$1]) * 255).rounded()) }
        }
        XCTAssertEqual(byteSum(train, 0..<train.images.count), 3_431_114_169)
        XCTAssertEqual(byteSum(test, 0..<test.images.count), 573_469_082)
        XCTAssertEqual(byteSum(train, 0..<784), 76_247)
        XCTAssertEqual(byteSum(test, 0..<784), 33_456)
        XCTAssertEqual((0..<28).map { Int((Double(train.images[14 * 28 + $0]) * 255).rounded()) },
                       [0, 0, 1, 4, 6, 7, 2, 0, 0, 0, 0, 0, 237, 226, 217, 223, 222, 219, 222, 221, 216, 223, 229, 215,
                        218, 255, 77, 0], "row 14 of the first training image")
        let n = Double(train.images.count)
        let mean = train.images.reduce(0.0) { $0 + Double($1) } / n
        let sd = (train.images.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n).squareRoot()
        assertClose([mean, sd], [0.2860, 0.3530], Tolerance.absolute(5e-5), "train pixel mean and sd")
        print("Fashion-MNIST train+test loaded in \(String(format: "%.3f", seconds)) s")
    }

    /// The gzipped files and plain copies made by `gzip -d` give identical data sets, and pixels equal
    /// the raw bytes at `16 + i * 784 + y * 28 + x`, labels the bytes at `8 + i`.
    func testFashionMNISTGzipAndPlainAgreeWithRawBytes() throws {
        let (train, test, _) = try fashionMNIST()
        let tmp = try makeTemporaryDirectory()
        for name in DatasetLoader.idxFiles {
            try run("gzip", ["-dc", path(Self.fashionDirectory, name + ".gz")], stdoutFile: path(tmp, name))
        }
        let plain = try DatasetLoader.load(kind: .fashionMNIST, path: tmp)
        XCTAssertEqual(plain.train.labels, train.labels)
        XCTAssertEqual(plain.test.labels, test.labels)
        XCTAssertTrue(plain.train.images == train.images, "train images differ between .gz and plain")
        XCTAssertTrue(plain.test.images == test.images, "test images differ between .gz and plain")

        let rawImages = try readRaw(path(tmp, "train-images-idx3-ubyte"))
        let rawLabels = try readRaw(path(tmp, "train-labels-idx1-ubyte"))
        XCTAssertEqual(rawImages.count, 16 + 60_000 * 784)
        for (i, y, x) in [(0, 0, 0), (0, 14, 14), (31_337, 20, 7), (59_999, 27, 27)] {
            XCTAssertEqual(train.images[i * 784 + y * 28 + x], Float(rawImages[16 + i * 784 + y * 28 + x]) / 255)
            XCTAssertEqual(train.label(i), Int(rawLabels[8 + i]))
        }
    }

    /// Normalising the training split with the documented constants gives mean ~0 and std ~1
    /// (naive reference in `Double`), and `Normalization.computed` equals the naive statistics.
    func testFashionMNISTNormalisation() throws {
        let (train, _, _) = try fashionMNIST()
        var sum = 0.0, sumSq = 0.0
        for v in train.images { sum += Double(v); sumSq += Double(v) * Double(v) }
        let n = Double(train.images.count)
        let mean = sum / n
        let std = (sumSq / n - mean * mean).squareRoot()
        let computed = Normalization.computed(from: train)
        XCTAssertEqual(Double(computed.mean[0]), mean, accuracy: 1e-6)
        XCTAssertEqual(Double(computed.std[0]), std, accuracy: 1e-6)
        // The constants are the 4-decimal rounding of these statistics.
        XCTAssertEqual(Double(Normalization.fashionMNIST.mean[0]), mean, accuracy: 5e-5)
        XCTAssertEqual(Double(Normalization.fashionMNIST.std[0]), std, accuracy: 5e-5)

        let normalised = train.normalized(.fashionMNIST)
        var s = 0.0, ss = 0.0
        for v in normalised.images { s += Double(v); ss += Double(v) * Double(v) }
        let m = s / n
        XCTAssertEqual(m, 0, accuracy: 1e-3)
        XCTAssertEqual((ss / n - m * m).squareRoot(), 1, accuracy: 1e-3)
        XCTAssertEqual(normalised.normalization, .fashionMNIST)
        // Element-wise formula on one pixel.
        XCTAssertEqual(normalised.images[12345], (train.images[12345] - 0.2860) / 0.3530)
    }

    // MARK: Corrupt and missing files

    func testTruncatedCIFARRecord() throws {
        let tmp = try makeTemporaryDirectory()
        let file = path(tmp, "data_batch_1.bin")
        let bytes = cifar10Record(label: 1) { UInt8($0 % 256) } + cifar10Record(label: 2) { _ in 7 } + [UInt8](repeating: 0, count: 100)
        try write(bytes, to: file)
        assertThrows(.truncatedRecord(file: file, fileSize: 2 * 3073 + 100, recordSize: 3073),
                     mentions: [file, "truncated", "3073"]) {
            try CIFARReader.readCIFAR10(files: [file])
        }
    }

    func testCIFAR10LabelOutOfRange() throws {
        let tmp = try makeTemporaryDirectory()
        let file = path(tmp, "test_batch.bin")
        try write(cifar10Record(label: 3) { _ in 0 } + cifar10Record(label: 11) { _ in 0 }, to: file)
        assertThrows(.labelOutOfRange(file: file, record: 1, label: 11, classCount: 10),
                     mentions: [file, "label 11", "record 1"]) {
            try CIFARReader.readCIFAR10(files: [file])
        }
    }

    func testEmptyFile() throws {
        let tmp = try makeTemporaryDirectory()
        let file = path(tmp, "test_batch.bin")
        try write([], to: file)
        assertThrows(.emptyFile(file: file), mentions: [file]) { try CIFARReader.readCIFAR10(files: [file]) }
    }

    func testMissingCIFARFilesListsExpectedNamesAndSource() throws {
        let tmp = try makeTemporaryDirectory()
        let all = CIFARReader.cifar10TrainFiles + CIFARReader.cifar10TestFiles
        assertThrows(.missingFiles(directory: tmp, missing: all, expected: all, kind: .cifar10),
                     mentions: [tmp, "data_batch_1.bin", "test_batch.bin", "https://www.cs.toronto.edu/~kriz/cifar.html", "binary"]) {
            try DatasetLoader.load(kind: .cifar10, path: tmp)
        }
        // With five of the six files present only the sixth is reported.
        for name in CIFARReader.cifar10TrainFiles {
            try write(cifar10Record(label: 0) { _ in 0 }, to: path(tmp, name))
        }
        assertThrows(.missingFiles(directory: tmp, missing: ["test_batch.bin"], expected: all, kind: .cifar10),
                     mentions: [tmp, "test_batch.bin"]) {
            try DatasetLoader.load(kind: .cifar10, path: tmp)
        }
        // An explicitly listed file that does not exist.
        let ghost = path(tmp, "data_batch_1_first4000.bin")
        assertThrows(.missingFiles(directory: tmp, missing: ["data_batch_1_first4000.bin"],
                                   expected: ["data_batch_1_first4000.bin"], kind: .cifar10),
                     mentions: [tmp, "data_batch_1_first4000.bin"]) {
            try CIFARReader.readCIFAR10(files: [ghost])
        }
    }

    func testMissingFashionMNISTFilesNameThePackage() throws {
        let tmp = try makeTemporaryDirectory()
        let expected = DatasetLoader.idxFiles.map { $0 + "[.gz]" }
        assertThrows(.missingFiles(directory: tmp, missing: expected, expected: expected, kind: .fashionMNIST),
                     mentions: [tmp, "train-images-idx3-ubyte", "apt-get install dataset-fashion-mnist",
                                "zalandoresearch/fashion-mnist"]) {
            try DatasetLoader.load(kind: .fashionMNIST, path: tmp)
        }
        assertThrows(.noDataPath(kind: .cifar100), mentions: ["cifar.html"]) {
            try DatasetLoader.load(kind: .cifar100)
        }
    }

    func testBadIDXMagic() throws {
        let tmp = try makeTemporaryDirectory()
        let images = path(tmp, "images"), labels = path(tmp, "labels")
        // A label file passed as the image file.
        try write(idx(magic: 0x801, dims: [2], data: [1, 2]), to: images)
        try write(idx(magic: 0x801, dims: [2], data: [1, 2]), to: labels)
        assertThrows(.badMagic(file: images, found: 0x801, expected: 0x803),
                     mentions: [images, "0x00000801", "0x00000803", "label file"]) {
            try IDXReader.readDataset(images: images, labels: labels, expectedShape: nil)
        }
    }

    func testIDXImageLabelCountMismatch() throws {
        let tmp = try makeTemporaryDirectory()
        let images = path(tmp, "images"), labels = path(tmp, "labels")
        try write(idx(magic: 0x803, dims: [3, 2, 2], data: [UInt8](repeating: 9, count: 12)), to: images)
        try write(idx(magic: 0x801, dims: [2], data: [1, 2]), to: labels)
        assertThrows(.countMismatch(imagesFile: images, imageCount: 3, labelsFile: labels, labelCount: 2),
                     mentions: [images, labels, "3 images", "2 labels"]) {
            try IDXReader.readDataset(images: images, labels: labels, expectedShape: nil)
        }
    }

    func testIDXTruncatedTrailingAndWrongShape() throws {
        let tmp = try makeTemporaryDirectory()
        let images = path(tmp, "images"), labels = path(tmp, "labels")
        try write(idx(magic: 0x801, dims: [3], data: [1, 2, 3]), to: labels)
        // Header promises 10 images of 2x2 but holds 3.
        try write(idx(magic: 0x803, dims: [10, 2, 2], data: [UInt8](repeating: 0, count: 12)), to: images)
        assertThrows(.truncated(file: images, expectedBytes: 16 + 40, actualBytes: 16 + 12), mentions: [images]) {
            try IDXReader.readDataset(images: images, labels: labels, expectedShape: nil)
        }
        try write(idx(magic: 0x803, dims: [3, 2, 2], data: [UInt8](repeating: 0, count: 13)), to: images)
        assertThrows(.trailingBytes(file: images, expectedBytes: 16 + 12, actualBytes: 16 + 13), mentions: [images]) {
            try IDXReader.readDataset(images: images, labels: labels, expectedShape: nil)
        }
        try write(idx(magic: 0x803, dims: [3, 2, 2], data: [UInt8](repeating: 0, count: 12)), to: images)
        assertThrows(.shapeMismatch(file: images, found: [2, 2], expected: [28, 28]), mentions: [images]) {
            try IDXReader.readDataset(images: images, labels: labels)
        }
        try write(idx(magic: 0x801, dims: [3], data: [1, 10, 3]), to: labels)
        assertThrows(.labelOutOfRange(file: labels, record: 1, label: 10, classCount: 10), mentions: [labels]) {
            try IDXReader.readDataset(images: images, labels: labels, expectedShape: nil)
        }
    }

    /// A small IDX pair, gzipped by `gzip` and then cut short, is reported as corrupt gzip data;
    /// the intact `.gz` reads the same as the plain file.
    func testGzipIDXSmallAndTruncated() throws {
        let tmp = try makeTemporaryDirectory()
        let images = path(tmp, "images"), labels = path(tmp, "labels")
        let pixels = (0..<(5 * 28 * 28)).map { UInt8(($0 * 37) % 256) }
        try write(idx(magic: 0x803, dims: [5, 28, 28], data: pixels), to: images)
        try write(idx(magic: 0x801, dims: [5], data: [0, 9, 4, 4, 1]), to: labels)
        let plain = try IDXReader.readDataset(images: images, labels: labels)
        XCTAssertEqual(plain.labels, [0, 9, 4, 4, 1])
        XCTAssertEqual(plain.images, pixels.map { Float($0) / 255 })

        try run("gzip", ["-k", images])
        let gz = try IDXReader.readDataset(images: images + ".gz", labels: labels)
        XCTAssertEqual(gz.images, plain.images)
        // The content decides, not the name: a gzip stream without .gz suffix.
        let renamed = path(tmp, "renamed-images")
        try FileManager.default.copyItem(atPath: images + ".gz", toPath: renamed)
        XCTAssertEqual(try IDXReader.readDataset(images: renamed, labels: labels).images, plain.images)

        let whole = try readRaw(images + ".gz")
        let cut = path(tmp, "cut.gz")
        try write(Array(whole.prefix(whole.count / 2)), to: cut)
        do {
            _ = try IDXReader.readDataset(images: cut, labels: labels)
            XCTFail("truncated gzip accepted")
        } catch let DatasetError.decompressionFailed(file, _) {
            XCTAssertEqual(file, cut)
        }
    }

    // MARK: CIFAR directory layout and CIFAR-100

    /// Six small batch files inside `cifar-10-batches-bin/`: the loader finds the folder and
    /// concatenates data_batch_1...5 in order.
    func testCIFAR10DirectoryLoaderConcatenatesBatchesInOrder() throws {
        let tmp = try makeTemporaryDirectory()
        let inner = path(tmp, "cifar-10-batches-bin")
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: true)
        for (b, name) in (CIFARReader.cifar10TrainFiles + CIFARReader.cifar10TestFiles).enumerated() {
            var bytes: [UInt8] = []
            for r in 0..<2 {
                let example = b * 2 + r
                bytes += cifar10Record(label: UInt8(example % 10)) { p in UInt8((example + p) % 256) }
            }
            try write(bytes, to: path(inner, name))
        }
        let (train, test) = try DatasetLoader.load(kind: .cifar10, path: tmp)
        XCTAssertEqual(train.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(test.labels, [0, 1])  // (5 * 2 + r) % 10
        XCTAssertEqual(train.images[7 * 3072 + 100], Float((7 + 100) % 256) / 255)
        XCTAssertEqual(test.images[1 * 3072 + 3071], Float((11 + 3071) % 256) / 255)
        XCTAssertEqual(train.classNames, DatasetKind.cifar10.classNames)
    }

    func testCIFAR100FineAndCoarseLabels() throws {
        let tmp = try makeTemporaryDirectory()
        // Records (coarse, fine): (3, 42), (19, 99), (0, 7); pixels p -> (r + p) % 256.
        let pairs: [(UInt8, UInt8)] = [(3, 42), (19, 99), (0, 7)]
        var bytes: [UInt8] = []
        for (r, (coarse, fine)) in pairs.enumerated() {
            bytes += [coarse, fine] + (0..<3072).map { UInt8((r + $0) % 256) }
        }
        try write(bytes, to: path(tmp, "train.bin"))
        try write(Array(bytes.prefix(3074)), to: path(tmp, "test.bin"))
        let (train, test) = try DatasetLoader.load(kind: .cifar100, path: tmp)
        XCTAssertEqual(train.labels, [42, 99, 7])
        XCTAssertEqual(train.classCount, 100)
        XCTAssertEqual(test.labels, [42])
        XCTAssertEqual(train.images[2 * 3072 + 5], Float(7) / 255)
        let coarse = try DatasetLoader.load(kind: .cifar100, path: tmp, cifar100Labels: .coarse).train
        XCTAssertEqual(coarse.labels, [3, 19, 0])
        XCTAssertEqual(coarse.classCount, 20)

        let bad = path(tmp, "bad.bin")
        try write([5, 100] + [UInt8](repeating: 0, count: 3072), to: bad)
        assertThrows(.labelOutOfRange(file: bad, record: 0, label: 100, classCount: 100), mentions: [bad]) {
            try CIFARReader.readCIFAR100(files: [bad])
        }
        // A CIFAR-10 file read as CIFAR-100 has the wrong record size.
        let ten = path(tmp, "ten.bin")
        try write(cifar10Record(label: 1) { _ in 0 }, to: ten)
        assertThrows(.truncatedRecord(file: ten, fileSize: 3073, recordSize: 3074), mentions: [ten]) {
            try CIFARReader.readCIFAR100(files: [ten])
        }
    }

    // MARK: Augmentation

    /// 2 channels x 3 rows x 4 columns, channel 0 = 1...12, channel 1 = 101...112, padding 2,
    /// pad values (-1, -2); expected outputs shifted by hand.
    func testCropFlipEqualsHandShiftedImage() {
        let image: [Float] = (1...12).map(Float.init) + (101...112).map(Float.init)
        let aug = CIFARAugmentation(padding: 2, padValues: [-1, -2])
        // Centre crop, no flip: identity.
        XCTAssertEqual(aug.cropFlip(image, channels: 2, height: 3, width: 4, offsetY: 2, offsetX: 2, flip: false), image)
        // Crop one row down, one column left: out[y][x] = src[y + 1][x - 1].
        XCTAssertEqual(aug.cropFlip(image, channels: 2, height: 3, width: 4, offsetY: 3, offsetX: 1, flip: false), [
            -1, 5, 6, 7,
            -1, 9, 10, 11,
            -1, -1, -1, -1,
            -2, 105, 106, 107,
            -2, 109, 110, 111,
            -2, -2, -2, -2,
        ])
        // Top-left corner of the padded image moved to (0, 4), then mirrored:
        // out[y][x] = src[y - 2][(3 - x) + 2].
        XCTAssertEqual(aug.cropFlip(image, channels: 2, height: 3, width: 4, offsetY: 0, offsetX: 4, flip: true), [
            -1, -1, -1, -1,
            -1, -1, -1, -1,
            -1, -1, 4, 3,
            -2, -2, -2, -2,
            -2, -2, -2, -2,
            -2, -2, 104, 103,
        ])
        // Flip alone reverses each row.
        XCTAssertEqual(aug.cropFlip(image, channels: 2, height: 3, width: 4, offsetY: 2, offsetX: 2, flip: true), [
            4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9,
            104, 103, 102, 101, 108, 107, 106, 105, 112, 111, 110, 109,
        ])
    }

    /// Oracle: torchvision's steps done literally: build the zero-padded `(H + 2p) x (W + 2p)` image,
    /// cut the `H x W` window at `(i, j)`, then reverse each row if flipped.
    private func naiveCropFlip(_ image: [Float], c: Int, h: Int, w: Int, p: Int, pad: [Float],
                               i: Int, j: Int, flip: Bool) -> [Float] {
        let (ph, pw) = (h + 2 * p, w + 2 * p)
        var padded = [Float](repeating: 0, count: c * ph * pw)
        for ch in 0..<c {
            for k in 0..<(ph * pw) { padded[ch * ph * pw + k] = pad[ch] }
            for y in 0..<h { for x in 0..<w { padded[(ch * ph + y + p) * pw + x + p] = image[(ch * h + y) * w + x] } }
        }
        var out: [Float] = []
        for ch in 0..<c {
            for y in 0..<h {
                let row = (0..<w).map { x in padded[(ch * ph + y + i) * pw + x + j] }
                out += flip ? row.reversed() : row
            }
        }
        return out
    }

    /// Every crop offset and flip, on shapes wider and narrower than the padding, against the oracle.
    func testCropFlipMatchesNaivePadCropFlip() {
        var rng = RandomStream(seed: 21, role: .other)
        for (c, h, w, p) in [(3, 7, 9, 4), (1, 3, 2, 4), (2, 5, 5, 1), (1, 4, 6, 0)] {
            let image = (0..<(c * h * w)).map { _ in Float(rng.uniformInt(below: 1000)) }
            let pad = (0..<c).map { -Float($0) - 0.5 }
            let aug = CIFARAugmentation(padding: p, padValues: pad)
            for i in 0...(2 * p) {
                for j in 0...(2 * p) {
                    for flip in [false, true] {
                        XCTAssertEqual(aug.cropFlip(image, channels: c, height: h, width: w, offsetY: i, offsetX: j, flip: flip),
                                       naiveCropFlip(image, c: c, h: h, w: w, p: p, pad: pad, i: i, j: j, flip: flip),
                                       "shape \((c, h, w)) padding \(p) offset \((i, j)) flip \(flip)")
                    }
                }
            }
        }
    }

    /// torchvision pads the raw image with 0 before `Normalize`, so on normalised CIFAR-10 the pad is
    /// `-mean[c] / std[c]`.
    func testPadValueIsNormalisedZeroPixel() {
        var d = Dataset(name: "one", images: [Float](repeating: 0.5, count: 3 * 32 * 32), labels: [0],
                        channels: 3, height: 32, width: 32, classCount: 10)
        Normalization.cifar10.apply(to: &d)
        let aug = CIFARAugmentation(for: d)
        let out = aug.cropFlip(d.images, channels: 3, height: 32, width: 32, offsetY: 0, offsetX: 0, flip: false)
        for c in 0..<3 {
            let expected = (Float(0) - [0.4914, 0.4822, 0.4465][c]) / [0.2470, 0.2435, 0.2616][c]
            XCTAssertEqual(out[c * 1024], expected, "channel \(c) pad")                    // (0, 0) is padding
            XCTAssertEqual(out[c * 1024 + 4 * 32 + 4], (0.5 - Normalization.cifar10.mean[c]) / Normalization.cifar10.std[c])
        }
    }

    /// 2,000 augmented copies of one 32x32 image whose pixel (y, x) holds 1 + 32 y + x: the crop and
    /// flip of each copy are recovered from the output, the output equals `cropFlip` with them, the
    /// offsets are uniform on 0...8 and flips have frequency 1/2; same stream address, same batch.
    func testBatchAugmentationDrawsAndDeterminism() {
        let image = (0..<1024).map { Float(1 + $0) }
        let d = Dataset(name: "ramp", images: image, labels: [3], channels: 1, height: 32, width: 32, classCount: 10)
        let aug = CIFARAugmentation(for: d)
        XCTAssertEqual(aug.padValues, [0])
        let n = 2000
        let indices = [Int](repeating: 0, count: n)[...]
        var batch = Batch(capacity: n, for: d)
        var stream = CIFARAugmentation.stream(seed: 5, child: 1, epoch: 2, step: 3)
        aug.gatherAugmented(from: d, indices: indices, into: &batch, stream: &stream)
        XCTAssertEqual(batch.count, n)
        XCTAssertEqual(batch.labels, [Int32](repeating: 3, count: n))

        var countY = [Int](repeating: 0, count: 9), countX = [Int](repeating: 0, count: 9), flips = 0
        for k in 0..<n {
            let out = Array(batch.images[k * 1024 ..< (k + 1) * 1024])
            let centre = Int(out[16 * 32 + 16]) - 1   // always inside the image for |shift| <= 4
            let flip = out[16 * 32 + 17] < out[16 * 32 + 16]
            let (sy, sx) = (centre / 32, centre % 32)
            let i = sy - 16 + 4
            let j = flip ? sx - 15 + 4 : sx - 16 + 4
            XCTAssertEqual(out, aug.cropFlip(image, channels: 1, height: 32, width: 32, offsetY: i, offsetX: j, flip: flip))
            countY[i] += 1; countX[j] += 1
            if flip { flips += 1 }
        }
        let e = Double(n) / 9
        for counts in [countY, countX] {
            let chi2 = counts.reduce(0.0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
            XCTAssertLessThan(chi2, 42.70, "offsets \(counts)")  // chi2(8) quantile 1 - 1e-6
        }
        XCTAssertEqual(Double(flips) / Double(n), 0.5, accuracy: 5 * 0.5 / Double(n).squareRoot())

        // The same address reproduces the batch; the next step differs; gather + apply agrees.
        var again = Batch(capacity: n, for: d)
        var s2 = CIFARAugmentation.stream(seed: 5, child: 1, epoch: 2, step: 3)
        aug.gatherAugmented(from: d, indices: indices, into: &again, stream: &s2)
        XCTAssertTrue(again.images == batch.images)
        var plain = Batch(capacity: n, for: d)
        d.gather(indices, into: &plain)
        var viaApply = Batch(capacity: n, for: d)
        var s3 = CIFARAugmentation.stream(seed: 5, child: 1, epoch: 2, step: 3)
        aug.apply(to: plain, into: &viaApply, stream: &s3)
        XCTAssertTrue(viaApply.images == batch.images)
        var s4 = CIFARAugmentation.stream(seed: 5, child: 1, epoch: 2, step: 4)
        aug.gatherAugmented(from: d, indices: indices, into: &again, stream: &s4)
        XCTAssertFalse(again.images == batch.images)
    }

    // MARK: Subsets

    /// Labels 0..3 with class sizes 5, 6, 7, 8 (26 examples).
    private func unevenDataset() -> Dataset {
        var labels: [Int32] = []
        for (c, size) in [5, 6, 7, 8].enumerated() { labels += [Int32](repeating: Int32(c), count: size) }
        var rng = RandomStream(seed: 0, role: .other)
        rng.shuffle(&labels)
        return Dataset(name: "uneven", images: (0..<labels.count).map(Float.init), labels: labels,
                       channels: 1, height: 1, width: 1, classCount: 4)
    }

    func testClassBalancedSubset() throws {
        let d = unevenDataset()
        let a = try d.classBalancedSubset(count: 20, seed: 1)
        XCTAssertEqual(a.classCounts(), [5, 5, 5, 5])
        // Pixel i holds i, so the images name the chosen examples; they are distinct and consistent.
        let chosen = a.images.map { Int($0) }
        XCTAssertEqual(Set(chosen).count, 20)
        XCTAssertEqual(chosen, chosen.sorted())
        XCTAssertEqual(chosen.map { d.labels[$0] }, a.labels)
        XCTAssertEqual(try d.classBalancedSubset(count: 20, seed: 1).images, a.images)
        // Class 0 has exactly 5 examples, so only the other classes can vary with the seed.
        let b = try d.classBalancedSubset(count: 20, seed: 2)
        XCTAssertNotEqual(b.images, a.images)
        // Probe sets use their own stream: same seed, another choice than the training subset.
        let probe = try d.probeIndices(count: 16, seed: 1)
        XCTAssertEqual(try d.probeIndices(count: 16, seed: 1), probe)
        XCTAssertEqual(d.subset(indices: probe).classCounts(), [4, 4, 4, 4])
        XCTAssertNotEqual(probe, try d.classBalancedIndices(count: 16, key: RandomKey(seed: 1, role: .subset)))

        assertThrows(.tooFewExamples(dataset: "uneven", classIndex: 0, available: 5, requested: 6),
                     mentions: ["class 0", "5 examples"]) { try d.classBalancedSubset(count: 24, seed: 1) }
        assertThrows(.invalidSubset(dataset: "uneven", reason: "a class-balanced subset of 10 examples was "
                         + "requested, which is not a positive multiple of the 4 classes. Fix: use a multiple of 4."),
                     mentions: ["multiple of 4"]) { try d.classBalancedSubset(count: 10, seed: 1) }
    }

    func testFirstNSubsetAndExplicitIndices() throws {
        let d = unevenDataset()
        let first = try d.prefix(count: 7)
        XCTAssertEqual(first.images, (0..<7).map(Float.init))
        XCTAssertEqual(first.labels, Array(d.labels.prefix(7)))
        XCTAssertEqual(try d.trainingSubset(.first(7), seed: 0).labels, first.labels)
        XCTAssertThrowsError(try d.prefix(count: 27))
        let s = d.subset(indices: [25, 0, 25])
        XCTAssertEqual(s.images, [25, 0, 25])
        XCTAssertEqual(s.labels, [d.labels[25], d.labels[0], d.labels[25]])
    }

    func testProbeSetOnFashionMNISTIsBalanced() throws {
        let (train, _, _) = try fashionMNIST()
        let probe = try train.probeSubset(count: 500, seed: 7)
        XCTAssertEqual(probe.classCounts(), [Int](repeating: 50, count: 10))
        XCTAssertNotEqual(try train.probeIndices(count: 500, seed: 8), try train.probeIndices(count: 500, seed: 7))
    }

    // MARK: Batching

    func testEpochBatchesCoverEveryIndexOnce() {
        for dropLast in [false, true] {
            let it = BatchIterator(exampleCount: 103, batchSize: 10, dropLast: dropLast, seed: 4, replicate: 1, child: 2, epoch: 3)
            let batches = Array(it)
            XCTAssertEqual(batches.count, dropLast ? 10 : 11)
            XCTAssertEqual(it.batchCount, batches.count)
            XCTAssertEqual(batches.map(\.count), [Int](repeating: 10, count: 10) + (dropLast ? [] : [3]))
            let all = batches.flatMap { $0 }
            if dropLast {
                XCTAssertEqual(Set(all).count, 100)
                XCTAssertEqual(all, Array(it.order.prefix(100)))
            } else {
                XCTAssertEqual(all.sorted(), Array(0..<103))
            }
        }
        // The order is the .shuffle stream's permutation; epochs and children differ.
        let a = BatchIterator(exampleCount: 103, batchSize: 10, seed: 4, replicate: 1, child: 2, epoch: 3)
        var s = RandomStream(seed: 4, replicate: 1, role: .shuffle, child: 2, epoch: 3)
        XCTAssertEqual(a.order, s.permutation(103))
        XCTAssertNotEqual(BatchIterator(exampleCount: 103, batchSize: 10, seed: 4, replicate: 1, child: 2, epoch: 4).order, a.order)
        XCTAssertNotEqual(BatchIterator(exampleCount: 103, batchSize: 10, seed: 4, replicate: 1, child: 3, epoch: 3).order, a.order)
        XCTAssertEqual(BatchIterator.sequential(exampleCount: 5, batchSize: 2).map { Array($0) }, [[0, 1], [2, 3], [4]])
    }

    func testGatherCopiesExamplesIntoPreallocatedBatch() {
        let spec = SyntheticSpec(trainCount: 50, testCount: 0, channels: 2, height: 3, width: 3, classCount: 5)
        let d = SyntheticData.make(spec).train
        var batch = Batch(capacity: 8, for: d)
        let it = BatchIterator(exampleCount: d.count, batchSize: 8, seed: 1, epoch: 0)
        for indices in it {
            d.gather(indices, into: &batch)
            XCTAssertEqual(batch.count, indices.count)
            for (k, i) in indices.enumerated() {
                XCTAssertEqual(Array(batch.images[k * 18 ..< (k + 1) * 18]), Array(d.image(i)))
                XCTAssertEqual(batch.labels[k], d.labels[i])
            }
        }
    }

    // MARK: Synthetic data and kinds

    /// Deterministic in the seed, labels i mod C, pixels in [0, 1], and learnable: nearest class mean
    /// (means from the training split) classifies the test split far above chance.
    func testSyntheticDataIsDeterministicAndClassDependent() {
        let spec = SyntheticSpec(trainCount: 500, testCount: 200, channels: 3, height: 8, width: 8, classCount: 10, noise: 0.1, seed: 3)
        let (train, test) = SyntheticData.make(spec)
        XCTAssertEqual(train.images, SyntheticData.make(spec).train.images)
        var other = spec; other.seed = 4
        XCTAssertNotEqual(SyntheticData.make(other).train.images, train.images)
        var moreTrain = spec; moreTrain.trainCount = 100
        XCTAssertEqual(SyntheticData.make(moreTrain).test.images, test.images)
        XCTAssertEqual(train.labels, (0..<500).map { Int32($0 % 10) })
        XCTAssertTrue(train.images.allSatisfy { $0 >= 0 && $0 <= 1 })

        let e = train.exampleSize
        var means = [Double](repeating: 0, count: 10 * e)
        for i in 0..<train.count { for p in 0..<e { means[train.label(i) * e + p] += Double(train.images[i * e + p]) / 50 } }
        var correct = 0
        for i in 0..<test.count {
            let dist = (0..<10).map { c in (0..<e).reduce(0.0) { acc, p in
                let diff = Double(test.images[i * e + p]) - means[c * e + p]
                return acc + diff * diff } }
            if dist.firstIndex(of: dist.min()!) == test.label(i) { correct += 1 }
        }
        XCTAssertGreaterThan(Double(correct) / Double(test.count), 0.9)
        let loaded = try? DatasetLoader.load(kind: .synthetic, synthetic: spec)
        XCTAssertEqual(loaded?.train.images, train.images)
    }

    func testDatasetKindNamesAndConstants() {
        XCTAssertEqual(DatasetKind(name: "Fashion_MNIST"), .fashionMNIST)
        XCTAssertEqual(DatasetKind(name: "CIFAR-10"), .cifar10)
        XCTAssertEqual(DatasetKind(name: "cifar100"), .cifar100)
        XCTAssertNil(DatasetKind(name: "imagenet"))
        XCTAssertEqual(DatasetKind.fashionMNIST.defaultPath, "/usr/share/datasets/fashion-mnist")
        XCTAssertEqual(DatasetKind.cifar100.standardNormalization?.mean, [0.5071, 0.4865, 0.4409])
        XCTAssertEqual(DatasetKind.cifar100.standardNormalization?.std, [0.2673, 0.2564, 0.2762])
        XCTAssertEqual(DatasetKind.mnist.standardNormalization, Normalization(mean: [0.1307], std: [0.3081]))
        XCTAssertEqual(Normalization(mean: [0.5, 0.25], std: [0.25, 0.5]).zeroPixelValues, [-2, -0.5])
    }
}
