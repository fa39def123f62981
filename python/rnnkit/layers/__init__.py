"""Keras-style layers."""

from rnnkit.layers.activation import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from rnnkit.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from rnnkit.layers.core import Dense, Identity, Lambda
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.input_layer import Input, InputLayer
from rnnkit.layers.layer import Layer
from rnnkit.layers.lookup import IntegerLookup, StringLookup
from rnnkit.layers.masking import Masking
from rnnkit.layers.merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from rnnkit.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    UnitNormalization,
)
from rnnkit.layers.preprocessing import CategoryEncoding, Discretization, Normalization
from rnnkit.layers.recurrent import GRU, LSTM, IndRNN, SimpleRNN
from rnnkit.layers.regularization import (
    ActivityRegularization,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
)
from rnnkit.layers.reshaping import Flatten, RepeatVector, Reshape
from rnnkit.layers.reshaping_1d import Cropping1D, Permute, UpSampling1D, ZeroPadding1D
from rnnkit.layers.rnn import RNN
from rnnkit.layers.rnn_cells import GRUCell, IndRNNCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from rnnkit.layers.text_vectorization import TextVectorization
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "ELU",
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "ActivityRegularization",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "BatchNormalization",
    "Bidirectional",
    "CategoryEncoding",
    "Concatenate",
    "Cropping1D",
    "Dense",
    "Discretization",
    "Dot",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GaussianDropout",
    "GaussianNoise",
    "GroupNormalization",
    "Identity",
    "IndRNN",
    "IndRNNCell",
    "Input",
    "InputLayer",
    "IntegerLookup",
    "LSTMCell",
    "Lambda",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Normalization",
    "PReLU",
    "Permute",
    "ReLU",
    "RepeatVector",
    "Reshape",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout1D",
    "StackedRNNCells",
    "StringLookup",
    "Subtract",
    "TextVectorization",
    "TimeDistributed",
    "UnitNormalization",
    "UpSampling1D",
    "ZeroPadding1D",
]
