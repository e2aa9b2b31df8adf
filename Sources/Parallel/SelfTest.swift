import CLinAlg
import Core
import Foundation
import MPIShim

/// One check of `SelfTest`: the measured error against its tolerance, reduced over all ranks.
public struct SelfTestCheck: Sendable {
    public let name: String
    /// Largest error any rank measured (`inf` if a rank failed outright).
    public let error: Double
    public let tolerance: Double
    /// True only if every rank passed.
    public let passed: Bool
    /// A failure message from some rank (the lowest failing one), if any.
    public let note: String

    /// `PASS|FAIL  name  error (tolerance)`, the line `ntkscape selftest` prints.
    public var line: String {
        let e = error.isFinite ? String(format: "%.3e", error) : "\(error)"
        let tail = note.isEmpty ? "" : "  \(note)"
        return "\(passed ? "PASS" : "FAIL")  \(name)  \(e) (\(tolerance == 0 ? "0" : String(format: "%.0e", tolerance)))\(tail)"
    }
}

/// Collective checks of the MPI layer and the ScaLAPACK wrappers on whatever ranks run them, each
/// against an independent reference: closed forms in `rank` and `size`, the closed-form spectrum of
/// the 1-D Laplacian, serial LAPACK on rank 0.
///
/// Every rank runs every check in the same order; a check passes only if it passes on all ranks.
public enum SelfTest {
    /// Number of checks `run` performs, whatever the rank count.
    public static let checkCount = 30

    /// Runs all checks; `report` sees each (reduced) result as soon as it is known, on every rank.
    public static func run(comm: MPICommunicator, n: Int = 500, block: Int = 32,
                           threads: ThreadDecision? = nil,
                           report: @escaping (SelfTestCheck) -> Void = { _ in }) -> [SelfTestCheck] {
        let runner = Runner(comm: comm, report: report)
        runner.collectives()
        runner.layout(threads: threads)
        runner.scalapack(n: n, block: block)
        precondition(runner.results.count == checkCount,
                     "SelfTest: ran \(runner.results.count) checks, checkCount says \(checkCount)")
        return runner.results
    }
}

/// Deterministic values in [-1, 1) from a global index pair (splitmix64 finaliser), so every rank
/// computes the same matrix entries without communication.
@inline(__always)
func hashUniform(_ i: Int, _ j: Int, seed: UInt64) -> Double {
    var z = seed &+ UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15
        &+ UInt64(truncatingIfNeeded: j) &* 0xC2B2_AE3D_27D4_EB4F
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return Double(z >> 11) / Double(1 << 52) - 1
}

private final class Runner {
    let comm: MPICommunicator
    let report: (SelfTestCheck) -> Void
    var results: [SelfTestCheck] = []

    init(comm: MPICommunicator, report: @escaping (SelfTestCheck) -> Void) {
        self.comm = comm
        self.report = report
    }

    var rank: Int { comm.rank }
    var size: Int { comm.size }

    /// Records one check. Collective: reduces the worst error, the pass flag and the first note.
    func record(_ name: String, error: Double, tolerance: Double, ok: Bool = true, note: String = "") {
        let e = error.isNaN ? Double.infinity : error
        let worst = comm.allreduce(e, .max)
        let allOK = comm.allreduce(ok && e <= tolerance ? 1 : 0, .min) == 1
        var firstNote = ""
        if comm.allreduce(note.isEmpty ? 0 : 1, .max) == 1 {
            let noteRank = comm.allreduce(note.isEmpty ? Int.max : rank, .min)
            firstNote = "rank \(noteRank): " + String(decoding: comm.broadcast(bytes: Array(note.utf8),
                                                                             root: noteRank), as: UTF8.self)
        }
        let check = SelfTestCheck(name: name, error: worst, tolerance: tolerance, passed: allOK, note: firstNote)
        results.append(check)
        report(check)
    }

