"""Utilities: seeding and session reset."""

from rnnkit import random
from rnnkit.layers.layer import clear_session
from rnnkit.layers.serialization import custom_object_scope

__all__ = ["clear_session", "custom_object_scope", "set_random_seed"]


def set_random_seed(seed):
    """Seeds every unseeded random draw of rnnkit (initializers and dropout masks)."""
    random.set_seed(seed)
