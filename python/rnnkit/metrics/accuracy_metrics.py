"""Accuracy metrics and functions, and the accuracy `compile(metrics=["accuracy"])` resolves to."""

import numpy as np

from rnnkit import losses
from rnnkit.metrics.reduction_metrics import MeanMetricWrapper


def _matches(matches):
    # Keras returns matches in floatx whatever the metric's dtype.
    return np.asarray(matches).astype(np.float32)


def accuracy(y_true, y_pred):
    """Whether predictions equal targets, elementwise.

    Args:
        y_true: Targets.
        y_pred: Predictions, compared exactly.

    Returns:
        A float32 array of 1s and 0s.
    """
    y_pred = np.asarray(y_pred)
    y_true, y_pred = losses.squeeze_or_expand_to_same_rank(np.asarray(y_true, y_pred.dtype), y_pred)
    return _matches(np.equal(y_true, y_pred))


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Whether `y_pred > threshold` equals the binary targets, elementwise.

    Args:
        y_true: Targets, 0 or 1.
        y_pred: Probabilities (or scores).
        threshold: Predictions above it count as 1.

    Returns:
        A float32 array of 1s and 0s.
    """
    y_true, y_pred = losses.squeeze_or_expand_to_same_rank(np.asarray(y_true), np.asarray(y_pred))
    y_true = np.asarray(y_true)
    return _matches(np.equal(y_true, (np.asarray(y_pred) > threshold).astype(y_true.dtype)))


def categorical_accuracy(y_true, y_pred):
    """Whether the arg-max of the predictions is the arg-max of the one-hot targets.

    Args:
        y_true: One-hot (or soft) targets, `(..., num_classes)`.
        y_pred: Probabilities or logits, `(..., num_classes)`.

    Returns:
        A float32 array of the shape without the class axis.
    """
    return _matches(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1))


def sparse_categorical_accuracy(y_true, y_pred):
    """Whether the arg-max of the predictions is the integer target.

    Args:
        y_true: Class indices, `(...)` or `(..., 1)`.
        y_pred: Probabilities or logits, `(..., num_classes)`.

    Returns:
        A float32 array of the shape of `y_true` without a trailing axis of size 1.
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true, y_pred.dtype)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return _matches(y_true == np.argmax(y_pred, axis=-1))


def _in_top_k(targets, predictions, k):
    """Whether each target's score ranks among the `k` highest of its row (ties count for it)."""
    at_target = np.take_along_axis(predictions, targets[:, None], axis=-1)
    at_target = np.where(np.isnan(at_target), -np.inf, at_target)  # NaN is not a high score
    return np.sum(predictions > at_target, axis=-1) < k


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Whether the one-hot target's class is among the `k` highest predictions.

    Args:
        y_true: One-hot targets, `(..., num_classes)`.
        y_pred: Scores, `(..., num_classes)`.
        k: How many of the top predictions count.

    Returns:
        A float32 array of the shape without the class axis.
    """
    y_pred = np.asarray(y_pred)
    labels = np.argmax(y_true, axis=-1)
    matches = _in_top_k(labels.reshape(-1), y_pred.reshape(-1, y_pred.shape[-1]), k)
    return _matches(matches.reshape(labels.shape))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Whether the integer target is among the `k` highest predictions.

    Args:
        y_true: Class indices (or ids).
        y_pred: Scores, `(..., num_classes)`; or, with `from_sorted_ids`, the ids of the top
            classes, best first, `(..., N)` with `N >= k`.
        k: How many of the top predictions count.
        from_sorted_ids: Whether `y_pred` holds sorted ids rather than scores.

    Returns:
        A float32 array of the shape of `y_true`.
    """
    y_pred, labels = np.asarray(y_pred), np.asarray(y_true)
    targets, rows = labels.reshape(-1), y_pred.reshape(-1, y_pred.shape[-1])
    if from_sorted_ids:
        matches = np.any(targets[:, None] == rows[:, :k], axis=1)
    else:
        matches = _in_top_k(targets.astype(np.int64), rows, k)
    return _matches(matches.reshape(labels.shape))


class Accuracy(MeanMetricWrapper):
    """How often predictions equal targets exactly; see `accuracy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often thresholded predictions match binary targets; see `binary_accuracy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
        threshold: Predictions above it count as 1.
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max prediction is the one-hot target; see `categorical_accuracy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max prediction is the integer target; see `sparse_categorical_accuracy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is among the top `k` predictions.

    Args:
        k: How many of the top predictions count.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the top `k` predictions.

    Args:
        k: How many of the top predictions count.
        name: The metric's name.
        dtype: The dtype of the state and result.
        from_sorted_ids: Whether predictions are class ids sorted best first, not scores.
    """

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(
            sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k, from_sorted_ids=from_sorted_ids
        )
        self.k = k
        self.from_sorted_ids = from_sorted_ids


def resolve_accuracy(loss, y_true_shape, y_pred_shape, name="accuracy"):
    """Picks the accuracy that `compile(metrics=["accuracy"])` (or "acc") means, as Keras 3 does.

    Keras 3 decides from the shapes of the first batch alone: binary accuracy when predictions
    end in an axis of size 1; sparse categorical accuracy when the targets have lower rank than
    the predictions, or end in an axis of size 1 while the predictions do not; categorical
    accuracy otherwise. Unlike Keras 2 it does not look at the loss, so a multi-label model
    trained with binary cross-entropy on `(batch, n > 1)` outputs gets categorical accuracy.

    Args:
        loss: The compiled loss. It does not change the choice (see above); it is accepted so
            that callers need not know which Keras version's rule applies.
        y_true_shape: The shape of a batch of targets.
        y_pred_shape: The shape of a batch of predictions.
        name: The metric's name: the identifier the user wrote ("accuracy" or "acc").

    Returns:
        A new BinaryAccuracy, SparseCategoricalAccuracy or CategoricalAccuracy named `name`.
    """
    del loss  # Keras 3 ignores it; see above.
    true_rank, pred_rank = len(y_true_shape), len(y_pred_shape)
    true_last, pred_last = y_true_shape[-1] if true_rank else None, y_pred_shape[-1]
    if pred_last == 1:
        return BinaryAccuracy(name=name)
    if true_rank < pred_rank or (true_last == 1 and pred_last is not None and pred_last > 1):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)
