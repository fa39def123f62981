"""Models and training: Sequential and functional `Model`, summaries, whole-model weights,
compile/fit/evaluate/predict, callbacks, the guide's "Performance optimization and CuDNN
kernels" section end to end on the bundled digits, the guide's NestedCell model trained with
`fit`, and the accuracy of the guide's recipe.

Keras is the reference where it matters (weight order, same training trajectory); those tests
import it with the jax backend and are skipped without it.
"""

import math
import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np
import pytest

import rnnkit as rk
from guide_cells import NestedCell
from rnnkit import callbacks as cbks
from rnnkit import layers as L


def keras_or_skip():
    keras = pytest.importorskip("keras", reason="the Keras cross-checks need keras>=3 with the jax backend")
    if keras.backend.backend() != "jax":
        pytest.skip(f"the Keras cross-checks need the jax backend, not {keras.backend.backend()}")
    return keras


def regression_data(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    y = (x @ np.arange(1, features + 1, dtype="float32")[:, None] / features).astype("float32")
    return x, y


def dense_model(lr=0.1, features=3):
    model = rk.Sequential([rk.Input((features,)), L.Dense(1)])
    model.compile(rk.optimizers.SGD(lr), "mse")
    return model


def summary_lines(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def summary_table(model):
    """`(rows, totals)`: rows `(name, type, shape, params, [connections])` parsed by the header's
    column starts (continuation lines of "Connected to" folded into their row), and the totals."""
    lines = summary_lines(model)
    header = next(line for line in lines if line.startswith("Layer (type)"))
    starts = [header.index(t) for t in ("Output Shape", "Param #", "Connected to") if t in header]
    rows, totals = [], {}
    for line in lines[lines.index(header) + 2 :]:
        if set(line) <= {"_", "="}:
            continue
        if " params: " in line:
            key, value = line.split(" params: ")
            totals[key] = int(value.replace(",", ""))
            continue
        bounds = [0, *starts, len(line)]
        fields = [line[a:b].strip() for a, b in zip(bounds, bounds[1:])]
        if not fields[0]:
            rows[-1][4].append(fields[-1])
            continue
        name, _, kind = fields[0].partition(" (")
        connections = [fields[3]] if len(fields) > 3 and fields[3] else []
        rows.append((name, kind.rstrip(")"), fields[1], int(fields[2]), connections))
    return rows, totals


# --- Sequential ---------------------------------------------------------------------------------


def test_sequential_list_and_add_build_the_same_model():
    by_list = rk.Sequential([L.SimpleRNN(4, input_shape=(5, 3)), L.Dense(2)])
    by_add = rk.Sequential()
    by_add.add(L.SimpleRNN(4, input_shape=(5, 3)))
    by_add.add(L.Dense(2))
    for model in (by_list, by_add):
        assert model.built  # the first layer's input_shape fixes the input: every layer is built
        assert [type(l).__name__ for l in model.layers] == ["SimpleRNN", "Dense"]  # no InputLayer
        assert model.inputs[0].shape == (None, 5, 3) and model.outputs[0].shape == (None, 2)
        assert [w.shape for w in model.get_weights()] == [(3, 4), (4, 4), (4,), (4, 2), (2,)]
    by_add.set_weights(by_list.get_weights())
    x = np.random.default_rng(0).random((6, 5, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(by_list(x)), np.asarray(by_add(x)))
    # The stack is the layers applied in order.
    expected = by_list.layers[1](by_list.layers[0](x))
    np.testing.assert_array_equal(np.asarray(by_list(x)), np.asarray(expected))


def test_sequential_input_shape_from_rk_input():
    model = rk.Sequential([rk.Input((None, 8)), L.LSTM(4), L.Dense(3)])
    assert model.built and len(model.layers) == 2
    assert model.inputs[0].shape == (None, None, 8)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 3)]
    assert model(np.zeros((2, 7, 8))).shape == (2, 3)  # any sequence length

    added = rk.Sequential()
    added.add(rk.Input((5,)))
    added.add(L.Dense(2))
    assert added.built and added.inputs[0].shape == (None, 5) and added.count_params() == 12


def test_sequential_deferred_build_on_first_call():
    model = rk.Sequential([L.Dense(5), L.Dense(1)])
    assert not model.built and model.weights == [] and model.inputs == []
    out = model(np.ones((4, 7), "float32"))
    assert out.shape == (4, 1)
    assert model.built and model.inputs[0].shape == (None, 7)
    assert [w.shape for w in model.get_weights()] == [(7, 5), (5,), (5, 1), (1,)]
    # It is a normal model afterwards: training works.
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 7)), np.zeros((8, 1)), verbose=0)


def test_sequential_pop():
    model = rk.Sequential([L.Dense(4, input_shape=(3,)), L.Dense(2), L.Dense(1)])
    last = model.pop()
    assert isinstance(last, L.Dense) and last.units == 1
    assert len(model.layers) == 2 and model.outputs[0].shape == (None, 2)
    assert [w.shape for w in model.weights] == [(3, 4), (4,), (4, 2), (2,)]
    assert model(np.ones((5, 3))).shape == (5, 2)
    model.pop()
    model.pop()
    assert model.layers == []
    with pytest.raises(TypeError, match="no layers"):
        model.pop()


def test_sequential_requires_single_output_layers():
    with pytest.raises(ValueError, match="single output"):
        rk.Sequential([rk.Input((5, 3)), L.LSTM(4, return_state=True)])
    deferred = rk.Sequential([L.LSTM(4, return_state=True)])
    with pytest.raises(ValueError, match="single output"):
        deferred(np.zeros((2, 5, 3), "float32"))


