"""The `Loss` base class, `LossFunctionWrapper`, and the weighting and reduction of per-sample losses."""

import numpy as np

from rnnkit import ops
from rnnkit._naming import snake_case, unique_name
from rnnkit.tape import record
from rnnkit.tensor import convert_to_tensor, wrap

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
    if reduction == "sum":
        return ops.sum(values)
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = np.sum(sample_weight)
    else:
        divisor = int(np.prod(values.shape))
    return _sum_divided(values, divisor)


def _sum_divided(values, divisor):
    """`sum(values) / divisor`, 0 for a zero divisor (divide_no_nan), recorded as one op on the
    Tensor `values` (directly: it runs at every training step)."""
    array = np.asarray(values)
    if not divisor:
        output = wrap(np.sum(array) * 0)

        def backward(grads):
            return (np.zeros(array.shape, np.result_type(grads[0], array)),)
    else:
        output = wrap(np.sum(array) / divisor)

        def backward(grads):
            return (np.broadcast_to(grads[0] / divisor, array.shape),)

    record([values], [output], backward)
    return output


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
