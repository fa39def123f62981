"""`SimpleRNN`, `GRU`, `LSTM` and `IndRNN`: an `RNN` over the matching built-in cell, with
Keras's arguments (and, beyond Keras, LSTM peepholes, projection, zoneout, layer
normalisation and IndRNN)."""

from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import GRUCell, IndRNNCell, LSTMCell, SimpleRNNCell

# The keyword arguments the layer keeps (its `RNN` and base `Layer` arguments); any other
# keyword goes to the cell, which takes `implementation` and rejects anything else by name.
_LAYER_KWARGS = frozenset(
    (
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "zero_output_for_mask",
        "activity_regularizer",
        "name",
        "trainable",
        "dtype",
        "input_shape",
        "batch_size",
        "batch_input_shape",
        "device",
        "autocast",
    )
)


def _check_use_cudnn(use_cudnn):
    """Keras's `use_cudnn` values; any of them runs rnnkit's fused kernels (nothing to choose)."""
    if not (use_cudnn is True or use_cudnn is False or use_cudnn == "auto"):
        raise ValueError(f"Argument `use_cudnn` expected one of 'auto', True or False, received {use_cudnn!r}.")


def _cell_property(name):
    """A read-only property of the layer that reads its cell's `name` (Keras's layer properties)."""

    def read(self):
        return getattr(self.cell, name)

    return property(read, doc=f"The cell's `{name}` (read-only: set it when creating the layer).")


class _CellLayer(RNN):
    """An `RNN` over a built-in cell that the layer creates from the cell's arguments.

    Args:
        cell_class: `SimpleRNNCell`, `GRUCell` or `LSTMCell`.
        cell_arguments: The cell's named arguments, as the subclass's signature received them.
        **kwargs: The `RNN` and base `Layer` arguments; other keywords go to the cell (which
            takes `implementation` and raises ValueError for anything it does not know).
    """

    def __init__(self, cell_class, cell_arguments, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        shared = {k: layer_kwargs[k] for k in ("dtype", "trainable") if k in layer_kwargs}
        cell = cell_class(**cell_arguments, name=f"{cell_class.kind}_cell", **shared, **kwargs)
        super().__init__(cell, **layer_kwargs)

    units = _cell_property("units")
    activation = _cell_property("activation")
    use_bias = _cell_property("use_bias")
    kernel_initializer = _cell_property("kernel_initializer")
    recurrent_initializer = _cell_property("recurrent_initializer")
    bias_initializer = _cell_property("bias_initializer")
    kernel_regularizer = _cell_property("kernel_regularizer")
    recurrent_regularizer = _cell_property("recurrent_regularizer")
    bias_regularizer = _cell_property("bias_regularizer")
    kernel_constraint = _cell_property("kernel_constraint")
    recurrent_constraint = _cell_property("recurrent_constraint")
    bias_constraint = _cell_property("bias_constraint")
    dropout = _cell_property("dropout")
    recurrent_dropout = _cell_property("recurrent_dropout")

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_torch(cls, module, **kwargs):
        """This layer made from a PyTorch `nn.LSTM`/`nn.GRU`/`nn.RNN` or its state dict.

        Args:
            module: The PyTorch module, or a dict of arrays with PyTorch's key names.
            **kwargs: See `rnnkit.interop.torch.from_torch` (`num_layers`, `bidirectional`,
                `nonlinearity`, `return_sequences`, layer arguments, ...).

        Returns:
            The layer, a `Bidirectional`, or a list of them for `num_layers > 1`.
        """
        from rnnkit.interop import torch

        return torch.from_torch(module, cls, **kwargs)

    def to_torch_state_dict(self):
        """The PyTorch state dict (numpy arrays) of this layer; see `rnnkit.interop.torch`."""
        from rnnkit.interop import torch

        return torch.to_torch_state_dict(self)


class SimpleRNN(_CellLayer):
    """A fully-connected RNN whose output is fed back as input: `RNN(SimpleRNNCell(units))`.

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The output's activation (default tanh); None for the identity.
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of the cell's `kernel`, which multiplies each step's input.
        recurrent_initializer: Initializer of the cell's `recurrent_kernel`, which multiplies
            the previous output.
        bias_initializer: Initializer of the cell's `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        activity_regularizer: Optional regularizer of the layer's output.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        return_sequences: Return every step's output `(batch, time, units)` instead of the
            last one `(batch, units)`.
        return_state: Also return the final state: `[output, state]`.
        go_backwards: Process the sequence from its last step to its first.
        stateful: Start each batch from the final state of the previous batch's sample at the
            same index (needs a fixed batch size).
        unroll: Accepted for Keras compatibility; every configuration runs as a fused loop.
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, `input_shape`,
            `batch_size`, `batch_input_shape`, `device`) and `RNN`'s `zero_output_for_mask`;
            anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, or an unknown keyword argument.
        TypeError: For a dropout rate or seed that is not a number.
    """

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            SimpleRNNCell,
            dict(
                units=units,
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
            ),
            activity_regularizer=activity_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )


