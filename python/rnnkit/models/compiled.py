"""The compiled execution of a model (`compile(jit_compile=...)`): the graph of built-in layers
planned once, then run without the generic layer-call machinery.

A plan lists, in graph order, each layer's `call` with the arguments `Layer.__call__` would give
it. It holds only for models whose layers are all of the built-in classes listed here (exactly:
a subclass may override `call`), called on one tensor each, with no masks, no activity
regularizers and no device of their own: for those `__call__` adds nothing but checks, mask
bookkeeping and context switches, so running their `call`s directly computes the same ops, on
the same tape, in the same order, with the same random draws. The checks are kept by running
the first call of each input signature (shapes, dtypes, training flag) through `__call__`.

At inference outside any tape (`predict`, `evaluate`), nothing is recorded, so the plan passes
arrays from layer to layer: the recurrent layers, BatchNormalization and Dense compute their
`call`'s numbers on arrays (`_inference_array`), without Tensors or the checks their first call
passed; the other layers run their `call`.
"""

import warnings

import numpy as np

from rnnkit import tree
from rnnkit.layers.activation import Activation
from rnnkit.layers.core import Dense, Identity
from rnnkit.layers.layer import Layer, _call_context, call_parameters
from rnnkit.layers.normalization import BatchNormalization, LayerNormalization
from rnnkit.layers.recurrent import GRU, LSTM, SimpleRNN
from rnnkit.layers.regularization import Dropout
from rnnkit.layers.reshaping import Flatten, RepeatVector
from rnnkit.symbolic import KerasTensor
from rnnkit.tape import recording
from rnnkit.tensor import Tensor, wrap

# The layers whose `call` a plan runs directly.
PLANNED_LAYERS = (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    GRU,
    Identity,
    LayerNormalization,
    LSTM,
    RepeatVector,
    SimpleRNN,
)


def check_jit_compile(value):
    """`value` if it is one of `compile(jit_compile=...)`'s values ("auto", True, False), else
    ValueError."""
    if not (isinstance(value, bool) or (isinstance(value, str) and value == "auto")):
        raise ValueError(f"jit_compile: expected 'auto', True or False, received {value!r}.")
    return value


