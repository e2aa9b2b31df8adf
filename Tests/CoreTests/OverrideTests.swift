import Core
import Foundation
import XCTest

/// `--set key=value` overrides (`ConfigOverride`): typed and checked like the file, part of the run
/// identity, and `--print-config` output reads back to the same experiment.
final class OverrideTests: XCTestCase {
    private let file = """
        name: over
        dataset:
          kind: synthetic
        recipe:
          epochs: 2
          learning_rate: 0.01
        spawn_times: [0, 1]

        """

    private func parse(_ sets: [String], yaml: String? = nil) throws -> ExperimentConfig {
        try ExperimentConfig.parse(yaml: yaml ?? file, file: "exp.yaml", overrides: sets.map { try ConfigOverride(argument: $0) })
    }

    /// The error of loading the experiment file `yaml` (default `file`) with `sets`, as `run` does.
    private func error(_ sets: [String], yaml: String? = nil, line: UInt = #line) -> ExperimentConfigError? {
        do {
            let path = NSTemporaryDirectory() + "override-\(UUID().uuidString).yaml"
            try (yaml ?? file).write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try ExperimentConfig.load(path: path, overrides: sets.map { try ConfigOverride(argument: $0) })
            } catch let e as ExperimentConfigError where e.file == path {
                throw ExperimentConfigError(kind: e.kind, file: "exp.yaml", keyPath: e.keyPath, problem: e.problem, fix: e.fix)
            }
            XCTFail("expected an error for \(sets)", line: line)
        } catch let e as ExperimentConfigError {
            return e
        } catch {
            XCTFail("expected an ExperimentConfigError, got \(error)", line: line)
        }
        return nil
    }

    func testOverridesAreTypedLikeTheFile() throws {
        let c = try parse(["recipe.epochs=3", "children=4", "recipe.learning_rate=1e-3", "spawn_times=[0, 0.5, 2]",
                           "recipe.schedule={milestones: [2], gamma: 0.5}", "barrier.bn_policy=interpolate",
                           "linearized.child.seeds=3", "ntk.children=false", "measurement_times=null"])
        XCTAssertEqual(c.recipe.epochs, 3)
        XCTAssertEqual(c.children, 4)
        XCTAssertEqual(c.recipe.learningRate, 0.001)
        XCTAssertEqual(c.spawnTimes, [0, 0.5, 2])
        XCTAssertEqual(c.recipe.schedule, .step(milestones: [2], gamma: 0.5))
        XCTAssertEqual(c.barrier.bnPolicy, .interpolate)
        XCTAssertEqual(c.linearized.child.seeds, 3)
        XCTAssertFalse(c.ntk.children)
        XCTAssertNil(c.measurementTimes)
        // Untouched settings keep the file's values; a later --set of the same key wins.
        XCTAssertEqual(c.dataset.kind, .synthetic)
        XCTAssertEqual(try parse(["children=3", "children=5"]).children, 5)
        // A section absent from the file is created; an override on an empty document works.
        XCTAssertEqual(try parse(["hessian.times=[1]"]).hessian.times, [1])
        XCTAssertEqual(try parse(["recipe.epochs=7"], yaml: "").recipe.epochs, 7)
        // Equal to writing the value in the file.
        XCTAssertEqual(try parse(["recipe.epochs=3"]), try parse([], yaml: file.replacingOccurrences(of: "epochs: 2", with: "epochs: 3")))
    }

    func testBadKeysAndTypesNameTheOverride() throws {
        var e = try XCTUnwrap(error(["recipe.epochz=3"]))
        XCTAssertEqual(e.kind, .unknownKey)
        XCTAssertEqual(e.file, "--set recipe.epochz")
        XCTAssertEqual(e.suggestion, "epochs")
        XCTAssertTrue(e.description.hasPrefix("--set recipe.epochz: `recipe.epochz` is not a setting."), e.description)
        XCTAssertNil(e.line)

        e = try XCTUnwrap(error(["epochs=3"]))
        XCTAssertEqual(e.kind, .unknownKey)
        XCTAssertEqual(e.suggestion, "recipe.epochs")
        XCTAssertEqual(e.file, "--set epochs")

        e = try XCTUnwrap(error(["recpe.epochs=3"]))
        XCTAssertEqual(e.kind, .unknownKey)
        XCTAssertEqual(e.keyPath, "recpe")
        XCTAssertEqual(e.file, "--set recpe.epochs")

        e = try XCTUnwrap(error(["children=two"]))
        XCTAssertEqual(e.kind, .wrongType)
        XCTAssertEqual(e.file, "--set children")
        XCTAssertTrue(e.description.contains("`children` expects an integer, found `two`"), e.description)

        e = try XCTUnwrap(error(["spawn_times=[0, x]"]))
        XCTAssertEqual(e.kind, .wrongType)
        XCTAssertEqual(e.keyPath, "spawn_times[1]")
        XCTAssertEqual(e.file, "--set spawn_times")

        e = try XCTUnwrap(error(["recipe.learning_rate.x=1"]))
        XCTAssertEqual(e.kind, .wrongType)
        XCTAssertEqual(e.file, "--set recipe.learning_rate.x")

        // Cross-field rules hold for overrides too, and name them.
        e = try XCTUnwrap(error(["children=1"]))
        XCTAssertEqual(e.file, "--set children")
        XCTAssertEqual(e.keyPath, "children")

        // Errors in the file itself still name the file.
        e = try XCTUnwrap(error(["children=3"], yaml: file + "probe_size: many\n"))
        XCTAssertEqual(e.file, "exp.yaml")

        // Malformed arguments.
        XCTAssertThrowsError(try ConfigOverride(argument: "recipe.epochs")) {
            XCTAssertTrue("\($0)".contains("is not `key=value`"), "\($0)")
        }
        XCTAssertThrowsError(try ConfigOverride(argument: "recipe..epochs=3"))
        XCTAssertThrowsError(try parse(["spawn_times=[0, 1"])) {
            XCTAssertEqual(($0 as? ExperimentConfigError)?.file, "--set spawn_times")
        }
    }

    func testOverridesArePartOfTheRunIdentity() throws {
        let base = try parse([])
        let over = try parse(["recipe.epochs=3"])
        XCTAssertNotEqual(base.runHash, over.runHash)
        XCTAssertEqual(over.nonDefaultSettings()["recipe.epochs"], "3")
        // The same value as the file: the same run.
        XCTAssertEqual(try parse(["recipe.epochs=2.0"]).runHash, base.runHash)
        // Execution settings stay outside the identity, overridden or not.
        XCTAssertEqual(try parse(["threads=2"]).runHash, base.runHash)
        // The run's config.json (canonical JSON) shows the override.
        XCTAssertTrue(over.canonicalJSON().contains("\"epochs\":3"), over.canonicalJSON())
    }

    func testPrintedConfigReadsBackToTheSameExperiment() throws {
        for c in [try parse(["recipe.epochs=3", "recipe.schedule={milestones: [1, 2], gamma: 0.1}", "kernel_machine.times=[0, 3]"]),
                  ExperimentConfig.builtinDefault(), ExperimentConfig()] {
            let yaml = c.resolvedYAML()
            XCTAssertFalse(yaml.contains("#"), yaml)
            let back = try ExperimentConfig.parse(yaml: yaml)
            XCTAssertEqual(back, c.resolved())
            XCTAssertEqual(back.runHash, c.runHash)
            XCTAssertEqual(back.canonicalJSON(), c.canonicalJSON())
        }
        let yaml = try parse(["recipe.epochs=3"]).resolvedYAML()
        XCTAssertTrue(yaml.contains("\n  epochs: 3\n"), yaml)
        XCTAssertTrue(yaml.contains("\nspawn_times: [0, 1]\n"), yaml)
    }
}
