import Dispatch

/// Threads for the non-GEMM loops of the layers (im2col, BatchNorm, ReLU, pooling). They run
/// between OpenBLAS calls, so they use the same number of threads as OpenBLAS
/// (`BLASThreads.configure` and `BLASThreads.with` keep the two in step).
///
/// Work is split over *independent outputs* (channels, planes, element ranges) and never inside a
/// reduction, so these loops give bit-identical results for every thread count. GEMMs are split
/// too (`splitGEMM`), which is bit-identical for the kernels tested here but not guaranteed by
/// OpenBLAS: reproducibility across rank counts therefore comes from a fixed thread count per
/// rank (the experiment's `threads`), not from the thread count being irrelevant.
public enum Workers {
    /// Compute threads of the calling scope: 1 inside `serially`, else the innermost
    /// `with(count:)`, else the process's setting (`BLASThreads.configure`, made once by the
    /// executable at the start of a command). Tests and tools that compare thread counts use
    /// `with(count:)` (or `BLASThreads.with(threads:)`), which cannot outlive its `body`.
    public static var count: Int { inSerialScope ? 1 : (scope.count ?? processCount) }
    /// Whether GEMMs are split over the workers (off: every GEMM runs on one thread); on unless a
    /// `with(splitsGEMM: false)` scope turns it off.
    public static var splitsGEMM: Bool { scope.splitsGEMM }

    /// What `with` binds: the worker count (nil: the process's) and GEMM splitting.
    private struct Scope: Sendable {
        var count: Int?
        var splitsGEMM = true
    }
    /// A task-local bound synchronously lives in thread-local storage, so it covers exactly the
    /// calls made by `body` on the calling thread; `perform` hands it on to the worker threads.
    @TaskLocal private static var scope = Scope()
    /// The executable's thread count, set only by `configureProcess` (from `BLASThreads.configure`).
    private static var processCount = 1
    /// True inside `serially` on this thread (not handed on to worker threads).
    @TaskLocal private static var inSerialScope = false

    /// Sets the process's worker count; `BLASThreads.configure` is the one caller.
    static func configureProcess(count: Int) {
        precondition(count >= 1, "Workers: \(count) threads")
        processCount = count
    }

    /// Runs `body` with `count` workers (nil: unchanged) and GEMM splitting on or off (nil:
    /// unchanged) on the calling thread and the workers it starts; the previous values return with
    /// `body`.
    public static func with<R>(count: Int? = nil, splitsGEMM: Bool? = nil, _ body: () throws -> R) rethrows -> R {
        var s = scope
        if let count {
            precondition(count >= 1, "Workers.with: \(count) threads")
            s.count = count
        }
        if let splitsGEMM { s.splitsGEMM = splitsGEMM }
        return try $scope.withValue(s, operation: body)
    }

    /// Runs `body` with every split and GEMM on the calling thread single-threaded, whatever `count`
    /// is. For callers that parallelise over independent items themselves (one network per thread,
    /// e.g. the NTK Jacobian rows): each item then runs the same single-threaded code for any thread
    /// count, which makes its result independent of the thread count by construction.
    public static func serially<R>(_ body: () throws -> R) rethrows -> R {
        try $inSerialScope.withValue(true, operation: body)
    }

    /// `DispatchQueue.concurrentPerform` whose iterations see the caller's `with` scope.
    @inline(__always)
    private static func perform(_ iterations: Int, _ body: (Int) -> Void) {
        let s = scope
        DispatchQueue.concurrentPerform(iterations: iterations) { t in $scope.withValue(s) { body(t) } }
    }

    /// Calls `body` on disjoint consecutive ranges covering `0..<n`, concurrently when the total
    /// work `n * cost` is large enough to repay the hand-off (~2^15 element operations).
    @inline(__always)
    public static func split(_ n: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        let w = Swift.min(count, n)
        if w <= 1 || n * cost < 1 << 15 {
            body(0..<n)
            return
        }
        perform(w) { t in body((t * n / w)..<((t + 1) * n / w)) }
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
        perform(w) { t in body(t, (t * n / w)..<((t + 1) * n / w)) }
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

/// A pointer handed to the iterations of one `DispatchQueue.concurrentPerform` call, whose closure
/// must be `@Sendable`. `@unchecked Sendable` is safe where it is used: the pointee outlives the
/// call (`concurrentPerform` returns only after every iteration), and the iterations read it or
/// write disjoint parts of it (each says which), so no two threads touch the same element at once.
struct SharedPointer<Pointer>: @unchecked Sendable {
    let pointer: Pointer
    init(_ pointer: Pointer) { self.pointer = pointer }
}
