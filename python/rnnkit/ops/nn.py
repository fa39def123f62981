"""Activation functions (sigmoid, relu, softplus, softmax, log_softmax) and one_hot."""

import numpy as np

from rnnkit.ops.core import op
from rnnkit.tensor import convert_to_tensor

__all__ = ["log_softmax", "one_hot", "relu", "sigmoid", "softmax", "softplus"]


@op()
def sigmoid(x):
    """Computes the logistic function 1 / (1 + exp(-x)) elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    # exp(-log(1 + exp(-x))) neither overflows nor loses the tails.
    out = np.exp(-np.logaddexp(0, -x))
    return out, lambda grad: grad * out * (1 - out)


@op()
def relu(x):
    """Computes max(x, 0) elementwise (gradient 0 at 0).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return np.maximum(x, 0), lambda grad: grad * (x > 0)


@op()
def softplus(x):
    """Computes log(1 + exp(x)) elementwise without overflow.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    out = np.logaddexp(x, 0)
    # The derivative is sigmoid(x) = exp(x - softplus(x)); the exponent is never positive.
    return out, lambda grad: grad * np.exp(x - out)


def softmax(x, axis=-1):
    """Computes the softmax along an axis.

    Args:
        x: A tensor-like.
        axis: The axis (or tuple of axes) the probabilities sum to one over.

    Returns:
        A Tensor of the shape of `x`.
    """
    x = convert_to_tensor(x)
    out = _softmax(x, axis)
    if x.dtype.kind == "f" and isinstance(axis, int) and axis in (-1, x.ndim - 1):
        out._keras_logits = x  # see `Tensor`: a cross-entropy on `out` differentiates `x` directly
    return out


@op()
def _softmax(x, axis):
    exps = np.exp(x - np.max(x, axis=axis, keepdims=True))
    out = exps / np.sum(exps, axis=axis, keepdims=True)
    return out, lambda grad: out * (grad - np.sum(grad * out, axis=axis, keepdims=True))


def log_softmax_array(x, axis=-1):
    """`log(softmax(x))` of a numpy array along `axis`, shifted by the maximum for stability."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@op()
def log_softmax(x, axis=-1):
    """Computes the logarithm of the softmax along an axis, without forming the softmax.

    Args:
        x: A tensor-like.
        axis: The axis (or tuple of axes) to normalise over.

    Returns:
        A Tensor of the shape of `x`.
    """
    out = log_softmax_array(x, axis)
    return out, lambda grad: grad - np.exp(out) * np.sum(grad, axis=axis, keepdims=True)


@op()
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """Encodes integer class ids as one-hot vectors (no gradient).

    Args:
        x: An integer tensor-like of class ids; ids outside `[0, num_classes)` give all zeros.
        num_classes: The length of each one-hot vector.
        axis: Where the new axis goes in the result.
        dtype: The dtype, float32 by default.
        sparse: Must be False: rnnkit has no sparse tensors.

    Returns:
        A Tensor with one more axis than `x`.

    Raises:
        ValueError: If `sparse` is True or `x` is not integer.
    """
    if sparse:
        raise ValueError("one_hot: sparse: expected False (rnnkit has no sparse tensors), received True")
    if x.dtype.kind not in "iu":
        raise ValueError(f"one_hot: x: expected integer class ids, received dtype {x.dtype}")
    out = np.expand_dims(x, -1) == np.arange(num_classes)
    return np.moveaxis(out, -1, axis).astype(dtype or np.float32), None
