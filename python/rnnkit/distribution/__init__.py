"""Data-parallel training across processes on MPI (mpi4py), with Keras's `keras.distribution` API.

    import rnnkit as rk
    rk.distribution.set_distribution(rk.distribution.DataParallel())
    model.fit(x, y, batch_size=64)  # launched with: mpiexec -n 4 python train.py

mpi4py is an optional extra (`pip install "rnnkit[mpi]"`); without it, or on one process, a
`DataParallel` changes nothing.
"""

from rnnkit.distribution.communicator import DistributedError
from rnnkit.distribution.data_parallel import DataParallel
from rnnkit.distribution.launch import initialize
from rnnkit.distribution.state import distribution, set_distribution

__all__ = ["DataParallel", "DistributedError", "distribution", "initialize", "set_distribution"]
