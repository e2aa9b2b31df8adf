import Core
import Foundation
import Parallel
import XCTest

/// Data-parallel training (`Trainer.group`): groups of 1, 2 and 3 ranks train ResNet-20 (BatchNorm)
/// and SimpleCNN to the same bytes as one process with `SerialCommunicator` — in-process ranks
/// (`ThreadGroup`), and real MPI ranks split from the world of `mpirun -np 3` (the test relaunches
/// this bundle under mpirun, running only `testTrainingOnEveryRank`, which compares on every member
/// and prints a line per match).
final class DataParallelGroupTests: XCTestCase {
    static let childFlag = "NTKSCAPE_TEST_DATA_PARALLEL_CHILD"
    static let models: [ModelKind] = [.resnet20, .simplecnn]

    /// A short epoch (batches of 24, 24 and 2: the last has fewer shards than a group of 3 has
    /// ranks) on groups of 2 and 3 in-process ranks gives the weights, BatchNorm state, optimiser
    /// state and losses of one process, bit for bit.
    func testInProcessGroupsTrainBitIdentically() throws {
        for kind in Self.models {
            let reference = try Self.train(kind, group: SerialCommunicator())
            for size in [2, 3] {
                let members = try ThreadGroup.run(size: size) { comm in try Self.train(kind, group: comm) }
                for (rank, result) in members.enumerated() {
                    XCTAssertEqual(result.losses, reference.losses, "\(kind), rank \(rank) of \(size): losses")
                    XCTAssertTrue(result.checkpoint == reference.checkpoint, "\(kind), rank \(rank) of \(size): checkpoint differs")
                }
            }
        }
    }

    func testGroupsOfOneTwoAndThreeMPIRanksTrainBitIdentically() throws {
        if ProcessInfo.processInfo.environment[Self.childFlag] != nil { return }   // the child runs the other test
        let bundle = try XCTUnwrap(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        let (status, output) = try SelftestIntegrationTests.run(SelftestIntegrationTests.mpirun, [
            "--allow-run-as-root", "--oversubscribe", "-np", "3", "-x", "\(Self.childFlag)=1", bundle,
            "ParallelTests.DataParallelGroupTests/testTrainingOnEveryRank"], timeout: 300)
        XCTAssertEqual(status, 0, output)
        for kind in Self.models {
            for size in 1...3 {
                for rank in 0..<size {
                    XCTAssertTrue(output.contains("DataParallelGroupTests: \(kind) rank \(rank) of \(size) matches one process"),
                                  "\(kind), rank \(rank) of \(size):\n\(output)")
                }
            }
        }
    }

    /// Runs only under the relaunch above (skipped in a normal test run).
    func testTrainingOnEveryRank() throws {
        guard ProcessInfo.processInfo.environment[Self.childFlag] != nil else {
            throw XCTSkip("runs only on the ranks started by testGroupsOfOneTwoAndThreeMPIRanksTrainBitIdentically")
        }
        let world = Parallel.worldCommunicator()
        XCTAssertEqual(world.size, 3)
        for kind in Self.models {
            let reference = try Self.train(kind, group: SerialCommunicator())
            for size in 1...3 {
                if let group = world.split(color: world.rank < size ? 0 : -1, key: world.rank) {
                    let result = try Self.train(kind, group: group)
                    XCTAssertEqual(result.losses, reference.losses, "\(kind), rank \(group.rank) of \(size): losses")
                    XCTAssertTrue(result.checkpoint == reference.checkpoint, "\(kind), rank \(group.rank) of \(size): checkpoint differs")
                    if result.losses == reference.losses && result.checkpoint == reference.checkpoint {
                        print("DataParallelGroupTests: \(kind) rank \(group.rank) of \(size) matches one process")
                    }
                }
                world.barrier()
            }
        }
    }

    /// One epoch of 50 synthetic 8x8 images in batches of 24, 24 and 2 (the last has fewer shards
    /// than a group of 3 has ranks); the step losses and the checkpoint's bytes.
    static func train(_ kind: ModelKind, group: Communicator) throws -> (losses: [Double], checkpoint: Data) {
        let (data, _) = SyntheticData.make(SyntheticSpec(trainCount: 50, testCount: 1, channels: 3, height: 8, width: 8,
                                                         classCount: 4, seed: 7))
        var recipe = TrainingRecipe()
        recipe.batchSize = 24; recipe.learningRate = 0.05; recipe.epochs = 1; recipe.shards = 8
        let trainer = Trainer(network: kind.build(input: Shape(3, 8, 8), classes: 4), recipe: recipe, data: data,
                              identity: TrainingIdentity(seed: 11), group: group)
        trainer.initializeWeights()
        var losses: [Double] = []
        while trainer.step < trainer.finalStep { losses.append(try trainer.trainStep().lossSum) }
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("dp-\(kind)-\(group.size)-\(group.rank)-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(trainer: trainer).write(to: path)
        return (losses, try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
