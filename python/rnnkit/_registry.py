"""Name lookup, `get`, `serialize` and `deserialize`, shared by initializers, activations,
regularizers and constraints."""

import inspect
import re


def snake_case(name):
    """Returns the snake_case form of a CamelCase name ("GlorotUniform" -> "glorot_uniform")."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Registry:
    """The built-in objects of one kind, found by name, and their Keras-style configs.

    Args:
        kind: What the objects are, for messages, e.g. "initializer".
        module: The Keras module that configs name, e.g. "keras.initializers".
        objects: Classes (found by their name and its snake_case form) or functions (found by
            their name).
        aliases: Optional dict of further names.
    """

    def __init__(self, kind, module, objects, aliases=None):
        self.kind = kind
        self.module = module
        self.objects = {}
        for obj in objects:
            self.objects[obj.__name__] = obj
            if inspect.isclass(obj):
                self.objects[snake_case(obj.__name__)] = obj
        self.objects.update(aliases or {})

    def _error(self, identifier):
        return ValueError(
            f"Could not interpret {self.kind} identifier: {identifier!r}. Expected None, a callable, "
            f"a config dict or one of these names: {', '.join(sorted(self.objects))}."
        )

    def _lookup(self, name):
        obj = self.objects.get(name)
        if obj is None:
            raise self._error(name)
        return obj

    def serialize(self, obj):
        """Returns the config of an object: a dict as Keras writes it, or a function's name.

        Args:
            obj: An instance with `get_config()`, or one of the registered functions.

        Returns:
            `{"module", "class_name", "config", "registered_name"}` for an instance, the name for
            a function.

        Raises:
            ValueError: If `obj` is a function that is not registered.
        """
        if obj is None:
            return None
        if inspect.isfunction(obj):
            if self.objects.get(obj.__name__) is not obj:
                raise ValueError(f"Cannot serialize {obj!r}: it is not a built-in {self.kind}.")
            return obj.__name__
        return {
            "module": self.module,
            "class_name": type(obj).__name__,
            "config": obj.get_config(),
            "registered_name": None,
        }

    def deserialize(self, config):
        """Rebuilds an object from a name or a config that `serialize` (or Keras) wrote.

        Args:
            config: A name, or a dict with "class_name" and "config" (for a function Keras writes
                class_name "function" and the name as config).

        Returns:
            A new instance built by the class's `from_config`, or the function.

        Raises:
            ValueError: If the name or class name is unknown.
        """
        if isinstance(config, str):
            obj = self._lookup(config)
            return obj() if inspect.isclass(obj) else obj
        if not isinstance(config, dict) or "class_name" not in config:
            raise self._error(config)
        if config["class_name"] == "function":
            return self._lookup(config["config"])
        return self._lookup(config["class_name"]).from_config(config.get("config") or {})

    def get(self, identifier):
        """Resolves an identifier as Keras's `get` functions do.

        Args:
            identifier: None, a name, a config dict, a class (instantiated with its defaults) or
                any callable (returned as is).

        Returns:
            The object, or None for None.

        Raises:
            ValueError: If the identifier cannot be interpreted; the message lists the names.
        """
        if identifier is None:
            return None
        if isinstance(identifier, (str, dict)):
            return self.deserialize(identifier)
        if inspect.isclass(identifier):
            return identifier()
        if callable(identifier):
            return identifier
        raise self._error(identifier)
