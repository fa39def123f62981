"""Losses with Keras 3's names, arguments, defaults and configs; gradient tapes differentiate them.

A `Loss` instance maps `(y_true, y_pred, sample_weight)` to a scalar Tensor (or per-sample losses
with `reduction=None`); the function forms return one loss per sample. The cross-entropies are
each ONE recorded op whose forward and backward are fused numpy kernels, so a training step does
not pay for a chain of small ops on the tape.
"""

import warnings

import numpy as np

from rnnkit import ops
from rnnkit._naming import snake_case, unique_name
from rnnkit._registry import Registry
from rnnkit.ops.core import op
from rnnkit.tensor import convert_to_tensor, wrap

__all__ = [
    "KLD",
    "MAPE",
    "MSLE",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "deserialize",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "log_cosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "serialize",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]

# Keras's fuzz factor (keras.config.epsilon()): probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction):
    """Checks a reduction name.

    Args:
        reduction: "sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none" or None.

    Returns:
        `reduction`.

    Raises:
        ValueError: If it is none of these.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {_REDUCTIONS}. Received: reduction={reduction!r}"
        )
    return reduction


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Aligns the ranks of two tensors whose ranks differ by one and whose longer one ends in 1.

    The longer one loses its last axis, except that a rank-1 partner gains one instead when
    `expand_rank_1` is set: `(batch,)` against `(batch, 1)` becomes `(batch, 1)` twice.

    Args:
        x1: A numpy array or Tensor.
        x2: A numpy array or Tensor.
        expand_rank_1: Whether a rank-1 operand is expanded rather than the other squeezed.

    Returns:
        The pair `(x1, x2)`, Tensors where one was changed.
    """
    rank1, rank2 = len(x1.shape), len(x2.shape)
    if rank1 == rank2 + 1 and x1.shape[-1] == 1:
        if rank2 == 1 and expand_rank_1:
            return x1, ops.expand_dims(x2, -1)
        return ops.squeeze(x1, -1), x2
    if rank2 == rank1 + 1 and x2.shape[-1] == 1:
        if rank1 == 1 and expand_rank_1:
            return ops.expand_dims(x1, -1), x2
        return x1, ops.squeeze(x2, -1)
    return x1, x2


def apply_mask(sample_weight, mask, dtype, reduction):
    """Merges a mask (e.g. an output's `_keras_mask`) into the sample weights, as Keras does.

    For the mean reductions the valid entries are weighted `total / valid`, so that averaging
    over all entries averages over the valid ones only.

    Args:
        sample_weight: None or an array-like of weights.
        mask: None or a boolean array-like.
        dtype: The dtype of the weights returned.
        reduction: The reduction the weights are for.

    Returns:
        A numpy array of weights, or `sample_weight` unchanged when there is no mask.
    """
    if mask is None:
        return sample_weight
    mask = np.asarray(mask).astype(bool)
    if reduction in ("mean", "sum_over_batch_size"):
        valid = np.sum(mask, dtype=dtype)
        mask_weight = np.asarray(mask.size, dtype) / valid if valid else np.zeros((), dtype)
        float_mask = np.where(mask, mask_weight, 0).astype(dtype)
    else:
        float_mask = mask.astype(dtype)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, np.asarray(sample_weight, dtype))
    return np.asarray(sample_weight) * np.asarray(float_mask)


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Reduces (weighted) per-sample losses to a scalar.

    Args:
        values: A Tensor of losses, already multiplied by the weights.
        sample_weight: The weights, for "mean_with_sample_weight".
        reduction: See `Loss`. Scalars and empty vectors are returned unreduced.

    Returns:
        A Tensor.
    """
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    loss = ops.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = np.sum(sample_weight)
    else:
        divisor = int(np.prod(values.shape))
    return loss / divisor if divisor else loss * 0  # divide_no_nan


def reduce_weighted_values(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Weights per-sample losses by `sample_weight` and `mask`, then reduces them.

    Args:
        values: A Tensor of per-sample losses.
        sample_weight: None or an array-like broadcastable to `values` (after rank alignment).
        mask: None or a boolean array-like of the shape of `values`.
        reduction: See `Loss`.

    Returns:
        A Tensor: a scalar, or the weighted losses for reduction None/"none".
    """
    reduction = standardize_reduction(reduction)
    values = convert_to_tensor(values)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, values.dtype)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)