    /// Runs `body`, which returns the local error, recording a thrown error as a failure.
    func check(_ name: String, tolerance: Double, _ body: () throws -> Double) {
        do {
            record(name, error: try body(), tolerance: tolerance)
        } catch {
            record(name, error: .infinity, tolerance: tolerance, ok: false, note: "\(error)")
        }
    }

    // MARK: Collectives

    func collectives() {
        let length = 1000
        let s = Double(size), triangle = s * (s + 1) / 2   // sum over ranks of (r + 1)

        // Float: rank r holds (r + 1) * (i mod 7 + 1); all partial sums are small integers, exact.
        for (op, expect) in [(ReduceOp.sum, triangle), (.max, s), (.min, 1.0)] {
            var v = (0..<length).map { Float(rank + 1) * Float($0 % 7 + 1) }
            comm.allreduce(&v, op)
            let err = (0..<length).map { abs(Double(v[$0]) - expect * Double($0 % 7 + 1)) }.max()!
            record("allreduce-\(op)-Float", error: err, tolerance: 0)
        }
        // Double: rank r holds r + 1 + i / 4, exact in binary.
        for (op, expect) in [(ReduceOp.sum, triangle), (.max, s), (.min, 1.0)] {
            var v = (0..<length).map { Double(rank + 1) + Double($0) * 0.25 }
            comm.allreduce(&v, op)
            let copies = op == .sum ? s : 1
            let err = (0..<length).map { abs(v[$0] - (expect + copies * Double($0) * 0.25)) }.max()!
            record("allreduce-\(op)-Double", error: err, tolerance: 0)
        }
        // Int: rank r holds (r + 1) * 2^33 + i, beyond 32 bits on purpose.
        for (op, expect) in [(ReduceOp.sum, Int(triangle)), (.max, size), (.min, 1)] {
            var v = (0..<length).map { (rank + 1) << 33 + $0 }
            comm.allreduce(&v, op)
            let copies = op == .sum ? size : 1
            let err = (0..<length).map { abs(v[$0] - (expect << 33 + copies * $0)) }.max()!
            record("allreduce-\(op)-Int", error: Double(err), tolerance: 0)
        }

        // Variable-length gathers: rank r sends r + 1 bytes of value r. Error counts wrong bytes.
        func mismatches(_ parts: [[UInt8]]) -> Int {
            guard parts.count == size else { return Int.max / 2 }
            return parts.enumerated().reduce(0) { acc, part in
                let (r, bytes) = part
                return acc + abs(bytes.count - (r + 1)) + bytes.filter { $0 != UInt8(r % 256) }.count
            }
        }
        let mine = [UInt8](repeating: UInt8(rank % 256), count: rank + 1)
        for (label, root) in [("first", 0), ("last", size - 1)] {
            let parts = comm.gather(mine, root: root)
            let err = rank == root ? (parts.map(mismatches) ?? Int.max / 2) : (parts == nil ? 0 : 1)
            record("gather-varlen-\(label)-root", error: Double(err), tolerance: 0)
        }
        record("allgather-varlen", error: Double(mismatches(comm.allgather(mine))), tolerance: 0)

        // Broadcast from the last rank: x_i = 1.5 i + root.
        let root = size - 1
        var x = (0..<length).map { rank == root ? 1.5 * Double($0) + Double(root) : -1 }
        comm.broadcast(&x, root: root)
        record("broadcast-Double-last-root",
               error: (0..<length).map { abs(x[$0] - (1.5 * Double($0) + Double(root))) }.max()!, tolerance: 0)
        // Variable-length broadcast: size + 5 bytes 0, 1, 2, ... known only to rank 0.
        let sent = rank == 0 ? (0..<(size + 5)).map { UInt8($0) } : []
        let got = comm.broadcast(bytes: sent, root: 0)
        let expected = (0..<(size + 5)).map { UInt8($0) }
        record("broadcast-bytes", error: got == expected ? 0 : 1, tolerance: 0)

        // Even/odd split: sizes ceil(s/2) and floor(s/2), sub-rank r/2, sum of world ranks in group.
        if let sub = comm.splitMPI(color: rank % 2, key: rank) {
            let evens = (size + 1) / 2
            let expectSize = rank % 2 == 0 ? evens : size - evens
            let members = stride(from: rank % 2, to: size, by: 2)
            var err = abs(sub.size - expectSize) + abs(sub.rank - rank / 2)
            err += abs(sub.allreduce(rank, .sum) - members.reduce(0, +))
            err += abs(sub.allreduce(rank, .max) - members.max()!)
            record("split-even-odd", error: Double(err), tolerance: 0)
        } else {
            record("split-even-odd", error: 1, tolerance: 0, note: "split returned nil")
        }
        // Rank 0 opts out (negative colour): it gets nil, the others a (size-1)-rank group.
        let optOut = comm.splitMPI(color: rank == 0 ? -1 : 0, key: 0)
        var err = 0
        if rank == 0 {
            err = optOut == nil ? 0 : 1
        } else if let g = optOut {
            err = abs(g.size - (size - 1)) + abs(g.rank - (rank - 1))
                + abs(g.allreduce(rank, .sum) - size * (size - 1) / 2)
        } else {
            err = 1
        }
        record("split-negative-colour", error: Double(err), tolerance: 0)
    }

