"""Edge cases that have a correct answer: non-finite values, empty batches and sequences, any
memory layout or dtype of the input, and rows whose mask is all False."""

import numpy as np
import pytest

import rnnkit as rk

L = rk.layers
KINDS = {"SimpleRNN": (L.SimpleRNN, L.SimpleRNNCell), "GRU": (L.GRU, L.GRUCell), "LSTM": (L.LSTM, L.LSTMCell)}


def stepped_cell(cell_class):
    """A subclass of a built-in cell with its own `call`, so that RNN steps it through `ops`
    (the Python path) instead of the fused kernels."""

    class Stepped(cell_class):
        def call(self, *args, **kwargs):
            return super().call(*args, **kwargs)

    return Stepped


def pair(kind, **options):
    """The fused layer and a stepping RNN over the same weights, both built for 5 features."""
    layer_class, cell_class = KINDS[kind]
    fused = layer_class(3, **options)
    stepping = L.RNN(stepped_cell(cell_class)(3), **options)
    probe = np.zeros((1, 2, 5), "float32")
    fused(probe)
    stepping(probe)
    stepping.set_weights(fused.get_weights())
    assert fused._fused and not stepping._fused
    return fused, stepping


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def arrays(result):
    return [np.asarray(r) for r in (result if isinstance(result, list) else [result])]


# --- NaN and Inf --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_nan_in_the_input_propagates_to_its_row_only(kind, go_backwards):
    x = data(3, 4, 5)
    x[1, 2, 0] = np.nan
    for layer in pair(kind, return_sequences=True, return_state=True, go_backwards=go_backwards):
        outputs, *states = arrays(layer(x))
        steps = range(1, 4) if go_backwards else range(2, 4)  # in processing order, from the NaN step on
        assert np.isnan(outputs[1, list(steps)]).all()
        assert all(np.isnan(s[1]).all() for s in states)
        assert np.isfinite(np.delete(outputs, 1, axis=0)).all()
        assert all(np.isfinite(np.delete(s, 1, axis=0)).all() for s in states)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 3e38])
def test_non_finite_inputs_give_the_same_result_on_the_fused_and_stepping_paths(kind, value):
    x = data(3, 4, 5)
    x[0, 1, 2] = value
    x[2, :, 4] = value
    fused, stepping = pair(kind, return_sequences=True)
    a, b = np.asarray(fused(x)), np.asarray(stepping(x))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    assert np.isfinite(a[1]).all()  # the clean row


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind", list(KINDS))
def test_gradients_through_nan_inputs_do_not_crash(kind):
    x = data(3, 4, 5)
    x[0, 1, 2] = np.nan
    for layer in pair(kind, return_sequences=True):
        xv = rk.Variable(x)
        with rk.GradientTape() as tape:
            tape.watch(xv)
            loss = rk.ops.sum(layer(xv))
        grads = [np.asarray(g) for g in tape.gradient(loss, [xv] + layer.trainable_weights)]
        assert [g.shape for g in grads] == [x.shape] + [w.shape for w in layer.trainable_weights]
        assert np.isfinite(grads[0][1:]).all()  # the rows without NaN keep finite input gradients


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_weights_and_states_propagate_without_crashing():
    layer = L.LSTM(3, return_state=True)
    layer(data(2, 4, 5))
    out = arrays(layer(data(2, 4, 5), initial_state=[np.full((2, 3), np.nan, "float32"), np.zeros((2, 3), "float32")]))
    assert all(np.isnan(o).all() for o in out)
    layer.set_weights([np.full_like(w, np.inf) for w in layer.get_weights()])
    out = arrays(layer(data(2, 4, 5)))
    assert [o.shape for o in out] == [(2, 3)] * 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_stops_fit():
    model = rk.Sequential([rk.Input((4, 5)), L.LSTM(3), L.Dense(1)])
    model.compile("sgd", "mse")
    x, y = data(10, 4, 5), data(10, 1)
    x[4, 0, 0] = np.nan  # in the third batch of two
    batches = []
    history = model.fit(
        x,
        y,
        batch_size=2,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[
            rk.callbacks.TerminateOnNaN(),
            rk.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
        ],
    )
    assert batches == [0, 1, 2]
    assert model.stop_training
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


# --- empty batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_an_empty_batch_gives_an_empty_result(kind, return_sequences):
    for layer in pair(kind, return_sequences=return_sequences, return_state=True):
        outputs, *states = arrays(layer(np.zeros((0, 4, 5), "float32")))
        assert outputs.shape == ((0, 4, 3) if return_sequences else (0, 3))
        assert [s.shape for s in states] == [(0, 3)] * len(states)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_empty_batch_has_zero_gradients(kind):
    layer = KINDS[kind][0](3)
    xv = rk.Variable(np.zeros((0, 4, 5), "float32"))
    with rk.GradientTape() as tape:
        tape.watch(xv)
        loss = rk.ops.sum(layer(xv))
    grads = tape.gradient(loss, [xv] + layer.trainable_weights)
    assert np.asarray(grads[0]).shape == (0, 4, 5)
    for g, w in zip(grads[1:], layer.trainable_weights):
        np.testing.assert_array_equal(np.asarray(g), np.zeros(w.shape))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
