"""Elementwise arithmetic and functions, reductions, matmul and einsum, comparisons."""

import builtins
import math
import string

import numpy as np

from rnnkit.ops.core import op
from rnnkit.ops.manipulation import reshape, take_along_axis
from rnnkit.tensor import Tensor, convert_to_tensor

__all__ = [
    "abs",
    "add",
    "all",
    "any",
    "argmax",
    "argmin",
    "argsort",
    "clip",
    "cumprod",
    "cumsum",
    "divide",
    "einsum",
    "equal",
    "erf",
    "exp",
    "expm1",
    "greater",
    "greater_equal",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "log",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "multiply",
    "negative",
    "not_equal",
    "power",
    "segment_sum",
    "sort",
    "sqrt",
    "square",
    "subtract",
    "sum",
    "tanh",
    "top_k",
    "where",
]


@op(inputs=2)
def add(x1, x2):
    """Adds elementwise, with broadcasting.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    return np.add(x1, x2), lambda grad: (grad, grad)


@op(inputs=2)
def subtract(x1, x2):
    """Subtracts `x2` from `x1` elementwise, with broadcasting.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    return np.subtract(x1, x2), lambda grad: (grad, -grad)


@op(inputs=2)
def multiply(x1, x2):
    """Multiplies elementwise, with broadcasting.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    return np.multiply(x1, x2), lambda grad: (grad * x2, grad * x1)


@op(inputs=2)
def divide(x1, x2):
    """Divides `x1` by `x2` elementwise (true division), with broadcasting.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    out = np.true_divide(x1, x2)
    return out, lambda grad: (grad / x2, -grad * out / x2)


@op()
def negative(x):
    """Negates elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return np.negative(x), lambda grad: -grad


@op(inputs=2)
def power(x1, x2):
    """Raises `x1` to the power `x2` elementwise, with broadcasting.

    Args:
        x1: A tensor-like, the base.
        x2: A tensor-like, the exponent.

    Returns:
        A Tensor of the broadcast shape.
    """
    out = np.power(x1, x2)

    def backward(grad):
        d_base = grad * x2 * np.power(x1, x2 - 1)
        if not isinstance(x2, np.ndarray):  # a Python scalar exponent: spare the log
            return d_base, None
        # As in TensorFlow, the exponent's gradient is 0 where x1 <= 0 has no real log.
        return d_base, grad * out * np.log(np.where(x1 > 0, x1, 1))

    return out, backward


@op()
def exp(x):
    """Computes e**x elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    out = np.exp(x)
    return out, lambda grad: grad * out


@op()
def expm1(x):
    """Computes e**x - 1 elementwise, accurately for small x.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    out = np.expm1(x)
    return out, lambda grad: grad * (out + 1)


# numpy has no erf and scipy is not a dependency; math.erf is accurate to float64 precision.
_erf = np.vectorize(math.erf, otypes=[np.float64])


@op()
def erf(x):
    """Computes the Gauss error function elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor; integer inputs give float64.
    """
    out = _erf(x).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    return out, lambda grad: grad * (2 / math.sqrt(math.pi)) * np.exp(-np.square(x))


@op()
def log(x):
    """Computes the natural logarithm elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return np.log(x), lambda grad: grad / x


@op()
def sqrt(x):
    """Computes the square root elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    out = np.sqrt(x)
    return out, lambda grad: grad / (2 * out)


@op()
def square(x):
    """Squares elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return np.square(x), lambda grad: grad * 2 * x


@op()
def abs(x):
    """Computes the absolute value elementwise (gradient 0 at 0).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return np.abs(x), lambda grad: grad * np.sign(x)


@op()
def tanh(x):
    """Computes the hyperbolic tangent elementwise.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    out = np.tanh(x)
    return out, lambda grad: grad * (1 - out * out)


def _first_or_second(grad, first):
    return np.where(first, grad, 0), np.where(first, 0, grad)


