"""Metrics with Keras 3's names, arguments and configs, computed on numpy values.

A metric accumulates over batches with `update_state(y_true, y_pred, sample_weight=None)` and
reports with `result()`; `reset_state()` starts over. State and results are numpy scalars of the
metric's dtype (float32 by default, as Keras accumulates). Inputs may be Tensors, but nothing is
recorded on gradient tapes.
"""

import numpy as np

from rnnkit import losses
from rnnkit._naming import snake_case, unique_name
from rnnkit._registry import Registry

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "SquaredHinge",
    "TopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "cosine_similarity",
    "deserialize",
    "get",
    "resolve_accuracy",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


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


class Metric:
    """Base class of metrics: state updated batch by batch, summarised by `result()`.

    Args:
        dtype: The dtype of the state and result (float32 by default).
        name: The metric's name (the snake_case class name by default).
    """

    def __init__(self, dtype=None, name=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.dtype = np.dtype(dtype or "float32").name

    def update_state(self, *args, **kwargs):
        """Accumulates statistics of a batch; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self):
        """Returns the metric's value (a numpy scalar); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def reset_state(self):
        """Clears the accumulated state; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state().")

    def __call__(self, *args, **kwargs):
        """Updates the state with a batch and returns the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        """Creates a metric from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new metric.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _per_sample(values, sample_weight, dtype):
    """Averages values and weights down to one per sample, weighting the values (Keras's rules).

    Returns:
        `(values, sample_weight)` as numpy arrays (the weights None if none were given).
    """
    values = np.asarray(values, dtype)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype)
        values, sample_weight = map(np.asarray, losses.squeeze_or_expand_to_same_rank(values, sample_weight))
        if values.ndim > sample_weight.ndim:
            values = values.mean(axis=tuple(range(sample_weight.ndim, values.ndim)))
        sample_weight = np.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if sample_weight.ndim > 1:
            sample_weight = sample_weight.mean(axis=tuple(range(1, sample_weight.ndim)))
    if values.ndim > 1:
        values = values.mean(axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Mean(Metric):
    """The (weighted) mean of the values seen.

    Values of rank above 1 are averaged per sample first; the count is the number of samples,
    or the sum of the (per-sample) weights.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None):
        """Adds a batch of values.

        Args:
            values: An array-like.
            sample_weight: Optional weights, broadcastable to the values after rank alignment.
        """
        values, sample_weight = _per_sample(values, sample_weight, self.dtype)
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


class Hinge(MeanMetricWrapper):
    """The mean hinge loss; see `losses.hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="hinge", dtype=None):
        super().__init__(losses.hinge, name=name, dtype=dtype)


class SquaredHinge(MeanMetricWrapper):
    """The mean squared hinge loss; see `losses.squared_hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(losses.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(MeanMetricWrapper):
    """The mean categorical hinge loss; see `losses.categorical_hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(losses.categorical_hinge, name=name, dtype=dtype)


class KLDivergence(MeanMetricWrapper):
    """The mean Kullback-Leibler divergence; see `losses.kl_divergence`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(losses.kl_divergence, name=name, dtype=dtype)


class Poisson(MeanMetricWrapper):
    """The mean Poisson loss; see `losses.poisson`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="poisson", dtype=None):
        super().__init__(losses.poisson, name=name, dtype=dtype)


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


# Keras's stand-in for minus infinity when top_k hides predictions.
_NEG_INF = -1e10


def _thresholds(thresholds, default):
    values = [default] if thresholds is None else list(np.atleast_1d(thresholds))
    for t in values:
        if not 0 <= t <= 1 and t != _NEG_INF:
            raise ValueError(f"thresholds: expected values in [0, 1], received {thresholds!r}")
    return np.asarray(values, "float64")


