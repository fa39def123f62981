"""Default names of layers, models, losses, metrics and optimizers, derived as Keras derives them."""

import collections
import re

_name_counts = collections.Counter()


def snake_case(name):
    """The snake_case form of a class name, as Keras derives default names and config keys.

    A capital starts a new word unless it follows another capital, so runs of capitals stay one
    word: "GlorotUniform" -> "glorot_uniform", "LSTMCell" -> "lstm_cell", "L1L2" -> "l1l2".

    Args:
        name: A CamelCase name.

    Returns:
        The lower-case name with words joined by underscores.
    """
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """`base`, then `base_1`, `base_2`, ... as Keras names layers and models.

    Args:
        base: The name to make unique, e.g. "lstm".

    Returns:
        `base` the first time, then `base` with the count of earlier uses.
    """
    count = next_uid(base) - 1
    return base if count == 0 else f"{base}_{count}"


def next_uid(prefix):
    """1 the first time for `prefix`, then 2, 3, ... (Keras's `get_uid`, shared with the names).

    Args:
        prefix: The name the count is kept for.
    """
    _name_counts[prefix] += 1
    return _name_counts[prefix]


def clear_session():
    """Forgets the names given so far, so the next `lstm` is `lstm` again (Keras's `clear_session`)."""
    _name_counts.clear()
