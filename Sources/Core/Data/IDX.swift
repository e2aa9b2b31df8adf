import Foundation

/// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.,
/// http://yann.lecun.com/exdb/mnist/), plain or gzipped (detected by content, not by name).
///
/// Layout, all integers big-endian: a 4-byte magic `0x0000TTDD` (`TT` = 0x08 for unsigned bytes,
/// `DD` = number of dimensions), `DD` 4-byte dimension sizes, then the row-major data. Images:
/// magic `0x00000803`, dims `[N, rows, cols]`; labels: magic `0x00000801`, dims `[N]`.
public enum IDXReader {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// Images of an IDX3 file as raw bytes, shape `[N, rows, cols]`.
    public static func readImageBytes(_ file: String, kind: DatasetKind = .fashionMNIST) throws
        -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        let (dims, bytes, offset) = try readTensor(file, magic: imagesMagic, kind: kind)
        return (dims[0], dims[1], dims[2], Array(bytes[offset...]))
    }

    /// Labels of an IDX1 file, shape `[N]`.
    public static func readLabelBytes(_ file: String, kind: DatasetKind = .fashionMNIST) throws -> [UInt8] {
        let (_, bytes, offset) = try readTensor(file, magic: labelsMagic, kind: kind)
        return Array(bytes[offset...])
    }

    /// A data set from an image file and its label file: pixels scaled to `[0, 1]`, shape
    /// `[N, 1, rows, cols]`. Checks that the counts agree, that labels lie in `0..<classCount` and,
    /// if `expectedShape` is given, that images are `rows x cols`.
    public static func readDataset(images imagesFile: String, labels labelsFile: String,
                                   classCount: Int = 10, kind: DatasetKind = .fashionMNIST,
                                   expectedShape: (rows: Int, cols: Int)? = (28, 28),
                                   name: String? = nil, classNames: [String]? = nil) throws -> Dataset {
        let (dims, imageBytes, offset) = try readTensor(imagesFile, magic: imagesMagic, kind: kind)
        let (n, rows, cols) = (dims[0], dims[1], dims[2])
        guard n > 0 else { throw DatasetError.noExamples(file: imagesFile) }
        if let e = expectedShape, e.rows != rows || e.cols != cols {
            throw DatasetError.shapeMismatch(file: imagesFile, found: [rows, cols], expected: [e.rows, e.cols])
        }
        let (labelDims, labelBytes, labelOffset) = try readTensor(labelsFile, magic: labelsMagic, kind: kind)
        guard labelDims[0] == n else {
            throw DatasetError.countMismatch(imagesFile: imagesFile, imageCount: n,
                                             labelsFile: labelsFile, labelCount: labelDims[0])
        }
        var labels = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let l = Int(labelBytes[labelOffset + i])
            guard l < classCount else {
                throw DatasetError.labelOutOfRange(file: labelsFile, record: i, label: l, classCount: classCount)
            }
            labels[i] = Int32(l)
        }
        let pixelCount = n * rows * cols
        let images = [Float](unsafeUninitializedCapacity: pixelCount) { dst, initialized in
            imageBytes.withUnsafeBufferPointer { src in
                convertBytesToUnit(src.baseAddress! + offset, dst.baseAddress!, count: pixelCount)
            }
            initialized = pixelCount
        }
        return Dataset(name: name ?? kind.rawValue, images: images, labels: labels, channels: 1,
                       height: rows, width: cols, classCount: classCount, classNames: classNames)
    }

    /// Parses and validates the header; returns the dimensions, the whole file and the data offset.
    static func readTensor(_ file: String, magic expected: UInt32, kind: DatasetKind) throws
        -> (dims: [Int], bytes: [UInt8], offset: Int) {
        let bytes = try FileBytes.read(file, kind: kind)
        func be32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
        }
        guard bytes.count >= 4 else {
            throw DatasetError.truncated(file: file, expectedBytes: 4, actualBytes: bytes.count)
        }
        let magic = be32(0)
        guard magic == expected else {
            throw DatasetError.badMagic(file: file, found: magic, expected: expected)
        }
        let rank = Int(expected & 0xff)
        let header = 4 + 4 * rank
        guard bytes.count >= header else {
            throw DatasetError.truncated(file: file, expectedBytes: header, actualBytes: bytes.count)
        }
        let dims = (0..<rank).map { Int(be32(4 + 4 * $0)) }
        // A corrupt header can promise more bytes than an Int counts: report it as truncated.
        let product = dims.reduce((1, false)) { acc, d in
            let r = acc.0.multipliedReportingOverflow(by: d); return (r.partialValue, acc.1 || r.overflow)
        }
        let expectedBytes = product.1 || product.0 > Int.max - header ? Int.max : header + product.0
        if bytes.count < expectedBytes {
            throw DatasetError.truncated(file: file, expectedBytes: expectedBytes, actualBytes: bytes.count)
        }
        if bytes.count > expectedBytes {
            throw DatasetError.trailingBytes(file: file, expectedBytes: expectedBytes, actualBytes: bytes.count)
        }
        return (dims, bytes, header)
    }
}
