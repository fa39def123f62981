"""`ConvLSTM1D`, `ConvLSTM2D` and `ConvLSTM3D`: LSTMs whose products are convolutions, with Keras
3's arguments, weights (`kernel` `(*kernel_size, channels, 4·filters)`, `recurrent_kernel`
`(*kernel_size, filters, 4·filters)`, `bias` `(4·filters,)`, gates i, f, c, o) and numbers.

The input convolution of every step runs as one convolution over all steps (im2col and one
GEMM in the Rust core, as the dense cells hoist their projection); the recurrent convolution
(stride 1, padding "same"), the gate math and backpropagation through time run in the core's
ConvLSTM recurrence (`_core.conv_lstm_forward`/`_backward`), one op on the tape. A cell whose
activation is a Python function steps in Python through `rk.ops` instead. There are no GPU
kernels for ConvLSTM: under `rk.device("cuda")` it raises instead of computing elsewhere.
"""

import numpy as np

from rnnkit import _core, activations, config, constraints, initializers, ops, regularizers, tree
from rnnkit.layers.layer import Layer
from rnnkit.layers.recurrent import _cell_property
from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import _builtin_name, _rate, _seed
from rnnkit.ops.conv import data_format_of, output_length, padding_of, per_axis, positive
from rnnkit.tape import record
from rnnkit.tensor import wrap