    // MARK: Node layout, threads, grid

    func layout(threads: ThreadDecision?) {
        // Node leaders' counts add up to the world size; nodeRank < ranksOnNode.
        let node = comm.nodeLayout()
        let counted = comm.allreduce(node.nodeRank == 0 ? node.ranksOnNode : 0, .sum)
        let leaders = comm.allreduce(node.nodeRank == 0 ? 1 : 0, .sum)
        record("node-layout",
               error: Double(abs(counted - size) + abs(leaders - node.nodeCount)
                   + (node.nodeRank < node.ranksOnNode ? 0 : 1)), tolerance: 0)

        // OpenBLAS runs the thread count the policy chose.
        let want = threads?.threads ?? BLASThreads.current
        record("blas-threads", error: Double(abs(BLASThreads.current - want)), tolerance: 0)

        // Row-major near-square p x q grid: p <= q, p q = size, rank r at (r / q, r mod q).
        check("blacs-grid-row-major", tolerance: 0) {
            let grid = try BLACSGrid(comm)
            defer { grid.close() }
            var e = abs(grid.rows * grid.cols - size) + (grid.rows <= grid.cols ? 0 : 1)
            e += abs(grid.myRow - rank / grid.cols) + abs(grid.myCol - rank % grid.cols)
            return Double(e)
        }
    }

    // MARK: ScaLAPACK

