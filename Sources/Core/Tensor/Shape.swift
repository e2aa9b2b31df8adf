import Foundation

/// Per-example shape of an activation, `(c, h, w)`; a flat feature vector of length `F` is `(F, 1, 1)`.
///
/// Activations inside a network are stored channel-major across the batch, `[C, N, H, W]` ("CNHW"):
/// a convolution is then one GEMM `[Cout, K] x [K, N*H*W]` whose output is already in place, and
/// BatchNorm's per-channel reductions run over contiguous memory. Networks convert from and to the
/// conventional `NCHW` input and `[N, classes]` logits at their boundary.
public struct Shape: Hashable, Sendable, CustomStringConvertible, Codable {
    public var c: Int
    public var h: Int
    public var w: Int
    public init(_ c: Int, _ h: Int = 1, _ w: Int = 1) { self.c = c; self.h = h; self.w = w }
    /// Elements per example.
    public var count: Int { c * h * w }
    /// Elements per channel per example.
    public var plane: Int { h * w }
    public var description: String { "\(c)x\(h)x\(w)" }
}

/// A heap buffer with a stable address: activations, parameters and workspaces live in these so hot
/// loops work on raw pointers without copy-on-write or bounds checks.
public final class Buffer<T: Real> {
    public let pointer: UnsafeMutablePointer<T>
    public let count: Int
    public init(count: Int, value: T = 0) {
        self.count = count
        // calloc: the kernel hands out zero pages lazily, so a buffer that is never touched (the
        // gradient and tangent activations of a network used only for evaluation) costs no memory
        // and no page faults; all-zero bytes are +0 for Float and Double.
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        guard let raw = calloc(1, bytes) else { fatalError("Buffer: cannot allocate \(bytes) bytes") }
        pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
        if value != 0 { pointer.update(repeating: value, count: max(count, 1)) }
    }
    public convenience init(_ values: [T]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }
    deinit { free(pointer) }
    public var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public var buffer: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public func zero() { pointer.update(repeating: 0, count: count) }
    public func copy(from values: [T]) {
        precondition(values.count == count, "Buffer.copy: \(values.count) values for \(count) slots")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }
    public subscript(i: Int) -> T {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}
