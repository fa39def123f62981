"""`Communicator`: the MPI collectives of data-parallel training, with fault reports and timeouts.

Every collective is started non-blocking and waited on in a loop that also watches a side channel
(a duplicate of the communicator) for fault reports, so that a rank that fails, or a collective that
waits longer than the timeout, stops every rank with an error naming the rank and its message
instead of leaving the others blocked. An uncaught exception reports itself the same way, and a
process that saw a fault aborts the MPI job when it exits (the last resort, which also ends ranks
busy computing).
"""

import atexit
import pickle
import sys
import time

import numpy as np

# The tag of fault reports on the side channel.
_FAULT_TAG = 19
# How long a failing rank waits for its reports to be received before it goes on raising.
_REPORT_GRACE_S = 1.0
# Waits shorter than this spin; longer ones sleep between polls so an idle rank frees its core.
_SPIN_S = 0.001


class DistributedError(RuntimeError):
    """Another rank failed, or a collective waited longer than its timeout."""


class Communicator:
    """The collectives `DataParallel` uses, over an mpi4py communicator.

    Args:
        comm: An mpi4py communicator (e.g. `MPI.COMM_WORLD`); it is duplicated twice, for the
            training's collectives and for fault reports, so the user's own traffic never mixes in.
        timeout: Seconds a collective may wait for the other ranks before every rank stops with a
            `DistributedError`, or None to wait forever.

    Attributes:
        rank: This process's index.
        size: The number of processes.
        failure: The message of the fault this rank saw (None while all is well); once set, every
            collective raises it.
        allreduce_seconds: Time spent in `allreduce_sum` (waiting included), for the benchmark.
        allreduce_bytes: Bytes given to `allreduce_sum`.
        allreduce_calls: Calls to `allreduce_sum`.
    """

    def __init__(self, comm, timeout):
        from mpi4py import MPI

        self._mpi = MPI
        self._comm = comm.Dup()
        self._faults = comm.Dup()
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        self.timeout = timeout
        self.failure = None
        self.allreduce_seconds, self.allreduce_bytes, self.allreduce_calls = 0.0, 0, 0
        if self.size > 1:
            self._previous_hook = sys.excepthook
            sys.excepthook = self._excepthook
            atexit.register(self._abort_after_fault)

    # --- collectives ---------------------------------------------------------------------------

    def allreduce_sum(self, array):
        """The elementwise sum of `array` over all ranks (a new array of its shape and dtype)."""
        array = np.ascontiguousarray(array)
        out = np.empty_like(array)
        began = time.perf_counter()
        self._wait(self._comm.Iallreduce(array, out, op=self._mpi.SUM), "allreduce")
        self.allreduce_seconds += time.perf_counter() - began
        self.allreduce_bytes += array.nbytes
        self.allreduce_calls += 1
        return out

    def broadcast(self, value):
        """Rank 0's `value` (any picklable object) on every rank."""
        data = np.frombuffer(pickle.dumps(value), np.uint8) if self.rank == 0 else None
        size = np.array([0 if data is None else data.size], np.int64)
        self._wait(self._comm.Ibcast(size, root=0), "broadcast")
        buffer = data.copy() if data is not None else np.empty(int(size[0]), np.uint8)
        self._wait(self._comm.Ibcast(buffer, root=0), "broadcast")
        return value if self.rank == 0 else pickle.loads(buffer.tobytes())

    def allgather(self, value):
        """Every rank's `value` (any picklable object), as a list in rank order, on every rank."""
        data = np.frombuffer(pickle.dumps(value), np.uint8)
        sizes = np.empty(self.size, np.int64)
        self._wait(self._comm.Iallgather(np.array([data.size], np.int64), sizes), "allgather")
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        buffer = np.empty(int(sizes.sum()), np.uint8)
        self._wait(self._comm.Iallgatherv(data, [buffer, sizes, offsets, self._mpi.BYTE]), "allgather")
        return [pickle.loads(buffer[o : o + s].tobytes()) for o, s in zip(offsets, sizes)]

    # --- faults --------------------------------------------------------------------------------

    def report_failure(self, error):
        """Tells the other ranks that this one failed with `error` (once; a rank that is failing
        because of another's report passes it on to nobody)."""
        if self.failure is not None or self.size == 1:
            return
        self.failure = f"rank {self.rank} failed with {type(error).__name__}: {error}"
        requests = [
            self._faults.issend(self.failure, dest=rank, tag=_FAULT_TAG)
            for rank in range(self.size)
            if rank != self.rank
        ]
        deadline = time.perf_counter() + _REPORT_GRACE_S
        while not self._mpi.Request.Testall(requests) and time.perf_counter() < deadline:
            time.sleep(0.001)

    def _wait(self, request, what):
        """Waits for `request`, raising a `DistributedError` on another rank's report or timeout."""
        if self.failure is not None:
            raise DistributedError(f"{self.failure} (rank {self.rank} stopped before its {what})")
        began = time.perf_counter()
        while not request.Test():
            self._check_reports(what)
            waited = time.perf_counter() - began
            if self.timeout is not None and waited > self.timeout:
                error = DistributedError(
                    f"rank {self.rank}: the {what} waited more than {self.timeout:g} s for the other ranks "
                    "(the timeout of DataParallel); a rank is stuck or much slower than the others"
                )
                self.report_failure(error)
                raise error
            if waited > _SPIN_S:
                time.sleep(0.0002)

    def _check_reports(self, what):
        status = self._mpi.Status()
        if self._faults.Iprobe(source=self._mpi.ANY_SOURCE, tag=_FAULT_TAG, status=status):
            self.failure = self._faults.recv(source=status.Get_source(), tag=_FAULT_TAG)
            raise DistributedError(f"{self.failure} (rank {self.rank} stopped in its {what})")

    def _excepthook(self, kind, value, traceback):
        """Reports an uncaught exception (Ctrl-C included) to the other ranks before printing it."""
        self.report_failure(value)
        self._previous_hook(kind, value, traceback)

    def _abort_after_fault(self):
        """At exit after a fault: aborts the job, so that no rank waits on a collective forever
        (MPI's finalisation would wait for the requests the fault left pending)."""
        if self.failure is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.2)  # lets the other ranks print their own errors first
        self._comm.Abort(1)