@op(inputs=2)
def maximum(x1, x2):
    """Takes the elementwise maximum, with broadcasting; ties send the gradient to `x1`.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    return np.maximum(x1, x2), lambda grad: _first_or_second(grad, x1 >= x2)


@op(inputs=2)
def minimum(x1, x2):
    """Takes the elementwise minimum, with broadcasting; ties send the gradient to `x1`.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor of the broadcast shape.
    """
    return np.minimum(x1, x2), lambda grad: _first_or_second(grad, x1 <= x2)


@op(inputs=2)
def arctan2(x1, x2):
    """The elementwise angle of the point `(x2, x1)`, in `[-pi, pi]`, as `np.arctan2`.

    Args:
        x1: The y coordinates, a tensor-like.
        x2: The x coordinates, a tensor-like (broadcast against `x1`).

    Returns:
        A Tensor of the broadcast shape.
    """

    def backward(grad):
        radius = x1 * x1 + x2 * x2
        return grad * x2 / radius, -grad * x1 / radius

    return np.arctan2(x1, x2), backward


def where(condition, x1=None, x2=None):
    """Picks `x1` where `condition` is true and `x2` elsewhere, with broadcasting.

    Args:
        condition: A boolean tensor-like; it gets no gradient.
        x1: A tensor-like, or None (with `x2`) to ask for the indices where `condition` holds.
        x2: A tensor-like, or None.

    Returns:
        A Tensor of the broadcast shape; with `x1` and `x2` both None, a tuple of integer
        Tensors, one per axis of `condition`, as `np.nonzero`.

    Raises:
        ValueError: If only one of `x1` and `x2` is given.
    """
    if x1 is None and x2 is None:
        return tuple(Tensor(indices) for indices in np.nonzero(np.asarray(condition)))
    if x1 is None or x2 is None:
        raise ValueError("where: x1 and x2: expected both or neither, received one of them")
    return _where(condition, x1, x2)


@op(inputs=3)
def _where(condition, x1, x2):
    return np.where(condition, x1, x2), lambda grad: (None, *_first_or_second(grad, condition))


@op(inputs=3)
def clip(x, x_min, x_max):
    """Clips values to `[x_min, x_max]`, with broadcasting.

    Where `x` is clipped, the gradient goes to the bound that was used, as in TensorFlow.

    Args:
        x: A tensor-like.
        x_min: A tensor-like lower bound.
        x_max: A tensor-like upper bound.

    Returns:
        A Tensor of the broadcast shape.
    """
    below, above = x < x_min, x > x_max

    def backward(grad):
        return np.where(below | above, 0, grad), np.where(below, grad, 0), np.where(above, grad, 0)

    return np.clip(x, x_min, x_max), backward


def _restore_reduced(value, axis, keepdims):
    """Re-inserts the axes a reduction removed, so `value` broadcasts against its input."""
    return value if axis is None or keepdims else np.expand_dims(value, axis)


@op()
def sum(x, axis=None, keepdims=False):
    """Sums over the given axes.

    Args:
        x: A tensor-like.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.
    """
    out = np.sum(x, axis=axis, keepdims=keepdims)
    return out, lambda grad: np.broadcast_to(_restore_reduced(grad, axis, keepdims), x.shape)


@op()
def mean(x, axis=None, keepdims=False):
    """Averages over the given axes.

    Args:
        x: A tensor-like.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.
    """
    out = np.mean(x, axis=axis, keepdims=keepdims)

    def backward(grad):
        count = x.size / grad.size  # elements averaged into each output
        return np.broadcast_to(_restore_reduced(grad / count, axis, keepdims), x.shape)

    return out, backward


def _extremum_gradient(x, out, grad, axis, keepdims):
    # Tied extrema share the gradient equally, as in TensorFlow.
    hits = x == _restore_reduced(out, axis, keepdims)
    return hits * _restore_reduced(grad, axis, keepdims) / hits.sum(axis=axis, keepdims=True)


@op()
def max(x, axis=None, keepdims=False):
    """Takes the maximum over the given axes.

    Args:
        x: A tensor-like.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.
    """
    out = np.max(x, axis=axis, keepdims=keepdims)
    return out, lambda grad: _extremum_gradient(x, out, grad, axis, keepdims)


@op()
def min(x, axis=None, keepdims=False):
    """Takes the minimum over the given axes.

    Args:
        x: A tensor-like.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.
    """
    out = np.min(x, axis=axis, keepdims=keepdims)
    return out, lambda grad: _extremum_gradient(x, out, grad, axis, keepdims)


@op()
def argmax(x, axis=None, keepdims=False):
    """Returns the indices of the maxima (no gradient).

    Args:
        x: A tensor-like.
        axis: An int, or None to index the flattened tensor.
        keepdims: Whether to keep the reduced axis with size 1.

    Returns:
        An integer Tensor.
    """
    return np.argmax(x, axis=axis, keepdims=keepdims), None


@op()
def argmin(x, axis=None, keepdims=False):
    """Returns the indices of the minima (no gradient).

    Args:
        x: A tensor-like.
        axis: An int, or None to index the flattened tensor.
        keepdims: Whether to keep the reduced axis with size 1.

    Returns:
        An integer Tensor.
    """
    return np.argmin(x, axis=axis, keepdims=keepdims), None


@op()
def argsort(x, axis=-1):
    """Returns the indices that sort a tensor along an axis (stable; no gradient).

    Args:
        x: A tensor-like.
        axis: The axis to sort along, or None to sort the flattened tensor.

    Returns:
        An int32 Tensor, as Keras's.
    """
    return np.argsort(x, axis=axis, kind="stable").astype(np.int32), None


def sort(x, axis=-1):
    """Sorts a tensor along an axis, ascending; the gradient follows each element to its place.

    Args:
        x: A tensor-like.
        axis: The axis to sort along, or None to sort the flattened tensor.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return take_along_axis(x, argsort(x, axis=axis), axis=axis)


