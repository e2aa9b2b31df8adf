/// SHA-256 (FIPS 180-4, section 6.2): the stable hash behind run identities and content digests.
///
/// Swift's `Hasher` is seeded per process and must never name anything on disk; this digest is the
/// same on every machine and in every version. Streaming: `update` any number of times, then
/// `finalize`. Messages are byte strings (no bit-level lengths).
public struct SHA256: Sendable {
    /// Initial hash value H(0): first 32 bits of the fractional parts of the square roots of the
    /// first 8 primes (FIPS 180-4, 5.3.3).
    private var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    /// Bytes not yet forming a whole 64-byte block.
    private var pending: [UInt8] = []
    /// Message length in bytes so far.
    private var length: UInt64 = 0

    public init() { pending.reserveCapacity(64) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var i = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            i = take
            if pending.count == 64 {
                let block = pending
                block.withUnsafeBytes { compress(blocks: $0.baseAddress!, count: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let whole = (bytes.count - i) / 64
        if whole > 0 {
            compress(blocks: bytes.baseAddress! + i, count: whole)
            i += 64 * whole
        }
        if i < bytes.count { pending.append(contentsOf: bytes[i...]) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The UTF-8 bytes of `string`.
    public mutating func update(_ string: String) { update(Array(string.utf8)) }

    /// The 32-byte digest. Padding (5.1.1): a 1 bit, zeros up to 56 mod 64 bytes, then the message
    /// length in bits as a big-endian 64-bit integer.
    public func finalize() -> [UInt8] {
        var copy = self
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        let fill = (64 + 56 - (pending.count + 1) % 64) % 64
        tail += [UInt8](repeating: 0, count: fill)
        for k in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(k)))) }
        copy.update(tail)
        precondition(copy.pending.isEmpty, "SHA256: padding must complete the last block")
        return copy.h.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (24 - 8 * $0)) } }
    }

    /// Lower-case hexadecimal digest.
    public func hexDigest() -> String { Self.hex(finalize()) }

    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        var s = SHA256(); s.update(bytes); return s.finalize()
    }

    /// Lower-case hexadecimal digest of the UTF-8 bytes of `string`.
    public static func hexDigest(_ string: String) -> String {
        var s = SHA256(); s.update(string); return s.hexDigest()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// K: first 32 bits of the fractional parts of the cube roots of the first 64 primes (4.2.2).
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    /// Consecutive 64-byte blocks of the hash computation (6.2.2): message schedule W, then 64
    /// rounds each. State, W and K are read through pointers, W on the stack: no allocation or
    /// copy-on-write check per block (the data fingerprint of a run hashes hundreds of MB).
    private mutating func compress(blocks: UnsafeRawPointer, count: Int) {
        h.withUnsafeMutableBufferPointer { state in
            Self.k.withUnsafeBufferPointer { k in
                withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                    Self.compress(state: state.baseAddress!, blocks: blocks, count: count, w: w.baseAddress!, k: k.baseAddress!)
                }
            }
        }
    }

    private static func compress(state h: UnsafeMutablePointer<UInt32>, blocks: UnsafeRawPointer, count: Int,
                                 w: UnsafeMutablePointer<UInt32>, k: UnsafePointer<UInt32>) {
        for n in 0..<count {
            let block = blocks + 64 * n
            for t in 0..<16 {
                w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self))
            }
            for t in 16..<64 {
                let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for t in 0..<64 {
                let sigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ sigma1 &+ ch &+ k[t] &+ w[t]
                let sigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = sigma0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d
            h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
    }
}
