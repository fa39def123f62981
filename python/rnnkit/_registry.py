"""Where names lead to objects: the built-in objects of each kind (`Registry`) and the user's
objects, registered with `register_keras_serializable` or made known for a while with
`custom_object_scope`.

Lookups go from the most specific to the least, as in Keras: the objects of the active scopes,
then the registered ones, then a call's `custom_objects`, then the built-ins.
"""

import inspect

from rnnkit._naming import snake_case

_registered = {}  # "package>name" -> object
_registered_names = {}  # object -> "package>name"
_scoped = {}  # the objects of the active custom_object_scopes
_builtin_registries = []  # every Registry, to find the Keras module of a built-in class


def register_keras_serializable(package="Custom", name=None):
    """Registers a class or function under `"package>name"`, so configs that name it load
    without `custom_objects`.

    Args:
        package: The first part of the registered name.
        name: The second part; the object's `__name__` by default.

    Returns:
        A decorator that registers its argument and returns it unchanged.

    Raises:
        ValueError: If the decorated class has no `get_config` method.
    """

    def decorator(obj):
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(
                f"register_keras_serializable: expected a class with a get_config() method, received {obj.__name__}"
            )
        registered_name = f"{package}>{obj.__name__ if name is None else name}"
        _registered[registered_name] = obj
        _registered_names[obj] = registered_name
        return obj

    return decorator


