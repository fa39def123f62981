"""Seeding and session reset."""

import random as python_random

import numpy as np

from rnnkit import _core, random
from rnnkit.layers import layer

__all__ = ["clear_session", "set_random_seed"]


def clear_session():
    """Resets the automatic layer names, as Keras's `clear_session`, and hands the memory blocks
    the Rust core keeps for reuse (up to 2 GiB of freed buffers) back to the system."""
    layer.clear_session()
    _core.release_cached_memory()


def set_random_seed(seed):
    """Seeds every unseeded random draw, as Keras's: rnnkit's (initializers and dropout masks),
    NumPy's global generator (which `fit(shuffle=True)` orders the samples with) and Python's
    `random`.

    Args:
        seed: A non-negative int.

    Raises:
        ValueError: If `seed` is not an int.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r} (of type {type(seed)})")
    python_random.seed(seed)
    np.random.seed(seed)
    random.set_seed(seed)
