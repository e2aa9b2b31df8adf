import Foundation

// safetensors on-disk format (https://github.com/huggingface/safetensors, format as of v0.4-0.8):
//
//   bytes [0, 8)        N: UInt64, little-endian — length of the JSON header
//   bytes [8, 8+N)      UTF-8 JSON object, padded at the end with spaces (0x20):
//                         { "__metadata__": { "key": "value", ... },      // optional, strings only
//                           "name": { "dtype": "F32", "shape": [d0, d1, ...],
//                                     "data_offsets": [begin, end] }, ... }
//   bytes [8+N, EOF)    the byte buffer: every tensor's elements, row-major, little-endian.
//
// `data_offsets` are relative to the start of the byte buffer (byte 8+N), `end` exclusive. A valid
// file's tensors tile the buffer exactly: sorted by `begin`, each starts where the previous one
// ends, the first at 0, the last ends at EOF; `end - begin == product(shape) * sizeof(dtype)`.
// A scalar has shape `[]` (one element); a zero-size tensor has `begin == end`.
//
// What our writer does, and why (it reproduces the reference Rust writer, which PyTorch's, NumPy's
// and JAX's `save_file` all call, byte for byte whenever metadata has at most one key):
// - Tensors ordered by dtype, widest first (reference order U64, I64, F64, F32, U32, I32, BF16,
//   F16, U16, I16, I8, U8, BOOL), then by name (UTF-8 byte order). Since N is padded to a multiple
//   of 8, the buffer starts 8-byte aligned and this order keeps every tensor aligned to its element
//   size, so readers may map it in place.
// - Compact JSON exactly as `serde_json` prints it; `__metadata__` first and omitted when empty;
//   each tensor's keys in the order dtype, shape, data_offsets.
// - Metadata keys sorted by UTF-8 bytes. (The reference keeps metadata in a hash map, so its key
//   order is arbitrary; sorting is our only deviation and makes output deterministic.)
// - Header padded with spaces so N is a multiple of 8.
// Same tensors and metadata in, same bytes out.

/// A safetensors file held in memory: named tensors (raw little-endian bytes plus dtype and shape)
/// and string metadata. Checkpoints, kernels and any other tensor output use it, so every artefact
/// is readable by `safetensors.numpy.load_file` / `safetensors.torch.load_file`.
public struct SafeTensorsFile: Equatable, Sendable {
    /// Element types, named as in the file. Declaration order is the reference implementation's
    /// `Dtype` enum order, which fixes the writer's tensor order.
    public enum DType: String, CaseIterable, Sendable, Codable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