def test_sequential_add_errors():
    model = rk.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(TypeError, match="Layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="Input"):
        model.add(rk.Input((3,)))
    with pytest.raises(ValueError, match="already"):
        model.add(model.layers[0])


# --- functional Model -------------------------------------------------------------------------


def test_functional_several_inputs_and_outputs_with_a_shared_layer():
    a = rk.Input((5, 3), name="left")
    b = rk.Input((5, 3), name="right")
    shared = L.LSTM(4, name="shared_lstm")
    ha, hb = shared(a), shared(b)  # one layer, two calls, one set of weights
    out1 = L.Dense(2, name="head")(L.Concatenate()([ha, hb]))
    out2 = L.Add(name="sum")([ha, hb])
    model = rk.Model([a, b], [out1, out2])

    assert [l.name for l in model.layers][:3] == ["left", "right", "shared_lstm"]
    assert len(model.weights) == 3 + 2  # the LSTM's weights are counted once
    assert model.count_params() == shared.count_params() + 8 * 2 + 2

    rng = np.random.default_rng(1)
    xa, xb = rng.random((6, 5, 3)).astype("float32"), rng.random((6, 5, 3)).astype("float32")
    y1, y2 = model([xa, xb])
    assert isinstance(y1, rk.Tensor) and y1.shape == (6, 2) and y2.shape == (6, 4)
    ea, eb = np.asarray(shared(xa)), np.asarray(shared(xb))
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(np.asarray(y1), np.concatenate([ea, eb], 1) @ kernel + bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(y2), ea + eb)

    # A dict of inputs is matched by the Inputs' names, whatever its order.
    y1d, y2d = model({"right": xb, "left": xa})
    np.testing.assert_array_equal(np.asarray(y1d), np.asarray(y1))
    np.testing.assert_array_equal(np.asarray(y2d), np.asarray(y2))
    with pytest.raises(ValueError, match="right"):
        model({"left": xa})
    with pytest.raises(ValueError, match="expects 2 input"):
        model([xa])

    # Both calls get gradients into the one kernel: training the shared layer changes both paths.
    model.compile(rk.optimizers.SGD(0.1), ["mse", "mse"])
    before = shared.get_weights()
    model.fit([xa, xb], [np.ones((6, 2)), np.ones((6, 4))], epochs=1, verbose=0)
    assert all(not np.array_equal(w0, w1) for w0, w1 in zip(before, shared.get_weights()))


def test_models_nest_as_layers():
    inp = rk.Input((5, 3))
    inner = rk.Model(inp, L.Dense(3)(L.GRU(4)(inp)), name="encoder_block")
    x = rk.Input((5, 3))
    outer = rk.Model(x, L.Dense(1, name="top")(inner(x)))
    assert [type(l).__name__ for l in outer.layers] == ["InputLayer", "Model", "Dense"]
    assert [w.shape for w in outer.get_weights()] == [w.shape for w in inner.get_weights()] + [(3, 1), (1,)]

    data = np.random.default_rng(2).random((4, 5, 3)).astype("float32")
    kernel, bias = outer.get_layer("top").get_weights()
    np.testing.assert_allclose(np.asarray(outer(data)), np.asarray(inner(data)) @ kernel + bias, rtol=1e-5, atol=1e-6)

    # Training the outer model trains the inner model's weights (the same variables).
    outer.compile(rk.optimizers.SGD(0.5), "mse")
    before = inner.get_weights()
    outer.fit(data, np.ones((4, 1)), verbose=0)
    assert all(not np.array_equal(w0, w1) for w0, w1 in zip(before, inner.get_weights()))

    # A Sequential model works as a layer of a functional one too.
    stack = rk.Sequential([L.Dense(3, input_shape=(4,)), L.Dense(2)])
    y = rk.Input((4,))
    wrapper = rk.Model(y, L.Dense(1)(stack(y)))
    assert wrapper(np.ones((2, 4))).shape == (2, 1)
    assert len(wrapper.weights) == 6


def test_eager_call_returns_rk_tensors():
    model = rk.Sequential([rk.Input((3,)), L.Dense(2)])
    out = model(np.ones((4, 3)))
    assert isinstance(out, rk.Tensor)
    np.testing.assert_array_equal(np.asarray(out), out.numpy())
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(out.numpy(), np.ones((4, 3)) @ kernel + bias, rtol=1e-6)


# --- summary and weights ----------------------------------------------------------------------


def test_summary_rows_and_totals_with_batch_normalization():
    model = rk.Sequential(
        [rk.Input((None, 8)), L.LSTM(16, name="rnn"), L.BatchNormalization(name="bn"), L.Dense(10, name="head")]
    )
    rows, totals = summary_table(model)
    assert [row[:4] for row in rows] == [
        ("rnn", "LSTM", "(None, 16)", 4 * (8 + 16 + 1) * 16),
        ("bn", "BatchNormalization", "(None, 16)", 4 * 16),
        ("head", "Dense", "(None, 10)", 170),
    ]
    assert totals == {"Total": 1600 + 64 + 170, "Trainable": 1600 + 32 + 170, "Non-trainable": 32}
    lines = summary_lines(model)
    assert lines[0] == f'Model: "{model.name}"'
    assert "Total params: 1,834" in lines


def test_functional_summary_lists_every_call_of_a_shared_layer():
    a, b = rk.Input((4,), name="in_a"), rk.Input((4,), name="in_b")
    shared = L.Dense(3, name="shared_dense")
    model = rk.Model([a, b], L.Concatenate(name="cat")([shared(a), shared(b)]))
    rows, totals = summary_table(model)
    by_name = {r[0]: r for r in rows}
    assert by_name["in_a"][1:4] == ("InputLayer", "[(None, 4)]", 0)
    assert by_name["shared_dense"][2:] == ("(None, 3)", 15, ["in_a[0][0]", "in_b[0][0]"])
    assert by_name["cat"][2:] == ("(None, 6)", 0, ["shared_dense[0][0]", "shared_dense[1][0]"])
    assert totals == {"Total": 15, "Trainable": 15, "Non-trainable": 0}


def test_get_weights_set_weights_whole_model():
    model = rk.Sequential([rk.Input((5, 3)), L.GRU(4), L.BatchNormalization(), L.Dense(2)])
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 12), (4, 12), (2, 12), (4,), (4,), (4,), (4,), (4, 2), (2,)]
    rng = np.random.default_rng(3)
    new = [rng.standard_normal(w.shape).astype("float32") for w in weights]
    new[5] = np.abs(new[5])  # moving mean, variance: keep the variance positive
    new[6] = np.abs(new[6]) + 0.5
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    # get_weights returns copies: changing them does not change the model.
    got = model.get_weights()
    got[0][...] = 0
    assert not np.array_equal(model.get_weights()[0], got[0])

    with pytest.raises(ValueError, match="length 8.*expecting 9"):
        model.set_weights(new[:-1])
    wrong = list(new)
    wrong[1] = np.zeros((4, 13), "float32")
    with pytest.raises(ValueError, match=r"\(4, 12\).*\(4, 13\)"):
        model.set_weights(wrong)
    # A failed set_weights changes nothing.
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)


