import CLinAlg

/// A LAPACK or ScaLAPACK routine returned `info != 0`.
///
/// `info < 0`: argument `-info` was illegal (a bug in the caller). `info > 0`: a numerical failure
/// whose meaning depends on the routine, e.g. the leading minor of order `info` of a matrix passed to
/// a Cholesky factorisation is not positive definite.
public struct LAPACKError: Error, CustomStringConvertible, Equatable {
    public let routine: String
    public let info: Int
    public let detail: String

    public init(routine: String, info: Int, detail: String = "") {
        self.routine = routine
        self.info = info
        self.detail = detail
    }

    public var description: String {
        let base = "\(routine) failed with info = \(info)"
        if !detail.isEmpty { return "\(base): \(detail)" }
        if info < 0 { return "\(base): argument \(-info) had an illegal value" }
        return base
    }
}

/// Serial dense linear algebra on column-major `Double` matrices (LAPACKE).
///
/// Matrices are flat column-major arrays: element `(i, j)` of an `m x n` matrix is `a[i + j * m]`.
/// The distributed counterparts live in `Parallel.DistributedMatrix` and must agree with these.
public enum LAPACK {
    @inline(__always) static func char(_ c: Unicode.Scalar) -> CChar { CChar(UInt8(ascii: c)) }

    /// Eigenvalues of the symmetric `n x n` matrix `a`, ascending (`dsyevd`, lower triangle read).
    public static func symmetricEigenvalues(_ a: [Double], n: Int) throws -> [Double] {
        try symmetricEigen(a, n: n, vectors: false).values
    }

    /// Eigen-decomposition `A = Z diag(w) Z^T` of the symmetric `n x n` matrix `a` (`dsyevd`).
    ///
    /// - Returns: `values` ascending (length `n`); `vectors` is `Z`, `n x n` column-major, column `k`
    ///   the unit eigenvector of `values[k]` (empty when `vectors` is false).
    public static func symmetricEigen(_ a: [Double], n: Int, vectors: Bool = true)
        throws -> (values: [Double], vectors: [Double])
    {
        precondition(a.count == n * n, "symmetricEigen: \(a.count) elements for a \(n) x \(n) matrix")
        var z = a
        var w = [Double](repeating: 0, count: n)
        if n == 0 { return (w, []) }
        let info = z.withUnsafeMutableBufferPointer { zp in
            w.withUnsafeMutableBufferPointer { wp in
                LAPACKE_dsyevd(LAPACK_COL_MAJOR, char(vectors ? "V" : "N"), char("L"), Int32(n),
                               zp.baseAddress, Int32(n), wp.baseAddress)
            }
        }
        guard info == 0 else {
            throw LAPACKError(routine: "LAPACKE_dsyevd", info: Int(info),
                              detail: info > 0 ? "\(info) off-diagonal elements did not converge" : "")
        }
        return (w, vectors ? z : [])
    }

    /// Cholesky factor `A = L L^T` of the symmetric positive definite `n x n` matrix `a` (`dpotrf`).
    /// Returns the full array with `L` in the lower triangle; the strict upper triangle is `a`'s.
    public static func choleskyFactor(_ a: [Double], n: Int) throws -> [Double] {
        precondition(a.count == n * n, "choleskyFactor: \(a.count) elements for a \(n) x \(n) matrix")
        var l = a
        if n == 0 { return l }
        let info = l.withUnsafeMutableBufferPointer {
            LAPACKE_dpotrf(LAPACK_COL_MAJOR, char("L"), Int32(n), $0.baseAddress, Int32(n))
        }
        guard info == 0 else {
            throw LAPACKError(routine: "LAPACKE_dpotrf", info: Int(info),
                              detail: info > 0 ? "leading minor of order \(info) is not positive definite" : "")
        }
        return l
    }

    /// Solves `A X = B` for symmetric positive definite `A` (`n x n`) and `B` (`n x nrhs`), both
    /// column-major, by `dpotrf` then `dpotrs`. Returns `X` (`n x nrhs`).
    public static func choleskySolve(_ a: [Double], n: Int, _ b: [Double], nrhs: Int) throws -> [Double] {
        precondition(b.count == n * nrhs, "choleskySolve: \(b.count) elements for a \(n) x \(nrhs) right-hand side")
        let l = try choleskyFactor(a, n: n)
        var x = b
        if n == 0 || nrhs == 0 { return x }
        let info = l.withUnsafeBufferPointer { lp in
            x.withUnsafeMutableBufferPointer { xp in
                LAPACKE_dpotrs(LAPACK_COL_MAJOR, char("L"), Int32(n), Int32(nrhs),
                               lp.baseAddress, Int32(n), xp.baseAddress, Int32(n))
            }
        }
        guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrs", info: Int(info)) }
        return x
    }
}
