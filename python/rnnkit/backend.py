"""Keras 3's `keras.backend` functions: the default float type, the fuzz factor, the image data
format, dtype helpers, unique ids, `clear_session`.

rnnkit is its own backend: `backend()` is "rnnkit". What this backend cannot change is refused
with a message instead of being ignored: images are channels_last by default (pass
`data_format="channels_first"` to a layer instead), and the fuzz factor is fixed at 1e-7.
"""

import numpy as np

from rnnkit import _naming, dtype_policies
from rnnkit.symbolic import KerasTensor
from rnnkit.utils import clear_session

__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "is_float_dtype",
    "is_int_dtype",
    "is_keras_tensor",
    "result_type",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "standardize_dtype",
]

_EPSILON = 1e-7


def backend():
    """The name of the backend: "rnnkit"."""
    return "rnnkit"


def floatx():
    """The default float type of layers and weights ("float32" unless `set_floatx` changed it)."""
    return dtype_policies._global["floatx"]


def set_floatx(value):
    """Sets the default float type of the layers made afterwards.

    Args:
        value: "float32" or "float64" (the recurrent core's types; "mixed_bfloat16" is a dtype
            policy: `rk.config.set_dtype_policy`).
    """
    if value not in ("float32", "float64"):
        raise ValueError(f"value: expected 'float32' or 'float64', received {value!r}")
    dtype_policies._global["floatx"] = value


def epsilon():
    """The fuzz factor of the losses and metrics, 1e-7."""
    return _EPSILON


def set_epsilon(value):
    """Accepts only 1e-7: the fuzz factor is fixed in rnnkit's losses, metrics and layers.

    Args:
        value: The fuzz factor.
    """
    if value != _EPSILON:
        raise ValueError(f"value: rnnkit's fuzz factor is fixed at {_EPSILON}, received {value!r}")


def image_data_format():
    """The default data format of the convolution, pooling and reshaping layers: "channels_last"."""
    return "channels_last"


def set_image_data_format(data_format):
    """Accepts only "channels_last", the layers' default (a layer takes `data_format=` itself).

    Args:
        data_format: The default data format.
    """
    if data_format != "channels_last":
        raise ValueError(
            "data_format: rnnkit's layers default to 'channels_last'; pass data_format='channels_first' to each "
            f"layer instead, received {data_format!r}"
        )


def standardize_dtype(dtype):
    """A dtype's canonical name ("float32" by default for None).

    Args:
        dtype: A dtype, its name, or None.
    """
    return floatx() if dtype is None else np.dtype(getattr(dtype, "name", dtype)).name


def result_type(*dtypes):
    """The dtype rnnkit's ops give for operands of `dtypes`: numpy's promotion (Keras follows
    JAX's, which keeps float32 beside int32 or float64), `floatx()` for none.

    Args:
        *dtypes: Dtypes or their names.
    """
    return np.result_type(*dtypes).name if dtypes else floatx()


def is_float_dtype(dtype):
    """Whether `dtype` is a floating-point type.

    Args:
        dtype: A dtype or its name.
    """
    return np.dtype(standardize_dtype(dtype)).kind == "f"


def is_int_dtype(dtype):
    """Whether `dtype` is an integer type.

    Args:
        dtype: A dtype or its name.
    """
    return np.dtype(standardize_dtype(dtype)).kind in "iu"


def is_keras_tensor(x):
    """Whether `x` is a symbolic tensor of a functional model (an `Input` or a layer's output on one).

    Args:
        x: Anything.
    """
    return isinstance(x, KerasTensor)


def get_uid(prefix=""):
    """1 the first time for `prefix`, then 2, 3, ... until `clear_session`: the counts that name
    layers ("lstm", "lstm_1", ... take uids 1, 2, ...).

    Args:
        prefix: The name the count is kept for.
    """
    return _naming.next_uid(prefix)