def build_encoder_decoder(keras):
    """The guide's encoder-decoder model ("Outputs and states"), verbatim but for `keras`."""
    layers = keras.layers
    encoder_vocab = 1000
    decoder_vocab = 2000

    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)

    # Return states in addition to output
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
    encoder_state = [state_h, state_c]

    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)

    # Pass the 2 states to a new LSTM layer, as initial state
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=encoder_state)
    output = layers.Dense(10)(decoder_output)

    return keras.Model([encoder_input, decoder_input], output)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras
def test_encoder_decoder_weights_order_matches_keras():
    keras = keras_or_skip()
    keras_model = build_encoder_decoder(keras)
    rk_model = build_encoder_decoder(rk)
    assert [w.shape for w in rk_model.get_weights()] == [tuple(w.shape) for w in keras_model.get_weights()]
    rk_model.set_weights(keras_model.get_weights())
    rng = np.random.default_rng(4)
    enc, dec = rng.integers(0, 1000, (3, 7)), rng.integers(0, 2000, (3, 5))
    want = np.asarray(keras_model([enc, dec]))
    np.testing.assert_allclose(rk_model.predict([enc, dec]), want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(rk_model([enc, dec])), want, atol=1e-5)


# --- compile ----------------------------------------------------------------------------------


def test_compile_with_strings_and_objects_is_the_same():
    x, y = regression_data()
    by_name = rk.Sequential([rk.Input((3,)), L.Dense(1)])
    by_object = rk.Sequential([rk.Input((3,)), L.Dense(1)])
    by_object.set_weights(by_name.get_weights())
    by_name.compile("sgd", "mse", metrics=["mae"])
    by_object.compile(rk.optimizers.SGD(), rk.losses.MeanSquaredError(), metrics=[rk.metrics.MeanAbsoluteError()])
    assert isinstance(by_name.optimizer, rk.optimizers.SGD)
    a = by_name.train_on_batch(x, y, return_dict=True)
    b = by_object.train_on_batch(x, y, return_dict=True)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert set(a) == {"loss", "mae"} and set(b) == {"loss", "mean_absolute_error"}  # named as given
    for wa, wb in zip(by_name.get_weights(), by_object.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    with pytest.raises(ValueError, match="loss"):
        by_name.compile("sgd", "no_such_loss")
    with pytest.raises(ValueError, match="compile"):
        rk.Sequential([rk.Input((3,)), L.Dense(1)]).fit(x, y, verbose=0)


def two_output_model():
    inp = rk.Input((5, 3), name="seq")
    hidden = L.LSTM(4)(inp)
    cls = L.Dense(3, name="cls")(hidden)
    reg = L.Dense(1, name="reg")(hidden)
    return rk.Model(inp, [cls, reg])


def two_output_data(n=24, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 5, 3)).astype("float32")
    return x, rng.integers(0, 3, n), rng.random((n, 1)).astype("float32")


def test_compile_one_loss_per_output_list_dict_and_loss_weights():
    x, y_cls, y_reg = two_output_data()
    model = two_output_model()
    sce = rk.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss={"reg": "mae", "cls": sce}, loss_weights={"cls": 2.0, "reg": 0.5}, metrics=["accuracy"])
    logs = model.evaluate(x, {"reg": y_reg, "cls": y_cls}, return_dict=True, verbose=0)
    logits, value = model.predict(x)
    cls_loss = float(sce(y_cls, logits))
    reg_loss = float(np.mean(np.abs(value - y_reg)))
    assert logs["cls_loss"] == pytest.approx(cls_loss, rel=1e-5)
    assert logs["reg_loss"] == pytest.approx(reg_loss, rel=1e-5)
    assert logs["loss"] == pytest.approx(2.0 * cls_loss + 0.5 * reg_loss, rel=1e-5)
    assert logs["cls_accuracy"] == pytest.approx(np.mean(np.argmax(logits, 1) == y_cls))

    # The same as a list, in output order.
    model.compile("sgd", loss=[sce, "mae"], loss_weights=[2.0, 0.5], metrics=["accuracy"])
    as_list = model.evaluate(x, [y_cls, y_reg], return_dict=True, verbose=0)
    assert as_list == pytest.approx(logs, rel=1e-6)

    with pytest.raises(ValueError, match="2 entries"):
        model.compile("sgd", loss=["mse"])
    with pytest.raises(ValueError, match="unknown output names"):
        model.compile("sgd", loss={"nope": "mse"})