def get_registered_name(obj):
    """The name an object is registered under, or its `__name__` if it is not registered.

    Args:
        obj: A class or function.

    Returns:
        `"package>name"` for a registered object, else `obj.__name__`.
    """
    return _registered_names.get(obj, obj.__name__)


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object a name refers to: from the active scopes, the registered objects,
    `custom_objects`, then `module_objects`.

    Args:
        name: A registered name ("package>name") or a key of one of the dicts.
        custom_objects: Optional `{name: object}` given by the caller.
        module_objects: Optional `{name: object}` of built-ins, searched last.

    Returns:
        The object, or None if no dict has the name.
    """
    for objects in (_scoped, _registered, custom_objects or {}, module_objects or {}):
        if name in objects:
            return objects[name]
    return None


def get_custom_objects():
    """The live dict of registered objects: what is added to it is found by every lookup.

    Returns:
        The dict `{registered name: object}` (the objects of a `custom_object_scope` are not in it).
    """
    return _registered


class CustomObjectScope:
    """Makes objects known by name to every deserialisation inside a `with` block, nested configs
    (an RNN's cell, a wrapper's layer) included. Scopes nest: an inner one adds to the outer one.

    Args:
        custom_objects: `{name: class or function}`, the names as configs write them (the class
            name, or the registered name).
    """

    def __init__(self, custom_objects=None):
        if custom_objects is not None and not isinstance(custom_objects, dict):
            raise ValueError(f"custom_objects: expected a dict of names to objects, received {custom_objects!r:.80}")
        self.custom_objects = dict(custom_objects or {})
        self._outer = None

    def __enter__(self):
        self._outer = dict(_scoped)
        _scoped.update(self.custom_objects)
        return self

    def __exit__(self, *exc_info):
        _scoped.clear()
        _scoped.update(self._outer)


custom_object_scope = CustomObjectScope


def builtin_module(cls):
    """The Keras module that holds the built-in class `cls` ("keras.layers", ...), or None."""
    for registry in _builtin_registries:
        if registry.holds(cls):
            return registry.module
    return None


def lookup(name, registered_name=None, module=None, custom_objects=None, accept=callable):
    """The user's or built-in object a config names, whatever its kind.

    Args:
        name: The class or function name.
        registered_name: The config's "registered_name", if any.
        module: The config's "module": only the built-ins of that Keras module are searched when
            one has it, every kind's otherwise.
        custom_objects: Optional `{name: object}` given by the caller.
        accept: Which objects qualify, e.g. `inspect.isfunction` for a function config (the
            name "mse" is a function among losses and a class among metrics).

    Returns:
        The object, or None.
    """
    registries = [r for r in _builtin_registries if r.module == module] or _builtin_registries
    for registry in registries:
        found = registry.find(name, registered_name, custom_objects)
        if found is not None and accept(found):
            return found
    return None


class Registry:
    """The built-in objects of one kind, found by name, and their Keras-style configs.

    Names are looked up among the user's objects first (see `get_registered_object`), so a
    registered class or one in a `custom_object_scope` loads as a built-in does.

    Args:
        kind: What the objects are, for messages, e.g. "initializer".
        module: The Keras module that configs name, e.g. "keras.initializers".
        objects: Classes (found by their name and its snake_case form) or functions (found by
            their name); or a function returning them, called on first use (for kinds whose
            modules import this one).
        aliases: Optional dict of further names, or a function returning it.
    """

    def __init__(self, kind, module, objects, aliases=None):
        self.kind = kind
        self.module = module
        self._sources = (objects, aliases or {})
        self._objects = None
        _builtin_registries.append(self)

    @property
    def objects(self):
        """`{name: object}` of the built-ins."""
        if self._objects is None:
            objects, aliases = self._sources
            self._objects = {}
            for obj in objects() if callable(objects) else objects:
                self._objects[obj.__name__] = obj
                if inspect.isclass(obj):
                    self._objects[snake_case(obj.__name__)] = obj
            self._objects.update(aliases() if callable(aliases) else aliases)
        return self._objects

    def holds(self, obj):
        """Whether `obj` is one of the built-ins."""
        return any(obj is builtin for builtin in self.objects.values())

    def _error(self, identifier):
        return ValueError(
            f"Could not interpret {self.kind} identifier: {identifier!r}. Expected None, a callable, "
            f"a config dict or one of these names: {', '.join(sorted(self.objects))}."
        )

    def find(self, name, registered_name=None, custom_objects=None):
        """The object a config names: its registered name first, then its name.

        Args:
            name: A built-in name, a class name or a registered name.
            registered_name: The "registered_name" of a config, if any.
            custom_objects: Optional `{name: object}` given by the caller.

        Returns:
            The class or function, or None if nothing has the name.
        """
        if registered_name is not None:
            found = get_registered_object(registered_name, custom_objects)
            if found is not None:
                return found
        return get_registered_object(name, custom_objects, self.objects)

    def _lookup(self, name):
        obj = self.find(name)
        if obj is None:
            raise self._error(name)
        return obj

    def serialize(self, obj):
        """Returns the config of an object: a dict as Keras writes it, or a function's name.

        Args:
            obj: An instance with `get_config()`, or a built-in or registered function.

        Returns:
            `{"module", "class_name", "config", "registered_name"}` for an instance
            (`registered_name` is None for a built-in class), the name for a function.

        Raises:
            ValueError: If `obj` is a function that is neither built in nor registered.
        """
        if obj is None:
            return None
        if inspect.isfunction(obj):
            if self.holds(obj):
                return obj.__name__
            if obj in _registered_names:
                return _registered_names[obj]
            raise ValueError(
                f"Cannot serialize {obj!r}: it is not a built-in {self.kind}; register it with "
                "`@rk.saving.register_keras_serializable()`."
            )
        cls = type(obj)
        builtin = self.holds(cls)
        return {
            "module": self.module if builtin else cls.__module__,
            "class_name": cls.__name__,
            "config": obj.get_config(),
            "registered_name": None if builtin else get_registered_name(cls),
        }

    def deserialize(self, config, custom_objects=None):
        """Rebuilds an object from a name or a config that `serialize` (or Keras) wrote.

        Args:
            config: A name, or a dict with "class_name", "config" and optionally
                "registered_name" (for a function Keras writes class_name "function" and the name
                as config).
            custom_objects: Optional `{name: object}` for user-defined classes, also known to the
                configs nested in this one.

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
        cls = self.find(config["class_name"], config.get("registered_name"), custom_objects)
        if cls is None:
            raise ValueError(
                f"Unknown {self.kind}: '{config['class_name']}'. Register it with "
                "`@rk.saving.register_keras_serializable()`, pass it in `custom_objects` or use a "
                "`keras.utils.custom_object_scope`."
            )
        with CustomObjectScope(custom_objects):
            return cls.from_config(dict(config.get("config") or {}))

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
