"""Pooling layers: `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D` (the Rust core's window
loops, `rk.ops.max_pool`/`average_pool`), and `GlobalMaxPooling1D/2D/3D` and
`GlobalAveragePooling1D/2D/3D` (reductions over the spatial axes; `GlobalAveragePooling1D`
averages only the unmasked steps, as Keras's), and `AdaptiveMaxPooling1D/2D/3D` and
`AdaptiveAveragePooling1D/2D/3D` (a fixed output size, bins as Keras's and PyTorch's). Keras's
arguments, defaults and numbers."""

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer
from rnnkit.ops.conv import data_format_of, output_length, padding_of, per_axis, spatial_output_shape


def _check_rank(layer, shape, rank):
    if len(shape) != rank + 2:
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible with the layer: expected ndim={rank + 2}, "
            f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
        )


class _Pooling(Layer):
    """Max or average pooling over `rank` spatial axes.

    Args:
        rank: Spatial axes.
        mode: "max" or "average".
        pool_size: An int or `rank` ints.
        strides: An int, `rank` ints, or None for `pool_size`.
        padding: "valid" or "same" (case-insensitive).
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, mode, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rank, self.mode = rank, mode
        self.pool_size = per_axis("pool_size", pool_size, rank)
        self.strides = per_axis("strides", self.pool_size if strides is None else strides, rank)
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)
        self.built = True

    def call(self, inputs):
        _check_rank(self, inputs.shape, self.rank)
        pool = ops.max_pool if self.mode == "max" else ops.average_pool
        return pool(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of shape `input_shape` (None for unknown sizes), as Keras's.

        Args:
            input_shape: The inputs' shape, batch axis included.

        Returns:
            A tuple, None where the size depends on an unknown input size.
        """
        _check_rank(self, input_shape, self.rank)
        lengths = [
            lambda size, axis=axis: output_length(size, self.pool_size[axis], self.strides[axis], 1, self.padding)
            for axis in range(self.rank)
        ]
        channels = input_shape[1 if self.data_format == "channels_first" else -1]
        return spatial_output_shape(input_shape, self.data_format, lengths, channels)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        }


