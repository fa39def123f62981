"""The built-in cells: SimpleRNNCell, GRUCell, LSTMCell, IndRNNCell, and StackedRNNCells.

A cell computes one time step. Inside an `RNN` layer the built-in cells never step in Python:
the layer hands their weights and options to the fused Rust kernels (see `fused.py`). Their
`call` is the same math in `rk.ops`, for stepping a cell by hand or inside a user-written stack.
"""

import numpy as np

from rnnkit import _core, activations, constraints, initializers, ops, quantizers, regularizers, tree
from rnnkit.layers.layer import Layer, call_parameters

_CELL_ARGS = (
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
)


def _seed(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Argument `seed` expected a non-negative integer or None, received {value!r}.")
    if value < 0:
        raise ValueError(f"Argument `seed` expected a non-negative integer or None, received {value!r}.")
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Argument `{name}` expected a bool, received {value!r}.")
    return bool(value)


def _projection(value, units):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Argument `projection` expected None or an integer, received {value!r}.")
    if not 0 < value < units:
        raise ValueError(
            f"Argument `projection` expected None or an integer from 1 to units - 1 = {units - 1}, received {value!r}."
        )
    return int(value)


# The `ε` added to the variance in the cells' layer normalisation (PyTorch's and haste's).
_LAYER_NORM_EPSILON = 1e-5


def _layer_norm(v, gain, shift=None):
    """`gain ⊙ (v - mean) / √(var + ε) (+ shift)` over the last axis (the biased variance)."""
    centred = v - ops.mean(v, axis=-1, keepdims=True)
    var = ops.mean(centred * centred, axis=-1, keepdims=True)
    out = centred / ops.sqrt(var + _LAYER_NORM_EPSILON) * gain
    return out if shift is None else out + shift


def _cell_norm_initializer(shape, dtype=None):
    """An LSTM's `(2, units)` cell-state normalisation: gain ones, bias zeros."""
    return np.stack([np.ones(shape[1:], dtype), np.zeros(shape[1:], dtype)])


def _positive(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Argument `{name}` expected a positive number or None, received {value!r}.")
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"Argument `{name}` expected a positive number or None, received {value!r}.")
    return float(value)


def _rate(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Argument `{name}` expected a float between 0 and 1, received {value!r}.")
    if np.isnan(value):
        raise ValueError(f"Argument `{name}` expected a float between 0 and 1, received {value!r}.")
    return float(value)


class DropoutRNNCell(Layer):
    """What the three built-in cells share: units, weights, activations and dropout masks.

    Dropout masks are drawn once per layer call and shared by every time step (variational
    dropout, as Keras); `dropout_masks` returns them as `(gates, batch, dim)` multipliers.
    Use one of its subclasses, `SimpleRNNCell`, `GRUCell` or `LSTMCell`; the gated ones add
    `recurrent_activation`.

    Args:
        units: Size of the output and of each state; a positive integer.
        activation: The activation of the candidate state and of the output.
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of `kernel`, which multiplies the step's input.
        recurrent_initializer: Initializer of `recurrent_kernel`, which multiplies the previous
            output.
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator (`rk.utils.set_random_seed`).
        implementation: 2 (default) draws one dropout mask shared by every gate; 1 draws one
            per gate, as Keras's implementation 1 (chosen whenever `recurrent_dropout` is set).
        zoneout: Fraction of the units whose state keeps its previous value at each step in
            training (Krueger et al., 2016), fresh masks every step (reproducible with `seed`);
            at inference the expectation, `s = zoneout·s₋₁ + (1 - zoneout)·s̃`. Beyond Keras;
            fused on the CPU (the GPU kernels do not run it yet).
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, ...).

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, or an `implementation` other than 1 or 2.
        TypeError: For a dropout rate or seed that is not a number.
    """

    kind = None  # "simple_rnn", "gru", "lstm" or "indrnn"
    gates = 1

    def __init__(
        self,
        units,
        *,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        implementation=2,
        zoneout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"Received an invalid value for argument `units`, expected a positive integer, got {units!r}."
            )
        if isinstance(implementation, bool) or implementation not in (1, 2):
            raise ValueError(f"Argument `implementation` expected 1 or 2, received {implementation!r}.")
        self.implementation = int(implementation)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        # Rates outside [0, 1] are clipped, as Keras does; what is not a number is an error.
        self.dropout = min(1.0, max(0.0, _rate("dropout", dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, _rate("recurrent_dropout", recurrent_dropout)))
        self.zoneout = min(1.0, max(0.0, _rate("zoneout", zoneout)))
        if self.recurrent_dropout != 0:
            self.implementation = 1
        self.seed = _seed(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        # While an RNN steps this cell in Python, the masks drawn at its first step, reused by
        # every later step of the call (see `RNN._step_loop`); None outside such a loop.
        self._step_dropout = None
        self.state_size = self.units
        self.output_size = self.units

    def add_cell_weights(
        self, input_dim, bias_shape, bias_initializer, recurrent_shape=None, recurrent_constraint=None
    ):
        """Creates kernel, recurrent_kernel and (with use_bias) bias in Keras's layout.

        `recurrent_shape` defaults to `(units, gates·units)`; `recurrent_constraint` to the
        cell's `recurrent_constraint`.
        """
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=recurrent_shape or (self.units, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=recurrent_constraint or self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=bias_shape,
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )

    def build(self, input_shape):
        self.add_cell_weights(input_shape[-1], (self.gates * self.units,), self.bias_initializer)
        self.built = True

    @property
    def extra_weights(self):
        """The weights after Keras's three (kernel, recurrent_kernel, bias) that the fused
        kernels read, in `get_weights()` order: none for Keras's cells."""
        return []

    def add_layer_norm_weights(self):
        """With `layer_norm`, creates `layer_norm_weights` `(2, gates·units)` (the gains of the
        input and recurrent products' normalisation, ones) and, for LSTM, `cell_norm_weights`
        `(2, units)` (the cell state's gain, ones, and bias, zeros)."""
        if not getattr(self, "layer_norm", False):
            return []
        width = self.gates * self.units
        self.layer_norm_weights = self.add_weight(shape=(2, width), initializer="ones", name="layer_norm")
        added = [self.layer_norm_weights]
        if self.kind == "lstm":
            self.cell_norm_weights = self.add_weight(
                shape=(2, self.units), initializer=_cell_norm_initializer, name="cell_norm"
            )
            added.append(self.cell_norm_weights)
        return added

    def _normalised_products(self, zx, zh):
        """The input and recurrent products `[x·W_g]`, `[h₋₁·U_g]` (lists of gate blocks), each
        layer-normalised over all its gates with `layer_norm`, else as given."""
        if not getattr(self, "layer_norm", False):
            return zx, zh
        gains = self.layer_norm_weights
        zx = _layer_norm(ops.concatenate(zx, axis=-1), gains[0])
        zh = _layer_norm(ops.concatenate(zh, axis=-1), gains[1])
        return ops.split(zx, self.gates, axis=-1), ops.split(zh, self.gates, axis=-1)

    @property
    def spec(self):
        """The `_core.CellSpec` of this cell, or None when an activation has no Rust kernel.

        Kept until one of the attributes it is made of changes (it is read at every call).
        """
        key = (
            self.kind,
            self.units,
            self.activation,
            # SimpleRNNCell has no gates: the spec's gate activation is a placeholder there.
            getattr(self, "recurrent_activation", activations.sigmoid),
            self.use_bias,
            getattr(self, "reset_after", True),
            getattr(self, "peephole", False),
            getattr(self, "projection", None),
            getattr(self, "layer_norm", False),
        )
        cached = self.__dict__.get("_spec_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        kind, units, activation, recurrent_activation, use_bias, reset_after, peephole, projection, layer_norm = key
        names = [_builtin_name(activation), _builtin_name(recurrent_activation)]
        spec = None
        if all(n in _core.ACTIVATIONS for n in names):
            extras = {"peephole": peephole, "projection": projection, "layer_norm": layer_norm}
            spec = _core.CellSpec(kind, units, *names, use_bias, reset_after, **extras)
        self.__dict__["_spec_cache"] = (key, spec)
        return spec

    def _generator(self):
        if self._rng is None:
            from rnnkit import random

            return random.generator()
        return self._rng

    def dropout_masks(self, batch, input_dim, dtype):
        """The `(input_mask, recurrent_mask)` multipliers for one call with `training=True`.

        Each is None when its rate is 0 (or, for GRU and LSTM, 1, which Keras treats as off);
        otherwise `(gates, batch, dim)`: one mask per gate with implementation 1, else one
        mask broadcast to every gate.
        """
        gated = self.kind in ("gru", "lstm")
        count = self.gates if self.implementation == 1 else 1

        def draw(rate, dim, count):
            if rate == 0 or (gated and rate >= 1):
                return None
            keep = self._generator().random((count, batch, dim)) >= rate
            scale = 0.0 if rate >= 1 else 1.0 / (1.0 - rate)
            return np.broadcast_to((keep * scale).astype(dtype), (self.gates, batch, dim))

        return draw(self.dropout, input_dim, count), draw(self.recurrent_dropout, self.output_size, self.gates)

    def step_masks(self, batch, input_dim, dtype, training):
        """What one fused call draws: `(input_mask, recurrent_mask, zoneout)`.

        The dropout masks are `dropout_masks`' in training, None at inference; `zoneout` is
        None without zoneout; in training `(rate, seeds)`, one seed per state drawn from this
        cell's generator, for masks the core draws inside its time loop (per state those of
        `_core.zoneout_masks(seed, (steps, batch, size), rate)`, batch and time axes swapped:
        1 with probability `zoneout`); at inference the rate itself, for the core's expectation
        (every unit moves by `1 - zoneout`).
        """
        in_mask, rec_mask = self.dropout_masks(batch, input_dim, dtype) if training else (None, None)
        zoneout = None
        if self.zoneout and training:
            sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
            seeds = self._generator().integers(0, 2**63, size=len(sizes))
            zoneout = (self.zoneout, [int(s) for s in seeds])
        elif self.zoneout:
            zoneout = self.zoneout
        return in_mask, rec_mask, zoneout

    def _zone(self, new_states, old_states, training):
        """Zoneout of one step in Python (`call`): each new state keeps its previous value where
        a fresh mask says so in training, or moves by `1 - zoneout` at inference."""
        if not self.zoneout:
            return new_states
        zoned = []
        for new, old in zip(new_states, old_states):
            m = self.zoneout
            if training:
                m = (self._generator().random(tuple(new.shape)) < self.zoneout).astype(self.dtype)
            zoned.append(m * old + (1.0 - m) * new)
        return zoned

    def get_initial_state(self, batch_size=None):
        """Zero states, one `(batch_size, units)` array per state."""
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, s), dtype=self.dtype) for s in sizes]

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes `kernel` and `recurrent_kernel` to int8 per output column, beside
        `kernel_scale` and `recurrent_kernel_scale` (beyond Keras; see `rk.quantizers`). The
        cell then runs in the fused kernels only, for inference.

        Args:
            mode: "int8".
            type_check: Refuse subclasses that override `call`.
            config: Only None.

        Raises:
            ValueError: If the cell is not built or already quantized, or for an unknown mode.
            NotImplementedError: For Keras's other modes, a `config`, or a cell the int8
                kernels do not run (IndRNN, peepholes, a projection, layer_norm, an activation
                without a Rust kernel, a subclass with its own `call`).
        """
        quantizers.check_quantize_args(self, mode, config)
        reason = self._int8_refusal(type_check)
        if reason:
            raise NotImplementedError(f"Layer {type(self).__name__} '{self.name}' cannot be quantized: {reason}.")
        quantizers.quantize_weight(self, "kernel", axis=0)
        quantizers.quantize_weight(self, "recurrent_kernel", axis=0)
        self._quantization_mode = mode

    def _int8_refusal(self, type_check):
        """Why the int8 kernels cannot run this cell, or None."""
        if self.kind not in ("simple_rnn", "gru", "lstm"):
            return "the int8 kernels run SimpleRNN, GRU and LSTM cells"
        if type_check and type(self).call not in (SimpleRNNCell.call, GRUCell.call, LSTMCell.call):
            return "a subclass with its own `call` does not run in the fused kernels"
        if self.spec is None:
            return "its activations have no fused kernel"
        extras = [n for n in ("peephole", "projection", "layer_norm") if getattr(self, n, None)]
        if extras:
            return f"the int8 kernels do not run {', '.join(extras)}"
        return None

    def fused_kernels(self):
        """`(kernel, recurrent_kernel)` as float arrays for the fused kernels: the weights, or
        for an int8 cell their dequantized values `q / scale`, which the kernels quantize back to
        `q` (kept until the int8 weights change)."""
        if self.quantization_mode is None:
            return np.asarray(self.kernel), np.asarray(self.recurrent_kernel)
        pairs = ((self.kernel, self.kernel_scale), (self.recurrent_kernel, self.recurrent_kernel_scale))
        sources = [v._array for pair in pairs for v in pair]
        cached = self.__dict__.get("_dequantized")
        if cached is None or any(a is not b for a, b in zip(cached[0], sources)):
            cached = (sources, tuple(quantizers.dequantized(w, scale, 0) for w, scale in pairs))
            self.__dict__["_dequantized"] = cached
        return cached[1]

    def _step_inputs(self, inputs, states, training):
        """The step's input and previous h, with this call's dropout applied (for `call`)."""
        if self.quantization_mode is not None:
            raise NotImplementedError(
                f"Layer {type(self).__name__} '{self.name}' is quantized to int8: it runs only in the fused "
                "kernels of an RNN layer (SimpleRNN, GRU, LSTM, RNN or Bidirectional), not step by step."
            )
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        if training:
            if self._step_dropout is not None:
                if not self._step_dropout:
                    self._step_dropout.extend(self.dropout_masks(inputs.shape[0], inputs.shape[-1], self.dtype))
                in_mask, rec_mask = self._step_dropout
            else:
                in_mask, rec_mask = self.dropout_masks(inputs.shape[0], inputs.shape[-1], self.dtype)
            if in_mask is not None:
                inputs = [ops.multiply(inputs, m) for m in in_mask]
            if rec_mask is not None:
                h_prev = [ops.multiply(h_prev, m) for m in rec_mask]
        split = lambda x: x if isinstance(x, list) else [x] * self.gates  # noqa: E731
        return split(inputs), split(h_prev)

    def _gate_blocks(self, weight):
        return ops.split(weight, self.gates, axis=-1)

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        if self.zoneout:
            config["zoneout"] = self.zoneout
        for name in _CELL_ARGS:
            module = initializers if "initializer" in name else regularizers if "regularizer" in name else constraints
            config[name] = module.serialize(getattr(self, name))
        return {**super().get_config(), **config}


class SimpleRNNCell(DropoutRNNCell):
    """The step of `SimpleRNN`: `h = activation(x·kernel + h₋₁·recurrent_kernel + bias)`.

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The output's activation (default tanh); None for the identity.
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of `kernel`, which multiplies the step's input.
        recurrent_initializer: Initializer of `recurrent_kernel`, which multiplies the previous
            output.
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, ...) and `zoneout`
            (see `DropoutRNNCell`); anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, or an unknown keyword argument.
        TypeError: For a dropout rate or seed that is not a number.
    """

    kind = "simple_rnn"

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
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
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )

    def call(self, inputs, states, training=False):
        (x,), (h,) = self._step_inputs(inputs, states, training)
        z = ops.matmul(x, self.kernel) + ops.matmul(h, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        (out,) = self._zone([self.activation(z)], [h_prev], training)
        return out, [out] if isinstance(states, (list, tuple)) else out


class GRUCell(DropoutRNNCell):
    """The step of `GRU`: update gate z, reset gate r and candidate h, in Keras's weight layout.

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The candidate's activation (default tanh); None for the identity.
        recurrent_activation: The gates' activation (default sigmoid).
        use_bias: Whether the cell adds biases.
        kernel_initializer: Initializer of `kernel` `(input_dim, 3·units)`, which multiplies the
            step's input.
        recurrent_initializer: Initializer of `recurrent_kernel` `(units, 3·units)`, which
            multiplies the previous output.
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        reset_after: Apply the reset gate after the recurrent matrix product (True, the default,
            with separate input and recurrent biases: `bias` is `(2, 3·units)`) or before it
            (False, one `(3·units,)` bias).
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        zoneout: Fraction of the units whose state keeps its previous value at each step in
            training (Krueger et al., 2016), fresh masks every step (reproducible with `seed`);
            at inference the expectation, `s = zoneout·s₋₁ + (1 - zoneout)·s̃`. Beyond Keras;
            fused on the CPU (the GPU kernels do not run it yet).
        layer_norm: Layer normalisation as haste's LayerNormGRU (beyond Keras; needs
            `reset_after=True`): the input product `x·W` and the recurrent product `h₋₁·U` are
            each normalised over all `3·units` columns at once (not per gate block) with their
            own gains, the biases acting as their shifts:
            `[x_z, x_r, x_h] = γ_x ⊙ LN(x·W) + b_in`, `[r_z, r_r, r_h] = γ_h ⊙ LN(h₋₁·U) + b_rec`,
            then Keras's `z = σ(x_z + r_z)`, `r = σ(x_r + r_r)`, `h̃ = tanh(x_h + r ⊙ r_h)`,
            `h = z ⊙ h₋₁ + (1 - z) ⊙ h̃`, with `LN(v) = (v - mean(v)) / √(var(v) + 1e-5)` over
            the row. Adds `layer_norm` `(2, 3·units)` (rows γ_x, γ_h, starting at ones) after
            `bias` in `get_weights()`. Fused on the CPU (the GPU kernels do not run it yet).
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, ...) and
            `implementation` (1: one dropout mask per gate; 2, the default: one shared mask);
            anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, an unknown keyword argument, or
            `layer_norm=True` with `reset_after=False`.
        TypeError: For a dropout rate or seed that is not a number, or a `layer_norm` that is
            not a bool.
    """

    kind = "gru"
    gates = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
        seed=None,
        zoneout=0.0,
        layer_norm=False,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            zoneout=zoneout,
            **kwargs,
        )
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after
        self.layer_norm = _flag("layer_norm", layer_norm)
        if self.layer_norm and not reset_after:
            raise ValueError(
                "Argument `layer_norm=True` needs `reset_after=True` (haste's LayerNormGRU normalises the "
                "recurrent product before the reset gate), received reset_after=False."
            )

    def build(self, input_shape):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self.add_cell_weights(input_shape[-1], shape, self.bias_initializer)
        self.add_layer_norm_weights()
        self.built = True

    @property
    def extra_weights(self):
        """The weights after Keras's three: `layer_norm_weights` with `layer_norm`."""
        return [self.layer_norm_weights] if self.layer_norm else []

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        xs, hs = self._step_inputs(inputs, states, training)
        w = self._gate_blocks(self.kernel)
        u = self._gate_blocks(self.recurrent_kernel)
        if self.use_bias:
            b_in, b_rec = (self.bias[0], self.bias[1]) if self.reset_after else (self.bias, None)
            b_in = self._gate_blocks(b_in)
            b_rec = self._gate_blocks(b_rec) if b_rec is not None else [0.0] * 3
        else:
            b_in = b_rec = [0.0] * 3
        zx, zh = self._normalised_products(
            [ops.matmul(x, wg) for x, wg in zip(xs, w)],
            [ops.matmul(h, ug) for h, ug in zip(hs, u[:2] if not self.reset_after else u)],
        )
        x_z, x_r, x_h = (z + bg for z, bg in zip(zx, b_in))
        r_z, r_r = zh[0] + b_rec[0], zh[1] + b_rec[1]
        z = self.recurrent_activation(x_z + r_z)
        r = self.recurrent_activation(x_r + r_r)
        if self.reset_after:
            hh = self.activation(x_h + r * (zh[2] + b_rec[2]))
        else:
            hh = self.activation(x_h + ops.matmul(r * hs[2], u[2]))
        h = z * h_prev + (1.0 - z) * hh
        (h,) = self._zone([h], [h_prev], training)
        return h, [h] if isinstance(states, (list, tuple)) else h

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=activations.serialize(self.recurrent_activation), reset_after=self.reset_after
        )
        if self.layer_norm:
            config["layer_norm"] = True
        return config


