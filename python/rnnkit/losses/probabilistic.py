"""Probabilistic losses: the cross-entropies (each one fused op), KL divergence and Poisson."""

import warnings

import numpy as np

from rnnkit import _core, config, ops
from rnnkit.losses.loss import EPSILON, LossFunctionWrapper, _float_tensor, _prepare
from rnnkit.ops.core import op
from rnnkit.ops.nn import log_softmax_array
from rnnkit.tape import record
from rnnkit.tensor import wrap


def _check_same_shape(target, output):
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={target.shape}, output.shape={output.shape}"
        )


def _crossentropy(target, output, from_logits, axis):
    """-sum(target * log p) along `axis`, p = softmax(output) or output normalised and clipped.

    Probabilities that a softmax over the last axis produced (they carry `_keras_logits`) are
    differentiated with respect to its logits in one step (`_softmax_crossentropy`).
    """
    logits = None if from_logits else getattr(output, "_keras_logits", None)
    if logits is not None and axis in (-1, output.ndim - 1):
        return _softmax_crossentropy(target, logits, np.asarray(output), axis)
    return _plain_crossentropy(target, output, from_logits, axis)


def _clipped_log(output, axis):
    """The sum of `output` along `axis`, `output` divided by it, that clipped, and its log."""
    total = np.sum(output, axis=axis, keepdims=True)
    prob = output / total
    clipped = np.clip(prob, EPSILON, 1 - EPSILON)
    return total, prob, clipped, np.log(clipped)


@op(inputs=2)
def _plain_crossentropy(target, output, from_logits, axis):
    _check_same_shape(target, output)
    if from_logits:
        log_prob = log_softmax_array(output, axis)
    else:
        total, prob, clipped, log_prob = _clipped_log(output, axis)

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
def _softmax_crossentropy(target, logits, probs, axis):
    """The cross-entropy of `probs = softmax(logits)` (normalised and clipped, as for any
    probabilities), differentiated with respect to `logits`: through the normalisation by the
    sum `S`, the clip, the log and the softmax, the chain rule gives `grad · (probs · sum(w) / S
    - w)`, `w` being `target` where the clip passes the gradient and 0 where it clips."""
    _check_same_shape(target, probs)
    total, prob, _, log_prob = _clipped_log(probs, axis)

    def backward(grad):
        grad = np.expand_dims(grad, axis)
        kept = np.where((prob >= EPSILON) & (prob <= 1 - EPSILON), target, 0)
        d_logits = (probs * (np.sum(kept, axis=axis, keepdims=True) / total) - kept) * grad
        return -log_prob * grad, d_logits

    return -np.sum(target * log_prob, axis=axis), backward


def _sparse_softmax_crossentropy(logits, labels):
    """The cross-entropy of the softmax over the last axis of the Tensor `logits` against the
    int64 `labels` (an out-of-range label selects no class: loss 0, no gradient), one Rust call
    each way (`_core.sparse_softmax_cross_entropy`), recorded as one op."""
    z = np.asarray(logits)
    flat_labels = labels.reshape(-1)
    losses, probabilities = _core.sparse_softmax_cross_entropy(z.reshape(-1, z.shape[-1]), flat_labels)
    output = wrap(losses.reshape(z.shape[:-1]))

    def backward(grads):
        grad = grads[0].reshape(-1)
        return (_core.sparse_softmax_cross_entropy_backward(probabilities, flat_labels, grad).reshape(z.shape),)

    record([logits], [output], backward)
    return output


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
    valid = None if ignore_class is None else labels != ignore_class
    if (
        from_logits
        and axis % y_pred.ndim == y_pred.ndim - 1
        and y_pred.dtype in config.KERNEL_DTYPES
        and 0 not in y_pred.shape
    ):
        result = _sparse_softmax_crossentropy(y_pred, labels if valid is None else np.where(valid, labels, -1))
    else:
        # Out-of-range labels (an ignored class among them) get an all-zero row, as with Keras's one_hot.
        one_hot = labels[..., None] == np.arange(y_pred.shape[axis])
        if valid is not None:
            one_hot &= valid[..., None]
        if axis % y_pred.ndim != y_pred.ndim - 1:  # np.moveaxis costs microseconds even as a no-op
            one_hot = np.moveaxis(one_hot, -1, axis)
        result = _crossentropy(one_hot.astype(y_pred.dtype), y_pred, from_logits, axis)
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


kld = KLD = kl_divergence


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
