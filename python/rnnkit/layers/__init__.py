"""Keras-style layers."""

from rnnkit.layers.activation import Activation
from rnnkit.layers.core import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.layer import Layer
from rnnkit.layers.masking import Masking
from rnnkit.layers.merging import Add, Concatenate
from rnnkit.layers.normalization import BatchNormalization, LayerNormalization
from rnnkit.layers.recurrent import GRU, LSTM, SimpleRNN
from rnnkit.layers.regularization import Dropout
from rnnkit.layers.reshaping import Flatten, RepeatVector, Reshape
from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "Add",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Input",
    "InputLayer",
    "LSTMCell",
    "Layer",
    "LayerNormalization",
    "Masking",
    "RepeatVector",
    "Reshape",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "TimeDistributed",
]
