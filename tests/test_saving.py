"""Saving and loading: `model.save` / `rk.models.load_model`, `save_weights` / `load_weights`.

Round trips are bit-exact for every layer type, compile settings come back, user-defined cells
load through `custom_objects`, damaged or hostile files fail with a clear ValueError (or
FileNotFoundError) before any large allocation, nothing is pickled, and a failed save leaves the
previous file as it was.
"""

import io
import json
import os
import struct
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest

import rnnkit as rk
from guide_cells import NestedCell
from rnnkit import layers as L


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def assert_same_outputs(a, b, x):
    out_a, out_b = a.predict(x), b.predict(x)
    out_a, out_b = (out_a, out_b) if isinstance(out_a, (list, tuple)) else ([out_a], [out_b])
    for p, q in zip(out_a, out_b):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p, q)  # bit for bit


def every_layer_functional_model():
    """Two inputs, two outputs, a shared layer, and every layer type."""
    tokens = rk.Input((6,), dtype="int32", name="tokens")
    embedded = L.Embedding(20, 5, mask_zero=True)(tokens)
    h = L.SimpleRNN(4, return_sequences=True)(embedded)
    h = L.GRU(4, return_sequences=True)(h)
    h = L.GRU(4, reset_after=False, return_sequences=True)(h)
    h = L.LSTM(4, return_sequences=True)(h)
    h = L.RNN([L.LSTMCell(3), L.GRUCell(3), L.SimpleRNNCell(3)], return_sequences=True)(h)
    merged = [
        L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=mode)(h)
        for mode in ("concat", "sum", "mul", "ave")
    ]
    merged += L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None)(h)
    merged.append(
        L.Bidirectional(
            L.LSTM(3, return_sequences=True),
            backward_layer=L.SimpleRNN(3, return_sequences=True, go_backwards=True),
        )(h)
    )
    text = L.TimeDistributed(L.Dense(4))(L.Concatenate()(merged))

    signal = rk.Input((6, 3), name="signal")
    s = L.LSTM(4, return_sequences=True)(L.Masking(0.0)(signal))
    shared = L.Dense(4, name="shared_dense")  # called twice
    both = L.Add()([shared(text), shared(s)])
    flat = L.Flatten()(L.LayerNormalization()(both))
    normed = L.BatchNormalization()(L.Dropout(0.3)(flat))
    shaped = L.Reshape((3, 4))(L.Activation("relu")(L.Dense(12)(normed)))
    repeated = L.RepeatVector(2)(L.Flatten()(shaped))
    out_a = L.Dense(2, name="out_a")(L.Flatten()(repeated))
    out_b = L.Dense(1, activation="sigmoid", name="out_b")(normed)
    return rk.Model([tokens, signal], [out_a, out_b])


def functional_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 20, (n, 6))
    tokens[:, -2:] = 0  # padding, masked by the Embedding
    tokens[0, 1] = 0  # and a hole in the middle
    signal = rng.random((n, 6, 3)).astype("float32")
    signal[:, 0] = 0.0  # masked by Masking
    targets = [rng.integers(0, 2, n), rng.integers(0, 2, (n, 1)).astype("float32")]
    return [tokens, signal], targets


def compiled_functional_model():
    model = every_layer_functional_model()
    model.compile(
        optimizer=rk.optimizers.Adam(learning_rate=0.005),
        loss=[rk.losses.SparseCategoricalCrossentropy(from_logits=True), "binary_crossentropy"],
        loss_weights=[1.0, 0.5],
        metrics=["accuracy"],
    )
    return model


def every_layer_sequential_model():
    return rk.Sequential(
        [
            rk.Input((7,), dtype="int32"),
            L.Embedding(30, 6, mask_zero=True),
            L.Bidirectional(L.GRU(4, reset_after=False, return_sequences=True), merge_mode="ave"),
            L.TimeDistributed(L.Dense(5, activation="tanh")),
            L.LSTM(6),
            L.Dropout(0.2),
            L.BatchNormalization(),
            L.Dense(3),
        ]
    )


@pytest.fixture(scope="module")
def trained_functional():
    """The functional model after two epochs (BatchNormalization's moving statistics moved)."""
    model = compiled_functional_model()
    x, y = functional_data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    bn = next(l for l in model.layers if isinstance(l, L.BatchNormalization))
    mean, variance = (np.asarray(w) for w in bn.non_trainable_weights)
    assert np.abs(mean).max() > 0 and np.abs(variance - 1).max() > 0
    return model


