"""Writes a model as ONNX: recurrent layers as the ONNX LSTM, GRU and RNN operators.

The `onnx` package (the `rnnkit[onnx]` extra) builds and checks the file; nothing else is
needed, and onnxruntime runs the result. What maps:

- `LSTM`, `GRU`, `SimpleRNN` (and `RNN` over one built-in cell or a stack of them): one ONNX
  operator each, with the spec's gate order (LSTM i, o, f, c; GRU z, r, h) and bias layout
  (`[Wb, Rb]`), `linear_before_reset=1` for a GRU with `reset_after=True`; `go_backwards` as
  `direction="reverse"`; `initial_state` inputs; `return_state` outputs.
- `Bidirectional` as one operator with `direction="bidirectional"`, its merge ("concat",
  "sum", "mul", "ave", or both outputs) as operators after it.
- Masks from `Masking` or `Embedding(mask_zero=True)` become the operators' `sequence_lens`
  (the count of unmasked steps per sample): exact for right-padded sequences (every masked step
  after every unmasked one), which is what padding makes; other mask patterns are not
  representable by ONNX's recurrent operators.
- `Dense`, `Activation`, `BatchNormalization` (inference), `LayerNormalization`, `Embedding`
  (Gather), `Dropout` and the other noise layers (identity), `RepeatVector`, `Flatten`,
  `Reshape`, `Add`, `Concatenate`, `TimeDistributed` over a layer that acts on the last axis.

The batch axis is dynamic, and so is the time axis of sequence inputs.
"""

import os
import tempfile

import numpy as np

from rnnkit import tree
from rnnkit.export.onnx_graph import _Graph, _onnx, _Unsupported
from rnnkit.export.onnx_layers import _convert_node

DEFAULT_OPSET = 17
_MIN_OPSET = 14  # layout attributes and Reshape's allowzero; LayerNormalization needs 17


def _elem_type(onnx, dtype):
    mapping = {
        "float32": onnx.TensorProto.FLOAT,
        "float64": onnx.TensorProto.DOUBLE,
        "int32": onnx.TensorProto.INT32,
        "int64": onnx.TensorProto.INT64,
        "bool": onnx.TensorProto.BOOL,
    }
    name = np.dtype(dtype).name
    if name not in mapping:
        raise ValueError(f"ONNX export: inputs of dtype {name} are not supported (expected float32, int32 or int64).")
    return mapping[name]


def _dims(shape, sequence):
    """ONNX dims: the batch axis named "batch", a sequence's time axis "time", other unknowns "dim_<i>"."""
    dims = []
    for i, d in enumerate(shape):
        if i == 0:
            dims.append("batch")
        elif i == 1 and (d is None or sequence):
            dims.append("time")
        else:
            dims.append(d if d is not None else f"dim_{i}")
    return dims


def _model_graph(model):
    """The model's symbolic input tensors (as the graph sees them), its Inputs and its nodes."""
    from rnnkit.models.functional import _graph
    from rnnkit.models.sequential import Sequential

    inputs = outputs = []
    if isinstance(model, Sequential) or getattr(model, "_nodes", None) is not None:
        inputs, outputs = model.inputs, model.outputs
    if not inputs or not outputs:
        raise ValueError(
            f"ONNX export: model {model.name!r} has no graph to export; expected a built Sequential model "
            "(with an Input or an input shape, or called once) or a functional Model; subclassed models are "
            "not supported."
        )
    sources = getattr(model, "_sources", None) or inputs
    return sources, inputs, outputs, _graph(sources, outputs)


def to_onnx(model, opset_version=None):
    """The `onnx.ModelProto` of a model (see `export_onnx`).

    Args:
        model: A built `Sequential` or functional `Model`.
        opset_version: The ONNX opset (default 17; at least 14).

    Returns:
        The checked `onnx.ModelProto`.

    Raises:
        ValueError: Listing every layer that cannot be exported, with the reason, or for a model
            without a graph or an opset below 14.
        ImportError: Without the `onnx` package.
    """
    onnx = _onnx()
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < _MIN_OPSET:
        raise ValueError(f"Argument `opset_version` expected an integer >= {_MIN_OPSET}, received {opset_version!r}.")
    sources, inputs, outputs, nodes = _model_graph(model)

    g = _Graph(onnx, int(opset))
    values = {}  # id(KerasTensor) -> (ONNX name, ONNX mask name or None)
    graph_inputs = []
    sequence_inputs = _sequence_inputs(sources, nodes)
    for i, (source, kt) in enumerate(zip(sources, inputs)):
        name = g.name(kt.name or f"input_{i}")
        graph_inputs.append(
            onnx.helper.make_tensor_value_info(
                name, _elem_type(onnx, kt.dtype), _dims(kt.shape, id(source) in sequence_inputs)
            )
        )
        values[id(source)] = (name, None)

    problems = []
    _convert_nodes(g, nodes, values, opset, problems)
    if problems:
        raise ValueError(
            f"ONNX export of model {model.name!r}: {len(problems)} layer(s) cannot be exported:\n  - "
            + "\n  - ".join(problems)
        )

    graph_outputs = []
    for i, kt in enumerate(outputs):
        name = g.name(f"output_{i}")
        g.nodes.append(onnx.helper.make_node("Identity", [values[id(kt)][0]], [name], name=g.name(f"{name}_node")))
        graph_outputs.append(
            onnx.helper.make_tensor_value_info(name, _elem_type(onnx, kt.dtype), _dims(kt.shape, kt.ndim >= 3))
        )
    graph = onnx.helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, initializer=g.initializers)
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", int(opset))], producer_name="rnnkit"
    )
    from rnnkit import __version__

    proto.producer_version = __version__
    # The oldest IR that the opset allows, so that older runtimes read the file too.
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.checker.check_model(proto)
    return proto


