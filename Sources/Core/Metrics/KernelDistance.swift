/// Kernel distance between two NTK Grams (docs/metrics.md, `kernel_distance`, `kernel_velocity`).
extension NTKAnalysis {
    /// Kernel distance `S(K, K') = 1 - <K, K'>_F / (||K||_F ||K'||_F)` of two Grams with the same layout.
    public func distance(_ a: DistributedGram, _ b: DistributedGram) -> Double {
        precondition(a.layout == b.layout, "distance: Gram layouts differ (\(a.layout) vs \(b.layout))")
        let s = b.local.withUnsafeBufferPointer { bp in
            a.symmetricSums(communicator, count: 3) { _, _, x, o, s in
                let y = bp[o]
                s[0] += x * y; s[1] += x * x; s[2] += y * y
            }
        }
        return 1 - s[0] / (s[1].squareRoot() * s[2].squareRoot())
    }
}
