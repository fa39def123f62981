"""Layer configs to and from `{"module", "class_name", "config", "registered_name"}` dicts, as
Keras serialises layers (models nested in models included)."""

from rnnkit._registry import Registry


def _builtin_layers():
    from rnnkit import layers, models

    classes = [obj for obj in vars(layers).values() if isinstance(obj, type)]
    return [*classes, models.Model, models.Sequential]


def _functional():
    from rnnkit.models import Model

    return {"Functional": Model}  # the class name Keras writes for a `Model(inputs, outputs)`


_registry = Registry("layer", "keras.layers", _builtin_layers, aliases=_functional)


def serialize(layer):
    """The layer's config as Keras writes it.

    Args:
        layer: A layer or model with `get_config()`.

    Returns:
        `{"module", "class_name", "config", "registered_name"}`; `registered_name` is None for a
        built-in class and `"package>name"` for a registered one.
    """
    return _registry.serialize(layer)


def deserialize(config, custom_objects=None):
    """Creates a layer from `serialize`'s output.

    Args:
        config: The dict `serialize` returned (older files lack "module" and "registered_name").
        custom_objects: Optional `{name: class}` for user-defined layers and cells, also known to
            the configs nested in this one.

    Returns:
        The new layer.

    Raises:
        ValueError: If the config is not a dict or names an unknown class.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"config: expected a dict with 'class_name' and 'config', received {config!r:.80}")
    return _registry.deserialize(config, custom_objects)


def find(class_name, registered_name=None, custom_objects=None):
    """The layer or model class a config names (registered and scoped classes included).

    Args:
        class_name: The config's "class_name".
        registered_name: The config's "registered_name", if any.
        custom_objects: Optional `{name: class}` given by the caller.

    Returns:
        The class, or None if no class has the name.
    """
    return _registry.find(class_name, registered_name, custom_objects)
