"""The package's random source for unseeded initializers and dropout masks."""

import numpy as np

_generator = np.random.default_rng()


def generator():
    """The shared numpy Generator."""
    return _generator


def set_seed(seed):
    """Reseeds the shared generator, making unseeded initializers and dropout reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)
