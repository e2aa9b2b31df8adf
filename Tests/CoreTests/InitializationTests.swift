import Core
import Foundation
import XCTest

/// The initial weights of every model against the closed form documented in
/// docs/initialisation.md: convolution and linear weights N(0, 2 / fan_in) with
/// fan_in = in_channels * kh * kw (He et al. 2015, Kaiming normal, fan_in, ReLU gain sqrt 2),
/// every bias 0, BatchNorm weight 1 / bias 0, running mean 0 / variance 1.
final class InitializationTests: XCTestCase {
    static let seed: UInt64 = 20201028
    static let input = Shape(3, 32, 32)

    /// A network initialised the way training does it (`Trainer.initializeWeights`), after its
    /// buffers were filled with garbage so that anything initialisation forgets shows up.
    static func initialised(_ model: ModelKind, replicate: Int = 0) -> Network<Float> {
        let net = model.build(input: input, classes: 10, as: Float.self)
        net.params.pointer.update(repeating: 7, count: net.parameterCount)
        net.state.pointer.update(repeating: 7, count: net.layout.stateCount)
        let data = SyntheticData.make(SyntheticSpec(trainCount: 4, testCount: 1, channels: 3, height: 32, width: 32)).train
        var recipe = TrainingRecipe()
        recipe.batchSize = 2   // the trainer sizes activations for one batch; keep it small
        let trainer = Trainer(network: net, recipe: recipe, data: data,
                              identity: TrainingIdentity(seed: seed, replicate: replicate))
        trainer.initializeWeights()
        return net
    }

    /// fan_in as PyTorch's `_calculate_fan_in_and_fan_out` defines it: conv `[out, in, kh, kw]` ->
    /// in * kh * kw, linear `[out, in]` -> in.
    static func fanIn(_ shape: [Int]) -> Int {
        switch shape.count {
        case 4: return shape[1] * shape[2] * shape[3]
        case 2: return shape[1]
        default: preconditionFailure("no fan_in for shape \(shape)")
        }
    }

    struct Moments { var n: Int; var mean: Double; var variance: Double }
    static func moments(_ p: UnsafePointer<Float>, _ n: Int) -> Moments {
        var s = 0.0
        for i in 0..<n { s += Double(p[i]) }
        let mean = s / Double(n)
        var ss = 0.0
        for i in 0..<n { ss += (Double(p[i]) - mean) * (Double(p[i]) - mean) }
        return Moments(n: n, mean: mean, variance: ss / Double(n - 1))
    }

    /// Sample mean within 4 standard errors of 0 and sample variance within 4 standard errors of
    /// `variance` (for a normal sample, SE(mean) = sqrt(var / n), SE(s^2) = var * sqrt(2 / (n - 1))).
    static func consistent(_ m: Moments, variance: Double) -> (ok: Bool, detail: String) {
        let seMean = (variance / Double(m.n)).squareRoot()
        let seVar = variance * (2 / Double(m.n - 1)).squareRoot()
        let ok = abs(m.mean) <= 4 * seMean && abs(m.variance - variance) <= 4 * seVar
        return (ok, "n \(m.n): mean \(m.mean) (4 SE \(4 * seMean)), variance \(m.variance) vs \(variance) (4 SE \(4 * seVar))")
    }

    /// Hand-computed fan-ins of a few layers per model (the documented architectures), so the
    /// shape-based rule above is checked against independent numbers.
    static let spotFanIns: [ModelKind: [String: Int]] = [
        .simplecnn: ["conv1.weight": 3 * 9, "conv2.weight": 32 * 9, "conv6.weight": 128 * 9, "fc.weight": 128],
        .simplecnn_w16: ["conv1.weight": 27, "conv5.weight": 32 * 9, "fc.weight": 64],
        .simplecnn_w8: ["conv1.weight": 27, "conv4.weight": 16 * 9, "fc.weight": 32],
        .resnet20: ["conv1.weight": 27, "layer1.0.conv1.weight": 144, "layer2.0.conv1.weight": 144,
                    "layer2.0.conv2.weight": 288, "layer3.2.conv2.weight": 576, "linear.weight": 64],
        .resnet20_nobn: ["conv1.weight": 27, "layer3.0.conv1.weight": 288, "linear.weight": 64],
        .wrn16_4: ["conv1.weight": 27, "block1.layer.0.conv1.weight": 144, "block1.layer.0.convShortcut.weight": 16,
                   "block2.layer.0.convShortcut.weight": 64, "block3.layer.1.conv2.weight": 256 * 9, "fc.weight": 256],
        .mlp: ["fc1.weight": 3072, "fc2.weight": 512, "fc3.weight": 256],
        .linear: ["fc.weight": 3072],
    ]

