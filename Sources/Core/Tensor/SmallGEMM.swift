/// Register-blocked GEMM kernels for the small, row-major products of the Winograd convolution
/// (`Conv2D.componentProducts`): 16 products per chunk whose inner dimension is a channel count
/// (16-64 in these networks) or, for the weight gradient, a tile count. For these shapes OpenBLAS
/// spends about as long packing its operands and zeroing `C` for `beta = 0` (`sgemm_beta`,
/// `sgemm_*copy`) as in its kernel (measured with `perf`, ResNet-20 training, 1 thread, batch 16);
/// these kernels read the operands where they lie and write `C` once.
///
/// Every element of `C` is computed by the same sequence of operations wherever it lies in `C` and
/// whatever `m`, `n` and the blocking are (the column tails run the vector code on a zero-padded
/// copy; `nt` runs `nn`'s code on a transposed copy of `B`), so a tile's result does not depend on
/// which chunk or position it is computed in.
enum SmallGEMM {
    /// Lanes of the vectors (8 Floats = one AVX2 register; Doubles use two).
    static let lanes = 8

    @inline(__always) static func load<T: Real>(_ p: UnsafePointer<T>) -> SIMD8<T> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
    }
    @inline(__always) static func store<T: Real>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
    }
    /// `c = alpha * acc` (`+ c` with `accumulate`).
    @inline(__always) static func put<T: Real>(_ acc: SIMD8<T>, _ c: UnsafeMutablePointer<T>, alpha: T, accumulate: Bool) {
        var v = alpha == 1 ? acc : acc * alpha
        if accumulate { v += load(c) }
        store(v, c)
    }

    /// `C[m x n] = alpha A[m x k] B[k x n]` (`+ C` with `accumulate`), all row-major and dense
    /// (`lda = k`, `ldb = ldc = n`). Each `C[i][j]` is `fma` over `p = 0..<k` in order from zero,
    /// then scaled and added.
    static func nn<T: Real>(m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, b: UnsafePointer<T>,
                            accumulate: Bool, c: UnsafeMutablePointer<T>) {
        var j = 0
        while j + 16 <= n {
            nnColumns(m: m, k: k, alpha: alpha, a: a, b: b + j, ldb: n, accumulate: accumulate, c: c + j, ldc: n, wide: true)
            j += 16
        }
        if j + 8 <= n {
            nnColumns(m: m, k: k, alpha: alpha, a: a, b: b + j, ldb: n, accumulate: accumulate, c: c + j, ldc: n, wide: false)
            j += 8
        }
        guard j < n else { return }
        // The last n - j < 8 columns: B's and C's columns copied into zero-padded 8-column panels.
        let rest = n - j
        withUnsafeTemporaryAllocation(of: T.self, capacity: 8 * (k + m)) { scratch in
            let pb = scratch.baseAddress!, pc = pb + 8 * k
            for p in 0..<k {
                for q in 0..<8 { pb[p * 8 + q] = q < rest ? b[p * n + j + q] : 0 }
            }
            if accumulate {
                for i in 0..<m { for q in 0..<8 { pc[i * 8 + q] = q < rest ? c[i * n + j + q] : 0 } }
            }
            nnColumns(m: m, k: k, alpha: alpha, a: a, b: pb, ldb: 8, accumulate: accumulate, c: pc, ldc: 8, wide: false)
            for i in 0..<m { for q in 0..<rest { c[i * n + j + q] = pc[i * 8 + q] } }
        }
    }

    /// One panel of 16 (`wide`) or 8 columns of `C`, all rows, in blocks of 4 rows then single rows.
    @inline(__always)
    private static func nnColumns<T: Real>(m: Int, k: Int, alpha: T, a: UnsafePointer<T>, b: UnsafePointer<T>, ldb: Int,
                                           accumulate: Bool, c: UnsafeMutablePointer<T>, ldc: Int, wide: Bool) {
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
            var c00 = SIMD8<T>(), c10 = SIMD8<T>(), c20 = SIMD8<T>(), c30 = SIMD8<T>()
            if wide {
                var c01 = SIMD8<T>(), c11 = SIMD8<T>(), c21 = SIMD8<T>(), c31 = SIMD8<T>()
                for p in 0..<k {
                    let bp = b + p * ldb
                    let b0 = load(bp), b1 = load(bp + 8)
                    let x0 = SIMD8<T>(repeating: a0[p]), x1 = SIMD8<T>(repeating: a1[p])
                    let x2 = SIMD8<T>(repeating: a2[p]), x3 = SIMD8<T>(repeating: a3[p])
                    c00.addProduct(x0, b0); c01.addProduct(x0, b1)
                    c10.addProduct(x1, b0); c11.addProduct(x1, b1)
                    c20.addProduct(x2, b0); c21.addProduct(x2, b1)
                    c30.addProduct(x3, b0); c31.addProduct(x3, b1)
                }
                let r = c + i * ldc
                put(c01, r + 8, alpha: alpha, accumulate: accumulate)
                put(c11, r + ldc + 8, alpha: alpha, accumulate: accumulate)
                put(c21, r + 2 * ldc + 8, alpha: alpha, accumulate: accumulate)
                put(c31, r + 3 * ldc + 8, alpha: alpha, accumulate: accumulate)
            } else {
                for p in 0..<k {
                    let b0 = load(b + p * ldb)
                    c00.addProduct(SIMD8<T>(repeating: a0[p]), b0); c10.addProduct(SIMD8<T>(repeating: a1[p]), b0)
                    c20.addProduct(SIMD8<T>(repeating: a2[p]), b0); c30.addProduct(SIMD8<T>(repeating: a3[p]), b0)
                }
            }
            let r = c + i * ldc
            put(c00, r, alpha: alpha, accumulate: accumulate)
            put(c10, r + ldc, alpha: alpha, accumulate: accumulate)
            put(c20, r + 2 * ldc, alpha: alpha, accumulate: accumulate)
            put(c30, r + 3 * ldc, alpha: alpha, accumulate: accumulate)
            i += 4
        }
        while i < m {
            let a0 = a + i * k
            var c00 = SIMD8<T>(), c01 = SIMD8<T>()
            for p in 0..<k {
                let x0 = SIMD8<T>(repeating: a0[p]), bp = b + p * ldb
                c00.addProduct(x0, load(bp))
                if wide { c01.addProduct(x0, load(bp + 8)) }
            }
            put(c00, c + i * ldc, alpha: alpha, accumulate: accumulate)
            if wide { put(c01, c + i * ldc + 8, alpha: alpha, accumulate: accumulate) }
            i += 1
        }
    }

    /// `C[m x n] = alpha A[m x k] B[n x k]^T` (`+ C` with `accumulate`), row-major and dense
    /// (`lda = ldb = k`, `ldc = n`; the weight gradient, `k` the tiles of a chunk). Panels of 16
    /// rows of `B` (the last one zero-padded to 8 or 16) are copied transposed into a `k x 16` (or
    /// `k x 8`) panel by 8 x 8 register transposes and multiplied by `nn`'s panel code, so each
    /// `C[i][j]` is, as in `nn`, `fma` over `p = 0..<k` in order from zero, then scaled and added.
    /// The copy costs `n k` moves against `m n k` multiply-adds; the dot-product form it replaced
    /// spent a horizontal sum on every element of `C` (43-62 GFLOP/s on ResNet-20's shapes against
    /// 61-73 now, one core).
    static func nt<T: Real>(m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, b: UnsafePointer<T>,
                            accumulate: Bool, c: UnsafeMutablePointer<T>) {
        withUnsafeTemporaryAllocation(of: T.self, capacity: 16 * (k + m)) { scratch in
            let panel = scratch.baseAddress!, padded = panel + 16 * k
            var j = 0
            while j < n {
                let width = min(16, n - j), columns = width > 8 ? 16 : 8
                packTransposed(b + j * k, rows: width, k: k, columns: columns, into: panel)
                if width == 16 {
                    nnColumns(m: m, k: k, alpha: alpha, a: a, b: panel, ldb: 16, accumulate: accumulate, c: c + j, ldc: n, wide: true)
                } else {
                    // A narrower last panel: through a zero-padded copy of C's columns.
                    for i in 0..<m {
                        for q in 0..<columns { padded[i * columns + q] = accumulate && q < width ? c[i * n + j + q] : 0 }
                    }
                    if columns == 16 {
                        nnColumns(m: m, k: k, alpha: alpha, a: a, b: panel, ldb: 16, accumulate: accumulate, c: padded, ldc: 16, wide: true)
                    } else {
                        nnColumns(m: m, k: k, alpha: alpha, a: a, b: panel, ldb: 8, accumulate: accumulate, c: padded, ldc: 8, wide: false)
                    }
                    for i in 0..<m { for q in 0..<width { c[i * n + j + q] = padded[i * columns + q] } }
                }
                j += width
            }
        }
    }

    /// `panel[p * columns + q] = B[q][p]` for `q < rows`, `0` for `rows <= q < columns` (`B`
    /// row-major with rows of `k`).
    @inline(__always)
    private static func packTransposed<T: Real>(_ b: UnsafePointer<T>, rows: Int, k: Int, columns: Int,
                                                into panel: UnsafeMutablePointer<T>) {
        var p0 = 0
        if rows == columns {
            while p0 + 8 <= k {
                for h in stride(from: 0, to: columns, by: 8) {
                    let r = b + h * k + p0, o = panel + p0 * columns + h
                    let t = Transpose.transpose8((load(r), load(r + k), load(r + 2 * k), load(r + 3 * k),
                                                  load(r + 4 * k), load(r + 5 * k), load(r + 6 * k), load(r + 7 * k)))
                    store(t.0, o); store(t.1, o + columns); store(t.2, o + 2 * columns); store(t.3, o + 3 * columns)
                    store(t.4, o + 4 * columns); store(t.5, o + 5 * columns); store(t.6, o + 6 * columns); store(t.7, o + 7 * columns)
                }
                p0 += 8
            }
        }
        for q in 0..<columns {
            let row = b + q * k
            for p in p0..<k { panel[p * columns + q] = q < rows ? row[p] : 0 }
        }
    }
}

extension SIMD8 where Scalar: Real {
    /// `self += x * y`, fused (one rounding).
    @inline(__always) mutating func addProduct(_ x: SIMD8<Scalar>, _ y: SIMD8<Scalar>) {
        self = self.addingProduct(x, y)
    }
}
