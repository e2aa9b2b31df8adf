/// The standard CIFAR training augmentation: random crop with zero padding followed by a random
/// horizontal flip, i.e. torchvision's
///
///     Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])
///
/// Semantics replicated from torchvision:
/// - The image is padded by `padding` pixels on every side with raw pixel value 0 *before*
///   normalisation, so on normalised data the pad value of channel `c` is `-mean[c] / std[c]`
///   (`Normalization.zeroPixelValues`); on un-normalised data it is 0.
/// - `RandomCrop` draws the top `i` then the left `j` of the crop uniformly from `0...2*padding`
///   (padded coordinates), then `RandomHorizontalFlip` flips when `uniform < 0.5`.
/// So with `p = padding`, output pixel `(c, y, x)` is
///
///     src[c, y + i - p, x' + j - p],  x' = flip ? W - 1 - x : x,
///
/// or the pad value where that source position lies outside the image.
///
/// A batch's draws come from one stream, in batch order: `(i, j, flip)` for example 0, then 1, ...;
/// the stream of step `s` of epoch `e` is `RandomStream(seed, replicate, .augment, child, e, s)`.
public struct CIFARAugmentation: Sendable {
    public let padding: Int
    /// `[C]`, the normalised value of a raw 0 pixel per channel.
    public let padValues: [Float]

    /// One example's random choices: crop top/left in padded coordinates (`0...2*padding`) and flip.
    public struct Choice: Equatable, Sendable {
        public var offsetY: Int
        public var offsetX: Int
        public var flip: Bool
        public init(offsetY: Int, offsetX: Int, flip: Bool) {
            self.offsetY = offsetY
            self.offsetX = offsetX
            self.flip = flip
        }
    }

    public init(padding: Int = 4, padValues: [Float]) {
        precondition(padding >= 0, "CIFARAugmentation: padding must be >= 0")
        self.padding = padding
        self.padValues = padValues
    }

    /// Augmentation for `dataset`, padding with its normalised zero pixel (0 if not normalised).
    public init(padding: Int = 4, for dataset: Dataset) {
        self.init(padding: padding,
                  padValues: dataset.normalization?.zeroPixelValues
                      ?? [Float](repeating: 0, count: dataset.channels))
    }

    /// The stream driving the augmentation of one training step.
    public static func stream(seed: UInt64, replicate: Int = 0, child: Int = 0, epoch: Int, step: Int) -> RandomStream {
        RandomStream(seed: seed, replicate: replicate, role: .augment, child: child, epoch: epoch, step: step)
    }

    /// Draws one example's choice: `i`, then `j`, each `uniformInt(below: 2p + 1)`, then
    /// `flip = uniformFloat() < 0.5`.
    public func draw(_ stream: inout RandomStream) -> Choice {
        let i = stream.uniformInt(below: 2 * padding + 1)
        let j = stream.uniformInt(below: 2 * padding + 1)
        let flip = stream.uniformFloat() < 0.5
        return Choice(offsetY: i, offsetX: j, flip: flip)
    }

    /// The per-example primitive: writes the crop at (`offsetY`, `offsetX`) of the padded image,
    /// flipped horizontally if `flip`, of `source` (`[C, H, W]`) into `destination` (`[C, H, W]`).
    /// The buffers must not overlap.
    public func cropFlip(source: UnsafePointer<Float>, destination: UnsafeMutablePointer<Float>,
                         channels: Int, height: Int, width: Int, offsetY: Int, offsetX: Int, flip: Bool) {
        let p = padding
        precondition(offsetY >= 0 && offsetY <= 2 * p && offsetX >= 0 && offsetX <= 2 * p,
                     "cropFlip: offsets (\(offsetY), \(offsetX)) outside 0...\(2 * p)")
        precondition(padValues.count == channels, "cropFlip: \(padValues.count) pad values for \(channels) channels")
        let (h, w) = (height, width)
        let dx = offsetX - p
        // Output columns whose source column lies inside the image: `lo..<hi`.
        // Without flip sx = x + dx; with flip sx = w - 1 - x + dx.
        let lo = flip ? max(0, dx) : max(0, -dx)
        let hi = flip ? min(w, w + dx) : min(w, w - dx)
        for c in 0..<channels {
            let pad = padValues[c]
            let src = source + c * h * w
            let dst = destination + c * h * w
            for y in 0..<h {
                let row = dst + y * w
                let sy = y + offsetY - p
                guard sy >= 0 && sy < h, lo < hi else {
                    row.update(repeating: pad, count: w)
                    continue
                }
                let srow = src + sy * w
                row.update(repeating: pad, count: lo)
                if flip {
                    let base = srow + (w - 1 + dx)
                    for x in lo..<hi { row[x] = base[-x] }
                } else {
                    row.advanced(by: lo).update(from: srow + (lo + dx), count: hi - lo)
                }
                (row + hi).update(repeating: pad, count: w - hi)
            }
        }
    }

