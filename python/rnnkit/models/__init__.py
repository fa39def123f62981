"""Models: `Sequential`, the functional `Model`, and the functions of `keras.models`."""

import json

from rnnkit.models.cloning import clone_model
from rnnkit.models.functional import Model
from rnnkit.models.sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads a model saved by `model.save` (see `rnnkit.saving.load_model`)."""
    from rnnkit import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model, filepath, overwrite=True, zipped=None):
    """Saves a model to one file (see `rnnkit.saving.save_model`)."""
    from rnnkit import saving

    saving.save_model(model, filepath, overwrite=overwrite, zipped=zipped)


def model_from_json(json_string, custom_objects=None):
    """Builds the model, with fresh weights, that `model.to_json()` describes.

    Args:
        json_string: The JSON string.
        custom_objects: Optional `{name: class}` for user-defined layers, cells or models that are
            not registered with `rk.saving.register_keras_serializable`.

    Returns:
        The model (not compiled).

    Raises:
        ValueError: If the string is not JSON of a model's config, or names an unknown class.
    """
    from rnnkit.saving.model_file import model_from_config

    try:
        config = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"json_string: expected the JSON that model.to_json() returns, received {json_string!r:.80} ({err})"
        ) from None
    return model_from_config(config, custom_objects, "json_string")


__all__ = ["Model", "Sequential", "clone_model", "load_model", "model_from_json", "save_model"]
