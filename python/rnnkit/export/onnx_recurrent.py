"""Recurrent layers as ONNX's LSTM, GRU and RNN operators: `RNN` (`LSTM`, `GRU`, `SimpleRNN`,
stacked cells) and `Bidirectional`, with the spec's gate order and bias layout, masks as
`sequence_lens`, initial states, returned states and LSTM peepholes as the `P` input.
"""

import numpy as np

from rnnkit.export.onnx_activations import _rnn_activation_attributes
from rnnkit.export.onnx_graph import _Unsupported

_INT64_MIN = np.iinfo(np.int64).min


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
    if getattr(cell, "projection", None):
        raise _Unsupported("projection=... has no equivalent in ONNX's LSTM operator")
    if cell.zoneout:
        raise _Unsupported(f"zoneout={cell.zoneout} has no equivalent in ONNX's recurrent operators")
    if getattr(cell, "layer_norm", False):
        raise _Unsupported("layer_norm=True has no equivalent in ONNX's recurrent operators")


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
    if kind == "lstm" and any(c.peephole for c in cells):
        if not all(c.peephole for c in cells):
            raise _Unsupported("the forward and backward LSTMs differ in peephole")
        # ONNX's P holds the peepholes in the order i, o, f; ours are the rows p_i, p_f, p_o.
        p = np.stack([np.asarray(c.peephole_weights, np.float32)[[0, 2, 1]].reshape(-1) for c in cells])
        inputs.extend([""] * (7 - len(inputs)) + [g.const(p, f"{layer_name}/P")])
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
