import Foundation

// The analyses behind the paper's figures 5, 10 and 11: the loss plane through the parent and two
// children, the predictions saved along training, the child-child function distance over time and
// the joint t-SNE embedding of the predictions (docs/metrics.md).

extension ExperimentRunner {
    // MARK: Loss plane

    /// The test examples of the plane (`plane.test_subset`: the first N; 0 = all).
    var planeTest: Dataset {
        get throws {
            let n = config.plane.testSubset
            return n == 0 || n >= test.count ? test : try test.prefix(count: n)
        }
    }

    /// The grid points of part `k`: point `idx = j * points + i` of the row-major grid when
    /// `idx mod parts == k`, and (part 0) the three networks.
    func planePoints(_ plane: LossPlane, part k: Int) -> [(label: String, i: Int?, j: Int?, x: Double, y: Double)] {
        let section = config.plane, (xs, ys) = plane.grid(points: section.points, margin: section.margin)
        var out: [(label: String, i: Int?, j: Int?, x: Double, y: Double)] = []
        if k == 0 {
            out = [("spawn", nil, nil, 0, 0), ("child_a", nil, nil, plane.coordinatesA.x, plane.coordinatesA.y),
                   ("child_b", nil, nil, plane.coordinatesB.x, plane.coordinatesB.y)]
        }
        for idx in stride(from: k, to: xs.count * ys.count, by: section.parts) {
            let i = idx % xs.count, j = idx / xs.count
            out.append(("grid", i, j, xs[i], ys[j]))
        }
        return out
    }

    /// Part `k` of the plane of `plane.spawn_times[p]`: the network at every point (BatchNorm by
    /// `barrier.bn_policy`), and with `plane.tangent` the linearisations around the parent and child 0.
    func measurePlane(_ r: Int, _ p: Int, part k: Int) throws -> TaskRecord {
        let spawn = config.plane.spawnTimes[p]
        let originPath = paths.parentCheckpoint(replicate: r, epoch: spawn)
        let childPaths = [0, 1].map { paths.childCheckpoint(replicate: r, spawn: spawn, child: $0) }
        let plane: LossPlane
        do {
            plane = try LossPlane(origin: try loadNetwork(originPath), a: try loadNetwork(childPaths[0]),
                                  b: try loadNetwork(childPaths[1]))
        } catch let e as LossPlane.Degenerate {
            throw ConfigurationError(field: "plane.spawn_times", message: "the plane at spawn time \(canonicalNumber(spawn)): \(e)")
        }
        let data = try planeTest, points = planePoints(plane, part: k)
        let policy = config.barrier.bnPolicy, hasBN = !plane.origin.batchNorms.isEmpty
        let batchNorm = interpolationBatchNorm(policy)
        let recomputer = hasBN && policy == .recompute
            ? try BatchNormRecomputer(data: train, batches: config.barrier.recomputeBatches, batchSize: recipe.batchSize, seed: config.seed)
            : nil
        func row(_ model: String, _ pt: (label: String, i: Int?, j: Int?, x: Double, y: Double), _ s: LossSummary,
                 _ bn: String) -> LossPlaneRow {
            LossPlaneRow(replicate: r, spawnEpoch: spawn, childA: 0, childB: 1, model: model, point: pt.label, i: pt.i, j: pt.j,
                         x: pt.x, y: pt.y, testError: s.errorRate, testLoss: s.meanLoss, batchNorm: bn)
        }
        var record = TaskRecord(id: ExperimentTask.plane(replicate: r, plane: p, part: k).id)
        let scratch = plane.origin.rebuilt(as: Float.self)
        let progress = ProgressPrinter(label: "r\(r) plane at \(canonicalNumber(spawn)) part \(k)",
                                       endStep: points.count * (config.plane.tangent ? 3 : 1), interval: 30)
        var done = 0
        for pt in points {
            plane.place(scratch, x: pt.x, y: pt.y, batchNorm: batchNorm, recomputer: recomputer)
            let s = evaluate(scratch, on: data, loss: recipe.loss)
            record.plane.append(row(LossPlaneRow.network, pt, s, hasBN ? policy.rawValue : "none"))
            done += 1
            progress.report(step: done, epoch: spawn, batchSize: data.count, summary: s)
        }
        if config.plane.tangent {
            for (model, path) in [(LossPlaneRow.tangentSpawn, originPath), (LossPlaneRow.tangentChild, childPaths[0])] {
                let center = try loadForAnalysis(path)
                let lin = LinearizedModel(around: center), label = batchNormLabel(center)
                for pt in points {
                    plane.weights(x: pt.x, y: pt.y, into: lin.weights.pointer)
                    let s = lin.evaluate(on: data, loss: recipe.loss)
                    record.plane.append(row(model, pt, s, label))
                    done += 1
                    progress.report(step: done, epoch: spawn, batchSize: data.count, summary: s)
                }
            }
        }
        return record
    }

