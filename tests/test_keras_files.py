"""Keras's own files: models trained a few steps in Keras 3 (JAX backend) and saved as `.keras`
and legacy `.h5` load in rnnkit with the same predictions, rnnkit's `model.save` writes archives
Keras's own `load_model` reads, optimizer state travels both ways, and hostile files are refused.
"""

import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import rnnkit as rk

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

ATOL = 1e-5


def _data(shape, seed, dtype="float32", high=None):
    rng = np.random.default_rng(seed)
    if high is not None:
        return rng.integers(1, high, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _padded(x, seed):
    """`x` with some trailing steps zeroed, for Masking."""
    x = x.copy()
    lengths = np.random.default_rng(seed).integers(1, x.shape[1] + 1, size=x.shape[0])
    for row, length in enumerate(lengths):
        x[row, length:] = 0.0
    return x


def _train(model, x, y, loss="mse"):
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    return model


# --- Keras's models ------------------------------------------------------------------------------


def k_recurrent(layer):
    def build():
        L = keras.layers
        model = keras.Sequential([keras.Input((6, 5)), layer(L), L.Dense(3)])
        return model, _data((8, 6, 5), 1), _data((8, *model.output_shape[1:]), 2)

    return build


def k_mnist():
    # The guide's MNIST model: LSTM, BatchNormalization, Dense(10).
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28)), L.LSTM(16), L.BatchNormalization(), L.Dense(10)])
    return model, _data((8, 28, 28), 3), np.arange(8) % 10


def k_stacked_masked():
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            L.Masking(),
            L.LSTM(6, return_sequences=True),
            L.GRU(5, return_sequences=True),
            L.SimpleRNN(3),
            L.Dense(2),
        ]
    )
    return model, _padded(_data((8, 7, 4), 4), 5), _data((8, 2), 6)


def k_embedding_bidirectional():
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(20, 8, mask_zero=True),
            L.Bidirectional(L.LSTM(6, return_sequences=True)),
            L.Bidirectional(L.GRU(4), merge_mode="sum"),
            L.Dense(3),
        ]
    )
    x = _data((8, 7), 7, "int32", high=20)
    x[:, 5:] = 0
    return model, x, _data((8, 3), 8)


def k_encoder_decoder():
    # The guide's encoder-decoder: the encoder's final states start the decoder.
    L = keras.layers
    encoder_input = keras.Input((None,), dtype="int32")
    encoder_embedded = L.Embedding(30, 8)(encoder_input)
    output, state_h, state_c = L.LSTM(6, return_state=True)(encoder_embedded)
    decoder_input = keras.Input((None,), dtype="int32")
    decoder_embedded = L.Embedding(25, 8)(decoder_input)
    decoder_output = L.LSTM(6)(decoder_embedded, initial_state=[state_h, state_c])
    model = keras.Model([encoder_input, decoder_input], L.Dense(4)(decoder_output))
    x = [_data((8, 5), 9, "int32", high=30), _data((8, 4), 10, "int32", high=25)]
    return model, x, _data((8, 4), 11)


def k_cells_and_wrappers():
    L = keras.layers
    inputs = keras.Input((6, 5))
    x = L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_sequences=True)(inputs)
    x = L.RNN(L.SimpleRNNCell(3), return_sequences=True, go_backwards=True)(x)
    x = L.TimeDistributed(L.Dense(4))(x)
    x = L.LayerNormalization()(x)
    shared = L.Dense(3)
    y = L.Concatenate()([shared(L.GRU(4, reset_after=False)(x)), shared(L.LSTM(4)(x))])
    model = keras.Model(inputs, L.Add()([L.Dense(6)(y), y]))
    return model, _data((8, 6, 5), 12), _data((8, 6), 13)


def k_nested():
    L = keras.layers
    inner = keras.Sequential([keras.Input((None, 4)), L.GRU(3)], name="inner")
    a, b = keras.Input((None, 4)), keras.Input((None, 4))
    model = keras.Model([a, b], L.Dense(2)(L.Concatenate()([inner(a), inner(b)])))
    return model, [_data((8, 5, 4), 14), _data((8, 5, 4), 15)], _data((8, 2), 16)


KERAS_MODELS = {
    "lstm": k_recurrent(lambda L: L.LSTM(4)),
    "gru": k_recurrent(lambda L: L.GRU(4)),
    "simple_rnn": k_recurrent(lambda L: L.SimpleRNN(4, return_sequences=True)),
    "mnist": k_mnist,
    "stacked_masked": k_stacked_masked,
    "embedding_bidirectional": k_embedding_bidirectional,
    "encoder_decoder": k_encoder_decoder,
    "cells_and_wrappers": k_cells_and_wrappers,
    "nested": k_nested,
}


@pytest.fixture(scope="module", params=sorted(KERAS_MODELS))
def keras_trained(request, tmp_path_factory):
    model, x, y = KERAS_MODELS[request.param]()
    loss = "sparse_categorical_crossentropy" if request.param == "mnist" else "mse"
    _train(model, x, y, loss)
    path = tmp_path_factory.mktemp(request.param) / "model.keras"
    model.save(path)
    return request.param, model, x, path