        /// Bytes per element.
        public var byteSize: Int {
            switch self {
            case .bool, .u8, .i8: return 1
            case .i16, .u16, .f16, .bf16: return 2
            case .i32, .u32, .f32: return 4
            case .f64, .i64, .u64: return 8
            }
        }
        /// Position in the reference enum; the writer emits higher ranks first.
        var referenceRank: Int { DType.allCases.firstIndex(of: self)! }
    }

    /// One tensor: `shape` row-major, `bytes.count == product(shape) * dtype.byteSize`, little-endian.
    public struct Tensor: Equatable, Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        /// Checks the byte count against the shape; use the typed `set` methods to avoid mistakes.
        public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
            let n = shape.reduce(1, *)
            precondition(shape.allSatisfy { $0 >= 0 } && n * dtype.byteSize == bytes.count,
                         "SafeTensorsFile.Tensor: \(bytes.count) bytes do not hold shape \(shape) of \(dtype.rawValue)")
            self.dtype = dtype; self.shape = shape; self.bytes = bytes
        }
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public var tensors: [String: Tensor]
    /// `__metadata__`: free-form string pairs (run id, epoch, optimiser name, format version ...).
    public var metadata: [String: String]
    /// The file this was read from, for error messages; not part of equality and not written.
    public var origin: String?

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata; self.origin = nil
    }

    public static func == (a: SafeTensorsFile, b: SafeTensorsFile) -> Bool {
        a.tensors == b.tensors && a.metadata == b.metadata
    }

    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    // MARK: Typed setters (shape defaults to 1-D `[count]`)

    public mutating func set(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int]? = nil) {
        tensors[name] = Tensor(dtype: .f32, shape: shape ?? [floats.count], bytes: littleEndianBytes(floats))
    }
    public mutating func set(_ name: String, floats: [Float], shape: [Int]? = nil) {
        floats.withUnsafeBufferPointer { set(name, floats: $0, shape: shape) }
    }
    public mutating func set(_ name: String, doubles: [Double], shape: [Int]? = nil) {
        tensors[name] = doubles.withUnsafeBufferPointer {
            Tensor(dtype: .f64, shape: shape ?? [doubles.count], bytes: littleEndianBytes($0))
        }
    }
    public mutating func set(_ name: String, int64s: [Int64], shape: [Int]? = nil) {
        tensors[name] = int64s.withUnsafeBufferPointer {
            Tensor(dtype: .i64, shape: shape ?? [int64s.count], bytes: littleEndianBytes($0))
        }
    }
    public mutating func set(_ name: String, int32s: [Int32], shape: [Int]? = nil) {
        tensors[name] = int32s.withUnsafeBufferPointer {
            Tensor(dtype: .i32, shape: shape ?? [int32s.count], bytes: littleEndianBytes($0))
        }
    }

    // MARK: Typed accessors

    /// The tensor called `name`, or an error listing the names the file does have.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else {
            let available = names
            let list = available.isEmpty ? "the file has no tensors"
                : "available: " + available.prefix(40).joined(separator: ", ")
                    + (available.count > 40 ? ", ... (\(available.count) in all)" : "")
            throw SafeTensorsError(.missingTensor, file: origin,
                                   problem: "no tensor named '\(name)' (\(list))",
                                   fix: "check that the file was written by the same model/optimiser configuration")
        }
        return t
    }

    public func floats(_ name: String) throws -> [Float] { try values(name, .f32, "floats") }
    public func doubles(_ name: String) throws -> [Double] { try values(name, .f64, "doubles") }
    public func int64s(_ name: String) throws -> [Int64] { try values(name, .i64, "int64s") }
    public func int32s(_ name: String) throws -> [Int32] { try values(name, .i32, "int32s") }

    /// Copies an F32 tensor into `destination` (e.g. a layer's view of the flat parameter
    /// vector) without an intermediate array. Element counts must agree.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let t = try typedTensor(name, .f32, "floats")
        guard t.elementCount == destination.count else {
            throw SafeTensorsError(.shapeMismatch, file: origin,
                                   problem: "tensor '\(name)' has \(t.elementCount) elements (shape \(t.shape)) but the destination holds \(destination.count)",
                                   fix: "the checkpoint belongs to a different model architecture or width")
        }
        t.bytes.withUnsafeBytes { raw in
            for i in 0..<destination.count {
                destination[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        }
    }

    /// Throws unless tensor `name` exists with exactly `shape`.
    public func expectShape(_ name: String, _ shape: [Int]) throws {
        let t = try tensor(name)
        guard t.shape == shape else {
            throw SafeTensorsError(.shapeMismatch, file: origin,
                                   problem: "tensor '\(name)' has shape \(t.shape), expected \(shape)",
                                   fix: "the checkpoint belongs to a different model architecture, width or dataset (input shape / class count)")
        }
    }

    private func typedTensor(_ name: String, _ dtype: DType, _ accessor: String) throws -> Tensor {
        let t = try tensor(name)
        guard t.dtype == dtype else {
            let suggestion = [DType.f32: "floats", .f64: "doubles", .i64: "int64s", .i32: "int32s"][t.dtype]
            throw SafeTensorsError(.wrongDType, file: origin,
                                   problem: "tensor '\(name)' has dtype \(t.dtype.rawValue), but \(accessor)() reads \(dtype.rawValue)",
                                   fix: suggestion.map { "read it with \($0)()" }
                                       ?? "convert the file to \(dtype.rawValue) (e.g. with numpy's astype) before loading")
        }
        return t
    }

    private func values<T: LittleEndianElement>(_ name: String, _ dtype: DType, _ accessor: String) throws -> [T] {
        let t = try typedTensor(name, dtype, accessor)
        return t.bytes.withUnsafeBytes { raw in
            (0..<t.elementCount).map { T.load(raw, at: $0) }
        }
    }

    // MARK: Encoding

    /// Tensor names in file order: dtype rank descending, then UTF-8 bytes of the name.
    var writeOrder: [String] {
        tensors.keys.sorted { a, b in
            let ra = tensors[a]!.dtype.referenceRank, rb = tensors[b]!.dtype.referenceRank
            if ra != rb { return ra > rb }
            return a.utf8.lexicographicallyPrecedes(b.utf8)
        }
    }

    /// The 8-byte length prefix plus the padded JSON header.
    func encodedHeader(order: [String]) -> [UInt8] {
        var members: [(key: String, value: HeaderJSON)] = []
        if !metadata.isEmpty {
            let sortedMeta = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            members.append(("__metadata__", .object(sortedMeta.map { ($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for name in order {
            let t = tensors[name]!
            members.append((name, .object([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(offset)), .number(String(offset + t.bytes.count))])),
            ])))
            offset += t.bytes.count
        }
        var json: [UInt8] = []
        HeaderJSON.object(members).serialized(into: &json)
        json.append(contentsOf: repeatElement(0x20, count: (8 - json.count % 8) % 8))
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        out.append(contentsOf: json)
        return out
    }

    /// The complete file as bytes.
    public func encoded() -> [UInt8] {
        precondition(tensors["__metadata__"] == nil, "'__metadata__' is reserved and cannot name a tensor")
        let order = writeOrder
        var out = encodedHeader(order: order)
        for name in order { out.append(contentsOf: tensors[name]!.bytes) }
        return out
    }

    /// Writes the file atomically (see `AtomicFile`), streaming tensors without concatenating them.
    public func write(to path: String) throws {
        precondition(tensors["__metadata__"] == nil, "'__metadata__' is reserved and cannot name a tensor")
        let order = writeOrder
        try AtomicFile.write(to: path) { sink in
            try sink.write(encodedHeader(order: order))
            for name in order { try sink.write(tensors[name]!.bytes) }
        }
    }

    // MARK: Decoding

    /// The reference reader refuses headers above 100 MB; so do we (a corrupt length field would
    /// otherwise make us allocate whatever garbage it says).
    public static let maxHeaderBytes = 100_000_000

    /// Reads and validates a safetensors file.
    public static func read(from path: String) throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SafeTensorsError(.io, file: path, problem: "file does not exist",
                                   fix: "check the path; a run writes its checkpoints under its run directory")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let inside = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            throw SafeTensorsError(.io, file: path, problem: "is a directory, not a checkpoint file",
                                   fix: inside.isEmpty ? "pass a .safetensors file (a run keeps them under replicate-<r>/parent/)"
                                       : "pass one of the checkpoints in it, e.g. \((path as NSString).appendingPathComponent(inside[0]))")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(.io, file: path, problem: "cannot read: \(error.localizedDescription)",
                                   fix: "check read permission and that the path is a regular file")
        }
        var file = try data.withUnsafeBytes { try decode($0, origin: path) }
        file.origin = path
        return file
    }

    /// Parses and validates an in-memory file. `origin` names it in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, origin: String? = nil) throws -> SafeTensorsFile {
        func fail(_ kind: SafeTensorsError.Kind, _ problem: String, _ fix: String) -> SafeTensorsError {
            SafeTensorsError(kind, file: origin, problem: problem, fix: fix)
        }
        let corrupt = "the file is truncated or corrupt; rewrite it (a rerun recomputes an unfinished task)"
        guard bytes.count >= 8 else {
            throw fail(.truncated, "file is \(bytes.count) bytes, shorter than the 8-byte header-length prefix", corrupt)
        }
        let n64 = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard n64 <= UInt64(maxHeaderBytes) else {
            throw fail(.headerTooLarge, "header length field says \(n64) bytes, more than the \(maxHeaderBytes)-byte limit",
                       "this is not a safetensors file, or its first 8 bytes are corrupt")
        }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw fail(.truncated, "header length field says \(n) bytes but only \(bytes.count - 8) bytes follow it", corrupt)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw fail(.invalidHeader, "header is not valid UTF-8", "this is not a safetensors file")
        }
        guard n > 0, headerBytes[0] == UInt8(ascii: "{") else {
            throw fail(.invalidHeader, "header does not start with '{'", "this is not a safetensors file")
        }
        let json: HeaderJSON
        do {
            json = try HeaderJSON.parse(headerBytes)
        } catch let e as HeaderJSON.ParseError {
            throw fail(.invalidJSON, "invalid JSON in header at byte \(8 + e.offset): \(e.message)",
                       "the header is corrupt; rewrite the file")
        }
        guard case let .object(members) = json else {
            throw fail(.invalidHeader, "header JSON is not an object", "this is not a safetensors file")
        }

        let bufferStart = 8 + n
        let bufferLength = bytes.count - bufferStart
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw fail(.invalidHeader, "__metadata__ is a \(value.typeName), not an object of strings",
                               "rewrite the file with string-valued metadata")
                }
                for (k, v) in pairs {
                    guard case let .string(s) = v else {
                        throw fail(.invalidHeader, "__metadata__[\"\(k)\"] is a \(v.typeName); safetensors metadata values must be strings",
                                   "rewrite the file with string-valued metadata (e.g. json.dumps nested values)")
                    }
                    metadata[k] = s
                }
                continue
            }
            func field(_ key: String) throws -> HeaderJSON {
                guard case let .object(fields) = value else {
                    throw fail(.invalidHeader, "entry '\(name)' is a \(value.typeName), not a tensor description object", corrupt)
                }
                guard let f = fields.first(where: { $0.key == key }) else {
                    throw fail(.invalidHeader, "tensor '\(name)' has no \"\(key)\" field", corrupt)
                }
                return f.value
            }
            guard case let .string(dtypeName) = try field("dtype") else {
                throw fail(.invalidHeader, "tensor '\(name)': \"dtype\" is not a string", corrupt)
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail(.unknownDType, "tensor '\(name)' has dtype \"\(dtypeName)\", which this reader does not support (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))",
                           "convert that tensor to F32/F64/I64 before saving (e.g. tensor.float())")
            }
            guard case let .array(dims) = try field("shape") else {
                throw fail(.invalidHeader, "tensor '\(name)': \"shape\" is not an array", corrupt)
            }
            var shape: [Int] = []
            for d in dims {
                guard let v = d.nonNegativeInt else {
                    throw fail(.invalidHeader, "tensor '\(name)': shape entries must be non-negative integers, got \(dims)", corrupt)
                }
                shape.append(v)
            }
            guard case let .array(offs) = try field("data_offsets"), offs.count == 2,
                  let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt else {
                throw fail(.invalidHeader, "tensor '\(name)': \"data_offsets\" must be [begin, end] with non-negative integers", corrupt)
            }
            guard begin <= end else {
                throw fail(.offsetsOutOfRange, "tensor '\(name)' has data_offsets [\(begin), \(end)] with begin after end", corrupt)
            }
            guard end <= bufferLength else {
                throw fail(.offsetsOutOfRange, "tensor '\(name)' has data_offsets [\(begin), \(end)] but the byte buffer is only \(bufferLength) bytes: the file is truncated or its header is corrupt", corrupt)
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail(.shapeMismatch, "tensor '\(name)': shape \(shape) overflows", corrupt) }
                count = p
            }
            let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, expected == end - begin else {
                throw fail(.shapeMismatch, "tensor '\(name)': shape \(shape) of \(dtype.rawValue) needs \(count) x \(dtype.byteSize) bytes but data_offsets [\(begin), \(end)] span \(end - begin)", corrupt)
            }
            entries.append((name, dtype, shape, begin, end))
        }

        // The tensors must tile the buffer: no gaps (hidden data), no overlaps (aliasing).
        let byStart = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var previous: String?
        for e in byStart {
            if e.begin != cursor {
                let relation = e.begin < cursor ? "overlaps" : "leaves a gap after"
                let prev = previous.map { "tensor '\($0)', which ends at byte \(cursor)" } ?? "the start of the buffer"
                throw fail(.offsetsNotContiguous, "tensor '\(e.name)' begins at byte \(e.begin) and \(relation) \(prev)", corrupt)
            }
            cursor = e.end
            previous = e.name
        }
        guard cursor == bufferLength else {
            throw fail(cursor < bufferLength ? .offsetsNotContiguous : .truncated,
                       "tensors cover \(cursor) bytes of the \(bufferLength)-byte buffer (\(bufferLength - cursor) unaccounted bytes at the end)", corrupt)
        }

        var file = SafeTensorsFile(metadata: metadata)
        file.origin = origin
        for e in entries {
            let slice = UnsafeRawBufferPointer(rebasing: bytes[(bufferStart + e.begin)..<(bufferStart + e.end)])
            file.tensors[e.name] = Tensor(dtype: e.dtype, shape: e.shape, bytes: Array(slice))
        }
        return file
    }

    public static func decode(_ bytes: [UInt8], origin: String? = nil) throws -> SafeTensorsFile {
        try bytes.withUnsafeBytes { try decode($0, origin: origin) }
    }
}

