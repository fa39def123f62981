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

from rnnkit import activations, tree

DEFAULT_OPSET = 17
_MIN_OPSET = 14  # layout attributes and Reshape's allowzero; LayerNormalization needs 17
_INT64_MIN = np.iinfo(np.int64).min

# Layers that compute nothing at inference.
_IDENTITY_LAYERS = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
}


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


# --- activations -------------------------------------------------------------------------------

# Activations of the recurrent operators (ONNX's names, with alpha and beta where they take them).
_RNN_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
}


def _activation_name(fn):
    name = activations.serialize(fn)
    return name if isinstance(name, str) else None


def _rnn_activation_attributes(functions):
    """`activations`, `activation_alpha`, `activation_beta` for a recurrent operator."""
    names, alphas, betas = [], [], []
    for fn in functions:
        name = _activation_name(fn)
        if name not in _RNN_ACTIVATIONS:
            raise _Unsupported(
                f"activation {name or fn!r} has no ONNX recurrent equivalent (expected one of "
                f"{sorted(_RNN_ACTIVATIONS)})"
            )
        onnx_name, alpha, beta = _RNN_ACTIVATIONS[name]
        names.append(onnx_name)
        if alpha is not None:
            alphas.append(alpha)
        if beta is not None:
            betas.append(beta)
    attributes = {"activations": names}
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    return attributes


def _apply_activation(g, fn, x, hint):
    """`fn(x)` as ONNX operators (the identity for linear)."""
    name = _activation_name(fn)
    simple = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "softplus": "Softplus",
        "softsign": "Softsign",
        "exponential": "Exp",
    }
    if name == "linear":
        return x
    if name in simple:
        return g.op(simple[name], [x], hint=hint)
    if name in ("softmax", "log_softmax"):
        return g.op("Softmax" if name == "softmax" else "LogSoftmax", [x], hint=hint, axis=-1)
    if name == "elu":
        return g.op("Elu", [x], hint=hint, alpha=1.0)
    if name == "selu":
        return g.op("Selu", [x], hint=hint, alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], hint=hint, alpha=0.2)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], hint=hint, alpha=1.0 / 6.0, beta=0.5)
    if name == "relu6":
        return g.op("Clip", [x, g.const(np.float32(0)), g.const(np.float32(6))], hint=hint)
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])], hint=hint)
    if name == "gelu":
        erf = g.op("Erf", [g.op("Div", [x, g.const(np.float32(np.sqrt(2.0)))])])
        half = g.op("Mul", [x, g.const(np.float32(0.5))])
        return g.op("Mul", [half, g.op("Add", [erf, g.const(np.float32(1))])], hint=hint)
    raise _Unsupported(f"activation {name or fn!r} has no ONNX conversion here")


# --- recurrent layers ---------------------------------------------------------------------------

_ONNX_GATES = {"lstm": (0, 3, 1, 2), "gru": (0, 1, 2), "simple_rnn": (0,)}  # Keras gate of each ONNX gate
_OPS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


def _reorder(array, order, axis):
    parts = np.split(np.asarray(array, np.float32), len(order), axis=axis)
    return np.concatenate([parts[i] for i in order], axis=axis)


def _cell_weights(cell):
    """W, R, B (one direction, no leading axis) in ONNX's layout; B None without bias."""
    order = _ONNX_GATES[cell.kind]
    w = _reorder(cell.kernel, order, axis=1).T
    r = _reorder(cell.recurrent_kernel, order, axis=1).T
    b = None
    if cell.use_bias:
        bias = np.asarray(cell.bias, np.float32)
        if cell.kind == "gru" and cell.reset_after:
            b = np.concatenate([bias[0], bias[1]])
        else:
            b = np.concatenate([_reorder(bias, order, axis=0), np.zeros_like(bias)])
    return w, r, b


def _check_cell(cell):
    from rnnkit.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell

    if type(cell).call not in {cls.call for cls in (SimpleRNNCell, GRUCell, LSTMCell)}:
        raise _Unsupported(f"cell {type(cell).__name__} is not a built-in cell (LSTMCell, GRUCell, SimpleRNNCell)")
    if not cell.built:
        raise _Unsupported("the layer is not built")


def _cell_functions(cell):
    if cell.kind == "lstm":
        return [cell.recurrent_activation, cell.activation, cell.activation]
    if cell.kind == "gru":
        return [cell.recurrent_activation, cell.activation]
    return [cell.activation]