    func testEveryModelsInitialWeightsFollowTheDocumentedDistribution() {
        for model in ModelKind.allCases {
            let net = Self.initialised(model)
            let p = net.params.pointer, s = net.state.pointer
            let bnModules = Set(net.layout.state.compactMap { v in
                v.name.hasSuffix(".running_mean") ? String(v.name.dropLast(".running_mean".count)) : nil })
            var z2 = 0.0, z4 = 0.0, total = 0, weightTensors = 0
            for v in net.layout.parameters {
                let module = String(v.name[..<v.name.lastIndex(of: ".")!])
                if bnModules.contains(module) {
                    let want: Float = v.name.hasSuffix(".weight") ? 1 : 0
                    XCTAssertTrue((0..<v.count).allSatisfy { p[v.offset + $0] == want }, "\(model) \(v.name) must be \(want)")
                } else if v.shape.count == 1 {
                    XCTAssertTrue(v.name.hasSuffix(".bias"), "\(model) \(v.name)")
                    XCTAssertTrue((0..<v.count).allSatisfy { p[v.offset + $0] == 0 }, "\(model) \(v.name) must be 0")
                } else {
                    weightTensors += 1
                    let fan = Self.fanIn(v.shape)
                    if let spot = Self.spotFanIns[model]?[v.name] { XCTAssertEqual(fan, spot, "\(model) \(v.name) fan_in") }
                    let variance = 2 / Double(fan)
                    // Every weight tensor here has at least 216 elements (quarter-width conv1:
                    // 8 x 3 x 3 x 3), where 4 SE of the variance is 38%: loose but still a check;
                    // the pooled moments below are the tight one.
                    XCTAssertGreaterThanOrEqual(v.count, 216, "\(model) \(v.name)")
                    let (ok, detail) = Self.consistent(Self.moments(p + v.offset, v.count), variance: variance)
                    XCTAssertTrue(ok, "\(model) \(v.name) is not N(0, 2/\(fan)): \(detail)")
                    let inv = 1 / variance.squareRoot()
                    for i in v.range { let z = Double(p[i]) * inv; z2 += z * z; z4 += z * z * z * z }
                    total += v.count
                }
            }
            XCTAssertGreaterThan(weightTensors, 0)
            XCTAssertEqual(Set(Self.spotFanIns[model]!.keys).subtracting(net.layout.parameters.map(\.name)), [],
                           "\(model): spot-checked layers exist")
            // Pooled standardised weights z = w / sqrt(2 / fan_in) are N(0, 1): E z^2 = 1 with
            // SE sqrt(2 / N), E z^4 = 3 with SE sqrt((105 - 9) / N) (normal 8th moment 105). The
            // fourth moment separates a normal from a uniform of the same variance (1.8).
            let n = Double(total)
            XCTAssertEqual(z2 / n, 1, accuracy: 4 * (2 / n).squareRoot(), "\(model): pooled variance")
            XCTAssertEqual(z4 / n, 3, accuracy: 4 * (96 / n).squareRoot(), "\(model): pooled kurtosis (normal: 3)")
            for v in net.layout.state {
                let want: Float = v.name.hasSuffix(".running_var") ? 1 : 0
                XCTAssertTrue((0..<v.count).allSatisfy { s[v.offset + $0] == want }, "\(model) \(v.name) must be \(want)")
            }
            XCTAssertEqual(net.layout.state.count, 2 * bnModules.count, "\(model): running mean and var per BatchNorm")
            XCTAssertEqual(bnModules.isEmpty, [.simplecnn, .simplecnn_w16, .simplecnn_w8, .resnet20_nobn, .mlp, .linear].contains(model),
                           "\(model): BatchNorm only in resnet20 and wrn16_4")
        }
    }

    /// The weights are the standard normal draws of stream (seed, replicate, .initialization,
    /// child) in parameter order, scaled per tensor: the keying docs/initialisation.md states.
    func testInitialisationIsTheDocumentedStreamInParameterOrder() {
        let net = Self.initialised(.resnet20)
        var stream = RandomStream(seed: Self.seed, replicate: 0, role: .initialization, child: 0)
        var expected = [Float](repeating: 0, count: net.parameterCount)
        for v in net.layout.parameters where v.shape.count >= 2 {
            let std = (2 / Double(Self.fanIn(v.shape))).squareRoot()
            for i in v.range { expected[i] = Float(std * stream.normal()) }
        }
        for v in net.layout.parameters where v.shape.count == 1 && v.name.contains("bn") && v.name.hasSuffix(".weight") {
            for i in v.range { expected[i] = 1 }
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: net.params.pointer, count: net.parameterCount)), expected)
        // Another replicate draws from another stream.
        let other = Self.initialised(.resnet20, replicate: 1)
        let w = net.layout.parameter(named: "conv1.weight")!
        XCTAssertNotEqual(Array(UnsafeBufferPointer(start: net.params.pointer + w.offset, count: w.count)),
                          Array(UnsafeBufferPointer(start: other.params.pointer + w.offset, count: w.count)))
    }

    /// The moment check has the power to tell NTKScape's initialisation from PyTorch's default
    /// (`kaiming_uniform_(a=sqrt(5))`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in),
    /// six times smaller) on the smallest tensors it is applied to.
    func testMomentCheckRejectsPyTorchDefaultInit() {
        let fan = 27, n = 216   // simplecnn_w8 conv1: 8 x 3 x 3 x 3
        var stream = RandomStream(seed: 1, role: .other)
        let bound = 1 / Double(fan).squareRoot()
        let u = (0..<n).map { _ in Float(-bound + 2 * bound * stream.uniformDouble()) }
        let m = u.withUnsafeBufferPointer { Self.moments($0.baseAddress!, n) }
        XCTAssertEqual(m.variance, 1 / (3 * Double(fan)), accuracy: 0.3 / (3 * Double(fan)))
        XCTAssertFalse(Self.consistent(m, variance: 2 / Double(fan)).ok)
    }
}
