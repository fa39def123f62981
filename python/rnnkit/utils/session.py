"""Seeding and session reset."""

from rnnkit import _core, random
from rnnkit.layers import layer

__all__ = ["clear_session", "set_random_seed"]


def clear_session():
    """Resets the automatic layer names, as Keras's `clear_session`, and hands the memory blocks
    the Rust core keeps for reuse (up to 512 MiB of freed buffers) back to the system."""
    layer.clear_session()
    _core.release_cached_memory()


def set_random_seed(seed):
    """Seeds every unseeded random draw of rnnkit (initializers and dropout masks)."""
    random.set_seed(seed)