class ConvLSTMCell(Layer):
    """One step of a ConvLSTM (Keras's `ConvLSTMCell`, which Keras does not export either): the
    layers below create it and run it fused; its `call` is the Python step for activations that
    are Python functions.

    Args:
        rank: Spatial axes (1, 2 or 3).
        filters: Channels of the output and of each state.
        kernel_size: An int or `rank` ints.
        strides: An int or `rank` ints (not with `dilation_rate > 1`).
        padding: "valid" or "same" (case-insensitive), of the input convolution.
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints.
        activation: Of the candidate and the carry (default tanh).
        recurrent_activation: Of the i, f and o gates (default sigmoid).
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of `kernel`.
        recurrent_initializer: Initializer of `recurrent_kernel`.
        bias_initializer: Initializer of `bias`.
        unit_forget_bias: Start the forget gate's bias at one.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint of `kernel`.
        recurrent_constraint: Optional constraint of `recurrent_kernel`.
        bias_constraint: Optional constraint of `bias`.
        dropout: Fraction of the input's units dropped in training (one mask per gate, shared by
            every step); clipped to [0, 1], where 1 is off as in Keras.
        recurrent_dropout: The same for the previous output.
        seed: Seed of the dropout masks, or None for the global generator.
        **kwargs: Base `Layer` arguments.
    """

    gates = 4

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = rank
        self.filters = positive("filters", filters)
        self.kernel_size = per_axis("kernel_size", kernel_size, rank)
        self.strides = per_axis("strides", strides, rank)
        self.dilation_rate = per_axis("dilation_rate", dilation_rate, rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. Please provide `strides=1` "
                f"or `dilation_rate=1`. Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, _rate("dropout", dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, _rate("recurrent_dropout", recurrent_dropout)))
        self.seed = _seed(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._step_masks = None  # the masks of the current Python step loop, drawn at its first step
        self.state_size = None  # known once built: [state shape, state shape] without batch

    def _spatial_and_channels(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Layer {self.name}: expected step inputs of rank {self.rank + 2}, received shape {tuple(shape)}"
            )
        if self.data_format == "channels_last":
            return tuple(shape[1:-1]), shape[-1]
        return tuple(shape[2:]), shape[1]

    def build(self, input_shape):
        spatial, channels = self._spatial_and_channels(input_shape)
        if None in spatial:
            raise ValueError(
                "ConvLSTM layers only support static input shapes for the spatial dimension. "
                f"Received invalid input shape: input_shape={tuple(input_shape)}"
            )
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs (last axis) should be defined. Found None. "
                f"Full input shape received: input_shape={tuple(input_shape)}"
            )
        out = tuple(
            output_length(s, k, st, d, self.padding)
            for s, k, st, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        )
        if min(out) <= 0:
            raise ValueError(
                f"Layer {self.name}: the input's spatial shape {spatial} is smaller than the kernel "
                f"{self.kernel_size} (dilation {self.dilation_rate}) with padding 'valid'."
            )
        self.spatial_dims, self.input_dim = spatial, int(channels)
        state = (*out, self.filters) if self.data_format == "channels_last" else (self.filters, *out)
        self.state_size = [state, state]
        self.output_size = state
        width = self.gates * self.filters
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, self.input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(*self.kernel_size, self.filters, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            init = self.bias_initializer
            if self.unit_forget_bias:
                f = self.filters

                def init(shape, dtype=None):
                    parts = [
                        self.bias_initializer((f,), dtype=dtype),
                        np.ones((f,), dtype),
                        self.bias_initializer((2 * f,), dtype=dtype),
                    ]
                    return np.concatenate([np.asarray(p, dtype) for p in parts])

            self.bias = self.add_weight(
                shape=(width,),
                initializer=init,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    @property
    def fused(self):
        """Whether both activations have Rust kernels (else the Python step runs)."""
        return all(_builtin_name(a) in _core.ACTIVATIONS for a in (self.activation, self.recurrent_activation))

    def _generator(self):
        if self._rng is None:
            from rnnkit import random

            return random.generator()
        return self._rng

    def dropout_masks(self, input_shape, state_shape):
        """Per gate `(4, *shape)` multipliers for the input and the previous output, or None where
        the rate is 0 or 1 (off, as in Keras): drawn once per call, shared by every step."""

        def draw(rate, shape):
            if not 0.0 < rate < 1.0:
                return None
            keep = self._generator().random((self.gates, *shape)) >= rate
            return (keep / (1.0 - rate)).astype(self.dtype)

        return draw(self.dropout, input_shape), draw(self.recurrent_dropout, state_shape)

    def _conv(self, x, kernel, strides, padding, dilation_rate):
        return ops.conv(
            x, kernel, strides=strides, padding=padding, data_format=self.data_format, dilation_rate=dilation_rate
        )

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        in_masks = rec_masks = None
        if training:
            if self._step_masks is None or not self._step_masks:
                masks = self.dropout_masks(tuple(inputs.shape), tuple(h_prev.shape))
                if self._step_masks is not None:
                    self._step_masks.extend(masks)
            in_masks, rec_masks = self._step_masks if self._step_masks else masks
        kernels = ops.split(self.kernel, 4, axis=-1)
        recurrent = ops.split(self.recurrent_kernel, 4, axis=-1)
        biases = ops.split(self.bias, 4) if self.use_bias else [None] * 4
        z = []
        for g in range(4):
            x = inputs if in_masks is None else ops.multiply(inputs, in_masks[g])
            h = h_prev if rec_masks is None else ops.multiply(h_prev, rec_masks[g])
            zx = self._conv(x, kernels[g], self.strides, self.padding, self.dilation_rate)
            if biases[g] is not None:
                b = (
                    biases[g]
                    if self.data_format == "channels_last"
                    else ops.reshape(biases[g], (-1,) + (1,) * self.rank)
                )
                zx = ops.add(zx, b)
            z.append(ops.add(zx, self._conv(h, recurrent[g], 1, "same", 1)))
        i, f, o = (self.recurrent_activation(z[k]) for k in (0, 1, 3))
        c = ops.add(ops.multiply(f, c_prev), ops.multiply(i, self.activation(z[2])))
        h = ops.multiply(o, self.activation(c))
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        """Zero states, `[h, c]`."""
        return [ops.zeros((batch_size, *s), dtype=self.dtype) for s in self.state_size]

    def get_config(self):
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def _to_channels_last(x, data_format, axis):
    """Moves the channel axis `axis` to the end for channels_first data."""
    return ops.moveaxis(x, axis, -1) if data_format == "channels_first" else x


def _to_data_format(x, data_format, axis):
    return ops.moveaxis(x, -1, axis) if data_format == "channels_first" else x


def recurrence(cell, projected, states, mask, recurrent_masks, zero_output_for_mask):
    """The core's ConvLSTM recurrence as one op on the tape.

    Args:
        cell: The built ConvLSTMCell (its recurrent kernel, bias and activations).
        projected: `(steps, batch, *spatial, 4·filters)` Tensor: the input convolution without
            the bias (the core adds it), in processing order, channels-last.
        states: None, or `[h, c]` channels-last Tensors.
        mask: Optional `(batch, steps)` boolean array in processing order.
        recurrent_masks: Optional `(4, batch, *spatial, filters)` dropout multipliers.
        zero_output_for_mask: Masked steps output zeros.

    Returns:
        `(outputs, h, c)`: `(steps, batch, *spatial, filters)` and the final states.
    """
    bias = [cell.bias] if cell.use_bias else []
    projected_array = np.asarray(projected)
    outputs, h, c, saved = _core.conv_lstm_forward(
        projected_array,
        np.asarray(cell.recurrent_kernel),
        bias=np.asarray(cell.bias, dtype=projected_array.dtype) if bias else None,
        initial_states=None if states is None else tuple(np.asarray(s) for s in states),
        mask=mask,
        recurrent_dropout=recurrent_masks,
        activation=_builtin_name(cell.activation),
        recurrent_activation=_builtin_name(cell.recurrent_activation),
        zero_output_for_mask=zero_output_for_mask,
    )
    results = [wrap(outputs), wrap(h), wrap(c)]

    def backward(grads):
        d_projected, d_kernel, (d_h, d_c) = _core.conv_lstm_backward(
            saved, d_outputs=grads[0], d_final_states=(grads[1], grads[2])
        )
        d_bias = [d_projected.reshape(-1, d_projected.shape[-1]).sum(axis=0)] if bias else []
        return [d_projected, d_kernel, *d_bias] + ([] if states is None else [d_h, d_c])

    record([projected, cell.recurrent_kernel, *bias, *(states or [])], results, backward)
    return results


class ConvLSTM(RNN):
    """The ConvLSTM layer of `rank` spatial axes (Keras's `ConvLSTM`); use `ConvLSTM1D`,
    `ConvLSTM2D` or `ConvLSTM3D`.

    Args:
        rank: Spatial axes.
        filters: Channels of the output and states.
        kernel_size: An int or `rank` ints.
        return_sequences: Return every step's output `(batch, time, *spatial, filters)`.
        return_state: Also return the final states `[output, h, c]`.
        go_backwards: Process the sequence reversed (sequences come back in processing order).
        stateful: Carry the final states into the next call (fixed batch size).
        strides: An int or `rank` ints, of the input convolution.
        padding: "valid" or "same", of the input convolution (the recurrent one is "same").
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints, of the input convolution.
        activation: Of the candidate and the carry (default tanh).
        recurrent_activation: Of the i, f and o gates (default sigmoid).
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of `kernel`.
        recurrent_initializer: Initializer of `recurrent_kernel`.
        bias_initializer: Initializer of `bias`.
        unit_forget_bias: Start the forget gate's bias at one.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint of `kernel`.
        recurrent_constraint: Optional constraint of `recurrent_kernel`.
        bias_constraint: Optional constraint of `bias`.
        dropout: Fraction of the input's units dropped in training (per gate).
        recurrent_dropout: Fraction of the previous output's units dropped in training (per gate).
        seed: Seed of the dropout masks.
        **kwargs: `activity_regularizer`, `RNN`'s `unroll` and `zero_output_for_mask`, and the
            base `Layer` arguments.
    """

    _cell_arguments = frozenset(
        (
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "activation",
            "recurrent_activation",
            "use_bias",
            "kernel_initializer",
            "recurrent_initializer",
            "bias_initializer",
            "unit_forget_bias",
            "kernel_regularizer",
            "recurrent_regularizer",
            "bias_regularizer",
            "kernel_constraint",
            "recurrent_constraint",
            "bias_constraint",
            "dropout",
            "recurrent_dropout",
            "seed",
        )
    )

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        **kwargs,
    ):
        arguments = locals()
        cell_kwargs = {k: arguments[k] for k in self._cell_arguments}
        shared = {k: kwargs[k] for k in ("dtype", "trainable") if k in kwargs}
        cell = ConvLSTMCell(rank, filters, kernel_size, name="conv_lstm_cell", **shared, **cell_kwargs)
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            **kwargs,
        )
        self.rank = rank

    # The cell's arguments read through the layer, as Keras's properties.
    filters = _cell_property("filters")
    kernel_size = _cell_property("kernel_size")
    strides = _cell_property("strides")
    padding = _cell_property("padding")
    data_format = _cell_property("data_format")
    dilation_rate = _cell_property("dilation_rate")
    activation = _cell_property("activation")
    recurrent_activation = _cell_property("recurrent_activation")
    use_bias = _cell_property("use_bias")
    kernel_initializer = _cell_property("kernel_initializer")
    recurrent_initializer = _cell_property("recurrent_initializer")
    bias_initializer = _cell_property("bias_initializer")
    unit_forget_bias = _cell_property("unit_forget_bias")
    kernel_regularizer = _cell_property("kernel_regularizer")
    recurrent_regularizer = _cell_property("recurrent_regularizer")
    bias_regularizer = _cell_property("bias_regularizer")
    kernel_constraint = _cell_property("kernel_constraint")
    recurrent_constraint = _cell_property("recurrent_constraint")
    bias_constraint = _cell_property("bias_constraint")
    dropout = _cell_property("dropout")
    recurrent_dropout = _cell_property("recurrent_dropout")
    seed = _cell_property("seed")

    @property
    def _fused(self):
        return self.cell.fused

    def _step_loop(self, sequences, states, mask, training):
        # The Python step (an activation that is a Python function) draws its dropout masks at
        # the first step and reuses them at every step of the call, as the fused path does.
        self.cell._step_masks = []
        try:
            return super()._step_loop(sequences, states, mask, training)
        finally:
            self.cell._step_masks = None

    def _check_rank(self, shape):
        if len(shape) != self.rank + 3:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim={self.rank + 3}, "
                f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            )

    def build(self, sequences_shape):
        self._check_rank(tree.flatten_shapes(sequences_shape)[0])
        super().build(sequences_shape)

    def check_sequences(self, sequences):
        first = tree.flatten(sequences)[0]
        self._check_rank(first.shape)
        cell = self.cell
        spatial, channels = cell._spatial_and_channels((first.shape[0], *first.shape[2:]))
        if cell.built and (spatial != cell.spatial_dims or channels != cell.input_dim):
            want = (
                (*cell.spatial_dims, cell.input_dim)
                if cell.data_format == "channels_last"
                else (cell.input_dim, *cell.spatial_dims)
            )
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected shape=(None, None, "
                f"{', '.join(map(str, want))}), found shape={tuple(first.shape)}"
            )
        return first

    def _fused_call(self, x, states, mask, training):
        if config.current_device() == "cuda":
            raise RuntimeError(
                f"Layer {self.name}: ConvLSTM has no GPU kernels in rnnkit yet; run it under rk.device('cpu')."
            )
        cell, data_format = self.cell, self.cell.data_format
        x = _to_channels_last(x, data_format, 2)
        if self.go_backwards:
            x = ops.flip(x, axis=1)
            mask = None if mask is None else mask[:, ::-1]
        batch, steps = x.shape[:2]
        step_shape = tuple(x.shape[2:])
        states = None if states is None else [_to_channels_last(s, data_format, 1) for s in states[0]]
        state_shape = (batch, *_state_spatial(cell), cell.filters)
        in_masks, rec_masks = cell.dropout_masks((batch, *step_shape), state_shape) if training else (None, None)
        time_major = ops.reshape(ops.moveaxis(x, 1, 0), (steps * batch, *step_shape))
        conv = dict(strides=cell.strides, padding=cell.padding, dilation_rate=cell.dilation_rate)
        if in_masks is None:
            projected = ops.conv(time_major, cell.kernel, **conv)
        else:  # one convolution per gate of the input through that gate's mask (Keras's order)
            parts = []
            for gate, kernel in enumerate(ops.split(cell.kernel, 4, axis=-1)):
                gate_mask = np.broadcast_to(in_masks[gate], (steps, batch, *step_shape)).reshape(time_major.shape)
                parts.append(ops.conv(ops.multiply(time_major, gate_mask), kernel, **conv))
            projected = ops.concatenate(parts, axis=-1)
        projected = ops.reshape(projected, (steps, *state_shape[:-1], 4 * cell.filters))
        outputs, h, c = recurrence(cell, projected, states, mask, rec_masks, self.zero_output_for_mask)
        if self.return_sequences:
            output = _to_data_format(ops.moveaxis(outputs, 0, 1), data_format, 2)
        elif steps == 0:
            output = ops.zeros((batch, *cell.output_size), dtype=self.dtype)
        else:
            output = _to_data_format(outputs[steps - 1], data_format, 1)
        finals = [_to_data_format(s, data_format, 1) for s in (h, c)]
        return output, [finals]

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _state_spatial(cell):
    size = cell.output_size
    return size[:-1] if cell.data_format == "channels_last" else size[1:]


class ConvLSTM1D(ConvLSTM):
    """A 1-D convolutional LSTM over `(batch, time, steps, channels)` inputs (channels_last).

    Args:
        filters: Channels of the output and states.
        kernel_size: An int or a 1-tuple.
        **kwargs: The other arguments of Keras's ConvLSTM1D (see `ConvLSTM` and `ConvLSTMCell`).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class ConvLSTM2D(ConvLSTM):
    """A 2-D convolutional LSTM over `(batch, time, rows, cols, channels)` inputs (channels_last).

    Args:
        filters: Channels of the output and states.
        kernel_size: An int or a 2-tuple.
        **kwargs: The other arguments of Keras's ConvLSTM2D (see `ConvLSTM` and `ConvLSTMCell`).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class ConvLSTM3D(ConvLSTM):
    """A 3-D convolutional LSTM over `(batch, time, d1, d2, d3, channels)` inputs (channels_last).

    Args:
        filters: Channels of the output and states.
        kernel_size: An int or a 3-tuple.
        **kwargs: The other arguments of Keras's ConvLSTM3D (see `ConvLSTM` and `ConvLSTMCell`).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)
