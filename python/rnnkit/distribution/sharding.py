"""Each rank's share of every global batch: `shard_bounds` and `ShardedBatches`."""

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

    Args:
        source: The global batch source.
        rank: This process's index.
        size: The number of processes.
        on_batch: Called before each batch is given with this rank's rows of it, their number and
            the global batch's.
    """

    def __init__(self, source, rank, size, on_batch):
        self.source, self.rank, self.size, self.on_batch = source, rank, size, on_batch
        self.num_batches = source.num_batches

    def __iter__(self):
        """One pass over the source, each batch cut to this rank's rows."""
        for batch in self.source:
            rows, local_samples, global_samples = shard_batch(batch, self.rank, self.size)
            self.on_batch(rows, local_samples, global_samples)
            yield rows

    def on_epoch_end(self):
        self.source.on_epoch_end()


def _rows(arrays, rows):
    return None if arrays is None else tree.map_structure(lambda a: a[rows], arrays)
