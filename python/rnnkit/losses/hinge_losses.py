"""Hinge losses for targets in {-1, 1} (or {0, 1}) and one-hot targets."""

import numpy as np

from rnnkit import ops
from rnnkit.losses.loss import LossFunctionWrapper, _prepare


def _hinge_labels(y_true):
    """Targets that are all 0 or 1 become -1 or 1 (Keras's rule, over the whole batch)."""
    values = np.asarray(y_true)
    return 2.0 * y_true - 1.0 if np.all((values == 0) | (values == 1)) else y_true


def hinge(y_true, y_pred):
    """Computes `mean(max(1 - y_true * y_pred, 0), axis=-1)`; targets of 0/1 count as -1/1.

    Args:
        y_true: Targets, -1 or 1 (or 0 or 1).
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    return ops.mean(ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, np.zeros((), y_pred.dtype)), axis=-1)


def squared_hinge(y_true, y_pred):
    """Computes `mean(square(max(1 - y_true * y_pred, 0)), axis=-1)`; targets of 0/1 count as -1/1.

    Args:
        y_true: Targets, -1 or 1 (or 0 or 1).
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    margin = ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, np.zeros((), y_pred.dtype))
    return ops.mean(ops.square(margin), axis=-1)


def categorical_hinge(y_true, y_pred):
    """Computes `max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)` over the last axis.

    Args:
        y_true: One-hot targets.
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    positive = ops.sum(y_true * y_pred, axis=-1)
    negative = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(negative - positive + 1.0, np.zeros((), y_pred.dtype))


class Hinge(LossFunctionWrapper):
    """Hinge loss; see `hinge`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, name=name, reduction=reduction, dtype=dtype)


class SquaredHinge(LossFunctionWrapper):
    """Squared hinge loss; see `squared_hinge`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name=name, reduction=reduction, dtype=dtype)


class CategoricalHinge(LossFunctionWrapper):
    """Categorical hinge loss; see `categorical_hinge`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name=name, reduction=reduction, dtype=dtype)
