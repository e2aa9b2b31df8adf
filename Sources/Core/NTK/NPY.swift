import Foundation

/// NumPy `.npy` files (format 1.0): magic `\x93NUMPY`, version 1.0, a little-endian `uint16` header
/// length, an ASCII dict header padded with spaces to a multiple of 64 bytes and ended by `\n`, then
/// the raw data, little-endian, C order: `'<f8'` (Double), `'<f4'` (Float), `'<i8'` (Int64), `'<i4'` (Int32).
public enum NPY {
    /// Largest matrix order `writeSquare` accepts: 20,000 rows is a 3.2 GB file; bigger Grams should
    /// be analysed in place, not dumped.
    public static let maxOrder = 20_000

    /// The bytes of a `.npy` file holding `values` (row-major) with `shape`.
    public static func encode<T: NPYElement>(_ values: [T], shape: [Int]) -> Data {
        precondition(values.count == shape.reduce(1, *), "NPY: \(values.count) values for shape \(shape)")
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(T.npyDescr)', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        return data
    }

    /// `values` with `shape` written atomically as `.npy`.
    public static func write<T: NPYElement>(_ values: [T], shape: [Int], to path: String) throws {
        try AtomicFile.write(encode(values, shape: shape), to: path)
    }

    /// The contents of a `.npy` file written by `encode` (format 1.0, C order, type `T`); nil when
    /// `data` is not such a file.
    public static func decode<T: NPYElement>(_ data: Data, as type: T.Type) -> (values: [T], shape: [Int])? {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else { return nil }
        let length = Int(bytes[8]) | Int(bytes[9]) << 8
        guard bytes.count >= 10 + length, let header = String(bytes: bytes[10..<(10 + length)], encoding: .ascii),
              header.contains("'descr': '\(T.npyDescr)'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
        else { return nil }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = shape.reduce(1, *), body = bytes[(10 + length)...]
        guard body.count == count * MemoryLayout<T>.size else { return nil }
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            body.withUnsafeBytes { raw in _ = raw.copyBytes(to: UnsafeMutableRawBufferPointer(buffer)) }
            initialized = count
        }
        return (values, shape)
    }

    /// Writes an `n x n` matrix (row-major) atomically; refuses `n > maxOrder`.
    public static func writeSquare(_ values: [Double], order n: Int, to path: String) throws {
        guard n <= maxOrder else {
            throw NTKError("\(path): a \(n) x \(n) matrix is too large for .npy output (limit \(maxOrder) rows, "
                           + "\(n * n * 8 / 1_000_000) MB). Fix: lower --probe or drop --out")
        }
        try AtomicFile.write(encode(values, shape: [n, n]), to: path)
    }
}

/// A number type `.npy` files hold, little-endian (every platform NTKScape runs on).
public protocol NPYElement { static var npyDescr: String { get } }
extension Double: NPYElement { public static var npyDescr: String { "<f8" } }
extension Float: NPYElement { public static var npyDescr: String { "<f4" } }
extension Int64: NPYElement { public static var npyDescr: String { "<i8" } }
extension Int32: NPYElement { public static var npyDescr: String { "<i4" } }
