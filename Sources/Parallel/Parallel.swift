import Core

/// The communicator of every process of this job: the MPI world, initialising MPI on first use.
/// A process started without `mpirun` is a 1-rank singleton world, so callers need no special case.
/// Call it as `Parallel.worldCommunicator()`.
public func worldCommunicator() -> MPICommunicator {
    MPICommunicator.world()
}