def _pooling_class(name, rank, mode, default):
    def __init__(self, pool_size=default, strides=None, padding="valid", data_format=None, **kwargs):
        _Pooling.__init__(self, rank, mode, pool_size, strides, padding, data_format, **kwargs)

    what = "largest value" if mode == "max" else "mean (over the positions inside the input)"
    doc = f"""The {what} of each window over {rank} spatial axes, as Keras's `{name}`.

    Args:
        pool_size: An int or {rank} ints (default {default}).
        strides: An int, {rank} ints, or None for `pool_size`.
        padding: "valid" or "same" (case-insensitive).
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """
    return type(name, (_Pooling,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


MaxPooling1D = _pooling_class("MaxPooling1D", 1, "max", 2)
MaxPooling2D = _pooling_class("MaxPooling2D", 2, "max", (2, 2))
MaxPooling3D = _pooling_class("MaxPooling3D", 3, "max", (2, 2, 2))
AveragePooling1D = _pooling_class("AveragePooling1D", 1, "average", 2)
AveragePooling2D = _pooling_class("AveragePooling2D", 2, "average", (2, 2))
AveragePooling3D = _pooling_class("AveragePooling3D", 3, "average", (2, 2, 2))


class _GlobalPooling(Layer):
    """The max or mean over every spatial axis.

    Args:
        rank: Spatial axes.
        mode: "max" or "average".
        data_format: "channels_last" (None) or "channels_first".
        keepdims: Keep the spatial axes (of size 1).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, mode, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.rank, self.mode = rank, mode
        self.data_format = data_format_of(data_format)
        self.keepdims = keepdims
        self.supports_masking = rank == 1 and mode == "average"
        self.built = True

    def _axes(self):
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.rank))

    def call(self, inputs, mask=None):
        _check_rank(self, inputs.shape, self.rank)
        axes = self._axes()
        if self.mode == "max":
            return ops.max(inputs, axis=axes, keepdims=self.keepdims)
        if mask is None:
            return ops.mean(inputs, axis=axes, keepdims=self.keepdims)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), 2 if self.data_format == "channels_last" else 1)
        total = ops.sum(ops.multiply(inputs, weights), axis=axes, keepdims=self.keepdims)
        return ops.divide(total, ops.sum(weights, axis=axes, keepdims=self.keepdims))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


def _global_class(name, rank, mode):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        _GlobalPooling.__init__(self, rank, mode, data_format, keepdims, **kwargs)

    what = "largest value" if mode == "max" else "mean"
    masked = " Masked steps are left out of the mean." if rank == 1 and mode == "average" else ""
    doc = f"""The {what} over the {rank} spatial axes, as Keras's `{name}`.{masked}

    Args:
        data_format: "channels_last" (None) or "channels_first".
        keepdims: Keep the spatial axes (of size 1).
        **kwargs: Base `Layer` arguments.
    """
    return type(name, (_GlobalPooling,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


GlobalMaxPooling1D = _global_class("GlobalMaxPooling1D", 1, "max")
GlobalMaxPooling2D = _global_class("GlobalMaxPooling2D", 2, "max")
GlobalMaxPooling3D = _global_class("GlobalMaxPooling3D", 3, "max")
GlobalAveragePooling1D = _global_class("GlobalAveragePooling1D", 1, "average")
GlobalAveragePooling2D = _global_class("GlobalAveragePooling2D", 2, "average")
GlobalAveragePooling3D = _global_class("GlobalAveragePooling3D", 3, "average")


def adaptive_bins(length, size):
    """The `[start, end)` windows that pool `length` positions to `size`: window i runs from
    `floor(i * length / size)` to `ceil((i + 1) * length / size)` (overlapping when `length` is
    not a multiple of `size`, repeating positions when `size > length`), as Keras and PyTorch bin.

    Args:
        length: The input's size along the axis.
        size: The output's size along the axis.

    Returns:
        A list of `size` `(start, end)` pairs.
    """
    return [((i * length) // size, -((-(i + 1) * length) // size)) for i in range(size)]


class _AdaptivePooling(Layer):
    """Max or average pooling of `rank` spatial axes to a fixed `output_size`.

    Args:
        rank: Spatial axes.
        mode: "max" or "average".
        output_size: An int or `rank` ints.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, mode, output_size, data_format=None, **kwargs):
        if not isinstance(output_size, (int, np.integer, list, tuple)) or isinstance(output_size, bool):
            raise TypeError(
                f"`output_size` must be an integer or tuple of {rank} integer{'s' if rank > 1 else ''}. "
                f"Received: {output_size!r} of type {type(output_size)}"
            )
        super().__init__(**kwargs)
        self.rank, self.mode = rank, mode
        self.output_size = per_axis("output_size", output_size, rank)
        self.data_format = data_format_of(data_format)
        self.built = True

    def _first_axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def call(self, inputs):
        _check_rank(self, inputs.shape, self.rank)
        out = inputs
        # Both reductions are separable: pooling one axis after another pools each box.
        for k, size in enumerate(self.output_size):
            axis = self._first_axis() + k
            bins = adaptive_bins(inputs.shape[axis], size)
            if self.mode == "average":
                weights = np.zeros((size, inputs.shape[axis]), out.dtype)
                for i, (start, end) in enumerate(bins):
                    weights[i, start:end] = 1.0 / (end - start)
                out = ops.moveaxis(ops.tensordot(out, weights, axes=[[axis], [1]]), -1, axis)
            else:
                index = [slice(None)] * out.ndim
                pieces = []
                for start, end in bins:
                    index[axis] = slice(start, end)
                    pieces.append(ops.max(out[tuple(index)], axis=axis))
                out = ops.stack(pieces, axis=axis)
        return out

    def compute_output_shape(self, input_shape):
        """The output shape: the batch and channel sizes of `input_shape` with `output_size`.

        Args:
            input_shape: The inputs' shape, batch axis included.

        Returns:
            A tuple.
        """
        _check_rank(self, input_shape, self.rank)
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "data_format": self.data_format}


def _adaptive_class(name, rank, mode):
    def __init__(self, output_size, data_format=None, **kwargs):
        _AdaptivePooling.__init__(self, rank, mode, output_size, data_format, **kwargs)

    what = "largest value" if mode == "max" else "mean"
    doc = f"""The {what} of each of `output_size` bins over {rank} spatial axes, as Keras's `{name}`
    (window i of an axis of n positions pooled to m covers `floor(i n / m)` to `ceil((i + 1) n / m)`).

    Args:
        output_size: An int or {rank} ints: the output's spatial size.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """
    return type(name, (_AdaptivePooling,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


AdaptiveMaxPooling1D = _adaptive_class("AdaptiveMaxPooling1D", 1, "max")
AdaptiveMaxPooling2D = _adaptive_class("AdaptiveMaxPooling2D", 2, "max")
AdaptiveMaxPooling3D = _adaptive_class("AdaptiveMaxPooling3D", 3, "max")
AdaptiveAveragePooling1D = _adaptive_class("AdaptiveAveragePooling1D", 1, "average")
AdaptiveAveragePooling2D = _adaptive_class("AdaptiveAveragePooling2D", 2, "average")
AdaptiveAveragePooling3D = _adaptive_class("AdaptiveAveragePooling3D", 3, "average")