@pytest.mark.parametrize(
    "loss, last_units, activation, targets, expected",
    [
        ("sparse_categorical_crossentropy", 3, "softmax", "sparse", "sparse"),
        ("categorical_crossentropy", 3, "softmax", "one_hot", "categorical"),
        ("binary_crossentropy", 1, "sigmoid", "binary", "binary"),
    ],
)
def test_accuracy_is_resolved_from_the_loss(loss, last_units, activation, targets, expected):
    rng = np.random.default_rng(6)
    x = rng.random((30, 4)).astype("float32")
    labels = rng.integers(0, last_units if last_units > 1 else 2, 30)
    y = {"sparse": labels, "one_hot": np.eye(3)[labels], "binary": labels[:, None].astype("float32")}[targets]
    model = rk.Sequential([rk.Input((4,)), L.Dense(last_units, activation=activation)])
    model.compile("sgd", loss, metrics=["accuracy"])
    accuracy = model.evaluate(x, y, return_dict=True, verbose=0)["accuracy"]
    p = model.predict(x)
    want = {
        "sparse": np.argmax(p, 1) == labels,
        "categorical": np.argmax(p, 1) == labels,
        "binary": (p[:, 0] > 0.5) == labels,
    }[expected]
    assert accuracy == pytest.approx(want.mean())


# --- fit, evaluate, predict -------------------------------------------------------------------


def test_fit_with_lists_and_dicts_of_arrays():
    a, b = rk.Input((3,), name="a"), rk.Input((2,), name="b")
    out1 = L.Dense(1, name="zeta")(L.Concatenate()([a, b]))  # sorted names differ from output order
    out2 = L.Dense(2, name="alpha")(b)
    rng = np.random.default_rng(7)
    xa, xb = rng.random((16, 3)).astype("float32"), rng.random((16, 2)).astype("float32")
    y1, y2 = rng.random((16, 1)).astype("float32"), rng.random((16, 2)).astype("float32")
    start = rk.Model([a, b], [out1, out2]).get_weights()
    histories = []
    for x, y in (([xa, xb], [y1, y2]), ({"b": xb, "a": xa}, {"alpha": y2, "zeta": y1})):
        model = rk.Model([a, b], [out1, out2])
        model.set_weights(start)
        model.compile(rk.optimizers.SGD(0.1), "mse")
        histories.append(model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history)
    assert set(histories[0]) == set(histories[1]) == {"loss", "zeta_loss", "alpha_loss"}
    for key, values in histories[0].items():
        assert histories[1][key] == pytest.approx(values, rel=1e-6)


def test_fit_with_an_iterable_of_batches_equals_arrays():
    x, y = regression_data(n=32)
    from_arrays, from_batches, from_generator = dense_model(), dense_model(), dense_model()
    from_batches.set_weights(from_arrays.get_weights())
    from_generator.set_weights(from_arrays.get_weights())

    class Batches:
        """A re-iterable dataset of `(x, y)` batches (a new pass each epoch)."""

        def __iter__(self):
            return ((x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8))

    h_arrays = from_arrays.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h_batches = from_batches.fit(Batches(), epochs=2, shuffle=False, verbose=0)
    assert h_batches.history["loss"] == pytest.approx(h_arrays.history["loss"], rel=1e-6)
    for wa, wb in zip(from_arrays.get_weights(), from_batches.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    # A one-pass generator is fine for one epoch.
    from_generator.fit(((x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)), epochs=1, shuffle=False, verbose=0)
    first_epoch = dense_model()
    first_epoch.set_weights(from_generator.get_weights())
    with pytest.raises(ValueError, match="validation_split"):
        first_epoch.fit(iter(Batches()), validation_split=0.5, verbose=0)


def test_validation_split_holds_out_the_last_samples():
    x, y = regression_data(n=40)
    y_poisoned = y.copy()
    y_poisoned[30:] = np.nan  # only the validation samples; training would turn NaN otherwise
    model = dense_model()
    history = model.fit(x, y_poisoned, validation_split=0.25, batch_size=8, epochs=2, verbose=0)
    assert all(math.isfinite(v) for v in history.history["loss"])
    assert all(math.isnan(v) for v in history.history["val_loss"])
    history = model.fit(x, y, validation_split=0.25, batch_size=8, epochs=1, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[30:], y[30:], verbose=0), rel=1e-6)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)


