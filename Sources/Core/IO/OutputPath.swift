import Foundation

/// Checks made before work starts on the paths a command will write, so a long computation does not
/// end in a raw file-system error: every message names the path, the option and the fix.
public enum OutputPath {
    /// A path that cannot be written; `description` is `PATH (OPTION): PROBLEM. Fix: FIX.`
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let path: String, option: String, problem: String, fix: String
        public var description: String { "\(path) (\(option)): \(problem). Fix: \(fix)." }
    }

    /// Refuses unless `file` can be created or replaced: it is not a directory, and its directory
    /// exists (or can be created, with `createDirectory`) and takes a new file (tried by creating
    /// and removing a probe file, which catches read-only file systems and permissions alike).
    public static func checkWritableFile(_ file: String, option: String, createDirectory: Bool = false) throws {
        if isDirectory(file) {
            throw Problem(path: file, option: option, problem: "is a directory, but a file is written here",
                          fix: "give a file name, e.g. \((file as NSString).appendingPathComponent("out"))")
        }
        let dir = (file as NSString).deletingLastPathComponent
        try checkWritableDirectory(dir.isEmpty ? "." : dir, option: option, create: createDirectory)
    }

    /// Refuses unless `directory` is (or, with `create`, can be made) a directory that takes new files.
    public static func checkWritableDirectory(_ directory: String, option: String, create: Bool = false) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw Problem(path: directory, option: option, problem: "is a file, but a directory is needed here",
                              fix: "remove or rename the file, or choose another directory")
            }
        } else {
            // The nearest existing ancestor: a file there means the directory can never exist.
            var ancestor = directory
            while !fm.fileExists(atPath: ancestor) && ancestor != "/" && !ancestor.isEmpty {
                ancestor = (ancestor as NSString).deletingLastPathComponent
            }
            if ancestor.isEmpty { ancestor = "." }
            if !isDirectory(ancestor) {
                throw Problem(path: directory, option: option, problem: "cannot be created: \(ancestor) is a file, not a directory",
                              fix: "remove or rename \(ancestor), or choose another path")
            }
            guard create else {
                throw Problem(path: directory, option: option, problem: "does not exist",
                              fix: "create it (mkdir -p \(directory)) or choose an existing directory")
            }
            // The ancestor must take the new directory.
            try checkWritableDirectory(ancestor, option: option)
            return
        }
        let probe = (directory as NSString).appendingPathComponent(".ntkscape-write-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(probe, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw Problem(path: directory, option: option, problem: "cannot take new files (\(reason))",
                          fix: "make it writable (chmod u+w \(directory), or a file system mounted read-write) or choose another directory")
        }
        close(fd)
        unlink(probe)
    }

    /// Free bytes on the file system holding `path` (or its nearest existing ancestor); nil if unknown.
    public static func freeBytes(at path: String) -> Int? {
        var p = path.isEmpty ? "." : path
        while !FileManager.default.fileExists(atPath: p) && p != "/" && !p.isEmpty { p = (p as NSString).deletingLastPathComponent }
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: p.isEmpty ? "." : p),
              let free = attributes[.systemFreeSize] as? NSNumber else { return nil }
        return free.intValue
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
