"""The fused recurrent ops: one autograd op each, whose forward and backward are the Rust calls.

The tape sees a whole pass (a stack of cells over a sequence, or a bidirectional pair) as a
single op (`tape.record`), so gradients flow from the outputs and final states to the input,
the weights and the initial states through `_core.rnn_backward` / `_core.bidirectional_backward`,
whatever the options.
"""

import numpy as np

from rnnkit import _core, config
from rnnkit.tape import needs_gradient, record, recording
from rnnkit.tensor import wrap


def _compute(*cells):
    """`compute_dtype` and `device` of the core's calls for `cells` (one, or a bidirectional
    pair): the first cell's products dtype ("int8" for quantized cells), and the CPU under
    "auto" for what the GPU kernels do not run yet (bfloat16 and int8 products, IndRNN,
    peepholes, projections, zoneout, layer_norm); an explicit "cuda" is refused by the core.

    Raises:
        NotImplementedError: For int8 cells under a recording tape (they run inference only).
        ValueError: For a bidirectional pair of which only one direction is quantized.
    """
    modes = {c.quantization_mode for c in cells}
    if len(modes) > 1:
        raise ValueError(
            f"Cells {[c.name for c in cells]}: both directions must be quantized, or neither; received "
            f"quantization modes {[c.quantization_mode for c in cells]}."
        )
    if "int8" in modes:
        if recording():
            raise NotImplementedError(
                f"Layer {type(cells[0]).__name__} '{cells[0].name}' is quantized to int8, which runs inference "
                "only: it cannot be trained or differentiated (call it outside a GradientTape and fit)."
            )
        device = config.compute_device()
        if device == "cuda" and config.current_device() != "cuda":
            device = "cpu"
        return {"compute_dtype": "int8", "device": device}
    bf16 = cells[0].compute_dtype == "bfloat16"
    device = config.compute_device()
    if device == "cuda" and config.current_device() != "cuda" and (bf16 or any(map(_cpu_only, cells))):
        device = "cpu"
    return {"compute_dtype": "bfloat16" if bf16 else None, "device": device}


def _cpu_only(cell):
    """Whether `cell` has an option the GPU kernels do not run yet."""
    spec = cell.spec  # a property that builds its cache key: read once
    return spec.kind == "indrnn" or spec.peephole or spec.projection or spec.layer_norm or cell.zoneout


def _array(t):
    return None if t is None else np.asarray(t)


def _weights(cell):
    return [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else []) + cell.extra_weights


def _weight_arrays(cell):
    bias = _array(cell.bias) if cell.use_bias else None
    return (*cell.fused_kernels(), bias, *map(np.asarray, cell.extra_weights))


def _grads(cell, weight_grads, with_states):
    """A cell's gradients in `record`'s input order: weights, then its initial states if given."""
    dk, drk, db, dstates, *d_extra = weight_grads
    return [dk, drk] + ([db] if cell.use_bias else []) + d_extra + (list(dstates) if with_states else [])


def stack_arrays(
    cells, x, initial_states, mask, dropouts, go_backwards, zero_output_for_mask, return_sequences, inference
):
    """`rnn_stack`'s computation on arrays, recording nothing: the core's forward of each cell.

    Args:
        cells: As for `rnn_stack`.
        x: `(batch, time, features)` array.
        initial_states: None, or per cell a list of `(batch, units)` arrays or Tensors.
        mask: As for `rnn_stack`.
        dropouts: As for `rnn_stack`.
        go_backwards: As for `rnn_stack`.
        zero_output_for_mask: As for `rnn_stack`.
        return_sequences: As for `rnn_stack`.
        inference: No backward will follow: the core keeps no copy of the weights.

    Returns:
        `(output, finals, saved)`: the last cell's output array, per cell the list of its
        final-state arrays, and per cell what the core's backward needs.
    """
    states = initial_states or [[] for _ in cells]
    mask = None if mask is None else np.asarray(mask, dtype=bool)
    saved, finals, y = [], [], x
    for i, (cell, cell_states, (in_drop, rec_drop, zoneout)) in enumerate(zip(cells, states, dropouts)):
        cell_mask = mask[:, ::-1] if mask is not None and go_backwards and i > 0 else mask
        y, cell_finals, cell_saved = _core.rnn_forward(
            cell.spec,
            _weight_arrays(cell),
            y,
            initial_states=[np.asarray(s) for s in cell_states] or None,
            mask=cell_mask,
            input_dropout=in_drop,
            recurrent_dropout=rec_drop,
            go_backwards=go_backwards and i == 0,
            zero_output_for_mask=zero_output_for_mask and i == len(cells) - 1,
            return_sequences=return_sequences or i < len(cells) - 1,
            inference=inference,
            zoneout=zoneout,
            **_compute(cell),
        )
        saved.append(cell_saved)
        finals.append(cell_finals)
    return y, finals, saved