class GRU(_CellLayer):
    """Gated Recurrent Unit (Cho et al., 2014): `RNN(GRUCell(units))`, in Keras's weight layout.

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The candidate's activation (default tanh); None for the identity.
        recurrent_activation: The update and reset gates' activation (default sigmoid).
        use_bias: Whether the cell adds biases.
        kernel_initializer: Initializer of the cell's `kernel` `(input_dim, 3·units)`.
        recurrent_initializer: Initializer of the cell's `recurrent_kernel` `(units, 3·units)`.
        bias_initializer: Initializer of the cell's `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        activity_regularizer: Optional regularizer of the layer's output.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        return_sequences: Return every step's output `(batch, time, units)` instead of the
            last one `(batch, units)`.
        return_state: Also return the final state: `[output, state]`.
        go_backwards: Process the sequence from its last step to its first.
        stateful: Start each batch from the final state of the previous batch's sample at the
            same index (needs a fixed batch size).
        unroll: Accepted for Keras compatibility; every configuration runs as a fused loop.
        reset_after: Apply the reset gate after the recurrent matrix product (True, the default,
            and the cuDNN-compatible form, with a `(2, 3·units)` bias) or before it (False).
        use_cudnn: "auto", True or False; accepted for Keras compatibility: every configuration
            runs in rnnkit's fused kernels, on the CPU or the GPU.
        zoneout: Fraction of the units whose state keeps its previous value at each step in
            training (beyond Keras; Krueger et al., 2016), the expectation at inference; see
            the cell. CPU only for now (under the "auto" device it runs on the CPU).
        layer_norm: Layer normalisation of the input and recurrent products (each over the
            whole gate vector, with its own gain) as haste's LayerNorm cells (beyond Keras);
            the equations and the extra weights are in the cell's docstring. CPU only for now
            (under the "auto" device it runs on the CPU).
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, `input_shape`,
            `batch_size`, `batch_input_shape`, `device`), `RNN`'s `zero_output_for_mask` and
            the cell's `implementation`; anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, a `use_cudnn` other than "auto",
            True or False, or an unknown keyword argument.
        TypeError: For a dropout rate or seed that is not a number.
    """

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
        activity_regularizer=None,
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
        unroll=False,
        reset_after=True,
        use_cudnn="auto",
        zoneout=0.0,
        layer_norm=False,
        **kwargs,
    ):
        _check_use_cudnn(use_cudnn)
        super().__init__(
            GRUCell,
            dict(
                units=units,
                activation=activation,
                recurrent_activation=recurrent_activation,
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
                reset_after=reset_after,
                seed=seed,
                zoneout=zoneout,
                layer_norm=layer_norm,
            ),
            activity_regularizer=activity_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )
        self.use_cudnn = use_cudnn

    recurrent_activation = _cell_property("recurrent_activation")
    reset_after = _cell_property("reset_after")
    zoneout = _cell_property("zoneout")
    layer_norm = _cell_property("layer_norm")


class LSTM(_CellLayer):
    """Long Short-Term Memory (Hochreiter & Schmidhuber, 1997): `RNN(LSTMCell(units))`.

    Args:
        units: Size of the output and of each state; a positive integer.
        activation: The activation of the candidate cell state and of the output (default
            tanh); None for the identity.
        recurrent_activation: The gates' activation (default sigmoid).
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of the cell's `kernel` `(input_dim, 4·units)`.
        recurrent_initializer: Initializer of the cell's `recurrent_kernel` `(units, 4·units)`.
        bias_initializer: Initializer of the cell's `bias` `(4·units,)`.
        unit_forget_bias: Start the forget gate's bias at one (whatever `bias_initializer`
            says), so that the layer remembers by default early in training.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        activity_regularizer: Optional regularizer of the layer's output.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        return_sequences: Return every step's output `(batch, time, units)` instead of the
            last one `(batch, units)`.
        return_state: Also return the final states: `[output, h, c]`.
        go_backwards: Process the sequence from its last step to its first.
        stateful: Start each batch from the final states of the previous batch's sample at the
            same index (needs a fixed batch size).
        unroll: Accepted for Keras compatibility; every configuration runs as a fused loop.
        use_cudnn: "auto", True or False; accepted for Keras compatibility: every configuration
            runs in rnnkit's fused kernels, on the CPU or the GPU.
        peephole: Add peephole connections (beyond Keras; ONNX's and oneDNN's): a `(3, units)`
            weight after `bias` in `get_weights()`, see `LSTMCell`. Fused on the CPU; the GPU
            kernels do not run it yet (under the "auto" device it runs on the CPU).
        projection: None, or the size `P < units` of a projected output and `h` (beyond Keras;
            PyTorch's `proj_size`): `h = (o ⊙ tanh(c))·projection_kernel`, a `(units, P)` weight
            last in `get_weights()`; see `LSTMCell`. CPU only, as `peephole`.
        zoneout: Fraction of the units whose state keeps its previous value at each step in
            training (beyond Keras; Krueger et al., 2016), the expectation at inference; see
            the cell. CPU only for now (under the "auto" device it runs on the CPU).
        layer_norm: Layer normalisation of the input and recurrent products (each over the
            whole gate vector, with its own gain) as haste's LayerNorm cells (beyond Keras);
            the equations and the extra weights are in the cell's docstring. CPU only for now
            (under the "auto" device it runs on the CPU).
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, `input_shape`,
            `batch_size`, `batch_input_shape`, `device`), `RNN`'s `zero_output_for_mask` and
            the cell's `implementation`; anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, a `use_cudnn` other than "auto",
            True or False, or an unknown keyword argument.
        TypeError: For a dropout rate or seed that is not a number, a `peephole` that is not a
            bool, or a `projection` that is not an integer or None.
    """

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
        activity_regularizer=None,
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
        unroll=False,
        use_cudnn="auto",
        peephole=False,
        projection=None,
        zoneout=0.0,
        layer_norm=False,
        **kwargs,
    ):
        _check_use_cudnn(use_cudnn)
        super().__init__(
            LSTMCell,
            dict(
                units=units,
                activation=activation,
                recurrent_activation=recurrent_activation,
                use_bias=use_bias,
                kernel_initializer=kernel_initializer,
                recurrent_initializer=recurrent_initializer,
                bias_initializer=bias_initializer,
                unit_forget_bias=unit_forget_bias,
                kernel_regularizer=kernel_regularizer,
                recurrent_regularizer=recurrent_regularizer,
                bias_regularizer=bias_regularizer,
                kernel_constraint=kernel_constraint,
                recurrent_constraint=recurrent_constraint,
                bias_constraint=bias_constraint,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                seed=seed,
                peephole=peephole,
                projection=projection,
                zoneout=zoneout,
                layer_norm=layer_norm,
            ),
            activity_regularizer=activity_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )
        self.use_cudnn = use_cudnn

    recurrent_activation = _cell_property("recurrent_activation")
    unit_forget_bias = _cell_property("unit_forget_bias")
    peephole = _cell_property("peephole")
    projection = _cell_property("projection")
    zoneout = _cell_property("zoneout")
    layer_norm = _cell_property("layer_norm")