def _confusion(
    y_true,
    y_pred,
    thresholds,
    dtype,
    top_k=None,
    class_id=None,
    sample_weight=None,
    multi_label=False,
    label_weights=None,
):
    """Weighted true/false positives/negatives at each threshold (`y_pred > threshold` is a
    positive prediction), Keras's rules: `(thresholds,)` arrays over all entries, or
    `(thresholds, labels)` with `multi_label`."""
    y_true, y_pred = np.asarray(y_true, dtype), np.asarray(y_pred, dtype)
    y_pred, y_true = map(np.asarray, losses.squeeze_or_expand_to_same_rank(y_pred, y_true))
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype)[..., None]
        _, weights = losses.squeeze_or_expand_to_same_rank(y_true, weights, expand_rank_1=False)
        weights = np.asarray(weights)
    if top_k is not None:
        order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :top_k]
        keep = np.zeros(y_pred.shape, bool)
        np.put_along_axis(keep, order, True, axis=-1)
        y_pred = np.where(keep, y_pred, _NEG_INF).astype(dtype)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array with shape (num_samples, num_classes), "
                f"found shape: {y_pred.shape}"
            )
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
        if weights is not None and weights.ndim == y_pred.ndim and weights.shape[-1] != 1:
            weights = weights[..., class_id, None]
    weights = np.ones(y_pred.shape, dtype) if weights is None else np.broadcast_to(weights, y_pred.shape).astype(dtype)
    if label_weights is not None and not multi_label:
        weights = weights * np.broadcast_to(np.asarray(label_weights, dtype), y_pred.shape)
    label = y_true.astype(bool)
    if multi_label:
        label, pred, weights = label[None], y_pred[None], weights[None]
        axis = 1
    else:
        label, pred, weights = label.reshape(1, -1), y_pred.reshape(1, -1), weights.reshape(1, -1)
        axis = 1
    cut = np.asarray(thresholds, dtype).reshape((-1,) + (1,) * (pred.ndim - 1))
    positive = pred > cut
    out = {}
    for key, (lab, pre) in {
        "tp": (label, positive),
        "fp": (~label, positive),
        "tn": (~label, ~positive),
        "fn": (label, ~positive),
    }.items():
        out[key] = np.sum(np.where(lab & pre, weights, 0), axis=axis).astype(dtype)
    return out


