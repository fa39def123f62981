"""Pooling layers: `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D` (the Rust core's window
loops, `rk.ops.max_pool`/`average_pool`), and `GlobalMaxPooling1D/2D/3D` and
`GlobalAveragePooling1D/2D/3D` (reductions over the spatial axes; `GlobalAveragePooling1D`
averages only the unmasked steps, as Keras's). Keras's arguments, defaults and numbers."""

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