def _recurrent_op(g, layer_name, cells, x_tm, direction, seq_lens, initial):
    """One ONNX LSTM/GRU/RNN over time-major `x_tm` for `cells` (one, or forward and backward).

    Returns the names of Y `[T, dirs, B, H]`, Y_h `[dirs, B, H]` and (LSTM) Y_c.
    """
    kind = cells[0].kind
    if any(c.kind != kind or c.units != cells[0].units or c.use_bias != cells[0].use_bias for c in cells):
        raise _Unsupported("the forward and backward layers differ in kind, units or use_bias")
    if kind == "gru" and len({c.reset_after for c in cells}) != 1:
        raise _Unsupported("the forward and backward GRUs differ in reset_after")
    functions = [fn for c in cells for fn in _cell_functions(c)]
    attributes = _rnn_activation_attributes(functions)
    weights = [_cell_weights(c) for c in cells]
    units = cells[0].units
    w = g.const(np.stack([wr[0] for wr in weights]), f"{layer_name}/W")
    r = g.const(np.stack([wr[1] for wr in weights]), f"{layer_name}/R")
    b = g.const(np.stack([wr[2] for wr in weights]), f"{layer_name}/B") if cells[0].use_bias else ""
    inputs = [x_tm, w, r, b, seq_lens or ""]
    if initial is not None:
        inputs.extend(initial)
    while inputs and inputs[-1] == "":
        inputs.pop()
    if kind == "gru":
        attributes["linear_before_reset"] = int(cells[0].reset_after)
    outputs = 3 if kind == "lstm" else 2
    return g.op(
        _OPS[kind], inputs, outputs=outputs, hint=layer_name, hidden_size=units, direction=direction, **attributes
    )


def _time_major(g, x):
    return g.op("Transpose", [x], perm=[1, 0, 2])


def _seq_lens(g, mask):
    if mask is None:
        return None
    count = g.op("ReduceSum", [g.op("Cast", [mask], to=6), g.ints([1])], keepdims=0)
    return g.op("Cast", [count], hint="sequence_lens", to=6)  # int32, as the operators take


def _reverse_time(g, x):
    """`x[:, ::-1]` for a batch-major sequence."""
    return g.op("Slice", [x, g.ints([-1]), g.ints([_INT64_MIN]), g.ints([1]), g.ints([-1])], hint="reverse_time")


def _initial_states(g, per_direction):
    """Initial h (and c) inputs `[dirs, B, H]` from per-direction lists of `[B, H]` states."""
    if per_direction is None:
        return None
    count = len(per_direction[0])
    stacked = []
    for k in range(count):
        parts = [g.op("Unsqueeze", [states[k], g.ints([0])]) for states in per_direction]
        stacked.append(parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0))
    return stacked


def _rnn_layer(g, layer, x, mask, initial):
    """A `RNN` layer (LSTM, GRU, SimpleRNN, or RNN over built-in cells): outputs and their masks."""
    if layer.stateful:
        raise _Unsupported("stateful=True (its carried state has no ONNX form); export a stateless copy")
    cells = layer._cells
    for cell in cells:
        _check_cell(cell)
    if len(cells) > 1 and (layer.go_backwards or initial is not None):
        raise _Unsupported("stacked cells with go_backwards or initial_state")
    seq_lens = _seq_lens(g, mask)
    direction = "reverse" if layer.go_backwards else "forward"
    x_tm = _time_major(g, x)
    states_out = []
    for k, cell in enumerate(cells):
        init = None if initial is None else _initial_states(g, [initial])
        results = _recurrent_op(g, layer.name, [cell], x_tm, direction, seq_lens, init)
        y, states = results[0], results[1:]
        states = [g.op("Squeeze", [s, g.ints([0])]) for s in states]
        states_out.extend(states)
        y = g.op("Squeeze", [y, g.ints([1])])  # [T, B, H]
        if k < len(cells) - 1:
            x_tm = y
    y = g.op("Transpose", [y], perm=[1, 0, 2])
    if layer.go_backwards:
        y = _reverse_time(g, y)  # Keras gives the outputs in processing order
    if not layer.return_sequences:
        output = states[0]
    elif mask is not None and not layer.zero_output_for_mask and not layer.go_backwards:
        # Keras repeats the last output over masked steps, where ONNX writes zeros.
        keep = g.op("Unsqueeze", [mask, g.ints([-1])])
        output = g.op("Where", [keep, y, g.op("Unsqueeze", [states[0], g.ints([1])])], hint=f"{layer.name}/output")
    else:
        output = y
    out_mask = mask if layer.return_sequences else None
    results = [(output, out_mask)]
    if layer.return_state:
        results.extend((s, None) for s in states_out)
    return results