class _ConfusionMetric(Metric):
    """Precision and Recall: confusion counts at each threshold, one result per threshold.

    Args:
        thresholds: A float or list of floats in [0, 1] (0.5 by default, or all predictions kept
            by `top_k`).
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) the metric is computed for.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ()

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _thresholds(thresholds, 0.5 if top_k is None else _NEG_INF)
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's confusion counts.

        Args:
            y_true: Binary targets.
            y_pred: Predictions in [0, 1].
            sample_weight: Optional weights.
        """
        counts = _confusion(y_true, y_pred, self.thresholds, self.dtype, self.top_k, self.class_id, sample_weight)
        for key in self._counts:
            setattr(self, _COUNT_NAMES[key], getattr(self, _COUNT_NAMES[key]) + counts[key])

    def _ratio(self, other):
        tp = self.true_positives
        denominator = tp + other
        result = np.where(denominator > 0, tp / np.where(denominator > 0, denominator, 1), 0).astype(self.dtype)
        return result[0] if len(self.thresholds) == 1 else result

    def reset_state(self):
        """Sets the counts to 0."""
        for key in self._counts:
            setattr(self, _COUNT_NAMES[key], np.zeros(len(self.thresholds), self.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


_COUNT_NAMES = {"tp": "true_positives", "fp": "false_positives", "tn": "true_negatives", "fn": "false_negatives"}


class Precision(_ConfusionMetric):
    """Precision, `tp / (tp + fp)`, of predictions above `thresholds` (0.5 by default).

    Args:
        thresholds: A float or list of floats in [0, 1]; one result per threshold.
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) to compute the precision of.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tp", "fp")

    def result(self):
        """Returns the precision (an array for several thresholds)."""
        return self._ratio(self.false_positives)


class Recall(_ConfusionMetric):
    """Recall, `tp / (tp + fn)`, of predictions above `thresholds` (0.5 by default).

    Args:
        thresholds: A float or list of floats in [0, 1]; one result per threshold.
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) to compute the recall of.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tp", "fn")

    def result(self):
        """Returns the recall (an array for several thresholds)."""
        return self._ratio(self.false_negatives)


def _divide_no_nan(a, b):
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0)


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from confusion counts at `num_thresholds`
    thresholds (Keras's Riemann sums, and Davis & Goadrich's interpolation for PR).

    Args:
        num_thresholds: Number of thresholds (> 1), evenly spaced in [0, 1] with the ends nudged
            by 1e-7 outward.
        curve: "ROC", "PR" or "PRGAIN".
        summation_method: "interpolation", "minoring" or "majoring".
        name: The metric's name.
        dtype: The dtype of the state and result.
        thresholds: Optional list of thresholds in [0, 1] used instead of `num_thresholds`.
        multi_label: Whether each label (last axis of rank-2 predictions) gets its own curve,
            the AUCs then averaged.
        num_labels: The number of labels with `multi_label` (else taken from the first batch).
        label_weights: Optional per-label weights (of the average with `multi_label`, of the
            counts otherwise).
        from_logits: Whether predictions are logits (a sigmoid is applied).
    """

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        super().__init__(name=name, dtype=dtype)
        curve = str(curve).upper()
        if curve not in ("ROC", "PR", "PRGAIN"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        summation_method = str(summation_method).lower()
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                '["interpolation", "majoring", "minoring"]'
            )
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 1:
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self._thresholds = np.array([0.0 - losses.EPSILON, *inner, 1.0 + losses.EPSILON])
        self.curve = curve
        self.summation_method = summation_method
        self.multi_label = multi_label
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, self.dtype)
        self.from_logits = from_logits
        self._shape = None
        if not multi_label:
            self._shape = (self.num_thresholds,)
        elif num_labels:
            self._shape = (self.num_thresholds, int(num_labels))
        self.reset_state()

    @property
    def thresholds(self):
        """The thresholds, the two nudged ends included."""
        return list(self._thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's confusion counts.

        Args:
            y_true: Binary targets.
            y_pred: Predictions in [0, 1] (logits with `from_logits`).
            sample_weight: Optional weights.
        """
        y_pred = np.asarray(y_pred, self.dtype)
        if self.from_logits:
            y_pred = (1 / (1 + np.exp(-y_pred))).astype(self.dtype)
        if self._shape is None:
            if y_pred.ndim != 2:
                raise ValueError(
                    f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {y_pred.ndim}. "
                    f"Full shape received for `y_pred`: {y_pred.shape}"
                )
            self._shape = (self.num_thresholds, y_pred.shape[1])
            self.reset_state()
        counts = _confusion(
            y_true,
            y_pred,
            self._thresholds,
            self.dtype,
            sample_weight=sample_weight,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )
        for key, attr in _COUNT_NAMES.items():
            setattr(self, attr, getattr(self, attr) + counts[key].reshape(self._shape))

    def _average(self, by_label):
        if not self.multi_label:
            return by_label
        if self.label_weights is None:
            return np.mean(by_label)
        return _divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights))

    def _interpolate_pr_auc(self):
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[: n - 1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[: n - 1], np.maximum(p[1:], 0)), 1)
        increment = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return self._average(np.sum(increment, axis=0))

    def result(self):
        """Returns the area under the curve."""
        if self._shape is None:
            return np.zeros((), self.dtype)[()]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.curve == "PR" and self.summation_method == "interpolation":
                return np.asarray(self._interpolate_pr_auc(), self.dtype)[()]
            tp, fp = self.true_positives, self.false_positives
            tn, fn = self.true_negatives, self.false_negatives
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            elif self.curve == "PR":
                x, y = recall, _divide_no_nan(tp, tp + fp)
            else:
                scale = _divide_no_nan(tp + fn, tn + fp)
                x = np.maximum(np.where(tp == 0, 0, 1 - scale * _divide_no_nan(fn, tp)), 0)
                y = np.where(tp == 0, 1, 1 - scale * _divide_no_nan(fp, tp))
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            return np.asarray(self._average(np.sum((x[:-1] - x[1:]) * heights, axis=0)), self.dtype)[()]

    def reset_state(self):
        """Sets the counts to 0."""
        for attr in _COUNT_NAMES.values():
            setattr(self, attr, None if self._shape is None else np.zeros(self._shape, self.dtype))

    def get_config(self):
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return config