    // MARK: Predictions along training

    /// The trajectory examples as a data set (`trajectoryIndices` of `test`).
    var trajectoryData: Dataset { test.subset(indices: trajectoryIndices) }

    /// Writes the softmax predictions of `net` (prepared for analysis) on the trajectory examples:
    /// `[N, C]` float32, row `i` for example `trajectoryIndices[i]`.
    func savePredictions(_ net: Network<Float>, to path: String) throws {
        let data = trajectoryData, C = net.classes
        var probabilities = [Float](repeating: 0, count: data.count * C)
        _ = evaluate(on: data, classes: C, loss: recipe.loss, logits: { x, n in UnsafePointer(net.forward(x, n: n, mode: .eval)) }) {
            start, n, logits in
            for e in 0..<n {
                let z = logits.baseAddress! + e * C
                var m = z[0]
                for c in 1..<C where z[c] > m { m = z[c] }
                var sum: Double = 0
                for c in 0..<C { sum += Double(Foundation.exp(z[c] - m)) }
                for c in 0..<C { probabilities[(start + e) * C + c] = Float(Double(Foundation.exp(z[c] - m)) / sum) }
            }
        }
        try NPY.write(probabilities, shape: [data.count, C], to: path)
    }

    /// The callback that saves a child's predictions at `trajectoryChildTimes` (nil when off): a copy
    /// of the network, prepared for analysis like every checkpoint, so the child's points and the
    /// parent's (from its checkpoints) are measured alike.
    func predictionSaver(replicate r: Int, spawn: Double, child k: Int) -> TimedSaves? {
        guard config.trajectories.enabled else { return nil }
        let saves = config.trajectoryChildTimes(spawn: spawn).map { (time: $0, step: recipe.step(atEpoch: $0, examples: train.count)) }
        return TimedSaves(saves: saves) { trainer, time in
            let copy = trainer.network.rebuilt(as: Float.self)
            copy.params.pointer.update(from: trainer.network.params.pointer, count: copy.parameterCount)
            copy.state.pointer.update(from: trainer.network.state.pointer, count: copy.layout.stateCount)
            try self.savePredictions(try self.prepareForAnalysis(copy),
                                     to: self.paths.childPredictions(replicate: r, spawn: spawn, child: k, epoch: time))
        }
    }

    /// Reads one saved prediction file (`[N, C]` float32 of the trajectory examples).
    func readPredictions(_ path: String) throws -> [Float] {
        try waitFor(path)
        let n = trajectoryIndices.count, C = train.classCount
        guard let data = FileManager.default.contents(atPath: path), let (values, shape) = NPY.decode(data, as: Float.self),
              shape == [n, C] else {
            throw CheckpointError(path: path, problem: "not a [\(n), \(C)] float32 prediction file",
                                  fix: "delete it and the task record that wrote it, then rerun (ntkscape run)")
        }
        return values
    }

    /// The predicted labels (argmax, ties to the lower class) of `[N, C]` probabilities.
    func predictedLabels(_ p: [Float], classes C: Int) -> [Int32] {
        var labels = [Int32](repeating: 0, count: p.count / C)
        p.withUnsafeBufferPointer { x in labels.withUnsafeMutableBufferPointer { argmaxRows(logits: x, classes: C, predictions: $0) } }
        return labels
    }

    var trajectoryLabels: [Int32] { trajectoryIndices.map { Int32(test.label($0)) } }

