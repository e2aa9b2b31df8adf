import Dispatch

/// Threads for the non-GEMM loops of the layers (im2col, BatchNorm, ReLU, pooling). They run
/// between OpenBLAS calls, so they use the same number of threads as OpenBLAS
/// (`BLASThreads.set` keeps the two in step).
///
/// Work is split over *independent outputs* (channels, planes, element ranges) and never inside a
/// reduction, so these loops give bit-identical results for every thread count. GEMMs are split
/// too (`splitGEMM`), which is bit-identical for the kernels tested here but not guaranteed by
/// OpenBLAS: reproducibility across rank counts therefore comes from a fixed thread count per
/// rank (the experiment's `threads`), not from the thread count being irrelevant.
public enum Workers {
    public internal(set) static var count: Int {
        get { inSerialScope ? 1 : configuredCount }
        set { configuredCount = newValue }
    }
    private static var configuredCount = 1
    /// True inside `serially` on this thread (a task-local bound synchronously lives in thread-local
    /// storage, so it covers exactly the calls made by `body` on the calling thread).
    @TaskLocal private static var inSerialScope = false

    /// Runs `body` with every split and GEMM on the calling thread single-threaded, whatever `count`
    /// is. For callers that parallelise over independent items themselves (one network per thread,
    /// e.g. the NTK Jacobian rows): each item then runs the same single-threaded code for any thread
    /// count, which makes its result independent of the thread count by construction.
    public static func serially<R>(_ body: () throws -> R) rethrows -> R {
        try $inSerialScope.withValue(true, operation: body)
    }
    /// Whether GEMMs are split over the workers (off: every GEMM runs on one thread).
    public static var splitsGEMM = true

    /// Calls `body` on disjoint consecutive ranges covering `0..<n`, concurrently when the total
    /// work `n * cost` is large enough to repay the hand-off (~2^15 element operations).
    @inline(__always)
    public static func split(_ n: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let w = Swift.min(count, n)
        if w <= 1 || n * cost < 1 << 15 {
            body(0..<n)
            return
        }
        DispatchQueue.concurrentPerform(iterations: w) { t in body((t * n / w)..<((t + 1) * n / w)) }
    }

    /// Like `split`, but also passes the index `t` (`0..<count`) of the worker that runs the range,
    /// so each worker can use its own scratch slot. Ranges are the same as `split`'s.
    @inline(__always)
    public static func splitIndexed(_ n: Int, cost: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let w = Swift.min(count, n)
        if w <= 1 || n * cost < 1 << 15 {
            body(0, 0..<n)
            return
        }
        DispatchQueue.concurrentPerform(iterations: w) { t in body(t, (t * n / w)..<((t + 1) * n / w)) }
    }

    /// `Workers.split(n, cost:)` when `parallel`, else `body(0..<n)` on the calling thread (for loops
    /// that already run inside one worker).
    @inline(__always)
    static func split(_ n: Int, cost: Int = 1, parallel: Bool, _ body: (Range<Int>) -> Void) {
        if parallel { split(n, cost: cost, body) } else { body(0..<n) }
    }

    /// Sets `count` elements at `p` to zero, split over the workers.
    public static func zero<T: Real>(_ p: UnsafeMutablePointer<T>, count: Int) {
        split(count, cost: 1) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
    }
}
