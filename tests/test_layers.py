"""The Keras-style layer API against Keras 3's semantics (``shared/KERAS_REFERENCE.md``).

Lazy building, weight layouts, ``get_weights``/``set_weights``, config round trips, argument
validation, ``return_sequences``/``return_state``, masks, ``go_backwards``, statefulness,
dropout, the fused path against the Python stepping path (outputs and gradients), and finite
differences. The last part cross-checks whole layers against Keras itself (JAX backend) with the
weights copied over.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before anything imports keras (the cross-checks below)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import layers as L  # noqa: E402

# Keras's own variables trip this numpy 2 warning when Keras reads them; it is not about rnnkit.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

RNG = np.random.default_rng(1234)


def randn(*shape, dtype=np.float32, rng=RNG):
    return rng.normal(size=shape).astype(dtype)


def a(x):
    """A Tensor (or array) as a numpy array."""
    return np.asarray(x)


def twin(layer, x, **call):
    """A fresh layer from `layer`'s config, built on `x`, with `layer`'s weights."""
    other = type(layer).from_config(layer.get_config())
    other(x, **call)
    other.set_weights(layer.get_weights())
    return other


# --- lazy build and weight layouts ----------------------------------------------------------------


def test_build_is_lazy_until_the_first_call():
    layer = L.LSTM(4)
    assert not layer.built and layer.weights == [] and layer.get_weights() == []
    with pytest.raises(ValueError, match="isn't built"):
        layer.count_params()
    out = layer(np.zeros((2, 5, 3), np.float32))
    assert layer.built and out.shape == (2, 4)
    assert [w.shape for w in layer.weights] == [(3, 16), (4, 16), (16,)]
    # A later call with another feature size does not rebuild the weights.
    kernel = layer.weights[0]
    layer(np.zeros((1, 2, 3), np.float32))
    assert layer.weights[0] is kernel

    dense = L.Dense(2)
    assert not dense.built
    dense(np.zeros((4, 7), np.float32))
    assert dense.built and dense.kernel.shape == (7, 2)


def test_explicit_build_unroll_and_initial_state_dtype():
    layer = L.SimpleRNN(3)
    layer.build((None, 5, 4))
    assert layer.built and [w.shape for w in layer.weights] == [(4, 3), (3, 3), (3,)]
    bi = L.Bidirectional(L.GRU(3))
    bi.build((None, 5, 4))
    assert len(bi.weights) == 6
    with pytest.raises(ValueError, match="unroll"):
        L.LSTM(3, unroll=True)(rk.Input((None, 4)))
    unrolled = L.LSTM(3, unroll=True)
    x = randn(2, 5, 4)
    unrolled(x)
    rolled = twin(unrolled, x)
    rolled.unroll = False
    np.testing.assert_array_equal(a(unrolled(x)), a(rolled(x)))
    # initial_state is cast to the layer's dtype.
    out, h, c = L.LSTM(3, return_state=True)(x, initial_state=[np.ones((2, 3)), np.ones((2, 3))])
    assert out.dtype == h.dtype == c.dtype == np.float32


WEIGHT_LAYOUTS = [
    (lambda: L.SimpleRNN(4), ["kernel", "recurrent_kernel", "bias"], [(3, 4), (4, 4), (4,)]),
    (lambda: L.SimpleRNN(4, use_bias=False), ["kernel", "recurrent_kernel"], [(3, 4), (4, 4)]),
    (lambda: L.GRU(4), ["kernel", "recurrent_kernel", "bias"], [(3, 12), (4, 12), (2, 12)]),
    (lambda: L.GRU(4, reset_after=False), ["kernel", "recurrent_kernel", "bias"], [(3, 12), (4, 12), (12,)]),
    (lambda: L.LSTM(4), ["kernel", "recurrent_kernel", "bias"], [(3, 16), (4, 16), (16,)]),
    (lambda: L.RNN(L.LSTMCell(4)), ["kernel", "recurrent_kernel", "bias"], [(3, 16), (4, 16), (16,)]),
    (
        lambda: L.Bidirectional(L.LSTM(4)),
        ["kernel", "recurrent_kernel", "bias"] * 2,
        [(3, 16), (4, 16), (16,)] * 2,
    ),
    (
        lambda: L.Bidirectional(L.GRU(2)),
        ["kernel", "recurrent_kernel", "bias"] * 2,
        [(3, 6), (2, 6), (2, 6)] * 2,
    ),
    (
        lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(2), L.SimpleRNNCell(5)])),
        ["kernel", "recurrent_kernel", "bias"] * 3,
        [(3, 16), (4, 16), (16,), (4, 6), (2, 6), (2, 6), (2, 5), (5, 5), (5,)],
    ),
    (
        lambda: L.RNN([L.GRUCell(2), L.LSTMCell(4)]),
        ["kernel", "recurrent_kernel", "bias"] * 2,
        [(3, 6), (2, 6), (2, 6), (2, 16), (4, 16), (16,)],
    ),
    (lambda: L.TimeDistributed(L.Dense(5)), ["kernel", "bias"], [(3, 5), (5,)]),
]


@pytest.mark.parametrize("make,names,shapes", WEIGHT_LAYOUTS)
def test_weights_order_and_shapes(make, names, shapes):
    layer = make()
    layer(np.zeros((2, 6, 3), np.float32))
    assert [w.name for w in layer.weights] == names
    assert [tuple(w.shape) for w in layer.weights] == shapes
    assert [v.shape for v in layer.get_weights()] == shapes
    assert len(layer.trainable_weights) == len(shapes) and layer.non_trainable_weights == []
    assert layer.count_params() == sum(int(np.prod(s)) for s in shapes)


def test_bidirectional_weights_are_forward_then_backward():
    layer = L.Bidirectional(L.SimpleRNN(3))
    layer(np.zeros((1, 2, 4), np.float32))
    assert len(layer.trainable_weights) == 6
    assert all(w is v for w, v in zip(layer.weights[:3], layer.forward_layer.weights))
    assert all(w is v for w, v in zip(layer.weights[3:], layer.backward_layer.weights))
    assert layer.forward_layer.name.startswith("forward_") and layer.backward_layer.name.startswith("backward_")


def test_embedding_and_dense_weights():
    emb = L.Embedding(10, 3)
    out = emb(np.array([[1, 2, 9]]))
    assert [w.shape for w in emb.weights] == [(10, 3)] and emb.weights[0].name == "embeddings"
    np.testing.assert_array_equal(a(out)[0], a(emb.weights[0])[[1, 2, 9]])
    dense = L.Dense(5)
    dense(np.zeros((2, 3), np.float32))
    assert [w.name for w in dense.weights] == ["kernel", "bias"]
    assert [w.shape for w in dense.weights] == [(3, 5), (5,)]
    x = randn(4, 3)
    k, b = dense.get_weights()
    np.testing.assert_allclose(a(dense(x)), x @ k + b, rtol=1e-6)


def test_lstm_unit_forget_bias_initialises_the_forget_block_to_ones():
    units = 5
    layer = L.LSTM(units)
    layer(np.zeros((1, 2, 3), np.float32))
    bias = layer.get_weights()[2]
    expected = np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)])
    np.testing.assert_array_equal(bias, expected)

    # The i, c and o blocks keep `bias_initializer` (Keras's code, not its docstring).
    layer = L.LSTM(units, bias_initializer=rk.initializers.Constant(0.5))
    layer(np.zeros((1, 2, 3), np.float32))
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, np.concatenate([np.full(units, 0.5), np.ones(units), np.full(2 * units, 0.5)]))

    layer = L.LSTM(units, unit_forget_bias=False)
    layer(np.zeros((1, 2, 3), np.float32))
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(4 * units))


def test_gru_reset_after_bias_shape():
    for reset_after, shape in ((True, (2, 9)), (False, (9,))):
        layer = L.GRU(3, reset_after=reset_after)
        assert layer.reset_after is reset_after
        layer(np.zeros((1, 2, 4), np.float32))
        assert layer.cell.bias.shape == shape
    assert L.GRU(3).reset_after is True and L.GRUCell(3).reset_after is True


# --- get_weights / set_weights --------------------------------------------------------------------


def test_set_weights_round_trip_and_exact_errors():
    layer = L.LSTM(4, name="enc")
    layer(np.zeros((1, 2, 3), np.float32))
    new = [randn(3, 16), randn(4, 16), randn(16)]
    layer.set_weights(new)
    for got, want in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    # get_weights returns copies: writing to them does not touch the layer.
    got = layer.get_weights()
    got[0][...] = 0
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])

    with pytest.raises(ValueError) as info:
        layer.set_weights(new[:2])
    assert str(info.value) == (
        "You called `set_weights(weights)` on layer 'enc' with a weight list of length 2, but the layer "
        "was expecting 3 weights."
    )
    with pytest.raises(ValueError) as info:
        layer.set_weights([new[0], randn(4, 12), new[2]])
    assert str(info.value) == "Layer enc weight shape (4, 16) is not compatible with provided weight shape (4, 12)."
    # A failed set_weights leaves the weights untouched.
    np.testing.assert_array_equal(layer.get_weights()[1], new[1])


# --- get_config / from_config ---------------------------------------------------------------------


CONFIG_CASES = [
    ("simple_rnn", lambda: L.SimpleRNN(4, activation="relu", return_sequences=True), {}),
    ("gru", lambda: L.GRU(4, go_backwards=True, recurrent_activation="hard_sigmoid"), {}),
    ("gru_reset_before", lambda: L.GRU(4, reset_after=False, use_bias=True, return_sequences=True), {}),
    ("lstm", lambda: L.LSTM(4, return_state=True, unit_forget_bias=False), {}),
    ("lstm_masked", lambda: L.LSTM(4, return_sequences=True, zero_output_for_mask=True), {"mask": True}),
    ("bidirectional", lambda: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum"), {}),
    (
        "bidirectional_custom_backward",
        lambda: L.Bidirectional(
            L.LSTM(3), backward_layer=L.GRU(3, go_backwards=True, activation="relu"), merge_mode="concat"
        ),
        {"mask": True},
    ),
    ("bidirectional_none", lambda: L.Bidirectional(L.SimpleRNN(2, return_state=True), merge_mode=None), {}),
    ("rnn_cell_list", lambda: L.RNN([L.LSTMCell(4), L.GRUCell(3, reset_after=False)], return_sequences=True), {}),
    ("rnn_stacked", lambda: L.RNN(L.StackedRNNCells([L.SimpleRNNCell(3), L.LSTMCell(2)]), return_state=True), {}),
    ("rnn_cell", lambda: L.RNN(L.GRUCell(3), go_backwards=True), {}),
    ("time_distributed", lambda: L.TimeDistributed(L.Dense(3, activation="tanh")), {}),
    ("dense", lambda: L.Dense(3, activation="sigmoid", use_bias=False), {}),
    ("masking", lambda: L.Masking(mask_value=0.25), {}),
]


@pytest.mark.parametrize("label,make,options", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_round_trip_gives_identical_outputs(label, make, options):
    layer = make()
    x = randn(3, 5, 4)
    x[1, 3:] = 0.25
    call = {}
    if options.get("mask"):
        call["mask"] = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0]], bool)
    expected = layer(x, **call)
    config = layer.get_config()
    clone = twin(layer, x, **call)
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    for want, got in zip(rk.tree.flatten(expected), rk.tree.flatten(clone(x, **call))):
        np.testing.assert_array_equal(a(got), a(want))


def test_embedding_config_round_trip():
    layer = L.Embedding(12, 3, mask_zero=True)
    x = np.array([[0, 4, 11], [3, 0, 0]])
    out = layer(x)
    clone = twin(layer, x)
    assert clone.get_config() == layer.get_config() and clone.mask_zero
    got = clone(x)
    np.testing.assert_array_equal(a(got), a(out))
    np.testing.assert_array_equal(a(got._keras_mask), x != 0)


def test_bidirectional_config_keeps_the_custom_backward_layer():
    layer = L.Bidirectional(L.LSTM(3), backward_layer=L.GRU(2, go_backwards=True))
    clone = L.Bidirectional.from_config(layer.get_config())
    assert type(clone.backward_layer) is L.GRU and clone.backward_layer.units == 2
    assert clone.backward_layer.go_backwards and not clone.forward_layer.go_backwards
    out = clone(randn(2, 4, 5))
    assert out.shape == (2, 5)


# --- invalid arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.SimpleRNN(0),
        lambda: L.GRU(-1),
        lambda: L.LSTM(0),
        lambda: L.LSTMCell(-3),
        lambda: L.GRUCell(0),
        lambda: L.SimpleRNNCell(0),
        lambda: L.Dense(0),
        lambda: L.Embedding(0, 3),
        lambda: L.Embedding(3, 0),
    ],
)
def test_non_positive_sizes_raise(make):
    with pytest.raises(ValueError, match="positive"):
        make()


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="nope"):
        L.LSTM(3, activation="nope")
    with pytest.raises(ValueError, match="nope"):
        L.GRU(3, recurrent_activation="nope")
    with pytest.raises(ValueError, match="merge mode"):
        L.Bidirectional(L.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="Layer"):
        L.Bidirectional(L.LSTMCell(3).call)
    with pytest.raises(ValueError, match="Layer"):
        L.Bidirectional("lstm")
    with pytest.raises(ValueError, match="go_backwards"):
        L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(3))
    with pytest.raises(ValueError, match="return_sequences"):
        L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(3, go_backwards=True, return_sequences=True))

    class NoStateSize:
        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(ValueError, match="state_size"):
        L.RNN(NoStateSize())
    with pytest.raises(ValueError, match="state_size"):
        L.RNN(L.Dense(3))
    with pytest.raises(
        ValueError, match=r"Unrecognized keyword arguments passed to LSTMCell: \{'not_an_argument': 1\}"
    ):
        L.LSTM(3, not_an_argument=1)
    with pytest.raises(
        ValueError, match=r"Unrecognized keyword arguments passed to SimpleRNNCell: \{'recurrent_activation'"
    ):
        L.SimpleRNN(3, recurrent_activation="relu")  # it has no gates


def test_rnn_rejects_non_sequence_inputs():
    with pytest.raises(ValueError, match="ndim=3"):
        L.LSTM(3)(np.zeros((2, 4), np.float32))


# --- return_sequences / return_state --------------------------------------------------------------


def test_lstm_returns_output_h_c():
    x = randn(2, 6, 3)
    layer = L.LSTM(4, return_state=True)
    out, h, c = layer(x)
    assert out.shape == h.shape == c.shape == (2, 4)
    np.testing.assert_array_equal(a(out), a(h))
    assert not np.allclose(a(h), a(c))
    seq_layer = L.LSTM(4, return_sequences=True, return_state=True)
    seq_layer(x)
    seq_layer.set_weights(layer.get_weights())
    seq, h2, c2 = seq_layer(x)
    assert seq.shape == (2, 6, 4)
    np.testing.assert_array_equal(a(seq)[:, -1], a(h))
    np.testing.assert_array_equal(a(c2), a(c))


@pytest.mark.parametrize("cls", [L.GRU, L.SimpleRNN])
def test_single_state_layers_return_output_and_h(cls):
    result = cls(3, return_state=True)(randn(2, 4, 5))
    assert isinstance(result, (list, tuple)) and len(result) == 2
    np.testing.assert_array_equal(a(result[0]), a(result[1]))


def test_bidirectional_return_state_order():
    x = randn(2, 5, 3)
    layer = L.Bidirectional(L.LSTM(4, return_state=True))
    out, fw_h, fw_c, bw_h, bw_c = layer(x)
    assert out.shape == (2, 8) and all(s.shape == (2, 4) for s in (fw_h, fw_c, bw_h, bw_c))
    np.testing.assert_array_equal(a(out), np.concatenate([a(fw_h), a(bw_h)], axis=-1))
    # The halves on their own give the same states.
    f_out, f_h, f_c = layer.forward_layer(x)
    b_out, b_h, b_c = layer.backward_layer(x)
    np.testing.assert_array_equal(a(f_c), a(fw_c))
    np.testing.assert_array_equal(a(b_c), a(bw_c))
    np.testing.assert_array_equal(a(b_h), a(bw_h))
    # The backward half is the forward layer on the reversed input, with its own weights.
    fw_only = twin(layer.forward_layer, x)
    fw_only.set_weights(layer.backward_layer.get_weights())
    _, h_rev, _ = fw_only(x[:, ::-1])
    np.testing.assert_allclose(a(h_rev), a(bw_h), atol=1e-6)


def test_bidirectional_merge_mode_none_spreads_outputs_and_states():
    x = randn(2, 5, 3)
    layer = L.Bidirectional(L.GRU(4, return_sequences=True, return_state=True), merge_mode=None)
    result = layer(x)
    assert len(result) == 4
    fw_seq, bw_seq, fw_h, bw_h = result
    assert fw_seq.shape == bw_seq.shape == (2, 5, 4)
    # Sequences in input time order: the forward's last step and the backward's first are finals.
    np.testing.assert_array_equal(a(fw_seq)[:, -1], a(fw_h))
    np.testing.assert_array_equal(a(bw_seq)[:, 0], a(bw_h))
    lstm = L.Bidirectional(L.LSTM(2, return_state=True), merge_mode=None)
    assert len(lstm(x)) == 6


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes(mode):
    x = randn(3, 4, 2)
    layer = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode=mode)
    out = layer(x)
    fw = a(layer.forward_layer(x))
    bw = a(layer.backward_layer(x))[:, ::-1]
    expected = {
        "concat": lambda: np.concatenate([fw, bw], -1),
        "sum": lambda: fw + bw,
        "mul": lambda: fw * bw,
        "ave": lambda: (fw + bw) / 2,
        None: lambda: [fw, bw],
    }[mode]()
    for got, want in zip(rk.tree.flatten(out), rk.tree.flatten(expected)):
        np.testing.assert_allclose(a(got), want, rtol=1e-6, atol=1e-7)


def test_bidirectional_initial_state_is_split_between_the_halves():
    x = randn(2, 4, 3)
    states = [randn(2, 5) for _ in range(4)]
    layer = L.Bidirectional(L.LSTM(5, return_state=True))
    _, fw_h, fw_c, bw_h, bw_c = layer(x, initial_state=states)
    _, h, c = layer.forward_layer(x, initial_state=states[:2])
    np.testing.assert_array_equal(a(h), a(fw_h))
    _, h, c = layer.backward_layer(x, initial_state=states[2:])
    np.testing.assert_array_equal(a(c), a(bw_c))


# --- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["right", "left"])
def test_padded_embedding_lstm_stack_equals_the_unpadded_sequence(padding):
    rk.utils.set_random_seed(3)
    emb = L.Embedding(30, 6, mask_zero=True)
    first = L.LSTM(5, return_sequences=True)
    second = L.LSTM(4)
    tokens = [[4, 17, 2, 9, 11], [8, 3]]
    alone = [a(second(first(emb(np.array([t]))))) for t in tokens]
    width = 7
    rows = [t + [0] * (width - len(t)) if padding == "right" else [0] * (width - len(t)) + t for t in tokens]
    batch = np.array(rows)
    embedded = emb(batch)
    np.testing.assert_array_equal(a(embedded._keras_mask), batch != 0)
    hidden = first(embedded)
    # An RNN with return_sequences passes the mask on; without, it does not.
    np.testing.assert_array_equal(a(hidden._keras_mask), batch != 0)
    out = second(hidden)
    assert out._keras_mask is None
    for row, want in enumerate(alone):
        np.testing.assert_allclose(a(out)[row], want[0], rtol=1e-5, atol=1e-6)


def test_masked_steps_keep_state_and_repeat_the_output():
    x = randn(2, 6, 3)
    mask = np.array([[1, 0, 1, 1, 0, 0], [0, 0, 1, 0, 1, 1]], bool)
    layer = L.GRU(4, return_sequences=True, return_state=True)
    seq, h = layer(x, mask=mask)
    seq = a(seq)
    for b in range(2):
        kept = x[b : b + 1, mask[b]]
        alone_seq, alone_h = layer(kept)
        np.testing.assert_allclose(a(alone_h)[0], a(h)[b], atol=1e-6)
        previous = np.zeros(4, np.float32)
        k = 0
        for t in range(6):
            if mask[b, t]:
                previous = a(alone_seq)[0, k]
                k += 1
            np.testing.assert_allclose(seq[b, t], previous, atol=1e-6)


def test_zero_output_for_mask():
    x = randn(2, 5, 3)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    carried = L.LSTM(3, return_sequences=True)
    carried(x)
    zeroed = L.LSTM(3, return_sequences=True, zero_output_for_mask=True)
    zeroed(x)
    zeroed.set_weights(carried.get_weights())
    c, z = a(carried(x, mask=mask)), a(zeroed(x, mask=mask))
    np.testing.assert_array_equal(z[~mask], 0)
    np.testing.assert_array_equal(z[mask], c[mask])
    np.testing.assert_array_equal(c[0, 3], c[0, 2])
    # Keras applies it to the last output too: a right-padded row ends in zeros.
    last = L.LSTM(3, zero_output_for_mask=True)
    last(x)
    last.set_weights(carried.get_weights())
    out = a(last(x, mask=mask))
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(out[1], c[1, -1])


def test_masking_layer():
    x = randn(2, 4, 3)
    x[0, 1] = 0.0
    x[1, 3] = 0.0
    x[1, 0, 0] = 0.0  # one zero feature is not padding
    layer = L.Masking()
    out = layer(x)
    expected_mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(a(out._keras_mask), expected_mask)
    np.testing.assert_array_equal(a(out), x)

    y = randn(2, 3, 2)
    y[1, 2] = -1.0
    out = L.Masking(mask_value=-1.0)(y)
    np.testing.assert_array_equal(a(out._keras_mask), [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(a(out)[1, 2], 0.0)  # masked steps are zeroed
    np.testing.assert_array_equal(a(out)[0], y[0])

    # The mask reaches an RNN: its result equals passing the mask by hand.
    rnn = L.SimpleRNN(3)
    np.testing.assert_array_equal(a(rnn(out)), a(rnn(a(out), mask=a(out._keras_mask))))
    assert not np.allclose(a(rnn(out)), a(rnn(a(out))))


def test_mask_propagation_through_layers():
    x = randn(2, 5, 3)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    masked = L.Masking()(np.where(mask[..., None], x, 0))
    seq = L.SimpleRNN(2, return_sequences=True)(masked)
    np.testing.assert_array_equal(a(seq._keras_mask), mask)
    assert L.SimpleRNN(2)(masked)._keras_mask is None
    out, h, c = L.LSTM(2, return_sequences=True, return_state=True)(masked)
    np.testing.assert_array_equal(a(out._keras_mask), mask)
    assert h._keras_mask is None and c._keras_mask is None
    bi = L.Bidirectional(L.GRU(2, return_sequences=True))(masked)
    np.testing.assert_array_equal(a(bi._keras_mask), mask)
    assert L.Bidirectional(L.GRU(2))(masked)._keras_mask is None
    td = L.TimeDistributed(L.Dense(2))(masked)
    np.testing.assert_array_equal(a(td._keras_mask), mask)
    # go_backwards does not reverse the mask it passes on (as Keras's compute_mask).
    back = L.SimpleRNN(2, return_sequences=True, go_backwards=True)(masked)
    np.testing.assert_array_equal(a(back._keras_mask), mask)


def test_go_backwards_returns_processing_order():
    x = randn(2, 5, 3)
    forward = L.SimpleRNN(4, return_sequences=True)
    forward(x)
    backward = L.SimpleRNN(4, return_sequences=True, go_backwards=True)
    backward(x)
    backward.set_weights(forward.get_weights())
    np.testing.assert_allclose(a(backward(x)), a(forward(x[:, ::-1])), atol=1e-6)
    # With a mask, the mask is reversed with the input.
    mask = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 0, 0]], bool)
    np.testing.assert_allclose(a(backward(x, mask=mask)), a(forward(x[:, ::-1], mask=mask[:, ::-1])), atol=1e-6)


# --- stateful -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [L.LSTM, L.GRU, L.SimpleRNN])
def test_stateful_equals_one_call_on_the_concatenation(cls):
    x = randn(3, 9, 2)
    stateful = cls(4, stateful=True, return_sequences=True)
    parts = [stateful(x[:, :4]), stateful(x[:, 4:7]), stateful(x[:, 7:])]
    whole = cls(4, return_sequences=True)
    whole(x)
    whole.set_weights(stateful.get_weights())
    np.testing.assert_allclose(np.concatenate([a(p) for p in parts], axis=1), a(whole(x)), atol=1e-5)
    assert all(s.shape == (3, 4) for s in stateful.states)
    assert len(stateful.states) == (2 if cls is L.LSTM else 1)
    np.testing.assert_allclose(a(stateful.states[0]), a(parts[-1])[:, -1], atol=1e-6)
    # States are not weights.
    assert len(stateful.weights) == 3

    stateful.reset_state()
    for s in stateful.states:
        np.testing.assert_array_equal(a(s), 0)
    np.testing.assert_allclose(a(stateful(x[:, :4])), a(parts[0]), atol=1e-6)


def test_reset_states_with_values_and_states_as_initial_state():
    x = randn(2, 5, 3)
    layer = L.LSTM(4, stateful=True, return_state=True)
    layer(x)
    values = [randn(2, 4), randn(2, 4)]
    layer.reset_states(values)
    for s, v in zip(layer.states, values):
        np.testing.assert_array_equal(a(s), v)
    plain = L.LSTM(4, return_state=True)
    plain(x)
    plain.set_weights(layer.get_weights())
    out, h, c = layer(x)
    want, h2, c2 = plain(x, initial_state=values)
    np.testing.assert_allclose(a(out), a(want), atol=1e-6)
    np.testing.assert_allclose(a(c), a(c2), atol=1e-6)
    # `layer.states` feeds another layer's initial_state.
    carried = layer.states
    np.testing.assert_allclose(a(layer(x)[0]), a(plain(x, initial_state=carried)[0]), atol=1e-6)

    layer.reset_states()
    for s in layer.states:
        np.testing.assert_array_equal(a(s), 0)
    with pytest.raises(ValueError):
        layer.reset_states([randn(3, 4), randn(3, 4)])


def test_stateful_batch_size_change_raises_naming_both_sizes():
    layer = L.GRU(3, stateful=True)
    layer(randn(4, 2, 5))
    with pytest.raises(ValueError, match=r"(?s)\b4\b.*\b3\b"):
        layer(randn(3, 2, 5))


def test_stateful_layer_in_a_model_needs_a_static_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        L.LSTM(3, stateful=True)(rk.Input((None, 4)))
    out = L.LSTM(3, stateful=True)(rk.Input((None, 4), batch_size=5))
    assert out.shape == (5, 3)


def test_non_stateful_layer_has_no_states_to_reset():
    layer = L.LSTM(3)
    layer(randn(2, 3, 4))
    assert layer.states is None
    with pytest.raises(AttributeError):
        layer.reset_state()
    with pytest.raises(AttributeError):
        L.Bidirectional(L.LSTM(3)).reset_states()


def test_stateful_bidirectional_states():
    x = randn(2, 6, 3)
    layer = L.Bidirectional(L.LSTM(4, stateful=True))
    layer(x)
    states = layer.states
    assert len(states) == 4 and all(s.shape == (2, 4) for s in states)
    layer.reset_states()
    assert all(np.all(a(s) == 0) for s in layer.states)


# --- dropout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.GRU, L.LSTM])
def test_dropout_is_inactive_unless_training(cls):
    x = randn(3, 6, 4)
    drop = cls(5, dropout=0.4, recurrent_dropout=0.3, return_sequences=True)
    drop(x)
    plain = cls(5, return_sequences=True)
    plain(x)
    plain.set_weights(drop.get_weights())
    reference = a(plain(x))
    np.testing.assert_array_equal(a(drop(x)), reference)
    np.testing.assert_array_equal(a(drop(x, training=False)), reference)
    trained = a(drop(x, training=True))
    assert not np.allclose(trained, reference, atol=1e-3)


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.GRU, L.LSTM])
def test_dropout_is_reproducible_with_a_seed(cls):
    x = randn(3, 6, 4)
    first = cls(5, dropout=0.5, recurrent_dropout=0.5, seed=11, return_sequences=True)
    first(x)
    second = cls.from_config(first.get_config())
    second(x)
    second.set_weights(first.get_weights())
    y1, y2 = a(first(x, training=True)), a(second(x, training=True))
    np.testing.assert_array_equal(y1, y2)
    # The generator moves on: the next call draws other masks.
    assert not np.array_equal(a(first(x, training=True)), y1)


def _linear_simple_rnn(units, **kwargs):
    """SimpleRNN with identity kernels, no bias and a linear activation: h_t = x_t*m + h_{t-1}*r."""
    layer = L.SimpleRNN(units, activation=None, use_bias=False, return_sequences=True, **kwargs)
    layer(np.zeros((1, 1, units), np.float32))
    layer.set_weights([np.eye(units, dtype=np.float32), np.eye(units, dtype=np.float32)])
    return layer


def test_input_dropout_mask_is_fixed_across_time_and_scaled():
    units, rate = 6, 0.5
    layer = _linear_simple_rnn(units, dropout=rate, seed=5)
    layer.set_weights([np.eye(units, dtype=np.float32), np.zeros((units, units), np.float32)])
    x = np.abs(randn(8, 7, units)) + 0.5
    y = a(layer(x, training=True))
    mask = y / x  # h_t = x_t * m
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), atol=1e-6)
    kept = np.isclose(mask, 1 / (1 - rate), rtol=1e-5)
    assert np.all(kept | (mask == 0)) and kept.any() and not kept.all()
    # One mask per sample (and feature), not one for the whole batch.
    assert len({tuple(row) for row in mask[:, 0]}) > 1


def test_recurrent_dropout_mask_is_fixed_across_time():
    units, rate = 5, 0.4
    layer = _linear_simple_rnn(units, recurrent_dropout=rate, seed=9)
    x = np.abs(randn(6, 8, units)) + 0.5
    y = a(layer(x, training=True))
    # h_t = x_t + h_{t-1} * m, with the same m at every step: recover it from each step.
    mask = (y[:, 1:] - x[:, 1:]) / y[:, :-1]
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), atol=1e-4)
    kept = np.isclose(mask, 1 / (1 - rate), rtol=1e-4)
    assert np.all(kept | np.isclose(mask, 0.0, atol=1e-4)) and kept.any() and not kept.all()
    # Recomputed by hand with that fixed mask, every step matches.
    m = mask[:, 0]
    h = np.zeros((6, units), np.float32)
    for t in range(8):
        h = x[:, t] + h * m
        np.testing.assert_allclose(y[:, t], h, rtol=1e-5)


def test_dropout_of_one_is_ignored_by_gated_layers_only():
    x = randn(2, 4, 3)
    layer = L.LSTM(3, dropout=1.0, recurrent_dropout=1.0)
    out = layer(x)
    np.testing.assert_array_equal(a(layer(x, training=True)), a(out))
    # SimpleRNN applies its masks whenever training: every input is dropped.
    simple = L.SimpleRNN(3, dropout=1.0)
    simple(x)
    np.testing.assert_allclose(a(simple(x, training=True)), a(simple(np.zeros_like(x))), atol=1e-7)


def test_training_flag_reaches_layers_inside_models():
    x = randn(4, 5, 3)
    model = rk.Sequential(
        [L.Bidirectional(L.LSTM(4, dropout=0.5, return_sequences=True)), L.GRU(2, recurrent_dropout=0.5)]
    )
    inference = a(model(x))
    np.testing.assert_array_equal(a(model(x, training=False)), inference)
    assert not np.allclose(a(model(x, training=True)), inference, atol=1e-4)


# --- cells, the fused path and the Python stepping path ------------------------------------------


@pytest.mark.parametrize(
    "cell_cls,layer_cls,kwargs",
    [
        (L.LSTMCell, L.LSTM, {}),
        (L.GRUCell, L.GRU, {}),
        (L.GRUCell, L.GRU, {"reset_after": False}),
        (L.SimpleRNNCell, L.SimpleRNN, {}),
    ],
)
def test_rnn_over_a_builtin_cell_equals_the_layer(cell_cls, layer_cls, kwargs):
    x = randn(3, 6, 4)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 1]], bool)
    layer = layer_cls(5, return_sequences=True, go_backwards=True, **kwargs)
    layer(x)
    rnn = L.RNN(cell_cls(5, **kwargs), return_sequences=True, go_backwards=True)
    rnn(x)
    rnn.set_weights(layer.get_weights())
    assert rnn._fused  # the same fused kernels as the layer (DESIGN.md)
    np.testing.assert_array_equal(a(rnn(x, mask=mask)), a(layer(x, mask=mask)))


class SteppedLSTMCell(L.LSTMCell):
    """The same math as LSTMCell, but a user-defined `call`: RNN steps it in Python."""

    def call(self, inputs, states, training=False):
        return super().call(inputs, states, training=training)


class SteppedGRUCell(L.GRUCell):
    def call(self, inputs, states, training=False):
        return super().call(inputs, states, training=training)


def _outputs_and_grads(layer, x, mask, initial_state, seeds):
    x = rk.Tensor(x)
    states = [rk.Tensor(s) for s in initial_state]
    with rk.GradientTape() as tape:
        tape.watch([x, *states])
        result = layer(x, mask=mask, initial_state=states)
        loss = sum(rk.ops.sum(r * s) for r, s in zip(rk.tree.flatten(result), seeds))
    grads = tape.gradient(loss, [x, *layer.trainable_weights, *states])
    return [a(r) for r in rk.tree.flatten(result)], [a(g) for g in grads]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize(
    "stepped_cls,fused_cls,n_states", [(SteppedLSTMCell, L.LSTMCell, 2), (SteppedGRUCell, L.GRUCell, 1)]
)
def test_python_stepping_path_equals_the_fused_path(stepped_cls, fused_cls, n_states, go_backwards):
    rng = np.random.default_rng(7)
    x = randn(3, 5, 4, rng=rng)
    mask = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)
    initial = [randn(3, 6, rng=rng) for _ in range(n_states)]
    options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    fused = L.RNN(fused_cls(6), **options)
    stepped = L.RNN(stepped_cls(6), **options)
    fused(x)
    stepped(x)
    stepped.set_weights([w + 0.1 * randn(*w.shape, rng=rng) for w in fused.get_weights()])
    fused.set_weights(stepped.get_weights())
    assert fused._fused and not stepped._fused
    seeds = [randn(3, 5, 6, rng=rng)] + [randn(3, 6, rng=rng) for _ in range(n_states)]
    want_out, want_grads = _outputs_and_grads(fused, x, mask, initial, seeds)
    got_out, got_grads = _outputs_and_grads(stepped, x, mask, initial, seeds)
    for got, want in zip(got_out, want_out):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert len(got_grads) == len(want_grads) == 1 + 3 + n_states
    for got, want in zip(got_grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stepped_cls,fused_cls", [(SteppedLSTMCell, L.LSTMCell), (SteppedGRUCell, L.GRUCell)])
def test_python_stepping_path_shares_dropout_masks_across_time(stepped_cls, fused_cls):
    """A subclassed built-in cell draws its dropout masks once per call, like the fused path
    (with the same seed, the very same masks), not once per step."""
    x = randn(3, 6, 4)
    options = dict(dropout=0.4, recurrent_dropout=0.3, seed=21)
    fused = L.RNN(fused_cls(5, **options), return_sequences=True)
    stepped = L.RNN(stepped_cls(5, **options), return_sequences=True)
    fused(x)
    stepped(x)
    stepped.set_weights(fused.get_weights())
    assert fused._fused and not stepped._fused
    np.testing.assert_allclose(a(stepped(x, training=True)), a(fused(x, training=True)), rtol=1e-5, atol=1e-6)
    assert stepped.cell._step_dropout is None  # nothing is kept after the call


def test_stacked_cells_python_path_equals_fused_with_mask_and_go_backwards():
    x = randn(2, 6, 3)
    mask = np.array([[1, 1, 0, 1, 1, 0], [0, 1, 1, 1, 1, 1]], bool)
    fused = L.RNN([L.LSTMCell(4), L.GRUCell(3)], go_backwards=True, return_sequences=True, return_state=True)
    stepped = L.RNN(
        [SteppedLSTMCell(4), SteppedGRUCell(3)], go_backwards=True, return_sequences=True, return_state=True
    )
    fused(x)
    stepped(x)
    stepped.set_weights(fused.get_weights())
    got, want = stepped(x, mask=mask), fused(x, mask=mask)
    # return_state keeps the states nested per cell: [out, [h1, c1], [h2]].
    assert len(want) == 3 and len(want[1]) == 2 and len(want[2]) == 1
    for g, w in zip(rk.tree.flatten(got), rk.tree.flatten(want)):
        np.testing.assert_allclose(a(g), a(w), rtol=1e-5, atol=1e-6)


def test_cell_call_steps_once():
    cell = L.LSTMCell(3)
    x = randn(2, 4)
    cell(x, [np.zeros((2, 3), np.float32)] * 2)
    h, (h2, c) = cell(x, [np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)])
    np.testing.assert_array_equal(a(h), a(h2))
    layer = L.RNN(cell)
    np.testing.assert_allclose(a(layer(x[:, None])), a(h), atol=1e-6)
    assert [a(s).shape for s in cell.get_initial_state(5)] == [(5, 3), (5, 3)]


def test_time_distributed_dense_equals_dense_per_step():
    x = randn(3, 4, 5)
    td = L.TimeDistributed(L.Dense(2, activation="tanh"))
    out = a(td(x))
    assert out.shape == (3, 4, 2)
    dense = td.layer
    for t in range(4):
        np.testing.assert_allclose(out[:, t], a(dense(x[:, t])), rtol=1e-6)
    with pytest.raises(ValueError, match="3 dimensions"):
        L.TimeDistributed(L.Dense(2))(randn(3, 5))


def test_lstm_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    layer = L.LSTM(3, dtype="float64", return_sequences=True)
    x = rng.normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 0, 1], [1, 1, 1, 0]], bool)
    layer(x)
    assert all(w.dtype == np.float64 for w in layer.weights)
    seed = rng.normal(size=(2, 4, 3))

    def loss():
        return rk.ops.sum(layer(x, mask=mask) * seed)

    with rk.GradientTape() as tape:
        value = loss()
    grads = [a(g) for g in tape.gradient(value, layer.trainable_weights)]
    assert value.dtype == np.float64
    eps = 1e-6
    for weight, grad in zip(layer.trainable_weights, grads):
        base = weight.numpy()
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * eps
                weight.assign(shifted)
                numeric[index] += sign * float(loss()) / (2 * eps)
        weight.assign(base)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# --- cross-checks against Keras itself ----------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"needs Keras on JAX, got {keras.backend.backend()}")
    return keras


def kcall(layer, *args, **kwargs):
    """Calls a Keras layer eagerly without jit: Keras's `lax.scan` is then a Python loop of the
    same step function, instead of a fresh compilation at every call (seconds per call)."""
    import jax

    with jax.disable_jit():
        return layer(*args, **kwargs)


KERAS_LAYERS = [
    ("lstm", lambda m, **kw: m.LSTM(5, **kw)),
    ("gru", lambda m, **kw: m.GRU(5, **kw)),
    ("gru_reset_before", lambda m, **kw: m.GRU(5, reset_after=False, **kw)),
    ("simple_rnn", lambda m, **kw: m.SimpleRNN(5, **kw)),
    ("lstm_relu_backwards", lambda m, **kw: m.LSTM(4, activation="relu", go_backwards=True, **kw)),
]


def _random_weights(layer, rng):
    return [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]


def _compare(keras_result, rk_result):
    flat_k, flat_r = rk.tree.flatten(list(keras_result)), rk.tree.flatten(list(rk_result))
    assert len(flat_k) == len(flat_r)
    for k, r in zip(flat_k, flat_r):
        np.testing.assert_allclose(a(r), np.asarray(k), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("label,make", KERAS_LAYERS, ids=[c[0] for c in KERAS_LAYERS])
def test_layer_matches_keras(keras, label, make, return_sequences):
    rng = np.random.default_rng(42)
    x = rng.normal(size=(3, 7, 4)).astype(np.float32)
    options = dict(return_sequences=return_sequences, return_state=True)
    k_layer = make(keras.layers, **options)
    kcall(k_layer, x[:, :2])
    k_layer.set_weights(_random_weights(k_layer, rng))
    r_layer = make(L, **options)
    r_layer(x)
    r_layer.set_weights(k_layer.get_weights())
    # Masks of any pattern: right padding, holes, a masked start (zero initial states).
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 0, 1, 1, 0, 1, 1], [0, 0, 1, 1, 1, 1, 1]], bool)
    _compare(kcall(k_layer, x, mask=mask), r_layer(x, mask=mask))
    # With initial states, the first and last steps stay unmasked: at a masked first step
    # (in processing order) Keras's JAX loop outputs h0 where its TF loop, and rnnkit, output 0.
    states = [rng.normal(size=(3, 5 if "relu" not in label else 4)).astype(np.float32)]
    states *= 2 if "lstm" in label else 1
    safe = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1, 1], [1, 0, 0, 0, 0, 0, 1]], bool)
    _compare(kcall(k_layer, x, mask=safe, initial_state=states), r_layer(x, mask=safe, initial_state=states))


BIDIRECTIONAL_CASES = [(mode, True) for mode in ("concat", "sum", "mul", "ave", None)] + [
    ("concat", False),
    (None, False),
]


@pytest.mark.parametrize("merge_mode,return_sequences", BIDIRECTIONAL_CASES)
def test_bidirectional_matches_keras(keras, merge_mode, return_sequences):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 1, 1]], bool)
    options = dict(return_sequences=return_sequences, return_state=True)
    k_layer = keras.layers.Bidirectional(keras.layers.LSTM(3, **options), merge_mode=merge_mode)
    kcall(k_layer, x)
    k_layer.set_weights(_random_weights(k_layer, rng))
    r_layer = L.Bidirectional(L.LSTM(3, **options), merge_mode=merge_mode)
    r_layer(x)
    r_layer.set_weights(k_layer.get_weights())
    result = r_layer(x, mask=mask)
    assert len(result) == (2 if merge_mode is None else 1) + 4
    _compare(kcall(k_layer, x, mask=mask), result)


def test_bidirectional_gru_without_state_matches_keras(keras):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    k_layer = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))
    kcall(k_layer, x, mask=mask)
    k_layer.set_weights(_random_weights(k_layer, rng))
    r_layer = L.Bidirectional(L.GRU(4, return_sequences=True))
    r_layer(x)
    r_layer.set_weights(k_layer.get_weights())
    np.testing.assert_allclose(a(r_layer(x, mask=mask)), np.asarray(kcall(k_layer, x, mask=mask)), rtol=1e-5, atol=1e-5)
