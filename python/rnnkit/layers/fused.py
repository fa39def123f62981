"""The fused recurrent ops: one autograd op each, whose forward and backward are the Rust calls.

The tape sees a whole sequence pass as a single op (`tape.record`), so gradients flow from the
outputs and final states to the input, the weights and the initial states through
`_core.rnn_backward` / `_core.bidirectional_backward`, whatever the options.
"""

import numpy as np

from rnnkit import _core
from rnnkit.tape import record
from rnnkit.tensor import wrap


def _arrays(tensors):
    return [None if t is None else np.asarray(t) for t in tensors]


def _weights(cell):
    return [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else [])


def rnn(cell, x, initial_states=None, mask=None, dropout=(None, None), go_backwards=False, zero_output_for_mask=False):
    """Runs a built-in cell over a sequence as one differentiable op.

    Args:
        cell: A built SimpleRNNCell, GRUCell or LSTMCell whose `spec` is not None.
        x: `(batch, time, features)` Tensor.
        initial_states: Optional list of `(batch, units)` Tensors.
        mask: Optional `(batch, time)` boolean array.
        dropout: `(input_masks, recurrent_masks)` multipliers from `cell.dropout_masks`.
        go_backwards: Process the sequence in reverse (outputs in processing order).
        zero_output_for_mask: Masked steps output zeros instead of the previous output.

    Returns:
        `(outputs, final_states)`: the `(batch, time, units)` Tensor and a list of Tensors.
    """
    weights = _weights(cell)
    w = _arrays(weights)
    states = list(initial_states) if initial_states is not None else []
    out, finals, saved = _core.rnn_forward(
        cell.spec,
        (w[0], w[1], w[2] if cell.use_bias else None),
        np.asarray(x),
        initial_states=_arrays(states) or None,
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        input_dropout=dropout[0],
        recurrent_dropout=dropout[1],
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    outputs = [wrap(out)] + [wrap(s) for s in finals]

    def backward(grads):
        dx, dk, drk, db, dstates = _core.rnn_backward(saved, d_outputs=grads[0], d_final_states=list(grads[1:]))
        return [dx, dk, drk] + ([db] if cell.use_bias else []) + (list(dstates) if states else [])

    record([x, *weights, *states], outputs, backward)
    return outputs[0], outputs[1:]
