"""`SimpleRNN`, `GRU` and `LSTM`: an `RNN` over the matching built-in cell, Keras's arguments."""

from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")
_LAYER_ARGS = (
    "name", "trainable", "dtype", "activity_regularizer", "input_shape", "batch_size", "batch_input_shape", "device",
)


class _CellLayer(RNN):
    """An RNN layer that builds its own cell from the cell's arguments."""

    cell_class = None

    def __init__(self, units, **kwargs):
        kwargs.pop("use_cudnn", None)  # every configuration runs fused; nothing to choose
        layer_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS + _LAYER_ARGS if k in kwargs}
        cell_kwargs = {k: layer_kwargs[k] for k in ("dtype", "trainable") if k in layer_kwargs}
        cell = self.cell_class(units, name=f"{self.cell_class.kind}_cell", **cell_kwargs, **kwargs)
        super().__init__(cell, **layer_kwargs)

    def __getattr__(self, name):
        # Cell arguments read through the layer (`layer.units`, `layer.dropout`, ...), as Keras.
        cell = self.__dict__.get("cell")
        if cell is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(cell, name)

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**config, **cell_config}


class SimpleRNN(_CellLayer):
    """Fully-connected RNN whose output is fed back as input (`RNN(SimpleRNNCell(units))`)."""

    cell_class = SimpleRNNCell


class GRU(_CellLayer):
    """Gated Recurrent Unit (Cho et al., 2014), `reset_after=True` by default as in Keras 3."""

    cell_class = GRUCell


class LSTM(_CellLayer):
    """Long Short-Term Memory (Hochreiter & Schmidhuber, 1997), `unit_forget_bias=True`."""

    cell_class = LSTMCell
