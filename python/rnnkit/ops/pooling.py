"""Max and average pooling, as Keras's `ops.max_pool` and `ops.average_pool`: computed in the
Rust core (direct loops over the windows), differentiable through the tape."""

import numpy as np

from rnnkit import _core
from rnnkit.ops.conv import data_format_of, padding_of, per_axis
from rnnkit.ops.core import op

__all__ = ["average_pool", "max_pool"]


def _pool(kind, inputs, pool_size, strides, padding, data_format):
    data_format = data_format_of(data_format)
    rank = inputs.ndim - 2
    if rank < 1:
        raise ValueError(f"expected inputs with at least one spatial axis, received shape {inputs.shape}")
    if inputs.dtype not in (np.float32, np.float64):
        inputs = inputs.astype(np.float64 if inputs.dtype.itemsize > 4 else np.float32)
    pool_size = per_axis("pool_size", pool_size, rank)
    options = {
        "pool_size": list(pool_size),
        "strides": list(per_axis("strides", pool_size if strides is None else strides, rank)),
        "padding": padding_of(padding),
        "kind": kind,
    }
    first = data_format == "channels_first"
    x = np.moveaxis(inputs, 1, -1) if first else inputs
    y = _core.pool_forward(x, **options)

    def backward(grad):
        dy = np.asarray(grad, dtype=x.dtype)
        dx = _core.pool_backward(x, np.moveaxis(dy, 1, -1) if first else dy, **options)
        return np.moveaxis(dx, -1, 1) if first else dx

    return (np.moveaxis(y, -1, 1) if first else y), backward


@op()
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """The largest value of each window (padding with "same" is never chosen).

    Args:
        inputs: `(batch, *spatial, channels)` (channels_last) or `(batch, channels, *spatial)`.
        pool_size: An int or one int per spatial axis.
        strides: An int, one per spatial axis, or None for `pool_size`.
        padding: "valid" or "same".
        data_format: "channels_last" (None) or "channels_first".

    Returns:
        A Tensor of the pooled windows.
    """
    return _pool("max", inputs, pool_size, strides, padding, data_format)


@op()
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """The mean of each window over its positions inside the input (as Keras and TensorFlow).

    Args:
        inputs: `(batch, *spatial, channels)` (channels_last) or `(batch, channels, *spatial)`.
        pool_size: An int or one int per spatial axis.
        strides: An int, one per spatial axis, or None for `pool_size`.
        padding: "valid" or "same".
        data_format: "channels_last" (None) or "channels_first".

    Returns:
        A Tensor of the pooled windows.
    """
    return _pool("average", inputs, pool_size, strides, padding, data_format)