def top_k(x, k, sorted=True):
    """Finds the `k` largest entries along the last axis.

    Args:
        x: A tensor-like with at least one axis.
        k: How many entries.
        sorted: Accepted for Keras's signature: the entries always come largest first, and
            equal values in the order of their indices.

    Returns:
        A tuple `(values, indices)` of Tensors of shape `x.shape[:-1] + (k,)`; the values are
        differentiable, the indices are int32.

    Raises:
        ValueError: If `k` is not between 1 and the size of the last axis.
    """
    x = convert_to_tensor(x)
    if not 1 <= k <= x.shape[-1]:
        raise ValueError(f"top_k: k: expected an int in [1, {x.shape[-1]}], received {k!r}")
    keys = np.asarray(x)
    keys = keys.astype(np.float64) if keys.dtype.kind in "bu" else keys
    indices = Tensor(np.argsort(-keys, axis=-1, kind="stable")[..., :k].astype(np.int32))
    return take_along_axis(x, indices, axis=-1), indices


def _cumulative_axis(x, axis):
    """The flattened `x` and axis 0 when `axis` is None (numpy's convention), else `x` and `axis`."""
    return (x.reshape(-1), 0) if axis is None else (x, axis % x.ndim)


def _cumulative_dtype(x, dtype):
    """Booleans accumulate as int32, as in Keras."""
    return dtype or (np.int32 if x.dtype == np.bool_ else x.dtype)


@op()
def cumsum(x, axis=None, dtype=None):
    """Computes the cumulative sum along an axis.

    Args:
        x: A tensor-like.
        axis: The axis, or None to accumulate over the flattened tensor.
        dtype: The dtype of the result; by default that of `x` (int32 for booleans).

    Returns:
        A Tensor.
    """
    flat, along = _cumulative_axis(x, axis)
    out = np.cumsum(flat, axis=along, dtype=_cumulative_dtype(x, dtype))
    # Each input reaches every later output: the gradient is the reversed cumulative sum.
    return out, lambda grad: np.flip(np.cumsum(np.flip(grad, along), axis=along), along).reshape(x.shape)


