/// Rounds every value to the same absolute quantum, a power of ten with `digits` significant digits
/// of the largest magnitude. Eigen-solvers are accurate to about `n eps ||K||` in absolute terms,
/// and ScaLAPACK's `pdsyevd` on different process grids differs at that level, so eigenvalues (and
/// eigenvector components, quantum 1e-7 of a unit vector) are reported on a grid far coarser than
/// that noise and finer than the Gram's own accuracy (its entries come from `Float` Jacobians,
/// ~1e-7 relative): the tables then print the same whatever the number of ranks.
func quantized(_ values: [Double], digits: Int) -> [Double] {
    guard let top = values.map({ abs($0) }).max(), top > 0, top.isFinite else { return values }
    let quantum = pow(10, floor(log10(top)) - Double(digits - 1))
    return values.map { ($0 / quantum).rounded() * quantum }
}

/// `S(K, K') = 1 - <K, K'>_F / (||K||_F ||K'||_F)` on Grams of the same layout (DESIGN §4),
/// reduced deterministically over the Grams' ranks.
func kernelDistance(_ a: DistributedGram, _ b: DistributedGram, _ comm: Communicator) -> Double {
    let ab = a.frobeniusInner(b, comm), na = a.frobeniusNorm(comm), nb = b.frobeniusNorm(comm)
    return 1 - ab / (na * nb)
}

/// The NTK work units: each is collective over a group of ranks that builds its Grams together.
extension ExperimentRunner {
    var ntkOptions: NTKGramOptions {
        NTKGramOptions(memoryGiB: config.ntk.memoryGb, blockSize: config.ntk.blockSize > 0 ? config.ntk.blockSize : nil)
    }

    /// Times of the parent Grams of one replicate: the NTK times and the velocity end points.
    var parentGramTimes: [Double] { Set(config.resolvedNTKTimes + config.velocityPairs.map(\.to)).sorted() }

    /// The Gram of the network in checkpoint `path` on `inputs`, built by the ranks of `group`.
    func gram(_ path: String, inputs: [Float], group: Communicator) throws -> DistributedGram {
        let net = try loadNetwork(path)
        return try GramBuilder.build(network: net, inputs: inputs, communicator: group, options: ntkOptions).gram
    }

    /// Parent Grams at every NTK time: spectra, target alignment, kernel distances between times, velocity.
    func kernelTimeline(_ r: Int, group: Communicator, algebra: GramLinearAlgebra) throws -> TaskRecord {
        var grams: [Double: DistributedGram] = [:]
        for time in parentGramTimes {
            log("rank \(comm.rank): NTK Gram of replicate \(r) at epoch \(time)")
            grams[time] = try gram(paths.parentCheckpoint(replicate: r, epoch: time), inputs: probe.images, group: group)
        }
        let times = config.resolvedNTKTimes
        var record = TaskRecord(id: ExperimentTask.kernelTimeline(replicate: r).id)
        let traced = grams.mapValues { $0.traced() }
        for time in times {
            let k = grams[time]!
            let eigen = try algebra.eigen(k, vectors: config.ntk.eigenvectors)
            let values = quantized(eigen.values, digits: 9)
            let (full, tracedAlignment) = targetAlignment(k, traced[time]!, group: group)
            let sum = values.reduce(0, +), squares = values.reduce(0) { $0 + $1 * $1 }
            let top = values.first ?? 0, bottom = values.last ?? 0
            record.spectra.append(NTKSpectrumRow(
                replicate: r, epoch: time, size: k.order, trace: k.trace(group), lambdaMax: top,
                lambdaMin: bottom, conditionNumber: bottom > 0 ? top / bottom : .infinity,
                effectiveRank: squares > 0 ? sum * sum / squares : 0,
                targetAlignment: full, targetAlignmentTraced: tracedAlignment))
            record.eigenvalues += values.enumerated().map {
                NTKEigenvalueRow(replicate: r, epoch: time, index: $0.offset, eigenvalue: $0.element)
            }
            for (index, vector) in eigen.vectors.enumerated() {
                // Sign convention: the largest-magnitude component is positive.
                let pivot = vector.indices.max { abs(vector[$0]) < abs(vector[$1]) } ?? 0
                let sign: Double = vector.isEmpty || vector[pivot] >= 0 ? 1 : -1
                let components = vector.map { ($0 * sign * 1e7).rounded() / 1e7 }
                record.eigenvectors += components.enumerated().map {
                    NTKEigenvectorRow(replicate: r, epoch: time, index: index, row: $0.offset, value: $0.element)
                }
            }
        }
        for (i, a) in times.enumerated() {
            for b in times[i...] {
                record.kernelDistances.append(KernelDistanceRow(
                    replicate: r, epochA: a, epochB: b,
                    kernelDistance: kernelDistance(grams[a]!, grams[b]!, group),
                    kernelDistanceTraced: kernelDistance(traced[a]!, traced[b]!, group)))
            }
        }
        for pair in config.velocityPairs {
            let s = kernelDistance(grams[pair.from]!, grams[pair.to]!, group)
            record.kernelVelocities.append(KernelVelocityRow(replicate: r, epoch: pair.from, dt: config.ntk.velocityDt,
                                                             kernelDistance: s, velocity: s / config.ntk.velocityDt))
        }
        return record
    }

