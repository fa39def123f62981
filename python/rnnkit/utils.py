"""Utilities: seeding and session reset."""

from rnnkit import random
from rnnkit.layers.layer import clear_session

__all__ = ["clear_session", "set_random_seed"]


def set_random_seed(seed):
    """Seeds every unseeded random draw of rnnkit (initializers and dropout masks)."""
    random.set_seed(seed)
