import Foundation

/// What a random stream is used for. The raw value is part of every stream's address, so existing
/// values must never be renumbered (append new roles only).
public enum RandomRole: UInt32, CaseIterable, Codable, Sendable {
    /// Weight initialisation.
    case initialization = 1
    /// The example order of an epoch.
    case shuffle = 2
    /// Data augmentation (random crop offsets, flips) of one training step.
    case augment = 3
    /// Choice of the fixed probe set used by the metrics (NTK Gram, ReLU patterns, ...).
    case probe = 4
    /// Choice of a training subset.
    case subset = 5
    /// Synthetic data sets.
    case synthetic = 6
    /// Choice of the training batches used to re-estimate BatchNorm statistics.
    case batchNormRecompute = 7
    /// Starting vectors of Lanczos / power iteration on the Hessian.
    case hessian = 8
    /// The example order of an epoch of linearised training (its own stream, so it never depends
    /// on how much of the ordinary `.shuffle` stream other tasks consumed).
    case linearizedShuffle = 9
    /// Data augmentation of one step of linearised training.
    case linearizedAugment = 10
    /// Choice of the held-out training examples on which the linearised model's learning rate is chosen.
    case linearizedHeldOut = 11
    /// Choice of the test examples whose predictions trace function-space trajectories.
    case trajectories = 12
    /// Resampling of the bootstrap intervals of `statistics.json`.
    case bootstrap = 13
    /// Anything else (tests, ad-hoc tools).
    case other = 255
}

/// The address of a random stream: (experiment seed, replicate, role, child, epoch, step).
///
/// Every random decision in a run is drawn from the stream whose address describes it, e.g. the
/// augmentation of step 17 of epoch 3 of child 2 of replicate 0 is
/// `RandomKey(seed: s, replicate: 0, role: .augment, child: 2, epoch: 3, step: 17)`. Because streams
/// are computed from their address (see `RandomStream`), results do not depend on the number of
/// ranks, the scheduling order, or on how many values other streams consumed.
///
/// `replicate`, `child`, `epoch` and `step` must lie in `0...UInt32.max`.
public struct RandomKey: Hashable, Codable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var replicate: Int
    public var role: RandomRole
    public var child: Int
    public var epoch: Int
    public var step: Int

    public init(seed: UInt64, replicate: Int = 0, role: RandomRole, child: Int = 0,
                epoch: Int = 0, step: Int = 0) {
        self.seed = seed
        self.replicate = replicate
        self.role = role
        self.child = child
        self.epoch = epoch
        self.step = step
    }

    /// The same address at another (epoch, step).
    public func at(epoch: Int, step: Int = 0) -> RandomKey {
        var k = self
        k.epoch = epoch
        k.step = step
        return k
    }

    public var description: String {
        "RandomKey(seed: \(seed), replicate: \(replicate), role: \(role), child: \(child), "
            + "epoch: \(epoch), step: \(step))"
    }
}

/// A reproducible stream of random numbers addressed by a `RandomKey`, built on Philox4x32-10.
///
/// Layout (frozen: changing it changes every result):
///
///     philoxKey  = first two words of Philox4x32-10(counter: (replicate, role, child, 0x4E544B53),
///                                                   key: (seed & 0xffffffff, seed >> 32))
///     block b    = Philox4x32-10(counter: (b & 0xffffffff, b >> 32, epoch, step), key: philoxKey)
///     stream     = block 0 words 0,1,2,3, block 1 words 0,1,2,3, ...
///
/// (epoch, step) sit in the counter, so streams of one (seed, replicate, role, child) that differ
/// in epoch or step can never overlap; (replicate, role, child) are mixed into the 64-bit key by a
/// Philox bijection, so distinct triples collide only if their 64-bit keys do (probability about
/// 2^-64 per pair).
///
/// Derived values: `nextUInt64` = two words, first word in the high half; `uniformFloat` = top 24
/// bits of a word times 2^-24; `uniformDouble` = top 53 bits of `nextUInt64` times 2^-53;
/// `normal` = Box-Muller on two `uniformDouble`-style draws, the second value of each pair cached.
public struct RandomStream: RandomNumberGenerator, Sendable {
    public let address: RandomKey
    @usableFromInline let key0: UInt32
    @usableFromInline let key1: UInt32
    @usableFromInline let epochWord: UInt32
    @usableFromInline let stepWord: UInt32
    /// Index of the next block to generate.
    @usableFromInline var nextBlock: UInt64 = 0
    @usableFromInline var w0: UInt32 = 0, w1: UInt32 = 0, w2: UInt32 = 0, w3: UInt32 = 0
    /// Words of the current block already handed out (4 = exhausted).
    @usableFromInline var used = 4
    @usableFromInline var spareNormal: Double? = nil

