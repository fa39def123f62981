"""`Dropout` (randomly zeroes inputs in training, scaling the rest to keep the expected sum),
`SpatialDropout1D/2D/3D`, `AlphaDropout`, `GaussianNoise`, `GaussianDropout` and
`ActivityRegularization`."""

import numpy as np

from rnnkit import ops, random
from rnnkit.layers.layer import Layer, in_symbolic_call
from rnnkit.ops.conv import data_format_of


def _validate_noise_shape(noise_shape):
    """`noise_shape` as a tuple of positive ints and Nones (None stays None)."""
    if noise_shape is None:
        return None
    shape = tuple(noise_shape) if isinstance(noise_shape, (list, tuple)) else None
    if shape is None or any(
        d is not None and (not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d <= 0) for d in shape
    ):
        raise ValueError(
            "Invalid value received for argument `noise_shape`. Expected a tuple or list of positive integers "
            f"or None. Received: noise_shape={noise_shape!r}"
        )
    return shape


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each input with probability `rate` and divides the
    others by `1 - rate`; in inference it is the identity. Masks pass through.

    Args:
        rate: The fraction of inputs to drop, in [0, 1].
        noise_shape: Optional shape of the keep/drop pattern, broadcast to the inputs; None
            entries take the input's size (e.g. `(None, 1, None)` drops the same features at
            every time step).
        seed: An int for reproducible patterns: layers with the same seed draw the same
            sequence of patterns. Without it they come from `rnnkit.random`'s generator.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                f"Received: rate={rate}"
            )
        self.rate = rate
        self.seed = seed
        self.noise_shape = _validate_noise_shape(noise_shape)
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        # Placeholder runs must not advance the generator, or they would shift the seeded patterns.
        if not training or self.rate == 0 or in_symbolic_call():
            return inputs
        if self.rate == 1:
            return ops.multiply(inputs, np.zeros((), inputs.dtype))
        keep_prob = 1 - self.rate
        keep = (self._rng or random.generator()).random(self._noise_shape(inputs)) < keep_prob
        return ops.multiply(inputs, (keep / keep_prob).astype(inputs.dtype))

    def _noise_shape(self, inputs):
        """The shape of the keep/drop pattern, broadcast to the inputs."""
        if self.noise_shape is None:
            return inputs.shape
        return tuple(size if dim is None else dim for dim, size in zip(self.noise_shape, inputs.shape))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}


def _check_rate(name, value):
    if not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a float value between 0 and 1. "
            f"Received: {name}={value!r}"
        )
    return value


class _SpatialDropout(Dropout):
    """Dropout of whole channels of inputs with `rank` spatial axes: a dropped channel is zero at
    every position (the pattern has shape `(batch, 1, ..., channels)`), which suits correlated
    neighbouring positions better than element dropout.

    Args:
        rank: Spatial axes (1, 2 or 3).
        rate: The fraction of channels to drop, in [0, 1].
        data_format: "channels_last" (None) or "channels_first".
        seed: An int for reproducible patterns.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rank, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.rank = rank
        self.data_format = data_format_of(data_format)

    def _noise_shape(self, inputs):
        if inputs.ndim != self.rank + 2:
            raise ValueError(
                f"Layer {self.name}: expected inputs of rank {self.rank + 2}, received shape {tuple(inputs.shape)}"
            )
        channels = 1 if self.data_format == "channels_first" else inputs.ndim - 1
        return tuple(size if axis in (0, channels) else 1 for axis, size in enumerate(inputs.shape))

    def get_config(self):
        config = super().get_config()
        # Keras's spatial dropouts take no `trainable` (nor `noise_shape`): its loader would refuse them.
        for key in ("noise_shape", "trainable"):
            config.pop(key, None)
        return {**config, "data_format": self.data_format}


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole feature channels of `(batch, steps, channels)` inputs: a dropped channel is
    zero at every step (the pattern has shape `(batch, 1, channels)`).

    Args:
        rate: The fraction of channels to drop, in [0, 1].
        seed: An int for reproducible patterns.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(1, rate, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole channels of `(batch, rows, cols, channels)` (channels_last) inputs.

    Args:
        rate: The fraction of channels to drop, in [0, 1].
        data_format: "channels_last" (None) or "channels_first".
        seed: An int for reproducible patterns.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(2, rate, data_format, seed, **kwargs)


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole channels of `(batch, d1, d2, d3, channels)` (channels_last) inputs.

    Args:
        rate: The fraction of channels to drop, in [0, 1].
        data_format: "channels_last" (None) or "channels_first".
        seed: An int for reproducible patterns.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(3, rate, data_format, seed, **kwargs)


# SELU's constants: the dropped value is SELU's negative saturation -scale * alpha.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(Dropout):
    """Dropout for self-normalising (SELU) networks: in training, sets each input with
    probability `rate` to SELU's saturation value and applies the affine map that keeps the
    inputs' mean and variance; in inference it is the identity. Masks pass through.

    Args:
        rate: The fraction of inputs to drop, in [0, 1] (1 gives zeros, the limit of the map).
        noise_shape: Optional shape of the keep/drop pattern, broadcast to the inputs (None
            entries take the input's size).
        seed: An int for reproducible patterns.
        **kwargs: Base `Layer` arguments.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or in_symbolic_call():
            return inputs
        if self.rate == 1:
            return ops.multiply(inputs, np.zeros((), inputs.dtype))
        dropped_value = -_SELU_ALPHA * _SELU_SCALE
        kept = (self._rng or random.generator()).random(self._noise_shape(inputs)) >= self.rate
        a = ((1 - self.rate) * (1 + self.rate * dropped_value**2)) ** -0.5
        b = -a * dropped_value * self.rate
        # a * (x where kept, else the dropped value) + b, as one product and one sum.
        scale = (a * kept).astype(inputs.dtype)
        shift = (a * dropped_value * ~kept + b).astype(inputs.dtype)
        return ops.add(ops.multiply(inputs, scale), shift)


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of standard deviation `stddev` in training only; masks pass
    through.

    Args:
        stddev: Standard deviation of the noise, in [0, 1].
        seed: An int for reproducible noise.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = _check_rate("stddev", stddev)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.stddev == 0 or in_symbolic_call():
            return inputs
        noise = (self._rng or random.generator()).normal(0.0, self.stddev, inputs.shape)
        return ops.add(inputs, noise.astype(inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(Layer):
    """Multiplies the inputs by Gaussian noise of mean 1 and standard deviation
    `sqrt(rate / (1 - rate))` in training only; masks pass through.

    Args:
        rate: The drop probability the noise's variance matches, in [0, 1].
        seed: An int for reproducible noise.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate("rate", rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or in_symbolic_call():
            return inputs
        stddev = np.sqrt(self.rate / (1.0 - self.rate)) if self.rate < 1 else np.inf
        noise = (self._rng or random.generator()).normal(1.0, stddev, inputs.shape)
        return ops.multiply(inputs, noise.astype(inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """Returns its inputs unchanged and adds `l1 * sum(|x|) + l2 * sum(x²)` (divided by the batch
    size, as every activity regularizer) to `layer.losses`; masks pass through.

    Args:
        l1: The L1 factor.
        l2: The L2 factor.
        **kwargs: Base `Layer` arguments (without `activity_regularizer`).
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        from rnnkit import regularizers

        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = l1
        self.l2 = l2
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        # A new tensor, so the caller's input keeps its own mask attribute.
        return ops.multiply(inputs, np.ones((), inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
