"""Weight initializers, with Keras 3's names, arguments and configs.

Seeded random initializers draw from `np.random.default_rng([seed, 0])`, the stream Keras's numpy
backend uses, so they return the numbers Keras returns there. As in Keras, an initializer returns
the same values on every call: an unseeded one draws its seed once, when it is created, from the
package's generator (`rnnkit.utils.set_random_seed` makes that reproducible).
"""

import math

import numpy as np

from rnnkit import random
from rnnkit._registry import Registry

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "IdentityInitializer",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "deserialize",
    "get",
    "serialize",
]


def _dtype(dtype):
    return np.dtype(dtype or "float32")


class Initializer:
    """Base class: an initializer is called with a shape and returns a numpy array of it.

    Subclasses implement `__call__` and, when their constructor takes arguments, `get_config`.
    """

    def __call__(self, shape, dtype=None):
        """Returns a new array.

        Args:
            shape: A tuple of ints.
            dtype: Optional numpy dtype, float32 by default.

        Returns:
            A numpy array of `shape` and `dtype`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(shape, dtype=None).")

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Creates an initializer from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new initializer.
        """
        return cls(**config)

    def clone(self):
        """Returns a new initializer with the same config."""
        return self.from_config(self.get_config())


class Constant(Initializer):
    """Fills arrays with a constant.

    Args:
        value: A Python scalar (or an array broadcastable to the requested shapes).
    """

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class Zeros(Initializer):
    """Fills arrays with 0."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, _dtype(dtype))


class Ones(Initializer):
    """Fills arrays with 1."""

    def __call__(self, shape, dtype=None):
        return np.ones(shape, _dtype(dtype))


class Identity(Initializer):
    """Returns `gain` times the identity matrix (2-D shapes only; rectangular is allowed).

    Args:
        gain: Multiplicative factor.
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        return (self.gain * np.eye(*shape)).astype(_dtype(dtype))

    def get_config(self):
        # Keras 3.15 leaves the gain out, so its configs lose it; ours keep it.
        return {"gain": self.gain}


class RandomInitializer(Initializer):
    """Base class of the random initializers: holds the seed.

    Args:
        seed: An int for reproducible values, or None for a seed drawn from the package's
            generator when the initializer is created.
    """

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"`seed` argument should be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        self._seed = int(random.generator().integers(1, 10**9)) if seed is None else int(seed)

    def _generator(self):
        return np.random.default_rng([self._seed, 0])

    def get_config(self):
        return {"seed": self.seed}


# The standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_UNIT_STDDEV = 0.87962566103423978


def _truncated_normal(generator, shape, mean, stddev):
    """Normal samples, those further than 2 stddev from the mean redrawn (Keras's scheme)."""
    size = math.prod(shape)
    kept = np.empty(0)
    while kept.size < size:
        batch = generator.normal(mean, stddev, size)
        kept = np.append(kept, batch[(batch >= mean - 2 * stddev) & (batch <= mean + 2 * stddev)])
    return kept[:size].reshape(shape)


class _Normal(RandomInitializer):
    """Holds the mean and stddev of RandomNormal and TruncatedNormal.

    Args:
        mean: Mean of the (underlying) normal distribution.
        stddev: Standard deviation of the (underlying) normal distribution.
        seed: An int for reproducible values, or None.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomNormal(_Normal):
    """Draws from a normal distribution.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values.
        seed: An int for reproducible values, or None.
    """

    def __call__(self, shape, dtype=None):
        return self._generator().normal(self.mean, self.stddev, shape).astype(_dtype(dtype))


class TruncatedNormal(_Normal):
    """Draws from a normal distribution, redrawing values more than 2 stddev from the mean.

    Args:
        mean: Mean of the underlying normal distribution.
        stddev: Standard deviation of the underlying normal distribution.
        seed: An int for reproducible values, or None.
    """

    def __call__(self, shape, dtype=None):
        values = _truncated_normal(self._generator(), tuple(shape), self.mean, self.stddev)
        return values.astype(_dtype(dtype))


class RandomUniform(RandomInitializer):
    """Draws from a uniform distribution over `[minval, maxval)`.

    Args:
        minval: Lower bound (inclusive).
        maxval: Upper bound (exclusive).
        seed: An int for reproducible values, or None.
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        return self._generator().uniform(self.minval, self.maxval, shape).astype(_dtype(dtype))

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