def _assert_predicts_the_same(a, b, x):
    got, want = a.predict(x, verbose=0), b.predict(x, verbose=0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=ATOL)


def test_keras_archive_loads_in_rnnkit(keras_trained):
    _, model, x, path = keras_trained
    loaded = rk.models.load_model(path)
    _assert_predicts_the_same(loaded, model, x)
    assert loaded.compiled


def test_keras_legacy_h5_loads_in_rnnkit(keras_trained, tmp_path):
    _, model, x, _ = keras_trained
    path = tmp_path / "model.h5"
    keras.saving.save_model(model, path)
    with h5py.File(path, "r") as h5:
        assert "model_config" in h5.attrs and "model_weights" in h5
    loaded = rk.models.load_model(path)
    _assert_predicts_the_same(loaded, model, x)


def test_keras_weights_file_loads_in_rnnkit(keras_trained, tmp_path):
    _, model, x, path = keras_trained
    weights = tmp_path / "model.weights.h5"
    model.save_weights(weights)
    fresh = rk.models.load_model(path, compile=False)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(weights)
    _assert_predicts_the_same(fresh, model, x)


def test_rnnkit_archive_loads_in_keras(keras_trained, tmp_path):
    name, model, x, path = keras_trained
    ours = rk.models.load_model(path)
    if name != "mnist":
        ours.fit(x, ours.predict(x, verbose=0) * 0.5, epochs=1, verbose=0)  # weights of rnnkit's own
    out = tmp_path / "ours.keras"
    ours.save(out)
    theirs = keras.models.load_model(out)
    _assert_predicts_the_same(theirs, ours, x)
    weights = tmp_path / "ours.weights.h5"
    ours.save_weights(weights)
    model.load_weights(weights)
    _assert_predicts_the_same(model, ours, x)


def test_optimizer_state_round_trip(tmp_path):
    model, x, y = k_stacked_masked()
    _train(model, x, y)
    path = tmp_path / "model.keras"
    model.save(path)
    ours = rk.models.load_model(path)
    want = [np.asarray(v) for v in model.optimizer.variables]
    got = [v.numpy() for v in ours.optimizer.variables]
    assert len(got) == len(want) and int(got[0]) == 2  # two steps of Adam: 8 samples in batches of 4
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-7)
    # rnnkit trains on from Keras's state, and Keras from rnnkit's.
    ours.fit(x, y, epochs=1, batch_size=4, verbose=0)
    ours.save(tmp_path / "ours.keras")
    theirs = keras.models.load_model(tmp_path / "ours.keras")
    assert int(np.asarray(theirs.optimizer.iterations)) == 4
    for a, b in zip(theirs.optimizer.variables, ours.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), atol=1e-7)
    _assert_predicts_the_same(theirs, ours, x)


def test_rnnkit_functional_model_with_states_loads_in_keras(tmp_path):
    L = rk.layers
    encoder_input = rk.Input((None, 3))
    _, state_h, state_c = L.LSTM(4, return_state=True)(encoder_input)
    decoder_input = rk.Input((None, 2))
    decoded = L.LSTM(4, return_sequences=True)(decoder_input, initial_state=[state_h, state_c])
    model = rk.Model([encoder_input, decoder_input], L.TimeDistributed(L.Dense(2))(decoded))
    x = [_data((4, 5, 3), 20), _data((4, 6, 2), 21)]
    model.save(tmp_path / "m.keras")
    _assert_predicts_the_same(keras.models.load_model(tmp_path / "m.keras"), model, x)


def test_default_format_is_keras(tmp_path):
    model = rk.Sequential([rk.Input((3, 2)), rk.layers.GRU(2)])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert json.loads(archive.read("config.json"))["class_name"] == "Sequential"


# --- refused files ---------------------------------------------------------------------------


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture()
def small_archive(tmp_path):
    model, x, y = k_recurrent(lambda L: L.LSTM(4))()
    model.save(tmp_path / "small.keras")
    return tmp_path / "small.keras"


def test_unknown_layers_are_listed_in_one_error(tmp_path):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((6, 5)),
            L.Solarization(),
            L.LSTM(3, return_sequences=True),
            L.AutoContrast(),
        ]
    )
    model.save(tmp_path / "unknown.keras")
    with pytest.raises(ValueError, match=r"rnnkit does not have: Solarization \(solarization\w*\), AutoContrast"):
        rk.models.load_model(tmp_path / "unknown.keras")


def test_lambda_layers_are_refused(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(1)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="Lambda layer.*never loads"):
        rk.models.load_model(tmp_path / "lambda.keras")


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil", "assets/../../evil", "extra.txt"])
def test_archive_members_outside_are_refused(small_archive, name):
    members = {**_members(small_archive), name: b"x"}
    with pytest.raises(ValueError, match="refusing archive member|unexpected archive members"):
        rk.models.load_model(_zip(small_archive, members))


