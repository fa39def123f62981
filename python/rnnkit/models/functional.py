"""`Model`: a functional graph of layer calls (`Model(inputs, outputs)`), or a subclass with `call`."""

import json

from rnnkit import tree
from rnnkit._naming import unique_name
from rnnkit.distribution.state import is_chief
from rnnkit.layers import serialization
from rnnkit.layers.input_layer import InputLayer
from rnnkit.layers.layer import Layer
from rnnkit.models import summary
from rnnkit.models.training import Trainer
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
            raise TypeError(
                f"outputs: expected KerasTensors from layer calls on `Input`s, received {type(out).__name__}"
            )
        visit(out)
    return sorted(nodes, key=lambda n: n.order)


def _layers_by_depth(nodes, inputs, outputs):
    """The graph's layers in Keras's order (which is also `get_weights()`'s): deepest first, that
    is farthest from the outputs, ties broken by the order a depth-first walk from the outputs
    finishes them."""
    depth, finish = {}, {}
    input_ids = {id(x) for x in tree.flatten(inputs)}

    def walk(node, d):
        if d <= depth.get(id(node), -1):
            return
        depth[id(node)] = d
        for parent in node.input_tensors:
            if parent.node is not None and id(parent) not in input_ids:
                walk(parent.node, d + 1)
        finish.setdefault(id(node.layer), len(finish))

    for out in tree.flatten(outputs):
        if out.node is not None and id(out) not in input_ids:
            walk(out.node, 0)
    layer_depth = {}
    for node in nodes:
        layer_depth[id(node.layer)] = max(layer_depth.get(id(node.layer), 0), depth[id(node)])
    layers = list({id(n.layer): n.layer for n in nodes}.values())
    return sorted(layers, key=lambda layer: (-layer_depth[id(layer)], finish[id(layer)]))


def _stand_in(tensor):
    """An `Input` of the same shape and dtype, standing for an inner tensor used as a model input."""
    return InputLayer(batch_shape=tensor.shape, dtype=tensor.dtype.name).output


def _one_or_list(values):
    return values[0] if len(values) == 1 else values


def _is_tensor_ref(value):
    return isinstance(value, list) and len(value) == 4 and value[0] == "__tensor__"


def _tensor_refs(value):
    """The tensor references in a config value."""
    if _is_tensor_ref(value):
        return [value]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [r for child in children for r in _tensor_refs(child)]


