import ArgumentParser
import Core
import Foundation

/// `ntkscape train`: one network, one recipe, a checkpoint at the end (single process).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one network and write a safetensors checkpoint.",
        discussion: """
            Writes OUTPUT at the end and OUTPUT after every epoch (atomically), so --resume OUTPUT continues an \
            interrupted run bit for bit. The options carry the experiment file's key names (docs/experiment.md): \
            --model, --seed, --optimizer, --learning-rate, --momentum, --weight-decay, --batch-size, --epochs, \
            --loss are recipe.<key> (model, seed) in kebab case, --milestones/--gamma the schedule's, --dataset \
            dataset.kind, --data-path dataset.path, --train-subset/--test-subset/--augment dataset.<key>. \
            --lr and --batch are accepted as older spellings.
            """)

    @Option(help: "Architecture: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).") var model: ModelKind = .simplecnn
    @OptionGroup var data: DataOptions
    @Option(help: "Optimiser: sgd (momentum, PyTorch semantics) or adam.") var optimizer: OptimizerKind = .sgd
    @Option(name: [.customLong("learning-rate"), .customLong("lr")], help: "Base learning rate (recipe.learning_rate).")
    var lr: Double = 0.1
    @Option(help: "SGD momentum.") var momentum: Double = 0.9
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay added to the gradient.") var weightDecay: Double = 5e-4
    @Option(help: "Comma-separated epochs at which the learning rate is multiplied by --gamma (empty: constant).")
    var milestones: String = ""
    @Option(help: "Learning-rate factor at each milestone.") var gamma: Double = 0.1
    @Option(name: [.customLong("batch-size"), .customLong("batch")], help: "Examples per optimiser step (recipe.batch_size).")
    var batch: Int = 128
    @Option(help: "Training length in epochs (fractional allowed).") var epochs: Double = 10
    @Option(help: "Loss: cross_entropy or mse (one-hot targets).") var loss: LossFunction = .crossEntropy
    @Option(help: "Augmentation (pad-4 random crop + flip): auto (on for CIFAR), on, off.") var augment: String = "auto"
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Option(help: "OpenBLAS threads (default: $OPENBLAS_NUM_THREADS, else all cores).") var threads: Int?
    @Option(name: .shortAndLong, help: "Checkpoint to write.") var output: String = "model.safetensors"
    @Option(help: "Resume from this checkpoint (same settings).") var resume: String?

    func validate() throws {
        try OptionChecks.threads(threads)
        guard ["auto", "on", "off"].contains(augment) else { throw ValidationError("--augment must be auto, on or off") }
        if milestones.split(separator: ",").contains(where: { Double($0) == nil }) {
            throw ValidationError("--milestones must be comma-separated numbers, got \(milestones)")
        }
    }

    /// The command-line option of a setting `Checkpoint.resumeMismatches` names.
    static func option(for setting: String) -> String {
        switch setting {
        case "learningRate": return "--learning-rate"
        case "optimizer": return "--optimizer"
        case "momentum": return "--momentum"
        case "weightDecay": return "--weight-decay"
        case "schedule": return "--milestones/--gamma"
        case "batchSize": return "--batch-size"
        case "epochs": return "--epochs"
        case "loss": return "--loss"
        case "augment": return "--augment"
        case "seed": return "--seed"
        case "model": return "--model"
        case "data": return "the data (--dataset, --data, subset options)"
        default: return setting
        }
    }

    var recipe: TrainingRecipe {
        var r = TrainingRecipe()
        r.optimizer = optimizer; r.learningRate = lr; r.momentum = momentum; r.weightDecay = weightDecay
        let m = milestones.split(separator: ",").compactMap { Double($0) }
        r.schedule = m.isEmpty ? .constant : .step(milestones: m, gamma: gamma)
        r.batchSize = batch; r.epochs = epochs; r.loss = loss
        r.augment = augment == "on" || (augment == "auto" && data.dataset.usesCIFARAugmentation)
        return r
    }

    func run() throws {
        let decision = BLASThreads.configure(option: threads, ranksOnNode: 1)
        try recipe.validate()
        try OutputPath.checkWritableFile(output, option: "-o/--output")   // before training, not after
        let (train, test) = try data.load(seed: seed)
        let net = model.build(input: Shape(train.channels, train.height, train.width), classes: train.classCount, as: Float.self)
        let trainer = Trainer(network: net, recipe: recipe, data: train, identity: TrainingIdentity(seed: seed))
        trainer.learningRateSetting = "--learning-rate"
        trainer.dataDigest = DataDigest.digest(train)
        if let resume {
            let checkpoint = try Checkpoint.read(resume)
            let mismatches = checkpoint.resumeMismatches(recipe: recipe, seed: seed, model: model, dataDigest: trainer.dataDigest)
            if !mismatches.isEmpty {
                throw TaskFailure(task: "resuming from \(resume)",
                                  message: "the checkpoint was trained with other settings: "
                                      + mismatches.map { "\(Self.option(for: $0.setting)) \($0.stored) in the checkpoint, \($0.given) given" }
                                          .joined(separator: "; "),
                                  fix: "pass the settings it was trained with (a resume continues the same training bit for bit), "
                                      + "or train anew without --resume")
            }
            try checkpoint.restore(into: trainer)
        } else {
            trainer.initializeWeights()
        }
        print("\(model.rawValue) (\(net.parameterCount) parameters) on \(train.name) (\(train.count) train / \(test.count) test), "
              + "\(trainer.stepsPerEpoch) steps/epoch, \(decision.threads) BLAS threads")
        let saver = RollingState(path: output)
        try trainer.train(until: trainer.finalStep,
                          callbacks: [ProgressPrinter(label: model.rawValue, endStep: trainer.finalStep), saver])
        try Checkpoint(trainer: trainer).write(to: output)
        let tr = evaluate(net, on: train), te = evaluate(net, on: test)
        print(String(format: "epoch %.2f  train loss %.4f err %.2f%%  test loss %.4f err %.2f%%", trainer.epoch,
                     tr.meanLoss, 100 * tr.errorRate, te.meanLoss, 100 * te.errorRate))
        print("wrote \(output)")
    }
}

