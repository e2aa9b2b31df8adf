/// The architectures NTKScape trains. Parameter names follow the PyTorch modules documented in
/// `docs/checkpoints.md`, so a checkpoint loads into them with `load_state_dict`.
public enum ModelKind: String, CaseIterable, Codable, Sendable {
    /// Fort et al. 2020 appendix D.1: six 3x3 convolutions with bias (32, 32, 64, 64, 128, 128),
    /// 2x2 max-pool after convolutions 2, 4, 6, global average pool, linear classifier. No BatchNorm.
    case simplecnn
    /// He et al. 2016 CIFAR ResNet-20: 3 stages x 3 basic blocks, 16/32/64 channels, option-A shortcuts.
    case resnet20
    /// ResNet-20 without BatchNorm (convolutions gain biases instead).
    case resnet20_nobn
    /// Zagoruyko & Komodakis 2016 WRN-16-4, pre-activation blocks, no dropout, 1x1 projection shortcuts.
    case wrn16_4
    /// Two hidden layers of 512 and 256 ReLU units on the flattened input.
    case mlp
    /// SimpleCNN at half width (16, 16, 32, 32, 64, 64 channels): about 4x fewer FLOPs.
    case simplecnn_w16
    /// SimpleCNN at quarter width (8, 8, 16, 16, 32, 32 channels): about 15x fewer FLOPs; the
    /// built-in quick experiment's network, small enough for a 10-minute run on two cores.
    case simplecnn_w8
    /// One linear layer (`fc`, with bias) on the flattened input: a linear model, whose NTK is known
    /// in closed form (`(X X^T + 1) ⊗ I_C`) — the reference case for kernel and linearisation checks.
    case linear

    public var summary: String {
        switch self {
        case .simplecnn: return "SimpleCNN (Fort et al. 2020, D.1): 6 conv + GAP + linear, no BN"
        case .resnet20: return "ResNet-20 (He et al. 2016), BatchNorm, option-A shortcuts"
        case .resnet20_nobn: return "ResNet-20 without BatchNorm (biased convolutions)"
        case .wrn16_4: return "WRN-16-4 (Zagoruyko & Komodakis 2016), no dropout"
        case .mlp: return "MLP 512-256 with ReLU"
        case .simplecnn_w16: return "SimpleCNN at half width (16-16-32-32-64-64)"
        case .simplecnn_w8: return "SimpleCNN at quarter width (8-8-16-16-32-32)"
        case .linear: return "linear model (one fully connected layer with bias)"
        }
    }

    /// Whether the architecture has BatchNorm layers (running statistics to prepare for analysis).
    public var hasBatchNorm: Bool { self == .resnet20 || self == .wrn16_4 }

    /// Builds the network for inputs of `input` shape and `classes` outputs (parameters zero until
    /// `initialize`; BatchNorm at its defaults), its convolutions computed as `convolutions` says.
    public func build<T: Real>(input: Shape, classes: Int, as: T.Type = T.self,
                               convolutions: ConvolutionChoice = .winograd) -> Network<T> {
        let b = ModelBuilder<T>(input: input, convolutions: convolutions)
        switch self {
        case .simplecnn, .simplecnn_w16, .simplecnn_w8:
            let w = self == .simplecnn ? 32 : self == .simplecnn_w16 ? 16 : 8
            for (i, c) in [w, w, 2 * w, 2 * w, 4 * w, 4 * w].enumerated() {
                b.conv("conv\(i + 1)", out: c, bias: true)
                b.relu()
                if i % 2 == 1 { b.maxPool() }
            }
            b.globalAvgPool()
            b.linear("fc", out: classes)
        case .resnet20, .resnet20_nobn:
            let bn = self == .resnet20
            b.conv("conv1", out: 16, bias: !bn)
            if bn { b.batchNorm("bn1") }
            b.relu()
            for (stage, width) in [16, 32, 64].enumerated() {
                for block in 0..<3 {
                    b.basicBlock("layer\(stage + 1).\(block)", out: width, stride: stage > 0 && block == 0 ? 2 : 1,
                                 batchNorm: bn, shortcut: .optionA)
                }
            }
            b.globalAvgPool()
            b.linear("linear", out: classes)
        case .wrn16_4:
            let blocks = (16 - 4) / 6, k = 4
            b.conv("conv1", out: 16, bias: false)
            for (stage, width) in [16 * k, 32 * k, 64 * k].enumerated() {
                for block in 0..<blocks {
                    b.preActivationBlock("block\(stage + 1).layer.\(block)", out: width,
                                         stride: stage > 0 && block == 0 ? 2 : 1)
                }
            }
            b.batchNorm("bn1")
            b.relu()
            b.globalAvgPool()
            b.linear("fc", out: classes)
        case .mlp:
            b.flatten()
            b.linear("fc1", out: 512); b.relu()
            b.linear("fc2", out: 256); b.relu()
            b.linear("fc3", out: classes)
        case .linear:
            b.flatten()
            b.linear("fc", out: classes)
        }
        return Network(kind: self, inputShape: input, classes: classes, layout: b.layout, layers: b.layers,
                       batchNorms: b.batchNorms, convolutions: convolutions)
    }
}

