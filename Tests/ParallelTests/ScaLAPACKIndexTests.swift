import Core
import MPIShim
import XCTest

/// `BlockCyclic` (0-based, Swift) against ScaLAPACK's own TOOLS routines (1-based, Fortran). These
/// are pure functions: no MPI or BLACS needed.
final class ScaLAPACKIndexTests: XCTestCase {
    func testBlockCyclicAgreesWithNumrocAndIndexRoutines() {
        let cases: [(Int, Int, Int, Int)] = [
            (500, 32, 1, 0), (500, 32, 2, 0), (500, 32, 3, 0), (500, 32, 3, 1), (10, 64, 3, 0),
            (97, 7, 6, 5), (33, 32, 5, 2), (1, 4, 2, 1), (0, 3, 4, 0), (1000, 1, 7, 6),
        ]
        for (n, nb, procs, src) in cases {
            let map = BlockCyclic(count: n, blockSize: nb, processes: procs, source: src)
            let label = "n=\(n) nb=\(nb) P=\(procs) src=\(src)"
            var n32 = Int32(n), nb32 = Int32(nb), src32 = Int32(src), p32 = Int32(procs)
            for p in 0..<procs {
                var iproc = Int32(p)
                XCTAssertEqual(map.localCount(process: p), Int(numroc_(&n32, &nb32, &iproc, &src32, &p32)),
                               "\(label) numroc p=\(p)")
                for l in 0..<map.localCount(process: p) {
                    var l1 = Int32(l + 1)
                    XCTAssertEqual(map.globalIndex(ofLocal: l, process: p) + 1,
                                   Int(indxl2g_(&l1, &nb32, &iproc, &src32, &p32)), "\(label) indxl2g")
                }
            }
            var dummy: Int32 = 0
            for g in 0..<n {
                var g1 = Int32(g + 1)
                XCTAssertEqual(map.owner(ofGlobal: g), Int(indxg2p_(&g1, &nb32, &dummy, &src32, &p32)),
                               "\(label) indxg2p g=\(g)")
                XCTAssertEqual(map.localIndex(ofGlobal: g) + 1, Int(indxg2l_(&g1, &nb32, &dummy, &src32, &p32)),
                               "\(label) indxg2l g=\(g)")
            }
        }
    }
}
