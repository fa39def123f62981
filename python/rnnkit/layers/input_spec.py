"""`InputSpec`: what a layer accepts as its first input (rank, sizes, dtype), checked on every call."""

import numpy as np

from rnnkit import tree


def _dtype_name(dtype):
    return np.dtype(dtype).name


class InputSpec:
    """The rank, sizes and dtype a layer's first input must have, as Keras's `InputSpec`.

    A layer that sets `self.input_spec` (one spec, or a list or other structure of specs, one per
    input) has each call's first argument checked against it before it builds or computes; a
    mismatch raises a ValueError naming the layer, the input and what was expected and found.
    None entries in `shape` and `axes` accept any size.

    Args:
        dtype: Expected dtype of the input, or None for any.
        shape: Expected shape, batch axis included (None for any size of an axis); sets `ndim`.
        ndim: Expected rank.
        max_ndim: Largest accepted rank.
        min_ndim: Smallest accepted rank.
        axes: Dict of `{axis: size}` the input must have (negative axes count from the end).
        allow_last_axis_squeeze: Whether a last axis of size 1 may be present in one of the
            input and `shape` but not the other (the rank check then allows it too).
        name: The key of this input when inputs are passed as a dict.
        optional: Whether the input may be None.
    """

    def __init__(
        self,
        dtype=None,
        shape=None,
        ndim=None,
        max_ndim=None,
        min_ndim=None,
        axes=None,
        allow_last_axis_squeeze=False,
        name=None,
        optional=False,
    ):
        self.dtype = None if dtype is None else _dtype_name(dtype)
        if shape is not None:
            self.shape = tuple(None if d is None else int(d) for d in shape)
            self.ndim = len(self.shape)
        else:
            self.shape = None
            self.ndim = ndim
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.name = name
        self.optional = optional
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        try:
            self.axes = {int(k): v for k, v in (axes or {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise TypeError(f"Argument `axes` must be a dict with integer keys. Received: axes={axes}") from None
        top = self.ndim if self.ndim is not None else self.max_ndim
        if self.axes and top is not None and max(self.axes) > top - 1:
            raise ValueError(f"Axis {max(self.axes)} is greater than the maximum allowed value: {top - 1}")

    def __repr__(self):
        parts = [
            f"{key}={value}"
            for key, value in (
                ("dtype", self.dtype),
                ("shape", self.shape),
                ("ndim", self.ndim),
                ("max_ndim", self.max_ndim),
                ("min_ndim", self.min_ndim),
                ("axes", self.axes),
            )
            if value
        ]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self):
        """The spec's arguments (Keras's keys)."""
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "ndim": self.ndim,
            "max_ndim": self.max_ndim,
            "min_ndim": self.min_ndim,
            "axes": self.axes,
            "optional": self.optional,
        }

    @classmethod
    def from_config(cls, config):
        """An InputSpec from `get_config()`'s output."""
        return cls(**config)


def assert_input_compatibility(input_spec, inputs, layer_name):
    """Raises a ValueError if `inputs` do not meet `input_spec` (a spec or a structure of specs).

    Args:
        input_spec: An InputSpec, a structure of them, or None (nothing to check).
        inputs: The layer's first call argument: a tensor, a structure of them, or a dict whose
            keys are the specs' names.
        layer_name: The layer's name, for the messages.

    Raises:
        ValueError: On a missing input, a wrong count, rank, dtype or size.
    """
    if not input_spec:
        return
    specs = tree.flatten(input_spec)
    if isinstance(inputs, dict) and all(spec.name for spec in specs):
        missing = [spec.name for spec in specs if spec.name not in inputs]
        if missing:
            raise ValueError(
                f'Missing data for input "{missing[0]}". You passed a data dictionary with keys '
                f"{list(inputs)}. Expected the following keys: {[spec.name for spec in specs]}"
            )
        inputs = [inputs[spec.name] for spec in specs]
    flat = tree.flatten(inputs)
    if len(flat) != len(specs):
        raise ValueError(
            f'Layer "{layer_name}" expects {len(specs)} input(s), but it received {len(flat)} input tensors.'
        )
    for index, (x, spec) in enumerate(zip(flat, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        if not hasattr(x, "shape"):
            raise ValueError(
                f"Inputs to a layer should be tensors. Got {x!r:.80} as input {index} of layer '{layer_name}'."
            )
        shape = tuple(x.shape)
        where = f"Input {index} with name '{spec.name}' of layer '{layer_name}' is incompatible with the layer"
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and len(shape) != spec.ndim:
            raise ValueError(
                f"{where}: expected ndim={spec.ndim}, found ndim={len(shape)}. Full shape received: {shape}"
            )
        if spec.max_ndim is not None and len(shape) > spec.max_ndim:
            raise ValueError(f"{where}: expected max_ndim={spec.max_ndim}, found ndim={len(shape)}")
        if spec.min_ndim is not None and len(shape) < spec.min_ndim:
            raise ValueError(
                f"{where}: expected min_ndim={spec.min_ndim}, found ndim={len(shape)}. Full shape received: {shape}"
            )
        if spec.dtype is not None and _dtype_name(x.dtype) != spec.dtype:
            raise ValueError(f"{where}: expected dtype={spec.dtype}, found dtype={_dtype_name(x.dtype)}")
        for axis, size in spec.axes.items():
            if size is not None and -len(shape) <= axis < len(shape) and shape[axis] not in (size, None):
                raise ValueError(
                    f"{where}: expected axis {axis} of input shape to have value {size}, but received input "
                    f"with shape {shape}"
                )
        if spec.shape is not None:
            want, got = spec.shape, shape
            if spec.allow_last_axis_squeeze:
                got = got[:-1] if got and got[-1] == 1 else got
                want = want[:-1] if want and want[-1] == 1 else want
            if any(w is not None and g is not None and w != g for w, g in zip(want, got)):
                raise ValueError(f"{where}: expected shape={spec.shape}, found shape={shape}")
