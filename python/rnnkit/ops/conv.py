"""Convolution, as Keras's `ops.conv`, `ops.depthwise_conv` and `ops.conv_transpose`: computed in
the Rust core (im2col and the core's GEMM), differentiable through the tape."""

import numpy as np

from rnnkit import _core
from rnnkit.ops.core import op

__all__ = ["conv", "conv_transpose", "depthwise_conv"]

_PADDINGS = ("valid", "same", "causal")


def per_axis(name, value, rank, minimum=1):
    """An int or a list of `rank` ints (each >= `minimum`) as a tuple, as Keras standardises
    `kernel_size`, `strides` and `dilation_rate`; a ValueError names the argument otherwise."""
    values = (value,) * rank if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (
        not isinstance(values, (list, tuple))
        or len(values) != rank
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in values)
    ):
        raise ValueError(
            f"The `{name}` argument must be a tuple of {rank} integers >= {minimum}. Received {name}={value!r}"
        )
    return tuple(int(v) for v in values)


def positive(name, value):
    """`value` as a positive int (Keras's check of `filters` and `groups`)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive value. Received {name}={value!r}."
        )
    return int(value)


def data_format_of(data_format):
    """Keras's `data_format` argument checked: None is "channels_last"."""
    data_format = "channels_last" if data_format is None else str(data_format).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def padding_of(padding, allow_causal=False):
    """Keras's `padding` argument checked (case-insensitive): "valid", "same" or, for 1-D
    convolutions, "causal"."""
    name = str(padding).lower() if isinstance(padding, str) else padding
    allowed = _PADDINGS if allow_causal else _PADDINGS[:2]
    if name not in allowed:
        raise ValueError(f"The `padding` argument must be one of {allowed}. Received: padding={padding!r}")
    return name


