/// Register-blocked GEMM kernels for the small, row-major products of the Winograd convolution
/// (`Conv2D.componentProducts`): 16 products per chunk whose inner dimension is a channel count
/// (16-64 in these networks) or, for the weight gradient, a tile count. For these shapes OpenBLAS
/// spends about as long packing its operands and zeroing `C` for `beta = 0` (`sgemm_beta`,
/// `sgemm_*copy`) as in its kernel (measured with `perf`, ResNet-20 training, 1 thread, batch 16);
/// these kernels read the operands where they lie and write `C` once.
///
/// Every element of `C` is computed by the same sequence of operations wherever it lies in `C` and
/// whatever `m`, `n` and the blocking are (the column tails run the vector code on a zero-padded
/// copy; the weight-gradient kernel's row/column tails run the same per-element code as its
/// blocks), so a tile's result does not depend on which chunk or position it is computed in.
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

    /// Fixed-order horizontal sum of a vector, `((v0 + v4) + (v1 + v5)) + ((v2 + v6) + (v3 + v7))`:
    /// the order `totals` uses for each of its eight vectors.
    @inline(__always) static func total<T: Real>(_ v: SIMD8<T>) -> T {
        let h = v.lowHalf + v.highHalf, q = h.evenHalf + h.oddHalf
        return q[0] + q[1]
    }

    /// `[total(a), total(b), ..., total(h)]` by a transposing network of 7 vector additions.
    @inline(__always) static func totals<T: Real>(_ a: SIMD8<T>, _ b: SIMD8<T>, _ c: SIMD8<T>, _ d: SIMD8<T>,
                                                  _ e: SIMD8<T>, _ f: SIMD8<T>, _ g: SIMD8<T>, _ h: SIMD8<T>) -> SIMD8<T> {
        @inline(__always) func halves(_ x: SIMD8<T>, _ y: SIMD8<T>) -> SIMD8<T> {
            SIMD8(lowHalf: x.lowHalf + x.highHalf, highHalf: y.lowHalf + y.highHalf)
        }
        @inline(__always) func pairs(_ x: SIMD8<T>, _ y: SIMD8<T>) -> SIMD8<T> {
            SIMD8(lowHalf: x.evenHalf + x.oddHalf, highHalf: y.evenHalf + y.oddHalf)
        }
        return pairs(pairs(halves(a, b), halves(c, d)), pairs(halves(e, f), halves(g, h)))
    }

    /// `C[m x n] = alpha A[m x k] B[n x k]^T` (`+ C` with `accumulate`), row-major and dense
    /// (`lda = ldb = k`, `ldc = n`): dot products along `k` (long: the tiles of a chunk). Each
    /// `C[i][j]` is 8 lane-wise `fma` chains over `p < k - k % 8` in order, summed in a fixed
    /// order, plus the tail's products in order, then scaled and added.
    static func nt<T: Real>(m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, b: UnsafePointer<T>,
                            accumulate: Bool, c: UnsafeMutablePointer<T>) {
        let body = k / 8 * 8
        @inline(__always) func finish(_ acc: SIMD8<T>, _ i: Int, _ j: Int) { finish(total(acc), i, j) }
        @inline(__always) func finish(_ sum: T, _ i: Int, _ j: Int) {
            var s = sum
            let ai = a + i * k, bj = b + j * k
            for p in body..<k { s = s.addingProduct(ai[p], bj[p]) }
            if alpha != 1 { s *= alpha }
            if accumulate { c[i * n + j] += s } else { c[i * n + j] = s }
        }
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
            var j = 0
            while j + 2 <= n {
                let b0 = b + j * k, b1 = b0 + k
                var c00 = SIMD8<T>(), c01 = SIMD8<T>(), c10 = SIMD8<T>(), c11 = SIMD8<T>()
                var c20 = SIMD8<T>(), c21 = SIMD8<T>(), c30 = SIMD8<T>(), c31 = SIMD8<T>()
                var p = 0
                while p < body {
                    let y0 = load(b0 + p), y1 = load(b1 + p)
                    let x0 = load(a0 + p), x1 = load(a1 + p), x2 = load(a2 + p), x3 = load(a3 + p)
                    c00.addProduct(x0, y0); c01.addProduct(x0, y1)
                    c10.addProduct(x1, y0); c11.addProduct(x1, y1)
                    c20.addProduct(x2, y0); c21.addProduct(x2, y1)
                    c30.addProduct(x3, y0); c31.addProduct(x3, y1)
                    p += 8
                }
                let t = totals(c00, c01, c10, c11, c20, c21, c30, c31)
                if body == k && alpha == 1 {
                    // The common case (no tail, no scale), what `finish` does without its branches.
                    let r0 = c + i * n + j, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n
                    if accumulate {
                        r0[0] += t[0]; r0[1] += t[1]; r1[0] += t[2]; r1[1] += t[3]
                        r2[0] += t[4]; r2[1] += t[5]; r3[0] += t[6]; r3[1] += t[7]
                    } else {
                        r0[0] = t[0]; r0[1] = t[1]; r1[0] = t[2]; r1[1] = t[3]
                        r2[0] = t[4]; r2[1] = t[5]; r3[0] = t[6]; r3[1] = t[7]
                    }
                    j += 2
                    continue
                }
                finish(t[0], i, j); finish(t[1], i, j + 1)
                finish(t[2], i + 1, j); finish(t[3], i + 1, j + 1)
                finish(t[4], i + 2, j); finish(t[5], i + 2, j + 1)
                finish(t[6], i + 3, j); finish(t[7], i + 3, j + 1)
                j += 2
            }
            while j < n {
                let b0 = b + j * k
                var c00 = SIMD8<T>(), c10 = SIMD8<T>(), c20 = SIMD8<T>(), c30 = SIMD8<T>()
                var p = 0
                while p < body {
                    let y0 = load(b0 + p)
                    c00.addProduct(load(a0 + p), y0); c10.addProduct(load(a1 + p), y0)
                    c20.addProduct(load(a2 + p), y0); c30.addProduct(load(a3 + p), y0)
                    p += 8
                }
                finish(c00, i, j); finish(c10, i + 1, j); finish(c20, i + 2, j); finish(c30, i + 3, j)
                j += 1
            }
            i += 4
        }
        while i < m {
            let a0 = a + i * k
            for j in 0..<n {
                let b0 = b + j * k
                var acc = SIMD8<T>()
                var p = 0
                while p < body { acc.addProduct(load(a0 + p), load(b0 + p)); p += 8 }
                finish(acc, i, j)
            }
            i += 1
        }
    }
}

extension SIMD8 where Scalar: Real {
    /// `self += x * y`, fused (one rounding).
    @inline(__always) mutating func addProduct(_ x: SIMD8<Scalar>, _ y: SIMD8<Scalar>) {
        self = self.addingProduct(x, y)
    }
}
