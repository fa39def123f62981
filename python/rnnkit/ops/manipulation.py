"""Shape manipulation, joining and splitting, indexing, and constant tensors."""

import numpy as np

from rnnkit.ops.core import op
from rnnkit.tensor import Tensor, convert_to_tensor, wrap

__all__ = [
    "arange",
    "concatenate",
    "expand_dims",
    "eye",
    "flip",
    "full",
    "full_like",
    "linspace",
    "moveaxis",
    "ones",
    "ones_like",
    "pad",
    "repeat",
    "reshape",
    "split",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "transpose",
    "unstack",
    "zeros",
    "zeros_like",
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


@op()
def moveaxis(x, source, destination):
    """Moves axes to new positions; the others keep their order.

    Args:
        x: A tensor-like.
        source: The axis (an int or a sequence of ints) to move.
        destination: Where each moved axis goes.

    Returns:
        A Tensor.
    """
    return np.moveaxis(x, source, destination), lambda grad: np.moveaxis(grad, destination, source)


@op()
def flip(x, axis=None):
    """Reverses the order of elements along axes.

    Args:
        x: A tensor-like.
        axis: The axis or axes to reverse, or None for all of them.

    Returns:
        A Tensor.
    """
    return np.flip(x, axis), lambda grad: np.flip(grad, axis)


@op()
def tile(x, repeats):
    """Repeats a whole tensor along each axis, as `np.tile`.

    Args:
        x: A tensor-like.
        repeats: The number of copies along each axis (an int or a sequence of ints); when
            it is longer than `x.shape`, `x` gains leading axes of size 1.

    Returns:
        A Tensor.
    """
    out = np.tile(x, repeats)
    reps = np.atleast_1d(repeats).tolist()
    ndim = max(len(reps), x.ndim)
    reps = [1] * (ndim - len(reps)) + reps
    sizes = [1] * (ndim - x.ndim) + list(x.shape)

    def backward(grad):
        # Axis i of the output is (reps[i] copies) x (sizes[i] elements): sum over the copies.
        copies = grad.reshape([n for pair in zip(reps, sizes) for n in pair])
        return copies.sum(axis=tuple(range(0, 2 * ndim, 2))).reshape(x.shape)

    return out, backward


def repeat(x, repeats, axis=None):
    """Repeats each element, as `np.repeat`.

    Args:
        x: A tensor-like.
        repeats: How many times each element repeats: an int, or one int per element along `axis`.
        axis: The axis to repeat along, or None to repeat the flattened tensor.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    # Repeating is gathering each index `repeats` times, so take() supplies the gradient.
    return take(x, np.repeat(np.arange(x.shape[axis]), repeats), axis=axis)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(x, pad_width, mode="constant", constant_values=None):
    """Pads a tensor, as `np.pad`.

    Args:
        x: A tensor-like.
        pad_width: The padding before and after each axis: `((before, after), ...)`, one pair
            for every axis, or one pair or one int for all of them.
        mode: "constant", "edge", "reflect", "symmetric" or "wrap".
        constant_values: The padding value in "constant" mode, 0 by default.

    Returns:
        A Tensor.

    Raises:
        ValueError: If `mode` is not one of the above, or `constant_values` is given with
            another mode.
    """
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode: expected one of {_PAD_MODES}, received {mode!r}")
    if constant_values is not None and mode != "constant":
        raise ValueError(f"pad: constant_values: expected only with mode='constant', received mode={mode!r}")
    return _pad(x, pad_width, mode, 0 if constant_values is None else constant_values)


@op()
def _pad(x, pad_width, mode, constant_values):
    if mode == "constant":
        out = np.pad(x, pad_width, constant_values=constant_values)
        starts = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))[:, 0]
        center = tuple(slice(start, start + size) for start, size in zip(starts, x.shape))
        return out, lambda grad: grad[center]
    # The other modes copy elements of `x`: pad the flat indices to learn which ones.
    source = np.pad(np.arange(x.size).reshape(x.shape), pad_width, mode=mode)

    def backward(grad):
        return np.bincount(source.ravel(), weights=grad.ravel(), minlength=x.size).reshape(x.shape)

    return x.reshape(-1)[source], backward


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


def unstack(x, num=None, axis=0):
    """Splits a tensor into the list of its slices along an axis (the inverse of `stack`).

    Args:
        x: A tensor-like.
        num: The expected number of slices, or None to take the size of `axis`.
        axis: The axis to unstack along.

    Returns:
        A list of Tensors, each of `x`'s shape without `axis`.

    Raises:
        ValueError: If `num` differs from the size of `axis`.
    """
    x = convert_to_tensor(x)
    if num is not None and num != x.shape[axis]:
        raise ValueError(f"unstack: num: expected the size of axis {axis}, {x.shape[axis]}, received {num}")
    return [squeeze(part, axis) for part in split(x, x.shape[axis], axis=axis)]


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


@op(inputs=2)
def take_along_axis(x, indices, axis=None):
    """Picks one element per index along an axis, as `np.take_along_axis`.

    Args:
        x: A tensor-like.
        indices: An integer tensor-like with as many axes as `x` (broadcasting against it
            except along `axis`); negative indices count from the end.
        axis: The axis to pick along, or None to index the flattened tensor.

    Returns:
        A Tensor of the broadcast shape, with `indices.shape[axis]` along `axis`.
    """
    x_shape = x.shape
    x, axis = (x.reshape(-1), 0) if axis is None else (x, axis % x.ndim)
    index = _along_axis_index(x.shape, indices, axis)

    def backward(grad):
        d_x = np.zeros(x.shape, grad.dtype)
        np.add.at(d_x, index, grad)  # repeated indices accumulate
        return d_x.reshape(x_shape), None

    return x[index], backward


def _along_axis_index(shape, indices, axis):
    """The index tuple that picks `indices` along `axis` of an array of `shape`, elementwise.

    `array[_along_axis_index(array.shape, indices, axis)]` is `np.take_along_axis(array,
    indices, axis)`; the same tuple scatters gradients back with `np.add.at`.
    """
    ndim = len(shape)
    return tuple(
        indices if i == axis else np.arange(size).reshape((-1,) + (1,) * (ndim - i - 1)) for i, size in enumerate(shape)
    )


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


def full(shape, fill_value, dtype=None):
    """Returns a Tensor filled with one value.

    Args:
        shape: A tuple of ints.
        fill_value: The value.
        dtype: The dtype, float32 by default (as Keras).

    Returns:
        A Tensor.
    """
    return wrap(np.full(shape, fill_value, dtype or np.float32))


@op()
def full_like(x, fill_value, dtype=None):
    """Returns `fill_value` in the shape (and by default the dtype) of `x`.

    Args:
        x: A tensor-like.
        fill_value: The value.
        dtype: Optional dtype.

    Returns:
        A Tensor.
    """
    return np.full_like(x, fill_value, dtype=dtype), None


def eye(N, M=None, k=0, dtype=None):
    """Returns a matrix with ones on a diagonal and zeros elsewhere.

    Args:
        N: The number of rows.
        M: The number of columns, `N` by default.
        k: The diagonal: 0 the main one, positive above it, negative below.
        dtype: The dtype, float32 by default.

    Returns:
        A Tensor of shape (N, M).
    """
    return wrap(np.eye(N, M, k, dtype=dtype or np.float32))


def arange(start, stop=None, step=None, dtype=None):
    """Returns evenly spaced values in `[start, stop)`, as `np.arange`.

    Args:
        start: The first value, or the end when `stop` is None (the values then start at 0).
        stop: The end (excluded).
        step: The spacing, 1 by default.
        dtype: The dtype; by default int32 for Python ints and float32 once a float is given.

    Returns:
        A 1-D Tensor.
    """
    given = [v for v in (start, stop, step) if v is not None]
    if stop is None:
        start, stop = 0, start
    return wrap(np.arange(start, stop, 1 if step is None else step, dtype=dtype or _default_dtype(*given)))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """Returns `num` evenly spaced values from `start` to `stop`, as `np.linspace`.

    Args:
        start: The first value (a number or a tensor-like, for several sequences at once).
        stop: The last value, or the end when `endpoint` is False.
        num: How many values.
        endpoint: Whether `stop` is the last value.
        retstep: Whether to return the spacing too.
        dtype: The dtype, float32 by default.
        axis: Where the new axis goes when `start` or `stop` are tensors.

    Returns:
        A Tensor, or `(Tensor, step)` when `retstep` is True.
    """
    dtype = dtype or _default_dtype(start, stop, 1.0)
    start, stop = np.asarray(start), np.asarray(stop)
    result = np.linspace(start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis)
    return (wrap(result[0]), result[1]) if retstep else wrap(result)


def _default_dtype(*values):
    """Keras's dtype for a constant made from `values`: numpy and Tensor values keep their dtype,
    Python ints count as int32 and Python floats as float32; any float makes it a float."""
    dtypes = [
        np.asarray(v).dtype
        if isinstance(v, (np.ndarray, np.generic, Tensor))
        else np.dtype(np.float32 if isinstance(v, float) else np.int32)
        for v in values
    ]
    floats = [d for d in dtypes if d.kind == "f"]
    return np.result_type(*(floats or dtypes))
