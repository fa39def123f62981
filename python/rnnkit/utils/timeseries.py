"""timeseries_dataset_from_array: sliding windows over a series, batched as numpy arrays."""

import math

import numpy as np

from rnnkit.utils.dataset import Taking

__all__ = ["timeseries_dataset_from_array"]


def timeseries_dataset_from_array(
    data,
    targets,
    sequence_length,
    sequence_stride=1,
    sampling_rate=1,
    batch_size=128,
    shuffle=False,
    seed=None,
    start_index=None,
    end_index=None,
):
    """Makes batches of sliding windows over a series, as Keras's `timeseries_dataset_from_array`.

    Window `i` holds `data[p], data[p + sampling_rate], ...` (`sequence_length` rows) where
    `p = start_index + i * sequence_stride`; its target is `targets[p]`.

    Args:
        data: An array (or anything `np.asarray` takes) whose first axis is time.
        targets: The target of each window's first time step, indexed like `data`, or None
            for windows without targets.
        sequence_length: The number of time steps per window.
        sequence_stride: The distance between the first steps of consecutive windows.
        sampling_rate: The distance between consecutive time steps within a window.
        batch_size: Windows per batch (the last batch may be smaller), or None for single
            unbatched windows.
        shuffle: Whether to shuffle the windows, anew at every iteration.
        seed: The seed of the shuffling, for reproducible orders.
        start_index: The first time step used (0 or None for the start).
        end_index: The time step before which windows must end (None for the end of `data`).

    Returns:
        A `TimeseriesDataset`: iterating it yields `(windows, targets)` batches of numpy
        arrays (`windows` alone without targets); `len()` is the number of batches, and it can
        be iterated again every epoch.

    Raises:
        ValueError: If an argument is out of range.
    """
    length = len(data)
    if start_index:
        _check_range("start_index", start_index, 0, length - 1)
    if end_index:
        _check_range("end_index", end_index, (start_index or 0) + 1, length - 1)
    _check_range("sampling_rate", sampling_rate, 1, length - 1)
    _check_range("sequence_stride", sequence_stride, 1, length - 1)
    _check_range("sequence_length", sequence_length, 1, math.inf)
    if batch_size is not None:
        _check_range("batch_size", batch_size, 1, math.inf)
    return TimeseriesDataset(
        data,
        targets,
        sequence_length,
        sequence_stride,
        sampling_rate,
        batch_size,
        shuffle,
        seed,
        start_index or 0,
        end_index or length,
    )


def _check_range(name, value, low, high):
    if not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(
            f"timeseries_dataset_from_array: {name}: expected an int in [{low}, {high}], received {value!r}"
        )


class TimeseriesDataset(Taking):
    """The windows of `timeseries_dataset_from_array`, cut batch by batch as they are read."""

    def __init__(
        self,
        data,
        targets,
        sequence_length,
        sequence_stride,
        sampling_rate,
        batch_size,
        shuffle,
        seed,
        start_index,
        end_index,
    ):
        self._data = np.asarray(data)[start_index:end_index]
        self._targets = None if targets is None else np.asarray(targets)[start_index:end_index]
        count = end_index - start_index - (sequence_length - 1) * sampling_rate
        if targets is not None:
            count = min(count, len(targets))
        self._starts = np.arange(0, max(count, 0), sequence_stride)
        self._offsets = np.arange(sequence_length) * sampling_rate
        self._batch_size = batch_size
        # Keras shuffles the window starts once with RandomState(seed); the first order is that
        # one, and every later iteration continues the same generator.
        self._rng = np.random.RandomState(np.random.randint(1e6) if seed is None else seed) if shuffle else None

    def __len__(self):
        if self._batch_size is None:
            return len(self._starts)
        return math.ceil(len(self._starts) / self._batch_size)

    def __iter__(self):
        starts = self._starts
        if self._rng is not None:
            starts = starts.copy()
            self._rng.shuffle(starts)
        if self._batch_size is None:
            for start in starts:
                yield self._windows(start)
            return
        for first in range(0, len(starts), self._batch_size):
            yield self._windows(starts[first : first + self._batch_size])

    def _windows(self, starts):
        windows = self._data[np.add.outer(starts, self._offsets)]
        return windows if self._targets is None else (windows, self._targets[starts])
