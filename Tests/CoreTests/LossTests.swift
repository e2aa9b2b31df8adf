import Core
import Foundation
import TestSupport
import XCTest

/// Calls a loss on arrays; returns (summary, dlogits).
private func evaluate<T: Real>(_ loss: LossFunction, _ logits: [T], _ labels: [Int32], classes: Int,
                               divisor: Int? = nil) -> (LossSummary, [T]) {
    var d = [T](repeating: .nan, count: logits.count)    // NaN: every element must be written
    let s = logits.withUnsafeBufferPointer { z in
        labels.withUnsafeBufferPointer { y in
            d.withUnsafeMutableBufferPointer { loss.evaluate(logits: z, labels: y, classes: classes, dlogits: $0, gradientDivisor: divisor) }
        }
    }
    return (s, d)
}

private func lossOnly<T: Real>(_ loss: LossFunction, _ logits: [T], _ labels: [Int32], classes: Int) -> LossSummary {
    logits.withUnsafeBufferPointer { z in
        labels.withUnsafeBufferPointer { loss.evaluate(logits: z, labels: $0, classes: classes) }
    }
}

// MARK: Naive references, straight from the definitions (no max subtraction; fine for small logits)

private func naiveCrossEntropy(_ z: [Double], _ y: [Int32], _ C: Int) -> (loss: Double, grad: [Double]) {
    let N = y.count
    var loss = 0.0
    var grad = [Double](repeating: 0, count: z.count)
    for i in 0..<N {
        let row = Array(z[(i * C)..<((i + 1) * C)])
        let denom = row.map { exp($0) }.reduce(0, +)
        let p = row.map { exp($0) / denom }
        loss += -log(p[Int(y[i])])
        for c in 0..<C { grad[i * C + c] = (p[c] - (c == Int(y[i]) ? 1 : 0)) / Double(N) }
    }
    return (loss / Double(N), grad)
}

private func naiveMSE(_ z: [Double], _ y: [Int32], _ C: Int) -> (loss: Double, grad: [Double]) {
    let N = y.count
    var loss = 0.0
    var grad = [Double](repeating: 0, count: z.count)
    for i in 0..<N {
        for c in 0..<C {
            let target = c == Int(y[i]) ? 1.0 : 0.0
            loss += 0.5 * (z[i * C + c] - target) * (z[i * C + c] - target)
            grad[i * C + c] = (z[i * C + c] - target) / Double(N)
        }
    }
    return (loss / Double(N), grad)
}

/// Deterministic logits in [-3, 3].
private func sampleLogits(_ n: Int, _ c: Int) -> [Double] {
    (0..<(n * c)).map { (k: Int) -> Double in
        let step = (k * 37 + 11) % 61
        return Double(step) / 10 - 3
    }
}

final class LossTests: XCTestCase {
    let N = 4, C = 5
    let labels: [Int32] = [0, 3, 4, 2]

    func testCrossEntropyMatchesNaiveDouble() {
        let z = sampleLogits(N, C)
        let (s, d) = evaluate(.crossEntropy, z, labels, classes: C)
        let ref = naiveCrossEntropy(z, labels, C)
        XCTAssertEqual(s.meanLoss, ref.loss, accuracy: 1e-12)
        assertClose(d, ref.grad, Tolerance.absolute(1e-12))
        XCTAssertEqual(s.count, N)
    }

    func testCrossEntropyMatchesNaiveFloat() {
        let z = sampleLogits(N, C)
        let (s, d) = evaluate(.crossEntropy, z.map(Float.init), labels, classes: C)
        let ref = naiveCrossEntropy(z.map { Double(Float($0)) }, labels, C)
        XCTAssertEqual(s.meanLoss, ref.loss, accuracy: 1e-5)
        assertClose(d, ref.grad, Tolerance.absolute(1e-6))
    }

    func testMSEMatchesNaive() {
        let z = sampleLogits(N, C)
        let (s, d) = evaluate(.mse, z, labels, classes: C)
        let ref = naiveMSE(z, labels, C)
        XCTAssertEqual(s.meanLoss, ref.loss, accuracy: 1e-12)
        assertClose(d, ref.grad, Tolerance.absolute(1e-12))
        let (sf, df) = evaluate(.mse, z.map(Float.init), labels, classes: C)
        XCTAssertEqual(sf.meanLoss, ref.loss, accuracy: 1e-5)
        assertClose(df, ref.grad, Tolerance.absolute(1e-6))
    }

    /// The documented convention, by hand: one example, logits [0.5, 2], label 1:
    /// 0.5 * (0.5^2 + 1^2) = 0.625, gradient [0.5, 1].
    func testMSEConventionByHand() {
        let (s, d) = evaluate(.mse, [0.5, 2.0], [1], classes: 2)
        XCTAssertEqual(s.meanLoss, 0.625)
        XCTAssertEqual(d, [0.5, 1.0])
    }

