"""Every public class documents its constructor's arguments in a Google-style `Args:` section.

For each public class of the modules below, the class in its MRO that defines `__init__` must
name each of that `__init__`'s parameters (`*args` and `**kwargs` aside) in an `Args:` section
of its class docstring or of its `__init__` docstring.
"""

import importlib
import inspect
import re

import pytest

MODULES = [
    "rnnkit.layers",
    "rnnkit.callbacks",
    "rnnkit.optimizers",
    "rnnkit.optimizers.schedules",
    "rnnkit.losses",
    "rnnkit.metrics",
    "rnnkit.models",
    "rnnkit.initializers",
    "rnnkit.regularizers",
    "rnnkit.constraints",
]

_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:")


def documented_args(docstring):
    """The names listed in a Google-style `Args:` section (empty without one).

    An entry is a line at the section's first indentation that starts with `name:` or
    `name (type):`; deeper lines continue the entry above.
    """
    lines = inspect.cleandoc(docstring or "").splitlines()
    names = set()
    for i, line in enumerate(lines):
        if line.strip() not in ("Args:", "Arguments:"):
            continue
        header = _depth(line)
        body = [entry for entry in lines[i + 1 :] if entry.strip()]
        entry_depth = _depth(body[0]) if body else 0
        for entry in body:
            if _depth(entry) <= header:
                break
            match = _ENTRY.match(entry.strip())
            if match and _depth(entry) == entry_depth:
                names.add(match.group(1).lstrip("*"))
    return names


def _depth(line):
    return len(line) - len(line.lstrip())


def public_classes():
    seen = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__.startswith("rnnkit"):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def defining_class(cls):
    """The class in `cls`'s MRO whose own `__init__` it runs (None when that is `object`'s)."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            return klass if klass.__module__.startswith("rnnkit") else None
    return None


def undocumented(cls):
    owner = defining_class(cls)
    if owner is None:
        return []
    init = vars(owner)["__init__"]
    parameters = [
        p.name
        for p in list(inspect.signature(init).parameters.values())[1:]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    documented = documented_args(owner.__doc__) | documented_args(init.__doc__)
    return [f"{owner.__qualname__}({name})" for name in parameters if name not in documented]


CLASSES = public_classes()


def test_the_walk_finds_the_classes():
    names = {cls.__name__ for _, cls in CLASSES}
    assert {"LSTM", "GRUCell", "EarlyStopping", "Adam", "Model", "GlorotUniform", "L1L2", "MaxNorm"} <= names


@pytest.mark.parametrize("cls", [cls for _, cls in CLASSES], ids=[name for name, _ in CLASSES])
def test_constructor_arguments_are_documented(cls):
    assert (cls.__doc__ or "").strip(), f"{cls.__qualname__} has no docstring of its own"
    assert undocumented(cls) == []


def test_the_parser_reads_google_args():
    doc = """Summary.

    Args:
        first: One.
        second (int): Two,
            continued: not a name.
        **kwargs: Others.

    Returns:
        third: not an argument.
    """
    assert documented_args(doc) == {"first", "second", "kwargs"}
