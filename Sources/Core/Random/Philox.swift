/// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw, "Parallel random
/// numbers: as easy as 1, 2, 3" (SC 2011), bit-compatible with the Random123 reference
/// implementation (`philox4x32_R(10, ctr, key)`).
///
/// A counter-based generator is a keyed bijection `block = f_key(counter)`: any block can be computed
/// directly from its (key, counter) address, so a value never depends on which values were drawn
/// before it, on which rank drew them, or in which order. `RandomStream` builds reproducible streams
/// on top of it.
///
/// One round maps `(x0, x1, x2, x3)` with key `(k0, k1)` to
///
///     (hi(M1*x2) ^ x1 ^ k0,  lo(M1*x2),  hi(M0*x0) ^ x3 ^ k1,  lo(M0*x0))
///
/// with 64-bit products split into 32-bit halves; between rounds the key is bumped by the Weyl
/// constants `(W0, W1)` (golden ratio and sqrt(3) - 1 in 32-bit fixed point).
public enum Philox4x32 {
    public typealias Counter = (UInt32, UInt32, UInt32, UInt32)
    public typealias Key = (UInt32, UInt32)

    /// Multipliers and Weyl increments from Random123 `philox.h`.
    @usableFromInline static let m0: UInt32 = 0xD251_1F53
    @usableFromInline static let m1: UInt32 = 0xCD9E_8D57
    @usableFromInline static let w0: UInt32 = 0x9E37_79B9
    @usableFromInline static let w1: UInt32 = 0xBB67_AE85

    /// The number of rounds Random123 recommends (and its known-answer tests use) for 4x32.
    public static let rounds = 10

    /// One 128-bit output block for `counter` under `key`.
    @inlinable
    public static func block(counter: Counter, key: Key) -> Counter {
        var x = counter
        var k = key
        for r in 0..<rounds {
            if r > 0 {
                k.0 &+= w0
                k.1 &+= w1
            }
            let p0 = UInt64(m0) &* UInt64(x.0)
            let p1 = UInt64(m1) &* UInt64(x.2)
            x = (UInt32(truncatingIfNeeded: p1 >> 32) ^ x.1 ^ k.0,
                 UInt32(truncatingIfNeeded: p1),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ x.3 ^ k.1,
                 UInt32(truncatingIfNeeded: p0))
        }
        return x
    }
}
