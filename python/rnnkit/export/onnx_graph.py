"""The ONNX graph under construction (`_Graph`), the lazy import of the `onnx` package, and the
error a layer without an ONNX conversion raises (`_Unsupported`).
"""

import numpy as np


class _Unsupported(Exception):
    """A layer (or one of its options) that has no ONNX conversion; the message says why."""


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "Exporting to ONNX needs the `onnx` package: pip install 'rnnkit[onnx]' (or pip install onnx)."
        ) from error
    return onnx


class _Graph:
    """ONNX nodes, initializers and fresh names, built up one operator at a time."""

    def __init__(self, onnx, opset):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._names = set()
        self._weights = {}

    def name(self, hint):
        hint = "".join(c if c.isalnum() or c in "_./" else "_" for c in hint)
        name, k = hint, 0
        while name in self._names:
            k += 1
            name = f"{hint}_{k}"
        self._names.add(name)
        return name

    def const(self, value, hint="const", dtype=None):
        array = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def weight(self, layer, key, value):
        """An initializer for `layer`'s `key`, made once however many times the layer is called."""
        cache = (id(layer), key)
        if cache not in self._weights:
            self._weights[cache] = self.const(np.asarray(value), f"{layer.name}/{key}")
        return self._weights[cache]

    def ints(self, values, hint="axes"):
        return self.const(np.asarray(values, np.int64), hint)

    def op(self, op_type, inputs, outputs=1, hint=None, **attributes):
        hint = hint or op_type.lower()
        names = [self.name(f"{hint}_out{i}" if outputs > 1 else hint) for i in range(outputs)]
        self.nodes.append(
            self.onnx.helper.make_node(op_type, list(inputs), names, name=self.name(f"{hint}_node"), **attributes)
        )
        return names[0] if outputs == 1 else names