@op()
def cumprod(x, axis=None, dtype=None):
    """Computes the cumulative product along an axis; the gradient is exact where `x` has zeros.

    Args:
        x: A tensor-like.
        axis: The axis, or None to accumulate over the flattened tensor.
        dtype: The dtype of the result; by default that of `x` (int32 for booleans).

    Returns:
        A Tensor.
    """
    flat, along = _cumulative_axis(x, axis)
    out = np.cumprod(flat, axis=along, dtype=_cumulative_dtype(x, dtype))

    def backward(grad):
        # d out_j / d x_i = prod(x[:i]) * prod(x[i+1 : j+1]) for j >= i: no division by x_i.
        # `after[i]` = sum over j >= i of grad_j * prod(x[i+1 : j+1]), built from the end.
        grad, values = np.moveaxis(grad, along, 0), np.moveaxis(flat, along, 0)
        after = np.array(grad)
        for i in range(len(after) - 2, -1, -1):
            after[i] += values[i + 1] * after[i + 1]
        before = np.concatenate([np.ones_like(values[:1]), np.cumprod(values[:-1], axis=0)])
        return np.moveaxis(before * after, 0, along).reshape(x.shape)

    return out, backward


@op()
def logsumexp(x, axis=None, keepdims=False):
    """Computes log(sum(exp(x))) over axes without overflow.

    Args:
        x: A tensor-like.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.
    """
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)  # all -inf (or an inf) must not give nan here
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak

    def backward(grad):
        # The gradient is the softmax of x over the reduced axes.
        return _restore_reduced(grad, axis, keepdims) * np.exp(x - out)

    return (out if keepdims else np.squeeze(out, axis=axis)), backward


def _logical_reduction(reduce):
    def reduction(x, axis=None, keepdims=False):
        return reduce(x, axis=axis, keepdims=keepdims), None

    reduction.__name__ = reduction.__qualname__ = reduce.__name__
    reduction.__doc__ = f"""Tests whether {reduce.__name__} element along the given axes is true (no gradient).

    Args:
        x: A tensor-like; nonzero numbers count as true.
        axis: An int, a tuple of ints, or None for all axes.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A boolean Tensor.
    """
    return op()(reduction)


any = _logical_reduction(np.any)
all = _logical_reduction(np.all)


def _predicate(ufunc, what):
    def predicate(x):
        return ufunc(x), None

    predicate.__name__ = predicate.__qualname__ = ufunc.__name__
    predicate.__doc__ = f"""Tests elementwise whether `x` is {what} (no gradient).

    Args:
        x: A tensor-like.

    Returns:
        A boolean Tensor.
    """
    return op()(predicate)


isnan = _predicate(np.isnan, "NaN")
isinf = _predicate(np.isinf, "infinite")
isfinite = _predicate(np.isfinite, "finite (neither infinite nor NaN)")


@op(inputs=2)
def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    """Sums the rows of `data` that share a segment id.

    Args:
        data: A tensor-like; its first axis is split into segments.
        segment_ids: Integer ids, one per row of `data`; rows with an id below 0 or at least
            `num_segments` are dropped.
        num_segments: The number of segments, by default the largest id plus one.
        sorted: Accepted for Keras's signature; the ids need not be sorted.

    Returns:
        A Tensor of shape `(num_segments,) + data.shape[1:]`.

    Raises:
        ValueError: If `segment_ids` is not one id per row of `data`.
    """
    if segment_ids.shape != data.shape[:1]:
        raise ValueError(
            f"segment_ids: expected shape {data.shape[:1]} (one id per row of data), received {segment_ids.shape}"
        )
    if num_segments is None:
        num_segments = int(segment_ids.max()) + 1 if segment_ids.size else 0
    kept = (segment_ids >= 0) & (segment_ids < num_segments)
    out = np.zeros((num_segments,) + data.shape[1:], data.dtype)
    np.add.at(out, segment_ids[kept], data[kept])

    def backward(grad):
        d_data = np.zeros(data.shape, grad.dtype)
        d_data[kept] = grad[segment_ids[kept]]
        return d_data, None

    return out, backward