def _float_tensor(x, dtype=None):
    """`x` as a Tensor of `dtype`, or of its own floating dtype (float32 for integers)."""
    x = convert_to_tensor(x, dtype)
    return x if x.dtype.kind == "f" else ops.cast(x, "float32")


def _prepare(y_true, y_pred, align=True):
    """Converts the targets to the predictions' dtype and aligns their ranks."""
    y_pred = _float_tensor(y_pred)
    y_true = convert_to_tensor(y_true, y_pred.dtype)
    return squeeze_or_expand_to_same_rank(y_true, y_pred) if align else (y_true, y_pred)


def _check_same_shape(target, output):
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={target.shape}, output.shape={output.shape}"
        )


@op(inputs=2)
def _crossentropy(target, output, from_logits, axis):
    """-sum(target * log p) along `axis`, p = softmax(output) or output normalised and clipped."""
    _check_same_shape(target, output)
    if from_logits:
        shifted = output - np.max(output, axis=axis, keepdims=True)
        log_prob = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    else:
        total = np.sum(output, axis=axis, keepdims=True)
        prob = output / total
        clipped = np.clip(prob, EPSILON, 1 - EPSILON)
        log_prob = np.log(clipped)

    def backward(grad):
        grad = np.expand_dims(grad, axis)
        d_log_prob = -target * grad
        if from_logits:
            d_output = d_log_prob - np.exp(log_prob) * np.sum(d_log_prob, axis=axis, keepdims=True)
        else:
            d_prob = np.where((prob >= EPSILON) & (prob <= 1 - EPSILON), d_log_prob / clipped, 0)
            d_output = (d_prob - np.sum(d_prob * prob, axis=axis, keepdims=True)) / total
        return -log_prob * grad, d_output

    return -np.sum(target * log_prob, axis=axis), backward


