"""`Model`: a functional graph of layer calls (`Model(inputs, outputs)`), or a subclass with `call`."""

from rnnkit import tree
from rnnkit.layers.input_layer import InputLayer
from rnnkit.layers.layer import Layer, unique_name
from rnnkit.models import summary
from rnnkit.symbolic import KerasTensor


def _graph(inputs, outputs):
    """The layer calls between `inputs` and `outputs`, in the order they were made (so each
    comes after the calls it depends on)."""
    input_ids = {id(x) for x in tree.flatten(inputs)}
    nodes, seen = [], set()

    def visit(tensor):
        node = tensor.node
        if id(tensor) in input_ids or node is None or id(node) in seen:
            if node is None and id(tensor) not in input_ids:
                raise ValueError(
                    f"Graph disconnected: cannot obtain value for tensor {tensor}: it is not one of the "
                    "model's inputs. Pass every Input the outputs depend on to `Model(inputs=...)`."
                )
            return
        seen.add(id(node))
        for parent in node.input_tensors:
            visit(parent)
        nodes.append(node)

    for out in tree.flatten(outputs):
        if not isinstance(out, KerasTensor):
            raise TypeError(f"outputs: expected KerasTensors from layer calls on `Input`s, received {type(out).__name__}")
        visit(out)
    return sorted(nodes, key=lambda n: n.order)


class Model(Layer):
    """A model: `Model(inputs, outputs)` for the functional API, or subclassed with a `call`.

    Args:
        inputs: The `rk.Input(...)` tensors (one, or a list or dict).
        outputs: KerasTensors computed from them by layer calls.
        name: Optional name ("functional", "functional_1", ... by default).
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if inputs is None and outputs is None:
            super().__init__(name=name, **kwargs)
            self._nodes = None
            return
        super().__init__(name=name or unique_name("functional"), **kwargs)
        for x in tree.flatten(inputs):
            if not isinstance(x, KerasTensor) or x.input_layer is None:
                raise TypeError(f"inputs: expected tensors returned by `rk.Input`, received {x!r:.80}")
        self._inputs, self._outputs = inputs, outputs
        self._nodes = _graph(inputs, outputs)
        layers = [x.input_layer for x in tree.flatten(inputs)]
        for node in self._nodes:
            if all(node.layer is not l for l in layers):
                layers.append(node.layer)
        self._model_layers = layers
        self.built = True

    @property
    def layers(self):
        """The layers, inputs first, in the order the graph calls them."""
        return list(self._model_layers) if self._nodes is not None else list(self._layers)

    @property
    def inputs(self):
        return tree.flatten(self._inputs)

    @property
    def outputs(self):
        return tree.flatten(self._outputs)

    def get_layer(self, name=None, index=None):
        """A layer by name or index."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in self.layers]}.")

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None, mask=None):
        flat_in = tree.flatten(self._inputs)
        if isinstance(self._inputs, dict) and isinstance(inputs, dict):
            values = [inputs[k] for k in sorted(self._inputs)]
        else:
            values = tree.flatten(inputs) if len(flat_in) > 1 else [inputs]
        if len(values) != len(flat_in):
            raise ValueError(f"Model {self.name} expects {len(flat_in)} input(s), but it received {len(values)} input tensors.")
        computed = {}
        for kt, value in zip(flat_in, values):
            value = kt.input_layer._convert_input(value)
            if len(value.shape) != len(kt.shape) or any(d is not None and d != v for d, v in zip(kt.shape, value.shape)):
                raise ValueError(
                    f"Input {kt.name} of model {self.name} is incompatible: expected shape {kt.shape}, "
                    f"received {tuple(value.shape)}."
                )
            computed[id(kt)] = value
        for node in self._nodes:
            args, kwargs = tree.map_structure(
                lambda x: computed[id(x)] if isinstance(x, KerasTensor) else x, (node.args, node.kwargs)
            )
            out = node.layer(*args, **kwargs)
            for kt, value in zip(tree.flatten(node.outputs), tree.flatten(out)):
                computed[id(kt)] = value
        return tree.map_structure(lambda kt: computed[id(kt)], self._outputs)

    def _maybe_build(self, inputs):
        self.built = True

    def _summary_rows(self):
        rows = []
        for layer in self.layers:
            if isinstance(layer, InputLayer):
                rows.append((layer, ["[" + str(layer.batch_shape) + "]"], []))
                continue
            node = next(n for n in layer.inbound_nodes if n in self._nodes)
            shapes = [t.shape for t in tree.flatten(node.outputs)]
            links = []
            for t in node.input_tensors:
                source = t.input_layer if t.node is None else t.node.layer
                node_index = 0 if t.node is None else source.inbound_nodes.index(t.node)
                links.append(f"{source.name}[{node_index}][{t.index}]")
            rows.append((layer, shapes, links))
        return rows

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Prints the layers with their output shapes and parameter counts."""
        if self._nodes is None:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` or by "
                "calling the model on a batch of data."
            )
        summary.print_summary(self, self._summary_rows(), line_length, positions, print_fn)