@op(inputs=2)
def matmul(x1, x2):
    """Multiplies matrices as `np.matmul`: 1-D operands are vectors, leading axes broadcast.

    Args:
        x1: A tensor-like with at least one axis.
        x2: A tensor-like with at least one axis.

    Returns:
        A Tensor.
    """

    def backward(grad):
        # Work on the matrix forms, with vectors as a 1-row or 1-column matrix.
        a = x1[np.newaxis] if x1.ndim == 1 else x1
        b = x2[:, np.newaxis] if x2.ndim == 1 else x2
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        grad = grad.reshape(batch + (a.shape[-2], b.shape[-1]))
        d_a = grad @ np.swapaxes(b, -1, -2)
        d_b = np.swapaxes(a, -1, -2) @ grad
        return (d_a[..., 0, :] if x1.ndim == 1 else d_a), (d_b[..., 0] if x2.ndim == 1 else d_b)

    return np.matmul(x1, x2), backward


def einsum(subscripts, *operands):
    """Evaluates an Einstein summation given in explicit form, e.g. "bij,ijkl->bkl".

    Labels may repeat within an operand (diagonals), appear in one operand only (summed out),
    and "..." stands for broadcast leading axes.

    Args:
        subscripts: The subscripts, with "->" and the output labels.
        *operands: Tensor-likes, one per comma-separated input.

    Returns:
        A Tensor.

    Raises:
        ValueError: If `subscripts` has no "->".
    """
    if "->" not in subscripts:
        raise ValueError(f"einsum needs the explicit form with '->' (e.g. 'ij,jk->ik'), got {subscripts!r}")
    return _einsum(*operands, subscripts=subscripts)


@op(inputs=None)
def _einsum(*operands, subscripts):
    inputs, output = _expand_ellipsis(subscripts.replace(" ", ""), [np.ndim(x) for x in operands])

    def operand_gradient(grad, i, sizes):
        labels, unique = inputs[i], "".join(dict.fromkeys(inputs[i]))
        others = [j for j in range(len(operands)) if j != i]
        present = set(output).union(*(inputs[j] for j in others))
        kept = "".join(c for c in unique if c in present)
        spec = ",".join([output] + [inputs[j] for j in others]) + "->" + kept
        partial = np.einsum(spec, grad, *(operands[j] for j in others))
        # Labels only this operand has were summed away: the gradient is constant along them.
        partial = np.expand_dims(partial, tuple(k for k, c in enumerate(unique) if c not in kept))
        result = np.zeros([sizes[c] for c in labels], grad.dtype)
        # For one operand and no summation einsum returns a writable view: here the diagonal
        # that repeated labels select, or a transpose.
        np.einsum(f"{labels}->{unique}", result)[...] = partial
        return result

    def backward(grad):
        sizes = {}
        for labels, x in zip(inputs, operands):
            for label, size in zip(labels, np.shape(x)):
                if sizes.get(label, 1) == 1:  # a size-1 axis broadcasts against the others
                    sizes[label] = size
        return [operand_gradient(grad, i, sizes) for i in range(len(operands))]

    return np.einsum(",".join(inputs) + "->" + output, *operands), backward


def _expand_ellipsis(subscripts, ndims):
    """Splits explicit subscripts into input and output labels, spelling "..." out as letters."""
    inputs, output = subscripts.split("->")
    inputs = inputs.split(",")
    if "..." not in subscripts:
        return inputs, output
    spare = [c for c in string.ascii_letters if c not in subscripts]
    counts = [ndim - len(labels) + 3 if "..." in labels else 0 for labels, ndim in zip(inputs, ndims)]
    broadcast = "".join(spare[: builtins.max(counts)])
    # Broadcast axes align on the right, as in numpy.
    inputs = [s.replace("...", broadcast[len(broadcast) - n :]) for s, n in zip(inputs, counts)]
    return inputs, output.replace("...", broadcast)


def _comparison(ufunc, symbol):
    def compare(x1, x2):
        return ufunc(x1, x2), None

    compare = op(inputs=2)(compare)
    compare.__name__ = compare.__qualname__ = ufunc.__name__
    compare.__doc__ = f"""Compares `x1 {symbol} x2` elementwise, with broadcasting (no gradient).

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A boolean Tensor of the broadcast shape.
    """
    return compare


equal = _comparison(np.equal, "==")
not_equal = _comparison(np.not_equal, "!=")
less = _comparison(np.less, "<")
less_equal = _comparison(np.less_equal, "<=")
greater = _comparison(np.greater, ">")
greater_equal = _comparison(np.greater_equal, ">=")
