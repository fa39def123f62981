"""PyDataset (alias Sequence), split_dataset, and packing `(x, y, sample_weight)` batches."""

import collections
import concurrent.futures
import itertools
import math
import random

import numpy as np

from rnnkit import tree

__all__ = ["PyDataset", "Sequence", "pack_x_y_sample_weight", "split_dataset", "unpack_x_y_sample_weight"]


class PyDataset:
    """Base class for datasets that build each batch in Python, as Keras's `PyDataset`.

    Subclasses implement `__getitem__(index)`, returning the batch `index` as `x`, `(x, y)` or
    `(x, y, sample_weight)`, and `__len__` (the number of batches; or a `num_batches`
    property returning None for an endless dataset). `on_epoch_begin` and `on_epoch_end` are
    called by `fit` around each epoch, e.g. to reshuffle.

    Args:
        workers: How many threads build batches ahead of the one being used; 1 builds them in
            order on the calling thread.
        use_multiprocessing: Must be False: rnnkit's workers are threads (numpy releases the
            GIL in its heavy work).
        max_queue_size: How many batches the workers may build ahead.

    Raises:
        ValueError: If `use_multiprocessing` is True, or `workers` or `max_queue_size` is below 1.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if use_multiprocessing:
            raise ValueError(
                "PyDataset: use_multiprocessing: expected False (rnnkit runs workers as threads; "
                "pass workers=N alone), received True"
            )
        for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PyDataset: {name}: expected an int >= 1, received {value!r}")
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index):
        """Returns the batch at `index`."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    @property
    def num_batches(self):
        """The number of batches, or None for an endless dataset; `len(self)` by default."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ or the num_batches property")

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""

    def __iter__(self):
        """Yields the batches in order, built by `workers` threads when there are several."""
        count = self.num_batches
        indices = itertools.count() if count is None else range(count)
        workers = getattr(self, "workers", 1)  # a subclass may not call super().__init__()
        if workers <= 1:
            for index in indices:
                yield self[index]
            return
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            pending = collections.deque()
            try:
                for index in indices:
                    pending.append(pool.submit(self.__getitem__, index))
                    if len(pending) >= max(getattr(self, "max_queue_size", 10), workers):
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # the loop that reads the batches may stop early
                for future in pending:
                    future.cancel()


Sequence = PyDataset


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """Packs a batch into the tuple Keras's training loop reads.

    Args:
        x: The inputs.
        y: The targets, or None.
        sample_weight: The sample weights, or None.

    Returns:
        `x` alone (or `(x,)` when `x` is a tuple or list, so it is not taken for `(x, y)`),
        `(x, y)`, or `(x, y, sample_weight)`.
    """
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """Unpacks a batch into `(x, y, sample_weight)`, with None for what it lacks.

    Args:
        data: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` (tuple or list).

    Returns:
        A tuple `(x, y, sample_weight)`.

    Raises:
        ValueError: If `data` is a tuple or list of more than three elements.
    """
    if not isinstance(data, (tuple, list)):
        return data, None, None
    if not 1 <= len(data) <= 3:
        raise ValueError(
            f"unpack_x_y_sample_weight: data: expected x, (x,), (x, y) or (x, y, sample_weight), "
            f"received a {type(data).__name__} of {len(data)} elements"
        )
    return tuple(data) + (None,) * (3 - len(data))


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Splits samples into a left and a right dataset (e.g. train and test), as Keras's.

    Args:
        dataset: An array, or a tuple, list or dict of arrays with the same first axis, or any
            iterable of samples with `len()` (samples being arrays or tuples of them).
        left_size: The left part's size: a fraction in (0, 1) or a number of samples; by
            default everything `right_size` leaves.
        right_size: The right part's size, likewise; by default everything `left_size` leaves.
        shuffle: Whether to shuffle the samples before splitting.
        seed: The seed of the shuffling (Python's `random.Random(seed).shuffle`, as Keras).

    Returns:
        A tuple of two `ArrayDataset`s, which iterate over their samples like Keras's
        datasets and have `len()` and `batch(batch_size)`.

    Raises:
        ValueError: If the sizes are missing, out of range, or leave one side empty.
        TypeError: If a size is neither an int nor a float.
    """
    samples = _samples(dataset)
    total = len(samples)
    if shuffle:
        random.Random(random.randint(0, 10**6) if seed is None else seed).shuffle(samples)
    left, right = _split_sizes(left_size, right_size, total)
    return ArrayDataset(_stack(samples[:left])), ArrayDataset(_stack(samples[total - right :]))


def _samples(dataset):
    """The list of samples of `dataset`, each in the structure of one element."""
    if isinstance(dataset, (tuple, list, dict)) and all(hasattr(a, "shape") for a in tree.flatten(dataset)):
        arrays = [np.asarray(a) for a in tree.flatten(dataset)]
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(
                f"split_dataset: dataset: expected arrays of one length, received lengths {sorted(lengths)}"
            )
        return [tree.pack_sequence_as(dataset, [a[i] for a in arrays]) for i in range(lengths.pop())]
    if not hasattr(dataset, "__len__"):
        raise TypeError(
            f"split_dataset: dataset: expected arrays or samples with len(), received {type(dataset).__name__}"
        )
    return list(dataset)


def _stack(samples):
    """Stacks samples back into arrays in the structure of one sample."""
    columns = [np.stack(column) for column in zip(*(tree.flatten(s) for s in samples))]
    return tree.pack_sequence_as(samples[0], columns)


def _split_sizes(left_size, right_size, total):
    """Turns fractions and counts into the two sample counts, checking them as Keras does."""
    if left_size is None and right_size is None:
        raise ValueError("split_dataset: left_size and right_size: expected at least one, received None for both")
    sizes = {}
    for name, size in (("left_size", left_size), ("right_size", right_size)):
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise TypeError(f"split_dataset: {name}: expected an int, a float or None, received {type(size).__name__}")
        if isinstance(size, float) and not 0 < size < 1:
            raise ValueError(f"split_dataset: {name}: expected a fraction in (0, 1), received {size}")
        if isinstance(size, int) and not 0 < size < total:
            raise ValueError(f"split_dataset: {name}: expected a count in [1, {total - 1}], received {size}")
        sizes[name] = round(size * total) if isinstance(size, float) else size
    left = sizes.get("left_size", total - sizes.get("right_size", 0))
    right = sizes.get("right_size", total - left)
    if left + right > total or not left or not right:
        raise ValueError(
            f"split_dataset: left_size and right_size: expected two non-empty parts of at most {total} samples, "
            f"received {left} and {right} samples"
        )
    return left, right


class Taking:
    """`take(count)` on the dataset objects of `rk.utils`, as on a `tf.data.Dataset`."""

    def take(self, count):
        """The first `count` elements (all of them for -1), as a reusable iterable with `len()`.

        Args:
            count: How many elements to keep; -1 keeps them all.

        Returns:
            A `Taken` view of this dataset.
        """
        return Taken(self, count)


class Taken(Taking):
    """The first `count` elements of a dataset (all for -1), read from it on each iteration.

    Args:
        source: A dataset with `len()`.
        count: How many elements to keep; -1 keeps them all.
    """

    def __init__(self, source, count):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < -1:
            raise ValueError(f"take: count: expected an int >= -1, received {count!r}")
        self._source, self._count = source, int(count)

    def __len__(self):
        size = len(self._source)
        return size if self._count == -1 else min(self._count, size)

    def __iter__(self):
        return itertools.islice(iter(self._source), len(self))


class ArrayDataset(Taking):
    """Samples stored as arrays (or a tuple, list or dict of arrays) along their first axis.

    Iterating yields one sample at a time, in the structure of `arrays`, as iterating a
    `tf.data.Dataset` of slices does; `batch` gives batches instead.

    Args:
        arrays: An array, or a tuple, list or dict of arrays of one length.
    """

    def __init__(self, arrays):
        self.arrays = arrays
        self._flat = tree.flatten(arrays)

    def __len__(self):
        return len(self._flat[0])

    def __iter__(self):
        for i in range(len(self)):
            yield tree.pack_sequence_as(self.arrays, [a[i] for a in self._flat])

    def batch(self, batch_size, drop_remainder=False):
        """Returns the batches of `batch_size` samples (the last one smaller unless dropped).

        Args:
            batch_size: Samples per batch.
            drop_remainder: Whether to drop a last, smaller batch.

        Returns:
            A `Batches`: an iterable of batches in the structure of `arrays`, with `len()`.
        """
        return Batches(self.arrays, batch_size, drop_remainder)


class Batches(Taking):
    """Consecutive batches of arrays (or a structure of arrays) along their first axis.

    Args:
        arrays: An array, or a tuple, list or dict of arrays of one length.
        batch_size: Samples per batch.
        drop_remainder: Whether to drop a last, smaller batch.
    """

    def __init__(self, arrays, batch_size, drop_remainder=False):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch: batch_size: expected an int >= 1, received {batch_size!r}")
        self.arrays = arrays
        self._flat = tree.flatten(arrays)
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder

    def __len__(self):
        count = len(self._flat[0]) / self._batch_size
        return math.floor(count) if self._drop_remainder else math.ceil(count)

    def __iter__(self):
        for first in range(0, len(self) * self._batch_size, self._batch_size):
            yield tree.pack_sequence_as(self.arrays, [a[first : first + self._batch_size] for a in self._flat])