def test_validation_data_is_evaluated_after_each_epoch():
    x, y = regression_data(n=40)
    model = dense_model()
    history = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:]), batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "val_loss"} and len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[30:], y[30:], verbose=0), rel=1e-6)
    # With sample weights: (x, y, sample_weight).
    weights = np.zeros(10)
    weights[:5] = 2.0
    history = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:], weights), epochs=1, verbose=0)
    expected = model.evaluate(x[30:], y[30:], sample_weight=weights, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_batches_follow_shuffle(shuffle):
    x, y = regression_data(n=24)
    fitted, stepped = dense_model(), dense_model()
    stepped.set_weights(fitted.get_weights())
    np.random.seed(11)
    fitted.fit(x, y, batch_size=8, epochs=2, shuffle=shuffle, verbose=0)
    np.random.seed(11)
    for _ in range(2):
        order = np.random.permutation(24) if shuffle else np.arange(24)
        for i in range(0, 24, 8):
            stepped.train_on_batch(x[order[i : i + 8]], y[order[i : i + 8]])
    for a, b in zip(fitted.get_weights(), stepped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_sample_weight():
    x, y = regression_data(n=20)
    model = dense_model()
    errors = ((model.predict(x) - y) ** 2)[:, 0]
    weights = np.linspace(0.0, 2.0, 20)
    # Keras's "sum_over_batch_size": the weighted sum over the number of samples.
    assert model.evaluate(x, y, sample_weight=weights, batch_size=20, verbose=0) == pytest.approx(
        np.sum(weights * errors) / 20, rel=1e-5
    )
    assert model.test_on_batch(x, y, sample_weight=weights) == pytest.approx(np.sum(weights * errors) / 20, rel=1e-5)
    # Zero weights: no gradient, the weights do not move.
    before = model.get_weights()
    model.fit(x, y, sample_weight=np.zeros(20), epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Weights of 0 on half the samples train as if those samples were absent, with the loss
    # still divided by all 20 samples: as the other half alone at half the learning rate.
    masked, subset = dense_model(lr=0.1), dense_model(lr=0.05)
    subset.set_weights(masked.get_weights())
    mask = np.r_[np.ones(10), np.zeros(10)]
    masked.fit(x, y, sample_weight=mask, batch_size=20, epochs=3, shuffle=False, verbose=0)
    subset.fit(x[:10], y[:10], batch_size=10, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(masked.get_weights(), subset.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_initial_epoch_and_history():
    x, y = regression_data()
    model = dense_model()
    seen = []
    history = model.fit(
        x,
        y,
        epochs=5,
        initial_epoch=3,
        batch_size=10,
        validation_data=(x, y),
        verbose=0,
        callbacks=[cbks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))],
    )
    assert seen == [3, 4] and history.epoch == [3, 4]
    assert set(history.history) == {"loss", "val_loss"}
    assert all(len(v) == 2 for v in history.history.values())
    assert history.model is model and history.params["epochs"] == 5 and history.params["steps"] == 4
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    # Each epoch's loss is the mean over its batches, weighted by their sizes.
    model = dense_model()
    batch_losses = []
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[
            cbks.LambdaCallback(
                on_train_batch_begin=lambda batch, logs: batch_losses.append(
                    model.evaluate(x[16 * batch : 16 * batch + 16], y[16 * batch : 16 * batch + 16], verbose=0)
                )
            )
        ],
    )
    assert history.history["loss"][0] == pytest.approx(np.dot(batch_losses, [16, 16, 8]) / 40, rel=1e-5)


def test_evaluate_predict_and_batch_methods():
    x, y_cls, y_reg = two_output_data(n=21)
    model = two_output_model()
    model.compile("adam", [rk.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"], metrics=["accuracy"])
    values = model.evaluate(x, [y_cls, y_reg], batch_size=5, verbose=0)
    as_dict = model.evaluate(x, [y_cls, y_reg], batch_size=5, return_dict=True, verbose=0)
    assert list(as_dict) == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_accuracy"]
    assert values == pytest.approx(list(as_dict.values()), rel=1e-6)

    predicted = model.predict(x, batch_size=4)  # 21 samples: a last batch of 1
    eager = model(x)
    assert isinstance(predicted, list) and all(isinstance(p, np.ndarray) for p in predicted)
    for p, e in zip(predicted, eager):
        np.testing.assert_allclose(p, np.asarray(e), rtol=1e-5, atol=1e-6)
    on_batch = model.predict_on_batch(x[:3])
    np.testing.assert_allclose(on_batch[0], predicted[0][:3], rtol=1e-5, atol=1e-6)

    before = model.get_weights()
    tested = model.test_on_batch(x, [y_cls, y_reg], return_dict=True)
    assert tested == pytest.approx(model.evaluate(x, [y_cls, y_reg], batch_size=21, return_dict=True, verbose=0))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    trained = model.train_on_batch(x, [y_cls, y_reg])
    assert trained[0] == pytest.approx(tested["loss"], rel=1e-5)  # the loss before the step
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.evaluate(x, [y_cls, y_reg], batch_size=21, verbose=0)[0] < tested["loss"]


def test_fit_with_mismatched_sizes_names_both():
    x, y = regression_data(n=40)
    model = dense_model()
    with pytest.raises(ValueError, match=r"40.*30|30.*40"):
        model.fit(x, y[:30], verbose=0)
    with pytest.raises(ValueError, match=r"40.*30|30.*40"):
        model.evaluate(x, y[:30], verbose=0)


def test_verbose_zero_prints_nothing(capsys):
    x, y = regression_data()
    model = dense_model()
    model.fit(x, y, validation_split=0.2, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_verbose_two_prints_one_line_per_epoch(capsys):
    x, y = regression_data()
    dense_model().fit(x, y, batch_size=10, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert all(re.fullmatch(r"4/4 \[={30}\] - \d+s \d+ms/step - loss: \d+\.\d{4}", line) for line in lines[1::2])


# --- callbacks --------------------------------------------------------------------------------


def scripted_monitor(values):
    """A callback that writes `values[epoch]` as the "score" log, for the monitors after it."""
    return cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("score", values[epoch]))


def weights_recorder(model, store):
    return cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: store.append(model.get_weights()))


def test_early_stopping_patience():
    x, y = regression_data()
    # The loss never improves after the first epoch (without shuffling, not even by rounding).
    model = dense_model(lr=0.0)
    stopper = cbks.EarlyStopping(monitor="loss", patience=2)
    history = model.fit(x, y, epochs=20, shuffle=False, verbose=0, callbacks=[stopper])
    assert len(history.epoch) == 3 and stopper.stopped_epoch == 2
    history = dense_model(lr=0.0).fit(
        x, y, epochs=20, shuffle=False, verbose=0, callbacks=[cbks.EarlyStopping("loss", patience=5)]
    )
    assert len(history.epoch) == 6
    # Improving all along: never stops.
    history = dense_model(lr=0.05).fit(x, y, epochs=6, verbose=0, callbacks=[cbks.EarlyStopping("loss", patience=1)])
    assert len(history.epoch) == 6


def test_early_stopping_restores_the_best_weights():
    x, y = regression_data()
    model = dense_model(lr=0.1)
    per_epoch = []
    stopper = cbks.EarlyStopping(monitor="score", patience=2, restore_best_weights=True, mode="min")
    history = model.fit(
        x,
        y,
        epochs=10,
        verbose=0,
        callbacks=[scripted_monitor([3.0, 1.0, 2.0, 4.0, 0.5, 0.1]), weights_recorder(model, per_epoch), stopper],
    )
    assert history.epoch == [0, 1, 2, 3] and stopper.best_epoch == 1
    assert not np.array_equal(per_epoch[1][0], per_epoch[3][0])  # training went on after the best epoch
    for got, best in zip(model.get_weights(), per_epoch[1]):
        np.testing.assert_array_equal(got, best)


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = regression_data()
    model = dense_model(lr=0.1)
    per_epoch = []
    pattern = str(tmp_path / "ckpt-{epoch:02d}.keras")
    best = tmp_path / "best.keras"
    history = model.fit(
        x,
        y,
        epochs=5,
        verbose=0,
        callbacks=[
            scripted_monitor([3.0, 1.0, 2.0, 0.5, 0.7]),
            weights_recorder(model, per_epoch),
            cbks.ModelCheckpoint(pattern, monitor="score", save_best_only=True, mode="min"),
            cbks.ModelCheckpoint(str(best), monitor="score", save_best_only=True, mode="min"),
            cbks.ModelCheckpoint(str(tmp_path / "w-{epoch}.weights.npz"), save_weights_only=True),
        ],
    )
    assert len(history.epoch) == 5
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-01.keras", "ckpt-02.keras", "ckpt-04.keras"]
    assert sorted(p.name for p in tmp_path.glob("w-*")) == [f"w-{e}.weights.npz" for e in range(1, 6)]
    loaded = rk.models.load_model(best)
    for got, want in zip(loaded.get_weights(), per_epoch[3]):  # epoch 4 had the best score
        np.testing.assert_array_equal(got, want)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(
        rk.models.load_model(tmp_path / "ckpt-04.keras").evaluate(x, y, verbose=0)
    )
    model.load_weights(tmp_path / "w-2.weights.npz")
    for got, want in zip(model.get_weights(), per_epoch[1]):
        np.testing.assert_array_equal(got, want)


def test_learning_rate_scheduler():
    x, y = regression_data(n=8)
    model = dense_model(lr=0.1)
    seen, moved = [], []
    state = {}

    def remember(epoch, logs):
        state["start"] = model.get_weights()
        seen.append(float(model.optimizer.learning_rate))

    def movement(epoch, logs):
        moved.append(max(np.abs(a - b).max() for a, b in zip(state["start"], model.get_weights())))

    schedule = lambda epoch, lr: 0.0 if epoch == 2 else 0.1 * 0.5**epoch  # noqa: E731
    history = model.fit(
        x,
        y,
        epochs=4,
        batch_size=8,
        verbose=0,
        callbacks=[
            cbks.LearningRateScheduler(schedule),
            cbks.LambdaCallback(on_epoch_begin=remember, on_epoch_end=movement),
        ],
    )
    assert seen == pytest.approx([0.1, 0.05, 0.0, 0.0125])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.0, 0.0125])
    assert moved[2] == 0.0 and moved[0] > 0 and moved[3] > 0  # the step follows the learning rate


def test_reduce_lr_on_plateau():
    x, y = regression_data()
    model = dense_model(lr=0.1)
    history = model.fit(
        x,
        y,
        epochs=7,
        verbose=0,
        callbacks=[
            scripted_monitor([5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]),
            cbks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.03, mode="min"),
        ],
    )
    # Logged at each epoch's end before any reduction: plateau from epoch 2; reduced after
    # epochs 3 and 5 (the wait restarts after a reduction), never below min_lr.
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.03])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.03)
    with pytest.raises(ValueError, match="factor"):
        cbks.ReduceLROnPlateau(factor=1.5)


