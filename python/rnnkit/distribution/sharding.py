"""Each rank's share of every global batch: `shard_bounds`, `ShardedBatches` (every rank reads the
global batches and keeps its rows) and `RankBatches` (each rank reads its own rows)."""

import itertools

import numpy as np

from rnnkit import tree


def shard_bounds(samples, rank, size):
    """The rows `[start, stop)` of a global batch of `samples` rows that rank `rank` of `size` takes.

    The shards are contiguous and in rank order; the first `samples % size` ranks take one row
    more, so a short last batch leaves the last ranks with one row fewer (or none).
    """
    base, extra = divmod(samples, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard_batch(batch, rank, size):
    """Rank `rank`'s rows of a global batch `(x, y, sample_weight)`.

    Returns:
        The rows as a batch of the same structure, their number, and the global batch's.
    """
    samples = len(tree.flatten(batch[0])[0])
    start, stop = shard_bounds(samples, rank, size)
    rows = slice(start, stop)
    return tuple(_rows(a, rows) for a in batch), stop - start, samples


class ShardedBatches:
    """A batch source (`ArrayBatches` or `IterableBatches`) whose every batch is cut to one rank's rows.

    Every rank reads the same global batches (the same arrays in the same shuffled order, or the
    same iterable) and keeps its rows, so the shards never overlap and together cover each batch.
    For an iterable, whose batches no rank can know in advance, a small allreduce before each
    batch checks that every rank has one of the same size.

    Args:
        source: The global batch source.
        communicator: The ranks' `Communicator`.
        on_batch: Called before each batch is given with this rank's rows of it, their number and
            the global batch's.
        check: Whether to check each batch (iterables) or not (arrays, cut alike on every rank).
    """

    def __init__(self, source, communicator, on_batch, check):
        self.source, self.communicator, self.on_batch, self.check = source, communicator, on_batch, check
        self.num_batches = source.num_batches

    def __iter__(self):
        """One pass over the source, each batch cut to this rank's rows."""
        rank, size = self.communicator.rank, self.communicator.size
        checked = _checked(self.source, self.communicator, "the same batches")
        for batch in (batch for batch, _ in checked) if self.check else self.source:
            rows, local_samples, global_samples = shard_batch(batch, rank, size)
            self.on_batch(rows, local_samples, global_samples)
            yield rows

    def on_epoch_end(self):
        self.source.on_epoch_end()


class RankBatches:
    """A batch source whose batches are already this rank's rows of each global batch (a dataset
    each process reads its own part of: `DataParallel(auto_shard_dataset=False)`).

    Before each batch the ranks sum their row counts (the global batch's) in a small allreduce
    that also checks that every rank has a batch: the ranks' sources must give as many batches.

    Args:
        source: This rank's batch source.
        communicator: The ranks' `Communicator`.
        on_batch: Called before each batch is given with the batch, its number of rows and the
            global batch's.
    """

    def __init__(self, source, communicator, on_batch):
        self.source, self.communicator, self.on_batch = source, communicator, on_batch
        self.num_batches = source.num_batches

    def __iter__(self):
        """One pass over this rank's batches, ending on every rank together."""
        for batch, global_rows in _checked(self.source, self.communicator, "as many batches"):
            self.on_batch(batch, len(tree.flatten(batch[0])[0]), global_rows)
            yield batch

    def on_epoch_end(self):
        self.source.on_epoch_end()


def _checked(source, communicator, expected):
    """The batches of `source`, each with the global batch's rows, after a small allreduce before
    each (and after the last) that sums `[has a batch, rows]` over the ranks.

    Raises:
        ValueError: Unless every rank has a batch or none has, and, when `expected` is "the same
            batches", unless all have as many rows.
    """
    batches = iter(source)
    for step in itertools.count(1):
        batch = next(batches, None)
        rows = 0 if batch is None else len(tree.flatten(batch[0])[0])
        having, samples = communicator.allreduce_sum(np.array([batch is not None, rows], np.float64))
        same_rows = expected != "the same batches" or samples == rows * communicator.size
        if having not in (0, communicator.size) or not same_rows:
            mine = "no batch" if batch is None else f"a batch of {rows} rows"
            raise ValueError(
                f"x: expected {expected} from every process's iterable, received at batch {step} {mine} on rank "
                f"{communicator.rank}, a batch on {int(having)} of the {communicator.size} processes, "
                f"{int(samples)} rows in all."
            )
        if batch is None:
            return
        yield batch, int(samples)


def _rows(arrays, rows):
    return None if arrays is None else tree.map_structure(lambda a: a[rows], arrays)