def _bidirectional(g, layer, x, mask, initial):
    from rnnkit.layers.rnn import RNN

    fw, bw = layer.forward_layer, layer.backward_layer
    if not (isinstance(fw, RNN) and isinstance(bw, RNN)) or len(fw._cells) != 1 or len(bw._cells) != 1:
        raise _Unsupported("Bidirectional exports over LSTM, GRU or SimpleRNN layers (one cell each)")
    if fw.go_backwards or not bw.go_backwards:
        raise _Unsupported("Bidirectional's forward layer must have go_backwards=False and its backward layer True")
    if layer.stateful:
        raise _Unsupported("stateful=True (its carried state has no ONNX form)")
    cells = [fw._cells[0], bw._cells[0]]
    for cell in cells:
        _check_cell(cell)
    init = None
    if initial is not None:
        half = len(initial) // 2
        init = _initial_states(g, [initial[:half], initial[half:]])
    results = _recurrent_op(g, layer.name, cells, _time_major(g, x), "bidirectional", _seq_lens(g, mask), init)
    y, states = results[0], results[1:]
    # Per direction: [B, H] states, forward's first.
    per_dir = [g.op("Split", [s, g.ints([1, 1], "split")], outputs=2, axis=0) for s in states]
    per_dir = [[g.op("Squeeze", [part[d], g.ints([0])]) for part in per_dir] for d in (0, 1)]
    if layer.return_sequences:
        y = g.op("Transpose", [y], perm=[2, 0, 1, 3])  # [B, T, 2, H]
        if layer.merge_mode == "concat":
            merged = g.op("Reshape", [y, g.ints([0, 0, -1], "shape")], hint=f"{layer.name}/output")
        else:
            halves = g.op("Split", [y, g.ints([1, 1], "split")], outputs=2, axis=2)
            fw_y, bw_y = (g.op("Squeeze", [h, g.ints([2])]) for h in halves)
    else:
        fw_y, bw_y = per_dir[0][0], per_dir[1][0]
        if layer.merge_mode == "concat":
            merged = g.op("Concat", [fw_y, bw_y], axis=-1, hint=f"{layer.name}/output")
    if layer.merge_mode == "sum":
        merged = g.op("Add", [fw_y, bw_y], hint=f"{layer.name}/output")
    elif layer.merge_mode == "mul":
        merged = g.op("Mul", [fw_y, bw_y], hint=f"{layer.name}/output")
    elif layer.merge_mode == "ave":
        total = g.op("Add", [fw_y, bw_y])
        merged = g.op("Div", [total, g.const(np.float32(2))], hint=f"{layer.name}/output")
    out_mask = mask if layer.return_sequences else None
    if layer.merge_mode is None:
        results = [(fw_y, out_mask), (bw_y, out_mask)]
    else:
        results = [(merged, out_mask)]
    if layer.return_state:
        results.extend((s, None) for s in per_dir[0] + per_dir[1])
    return results


# --- other layers -------------------------------------------------------------------------------


def _dense(g, layer, x):
    y = g.op("MatMul", [x, g.weight(layer, "kernel", np.asarray(layer.kernel, np.float32))])
    if layer.use_bias:
        y = g.op("Add", [y, g.weight(layer, "bias", np.asarray(layer.bias, np.float32))])
    return _apply_activation(g, layer.activation, y, f"{layer.name}/output")


