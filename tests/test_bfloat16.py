"""The mixed_bfloat16 policy: recurrent products with bfloat16 operands and float32 sums.

Forward outputs are checked against a float64 NumPy reference that rounds exactly the products'
operands to bfloat16 (and nothing else), each step started from the layer's previous state: the
core agrees with it to float32 rounding (~1e-6), while the same reference without the rounding
is ~1e-3 away, so the test sees the mode's numbers, not float32's (over 480 drawn configurations
the largest error was 2.7e-7). Gradients are compared with float32's within bfloat16's error; the
guide's recipe trains to the same accuracy band (tests/test_models.py).
"""

import os
import warnings

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _core, dtype_policies


def bf16(a):
    """`a` rounded to the nearest bfloat16 (ties to even, subnormals to zero), as float64."""
    a = np.asarray(a, np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    return np.where(np.abs(a) < np.finfo(np.float32).tiny, 0.0, rounded).astype(np.float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference(kind, x, weights, rounding, mask=None, go_backwards=False, states=None):
    """The layer's `(batch, time, units)` outputs in float64, the products' operands passed
    through `rounding` (Keras's default activations; GRU with reset_after).

    With `states`, the layer's own outputs in processing order, each step starts from the
    layer's previous `h` instead of the reference's: an `h` that float32 and float64 round to
    the two sides of a bfloat16 tie then does not carry that one-ulp difference on."""
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in weights)
    x = np.asarray(x, np.float64)
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, steps, _ = x.shape
    u = recurrent.shape[0]
    h, c = np.zeros((batch, u)), np.zeros((batch, u))
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias.ndim == 2 else (bias, 0.0)
    projected = rounding(x) @ rounding(kernel) + input_bias
    outputs = []
    for t in range(steps):
        if states is not None:
            h = np.asarray(states[:, t - 1], np.float64) if t else np.zeros((batch, u))
        z, rec = projected[:, t], rounding(h) @ rounding(recurrent) + recurrent_bias
        if kind == "lstm":
            z = z + rec
            i, f, g, o = (
                sigmoid(z[:, :u]),
                sigmoid(z[:, u : 2 * u]),
                np.tanh(z[:, 2 * u : 3 * u]),
                sigmoid(z[:, 3 * u :]),
            )
            new_c = f * c + i * g
            new_h = o * np.tanh(new_c)
        elif kind == "gru":
            zg, r = sigmoid(z[:, :u] + rec[:, :u]), sigmoid(z[:, u : 2 * u] + rec[:, u : 2 * u])
            cand = np.tanh(z[:, 2 * u :] + r * rec[:, 2 * u :])
            new_h, new_c = zg * h + (1 - zg) * cand, c
        else:
            new_h, new_c = np.tanh(z + rec), c
        keep = np.ones((batch, 1), bool) if mask is None else mask[:, t, None]
        h, c = np.where(keep, new_h, h), np.where(keep, new_c, c)
        outputs.append(h)
    return np.stack(outputs, 1)


LAYERS = {"lstm": rk.layers.LSTM, "gru": rk.layers.GRU, "simple_rnn": rk.layers.SimpleRNN}


def outputs_and_weights(kind, x, mask=None, **kwargs):
    layer = LAYERS[kind](24, return_sequences=True, dtype="mixed_bfloat16", **kwargs)
    y = np.asarray(layer(x, mask=mask))
    return y, layer.get_weights()


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("batch", [9, 1])  # AMX tiles; a batch of one: AVX512-BF16 dot products
def test_outputs_are_those_of_bfloat16_operands(kind, go_backwards, masked, batch):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(batch, 17, 37)).astype(np.float32)  # no dimension a whole number of tiles
    mask = rng.random((batch, 17)) > 0.2 if masked else None
    y, weights = outputs_and_weights(kind, x, mask, go_backwards=go_backwards)
    want = reference(kind, x, weights, bf16, mask, go_backwards, states=y)
    full = reference(kind, x, weights, np.asarray, mask, go_backwards, states=y)
    if masked:  # the steps kept (masked ones repeat the previous output)
        keep = (mask[:, ::-1] if go_backwards else mask)[:, :, None]
        y, want, full = (np.where(keep, a, 0.0) for a in (y, want, full))
    assert np.abs(y - want).max() < 3e-5
    assert np.abs(y - full).max() > 1e-4  # the mode is in effect: float32's numbers are further