/// `ntkscape evaluate CHECKPOINT`: loss and error on the training and test splits, and optionally
/// every example's logits and predicted class as `.npy`.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a data set (BatchNorm in inference mode).",
        discussion: """
            --logits and --predictions write the --split's per-example logits (float32, [n, classes]) and \
            predicted classes (int64, [n]: the first largest logit, as numpy.argmax) as .npy, in data set order \
            (after --train-subset/--test-subset). --out-dir DIR writes both splits: DIR/<split>_logits.npy and \
            DIR/<split>_predictions.npy.
            """)

    enum Split: String, CaseIterable, ExpressibleByArgument { case train, test }

    @Argument(help: "A checkpoint written by ntkscape.") var checkpoint: String
    @OptionGroup var data: DataOptions
    @Option(help: "Seed for --balanced-subset.") var seed: UInt64 = 0
    @Option(name: [.customLong("batch-size"), .customLong("batch")], help: "Examples per evaluation batch.") var batch: Int = 500
    @Option(help: "OpenBLAS threads.") var threads: Int?
    @Option(help: "Write the --split's logits to this .npy file (float32, [n, classes]).") var logits: String?
    @Option(help: "Write the --split's predicted classes to this .npy file (int64, [n]).") var predictions: String?
    @Option(help: "Split of --logits and --predictions: train or test.") var split: Split = .test
    @Option(name: .customLong("out-dir"), help: "Write <split>_logits.npy and <split>_predictions.npy of both splits here.")
    var outDir: String?

    func validate() throws {
        try OptionChecks.threads(threads)
        try OptionChecks.positive(batch, option: "--batch", what: "examples per evaluation batch", example: 500)
    }

    func run() throws {
        _ = BLASThreads.configure(option: threads, ranksOnNode: 1)
        let (net, train, test) = try data.load(checkpoint: checkpoint, seed: seed)
        if let outDir { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) }
        for (name, set) in [(Split.train, train), (.test, test)] {
            var files: [(logits: String?, predictions: String?)] = []
            if let outDir { files.append((outDir + "/\(name.rawValue)_logits.npy", outDir + "/\(name.rawValue)_predictions.npy")) }
            if name == split, logits != nil || predictions != nil { files.append((logits, predictions)) }
            let s: LossSummary
            if files.isEmpty {
                s = evaluate(net, on: set, batchSize: batch)
            } else {
                let out = Core.predictions(net, on: set, batchSize: batch)
                for f in files {
                    if let path = f.logits { try NPY.write(out.logits, shape: [set.count, net.classes], to: path) }
                    if let path = f.predictions { try NPY.write(out.predicted, shape: [set.count], to: path) }
                }
                s = out.summary
            }
            print("\(name.rawValue)  " + String(format: "%d examples  loss %.4f  error %.2f%%", s.count, s.meanLoss, 100 * s.errorRate))
        }
        for path in [logits, predictions].compactMap({ $0 }) { print("wrote \(path)") }
        if let outDir { print("wrote \(outDir)/{train,test}_{logits,predictions}.npy") }
    }
}
