"""`Permute` and the layers that reshape the time axis of `(batch, steps, features)` inputs:
`Cropping1D`, `ZeroPadding1D` and `UpSampling1D`. None of them carries a mask, as in Keras."""

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer


def _pair(name, value):
    """An int or a pair of ints >= 0 as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in pair)
    ):
        raise ValueError(f"{name}: expected an int >= 0 or a pair of them, received {value!r}")
    return tuple(int(v) for v in pair)


def _check_rank3(layer, inputs):
    if inputs.ndim != 3:
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible with the layer: expected ndim=3, found "
            f"ndim={inputs.ndim}. Full shape received: {tuple(inputs.shape)}"
        )


class Permute(Layer):
    """Permutes the non-batch axes: `dims=(2, 1)` swaps steps and features.

    Args:
        dims: A permutation of 1..n (the batch axis 0 stays first).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dims, (list, tuple)) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` must be "
                f"consecutive and start from 1. Received dims={dims!r}"
            )
        self.dims = tuple(int(d) for d in dims)
        self.built = True

    def call(self, inputs):
        if inputs.ndim != len(self.dims) + 1:
            raise ValueError(
                f"Layer {self.name}: expected inputs of rank {len(self.dims) + 1}, received shape {tuple(inputs.shape)}"
            )
        return ops.transpose(inputs, (0, *self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Cropping1D(Layer):
    """Removes `cropping[0]` steps at the start and `cropping[1]` at the end of axis 1.

    Args:
        cropping: An int (both ends) or a pair `(start, end)`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pair("cropping", cropping)
        self.built = True

    def call(self, inputs):
        _check_rank3(self, inputs)
        start, end = self.cropping
        if start + end >= inputs.shape[1]:
            raise ValueError(
                "`cropping` parameter of `Cropping1D` layer must be smaller than the input length. "
                f"Received: inputs.shape={tuple(inputs.shape)}, cropping={self.cropping}"
            )
        return ops.take(inputs, np.arange(start, inputs.shape[1] - end), axis=1)

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


class ZeroPadding1D(Layer):
    """Adds `padding[0]` zero steps at the start and `padding[1]` at the end of the time axis.

    Args:
        padding: An int (both ends) or a pair `(start, end)`.
        data_format: "channels_last" (`(batch, steps, features)`, the default) or
            "channels_first" (`(batch, features, steps)`).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair("padding", padding)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', received {data_format!r}")
        self.data_format = data_format
        self.built = True

    def call(self, inputs):
        _check_rank3(self, inputs)
        widths = (
            [(0, 0), self.padding, (0, 0)] if self.data_format == "channels_last" else [(0, 0), (0, 0), self.padding]
        )
        return ops.pad(inputs, widths)

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding), "data_format": self.data_format}


class UpSampling1D(Layer):
    """Repeats each step `size` times along the time axis.

    Args:
        size: The repeat count (positive int).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"Expected an integer value for `size`, got {type(size).__name__}.")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: size={size}")
        self.size = int(size)
        self.built = True

    def call(self, inputs):
        _check_rank3(self, inputs)
        return ops.repeat(inputs, self.size, axis=1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}