def check_run_eagerly(value):
    """`value` if it is a bool, else ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"run_eagerly: expected True or False, received {value!r}.")
    return value


def _plain(layer):
    """Whether `layer.__call__` adds nothing to `layer.call` but checks (see the module doc)."""
    return type(layer) in PLANNED_LAYERS and layer.activity_regularizer is None and layer.device is None


def _steps(model):
    """The `(layer, input KerasTensor, output KerasTensor)` calls of `model` in graph order, or
    the reason it cannot be planned."""
    if (
        type(model).call is not _model_call(model)
        or type(model).__call__ is not Layer.__call__
        or (not hasattr(model, "_stack") and getattr(model, "_nodes", None) is None)
    ):
        return "it is a subclassed model"
    if model.activity_regularizer is not None or model.device is not None:
        return "the model has an activity regularizer or a device of its own"
    from rnnkit.models.sequential import Sequential

    if isinstance(model, Sequential):
        if model._input is None:
            return "the model is not built"
        tensors = [model._input]
        for layer in model._stack:
            node = next((n for n in layer.inbound_nodes if n.args and n.args[0] is tensors[-1]), None)
            if node is None or len(node.args) != 1 or node.kwargs:
                return f"layer {layer.name} was not called on the previous layer's output alone"
            tensors.append(node.outputs)
        nodes = [(layer, tensors[i], tensors[i + 1]) for i, layer in enumerate(model._stack)]
    else:
        nodes = [(node.layer, node.args[0] if node.args else None, node.outputs) for node in model._nodes]
        if any(
            len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], KerasTensor) for node in model._nodes
        ):
            return "a layer is called with several arguments, keyword arguments or a structure of tensors"
    for layer, _, output in nodes:
        if not _plain(layer):
            return f"layer {layer.name} ({type(layer).__name__}) is not one the plan runs directly"
        if not isinstance(output, KerasTensor) or output.has_mask:
            return f"layer {layer.name} returns several tensors or a mask"
    return [(layer, id(x), id(y), "training" in call_parameters(type(layer))) for layer, x, y in nodes]


def _model_call(model):
    from rnnkit.models.functional import Model
    from rnnkit.models.sequential import Sequential

    return Sequential.call if isinstance(model, Sequential) else Model.call


class GraphPlan:
    """A model's layers planned for direct calls (see the module doc).

    Args:
        model: A functional or Sequential model.
    """

    def __init__(self, model):
        self.model = model
        self.layers = self._structure(model)
        plan = _steps(model)
        self.reason = plan if isinstance(plan, str) else None
        self.steps = None if self.reason else plan
        if self.steps is not None:
            from rnnkit.models.sequential import Sequential

            # A Sequential model's call hands its input to the first layer as is; a functional
            # model's converts each input with its `Input` first.
            if isinstance(model, Sequential):
                self.sources, self.input_layers, self.structure = [id(model._input)], [None], model._output
            else:
                self.sources = [id(s) for s in model._sources]
                self.input_layers = [kt.input_layer for kt in tree.flatten(model._inputs)]
                self.structure = model._outputs
        self.checked = set()  # the signatures `__call__` ran once without an error

    @staticmethod
    def _structure(model):
        """What the plan depends on: the layers, and a Sequential model's input once built."""
        return (*model.layers, getattr(model, "_input", None))

    def matches(self, model):
        """Whether the plan still describes `model` (a Sequential model may have grown or been
        built since)."""
        return model is self.model and self._structure(model) == self.layers

    def signature(self, inputs, training):
        """What a call's numbers depend on beyond the weights (the inputs' structure, shapes and
        dtypes, and the training flag), or None for a call the plan cannot take: `inputs` must be
        a Tensor, or a list of Tensors in the model's input order, without masks."""
        if self.steps is None:
            return None
        single = isinstance(inputs, Tensor)
        values = [inputs] if single else inputs
        if not isinstance(values, (list, tuple)) or len(values) != len(self.sources):
            return None
        if not all(isinstance(v, Tensor) and v._keras_mask is None for v in values):
            return None
        return (single, bool(training), *((v.shape, v.dtype) for v in values))

    def run(self, inputs, training):
        """The model's outputs for `inputs`, a call of a signature that `__call__` ran once."""
        values = [inputs] if isinstance(inputs, Tensor) else inputs
        training = bool(training)
        model = self.model
        model._clear_losses()  # as the outermost `__call__` does (a loss added outside a call goes)
        computed = {}
        for source, input_layer, value in zip(self.sources, self.input_layers, values):
            value = model._convert_input(value)
            computed[source] = value if input_layer is None else input_layer._convert_input(value)
        with _call_context(training):
            if not training and not recording():
                return self._infer({key: np.asarray(value) for key, value in computed.items()})
            for layer, x, y, takes_training in self.steps:
                inputs = layer._convert_input(computed[x])
                computed[y] = layer.call(inputs, training=training) if takes_training else layer.call(inputs)
        return self._outputs(computed)

    def _infer(self, arrays):
        """The steps at inference outside any tape, from the inputs' arrays: each layer's
        `_inference_array` (the same numbers without Tensors, tape or checks, which the call's
        signature passed before) where it has one that applies, else its `call`."""
        for layer, x, y, takes_training in self.steps:
            value = arrays[x]
            if value.dtype != layer.dtype:  # as `call`'s inputs are cast
                value = np.asarray(layer._convert_input(wrap(value)))
            infer = getattr(layer, "_inference_array", None)
            output = None if infer is None else infer(value)
            if output is None:
                inputs = wrap(value)
                output = np.asarray(layer.call(inputs, training=False) if takes_training else layer.call(inputs))
            arrays[y] = output
        return tree.map_structure(wrap, self._outputs(arrays))

    def _outputs(self, computed):
        """The model's outputs, in its structure, from the values computed by id."""
        if isinstance(self.structure, KerasTensor):
            return computed[id(self.structure)]
        return tree.map_structure(lambda kt: computed[id(kt)], self.structure)


def planned_call(model, inputs, training):
    """`model(inputs, training=training)`, through the model's plan when compilation is on and
    the model can be planned; a one-time warning when `jit_compile=True` cannot be honoured."""
    if model.run_eagerly or model._jit_compile is False:
        return model(inputs, training=training)
    plan = model._graph_plan
    if plan is None or not plan.matches(model):
        plan = model._graph_plan = GraphPlan(model)
        if plan.reason is not None and model._jit_compile is True:
            warnings.warn(
                f"Model {model.name}: jit_compile=True, but the model runs eagerly ({plan.reason}); "
                "compiled steps cover functional and Sequential models of the layers "
                f"{', '.join(sorted(c.__name__ for c in PLANNED_LAYERS))}.",
                stacklevel=3,
            )
    signature = plan.signature(inputs, training)
    if signature in plan.checked:
        return plan.run(inputs, training)
    # The first call of a signature runs through `__call__`, with every check.
    outputs = model(inputs, training=training)
    if signature is not None:
        plan.checked.add(signature)
    return outputs
