import Foundation

/// NumPy `.npy` files (format 1.0): magic `\x93NUMPY`, version 1.0, a little-endian `uint16` header
/// length, an ASCII dict header padded with spaces to a multiple of 64 bytes and ended by `\n`, then
/// the raw data. Written as `'<f8'`, C order.
public enum NPY {
    /// Largest matrix order `writeSquare` accepts: 20,000 rows is a 3.2 GB file; bigger Grams should
    /// be analysed in place, not dumped.
    public static let maxOrder = 20_000

    /// The bytes of a `.npy` file holding `values` (row-major) with `shape`.
    public static func encode(_ values: [Double], shape: [Int]) -> Data {
        precondition(values.count == shape.reduce(1, *), "NPY: \(values.count) values for shape \(shape)")
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        return data
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