def rnn_stack(
    cells, x, initial_states, mask, dropouts, go_backwards=False, zero_output_for_mask=False, return_sequences=True
):
    """Runs built-in cells one after the other over a sequence, as one differentiable op.

    The first cell reads `x` (reversed with `go_backwards`); each later cell reads the previous
    cell's outputs, which are already in processing order, with the mask in that order too.

    Args:
        cells: Built SimpleRNNCell/GRUCell/LSTMCell objects whose `spec` is not None.
        x: `(batch, time, features)` Tensor.
        initial_states: None, or per cell a list of `(batch, units)` Tensors.
        mask: Optional `(batch, time)` boolean array.
        dropouts: Per cell, `(input_masks, recurrent_masks, zoneout)` from `cell.step_masks`.
        go_backwards: Process the sequence in reverse (outputs in processing order).
        zero_output_for_mask: Masked steps of the last cell output zeros.
        return_sequences: False to return only the last step's output, whose gradient then
            goes to the core as such (no `(batch, time, units)` array of zeros).

    Returns:
        `(outputs, final_states)`: the last cell's `(batch, time, units)` Tensor (`(batch,
        units)` without `return_sequences`; zeros for an empty sequence) and, per cell, its list
        of final-state Tensors.
    """
    with_states = initial_states is not None
    states = initial_states or [[] for _ in cells]
    y, finals, saved = stack_arrays(
        cells,
        np.asarray(x),
        initial_states,
        mask,
        dropouts,
        go_backwards,
        zero_output_for_mask,
        return_sequences,
        inference=not recording(),
    )
    finals = [[wrap(s) for s in cell_finals] for cell_finals in finals]
    outputs = [wrap(y)] + [s for cell_finals in finals for s in cell_finals]

    x_gradient = needs_gradient(x)

    def backward(grads):
        d_y, rest = grads[0], list(grads[1:])
        d_last = None if return_sequences else d_y
        d_y = d_y if return_sequences else None
        d_states = []
        for cell_finals in finals:
            d_states.append(rest[: len(cell_finals)])
            rest = rest[len(cell_finals) :]
        per_cell = []
        for i, (cell, cell_saved, d_final) in reversed(list(enumerate(zip(cells, saved, d_states)))):
            dx, *weight_grads = _core.rnn_backward(
                cell_saved,
                d_outputs=d_y,
                d_last_output=d_last,
                d_final_states=d_final,
                input_gradient=i > 0 or x_gradient,
            )
            per_cell.insert(0, _grads(cell, weight_grads, with_states))
            d_y, d_last = dx, None
        return [d_y] + [g for cell_grads in per_cell for g in cell_grads]

    inputs = [x] + [t for cell, cell_states in zip(cells, states) for t in _weights(cell) + list(cell_states)]
    record(inputs, outputs, backward)
    return outputs[0], finals


def bidirectional(
    fw, bw, x, initial_states, mask, dropouts, merge_mode, return_sequences, zero_output_for_mask, fw_go_backwards=False
):
    """Runs a forward and a backward built-in cell concurrently and merges them, as one op.

    Args:
        fw: The cell of the forward direction.
        bw: The cell of the backward direction.
        x: `(batch, time, features)` Tensor.
        initial_states: None, or `(fw_states, bw_states)` lists of Tensors.
        mask: Optional `(batch, time)` boolean array.
        dropouts: `((fw_in, fw_rec, fw_zoneout), (bw_in, bw_rec, bw_zoneout))` from `step_masks`.
        merge_mode: "concat", "sum", "mul", "ave" or None.
        return_sequences: Merge every step (the backward outputs flipped into time order) or
            the last outputs.
        zero_output_for_mask: Masked steps output zeros.
        fw_go_backwards: The first direction runs reversed (and the second forwards).

    Returns:
        `(output, fw_states, bw_states)`; `output` is a list of two Tensors for merge_mode None.
    """
    with_states = initial_states is not None
    fw_states, bw_states = initial_states or ([], [])
    (fw_in, fw_rec, fw_zoneout), (bw_in, bw_rec, bw_zoneout) = dropouts
    out, fw_finals, bw_finals, saved = _core.bidirectional_forward(
        fw.spec,
        _weight_arrays(fw),
        bw.spec,
        _weight_arrays(bw),
        np.asarray(x),
        merge_mode=merge_mode,
        return_sequences=return_sequences,
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        fw_initial_states=[np.asarray(s) for s in fw_states] or None,
        bw_initial_states=[np.asarray(s) for s in bw_states] or None,
        fw_input_dropout=fw_in,
        fw_recurrent_dropout=fw_rec,
        bw_input_dropout=bw_in,
        bw_recurrent_dropout=bw_rec,
        zero_output_for_mask=zero_output_for_mask,
        fw_go_backwards=fw_go_backwards,
        fw_zoneout=fw_zoneout,
        bw_zoneout=bw_zoneout,
        **_compute(fw, bw),
    )
    merged = [wrap(o) for o in out] if merge_mode is None else [wrap(out)]
    fw_finals, bw_finals = [wrap(s) for s in fw_finals], [wrap(s) for s in bw_finals]
    outputs = merged + fw_finals + bw_finals

    x_gradient = needs_gradient(x)

    def backward(grads):
        n = len(merged)
        d_out = list(grads[:n]) if merge_mode is None else grads[0]
        d_fw = list(grads[n : n + len(fw_finals)])
        d_bw = list(grads[n + len(fw_finals) :])
        dx, fw_grads, bw_grads = _core.bidirectional_backward(
            saved, d_outputs=d_out, d_fw_states=d_fw, d_bw_states=d_bw, input_gradient=x_gradient
        )
        return [dx] + _grads(fw, fw_grads, with_states) + _grads(bw, bw_grads, with_states)

    inputs = [x] + _weights(fw) + list(fw_states) + _weights(bw) + list(bw_states)
    record(inputs, outputs, backward)
    return (merged if merge_mode is None else merged[0]), fw_finals, bw_finals
