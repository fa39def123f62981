"""The layers that crop, pad and upsample the spatial axes of `(batch, *spatial, channels)`
inputs, in 1, 2 and 3 dimensions: `Cropping1D/2D/3D`, `ZeroPadding1D/2D/3D` and
`UpSampling1D/2D/3D` (nearest, and bilinear for 2D as Keras's). One N-d class of each does the
work through differentiable ops (slicing, `pad`, `repeat`, `tensordot`); none carries a mask,
as in Keras."""

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer
from rnnkit.ops.conv import data_format_of, per_axis

_ORDINALS = ("1st", "2nd", "3rd")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(name, value):
    """An int or a pair of ints >= 0 as a pair."""
    pair = (value, value) if _is_int(value) else value
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_int(v) and v >= 0 for v in pair):
        raise ValueError(f"{name}: expected an int >= 0 or a pair of them, received {value!r}")
    return tuple(int(v) for v in pair)


def _pairs(name, value, rank):
    """Keras's N-d `cropping`/`padding`: an int for every side, or `rank` entries, each an int
    (both sides of that axis) or a `(start, end)` pair; as a tuple of `rank` pairs."""
    if _is_int(value):
        return (_pair(name, value),) * rank
    if not isinstance(value, (list, tuple)) or len(value) != rank:
        raise ValueError(
            f"{name}: expected an int >= 0, or {rank} entries (one per spatial axis) each an int >= 0 or a "
            f"(start, end) pair of them, received {value!r}"
        )
    return tuple(_pair(f"{_ORDINALS[i]} entry of {name}", v) for i, v in enumerate(value))


