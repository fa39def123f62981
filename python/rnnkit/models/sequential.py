"""`Sequential`: a linear stack of layers."""

from rnnkit import tree
from rnnkit._naming import unique_name
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.layer import Layer
from rnnkit.models import summary
from rnnkit.models.functional import Model
from rnnkit.symbolic import KerasTensor


class Sequential(Model):
    """Layers applied one after the other, each to the previous one's output.

    The input shape comes from an `rk.Input(...)` (or `InputLayer`) added first, or from the
    first layer's `input_shape=`; otherwise the model is built on its first call.

    Args:
        layers: Optional list of layers.
        trainable: Whether the weights are trained.
        name: Optional name ("sequential", "sequential_1", ... by default).
        device: Where the model computes ("cpu", "cuda", "auto"); None follows `rk.device`.
    """

    def __init__(self, layers=None, trainable=True, name=None, device=None):
        super().__init__(name=name or unique_name("sequential"), trainable=trainable, device=device)
        self._stack = []
        self._input = None  # the symbolic input once the input shape is known
        self._output = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        """The layers, without the input layer."""
        return list(self._stack)

    def add(self, layer):
        """Appends a layer (or an `Input` tensor, which fixes the input shape)."""
        if isinstance(layer, KerasTensor) and layer.input_layer is not None:
            layer = layer.input_layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input is not None:
                raise ValueError("An Input can only be added first to a Sequential model.")
            self._input = self._output = layer.output
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"The added layer must be an instance of class Layer. Received: layer={layer} of type {type(layer)}."
            )
        if any(layer is existing for existing in self._stack):
            raise ValueError(f"Layer {layer.name} is already in the model.")
        self._stack.append(layer)
        self._model_layers = self._stack  # tracks the weights
        if self._input is None and len(self._stack) == 1 and layer._batch_input_shape is not None:
            shape = layer._batch_input_shape
            self._input = self._output = Input(batch_shape=shape)
        if self._output is not None:
            self._output = layer(self._output)
            self._check_single_output(layer)
            self.built = True  # the input shape is known, so every layer is built (as Keras)

    def _check_single_output(self, layer):
        if not isinstance(self._output, KerasTensor):
            raise ValueError(
                f"All layers in a Sequential model should have a single output tensor. Layer {layer.name} "
                "has several; use the functional API instead."
            )

    def pop(self):
        """Removes and returns the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._layers = [kept for kept in self._layers if kept is not layer]
        if self._input is not None:
            self._output = self._input
            for remaining in self._stack:
                self._output = remaining(self._output)
        return layer

    def build(self, input_shape=None):
        """Builds the layers for inputs of `input_shape` (batch axis included)."""
        if self._input is None:
            self._input = self._output = Input(batch_shape=tuple(input_shape))
            for layer in self._stack:
                self._output = layer(self._output)
                self._check_single_output(layer)
        self.built = True

    def call(self, inputs, training=None, mask=None):
        for layer in self._stack:
            inputs = layer(inputs)
        return inputs

    def _maybe_build(self, inputs):
        if self._input is None:
            self.build((None, *inputs.shape[1:]))
        self.built = True

    @property
    def inputs(self):
        """`[input tensor]` once the input shape is known, else `[]`."""
        return [] if self._input is None else [self._input]

    @property
    def outputs(self):
        """`[output tensor]` once the input shape is known, else `[]`."""
        return [] if self._output is None else [self._output]

    @property
    def input(self):
        """The input tensor.

        Raises:
            AttributeError: If the input shape is not known yet.
        """
        if self._input is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input yet.")
        return self._input

    @property
    def output(self):
        """The output tensor.

        Raises:
            AttributeError: If the input shape is not known yet.
        """
        if self._output is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined output yet.")
        return self._output

    def get_config(self):
        from rnnkit.layers import serialization

        config = {
            "name": self.name,
            "trainable": self.trainable,
            "layers": [serialization.serialize(layer) for layer in self._stack],
        }
        if self._input is not None:
            config["build_input_shape"] = list(self._input.shape)
            config["input_dtype"] = self._input.dtype.name
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from rnnkit.layers import serialization

        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("build_input_shape") is not None:
            model.add(Input(batch_shape=tuple(config["build_input_shape"]), dtype=config.get("input_dtype")))
        for entry in config["layers"]:
            model.add(serialization.deserialize(entry, custom_objects))
        return model

    def _summary_rows(self):
        rows = []
        for layer in self._stack:
            node = layer.inbound_nodes[-1] if layer.inbound_nodes else None
            shapes = ["?"] if node is None else [t.shape for t in tree.flatten(node.outputs)]
            rows.append((layer, shapes, None))
        return rows

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Prints the layers with their output shapes and parameter counts."""
        summary.print_summary(self, self._summary_rows(), line_length, positions, print_fn)