def test_bidirectional_runs_both_directions_in_bfloat16():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 12, 20)).astype(np.float32)
    layer = rk.layers.Bidirectional(rk.layers.LSTM(16, return_sequences=True, dtype="mixed_bfloat16"))
    y = np.asarray(layer(x))
    fw, bw = layer.forward_layer.get_weights(), layer.backward_layer.get_weights()
    forward_states, backward_states = y[..., :16], y[:, ::-1, 16:]  # each in its processing order
    want = np.concatenate(
        [
            reference("lstm", x, fw, bf16, states=forward_states),
            reference("lstm", x, bw, bf16, go_backwards=True, states=backward_states)[:, ::-1],
        ],
        -1,
    )
    assert np.abs(y - want).max() < 3e-5


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradients_are_float32_ones_within_bfloat16_error(kind):
    rng = np.random.default_rng(11)
    x = rk.ops.convert_to_tensor(rng.normal(size=(8, 15, 33)).astype(np.float32))
    grads = {}
    for policy in ("float32", "mixed_bfloat16"):
        rk.utils.set_random_seed(5)
        layer = LAYERS[kind](40, return_sequences=True, dtype=policy)
        layer.build(x.shape)
        with rk.GradientTape() as tape:
            tape.watch(x)
            loss = rk.ops.sum(layer(x) ** 2)
        grads[policy] = [np.asarray(g) for g in tape.gradient(loss, [x, *layer.trainable_weights])]
    for full, mixed in zip(grads["float32"], grads["mixed_bfloat16"]):
        scale = np.abs(full).max()
        assert 0 < np.abs(mixed - full).max() < 3e-2 * scale


def test_policies_in_keras_spelling():
    policy = rk.DTypePolicy("mixed_bfloat16")
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == ("mixed_bfloat16", "bfloat16", "float32")
    assert rk.mixed_precision.Policy is rk.DTypePolicy
    layer = rk.layers.LSTM(8, dtype="mixed_bfloat16")
    assert (layer.dtype, layer.compute_dtype, layer.cell.compute_dtype) == ("float32", "bfloat16", "bfloat16")
    assert layer.get_config()["dtype"] == "mixed_bfloat16"
    assert rk.layers.LSTM.from_config(layer.get_config()).compute_dtype == "bfloat16"
    assert rk.layers.Dense(3, dtype="float64").dtype_policy == rk.DTypePolicy("float64")
    try:
        rk.config.set_dtype_policy("mixed_bfloat16")
        assert rk.config.dtype_policy().name == "mixed_bfloat16"
        assert rk.layers.GRU(4).compute_dtype == "bfloat16"
        assert rk.layers.GRU(4, dtype="float32").compute_dtype == "float32"
    finally:
        rk.config.set_dtype_policy(None)
    assert rk.layers.GRU(4).compute_dtype == "float32"


@pytest.mark.parametrize("with_ml_dtypes", [False, True])
def test_bad_policies_and_compute_dtypes_are_refused_by_name(with_ml_dtypes):
    if with_ml_dtypes:  # registers "bfloat16" with NumPy (JAX imports it)
        pytest.importorskip("ml_dtypes")
    with pytest.raises(ValueError, match="dtype: expected a NumPy dtype's name, 'mixed_bfloat16'.*received 'bfloat16'"):
        rk.layers.LSTM(4, dtype="bfloat16")
    with pytest.raises(ValueError, match="received 'mixed_float16'"):
        rk.config.set_dtype_policy("mixed_float16")
    with pytest.raises(TypeError, match="dtype: expected a policy name.*received 3.5"):
        rk.layers.LSTM(4, dtype=3.5)
    spec = _core.CellSpec("lstm", 3)
    w = (np.zeros((2, 12)), np.zeros((3, 12)), np.zeros(12))
    x = np.zeros((1, 4, 2))
    with pytest.raises(
        ValueError, match="compute_dtype: expected float32 inputs and weights for bfloat16 products, received float64"
    ):
        _core.rnn_forward(spec, w, x, compute_dtype="bfloat16")
    with pytest.raises(ValueError, match="compute_dtype: expected None, 'bfloat16' or 'int8', received 'float16'"):
        _core.rnn_forward(spec, w, x.astype(np.float32), compute_dtype="float16")


def test_the_mode_says_whether_it_is_emulated():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    expected = "amx" if " amx_bf16" in flags and " amx_tile" in flags else "emulated"
    assert rk.config.bfloat16_products() == expected
    dtype_policies._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rk.layers.LSTM(4, dtype="mixed_bfloat16")
        rk.layers.GRU(4, dtype="mixed_bfloat16")
    said = [str(w.message) for w in caught if "mixed_bfloat16" in str(w.message)]
    if expected == "amx":
        assert said == []
    else:
        assert len(said) == 1 and "emulated" in said[0]


def test_the_policy_is_saved_and_read_by_keras(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    model = rk.Sequential([rk.Input((5, 3)), rk.layers.LSTM(4, dtype="mixed_bfloat16"), rk.layers.Dense(2)])
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    again = rk.models.load_model(path)
    assert again.layers[0].compute_dtype == "bfloat16"
    assert again.layers[1].compute_dtype == "float32"
    theirs = keras.models.load_model(path)
    assert theirs.layers[0].dtype_policy.name == "mixed_bfloat16"
    x = np.random.default_rng(0).random((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))
    # Keras computes the whole layer in bfloat16, rnnkit only the products: close, not equal.
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(theirs(x), dtype=np.float32), atol=2e-2)