    /// Domain tag separating key derivation from any stream's output blocks.
    static let keyDerivationTag: UInt32 = 0x4E54_4B53  // "NTKS"

    public init(_ address: RandomKey) {
        func word(_ v: Int, _ name: String) -> UInt32 {
            precondition(v >= 0 && v <= Int(UInt32.max),
                         "RandomKey.\(name) = \(v) must lie in 0...\(UInt32.max)")
            return UInt32(v)
        }
        self.address = address
        let derived = Philox4x32.block(
            counter: (word(address.replicate, "replicate"), address.role.rawValue,
                      word(address.child, "child"), Self.keyDerivationTag),
            key: (UInt32(truncatingIfNeeded: address.seed), UInt32(truncatingIfNeeded: address.seed >> 32)))
        key0 = derived.0
        key1 = derived.1
        epochWord = word(address.epoch, "epoch")
        stepWord = word(address.step, "step")
    }

    public init(seed: UInt64, replicate: Int = 0, role: RandomRole, child: Int = 0,
                epoch: Int = 0, step: Int = 0) {
        self.init(RandomKey(seed: seed, replicate: replicate, role: role, child: child,
                            epoch: epoch, step: step))
    }

    /// The Philox key this stream's blocks are generated with (exposed for tests of the layout).
    public var philoxKey: Philox4x32.Key { (key0, key1) }

    @inlinable
    mutating func refill() {
        let b = Philox4x32.block(
            counter: (UInt32(truncatingIfNeeded: nextBlock), UInt32(truncatingIfNeeded: nextBlock >> 32),
                      epochWord, stepWord),
            key: (key0, key1))
        (w0, w1, w2, w3) = b
        nextBlock &+= 1
        used = 0
    }

    @inlinable
    public mutating func nextUInt32() -> UInt32 {
        if used == 4 { refill() }
        defer { used += 1 }
        switch used {
        case 0: return w0
        case 1: return w1
        case 2: return w2
        default: return w3
        }
    }

    @inlinable
    public mutating func nextUInt64() -> UInt64 {
        let hi = UInt64(nextUInt32())
        return hi << 32 | UInt64(nextUInt32())
    }

    /// `RandomNumberGenerator` conformance. Prefer this type's own `shuffle`/`permutation`: the
    /// standard library's algorithms may change between Swift versions, ours are frozen.
    @inlinable
    public mutating func next() -> UInt64 { nextUInt64() }

    /// Uniform on `[0, 1)` on the grid `k * 2^-24` (every `Float` step of `[0.5, 1)`).
    @inlinable
    public mutating func uniformFloat() -> Float {
        Float(nextUInt32() >> 8) * 0x1p-24
    }

    /// Uniform on `[0, 1)` on the grid `k * 2^-53`.
    @inlinable
    public mutating func uniformDouble() -> Double {
        Double(nextUInt64() >> 11) * 0x1p-53
    }

