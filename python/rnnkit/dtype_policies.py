"""Dtype policies in Keras's spelling: which dtype a layer's weights have and which it computes in.

A NumPy dtype's name ("float32", the default, "float64", ...) computes in that dtype. "mixed_bfloat16" keeps float32
weights, states and outputs (NumPy has no bfloat16) and runs the recurrent layers' matrix
products with operands rounded to bfloat16 and float32 sums, as Keras's mixed policy and oneDNN's
bf16 RNNs do: on AMX tiles where the CPU has them (Intel Xeon since Sapphire Rapids), else
emulated (bfloat16's numbers at float32's speed; `rk.config.bfloat16_products()` says which, and
a warning says so once). Other layers compute in float32 under it.

    rk.config.set_dtype_policy("mixed_bfloat16")   # every layer made afterwards
    layer = rk.layers.LSTM(64, dtype="mixed_bfloat16")   # one layer
"""

import threading
import warnings

import numpy as np

from rnnkit import _core

# The mixed policies: name -> (compute dtype, variable dtype). Any other policy is a NumPy dtype's
# name, both dtypes that one.
_MIXED = {"mixed_bfloat16": ("bfloat16", "float32")}
_global = {"policy": None, "floatx": "float32"}
_warned = threading.Event()


class DTypePolicy:
    """A named dtype policy: `DTypePolicy("mixed_bfloat16")`.

    Args:
        name: "mixed_bfloat16", or a NumPy dtype ("float32", "float64", "int32", ...) for
            both the weights and the computations.

    Raises:
        ValueError: For a name that is neither (e.g. "bfloat16": NumPy has no such dtype).
    """

    def __init__(self, name="float32"):
        if isinstance(name, DTypePolicy):
            name = name.name
        if name not in _MIXED:
            try:
                dtype = np.dtype(name)
            except TypeError:
                dtype = None
            # ml_dtypes (which JAX imports) registers bfloat16 and the float8s with NumPy, as
            # kind "V": rnnkit computes none of them.
            if dtype is None or dtype.kind == "V":
                raise ValueError(
                    f"dtype: expected a NumPy dtype's name, 'mixed_bfloat16' or a DTypePolicy, received {name!r}"
                )
            name = dtype.name
        self._name = name

    @property
    def name(self):
        """The policy's name, as given to `DTypePolicy`."""
        return self._name

    @property
    def compute_dtype(self):
        """The computations' dtype: "float32", "float64" or "bfloat16" (the recurrent products')."""
        return _MIXED.get(self._name, (self._name,))[0]

    @property
    def variable_dtype(self):
        """The dtype of the weights, states and outputs."""
        return _MIXED.get(self._name, (self._name, self._name))[1]

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        """The policy of `get_config()`'s dict."""
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


def get(identifier=None):
    """The policy `identifier` names: None (the global policy), a name, a NumPy dtype, a
    `DTypePolicy`, or Keras's serialised `{"class_name": "DTypePolicy", "config": {...}}`.

    Raises:
        ValueError: For an unknown name.
        TypeError: For anything else.
    """
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict) and isinstance(identifier.get("config"), dict):
        return DTypePolicy(identifier["config"].get("name", "float32"))
    try:
        policy = DTypePolicy(identifier)
    except ValueError:
        if isinstance(identifier, str):
            raise
        raise TypeError(
            f"dtype: expected a policy name, a NumPy dtype or a DTypePolicy, received {identifier!r}"
        ) from None
    if policy.compute_dtype == "bfloat16":
        _warn_if_emulated()
    return policy


def set_dtype_policy(policy):
    """Sets the policy of the layers made afterwards (without a `dtype` of their own)."""
    _global["policy"] = None if policy is None else get(policy)


def dtype_policy():
    """The global policy: `keras.backend.floatx()` ("float32") unless `set_dtype_policy` said
    otherwise."""
    return _global["policy"] or DTypePolicy(_global["floatx"])


def bfloat16_products():
    """How "mixed_bfloat16" computes here: "amx" (the CPU's matrix tiles) or "emulated" (the
    same rounding, at float32's speed, on CPUs without AMX)."""
    return _core.bfloat16_products()


def _warn_if_emulated():
    if bfloat16_products() != "amx" and not _warned.is_set():
        _warned.set()
        warnings.warn(
            "mixed_bfloat16: this CPU has no AMX tiles, so the recurrent layers' bfloat16 products are "
            "emulated (bfloat16's rounding at float32's speed); float32 is as fast and more accurate here.",
            UserWarning,
            stacklevel=3,
        )
