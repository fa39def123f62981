"""Models: `Sequential` and the functional `Model`."""

from rnnkit.models.functional import Model
from rnnkit.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
