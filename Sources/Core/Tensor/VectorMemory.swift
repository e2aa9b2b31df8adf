// Unaligned vector loads and stores for the SIMD kernels (Winograd transforms, im2col).

/// A vector of `V.Scalar`s from `p` (any alignment).
@inline(__always) func load<V: SIMD>(_ p: UnsafePointer<V.Scalar>) -> V {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}
/// Stores the vector `v` at `p` (any alignment).
@inline(__always) func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<V.Scalar>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}
