"""Keras-style layers."""

from rnnkit.layers.core import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.layer import Layer
from rnnkit.layers.masking import Masking
from rnnkit.layers.recurrent import GRU, LSTM, SimpleRNN
from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "GRU", "LSTM", "RNN", "Bidirectional", "Dense", "Embedding", "GRUCell", "Input", "InputLayer",
    "LSTMCell", "Layer", "Masking", "SimpleRNN", "SimpleRNNCell", "StackedRNNCells", "TimeDistributed",
]