@op(inputs=2)
def _binary_crossentropy(target, output, from_logits, axis):
    """The mean along `axis` of the elementwise binary cross-entropy."""
    _check_same_shape(target, output)
    if from_logits:
        # -t log(sigmoid(z)) - (1 - t) log(1 - sigmoid(z)) = softplus(z) - t z, without overflow.
        losses = np.logaddexp(0, output) - target * output
    else:
        clipped = np.clip(output, EPSILON, 1 - EPSILON)
        log_p, log_not_p = np.log(clipped), np.log(1 - clipped)
        losses = -(target * log_p + (1 - target) * log_not_p)

    def backward(grad):
        grad = np.expand_dims(grad, axis) / output.shape[axis]
        if from_logits:
            sigmoid = np.exp(-np.logaddexp(0, -output))
            return -output * grad, (sigmoid - target) * grad
        inside = (output >= EPSILON) & (output <= 1 - EPSILON)
        d_output = np.where(inside, (1 - target) / (1 - clipped) - target / clipped, 0) * grad
        return (log_not_p - log_p) * grad, d_output

    return np.mean(losses, axis=axis), backward


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


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Computes the cross-entropy between one-hot (or soft) targets and predictions.

    Args:
        y_true: Targets of the shape of `y_pred`.
        y_pred: Probabilities, or logits when `from_logits`.
        from_logits: Whether `y_pred` holds logits (a log-softmax is taken) rather than
            probabilities (normalised along `axis`, then clipped to `[1e-7, 1 - 1e-7]`).
        label_smoothing: In [0, 1]; targets become `y_true * (1 - s) + s / num_classes`.
        axis: The class axis.

    Returns:
        A Tensor of the shape of `y_pred` without `axis`.

    Raises:
        ValueError: If `axis` is a bool or the shapes differ.
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    if y_pred.shape[-1] == 1:
        warnings.warn(
            "In loss categorical_crossentropy, expected y_pred.shape to be (batch_size, num_classes) "
            f"with num_classes > 1. Received: y_pred.shape={y_pred.shape}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=2,
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    return _crossentropy(y_true, y_pred, from_logits, axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Computes the cross-entropy between integer class targets and predictions.

    Args:
        y_true: Class indices, of the shape of `y_pred` without `axis` (a trailing axis of size 1
            is dropped).
        y_pred: Probabilities, or logits when `from_logits`.
        from_logits: As in `categorical_crossentropy`.
        ignore_class: Optional class index (e.g. -1) whose entries get loss 0; the result then
            carries them as a `_keras_mask`, which `Loss` reductions leave out of the average.
        axis: The class axis.

    Returns:
        A Tensor of the shape of `y_pred` without `axis`.

    Raises:
        ValueError: If the shapes do not match.
    """
    y_pred = _float_tensor(y_pred)
    labels = np.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[axis] == 1:
        labels = np.squeeze(labels, axis)
    expected = y_pred.shape[: axis % y_pred.ndim] + y_pred.shape[axis % y_pred.ndim + 1 :]
    if labels.shape != expected:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape up until the last dimension: "
            f"target.shape={labels.shape}, output.shape={y_pred.shape}"
        )
    labels = labels.astype(np.int64)
    # Out-of-range labels (an ignored class among them) get an all-zero row, as with Keras's one_hot.
    one_hot = labels[..., None] == np.arange(y_pred.shape[axis])
    valid = None if ignore_class is None else labels != ignore_class
    if valid is not None:
        one_hot &= valid[..., None]
    result = _crossentropy(np.moveaxis(one_hot, -1, axis).astype(y_pred.dtype), y_pred, from_logits, axis)
    if valid is not None:
        result._keras_mask = wrap(valid)
    return result


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Computes the binary cross-entropy, averaged along `axis`.

    Args:
        y_true: Targets in [0, 1], of the shape of `y_pred`.
        y_pred: Probabilities (clipped to `[1e-7, 1 - 1e-7]`), or logits when `from_logits`
            (then computed as `softplus(z) - y_true * z`, stable for any logit).
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: In [0, 1]; targets become `y_true * (1 - s) + 0.5 * s`.
        axis: The axis averaged over.

    Returns:
        A Tensor of the shape of `y_pred` without `axis`.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return _binary_crossentropy(y_true, y_pred, from_logits, axis)


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


def kl_divergence(y_true, y_pred):
    """Computes `sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped to `[1e-7, 1]`.

    Args:
        y_true: Target probabilities.
        y_pred: Predicted probabilities.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    y_true = ops.clip(y_true, EPSILON, 1)
    y_pred = ops.clip(y_pred, EPSILON, 1)
    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    """Computes `mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)`.

    Args:
        y_true: Targets (counts).
        y_pred: Predicted rates.

    Returns:
        A Tensor with one loss per sample.
    """
    y_true, y_pred = _prepare(y_true, y_pred, align=False)
    return ops.mean(y_pred - y_true * ops.log(y_pred + np.asarray(EPSILON, y_pred.dtype)), axis=-1)


mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence


class Loss:
    """Base class of losses: per-sample losses from `call`, weighted and reduced by `__call__`.

    Args:
        name: The loss's name (the snake_case class name by default).
        reduction: "sum_over_batch_size" (the default; the same as "mean": the sum divided by the
            number of entries), "sum", "mean_with_sample_weight" (the sum divided by the sum of
            the weights), or None/"none" (no reduction).
        dtype: The dtype to compute in. By default the dtype of `y_pred` if it is floating
            (Keras uses floatx, float32, whatever the predictions).
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.reduction = standardize_reduction(reduction)
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Computes the loss.

        Args:
            y_true: Targets.
            y_pred: Predictions; a `_keras_mask` they carry (e.g. from `Embedding(mask_zero=True)`)
                excludes masked entries.
            sample_weight: Optional weights, per sample or per entry.

        Returns:
            A scalar Tensor, or the weighted per-sample losses for reduction None/"none".
        """
        in_mask = getattr(y_pred, "_keras_mask", None)
        losses = self.call(convert_to_tensor(y_true), _float_tensor(y_pred, self.dtype))
        out_mask = getattr(losses, "_keras_mask", None)
        if in_mask is not None and out_mask is not None:
            mask = np.asarray(in_mask).astype(bool) & np.asarray(out_mask).astype(bool)
        else:
            mask = in_mask if out_mask is None else out_mask
        return reduce_weighted_values(losses, sample_weight, mask, self.reduction)

    def call(self, y_true, y_pred):
        """Returns the per-sample losses; subclasses implement it.

        Args:
            y_true: A Tensor of targets.
            y_pred: A floating Tensor of predictions.

        Returns:
            A Tensor of losses.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        """Creates a loss from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new loss.
        """
        return cls(**config)


class LossFunctionWrapper(Loss):
    """Makes a `Loss` of a function `fn(y_true, y_pred, **kwargs)` returning per-sample losses.

    Args:
        fn: The function; the ranks of its arguments are aligned first.
        reduction: See `Loss`.
        name: See `Loss`.
        dtype: See `Loss`.
        **kwargs: Passed on to `fn`.
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}


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


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy; see `binary_crossentropy`.

    Args:
        from_logits: Whether predictions are logits.
        label_smoothing: In [0, 1]; squeezes targets towards 0.5.
        axis: The axis averaged over.
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(
            binary_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class CategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy with one-hot (or soft) targets; see `categorical_crossentropy`.

    Args:
        from_logits: Whether predictions are logits.
        label_smoothing: In [0, 1]; mixes targets with the uniform distribution.
        axis: The class axis.
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            categorical_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy with integer class targets; see `sparse_categorical_crossentropy`.

    With `ignore_class`, the default reduction averages over the entries that are not ignored.
    Keras 3.15 leaves `axis` out of the config; here it is in.

    Args:
        from_logits: Whether predictions are logits.
        ignore_class: Optional class index whose entries are left out.
        reduction: See `Loss`.
        axis: The class axis.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        axis=-1,
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            sparse_categorical_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis


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


class LogCosh(LossFunctionWrapper):
    """Logarithm of the hyperbolic cosine of the error; see `log_cosh`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence; see `kl_divergence`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)


class Poisson(LossFunctionWrapper):
    """Poisson loss; see `poisson`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, name=name, reduction=reduction, dtype=dtype)


_registry = Registry(
    "loss",
    "keras.losses",
    # Classes first: their snake_case names ("huber", "mean_squared_error", ...) are taken over by
    # the functions of the same name, as in Keras, where a name gives the function.
    [
        Loss,
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        CosineSimilarity,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        LogCosh,
        KLDivergence,
        Poisson,
        mean_squared_error,
        mean_absolute_error,
        huber,
        binary_crossentropy,
        categorical_crossentropy,
        sparse_categorical_crossentropy,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        cosine_similarity,
        hinge,
        squared_hinge,
        categorical_hinge,
        log_cosh,
        kl_divergence,
        poisson,
    ],
    aliases={
        "mse": mean_squared_error,
        "MSE": mean_squared_error,
        "mae": mean_absolute_error,
        "MAE": mean_absolute_error,
        "bce": binary_crossentropy,
        "BCE": binary_crossentropy,
        "mape": mean_absolute_percentage_error,
        "MAPE": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "MSLE": mean_squared_logarithmic_error,
        "kld": kl_divergence,
        "KLD": kl_divergence,
    },
)


def serialize(loss):
    """Returns a loss's config as Keras writes it (a name for a built-in function).

    Args:
        loss: A Loss or a built-in loss function.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name", or a name.
    """
    return _registry.serialize(loss)


def deserialize(config):
    """Creates a loss from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "mse", or a dict with "class_name" and "config".

    Returns:
        A Loss instance, or a loss function for a function name.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a loss identifier as `keras.losses.get` does.

    Args:
        identifier: None; a function name ("sparse_categorical_crossentropy", "mse", "mae",
            "binary_crossentropy", "huber", ...), which gives the function; a class name
            ("SparseCategoricalCrossentropy", ...), which gives an instance; a config dict; a Loss
            class or instance; or any callable.

    Returns:
        A loss function or Loss instance, or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message names it.
    """
    return _registry.get(identifier)