def test_an_empty_batch_through_wrappers_and_other_layers(merge_mode):
    empty = np.zeros((0, 4, 5), "float32")
    out = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=merge_mode)(empty)
    expected = (0, 4, 6 if merge_mode == "concat" else 3)
    assert [o.shape for o in arrays(out)] == [expected] * (2 if merge_mode is None else 1)
    assert L.TimeDistributed(L.Dense(2))(empty).shape == (0, 4, 2)
    assert L.Dense(2)(empty).shape == (0, 4, 2)
    assert L.Embedding(10, 3)(np.zeros((0, 4), "int64")).shape == (0, 4, 3)
    assert L.Masking()(empty).shape == (0, 4, 5)


def test_an_empty_batch_through_models_and_predict():
    seq = rk.Sequential([rk.Input((None, 5)), L.Masking(), L.LSTM(3, return_sequences=True), L.GRU(2), L.Dense(1)])
    inp = rk.Input((4, 5))
    functional = rk.Model(inp, L.Dense(2)(L.Bidirectional(L.SimpleRNN(3))(inp)))
    empty = np.zeros((0, 4, 5), "float32")
    assert seq(empty).shape == (0, 1)
    assert seq.predict(empty, verbose=0).shape == (0, 1)
    assert functional(empty).shape == (0, 2)
    assert functional.predict(empty, verbose=0).shape == (0, 2)
    assert functional.predict(empty, batch_size=7, verbose=0).shape == (0, 2)


# --- empty sequences ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_empty_sequence_returns_zero_outputs_and_the_initial_states(kind):
    n_states = 2 if kind == "LSTM" else 1
    initial = [data(2, 3, seed=i) for i in range(n_states)]
    empty = np.zeros((2, 0, 5), "float32")
    for return_sequences in (False, True):
        for layer in pair(kind, return_sequences=return_sequences, return_state=True):
            outputs, *states = arrays(layer(empty))
            assert outputs.shape == ((2, 0, 3) if return_sequences else (2, 3))
            # No step ran: the last output is the "previous output" before the first step, zeros.
            np.testing.assert_array_equal(outputs, np.zeros(outputs.shape))
            for s in states:
                np.testing.assert_array_equal(s, np.zeros((2, 3)))
            outputs, *states = arrays(layer(empty, initial_state=initial))
            for s, s0 in zip(states, initial):
                np.testing.assert_array_equal(s, s0)


def test_an_empty_sequence_through_bidirectional_stacks_and_models():
    empty = np.zeros((2, 0, 5), "float32")
    assert L.Bidirectional(L.LSTM(3))(empty).shape == (2, 6)
    assert L.Bidirectional(L.LSTM(3, return_sequences=True))(empty).shape == (2, 0, 6)
    assert L.RNN([L.GRUCell(3), L.LSTMCell(2)], return_sequences=True)(empty).shape == (2, 0, 2)
    assert L.TimeDistributed(L.Dense(4))(empty).shape == (2, 0, 4)
    assert L.TimeDistributed(L.Dense(4))(np.zeros((0, 0, 5), "float32")).shape == (0, 0, 4)
    stepping = L.RNN([stepped_cell(L.GRUCell)(3), stepped_cell(L.LSTMCell)(2)], return_state=True)
    out = [np.asarray(o) for o in rk.tree.flatten(stepping(empty))]  # output, then each cell's states
    assert [o.shape for o in out] == [(2, 2), (2, 3), (2, 2), (2, 2)]
    model = rk.Sequential([rk.Input((None, 5)), L.LSTM(3, return_sequences=True), L.LSTM(2), L.Dense(1)])
    # The LSTM's last output is zeros, so the model returns the Dense layer's value at zero.
    np.testing.assert_allclose(
        model.predict(empty, verbose=0), np.asarray(model.layers[-1](np.zeros((2, 2), "float32")))
    )


def test_an_empty_sequence_with_a_mask_and_gradients():
    layer = L.GRU(3, return_sequences=True)
    xv = rk.Variable(np.zeros((2, 0, 5), "float32"))
    with rk.GradientTape() as tape:
        tape.watch(xv)
        out = layer(xv, mask=np.zeros((2, 0), bool))
        loss = rk.ops.sum(out)
    assert out.shape == (2, 0, 3)
    grads = tape.gradient(loss, [xv] + layer.trainable_weights, unconnected_gradients="zero")
    assert np.asarray(grads[0]).shape == (2, 0, 5)
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)


# --- layouts, dtypes and lists ------------------------------------------------------------------


