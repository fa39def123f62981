"""The compiled core through its bindings: Keras golden values, layouts, errors, threads."""

import threading

import numpy as np
import pytest

from rnnkit import _core

X = np.arange(72, dtype=np.float32).reshape(3, 6, 4)


def constant_weights(spec, unit_forget_bias=True):
    """Keras's golden-value initialisation: kernel 0.01, recurrent 0.02, bias 0.03 constants.

    With LSTM's ``unit_forget_bias`` the forget-gate block of the bias is ones, as Keras sets it.
    """
    width = spec.gates * spec.units
    kernel = np.full((X.shape[-1], width), 0.01, np.float32)
    recurrent = np.full((spec.units, width), 0.02, np.float32)
    bias = np.full(spec.bias_shape, 0.03, np.float32) if spec.use_bias else None
    if spec.kind == "lstm" and spec.use_bias and unit_forget_bias:
        bias[spec.units : 2 * spec.units] = 1.0
    return kernel, recurrent, bias


# Keras's own golden values (its LSTM/GRU tests), reproduced with Keras 3.15:
#   layer = keras.layers.LSTM(3, kernel_initializer=Constant(0.01),
#       recurrent_initializer=Constant(0.02), bias_initializer=Constant(0.03), **options)
#   layer(np.arange(72).reshape(3, 6, 4).astype("float32"))[:, 0]
# Every unit of a row has the same value.
GOLDEN = [
    ("lstm", {}, {}, [0.6288687, 0.86899155, 0.9460773]),
    ("lstm", {}, {"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
    ("lstm", {"unit_forget_bias": False}, {}, [0.57019705, 0.8661914, 0.9459622]),
    ("lstm", {"use_bias": False}, {}, [0.54986924, 0.86226785, 0.9443936]),
    ("gru", {}, {}, [0.5217289, 0.6371659, 0.39384964]),
    ("gru", {}, {"go_backwards": True}, [0.24406259, 0.611516, 0.3928808]),
    ("gru", {"reset_after": False}, {}, [0.51447755, 0.6426879, 0.40208298]),
    ("gru", {"use_bias": False}, {}, [0.49988455, 0.64701194, 0.4103359]),
]


@pytest.mark.parametrize("kind,cell_options,call_options,expected", GOLDEN)
def test_keras_golden_values(kind, cell_options, call_options, expected):
    ufb = cell_options.pop("unit_forget_bias", True)
    spec = _core.CellSpec(kind, 3, **cell_options)
    outputs, states, _ = _core.rnn_forward(spec, constant_weights(spec, ufb), X, **call_options)
    last = outputs[:, -1, :]
    np.testing.assert_allclose(last, np.repeat(np.array(expected)[:, None], 3, axis=1), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(states[0], last)


@pytest.mark.parametrize("kind", ["simple_rnn", "gru", "lstm"])
def test_float64_agrees_with_float32_and_layouts_do_not_matter(kind):
    rng = np.random.default_rng(1)
    spec = _core.CellSpec(kind, 5)
    weights = [
        rng.normal(size=(7, 5 * spec.gates)),
        rng.normal(size=(5, 5 * spec.gates)),
        rng.normal(size=spec.bias_shape),
    ]
    x = rng.normal(size=(4, 9, 7))
    w32 = [w.astype(np.float32) for w in weights]
    out32 = _core.rnn_forward(spec, w32, x.astype(np.float32))[0]
    out64 = _core.rnn_forward(spec, weights, x)[0]
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    np.testing.assert_allclose(out32, out64, atol=2e-5)
    # Fortran order, a strided slice and negative strides read the same values without a copy.
    for variant in (np.asfortranarray(x), np.repeat(x, 2, axis=1)[:, ::2], x[::-1][::-1]):
        np.testing.assert_array_equal(_core.rnn_forward(spec, weights, variant)[0], out64)
    kernel_f = np.asfortranarray(weights[0])
    np.testing.assert_array_equal(_core.rnn_forward(spec, [kernel_f, *weights[1:]], x)[0], out64)


@pytest.mark.parametrize("kind,reset_after", [("simple_rnn", True), ("gru", True), ("gru", False), ("lstm", True)])
def test_backward_returns_keras_shaped_gradients(kind, reset_after):
    spec = _core.CellSpec(kind, 3, reset_after=reset_after)
    weights = constant_weights(spec)
    outputs, states, saved = _core.rnn_forward(spec, weights, X)
    dx, dk, drk, db, dstates = _core.rnn_backward(
        saved, d_outputs=np.ones_like(outputs), d_final_states=[np.ones_like(s) for s in states]
    )
    assert dx.shape == X.shape
    assert [dk.shape, drk.shape, db.shape] == [w.shape for w in weights]
    assert [d.shape for d in dstates] == [s.shape for s in states]
    # With only the last output's gradient, the input gradient is non-zero at every step.
    dx_last = _core.rnn_backward(saved, d_last_output=np.ones_like(outputs[:, -1]))[0]
    assert np.all(np.abs(dx_last).sum(axis=-1) > 0)


@pytest.mark.parametrize("kind", ["simple_rnn", "gru", "lstm"])
def test_an_inference_pass_gives_the_same_numbers_and_keeps_nothing(kind):
    spec = _core.CellSpec(kind, 3)
    weights = constant_weights(spec)
    outputs, states, saved = _core.rnn_forward(spec, weights, X, go_backwards=True)
    outputs_i, states_i, saved_i = _core.rnn_forward(spec, weights, X, go_backwards=True, inference=True)
    assert saved is not None and saved_i is None
    np.testing.assert_array_equal(outputs_i, outputs)
    for s_i, s in zip(states_i, states, strict=True):
        np.testing.assert_array_equal(s_i, s)


def test_bidirectional_concat_is_forward_then_flipped_backward():
    rng = np.random.default_rng(2)
    spec = _core.CellSpec("lstm", 4)
    fw = [rng.normal(size=s).astype(np.float32) for s in [(4, 16), (4, 16), (16,)]]
    bw = [rng.normal(size=s).astype(np.float32) for s in [(4, 16), (4, 16), (16,)]]
    x = X / 72
    out, fw_states, bw_states, saved = _core.bidirectional_forward(spec, fw, spec, bw, x, return_sequences=True)
    y_fw = _core.rnn_forward(spec, fw, x)[0]
    y_bw = _core.rnn_forward(spec, bw, x, go_backwards=True)[0]
    np.testing.assert_array_equal(out, np.concatenate([y_fw, y_bw[:, ::-1]], axis=-1))
    dx, fw_grads, bw_grads = _core.bidirectional_backward(saved, d_outputs=np.ones_like(out))
    assert dx.shape == x.shape and fw_grads[0].shape == (4, 16) and bw_grads[2].shape == (16,)
    pair, *_ = _core.bidirectional_forward(spec, fw, spec, bw, x, merge_mode=None)
    assert isinstance(pair, tuple) and [p.shape for p in pair] == [(3, 4), (3, 4)]


LSTM3 = _core.CellSpec("lstm", 3)
GOOD = constant_weights(LSTM3)


def call(**overrides):
    args = {"spec": LSTM3, "weights": GOOD, "x": X}
    args.update(overrides)
    return _core.rnn_forward(args.pop("spec"), args.pop("weights"), args.pop("x"), **args)


@pytest.mark.parametrize(
    "overrides,error,message",
    [
        ({"x": X[0]}, ValueError, "x: expected a 3-d array (batch, time, features), received shape (6, 4)"),
        ({"x": X.tolist()}, TypeError, "x: expected a numpy array, received list"),
        ({"x": X.astype(np.int64)}, TypeError, "x: expected dtype float32 or float64, received int64"),
        ({"x": X.astype(np.float64)}, TypeError, "kernel: expected dtype float64, received float32"),
        (
            {"weights": (np.zeros((5, 12), np.float32), *GOOD[1:])},
            ValueError,
            "kernel: expected shape (4, 12), received (5, 12)",
        ),
        (
            {"weights": (GOOD[0], GOOD[1][:, :8], GOOD[2])},
            ValueError,
            "recurrent_kernel: expected shape (3, 12), received (3, 8)",
        ),
        ({"weights": (GOOD[0], GOOD[1], GOOD[2][:9])}, ValueError, "bias: expected shape (12,), received (9,)"),
        (
            {"weights": (GOOD[0], GOOD[1], None)},
            ValueError,
            "bias: expected an array since use_bias is true, received None",
        ),
        ({"weights": GOOD[:1]}, ValueError, "weights: expected (kernel, recurrent_kernel, bias), received 1 items"),
        (
            {"initial_states": [np.zeros((3, 3), np.float32)]},
            ValueError,
            "initial_states: expected 2 arrays, received 1",
        ),
        (
            {"initial_states": [np.zeros((2, 3), np.float32)] * 2},
            ValueError,
            "initial_states[0]: expected shape (3, 3), received (2, 3)",
        ),
        ({"mask": np.ones((3, 5), bool)}, ValueError, "mask: expected shape (3, 6), received (3, 5)"),
        ({"mask": np.ones((3, 6), np.int8)}, TypeError, "mask: expected dtype bool, received int8"),
        (
            {"input_dropout": np.ones((1, 3, 4), np.float32)},
            ValueError,
            "input_dropout: expected shape (4, 3, 4), received (1, 3, 4)",
        ),
        (
            {"recurrent_dropout": np.ones((4, 3, 2), np.float32)},
            ValueError,
            "recurrent_dropout: expected shape (4, 3, 3), received (4, 3, 2)",
        ),
    ],
)
def test_bad_input_names_the_argument(overrides, error, message):
    with pytest.raises(error) as info:
        call(**overrides)
    assert str(info.value) == message
    if error is ValueError and "shape" in message:
        assert isinstance(info.value, _core.ShapeError)


@pytest.mark.parametrize(
    "build,error,message",
    [
        (lambda: _core.CellSpec("lstm", 0), ValueError, "units: expected a positive integer, received 0"),
        (lambda: _core.CellSpec("lstm", -3), ValueError, "units: expected a positive integer, received -3"),
        (
            lambda: _core.CellSpec("rnn", 3),
            ValueError,
            "kind: expected one of 'simple_rnn', 'gru', 'lstm', 'indrnn', received 'rnn'",
        ),
        (lambda: _core.CellSpec("gru", 3, activation="tanhh"), ValueError, "received 'tanhh'"),
        (
            lambda: _core.CellSpec("gru", 3, recurrent_activation="nope"),
            ValueError,
            "recurrent_activation: expected one of",
        ),
        (
            lambda: _core.bidirectional_forward(LSTM3, GOOD, LSTM3, GOOD, X, merge_mode="max"),
            ValueError,
            "merge_mode: expected one of 'sum', 'mul', 'ave', 'concat', None, received 'max'",
        ),
        (
            lambda: _core.rnn_backward(
                call()[2], d_outputs=np.ones((3, 6, 3), np.float32), d_last_output=np.ones((3, 3), np.float32)
            ),
            ValueError,
            "d_outputs, d_last_output: expected at most one of them, received both",
        ),
        (
            lambda: _core.rnn_backward(call()[2], d_outputs=np.ones((3, 5, 3), np.float32)),
            ValueError,
            "d_outputs: expected shape (3, 6, 3), received (3, 5, 3)",
        ),
        (
            lambda: _core.rnn_backward(_core.bidirectional_forward(LSTM3, GOOD, LSTM3, GOOD, X)[3]),
            TypeError,
            "saved: expected the result of rnn_forward, received that of bidirectional_forward",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


def test_impossible_sizes_raise_memory_error_before_allocating():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1 << 20, 1 << 20, 4), strides=(0, 0, 0))
    with pytest.raises(MemoryError, match="needs .* GiB, more than this machine's"):
        call(x=huge)


def test_concurrent_calls_match_serial_ones():
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(8, 20, 4)).astype(np.float32) for _ in range(6)]
    serial = [call(x=x)[0] for x in xs]
    results = [None] * len(xs)

    def work(i):
        results[i] = call(x=xs[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


def test_the_gil_is_released_during_compute():
    # While another thread is inside a long forward pass, this thread keeps running Python. If the
    # GIL were held for the call, the counter could only advance before and after it.
    x = np.ones((256, 400, 64), np.float32)
    spec = _core.CellSpec("lstm", 64)
    weights = (np.full((64, 256), 0.01, np.float32), np.full((64, 256), 0.01, np.float32), None)
    spec = _core.CellSpec("lstm", 64, use_bias=False)
    entered = threading.Event()

    def work():
        entered.set()
        _core.rnn_forward(spec, weights, x)

    thread = threading.Thread(target=work)
    thread.start()
    entered.wait()
    ticks = 0
    while thread.is_alive():
        ticks += 1
    thread.join()
    assert ticks > 10_000
