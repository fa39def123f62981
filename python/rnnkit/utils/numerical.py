"""to_categorical and normalize: class ids to one-hot rows, rows to unit norm."""

import numpy as np

from rnnkit import ops
from rnnkit.tensor import Tensor

__all__ = ["normalize", "to_categorical"]


def to_categorical(x, num_classes=None):
    """Converts class ids to one-hot rows, as Keras's `to_categorical`.

    Args:
        x: Integer class ids of any shape; a trailing axis of size 1 is dropped.
        num_classes: The number of classes, by default the largest id plus one.

    Returns:
        A float64 numpy array of shape `x.shape + (num_classes,)` (float32 Tensor for a Tensor).

    Raises:
        ValueError: If an id is negative or not below `num_classes`.
    """
    ids = np.asarray(x)
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids.reshape(ids.shape[:-1])
    ids = ids.astype(np.int64)
    if num_classes is None:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(
            f"to_categorical: x: expected class ids in [0, {num_classes}), received ids from {ids.min()} to {ids.max()}"
        )
    if isinstance(x, Tensor):
        return ops.one_hot(ids, num_classes)
    return ops.one_hot(ids, num_classes, dtype=np.float64).numpy()


def normalize(x, axis=-1, order=2):
    """Scales vectors to unit norm along an axis, leaving all-zero vectors as they are.

    Args:
        x: An array or Tensor.
        axis: The axis along which to normalize.
        order: The norm's order (2 for L2, 1 for L1; see `rk.ops.norm`).

    Returns:
        A numpy array, or a Tensor (differentiable) when `x` is one.
    """
    length = ops.norm(x, ord=order, axis=axis, keepdims=True)
    out = ops.divide(x, ops.where(ops.equal(length, 0), 1, length))
    return out if isinstance(x, Tensor) else out.numpy()
