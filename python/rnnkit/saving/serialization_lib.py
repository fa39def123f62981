"""Any object to and from the JSON-friendly structures Keras writes: plain values as they are,
numpy arrays as `{"class_name": "__numpy__", ...}`, functions by name, and objects with
`get_config` as `{"module", "class_name", "config", "registered_name"}`."""

import inspect

import numpy as np

from rnnkit._registry import CustomObjectScope, builtin_module, get_registered_name, lookup
from rnnkit.tensor import Tensor, convert_to_tensor

_PLAIN = (type(None), bool, int, float, str)


def serialize_keras_object(obj):
    """The JSON-friendly form of an object, as `keras.saving.serialize_keras_object` writes it.

    Args:
        obj: None, a bool, number or string, a list, tuple or dict of serialisable values, a
            numpy array or scalar, a Tensor, a named function, or an object with `get_config()`
            (a layer, model, initializer, loss, ...).

    Returns:
        The object itself for plain values, the same container of serialised values, or a dict
        with "class_name" and "config" ("module" and "registered_name" for classes and
        functions; "registered_name" is None for rnnkit's built-in classes).

    Raises:
        ValueError: For a lambda (it cannot be named) or an object without `get_config()`.
    """
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(serialize_keras_object(x) for x in obj)
    if isinstance(obj, dict):
        return {key: serialize_keras_object(value) for key, value in obj.items()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, Tensor)):
        array = np.asarray(obj)
        kind = "__numpy__" if isinstance(obj, np.ndarray) else "__tensor__"
        return {"class_name": kind, "config": {"value": array.tolist(), "dtype": array.dtype.name}}
    if inspect.isfunction(obj):
        if obj.__name__ == "<lambda>":
            raise ValueError("obj: expected a named function, received a lambda; define it with `def` and register it.")
        return {
            "module": "builtins",
            "class_name": "function",
            "config": get_registered_name(obj),
            "registered_name": "function",
        }
    if not hasattr(obj, "get_config"):
        raise ValueError(
            f"obj: expected a serialisable value or an object with get_config(), received {type(obj).__name__}"
        )
    cls = type(obj)
    module = builtin_module(cls)
    return {
        "module": module or cls.__module__,
        "class_name": cls.__name__,
        "config": serialize_keras_object(obj.get_config()),
        "registered_name": None if module else get_registered_name(cls),
    }


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """Rebuilds what `serialize_keras_object` (or Keras, for the objects rnnkit has) wrote.

    Classes and functions are found by registered name, then in the active
    `custom_object_scope`s, the registered objects, `custom_objects` and rnnkit's built-ins.

    Args:
        config: The serialised form.
        custom_objects: Optional `{name: class or function}` for user-defined objects that are
            not registered, also known to the configs nested in this one.
        safe_mode: Accepted for Keras's signature: nothing in a config is ever run as code, so a
            lambda's config is refused either way.
        **kwargs: Accepted for Keras's signature (its internal `module_objects`, `printable_module_name`).

    Returns:
        The object: plain values and containers as they are (tuples come back as lists, as
        from JSON), numpy arrays, Tensors, functions, or new instances made by `from_config`.

    Raises:
        ValueError: If a class or function is unknown, or the config holds a lambda.
    """
    if isinstance(config, _PLAIN):
        return config
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(x, custom_objects) for x in config]
    if not isinstance(config, dict):
        raise ValueError(f"config: expected a serialised object, received {type(config).__name__}")
    if "class_name" not in config or "config" not in config:
        return {key: deserialize_keras_object(value, custom_objects) for key, value in config.items()}
    class_name, inner = config["class_name"], config["config"]
    if class_name in ("__numpy__", "__tensor__"):
        array = np.array(inner["value"], dtype=inner["dtype"])
        return array if class_name == "__numpy__" else convert_to_tensor(array)
    if class_name == "__lambda__":
        raise ValueError("config: holds a lambda, which rnnkit never loads (it would run code from the file).")
    if class_name == "function":
        found = lookup(inner, module=config.get("module"), custom_objects=custom_objects, accept=inspect.isfunction)
        if found is None:
            raise ValueError(
                f"Unknown function: '{inner}'. Register it with `@rk.saving.register_keras_serializable()` or pass it "
                "in `custom_objects`."
            )
        return found
    cls = lookup(
        class_name, config.get("registered_name"), config.get("module"), custom_objects, accept=inspect.isclass
    )
    if cls is None:
        raise ValueError(
            f"Unknown class: '{class_name}'. Register it with `@rk.saving.register_keras_serializable()`, pass it "
            "in `custom_objects` or use a `keras.utils.custom_object_scope`."
        )
    with CustomObjectScope(custom_objects):
        return cls.from_config(dict(inner))
