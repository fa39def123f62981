"""`Input` and the `InputLayer` that stands for it in models."""

import numpy as np

from rnnkit.layers.layer import Layer
from rnnkit.symbolic import KerasTensor, Node


class InputLayer(Layer):
    """The entry point of a functional model: holds the symbolic input tensor.

    Args:
        shape: Shape without the batch axis (None for unknown sizes).
        batch_size: Optional fixed batch size.
        dtype: The input's dtype (float32 by default).
        batch_shape: Shape with the batch axis, instead of `shape` and `batch_size`.
        name: Optional name.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input: expected `shape` or `batch_shape`, received neither.")
            if isinstance(shape, int):
                shape = (shape,)
            if not isinstance(shape, (list, tuple)):
                raise TypeError(
                    f"Input: shape expected a tuple of integers (None for unknown sizes), received {shape!r}."
                )
            batch_shape = (batch_size, *tuple(shape))
        if not isinstance(batch_shape, (list, tuple)):
            raise TypeError(
                f"Input: batch_shape expected a tuple of integers (None for unknown sizes), received {batch_shape!r}."
            )
        for d in batch_shape:
            if d is not None and (isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 0):
                raise ValueError(
                    f"Input: every size of the shape expected a non-negative integer or None, received {d!r} in "
                    f"batch shape {tuple(batch_shape)}."
                )
        self.batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        tensor = KerasTensor(self.batch_shape, self.dtype, name=self.name)
        tensor.input_layer = self
        # A call without inputs whose output is the tensor: `self.output` gives it, as in Keras.
        self.inbound_nodes.append(Node(self, (), {}, tensor))
        self.built = True

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):  # noqa: N802 (Keras's name)
    """A symbolic input tensor for the functional API, as `keras.Input`.

    Args:
        shape: Shape without the batch axis, e.g. `(None, 28)` for sequences of any length.
        batch_size: Optional fixed batch size.
        dtype: The input's dtype (float32 by default).
        batch_shape: Shape with the batch axis, instead of `shape` and `batch_size`.
        name: Optional name.

    Returns:
        A KerasTensor.
    """
    return InputLayer(shape, batch_size, dtype, batch_shape, name).output
