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
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
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
    ],
    # "acc" is not a name in keras.metrics.get; compile resolves it (see resolve_accuracy).
    aliases={
        "acc": Accuracy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
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