def test_csv_logger(tmp_path):
    x, y = regression_data()
    path = tmp_path / "log.csv"
    model = dense_model()
    history = model.fit(x, y, epochs=3, validation_data=(x, y), verbose=0, callbacks=[cbks.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss" and len(lines) == 4
    for epoch, line in enumerate(lines[1:]):
        fields = line.split(",")
        assert int(fields[0]) == epoch
        assert float(fields[1]) == pytest.approx(history.history["loss"][epoch], rel=1e-6)
        assert float(fields[2]) == pytest.approx(history.history["val_loss"][epoch], rel=1e-6)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cbks.CSVLogger(path, separator=";", append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[4].startswith("0;")  # no second header
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cbks.CSVLogger(path)])
    # Overwritten; without validation the val_ columns are still there, "NA" (as Keras writes them).
    assert path.read_text().splitlines()[:2] == ["epoch,loss,val_loss", f"0,{model.history.history['loss'][0]},NA"]


def test_terminate_on_nan_inputs(capsys):
    x, y = regression_data(n=40)
    x[13] = np.nan  # in the second batch of 8
    model = dense_model()
    batches = []
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[
            cbks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch)),
            cbks.TerminateOnNaN(),
        ],
    )
    assert batches == [0, 1] and history.epoch == [0]
    assert not math.isfinite(history.history["loss"][0])
    assert "Invalid loss" in capsys.readouterr().out