/// Appends layers while tracking the current shape and registering parameters in order.
final class ModelBuilder<T: Real> {
    let layout: ParameterLayout
    var layers: [any Layer<T>] = []
    var batchNorms: [BatchNorm2D<T>] = []
    var shape: Shape
    let convolutions: ConvolutionChoice

    init(input: Shape, layout: ParameterLayout = ParameterLayout(), convolutions: ConvolutionChoice) {
        shape = input; self.layout = layout; self.convolutions = convolutions
    }

    private func add(_ l: any Layer<T>) { layers.append(l); shape = l.outShape }

    func conv(_ name: String, out: Int, kernel: Int = 3, stride: Int = 1, bias: Bool) {
        add(Conv2D<T>(name, in: shape, out: out, kernel: kernel, stride: stride, padding: kernel / 2, bias: bias, layout: layout,
                       convolutions: convolutions))
    }
    func batchNorm(_ name: String) {
        let bn = BatchNorm2D<T>(name, shape: shape, layout: layout)
        batchNorms.append(bn); add(bn)
    }
    func relu() { add(ReLU<T>(shape: shape)) }
    func maxPool() { add(MaxPool2D<T>(shape: shape)) }
    func globalAvgPool() { add(GlobalAvgPool<T>(shape: shape)) }
    func flatten() { add(Flatten<T>(shape: shape)) }
    func linear(_ name: String, out: Int) { add(Linear<T>(name, in: shape.count, out: out, layout: layout)) }

    /// Runs `body` on a fresh builder sharing this one's parameter layout; returns its layers as a chain.
    private func chain(from input: Shape, _ body: (ModelBuilder<T>) -> Void) -> LayerChain<T> {
        let sub = ModelBuilder<T>(input: input, layout: layout, convolutions: convolutions)
        body(sub)
        batchNorms += sub.batchNorms
        return LayerChain(sub.layers, inShape: input)
    }

    /// Post-activation basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU.
    func basicBlock(_ name: String, out: Int, stride: Int, batchNorm bn: Bool, shortcut: ShortcutKind) {
        let input = shape
        let main = chain(from: input) { s in
            s.conv("\(name).conv1", out: out, stride: stride, bias: !bn)
            if bn { s.batchNorm("\(name).bn1") }
            s.relu()
            s.conv("\(name).conv2", out: out, bias: !bn)
            if bn { s.batchNorm("\(name).bn2") }
        }
        var projection: LayerChain<T>? = nil
        if shortcut == .projection && (stride != 1 || input.c != out) {
            projection = chain(from: input) { s in
                s.conv("\(name).shortcut.0", out: out, kernel: 1, stride: stride, bias: !bn)
                if bn { s.batchNorm("\(name).shortcut.1") }
            }
        }
        add(ResidualBlock(pre: nil, main: main, projection: projection, shortcutFromPre: false, postReLU: true))
    }

    /// Pre-activation wide block: BN-ReLU, conv3x3(stride)-BN-ReLU-conv3x3, plus the identity or a
    /// 1x1 projection of the activated input.
    func preActivationBlock(_ name: String, out: Int, stride: Int) {
        let input = shape
        let pre = chain(from: input) { s in s.batchNorm("\(name).bn1"); s.relu() }
        let main = chain(from: input) { s in
            s.conv("\(name).conv1", out: out, stride: stride, bias: false)
            s.batchNorm("\(name).bn2"); s.relu()
            s.conv("\(name).conv2", out: out, bias: false)
        }
        let projects = stride != 1 || input.c != out
        let projection = projects ? chain(from: input) { s in
            s.conv("\(name).convShortcut", out: out, kernel: 1, stride: stride, bias: false)
        } : nil
        add(ResidualBlock(pre: pre, main: main, projection: projection, shortcutFromPre: projects, postReLU: false))
    }
}

public extension ModelKind {
    /// Why `build(input:classes:)` cannot make this architecture for `input` and `classes` (nil: it
    /// can): every size positive and at most 4096 (a network of more inputs is no CIFAR/MNIST
    /// model), 1 to 100000 classes, and images large enough for every pooling window.
    func inputProblem(_ input: Shape, classes: Int) -> String? {
        if !(1...4096).contains(input.c) || !(1...4096).contains(input.h) || !(1...4096).contains(input.w) {
            return "the input shape \(input.c),\(input.h),\(input.w) (channels, height, width) needs every size in 1...4096"
        }
        if !(1...100_000).contains(classes) { return "the class count \(classes) must lie in 1...100000" }
        switch self {
        case .simplecnn, .simplecnn_w16, .simplecnn_w8:
            if input.h < 8 || input.w < 8 {
                return "SimpleCNN pools three times by 2, so images must be at least 8 x 8, not \(input.h) x \(input.w)"
            }
        default: break
        }
        return nil
    }
}
