import XCTest
@testable import Plot

final class MarchingSquaresTests: XCTestCase {
    /// f(x, y) = x² + y² on [-1, 1]² (step 0.1); the level r² = 0.73² is the circle of radius 0.73,
    /// which passes through no grid sample.
    func testCircleIsClosedAndAtRadius() {
        let g = (0...20).map { Double($0 - 10) / 10 }
        let field = g.map { y in g.map { x in x * x + y * y } }
        let r = 0.73
        let chains = MarchingSquares.contours(field: field, xs: g, ys: g, level: r * r)
        XCTAssertEqual(chains.count, 1)
        let c = chains[0]
        XCTAssertEqual(c.first, c.last, "closed contour repeats its first point")
        XCTAssertGreaterThan(c.count, 30)
        // Linear interpolation of x² over a step h errs by at most h²/4 in f, i.e. ≈ h²/(8r) in
        // radius (0.0017 here).
        for p in c {
            XCTAssertEqual((p.x * p.x + p.y * p.y).squareRoot(), r, accuracy: 0.002)
        }
        // The polygon's area approaches πr² (inscribed polygon: slightly less).
        var area = 0.0
        for (a, b) in zip(c, c.dropFirst()) { area += a.x * b.y - b.x * a.y }
        // Inscribed in the circle (linear interpolation of a convex f puts crossings inside), and
        // no smaller than the circle of radius r − 0.002 less the polygon deficit (2π/N)²/6 < 1%.
        XCTAssertLessThanOrEqual(abs(area) / 2, Double.pi * r * r)
        XCTAssertGreaterThanOrEqual(abs(area) / 2, Double.pi * (r - 0.002) * (r - 0.002) * 0.99)
    }

    /// One cell with corners f(0,0)=0, f(1,0)=1, f(0,1)=1, f(1,1)=2: the level 0.5 crosses the
    /// bottom edge at x = 0.5 and the left edge at y = 0.5.
    func testSingleCellHandComputed() {
        let chains = MarchingSquares.contours(field: [[0, 1], [1, 2]], xs: [0, 1], ys: [0, 1], level: 0.5)
        XCTAssertEqual(chains, [[Point(0, 0.5), Point(0.5, 0)]])
        // Level 1.5 cuts the top-right corner: right edge y = 0.5, top edge x = 0.5.
        let c2 = MarchingSquares.contours(field: [[0, 1], [1, 2]], xs: [0, 1], ys: [0, 1], level: 1.5)
        XCTAssertEqual(c2.count, 1)
        XCTAssertEqual(Set(c2[0]), [Point(1, 0.5), Point(0.5, 1)])
    }

    /// A plane f = x crossing a 4×3 grid gives one open vertical line at x = level.
    func testOpenLineAcrossDomain() {
        let xs = [0.0, 1, 2, 3], ys = [0.0, 1, 2]
        let field = ys.map { _ in xs }
        let chains = MarchingSquares.contours(field: field, xs: xs, ys: ys, level: 1.25)
        XCTAssertEqual(chains.count, 1)
        XCTAssertEqual(chains[0].count, 3)
        XCTAssertTrue(chains[0].allSatisfy { $0.x == 1.25 })
        XCTAssertEqual(Set(chains[0].map(\.y)), [0, 1, 2])
    }

    func testDegenerateInput() {
        XCTAssertEqual(MarchingSquares.contours(field: [[0, 1], [1, 2]], xs: [0, 1], ys: [0, 1], level: 5).count, 0)
        XCTAssertEqual(MarchingSquares.contours(field: [[0, 1]], xs: [0, 1], ys: [0], level: 0.5).count, 0)
        XCTAssertEqual(MarchingSquares.contours(field: [[0, 1], [1]], xs: [0, 1], ys: [0, 1], level: 0.5).count, 0)
        // NaN corner: the cell is skipped, no crash.
        let c = MarchingSquares.contours(field: [[0, 1, 2], [0, .nan, 2]], xs: [0, 1, 2], ys: [0, 1], level: 0.5)
        XCTAssertTrue(c.isEmpty)
    }
}