class _SpatialReshaping(Layer):
    """What the cropping, padding and upsampling layers share: the rank of their inputs and where
    their spatial axes are.

    Args:
        rank: Spatial axes (1, 2 or 3).
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.data_format = data_format_of(data_format)
        self.built = True

    def _spatial_axes(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim={self.rank + 2}, "
                f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            )
        first = 2 if self.data_format == "channels_first" else 1
        return range(first, first + self.rank)

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of shape `input_shape` (None for unknown sizes), as Keras's.

        Args:
            input_shape: The inputs' shape, batch axis included.

        Returns:
            A tuple, None where the size depends on an unknown input size.
        """
        shape = list(input_shape)
        for i, axis in enumerate(self._spatial_axes(input_shape)):
            shape[axis] = None if shape[axis] is None else self._output_length(i, shape[axis])
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _Cropping(_SpatialReshaping):
    """Removes `start` positions at the start and `end` at the end of each spatial axis.

    Args:
        rank: Spatial axes (1, 2 or 3).
        cropping: An int (every side), or `rank` entries each an int or a `(start, end)` pair.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, cropping, data_format=None, **kwargs):
        super().__init__(rank, data_format, **kwargs)
        self._widths = _pairs("cropping", cropping, rank)
        self.cropping = self._widths

    def _output_length(self, axis, size):
        return size - sum(self._widths[axis])

    def call(self, inputs):
        key = [slice(None)] * inputs.ndim
        for axis, (start, end) in zip(self._spatial_axes(inputs.shape), self._widths):
            if start + end >= inputs.shape[axis]:
                raise ValueError(
                    f"`cropping` of layer {self.name} must be smaller than the input length on each spatial "
                    f"axis. Received: inputs.shape={tuple(inputs.shape)}, cropping={self.cropping}"
                )
            key[axis] = slice(start, inputs.shape[axis] - end)
        return inputs[tuple(key)]

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


class _ZeroPadding(_SpatialReshaping):
    """Adds `start` zeros at the start and `end` at the end of each spatial axis.

    Args:
        rank: Spatial axes (1, 2 or 3).
        padding: An int (every side), or `rank` entries each an int or a `(start, end)` pair.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, padding, data_format=None, **kwargs):
        super().__init__(rank, data_format, **kwargs)
        self._widths = _pairs("padding", padding, rank)
        self.padding = self._widths

    def _output_length(self, axis, size):
        return size + sum(self._widths[axis])

    def call(self, inputs):
        widths = [(0, 0)] * inputs.ndim
        for axis, pair in zip(self._spatial_axes(inputs.shape), self._widths):
            widths[axis] = pair
        return ops.pad(inputs, widths)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def _linear_resize_matrix(size, factor, dtype):
    """The `(size * factor, size)` matrix of bilinear upsampling along one axis, with
    half-pixel centres and the edges clamped (Keras's `ops.image.resize`, "bilinear")."""
    source = np.clip((np.arange(size * factor) + 0.5) / factor - 0.5, 0, size - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    matrix = np.zeros((size * factor, size), dtype)
    rows = np.arange(size * factor)
    matrix[rows, low] += 1 - weight
    matrix[rows, high] += weight
    return matrix


class _UpSampling(_SpatialReshaping):
    """Upsamples each spatial axis by its factor: repeats each position ("nearest") or
    interpolates linearly between neighbours ("bilinear").

    Args:
        rank: Spatial axes (1, 2 or 3).
        size: An int or `rank` ints, the factors.
        data_format: "channels_last" (None) or "channels_first".
        interpolation: "nearest" or "bilinear".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, size, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(rank, data_format, **kwargs)
        self._factors = per_axis("size", size, rank)
        self.size = self._factors
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in ("nearest", "bilinear"):
            raise ValueError(
                "interpolation: expected 'nearest' or 'bilinear' (the ones rnnkit implements), received "
                f"{interpolation!r}"
            )

    def _output_length(self, axis, size):
        return size * self._factors[axis]

    def call(self, inputs):
        outputs = inputs
        for axis, factor in zip(self._spatial_axes(inputs.shape), self._factors):
            if self.interpolation == "nearest":
                outputs = ops.repeat(outputs, factor, axis=axis)
            else:
                dtype = np.float64 if inputs.dtype == np.float64 else np.float32
                matrix = _linear_resize_matrix(inputs.shape[axis], factor, dtype)
                outputs = ops.moveaxis(ops.tensordot(outputs, matrix, axes=([axis], [1])), -1, axis)
        return outputs

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class Cropping1D(_Cropping):
    """Removes `cropping[0]` steps at the start and `cropping[1]` at the end of axis 1 of
    `(batch, steps, features)` inputs.

    Args:
        cropping: An int (both ends) or a pair `(start, end)`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(1, [cropping], **kwargs)
        self.cropping = self._widths[0]

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class Cropping2D(_Cropping):
    """Removes rows and columns at the edges of `(batch, rows, cols, channels)` (channels_last)
    inputs.

    Args:
        cropping: An int (every side), two ints `(rows, cols)` (both ends of each axis), or
            `((top, bottom), (left, right))`.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(2, cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Removes positions at the edges of the three spatial axes of `(batch, d1, d2, d3,
    channels)` (channels_last) inputs.

    Args:
        cropping: An int (every side), three ints (both ends of each axis), or three
            `(start, end)` pairs.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(3, cropping, data_format, **kwargs)


class ZeroPadding1D(_ZeroPadding):
    """Adds `padding[0]` zero steps at the start and `padding[1]` at the end of the time axis.

    Args:
        padding: An int (both ends) or a pair `(start, end)`.
        data_format: "channels_last" (`(batch, steps, features)`, the default) or
            "channels_first" (`(batch, features, steps)`).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(1, [padding], data_format, **kwargs)
        self.padding = self._widths[0]


class ZeroPadding2D(_ZeroPadding):
    """Adds rows and columns of zeros at the edges of `(batch, rows, cols, channels)`
    (channels_last) inputs.

    Args:
        padding: An int (every side), two ints `(rows, cols)` (both ends of each axis), or
            `((top, bottom), (left, right))`.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(2, padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Adds zeros at the edges of the three spatial axes of `(batch, d1, d2, d3, channels)`
    (channels_last) inputs.

    Args:
        padding: An int (every side), three ints (both ends of each axis), or three
            `(start, end)` pairs.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(3, padding, data_format, **kwargs)


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times along the time axis of `(batch, steps, features)` inputs.

    Args:
        size: The repeat count (positive int).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, size=2, **kwargs):
        if not _is_int(size):
            raise TypeError(f"Expected an integer value for `size`, got {type(size).__name__}.")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: size={size}")
        super().__init__(1, size, **kwargs)
        self.size = int(size)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class UpSampling2D(_UpSampling):
    """Upsamples the rows and columns of `(batch, rows, cols, channels)` (channels_last) inputs.

    Args:
        size: An int or two ints, the row and column factors.
        data_format: "channels_last" (None) or "channels_first".
        interpolation: "nearest" (repeats each position) or "bilinear" (half-pixel centres,
            edges clamped, as Keras's `ops.image.resize`).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(2, size, data_format, interpolation, **kwargs)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Repeats each position of the three spatial axes of `(batch, d1, d2, d3, channels)`
    (channels_last) inputs by its factor.

    Args:
        size: An int or three ints, the factors.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(3, size, data_format, **kwargs)