def _convert_nodes(g, nodes, values, opset, problems):
    """Converts layer calls in order; `values` maps id(KerasTensor) to (ONNX name, mask name), and
    every layer that cannot convert adds its reason to `problems`."""
    from rnnkit.symbolic import KerasTensor

    for node in nodes:
        layer = node.layer
        first = node.args[0] if node.args else None
        flat_in = [t for t in tree.flatten(first) if isinstance(t, KerasTensor)]
        try:
            if node.args[1:] or any(k not in ("initial_state", "mask", "training") for k in node.kwargs):
                raise _Unsupported("call arguments other than the inputs, initial_state, mask and training")
            kwargs = {}
            if node.kwargs.get("initial_state") is not None:
                kwargs["initial_state"] = [values[id(t)][0] for t in tree.flatten(node.kwargs["initial_state"])]
            if isinstance(node.kwargs.get("mask"), KerasTensor):
                kwargs["mask"] = g.op("Cast", [values[id(node.kwargs["mask"])][0]], to=9)
            args = [values[id(t)] for t in flat_in]
            if not args:
                raise _Unsupported("no input tensor")
            if layer.dtype is not None and np.dtype(layer.dtype) != np.float32 and type(layer).__name__ != "InputLayer":
                raise _Unsupported(f"dtype {layer.dtype} (float32 exports)")
            if _is_model(layer):
                results = _inline_model(g, layer, args, kwargs, opset, problems)
            else:
                results = _convert_node(g, layer, args, kwargs, [t.shape for t in flat_in], opset)
        except _Unsupported as reason:
            problems.append(f"{layer.name!r} ({type(layer).__name__}): {reason}")
            results = [(f"<unconverted {layer.name}>", None)] * len(tree.flatten(node.outputs))
        except KeyError:
            problems.append(
                f"{layer.name!r} ({type(layer).__name__}): an input that the model's graph does not compute"
            )
            results = [(f"<unconverted {layer.name}>", None)] * len(tree.flatten(node.outputs))
        flat_out = tree.flatten(node.outputs)
        if len(results) != len(flat_out):
            problems.append(f"{layer.name!r} ({type(layer).__name__}): {len(results)} outputs for {len(flat_out)}")
        for kt, result in zip(flat_out, results):
            values[id(kt)] = result


def _is_model(layer):
    from rnnkit.models.functional import Model

    return isinstance(layer, Model)


def _inline_model(g, model, args, kwargs, opset, problems):
    """A nested model's layers, inlined on the outer call's inputs (its masks included)."""
    if kwargs:
        raise _Unsupported("a nested model called with initial_state or mask arguments")
    try:
        sources, _, outputs, nodes = _model_graph(model)
    except ValueError as error:
        raise _Unsupported(str(error)) from None
    if len(sources) != len(args):
        raise _Unsupported(f"{len(args)} inputs for a model of {len(sources)}")
    values = {id(s): a for s, a in zip(sources, args)}
    _convert_nodes(g, nodes, values, opset, problems)
    return [values[id(kt)] for kt in outputs]


def _sequence_inputs(sources, nodes):
    """The ids of the inputs whose axis 1 is time: rank 3 and over, or what an Embedding or RNN reads."""
    sequence = {id(s) for s in sources if len(s.shape) >= 3}
    for node in nodes:
        if type(node.layer).__name__ == "Embedding":
            sequence.update(id(t) for t in node.input_tensors if len(t.shape) == 2)
    return sequence


def export_onnx(model, filepath, opset_version=None, verbose=False):
    """Writes `model` as an ONNX file that onnxruntime (or any ONNX runtime) runs.

    Args:
        model: A built `Sequential` or functional `Model` of the layers the module docstring
            lists (the recurrent layers, their wrappers, masks, dense, normalisation, embedding
            and reshaping layers).
        filepath: The path of the file to write (replaced atomically).
        opset_version: The ONNX opset (default 17; at least 14).
        verbose: Print where the file went.

    Returns:
        The `onnx.ModelProto` written.

    Raises:
        ValueError: Listing every layer that cannot be exported, with the reason.
        ImportError: Without the `onnx` package (`pip install 'rnnkit[onnx]'`).
    """
    proto = to_onnx(model, opset_version)
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".rnnkit-", suffix=".onnx.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(proto.SerializeToString())
        os.replace(temporary, filepath)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    if verbose:
        print(f"Saved ONNX model to {filepath}")
    return proto