    /// The function distance between every pair of children of spawn index `s` at each of their
    /// prediction times, raw and smoothed (`trajectories.smoothing`).
    func measureTrajectories(_ r: Int, _ s: Int) throws -> TaskRecord {
        let spawn = spawnTimes[s], times = config.trajectoryChildTimes(spawn: spawn), C = train.classCount
        let labels = trajectoryLabels
        let predicted = try (0..<childrenPerSpawn).map { k in
            try times.map { predictedLabels(try readPredictions(paths.childPredictions(replicate: r, spawn: spawn, child: k, epoch: $0)),
                                            classes: C) }
        }
        var record = TaskRecord(id: ExperimentTask.trajectories(replicate: r, spawn: s).id)
        for a in 0..<childrenPerSpawn { for b in (a + 1)..<childrenPerSpawn {
            let d = times.indices.map { FunctionDistance(a: predicted[a][$0], b: predicted[b][$0], labels: labels, classes: C) }
            let raw = d.map(\.disagreement), normalized = d.map(\.normalized)
            let smooth = movingAverage(raw, window: config.trajectories.smoothing)
            let smoothNormalized = movingAverage(normalized, window: config.trajectories.smoothing)
            for (t, time) in times.enumerated() {
                record.trajectories.append(FunctionTrajectoryRow(
                    replicate: r, spawnEpoch: spawn, childA: a, childB: b, epoch: time, epochsSinceSpawn: time - spawn,
                    testErrorA: d[t].errorA, testErrorB: d[t].errorB, disagreement: raw[t], disagreementOverIndependent: normalized[t],
                    disagreementSmoothed: smooth[t]!, disagreementOverIndependentSmoothed: smoothNormalized[t]))
            }
        } }
        return record
    }

    /// The joint t-SNE embedding of the replicate's saved predictions: the parent at every
    /// measurement time, then the children by spawn time and index at each of their times.
    func embedPredictions(_ r: Int) throws -> TaskRecord {
        var points: [[Double]] = [], labels: [(run: String, spawn: Double?, epoch: Double)] = []
        let C = train.classCount, truth = trajectoryLabels
        var errors: [Double] = []
        func add(_ path: String, _ label: (run: String, spawn: Double?, epoch: Double)) throws {
            let p = try readPredictions(path)
            points.append(p.map(Double.init))
            labels.append(label)
            let predicted = predictedLabels(p, classes: C)
            errors.append(Double(zip(predicted, truth).filter { $0 != $1 }.count) / Double(truth.count))
        }
        for time in measurementTimes { try add(paths.parentPredictions(replicate: r, epoch: time), ("parent", nil, time)) }
        for spawn in spawnTimes {
            for k in 0..<childrenPerSpawn {
                for time in config.trajectoryChildTimes(spawn: spawn) {
                    try add(paths.childPredictions(replicate: r, spawn: spawn, child: k, epoch: time), ("child-\(k)", spawn, time))
                }
            }
        }
        try NPY.write(trajectoryIndices.map(Int64.init), shape: [trajectoryIndices.count], to: paths.trajectoryExamples(replicate: r))
        let result = try tsne(points, settings: config.trajectories.tsne.settings)
        var record = TaskRecord(id: ExperimentTask.embedding(replicate: r).id)
        record.embedding = labels.indices.map { i in
            FunctionEmbeddingRow(replicate: r, run: labels[i].run, spawnEpoch: labels[i].spawn, epoch: labels[i].epoch,
                                 x: result.embedding[2 * i], y: result.embedding[2 * i + 1], testError: errors[i])
        }
        return record
    }
}

/// The centred moving average of `values` over `window` (odd) points; near the ends the window is
/// cut to the points that exist. nil values are skipped; a window with none gives nil.
public func movingAverage(_ values: [Double?], window: Int) -> [Double?] {
    let h = window / 2
    return values.indices.map { i in
        let inside = values[max(0, i - h)...min(values.count - 1, i + h)].compactMap { $0 }
        return inside.isEmpty ? nil : inside.reduce(0, +) / Double(inside.count)
    }
}

/// Runs `action(trainer, time)` when training reaches each planned step (and from `fire` for the
/// current step, e.g. before training starts or resumes).
final class TimedSaves: TrainingCallback {
    let saves: [(time: Double, step: Int)]
    let action: (Trainer, Double) throws -> Void
    init(saves: [(time: Double, step: Int)], action: @escaping (Trainer, Double) throws -> Void) {
        self.saves = saves; self.action = action
    }

    func fire(_ t: Trainer) throws {
        for s in saves where s.step == t.step { try action(t, s.time) }
    }
    func afterStep(_ t: Trainer, summary: LossSummary) throws { try fire(t) }
}
