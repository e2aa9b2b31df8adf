import Foundation

/// Why a data set could not be read. Every message names the file (or directory), the problem and
/// the fix, in the form `FILE: PROBLEM. Fix: FIX`.
public enum DatasetError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// Files a data set needs are absent. `expected` lists every file the reader looks for.
    case missingFiles(directory: String, missing: [String], expected: [String], kind: DatasetKind)
    /// No data directory was given and the kind has no default location.
    case noDataPath(kind: DatasetKind)
    /// The data path names nothing.
    case noSuchDirectory(path: String, kind: DatasetKind)
    /// The data path is a file where a directory holding the data set's files is expected.
    case notADirectory(path: String, kind: DatasetKind)
    /// A data file's path names a directory where a file is expected.
    case isADirectory(file: String, kind: DatasetKind)
    /// An IDX file whose header counts no examples.
    case noExamples(file: String)
    /// The file exists but could not be opened or read (permissions, I/O error, a directory, ...).
    case unreadable(file: String, reason: String)
    /// The gzip stream is corrupt or ends early.
    case decompressionFailed(file: String, reason: String)
    /// The file holds no bytes at all.
    case emptyFile(file: String)
    /// A record-based file (CIFAR) whose size is not a multiple of the record size: its last record
    /// is truncated.
    case truncatedRecord(file: String, fileSize: Int, recordSize: Int)
    /// An IDX file shorter than its header promises.
    case truncated(file: String, expectedBytes: Int, actualBytes: Int)
    /// An IDX file longer than its header promises.
    case trailingBytes(file: String, expectedBytes: Int, actualBytes: Int)
    /// An IDX file whose first four bytes are not the expected magic number.
    case badMagic(file: String, found: UInt32, expected: UInt32)
    /// An IDX image file whose images do not have the expected shape.
    case shapeMismatch(file: String, found: [Int], expected: [Int])
    /// An IDX image file and its label file disagree on the number of examples.
    case countMismatch(imagesFile: String, imageCount: Int, labelsFile: String, labelCount: Int)
    /// A label outside `0..<classCount`; `record` is the 0-based example index within the file.
    case labelOutOfRange(file: String, record: Int, label: Int, classCount: Int)
    /// A class-balanced subset asked for more examples of a class than the data set has.
    case tooFewExamples(dataset: String, classIndex: Int, available: Int, requested: Int)
    /// A subset request that cannot be satisfied (size not a multiple of the class count, ...).
    case invalidSubset(dataset: String, reason: String)

    public var description: String {
        switch self {
        case let .missingFiles(directory, missing, expected, kind):
            return "\(directory): missing \(kind.displayName) file(s) \(missing.joined(separator: ", ")) "
                + "(expected: \(expected.joined(separator: ", ")))."
                + " Fix: \(kind.downloadHint)"
        case let .noDataPath(kind):
            return "(no data directory): \(kind.displayName) has no default location. "
                + "Fix: pass the directory holding the files. \(kind.downloadHint)"
        case let .noSuchDirectory(path, kind):
            return "\(path): no such directory (the \(kind.displayName) data path). Fix: pass the directory holding "
                + "the files (dataset.path, --data-path). \(kind.downloadHint)"
        case let .notADirectory(path, kind):
            return "\(path): is a file, but the \(kind.displayName) data path must be the directory holding the files "
                + "(\(kind.expectedFiles)). Fix: pass its directory, \((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)"
                + (kind == .cifar10 || kind == .cifar100 ? ", or single batch files with --train-file/--test-file (ntkscape train, evaluate)." : ".")
        case let .isADirectory(file, kind):
            return "\(file): is a directory, but a \(kind.displayName) data file is expected here. Fix: pass the file itself "
                + "(one of \(kind.expectedFiles)), or give the directory as the data path (dataset.path, --data-path)."
        case let .noExamples(file):
            return "\(file): the IDX header counts 0 examples, so there is nothing to train or test on. Fix: the file is "
                + "truncated or a placeholder; download it again."
        case let .unreadable(file, reason):
            return "\(file): cannot be read (\(reason)). Fix: check that it is a regular file and "
                + "readable by this user."
        case let .decompressionFailed(file, reason):
            return "\(file): gzip data is corrupt or incomplete (\(reason)). Fix: download the file "
                + "again, or decompress it with `gunzip` and point the reader at the plain file."
        case let .emptyFile(file):
            return "\(file): the file is empty. Fix: download it again (an interrupted download "
                + "leaves empty files)."
        case let .truncatedRecord(file, size, recordSize):
            let full = size / recordSize
            return "\(file): size \(size) bytes is not a multiple of the record size \(recordSize) "
                + "(\(full) complete records, then a truncated record of \(size - full * recordSize) "
                + "bytes). Fix: the file is truncated or not a CIFAR binary file (the Python-pickle "
                + "version has the same names); download the binary version again."
        case let .truncated(file, expected, actual):
            return "\(file): truncated, the IDX header promises \(expected) bytes but there are only "
                + "\(actual). Fix: download the file again."
        case let .trailingBytes(file, expected, actual):
            return "\(file): \(actual) bytes, but the IDX header describes \(expected). Fix: the file "
                + "is corrupt or concatenated; download it again."
        case let .badMagic(file, found, expected):
            var hint = "download the file again"
            if expected == 0x0803 && found == 0x0801 { hint = "this is an IDX label file; pass the images file" }
            if expected == 0x0801 && found == 0x0803 { hint = "this is an IDX image file; pass the labels file" }
            if found >> 16 == 0x3C21 || found >> 16 == 0x3C68 { hint = "this looks like an HTML page saved by a failed download; download the file again" }
            return "\(file): bad IDX magic number 0x\(hex8(found)), expected 0x\(hex8(expected)). "
                + "Fix: \(hint)."
        case let .shapeMismatch(file, found, expected):
            return "\(file): images have shape \(found), expected \(expected). Fix: check that the "
                + "file belongs to the data set that was requested."
        case let .countMismatch(imagesFile, imageCount, labelsFile, labelCount):
            return "\(imagesFile): \(imageCount) images but \(labelsFile) has \(labelCount) labels. "
                + "Fix: the two files must come from the same split (train-* with train-*, t10k-* with "
                + "t10k-*); download both again."
        case let .labelOutOfRange(file, record, label, classCount):
            return "\(file): label \(label) of record \(record) is outside 0..<\(classCount). Fix: the "
                + "file is corrupt or belongs to another data set (CIFAR-100 files read as CIFAR-10?)."
        case let .tooFewExamples(dataset, classIndex, available, requested):
            return "\(dataset): class \(classIndex) has \(available) examples, \(requested) requested. "
                + "Fix: ask for a smaller class-balanced subset."
        case let .invalidSubset(dataset, reason):
            return "\(dataset): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

private func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}
