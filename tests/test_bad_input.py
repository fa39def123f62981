"""Bad input at every public entry point fails early, with a message that says what was wrong.

Each probe asserts the exception type (ValueError for bad values and shapes, TypeError for the
wrong kind of thing, MemoryError for sizes that cannot be allocated) and that the message names
the argument, what was expected and what was received. None may surface as an IndexError,
AttributeError or KeyError from inside the library, or as an error of the Rust backend.
"""

import os
import re
import sys

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _core

L = rk.layers
RNN_LAYERS = [L.SimpleRNN, L.GRU, L.LSTM]
CELLS = [L.SimpleRNNCell, L.GRUCell, L.LSTMCell]
UNITS_LAYERS = RNN_LAYERS + CELLS + [L.Dense]


def raises(exc, *fragments):
    """`pytest.raises(exc)` whose message must contain every fragment (case-insensitive)."""
    return pytest.raises(exc, match="(?is)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


def x_of(*shape, dtype="float32"):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def n_states(cls):
    return 2 if cls is L.LSTM else 1


# --- wrong input rank ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(), (2,), (2, 3), (2, 3, 4, 5)])
def test_rnn_layers_reject_a_rank_other_than_3(cls, shape):
    with raises(ValueError, "expected ndim=3", f"found ndim={len(shape)}", str(shape)):
        cls(4)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_rnn_layers_reject_a_rank_other_than_3_after_build(cls):
    layer = cls(4)
    layer(x_of(2, 3, 8))
    with raises(ValueError, "expected ndim=3", "found ndim=2"):
        layer(x_of(2, 8))
    with raises(ValueError, "expected ndim=3", "found ndim=4"):
        layer(x_of(2, 3, 8, 1))


@pytest.mark.parametrize("shape", [(), (4,)])
def test_dense_needs_at_least_2_axes(shape):
    with raises(ValueError, "dense", "expected min_ndim=2", f"found ndim={len(shape)}"):
        L.Dense(3)(np.zeros(shape, "float32"))
    built = L.Dense(3)
    built(x_of(2, 4))
    with raises(ValueError, "expected min_ndim=2", f"found ndim={len(shape)}"):
        built(np.zeros(shape, "float32"))


def test_embedding_rejects_non_index_inputs():
    with raises(ValueError, "integer indices", "non-integer"):
        L.Embedding(10, 3)(np.array([[1.5, 2.0]]))
    with raises(TypeError, "expected numbers", "<U1"):
        L.Embedding(10, 3)(np.array([["a", "b"]]))


@pytest.mark.parametrize("shape", [(), (2,), (2, 3), (2, 3, 8, 1)])
def test_bidirectional_rejects_a_rank_other_than_3(shape):
    with raises(ValueError, "expected ndim=3", f"found ndim={len(shape)}"):
        L.Bidirectional(L.LSTM(3))(np.zeros(shape, "float32"))


@pytest.mark.parametrize("shape", [(), (2,), (2, 3)])
def test_time_distributed_needs_at_least_3_axes(shape):
    with raises(ValueError, "3 dimensions", str(shape)):
        L.TimeDistributed(L.Dense(3))(np.zeros(shape, "float32"))
    built = L.TimeDistributed(L.Dense(3))
    built(x_of(2, 3, 4))
    with raises(ValueError, "expected min_ndim=3", f"found ndim={len(shape)}"):
        built(np.zeros(shape, "float32"))


# --- feature size changed after build ----------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_feature_size_changed_after_build(cls):
    layer = cls(4)
    layer(x_of(2, 3, 8))
    with raises(ValueError, layer.name, "expected axis -1", "8", "received", "(2, 3, 9)"):
        layer(x_of(2, 3, 9))


def test_lstm_built_on_8_features_called_on_9_says_expected_8_received_9():
    layer = L.LSTM(4)
    layer(x_of(2, 3, 8))
    with pytest.raises(ValueError) as info:
        layer(x_of(2, 3, 9))
    assert re.search(r"expected.*\b8\b.*received.*\b9\b", str(info.value)), str(info.value)


def test_feature_size_changed_for_dense_bidirectional_time_distributed_and_models():
    dense = L.Dense(3)
    dense(x_of(2, 4))
    with raises(ValueError, "value 4", "(2, 5)"):
        dense(x_of(2, 5))
    bi = L.Bidirectional(L.GRU(3))
    bi(x_of(2, 3, 8))
    with raises(ValueError, "value 8", "(2, 3, 9)"):
        bi(x_of(2, 3, 9))
    td = L.TimeDistributed(L.Dense(3))
    td(x_of(2, 3, 8))
    with raises(ValueError, "value 8", "(2, 9)"):
        td(x_of(2, 3, 9))
    model = rk.Sequential([rk.Input((None, 8)), L.LSTM(4), L.Dense(1)])
    with raises(ValueError, "value 8", "(2, 3, 9)"):
        model.predict(x_of(2, 3, 9), verbose=0)
    inp = rk.Input((3, 8))
    functional = rk.Model(inp, L.Dense(1)(L.LSTM(4)(inp)))
    with raises(ValueError, "expected shape (None, 3, 8)", "received (2, 3, 9)"):
        functional(x_of(2, 3, 9))


# --- initial_state ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_initial_state_of_the_wrong_count_shape_or_batch(cls):
    layer, x, n = cls(4), x_of(2, 3, 8), n_states(cls)
    with raises(ValueError, "initial_state", f"{n + 1} tensors", f"{n} states"):
        layer(x, initial_state=[np.zeros((2, 4), "float32")] * (n + 1))
    with raises(ValueError, "initial_state[0]", "(2, 5)", "expected (2, 4)"):
        layer(x, initial_state=[np.zeros((2, 5), "float32")] * n)
    with raises(ValueError, "initial_state[0]", "(3, 4)", "expected (2, 4)"):
        layer(x, initial_state=[np.zeros((3, 4), "float32")] * n)
    with raises(ValueError, "initial_state[0]", "(4,)", "expected (2, 4)"):
        layer(x, initial_state=[np.zeros((4,), "float32")] * n)
    with raises(TypeError, "expected numbers", "<U1"):
        layer(x, initial_state=[np.full((2, 4), "a")] * n)


def test_bidirectional_initial_state_of_the_wrong_count_or_shape():
    bi, x = L.Bidirectional(L.LSTM(3)), x_of(2, 3, 8)
    for count in (1, 2, 3, 6):
        with raises(ValueError, "initial_state", "expected 4 states", f"received {count} states"):
            bi(x, initial_state=[np.zeros((2, 3), "float32")] * count)
    with raises(ValueError, "initial_state[0]", "(2, 4)", "expected (2, 3)"):
        bi(x, initial_state=[np.zeros((2, 4), "float32")] * 4)


# --- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", RNN_LAYERS + [lambda u: L.Bidirectional(L.LSTM(u))], ids=["SimpleRNN", "GRU", "LSTM", "Bidirectional"]
)
def test_mask_of_the_wrong_shape_dtype_or_values(cls):
    layer, x = cls(4), x_of(2, 3, 8)
    with raises(ValueError, "mask", "expected shape (2, 3)", "received shape (2,)"):
        layer(x, mask=np.ones((2,), bool))
    with raises(ValueError, "mask", "expected shape (2, 3)", "received shape (3, 2)"):
        layer(x, mask=np.ones((3, 2), bool))
    with raises(ValueError, "mask", "expected boolean values", "0.5"):
        layer(x, mask=np.full((2, 3), 0.5))
    with raises(ValueError, "mask", "expected boolean values", "2"):
        layer(x, mask=np.full((2, 3), 2))
    with raises(ValueError, "mask", "expected boolean values", "nan"):
        layer(x, mask=np.full((2, 3), np.nan))
    with raises(TypeError, "mask", "expected a boolean array", "<U1"):
        layer(x, mask=np.full((2, 3), "a"))
    with raises(TypeError, "mask", "expected a boolean array", "object"):
        layer(x, mask=np.full((2, 3), None, dtype=object))
    # 0/1 numbers are a valid mask, the same as booleans.
    keep = np.array([[1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(
        np.asarray(layer(x, mask=keep.astype("float32"))), np.asarray(layer(x, mask=keep.astype(bool)))
    )


def test_time_distributed_mask_of_the_wrong_shape():
    with raises(ValueError, "mask", "(2,)", "(2, 3, 8)"):
        L.TimeDistributed(L.Dense(3))(x_of(2, 3, 8), mask=np.ones((2,), bool))


# --- wrong kinds of input -----------------------------------------------------------------------


BAD_KINDS = {
    "strings": np.full((2, 3, 8), "a"),
    "objects": np.full((2, 3, 8), None, dtype=object),
    "bytes": np.full((2, 3, 8), b"a"),
    "datetimes": np.zeros((2, 3, 8), "datetime64[s]"),
    "a dict of strings": {"a": "b"},
    "a string": "abc",
}


@pytest.mark.parametrize("kind", list(BAD_KINDS))
@pytest.mark.parametrize(
    "make",
    [
        lambda: L.SimpleRNN(4),
        lambda: L.GRU(4),
        lambda: L.LSTM(4),
        lambda: L.Dense(3),
        lambda: L.Bidirectional(L.LSTM(3)),
        lambda: L.TimeDistributed(L.Dense(3)),
        lambda: L.Embedding(10, 3),
    ],
    ids=["SimpleRNN", "GRU", "LSTM", "Dense", "Bidirectional", "TimeDistributed", "Embedding"],
)
def test_string_and_object_inputs_raise_type_error(make, kind):
    with raises(TypeError, "expected numbers"):
        make()(BAD_KINDS[kind])


@pytest.mark.parametrize("kind", ["strings", "objects"])
def test_models_reject_string_and_object_inputs(kind):
    model = rk.Sequential([rk.Input((3, 8)), L.LSTM(4), L.Dense(1)])
    model.compile("adam", "mse")
    with raises(TypeError, "numeric data", str(BAD_KINDS[kind].dtype)):
        model.predict(BAD_KINDS[kind], verbose=0)
    with raises(TypeError, "numeric data", str(BAD_KINDS[kind].dtype)):
        model.fit(BAD_KINDS[kind], np.zeros((2, 1)), verbose=0)
    with raises(TypeError, "numeric data", "<U1"):
        model.fit(x_of(2, 3, 8), np.full((2, 1), "a"), verbose=0)


# --- constructor arguments ----------------------------------------------------------------------


def make_with_units(cls, units):
    return cls(units, 3) if cls is L.Embedding else cls(units)


@pytest.mark.parametrize("cls", UNITS_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("units", [0, -1, -(2**40)])
def test_units_must_be_positive(cls, units):
    with raises(ValueError, "units", "positive integer", str(units)):
        cls(units)


@pytest.mark.parametrize("cls", UNITS_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("units", [2.5, 4.0, "4", None, True, [4], np.float32(3)], ids=repr)
def test_units_must_be_an_integer(cls, units):
    with raises(ValueError, "units", "positive integer", repr(units)):
        cls(units)


@pytest.mark.parametrize("arg", ["input_dim", "output_dim"])
@pytest.mark.parametrize("value", [0, -3, 2.5, "7", None])
def test_embedding_sizes_must_be_positive_integers(arg, value):
    kwargs = {"input_dim": 10, "output_dim": 3, arg: value}
    with raises(ValueError, arg, "positive integer", str(value)):
        L.Embedding(**kwargs)


NAMED_ARGS = {
    "activation": "activation function",
    "recurrent_activation": "activation function",
    "kernel_initializer": "initializer",
    "recurrent_initializer": "initializer",
    "bias_initializer": "initializer",
    "kernel_regularizer": "regularizer",
    "recurrent_regularizer": "regularizer",
    "bias_regularizer": "regularizer",
    "kernel_constraint": "constraint",
    "recurrent_constraint": "constraint",
    "bias_constraint": "constraint",
}


@pytest.mark.parametrize("cls", [L.GRU, L.LSTM, L.GRUCell, L.LSTMCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("arg", list(NAMED_ARGS))
def test_unknown_names_of_recurrent_arguments(cls, arg):
    with raises(ValueError, NAMED_ARGS[arg], "'no_such_name'", "expected"):
        cls(4, **{arg: "no_such_name"})


@pytest.mark.parametrize("arg", [a for a in NAMED_ARGS if not a.startswith("recurrent")])
def test_unknown_names_of_simple_rnn_and_dense_arguments(arg):
    for cls in (L.SimpleRNN, L.Dense):
        with raises(ValueError, NAMED_ARGS[arg], "'no_such_name'", "expected"):
            cls(4, **{arg: "no_such_name"})


@pytest.mark.parametrize("arg", ["embeddings_initializer", "embeddings_regularizer", "embeddings_constraint"])
def test_unknown_names_of_embedding_arguments(arg):
    with raises(ValueError, arg.split("_")[1][:-1], "'no_such_name'"):
        L.Embedding(10, 3, **{arg: "no_such_name"})


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("arg", ["dropout", "recurrent_dropout"])
def test_dropout_rates_must_be_numbers(cls, arg):
    with raises(TypeError, arg, "float between 0 and 1", "'a'"):
        cls(4, **{arg: "a"})
    with raises(TypeError, arg, "float between 0 and 1", "None"):
        cls(4, **{arg: None})
    with raises(ValueError, arg, "float between 0 and 1", "nan"):
        cls(4, **{arg: float("nan")})


@pytest.mark.parametrize("mode", ["concatenate", "avg", "", 0, "CONCAT"])
def test_bad_merge_mode(mode):
    with raises(ValueError, "merge mode", f"Received: {mode}", "concat"):
        L.Bidirectional(L.LSTM(3), merge_mode=mode)


def test_wrappers_need_layers():
    with raises(ValueError, "Bidirectional", "Layer", "Received: 3"):
        L.Bidirectional(3)
    with raises(ValueError, "TimeDistributed", "Layer", "Received: 3"):
        L.TimeDistributed(3)


@pytest.mark.parametrize("shape", ["abc", 2.5, (3, -1), (3, "a"), (3, 2.0)], ids=repr)
def test_input_shape_must_be_sizes(shape):
    with pytest.raises((ValueError, TypeError), match="(?is)Input.*shape.*expected.*received"):
        rk.Input(shape)


# --- compile, fit -------------------------------------------------------------------------------


def small_model():
    return rk.Sequential([rk.Input((3, 8)), L.LSTM(4), L.Dense(1)])


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"optimizer": "no_such_optimizer", "loss": "mse"}, ("optimizer", "'no_such_optimizer'")),
        ({"optimizer": "adam", "loss": "no_such_loss"}, ("loss", "'no_such_loss'")),
        ({"optimizer": "adam", "loss": "mse", "metrics": ["no_such_metric"]}, ("metric", "'no_such_metric'")),
        ({"optimizer": "adam", "loss": "mse", "weighted_metrics": ["nope"]}, ("metric", "'nope'")),
        ({"optimizer": "adam", "loss": ["mse", "mse"]}, ("loss", "expected 1", "received 2")),
    ],
)
def test_compile_rejects_unknown_names_before_any_batch(kwargs, fragments):
    with raises(ValueError, *fragments):
        small_model().compile(**kwargs)


def test_fit_without_compile():
    model = small_model()
    for method in (
        lambda: model.fit(x_of(2, 3, 8), np.zeros((2, 1)), verbose=0),
        lambda: model.evaluate(x_of(2, 3, 8), np.zeros((2, 1)), verbose=0),
        lambda: model.train_on_batch(x_of(2, 3, 8), np.zeros((2, 1))),
    ):
        with raises(ValueError, "compile()"):
            method()


def test_fit_with_x_and_y_of_different_lengths_fails_before_training():
    model = small_model()
    model.compile("adam", "mse")
    before = model.get_weights()
    with raises(ValueError, "x sizes: 4", "y sizes: 3"):
        model.fit(x_of(4, 3, 8), np.zeros((3, 1)), verbose=0)
    with raises(ValueError, "x sizes: 4", "y sizes: 3"):
        model.evaluate(x_of(4, 3, 8), np.zeros((3, 1)), verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"], ids=repr)
def test_batch_size_must_be_a_positive_integer(batch_size):
    model = small_model()
    model.compile("adam", "mse")
    with raises(ValueError, "batch_size", "positive integer", repr(batch_size)):
        model.fit(x_of(4, 3, 8), np.zeros((4, 1)), batch_size=batch_size, verbose=0)
    with raises(ValueError, "batch_size", "positive integer", repr(batch_size)):
        model.predict(x_of(4, 3, 8), batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("which", ["x", "y"])
def test_fit_and_predict_need_a_batch_axis(which):
    model = small_model()
    model.compile("adam", "mse")
    x, y = x_of(2, 3, 8), np.zeros((2, 1))
    if which == "x":
        with raises(ValueError, "x", "batch axis", "scalar"):
            model.predict(np.float32(1.0), verbose=0)
        x = np.float32(1.0)
    else:
        y = 1.0
    with raises(ValueError, which, "batch axis", "scalar"):
        model.fit(x, y, verbose=0)


# --- set_weights --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_layer_set_weights_of_the_wrong_count_or_shapes(cls):
    layer = cls(4)
    layer(x_of(2, 3, 8))
    weights = layer.get_weights()
    with raises(ValueError, "length 2", "expecting 3"):
        layer.set_weights(weights[:2])
    with raises(ValueError, "length 4", "expecting 3"):
        layer.set_weights(weights + [weights[0]])
    bad = [weights[0][:-1]] + weights[1:]
    with raises(ValueError, str(weights[0].shape), str(bad[0].shape)):
        layer.set_weights(bad)
    with raises(ValueError, str(weights[2].shape), "(1,)"):
        layer.set_weights(weights[:2] + [np.zeros(1)])
    # Nothing was assigned by the failed calls.
    for w, b in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(w, b)


def test_model_set_weights_of_the_wrong_count_or_shapes():
    model = small_model()
    weights = model.get_weights()
    with raises(ValueError, f"length {len(weights) - 1}", f"expecting {len(weights)}"):
        model.set_weights(weights[:-1])
    bad = list(weights)
    bad[3] = np.zeros((2, 2), "float32")
    with raises(ValueError, str(weights[3].shape), "(2, 2)"):
        model.set_weights(bad)
    for w, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, b)


def test_embedding_and_bidirectional_set_weights():
    emb = L.Embedding(10, 3)
    emb(np.array([[1, 2]]))
    with raises(ValueError, "(10, 3)", "(9, 3)"):
        emb.set_weights([np.zeros((9, 3))])
    bi = L.Bidirectional(L.LSTM(3))
    bi(x_of(2, 3, 8))
    with raises(ValueError, "length 3", "expecting 6"):
        bi.set_weights(bi.get_weights()[:3])


# --- stateful layers ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_stateful_layer_called_with_another_batch_size(cls):
    layer = cls(4, stateful=True, batch_size=2)
    layer(x_of(2, 3, 8))
    with raises(ValueError, "stateful", "batch size 2", "batch of 3"):
        layer(x_of(3, 3, 8))
    layer(x_of(2, 3, 8))  # still usable with the right batch


def test_stateful_layer_without_a_batch_size():
    with raises(ValueError, "stateful", "batch size", "batch_size"):
        rk.Sequential([rk.Input((3, 8)), L.LSTM(4, stateful=True)])


def test_reset_state_with_states_of_the_wrong_shape():
    layer = L.LSTM(4, stateful=True, batch_size=2)
    layer(x_of(2, 3, 8))
    with raises(ValueError, "initial_state[0]", "(2, 5)", "expected (2, 4)"):
        layer.reset_state([np.zeros((2, 5)), np.zeros((2, 5))])


# --- Embedding indices --------------------------------------------------------------------------


@pytest.mark.parametrize("index", [-1, 10, 2**40, -(2**40)])
def test_embedding_indices_out_of_range(index):
    with raises(ValueError, "[0, 10)", "input_dim", str(index)):
        L.Embedding(10, 3)(np.array([[1, index]]))


def test_embedding_indices_of_another_kind():
    with raises(TypeError, "integer indices", "complex128"):
        L.Embedding(10, 3)(np.ones((1, 2), complex))


def test_embedding_nan_and_inf_indices():
    for value in (np.nan, np.inf, -np.inf):
        with raises(ValueError, "integer indices", "non-integer"):
            L.Embedding(10, 3)(np.array([[1.0, value]]))


# --- sizes that cannot be allocated -------------------------------------------------------------


@pytest.mark.parametrize("cls", RNN_LAYERS + [L.Dense], ids=lambda c: c.__name__)
def test_huge_units_raise_memory_error_before_allocating(cls):
    with raises(MemoryError, "kernel", "GiB"):
        cls(2**31)(x_of(2, 3, 4))


@pytest.mark.parametrize("cls", RNN_LAYERS, ids=lambda c: c.__name__)
def test_huge_broadcast_input_raises_memory_error_before_allocating(cls):
    x = np.broadcast_to(np.float32(0.5), (2**20, 2**20, 4))  # 16 TiB, zero bytes of its own
    with raises(MemoryError, "input", "(1048576, 1048576, 4)", "GiB"):
        cls(4)(x)


def test_huge_activations_raise_memory_error_before_allocating():
    # A small input whose saved activations (batch · time · units) could never fit.
    layer = L.LSTM(2**12, kernel_initializer="zeros", recurrent_initializer="zeros")  # 256 MiB of weights
    x = np.broadcast_to(np.float32(0.5), (2**10, 2**12, 1))  # 16 MiB once copied; 512 GiB of activations
    with raises(MemoryError, "activations", "GiB"):
        layer(x)


def test_huge_inputs_to_the_extension_raise_memory_error():
    # The extension reads the broadcast view without a copy; the core's buffers cannot be made.
    x = np.broadcast_to(np.float32(0.5), (2**20, 2**20, 4))
    with raises(MemoryError, "the forward pass needs", "GiB, more than this machine's"):
        _core.rnn_forward(_core.CellSpec("lstm", 3), core_weights(), x)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the core knows the RAM size on Linux")
def test_buffers_that_fit_one_by_one_but_not_together_raise_memory_error():
    # LSTM(16) on 64 features keeps 192 values per (step, row): the input copy (64), the
    # pre-activations (64), h, c, the outputs and the result (16 each). Sized to 1.5x the RAM in
    # all with no buffer over half of it, so only the total check can refuse it (with memory
    # overcommit each allocation would succeed and touching them would get the process killed).
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = int(1.5 * ram) // (192 * 4)
    x = np.broadcast_to(np.float32(0.5), (64, rows // 64, 64))
    with raises(MemoryError, "the forward pass needs", "GiB, more than this machine's"):
        _core.rnn_forward(_core.CellSpec("lstm", 16), core_weights(16, 64), x)


def test_huge_embedding_raises_memory_error():
    with raises(MemoryError, "embeddings", "GiB"):
        L.Embedding(2**40, 2**10)(np.array([[1]]))


# --- the extension's functions ------------------------------------------------------------------


def core_weights(units=3, features=4, gates=4, dtype="float32"):
    return (
        np.zeros((features, gates * units), dtype),
        np.zeros((units, gates * units), dtype),
        np.zeros(gates * units, dtype),
    )


def test_core_rejects_bad_arguments_with_named_errors():
    spec, w, x = _core.CellSpec("lstm", 3), core_weights(), x_of(2, 5, 4)
    with raises(ValueError, "kind", "'lstm'", "'cnn'"):
        _core.CellSpec("cnn", 3)
    with raises(ValueError, "units", "positive integer", "0"):
        _core.CellSpec("lstm", 0)
    with raises(ValueError, "activation", "nope"):
        _core.CellSpec("lstm", 3, activation="nope")
    with raises(TypeError, "x", "numpy array", "list"):
        _core.rnn_forward(spec, w, [[[1.0]]])
    with raises(TypeError, "x", "float32 or float64", "int64"):
        _core.rnn_forward(spec, w, np.zeros((2, 5, 4), "int64"))
    with raises(ValueError, "x", "3-d", "(2, 5)"):
        _core.rnn_forward(spec, w, np.zeros((2, 5), "float32"))
    with raises(ValueError, "kernel", "(4, 12)", "(5, 12)"):
        _core.rnn_forward(spec, (np.zeros((5, 12), "float32"),) + w[1:], x)
    with raises(TypeError, "kernel", "float32", "float64"):
        _core.rnn_forward(spec, (w[0].astype("float64"),) + w[1:], x)
    with raises(ValueError, "weights", "(kernel, recurrent_kernel, bias)", "1 items"):
        _core.rnn_forward(spec, w[:1], x)
    with raises(ValueError, "bias", "(12,)", "(2, 12)"):
        _core.rnn_forward(spec, w[:2] + (np.zeros((2, 12), "float32"),), x)
    with raises(ValueError, "initial_states", "2 arrays", "1"):
        _core.rnn_forward(spec, w, x, initial_states=[np.zeros((2, 3), "float32")])
    with raises(ValueError, "initial_states[1]", "(2, 3)", "(3, 3)"):
        _core.rnn_forward(spec, w, x, initial_states=[np.zeros((2, 3), "float32"), np.zeros((3, 3), "float32")])
    with raises(TypeError, "initial_states", "list of arrays", "single array"):
        _core.rnn_forward(spec, w, x, initial_states=np.zeros((2, 3), "float32"))
    with raises(ValueError, "mask", "(2, 5)", "(2, 4)"):
        _core.rnn_forward(spec, w, x, mask=np.ones((2, 4), bool))
    with raises(TypeError, "mask", "bool", "float32"):
        _core.rnn_forward(spec, w, x, mask=np.ones((2, 5), "float32"))
    with raises(ValueError, "input_dropout", "(4, 2, 4)", "(1, 2, 4)"):
        _core.rnn_forward(spec, w, x, input_dropout=np.ones((1, 2, 4), "float32"))
    with raises(ValueError, "merge_mode", "concat", "'x'"):
        _core.bidirectional_forward(spec, w, spec, w, x, merge_mode="x")


@pytest.mark.parametrize(
    "units, exc",
    [
        (0, ValueError),
        (-1, ValueError),
        (2**70, ValueError),
        (True, TypeError),
        (2.0, TypeError),
        ("3", TypeError),
        ([3], TypeError),
    ],
    ids=repr,
)
def test_core_cell_spec_units(units, exc):
    # A Python int too large for the core is a bad value like any other, not an OverflowError.
    with raises(exc, "units", "positive integer", repr(units)):
        _core.CellSpec("gru", units)


def test_core_arguments_of_the_wrong_class_are_named():
    w, x = core_weights(), x_of(2, 5, 4)
    with raises(TypeError, "kind", "'lstm'", "received list"):
        _core.CellSpec(["lstm"], 3)
    with raises(TypeError, "spec", "CellSpec", "received str"):
        _core.rnn_forward("lstm", w, x)
    with raises(TypeError, "bw_spec", "CellSpec", "received NoneType"):
        _core.bidirectional_forward(_core.CellSpec("lstm", 3), w, None, w, x)
    with raises(TypeError, "saved", "SavedActivations", "received NoneType"):
        _core.rnn_backward(None)
    with raises(TypeError, "saved", "SavedActivations", "received CellSpec"):
        _core.bidirectional_backward(_core.CellSpec("lstm", 3))


def test_core_backward_rejects_bad_gradients():
    spec, w, x = _core.CellSpec("gru", 3), core_weights(gates=3), x_of(2, 5, 4)
    w = w[:2] + (np.zeros((2, 9), "float32"),)
    _, _, saved = _core.rnn_forward(spec, w, x)
    with raises(ValueError, "d_outputs", "(2, 5, 3)", "(2, 5, 4)"):
        _core.rnn_backward(saved, d_outputs=np.zeros((2, 5, 4), "float32"))
    with raises(TypeError, "d_outputs", "float32", "float64"):
        _core.rnn_backward(saved, d_outputs=np.zeros((2, 5, 3)))
    with raises(ValueError, "d_outputs, d_last_output", "at most one", "both"):
        _core.rnn_backward(saved, d_outputs=np.zeros((2, 5, 3), "float32"), d_last_output=np.zeros((2, 3), "float32"))
    with raises(TypeError, "saved", "bidirectional_forward", "rnn_forward"):
        _core.bidirectional_backward(saved)
    with raises(TypeError, "SavedActivations"):
        _core.rnn_backward("not saved activations")


# --- rk.ops ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: rk.ops.add(np.ones((2, 3)), np.ones((4,))), ["rk.ops.add", "received shapes (2, 3), (4,)"]),
        (lambda: rk.ops.matmul(np.ones((2, 3)), np.ones((4, 5))), ["rk.ops.matmul", "received shapes (2, 3), (4, 5)"]),
        (lambda: rk.ops.reshape(np.ones((2, 3)), (4, 5)), ["rk.ops.reshape", "size 6", "received shapes (2, 3)"]),
    ],
)
def test_op_shape_errors_name_the_op_and_the_shapes(call, fragments):
    with raises(ValueError, *fragments):
        call()
