import Foundation

/// The NTK work units: each is collective over a group of ranks that builds its Grams together.
extension ExperimentRunner {
    var ntkOptions: NTKGramOptions {
        NTKGramOptions(memoryGiB: config.ntk.memoryGb, blockSize: config.ntk.blockSize > 0 ? config.ntk.blockSize : nil)
    }

    /// Times of the parent Grams of one replicate: the NTK times and the velocity end points.
    var parentGramTimes: [Double] { Set(config.resolvedNTKTimes + config.velocityPairs.map(\.to)).sorted() }

    /// The Gram on the probe set of the network in checkpoint `path`.
    func probeGram(_ path: String, _ ntk: NTKAnalysis) throws -> DistributedGram {
        try ntk.gram(try loadNetwork(path), probe: probe).gram
    }

    /// Parent Grams at every NTK time: spectra, target alignment, kernel distances between times, velocity.
    func kernelTimeline(_ r: Int, ntk: NTKAnalysis) throws -> TaskRecord {
        var grams: [Double: DistributedGram] = [:]
        for time in parentGramTimes {
            grams[time] = try probeGram(paths.parentCheckpoint(replicate: r, epoch: time), ntk)
        }
        let times = config.resolvedNTKTimes, labels = probe.labels.map(Int.init)
        var record = TaskRecord(id: ExperimentTask.kernelTimeline(replicate: r).id)
        let traced = grams.mapValues { $0.traced() }
        for time in times {
            let k = grams[time]!
            let spectrum = try ntk.spectrum(k, topVectors: config.ntk.eigenvectors)
            let alignment = ntk.alignment(k, labels: labels)
            record.spectra.append(NTKSpectrumRow(
                replicate: r, epoch: time, size: k.order, trace: spectrum.trace, lambdaMax: spectrum.largest,
                lambdaMin: spectrum.smallest, conditionNumber: spectrum.conditionNumber, effectiveRank: spectrum.effectiveRank,
                targetAlignment: alignment.full, targetAlignmentTraced: alignment.traced))
            record.eigenvalues += spectrum.eigenvalues.enumerated().map {
                NTKEigenvalueRow(replicate: r, epoch: time, index: $0.offset, eigenvalue: $0.element)
            }
            for (index, vector) in spectrum.topVectors.enumerated() {
                record.eigenvectors += vector.enumerated().map {
                    NTKEigenvectorRow(replicate: r, epoch: time, index: index, row: $0.offset, value: $0.element)
                }
            }
        }
        for (i, a) in times.enumerated() {
            for b in times[i...] {
                record.kernelDistances.append(KernelDistanceRow(
                    replicate: r, epochA: a, epochB: b, kernelDistance: ntk.distance(grams[a]!, grams[b]!),
                    kernelDistanceTraced: ntk.distance(traced[a]!, traced[b]!)))
            }
        }
        for pair in config.velocityPairs {
            let s = ntk.distance(grams[pair.from]!, grams[pair.to]!)
            record.kernelVelocities.append(KernelVelocityRow(replicate: r, epoch: pair.from, dt: config.ntk.velocityDt,
                                                             kernelDistance: s, velocity: s / config.ntk.velocityDt))
        }
        return record
    }

    /// Kernel distance between every pair of children of spawn time index `s`.
    func kernelChildren(_ r: Int, _ s: Int, ntk: NTKAnalysis) throws -> TaskRecord {
        let spawn = spawnTimes[s]
        let grams = try (0..<childrenPerSpawn).map {
            try probeGram(paths.childCheckpoint(replicate: r, spawn: spawn, child: $0), ntk)
        }
        var record = TaskRecord(id: ExperimentTask.kernelChildren(replicate: r, spawn: s).id)
        for a in 0..<childrenPerSpawn {
            for b in (a + 1)..<childrenPerSpawn {
                record.childKernelDistances.append(ChildKernelDistance(
                    replicate: r, spawnEpoch: spawn, childA: a, childB: b, kernelDistance: ntk.distance(grams[a], grams[b])))
            }
        }
        return record
    }

    /// The training examples of the kernel machine: class-balanced from the training subset.
    func machineTrainingSet() throws -> Dataset {
        try train.classBalancedSubset(count: config.kernelMachine.trainExamples, seed: config.seed, replicate: 1)
    }

    /// Kernel regression with the parent's NTK at time index `i` (DESIGN §4), with the ridge relative
    /// to the Gram's mean diagonal.
    func kernelMachine(_ r: Int, _ i: Int, ntk: NTKAnalysis) throws -> TaskRecord {
        let time = config.kernelMachine.times[i]
        let net = try loadNetwork(paths.parentCheckpoint(replicate: r, epoch: time))
        let data = try machineTrainingSet()
        let gram = try ntk.gram(net, probe: data).gram
        let ridge = config.kernelMachine.ridge * gram.trace(ntk.communicator) / Double(gram.order)
        let result = try ntk.machine(net, train: data, test: test, ridge: ridge, gram: gram)
        var record = TaskRecord(id: ExperimentTask.kernelMachine(replicate: r, time: i).id)
        record.machines = [NTKMachineRow(replicate: r, epoch: time, trainExamples: result.trainCount, ridge: result.ridge,
                                         testError: result.testError,
                                         networkTestError: evaluate(net, on: test, loss: recipe.loss).errorRate)]
        return record
    }
}
