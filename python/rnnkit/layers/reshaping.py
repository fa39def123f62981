"""Layers that only rearrange values: `Flatten`, `Reshape`, `RepeatVector`, `Permute`."""

import math

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer
from rnnkit.ops.core import op


class Flatten(Layer):
    """Flattens every axis but the batch axis: `(batch, ...)` -> `(batch, prod(...))`.

    Args:
        data_format: "channels_last" (the default) or "channels_first"; with the latter the
            channel axis 1 is moved last before flattening, as Keras orders the features.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        data_format = "channels_last" if data_format is None else str(data_format).lower()
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(
                "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                f"Received: data_format={data_format}"
            )
        self.data_format = data_format

    def call(self, inputs):
        if inputs.ndim < 1:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected min_ndim=1, found ndim=0."
            )
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ops.transpose(inputs, (0, *range(2, inputs.ndim), 1))
        return ops.reshape(inputs, (inputs.shape[0], math.prod(inputs.shape[1:])))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample: `(batch, ...)` -> `(batch, *target_shape)`.

    Args:
        target_shape: The shape without the batch axis; one entry may be -1, inferred from
            the input's size.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        if any(isinstance(d, (int, np.integer)) and d < -1 for d in target_shape) or target_shape.count(-1) > 1:
            raise ValueError(
                "Each dimension in `target_shape` must be a non-negative integer, with at most one "
                f"`-1` for an unknown dimension. Received: target_shape={target_shape}."
            )
        self.target_shape = target_shape
        self.built = True

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0], *self.target_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


@op()
def _repeat_vector(x, n):
    """`(batch, features)` -> `(batch, n, features)` as one op; the gradient sums the `n` copies."""
    return np.repeat(x[:, np.newaxis], n, axis=1), lambda grad: grad.sum(axis=1)


class RepeatVector(Layer):
    """Repeats a batch of vectors `n` times: `(batch, features)` -> `(batch, n, features)`.

    Args:
        n: The number of repetitions (a positive int).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        if n <= 0:
            raise ValueError(f"Argument `n` should be a positive integer. Received: n={n}")
        self.n = int(n)

    def call(self, inputs):
        if inputs.ndim != 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim=2, "
                f"found ndim={inputs.ndim}."
            )
        return _repeat_vector(inputs, self.n)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


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