    func scalapack(n: Int, block: Int) {
        let grid: BLACSGrid
        do {
            grid = try BLACSGrid(comm)
        } catch {
            for name in Self.scalapackChecks {
                record(name, error: .infinity, tolerance: 0, ok: false, note: "\(error)")
            }
            return
        }
        defer { grid.close() }

        // Partition: an n x (n + 13) matrix holding code(i, j) = i + j m; each global element must
        // appear on exactly one rank, at the place numroc_, globalIndex and location agree on.
        let m = n, k = n + 13
        check("block-cyclic-partition", tolerance: 0) {
            var a = try DistributedMatrix(grid: grid, rows: m, cols: k, blockSize: block)
            a.fill { i, j in Double(i + j * m) }
            var nb = Int32(block), pr = Int32(grid.myRow), pc = Int32(grid.myCol), zero: Int32 = 0
            var mm = Int32(m), kk = Int32(k), p = Int32(grid.rows), q = Int32(grid.cols)
            var e = abs(Int(numroc_(&mm, &nb, &pr, &zero, &p)) - a.localRows)
                + abs(Int(numroc_(&kk, &nb, &pc, &zero, &q)) - a.localCols)
            var localSum = 0
            for lj in 0..<a.localCols {
                for li in 0..<a.localRows {
                    let offset = li + lj * a.leadingDimension
                    localSum += Int(a.local[offset])
                    let (i, j) = a.globalIndex(localRow: li, localCol: lj)
                    let place = a.location(ofGlobalRow: i, col: j)
                    e += abs(place.rank - rank) + abs(place.offset - offset)
                }
            }
            let count = comm.allreduce(a.localRows * a.localCols, .sum)
            let total = m * k
            e += abs(count - total) + abs(comm.allreduce(localSum, .sum) - total * (total - 1) / 2)
            return Double(e)
        }

        // Frobenius product of A_ij = i + 1 and B_ij = j + 1 (m x k): (m(m+1)/2) (k(k+1)/2).
        check("frobenius-inner-closed-form", tolerance: 1e-14) {
            var a = try DistributedMatrix(grid: grid, rows: m, cols: k, blockSize: block)
            var b = try DistributedMatrix(like: a)
            a.fill { i, _ in Double(i + 1) }
            b.fill { _, j in Double(j + 1) }
            let expect = Double(m * (m + 1) / 2) * Double(k * (k + 1) / 2)
            return abs(a.frobeniusInner(b) - expect) / expect
        }

        // 1-D Laplacian: 2 on the diagonal, -1 beside it. ||L||_F^2 = 4n + 2(n - 1);
        // eigenvalues 2 - 2 cos(k pi / (n + 1)), k = 1...n.
        let laplacian: (Int, Int) -> Double = { i, j in i == j ? 2 : (abs(i - j) == 1 ? -1 : 0) }
        let exactEigenvalues = (1...max(n, 1)).map { 2 - 2 * cos(Double($0) * Double.pi / Double(n + 1)) }
        var lap: DistributedMatrix
        do {
            lap = try DistributedMatrix(grid: grid, rows: n, cols: n, blockSize: block)
        } catch {
            for name in Self.scalapackChecks.dropFirst(2) {
                record(name, error: .infinity, tolerance: 0, ok: false, note: "\(error)")
            }
            return
        }
        lap.fill(laplacian)
        record("frobenius-norm-laplacian",
               error: abs(lap.frobeniusInner(lap) - Double(4 * n + 2 * (n - 1))) / Double(4 * n), tolerance: 1e-14)

        // Gather to rank 0 reproduces the formula exactly.
        var gathered: [Double]? = nil
        check("gather-pdgemr2d", tolerance: 0) {
            gathered = try lap.gather(root: 0)
            guard let full = gathered else { return 0 }
            var e = 0.0
            for j in 0..<n { for i in 0..<n { e = max(e, abs(full[i + j * n] - laplacian(i, j))) } }
            return e
        }

        // pdsyevd: eigenvalues vs closed form; eigenvectors' residual and orthogonality on rank 0.
        var w: [Double] = []
        var z: [Double]? = nil
        check("pdsyevd-laplacian-closed-form", tolerance: 1e-10) {
            var zd = try DistributedMatrix(like: lap)
            w = try lap.symmetricEigen(vectors: &zd)
            z = try zd.gather(root: 0)
            return zip(w, exactEigenvalues).map { abs($0 - $1) }.max() ?? 0
        }
        check("pdsyevd-eigenvector-residual", tolerance: 1e-10) {
            guard let z else { return rank == 0 && n > 0 ? .infinity : 0 }
            var e = 0.0   // max_k || L z_k - w_k z_k ||_inf, L applied as its stencil
            for c in 0..<n {
                for i in 0..<n {
                    let lz = 2 * z[i + c * n] - (i > 0 ? z[i - 1 + c * n] : 0) - (i < n - 1 ? z[i + 1 + c * n] : 0)
                    e = max(e, abs(lz - w[c] * z[i + c * n]))
                }
            }
            return e
        }
        check("pdsyevd-eigenvector-orthogonality", tolerance: 1e-10) {
            guard let z else { return rank == 0 && n > 0 ? .infinity : 0 }
            var g = [Double](repeating: 0, count: n * n)   // Z^T Z, should be I
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, z, Int32(n), z, Int32(n), 0, &g, Int32(n))
            var e = 0.0
            for j in 0..<n { for i in 0..<n { e = max(e, abs(g[i + j * n] - (i == j ? 1 : 0))) } }
            return e
        }
        check("pdsyevd-vs-serial-dsyevd", tolerance: 1e-10) {
            guard let full = gathered else { return 0 }
            let serial = try LAPACK.symmetricEigenvalues(full, n: n)
            return zip(w, serial).map { abs($0 - $1) }.max() ?? 0
        }