    /// Central differences of the mean loss in Double against the analytic gradient.
    func testGradientsMatchFiniteDifferences() {
        let z = sampleLogits(N, C)
        for loss in LossFunction.allCases {
            let (_, d) = evaluate(loss, z, labels, classes: C)
            let h = 1e-5
            let fd = (0..<z.count).map { k -> Double in
                var plus = z, minus = z
                plus[k] += h; minus[k] -= h
                return (lossOnly(loss, plus, labels, classes: C).meanLoss - lossOnly(loss, minus, labels, classes: C).meanLoss) / (2 * h)
            }
            assertClose(d, fd, Tolerance.absolute(1e-7), "\(loss)")
        }
    }

    /// Logits +-1000: exp overflows without max subtraction. Row [1000, -1000, 0] gives losses
    /// 0 (label 0), 2000 (label 1), 1000 (label 2) up to e^-1000, far below rounding.
    func testCrossEntropyStableAtExtremeLogits() {
        let row: [Double] = [1000, -1000, 0]
        let z = row + row + row
        func check(_ name: String, _ s: LossSummary, _ d: [Double]) {
            XCTAssertEqual(s.lossSum, 3000, accuracy: 1e-9, name)
            XCTAssertEqual(s.meanLoss, 1000, accuracy: 1e-9, name)
            XCTAssertTrue(d.allSatisfy(\.isFinite), name)
            // softmax is [1, 0, 0] in every row.
            assertClose(d, [0, 0, 0, 1.0 / 3, -1.0 / 3, 0, 1.0 / 3, 0, -1.0 / 3], Tolerance.absolute(1e-7), name)
            XCTAssertEqual(s.correct, 1, name)
        }
        let (sd, dd) = evaluate(.crossEntropy, z, [0, 1, 2], classes: 3)
        check("Double", sd, dd)
        let (sf, df) = evaluate(.crossEntropy, z.map(Float.init), [0, 1, 2], classes: 3)
        check("Float", sf, df.map(Double.init))
        // Large offset, small gap: loss log(1 + e^-10) = 4.54e-5 survives in Float (computing
        // (m + log s) - z_y instead would cancel to a multiple of ulp(1e4) = 0.001).
        let (s, _) = evaluate(.crossEntropy, [Float(1e4), 1e4 - 10], [0], classes: 2)
        XCTAssertEqual(s.meanLoss, log1p(exp(-10.0)), accuracy: 2e-7)
    }

    /// Uniform logits: loss log C and gradient (1/C - onehot)/N, for any common value.
    func testUniformLogitsGiveLogC() {
        for value in [0.0, 7.5, -300] {
            let z = [Double](repeating: value, count: N * C)
            let (s, d) = evaluate(.crossEntropy, z, labels, classes: C)
            XCTAssertEqual(s.meanLoss, log(Double(C)), accuracy: 1e-12)
            var expected = [Double](repeating: 1 / Double(C) / Double(N), count: N * C)
            for i in 0..<N { expected[i * C + Int(labels[i])] -= 1 / Double(N) }
            assertClose(d, expected, Tolerance.absolute(1e-12))
        }
    }

    /// Argmax ties go to the lowest index: [2, 5, 5] predicts class 1.
    func testCorrectCountAndTies() {
        let z: [Float] = [2, 5, 5,  2, 5, 5,  9, 1, 1,  0, 0, 0]
        let y: [Int32] = [1, 2, 0, 0]
        for loss in LossFunction.allCases {
            let s = lossOnly(loss, z, y, classes: 3)
            XCTAssertEqual(s.correct, 3, "\(loss)")   // rows 0, 2, 3 correct; row 1 (label 2) wrong
            XCTAssertEqual(s.errorRate, 0.25, "\(loss)")
        }
        var pred = [Int32](repeating: -1, count: 4)
        z.withUnsafeBufferPointer { l in pred.withUnsafeMutableBufferPointer { argmaxRows(logits: l, classes: 3, predictions: $0) } }
        XCTAssertEqual(pred, [1, 1, 0, 0])
    }

    /// A sharded batch: each shard divides by the global size, so shard gradients concatenate to
    /// the whole batch's gradient and summaries add to the whole batch's summary.
    func testShardsWithGlobalDivisorReassembleTheBatch() {
        let z = sampleLogits(N, C)
        for loss in LossFunction.allCases {
            let (whole, dWhole) = evaluate(loss, z, labels, classes: C)
            let (a, dA) = evaluate(loss, Array(z[0..<(2 * C)]), Array(labels[0..<2]), classes: C, divisor: N)
            let (b, dB) = evaluate(loss, Array(z[(2 * C)...]), Array(labels[2...]), classes: C, divisor: N)
            assertClose(dA + dB, dWhole, Tolerance.absolute(1e-15), "\(loss)")
            let sum = a + b
            XCTAssertEqual(sum.count, whole.count)
            XCTAssertEqual(sum.correct, whole.correct)
            XCTAssertEqual(sum.lossSum, whole.lossSum, accuracy: 1e-12)
        }
    }

    func testLossNamesForExperimentFiles() {
        XCTAssertEqual(LossFunction(rawValue: "cross_entropy"), .crossEntropy)
        XCTAssertEqual(LossFunction(rawValue: "mse"), .mse)
    }
}
