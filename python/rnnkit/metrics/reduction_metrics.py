"""`Mean` and `Sum` of (weighted) values, and `MeanMetricWrapper`, the mean of a function's per-sample values."""

import numpy as np

from rnnkit import losses
from rnnkit.metrics.metric import Metric


def _per_sample(values, sample_weight, dtype, reduce=np.mean):
    """Reduces values (`reduce`: mean or sum) and averages weights down to one per sample,
    weighting the values (Keras's rules).

    Returns:
        `(values, sample_weight)` as numpy arrays (the weights None if none were given).
    """
    mask = getattr(values, "_keras_mask", None)
    values = np.asarray(values, dtype)
    if sample_weight is not None:
        # As Keras, a mask on the values (a loss's ignored entries) zeroes given weights only.
        sample_weight = np.asarray(losses.apply_mask(sample_weight, mask, dtype, "sum"), dtype)
        values, sample_weight = map(np.asarray, losses.squeeze_or_expand_to_same_rank(values, sample_weight))
        if values.ndim > sample_weight.ndim:
            values = reduce(values, axis=tuple(range(sample_weight.ndim, values.ndim)))
        sample_weight = np.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if sample_weight.ndim > 1:
            sample_weight = sample_weight.mean(axis=tuple(range(1, sample_weight.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Mean(Metric):
    """The (weighted) mean of the values seen.

    Values of rank above 1 are averaged per sample first; the count is the number of samples,
    or the sum of the (per-sample) weights.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    # How a sample's values of rank above 1 become one value.
    _reduce = staticmethod(np.mean)

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        """Adds a batch of values.

        Args:
            values: An array-like.
            sample_weight: Optional weights, broadcastable to the values after rank alignment.
        """
        values, sample_weight = _per_sample(values, sample_weight, self.dtype, self._reduce)
        if sample_weight is not None:
            count = np.sum(sample_weight)
        else:
            count = values.shape[0] if values.ndim else 1
        self.total = self.total + np.sum(values)
        self.count = self.count + np.asarray(count, self.dtype)

    def result(self):
        """Returns total / count (0 before any weight was seen)."""
        return self.total / self.count if self.count else self.count

    def reset_state(self):
        """Sets the total and the count to 0."""
        self.total = np.zeros((), self.dtype)[()]
        self.count = np.zeros((), self.dtype)[()]


class Sum(Mean):
    """The (weighted) sum of the values seen.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _reduce = staticmethod(np.sum)

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        """Returns the sum."""
        return self.total


class MeanMetricWrapper(Mean):
    """The mean of a function `fn(y_true, y_pred, **kwargs)` that scores each sample.

    A `_keras_mask` on `y_pred` zeroes the weights of masked entries. Subclasses' configs hold
    the name, dtype and `kwargs`.

    Args:
        fn: The function; it gets numpy arrays.
        name: The metric's name.
        dtype: The dtype of the state and result.
        **kwargs: Passed on to `fn`.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Scores a batch and adds the scores.

        Args:
            y_true: Targets.
            y_pred: Predictions.
            sample_weight: Optional weights.
        """
        mask = getattr(y_pred, "_keras_mask", None)
        values = self._fn(np.asarray(y_true), np.asarray(y_pred), **self._fn_kwargs)
        super().update_state(values, losses.apply_mask(sample_weight, mask, self.dtype, "sum"))

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}
