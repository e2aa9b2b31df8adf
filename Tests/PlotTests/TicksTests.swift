import XCTest
@testable import Plot

/// Expected values are hand-computed with Heckbert's algorithm (Graphics Gems I, "Nice numbers
/// for graph labels"): range = nice(max-min, ceil); step = nice(range/(count-1), round);
/// ticks from floor(min/step)·step to ceil(max/step)·step.
final class TicksTests: XCTestCase {
    func testLinearUnitInterval() {
        // range nice(1) = 1, step nice(0.25, round) = 0.2.
        XCTAssertEqual(NiceTicks.linear(min: 0, max: 1, count: 5), [0, 0.2, 0.4, 0.6, 0.8, 1])
    }

    func testLinearSmallMagnitudes() {
        // span 0.0174 -> nice 0.02; step nice(0.005) = 0.005; floor(0.26) = 0, ceil(3.74) = 4.
        XCTAssertEqual(NiceTicks.linear(min: 0.0013, max: 0.0187, count: 5), [0, 0.005, 0.01, 0.015, 0.02])
        // Inside the range only the interior ticks remain (3 of them, no refinement needed).
        XCTAssertEqual(NiceTicks.within(min: 0.0013, max: 0.0187, count: 5), [0.005, 0.01, 0.015])
    }

    func testLinearNegativeToPositive() {
        // span 15.9 -> nice 20; step nice(5) = 5; floor(-0.74) = -1, ceil(2.44) = 3.
        XCTAssertEqual(NiceTicks.linear(min: -3.7, max: 12.2, count: 5), [-5, 0, 5, 10, 15])
        XCTAssertEqual(NiceTicks.within(min: -3.7, max: 12.2, count: 5), [0, 5, 10])
        // Reversed arguments give the same ticks.
        XCTAssertEqual(NiceTicks.linear(min: 12.2, max: -3.7, count: 5), [-5, 0, 5, 10, 15])
    }

    func testLinearDegenerateRange() {
        // 3 ± 10% = [2.7, 3.3]: span 0.6 -> nice 1, step nice(0.25) = 0.2; floor(13.5)=13, ceil(16.5)=17.
        XCTAssertEqual(NiceTicks.linear(min: 3, max: 3), [2.6, 2.8, 3, 3.2, 3.4])
        // 0 -> [-1, 1]: span 2 -> nice 2, step nice(0.5) = 0.5.
        XCTAssertEqual(NiceTicks.linear(min: 0, max: 0), [-1, -0.5, 0, 0.5, 1])
        XCTAssertEqual(NiceTicks.linear(min: .nan, max: 1), [])
    }

    func testWithinRefinesWhenTooFewTicks() {
        // [0.05, 0.95] at count 5: step 0.2 gives 0.2...0.8 (4 ticks) -> kept.
        XCTAssertEqual(NiceTicks.within(min: 0.05, max: 0.95), [0.2, 0.4, 0.6, 0.8])
        // [1.05, 2.95]: span 1.9 -> nice 2, step nice(0.5) = 0.5 -> 1.5, 2, 2.5 (3 ticks).
        XCTAssertEqual(NiceTicks.within(min: 1.05, max: 2.95), [1.5, 2, 2.5])
        // [0.9, 2.1]: span 1.2 -> nice 2, step 0.5 -> 1, 1.5, 2.
        XCTAssertEqual(NiceTicks.within(min: 0.9, max: 2.1), [1, 1.5, 2])
    }

    func testLogDecades() {
        XCTAssertEqual(NiceTicks.log(min: 1e-4, max: 1e2), [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100])
    }

    func testLogWithMinorTicksUnderTwoDecades() {
        // log10(40/2) = 1.3 decades < 2 -> 1, 2, 5 × 10^k inside [2, 40].
        XCTAssertEqual(NiceTicks.log(min: 2, max: 40), [2, 5, 10, 20])
        XCTAssertEqual(NiceTicks.log(min: 0.01, max: 0.1), [0.01, 0.02, 0.05, 0.1])
        // Exactly 2 decades still gets the 2 and 5 ticks; 2.5 decades does not.
        XCTAssertEqual(NiceTicks.log(min: 0.5, max: 50), [0.5, 1, 2, 5, 10, 20, 50])
        XCTAssertEqual(NiceTicks.log(min: 0.5, max: 150), [1, 10, 100])
    }

