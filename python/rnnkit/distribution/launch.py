"""`initialize`: starts MPI through mpi4py when it is installed, and says so when it is needed but missing."""

import os

# Set by the MPI launchers (MPICH's and Intel's Hydra, Open MPI) to the number of processes started.
_LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_processes():
    """The number of processes an MPI launcher (`mpiexec`) started this one among, 1 outside one."""
    for name in _LAUNCHER_SIZES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def initialize():
    """Starts MPI (importing mpi4py) and returns its world communicator, or None without mpi4py
    on a single process, where data parallelism is a no-op.

    Keras's `initialize` takes job addresses; with MPI the launcher (`mpiexec -n N`, or a
    cluster scheduler's) has already told each process its rank, so there is nothing to pass.

    Raises:
        ImportError: If the process was started by `mpiexec` among several but mpi4py is missing
            (each process would otherwise train alone on all the data).
    """
    try:
        from mpi4py import MPI
    except ImportError as error:
        if launched_processes() > 1:
            raise ImportError(
                f"DataParallel: this process is one of {launched_processes()} started by mpiexec, but mpi4py "
                'cannot be imported; install it with pip install "rnnkit[mpi]".'
            ) from error
        return None
    return MPI.COMM_WORLD
