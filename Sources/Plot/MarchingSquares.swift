/// Contour extraction on a rectilinear grid.
public enum MarchingSquares {
    /// Where a contour crosses the grid: on the edge between two samples, or exactly at a sample.
    private enum Key: Hashable {
        case horizontal(Int, Int)  // edge (i, j)-(i+1, j)
        case vertical(Int, Int)    // edge (i, j)-(i, j+1)
        case vertex(Int, Int)      // sample (i, j) equal to the level
    }

    /// Polylines where the field `field[j][i]`, sampled at (`xs[i]`, `ys[j]`), equals `level`.
    ///
    /// Marching squares with linear interpolation along cell edges; a sample counts as "inside"
    /// when ≥ level. Saddle cells are resolved with the mean of the 4 corners. Cells with a
    /// non-finite corner are skipped. Segments are joined into maximal chains; a closed contour is
    /// returned with its first point repeated at the end. Ragged or too-small input gives [].
    /// Output order is deterministic (scan order of the cells).
    public static func contours(field: [[Double]], xs: [Double], ys: [Double], level: Double) -> [[Point]] {
        let ny = ys.count, nx = xs.count
        guard nx >= 2, ny >= 2, field.count == ny, field.allSatisfy({ $0.count == nx }), level.isFinite else {
            return []
        }
        func value(_ i: Int, _ j: Int) -> Double { field[j][i] }
        func point(_ k: Key) -> Point {
            switch k {
            case .vertex(let i, let j):
                return Point(xs[i], ys[j])
            case .horizontal(let i, let j):
                let a = value(i, j), b = value(i + 1, j)
                let t = (level - a) / (b - a)
                return Point(xs[i] + t * (xs[i + 1] - xs[i]), ys[j])
            case .vertical(let i, let j):
                let a = value(i, j), b = value(i, j + 1)
                let t = (level - a) / (b - a)
                return Point(xs[i], ys[j] + t * (ys[j + 1] - ys[j]))
            }
        }
        // Crossing key for the edge between samples p and q, normalising crossings at a sample.
        func key(_ edge: Key, _ p: (Int, Int), _ q: (Int, Int)) -> Key {
            if value(p.0, p.1) == level { return .vertex(p.0, p.1) }
            if value(q.0, q.1) == level { return .vertex(q.0, q.1) }
            return edge
        }

        var segments: [(Key, Key)] = []
        for j in 0..<(ny - 1) {
            for i in 0..<(nx - 1) {
                let v0 = value(i, j), v1 = value(i + 1, j), v2 = value(i + 1, j + 1), v3 = value(i, j + 1)
                guard v0.isFinite, v1.isFinite, v2.isFinite, v3.isFinite else { continue }
                let c = (v0 >= level ? 1 : 0) | (v1 >= level ? 2 : 0) | (v2 >= level ? 4 : 0) | (v3 >= level ? 8 : 0)
                if c == 0 || c == 15 { continue }
                let bottom = key(.horizontal(i, j), (i, j), (i + 1, j))
                let right = key(.vertical(i + 1, j), (i + 1, j), (i + 1, j + 1))
                let top = key(.horizontal(i, j + 1), (i, j + 1), (i + 1, j + 1))
                let left = key(.vertical(i, j), (i, j), (i, j + 1))
                let centreInside = (v0 + v1 + v2 + v3) / 4 >= level
                var cell: [(Key, Key)]
                switch c {
                case 1, 14: cell = [(left, bottom)]
                case 2, 13: cell = [(bottom, right)]
                case 3, 12: cell = [(left, right)]
                case 4, 11: cell = [(right, top)]
                case 6, 9: cell = [(bottom, top)]
                case 7, 8: cell = [(left, top)]
                case 5: cell = centreInside ? [(left, top), (bottom, right)] : [(left, bottom), (right, top)]
                case 10: cell = centreInside ? [(left, bottom), (right, top)] : [(left, top), (bottom, right)]
                default: cell = []
                }
                for s in cell where s.0 != s.1 { segments.append(s) }
            }
        }
        if segments.isEmpty { return [] }

        // Join segments sharing crossing keys into chains.
        var incident: [Key: [Int]] = [:]
        for (n, s) in segments.enumerated() {
            incident[s.0, default: []].append(n)
            incident[s.1, default: []].append(n)
        }
        var used = [Bool](repeating: false, count: segments.count)
        func other(_ n: Int, _ k: Key) -> Key { segments[n].0 == k ? segments[n].1 : segments[n].0 }
        func nextSegment(at k: Key) -> Int? { incident[k]?.first { !used[$0] } }
        func walk(from start: Key) -> [Key] {
            var chain = [start]
            var k = start
            while let n = nextSegment(at: k) {
                used[n] = true
                k = other(n, k)
                chain.append(k)
            }
            return chain
        }
        var chains: [[Key]] = []
        // Open chains start at keys with an odd number of segments (domain boundary / NaN holes).
        for s in segments.indices where !used[s] {
            for k in [segments[s].0, segments[s].1] where (incident[k]?.count ?? 0) % 2 == 1 {
                if nextSegment(at: k) != nil { chains.append(walk(from: k)) }
            }
        }
        // The rest are closed loops.
        for s in segments.indices where !used[s] {
            let start = segments[s].0
            chains.append(walk(from: start))
        }
        return chains.map { $0.map(point) }
    }
}
