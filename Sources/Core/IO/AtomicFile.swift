#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// `Sink.write` shadows the libc function inside the struct.
@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Atomic, durable file writes: the one way the project puts bytes on disk.
///
/// Protocol: write to `<path>.tmp-<pid>-<random hex>` in the destination's directory (same
/// filesystem, so `rename(2)` is atomic), `fsync` it, `rename` it over `path`, then `fsync` the
/// directory so the rename itself survives a crash. Missing parent directories are created.
/// Readers therefore see either the old complete file or the new complete file, never a torn one,
/// even when a job is killed mid-write or two ranks race to write the same path (last rename wins).
/// On any failure the temporary file is removed and the destination is untouched.
public enum AtomicFile {
    /// Receives the file's contents in order; handed to the body of `write(to:_:)`.
    public struct Sink {
        fileprivate let fd: Int32
        fileprivate let tempPath: String
        fileprivate let path: String
        /// Total bytes written so far.
        public private(set) var bytesWritten = 0

        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFileError(path: path, operation: "write to temporary file \(tempPath)", errno: errno)
                }
                done += n
            }
            bytesWritten += done
        }
        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }
        public mutating func write(_ data: Data) throws {
            try data.withUnsafeBytes { try write($0) }
        }
        public mutating func write(_ string: String) throws {
            try write(Array(string.utf8))
        }
    }

    /// Streams the contents through `body` into a temporary file, then atomically replaces `path`.
    /// Streaming lets large writers (checkpoints) avoid concatenating everything in memory first.
    public static func write(to path: String, _ body: (inout Sink) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw AtomicFileError(path: path, operation: "create parent directory \(directory)",
                                  detail: TaskFailure.describe(error))
        }
        let suffix = String(UInt64.random(in: .min ... .max), radix: 16)
        let tempPath = "\(path).tmp-\(getpid())-\(suffix)"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AtomicFileError(path: path, operation: "create temporary file \(tempPath)", errno: errno)
        }
        var committed = false
        defer { if !committed { unlink(tempPath) } }
        do {
            var sink = Sink(fd: fd, tempPath: tempPath, path: path)
            try body(&sink)
            // fsync before rename: otherwise a crash can leave the *new name* pointing at empty data.
            guard fsync(fd) == 0 else {
                throw AtomicFileError(path: path, operation: "fsync temporary file \(tempPath)", errno: errno)
            }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else {
            throw AtomicFileError(path: path, operation: "close temporary file \(tempPath)", errno: errno)
        }
        guard rename(tempPath, path) == 0 else {
            throw AtomicFileError(path: path, operation: "rename \(tempPath) over it", errno: errno)
        }
        committed = true
        // Make the rename durable. Some filesystems refuse fsync on directories; the data is
        // already safe then, so a failure here is not an error.
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(bytes) }
    }
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }
    /// UTF-8 text.
    public static func write(_ string: String, to path: String) throws {
        try write(to: path) { try $0.write(string) }
    }
    public static func write(_ data: Data, to url: URL) throws {
        try write(data, to: url.path)
    }
}

/// A failed atomic write: which file, which step, and why.
public struct AtomicFileError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let detail: String

    init(path: String, operation: String, detail: String) {
        self.path = path; self.operation = operation; self.detail = detail
    }
    init(path: String, operation: String, errno code: Int32) {
        let hint: String
        switch code {
        case EACCES, EPERM: hint = " — check write permission on the directory"
        case ENOSPC, EDQUOT: hint = " — the filesystem is full or over quota; free space or move the run directory"
        case EROFS: hint = " — the filesystem is read-only; choose a writable run directory"
        case ENOENT: hint = " — a path component vanished while writing"
        default: hint = ""
        }
        self.init(path: path, operation: operation, detail: String(cString: strerror(code)) + hint)
    }

    public var description: String {
        "cannot write \(path): \(operation) failed: \(detail)"
    }
}
