"""Products over chosen axes (dot, tensordot) and norms, built on einsum and the reductions."""

import string

import numpy as np

from rnnkit.ops.core import cast, op
from rnnkit.ops.manipulation import expand_dims, moveaxis, squeeze
from rnnkit.ops.math import abs, einsum, max, min, multiply, not_equal, power, sqrt, square, sum
from rnnkit.tensor import convert_to_tensor

__all__ = ["dot", "norm", "tensordot"]


def tensordot(x1, x2, axes=2):
    """Sums products over pairs of axes, as `np.tensordot`.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.
        axes: An int n (the last n axes of `x1` against the first n of `x2`), or a pair
            `(axes_of_x1, axes_of_x2)` of ints or equally long sequences of ints.

    Returns:
        A Tensor with the remaining axes of `x1` followed by those of `x2`.
    """
    x1, x2 = convert_to_tensor(x1), convert_to_tensor(x2)
    if isinstance(axes, int):
        pairs = list(zip(range(x1.ndim - axes, x1.ndim), range(axes)))
    else:
        pairs = list(zip(np.atleast_1d(axes[0]).tolist(), np.atleast_1d(axes[1]).tolist()))
    # Written as einsum: contracted axes share a label.
    labels1 = list(string.ascii_letters[: x1.ndim])
    labels2 = list(string.ascii_letters[x1.ndim : x1.ndim + x2.ndim])
    contracted1 = {a % x1.ndim for a, _ in pairs}
    contracted2 = {b % x2.ndim for _, b in pairs}
    for a, b in pairs:
        labels2[b % x2.ndim] = labels1[a % x1.ndim]
    output = [c for i, c in enumerate(labels1) if i not in contracted1]
    output += [c for i, c in enumerate(labels2) if i not in contracted2]
    return einsum(f"{''.join(labels1)},{''.join(labels2)}->{''.join(output)}", x1, x2)


def dot(x1, x2):
    """Computes the dot product as `np.dot`.

    Scalars multiply; otherwise the last axis of `x1` meets the last axis of a 1-D `x2` or the
    second-to-last axis of `x2`.

    Args:
        x1: A tensor-like.
        x2: A tensor-like.

    Returns:
        A Tensor.
    """
    x1, x2 = convert_to_tensor(x1), convert_to_tensor(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        return multiply(x1, x2)
    return tensordot(x1, x2, axes=([-1], [-1 if x2.ndim == 1 else -2]))


def norm(x, ord=None, axis=None, keepdims=False):
    """Computes a vector or matrix norm, as `np.linalg.norm`.

    Args:
        x: A tensor-like; integer tensors give float32.
        ord: The norm. Vectors: None or 2 (Euclidean), any other number p (sum(|x|^p)^(1/p)),
            0 (the count of nonzeros, no gradient), inf, -inf. Matrices: None or "fro",
            "nuc", 1, -1, 2, -2, inf, -inf.
        axis: An int for vector norms, a pair of ints for matrix norms, or None: the whole
            tensor as one vector when `ord` is None, else `x` must be 1-D or 2-D.
        keepdims: Whether to keep the reduced axes with size 1.

    Returns:
        A Tensor.

    Raises:
        ValueError: If `ord` does not fit the number of axes, or `axis` is None with an `ord`
            and `x` has more than two axes.
    """
    x = convert_to_tensor(x)
    if x.dtype.kind not in "fc":
        x = cast(x, np.float32)
    if axis is None:
        if ord is not None and x.ndim > 2:
            raise ValueError(
                f"norm: axis: expected an axis or two when ord is given and x has {x.ndim} axes, received None"
            )
        axis = tuple(range(x.ndim)) if ord is None or x.ndim == 2 else (0,)
        if ord is None:  # the whole tensor as one vector
            out = sqrt(sum(square(x), axis=axis, keepdims=True))
            return out if keepdims else squeeze(out, axis)
    axes = tuple(a % x.ndim for a in np.atleast_1d(axis).tolist())
    if len(axes) == 1:
        out = _vector_norm(x, ord, axes[0])
    elif len(axes) == 2:
        out = _matrix_norm(x, ord, axes)
    else:
        raise ValueError(f"norm: axis: expected an int or a pair of ints, received {axis!r}")
    return out if keepdims else squeeze(out, axes)


def _vector_norm(x, ord, axis):
    """The vector norm over `axis`, keeping the axis with size 1."""
    if ord is None or ord == 2:
        return sqrt(sum(square(x), axis=axis, keepdims=True))
    if ord == np.inf:
        return max(abs(x), axis=axis, keepdims=True)
    if ord == -np.inf:
        return min(abs(x), axis=axis, keepdims=True)
    if ord == 0:
        return cast(sum(not_equal(x, 0), axis=axis, keepdims=True), x.dtype)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord: expected a number for a vector norm, received {ord!r}")
    return power(sum(power(abs(x), ord), axis=axis, keepdims=True), 1.0 / ord)


def _matrix_norm(x, ord, axes):
    """The matrix norm over the pair `axes` (rows, columns), keeping both axes with size 1."""
    rows, columns = axes
    if ord is None or ord == "fro":
        return sqrt(sum(square(x), axis=axes, keepdims=True))
    if ord in (1, -1, np.inf, -np.inf):
        # 1: the largest column sum of |x|; inf: the largest row sum; negative: the smallest.
        summed, picked = (rows, columns) if ord in (1, -1) else (columns, rows)
        sums = sum(abs(x), axis=summed, keepdims=True)
        return (max if ord > 0 else min)(sums, axis=picked, keepdims=True)
    if ord in (2, -2, "nuc"):
        values = _singular_values(moveaxis(x, axes, (-2, -1)))
        reduced = sum(values, axis=-1) if ord == "nuc" else (max if ord == 2 else min)(values, axis=-1)
        return expand_dims(reduced, sorted(axes))
    raise ValueError(
        f"norm: ord: expected None, 'fro', 'nuc', 1, -1, 2, -2, inf or -inf for a matrix norm, received {ord!r}"
    )


@op()
def _singular_values(x):
    """The singular values of the matrices in the last two axes, largest first."""
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    # d s_k = u_k^T dX v_k (for distinct singular values).
    return s, lambda grad: (u * grad[..., np.newaxis, :]) @ vh