class LSTMCell(DropoutRNNCell):
    """The step of `LSTM`: input, forget, cell and output gates (i, f, c, o), states `[h, c]`.

    Args:
        units: Size of the output and of each state; a positive integer.
        activation: The activation of the candidate cell state and of the output (default
            tanh); None for the identity.
        recurrent_activation: The gates' activation (default sigmoid).
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of `kernel` `(input_dim, 4·units)`, which multiplies the
            step's input.
        recurrent_initializer: Initializer of `recurrent_kernel` `(units, 4·units)`, which
            multiplies the previous output.
        bias_initializer: Initializer of `bias` `(4·units,)`.
        unit_forget_bias: Start the forget gate's bias at one (whatever `bias_initializer`
            says), so that the cell remembers by default early in training.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        zoneout: Fraction of the units whose state keeps its previous value at each step in
            training (Krueger et al., 2016), fresh masks every step (reproducible with `seed`);
            at inference the expectation, `s = zoneout·s₋₁ + (1 - zoneout)·s̃`. Beyond Keras;
            fused on the CPU (the GPU kernels do not run it yet).
        peephole: Add peephole connections (as ONNX and oneDNN define them): a `(3, units)`
            weight `peephole` (rows p_i, p_f, p_o, starting at zeros) appended after `bias` in
            `get_weights()`, with `i = σ(z_i + p_i ⊙ c₋₁)`, `f = σ(z_f + p_f ⊙ c₋₁)`,
            `c = f ⊙ c₋₁ + i ⊙ tanh(z_c)`, `o = σ(z_o + p_o ⊙ c)`, `h = o ⊙ tanh(c)` (σ and tanh
            standing for `recurrent_activation` and `activation`).
        projection: None, or the size `P` (1 to `units - 1`) of a projected `h`, as PyTorch's
            `proj_size`: `h = (o ⊙ tanh(c))·projection_kernel` with a `(units, P)` weight
            `projection_kernel` (initialised by `kernel_initializer`) last in `get_weights()`;
            `h`, the output and the rows of `recurrent_kernel` `(P, 4·units)` then have size
            `P`, and the states are `[h (batch, P), c (batch, units)]`.
        layer_norm: Layer normalisation as haste's LayerNormLSTM (beyond Keras): the input
            product `x·W` and the recurrent product `h₋₁·U` are each normalised over all
            `4·units` columns at once (not per gate block) with their own gains, the bias acting
            as their shift, and the cell state is normalised (gain and bias) before the output
            activation: `[z_i, z_f, z_c, z_o] = γ_x ⊙ LN(x·W) + γ_h ⊙ LN(h₋₁·U) + b`,
            `c = σ(z_f) ⊙ c₋₁ + σ(z_i) ⊙ tanh(z_c)` (carried unnormalised),
            `h = σ(z_o) ⊙ tanh(γ_c ⊙ LN(c) + β_c)`, with `LN(v) = (v - mean(v)) / √(var(v) +
            1e-5)` over the row. Adds `layer_norm` `(2, 4·units)` (rows γ_x, γ_h, ones) and
            `cell_norm` `(2, units)` (rows γ_c, ones, and β_c, zeros) last in `get_weights()`.
            Works with `projection` and `zoneout`; not with `peephole`. Fused on the CPU (the GPU
            kernels do not run it yet).
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, ...) and
            `implementation` (1: one dropout mask per gate; 2, the default: one shared mask);
            anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, an unknown keyword argument, or
            `layer_norm=True` with `peephole=True`.
        TypeError: For a dropout rate or seed that is not a number, a `peephole` or
            `layer_norm` that is not a bool, or a `projection` that is not an integer or None.
    """

    kind = "lstm"
    gates = 4

    def __init__(
        self,
        units,
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
        peephole=False,
        projection=None,
        zoneout=0.0,
        layer_norm=False,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            zoneout=zoneout,
            **kwargs,
        )
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.peephole = _flag("peephole", peephole)
        self.projection = _projection(projection, self.units)
        self.layer_norm = _flag("layer_norm", layer_norm)
        if self.layer_norm and self.peephole:
            raise ValueError(
                "Arguments `layer_norm=True` and `peephole=True` cannot be combined (haste's LayerNormLSTM "
                "has no peepholes); set one of them to False."
            )
        self.output_size = self.projection or self.units
        self.state_size = [self.output_size, self.units]

    def build(self, input_shape):
        init = self._forget_bias_initializer if self.unit_forget_bias else self.bias_initializer
        recurrent_shape = (self.output_size, 4 * self.units)
        self.add_cell_weights(input_shape[-1], (4 * self.units,), init, recurrent_shape)
        if self.peephole:
            self.peephole_weights = self.add_weight(shape=(3, self.units), initializer="zeros", name="peephole")
        if self.projection:
            self.projection_kernel = self.add_weight(
                shape=(self.units, self.projection), initializer=self.kernel_initializer, name="projection_kernel"
            )
        self.add_layer_norm_weights()
        self.built = True

    @property
    def extra_weights(self):
        """The weights after Keras's three: `peephole_weights` with `peephole`, then
        `projection_kernel` with a `projection`, then `layer_norm_weights` and
        `cell_norm_weights` with `layer_norm`."""
        return (
            ([self.peephole_weights] if self.peephole else [])
            + ([self.projection_kernel] if self.projection else [])
            + ([self.layer_norm_weights, self.cell_norm_weights] if self.layer_norm else [])
        )

    def _forget_bias_initializer(self, shape, dtype=None):
        """`bias_initializer` for the i, c and o gates, ones for the forget gate (as Keras)."""
        units, base = self.units, self.bias_initializer
        return np.concatenate([base((units,), dtype), np.ones((units,), dtype), base((2 * units,), dtype)])

    def call(self, inputs, states, training=False):
        c_prev = states[1]
        xs, hs = self._step_inputs(inputs, states, training)
        w, u = self._gate_blocks(self.kernel), self._gate_blocks(self.recurrent_kernel)
        b = self._gate_blocks(self.bias) if self.use_bias else [0.0] * 4
        zx, zh = self._normalised_products(
            [ops.matmul(x, wg) for x, wg in zip(xs, w)], [ops.matmul(h, ug) for h, ug in zip(hs, u)]
        )
        z = [a + r + bg for a, r, bg in zip(zx, zh, b)]
        if self.peephole:
            p_i, p_f, p_o = self.peephole_weights[0], self.peephole_weights[1], self.peephole_weights[2]
            z[0], z[1] = z[0] + p_i * c_prev, z[1] + p_f * c_prev
        i, f = self.recurrent_activation(z[0]), self.recurrent_activation(z[1])
        c = f * c_prev + i * self.activation(z[2])
        o = self.recurrent_activation(z[3] + p_o * c if self.peephole else z[3])
        if self.layer_norm:
            h = o * self.activation(_layer_norm(c, self.cell_norm_weights[0], self.cell_norm_weights[1]))
        else:
            h = o * self.activation(c)
        if self.projection:
            h = ops.matmul(h, self.projection_kernel)
        h, c = self._zone([h, c], [states[0], c_prev], training)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(
            recurrent_activation=activations.serialize(self.recurrent_activation),
            unit_forget_bias=self.unit_forget_bias,
        )
        if self.peephole:
            config["peephole"] = True
        if self.projection:
            config["projection"] = self.projection
        if self.layer_norm:
            config["layer_norm"] = True
        return config