def output_length(size, window, stride, dilation, padding):
    """Positions along one axis after a convolution or pooling window, as Keras computes them:
    "valid" keeps the windows inside the input, "same" and "causal" give ceil(size / stride).
    An unknown size (None) stays unknown."""
    if size is None:
        return None
    if padding == "valid":
        return (size - (window - 1) * dilation - 1) // stride + 1
    return -(-size // stride)


def transpose_output_length(size, kernel, stride, dilation, padding, output_padding=None):
    """Positions along one axis after a transposed convolution, as Keras computes them (None
    stays None)."""
    if size is None:
        return None
    extent = (kernel - 1) * dilation + 1
    if output_padding is None:
        return size * stride + (max(extent - stride, 0) if padding == "valid" else 0)
    trimmed = 2 * (extent // 2) if padding == "same" else 0
    return (size - 1) * stride + extent - trimmed + output_padding


def spatial_output_shape(input_shape, data_format, lengths, channels):
    """The output shape of a layer over `len(lengths)` spatial axes: `lengths[i]` maps the size of
    spatial axis i (None when unknown) to its output size; the channel axis becomes `channels`."""
    shape = list(input_shape)
    first = 2 if data_format == "channels_first" else 1
    for i, length in enumerate(lengths):
        shape[first + i] = length(shape[first + i])
    shape[1 if data_format == "channels_first" else -1] = channels
    return tuple(shape)


def _float_dtype(*arrays):
    return np.float64 if any(a.dtype == np.float64 for a in arrays) else np.float32


def _channels_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _channels_back(y, data_format):
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


@op(inputs=2)
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-d convolution (cross-correlation, as Keras and TensorFlow compute it).

    Args:
        inputs: `(batch, *spatial, channels)` (channels_last) or `(batch, channels, *spatial)`,
            with 1 to 3 spatial axes.
        kernel: `(*kernel_size, channels // groups, filters)`; the groups are `channels //
            kernel.shape[-2]`.
        strides: An int or one int per spatial axis.
        padding: "valid", "same" or "causal" (1-D; pads the start only).
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or one int per spatial axis.

    Returns:
        A Tensor `(batch, *output, filters)` (channels_last), float64 if either input is, else
        float32.
    """
    data_format = data_format_of(data_format)
    rank = inputs.ndim - 2
    if rank < 1 or kernel.ndim != inputs.ndim:
        raise ValueError(
            f"expected inputs with 1 to 3 spatial axes and a kernel of the same rank (*kernel_size, channels, "
            f"filters), received inputs of shape {inputs.shape} and kernel of shape {kernel.shape}"
        )
    dtype = _float_dtype(inputs, kernel)
    x = _channels_last(inputs, data_format).astype(dtype, copy=False)
    k = kernel.astype(dtype, copy=False)
    channels, per_group = x.shape[-1], k.shape[-2]
    if per_group == 0 or channels % per_group:
        raise ValueError(
            f"the input channels ({channels}) must be a multiple of the kernel's input channels (axis -2 of "
            f"kernel shape {kernel.shape})"
        )
    options = {
        "strides": list(per_axis("strides", strides, rank)),
        "dilation_rate": list(per_axis("dilation_rate", dilation_rate, rank)),
        "padding": padding_of(padding, allow_causal=rank == 1),
        "groups": channels // per_group,
    }
    y = _core.conv_forward(x, k, **options)

    def backward(grad):
        dy = _channels_last(np.asarray(grad, dtype=dtype), data_format)
        dx, dk = _core.conv_backward(x, k, dy, **options)
        return _channels_back(dx, data_format).astype(inputs.dtype, copy=False), dk.astype(kernel.dtype, copy=False)

    return _channels_back(y, data_format), backward


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise convolution: each input channel convolved with its own `depth_multiplier` filters.

    Args:
        inputs: As for `conv`.
        kernel: `(*kernel_size, channels, depth_multiplier)`.
        strides: An int or one int per spatial axis.
        padding: "valid", "same" or "causal" (1-D).
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or one int per spatial axis.

    Returns:
        A Tensor with `channels * depth_multiplier` channels, channel `c * depth_multiplier + m`
        being input channel `c`'s filter `m` (Keras's order).
    """
    from rnnkit.ops.manipulation import reshape

    shape = tuple(np.shape(kernel))
    grouped = reshape(kernel, (*shape[:-2], 1, shape[-2] * shape[-1]))
    return conv(inputs, grouped, strides, padding, data_format, dilation_rate)


@op(inputs=2)
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1):
    """Transposed convolution (the input gradient of a convolution), with Keras's output sizes.

    Args:
        inputs: `(batch, *spatial, channels)` (channels_last) or `(batch, channels, *spatial)`.
        kernel: `(*kernel_size, filters, channels)`.
        strides: An int or one int per spatial axis.
        padding: "valid" or "same".
        output_padding: None (Keras's default sizes), an int or one int per axis, each smaller
            than its stride: the positions added at the end of each output axis.
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or one int per spatial axis.

    Returns:
        A Tensor `(batch, *output, filters)` (channels_last).
    """
    data_format = data_format_of(data_format)
    rank = inputs.ndim - 2
    if rank < 1 or kernel.ndim != inputs.ndim:
        raise ValueError(
            f"expected inputs with 1 to 3 spatial axes and a kernel of the same rank (*kernel_size, filters, "
            f"channels), received inputs of shape {inputs.shape} and kernel of shape {kernel.shape}"
        )
    dtype = _float_dtype(inputs, kernel)
    x = _channels_last(inputs, data_format).astype(dtype, copy=False)
    k = kernel.astype(dtype, copy=False)
    options = {
        "strides": list(per_axis("strides", strides, rank)),
        "dilation_rate": list(per_axis("dilation_rate", dilation_rate, rank)),
        "padding": padding_of(padding),
        "output_padding": None if output_padding is None else list(per_axis("output_padding", output_padding, rank, 0)),
    }
    y = _core.conv_transpose_forward(x, k, **options)

    def backward(grad):
        dy = _channels_last(np.asarray(grad, dtype=dtype), data_format)
        dx, dk = _core.conv_transpose_backward(x, k, dy, **options)
        return _channels_back(dx, data_format).astype(inputs.dtype, copy=False), dk.astype(kernel.dtype, copy=False)

    return _channels_back(y, data_format), backward
