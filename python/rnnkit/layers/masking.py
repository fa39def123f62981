"""`Masking`: marks time steps whose features all equal `mask_value` as padding."""

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer


class Masking(Layer):
    """Masks every time step whose features all equal `mask_value`, and zeroes those steps.

    Args:
        mask_value: The padding value.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True

    def _mask(self, inputs):
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def call(self, inputs):
        keep = self._mask(inputs)
        return ops.multiply(inputs, keep[..., None].astype(inputs.dtype))

    def compute_mask(self, inputs, mask=None):
        return self._mask(inputs)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
