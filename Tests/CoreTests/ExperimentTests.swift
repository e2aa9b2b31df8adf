import Core
import Foundation
import TestSupport
import XCTest

/// The experiment description layer: SHA-256, parsing with helpful errors, validation, run
/// identity, `RunPaths` and the presets in configs/.
final class ExperimentTests: XCTestCase {
    /// The package root (this file is Tests/CoreTests/ExperimentTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private func configError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line)
        -> ExperimentConfigError? {
        do {
            try body()
            XCTFail("expected an ExperimentConfigError", file: file, line: line)
        } catch let e as ExperimentConfigError {
            return e
        } catch {
            XCTFail("expected an ExperimentConfigError, got \(error)", file: file, line: line)
        }
        return nil
    }

    private func parseError(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> ExperimentConfigError? {
        configError({ _ = try ExperimentConfig.parse(yaml: yaml, file: "exp.yaml") }, file: file, line: line)
    }

    private func validationError(_ yaml: String, trainExamples: Int? = nil,
                                 file: StaticString = #filePath, line: UInt = #line) -> ExperimentConfigError? {
        configError({ try ExperimentConfig.parse(yaml: yaml).validate(trainExamples: trainExamples) },
                    file: file, line: line)
    }

    // MARK: SHA-256 (FIPS 180-4 / NIST CSRC example vectors)

    func testSHA256NISTVectors() {
        XCTAssertEqual(SHA256.hexDigest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                                        + "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(SHA256.digest(Array("abc".utf8)).count, 32)
    }

    func testSHA256StreamingMatchesOneShot() {
        // One million "a" (NIST long-message vector), fed in uneven chunks across block boundaries.
        var s = SHA256()
        let chunks = [1, 63, 64, 65, 127, 1000, 7]
        var fed = 0, i = 0
        while fed < 1_000_000 {
            let n = min(chunks[i % chunks.count], 1_000_000 - fed)
            s.update([UInt8](repeating: UInt8(ascii: "a"), count: n))
            fed += n; i += 1
        }
        XCTAssertEqual(s.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertEqual(s.hexDigest(), s.hexDigest(), "finalize must not consume the state")
    }

    // MARK: Parsing errors

    func testUnknownKeyNamesPathAndSuggests() throws {
        let e = try XCTUnwrap(parseError("name: x\nrecipe:\n  learnig_rate: 0.01\n"))
        XCTAssertEqual(e.kind, .unknownKey)
        XCTAssertEqual(e.keyPath, "recipe.learnig_rate")
        XCTAssertEqual(e.suggestion, "learning_rate")
        XCTAssertEqual(e.validKeys, ["optimizer", "learning_rate", "momentum", "weight_decay", "schedule",
                                     "batch_size", "shards", "epochs", "loss"])
        XCTAssertEqual(e.file, "exp.yaml")
        XCTAssertEqual(e.line, 3)
        let text = e.description
        for part in ["exp.yaml:3", "`recipe.learnig_rate`", "did you mean `learning_rate`?", "weight_decay"] {
            XCTAssertTrue(text.contains(part), "\(part) missing from: \(text)")
        }
    }

    func testUnknownKeyElsewhereSuggestsItsSection() throws {
        let top = try XCTUnwrap(parseError("epochs: 3\n"))
        XCTAssertEqual(top.keyPath, "epochs")
        XCTAssertEqual(top.suggestion, "recipe.epochs")
        XCTAssertTrue(top.description.contains("recipe.epochs"), top.description)

        let nested = try XCTUnwrap(parseError("recipe:\n  schedule: {milestones: [1, 2], gamm: 0.5}\n"))
        XCTAssertEqual(nested.keyPath, "recipe.schedule.gamm")
        XCTAssertEqual(nested.suggestion, "gamma")

        let augment = try XCTUnwrap(parseError("recipe:\n  augment: on\n"))
        XCTAssertEqual(augment.suggestion, "dataset.augment")
    }

    func testDuplicateKeyIsAnError() throws {
        let e = try XCTUnwrap(parseError("children: 2\nchildren: 3\n"))
        XCTAssertEqual(e.kind, .duplicateKey)
        XCTAssertEqual(e.keyPath, "children")
        XCTAssertEqual(e.line, 2)
    }

    func testWrongTypeNamesKeyExpectedTypeAndValue() throws {
        let e = try XCTUnwrap(parseError("children: two\n"))
        XCTAssertEqual(e.kind, .wrongType)
        XCTAssertEqual(e.keyPath, "children")
        for part in ["exp.yaml:1", "`children`", "an integer", "`two`"] {
            XCTAssertTrue(e.description.contains(part), "\(part) missing from: \(e.description)")
        }
        let cases: [(String, String, String)] = [
            ("spawn_times: 0.5\n", "spawn_times", "a list of numbers"),
            ("spawn_times: [0, soon]\n", "spawn_times[1]", "a finite number"),
            ("recipe:\n  learning_rate: fast\n", "recipe.learning_rate", "a finite number"),
            ("recipe:\n  learning_rate: .inf\n", "recipe.learning_rate", "a finite number"),
            ("seed: -1\n", "seed", "a non-negative integer"),
            ("children: \"2\"\n", "children", "an integer"),
            ("children: 2.5\n", "children", "an integer"),
            ("dataset:\n  balanced_subset: maybe\n", "dataset.balanced_subset", "true or false"),
            ("name: [a, b]\n", "name", "a string"),
            ("recipe: sgd\n", "recipe", "a mapping"),
            ("recipe:\n  schedule: step\n", "recipe.schedule", "`constant` or a mapping"),
            ("- a\n- b\n", "", "a mapping"),
        ]
        for (yaml, path, expected) in cases {
            guard let e = parseError(yaml) else { continue }
            XCTAssertEqual(e.kind, .wrongType, yaml)
            XCTAssertEqual(e.keyPath, path, yaml)
            XCTAssertTrue(e.description.contains(expected), "\(expected) missing from: \(e.description)")
        }
    }

    func testBadEnumValueListsChoicesAndSuggests() throws {
        let e = try XCTUnwrap(parseError("dataset:\n  kind: fashion_mnist\n"))
        XCTAssertEqual(e.kind, .invalidValue)
        XCTAssertEqual(e.keyPath, "dataset.kind")
        for part in ["`fashion_mnist`", "did you mean `fashion-mnist`?", "cifar10, cifar100, mnist, fashion-mnist, synthetic"] {
            XCTAssertTrue(e.description.contains(part), "\(part) missing from: \(e.description)")
        }
    }

    func testSyntaxErrorAndMissingFileNameTheFile() throws {
        let syntax = try XCTUnwrap(parseError("recipe:\n  epochs: [1, 2\n"))
        XCTAssertEqual(syntax.kind, .syntax)
        XCTAssertTrue(syntax.description.hasPrefix("exp.yaml"), syntax.description)

        let missing = "/nonexistent-ntkscape/experiment.yaml"
        let e = try XCTUnwrap(configError { _ = try ExperimentConfig.load(path: missing) })
        XCTAssertEqual(e.kind, .fileNotFound)
        XCTAssertEqual(e.file, missing)
        XCTAssertTrue(e.description.contains(missing), e.description)
    }

    func testValuesAreReadIntoTheirFields() throws {
        let c = try ExperimentConfig.parse(yaml: """
            name: demo
            seed: 18446744073709551615
            dataset: {kind: cifar10, path: /data/c10, train_subset: 1_000, balanced_subset: yes, augment: off}
            model: resnet20_nobn
            recipe:
              optimizer: adam
              learning_rate: 1e-3
              schedule: {milestones: [2, 3.5], gamma: 0.5}
              epochs: 4
              loss: mse
            spawn_times: [0, 0.4]
            threads: 3
            barrier:
            """)
        XCTAssertEqual(c.name, "demo")
        XCTAssertEqual(c.seed, .max)
        XCTAssertEqual(c.dataset.kind, .cifar10)
        XCTAssertEqual(c.dataset.path, "/data/c10")
        XCTAssertEqual(c.dataset.trainingSubset, .classBalanced(1000))
        XCTAssertEqual(c.dataset.augment, .off)
        XCTAssertEqual(c.model, .resnet20_nobn)
        XCTAssertEqual(c.recipe.optimizer, .adam)
        XCTAssertEqual(c.recipe.learningRate, 0.001)
        XCTAssertEqual(c.recipe.schedule, .step(milestones: [2, 3.5], gamma: 0.5))
        XCTAssertEqual(c.recipe.loss, .mse)
        XCTAssertEqual(c.recipe.momentum, TrainingRecipe().momentum, "absent keys keep the recipe's defaults")
        XCTAssertEqual(c.spawnTimes, [0, 0.4])
        XCTAssertEqual(c.resolvedMeasurementTimes, [0, 0.4, 4])
        XCTAssertEqual(c.threads, 3)
        XCTAssertEqual(c.barrier, BarrierSettings(), "an empty section is all defaults")
        XCTAssertFalse(c.trainingRecipe.augment)
    }

    // MARK: Validation

    func testSpawnAfterEndFailsNamingSpawnTimes() throws {
        let e = try XCTUnwrap(validationError("recipe:\n  epochs: 2\nspawn_times: [0, 1, 3]\n"))
        XCTAssertEqual(e.kind, .invalidValue)
        XCTAssertEqual(e.keyPath, "spawn_times")
        XCTAssertTrue(e.description.contains("3"), e.description)
        XCTAssertTrue(e.description.contains("Fix:"), e.description)

        // Through `load`, the same error names the file.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ntkscape-exp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("late.yaml").path
        try "recipe:\n  epochs: 2\nspawn_times: [0, 2]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try XCTUnwrap(configError { _ = try ExperimentConfig.load(path: path) })
        XCTAssertEqual(loaded.keyPath, "spawn_times")
        XCTAssertEqual(loaded.file, path)
        XCTAssertTrue(loaded.description.hasPrefix(path), loaded.description)
    }

    func testCrossFieldRules() throws {
        let cases: [(yaml: String, train: Int?, key: String)] = [
            ("spawn_times: [1, 0.5]\n", nil, "spawn_times"),
            ("spawn_times: [0.5, 0.5]\n", nil, "spawn_times"),
            ("measurement_times: [0, 11]\n", nil, "measurement_times"),
            ("children: 1\n", nil, "children"),
            ("replicates: 0\n", nil, "replicates"),
            ("probe_size: 105\n", nil, "probe_size"),
            ("probe_size: 0\n", nil, "probe_size"),
            // (Tiny training sets have one step per epoch: spawn times must not share a step.)
            ("probe_size: 100\ndataset: {train_subset: 50}\nspawn_times: [0, 1]\nmeasurement_times: [0, 10]\n", nil, "probe_size"),
            ("probe_size: 100\nspawn_times: [0, 1]\nmeasurement_times: [0, 10]\n", 60, "probe_size"),
            ("dataset: {train_subset: 100}\n", 60, "dataset.train_subset"),
            ("dataset: {balanced_subset: true}\n", nil, "dataset.balanced_subset"),
            ("dataset: {balanced_subset: true, train_subset: 1005}\n", nil, "dataset.train_subset"),
            ("dataset: {kind: synthetic, augment: on}\n", nil, "dataset.augment"),
            ("barrier: {points: 2}\n", nil, "barrier.points"),
            ("barrier: {recompute_batches: 0}\n", nil, "barrier.recompute_batches"),
            ("recipe: {learning_rate: -1}\n", nil, "recipe.learning_rate"),
            ("recipe: {batch_size: 0}\n", nil, "recipe.batch_size"),
            ("threads: 0\n", nil, "threads"),
            ("name: \"a b\"\n", nil, "name"),
            // 200 examples at batch 128: 2 steps per epoch, so 0.1 and 0.2 both round to step 0.
            ("spawn_times: [0.1, 0.2]\nmeasurement_times: [0, 10]\n", 200, "spawn_times"),
            // The kernel sections.
            ("ntk: {times: [0, 11]}\n", nil, "ntk.times"),
            ("ntk: {times: [1, 0.5]}\n", nil, "ntk.times"),
            ("ntk: {velocity_dt: -0.1}\n", nil, "ntk.velocity_dt"),
            ("ntk: {memory_gb: 0}\n", nil, "ntk.memory_gb"),
            ("ntk: {block_size: 15}\n", nil, "ntk.block_size"),
            ("ntk: {eigenvectors: 1001}\n", nil, "ntk.eigenvectors"),
            ("ntk: {group_size: -1}\n", nil, "ntk.group_size"),
            ("kernel_machine: {times: [1], train_examples: 55}\n", nil, "kernel_machine.train_examples"),
            ("spawn_times: [0]\nmeasurement_times: [0, 10]\nprobe_size: 10\nkernel_machine: {times: [1], train_examples: 100}\n",
             60, "kernel_machine.train_examples"),
            // The retired single ridge: a parse error naming the key and its replacement.
            ("kernel_machine: {times: [1], ridge: 0.0001}\n", nil, "kernel_machine.ridge"),
            ("kernel_machine: {times: [1], ridges: [0.1, 1]}\n", nil, "kernel_machine.ridges"),
            ("kernel_machine: {times: [1], ridges: [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 0]}\n", nil,
             "kernel_machine.ridges"),
            ("kernel_machine: {times: [1], ridges: [1, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 10, 100, 1000]}\n", nil,
             "kernel_machine.ridges"),
            ("kernel_machine: {times: [1], draws: 0}\n", nil, "kernel_machine.draws"),
            ("kernel_machine: {times: [1], held_out: 1}\n", nil, "kernel_machine.held_out"),
            ("kernel_machine: {times: [1], train_examples: 10}\n", nil, "kernel_machine.train_examples"),
            ("analysis: {recompute_batches: 0}\n", nil, "analysis.recompute_batches"),
            ("analysis: {batchnorm: running_stats}\n", nil, "analysis.batchnorm"),
            ("model: resnet20\ndataset: {kind: synthetic}\nspawn_times: [0]\nmeasurement_times: [0, 10]\nprobe_size: 10\n"
                + "analysis: {recompute_batches: 5}\n", 600, "analysis.recompute_batches"),
            ("linearized: {times: [12]}\n", nil, "linearized.times"),
            ("linearized: {times: [1], momentum: 1}\n", nil, "linearized.momentum"),
            ("linearized: {times: [1], child: {learning_rate: -0.1}}\n", nil, "linearized.child.learning_rate"),
            ("linearized: {times: [1], child: {epochs: 0}}\n", nil, "linearized.child.epochs"),
            ("linearized: {times: [1], child: {tolerance: 1}}\n", nil, "linearized.child.tolerance"),
            ("linearized: {times: [1], learning_rate: [0.1, 0.1]}\n", nil, "linearized.learning_rate"),
            ("linearized: {times: [1], learning_rate: [0.1, 0.2], held_out: 15}\n", nil, "linearized.held_out"),
            ("linearized: {times: [1], learning_rate: [0.1, 0.2], grid_epochs: 0}\n", nil, "linearized.grid_epochs"),
            ("linearized: {times: [1], epochs: 0}\n", nil, "linearized.epochs"),
            ("hessian: {times: [1], iterations: 1}\n", nil, "hessian.iterations"),
            ("hessian: {times: [1], examples: 0}\n", nil, "hessian.examples"),
            ("hessian: {times: [1], relative_step: 1.5}\n", nil, "hessian.relative_step"),
        ]
        for c in cases {
            guard let e = validationError(c.yaml, trainExamples: c.train) else { continue }
            XCTAssertEqual(e.keyPath, c.key, c.yaml)
            XCTAssertTrue(e.description.contains("Fix:"), e.description)
        }
        // The defaults and the boundary values are valid.
        XCTAssertNoThrow(try ExperimentConfig().validate(trainExamples: 60000))
        XCTAssertNoThrow(try ExperimentConfig.parse(yaml: "recipe: {epochs: 2}\nspawn_times: [0, 1.9]\nmeasurement_times: [2]\n")
            .validate())
        XCTAssertNoThrow(try ExperimentConfig.parse(yaml: "dataset: {kind: synthetic}\nprobe_size: 7\n").validate())
        // Sections that are off are not checked (train_examples 55 is not class-balanced).
        XCTAssertNoThrow(try ExperimentConfig.parse(yaml: "kernel_machine: {train_examples: 55}\n").validate())
    }

    func testAnalysisTimesNeedCheckpoints() throws {
        let c = try ExperimentConfig.parse(yaml: """
            recipe: {epochs: 2}
            spawn_times: [0, 1]
            measurement_times: [0, 2]
            ntk: {times: [0.1, 1.8], velocity_dt: 0.2}
            kernel_machine: {times: [0.5]}
            linearized: {times: [1.5]}
            hessian: {times: [0.75]}
            """)
        XCTAssertNoThrow(try c.validate())
        // 0.1 + 0.2 is 0.30000000000000004 in binary; the velocity end point is named 0.3.
        XCTAssertEqual(c.velocityPairs.map(\.to), [0.3, 2])
        XCTAssertEqual(c.parentCheckpointTimes, [0, 0.1, 0.3, 0.5, 0.75, 1, 1.5, 1.8, 2])
        // A velocity end point after training is dropped.
        XCTAssertEqual(try ExperimentConfig.parse(yaml: "recipe: {epochs: 2}\nntk: {times: [0, 1.9], velocity_dt: 0.2}\n")
                        .velocityPairs.map(\.from), [0])
        // ntk.times defaults to the measurement times; velocity 0 turns the velocity off.
        let d = try ExperimentConfig.parse(yaml: "recipe: {epochs: 2}\nspawn_times: [0]\nmeasurement_times: [0, 2]\nntk: {velocity_dt: 0}\n")
        XCTAssertEqual(d.resolvedNTKTimes, [0, 2])
        XCTAssertTrue(d.velocityPairs.isEmpty)
        XCTAssertEqual(d.parentCheckpointTimes, [0, 2])
        // An unknown key inside a kernel section names its path.
        let e = try XCTUnwrap(parseError("ntk:\n  velocty_dt: 0.4\n"))
        XCTAssertEqual(e.kind, .unknownKey)
        XCTAssertEqual(e.keyPath, "ntk.velocty_dt")
        XCTAssertEqual(e.suggestion, "velocity_dt")
    }

    // MARK: Resolution and identity

    func testDefaultsCanonicalJSONIsTheDocumentedText() throws {
        // Written by hand from the documented defaults (keys sorted, RFC 8785 numbers).
        let expected = #"{"analysis":{"batchnorm":"recompute","recompute_batches":10},"#
            + #""barrier":{"bn_policy":"recompute","points":31,"recompute_batches":10,"train_subset":1000},"#
            + #""children":2,"dataset":{"augment":"off","balanced_subset":false,"kind":"fashion-mnist","#
            + #""path":"/usr/share/datasets/fashion-mnist","test_subset":0,"train_subset":0},"#
            + #""hessian":{"density_points":100,"density_runs":1,"density_sigma":0.01,"density_steps":20,"examples":1000,"#
            + #""iterations":30,"method":"exact","relative_step":null,"shards":8,"times":[],"tolerance":0.001,"top_k":5,"#
            + #""trace_samples":10},"#
            + #""kernel_machine":{"draws":3,"held_out":0.2,"#
            + #""ridges":[0.000001,0.000003,0.00001,0.00003,0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1],"#
            + #""times":[],"train_examples":0},"#
            + #""linearized":{"batch_size":0,"child":{"epochs":1,"learning_rate":0.001,"optimizer":null,"patience":5,"#
            + #""seeds":2,"tolerance":0.001},"epochs":1,"grid_epochs":null,"held_out":1000,"learning_rate":0.01,"loss":null,"#
            + #""momentum":0.9,"optimizer":"sgd","second_order":false,"times":[],"weight_decay":0},"#
            + #""measurement_times":[0,0.25,0.5,1,2,3,4,5,8,10],"model":"simplecnn","name":"experiment","#
            + #""ntk":{"block_size":0,"children":true,"eigenvectors":0,"group_size":0,"memory_gb":4,"#
            + #""times":[0,0.25,0.5,1,2,3,4,5,8,10],"velocity_dt":0.4},"#
            + #""plan":{"bandwidth_gb_s":5,"group_ranks":0,"latency_us":20,"rank_tflops":0.12},"#
            + #""plane":{"margin":0.25,"parts":8,"points":21,"spawn_times":[],"tangent":true,"test_subset":1000},"#
            + #""probe_size":100,"recipe":{"batch_size":128,"epochs":10,"learning_rate":0.1,"loss":"cross_entropy","#
            + #""momentum":0.9,"optimizer":"sgd","schedule":"constant","shards":8,"weight_decay":0.0005},"replicates":1,"#
            + #""seed":0,"spawn_times":[0,0.25,0.5,1,2,3,4,5,8],"#
            + #""statistics":{"barrier_threshold":0.01,"level":0.95,"resamples":2000,"velocity_fraction":0.1},"#
            + #""threads":null,"training_curves":{"every_steps":12},"#
            + #""trajectories":{"enabled":false,"every":1,"examples":1000,"smoothing":3,"#
            + #""tsne":{"iterations":1000,"method":"auto","perplexity":30,"theta":0.5}}}"#
        XCTAssertEqual(ExperimentConfig().canonicalJSON(), expected)
        // YAML -> config -> canonical JSON -> config is a fixed point.
        let reparsed = try ExperimentConfig.parse(yaml: expected)
        XCTAssertEqual(reparsed, ExperimentConfig().resolved())
        XCTAssertEqual(reparsed.canonicalJSON(), expected)
        XCTAssertEqual(try ExperimentConfig.parse(yaml: "").canonicalJSON(), expected)
        XCTAssertEqual(ExperimentConfig().nonDefaultSettings(), [:])
        XCTAssertEqual(ExperimentConfig().runHash, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                       "SHA-256 of {} (hashlib)")
    }

    func testCanonicalNumberFormatting() throws {
        let c = try ExperimentConfig.parse(yaml: """
            seed: 18446744073709551615
            recipe: {learning_rate: 1e-7, weight_decay: 0.00001, epochs: 80.0, momentum: 0.0}
            spawn_times: [0.1, 2.5e1]
            """)
        let json = c.canonicalJSON()
        for part in [#""seed":18446744073709551615"#, #""learning_rate":1e-7"#, #""weight_decay":0.00001"#,
                     #""epochs":80"#, #""momentum":0"#, #""spawn_times":[0.1,25]"#] {
            XCTAssertTrue(json.contains(part), "\(part) missing from \(json)")
        }
    }

    func testRunHashIgnoresSpellingKeyOrderAndThreads() throws {
        let a = try ExperimentConfig.parse(yaml: """
            name: a
            recipe:
              learning_rate: 0.01
              epochs: 4
            spawn_times: [0, 1]
            threads: 1
            """)
        let b = try ExperimentConfig.parse(yaml: """
            threads: 8
            spawn_times: [0.0, 1.0]
            measurement_times: [0, 1, 4]
            recipe: {epochs: 4.0, learning_rate: 1e-2, momentum: 0.9}
            name: a
            """)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.runHash, b.runHash)
        XCTAssertEqual(a.runName, b.runName)
        XCTAssertEqual(RunPaths(config: a), RunPaths(config: b))

        var c = a
        c.recipe.learningRate = 0.02
        XCTAssertNotEqual(c.runHash, a.runHash)
        var renamed = a
        renamed.name = "b"
        XCTAssertEqual(renamed.runHash, a.runHash, "the name labels the run; it is not part of the hash")
        XCTAssertEqual(renamed.runName, "b-" + a.runHash.prefix(12))
    }

    func testNonDefaultSettingsAndHashInput() throws {
        let c = try ExperimentConfig.parse(yaml: "recipe:\n  learning_rate: 0.01\nthreads: 4\nname: foo\n")
        XCTAssertEqual(c.nonDefaultSettings(), ["recipe.learning_rate": "0.01"])
        XCTAssertEqual(c.identityJSON(), #"{"recipe.learning_rate":0.01}"#)
        // hashlib.sha256(b'{"recipe.learning_rate":0.01}').hexdigest()
        XCTAssertEqual(c.runHash, "7faab2a8ed08e99c69f6d4e12db0778c98654c5992f7ce60d04ff313a167af0e")
        XCTAssertEqual(c.runName, "foo-7faab2a8ed08")
    }

    func testBuiltinDefaultIdentity() throws {
        let quick = ExperimentConfig.builtinDefault()
        XCTAssertEqual(quick.identityJSON(),
                       #"{"barrier.points":11,"dataset.test_subset":2000,"dataset.train_subset":10000,"#
                        + #""hessian.density_steps":15,"hessian.examples":500,"hessian.iterations":15,"#
                        + #""hessian.times":[0,2,8],"hessian.trace_samples":5,"kernel_machine.draws":2,"#
                        + #""kernel_machine.times":[0,1,8],"kernel_machine.train_examples":300,"#
                        + #""linearized.child.epochs":2,"linearized.child.learning_rate":0.0003,"linearized.child.patience":1,"#
                        + #""linearized.child.tolerance":0.01,"linearized.epochs":2,"linearized.learning_rate":0.0003,"#
                        + #""linearized.optimizer":"adam","linearized.times":[0,1,4],"#
                        + #""measurement_times":[0,0.25,0.5,1,2,4,8],"model":"simplecnn_w8","#
                        + #""ntk.times":[0,0.25,0.5,1,2,4,8],"ntk.velocity_dt":0.25,"#
                        + #""plane.points":7,"plane.spawn_times":[0,2],"plane.test_subset":300,"recipe.epochs":8,"#
                        + #""recipe.learning_rate":0.001,"recipe.optimizer":"adam","#
                        + #""recipe.schedule":{"gamma":0.1,"milestones":[6]},"recipe.weight_decay":0,"#
                        + #""spawn_times":[0,0.25,0.5,1,2],"statistics.barrier_threshold":0.005,"trajectories.enabled":true}"#)
        // hashlib.sha256 of the text above.
        XCTAssertEqual(quick.runHash, "1c273d47f5eaffafee345178d9e392e302ea42191db249909e946a45e15c38d2")
        XCTAssertEqual(quick.runName, "quick-1c273d47f5ea")
    }

    func testDerivedDefaults() throws {
        let c = try ExperimentConfig.parse(yaml: "dataset: {kind: cifar10}\nrecipe: {epochs: 4}\n")
        XCTAssertEqual(c.resolvedSpawnTimes, [0, 0.25, 0.5, 1, 2, 3])
        XCTAssertEqual(c.resolvedMeasurementTimes, [0, 0.25, 0.5, 1, 2, 3, 4])
        XCTAssertTrue(c.trainingRecipe.augment, "auto = on for CIFAR")
        XCTAssertNil(c.dataset.resolvedPath)
        XCTAssertEqual(c.resolved().dataset.augment, .on)
        let m = try ExperimentConfig.parse(yaml: "spawn_times: [1]\nmeasurement_times: [0.5]\n")
        // Plus 0.9: the kernel velocity's end point after the NTK time 0.5 (velocity_dt 0.4).
        XCTAssertEqual(m.parentCheckpointTimes, [0.5, 0.9, 1])
    }

    func testCodableRoundTripUsesTheSameSchema() throws {
        let quick = ExperimentConfig.builtinDefault()
        let data = try JSONEncoder().encode(quick)
        XCTAssertEqual(try JSONDecoder().decode(ExperimentConfig.self, from: data), quick)
        let bad = Data(#"{"recipe":{"learnig_rate":0.1}}"#.utf8)
        XCTAssertThrowsError(try JSONDecoder().decode(ExperimentConfig.self, from: bad)) { error in
            XCTAssertTrue("\(error)".contains("recipe.learnig_rate"), "\(error)")
        }
    }

    // MARK: Documentation

    func testDocumentationListsEverySettingAndParsesToDefaults() throws {
        let doc = ExperimentConfig.documentation()
        XCTAssertEqual(try ExperimentConfig.parse(yaml: doc), ExperimentConfig())
        for key in ["name:", "  kind: fashion-mnist", "  train_subset: 0", "  balanced_subset: false", "  augment: auto",
                    "  learning_rate: 0.1", "  schedule: constant", "spawn_times: null", "children: 2",
                    "measurement_times: null", "probe_size: 100", "  bn_policy: recompute", "  points: 31",
                    "  recompute_batches: 10", "  train_subset: 1000", "threads: null"] {
            XCTAssertTrue(doc.contains("\n" + key), "\(key) missing from the documentation")
        }
        // docs/experiment.md carries the same text (regenerate: NTKSCAPE_UPDATE_DOCS=1 swift test ...).
        let mdPath = Self.root.appendingPathComponent("docs/experiment.md").path
        let md = try String(contentsOfFile: mdPath, encoding: .utf8)
        let begin = "<!-- BEGIN ExperimentConfig.documentation() -->\n```yaml\n"
        let end = "```\n<!-- END ExperimentConfig.documentation() -->"
        let start = try XCTUnwrap(md.range(of: begin)), stop = try XCTUnwrap(md.range(of: end))
        let block = String(md[start.upperBound..<stop.lowerBound])
        if block != doc && ProcessInfo.processInfo.environment["NTKSCAPE_UPDATE_DOCS"] == "1" {
            try (String(md[..<start.upperBound]) + doc + String(md[stop.lowerBound...]))
                .write(toFile: mdPath, atomically: true, encoding: .utf8)
        } else {
            XCTAssertEqual(block, doc, "docs/experiment.md is out of date with ExperimentConfig.documentation()")
        }
    }

    // MARK: Presets

    func testEmbeddedDefaultEqualsQuickYAML() throws {
        let path = Self.root.appendingPathComponent("configs/quick.yaml").path
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        XCTAssertEqual(Array(bytes), Array(ExperimentConfig.builtinDefaultYAML.utf8))
        XCTAssertEqual(try ExperimentConfig.load(path: path), ExperimentConfig.builtinDefault())
    }

    func testEveryPresetLoadsAndValidates() throws {
        let dir = Self.root.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["linearization-paper.yaml", "quick.yaml", "resnet20-cifar10-constant-lr.yaml", "resnet20-cifar10.yaml", "resnet20-cifar100.yaml",
                               "resnet20-nobn-cifar10.yaml", "resnet20-nobn-cifar100.yaml", "simplecnn-cifar10.yaml",
                               "tiny.yaml", "wrn16-4-cifar10.yaml", "wrn16-4-cifar100.yaml"])
        for file in files {
            let path = dir.appendingPathComponent(file).path
            let text = try String(contentsOfFile: path, encoding: .utf8)
            XCTAssertTrue(text.hasPrefix("# \(file):"), "\(file): the header comment must name the file")
            XCTAssertTrue(text.contains("# Source:"), "\(file): the header must state its source")
            do {
                let c = try ExperimentConfig.load(path: path)
                XCTAssertEqual(c.name + ".yaml", file, "the preset's name is its file name")
                XCTAssertTrue(c.resolvedSpawnTimes.allSatisfy { $0 < c.recipe.epochs })
                if c.dataset.kind.usesCIFARAugmentation { XCTAssertTrue(c.trainingRecipe.augment, file) }
                try c.validate(trainExamples: c.dataset.kind == .fashionMNIST ? 60000 : 50000)
            } catch {
                XCTFail("\(file): \(error)")
            }
        }
    }

    /// The planner's training cost of the quick preset (parent and each child, in training-example
    /// passes) against the exact number of images the trainer passes: steps from
    /// `round(spawn * stepsPerEpoch)` to `epochs * stepsPerEpoch`, each a full batch of 128 but the
    /// last of an epoch (10,000 = 78 * 128 + 16). Closed form, computed here; in all 805,000 images
    /// (README and configs/quick.yaml: 80k for the parent, 725k for the children). The planner counts
    /// fractional epochs, the trainer whole steps: each task may differ by less than one batch.
    func testQuickPresetTrainingCostMatchesTheTrainersImageCount() throws {
        var q = ExperimentConfig.builtinDefault()
        if let dir = ProcessInfo.processInfo.environment["NTKSCAPE_FASHION_MNIST"] { q.dataset.path = dir }
        let dir = q.dataset.path ?? q.dataset.kind.defaultPath!
        guard FileManager.default.fileExists(atPath: dir) else {
            try referenceMissing("\(dir) is absent: install Debian's dataset-fashion-mnist or set NTKSCAPE_FASHION_MNIST")
        }
        let runner = try ExperimentRunner(config: q, runsRoot: FileManager.default.temporaryDirectory.path,
                                          comm: SerialCommunicator(), log: { _ in })
        XCTAssertEqual(runner.train.count, 10_000)
        let perEpoch = 79, batch = 128, last = 10_000 - 78 * 128
        func images(fromEpoch s: Double) -> Double {
            let first = Int((s * Double(perEpoch)).rounded()), end = 8 * perEpoch
            return Double((first..<end).reduce(0) { $0 + ($1 % perEpoch == perEpoch - 1 ? last : batch) })
        }
        var total = 0.0, trainingTasks = 0
        for (task, planned) in runner.tasks() {
            let exact: Double
            switch task {
            case .parent: exact = images(fromEpoch: 0)
            case .child(_, let s, _):
                // Training, and the trajectories' predictions: a forward of 1000 examples (cost 0.4 each) per saved time.
                let spawn = [0, 0.25, 0.5, 1, 2][s]
                exact = images(fromEpoch: spawn)
                    + Double(q.trajectoryChildTimes(spawn: spawn).count * 1000) * 0.4
                total -= Double(q.trajectoryChildTimes(spawn: spawn).count * 1000) * 0.4
            default: continue
            }
            trainingTasks += 1
            total += exact
            assertClose(planned.cost, exact, Tolerance.absolute(Double(batch)), "planned training cost of \(task)")
        }
        XCTAssertEqual(trainingTasks, 1 + 5 * 2)
        XCTAssertEqual(images(fromEpoch: 0), 80_000)
        assertClose(total, 805_000, Tolerance.absolute(Double(trainingTasks * batch)), "training images of the quick preset")
    }

    // MARK: RunPaths

    func testRunPathsNames() {
        let p = RunPaths(runDirectory: "runs/quick-abc")
        XCTAssertEqual(p.manifest, "runs/quick-abc/manifest.json")
        XCTAssertEqual(p.configCopy, "runs/quick-abc/experiment.yaml")
        XCTAssertEqual(p.resolvedConfig, "runs/quick-abc/config.json")
        XCTAssertEqual(p.report, "runs/quick-abc/report.html")
        XCTAssertEqual(p.parentTimelineCSV, "runs/quick-abc/tables/parent_timeline.csv")
        XCTAssertEqual(p.parentTimelineJSON, "runs/quick-abc/tables/parent_timeline.json")
        XCTAssertEqual(p.childPairsCSV, "runs/quick-abc/tables/child_pairs.csv")
        XCTAssertEqual(p.childPairsJSON, "runs/quick-abc/tables/child_pairs.json")
        XCTAssertEqual(p.barrierCurvesCSV, "runs/quick-abc/tables/barrier_curves.csv")
        XCTAssertEqual(p.barrierCurvesJSON, "runs/quick-abc/tables/barrier_curves.json")
        XCTAssertEqual(p.timelinePairsCSV, "runs/quick-abc/tables/timeline_pairs.csv")
        XCTAssertEqual(p.timelinePairsJSON, "runs/quick-abc/tables/timeline_pairs.json")
        XCTAssertEqual(p.table("kernel_distance", ext: "csv"), "runs/quick-abc/tables/kernel_distance.csv")
        XCTAssertEqual(p.figure("barriers"), "runs/quick-abc/figures/barriers.svg")
        XCTAssertEqual(p.taskDone("child-r0-s0000.500-c1"), "runs/quick-abc/tasks/child-r0-s0000.500-c1.json")
        XCTAssertEqual(p.logs, "runs/quick-abc/logs")
        XCTAssertEqual(p.log(rank: 1), "runs/quick-abc/logs/rank-1.log")
        XCTAssertEqual(p.replicateDirectory(0), "runs/quick-abc/replicate-0")
        XCTAssertEqual(p.parentDirectory(replicate: 2), "runs/quick-abc/replicate-2/parent")
        XCTAssertEqual(p.parentCheckpoint(replicate: 0, epoch: 0.25),
                       "runs/quick-abc/replicate-0/parent/epoch-0000.250.safetensors")
        XCTAssertEqual(p.parentCheckpoint(replicate: 1, epoch: 80),
                       "runs/quick-abc/replicate-1/parent/epoch-0080.000.safetensors")
        XCTAssertEqual(p.parentTrainingState(replicate: 0), "runs/quick-abc/replicate-0/parent/training-state.safetensors")
        XCTAssertEqual(p.childDirectory(replicate: 1, spawn: 0.5, child: 1),
                       "runs/quick-abc/replicate-1/parent/children/spawn-0000.500/child-1")
        XCTAssertEqual(p.childCheckpoint(replicate: 1, spawn: 0.5, child: 1),
                       "runs/quick-abc/replicate-1/parent/children/spawn-0000.500/child-1/final.safetensors")
        XCTAssertEqual(p.childTrainingState(replicate: 0, spawn: 2, child: 0),
                       "runs/quick-abc/replicate-0/parent/children/spawn-0002.000/child-0/training-state.safetensors")
        for r in 0..<3 {
            for s in [0, 0.2, 40.0] {
                XCTAssertTrue(p.childDirectory(replicate: r, spawn: s, child: 0).hasPrefix(p.parentDirectory(replicate: r) + "/"),
                              "children live under their parent")
            }
        }
    }

    func testRunDirectoryFromConfig() throws {
        let c = try ExperimentConfig.parse(yaml: "recipe:\n  learning_rate: 0.01\nname: foo\n")
        XCTAssertEqual(RunPaths(config: c).runDirectory, "runs/foo-7faab2a8ed08")
        XCTAssertEqual(RunPaths(root: "/scratch/runs/", config: c).runDirectory, "/scratch/runs/foo-7faab2a8ed08")
    }

    func testEpochLabelsAreExactAndSortable() {
        let cases: [(Double, String)] = [(0, "0000.000"), (0.25, "0000.250"), (0.2, "0000.200"), (0.001, "0000.001"),
                                         (0.0625, "0000.0625"), (1, "0001.000"), (12.5, "0012.500"),
                                         (80, "0080.000"), (1e-7, "0000.0000001"), (12345.5, "12345.500")]
        for (epoch, label) in cases { XCTAssertEqual(RunPaths.epochLabel(epoch), label, "\(epoch)") }
        let times: [Double] = [0, 0.0625, 0.1, 0.2, 0.25, 0.3, 1, 2, 3.75, 10, 20, 40, 80, 160, 9999.5]
        let labels = times.map(RunPaths.epochLabel)
        XCTAssertEqual(labels.sorted(), labels, "labels sort as the times")
        XCTAssertEqual(Set(labels).count, times.count)
        // Neighbouring doubles get different labels (exact shortest decimals).
        XCTAssertNotEqual(RunPaths.epochLabel(0.1), RunPaths.epochLabel(0.1.nextUp))
    }
}
