import Core
import Foundation
import TestSupport
import XCTest

final class IOTests: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("ntkscape-iotests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func listing(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }
    private func bytes(_ path: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    // MARK: AtomicFile

    func testAtomicWriteCreatesParentsAndReplaces() throws {
        let path = dir + "/a/b/c/out.txt"
        try AtomicFile.write("first", to: path)
        XCTAssertEqual(String(decoding: bytes(path), as: UTF8.self), "first")
        try AtomicFile.write([0x01, 0x02, 0xFF], to: path)
        XCTAssertEqual(bytes(path), [0x01, 0x02, 0xFF])
        // Only the destination is left: no temporary files.
        XCTAssertEqual(listing(dir + "/a/b/c"), ["out.txt"])
    }

    func testAtomicWriteFailureLeavesDestinationAndNoTemporary() throws {
        struct Boom: Error {}
        let path = dir + "/keep.bin"
        try AtomicFile.write([9, 9], to: path)
        XCTAssertThrowsError(try AtomicFile.write(to: path) { sink in
            try sink.write([1, 2, 3])
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(bytes(path), [9, 9])
        XCTAssertEqual(listing(dir), ["keep.bin"])
    }

    func testAtomicWriteStreamsChunksInOrder() throws {
        let path = dir + "/stream.bin"
        var written = -1
        try AtomicFile.write(to: path) { sink in
            try sink.write([1, 2])
            try sink.write(Data([3]))
            try sink.write("AB")
            written = sink.bytesWritten
        }
        XCTAssertEqual(written, 5)
        XCTAssertEqual(bytes(path), [1, 2, 3, 0x41, 0x42])
    }

    func testAtomicWriteErrorNamesPath() throws {
        // A regular file where a parent directory should be: creating the directory must fail.
        try AtomicFile.write([0], to: dir + "/blocker")
        let path = dir + "/blocker/sub/out.bin"
        XCTAssertThrowsError(try AtomicFile.write([1], to: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), text)
            XCTAssertTrue(text.contains("create parent directory"), text)
        }
    }

    // MARK: safetensors — golden bytes written by hand

    /// One F32 tensor `w = [1, 2]` with metadata `{"k": "v"}`; every byte spelled out.
    func testGoldenSingleTensorWithMetadata() throws {
        let json = #"{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertEqual(json.utf8.count, 79)                       // pad 79 -> 80 with one space
        var expected: [UInt8] = [80, 0, 0, 0, 0, 0, 0, 0]         // u64 LE header length
        expected += Array(json.utf8) + [0x20]
        expected += [0x00, 0x00, 0x80, 0x3F]                      // 1.0f = 0x3F800000, LE
        expected += [0x00, 0x00, 0x00, 0x40]                      // 2.0f = 0x40000000, LE
        var file = SafeTensorsFile(metadata: ["k": "v"])
        file.set("w", floats: [1, 2])
        XCTAssertEqual(file.encoded(), expected)
        let path = dir + "/golden.safetensors"
        try file.write(to: path)
        XCTAssertEqual(bytes(path), expected)
    }

    /// Mixed dtypes: the reference writer orders I64 before F64 before F32, names second.
    func testGoldenMixedDTypeOrder() throws {
        let json = #"{"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]}}"#
        XCTAssertEqual(json.utf8.count, 167)                      // pad 167 -> 168
        var expected: [UInt8] = [168, 0, 0, 0, 0, 0, 0, 0]
        expected += Array(json.utf8) + [0x20]
        expected += [7, 0, 0, 0, 0, 0, 0, 0]                      // Int64 7
        expected += [0, 0, 0, 0, 0, 0, 0xE0, 0xBF]                // -0.5 = 0xBFE0000000000000
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // 1.0f, -2.0f
        var file = SafeTensorsFile()
        file.set("a", floats: [1, -2], shape: [1, 2])
        file.set("b", doubles: [-0.5])
        file.set("step", int64s: [7], shape: [])
        XCTAssertEqual(file.encoded(), expected)
    }

    // MARK: safetensors — round trip and determinism

    private func sampleFile() -> SafeTensorsFile {
        var f = SafeTensorsFile(metadata: ["epoch": "0.4", "note": "quote\" backslash\\ tab\t nl\n ctl\u{01} é ∑ 🙂",
                                           "zz": ""])
        f.set("conv1.weight", floats: (0..<24).map { Float($0) * 0.1 - 1 }, shape: [2, 3, 2, 2])
        f.set("bn.running_var", doubles: [1e-300, .pi, -0.0])
        f.set("step", int64s: [Int64.max], shape: [])
        f.set("labels", int32s: [-1, 0, 7])
        f.set("empty", floats: [], shape: [0, 4])
        f.set("naïve/名前 \"q\"", floats: [.infinity, -.infinity, .greatestFiniteMagnitude])
        return f
    }

    func testRoundTripThroughDisk() throws {
        let file = sampleFile()
        let path = dir + "/rt.safetensors"
        try file.write(to: path)
        let back = try SafeTensorsFile.read(from: path)
        XCTAssertEqual(back, file)
        XCTAssertEqual(back.origin, path)
        XCTAssertEqual(try back.floats("conv1.weight"), (0..<24).map { Float($0) * 0.1 - 1 })
        XCTAssertEqual(try back.doubles("bn.running_var").map(\.bitPattern), [1e-300, .pi, -0.0].map(\.bitPattern))
        XCTAssertEqual(try back.int64s("step"), [Int64.max])
        XCTAssertEqual(try back.int32s("labels"), [-1, 0, 7])
        XCTAssertEqual(back.tensors["step"]?.shape, [])
        XCTAssertEqual(back.tensors["empty"]?.shape, [0, 4])
        XCTAssertEqual(back.metadata["note"], file.metadata["note"])
        // Re-encoding what we read reproduces the file byte for byte.
        XCTAssertEqual(back.encoded(), bytes(path))
    }

    func testWriterIsDeterministic() throws {
        // Same content inserted in different orders (dictionaries hash differently per run too).
        var a = SafeTensorsFile(), b = SafeTensorsFile()
        let names = (0..<20).map { "t\($0)" }
        for n in names { a.set(n, floats: [Float(n.count)]) }
        for n in names.reversed() { b.set(n, floats: [Float(n.count)]) }
        for k in ["m", "a", "z", "é", "B"] { a.metadata[k] = k + "!" }
        for k in ["B", "é", "z", "a", "m"] { b.metadata[k] = k + "!" }
        XCTAssertEqual(a.encoded(), b.encoded())
        try a.write(to: dir + "/1.safetensors")
        try b.write(to: dir + "/2.safetensors")
        XCTAssertEqual(bytes(dir + "/1.safetensors"), bytes(dir + "/2.safetensors"))
        // Header length is a multiple of 8, so the buffer starts 8-aligned.
        let n = bytes(dir + "/1.safetensors").prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0)
    }

    func testDecodeAcceptsWhitespaceAndEscapesFromOtherWriters() throws {
        // Pretty-printed JSON with \u escapes (incl. a surrogate pair) and fields in another order.
        let json = "{ \"x\\u00e9\\ud83d\\ude42\" : { \"shape\" : [ 1 ], \"data_offsets\" : [ 0 , 4 ], \"dtype\" : \"F32\", \"extra\": null },\n  \"__metadata__\": {\"a\\/b\": \"\\n\"} }  \t\n"
        let raw = headerFile(json, buffer: [0, 0, 0x40, 0x40])   // 3.0f
        let f = try SafeTensorsFile.decode(raw)
        XCTAssertEqual(try f.floats("xé🙂"), [3])
        XCTAssertEqual(f.metadata, ["a/b": "\n"])
    }

    // MARK: safetensors — accessors and their errors

    func testAccessorErrors() throws {
        let path = dir + "/acc.safetensors"
        try sampleFile().write(to: path)
        let f = try SafeTensorsFile.read(from: path)
        assertError(.missingTensor, ["'fc.weight'", "available:", "conv1.weight", "step", path]) { _ = try f.floats("fc.weight") }
        assertError(.wrongDType, ["'bn.running_var'", "F64", "doubles()"]) { _ = try f.floats("bn.running_var") }
        assertError(.shapeMismatch, ["[2, 3, 2, 2]", "[2, 3, 3, 3]"]) { try f.expectShape("conv1.weight", [2, 3, 3, 3]) }
        XCTAssertNoThrow(try f.expectShape("conv1.weight", [2, 3, 2, 2]))
        var small = [Float](repeating: 0, count: 23)
        assertError(.shapeMismatch, ["24", "23"]) { try small.withUnsafeMutableBufferPointer { try f.copyFloats("conv1.weight", into: $0) } }
        var exact = [Float](repeating: 0, count: 24)
        try exact.withUnsafeMutableBufferPointer { try f.copyFloats("conv1.weight", into: $0) }
        XCTAssertEqual(exact, try f.floats("conv1.weight"))
    }

    // MARK: safetensors — corrupt files

    /// Builds `u64 length + json + buffer` without padding checks, for hand-made corrupt files.
    private func headerFile(_ json: String, buffer: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
        let j = Array(json.utf8)
        return withUnsafeBytes(of: (lengthOverride ?? UInt64(j.count)).littleEndian) { Array($0) } + j + buffer
    }

    private func assertError(_ kind: SafeTensorsError.Kind, _ fragments: [String],
                             file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected a \(kind) error", file: file, line: line)
        } catch let e as SafeTensorsError {
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            let text = e.description
            XCTAssertTrue(text.contains("Fix:"), text, file: file, line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "'\(f)' not in: \(text)", file: file, line: line) }
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
        }
    }

    private func entry(_ name: String, _ dtype: String, _ shape: [Int], _ b: Int, _ e: Int) -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(b),\(e)]}"
    }

    func testCorruptFilesGiveSpecificErrors() throws {
        let src = "bad.safetensors"
        func decode(_ bytes: [UInt8]) throws { _ = try SafeTensorsFile.decode(bytes, origin: src) }
        let four: [UInt8] = [0, 0, 0x80, 0x3F]

        assertError(.truncated, [src, "shorter than the 8-byte"]) { try decode([1, 2, 3]) }
        assertError(.headerTooLarge, ["limit"]) { try decode(self.headerFile("{}", buffer: [], lengthOverride: 1 << 40)) }
        assertError(.truncated, ["says 500 bytes"]) { try decode(self.headerFile("{}", buffer: [], lengthOverride: 500)) }
        assertError(.invalidHeader, ["UTF-8"]) { try decode([3, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0x7D]) }
        assertError(.invalidHeader, ["start with '{'"]) { try decode(self.headerFile("[1]", buffer: [])) }
        assertError(.invalidJSON, ["invalid JSON", "byte"]) { try decode(self.headerFile("{\"a\":{\"dtype\":\"F32\"", buffer: [])) }
        assertError(.invalidJSON, ["duplicate key \"w\""]) {
            try decode(self.headerFile("{\(self.entry("w", "F32", [1], 0, 4)),\(self.entry("w", "F32", [1], 0, 4))}", buffer: four))
        }
        assertError(.unknownDType, ["'w'", "\"F8_XX\"", "known: "]) {
            try decode(self.headerFile("{\(self.entry("w", "F8_XX", [1], 0, 4))}", buffer: four))
        }
        assertError(.offsetsOutOfRange, ["'w'", "[0, 8]", "4 bytes", "truncated"]) {
            try decode(self.headerFile("{\(self.entry("w", "F32", [2], 0, 8))}", buffer: four))
        }
        assertError(.offsetsOutOfRange, ["[4, 0]"]) {
            try decode(self.headerFile("{\(self.entry("w", "F32", [1], 4, 0))}", buffer: four + four))
        }
        assertError(.shapeMismatch, ["'w'", "[3]", "span 8"]) {
            try decode(self.headerFile("{\(self.entry("w", "F32", [3], 0, 8))}", buffer: four + four))
        }
        assertError(.offsetsNotContiguous, ["'b'", "overlaps", "'a'"]) {
            try decode(self.headerFile("{\(self.entry("a", "F32", [2], 0, 8)),\(self.entry("b", "F32", [1], 4, 8))}", buffer: four + four))
        }
        assertError(.offsetsNotContiguous, ["'b'", "gap"]) {
            try decode(self.headerFile("{\(self.entry("a", "F32", [1], 0, 4)),\(self.entry("b", "F32", [1], 8, 12))}", buffer: four + four + four))
        }
        assertError(.offsetsNotContiguous, ["unaccounted"]) {
            try decode(self.headerFile("{\(self.entry("a", "F32", [1], 0, 4))}", buffer: four + [0]))
        }
        assertError(.invalidHeader, ["must be strings"]) {
            try decode(self.headerFile("{\"__metadata__\":{\"epoch\":3}}", buffer: []))
        }
        assertError(.invalidHeader, ["non-negative integers"]) {
            try decode(self.headerFile("{\(self.entry("w", "F32", [-1], 0, 4))}", buffer: four))
        }
        assertError(.invalidHeader, ["no \"data_offsets\""]) {
            try decode(self.headerFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", buffer: four))
        }
        // A valid file cut short on disk names the file.
        let path = dir + "/cut.safetensors"
        var full = SafeTensorsFile()
        full.set("w", floats: [1, 2, 3])
        let encoded = full.encoded()
        try AtomicFile.write(Array(encoded.dropLast(2)), to: path)
        assertError(.offsetsOutOfRange, [path, "'w'", "truncated"]) { _ = try SafeTensorsFile.read(from: path) }
        assertError(.io, [dir + "/missing.safetensors", "does not exist"]) { _ = try SafeTensorsFile.read(from: self.dir + "/missing.safetensors") }
    }

    // MARK: safetensors — interoperability with the reference implementation (Python)

    /// Runs `python3 -c script args...`; when numpy or safetensors is missing the test is skipped,
    /// or fails under `CI=true` (CI installs them: the reference implementation must be checked).
    private func python(_ script: String, _ args: [String]) throws -> String {
        func run(_ arguments: [String]) throws -> (Int32, String, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3"] + arguments
            let out = Pipe(), err = Pipe()
            p.standardOutput = out; p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            let e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
        let probe = try? run(["-c", "import numpy, safetensors.numpy"])
        guard let probe, probe.0 == 0 else {
            try referenceMissing("python3 with numpy and safetensors is not available (pip install numpy safetensors); "
                                 + "interoperability with the reference implementation not checked")
        }
        let (status, out, err) = try run(["-c", script] + args)
        XCTAssertEqual(status, 0, "python failed: \(err)")
        return out
    }

    func testReferenceImplementationReadsOurFile() throws {
        let path = dir + "/ours.safetensors"
        try sampleFile().write(to: path)
        let script = """
        import json, sys, numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            meta = f.metadata()
        def enc(a):
            v = a.astype(np.float64).ravel().tolist() if a.dtype.kind == "f" else a.ravel().tolist()
            return {"dtype": str(a.dtype), "shape": list(a.shape), "values": [repr(x) for x in v]}
        print(json.dumps({"tensors": {k: enc(v) for k, v in t.items()}, "metadata": meta}))
        """
        struct Entry: Decodable { let dtype: String; let shape: [Int]; let values: [String] }
        struct Output: Decodable { let tensors: [String: Entry]; let metadata: [String: String] }
        let out = try JSONDecoder().decode(Output.self, from: Data(try python(script, [path]).utf8))
        let ours = sampleFile()
        XCTAssertEqual(out.metadata, ours.metadata)
        XCTAssertEqual(Set(out.tensors.keys), Set(ours.tensors.keys))
        let numpyName: [SafeTensorsFile.DType: String] = [.f32: "float32", .f64: "float64", .i64: "int64", .i32: "int32"]
        for (name, t) in ours.tensors {
            let e = try XCTUnwrap(out.tensors[name], name)
            XCTAssertEqual(e.dtype, numpyName[t.dtype], name)
            XCTAssertEqual(e.shape, t.shape, name)
            // Python's repr of a double round-trips exactly; Float widens to Double exactly.
            let expected: [String]
            switch t.dtype {
            case .f32: expected = try ours.floats(name).map { pyRepr(Double($0)) }
            case .f64: expected = try ours.doubles(name).map { pyRepr($0) }
            case .i64: expected = try ours.int64s(name).map { String($0) }
            case .i32: expected = try ours.int32s(name).map { String($0) }
            default: expected = []; XCTFail("unexpected dtype")
            }
            if t.dtype == .f32 || t.dtype == .f64 {
                XCTAssertEqual(e.values.map { Double($0)?.bitPattern }, expected.map { Double($0)?.bitPattern }, name)
            } else {
                XCTAssertEqual(e.values, expected, name)
            }
        }
    }

    /// Python's repr spelling of special doubles (finite values parse back exactly either way).
    private func pyRepr(_ x: Double) -> String {
        x == .infinity ? "inf" : x == -.infinity ? "-inf" : "\(x)"
    }

    func testWeReadReferenceFileAndEncodeItIdentically() throws {
        let path = dir + "/theirs.safetensors"
        let script = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({
            "layer1.weight": np.array([[0.5, -1.25, 3.0], [0.1, 1e-30, -7.0]], dtype=np.float32),
            "stats": np.array([np.pi, -2.5], dtype=np.float64),
            "step": np.array(123456789012, dtype=np.int64),
            "aa": np.zeros((0,), dtype=np.float32),
        }, sys.argv[1], metadata={"format": "pt"})
        """
        _ = try python(script, [path])
        let f = try SafeTensorsFile.read(from: path)
        XCTAssertEqual(f.metadata, ["format": "pt"])
        try f.expectShape("layer1.weight", [2, 3])
        XCTAssertEqual(try f.floats("layer1.weight"), [0.5, -1.25, 3.0, 0.1, 1e-30, -7.0])
        XCTAssertEqual(try f.doubles("stats"), [.pi, -2.5])
        try f.expectShape("step", [])
        XCTAssertEqual(try f.int64s("step"), [123456789012])
        try f.expectShape("aa", [0])
        // Our writer reproduces the reference writer's bytes exactly.
        XCTAssertEqual(f.encoded(), bytes(path))
    }
}
