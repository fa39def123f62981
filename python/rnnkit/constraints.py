"""Weight constraints with Keras 3's names and configs: projections applied after updates.

Constraints map a weight's numpy value to the constrained value; they are not differentiated.
"""

import numpy as np

from rnnkit._registry import Registry

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "serialize",
]

# Keras's fuzz factor (keras.config.epsilon()), added to norms before dividing by them.
_EPSILON = 1e-7


def _norms(w, axis):
    """The L2 norms of `w` along `axis` (an int or a list/tuple of ints), keeping dims."""
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class: a constraint maps a weight array to its constrained value (by default, itself)."""

    def __call__(self, w):
        """Applies the constraint.

        Args:
            w: The weight, a numpy array (or array-like).

        Returns:
            The constrained numpy array.
        """
        return np.asarray(w)

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Creates a constraint from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new constraint.
        """
        return cls(**config)


class MaxNorm(Constraint):
    """Rescales the weights incident to each unit to a norm of at most `max_value`.

    Args:
        max_value: The largest norm.
        axis: The axis (or list of axes) the norms are taken over: 0 for a Dense kernel
            `(input_dim, units)` constrains each unit's incoming weights.
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        return w * (np.clip(norms, 0, self.max_value) / (_EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Replaces negative weights by 0."""

    def __call__(self, w):
        return np.maximum(np.asarray(w), 0)


class UnitNorm(Constraint):
    """Rescales the weights incident to each unit to unit norm.

    Args:
        axis: The axis (or list of axes) the norms are taken over.
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        return w / (_EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the norm of the weights incident to each unit into `[min_value, max_value]`.

    The new norm is `rate * clip(norm, min_value, max_value) + (1 - rate) * norm`.

    Args:
        min_value: The smallest norm.
        max_value: The largest norm.
        rate: 1.0 enforces the bounds strictly; smaller rates move towards them gradually.
        axis: The axis (or list of axes) the norms are taken over.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))

    def get_config(self):
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


_registry = Registry("constraint", "keras.constraints", [Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm])


def serialize(constraint):
    """Returns a constraint's config as Keras writes it.

    Args:
        constraint: A Constraint.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(constraint)


def deserialize(config):
    """Creates a constraint from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "max_norm", or a dict with "class_name" and "config".

    Returns:
        A new Constraint.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a constraint identifier as `keras.constraints.get` does.

    Args:
        identifier: None, a name ("max_norm", "MaxNorm", "non_neg", "unit_norm", "min_max_norm"),
            a config dict, a Constraint class or instance, or a callable.

    Returns:
        A constraint (a new instance for names, dicts and classes), or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message lists the names.
    """
    return _registry.get(identifier)
