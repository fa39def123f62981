"""Saving and loading (`rk.saving`, as `keras.saving`): model and weights files, the registry of
user-defined objects, and the serialisation of any object to Keras-style configs.

- `model_file`: `save_model` / `load_model` / `save_weights` / `load_weights`, and rnnkit's earlier
  zip of JSON and `.npy` arrays (still read).
- Keras's own files, which `model.save` writes: the Keras 3 `.keras` archive, `.weights.h5`, and
  tf.keras's legacy `.h5` models (read). `keras_format` holds their layout, `keras_writer` writes
  them, `keras_reader` reads them and `keras_config_reader` translates Keras's configs to rnnkit's.
- `serialization_lib`: `serialize_keras_object` / `deserialize_keras_object`.
- `rnnkit._registry` holds the registry itself (`register_keras_serializable`, ...), which every
  kind of object (layers, initializers, losses, ...) consults when it reads a config.
"""

from rnnkit._registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from rnnkit.saving.model_file import load_model, load_weights, save_model, save_weights
from rnnkit.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "load_weights",
    "register_keras_serializable",
    "save_model",
    "save_weights",
    "serialize_keras_object",
]
