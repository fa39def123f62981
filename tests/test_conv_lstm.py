"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D (the Rust core's ConvLSTM recurrence over the hoisted
input convolution) against Keras 3 (JAX backend): random configurations with the same weights
and inputs, outputs, final states and the gradients of the weights, the input and the initial
states; go_backwards, return_state, channels_first. Then rnnkit alone: the Python step path (a
Python activation, stepped by `RNN`'s generic masked loop) against the fused one with masks,
finite differences with masks and dropout, dropout, stateful calls, configs and saving, the
keras-io next-frame model (three ConvLSTM2D and a Conv3D) against Keras, and the GPU refusal.

Keras 3.15 on JAX cannot run a ConvLSTM with a mask at all (its scan broadcasts the `(batch, 1)`
mask against the 4-d states and fails), so masks are compared with rnnkit's own step loop.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def random_case(rng, rank):
    """Layer arguments, the input and the state shape."""
    filters = int(rng.integers(1, 4))
    channels = int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=rank))
    if rng.integers(2):
        strides, dilation = tuple(int(s) for s in rng.integers(1, 3, size=rank)), (1,) * rank
    else:
        strides, dilation = (1,) * rank, tuple(int(d) for d in rng.integers(1, 3, size=rank))
    kwargs = {
        "filters": filters,
        "kernel_size": kernel,
        "strides": strides,
        "dilation_rate": dilation,
        "padding": ["valid", "same"][rng.integers(2)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
        "activation": ["tanh", "relu", "sigmoid"][rng.integers(3)],
        "recurrent_activation": ["sigmoid", "hard_sigmoid"][rng.integers(2)],
        "use_bias": bool(rng.integers(4)),
        "unit_forget_bias": bool(rng.integers(2)),
        "return_sequences": bool(rng.integers(2)),
        "return_state": bool(rng.integers(2)),
        "go_backwards": bool(rng.integers(2)),
    }
    batch, steps = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    spatial = tuple(
        max(int(s), (k - 1) * d + 1) for s, k, d in zip(rng.integers(4, 8 - rank, size=rank), kernel, dilation)
    )
    first = kwargs["data_format"] == "channels_first"
    x = rng.normal(size=(batch, steps, channels, *spatial) if first else (batch, steps, *spatial, channels))
    out = tuple(
        -(-s // st) if kwargs["padding"] == "same" else (s - (k - 1) * d - 1) // st + 1
        for s, k, st, d in zip(spatial, kernel, strides, dilation)
    )
    state = (batch, filters, *out) if first else (batch, *out, filters)
    return kwargs, x.astype("float32"), state


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_lstm_matches_keras(keras, rank, seed):
    rng = np.random.default_rng(10 * rank + seed)
    kwargs, x, state = random_case(rng, rank)
    name = f"ConvLSTM{rank}D"
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    args = (x,)
    if rng.integers(2):
        args = (x, [rng.normal(size=state).astype("float32") for _ in range(2)])
    theirs(*args)
    ours(*args)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    assert_twins_agree(theirs, ours, args, rng=rng, rtol=1e-4, atol=1e-4)
    assert_same_config(ours, theirs)


def test_unit_forget_bias_starts_the_forget_gate_at_one():
    layer = layers.ConvLSTM1D(3, 2)
    layer(np.zeros((1, 2, 5, 2), "float32"))
    np.testing.assert_array_equal(np.asarray(layer.cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def python_tanh(x):
    return rk.ops.tanh(x)


def loss_and_grads(layer, x, initial, mask, training=False):
    x_t = rk.Tensor(x)
    states = [rk.Tensor(s) for s in initial]
    with rk.GradientTape() as tape:
        tape.watch([x_t, *states])
        out = layer(x_t, initial_state=states, mask=mask, training=training)
        loss = sum(rk.ops.sum(o * np.cos(np.arange(np.prod(o.shape)).reshape(o.shape))) for o in out)
    grads = tape.gradient(loss, [*layer.trainable_weights, x_t, *states])
    return [np.asarray(o) for o in out], [np.asarray(g) for g in grads]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_python_step_path_matches_the_fused_one(data_format):
    """A Python activation steps in Python through rk.ops; its numbers are the fused kernels'.
    The mask hides sample 1's first step, so its first output is zeros (not its initial state)."""
    rng = np.random.default_rng(3)
    kwargs = dict(
        filters=2,
        kernel_size=(2, 3),
        padding="same",
        data_format=data_format,
        return_sequences=True,
        return_state=True,
        go_backwards=True,
    )
    fused, stepped = layers.ConvLSTM2D(**kwargs), layers.ConvLSTM2D(activation=python_tanh, **kwargs)
    shape = (2, 4, 5, 4, 3) if data_format == "channels_last" else (2, 4, 3, 5, 4)
    x = rng.normal(size=shape)
    fused(x.astype("float32"))
    stepped(x.astype("float32"))
    assert fused._fused and not stepped._fused
    stepped.set_weights(fused.get_weights())
    state = (2, 5, 4, 2) if data_format == "channels_last" else (2, 2, 5, 4)
    initial = [rng.normal(size=state).astype("float32") for _ in range(2)]
    mask = np.array([[True, True, False, True], [True, False, True, False]])
    out_f, grads_f = loss_and_grads(fused, x.astype("float32"), initial, mask)
    out_s, grads_s = loss_and_grads(stepped, x.astype("float32"), initial, mask)
    assert not np.any(out_f[0][1, 0])  # processing order: step 3 of sample 1 comes first, masked
    for a, b in zip(out_f + grads_f, out_s + grads_s):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


_SAME_BITS_SCRIPT = """
import hashlib, sys
import numpy as np
import rnnkit as rk
sys.path.insert(0, sys.argv[1])
from test_conv_lstm import loss_and_grads
rk.utils.set_random_seed(5)
rng = np.random.default_rng(5)
layer = rk.layers.ConvLSTM2D(16, (3, 3), padding="same", return_sequences=True, return_state=True)
x = rng.normal(size=(3, 4, 6, 20, 2)).astype("float32")
layer(x)
initial = [rng.normal(size=(3, 6, 20, 16)).astype("float32") for _ in range(2)]
mask = np.array([[True, False, True, True], [False, True, True, False], [True] * 4])
out, grads = loss_and_grads(layer, x, initial, mask)
print(hashlib.sha256(b"".join(a.tobytes() for a in out + grads)).hexdigest())
"""


def test_outputs_and_gradients_are_the_same_bits_on_one_and_two_threads():
    """Every sample's output gradient is added by the task of its gate math, and each product's
    rows split between threads in a fixed order: the thread count does not change a bit."""
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        command = [sys.executable, "-c", _SAME_BITS_SCRIPT, here]
        digests.add(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip())
    assert len(digests) == 1


def test_gradients_match_finite_differences_in_float64():
    rng = np.random.default_rng(4)
    layer = layers.ConvLSTM1D(
        2, 3, padding="same", return_sequences=True, dtype="float64", dropout=0.3, recurrent_dropout=0.4, seed=5
    )
    x = rng.normal(size=(2, 3, 4, 2))
    layer(x)
    initial = [rng.normal(size=(2, 4, 2)) for _ in range(2)]
    mask = np.array([[True, False, True], [True, True, True]])
    layer.cell._rng = np.random.default_rng(7)
    _, grads = loss_and_grads(layer, x, initial, mask, training=True)

    def value():
        layer.cell._rng = np.random.default_rng(7)  # the same dropout masks at every evaluation
        out, _ = loss_and_grads(layer, x, initial, mask, training=True)
        return sum(float(np.sum(o * np.cos(np.arange(np.prod(o.shape)).reshape(o.shape)))) for o in out)

    arrays = [*(w.numpy() for w in layer.trainable_weights), x.copy(), *(s.copy() for s in initial)]
    targets = [*layer.trainable_weights, x, *initial]

    def set_value(k, value):
        if k < 3:
            targets[k].assign(value)
        else:
            targets[k][...] = value

    for k, (array, grad) in enumerate(zip(arrays, grads)):
        for i in rng.choice(array.size, size=min(5, array.size), replace=False):
            values = []
            for delta in (1e-6, -1e-6):
                moved = array.copy()
                moved.flat[i] += delta
                set_value(k, moved)
                values.append(value())
            set_value(k, array)
            numeric = (values[0] - values[1]) / 2e-6
            assert abs(grad.flat[i] - numeric) < 1e-6 * max(1.0, abs(numeric)), (k, i, grad.flat[i], numeric)


def test_dropout_is_seeded_and_only_in_training():
    x = np.random.default_rng(5).normal(size=(2, 3, 6, 2)).astype("float32")
    a = layers.ConvLSTM1D(3, 2, dropout=0.5, recurrent_dropout=0.5, seed=1)
    b = layers.ConvLSTM1D(3, 2, dropout=0.5, recurrent_dropout=0.5, seed=1)
    a(x)
    b(x)
    b.set_weights(a.get_weights())
    plain = np.asarray(a(x))
    np.testing.assert_array_equal(plain, np.asarray(a(x, training=False)))
    dropped = np.asarray(a(x, training=True))
    assert np.all(np.isfinite(dropped)) and not np.allclose(dropped, plain)
    np.testing.assert_array_equal(dropped, np.asarray(b(x, training=True)))


def test_stateful_calls_continue_the_sequence():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6, 5, 5, 1)).astype("float32")
    whole = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)
    parts = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True, stateful=True, batch_size=2)
    whole(x)
    parts(x[:, :1])
    parts.reset_state()
    parts.set_weights(whole.get_weights())
    joined = np.concatenate([np.asarray(parts(x[:, :3])), np.asarray(parts(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(joined, np.asarray(whole(x)), rtol=1e-6, atol=1e-6)
    parts.reset_state()
    np.testing.assert_allclose(np.asarray(parts(x[:, :3])), np.asarray(whole(x[:, :3])), rtol=1e-6, atol=1e-6)


def next_frame_model(lib, filters, frame):
    """The keras-io next-frame prediction model (examples/vision/conv_lstm.py) with its layers."""
    inp = lib.layers.Input(shape=(None, frame, frame, 1))
    x = lib.layers.ConvLSTM2D(filters, (5, 5), padding="same", return_sequences=True, activation="relu")(inp)
    x = lib.layers.BatchNormalization()(x)
    x = lib.layers.ConvLSTM2D(filters, (3, 3), padding="same", return_sequences=True, activation="relu")(x)
    x = lib.layers.BatchNormalization()(x)
    x = lib.layers.ConvLSTM2D(filters, (1, 1), padding="same", return_sequences=True, activation="relu")(x)
    x = lib.layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid", padding="same")(x)
    return lib.models.Model(inp, x)


def test_next_frame_model_matches_keras_and_trains(keras, tmp_path):
    rng = np.random.default_rng(7)
    theirs, ours = next_frame_model(keras, 6, 12), next_frame_model(rk, 6, 12)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    x = (rng.random((3, 5, 12, 12, 1)) > 0.7).astype("float32")
    y = np.roll(x, -1, axis=1)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    ours.compile(loss="binary_crossentropy", optimizer="adam")
    history = ours.fit(x, y, batch_size=3, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    path = tmp_path / "next_frame.keras"
    ours.save(path)
    loaded = rk.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), ours.predict(x, verbose=0))
    # Files move between the libraries: Keras reads ours, and rnnkit reads Keras's.
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )
    theirs.save(tmp_path / "keras.keras")
    from_keras = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(from_keras.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_conv_lstm_refuses_the_gpu(monkeypatch):
    from rnnkit import config

    layer = layers.ConvLSTM1D(2, 2)
    monkeypatch.setattr(config, "current_device", lambda: "cuda")
    with pytest.raises(RuntimeError, match="ConvLSTM has no GPU kernels in rnnkit yet"):
        layer(np.zeros((1, 2, 4, 1), "float32"))
    with pytest.raises(ValueError, match="device: expected 'cpu' \\(ConvLSTM has no GPU kernels yet\\)"):
        rk._core.conv_lstm_forward(np.zeros((1, 1, 3, 8), "float32"), np.zeros((1, 2, 8), "float32"), device="cuda")


def test_bad_conv_lstm_inputs_are_named():
    layer = layers.ConvLSTM2D(2, 3)
    with pytest.raises(ValueError, match="expected ndim=5, found ndim=4"):
        layer(np.zeros((1, 2, 5, 5), "float32"))
    layer(np.zeros((1, 2, 5, 5, 1), "float32"))
    with pytest.raises(ValueError, match="expected shape=\\(None, None, 5, 5, 1\\), found shape=\\(1, 2, 6, 5, 1\\)"):
        layer(np.zeros((1, 2, 6, 5, 1), "float32"))
    with pytest.raises(ValueError, match="strides > 1` is not compatible with `dilation_rate > 1"):
        layers.ConvLSTM1D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(rk._core.ShapeError, match="recurrent_kernel: expected \\(\\*kernel_size, 2, 8\\)"):
        rk._core.conv_lstm_forward(np.zeros((1, 1, 3, 8), "float32"), np.zeros((1, 3, 8), "float32"))
    with pytest.raises(rk._core.ShapeError, match="mask: expected shape \\(1, 1\\), received \\(1, 2\\)"):
        rk._core.conv_lstm_forward(
            np.zeros((1, 1, 3, 8), "float32"), np.zeros((1, 2, 8), "float32"), mask=np.ones((1, 2), bool)
        )