def compute_fans(shape, input_axes=None, output_axes=None):
    """Returns `(fan_in, fan_out)` of a weight shape, as Keras computes them.

    A vector has both fans equal to its length; a matrix is (inputs, outputs); for higher ranks
    (convolution kernels `(..., input_depth, depth)`) the leading axes, the receptive field,
    multiply both fans.

    Args:
        shape: A tuple of ints.
        input_axes: Optional axes whose sizes multiply into fan_in (with `output_axes`).
        output_axes: Optional axes whose sizes multiply into fan_out (with `input_axes`).

    Returns:
        A tuple of two ints.
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(RandomInitializer):
    """Draws with a variance of `scale / n`, where n is fan_in, fan_out or their average.

    "truncated_normal" (or "normal") draws from a normal truncated at 2 stddev, rescaled so the
    truncated values have stddev `sqrt(scale / n)`; "untruncated_normal" from a plain normal;
    "uniform" from `[-limit, limit)` with `limit = sqrt(3 * scale / n)`.

    Args:
        scale: Positive scaling factor.
        mode: "fan_in", "fan_out" or "fan_avg".
        distribution: "truncated_normal", "untruncated_normal", "normal" or "uniform".
        seed: An int for reproducible values, or None.
        input_axes: Optional axes counted as inputs for fan_in (with `output_axes`).
        output_axes: Optional axes counted as outputs for fan_out (with `input_axes`).
    """

    def __init__(
        self,
        scale=1.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        modes = ("fan_in", "fan_out", "fan_avg")
        if mode not in modes:
            raise ValueError(f"Invalid `mode` argument: {mode}. Please use one of {modes}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        distributions = ("uniform", "truncated_normal", "untruncated_normal")
        if distribution not in distributions:
            raise ValueError(f"Invalid `distribution` argument: {distribution}. Please use one of {distributions}")
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        generator = self._generator()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_UNIT_STDDEV
            values = _truncated_normal(generator, shape, 0.0, stddev)
        elif self.distribution == "untruncated_normal":
            values = generator.normal(0.0, math.sqrt(variance), shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = generator.uniform(-limit, limit, shape)
        return values.astype(_dtype(dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """VarianceScaling with the scale, mode and distribution a subclass fixes in `_arguments`.

    Args:
        seed: An int for reproducible values, or None.
        input_axes: Optional axes counted as inputs for fan_in (with `output_axes`).
        output_axes: Optional axes counted as outputs for fan_out (with `input_axes`).
    """

    _arguments = ()

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(*self._arguments, seed=seed, input_axes=input_axes, output_axes=output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Glorot (Xavier) uniform: `[-limit, limit)` with `limit = sqrt(6 / (fan_in + fan_out))`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal: truncated normal with stddev `sqrt(2 / (fan_in + fan_out))`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """He uniform: `[-limit, limit)` with `limit = sqrt(6 / fan_in)`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """He normal: truncated normal with stddev `sqrt(2 / fan_in)`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: `[-limit, limit)` with `limit = sqrt(3 / fan_in)`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: truncated normal with stddev `sqrt(1 / fan_in)`.

    Takes `seed`, `input_axes` and `output_axes` as VarianceScaling does.
    """

    _arguments = (1.0, "fan_in", "truncated_normal")


class Orthogonal(RandomInitializer):
    """Returns `gain` times a random orthogonal matrix.

    The shape is flattened to `(prod(shape[:-1]), shape[-1])`; the matrix has orthonormal rows
    when it has fewer rows than columns, orthonormal columns otherwise. It is the Q of the QR
    decomposition of a normal sample, with signs fixed so that the distribution is uniform.

    Args:
        gain: Multiplicative factor.
        seed: An int for reproducible values, or None.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = gain
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = _dtype(dtype)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        # Sampled in the target dtype before the QR, as Keras does, so seeded values agree.
        sample = self._generator().normal(size=(max(rows, cols), min(rows, cols))).astype(dtype)
        q, r = np.linalg.qr(sample)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


# Keras's other spellings of two classes.
IdentityInitializer = Identity
OrthogonalInitializer = Orthogonal

_registry = Registry(
    "initializer",
    "keras.initializers",
    [
        Initializer,
        Constant,
        Zeros,
        Ones,
        Identity,
        RandomNormal,
        TruncatedNormal,
        RandomUniform,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
        Orthogonal,
    ],
    aliases={
        "normal": RandomNormal,
        "uniform": RandomUniform,
        "one": Ones,
        "zero": Zeros,
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
    },
)


def serialize(initializer):
    """Returns an initializer's config as Keras writes it.

    Args:
        initializer: An Initializer.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(initializer)


def deserialize(config):
    """Creates an initializer from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "glorot_uniform", or a dict with "class_name" and "config".

    Returns:
        A new Initializer.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves an initializer identifier as `keras.initializers.get` does.

    Args:
        identifier: None, a name ("glorot_uniform", "GlorotUniform", "uniform", ...), a config
            dict, an Initializer class or instance, or a callable `fn(shape, dtype=None)`.

    Returns:
        An initializer (a new instance for names, dicts and classes), or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message lists the names.
    """
    return _registry.get(identifier)
