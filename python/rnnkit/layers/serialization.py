"""Layer configs to and from `{"class_name": ..., "config": ...}` dicts, as Keras serialises."""

_custom_objects = {}


def _registry():
    from rnnkit import layers

    return {name: obj for name, obj in vars(layers).items() if isinstance(obj, type)}


def serialize(layer):
    """`{"class_name": ..., "config": layer.get_config()}`."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, custom_objects=None):
    """Creates a layer from `serialize`'s output.

    Args:
        config: The dict `serialize` returned.
        custom_objects: Optional `{name: class}` for user-defined layers and cells.

    Raises:
        ValueError: If the class is unknown.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"config: expected a dict with 'class_name' and 'config', received {config!r:.80}")
    known = {**_registry(), **_custom_objects, **(custom_objects or {})}
    name = config["class_name"]
    if name not in known:
        raise ValueError(
            f"Unknown layer: '{name}'. Please ensure you are using a `keras.utils.custom_object_scope` "
            "and that this object is included in the scope, or pass it in `custom_objects`."
        )
    return known[name].from_config(dict(config["config"]))