def _batch_normalization(g, layer, x, ndim):
    if getattr(layer, "renorm", False):
        raise _Unsupported("renorm=True")
    variance = np.asarray(layer.moving_variance, np.float64)
    scale = 1.0 / np.sqrt(variance + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * np.asarray(layer.gamma, np.float64)
    shift = -np.asarray(layer.moving_mean, np.float64) * scale
    if layer.beta is not None:
        shift = shift + np.asarray(layer.beta, np.float64)
    shape = [1] * ndim
    shape[layer.axis % ndim] = -1
    scale = g.weight(layer, "scale", scale.reshape(shape).astype(np.float32))
    shift = g.weight(layer, "shift", shift.reshape(shape).astype(np.float32))
    return g.op("Add", [g.op("Mul", [x, scale]), shift], hint=f"{layer.name}/output")


def _layer_normalization(g, layer, x, ndim, opset):
    axes = sorted(a % ndim for a in layer.axis)
    if axes != list(range(axes[0], ndim)):
        raise _Unsupported(f"axis={layer.axis}: ONNX normalises trailing axes only")
    if opset < 17:
        raise _Unsupported("LayerNormalization needs opset 17 or later")
    shape = tuple(np.shape(layer.gamma if layer.gamma is not None else layer.beta)) if layer.built else None
    if shape is None or not shape:
        raise _Unsupported("the layer is not built")
    gamma = np.ones(shape, np.float32) if layer.gamma is None else np.asarray(layer.gamma, np.float32)
    beta = np.zeros(shape, np.float32) if layer.beta is None else np.asarray(layer.beta, np.float32)
    return g.op(
        "LayerNormalization",
        [x, g.weight(layer, "gamma", gamma), g.weight(layer, "beta", beta)],
        hint=f"{layer.name}/output",
        axis=axes[0],
        epsilon=float(layer.epsilon),
    )


def _masking(g, layer, x):
    value = g.const(np.float32(layer.mask_value))
    differs = g.op("Cast", [g.op("Not", [g.op("Equal", [x, value])])], to=1)
    # ReduceMax takes its axes as an input from opset 18, as an attribute before.
    if g.opset >= 18:
        any_differs = g.op("ReduceMax", [differs, g.ints([-1])], keepdims=0)
    else:
        any_differs = g.op("ReduceMax", [differs], axes=[-1], keepdims=0)
    keep = g.op("Cast", [any_differs], hint=f"{layer.name}/mask", to=9)
    output = g.op("Mul", [x, g.op("Unsqueeze", [g.op("Cast", [keep], to=1), g.ints([-1])])], hint=layer.name)
    return output, keep


def _embedding(g, layer, x):
    indices = g.op("Cast", [x], to=7)
    output = g.op("Gather", [g.weight(layer, "embeddings", np.asarray(layer.embeddings, np.float32)), indices])
    mask = None
    if layer.mask_zero:
        mask = g.op("Not", [g.op("Equal", [indices, g.const(np.int64(0))])], hint=f"{layer.name}/mask")
    return output, mask


def _last_axis_layer(g, layer, x, ndim, opset):
    """Layers that act on each sample's last axis (so also inside TimeDistributed)."""
    kind = type(layer).__name__
    if kind == "Dense":
        return _dense(g, layer, x)
    if kind == "Activation":
        return _apply_activation(g, layer.activation, x, f"{layer.name}/output")
    if kind in _IDENTITY_LAYERS:
        return g.op("Identity", [x], hint=layer.name)
    if kind == "BatchNormalization":
        return _batch_normalization(g, layer, x, ndim)
    if kind == "LayerNormalization":
        return _layer_normalization(g, layer, x, ndim, opset)
    return None


def _merge_masks(g, masks):
    present = [m for m in masks if m is not None]
    if not present:
        return None
    mask = present[0]
    for other in present[1:]:
        mask = g.op("And", [mask, other])
    return mask


def _convert_node(g, layer, args, kwargs, in_shapes, opset):
    """One layer call: `args` are (name, mask) pairs of its flattened first argument; returns the
    (name, mask) pairs of its flattened outputs."""
    from rnnkit.layers.rnn import RNN
    from rnnkit.layers.wrappers import Bidirectional

    kind = type(layer).__name__
    x, mask = args[0]
    ndim = len(in_shapes[0])
    if kwargs.get("mask") is not None:
        mask = kwargs["mask"]
    initial = kwargs.get("initial_state")
    if initial is not None and not isinstance(layer, (RNN, Bidirectional)):
        raise _Unsupported("initial_state")
    if isinstance(layer, (RNN, Bidirectional)):
        if len(args) != 1:
            raise _Unsupported("several input tensors")
        if ndim != 3:
            raise _Unsupported(f"inputs of rank {ndim}")
        return (_bidirectional if isinstance(layer, Bidirectional) else _rnn_layer)(g, layer, x, mask, initial)
    if kind in ("Add", "Concatenate"):
        names = [a[0] for a in args]
        if kind == "Add":
            output = names[0]
            for other in names[1:]:
                output = g.op("Add", [output, other], hint=layer.name)
        else:
            output = g.op("Concat", names, hint=layer.name, axis=int(layer.axis) % ndim)
        return [(output, _merge_masks(g, [a[1] for a in args]))]
    if len(args) != 1:
        raise _Unsupported("several input tensors")
    out = _last_axis_layer(g, layer, x, ndim, opset)
    if out is not None:
        return [(out, mask)]
    if kind == "Masking":
        return [_masking(g, layer, x)]
    if kind == "Embedding":
        return [_embedding(g, layer, x)]
    if kind == "RepeatVector":
        expanded = g.op("Unsqueeze", [x, g.ints([1])])
        return [(g.op("Tile", [expanded, g.ints([1, layer.n, 1], "repeats")], hint=layer.name), None)]
    if kind == "Flatten":
        return [(g.op("Flatten", [x], hint=layer.name, axis=1), None)]
    if kind == "Reshape":
        shape = g.ints([0, *[int(d) for d in layer.target_shape]], "shape")
        return [(g.op("Reshape", [x, shape], hint=layer.name), None)]
    if kind == "TimeDistributed":
        out = _last_axis_layer(g, layer.layer, x, ndim, opset)
        if out is None:
            raise _Unsupported(
                f"TimeDistributed over {type(layer.layer).__name__} (Dense, Activation, normalisation and "
                "dropout layers export)"
            )
        return [(out, mask)]
    if kind == "InputLayer":
        return [(x, mask)]
    raise _Unsupported("no ONNX conversion for this layer type")


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
