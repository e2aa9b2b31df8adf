import Foundation

/// What `ntkscape run` checks at set-up, on every rank alike and before any training
/// (docs/experiment.md, "Checked before training"): the NTK units' memory against `ntk.memory_gb`
/// (`MemoryEstimate`), and, on rank 0, that the runs root takes new files and the disk space the
/// checkpoints will take.
extension ExperimentRunner {
    /// The per-rank memory estimate of this experiment on `ranks` ranks (NTK groups as `kernelGroups`).
    public func memoryEstimate(ranks: Int) -> MemoryEstimate {
        planner.memoryEstimate(groupRanks: planner.kernelGroupRanks(ranks: ranks))
    }

    /// Bytes of the checkpoints the run writes (`ExperimentPlanner.checkpointBytes`).
    public func checkpointBytes() -> (count: Int, bytes: Int) { planner.checkpointBytes() }

    /// Set-up checks: the runs root takes new files (rank 0), and NTK units fit `ntk.memory_gb` (every rank).
    func checkBeforeTraining() throws {
        if comm.rank == 0 {
            let root = (paths.runDirectory as NSString).deletingLastPathComponent
            try during("creating the run directory \(paths.runDirectory)",
                       fix: "make \(root) a writable directory with free space (or choose another with --runs), then rerun") {
                try OutputPath.checkWritableDirectory(root.isEmpty ? "." : root, option: "--runs", create: true)
            }
        }
        try memoryEstimate(ranks: comm.size).check()
    }

    /// Rank 0: a warning (with the numbers) when the checkpoints still to be written may not fit the
    /// free space of the runs root's file system. Returns the warning, or nil.
    @discardableResult
    public func warnAboutDiskSpace() -> String? {
        guard comm.rank == 0, let free = OutputPath.freeBytes(at: paths.runDirectory) else { return nil }
        let (count, total) = checkpointBytes()
        let existing = Self.bytes(under: paths.runDirectory)
        let needed = max(0, total - existing)
        guard needed > free else { return nil }
        let warning = "warning: the run's \(count) checkpoints take about \(MemoryEstimate.format(total))"
            + (existing > 0 ? " (\(MemoryEstimate.format(existing)) already in \(paths.runDirectory))" : "")
            + ", but the file system of \(paths.runDirectory) has \(MemoryEstimate.format(free)) free. "
            + "Fix: free space or choose a runs root with more (--runs); the run stops when the disk is full and resumes when rerun."
        log(warning)
        return warning
    }

    /// Bytes of the regular files under `directory` (0 when it does not exist).
    static func bytes(under directory: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
        var total = 0
        while let name = walker.nextObject() as? String {
            if let size = walker.fileAttributes?[.size] as? NSNumber, walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular {
                total += size.intValue
            }
            _ = name
        }
        return total
    }
}