    func testLogThinsManyDecades() {
        // 40 decades: every 5th decade (smallest n in 2, 5, 10, ... with 10·n ≥ 40).
        let t = NiceTicks.log(min: 1e-20, max: 1e20)
        XCTAssertEqual(t.count, 9)
        XCTAssertEqual(t.first, 1e-20)
        XCTAssertEqual(t[4], 1)
        XCTAssertEqual(t.last, 1e20)
    }

    func testLogNarrowFallsBackToLinear() {
        // [2.2, 4.8] holds no 1-2-5 value except none -> linear nice ticks inside: step 0.5.
        XCTAssertEqual(NiceTicks.log(min: 2.2, max: 4.8), [2.5, 3, 3.5, 4, 4.5])
        XCTAssertEqual(NiceTicks.log(min: -1, max: 10), [])
    }

    func testAutomaticRanges() {
        XCTAssertEqual(NiceTicks.paddedRange(min: 0, max: 10), -0.5...10.5)
        XCTAssertEqual(NiceTicks.paddedRange(min: 2, max: 2), 1.8...2.2)
        XCTAssertEqual(NiceTicks.paddedRange(min: 0, max: 0), -1...1)
        XCTAssertEqual(NiceTicks.logRange(min: 3e-3, max: 70), 1e-3...100)   // ≥ 2 decades: decades
        XCTAssertEqual(NiceTicks.logRange(min: 2, max: 40), 2...50)          // < 2 decades: 1-2-5
        XCTAssertEqual(NiceTicks.logRange(min: 3, max: 30), 2...50)
        XCTAssertEqual(NiceTicks.logRange(min: 5, max: 5), 2...10)           // constant
    }
}

final class TickFormatterTests: XCTestCase {
    func testFloatNoiseRemoved() {
        XCTAssertEqual(TickFormatter.format(0.1 + 0.2), "0.3")
        XCTAssertEqual(TickFormatter.format(0.30000000000000004), "0.3")
        XCTAssertEqual(TickFormatter.labels(for: [0.1, 0.2, 0.1 + 0.2]), ["0.1", "0.2", "0.3"])
        XCTAssertEqual(TickFormatter.format(-3.7), "-3.7")
        XCTAssertEqual(TickFormatter.format(1234.5), "1234.5")
        XCTAssertEqual(TickFormatter.format(0), "0")
    }

    func testLinearLabels() {
        XCTAssertEqual(TickFormatter.labels(for: [0, 0.2, 0.4, 0.6, 0.8, 1]), ["0", "0.2", "0.4", "0.6", "0.8", "1"])
        XCTAssertEqual(TickFormatter.labels(for: [0, 0.005, 0.01, 0.015, 0.02]), ["0", "0.005", "0.01", "0.015", "0.02"])
        XCTAssertEqual(TickFormatter.labels(for: [-5, 0, 5, 10, 15]), ["-5", "0", "5", "10", "15"])
        XCTAssertEqual(TickFormatter.labels(for: [0, 0.25, 0.5]), ["0", "0.25", "0.5"])
    }

    func testExponentStyle() {
        XCTAssertEqual(TickFormatter.labels(for: [0, 1e-4, 2e-4]), ["0", "1e-4", "2e-4"])
        XCTAssertEqual(TickFormatter.labels(for: [0, 250_000, 500_000]), ["0", "2.5e5", "5e5"])
        XCTAssertEqual(TickFormatter.format(1e-4), "1e-4")
        XCTAssertEqual(TickFormatter.format(-3e-5), "-3e-5")
        XCTAssertEqual(TickFormatter.format(6.02e23), "6.02e23")
        XCTAssertEqual(TickFormatter.exponential(9.9999999e-5, significantDigits: 3), "1e-4")
    }

    func testLogLabels() {
        XCTAssertEqual(TickFormatter.logLabels(for: [2, 5, 10, 20]), ["2", "5", "10", "20"])
        XCTAssertEqual(TickFormatter.logLabels(for: [0.001, 0.01, 0.1, 1, 10, 100]), ["0.001", "0.01", "0.1", "1", "10", "100"])
        XCTAssertEqual(TickFormatter.logLabels(for: [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100]),
                       ["1e-4", "1e-3", "1e-2", "1e-1", "1e0", "1e1", "1e2"])
    }