def test_terminate_on_nan_with_a_huge_learning_rate():
    x, y = regression_data(n=64)
    model = rk.Sequential([rk.Input((3,)), L.Dense(16), L.Dense(1)])
    model.compile(rk.optimizers.SGD(1e12), "mse")
    batches = []
    with np.errstate(all="ignore"):
        history = model.fit(
            x * 1e3,
            y,
            epochs=50,
            batch_size=4,
            verbose=0,
            callbacks=[
                cbks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(logs["loss"])),
                cbks.TerminateOnNaN(),
            ],
        )
    assert len(history.epoch) == 1 and len(batches) < 16  # stopped within the first epoch
    assert not math.isfinite(batches[-1]) and all(math.isfinite(v) for v in batches[:-1])


def test_lambda_callback_hooks():
    x, y = regression_data(n=20)
    calls = []
    callback = cbks.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"epoch_begin {epoch}"),
        on_batch_begin=lambda batch, logs: calls.append(f"batch_begin {batch}"),
        on_batch_end=lambda batch, logs: calls.append(f"batch_end {batch} {sorted(logs)}"),
        on_epoch_end=lambda epoch, logs: calls.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: calls.append("train_end"),
    )
    dense_model().fit(x, y, epochs=2, batch_size=10, validation_data=(x, y), verbose=0, callbacks=[callback])
    epoch = ["batch_begin 0", "batch_end 0 ['loss']", "batch_begin 1", "batch_end 1 ['loss']"]
    assert calls == [
        "train_begin",
        "epoch_begin 0",
        *epoch,
        "epoch_end 0 ['loss', 'val_loss']",
        "epoch_begin 1",
        *epoch,
        "epoch_end 1 ['loss', 'val_loss']",
        "train_end",
    ]
    with pytest.raises(TypeError):
        cbks.LambdaCallback(on_nothing=print)


# --- the guide: "Performance optimization and CuDNN kernels" ----------------------------------

batch_size = 64
# Each digits image batch is a tensor of shape (batch_size, 8, 8).
# Each input sequence will be of size (8, 8) (height is treated like time).
input_dim = 8

units = 64
output_size = 10  # labels are from 0 to 9


def build_model(allow_cudnn_kernel=True):
    """The guide's `build_model`, verbatim with `keras` = rnnkit."""
    keras = rk
    # CuDNN is only available at the layer level, and not at the cell level.
    # This means `LSTM(units)` will use the CuDNN kernel,
    # while RNN(LSTMCell(units)) will run on non-CuDNN kernel.
    if allow_cudnn_kernel:
        # The LSTM layer with default options uses CuDNN.
        lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
    else:
        # Wrapping a LSTMCell in a RNN layer will not use CuDNN.
        lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units), input_shape=(None, input_dim))
    model = keras.models.Sequential(
        [
            lstm_layer,
            keras.layers.BatchNormalization(),
            keras.layers.Dense(output_size),
        ]
    )
    return model


def load_digits():
    (x_train, y_train), (x_test, y_test) = rk.datasets.digits.load_data()
    return (x_train / 16.0, y_train), (x_test / 16.0, y_test)


PROGRESS_LINE = re.compile(
    r"24/24 \[={30}\] - \d+s \d+ms/step - loss: \d+\.\d{4} - accuracy: [01]\.\d{4}"
    r" - val_loss: \d+\.\d{4} - val_accuracy: [01]\.\d{4}"
)


def test_guide_cudnn_and_non_cudnn_models_agree_before_training():
    fused, stepped = build_model(allow_cudnn_kernel=True), build_model(allow_cudnn_kernel=False)
    stepped.set_weights(fused.get_weights())
    (x_train, y_train), _ = load_digits()
    x, y = x_train[:64], y_train[:64]
    loss = rk.losses.SparseCategoricalCrossentropy(from_logits=True)
    outputs, grads = [], []
    for model in (fused, stepped):
        outputs.append(np.asarray(model.predict_on_batch(x)))
        with rk.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        grads.append([np.asarray(g) for g in tape.gradient(value, model.trainable_weights)])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert [g.shape for g in grads[0]] == [(8, 256), (64, 256), (256,), (64,), (64,), (64, 10), (10,)]
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
        assert np.abs(a).max() > 0


def test_guide_cudnn_section_end_to_end(capsys):
    keras = rk
    (x_train, y_train), (x_test, y_test) = load_digits()
    sample, sample_label = x_train[0], y_train[0]

    model = build_model(allow_cudnn_kernel=True)

    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )

    history = model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and PROGRESS_LINE.fullmatch(out[0]), out  # Keras 3 prints no "Epoch 1/1"
    assert isinstance(history, keras.callbacks.History)
    assert history.history["loss"][0] < math.log(10)  # below chance after one epoch of SGD

    noncudnn_model = build_model(allow_cudnn_kernel=False)
    noncudnn_model.set_weights(model.get_weights())
    noncudnn_model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    # Same weights, same fused kernel: same evaluation before the second model trains.
    before = noncudnn_model.evaluate(x_test, y_test, verbose=0)
    assert before == pytest.approx(model.evaluate(x_test, y_test, verbose=0))
    noncudnn_model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1)
    assert PROGRESS_LINE.fullmatch(capsys.readouterr().out.splitlines()[0])

    with keras.device("CPU:0"):
        cpu_model = build_model(allow_cudnn_kernel=True)
        cpu_model.set_weights(model.get_weights())
        result = keras.ops.argmax(cpu_model.predict_on_batch(keras.ops.expand_dims(sample, 0)), axis=1)
        print("Predicted result is: %s, target result is: %s" % (result.numpy(), sample_label))
    assert result.numpy().shape == (1,)
    assert result.numpy()[0] == np.argmax(model.predict_on_batch(sample[None]), axis=1)[0]
    assert re.fullmatch(r"Predicted result is: \[\d\], target result is: \d\n", capsys.readouterr().out)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras
def test_guide_recipe_trains_like_keras():
    """Same initial weights, same batches (shuffle=False): rnnkit's training trajectory of the
    guide's model with Adam is Keras's, to float32 rounding."""
    keras = keras_or_skip()
    (x_train, y_train), (x_test, y_test) = load_digits()
    x_train, x_test = x_train[:512].astype("float32"), x_test.astype("float32")
    y_train = y_train[:512]
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential(
        [
            keras.Input((None, input_dim)),
            keras.layers.LSTM(units),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10),
        ]
    )
    rk_model = build_model()
    rk_model.set_weights(keras_model.get_weights())
    for model, lib in ((keras_model, keras), (rk_model, rk)):
        loss = lib.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    h_keras = keras_model.fit(x_train, y_train, batch_size=64, epochs=3, shuffle=False, verbose=0).history
    h_rk = rk_model.fit(x_train, y_train, batch_size=64, epochs=3, shuffle=False, verbose=0).history
    assert h_rk["loss"] == pytest.approx(h_keras["loss"], rel=1e-4)
    for a, b in zip(rk_model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-4)
    np.testing.assert_allclose(rk_model.predict(x_test), keras_model.predict(x_test, verbose=0), atol=1e-3)


# --- the guide: NestedCell trained with fit ---------------------------------------------------


def test_guide_nested_cell_trains_with_multi_input_output_fit():
    keras = rk
    unit_1, unit_2, unit_3 = 10, 20, 30
    i1, i2, i3 = 32, 64, 32
    batch_size, num_batches, timestep = 8, 2, 6  # the guide: 64, 10, 50

    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = keras.layers.RNN(cell)

    input_1 = keras.Input((None, i1))
    input_2 = keras.Input((None, i2, i3))

    outputs = rnn((input_1, input_2))

    model = keras.models.Model([input_1, input_2], outputs)

    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])

    rng = np.random.default_rng(8)
    input_1_data = rng.random((batch_size * num_batches, timestep, i1))
    input_2_data = rng.random((batch_size * num_batches, timestep, i2, i3))
    target_1_data = rng.random((batch_size * num_batches, unit_1))
    target_2_data = rng.random((batch_size * num_batches, unit_2, unit_3))
    input_data = [input_1_data, input_2_data]
    target_data = [target_1_data, target_2_data]

    history = model.fit(input_data, target_data, batch_size=batch_size, epochs=3, verbose=0)
    logs = history.history
    name = rnn.name  # the guide's "rnn_1_loss", "rnn_1_1_loss", ...
    assert set(logs) == {"loss", f"{name}_loss", f"{name}_1_loss", f"{name}_accuracy", f"{name}_1_accuracy"}
    for epoch in range(3):
        per_output = logs[f"{name}_loss"][epoch] + logs[f"{name}_1_loss"][epoch]
        assert logs["loss"][epoch] == pytest.approx(per_output, rel=1e-5)
        assert 0.0 <= logs[f"{name}_accuracy"][epoch] <= 1.0 and 0.0 <= logs[f"{name}_1_accuracy"][epoch] <= 1.0
    assert logs["loss"][-1] < logs["loss"][0]
    # The per-output losses are the MSEs of each output.
    out_1, out_2_3 = model.predict(input_data)
    evaluated = model.evaluate(input_data, target_data, return_dict=True, verbose=0)
    assert evaluated[f"{name}_loss"] == pytest.approx(np.mean((out_1 - target_1_data) ** 2), rel=1e-4)
    assert evaluated[f"{name}_1_loss"] == pytest.approx(np.mean((out_2_3 - target_2_data) ** 2), rel=1e-4)


# --- accuracy of the guide's recipe on the digits ---------------------------------------------

# Test accuracy after 20 epochs (LSTM(64) + BatchNormalization + Dense(10), Adam, batch 64; first
# 1500 digits for training, the other 297 for testing), Keras 3.15 on JAX against rnnkit:
# - Over seeds 0..199 both medians are 0.8485 (means 0.8439 and 0.8414, sd 0.040 and 0.041).
#   Over seeds 0..39 alone they are 0.867 (Keras) and 0.838 (rnnkit), but the 40-seed median
#   moves by about 0.007 (sd) from block to block: 0.867/0.842/0.855/0.840/0.847 for Keras and
#   0.838/0.850/0.843/0.845/0.859 for rnnkit over the five blocks of 40.
# - The arithmetic is the same: given Keras's initial weights and Keras's batch order, rnnkit
#   reproduces Keras's test accuracy exactly for all 40 seeds tested;
#   test_guide_recipe_trains_like_keras checks a short version of that. The initial weights have
#   the same distributions (per-variable bounds, spreads, orthogonality, forget bias 1).
# So a median of 0.85 over five seeds is the coin flip it is for Keras itself. The test takes the
# first five seeds, fixed before measuring (median 0.8485), and a floor of 0.84.
ACCURACY_SEEDS = range(0, 5)
ACCURACY_FLOOR = 0.84


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_guide_recipe_accuracy_on_digits(policy):
    # mixed_bfloat16: the LSTM's products in bfloat16 (on AMX tiles where the CPU has them), the
    # same band.
    (x_train, y_train), (x_test, y_test) = load_digits()
    accuracies = []
    for seed in ACCURACY_SEEDS:
        rk.utils.set_random_seed(seed)
        np.random.seed(seed)
        rk.config.set_dtype_policy(policy)
        try:
            model = build_model()
        finally:
            rk.config.set_dtype_policy(None)
        model.compile(
            loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="adam", metrics=["accuracy"]
        )
        model.fit(x_train, y_train, batch_size=64, epochs=20, verbose=0)
        accuracies.append(model.evaluate(x_test, y_test, verbose=0)[1])
    assert np.median(accuracies) >= ACCURACY_FLOOR, accuracies
