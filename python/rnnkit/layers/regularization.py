"""`Dropout`: randomly zeroes inputs in training, scaling the rest to keep the expected sum."""

import numpy as np

from rnnkit import ops, random
from rnnkit.layers.layer import Layer, in_symbolic_call


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
        shape = (
            inputs.shape
            if self.noise_shape is None
            else tuple(size if dim is None else dim for dim, size in zip(self.noise_shape, inputs.shape))
        )
        keep_prob = 1 - self.rate
        keep = (self._rng or random.generator()).random(shape) < keep_prob
        return ops.multiply(inputs, (keep / keep_prob).astype(inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}