def test_huge_declared_units_are_refused_before_building(small_archive):
    members = _members(small_archive)
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 1 << 40
    members["config.json"] = json.dumps(config).encode()
    with pytest.raises(ValueError, match="declares units=1099511627776"):
        rk.models.load_model(_zip(small_archive, members))


def _edit_h5(data, edit):
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as h5:
        edit(h5)
    return buffer.getvalue()


def test_huge_declared_array_shape_is_refused(small_archive):
    members = _members(small_archive)

    def huge(h5):
        del h5["layers/lstm/cell/vars/0"]
        # A dataset declaring 2**40 floats that the file never stores (HDF5 allocates late).
        h5["layers/lstm/cell/vars"].create_dataset("0", shape=(1 << 20, 1 << 20), dtype="f4")

    members["model.weights.h5"] = _edit_h5(members["model.weights.h5"], huge)
    with pytest.raises(ValueError, match=r"has shape \(1048576, 1048576\).*expects shape \(5, 16\)"):
        rk.models.load_model(_zip(small_archive, members))


def test_links_outside_the_file_are_refused(small_archive, tmp_path):
    members = _members(small_archive)
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as h5:
        h5["x"] = np.zeros((5, 16), np.float32)

    def link(h5):
        del h5["layers/lstm/cell/vars/0"]
        h5["layers/lstm/cell/vars/0"] = h5py.ExternalLink(str(outside), "x")

    members["model.weights.h5"] = _edit_h5(members["model.weights.h5"], link)
    with pytest.raises(ValueError, match="ExternalLink"):
        rk.models.load_model(_zip(small_archive, members))


def test_weights_of_another_architecture_are_refused(small_archive, tmp_path):
    other = rk.Sequential([rk.Input((6, 5)), rk.layers.GRU(4), rk.layers.Dense(3)])
    with pytest.raises(ValueError, match="expected 3 arrays|has shape"):
        other.load_weights(small_archive)


# --- tf.keras 2's HDF5 dialect -------------------------------------------------------------------


def _tf_keras_2_file(path, model_config, layers):
    """An HDF5 model laid out as tf.keras 2 writes it (`model.save("m.h5")` in TensorFlow 2.x):
    the config in tf.keras 2's dialect and `<layer>/<layer>/<cell>/kernel:0` weight names."""
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = "2.15.0"
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["model_config"] = json.dumps(model_config)
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [name.encode() for name, _ in layers]
        for name, arrays in layers:
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/{key}:0".encode() for key in arrays]
            for key, value in arrays.items():
                layer[f"{name}/{key}:0"] = value
    return path


def test_tf_keras_2_functional_h5(tmp_path):
    reference = rk.Sequential([rk.Input((6, 5)), rk.layers.LSTM(4), rk.layers.Dense(3)])
    kernel, recurrent, bias, dense_kernel, dense_bias = [w + 0.1 for w in reference.get_weights()]
    lstm = {
        "name": "lstm",
        "trainable": True,
        "dtype": "float32",
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "time_major": False,
        "units": 4,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "unit_forget_bias": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "implementation": 2,
    }
    config = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_input_shape": [None, 6, 5], "dtype": "float32", "sparse": False, "name": "in"},
                    "name": "in",
                    "inbound_nodes": [],
                },
                {"class_name": "LSTM", "config": lstm, "name": "lstm", "inbound_nodes": [[["in", 0, 0, {}]]]},
                {
                    "class_name": "Dense",
                    "config": {"name": "dense", "units": 3, "activation": "linear", "use_bias": True},
                    "name": "dense",
                    "inbound_nodes": [[["lstm", 0, 0, {}]]],
                },
            ],
            "input_layers": [["in", 0, 0]],
            "output_layers": [["dense", 0, 0]],
        },
    }
    path = _tf_keras_2_file(
        tmp_path / "tf2.h5",
        config,
        [
            ("in", {}),
            ("lstm", {"lstm_cell/kernel": kernel, "lstm_cell/recurrent_kernel": recurrent, "lstm_cell/bias": bias}),
            ("dense", {"kernel": dense_kernel, "bias": dense_bias}),
        ],
    )
    loaded = rk.models.load_model(path)
    reference.set_weights([kernel, recurrent, bias, dense_kernel, dense_bias])
    x = _data((3, 6, 5), 30)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(reference(x)), atol=ATOL)
    fresh = rk.Sequential([rk.Input((6, 5)), rk.layers.LSTM(4), rk.layers.Dense(3)])
    fresh.load_weights(path)  # a legacy model file holds weights load_weights reads by layer order
    np.testing.assert_allclose(np.asarray(fresh(x)), np.asarray(reference(x)), atol=ATOL)


def test_saving_a_model_as_h5_points_to_keras_format(tmp_path):
    model = rk.Sequential([rk.Input((3, 2)), rk.layers.GRU(2)])
    with pytest.raises(ValueError, match=r"writes Keras 3's format.*\.keras"):
        model.save(tmp_path / "m.h5")
    assert not os.listdir(tmp_path)
