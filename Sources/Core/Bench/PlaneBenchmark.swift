import Foundation

/// `ntkscape bench plane`: one grid point of the loss plane (placing the network at `w(x, y)` and
/// evaluating it on `examples` examples; with the tangent planes also the two linearised models)
/// against a plain evaluation forward of the same examples, in the same run.
public struct PlaneBenchResult: Encodable, Sendable {
    public var model: String
    public var examples: Int
    public var threads: Int
    /// Seconds of a plain evaluation of the examples (fastest of the timed repetitions).
    public var forwardSeconds: Double
    /// Seconds of one grid point: the network only, and with the two tangent-plane models.
    public var pointSeconds: Double
    public var pointWithTangentsSeconds: Double
    /// Grid points per second over the forward's rate (evaluations of the examples per second): the
    /// network alone (ideal 1) and with the tangent planes (ideal ~1/6: two forwards and JVPs more).
    public var pointRatio: Double
    public var pointWithTangentsRatio: Double
}

public extension Benchmark {
    static func plane(_ kind: ModelKind, examples: Int, input: Shape, classes: Int, repeats: Int, threads: Int,
                      convolutions: ConvolutionChoice = .winograd) throws -> PlaneBenchResult {
        let (_, test) = SyntheticData.make(SyntheticSpec(trainCount: 1, testCount: examples, channels: input.c,
                                                         height: input.h, width: input.w, classCount: classes))
        func network(_ seed: UInt64) -> Network<Float> {
            let net = kind.build(input: input, classes: classes, as: Float.self, convolutions: convolutions)
            var stream = RandomStream(seed: seed, role: .initialization)
            net.initialize { stream.normal() }
            return net
        }
        let plane = try LossPlane(origin: network(0), a: network(1), b: network(2))
        let scratch = network(0)
        let tangents = [LinearizedModel(around: plane.origin), LinearizedModel(around: plane.a)]
        let (x, y) = (0.5 * plane.coordinatesA.x, 0.5 * plane.coordinatesB.y)
        func point() { plane.place(scratch, x: x, y: y, batchNorm: .interpolate, recomputer: nil); _ = evaluate(scratch, on: test) }
        let best = bestSecondsInterleaved(repeats: repeats, [
            { _ = evaluate(scratch, on: test) },
            point,
            {
                point()
                for t in tangents {
                    plane.weights(x: x, y: y, into: t.weights.pointer)
                    _ = t.evaluate(on: test, loss: .crossEntropy)
                }
            },
        ])
        return PlaneBenchResult(model: kind.rawValue, examples: examples, threads: threads, forwardSeconds: best[0],
                                pointSeconds: best[1], pointWithTangentsSeconds: best[2], pointRatio: best[0] / best[1],
                                pointWithTangentsRatio: best[0] / best[2])
    }
}