def test_functional_model_round_trip_is_bit_exact(tmp_path, trained_functional):
    model = trained_functional
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = rk.models.load_model(path)
    assert type(loaded) is rk.Model
    assert [(type(l).__name__, l.name) for l in loaded.layers] == [(type(l).__name__, l.name) for l in model.layers]
    assert loaded.get_config() == model.get_config()
    assert_same_weights(model, loaded)
    x, _ = functional_data(n=9, seed=1)
    assert_same_outputs(model, loaded, x)
    for a, b in zip(model(x), loaded(x)):  # eager calls too
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sequential_model_round_trip_is_bit_exact(tmp_path):
    model = every_layer_sequential_model()
    model.compile("rmsprop", rk.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x = rng.integers(0, 30, (12, 7))
    x[:, 5:] = 0
    model.fit(x, rng.integers(0, 3, 12), batch_size=4, epochs=2, verbose=0)
    path = tmp_path / "seq.keras"
    model.save(path)
    loaded = rk.models.load_model(path)
    assert type(loaded) is rk.Sequential
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    assert loaded.inputs[0].shape == (None, 7) and loaded.inputs[0].dtype == np.dtype("int32")
    assert loaded.layers[1].merge_mode == "ave" and loaded.layers[1].forward_layer.reset_after is False
    assert_same_weights(model, loaded)
    assert_same_outputs(model, loaded, x)


def test_layer_options_survive_the_round_trip(tmp_path):
    """Options that change the numbers but not the weight shapes must be saved too."""
    model = rk.Sequential(
        [
            rk.Input((5, 3)),
            L.SimpleRNN(4, activation="relu", go_backwards=True, return_sequences=True),
            L.GRU(4, recurrent_activation="hard_sigmoid", return_sequences=True, zero_output_for_mask=True),
            L.LSTM(4, unit_forget_bias=False, use_bias=True, activation="softsign"),
            L.BatchNormalization(momentum=0.5, epsilon=0.1, center=True, scale=True),
            L.Dense(2, activation="softmax", use_bias=False),
        ]
    )
    path = tmp_path / "options.keras"
    model.save(path)
    loaded = rk.models.load_model(path)
    x = np.random.default_rng(3).random((4, 5, 3)).astype("float32")
    assert_same_outputs(model, loaded, x)
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]


def test_compile_settings_are_restored(tmp_path, trained_functional):
    model = trained_functional
    path = tmp_path / "compiled.keras"
    model.save(path)
    loaded = rk.models.load_model(path)
    assert loaded.compiled
    assert isinstance(loaded.optimizer, rk.optimizers.Adam)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.005)
    x, y = functional_data(n=10, seed=4)
    # Same losses (from_logits kept), loss weights and metric names: the same evaluation.
    expected = model.evaluate(x, y, return_dict=True, verbose=0)
    got = loaded.evaluate(x, y, return_dict=True, verbose=0)
    assert list(got) == list(expected) == ["loss", "out_a_loss", "out_b_loss", "out_a_accuracy", "out_b_accuracy"]
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-6)
    # The optimizer's state (Adam's step count and moments) comes back too: the loaded model goes
    # on training exactly as the saved one does (same dropout masks from the same seed), and not
    # as the same model compiled afresh with the saved settings.
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    fresh = rk.models.load_model(path, compile=False)
    fresh.compile(
        optimizer=rk.optimizers.Adam(learning_rate=0.005),
        loss=[rk.losses.SparseCategoricalCrossentropy(from_logits=True), "binary_crossentropy"],
        loss_weights=[1.0, 0.5],
        metrics=["accuracy"],
    )
    steps = []
    for m in (model, loaded, fresh):
        rk.utils.set_random_seed(0)
        steps.append([m.train_on_batch(x, y, return_dict=True) for _ in range(3)])
    assert steps[0] == steps[1] != steps[2]
    assert_same_weights(model, loaded)
    history = loaded.fit(x, y, epochs=2, verbose=0)
    assert list(history.history) == list(expected)
    assert all(np.isfinite(v) for v in history.history["loss"])

    not_compiled = rk.models.load_model(path, compile=False)
    assert not not_compiled.compiled
    with pytest.raises(ValueError, match="compile"):
        not_compiled.fit(x, y, verbose=0)


