"""Models: `Sequential` and the functional `Model`."""

from rnnkit.models.functional import Model
from rnnkit.models.sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True):
    """Loads a model saved by `model.save` (see `rnnkit.saving.load_model`)."""
    from rnnkit import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


__all__ = ["Model", "Sequential", "load_model"]
