"""Nested structures (lists, tuples, namedtuples, dicts) of leaves, as `tf.nest` and `keras.tree`.

Dicts are traversed in sorted-key order; everything else, None included, is a leaf.
"""

import numpy as np


def is_nested(structure):
    """Returns whether `structure` is a list, tuple or dict (and so not a leaf)."""
    return isinstance(structure, (list, tuple, dict))


def _children(structure):
    if isinstance(structure, dict):
        return [structure[key] for key in sorted(structure)]
    return list(structure)


def _rebuild(structure, children):
    if isinstance(structure, dict):
        by_key = dict(zip(sorted(structure), children))
        return type(structure)((key, by_key[key]) for key in structure)
    if isinstance(structure, tuple) and hasattr(structure, "_fields"):
        return type(structure)(*children)
    return type(structure)(children)


def flatten(structure):
    """Returns the leaves of `structure` as a flat list.

    Args:
        structure: A leaf or a nested structure.

    Returns:
        A list of leaves, depth first; a leaf gives a one-element list.
    """
    if not is_nested(structure):
        return [structure]
    children = _children(structure)
    if not any(map(is_nested, children)):
        return children  # a flat container, the common case: its leaves as they are
    return [leaf for child in children for leaf in flatten(child)]


def pack_sequence_as(structure, flat_sequence):
    """Builds a structure shaped like `structure` whose leaves are taken from `flat_sequence`.

    Args:
        structure: The nested structure to imitate.
        flat_sequence: A sequence of as many leaves as `structure` has.

    Returns:
        The new structure; containers keep their types (and dicts their key order).

    Raises:
        ValueError: If the number of leaves differs.
    """
    flat_sequence = list(flat_sequence)
    leaves = iter(flat_sequence)

    def pack(node):
        if not is_nested(node):
            return next(leaves)
        return _rebuild(node, [pack(child) for child in _children(node)])

    try:
        packed = pack(structure)
        complete = next(leaves, leaves) is leaves
    except StopIteration:
        complete = False
    if not complete:
        expected = len(flatten(structure))
        raise ValueError(f"The structure has {expected} leaves but flat_sequence has {len(flat_sequence)}.")
    return packed


def assert_same_structure(first, second):
    """Checks that two structures nest the same containers in the same way.

    Raises:
        ValueError: If they differ; the message says where and how.
    """

    def check(a, b, path):
        if is_nested(a) or is_nested(b):
            differ = f"The structures differ at {path or 'the top'}"
            if type(a) is not type(b):
                raise ValueError(f"{differ}: {type(a).__name__} vs {type(b).__name__}.")
            if isinstance(a, dict) and sorted(a) != sorted(b):
                raise ValueError(f"{differ}: keys {sorted(a)} vs {sorted(b)}.")
            if len(a) != len(b):
                raise ValueError(f"{differ}: length {len(a)} vs {len(b)}.")
            keys = sorted(a) if isinstance(a, dict) else range(len(a))
            for key, x, y in zip(keys, _children(a), _children(b)):
                check(x, y, f"{path}[{key!r}]")

    check(first, second, "")


def map_structure(fn, *structures):
    """Applies `fn` leaf by leaf to structures of the same shape.

    Args:
        fn: A callable taking one leaf from each structure.
        *structures: One or more structures with the same nesting.

    Returns:
        A structure like the first one holding `fn`'s results.

    Raises:
        ValueError: If the structures differ.
    """
    if not any(is_nested(s) for s in structures):
        return fn(*structures)  # leaves alone, the common case of a layer's single input
    for other in structures[1:]:
        assert_same_structure(structures[0], other)
    results = [fn(*leaves) for leaves in zip(*(flatten(s) for s in structures))]
    return pack_sequence_as(structures[0], results)


def is_shape(value):
    """Whether `value` is one shape: a tuple or list of ints and Nones."""
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in value)


def map_shape_structure(fn, structure):
    """Like `map_structure`, but treats each shape (a tuple of ints and Nones) as a leaf.

    Args:
        fn: Called on each shape.
        structure: A shape, or a nested list/tuple/dict of shapes.

    Returns:
        The same structure with each shape replaced by `fn(shape)`.
    """
    if is_shape(structure):
        return fn(tuple(structure))
    if isinstance(structure, dict):
        return {k: map_shape_structure(fn, v) for k, v in structure.items()}
    return type(structure)(map_shape_structure(fn, s) for s in structure)


def flatten_shapes(structure):
    """The shapes of a nested structure of shapes (see `map_shape_structure`), in order."""
    shapes = []
    map_shape_structure(shapes.append, structure)
    return shapes