    /// Kernel–target alignment `<K, y y^T>_F / (||K||_F ||y y^T||_F)` of the probe labels, on the full
    /// Gram (`y` the one-hot mC vector, `||y y^T||_F = m`) and on the traced kernel (`Y Y^T`, m x m).
    func targetAlignment(_ k: DistributedGram, _ traced: DistributedGram, group: Communicator) -> (full: Double, traced: Double) {
        let C = probe.classCount, labels = probe.labels.map(Int.init)
        let yKy = k.symmetricSum(group) { i, j, v in labels[i / C] == i % C && labels[j / C] == j % C ? v : 0 }
        let full = yKy / (k.frobeniusNorm(group) * Double(probe.count))
        let same = traced.symmetricSum(group) { i, j, v in labels[i] == labels[j] ? v : 0 }
        let yyNorm = Double(probe.classCounts().reduce(0) { $0 + $1 * $1 }).squareRoot()
        return (full, same / (traced.frobeniusNorm(group) * yyNorm))
    }

    /// Kernel distance between every pair of children of spawn time index `s`.
    func kernelChildren(_ r: Int, _ s: Int, group: Communicator) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let grams = try (0..<childrenPerSpawn).map {
            try gram(paths.childCheckpoint(replicate: r, spawn: spawn, child: $0), inputs: probe.images, group: group)
        }
        var record = TaskRecord(id: ExperimentTask.kernelChildren(replicate: r, spawn: s).id)
        for a in 0..<childrenPerSpawn {
            for b in (a + 1)..<childrenPerSpawn {
                record.childKernelDistances.append(ChildKernelDistance(
                    replicate: r, spawnEpoch: spawn, childA: a, childB: b, kernelDistance: kernelDistance(grams[a], grams[b], group)))
            }
        }
        return record
    }

    /// The training examples of the kernel machine: class-balanced from the training subset.
    func machineTrainingSet() throws -> Dataset {
        try train.classBalancedSubset(count: config.kernelMachine.trainExamples, seed: config.seed, replicate: 1)
    }

    /// Kernel regression with the parent's NTK at time index `i` (DESIGN §4):
    /// `f(X*) = f(X*) + K(X*, X) alpha`, `alpha = (K + lambda I)^-1 (Y - f(X))`. The cross-kernel is never
    /// formed: `K(X*, X) alpha = J(X*) v` with `v = J(X)^T alpha`, one backward pass over `X` and one JVP
    /// per test batch.
    func kernelMachine(_ r: Int, _ i: Int, group: Communicator, algebra: GramLinearAlgebra) throws -> TaskRecord {
        let time = config.kernelMachine.times[i]
        let path = paths.parentCheckpoint(replicate: r, epoch: time)
        let net = try loadNetwork(path)
        let data = try machineTrainingSet()
        let k = try GramBuilder.build(network: net, inputs: data.images, communicator: group, options: ntkOptions).gram
        let C = net.classes, n = data.count
        let ridge = config.kernelMachine.ridge * k.trace(group) / Double(n * C)
        // Residual Y - f(X), example-major (row i*C + c), like the Gram.
        var residual = [Double](repeating: 0, count: n * C)
        forEachBatch(of: data) { batch, start, count in
            let logits = batch.images.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: count, mode: .eval) }
            for e in 0..<count {
                for c in 0..<C {
                    residual[(start + e) * C + c] = (Int(batch.labels[e]) == c ? 1 : 0) - Double(logits[e * C + c])
                }
            }
        }
        let alpha = try algebra.solve(k, ridge: ridge, rhs: residual, columns: 1)
        // v = J(X)^T alpha, accumulated in the network's gradient buffer.
        net.zeroGrads()
        forEachBatch(of: data) { batch, start, count in
            _ = batch.images.withUnsafeBufferPointer { net.forward($0.baseAddress!, n: count, mode: .eval) }
            let dlogits = alpha[(start * C)..<((start + count) * C)].map { Float($0) }
            dlogits.withUnsafeBufferPointer { net.backward($0.baseAddress!, n: count, mode: .eval) }
        }
        let tangent = Array(net.grads.buffer)
        var wrong = 0, wrongNetwork = 0
        forEachBatch(of: test) { batch, _, count in
            let logits = Array(batch.images.withUnsafeBufferPointer {
                UnsafeBufferPointer(start: net.forward($0.baseAddress!, n: count, mode: .eval), count: count * C)
            })
            let delta = tangent.withUnsafeBufferPointer {
                net.jvp(inputTangent: nil, parameterTangent: $0.baseAddress!, n: count, mode: .eval)
            }
            for e in 0..<count {
                let label = Int(batch.labels[e])
                let row = (0..<C).map { Double(logits[e * C + $0]) + Double(delta[e * C + $0]) }
                if row.indices.max(by: { row[$0] < row[$1] }) != label { wrong += 1 }
                if (0..<C).max(by: { logits[e * C + $0] < logits[e * C + $1] }) != label { wrongNetwork += 1 }
            }
        }
        var record = TaskRecord(id: ExperimentTask.kernelMachine(replicate: r, time: i).id)
        record.machines = [NTKMachineRow(replicate: r, epoch: time, trainExamples: n, ridge: ridge,
                                         testError: Double(wrong) / Double(test.count),
                                         networkTestError: Double(wrongNetwork) / Double(test.count))]
        return record
    }

    /// Runs `body(batch, first example, count)` over `data` in order, in metric-sized batches.
    func forEachBatch(of data: Dataset, _ body: (Batch, Int, Int) -> Void) {
        var batch = Batch(capacity: min(metricBatchSize, max(data.count, 1)), for: data)
        var start = 0
        for indices in BatchIterator.sequential(exampleCount: data.count, batchSize: batch.capacity) {
            data.gather(indices, into: &batch)
            body(batch, start, batch.count)
            start += batch.count
        }
    }
}
