"""Shape manipulation, joining and splitting, indexing, and constant tensors."""

import numpy as np

from rnnkit.ops.core import op
from rnnkit.tensor import Tensor, wrap

__all__ = [
    "concatenate", "expand_dims", "ones", "ones_like", "reshape", "split", "squeeze", "stack",
    "take", "transpose", "zeros", "zeros_like",
]


@op()
def reshape(x, newshape):
    """Gives a tensor a new shape with the same number of elements.

    Args:
        x: A tensor-like.
        newshape: A tuple of ints; one of them may be -1, inferred from the others.

    Returns:
        A Tensor.
    """
    return np.reshape(x, newshape), lambda grad: grad.reshape(x.shape)


@op()
def expand_dims(x, axis):
    """Inserts an axis of size 1.

    Args:
        x: A tensor-like.
        axis: Where the new axis goes in the result (an int or a tuple of ints).

    Returns:
        A Tensor.
    """
    return np.expand_dims(x, axis), lambda grad: grad.reshape(x.shape)


@op()
def squeeze(x, axis=None):
    """Removes axes of size 1.

    Args:
        x: A tensor-like.
        axis: The axis or axes to remove, or None for every axis of size 1.

    Returns:
        A Tensor.
    """
    return np.squeeze(x, axis), lambda grad: grad.reshape(x.shape)


@op()
def transpose(x, axes=None):
    """Permutes the axes.

    Args:
        x: A tensor-like.
        axes: A permutation of the axes, or None to reverse them.

    Returns:
        A Tensor.
    """
    inverse = None if axes is None else np.argsort([axis % x.ndim for axis in axes])
    return np.transpose(x, axes), lambda grad: np.transpose(grad, inverse)


def concatenate(xs, axis=0):
    """Joins tensors along an existing axis.

    Args:
        xs: A list of tensor-likes whose shapes agree except along `axis`.
        axis: The axis to join along.

    Returns:
        A Tensor.
    """
    return _concatenate(*xs, axis=axis)


@op(inputs=None)
def _concatenate(*xs, axis):
    out = np.concatenate(xs, axis=axis)
    boundaries = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return out, lambda grad: np.split(grad, boundaries, axis=axis)


def stack(x, axis=0):
    """Joins tensors of one shape along a new axis.

    Args:
        x: A list of tensor-likes of the same shape.
        axis: Where the new axis goes in the result.

    Returns:
        A Tensor.
    """
    return _stack(*x, axis=axis)


@op(inputs=None)
def _stack(*xs, axis):
    return np.stack(xs, axis=axis), lambda grad: list(np.moveaxis(grad, axis, 0))


@op()
def split(x, indices_or_sections, axis=0):
    """Splits a tensor into several along an axis.

    Args:
        x: A tensor-like.
        indices_or_sections: The number of equal parts, or the sorted indices to cut before.
        axis: The axis to split.

    Returns:
        A list of Tensors.
    """
    out = np.split(x, indices_or_sections, axis=axis)
    return out, lambda grads: np.concatenate(grads, axis=axis)


@op(inputs=2)
def take(x, indices, axis=None):
    """Gathers elements by index along an axis; repeated indices accumulate gradient.

    Args:
        x: A tensor-like.
        indices: An integer tensor-like; negative indices count from the end.
        axis: The axis to gather along, or None to index the flattened tensor.

    Returns:
        A Tensor of shape `x.shape[:axis] + indices.shape + x.shape[axis + 1:]`.
    """

    def backward(grad):
        if axis is None:
            d_x = np.zeros(x.size, grad.dtype)
            np.add.at(d_x, indices, grad)
            return d_x.reshape(x.shape), None
        d_x = np.zeros(x.shape, grad.dtype)
        np.add.at(d_x, (slice(None),) * (axis % x.ndim) + (indices,), grad)
        return d_x, None

    return np.take(x, indices, axis=axis), backward


@op()
def getitem(x, key):
    """Indexes a tensor as numpy does (basic, integer-array and boolean indexing); `Tensor[key]`.

    Args:
        x: A tensor-like.
        key: An index; Tensors in it act as the arrays they hold.

    Returns:
        A Tensor.
    """
    # Tensors in an index become arrays, so numpy does not take them for sequences.
    if isinstance(key, tuple):
        key = tuple(np.asarray(k) if isinstance(k, Tensor) else k for k in key)
    elif isinstance(key, Tensor):
        key = np.asarray(key)

    parts = key if isinstance(key, tuple) else (key,)
    basic = all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in parts)

    def backward(grad):
        d_x = np.zeros(x.shape, grad.dtype)
        if basic:  # ints and slices select each element at most once
            d_x[key] = grad
        else:
            np.add.at(d_x, key, grad)  # accumulates where an index repeats
        return d_x

    return x[key], backward


def zeros(shape, dtype=None):
    """Returns a Tensor of zeros.

    Args:
        shape: A tuple of ints.
        dtype: The dtype, float32 by default.

    Returns:
        A Tensor.
    """
    return wrap(np.zeros(shape, dtype or np.float32))


def ones(shape, dtype=None):
    """Returns a Tensor of ones.

    Args:
        shape: A tuple of ints.
        dtype: The dtype, float32 by default.

    Returns:
        A Tensor.
    """
    return wrap(np.ones(shape, dtype or np.float32))


@op()
def zeros_like(x, dtype=None):
    """Returns zeros of the shape (and by default the dtype) of `x`.

    Args:
        x: A tensor-like.
        dtype: Optional dtype.

    Returns:
        A Tensor.
    """
    return np.zeros_like(x, dtype=dtype), None


@op()
def ones_like(x, dtype=None):
    """Returns ones of the shape (and by default the dtype) of `x`.

    Args:
        x: A tensor-like.
        dtype: Optional dtype.

    Returns:
        A Tensor.
    """
    return np.ones_like(x, dtype=dtype), None
