import Foundation
import XCTest
@testable import Core

/// NaN propagation through ReLU and max pooling against PyTorch's semantics written out:
/// `torch.relu(nan) = nan`, `threshold_backward(g, nan, 0) = g` (the select is `x <= 0 ? 0 : g`),
/// and `max_pool2d` outputs NaN for a window holding a NaN, routing the gradient to the last NaN.
final class NonFiniteLayerTests: XCTestCase {
    private func withContext<T>(_ body: (LayerContext<Float>) -> T) -> T {
        var scratch = [Float](repeating: 0, count: 4)
        return scratch.withUnsafeMutableBufferPointer { b in
            body(LayerContext(params: b.baseAddress!, grads: b.baseAddress!, state: b.baseAddress!, mode: .train))
        }
    }

    func testReLUPropagatesNaNLikePyTorch() {
        let relu = ReLU<Float>(shape: Shape(6))
        let x: [Float] = [.nan, -1, 0, 2, -.infinity, .infinity]
        var y = [Float](repeating: -7, count: 6), dx = [Float](repeating: -7, count: 6), ty = [Float](repeating: -7, count: 6)
        let dy: [Float] = [10, 20, 30, 40, 50, 60]
        withContext { ctx in
            relu.forward(x, &y, n: 1, ctx)
            var c = ctx; c.overwriteInputGradient = true
            relu.backward(x: x, y: y, dy: dy, dx: &dx, n: 1, c)
            relu.jvp(x: x, y: y, tx: dy, ty: &ty, n: 1, ctx)
        }
        // torch.relu(tensor([nan, -1, 0, 2, -inf, inf])) = [nan, 0, 0, 2, 0, inf]
        XCTAssertTrue(y[0].isNaN)
        XCTAssertEqual(Array(y[1...]), [0, 0, 2, 0, .infinity])
        // threshold_backward(dy, x, 0) = where(x <= 0, 0, dy): NaN passes the gradient.
        XCTAssertEqual(dx, [10, 0, 0, 40, 0, 60])
        XCTAssertEqual(ty, [10, 0, 0, 40, 0, 60])
    }

    func testMaxPoolPropagatesNaNLikePyTorch() {
        for size in [2, 3] {   // the unrolled 2x2 path and the general one
            let pool = MaxPool2D<Float>(shape: Shape(1, size, 2 * size), size: size)
            // Two windows side by side: the left one holds NaNs at window positions 1 and the last,
            // the right one is finite with its maximum 9 at window position 2.
            var x = [Float](repeating: 0, count: size * 2 * size)
            func at(_ r: Int, _ c: Int) -> Int { r * 2 * size + c }
            x[at(0, 1)] = .nan; x[at(size - 1, size - 1)] = .nan; x[at(0, 0)] = 5
            x[at(0, size + 2 - (size == 2 ? 1 : 0))] = 9
            var y = [Float](repeating: -7, count: 2), dx = [Float](repeating: 0, count: x.count)
            withContext { ctx in
                pool.prepare(maxBatch: 1)
                pool.forward(x, &y, n: 1, ctx)
                pool.backward(x: x, y: y, dy: [1, 2], dx: &dx, n: 1, ctx)
            }
            XCTAssertTrue(y[0].isNaN, "size \(size): window with NaN must give NaN")
            XCTAssertEqual(y[1], 9, "size \(size)")
            // PyTorch's index: the last NaN in row-major window order receives the gradient.
            var expected = [Float](repeating: 0, count: x.count)
            expected[at(size - 1, size - 1)] = 1
            expected[at(0, size + 2 - (size == 2 ? 1 : 0))] = 2
            XCTAssertEqual(dx.map { $0 }, expected, "size \(size)")
        }
    }

    /// A NaN weight reaches the loss: the whole forward gives NaN logits, never a finite loss.
    func testNaNWeightGivesNaNLoss() {
        let net = ModelKind.simplecnn.build(input: Shape(1, 28, 28), classes: 10, as: Float.self)
        var stream = RandomStream(seed: 1, replicate: 0, role: .initialization, child: 0)
        net.initialize { stream.normal() }
        let w = net.layout.parameters.first { $0.name == "conv1.weight" }!
        net.params.pointer[w.offset] = .nan
        var data = [Float](repeating: 0.5, count: 2 * 28 * 28)
        for i in data.indices { data[i] = Float(i % 17) / 17 }
        let logits = data.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: 2, mode: .eval) }
        let values = Array(UnsafeBufferPointer(start: logits, count: 20))
        XCTAssertTrue(values.allSatisfy { $0.isNaN }, "\(values)")
        let labels: [Int32] = [3, 4]
        let loss = labels.withUnsafeBufferPointer {
            LossFunction.crossEntropy.evaluate(logits: UnsafeBufferPointer(start: logits, count: 20), labels: $0, classes: 10)
        }
        XCTAssertTrue(loss.meanLoss.isNaN)
    }
}
