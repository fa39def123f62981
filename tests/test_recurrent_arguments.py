"""The recurrent layers and cells declare Keras 3's arguments, and their layer properties."""

import inspect
import os

os.environ["KERAS_BACKEND"] = "jax"  # before anything imports keras

import keras
import pytest

import rnnkit.layers as L

PAIRS = [
    (L.SimpleRNN, keras.layers.SimpleRNN),
    (L.GRU, keras.layers.GRU),
    (L.LSTM, keras.layers.LSTM),
    (L.SimpleRNNCell, keras.layers.SimpleRNNCell),
    (L.GRUCell, keras.layers.GRUCell),
    (L.LSTMCell, keras.layers.LSTMCell),
]
ids = [ours.__name__ for ours, _ in PAIRS]


# Beyond Keras (issue 20): arguments after Keras's own, defaults keeping Keras's behaviour.
EXTRAS = {
    "GRU": [("zoneout", 0.0), ("layer_norm", False)],
    "LSTM": [("peephole", False), ("projection", None), ("zoneout", 0.0), ("layer_norm", False)],
    "GRUCell": [("zoneout", 0.0), ("layer_norm", False)],
    "LSTMCell": [("peephole", False), ("projection", None), ("zoneout", 0.0), ("layer_norm", False)],
}


def parameters(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=ids)
def test_signature_is_keras(ours, theirs):
    """Keras's parameters in Keras's order, then ours beyond Keras before `**kwargs`."""
    keras_params = parameters(theirs)
    extras = [(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, d) for name, d in EXTRAS.get(ours.__name__, [])]
    assert parameters(ours) == keras_params[:-1] + extras + keras_params[-1:]


def properties(cls):
    return {
        name
        for klass in cls.__mro__
        if klass.__module__.startswith(("keras.src.layers.rnn", "rnnkit.layers.recurrent"))
        for name, value in vars(klass).items()
        if isinstance(value, property) and not name.startswith("_")
    }


@pytest.mark.parametrize(("ours", "theirs"), PAIRS[:3], ids=ids[:3])
def test_layer_properties_are_keras(ours, theirs):
    assert properties(ours) == properties(theirs) | {name for name, _ in EXTRAS.get(ours.__name__, [])}
    layer = ours(3, dropout=0.25)
    for name in properties(ours):
        assert getattr(layer, name) is getattr(layer.cell, name)
        with pytest.raises(AttributeError):
            setattr(layer, name, None)


def test_no_attribute_forwarding():
    assert not hasattr(L.SimpleRNN(2), "recurrent_activation")  # SimpleRNNCell has no gates
    assert not hasattr(L.LSTM(2), "reset_after")


@pytest.mark.parametrize("cls", [L.GRU, L.LSTM])
def test_use_cudnn_values(cls):
    for value in ("auto", True, False):
        assert cls(2, use_cudnn=value).use_cudnn == value
    with pytest.raises(ValueError, match="use_cudnn"):
        cls(2, use_cudnn="always")


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: L.SimpleRNN(2, use_cudnn=True), ValueError, "Unrecognized keyword arguments passed to SimpleRNNCell"),
        (lambda: L.LSTM(2, implementation=3), ValueError, "`implementation` expected 1 or 2"),
        (lambda: L.GRU(2, seed="7"), TypeError, "`seed` expected a non-negative integer"),
        (lambda: L.GRUCell(2, seed=-1), ValueError, "`seed` expected a non-negative integer"),
    ],
)
def test_bad_arguments_name_themselves(make, error, words):
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("implementation", [1, 2])
def test_implementation_reaches_the_cell(implementation):
    assert L.LSTM(2, implementation=implementation).cell.implementation == implementation
    assert L.GRU(2, implementation=2, recurrent_dropout=0.5).cell.implementation == 1  # as Keras


def test_base_layer_keywords_stay_with_the_layer():
    layer = L.LSTM(3, name="encoder", dtype="float64", trainable=False, input_shape=(5, 2), zero_output_for_mask=True)
    assert (layer.name, layer.dtype, layer.trainable, layer.zero_output_for_mask) == ("encoder", "float64", False, True)
    assert (layer.cell.name, layer.cell.dtype, layer.cell.trainable) == ("lstm_cell", "float64", False)
