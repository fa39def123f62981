"""Layer configs to and from `{"class_name": ..., "config": ...}` dicts, as Keras serialises."""

import contextlib

_custom_objects = {}


def _registry():
    from rnnkit import layers

    return {name: obj for name, obj in vars(layers).items() if isinstance(obj, type)}


@contextlib.contextmanager
def custom_object_scope(custom_objects):
    """Makes `{name: class}` known to every `deserialize` inside the block, nested configs (an
    RNN's cell, a wrapper's layer) included, as Keras's `custom_object_scope`."""
    saved = dict(_custom_objects)
    _custom_objects.update(custom_objects or {})
    try:
        yield
    finally:
        _custom_objects.clear()
        _custom_objects.update(saved)


def serialize(layer):
    """`{"class_name": ..., "config": layer.get_config()}`."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, custom_objects=None):
    """Creates a layer from `serialize`'s output.

    Args:
        config: The dict `serialize` returned.
        custom_objects: Optional `{name: class}` for user-defined layers and cells, also known to
            the configs nested in this one.

    Raises:
        ValueError: If the class is unknown.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"config: expected a dict with 'class_name' and 'config', received {config!r:.80}")
    with custom_object_scope(custom_objects):
        known = {**_registry(), **_custom_objects}
        name = config["class_name"]
        if name not in known:
            raise ValueError(
                f"Unknown layer: '{name}'. Please ensure you are using a `keras.utils.custom_object_scope` "
                "and that this object is included in the scope, or pass it in `custom_objects`."
            )
        return known[name].from_config(dict(config["config"]))