    /// Array form of `cropFlip` for one `[C, H, W]` image (tests, tools).
    public func cropFlip(_ image: [Float], channels: Int, height: Int, width: Int,
                         offsetY: Int, offsetX: Int, flip: Bool) -> [Float] {
        precondition(image.count == channels * height * width, "cropFlip: image size mismatch")
        var out = [Float](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                cropFlip(source: s.baseAddress!, destination: d.baseAddress!, channels: channels,
                         height: height, width: width, offsetY: offsetY, offsetX: offsetX, flip: flip)
            }
        }
        return out
    }

    /// Augments `count` examples of `source` (`[count, C, H, W]`) into `destination` (same shape,
    /// preallocated, not overlapping), drawing each example's choice from `stream` in order.
    public func apply(source: UnsafeBufferPointer<Float>, destination: UnsafeMutableBufferPointer<Float>,
                      count: Int, channels: Int, height: Int, width: Int, stream: inout RandomStream) {
        let e = channels * height * width
        precondition(source.count >= count * e && destination.count >= count * e, "apply: buffers too small")
        for k in 0..<count {
            let choice = draw(&stream)
            cropFlip(source: source.baseAddress! + k * e, destination: destination.baseAddress! + k * e,
                     channels: channels, height: height, width: width,
                     offsetY: choice.offsetY, offsetX: choice.offsetX, flip: choice.flip)
        }
    }

    /// Augments the valid examples of `batch` into the preallocated `output` (labels copied).
    public func apply(to batch: Batch, into output: inout Batch, stream: inout RandomStream) {
        precondition(output.capacity >= batch.count && output.exampleSize == batch.exampleSize,
                     "apply: output batch too small or of another shape")
        batch.images.withUnsafeBufferPointer { s in
            output.images.withUnsafeMutableBufferPointer { d in
                apply(source: s, destination: d, count: batch.count, channels: batch.channels,
                      height: batch.height, width: batch.width, stream: &stream)
            }
        }
        for k in 0..<batch.count { output.labels[k] = batch.labels[k] }
        output.count = batch.count
    }

    /// Gathers the examples at `indices` of `dataset` straight into `batch`, augmented: the same
    /// result as `gather` followed by `apply`, without the intermediate copy.
    public func gatherAugmented(from dataset: Dataset, indices: ArraySlice<Int>, into batch: inout Batch,
                                stream: inout RandomStream) {
        precondition(indices.count <= batch.capacity && batch.exampleSize == dataset.exampleSize,
                     "gatherAugmented: batch too small or of another shape")
        let e = dataset.exampleSize
        dataset.images.withUnsafeBufferPointer { s in
            batch.images.withUnsafeMutableBufferPointer { d in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < dataset.count, "gatherAugmented: index \(i) outside 0..<\(dataset.count)")
                    let choice = draw(&stream)
                    cropFlip(source: s.baseAddress! + i * e, destination: d.baseAddress! + k * e,
                             channels: dataset.channels, height: dataset.height, width: dataset.width,
                             offsetY: choice.offsetY, offsetX: choice.offsetX, flip: choice.flip)
                }
            }
        }
        for (k, i) in indices.enumerated() { batch.labels[k] = dataset.labels[i] }
        batch.count = indices.count
    }
}
