"""Weight regularizers with Keras 3's names and configs; gradient tapes differentiate them."""

import math

import numpy as np

from rnnkit import ops
from rnnkit._registry import Registry

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "deserialize",
    "get",
    "serialize",
]


def _factor(value, name):
    """Checks that a penalty factor is a finite non-negative number and returns it as a float."""
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value < 0:
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float. Received: {name}={value!r}"
        )
    return float(value)


class Regularizer:
    """Base class: a regularizer maps a weight to a scalar penalty added to the loss."""

    def __call__(self, x):
        """Computes the penalty.

        Args:
            x: A tensor-like, usually a Variable.

        Returns:
            A scalar Tensor of the dtype of `x`.
        """
        return ops.zeros((), ops.convert_to_tensor(x).dtype)

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        """Creates a regularizer from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new regularizer.
        """
        return cls(**config)


class L1(Regularizer):
    """Penalty `l1 * sum(|x|)`.

    Args:
        l1: Non-negative factor (None means 0.01).
    """

    def __init__(self, l1=0.01):
        self.l1 = _factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """Penalty `l2 * sum(x**2)`.

    Args:
        l2: Non-negative factor (None means 0.01).
    """

    def __init__(self, l2=0.01):
        self.l2 = _factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """Penalty `l1 * sum(|x|) + l2 * sum(x**2)`.

    Args:
        l1: Non-negative L1 factor (None means 0).
        l2: Non-negative L2 factor (None means 0).
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1 or 0.0, "l1")
        self.l2 = _factor(l2 or 0.0, "l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        penalty = ops.zeros((), x.dtype)
        if self.l1:
            penalty = penalty + L1(self.l1)(x)
        if self.l2:
            penalty = penalty + L2(self.l2)(x)
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalises non-orthogonal rows (or columns) of a matrix.

    The penalty is `factor` times the mean absolute cosine between distinct rows (or columns).

    Args:
        factor: Non-negative factor.
        mode: "rows" or "columns".
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(
                f'Invalid value for argument `mode`. Expected one of {{"rows", "columns"}}. Received: mode={mode}'
            )
        self.mode = mode

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={x.shape}")
        if self.mode == "columns":
            x = ops.transpose(x)
        # Clamping the squared norm, not the norm, keeps the gradient finite for zero rows.
        squared_norms = ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True), 1e-14)
        unit = x / ops.sqrt(squared_norms)
        size = x.shape[0]
        off_diagonal = ops.matmul(unit, ops.transpose(unit)) * (1 - np.eye(size, dtype=x.dtype))
        pairs = size * (size - 1) / 2
        return self.factor * 0.5 * ops.sum(ops.abs(off_diagonal)) / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


_registry = Registry(
    "regularizer",
    "keras.regularizers",
    [Regularizer, L1, L2, L1L2, OrthogonalRegularizer],
    # Keras 3 itself accepts "l1l2" (the snake_case name); its documentation (and Keras 2) say "l1_l2".
    aliases={"l1_l2": L1L2},
)


def serialize(regularizer):
    """Returns a regularizer's config as Keras writes it.

    Args:
        regularizer: A Regularizer.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(regularizer)


def deserialize(config):
    """Creates a regularizer from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "l2", or a dict with "class_name" and "config".

    Returns:
        A new Regularizer.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a regularizer identifier as `keras.regularizers.get` does.

    Args:
        identifier: None, a name ("l1", "l2", "l1_l2", "L1L2", "orthogonal_regularizer", ...), a
            config dict, a Regularizer class or instance, or a callable returning a penalty.

    Returns:
        A regularizer (a new instance for names, dicts and classes), or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message lists the names.
    """
    return _registry.get(identifier)
