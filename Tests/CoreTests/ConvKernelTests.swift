@testable import Core
import TestSupport
import XCTest

/// The Winograd convolution's own GEMM kernels (`SmallGEMM`) and its cached filter transforms.
final class ConvKernelTests: XCTestCase {
    /// Both kernels against a Double triple loop, on shapes with every kind of tail (rows not a
    /// multiple of 4, columns not a multiple of 8 or 16, inner dimensions not a multiple of 8),
    /// writing and accumulating, with and without a scale.
    func testSmallGEMMMatchesNaiveProducts() {
        var r = TestRandom(3)
        for (m, n, k) in [(1, 1, 1), (3, 5, 2), (4, 8, 8), (5, 17, 9), (16, 512, 16), (7, 49, 13), (9, 30, 33), (64, 16, 64)] {
            for accumulate in [false, true] {
                for alpha in [1.0, 2.0] {
                    let a = r.array(m * k), bnn = r.array(k * n), bnt = r.array(n * k), c0 = r.array(m * n)
                    var nn = c0, nt = c0
                    a.withUnsafeBufferPointer { ap in
                        bnn.withUnsafeBufferPointer { bp in nn.withUnsafeMutableBufferPointer {
                            SmallGEMM.nn(m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, b: bp.baseAddress!, accumulate: accumulate,
                                         c: $0.baseAddress!)
                        } }
                        bnt.withUnsafeBufferPointer { bp in nt.withUnsafeMutableBufferPointer {
                            SmallGEMM.nt(m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, b: bp.baseAddress!, accumulate: accumulate,
                                         c: $0.baseAddress!)
                        } }
                    }
                    var wantNN = [Double](repeating: 0, count: m * n), wantNT = wantNN
                    for i in 0..<m { for j in 0..<n {
                        var s = 0.0, t = 0.0
                        for p in 0..<k { s += a[i * k + p] * bnn[p * n + j]; t += a[i * k + p] * bnt[j * k + p] }
                        wantNN[i * n + j] = alpha * s + (accumulate ? c0[i * n + j] : 0)
                        wantNT[i * n + j] = alpha * t + (accumulate ? c0[i * n + j] : 0)
                    } }
                    assertClose(nn, wantNN, Tolerance.double, "nn \(m)x\(n)x\(k) accumulate \(accumulate) alpha \(alpha)")
                    assertClose(nt, wantNT, Tolerance.double, "nt \(m)x\(n)x\(k) accumulate \(accumulate) alpha \(alpha)")
                }
            }
        }
    }