class _ClipAbs(constraints.Constraint):
    """Clips a weight into `[-limit, limit]`, after the user's `recurrent_constraint` if any."""

    def __init__(self, limit, then=None):
        self.limit, self.then = limit, then

    def __call__(self, w):
        w = self.then(w) if self.then is not None else w
        return np.clip(np.asarray(w), -self.limit, self.limit)


class IndRNNCell(DropoutRNNCell):
    """The step of `IndRNN` (Li et al., 2018): `h = activation(x·kernel + u ⊙ h₋₁ + bias)`.

    Each unit reads only its own previous value, through one weight: the recurrent kernel `u`
    is a `(units,)` vector, so a step costs no matrix product. Weights, in `get_weights()`
    order: `kernel (input_dim, units)`, `recurrent_kernel (units,)`, `bias (units,)`.

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The output's activation (default relu, the paper's); None for the identity.
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of `kernel`.
        recurrent_initializer: Initializer of the vector `u` (default uniform in [0, 1)).
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `u`.
        bias_regularizer: Optional regularizer of `bias`.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `u` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        recurrent_max_abs: Optional positive bound on `|u|`: after each update (and the
            `recurrent_constraint`), `u` is clipped into `[-recurrent_max_abs,
            recurrent_max_abs]`, as the paper keeps gradients from exploding over long
            sequences.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, ...) and `zoneout`
            (see `DropoutRNNCell`); anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, a `recurrent_max_abs` that is not
            positive, or an unknown keyword argument.
        TypeError: For a dropout rate, seed or `recurrent_max_abs` that is not a number.
    """

    kind = "indrnn"

    def __init__(
        self,
        units,
        activation="relu",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        recurrent_max_abs=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        if recurrent_initializer is None:
            recurrent_initializer = initializers.RandomUniform(0.0, 1.0)
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
        self.recurrent_max_abs = recurrent_max_abs
        if recurrent_max_abs is not None:
            self.recurrent_max_abs = _positive("recurrent_max_abs", recurrent_max_abs)

    def build(self, input_shape):
        clip = None
        if self.recurrent_max_abs is not None:
            clip = _ClipAbs(self.recurrent_max_abs, self.recurrent_constraint)
        self.add_cell_weights(input_shape[-1], (self.units,), self.bias_initializer, (self.units,), clip)
        self.built = True

    def call(self, inputs, states, training=False):
        (x,), (h,) = self._step_inputs(inputs, states, training)
        z = ops.matmul(x, self.kernel) + h * self.recurrent_kernel
        if self.use_bias:
            z = z + self.bias
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        (out,) = self._zone([self.activation(z)], [h_prev], training)
        return out, [out] if isinstance(states, (list, tuple)) else out

    def get_config(self):
        return {**super().get_config(), "recurrent_max_abs": self.recurrent_max_abs}


class StackedRNNCells(Layer):
    """Cells run one after the other at each step, as one cell (`RNN([cell1, cell2])`).

    Args:
        cells: The cells, first to last.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
                raise ValueError(
                    f"All cells must have a `call` method and a `state_size` attribute. Received cell without: {cell}"
                )
        self.cells = list(cells)

    @property
    def state_size(self):
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        return getattr(last, "output_size", None) or _first_state_size(last.state_size)

    def build(self, input_shape):
        shape = input_shape
        for cell in self.cells:
            if not cell.built:
                cell.build(shape)
                cell.built = True
            out = getattr(cell, "output_size", None) or _first_state_size(cell.state_size)
            batch = tree.flatten(shape)[0] if shape else None
            shape = (batch, *(out if isinstance(out, (list, tuple)) else (out,)))
        self.built = True

    def get_initial_state(self, batch_size=None):
        return [
            cell.get_initial_state(batch_size) if hasattr(cell, "get_initial_state") else None for cell in self.cells
        ]

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            kwargs = {"training": training} if "training" in call_parameters(type(cell)) else {}
            inputs, cell_states = cell(inputs, cell_states, **kwargs)
            new_states.append(cell_states)
        return inputs, new_states

    def get_config(self):
        from rnnkit.layers import serialization

        return {**super().get_config(), "cells": [serialization.serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        from rnnkit.layers import serialization

        config = dict(config)
        config["cells"] = [serialization.deserialize(c) for c in config["cells"]]
        return cls(**config)


def _builtin_name(activation):
    """The Keras name of a built-in activation function, or None for a user's function."""
    try:
        return activations.serialize(activation)
    except ValueError:
        return None


def _first_state_size(state_size):
    return state_size[0] if isinstance(state_size, (list, tuple)) else state_size