def test_uncompiled_model_loads_uncompiled(tmp_path):
    model = rk.Sequential([rk.Input((3,)), L.Dense(2)])
    model.save(tmp_path / "plain.keras")
    loaded = rk.models.load_model(tmp_path / "plain.keras")
    assert not loaded.compiled
    assert_same_weights(model, loaded)


def test_save_weights_load_weights_round_trip(tmp_path, trained_functional):
    model = trained_functional
    path = tmp_path / "model.weights.npz"
    model.save_weights(path)
    fresh = every_layer_functional_model()
    x, _ = functional_data(n=5, seed=5)
    assert not np.array_equal(fresh.predict(x)[0], model.predict(x)[0])
    fresh.load_weights(path)
    assert_same_weights(model, fresh)
    assert_same_outputs(model, fresh, x)
    # A model file holds the same weights: load_weights reads it too.
    model.save(tmp_path / "model.keras")
    other = every_layer_functional_model()
    other.load_weights(tmp_path / "model.keras")
    assert_same_weights(model, other)


def test_saved_files_contain_no_pickle(tmp_path, trained_functional):
    # model.save writes Keras 3's archive: JSON and one HDF5 file of plain numeric arrays.
    path = tmp_path / "model.keras"
    trained_functional.save(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
        json.loads(archive.read("metadata.json"))
        weights = archive.read("model.weights.h5")
    assert config["class_name"] in ("Model", "Functional")
    arrays = {}
    with h5py.File(io.BytesIO(weights), "r") as h5:
        h5.visititems(lambda name, obj: arrays.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
    state = [name for name in arrays if name.startswith("optimizer/")]
    assert len(state) == len(trained_functional.optimizer.variables)
    assert len(arrays) - len(state) == len(trained_functional.weights)
    assert all(np.asarray(a).dtype.kind in "fiu" and not np.asarray(a).dtype.hasobject for a in arrays.values())
    trained_functional.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        for got, want in zip((npz[name] for name in sorted(npz.files)), trained_functional.get_weights()):
            np.testing.assert_array_equal(got, want)


# --- custom objects ---------------------------------------------------------------------------


def nested_model():
    input_1 = rk.Input((None, 4))
    input_2 = rk.Input((None, 3, 2))
    outputs = rk.layers.RNN(NestedCell(2, 3, 5))((input_1, input_2))
    model = rk.Model([input_1, input_2], outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    return model


def test_custom_cell_through_custom_objects(tmp_path):
    model = nested_model()
    rng = np.random.default_rng(6)
    x = [rng.random((4, 5, 4)).astype("float32"), rng.random((4, 5, 3, 2)).astype("float32")]
    y = [rng.random((4, 2)), rng.random((4, 3, 5))]
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "nested.keras"
    model.save(path)

    with pytest.raises(ValueError, match="NestedCell.*custom_objects|custom_objects.*NestedCell"):
        rk.models.load_model(path)
    loaded = rk.models.load_model(path, custom_objects={"NestedCell": NestedCell})
    assert isinstance(loaded.layers[-1].cell, NestedCell) and loaded.layers[-1].cell.unit_3 == 5
    assert_same_weights(model, loaded)
    assert_same_outputs(model, loaded, x)
    loaded.fit(x, y, epochs=1, verbose=0)
    # custom_objects apply to that call only.
    with pytest.raises(ValueError, match="NestedCell"):
        rk.models.load_model(path)


# --- damaged and hostile files ----------------------------------------------------------------


@pytest.fixture()
def saved(tmp_path):
    model = rk.Sequential([rk.Input((5, 3)), L.LSTM(4), L.Dense(2)])
    model.compile("adam", "mse")
    path = tmp_path / "good.keras"
    # These tests take rnnkit's earlier zip format apart, which load_model keeps reading;
    # model.save now writes Keras's format (tests/test_keras_files.py has its hostile files).
    rk.saving.model_file.save_rnnkit_zip(model, path)
    return model, path


def write(path, data):
    path.write_bytes(data)
    return path


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_bytes(array=None, header_shape=None, data_bytes=None):
    """A .npy member: `array`'s, or a header declaring `header_shape` followed by `data_bytes`."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
    return buffer.getvalue() + data_bytes


def test_garbage_and_truncated_files(tmp_path, saved):
    model, path = saved
    data = path.read_bytes()
    for name, content in [
        ("garbage.keras", os.urandom(2000)),
        ("empty.keras", b""),
        ("text.keras", b"this is not a model\n" * 50),
        ("head.keras", data[:100]),
        ("half.keras", data[: len(data) // 2]),
        ("tail_cut.keras", data[:-30]),
    ]:
        with pytest.raises(ValueError, match="not an rnnkit model file|corrupt"):
            rk.models.load_model(write(tmp_path / name, content))
        if name == "tail_cut.keras":
            # Without the outer zip's directory, zipfile finds the (stored, intact, CRC-checked)
            # weights archive inside; loading it gives exactly the saved weights, or fails.
            try:
                model.load_weights(tmp_path / name)
            except ValueError:
                pass
            assert_same_weights(model, rk.models.load_model(path))
            continue
        with pytest.raises(ValueError, match="not a weights file|corrupt"):
            model.load_weights(tmp_path / name)
    # A damaged byte inside the weights: the CRC check catches it.
    at = data.index(b"model.weights.npz") + 300
    damaged = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    with pytest.raises(ValueError, match="corrupt"):
        rk.models.load_model(write(tmp_path / "damaged.keras", damaged))
    with pytest.raises(ValueError, match="corrupt"):
        model.load_weights(tmp_path / "damaged.keras")


def test_non_existent_paths(tmp_path, saved):
    model, _ = saved
    with pytest.raises(FileNotFoundError):
        rk.models.load_model(tmp_path / "missing.keras")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.weights.npz")


def test_another_architecture(tmp_path, saved):
    model, path = saved
    other = rk.Sequential([rk.Input((5, 3)), L.GRU(4), L.Dense(2)])
    with pytest.raises(ValueError, match=r"shape \(3, 16\).*\(3, 12\)"):
        other.load_weights(path)
    fewer = rk.Sequential([rk.Input((5, 3)), L.LSTM(4)])
    with pytest.raises(ValueError, match="another architecture"):
        fewer.load_weights(path)
    before = other.get_weights()
    other.save_weights(tmp_path / "gru.npz")
    with pytest.raises(ValueError):
        model.load_weights(tmp_path / "gru.npz")
    for a, b in zip(before, other.get_weights()):  # nothing half-loaded
        np.testing.assert_array_equal(a, b)
    # A model file whose weights belong to another architecture than its config.
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json")
    with zipfile.ZipFile(tmp_path / "gru.npz") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    mixed = zip_bytes({"config.json": config, "model.weights.npz": zip_bytes(members)})
    with pytest.raises(ValueError, match="shape"):
        rk.models.load_model(write(tmp_path / "mixed.keras", mixed))


def test_unexpected_and_path_traversal_member_names(tmp_path, saved):
    model, path = saved
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for extra in ("../evil", "/abs/evil", "extra.txt", "model.weights.npz/../../evil"):
        hostile = zip_bytes({**members, extra: b"payload"})
        with pytest.raises(ValueError, match="not an rnnkit model file"):
            rk.models.load_model(write(tmp_path / "hostile.keras", hostile))
    renamed = {("../" + name if name == "config.json" else name): data for name, data in members.items()}
    with pytest.raises(ValueError):
        rk.models.load_model(write(tmp_path / "renamed.keras", zip_bytes(renamed)))
    arrays = [npy_bytes(w) for w in model.get_weights()]
    traversal = zip_bytes({f"../w{i:05d}.npy": a for i, a in enumerate(arrays)})
    with pytest.raises(ValueError, match="weight arrays"):
        model.load_weights(write(tmp_path / "traversal.npz", traversal))
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path.parent / "w00000.npy").exists()


def test_huge_declared_shape_is_rejected_without_allocating(tmp_path, saved):
    model, path = saved
    weights = model.get_weights()
    members = {f"w{i:05d}.npy": npy_bytes(w) for i, w in enumerate(weights)}
    # The recurrent kernel's header declares 4 x 10^9 floats (16 GB); 64 bytes follow.
    members["w00001.npy"] = npy_bytes(header_shape=(4, 1_000_000_000), data_bytes=b"\0" * 64)
    npz = zip_bytes(members)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json")
    model_file = write(tmp_path / "huge.keras", zip_bytes({"config.json": config, "model.weights.npz": npz}))
    weights_file = write(tmp_path / "huge.npz", npz)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"weight 1 has shape \(4, 1000000000\)"):
            model.load_weights(weights_file)
        with pytest.raises(ValueError, match=r"weight 1 has shape \(4, 1000000000\)"):
            rk.models.load_model(model_file)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    # Declared sizes in the zip's directory are not trusted either: config.json claiming 4 GB.
    data = path.read_bytes()
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + struct.unpack("<H", data[entry + 28 : entry + 30])[0]] != b"config.json":
        entry = data.index(b"PK\x01\x02", entry + 4)
    patched = data[: entry + 24] + struct.pack("<I", 2**32 - 1) + data[entry + 28 :]
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="config.json"):
            rk.models.load_model(write(tmp_path / "claims.keras", patched))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_weights_with_the_right_shape_but_missing_data(tmp_path, saved):
    model, _ = saved
    weights = model.get_weights()
    members = {f"w{i:05d}.npy": npy_bytes(w) for i, w in enumerate(weights)}
    members["w00000.npy"] = npy_bytes(header_shape=weights[0].shape, data_bytes=b"\0" * 8)
    with pytest.raises(ValueError, match="truncated"):
        model.load_weights(write(tmp_path / "short.npz", zip_bytes(members)))
    members["w00000.npy"] = b"\x93NUMPY garbage"
    with pytest.raises(ValueError, match="corrupt"):
        model.load_weights(write(tmp_path / "bad_header.npz", zip_bytes(members)))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    members["w00000.npy"] = pickled.getvalue()
    with pytest.raises(ValueError, match="dtype object"):
        model.load_weights(write(tmp_path / "pickled.npz", zip_bytes(members)))


def test_bad_configs(tmp_path, saved):
    _, path = saved
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.weights.npz")
    for config, message in [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "does not describe a model"),
        (b'{"class_name": "os.system", "config": {}}', "unknown model class"),
        (
            json.dumps(
                {"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Evil", "config": {}}]}}
            ).encode(),
            "Unknown layer: 'Evil'",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            members = {"config.json": config, "model.weights.npz": weights}
            rk.models.load_model(write(tmp_path / "config.keras", zip_bytes(members)))
    with pytest.raises(ValueError, match="not an rnnkit model file"):
        rk.models.load_model(write(tmp_path / "no_config.keras", zip_bytes({"model.weights.npz": weights})))


# --- atomic writes ----------------------------------------------------------------------------


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, saved):
    model, path = saved
    before = path.read_bytes()
    original = zipfile.ZipFile.writestr

    def write_half_then_fail(self, name, data, *args, **kwargs):
        if name in ("model.weights.npz", "model.weights.h5"):
            original(self, name, data[: len(data) // 2], *args, **kwargs)
            raise OSError("No space left on device")
        return original(self, name, data, *args, **kwargs)

    model.set_weights([w + 1 for w in model.get_weights()])
    monkeypatch.setattr(zipfile.ZipFile, "writestr", write_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.keras"]  # no temporary file left behind
    rk.models.load_model(path)
    # The next save works and replaces the file.
    model.save(path)
    assert_same_weights(model, rk.models.load_model(path))


def test_failed_save_weights_keeps_the_previous_file(tmp_path, monkeypatch, saved):
    model, _ = saved
    path = tmp_path / "w.weights.npz"
    model.save_weights(path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[: len(data) // 2])
            raise OSError("No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: HalfWriter(real_fdopen(fd, *args, **kwargs)))
    model.set_weights([w * 2 for w in model.get_weights()])
    with pytest.raises(OSError, match="No space"):
        model.save_weights(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.keras", "w.weights.npz"]


def test_save_into_a_missing_folder_fails_cleanly(tmp_path, saved):
    model, _ = saved
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "no" / "such" / "folder" / "m.keras")
    assert sorted(os.listdir(tmp_path)) == ["good.keras"]


def test_custom_object_scope_reaches_nested_configs(tmp_path):
    path = tmp_path / "nested.keras"
    nested_model().save(path)
    with rk.utils.custom_object_scope({"NestedCell": NestedCell}):
        loaded = rk.models.load_model(path)
    assert isinstance(loaded.layers[-1].cell, NestedCell)
    with pytest.raises(ValueError, match="NestedCell"):
        rk.models.load_model(path)  # the scope ended with the block


def test_optimizer_state_of_another_model_is_rejected(tmp_path, trained_functional):
    path = tmp_path / "model.keras"
    rk.saving.model_file.save_rnnkit_zip(trained_functional, path)  # rnnkit's earlier layout, taken apart
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.savez(buffer, w00000=np.zeros((), np.int64), w00001=np.zeros((3, 3), np.float32))
    members["optimizer.npz"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="optimizer state: expected .* weight arrays"):
        rk.models.load_model(path)
    assert rk.models.load_model(path, compile=False).compiled is False  # the weights still load
