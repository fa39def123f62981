"""Symbolic tensors: what `rk.Input(...)` returns and what layers return when called on it.

A `KerasTensor` carries a shape (None for unknown sizes), a dtype, whether a mask travels with
it, and the layer call (`Node`) that produced it, so a functional model can replay the graph on
real data.
"""

import itertools

import numpy as np

from rnnkit import tree

_node_ids = itertools.count()


class Node:
    """One layer call in a functional graph: the layer, its arguments and its outputs.

    `order` grows with each call, so sorting nodes by it puts every node after its inputs.
    """

    def __init__(self, layer, args, kwargs, outputs):
        self.order = next(_node_ids)
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs

    @property
    def input_tensors(self):
        """The KerasTensors among the call's arguments, in order."""
        return [x for x in tree.flatten((self.args, self.kwargs)) if isinstance(x, KerasTensor)]

    def bind(self, computed):
        """The call's `(args, kwargs)` with each KerasTensor replaced by `computed[id(tensor)]`.

        The leaves and where the KerasTensors sit among them are found once per node; calls
        whose arguments are all leaves (the common case) are then rebuilt without a tree walk.
        """
        if not hasattr(self, "_leaves"):
            self._leaves = tree.flatten((self.args, self.kwargs))
            self._symbolic = [i for i, x in enumerate(self._leaves) if isinstance(x, KerasTensor)]
            self._flat_call = not any(map(tree.is_nested, (*self.args, *self.kwargs.values())))
        values = list(self._leaves)
        for i in self._symbolic:
            values[i] = computed[id(values[i])]
        if not self._flat_call:
            return tree.pack_sequence_as((self.args, self.kwargs), values)
        n = len(self.args)
        return tuple(values[:n]), dict(zip(sorted(self.kwargs), values[n:]))


class KerasTensor:
    """A placeholder for a tensor of known rank and partly known shape.

    Args:
        shape: The shape, batch axis included, with None for unknown sizes.
        dtype: The numpy dtype name.
        name: Optional name (Input layers name theirs).
        has_mask: Whether a (batch, time) mask travels with the tensor.
    """

    def __init__(self, shape, dtype="float32", name=None, has_mask=False):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.has_mask = has_mask
        self.node = None  # the Node that produced this tensor; None for inputs
        self.input_layer = None  # the InputLayer, for the tensors `Input` returns
        self.index = 0  # position among the node's flattened outputs

    @property
    def ndim(self):
        return len(self.shape)

    def placeholder(self, size):
        """A zero array of this shape, each unknown size set to `size`, with a mask if one travels."""
        from rnnkit.tensor import wrap

        shape = tuple(size if d is None else d for d in self.shape)
        value = wrap(np.zeros(shape, self.dtype))
        if self.has_mask:
            value._keras_mask = wrap(np.ones(shape[:2], bool))
        return value

    def __repr__(self):
        name = f", name={self.name}" if self.name else ""
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}{name}>"


def is_symbolic(structure):
    """Whether any leaf of a nested structure is a KerasTensor."""
    if not tree.is_nested(structure):
        return isinstance(structure, KerasTensor)
    # Any order will do: no sorted copy of a dict's keys, as flattening would make.
    return any(map(is_symbolic, structure.values() if isinstance(structure, dict) else structure))


def output_spec(first, second):
    """The KerasTensor of an output seen with two placeholder sizes: sizes that differ are None."""
    shape = tuple(a if a == b else None for a, b in zip(first.shape, second.shape))
    return KerasTensor(shape, first.dtype, has_mask=getattr(first, "_keras_mask", None) is not None)
