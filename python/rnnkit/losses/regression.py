"""Regression losses: squared, absolute, percentage and logarithmic errors, Huber, cosine, log-cosh."""

import numpy as np

from rnnkit import ops
from rnnkit.losses.loss import EPSILON, LossFunctionWrapper, _prepare


def mean_squared_error(y_true, y_pred):
    """Computes `mean(square(y_true - y_pred), axis=-1)`.

    Args:
        y_true: Targets, `(batch, d0, ..., dN)`.
        y_pred: Predictions, `(batch, d0, ..., dN)`.

    Returns:
        A Tensor of shape `(batch, d0, ..., dN-1)`.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Computes `mean(abs(y_true - y_pred), axis=-1)`.

    Args:
        y_true: Targets, `(batch, d0, ..., dN)`.
        y_pred: Predictions, `(batch, d0, ..., dN)`.

    Returns:
        A Tensor of shape `(batch, d0, ..., dN-1)`.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


mse = mean_squared_error


mae = mean_absolute_error


def huber(y_true, y_pred, delta=1.0):
    """Computes the Huber loss, averaged over the last axis.

    Elementwise, `0.5 * x**2` where `|x| <= delta` and `delta * |x| - 0.5 * delta**2` elsewhere,
    for `x = y_pred - y_true`.

    Args:
        y_true: Targets.
        y_pred: Predictions.
        delta: Where the loss turns from quadratic to linear.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    error = y_pred - y_true
    abs_error = ops.abs(error)
    quadratic = 0.5 * ops.square(error)
    linear = delta * abs_error - 0.5 * delta**2
    return ops.mean(ops.where(abs_error <= delta, quadratic, linear), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """Computes `100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)`.

    Args:
        y_true: Targets.
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    scale = ops.maximum(ops.abs(y_true), np.asarray(EPSILON, y_pred.dtype))
    return 100.0 * ops.mean(ops.abs((y_true - y_pred) / scale), axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """Computes `mean(square(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)), axis=-1)`.

    Args:
        y_true: Targets.
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    eps = np.asarray(EPSILON, y_pred.dtype)
    first = ops.log(ops.maximum(y_pred, eps) + 1.0)
    second = ops.log(ops.maximum(y_true, eps) + 1.0)
    return ops.mean(ops.square(first - second), axis=-1)


def _l2_normalize(x, axis):
    # Keras's normalize: x * min(rsqrt(sum(x**2)), 1 / 1e-7), written with a finite gradient at 0.
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(square_sum, np.asarray(EPSILON**2, square_sum.dtype)))


def cosine_similarity(y_true, y_pred, axis=-1):
    """Computes the negated cosine similarity `-sum(l2_normalize(y_true) * l2_normalize(y_pred))`
    along `axis`: -1 for vectors pointing the same way, 0 for orthogonal ones.

    Args:
        y_true: Targets.
        y_pred: Predictions.
        axis: The axis the similarity is taken along.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return -ops.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis)


def log_cosh(y_true, y_pred):
    """Computes `mean(log(cosh(y_pred - y_true)), axis=-1)`, as `x + softplus(-2x) - log(2)`
    (no overflow for large errors).

    Args:
        y_true: Targets.
        y_pred: Predictions.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    error = y_pred - y_true
    return ops.mean(error + ops.softplus(-2.0 * error) - np.asarray(np.log(2.0), y_pred.dtype), axis=-1)


mape = MAPE = mean_absolute_percentage_error


msle = MSLE = mean_squared_logarithmic_error


class MeanSquaredError(LossFunctionWrapper):
    """Mean of the squared errors; see `mean_squared_error`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean of the absolute errors; see `mean_absolute_error`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)


class Huber(LossFunctionWrapper):
    """Huber loss; see `huber`.

    Keras 3.15 leaves `delta` out of the config (so a round trip resets it to 1.0); here it is in.

    Args:
        delta: Where the loss turns from quadratic to linear.
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """Mean absolute percentage error; see `mean_absolute_percentage_error`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, reduction=reduction, dtype=dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """Mean squared logarithmic error; see `mean_squared_logarithmic_error`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, reduction=reduction, dtype=dtype)


class CosineSimilarity(LossFunctionWrapper):
    """Negated cosine similarity; see `cosine_similarity`.

    Keras 3.15 leaves `axis` out of the config (so a round trip resets it to -1); here it is in.

    Args:
        axis: The axis the similarity is taken along.
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)


class LogCosh(LossFunctionWrapper):
    """Logarithm of the hyperbolic cosine of the error; see `log_cosh`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)
