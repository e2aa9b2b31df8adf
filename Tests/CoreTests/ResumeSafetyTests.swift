import Foundation
import XCTest
@testable import Core

/// Issue 12 §2/§3 in Core: checkpoint checksums and non-finite refusal, the non-finite encoding of
/// records and tables, divergence, the run fingerprint, the run lock and `train --resume` checks.
final class ResumeSafetyTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "resume-safety-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private var data: (train: Dataset, test: Dataset) {
        SyntheticData.make(SyntheticSpec(trainCount: 40, testCount: 20, channels: 1, height: 4, width: 4, classCount: 4))
    }

    private func trainer(lr: Double = 0.05, data: Dataset? = nil) -> Trainer {
        var r = TrainingRecipe()
        r.learningRate = lr; r.batchSize = 10; r.epochs = 1
        let d = data ?? self.data.train
        let t = Trainer(network: ModelKind.mlp.build(input: Shape(1, 4, 4), classes: 4), recipe: r, data: d,
                        identity: TrainingIdentity(seed: 3))
        t.initializeWeights()
        return t
    }

    // MARK: Checkpoint integrity

    func testChecksumDetectsCorruptionAndTruncation() throws {
        let path = directory + "/a.safetensors"
        let t = trainer()
        try t.trainStep()
        try Checkpoint(trainer: t).write(to: path)
        let stored = try SafeTensorsFile.read(from: path)
        XCTAssertEqual(stored.metadata[Checkpoint.checksumKey]?.count, 64)
        XCTAssertNoThrow(try Checkpoint.verify(path))
        XCTAssertNoThrow(try Checkpoint.read(path))

        // One flipped bit in the last tensor byte: same size, parses, but the content differs.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 1] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Checkpoint.read(path)) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.verify(path))

        // Truncated: refused by the safetensors reader.
        try Data(bytes.prefix(bytes.count - 100)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Checkpoint.verify(path))

        // A file without a checksum (another writer) is accepted.
        var plain = stored
        plain.metadata[Checkpoint.checksumKey] = nil
        try plain.write(to: path)
        XCTAssertNoThrow(try Checkpoint.read(path))
    }

    /// A flipped bit anywhere in the content changes the digest; the digest ignores only itself.
    func testContentDigestCoversMetadataAndTensors() {
        var f = SafeTensorsFile()
        f.set("a", floats: [1, 2, 3])
        f.metadata["x"] = "1"
        let d0 = Checkpoint.contentDigest(f)
        var g = f; g.metadata[Checkpoint.checksumKey] = "anything"
        XCTAssertEqual(Checkpoint.contentDigest(g), d0)
        g = f; g.metadata["x"] = "2"
        XCTAssertNotEqual(Checkpoint.contentDigest(g), d0)
        g = f; g.set("a", floats: [1, 2, 3], shape: [3, 1])
        XCTAssertNotEqual(Checkpoint.contentDigest(g), d0)
        g = f; g.set("a", floats: [1, 2, 3.0000002])
        XCTAssertNotEqual(Checkpoint.contentDigest(g), d0)
        // Length prefixes: moving a byte between name and value changes the digest.
        var h1 = SafeTensorsFile(); h1.metadata["ab"] = "c"
        var h2 = SafeTensorsFile(); h2.metadata["a"] = "bc"
        XCTAssertNotEqual(Checkpoint.contentDigest(h1), Checkpoint.contentDigest(h2))
    }

    func testNonFiniteTensorIsRefusedNamingIt() throws {
        let path = directory + "/nan.safetensors"
        for (value, word) in [(Float.nan, "NaN"), (Float.infinity, "an infinite value (inf)")] {
            let t = trainer()
            let v = t.network.layout.parameters[1]
            t.network.params.pointer[v.offset + 2] = value
            try Checkpoint(trainer: t).write(to: path)
            XCTAssertThrowsError(try Checkpoint.read(path).makeNetwork()) {
                XCTAssertTrue("\($0)".contains("tensor `\(v.name)` holds \(word)"), "\($0)")
                XCTAssertTrue("\($0)".contains("element 2 of \(v.count)"), "\($0)")
            }
            let resumed = trainer()
            XCTAssertThrowsError(try Checkpoint.read(path).restore(into: resumed)) {
                XCTAssertTrue("\($0)".contains(v.name), "\($0)")
            }
        }
        // Optimiser state: refused on a trainer's resume.
        let t = trainer()
        try t.trainStep()
        var c = Checkpoint(trainer: t)
        let name = c.file.names.first { $0.hasPrefix("optimizer.") && c.file.tensors[$0]!.dtype == .f32 }!
        var values = try c.file.floats(name)
        values[0] = .nan
        c.file.set(name, floats: values, shape: c.file.tensors[name]!.shape)
        try c.write(to: path)
        XCTAssertThrowsError(try Checkpoint.read(path).restore(into: trainer())) {
            XCTAssertTrue("\($0)".contains("tensor `\(name)` holds NaN"), "\($0)")
        }
    }

    func testResumeMismatchesNameTheSetting() throws {
        let t = trainer(lr: 0.05)
        t.dataDigest = DataDigest.digest(t.data)
        let c = Checkpoint(trainer: t)
        XCTAssertTrue(c.resumeMismatches(recipe: t.recipe, seed: 3, model: .mlp, dataDigest: t.dataDigest).isEmpty)
        var r = t.recipe; r.learningRate = 0.1; r.batchSize = 20
        let m = c.resumeMismatches(recipe: r, seed: 4, model: .simplecnn, dataDigest: "00")
        XCTAssertEqual(Set(m.map(\.setting)), ["learningRate", "batchSize", "seed", "model", "data"])
        let lr = m.first { $0.setting == "learningRate" }!
        XCTAssertEqual(lr.stored, "0.05"); XCTAssertEqual(lr.given, "0.1")
    }

    // MARK: Divergence

    func testDivergenceBound() {
        XCTAssertTrue(TrainingError.diverges(.nan))
        XCTAssertTrue(TrainingError.diverges(.infinity))
        XCTAssertTrue(TrainingError.diverges(1e37))
        XCTAssertTrue(TrainingError.diverges(-1e31))
        XCTAssertFalse(TrainingError.diverges(1e29))
        XCTAssertFalse(TrainingError.diverges(2.3))
        let e = TrainingError.diverged(epoch: 0, step: 3, loss: 1e37, setting: "linearized.learning_rate")
        XCTAssertTrue(e.description.contains("lower linearized.learning_rate"), e.description)
    }

    /// A learning rate that blows the weights up: the trainer stops with a divergence naming the setting.
    func testTrainerStopsOnBlowUp() {
        let t = trainer(lr: 1e15)
        t.learningRateSetting = "recipe.learning_rate"
        XCTAssertThrowsError(try t.train(until: t.finalStep * 50)) { error in
            guard case let TrainingError.diverged(_, _, loss, setting)? = error as? TrainingError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(TrainingError.diverges(loss))
            XCTAssertEqual(setting, "recipe.learning_rate")
        }
    }

    // MARK: Non-finite values in records and tables

    func testNonFiniteValuesRoundTripThroughRecordsAndTables() throws {
        var record = TaskRecord(id: "r0-ntk-timeline")
        record.spectra = [NTKSpectrumRow(replicate: 0, epoch: 1, size: 4, trace: 2, lambdaMax: 2, lambdaMin: 0,
                                         conditionNumber: .infinity, effectiveRank: .nan, targetAlignment: -.infinity,
                                         targetAlignmentTraced: 0.5, batchNorm: "none")]
        let data = try JSONEncoder.sorted.encode(record)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"conditionNumber\":\"inf\""), text)
        XCTAssertTrue(text.contains("\"effectiveRank\":\"nan\""), text)
        XCTAssertTrue(text.contains("\"targetAlignment\":\"-inf\""), text)
        let back = try JSONDecoder.records.decode(TaskRecord.self, from: data)
        let row = back.spectra[0]
        XCTAssertEqual(row.conditionNumber, .infinity)
        XCTAssertTrue(row.effectiveRank.isNaN)
        XCTAssertEqual(row.targetAlignment, -.infinity)
        XCTAssertEqual(row.targetAlignmentTraced, 0.5)

        // Tables: CSV cells nan/inf/-inf, JSON strings, and read back.
        let paths = RunPaths(runDirectory: directory + "/run")
        try FileManager.default.createDirectory(atPath: paths.tablesDirectory, withIntermediateDirectories: true)
        try ExperimentTables(records: [back]).write(to: paths)
        let csv = try String(contentsOfFile: paths.table(RunPaths.Table.ntkSpectrum, ext: "csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n")[1], "0,1.0,4,2.0,2.0,0.0,inf,nan,-inf,0.5,none")
        XCTAssertEqual(NonFinite.rows(inCSV: csv), [0])
        let read = try ExperimentTables.read(from: paths)
        XCTAssertEqual(read.ntkSpectrum[0].conditionNumber, .infinity)
        XCTAssertTrue(read.ntkSpectrum[0].effectiveRank.isNaN)
    }

    // MARK: Fingerprint

    func testFingerprintRefusesChangedDataAndOtherFormat() throws {
        let paths = RunPaths(runDirectory: directory + "/run")
        try FileManager.default.createDirectory(atPath: paths.tasksDirectory, withIntermediateDirectories: true)
        let (train, test) = data
        let fp = RunFingerprint(train: train, test: test)
        try fp.establish(in: paths)
        XCTAssertTrue(FileManager.default.fileExists(atPath: paths.fingerprint))
        XCTAssertNoThrow(try RunFingerprint(train: train, test: test).establish(in: paths))

        // Independent reference for the digest: SHA-256 of the bytes, concatenated by hand.
        var bytes: [UInt8] = []
        for x in train.images { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 } }
        for y in train.labels { withUnsafeBytes(of: y.littleEndian) { bytes += $0 } }
        XCTAssertEqual(fp.train.sha256, SHA256.hex(SHA256.digest(bytes)))

        var changed = train
        changed.images[5] += 0.25
        XCTAssertThrowsError(try RunFingerprint(train: changed, test: test).establish(in: paths)) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("the data differ") && text.contains("training examples' SHA-256"), text)
            XCTAssertTrue(text.contains("restore the data files"), text)
        }
        let fewer = try test.prefix(count: test.count - 1)
        XCTAssertThrowsError(try RunFingerprint(train: train, test: fewer).establish(in: paths)) {
            XCTAssertTrue("\($0)".contains("test examples \(test.count) -> \(test.count - 1)"), "\($0)")
        }
        var other = fp
        other.formatVersion = RunFingerprint.currentFormatVersion + 1
        try AtomicFile.write(try JSONEncoder.sorted.encode(other), to: paths.fingerprint)
        XCTAssertThrowsError(try fp.establish(in: paths)) {
            XCTAssertTrue("\($0)".contains("format version \(RunFingerprint.currentFormatVersion + 1)"), "\($0)")
        }
        // Numerics: a fingerprint without the field (written before it existed) is version 1.
        var old = fp
        old.numericsVersion = nil
        try AtomicFile.write(try JSONEncoder.sorted.encode(old), to: paths.fingerprint)
        XCTAssertFalse(String(decoding: FileManager.default.contents(atPath: paths.fingerprint)!, as: UTF8.self).contains("numericsVersion"))
        XCTAssertEqual(RunFingerprint.currentNumericsVersion, 2)
        XCTAssertThrowsError(try fp.establish(in: paths)) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("numerics version 1") && text.contains("numerics version 2"), text)
            XCTAssertTrue(text.contains("finish it with the ntkscape version that started it"), text)
        }
        try AtomicFile.write(try JSONEncoder.sorted.encode(fp), to: paths.fingerprint)
        XCTAssertNoThrow(try fp.establish(in: paths))
    }

    // MARK: Lock

    func testRunLockIsExclusiveAndStaleLocksAreTakenOver() throws {
        let path = directory + "/run.lock"
        let lock = try RunLock.acquire(path)
        XCTAssertThrowsError(try RunLock.acquire(path)) {
            XCTAssertTrue("\($0)".contains("another ntkscape job is running") && "\($0)".contains("pid \(getpid())"), "\($0)")
        }
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))

        // A dead process of this host: stale, taken over with a note.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        try "pid=\(p.processIdentifier) host=\(RunLock.hostName) started=x\n".write(toFile: path, atomically: true, encoding: .utf8)
        var notes: [String] = []
        let taken = try RunLock.acquire(path) { notes.append($0) }
        XCTAssertTrue(notes.first?.contains("stale") ?? false, "\(notes)")
        XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).contains("pid=\(getpid())"))
        taken.release()

        // Another host: cannot be checked, refused.
        try "pid=\(p.processIdentifier) host=elsewhere-\(UUID()) started=x\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunLock.acquire(path)) { XCTAssertTrue("\($0)".contains("delete \(path)"), "\($0)") }
        // Another host, not refreshed for longer than `staleAfter`: a killed job, taken over.
        let old = Date().addingTimeInterval(-RunLock.staleAfter - 60)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path)
        notes = []
        let overtaken = try RunLock.acquire(path) { notes.append($0) }
        XCTAssertTrue(notes.first?.contains("not refreshed for") ?? false, "\(notes)")
        overtaken.release()
    }
}

/// The data fingerprint hashes every loaded example once per run start: a 32 MiB message, streamed
/// in uneven pieces, against the digest of the same bytes from Python's `hashlib` (the throughput is
/// printed, not asserted: a wall-clock bound only measures the machine's load).
final class SHA256ThroughputTests: XCTestCase {
    func testLargeMessageDigestMatchesReference() {
        let bytes = [UInt8](repeating: 0xa5, count: 32 << 20)
        var h = SHA256()
        let t0 = Date()
        var offset = 0, piece = 1
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            bytes[offset..<end].withUnsafeBytes { h.update($0) }
            offset = end
            piece = piece * 7 + 3   // 1, 10, 73, ... bytes: every alignment to the 64-byte block
        }
        let digest = h.hexDigest()
        print("SHA-256: \(Int(32 / Date().timeIntervalSince(t0))) MB/s")
        // python3 -c "import hashlib; print(hashlib.sha256(b'\\xa5' * (32 << 20)).hexdigest())"
        XCTAssertEqual(digest, "edeadec8f638055689d5be63b4bcf2654fb64bf91fb6651e9a924f052a9c7db0")
    }
}