/// A safetensors read/lookup failure: which file, what is wrong, and how to fix it.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case io, truncated, headerTooLarge, invalidHeader, invalidJSON, unknownDType
        case offsetsOutOfRange, offsetsNotContiguous, shapeMismatch
        case missingTensor, wrongDType
    }
    public let kind: Kind
    public let file: String?
    public let problem: String
    public let fix: String

    public init(_ kind: Kind, file: String?, problem: String, fix: String) {
        self.kind = kind; self.file = file; self.problem = problem; self.fix = fix
    }
    public var description: String {
        "safetensors file \(file ?? "<in memory>"): \(problem). Fix: \(fix)."
    }
}

// MARK: - Little-endian element conversion

/// Element types with a fixed little-endian byte representation in the file.
protocol LittleEndianElement {
    static func load(_ raw: UnsafeRawBufferPointer, at index: Int) -> Self
}
extension Float: LittleEndianElement {
    static func load(_ raw: UnsafeRawBufferPointer, at i: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
    }
}
extension Double: LittleEndianElement {
    static func load(_ raw: UnsafeRawBufferPointer, at i: Int) -> Double {
        Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
    }
}
extension Int64: LittleEndianElement {
    static func load(_ raw: UnsafeRawBufferPointer, at i: Int) -> Int64 {
        Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
    }
}
extension Int32: LittleEndianElement {
    static func load(_ raw: UnsafeRawBufferPointer, at i: Int) -> Int32 {
        Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
    }
}

/// The elements' bytes in little-endian order (a plain copy on little-endian hosts).
private func littleEndianBytes<T>(_ values: UnsafeBufferPointer<T>) -> [UInt8] where T: BitwiseCopyable {
    var bytes = Array(UnsafeRawBufferPointer(values))
    #if _endian(big)
    let size = MemoryLayout<T>.size
    for start in stride(from: 0, to: bytes.count, by: size) { bytes[start..<(start + size)].reverse() }
    #endif
    return bytes
}