def _resolve(value, outputs):
    """A config value with each tensor reference replaced by the KerasTensor it names."""
    if _is_tensor_ref(value):
        return tree.flatten(outputs[(value[1], value[2])])[value[3]]
    if isinstance(value, dict):
        return {k: _resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


class Model(Trainer, Layer):
    """A model: `Model(inputs, outputs)` for the functional API, or subclassed with a `call`.

    Any symbolic tensors can be the inputs and outputs, inner ones of another model included (to
    build an encoder or a one-step decoder from a trained seq2seq model): the new model calls the
    same layers, so it shares their weights. An inner tensor used as an input gets an `Input` of
    its shape standing for it, which `model.input` shows, as in Keras.

    Args:
        inputs: The input KerasTensors (one, or a list or dict), usually from `rk.Input(...)`.
        outputs: KerasTensors computed from them by layer calls (one, or a list or dict).
        name: Optional name ("functional", "functional_1", ... by default).
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if inputs is None and outputs is None:
            super().__init__(name=name, **kwargs)
            self._nodes = None
            return
        super().__init__(name=name or unique_name("functional"), **kwargs)
        for x in tree.flatten(inputs):
            if not isinstance(x, KerasTensor):
                raise TypeError(f"inputs: expected symbolic tensors such as `rk.Input`'s, received {x!r:.80}")
        # The tensors the inputs' values stand for in the graph, and their `Input`s.
        self._sources = tree.flatten(inputs)
        self._inputs = tree.map_structure(lambda x: x if x.input_layer is not None else _stand_in(x), inputs)
        self._stand_ins = {id(x): s for x, s in zip(self._sources, tree.flatten(self._inputs)) if x is not s}
        self._outputs = outputs
        self._nodes = _graph(inputs, outputs)
        entry_layers = [x.input_layer for x in tree.flatten(self._inputs)]
        self._model_layers = entry_layers + _layers_by_depth(self._nodes, inputs, outputs)
        self.built = True

    @property
    def layers(self):
        """The layers, inputs first, in the order the graph calls them."""
        return list(self._model_layers) if self._nodes is not None else list(self._layers)

    @property
    def inputs(self):
        """The input tensors, as a flat list."""
        return tree.flatten(self._inputs)

    @property
    def outputs(self):
        """The output tensors, as a flat list."""
        return tree.flatten(self._outputs)

    @property
    def input(self):
        """The inputs as given to the constructor: one tensor, or a list or dict of them."""
        return self._inputs if self._nodes is not None else super().input

    @property
    def output(self):
        """The outputs as given to the constructor: one tensor, or a list or dict of them."""
        return self._outputs if self._nodes is not None else super().output

    @property
    def input_shape(self):
        """The inputs' shapes: one tuple, or a list of tuples for several inputs.

        Raises:
            AttributeError: If the model's inputs are not known yet.
        """
        return self._shapes(self.inputs, "input")

    @property
    def output_shape(self):
        """The outputs' shapes: one tuple, or a list of tuples for several outputs.

        Raises:
            AttributeError: If the model's outputs are not known yet.
        """
        return self._shapes(self.outputs, "output")

    def _shapes(self, tensors, what):
        if not tensors:
            raise AttributeError(f"Model '{self.name}' has no defined {what} shape yet.")
        return _one_or_list([t.shape for t in tensors])

    def get_layer(self, name=None, index=None):
        """A layer by name or by its index in `layers`, as Keras's `get_layer`.

        Args:
            name: The layer's name.
            index: The layer's position in `model.layers` (negative counts from the end).

        Returns:
            The layer.

        Raises:
            ValueError: If both or neither are given, or no layer has that name or index.
        """
        if name is not None and index is not None:
            raise ValueError(f"get_layer: expected a name or an index, received both (name={name!r}, index={index}).")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"get_layer: index {index} is out of range; model {self.name} has {len(layers)} layers."
                )
            return layers[index]
        if name is None:
            raise ValueError("get_layer: expected a name or an index, received neither.")
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}.")

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None, mask=None):
        flat_in = tree.flatten(self._inputs)
        if isinstance(inputs, dict):
            # Keyed by the dict's keys for a model made with a dict of inputs, else by the
            # `Input`s' names (as Keras).
            keys = sorted(self._inputs) if isinstance(self._inputs, dict) else [kt.name for kt in flat_in]
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(
                    f"Model {self.name}: the input dict lacks {missing}; expected the keys {keys}, "
                    f"received {sorted(inputs)}."
                )
            values = [inputs[k] for k in keys]
        else:
            values = tree.flatten(inputs) if len(flat_in) > 1 else [inputs]
        if len(values) != len(flat_in):
            raise ValueError(
                f"Model {self.name} expects {len(flat_in)} input(s), but it received {len(values)} input tensors."
            )
        computed = {}
        for kt, source, value in zip(flat_in, self._sources, values):
            value = kt.input_layer._convert_input(value)
            if len(value.shape) != len(kt.shape) or any(
                d is not None and d != v for d, v in zip(kt.shape, value.shape)
            ):
                raise ValueError(
                    f"Input {kt.name} of model {self.name} is incompatible: expected shape {kt.shape}, "
                    f"received {tuple(value.shape)}."
                )
            computed[id(source)] = value
        for node in self._nodes:
            args, kwargs = node.bind(computed)
            out = node.layer(*args, **kwargs)
            for kt, value in zip(tree.flatten(node.outputs), tree.flatten(out)):
                computed[id(kt)] = value
        return tree.map_structure(lambda kt: computed[id(kt)], self._outputs)

    def _maybe_build(self, inputs):
        self.built = True

    def _attach_mask(self, inputs, mask, outputs):
        """The outputs already carry the masks the model's layers computed."""

    def _summary_rows(self):
        rows = []
        for layer in self.layers:
            if isinstance(layer, InputLayer):
                rows.append((layer, ["[" + str(layer.batch_shape) + "]"], []))
                continue
            # A shared layer lists the inputs of each of its calls in this model; its shape is
            # "multiple" when the calls' output shapes differ (as tf.keras prints).
            nodes = [n for n in layer.inbound_nodes if n in self._nodes]
            shape_sets = {tuple(t.shape for t in tree.flatten(n.outputs)) for n in nodes}
            shapes = list(shape_sets.pop()) if len(shape_sets) == 1 else ["multiple"]
            links = []
            for node in nodes:
                for t in node.input_tensors:
                    t = self._stand_ins.get(id(t), t)
                    source = t.input_layer if t.node is None else t.node.layer
                    node_index = 0 if t.node is None else source.inbound_nodes.index(t.node)
                    links.append(f"{source.name}[{node_index}][{t.index}]")
            rows.append((layer, shapes, links))
        return rows

    def get_config(self):
        """The graph: each layer's config and, per call, its arguments with the tensors replaced by
        `["__tensor__", layer_name, call_index, output_index]` references."""
        if self._nodes is None:
            raise NotImplementedError(f"Model {self.name} is subclassed: override get_config to save it.")

        def ref(x):
            if not isinstance(x, KerasTensor):
                return x
            x = self._stand_ins.get(id(x), x)
            source = x.input_layer if x.node is None else x.node.layer
            call = 0 if x.node is None else [n for n in self._nodes if n.layer is source].index(x.node)
            return ["__tensor__", source.name, call, x.index]

        layers = []
        for layer in self.layers:
            entry = {**serialization.serialize(layer), "name": layer.name}
            entry["calls"] = [
                tree.map_structure(ref, [list(n.args), n.kwargs]) for n in self._nodes if n.layer is layer
            ]
            layers.append(entry)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "input_layers": tree.map_structure(ref, self._inputs),
            "output_layers": tree.map_structure(ref, self._outputs),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the graph `get_config` describes (with fresh weights)."""
        made = {}
        outputs = {}  # (layer name, call index) -> outputs
        pending = []
        for entry in config["layers"]:
            layer = serialization.deserialize(entry, custom_objects)
            made[entry["name"]] = layer
            if isinstance(layer, InputLayer):
                outputs[(entry["name"], 0)] = layer.output
            pending.extend((entry["name"], i, call) for i, call in enumerate(entry["calls"]))

        while pending:
            ready = [p for p in pending if all((r[1], r[2]) in outputs for r in _tensor_refs(p[2]))]
            if not ready:
                raise ValueError("Model config: the layer calls reference tensors that no layer produces.")
            name, index, (args, kwargs) = ready[0]
            outputs[(name, index)] = made[name](*_resolve(args, outputs), **_resolve(kwargs, outputs))
            pending.remove(ready[0])
        inputs, outs = (_resolve(config[key], outputs) for key in ("input_layers", "output_layers"))
        return cls(inputs, outs, name=config.get("name"))

    def to_json(self, **kwargs):
        """The architecture as a JSON string, for `rk.models.model_from_json`.

        Args:
            **kwargs: Passed to `json.dumps` (e.g. `indent=2`).

        Returns:
            The JSON of `{"module", "class_name", "config", "registered_name"}`.
        """
        return json.dumps(serialization.serialize(self), **kwargs)

    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """Quantizes the model's weights for inference, as Keras's `Model.quantize`: every
        Dense, Embedding and (beyond Keras) SimpleRNN/GRU/LSTM layer, alone, in `RNN` or in
        `Bidirectional` (see `rk.quantizers`). Other layers with weights stay as they are, with a
        warning. Build the model first.

        Args:
            mode: "int8" (Keras's "float8", "int4", "gptq" and "awq" raise
                NotImplementedError).
            config: Keras's `QuantizationConfig`; only None.
            filters: Which layers: a regex searched in their names, a list of them, or a
                callable of the layer; None for all.
            **kwargs: `type_check` (default True: refuse subclasses of the quantizable layers).

        Raises:
            ValueError: For an unknown mode or keyword, a bad `filters`, or a layer not built or
                already quantized.
        """
        from rnnkit import quantizers

        type_check = kwargs.pop("type_check", True)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        quantizers.quantize_model(self, mode, config, filters, type_check)

    def save(self, filepath, overwrite=True, zipped=None):
        """Saves the architecture, compile settings, weights and optimizer state to a Keras 3
        `.keras` archive, which Keras's `load_model` reads too (see `rk.saving.save_model`)."""
        from rnnkit import saving

        if is_chief():  # one process writes in data-parallel training
            saving.save_model(self, filepath, overwrite=overwrite, zipped=zipped)

    def save_weights(self, filepath, overwrite=True):
        """Saves the weights: Keras's HDF5 layout for a `.weights.h5` name, rnnkit's npz otherwise
        (see `rk.saving.save_weights`)."""
        from rnnkit import saving

        if is_chief():  # one process writes in data-parallel training
            saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Loads weights into this architecture from `save_weights`' or Keras's files (`.weights.h5`,
        legacy `.h5`, `.keras`) or rnnkit's npz (see `rk.saving.load_weights`)."""
        from rnnkit import saving

        saving.load_weights(self, filepath)

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Writes the model for inference elsewhere, as Keras 3's `export` (ONNX only).

        Args:
            filepath: The file to write.
            format: "onnx" (see `rk.export.export_onnx`).
            verbose: Print where the file went.
            input_signature: Accepted for Keras compatibility; only None (the model's inputs,
                with dynamic batch and time axes).
            **kwargs: `opset_version` (default 17, at least 14).
        """
        from rnnkit.export import onnx

        if format != "onnx":
            raise ValueError(f"Argument `format` expected 'onnx', received {format!r}.")
        if input_signature is not None:
            raise ValueError(f"Argument `input_signature` expected None, received {input_signature!r}.")
        unknown = sorted(set(kwargs) - {"opset_version"})
        if unknown:
            raise ValueError(f"Unknown keyword arguments for export: {unknown}; expected opset_version.")
        onnx.export_onnx(self, filepath, opset_version=kwargs.get("opset_version"), verbose=bool(verbose))

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Prints the layers with their output shapes and parameter counts."""
        if self._nodes is None:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` or by "
                "calling the model on a batch of data."
            )
        summary.print_summary(self, self._summary_rows(), line_length, positions, print_fn)