class IndRNN(_CellLayer):
    """Independently recurrent network (Li et al., 2018): `RNN(IndRNNCell(units))`.

    `h = activation(x·kernel + u ⊙ h₋₁ + bias)`: each unit reads only its own previous value,
    through one recurrent weight (`recurrent_kernel` is a `(units,)` vector), which lets deep
    stacks of ReLU units learn long sequences. Fused on the CPU like the other cells; the GPU
    kernels do not run it yet (under the "auto" device it runs on the CPU).

    Args:
        units: Size of the output and of the state; a positive integer.
        activation: The output's activation (default relu); None for the identity.
        use_bias: Whether the cell adds a bias.
        kernel_initializer: Initializer of the cell's `kernel` `(input_dim, units)`.
        recurrent_initializer: Initializer of the cell's `recurrent_kernel` `(units,)` (default
            uniform in [0, 1)).
        bias_initializer: Initializer of the cell's `bias` `(units,)`.
        kernel_regularizer: Optional regularizer of `kernel`.
        recurrent_regularizer: Optional regularizer of `recurrent_kernel`.
        bias_regularizer: Optional regularizer of `bias`.
        activity_regularizer: Optional regularizer of the layer's output.
        kernel_constraint: Optional constraint applied to `kernel` after each update.
        recurrent_constraint: Optional constraint applied to `recurrent_kernel` after each update.
        bias_constraint: Optional constraint applied to `bias` after each update.
        recurrent_max_abs: Optional positive bound on the recurrent weights' magnitude,
            applied by clipping after each update.
        dropout: Fraction of the input's units dropped in training; clipped to [0, 1].
        recurrent_dropout: Fraction of the previous output's units dropped in training;
            clipped to [0, 1].
        seed: Seed of the dropout masks (a non-negative integer), or None for the global
            generator.
        return_sequences: Return every step's output `(batch, time, units)` instead of the
            last one `(batch, units)`.
        return_state: Also return the final state: `[output, state]`.
        go_backwards: Process the sequence from its last step to its first.
        stateful: Start each batch from the final state of the previous batch's sample at the
            same index (needs a fixed batch size).
        unroll: Accepted for Keras compatibility; every configuration runs as a fused loop.
        **kwargs: Base `Layer` arguments (`name`, `trainable`, `dtype`, `input_shape`,
            `batch_size`, `batch_input_shape`, `device`) and `RNN`'s `zero_output_for_mask`;
            anything else raises ValueError.

    Raises:
        ValueError: For a `units` that is not a positive integer, an unknown activation,
            initializer, regularizer or constraint name, a `recurrent_max_abs` that is not
            positive, or an unknown keyword argument.
        TypeError: For a dropout rate, seed or `recurrent_max_abs` that is not a number.
    """

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        recurrent_max_abs=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
        super().__init__(
            IndRNNCell,
            dict(
                units=units,
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
                recurrent_max_abs=recurrent_max_abs,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                seed=seed,
            ),
            activity_regularizer=activity_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            **kwargs,
        )

    recurrent_max_abs = _cell_property("recurrent_max_abs")
