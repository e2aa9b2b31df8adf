/// Which part of a training split to train on.
public enum TrainingSubset: Codable, Sendable, Equatable {
    /// Every example.
    case all
    /// The first `n` examples in file order.
    case first(Int)
    /// `n / C` examples of each class chosen by the `.subset` stream of the experiment seed.
    case classBalanced(Int)
}

public extension Dataset {
    /// The first `n` examples in file order.
    func prefix(count n: Int) throws -> Dataset {
        guard n >= 0 && n <= count else {
            throw DatasetError.invalidSubset(
                dataset: name, reason: "the first \(n) examples were requested but there are \(count). "
                    + "Fix: ask for at most \(count).")
        }
        return subset(indices: Array(0..<n))
    }

    /// Indices of a class-balanced sample of `n` examples, `n / C` per class, in ascending order.
    ///
    /// For each class `c = 0, 1, ...` in turn, `RandomStream(key).sample(n / C, from: n_c)` picks
    /// positions among that class's examples (in data set order), all from one stream. Throws if
    /// `n` is not a multiple of `C` or a class has fewer than `n / C` examples.
    func classBalancedIndices(count n: Int, key: RandomKey) throws -> [Int] {
        guard n > 0 && n % classCount == 0 else {
            throw DatasetError.invalidSubset(
                dataset: name, reason: "a class-balanced subset of \(n) examples was requested, which is "
                    + "not a positive multiple of the \(classCount) classes. Fix: use a multiple of \(classCount).")
        }
        let perClass = n / classCount
        let byClass = indicesByClass()
        for (c, members) in byClass.enumerated() where members.count < perClass {
            throw DatasetError.tooFewExamples(dataset: name, classIndex: c, available: members.count, requested: perClass)
        }
        var stream = RandomStream(key)
        var chosen: [Int] = []
        chosen.reserveCapacity(n)
        for members in byClass {
            for k in stream.sample(perClass, from: members.count) { chosen.append(members[k]) }
        }
        return chosen.sorted()
    }

    /// A kernel machine's draw (`kernel_machine`, docs/ntk.md): the class-balanced examples
    /// `indices` (`n / C` per class) ordered fit part first, then the held-out part — the last
    /// `max(1, round(heldOut n / C))` of each class (at most `n/C - 1`) — each part in index order.
    /// Returns the data and the size of the fit part.
    func fitThenHeldOut(indices: [Int], heldOut: Double) -> (data: Dataset, fitCount: Int) {
        let perClass = indices.count / classCount
        let held = min(perClass - 1, max(1, Int((heldOut * Double(perClass)).rounded())))
        var fit: [Int] = [], out: [Int] = []
        for k in 0..<classCount {
            let members = indices.filter { label($0) == k }
            fit += members.prefix(perClass - held)
            out += members.suffix(held)
        }
        fit.sort(); out.sort()
        return (subset(indices: fit + out), fit.count)
    }

    /// A class-balanced training subset of `n` examples (stream role `.subset`).
    func classBalancedSubset(count n: Int, seed: UInt64, replicate: Int = 0) throws -> Dataset {
        subset(indices: try classBalancedIndices(
            count: n, key: RandomKey(seed: seed, replicate: replicate, role: .subset)))
    }

    /// Indices of the fixed probe set of `m` examples, `m / C` per class, used by the metrics (NTK
    /// Gram, ReLU patterns, ...): `classBalancedIndices` with stream role `.probe`, so it is the same
    /// for every replicate, child and time of an experiment.
    func probeIndices(count m: Int, seed: UInt64) throws -> [Int] {
        try classBalancedIndices(count: m, key: RandomKey(seed: seed, role: .probe))
    }

    /// The probe set as a data set (see `probeIndices`).
    func probeSubset(count m: Int, seed: UInt64) throws -> Dataset {
        subset(indices: try probeIndices(count: m, seed: seed))
    }

    /// Applies a `TrainingSubset` choice.
    func trainingSubset(_ choice: TrainingSubset, seed: UInt64, replicate: Int = 0) throws -> Dataset {
        switch choice {
        case .all: return self
        case let .first(n): return try prefix(count: n)
        case let .classBalanced(n): return try classBalancedSubset(count: n, seed: seed, replicate: replicate)
        }
    }
}
