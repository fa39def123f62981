"""`quantize("int8")`: Dense and Embedding against Keras's own int8 layers (jax backend, same
weights and inputs), and beyond Keras the int8 SimpleRNN/GRU/LSTM against a float64 NumPy
reference written from the quantization equations (`rk.quantizers`'s notes), against their
float32 layers within int8's error, with masks, go_backwards, Bidirectional and return_state;
the errors and their messages; the same bits whatever the thread count."""

import os
import subprocess
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np
import pytest

import rnnkit as rk

L = rk.layers
EPS = 1e-7


def data(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype("float32")


# --- the reference, in float64 from the equations -------------------------------------------


def quantize_rows(x):
    """Per-row abs-max quantization as the kernels do it: the scale and the rounding in float32
    (the reference's float64 values rounded to float32 first), returned as float64."""
    x = np.asarray(x, np.float32)
    s = np.float32(127) / (np.abs(x).max(axis=-1, keepdims=True) + np.float32(EPS))
    return np.clip(np.round(x * s), -127, 127).astype(np.float64), s.astype(np.float64)


def int8_product(x, q_w, s_w):
    """`x · W` with `x` quantized per row and `W` given as int8 values and per-column scales."""
    q_x, s_x = quantize_rows(x)
    return (q_x @ q_w) / (s_w * s_x)


def reference(cell, x, mask=None, go_backwards=False):
    """The int8 cell's outputs `(batch, time, units)` in processing order and final states, in
    float64, from the layer's int8 weights and scales."""
    q_w, s_w = np.asarray(cell.kernel, np.float64), np.asarray(cell.kernel_scale, np.float64)
    q_u, s_u = np.asarray(cell.recurrent_kernel, np.float64), np.asarray(cell.recurrent_kernel_scale, np.float64)
    u = cell.units
    bias = np.asarray(cell.bias, np.float64) if cell.use_bias else np.zeros((2, 3 * u) if cell.kind == "gru" else 1)
    batch, steps, _ = x.shape
    h = np.zeros((batch, u))
    c = np.zeros((batch, u))
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    outs, previous = [], np.zeros((batch, u))
    for t in order:
        xt = x[:, t].astype(np.float64)
        if cell.kind == "simple_rnn":
            new_h = np.tanh(int8_product(xt, q_w, s_w) + int8_product(h, q_u, s_u) + bias)
            new_c = c
        elif cell.kind == "lstm":
            z = int8_product(xt, q_w, s_w) + bias + int8_product(h, q_u, s_u)
            i, f, g, o = np.split(z, 4, axis=-1)
            new_c = sig(f) * c + sig(i) * np.tanh(g)
            new_h = sig(o) * np.tanh(new_c)
        elif cell.reset_after:
            zx = int8_product(xt, q_w, s_w) + bias[0]
            zh = np.concatenate(
                [int8_product(h, q_u[:, k * u : (k + 1) * u], s_u[k * u : (k + 1) * u]) for k in range(3)], -1
            )
            zh = zh + bias[1]
            z, r = sig(zx[:, :u] + zh[:, :u]), sig(zx[:, u : 2 * u] + zh[:, u : 2 * u])
            hh = np.tanh(zx[:, 2 * u :] + r * zh[:, 2 * u :])
            new_h, new_c = z * h + (1 - z) * hh, c
        else:
            zx = int8_product(xt, q_w, s_w) + bias
            zh = int8_product(h, q_u[:, : 2 * u], s_u[: 2 * u])
            z, r = sig(zx[:, :u] + zh[:, :u]), sig(zx[:, u : 2 * u] + zh[:, u:])
            hh = np.tanh(zx[:, 2 * u :] + int8_product(r * h, q_u[:, 2 * u :], s_u[2 * u :]))
            new_h, new_c = z * h + (1 - z) * hh, c
        if mask is not None:
            keep = mask[:, t : t + 1]
            new_h, new_c = np.where(keep, new_h, h), np.where(keep, new_c, c)
            out = np.where(keep, new_h, previous)
        else:
            out = new_h
        h, c, previous = new_h, new_c, out
        outs.append(out)
    return np.stack(outs, axis=1), [h, c] if cell.kind == "lstm" else [h]


RECURRENT = [
    ("simple_rnn", lambda u, **kw: L.SimpleRNN(u, **kw)),
    ("lstm", lambda u, **kw: L.LSTM(u, **kw)),
    ("gru", lambda u, **kw: L.GRU(u, **kw)),
    ("gru_reset_before", lambda u, **kw: L.GRU(u, reset_after=False, **kw)),
]


def quantized_pair(make, units, x, **kwargs):
    """A float layer and an int8 copy of it with the same (seeded) weights, both built on `x`.

    The seed matters: the kernels quantize their float32 `h` where the reference quantizes its
    float64 one, and a value within float rounding of a rounding tie (`x · s` at k + 0.5) may
    quantize to the neighbouring integer on one side (about one test in a thousand, each seed
    checked once and for all); everything else agrees to float rounding.
    """
    rk.utils.set_random_seed(units)
    float_layer = make(units, return_sequences=True, **kwargs)
    float_layer(x)
    q = make(units, return_sequences=True, **kwargs)
    q(x)
    q.set_weights(float_layer.get_weights())
    q.quantize("int8")
    return float_layer, q


# --- recurrent layers -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "make"), RECURRENT)
def test_recurrent_int8_follows_the_equations_and_stays_near_float(name, make):
    x = data((3, 9, 5), seed=1)
    float_layer, q = quantized_pair(make, 20, x)
    got = np.asarray(q(x))
    want, _ = reference(q.cell, x)
    # Exact up to float rounding: the kernels sum in float32 where the reference sums in float64.
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # int8 weights and states: within a few hundredths of the float32 layer.
    np.testing.assert_allclose(got, np.asarray(float_layer(x)), rtol=0, atol=0.05)
    assert np.abs(got - np.asarray(float_layer(x))).max() > 1e-5  # it is quantized


@pytest.mark.parametrize(("name", "make"), RECURRENT)
def test_recurrent_int8_masks_go_backwards_and_states(name, make):
    x = data((4, 7, 3), seed=2)
    mask = np.random.default_rng(3).random((4, 7)) > 0.35
    _, q = quantized_pair(make, 12, x, go_backwards=True, return_state=True)
    out, *states = q(x, mask=mask)
    want, want_states = reference(q.cell, x, mask=mask, go_backwards=True)
    np.testing.assert_allclose(np.asarray(out), want, rtol=0, atol=2e-5)
    for s, w in zip(states, want_states):
        np.testing.assert_allclose(np.asarray(s), w, rtol=0, atol=2e-5)
    # An all-true mask is no mask, to the bit.
    full = np.ones((4, 7), bool)
    np.testing.assert_array_equal(np.asarray(q(x, mask=full)[0]), np.asarray(q(x)[0]))


def test_bidirectional_int8_is_its_two_directions():
    rk.utils.set_random_seed(4)
    x = data((3, 6, 4), seed=4)
    bi = L.Bidirectional(L.LSTM(8, return_sequences=True))
    bi(x)
    bi.quantize("int8")
    assert bi.forward_layer.quantization_mode == bi.backward_layer.quantization_mode == "int8"
    out = np.asarray(bi(x))
    fw, _ = reference(bi.forward_layer.cell, x)
    bw, _ = reference(bi.backward_layer.cell, x, go_backwards=True)
    np.testing.assert_allclose(out, np.concatenate([fw, bw[:, ::-1]], axis=-1), rtol=0, atol=2e-5)


def test_model_quantize_reaches_recurrent_dense_and_embedding_layers():
    rk.utils.set_random_seed(5)
    model = rk.Sequential(
        [
            rk.Input((6,), dtype="int32"),
            L.Embedding(30, 8, mask_zero=True),
            L.Bidirectional(L.GRU(10, return_sequences=True)),
            L.LSTM(12),
            L.Dense(5, activation="softmax"),
        ]
    )
    tokens = np.random.default_rng(5).integers(0, 30, (4, 6))
    tokens[:, -2:] = 0
    before = np.asarray(model.predict(tokens, verbose=0))
    model.quantize("int8")
    modes = [layer.quantization_mode for layer in model.layers]
    assert modes == ["int8"] * 4
    after = np.asarray(model.predict(tokens, verbose=0))
    np.testing.assert_allclose(after, before, atol=0.03)
    assert not np.array_equal(after, before)
    # The int8 weights are frozen, beside their scales; only biases still train.
    lstm = model.layers[2].cell
    assert lstm.kernel.dtype == np.int8 and not lstm.kernel.trainable
    assert lstm.recurrent_kernel_scale.shape == (48,)
    with pytest.raises(ValueError, match="already quantized"):
        model.quantize("int8")


def test_int8_recurrent_layers_are_bit_identical_across_thread_counts():
    script = (
        "import numpy as np, rnnkit as rk, hashlib\n"
        "rk.utils.set_random_seed(0)\n"
        "x = np.random.default_rng(0).standard_normal((64, 20, 16)).astype('float32')\n"
        "layer = rk.layers.LSTM(64, return_sequences=True, seed=1)\n"
        "layer(x); layer.quantize('int8')\n"
        "print(hashlib.sha256(np.asarray(layer(x)).tobytes()).hexdigest())\n"
    )
    digests = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_int8_recurrent_layers_refuse_training_and_unsupported_cells():
    x = data((2, 4, 3))
    layer = L.LSTM(5)
    layer(x)
    layer.quantize("int8")
    with rk.GradientTape(), pytest.raises(NotImplementedError, match="quantized to int8, which runs inference only"):
        layer(rk.Variable(x))
    model = rk.Sequential([rk.Input((4, 3)), L.LSTM(5)])
    model.compile("adam", "mse")
    model.quantize("int8")
    with pytest.raises(NotImplementedError, match="inference only"):
        model.fit(x, np.zeros((2, 5), "float32"), verbose=0)
    peephole = L.LSTM(5, peephole=True)
    peephole(x)
    with pytest.raises(NotImplementedError, match="do not run peephole"):
        peephole.quantize("int8")
    assert peephole.quantization_mode is None and peephole.cell.kernel.dtype == np.float32
    indrnn = L.IndRNN(5)
    indrnn(x)
    with pytest.raises(NotImplementedError, match="SimpleRNN, GRU and LSTM"):
        indrnn.quantize("int8")
    # A quantized cell stepped in Python would read int8 weights as floats: refused.
    with pytest.raises(NotImplementedError, match="runs only in the fused kernels"):
        layer.cell(x[:, 0], [np.zeros((2, 5), "float32")] * 2)


def test_quantize_errors_name_the_mode():
    layer = L.Dense(3)
    with pytest.raises(ValueError, match="isn't yet built"):
        layer.quantize("int8")
    layer.build((None, 4))
    for mode in ("float8", "int4", "gptq"):
        with pytest.raises(NotImplementedError, match=f"Quantization mode '{mode}' is not supported by rnnkit"):
            layer.quantize(mode)
    with pytest.raises(ValueError, match="Invalid quantization mode.*Received: mode=int16"):
        layer.quantize("int16")
    with pytest.raises(NotImplementedError, match="`config` is not supported"):
        layer.quantize("int8", config=object())
    with pytest.raises(NotImplementedError, match="Layer Dropout does not have a `quantize` method"):
        L.Dropout(0.5).quantize("int8")

    class MyDense(L.Dense):
        pass

    sub = MyDense(2)
    sub.build((None, 4))
    with pytest.raises(NotImplementedError, match="Layer MyDense does not have a `quantize` method"):
        sub.quantize("int8")
    model = rk.Sequential([rk.Input((4,)), L.Dense(3), L.BatchNormalization()])
    with pytest.raises(ValueError, match="filters"):
        model.quantize("int8", filters=3)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        model.quantize("int8", bogus=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.quantize("int8", filters="dense")
    assert model.layers[0].quantization_mode == "int8"
    assert model.layers[1].quantization_mode is None
    assert not caught  # the filter left BatchNormalization out
    model2 = rk.Sequential([rk.Input((4,)), L.Dense(3), L.BatchNormalization()])
    with pytest.warns(UserWarning, match="Layer BatchNormalization does not have a `quantize` method"):
        model2.quantize("int8")


def test_saving_a_quantized_model_is_refused(tmp_path):
    model = rk.Sequential([rk.Input((4,)), L.Dense(3)])
    model.quantize("int8")
    with pytest.raises(NotImplementedError, match="does not save quantized models yet"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(NotImplementedError, match="does not save quantized models yet"):
        model.save_weights(tmp_path / "m.weights.h5")
    assert not list(tmp_path.iterdir())


# --- Dense and Embedding against Keras ------------------------------------------------------


def keras_pair(rk_layer, keras_layer, x):
    """Builds both on `x`, copies rnnkit's weights into Keras's, and quantizes both."""
    rk_layer(x)
    keras_layer(x)
    keras_layer.set_weights(rk_layer.get_weights())
    rk_layer.quantize("int8")
    keras_layer.quantize("int8")


def test_dense_int8_matches_keras():
    keras = pytest.importorskip("keras")
    x = data((5, 7, 16), seed=6, scale=2.0)
    ours, theirs = L.Dense(9, activation="tanh"), keras.layers.Dense(9, activation="tanh")
    keras_pair(ours, theirs, x)
    np.testing.assert_array_equal(np.asarray(ours.kernel), np.asarray(theirs._kernel))
    np.testing.assert_array_equal(np.asarray(ours.kernel_scale), np.asarray(theirs.kernel_scale))
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-6, atol=1e-7)
    assert [w.name for w in ours.trainable_weights] == [w.name for w in theirs.trainable_weights] == ["bias"]
    assert sorted(w.name for w in ours.weights) == sorted(w.name for w in theirs.weights)


def test_dense_int8_trains_its_bias_with_the_dequantized_kernel_gradient():
    x = data((6, 4), seed=7)
    layer = L.Dense(3)
    layer(x)
    layer.quantize("int8")
    xv = rk.Variable(x)
    with rk.GradientTape() as tape:
        loss = rk.ops.sum(layer(xv) ** 2)
    dx, db = tape.gradient(loss, [xv, layer.bias])
    out = np.asarray(layer(x))
    kernel = np.asarray(layer.kernel, np.float32) / np.asarray(layer.kernel_scale)
    np.testing.assert_allclose(np.asarray(dx), (2 * out) @ kernel.T, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(db), (2 * out).sum(0), rtol=1e-6)
    model = rk.Sequential([rk.Input((4,)), L.Dense(3)])
    model.quantize("int8")
    model.compile("sgd", "mse")
    bias = np.asarray(model.layers[0].bias).copy()
    kernel = np.asarray(model.layers[0].kernel).copy()
    model.fit(x, np.ones((6, 3), "float32"), verbose=0, epochs=2)
    assert not np.array_equal(np.asarray(model.layers[0].bias), bias)
    np.testing.assert_array_equal(np.asarray(model.layers[0].kernel), kernel)


def test_embedding_int8_matches_keras():
    keras = pytest.importorskip("keras")
    tokens = np.random.default_rng(8).integers(0, 50, (4, 11))
    ours, theirs = L.Embedding(50, 6), keras.layers.Embedding(50, 6)
    keras_pair(ours, theirs, tokens)
    np.testing.assert_array_equal(np.asarray(ours.embeddings), np.asarray(theirs._embeddings))
    np.testing.assert_array_equal(np.asarray(ours.embeddings_scale), np.asarray(theirs.embeddings_scale))
    np.testing.assert_allclose(np.asarray(ours(tokens)), np.asarray(theirs(tokens)), rtol=1e-6, atol=0)


def test_abs_max_quantize_matches_keras():
    keras = pytest.importorskip("keras")
    x = data((5, 8), seed=9)
    x[2] = 0.0
    for axis in (0, -1):
        values, scale = rk.quantizers.abs_max_quantize(x, axis=axis)
        k_values, k_scale = keras.quantizers.abs_max_quantize(x, axis=axis, to_numpy=True)
        np.testing.assert_array_equal(values, np.asarray(k_values))
        np.testing.assert_array_equal(scale, np.asarray(k_scale))
    assert rk.quantizers.int8_products() in ("avx512_vnni", "avx2", "portable")


def test_core_int8_passes_refuse_float64_and_training():
    spec = rk._core.CellSpec("lstm", 3)
    w = [np.zeros((2, 12)), np.zeros((3, 12)), np.zeros(12)]
    x = np.zeros((1, 4, 2))
    with pytest.raises(ValueError, match="float32 inputs and weights for int8 products, received float64"):
        rk._core.rnn_forward(spec, w, x, compute_dtype="int8", inference=True)
    w32, x32 = [a.astype(np.float32) for a in w], x.astype(np.float32)
    with pytest.raises(ValueError, match="inference=True with int8 products"):
        rk._core.rnn_forward(spec, w32, x32, compute_dtype="int8")
    out, _, saved = rk._core.rnn_forward(spec, w32, x32, compute_dtype="int8", inference=True)
    assert saved is None and np.asarray(out).shape == (1, 4, 3)