def layouts(x):
    """The same values as `x` (float32, C-contiguous) in other forms."""
    wide = np.zeros(x.shape[:2] + (2 * x.shape[2],), "float32")
    wide[..., ::2] = x
    reversed_copy = np.ascontiguousarray(x[:, ::-1])
    return {
        "strided": wide[..., ::2],
        "reversed view": reversed_copy[:, ::-1],
        "fortran": np.asfortranarray(x),
        "transposed view": np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2),
        "float64": x.astype("float64"),
        "nested list": x.tolist(),
        "tuple of lists": tuple(x.tolist()),
    }


@pytest.mark.parametrize("kind", list(KINDS))
def test_any_layout_dtype_or_list_gives_the_same_result_in_layers(kind):
    x = data(3, 4, 5)
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    for layer in pair(kind, return_sequences=True, return_state=True):
        expected = arrays(layer(x, mask=mask))
        for name, variant in layouts(x).items():
            got = arrays(layer(variant, mask=np.asfortranarray(mask)))
            for g, e in zip(got, expected):
                assert g.dtype == np.float32, name
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6, err_msg=name)


def test_any_layout_dtype_or_list_gives_the_same_result_in_wrappers_and_models():
    x = data(3, 4, 5)
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True))
    td = L.TimeDistributed(L.Dense(2))
    model = rk.Sequential([rk.Input((4, 5)), L.GRU(3, return_sequences=True), L.SimpleRNN(2), L.Dense(1)])
    inp = rk.Input((4, 5))
    functional = rk.Model(inp, L.Dense(1)(L.LSTM(2)(inp)))
    expected = {
        "bi": np.asarray(bi(x)),
        "td": np.asarray(td(x)),
        "model": np.asarray(model(x)),
        "predict": model.predict(x, verbose=0),
        "functional": functional.predict(x, verbose=0),
    }
    for name, variant in layouts(x).items():
        got = {
            "bi": np.asarray(bi(variant)),
            "td": np.asarray(td(variant)),
            "model": np.asarray(model(variant)),
            "predict": model.predict(variant, verbose=0),
            "functional": functional.predict(variant, verbose=0),
        }
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=f"{key} on {name}")


def test_a_float64_layer_accepts_float32_input_and_computes_in_float64():
    x = data(2, 4, 5)
    layer = L.LSTM(3, dtype="float64")
    out = layer(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(np.asarray(layer(x.astype("float64"))), np.asarray(out))


def test_fit_on_non_contiguous_and_list_data_matches_contiguous_data():
    x, y = data(8, 4, 5), data(8, 1, seed=1)

    def trained(xs, ys):
        model = rk.Sequential([rk.Input((4, 5)), L.LSTM(3), L.Dense(1)])
        model.set_weights([np.full(w.shape, 0.1, w.dtype) for w in model.get_weights()])
        model.compile("sgd", "mse")
        model.fit(xs, ys, batch_size=4, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()

    reference = trained(x, y)
    variants = [
        (np.asfortranarray(x), np.repeat(y, 2, axis=1)[:, ::2]),
        (x.tolist(), y.tolist()),
        (x.astype("float64"), y.astype("float64")),
    ]
    for variant_x, variant_y in variants:
        for w, e in zip(trained(variant_x, variant_y), reference):
            np.testing.assert_allclose(w, e, rtol=1e-5, atol=1e-6)


# --- rows whose mask is all False ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_fully_masked_rows_give_zero_outputs_and_finite_gradients(kind, zero_output_for_mask):
    x = data(3, 4, 5)
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    for layer in pair(kind, return_sequences=True, return_state=True, zero_output_for_mask=zero_output_for_mask):
        xv = rk.Variable(x)
        with rk.GradientTape() as tape:
            tape.watch(xv)
            outputs, *states = layer(xv, mask=mask)
            loss = rk.ops.sum(outputs) + sum(rk.ops.sum(s) for s in states)
        for o in [outputs, *states]:
            np.testing.assert_array_equal(np.asarray(o)[1:], 0.0)
        grads = tape.gradient(loss, [xv] + layer.trainable_weights)
        assert all(np.isfinite(np.asarray(g)).all() for g in grads)
        np.testing.assert_array_equal(np.asarray(grads[0])[1:], 0.0)  # masked steps get no gradient


def test_fully_masked_rows_through_bidirectional_embedding_and_a_model():
    tokens = np.array([[3, 4, 0, 0], [0, 0, 0, 0]])
    model = rk.Sequential([L.Embedding(10, 4, mask_zero=True), L.Bidirectional(L.LSTM(3)), L.Dense(2)])
    model.compile("adam", "mse")
    out = model.predict(tokens, verbose=0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[1], np.asarray(model.layers[-1](np.zeros((1, 6), "float32")))[0], atol=1e-7)
    with rk.GradientTape() as tape:
        loss = rk.ops.sum(model(tokens, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is None or np.isfinite(np.asarray(g)).all() for g in grads)
    model.fit(tokens, np.zeros((2, 2)), epochs=2, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
