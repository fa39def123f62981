"""The `RNN` layer: a cell looped over time, with masks, states, statefulness and dropout.

Built-in cells (alone or stacked) run in the fused Rust kernels as one autograd op per cell;
any other cell steps in Python through `rk.ops`, differentiated by the tape.
"""

import numpy as np

from rnnkit import ops, quantizers, tree
from rnnkit.layers import fused
from rnnkit.layers.layer import Layer, _is_number_list, call_parameters, check_allocation, in_symbolic_call
from rnnkit.layers.rnn_cells import (
    DropoutRNNCell,
    GRUCell,
    IndRNNCell,
    LSTMCell,
    SimpleRNNCell,
    StackedRNNCells,
)
from rnnkit.tensor import Tensor, convert_to_tensor, wrap

_BUILTIN_CALLS = {cls.call for cls in (SimpleRNNCell, GRUCell, LSTMCell, IndRNNCell)}


def _state_shapes(state_size):
    """The per-state shapes (without batch) of a cell's `state_size`: an int is one state; a
    list or tuple holds one entry per state, each an int or a shape."""
    sizes = state_size if isinstance(state_size, (list, tuple)) else [state_size]
    return [tuple(int(d) for d in s) if isinstance(s, (list, tuple)) else (int(s),) for s in sizes]


