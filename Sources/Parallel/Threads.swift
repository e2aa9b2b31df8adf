import Core

extension MPICommunicator {
    /// Sets this rank's OpenBLAS thread count by `ThreadDecision.decide`: `option` (`--threads`),
    /// else `OPENBLAS_NUM_THREADS`, else cores on the node / ranks of this communicator on the node.
    /// Collective (counts the ranks on each node).
    @discardableResult
    public func configureBLASThreads(option: Int?) -> ThreadDecision {
        BLASThreads.configure(option: option, ranksOnNode: nodeLocal().size)
    }
}