class FBetaScore(Metric):
    """The F-beta score per class, `(1 + b²) * p * r / (b² * p + r)`, of rank-2 one-hot targets
    and predictions; predictions above `threshold` are positive (with no threshold, each sample's
    largest prediction).

    Args:
        average: None (a score per class), "micro" (from counts summed over classes), "macro"
            (mean of the class scores) or "weighted" (mean weighted by each class's support).
        beta: The weight of recall relative to precision (a float > 0).
        threshold: Optional float in (0, 1].
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', 'weighted'}. "
                f"Received: average={average!r}"
            )
        if not isinstance(beta, float) or beta <= 0:
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or not 0 < threshold <= 1):
            raise ValueError(
                "Invalid `threshold` argument value. It should be a Python float with 0 < threshold <= 1. "
                f"Received: threshold={threshold!r}"
            )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self._classes = None
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's per-class counts.

        Args:
            y_true: One-hot (or multi-hot) targets, `(batch, classes)`.
            y_pred: Predictions, `(batch, classes)`.
            sample_weight: Optional per-sample weights.
        """
        y_true, y_pred = np.asarray(y_true, self.dtype), np.asarray(y_pred, self.dtype)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                "FBetaScore expects 2D inputs with shape (batch_size, output_dim). Received input shapes: "
                f"y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}."
            )
        if self._classes is None:
            self._classes = y_pred.shape[-1]
            self.reset_state()
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(self.dtype)
        weights = None if sample_weight is None else np.asarray(sample_weight, self.dtype).reshape(-1, 1)
        axis = None if self.average == "micro" else 0

        def total(values):
            return np.sum(values if weights is None else values * weights, axis=axis)

        self.true_positives = self.true_positives + total(predicted * y_true)
        self.false_positives = self.false_positives + total(predicted * (1 - y_true))
        self.false_negatives = self.false_negatives + total((1 - predicted) * y_true)
        self.intermediate_weights = self.intermediate_weights + total(y_true)

    def result(self):
        """Returns the score (per class with `average=None`)."""
        eps = losses.EPSILON
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        score = precision * recall / (self.beta**2 * precision + recall + eps) * (1 + self.beta**2)
        if self.average == "weighted":
            score = np.sum(score * self.intermediate_weights / (np.sum(self.intermediate_weights) + eps))
        elif self.average is not None:
            score = np.mean(score)
        return np.asarray(score, self.dtype)[()]

    def reset_state(self):
        """Sets the counts to 0."""
        shape = () if self.average == "micro" else (self._classes or 0,)
        for attr in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, attr, np.zeros(shape, self.dtype))

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """The F1 score (`FBetaScore` with beta 1): the harmonic mean of precision and recall.

    Args:
        average: None, "micro", "macro" or "weighted"; see `FBetaScore`.
        threshold: Optional float in (0, 1]; see `FBetaScore`.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


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


_registry = Registry(
    "metric",
    "keras.metrics",
    [
        Metric,
        Mean,
        MeanMetricWrapper,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        KLDivergence,
        Poisson,
        LogCoshError,
        CosineSimilarity,
        RootMeanSquaredError,
        Precision,
        Recall,
        AUC,
        FBetaScore,
        F1Score,
    ],
    # "acc" is not a name in keras.metrics.get; compile resolves it (see resolve_accuracy).
    aliases={
        "acc": Accuracy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
    },
)


def serialize(metric):
    """Returns a metric's config as Keras writes it.

    Args:
        metric: A Metric.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(metric)


def deserialize(config):
    """Creates a metric from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "mae", or a dict with "class_name" and "config".

    Returns:
        A new Metric.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a metric identifier as `keras.metrics.get` does.

    "accuracy" and "acc" give a plain `Accuracy` (exact equality) here, as in `keras.metrics.get`;
    `compile` turns them into the accuracy that fits the data with `resolve_accuracy`.

    Args:
        identifier: None; a name ("accuracy", "acc", "sparse_categorical_accuracy",
            "categorical_accuracy", "binary_accuracy", "mae", "mse", "top_k_categorical_accuracy",
            "sparse_top_k_categorical_accuracy", or a class name); a config dict; a Metric class
            or instance; or any callable.

    Returns:
        A Metric instance (a new one for names, dicts and classes), the callable, or None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message names it.
    """
    return _registry.get(identifier)
