import Foundation

/// Which CIFAR-100 label to use.
public enum CIFAR100LabelKind: String, Codable, Sendable {
    /// 100 fine classes (the usual benchmark).
    case fine
    /// 20 coarse superclasses.
    case coarse
}

/// Readers for the official CIFAR *binary* format (https://www.cs.toronto.edu/~kriz/cifar.html).
///
/// A file is a sequence of records with no header. CIFAR-10 record (3,073 bytes): 1 label byte
/// (0-9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a row-major 32x32 image.
/// CIFAR-100 record (3,074 bytes): coarse label byte (0-19), fine label byte (0-99), then the same
/// 3,072 pixel bytes. The planes are already `[C, H, W]`, so example `i` of the output is the record's
/// pixel bytes divided by 255, in file order.
public enum CIFARReader {
    public static let pixelBytes = 3 * 32 * 32
    public static let cifar10RecordSize = 1 + pixelBytes
    public static let cifar100RecordSize = 2 + pixelBytes

    public static let cifar10TrainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let cifar10TestFiles = ["test_batch.bin"]
    public static let cifar100TrainFiles = ["train.bin"]
    public static let cifar100TestFiles = ["test.bin"]

    /// Reads CIFAR-10 records from `files`, concatenated in the order given. Any number of records
    /// per file is accepted (e.g. the 4,000-record sample `data_batch_1_first4000.bin`), but the size
    /// must be a whole number of records. Files may be gzipped.
    public static func readCIFAR10(files: [String], name: String = "cifar10",
                                   classNames: [String]? = DatasetKind.cifar10.classNames) throws -> Dataset {
        try readRecords(files: files, labelBytes: 1, labelOffset: 0, classCount: 10, kind: .cifar10,
                        name: name, classNames: classNames)
    }

    /// Reads CIFAR-100 records from `files` with the fine (default) or coarse labels.
    public static func readCIFAR100(files: [String], labels: CIFAR100LabelKind = .fine,
                                    name: String = "cifar100", classNames: [String]? = nil) throws -> Dataset {
        try readRecords(files: files, labelBytes: 2, labelOffset: labels == .coarse ? 0 : 1,
                        classCount: labels == .coarse ? 20 : 100, kind: .cifar100, name: name,
                        classNames: classNames)
    }

    /// The directory that holds `required` files: `directory` itself or the archive's folder inside it
    /// (`cifar-10-batches-bin`, `cifar-100-binary`). Throws `missingFiles` listing what is absent.
    static func locate(_ required: [String], in directory: String, subfolder: String,
                       kind: DatasetKind) throws -> String {
        let candidates = [directory, (directory as NSString).appendingPathComponent(subfolder)]
        for dir in candidates where required.allSatisfy({ FileBytes.isRegularFile((dir as NSString).appendingPathComponent($0)) }) {
            return dir
        }
        // Report against whichever candidate has more of the files.
        let best = candidates.max { a, b in
            required.filter { FileBytes.isRegularFile((a as NSString).appendingPathComponent($0)) }.count
                < required.filter { FileBytes.isRegularFile((b as NSString).appendingPathComponent($0)) }.count
        }!
        let missing = required.filter { !FileBytes.isRegularFile((best as NSString).appendingPathComponent($0)) }
        if let dir = missing.map({ (best as NSString).appendingPathComponent($0) }).first(where: FileBytes.isDirectory) {
            throw DatasetError.isADirectory(file: dir, kind: kind)
        }
        throw DatasetError.missingFiles(directory: best, missing: missing, expected: required, kind: kind)
    }

    /// Class names from a text file with one name per line (`batches.meta.txt`,
    /// `fine_label_names.txt`), or `nil` if absent or of the wrong length.
    public static func classNames(file: String, count: Int) -> [String]? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        return names.count == count ? names : nil
    }

    private static func readRecords(files: [String], labelBytes: Int, labelOffset: Int, classCount: Int,
                                    kind: DatasetKind, name: String, classNames: [String]?) throws -> Dataset {
        precondition(!files.isEmpty, "CIFARReader: no files given")
        let recordSize = labelBytes + pixelBytes
        var contents: [[UInt8]] = []
        var total = 0
        for file in files {
            let bytes = try FileBytes.read(file, kind: kind)
            guard bytes.count % recordSize == 0 else {
                throw DatasetError.truncatedRecord(file: file, fileSize: bytes.count, recordSize: recordSize)
            }
            contents.append(bytes)
            total += bytes.count / recordSize
        }

        var labels = [Int32](repeating: 0, count: total)
        var example = 0
        for (file, bytes) in zip(files, contents) {
            let records = bytes.count / recordSize
            // Labels first, so a bad file fails before the expensive conversion.
            for r in 0..<records {
                let label = Int(bytes[r * recordSize + labelOffset])
                guard label < classCount else {
                    throw DatasetError.labelOutOfRange(file: file, record: r, label: label, classCount: classCount)
                }
                labels[example + r] = Int32(label)
            }
            example += records
        }
        // Every pixel is written below, so the buffer need not be zeroed first.
        let images = [Float](unsafeUninitializedCapacity: total * pixelBytes) { dst, initialized in
            var first = 0
            for bytes in contents {
                let records = bytes.count / recordSize
                bytes.withUnsafeBufferPointer { src in
                    for r in 0..<records {
                        convertBytesToUnit(src.baseAddress! + r * recordSize + labelBytes,
                                           dst.baseAddress! + (first + r) * pixelBytes, count: pixelBytes)
                    }
                }
                first += records
            }
            initialized = total * pixelBytes
        }
        return Dataset(name: name, images: images, labels: labels, channels: 3, height: 32, width: 32,
                       classCount: classCount, classNames: classNames)
    }
}

/// `dst[i] = Float(src[i]) / 255`, the exact quotient torchvision's `ToTensor` computes (a plain loop
/// the compiler vectorises).
@inline(__always)
func convertBytesToUnit(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] = Float(src[i]) / 255 }
}