class RNN(Layer):
    """Loops a cell over the time axis, as Keras's `RNN`.

    Args:
        cell: A cell (with `call(inputs, states)` and `state_size`) or a list of cells, which
            is wrapped in `StackedRNNCells`.
        return_sequences: Return every step's output `(batch, time, units)` instead of the last.
        return_state: Also return the final states: `[output, *states]`.
        go_backwards: Process the input reversed; sequences come back in processing order.
        stateful: Carry each sample's final state into the next call (fixed batch size).
        unroll: Accepted for compatibility; every path is already a fused loop.
        zero_output_for_mask: Masked steps output zeros instead of the previous output.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not callable(getattr(cell, "call", None)) or not hasattr(cell, "state_size"):
            raise ValueError(
                f"Argument `cell` should have a `call` method and a `state_size` attribute. Received: cell={cell}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.supports_masking = True
        self.states = None

    # --- cells and states ---------------------------------------------------------------------

    @property
    def _cells(self):
        return self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]

    @property
    def _fused(self):
        return all(
            isinstance(c, DropoutRNNCell) and type(c).call in _BUILTIN_CALLS and c.spec is not None for c in self._cells
        )

    def _cell_state_shapes(self):
        """Per cell, the shapes (without batch) of its states."""
        return [_state_shapes(c.state_size) for c in self._cells]

    def get_initial_state(self, batch_size):
        """Zero states for `batch_size` samples, nested per cell for stacked cells."""
        per_cell = [
            [ops.zeros((batch_size, *s), dtype=self.dtype) for s in shapes] for shapes in self._cell_state_shapes()
        ]
        return per_cell if isinstance(self.cell, StackedRNNCells) else per_cell[0]

    def _flat_state_count(self):
        return sum(len(s) for s in self._cell_state_shapes())

    def _check_initial_state(self, initial_state, batch):
        flat = [convert_to_tensor(s) for s in tree.flatten(initial_state)]
        expected = [(batch, *s) for shapes in self._cell_state_shapes() for s in shapes]
        if len(flat) != len(expected):
            raise ValueError(
                f"Layer {self.name}: an `initial_state` of {len(flat)} tensors was passed, but the cell "
                f"has {len(expected)} states of shapes {expected}."
            )
        for i, (s, shape) in enumerate(zip(flat, expected)):
            if tuple(s.shape) != shape:
                raise ValueError(
                    f"Layer {self.name}: initial_state[{i}] has shape {tuple(s.shape)}, expected {shape} "
                    "(batch, units)."
                )
        flat = [s if s.dtype == self.dtype else ops.cast(s, self.dtype) for s in flat]
        per_cell, start = [], 0
        for shapes in self._cell_state_shapes():
            per_cell.append(flat[start : start + len(shapes)])
            start += len(shapes)
        return per_cell

    def reset_state(self, states=None):
        """Resets a stateful layer's states to zeros, or to `states` when given."""
        if not self.stateful:
            raise AttributeError(f"Layer {self.name} is not stateful: it has no states to reset.")
        if self.states is None:
            return
        batch = self.states[0].shape[0]
        if states is None:
            self.states = [wrap(np.zeros(s.shape, s.dtype)) for s in self.states]
        else:
            per_cell = self._check_initial_state(states, batch)
            self.states = [wrap(np.array(s, dtype=self.dtype)) for cell in per_cell for s in cell]

    def reset_states(self, states=None):
        """Alias of `reset_state`."""
        self.reset_state(states)

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes every cell's `kernel` and `recurrent_kernel` to int8 (beyond Keras; see
        `DropoutRNNCell.quantize` and `rk.quantizers`): the layer then runs inference only, in
        the fused kernels, quantizing each step's input and `h` per row.

        Args:
            mode: "int8".
            type_check: Refuse cell subclasses that override `call`.
            config: Only None.

        Raises:
            ValueError: If the layer is not built or already quantized, or for an unknown mode.
            NotImplementedError: For Keras's other modes, a `config`, or a cell the int8
                kernels do not run (nothing is quantized then).
        """
        quantizers.check_quantize_args(self, mode, config)
        for cell in self._cells:
            reason = cell._int8_refusal(type_check) if isinstance(cell, DropoutRNNCell) else "not a built-in cell"
            if reason:
                raise NotImplementedError(
                    f"Layer {type(self).__name__} '{self.name}' cannot be quantized: its cell "
                    f"{type(cell).__name__} '{cell.name}': {reason}."
                )
        for cell in self._cells:
            cell.quantize(mode, type_check, config)
        self._quantization_mode = mode

    # --- build and call -------------------------------------------------------------------------

    def build(self, sequences_shape):
        first = tree.flatten_shapes(sequences_shape)[0]
        if len(first) < 3:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim=3, "
                f"found ndim={len(first)}. Full shape received: {tuple(first)}"
            )
        if self.unroll and first[1] is None:
            raise ValueError("Cannot unroll a RNN if the time dimension is undefined.")
        step_shape = tree.map_shape_structure(lambda s: (s[0], *s[2:]), sequences_shape)
        if not self.cell.built:
            self.cell.build(step_shape)
            self.cell.built = True
        if self.stateful:
            if first[0] is None:
                raise ValueError(
                    f"Layer {self.name} is stateful, so it needs a static batch size: pass `batch_size` "
                    "or `batch_input_shape` to the layer (or to its Input)."
                )
            self.states = tree.flatten(self.get_initial_state(first[0]))
        self.built = True

    def check_sequences(self, sequences):
        """Checks the input's rank, and its feature size against the built weights, before any
        work: `(batch, time, features)` for the built-in cells, at least 3 axes for others."""
        first = tree.flatten(sequences)[0]
        builtin = all(isinstance(c, DropoutRNNCell) for c in self._cells)
        if first.ndim < 3 or (builtin and first.ndim != 3):
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim=3, "
                f"found ndim={first.ndim}. Full shape received: {tuple(first.shape)}"
            )
        kernel = getattr(self._cells[0], "kernel", None) if builtin else None
        if kernel is not None and first.shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected axis -1 of input "
                f"shape to have value {kernel.shape[0]}, but received input with shape {tuple(first.shape)}"
            )
        return first

    def call(self, sequences, initial_state=None, mask=None, training=False):
        first = self.check_sequences(sequences)
        if isinstance(sequences, Tensor) and sequences.dtype.kind in "biu":
            sequences = ops.cast(sequences, self.dtype)  # as Keras, whose matmul promotes integers
        batch, steps = first.shape[:2]
        if mask is not None:
            mask = as_mask(mask, batch, steps, self.name)
        if initial_state is None and self.stateful:
            if self.states[0].shape[0] != batch:
                raise ValueError(
                    f"Layer {self.name} is stateful with batch size {self.states[0].shape[0]}, but it was "
                    f"called on a batch of {batch} samples. Stateful layers need the same batch size at "
                    "every call (call reset_state() after changing it is not enough: rebuild the layer)."
                )
            initial_state = self.states
        states = None if initial_state is None else self._check_initial_state(initial_state, batch)
        if self._fused and isinstance(sequences, Tensor):
            # The fused op returns only the last step's output unless return_sequences.
            output, finals = self._fused_call(sequences, states, mask, training)
        else:
            if states is None:
                states = self._cell_initial_states(batch)
            outputs, finals = self._step_loop(sequences, states, mask, training)
            # With no steps, the last output is the "previous output" before the first step: zeros.
            last = tree.map_structure(
                lambda y: y[:, -1] if steps else ops.zeros((batch, *y.shape[2:]), y.dtype), outputs
            )
            output = outputs if self.return_sequences else last
        if self.stateful and not in_symbolic_call():
            self.states = [wrap(np.asarray(s)) for cell in finals for s in cell]
        if not self.return_state:
            return output
        states_out = finals if isinstance(self.cell, StackedRNNCells) else finals[0]
        return [output, *states_out]

    def _cell_initial_states(self, batch):
        if hasattr(self.cell, "get_initial_state") and not isinstance(self.cell, DropoutRNNCell):
            states = self.cell.get_initial_state(batch)
            if states is not None and not isinstance(self.cell, StackedRNNCells):
                return [tree.flatten(states)]
            if states is not None and all(s is not None for s in states):
                return [tree.flatten(s) for s in states]
        return [[ops.zeros((batch, *s), dtype=self.dtype) for s in shapes] for shapes in self._cell_state_shapes()]

    def _step_masks(self, x_shape, training):
        """Per cell, what its fused call draws (`step_masks`) for inputs of shape `x_shape`."""
        dropouts, input_dim = [], x_shape[-1]
        for cell in self._cells:
            dropouts.append(cell.step_masks(x_shape[0], input_dim, self.dtype, training))
            input_dim = cell.output_size
        return dropouts

    def _fused_call(self, x, states, mask, training):
        saved = _saved_shape(self._cells, x.shape)
        check_allocation(f"Layer {self.name}: the activations kept for the backward pass", saved, x.dtype)
        dropouts = self._step_masks(x.shape, training)
        return fused.rnn_stack(
            self._cells, x, states, mask, dropouts, self.go_backwards, self.zero_output_for_mask, self.return_sequences
        )

    def _inference_array(self, x):
        """`call(x)` at inference outside any tape on the float array `x` of a call already
        checked, as an array; None where only `call` applies (a cell that is not fused, a
        stateful layer, or `return_state`)."""
        if not self._fused or self.stateful or self.return_state or x.dtype.kind != "f":
            return None
        dropouts = self._step_masks(x.shape, False)
        args = (dropouts, self.go_backwards, self.zero_output_for_mask, self.return_sequences)
        return fused.stack_arrays(self._cells, x, None, None, *args, inference=True)[0]

    def _step_loop(self, sequences, states, mask, training):
        """Steps a cell in Python: each step is ops on the tape, masks select with `where`.

        Built-in cells (subclassed) draw their dropout masks at the first step and reuse them at
        every step of the call, as in the fused path and Keras.
        """
        dropout_cells = [c for c in self._cells if isinstance(c, DropoutRNNCell)]
        for cell in dropout_cells:
            cell._step_dropout = []
        try:
            return self._step_loop_body(sequences, states, mask, training)
        finally:
            for cell in dropout_cells:
                cell._step_dropout = None

    def _step_loop_body(self, sequences, states, mask, training):
        stacked = isinstance(self.cell, StackedRNNCells)
        pass_training = "training" in call_parameters(type(self.cell))
        cell_states = states if stacked else states[0]
        steps = tree.flatten(sequences)[0].shape[1]
        if steps == 0:
            batch = tree.flatten(sequences)[0].shape[0]
            size = self.cell.output_size if hasattr(self.cell, "output_size") else _first_size(self.cell.state_size)
            empty = ops.zeros((batch, 0, *_state_shapes(size)[0]), dtype=self.dtype)
            return empty, [list(s) for s in cell_states] if stacked else [list(cell_states)]
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs, previous = [], None
        for t in order:
            step_input = tree.map_structure(lambda x, t=t: x[:, t], sequences)
            kwargs = {"training": training} if pass_training else {}
            output, new_states = self.cell(step_input, cell_states, **kwargs)
            new_states = [new_states] if not isinstance(new_states, (list, tuple)) else list(new_states)
            if mask is not None:
                keep = mask[:, t]
                new_states = tree.map_structure(
                    lambda n, o, keep=keep: _select(keep, n, o), new_states, list(cell_states)
                )
                if previous is None:
                    previous = tree.map_structure(ops.zeros_like, output)
                fallback = tree.map_structure(ops.zeros_like, output) if self.zero_output_for_mask else previous
                output = tree.map_structure(lambda n, o, keep=keep: _select(keep, n, o), output, fallback)
            previous = output
            cell_states = new_states
            outputs.append(output)
        stacked_outputs = tree.map_structure(lambda *ys: ops.stack(ys, axis=1), *outputs)
        finals = [list(s) for s in cell_states] if stacked else [list(cell_states)]
        return stacked_outputs, finals

    def compute_mask(self, inputs, mask=None):
        if mask is not None:
            mask = tree.flatten(mask)[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            states = (
                self.cell.state_size if isinstance(self.cell, StackedRNNCells) else [None] * self._flat_state_count()
            )
            return [out] + [None] * len(states)
        return out

    def get_config(self):
        from rnnkit.layers import serialization

        config = {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        if type(self) is RNN:
            config["cell"] = serialization.serialize(self.cell)
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        from rnnkit.layers import serialization

        config = dict(config)
        if "cell" in config:
            config["cell"] = serialization.deserialize(config["cell"])
        return cls(**config)


def _select(keep, new, old):
    """`new` where the step is kept, else `old`; `keep` is `(batch,)`."""
    cond = keep.reshape(keep.shape + (1,) * (new.ndim - 1))
    return ops.where(cond, new, old)


def _first_size(state_size):
    return state_size[0] if isinstance(state_size, (list, tuple)) else state_size


def _saved_shape(cells, x_shape):
    """A shape as large as what the fused forward keeps per cell (pre-activations, every step's
    states and outputs, the time-major input), for the allocation check."""
    batch, steps, features = x_shape
    per_step = sum(c.gates * c.units + 4 * c.units for c in cells) + features
    return (batch, steps + 1, per_step)


def as_mask(mask, batch, steps, owner):
    """A `(batch, steps)` boolean mask from `mask`, checked before it reaches the kernels.

    Booleans are taken as they are; numbers must all be 0 or 1 (a float mask of weights is
    a mistake, not a mask). Raises TypeError for other kinds and ValueError for other values
    or shapes, naming `owner` (the layer).
    """
    if not _is_number_list(mask):
        mask = tree.flatten(mask)[0]
    array = np.asarray(mask)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Layer {owner}: mask expected a boolean array (or 0/1 numbers) of shape {(batch, steps)} "
            f"(batch, time), received dtype {array.dtype}."
        )
    if array.shape != (batch, steps):
        raise ValueError(
            f"Layer {owner}: mask expected shape {(batch, steps)} (batch, time), received shape {array.shape}."
        )
    if array.dtype.kind != "b":
        bad = (array != 0) & (array != 1)
        if bad.any():
            raise ValueError(
                f"Layer {owner}: mask expected boolean values (0 or 1), received {array[bad].flat[0].item()!r} "
                f"among its {array.dtype} values."
            )
    return array.astype(bool)
