import Foundation

/// The NTK work units: each is collective over a group of ranks that builds its Grams together.
extension ExperimentRunner {
    var ntkOptions: NTKGramOptions {
        NTKGramOptions(memoryGiB: config.ntk.memoryGb, blockSize: config.ntk.blockSize > 0 ? config.ntk.blockSize : nil)
    }

    /// The Gram on the probe set of the network in checkpoint `path`.
    func probeGram(_ path: String, _ ntk: NTKAnalysis) throws -> DistributedGram {
        try ntk.gram(try loadForAnalysis(path), probe: probe).gram
    }

    /// Parent Grams at every NTK time: spectra, target alignment, kernel distances between times, velocity.
    func kernelTimeline(_ r: Int, ntk: NTKAnalysis) throws -> TaskRecord {
        var grams: [Double: DistributedGram] = [:]
        for time in config.parentGramTimes {
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
                targetAlignment: alignment.full, targetAlignmentTraced: alignment.traced, batchNorm: analysisBatchNormLabel))
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
                    kernelDistanceTraced: ntk.distance(traced[a]!, traced[b]!), batchNorm: analysisBatchNormLabel))
            }
        }
        for pair in config.velocityPairs {
            let s = ntk.distance(grams[pair.from]!, grams[pair.to]!)
            record.kernelVelocities.append(KernelVelocityRow(replicate: r, epoch: pair.from, dt: config.ntk.velocityDt,
                                                             kernelDistance: s, velocity: s / config.ntk.velocityDt,
                                                             batchNorm: analysisBatchNormLabel))
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

    /// The `batch_norm` column of tables over this experiment's networks (`batchNormLabel`).
    var analysisBatchNormLabel: String { config.model.hasBatchNorm ? config.analysis.batchnorm.rawValue : "none" }

    /// The examples of kernel-machine draw `d` (the same for every replicate and time): `n`
    /// class-balanced training examples (stream role `.subset`, replicate `1 + d`), ordered fit part
    /// first, then the held-out part — the last `max(1, round(held_out n / C))` of each class (at
    /// most `n/C - 1`). Returns the data and the fit count.
    func machineDraw(_ d: Int, examples n: Int) throws -> (data: Dataset, fitCount: Int) {
        let indices = try train.classBalancedIndices(count: n, key: RandomKey(seed: config.seed, replicate: 1 + d, role: .subset))
        return train.fitThenHeldOut(indices: indices, heldOut: config.kernelMachine.heldOut)
    }

    /// The NTK kernel machines of the parent at `kernel_machine.times[i]` (an NTKScape addition): per
    /// draw, the ridge chosen on the held-out part from one eigendecomposition, both forms.
    func kernelMachine(_ r: Int, _ i: Int, ntk: NTKAnalysis) throws -> TaskRecord {
        let time = config.kernelMachine.times[i]
        let net = try loadForAnalysis(paths.parentCheckpoint(replicate: r, epoch: time))
        let label = batchNormLabel(net)
        let networkError = evaluate(net, on: test, loss: recipe.loss).errorRate
        let n = machineExamples(groupRanks: ntk.communicator.size)
        var record = TaskRecord(id: ExperimentTask.kernelMachine(replicate: r, time: i).id)
        for d in 0..<config.kernelMachine.draws {
            let (data, fitCount) = try machineDraw(d, examples: n)
            let machines = try ntk.selectedMachine(net, data: data, fitCount: fitCount, test: test,
                                                   relativeRidges: config.kernelMachine.ridges)
            for m in machines {
                let chosen = m.ridges[m.chosen]
                record.machines.append(NTKMachineRow(
                    replicate: r, epoch: time, draw: d, form: m.form.rawValue, trainExamples: m.trainCount,
                    fitExamples: m.fitCount, heldOutExamples: m.trainCount - m.fitCount, ridgeRelative: chosen.relative,
                    ridge: chosen.absolute, heldOutLoss: chosen.heldOutLoss, trainError: m.trainError,
                    trainResidual: m.trainResidual, testError: m.testError, networkTestError: networkError, batchNorm: label))
                record.machineRidges += m.ridges.enumerated().map {
                    NTKMachineRidgeRow(replicate: r, epoch: time, draw: d, form: m.form.rawValue, ridgeRelative: $0.element.relative,
                                       ridge: $0.element.absolute, heldOutLoss: $0.element.heldOutLoss,
                                       heldOutError: $0.element.heldOutError, chosen: $0.offset == m.chosen)
                }
            }
        }
        return record
    }
}