        // SPD system A = B B^T / n + I (B_ij = hashUniform(i, j)), nrhs = 3 right-hand sides.
        // Every rank forms the whole A (n^2 doubles, one dgemm) so `fill` can read it.
        let nrhs = 3
        let bMatrix = (0..<(n * n)).map { hashUniform($0 % n, $0 / n, seed: 17) }   // column-major
        var aFull = [Double](repeating: 0, count: n * n)
        for i in 0..<n { aFull[i + i * n] = 1 }
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n),
                    1 / Double(n), bMatrix, Int32(n), bMatrix, Int32(n), 1, &aFull, Int32(n))
        let spd: (Int, Int) -> Double = { i, j in aFull[i + j * n] }
        let rhs: (Int, Int) -> Double = { i, c in hashUniform(i, c, seed: 99) }
        let bFull = (0..<(n * nrhs)).map { rhs($0 % n, $0 / n) }
        var x: [Double]? = nil
        check("pdpotrs-residual", tolerance: 1e-10) {
            var a = try DistributedMatrix(grid: grid, rows: n, cols: n, blockSize: block)
            a.fill(spd)
            var b = try DistributedMatrix(grid: grid, rows: n, cols: nrhs, blockSize: block)
            b.fill(rhs)
            try a.choleskyFactorize()
            try a.choleskySolve(&b)
            x = try b.gather(root: 0)
            guard let x else { return 0 }
            // ||A x - b||_F / ||b||_F with the same A and b, serially.
            var r = bFull
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(nrhs), Int32(n),
                        1, aFull, Int32(n), x, Int32(n), -1, &r, Int32(n))
            let norm = { (v: [Double]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            return norm(r) / norm(bFull)
        }
        check("pdpotrs-vs-serial-dpotrs", tolerance: 1e-10) {
            guard let x else { return rank == 0 && n > 0 ? .infinity : 0 }
            let serial = try LAPACK.choleskySolve(aFull, n: n, bFull, nrhs: nrhs)
            let scale = serial.map(abs).max() ?? 1
            return zip(x, serial).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
        }

        // Not positive definite: diag(1, ..., 1, -1 at index t, 1, ...) must fail with info = t + 1.
        let t = min(37, n - 1)
        check("pdpotrf-reports-indefinite", tolerance: 0) {
            var a = try DistributedMatrix(grid: grid, rows: n, cols: n, blockSize: block)
            a.fill { i, j in i == j ? (i == t ? -1 : 1) : 0 }
            do {
                try a.choleskyFactorize()
                return .infinity
            } catch let error as LAPACKError {
                return error.routine == "pdpotrf_" ? Double(abs(error.info - (t + 1))) : .infinity
            }
        }
    }

    /// Names of the ScaLAPACK checks, recorded as failures if the grid cannot be built.
    static let scalapackChecks = [
        "block-cyclic-partition", "frobenius-inner-closed-form", "frobenius-norm-laplacian",
        "gather-pdgemr2d", "pdsyevd-laplacian-closed-form", "pdsyevd-eigenvector-residual",
        "pdsyevd-eigenvector-orthogonality", "pdsyevd-vs-serial-dsyevd", "pdpotrs-residual",
        "pdpotrs-vs-serial-dpotrs", "pdpotrf-reports-indefinite",
    ]
}
