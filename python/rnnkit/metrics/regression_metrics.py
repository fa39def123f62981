"""Regression metrics: mean (root) squared, absolute, percentage and log errors, log-cosh, cosine."""

import numpy as np

from rnnkit import losses
from rnnkit.metrics.reduction_metrics import Mean, MeanMetricWrapper


class MeanSquaredError(MeanMetricWrapper):
    """The mean of the per-sample mean squared errors.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean of the per-sample mean absolute errors.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(losses.mean_absolute_error, name=name, dtype=dtype)


def cosine_similarity(y_true, y_pred, axis=-1):
    """The cosine similarity of targets and predictions along `axis` (1 for the same direction).

    Args:
        y_true: Targets.
        y_pred: Predictions.
        axis: The axis the similarity is taken along.

    Returns:
        One similarity per sample.
    """
    return -np.asarray(losses.cosine_similarity(y_true, y_pred, axis=axis))


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The mean of the per-sample mean absolute percentage errors.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(losses.mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """The mean of the per-sample mean squared logarithmic errors.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(losses.mean_squared_logarithmic_error, name=name, dtype=dtype)


class LogCoshError(MeanMetricWrapper):
    """The mean logarithm of the hyperbolic cosine of the error; see `losses.log_cosh`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(losses.log_cosh, name=name, dtype=dtype)


class CosineSimilarity(MeanMetricWrapper):
    """The mean cosine similarity of targets and predictions; see `cosine_similarity`.

    Keras 3.15 leaves `axis` out of the config (so a round trip resets it to -1); here it is in.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
        axis: The axis the similarity is taken along.
    """

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)


class RootMeanSquaredError(Mean):
    """The square root of the mean squared error over all entries seen.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's squared errors.

        Args:
            y_true: Targets.
            y_pred: Predictions.
            sample_weight: Optional weights.
        """
        y_true, y_pred = (np.asarray(a, self.dtype) for a in (y_true, y_pred))
        y_true, y_pred = map(np.asarray, losses.squeeze_or_expand_to_same_rank(y_true, y_pred))
        super().update_state(np.square(y_pred - y_true), sample_weight)

    def result(self):
        """Returns sqrt(total / count)."""
        return np.sqrt(super().result())
