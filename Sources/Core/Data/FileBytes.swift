import CZlib
import Foundation

/// Whole-file reads for the data readers: plain files with `fread`, gzip files (detected by the
/// magic bytes `1f 8b`, not by the name) with zlib's `gzopen`/`gzread`.
enum FileBytes {
    static func isRegularFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The decompressed contents of `path`. A missing file throws `missingFiles` with the hint of
    /// `kind`.
    static func read(_ path: String, kind: DatasetKind) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            let err = errno
            if err == ENOENT {
                let url = URL(fileURLWithPath: path)
                throw DatasetError.missingFiles(directory: url.deletingLastPathComponent().path,
                                                missing: [url.lastPathComponent],
                                                expected: [url.lastPathComponent], kind: kind)
            }
            throw DatasetError.unreadable(file: path, reason: String(cString: strerror(err)))
        }
        defer { fclose(f) }
        if isDirectory(path) { throw DatasetError.isADirectory(file: path, kind: kind) }
        guard fseeko(f, 0, SEEK_END) == 0 else {
            throw DatasetError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(ftello(f))
        guard size > 0 else { throw DatasetError.emptyFile(file: path) }

        var magic: [UInt8] = [0, 0]
        fseeko(f, 0, SEEK_SET)
        let got = fread(&magic, 1, 2, f)
        if got == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
            // ISIZE, the last 4 bytes (little endian), is the uncompressed size mod 2^32: a capacity hint.
            var trailer: [UInt8] = [0, 0, 0, 0]
            var hint = 0
            if size >= 18, fseeko(f, -4, SEEK_END) == 0, fread(&trailer, 1, 4, f) == 4 {
                hint = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
            }
            return try readGzip(path, sizeHint: hint)
        }

        fseeko(f, 0, SEEK_SET)
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buf, n in
            n = fread(buf.baseAddress, 1, size, f)
            failed = n != size
            if failed { n = 0 }
        }
        if failed { throw DatasetError.unreadable(file: path, reason: "short read") }
        return bytes
    }

    private static func readGzip(_ path: String, sizeHint: Int) throws -> [UInt8] {
        guard let gz = gzopen(path, "rb") else {
            throw DatasetError.unreadable(file: path, reason: "gzopen failed")
        }
        gzbuffer(gz, 1 << 20)  // larger than zlib's 8 KiB default: fewer read(2) calls
        // One byte more than the hint, so a stream of exactly `sizeHint` bytes ends with a 0-byte read
        // instead of forcing a reallocation.
        var out = [UInt8](repeating: 0, count: max(sizeHint, 1 << 16) + 1)
        var filled = 0
        while true {
            if filled == out.count { out.append(contentsOf: repeatElement(0, count: out.count)) }
            let want = min(out.count - filled, 1 << 30)
            let n = out.withUnsafeMutableBytes { gzread(gz, $0.baseAddress! + filled, UInt32(want)) }
            if n < 0 {
                var errnum: Int32 = 0
                let msg = String(cString: gzerror(gz, &errnum))
                gzclose_r(gz)
                throw DatasetError.decompressionFailed(file: path, reason: msg)
            }
            if n == 0 { break }
            filled += Int(n)
        }
        var errnum: Int32 = 0
        let msg = String(cString: gzerror(gz, &errnum))
        // gzclose_r reports Z_BUF_ERROR when the last read stopped inside a gzip member.
        let closeStatus = gzclose_r(gz)
        if errnum != Z_OK && errnum != Z_STREAM_END {
            throw DatasetError.decompressionFailed(file: path, reason: msg)
        }
        if closeStatus != Z_OK {
            throw DatasetError.decompressionFailed(
                file: path, reason: closeStatus == Z_BUF_ERROR ? "unexpected end of file" : "zlib error \(closeStatus)")
        }
        out.removeLast(out.count - filled)
        return out
    }
}