    /// Standard normal N(0, 1) by the Box-Muller transform:
    /// `z0 = sqrt(-2 ln u1) cos(2 pi u2)`, `z1 = sqrt(-2 ln u1) sin(2 pi u2)`, `u1` in `(0, 1]`
    /// (so the log is finite), `u2` in `[0, 1)`. `z1` is returned by the next call.
    public mutating func normal() -> Double {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        let u1 = (Double(nextUInt64() >> 11) + 1) * 0x1p-53
        let u2 = uniformDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spareNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    /// `Float(normal())`.
    public mutating func normalFloat() -> Float { Float(normal()) }

    /// Fills `buffer` with `mean + std * N(0, 1)` values, in order.
    public mutating func fillNormal(_ buffer: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        for i in buffer.indices { buffer[i] = mean + std * Float(normal()) }
    }

    /// Fills `buffer` with values uniform on `[lower, upper)`.
    public mutating func fillUniform(_ buffer: UnsafeMutableBufferPointer<Float>, lower: Float = 0, upper: Float = 1) {
        let width = upper - lower
        for i in buffer.indices { buffer[i] = lower + width * uniformFloat() }
    }

    /// Uniform integer in `0..<n`, exactly unbiased (Lemire 2019, "Fast random integer generation in
    /// an interval": multiply-shift with rejection of the `2^32 mod n` low products that would
    /// over-represent some values). Uses one word per draw (plus rejections) when `n <= 2^32`, else
    /// the same scheme on 64-bit draws.
    @inlinable
    public mutating func uniformInt(below n: Int) -> Int {
        precondition(n > 0, "uniformInt(below: \(n)): the bound must be positive")
        if n <= Int(UInt32.max) + 1 {
            let bound = UInt64(n)
            var m = UInt64(nextUInt32()) &* bound
            if UInt32(truncatingIfNeeded: m) < UInt32(truncatingIfNeeded: bound) {
                // threshold = 2^32 mod n: low products below it belong to an over-full bucket.
                let threshold = UInt32(truncatingIfNeeded: (UInt64(1) << 32) % bound)
                while UInt32(truncatingIfNeeded: m) < threshold {
                    m = UInt64(nextUInt32()) &* bound
                }
            }
            return Int(m >> 32)
        } else {
            let bound = UInt64(n)
            var (hi, lo) = nextUInt64().multipliedFullWidth(by: bound)
            if lo < bound {
                let threshold = (0 &- bound) % bound  // 2^64 mod n
                while lo < threshold {
                    (hi, lo) = nextUInt64().multipliedFullWidth(by: bound)
                }
            }
            return Int(hi)
        }
    }

    /// Shuffles in place by Fisher-Yates (Durstenfeld): for `i = n-1 ... 1`, swap element `i` with
    /// element `uniformInt(below: i + 1)`. Every permutation has probability exactly `1/n!` given
    /// ideal words.
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ c: inout C) {
        let n = c.count
        guard n > 1 else { return }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = uniformInt(below: i + 1)
            c.swapAt(c.index(c.startIndex, offsetBy: i), c.index(c.startIndex, offsetBy: j))
        }
    }

    /// A shuffled copy of `array` (same algorithm as `shuffle`).
    public mutating func shuffled<T>(_ array: [T]) -> [T] {
        var a = array
        shuffle(&a)
        return a
    }

    /// A uniformly random permutation of `0..<n`: `shuffle` applied to `[0, 1, ..., n-1]`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        p.withUnsafeMutableBufferPointer { shuffle(&$0) }
        return p
    }

    /// Writes a random permutation of `0..<buffer.count` into `buffer` without allocating
    /// (identical to `permutation(buffer.count)`).
    public mutating func permutation(into buffer: UnsafeMutableBufferPointer<Int>) {
        for i in buffer.indices { buffer[i] = i }
        var b = buffer
        shuffle(&b)
    }

    /// `k` distinct elements of `0..<n` chosen uniformly, in selection order: the first `k` steps
    /// of a forward Fisher-Yates (`for i in 0..<k: swap(i, i + uniformInt(below: n - i))`).
    public mutating func sample(_ k: Int, from n: Int) -> [Int] {
        precondition(k >= 0 && k <= n, "sample(\(k), from: \(n)): need 0 <= k <= n")
        var p = Array(0..<n)
        for i in 0..<k {
            p.swapAt(i, i + uniformInt(below: n - i))
        }
        return Array(p[0..<k])
    }
}
