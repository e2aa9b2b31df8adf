import Core
import XCTest

/// The block-cyclic index maps against a brute-force deal of blocks to processes.
final class BlockCyclicTests: XCTestCase {
    /// (n, nb, nprocs, source), including uneven last blocks, nb > n, n = 0 and idle processes.
    static let cases: [(Int, Int, Int, Int)] = [
        (500, 32, 1, 0), (500, 32, 2, 0), (500, 32, 3, 0), (500, 32, 3, 2), (10, 3, 4, 1),
        (7, 7, 3, 0), (7, 8, 3, 2), (0, 4, 3, 1), (1, 1, 5, 4), (97, 7, 6, 5), (64, 64, 2, 1),
        (65, 64, 2, 0), (100, 1, 7, 3),
    ]

    /// Deals blocks 0, 1, 2, ... to processes source, source + 1, ... (mod P); returns for every
    /// process the global indices it holds, in local order.
    static func deal(n: Int, nb: Int, processes: Int, source: Int) -> [[Int]] {
        var owned = [[Int]](repeating: [], count: processes)
        var g = 0, block = 0
        while g < n {
            let p = (source + block) % processes
            for i in g..<min(g + nb, n) { owned[p].append(i) }
            g += nb
            block += 1
        }
        return owned
    }

    func testMapsMatchBruteForceDeal() {
        for (n, nb, procs, src) in Self.cases {
            let map = BlockCyclic(count: n, blockSize: nb, processes: procs, source: src)
            let owned = Self.deal(n: n, nb: nb, processes: procs, source: src)
            let label = "n=\(n) nb=\(nb) P=\(procs) src=\(src)"
            XCTAssertEqual(owned.map(\.count).reduce(0, +), n, label)
            for p in 0..<procs {
                XCTAssertEqual(map.localCount(process: p), owned[p].count, "\(label) numroc p=\(p)")
                for (l, g) in owned[p].enumerated() {
                    XCTAssertEqual(map.globalIndex(ofLocal: l, process: p), g, "\(label) l2g p=\(p) l=\(l)")
                    XCTAssertEqual(map.owner(ofGlobal: g), p, "\(label) g2p g=\(g)")
                    XCTAssertEqual(map.localIndex(ofGlobal: g), l, "\(label) g2l g=\(g)")
                }
            }
        }
    }

    func testNearSquareGridIsMostSquareFactorisation() {
        for size in 1...100 {
            // Brute force: the largest p <= sqrt(size) dividing size.
            let p = (1...size).filter { size % $0 == 0 && $0 * $0 <= size }.max()!
            let grid = nearSquareGrid(size: size)
            XCTAssertEqual(grid.rows, p, "size \(size)")
            XCTAssertEqual(grid.cols, size / p, "size \(size)")
        }
        XCTAssertTrue(nearSquareGrid(size: 3) == (1, 3))
        XCTAssertTrue(nearSquareGrid(size: 4) == (2, 2))
        XCTAssertTrue(nearSquareGrid(size: 12) == (3, 4))
    }
}