    func testSVGNumbers() {
        XCTAssertEqual(SVGText.number(12.346), "12.35")
        XCTAssertEqual(SVGText.number(3.0), "3")
        XCTAssertEqual(SVGText.number(-0.004), "0")
        XCTAssertEqual(SVGText.number(-7.5), "-7.5")
        XCTAssertEqual(SVGText.number(260), "260")
    }

    func testXMLEscape() {
        XCTAssertEqual(SVGText.escape("<a & b>"), "&lt;a &amp; b&gt;")
        XCTAssertEqual(SVGText.escape("\"q\" 'a'"), "&quot;q&quot; &apos;a&apos;")
        XCTAssertEqual(SVGText.escape("bell\u{7}"), "bell")
    }
}

final class ScaleTests: XCTestCase {
    func testLinearScale() {
        let x = LinearScale(domain: (0, 10), range: (50, 390))
        XCTAssertEqual(x.map(0), 50)
        XCTAssertEqual(x.map(10), 390)
        XCTAssertEqual(x.map(5), 220)
        XCTAssertEqual(x.invert(220), 5)
        // y axis: pixel range decreasing.
        let y = LinearScale(domain: (0, 1), range: (260, 10))
        XCTAssertEqual(y.map(0), 260)
        XCTAssertEqual(y.map(1), 10)
        XCTAssertEqual(y.map(0.5), 135)
        XCTAssertTrue(y.map(.nan).isNaN)
    }

    func testLogScale() {
        let s = LogScale(domain: (1, 1000), range: (0, 300))
        XCTAssertEqual(s.map(1), 0, accuracy: 1e-12)
        XCTAssertEqual(s.map(1000), 300, accuracy: 1e-12)
        XCTAssertEqual(s.map(10), 100, accuracy: 1e-12)
        XCTAssertEqual(s.map(1000.0.squareRoot()), 150, accuracy: 1e-9)  // geometric midpoint
        XCTAssertEqual(s.invert(200), 100, accuracy: 1e-9)
        XCTAssertTrue(s.map(0).isNaN)
        XCTAssertTrue(s.map(-5).isNaN)
        let y = LogScale(domain: (1e-4, 1e2), range: (260, 10))
        XCTAssertEqual(y.map(1e-4), 260, accuracy: 1e-9)
        XCTAssertEqual(y.map(1e-1), 135, accuracy: 1e-9)  // 3 of 6 decades
    }
}

final class ColorTests: XCTestCase {
    func testViridisReferenceValues() {
        // matplotlib viridis(0), viridis(0.5), viridis(1).
        XCTAssertEqual(Colormap.viridis.color(at: 0).hex, "#440154")
        XCTAssertEqual(Colormap.viridis.color(at: 0.5).hex, "#21918c")
        XCTAssertEqual(Colormap.viridis.color(at: 1).hex, "#fde725")
        // Clamping and NaN.
        XCTAssertEqual(Colormap.viridis.color(at: -3), Colormap.viridis.color(at: 0))
        XCTAssertEqual(Colormap.viridis.color(at: 7), Colormap.viridis.color(at: 1))
        XCTAssertEqual(Colormap.viridis.color(at: .nan), Color.missing)
        // Halfway between the first two stops #440154 and #472d7b: (69.5, 23, 103.5) rounded.
        XCTAssertEqual(Colormap.viridis.color(at: 1.0 / 16).hex, "#461768")
        XCTAssertEqual(Colormap.viridis.color(for: 5, in: 0...10).hex, "#21918c")
    }

    func testOkabeItoPalette() {
        XCTAssertEqual(Palette.okabeIto.colors.map(\.hex),
                       ["#000000", "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7"])
        XCTAssertEqual(Set(Palette.series.colors), Set(Palette.okabeIto.colors))
        XCTAssertEqual(Palette.series.color(8), Palette.series.color(0))
        XCTAssertEqual(Color(hex: 0x0072B2).hex, "#0072b2")
    }
}
