/// On/off states of every ReLU unit of a network on a fixed probe set (docs/metrics.md, "ReLU-pattern
/// distance"), packed one bit per (example, unit).
///
/// A unit is one (channel, spatial position) of one ReLU layer; it is on when its pre-activation is
/// `> 0`. BatchNorm runs in inference mode, so each example's pattern does not depend on the batch.
///
/// Canonical bit order (example-major; independent of the evaluation batch size): with `U` units per
/// example and the ReLU layers `l = 0, 1, ...` in forward order (`Network.reluLayers`), each of shape
/// `(C_l, H_l, W_l)` starting at unit offset `o_l = sum_{k<l} C_k H_k W_k`,
///
///     bit(i, l, c, h, w) = i * U + o_l + (c * H_l + h) * W_l + w
///
/// and bit `k` is bit `k % 64` (least significant first) of word `k / 64` of `bits`. Bits past
/// `bitCount` in the last word are 0.
public struct ReLUPattern: Codable, Equatable, Sendable {
    /// `ceil(examples * unitsPerExample / 64)` words.
    public var bits: [UInt64]
    public var examples: Int
    /// `U`, units of all ReLU layers for one example.
    public var unitsPerExample: Int
    /// `C_l * H_l * W_l` of each ReLU layer, in forward order.
    public var layerUnits: [Int]
    /// `examples * unitsPerExample`.
    public var bitCount: Int { examples * unitsPerExample }

    /// Runs `network` (eval mode) over `probe` in batches of `batchSize`.
    public init(_ network: Network<Float>, probe: Dataset, batchSize: Int = metricBatchSize) {
        network.checkCompatible(probe, "ReLUPattern")
        let relus = network.reluLayers
        let units = relus.map { $0.inShape.count }
        let u = units.reduce(0, +)
        examples = probe.count; unitsPerExample = u; layerUnits = units
        var words = [UInt64](repeating: 0, count: (probe.count * u + 63) / 64)
        words.withUnsafeMutableBufferPointer { words in
            probe.forEachBatch(size: batchSize) { start, n, x, _ in
                network.forward(x, n: n, mode: .eval)
                var offset = 0
                for (relu, count) in zip(relus, units) {
                    guard let pre = relu.lastInput, relu.lastBatch == n else {
                        preconditionFailure("ReLUPattern: a ReLU layer did not run in the last forward")
                    }
                    Self.pack(pre, n: n, plane: relu.inShape.plane, channels: relu.inShape.c, start: start,
                              unitOffset: offset, unitsPerExample: u, into: words.baseAddress!)
                    offset += count
                }
            }
        }
        bits = words
    }

    /// Sets the bits of one ReLU layer's pre-activations `pre [C, n, H*W]` for examples `start..<start+n`.
    private static func pack(_ pre: UnsafePointer<Float>, n: Int, plane: Int, channels: Int, start: Int,
                             unitOffset: Int, unitsPerExample u: Int, into words: UnsafeMutablePointer<UInt64>) {
        for b in 0..<n {
            let base = (start + b) * u + unitOffset
            for c in 0..<channels {
                let src = pre + (c * n + b) * plane, k0 = base + c * plane
                for p in 0..<plane where src[p] > 0 {
                    let k = k0 + p
                    words[k >> 6] |= 1 << UInt64(k & 63)
                }
            }
        }
    }

    /// Whether `unit` (in `0..<unitsPerExample`, canonical order) is on for `example`.
    public func isOn(example: Int, unit: Int) -> Bool {
        precondition(example >= 0 && example < examples && unit >= 0 && unit < unitsPerExample)
        let k = example * unitsPerExample + unit
        return bits[k >> 6] >> UInt64(k & 63) & 1 == 1
    }

    /// Fraction of (example, unit) pairs whose state differs: `popcount(a XOR b) / bitCount`.
    /// Both patterns must come from one architecture on one probe set. Undefined — NaN, recorded as
    /// `nan` in the tables — for a network without ReLU units (`model: linear`).
    public static func distance(_ a: ReLUPattern, _ b: ReLUPattern) -> Double {
        precondition(a.examples == b.examples && a.layerUnits == b.layerUnits,
                     "ReLUPattern.distance: patterns of \(a.examples)x\(a.layerUnits) and "
                         + "\(b.examples)x\(b.layerUnits) (example, unit) pairs")
        guard a.bitCount > 0 else { return .nan }
        var differ = 0
        for i in 0..<a.bits.count { differ += (a.bits[i] ^ b.bits[i]).nonzeroBitCount }
        return Double(differ) / Double(a.bitCount)
    }
}
