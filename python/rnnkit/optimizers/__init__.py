"""Optimizers with Keras 3's names, arguments, defaults and configs, updating Variables in numpy."""

from rnnkit._registry import Registry
from rnnkit.optimizers import schedules
from rnnkit.optimizers.adadelta import Adadelta
from rnnkit.optimizers.adagrad import Adagrad
from rnnkit.optimizers.adam import Adam, AdamW
from rnnkit.optimizers.adamax import Adamax
from rnnkit.optimizers.lion import Lion
from rnnkit.optimizers.nadam import Nadam
from rnnkit.optimizers.optimizer import Optimizer
from rnnkit.optimizers.rmsprop import RMSprop
from rnnkit.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]

# Keras finds optimizers by their lower-case class names, whatever the case it is given; the class
# names themselves are for configs read without this module's `deserialize`.
_registry = Registry(
    "optimizer",
    "keras.optimizers",
    [],
    {
        name: c
        for c in (SGD, Adadelta, Adagrad, Adam, AdamW, Adamax, Lion, Nadam, RMSprop)
        for name in (c.__name__, c.__name__.lower())
    },
)


def serialize(optimizer):
    """Returns an optimizer's config as Keras writes it.

    Args:
        optimizer: An Optimizer.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(optimizer)


def deserialize(config):
    """Creates an optimizer from a config written by `serialize` (or Keras); class names are
    case-insensitive.

    Args:
        config: A dict with "class_name" and "config".

    Returns:
        A new Optimizer.

    Raises:
        ValueError: If the class name is unknown.
    """
    name = config.get("class_name") if isinstance(config, dict) else None
    if isinstance(name, str) and name.lower() in _registry.objects:
        config = {**config, "class_name": name.lower()}
    return _registry.deserialize(config)


def get(identifier):
    """Resolves an optimizer identifier as `keras.optimizers.get` does.

    Args:
        identifier: None; a name, in any case ("sgd", "adam", "adamw", "adamax", "nadam", "adadelta",
            "lion", "rmsprop", "adagrad",
            "Adam", ...), which gives an instance with the default arguments; a config dict; or an
            Optimizer instance, returned as is.

    Returns:
        An Optimizer, or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message names it.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        identifier = {"class_name": identifier, "config": {}}
    optimizer = deserialize(identifier) if isinstance(identifier, dict) else identifier
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")
    return optimizer