    /// A column's result does not depend on where it lies in `C` or how wide `C` is (the tails run
    /// the same arithmetic), in Float: the property that keeps a tile's result independent of the
    /// chunk it is computed in. `nt` computes each element as `nn` does.
    func testSmallGEMMColumnsIndependentOfWidth() {
        var r = TestRandom(4)
        let m = 6, k = 13, n = 37
        let a = r.array(m * k).map { Float($0) }, b = r.array(k * n).map { Float($0) }
        func product(_ cols: Range<Int>) -> [Float] {
            let w = cols.count
            var sub = [Float](repeating: 0, count: k * w), c = [Float](repeating: 0, count: m * w)
            for p in 0..<k { for j in 0..<w { sub[p * w + j] = b[p * n + cols.lowerBound + j] } }
            a.withUnsafeBufferPointer { ap in sub.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer {
                SmallGEMM.nn(m: m, n: w, k: k, alpha: 1, a: ap.baseAddress!, b: bp.baseAddress!, accumulate: false, c: $0.baseAddress!)
            } } }
            return c
        }
        let whole = product(0..<n)
        // `nt` of the transposed B is `nn`'s arithmetic on a transposed copy: the same bits.
        var bt = [Float](repeating: 0, count: n * k), viaNT = [Float](repeating: 0, count: m * n)
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        a.withUnsafeBufferPointer { ap in bt.withUnsafeBufferPointer { bp in viaNT.withUnsafeMutableBufferPointer {
            SmallGEMM.nt(m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, b: bp.baseAddress!, accumulate: false, c: $0.baseAddress!)
        } } }
        XCTAssertEqual(viaNT.map(\.bitPattern), whole.map(\.bitPattern), "nt of B^T against nn of B")
        for cols in [0..<5, 3..<20, 17..<37, 30..<37] {
            let part = product(cols)
            for i in 0..<m { for j in 0..<cols.count {
                XCTAssertEqual(part[i * cols.count + j].bitPattern, whole[i * n + cols.lowerBound + j].bitPattern, "column \(cols.lowerBound + j)")
            } }
        }
    }

    /// The Winograd filter transforms cached between calls follow the weights, not their address:
    /// after changing weights in place (first, middle and last element), forward and backward equal
    /// those of a fresh layer bit for bit (Float), and the bias-only change keeps the cache valid.
    func testWinogradFilterCacheFollowsWeights() {
        let shape = Shape(5, 6, 7), cout = 4, n = 2
        var r = TestRandom(9)
        let x = r.array(n * shape.count).map { Float($0) }, dy = r.array(n * cout * shape.plane).map { Float($0) }
        func make() -> (Conv2D<Float>, Int) {
            let layout = ParameterLayout()
            let conv = Conv2D<Float>("c", in: shape, out: cout, kernel: 3, padding: 1, bias: true, layout: layout)
            conv.algorithm = .winograd
            return (conv, layout.parameterCount)
        }
        func run(_ conv: Conv2D<Float>, _ params: Buffer<Float>) -> [Float] {
            let r = Self.forwardBackward(conv, params, x: x, dy: dy, n: n)
            return r.y + r.dx + r.grads
        }
        let (cached, count) = make()
        let params = Buffer<Float>(r.array(count).map { Float($0) })
        let first = run(cached, params)
        XCTAssertEqual(run(cached, params), first, "unchanged weights")
        let weights = cout * shape.c * 9
        for i in [0, weights / 2, weights - 1, weights] {   // the last: a bias, outside the transformed weights
            params[i] += 0.25
            let (fresh, _) = make()
            XCTAssertEqual(run(cached, params).map(\.bitPattern), run(fresh, params).map(\.bitPattern), "after changing parameter \(i)")
        }
    }
    /// Forward and backward of a Winograd convolution in several chunks give the same bits on one
    /// worker (weight-gradient terms added into one partial as they come) and on two (one partial
    /// per chunk, summed in chunk order), Float.
    func testWinogradSameBitsForAnyWorkerCount() {
        let shape = Shape(16, 32, 32), cout = 16, n = 5
        let layout = ParameterLayout()
        let conv = Conv2D<Float>("c", in: shape, out: cout, kernel: 3, padding: 1, bias: true, layout: layout)
        conv.algorithm = .winograd
        XCTAssertTrue(conv.usesWinograd4)
        XCTAssertLessThan(conv.winogradChunk(n), n, "several F(2x2, 3x3) chunks (weight gradient)")
        XCTAssertLessThan(conv.winogradChunk(Winograd4.self, n, inputs: shape.c, outputs: cout), n,
                          "several F(4x4, 3x3) chunks (forward, input gradient)")
        var r = TestRandom(11)
        let params = Buffer<Float>(r.array(layout.parameterCount).map { Float($0) })
        let x = r.array(n * shape.count).map { Float($0) }, dy = r.array(n * cout * shape.plane).map { Float($0) }
        func run() -> [UInt32] {
            let r = Self.forwardBackward(conv, params, x: x, dy: dy, n: n)
            return (r.y + r.dx + r.grads).map(\.bitPattern)
        }
        let one = BLASThreads.with(threads: 1) { run() }, two = BLASThreads.with(threads: 2) { run() }
        XCTAssertEqual(one, two)
    }

    /// F(4x4, 3x3) in Float rounds about ten times coarser than a direct convolution (its transforms'
    /// coefficients reach 8 and 5/24): the forward and input gradient of ResNet-20's first-stage
    /// layer (16 channels, 32x32) against the Double im2col path (itself checked against the
    /// direct-loop oracle in `LayerTests`), as the largest error over the largest value. Bounds at
    /// about twice the errors measured here (forward 3.3e-6, input gradient 3.7e-6; im2col 4.2e-7
    /// and 1.4e-7); the weight gradient, by F(2x2, 3x3), 6.4e-7 (im2col 5.0e-7).
    func testWinograd4FloatAccuracy() {
        let shape = Shape(16, 32, 32), cout = 16, n = 2
        var r = TestRandom(21)
        let params = r.array(cout * shape.c * 9 + cout), x = r.array(n * shape.count), dy = r.array(n * cout * shape.plane)
        func run<T: Real>(_: T.Type, _ algorithm: Conv2D<T>.Algorithm) -> [[Double]] {
            let conv = Conv2D<T>("c", in: shape, out: cout, kernel: 3, padding: 1, bias: true, layout: ParameterLayout())
            conv.algorithm = algorithm
            let result = Self.forwardBackward(conv, Buffer(params.map { T($0) }), x: x.map { T($0) }, dy: dy.map { T($0) }, n: n)
            return [result.y, result.dx, result.grads].map { $0.map { Double($0) } }
        }
        XCTAssertTrue(Conv2D<Float>("c", in: shape, out: cout, kernel: 3, padding: 1, bias: true, layout: ParameterLayout()).usesWinograd4)
        let reference = run(Double.self, .im2col)
        func errors(_ got: [[Double]]) -> [Double] {
            zip(got, reference).map { g, e in
                zip(g, e).map { abs($0 - $1) }.max()! / e.map(abs).max()!
            }
        }
        let winograd = errors(run(Float.self, .winograd)), im2col = errors(run(Float.self, .im2col))
        print("F(4x4) Float relative errors y, dx, dW: \(winograd); im2col: \(im2col)")
        XCTAssertLessThan(winograd[0], 7e-6, "forward")
        XCTAssertLessThan(winograd[1], 7.5e-6, "input gradient")
        XCTAssertLessThan(winograd[2], 1.3e-6, "weight gradient")
        XCTAssertLessThan(im2col[0], 1e-6, "the direct path's rounding, for scale")
    }

    /// `y`, `dx` and the parameter gradient of one forward and backward in training mode.
    private static func forwardBackward<T: Real>(_ conv: Conv2D<T>, _ params: Buffer<T>, x: [T], dy: [T], n: Int)
        -> (y: [T], dx: [T], grads: [T]) {
        let grads = Buffer<T>(count: params.count)
        var y = [T](repeating: 0, count: dy.count), dx = [T](repeating: 0, count: x.count)
        let ctx = LayerContext(params: params.pointer, grads: grads.pointer, state: grads.pointer, mode: .train)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, $0.baseAddress!, n: n, ctx) }
            dx.withUnsafeMutableBufferPointer { dxp in
                conv.backward(x: xp.baseAddress!, y: y, dy: dy, dx: dxp.baseAddress!, n: n, ctx)
            }
        }
        return (y, dx, grads.array)
    }

    /// The register transposes (`Transpose`; Float takes the unpack path, Double the generic
    /// even/odd rounds) against their index definitions, value for value.
    func testTransposesMatchIndexDefinitions() {
        func check<T: Real>(_: T.Type) {
            var r = TestRandom(3)
            let values = r.array(64).map { T($0) }
            func v8(_ i: Int) -> SIMD8<T> { SIMD8((0..<8).map { values[8 * i + $0] }) }
            func v4(_ i: Int) -> SIMD4<T> { SIMD4((0..<4).map { values[4 * i + $0] }) }
            func flat<V: SIMD>(_ t: Transpose.Four<V>) -> [V.Scalar] { [t.0, t.1, t.2, t.3].flatMap { v in v.indices.map { v[$0] } } }
            // interleave: out[i] = r.(i % 4)[i / 4], with n lanes per vector.
            let i8 = flat(Transpose.interleave((v8(0), v8(1), v8(2), v8(3))))
            XCTAssertEqual(i8, (0..<32).map { values[8 * ($0 % 4) + $0 / 4] }, "interleave 4 x 8 \(T.self)")
            let i4 = flat(Transpose.interleave((v4(0), v4(1), v4(2), v4(3))))
            XCTAssertEqual(i4, (0..<16).map { values[4 * ($0 % 4) + $0 / 4] }, "interleave 4 x 4 \(T.self)")
            // deinterleave: out.k[l] = m[4 l + k].
            let d8 = flat(Transpose.deinterleave((v8(0), v8(1), v8(2), v8(3))))
            XCTAssertEqual(d8, (0..<32).map { values[4 * ($0 % 8) + $0 / 8] }, "deinterleave 8 x 4 \(T.self)")
            let t = Transpose.transpose8((v8(0), v8(1), v8(2), v8(3), v8(4), v8(5), v8(6), v8(7)))
            let t8 = [t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7].flatMap { v in v.indices.map { v[$0] } }
            XCTAssertEqual(t8, (0..<64).map { values[8 * ($0 % 8) + $0 / 8] }, "transpose 8 x 8 \(T.self)")
        }
        check(Float.self)
        check(Double.self)
    }
}
