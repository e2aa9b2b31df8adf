import Foundation

/// The data one split of a run trains or measures on, as loaded (after subsetting and
/// normalisation): sizes and the SHA-256 of the examples' bytes.
public struct DataDigest: Codable, Equatable, Sendable {
    /// Data set name (informational; not compared).
    public var name: String
    public var examples: Int
    /// `[channels, height, width]`.
    public var shape: [Int]
    public var classes: Int
    /// SHA-256 (hex) of the images as little-endian Float32 followed by the labels as little-endian Int32.
    public var sha256: String

    public init(_ data: Dataset) {
        name = data.name
        examples = data.count
        shape = [data.channels, data.height, data.width]
        classes = data.classCount
        sha256 = Self.digest(data)
    }

    /// SHA-256 of the examples as loaded (what `sha256` holds).
    public static func digest(_ data: Dataset) -> String {
        var h = SHA256()
        data.images.withUnsafeBytes { h.update($0) }   // little-endian on every supported platform
        data.labels.withUnsafeBytes { h.update($0) }
        return h.hexDigest()
    }

    /// What differs from `other`, in words (empty: the same data).
    func differences(from other: DataDigest, split: String) -> [String] {
        var out: [String] = []
        if examples != other.examples { out.append("\(split) examples \(other.examples) -> \(examples)") }
        if shape != other.shape { out.append("\(split) example shape \(other.shape) -> \(shape)") }
        if classes != other.classes { out.append("\(split) classes \(other.classes) -> \(classes)") }
        if out.isEmpty && sha256 != other.sha256 {
            out.append("\(split) examples' SHA-256 \(other.sha256.prefix(12))... -> \(sha256.prefix(12))... (same sizes, other bytes)")
        }
        return out
    }
}

/// `<run>/fingerprint.json`: what a run directory's results depend on beyond its configuration
/// (which the directory name hashes): the format of its files and the data. Written at a run's first
/// start; every rerun recomputes it and refuses to continue when it differs, so an interrupted run
/// never mixes results of two data sets or two incompatible program versions (docs/experiment.md).
public struct RunFingerprint: Codable, Equatable, Sendable {
    /// Version of the run directory's format: task records, checkpoints and file layout. Raised when
    /// a change makes older directories unusable; a directory of another version is refused.
    public static let currentFormatVersion = 1
    /// Version of the numerics: raised when a change of the kernels alters the bits a training step
    /// or a measurement computes (a summation order, a kernel's FMA chains). A run continued by a
    /// program of another numerics version would mix two programs' numbers and no longer equal a
    /// fresh run, so it is refused. History: 1 up to the data-parallel shards (issue 15); 2 from the
    /// packed-panel `SmallGEMM.nt` and the F(4x4, 3x3) forward and input-gradient convolutions.
    public static let currentNumericsVersion = 2

    public var formatVersion: Int
    /// Absent in fingerprints written before numerics were versioned: those are version 1.
    public var numericsVersion: Int?
    /// The program that first started the run (informational; not compared).
    public var ntkscapeVersion: String
    public var train: DataDigest
    public var test: DataDigest

    public init(train: Dataset, test: Dataset) {
        formatVersion = Self.currentFormatVersion
        numericsVersion = Self.currentNumericsVersion
        ntkscapeVersion = NTKScapeVersion.string
        self.train = DataDigest(train)
        self.test = DataDigest(test)
    }

    /// Checks `self` (the current program and data) against the run directory's fingerprint, writing
    /// it at the first start. Throws a `TaskFailure` naming what changed and the fix. Rank 0 only.
    public func establish(in paths: RunPaths, log: (String) -> Void = { _ in }) throws {
        let fm = FileManager.default
        let newRun = "start a new run instead: another --runs directory, or another `name` in the experiment file"
        guard let data = fm.contents(atPath: paths.fingerprint) else {
            let records = (try? fm.contentsOfDirectory(atPath: paths.tasksDirectory))?.filter { $0.hasSuffix(".json") } ?? []
            if !records.isEmpty {
                // A directory started before fingerprints existed: its files have format 1; adopt it.
                log("note: \(paths.runDirectory) has no fingerprint.json (started by an older ntkscape); recording the "
                    + "current data — the data it started with cannot be checked")
            }
            try AtomicFile.write(try JSONEncoder.sorted.encode(self), to: paths.fingerprint)
            return
        }
        let stored: RunFingerprint
        do {
            stored = try JSONDecoder.records.decode(RunFingerprint.self, from: data)
        } catch {
            throw TaskFailure(task: "checking the run directory \(paths.runDirectory)",
                              message: "\(paths.fingerprint) is unreadable (\(TaskFailure.describe(error))): it was damaged, "
                                  + "or written by an incompatible version of ntkscape",
                              fix: newRun + "; or, if you are sure the data are those the run started with, delete \(paths.fingerprint)")
        }
        if stored.formatVersion != formatVersion {
            throw TaskFailure(task: "checking the run directory \(paths.runDirectory)",
                              message: "the run directory has format version \(stored.formatVersion) (ntkscape \(stored.ntkscapeVersion)); "
                                  + "this ntkscape \(NTKScapeVersion.string) reads and writes format version \(formatVersion), "
                                  + "so its results cannot be continued",
                              fix: newRun + "; or finish it with the ntkscape version that started it")
        }
        let storedNumerics = stored.numericsVersion ?? 1
        if storedNumerics != numericsVersion ?? 1 {
            throw TaskFailure(task: "checking the run directory \(paths.runDirectory)",
                              message: "the run directory's results were computed with numerics version \(storedNumerics) "
                                  + "(ntkscape \(stored.ntkscapeVersion)); this ntkscape \(NTKScapeVersion.string) computes with "
                                  + "numerics version \(numericsVersion ?? 1) (other summation orders in its kernels), so continuing "
                                  + "would mix two programs' numbers and the tables would not equal a fresh run's",
                              fix: newRun + "; or finish it with the ntkscape version that started it")
        }
        let changes = train.differences(from: stored.train, split: "training") + test.differences(from: stored.test, split: "test")
        if !changes.isEmpty {
            throw TaskFailure(task: "checking the run directory \(paths.runDirectory)",
                              message: "the data differ from those the run started with (" + changes.joined(separator: "; ")
                                  + "): continuing would mix results of two data sets",
                              fix: "restore the data files the run started with (dataset.path), or " + newRun)
        }
    }
}
