import CLinAlg
import Dispatch
import Foundation

/// Scalars the numerics run on: `Float` for training and measurement, `Double` for the
/// finite-difference checks in tests. Kernels are generic over `Real` inside `Core` (specialised by
/// the optimiser there); BLAS calls dispatch through the two static requirements below.
public protocol Real: BinaryFloatingPoint, SIMDScalar, Codable, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// Row-major `C = alpha * op(A) * op(B) + beta * C`, `op(A)` is `m x k`, `op(B)` is `k x n`.
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// `gemm` on the calling thread only, for callers that already run one GEMM per worker.
    static func gemmSingleThreaded(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                                   a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                                   beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func sqrt(_ x: Self) -> Self
}

@inline(__always) private func trans(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: Real {
    @inlinable public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    @inlinable public static func log(_ x: Float) -> Float { Foundation.log(x) }
    @inlinable public static func sqrt(_ x: Float) -> Float { x.squareRoot() }
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        splitGEMM(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc) {
            cblas_sgemm(CblasRowMajor, trans(transA), trans(transB), Int32($0), Int32($1), Int32(k),
                        alpha, $2, Int32(lda), $3, Int32(ldb), beta, $4, Int32(ldc))
        }
    }
    public static func gemmSingleThreaded(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, trans(transA), trans(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double: Real {
    @inlinable public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inlinable public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inlinable public static func sqrt(_ x: Double) -> Double { x.squareRoot() }
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        splitGEMM(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc) {
            cblas_dgemm(CblasRowMajor, trans(transA), trans(transB), Int32($0), Int32($1), Int32(k),
                        alpha, $2, Int32(lda), $3, Int32(ldb), beta, $4, Int32(ldc))
        }
    }
    public static func gemmSingleThreaded(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                                          a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                                          beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, trans(transA), trans(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// Runs a row-major GEMM on `Workers.count` threads by splitting C into blocks of whole rows or
/// whole columns, each computed by a single-threaded BLAS call.
///
/// Why not OpenBLAS's own threads: its threaded GEMM changes the summation order for some shapes
/// (measured: the first convolution's weight gradient, `16 x 27 x 8192`, differed in 57 of 432
/// entries between 1 and 2 threads), so results would depend on threads per rank and hence on the
/// rank count. Splitting C into blocks whose boundaries fall on multiples of the micro-kernels'
/// unroll factors (`splitAlignment`) keeps every element on the same kernel variant; measured
/// bit-identical with OpenBLAS 0.3.21's Prescott and SkylakeX kernels, but not with Haswell's, so
/// it is a speed device, not a determinism guarantee (see `Workers`). `call(m', n', a', b', c')`
/// runs one block.
@inline(__always)
func splitGEMM<T>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<T>, lda: Int,
                  b: UnsafePointer<T>, ldb: Int, c: UnsafeMutablePointer<T>, ldc: Int,
                  _ call: (Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>) -> Void) {
    let align = splitAlignment, workers = Workers.count
    guard workers > 1, Workers.splitsGEMM, m * n * k >= 1 << 20 else { call(m, n, a, b, c); return }
    /// Boundaries of `parts` blocks of `0..<len`, interior ones rounded to multiples of `align`.
    func bound(_ t: Int, _ parts: Int, _ len: Int) -> Int { t == parts ? len : (t * len / parts) / align * align }
    let columnParts = min(workers, n / align), rowParts = min(workers, m / align)
    if columnParts > 1 && (n >= m || rowParts < 2) {
        DispatchQueue.concurrentPerform(iterations: columnParts) { t in
            let j0 = bound(t, columnParts, n), j1 = bound(t + 1, columnParts, n)
            call(m, j1 - j0, a, b + (transB ? j0 * ldb : j0), c + j0)
        }
    } else if rowParts > 1 {
        DispatchQueue.concurrentPerform(iterations: rowParts) { t in
            let i0 = bound(t, rowParts, m), i1 = bound(t + 1, rowParts, m)
            call(i1 - i0, n, a + (transA ? i0 : i0 * lda), b, c + i0 * ldc)
        }
    } else {
        call(m, n, a, b, c)
    }
}

/// Block boundaries of a split GEMM are multiples of this (covers OpenBLAS's x86 unroll factors).
let splitAlignment = 64
