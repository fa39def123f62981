"""The compiled execution (`compile(jit_compile=...)`, `rnnkit.models.compiled`): the planned
steps give the same bits as eager execution (`run_eagerly=True`: losses, metrics, weights and
BatchNormalization's moving statistics after several steps, dropout's random streams,
predictions), models it cannot plan run eagerly (with a warning when `jit_compile=True`
asked for it), and the arguments are checked."""

import re
import warnings

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import layers as L
from rnnkit.layers.layer import Layer


def mnist_model(run_eagerly, **options):
    """The guide's MNIST model (benches/peers.py's W1), with options for the LSTM."""
    rk.utils.set_random_seed(7)
    x_in = rk.Input(shape=(6, 5))
    out = L.Dense(4)(L.BatchNormalization()(L.LSTM(8, **options)(x_in)))
    model = rk.Model(x_in, out)
    model.compile(
        optimizer=rk.optimizers.SGD(learning_rate=0.1),
        loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
    )
    return model


def addition_model(run_eagerly):
    """The Keras addition seq2seq (benches/peers.py's W8), with a Dropout layer."""
    rk.utils.set_random_seed(7)
    model = rk.Sequential(
        [
            rk.Input(shape=(5, 6)),
            L.LSTM(8),
            L.RepeatVector(3),
            L.LSTM(8, return_sequences=True, dropout=0.3),
            L.Dropout(0.25),
            L.Dense(6, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"], run_eagerly=run_eagerly)
    return model


def two_output_model(run_eagerly):
    rk.utils.set_random_seed(7)
    x_in = rk.Input(shape=(6, 5))
    hidden = L.GRU(8, return_sequences=True)(x_in)
    last = L.SimpleRNN(4)(hidden)
    seq = L.Dense(2, name="seq")(L.LayerNormalization()(hidden))
    cls = L.Dense(3, name="cls")(L.Activation("relu")(last))
    model = rk.Model(x_in, [seq, cls])
    model.compile(optimizer="rmsprop", loss=["mse", rk.losses.SparseCategoricalCrossentropy(from_logits=True)])
    model.run_eagerly = run_eagerly
    return model


def mnist_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 5)).astype("float32"), rng.integers(0, 4, n)


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.fixture
def layer_calls(monkeypatch):
    """Counts the calls of `Layer.__call__` (the eager machinery the plan skips)."""
    counter = {"calls": 0}
    original = Layer.__call__

    def counting(self, *args, **kwargs):
        counter["calls"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Layer, "__call__", counting)
    return counter


@pytest.mark.parametrize("options", [{}, {"dropout": 0.2, "recurrent_dropout": 0.3}])
def test_planned_training_steps_are_bit_identical_to_eager(options, layer_calls):
    x, y = mnist_data()
    eager, planned = mnist_model(True, **options), mnist_model(False, **options)
    assert (eager.jit_compile, planned.jit_compile) == (False, True)
    results = {}
    for name, model in (("eager", eager), ("planned", planned)):
        rk.utils.set_random_seed(3)  # the dropout masks' stream
        before = layer_calls["calls"]
        results[name] = [model.train_on_batch(x, y, return_dict=True) for _ in range(4)]
        results[name].append(model.test_on_batch(x, y, return_dict=True))
        results[name].append(model.predict_on_batch(x))
        results[name].append(model.predict_on_batch(x))  # the plan's forward, after its first call
        calls = layer_calls["calls"] - before
        if name == "eager":
            assert calls == 7 * 4  # the model and its three layers at each step
        else:
            # Only the first call of each signature (training, inference) goes through __call__.
            assert calls == 2 * 4
    for a, b in zip(results["eager"], results["planned"], strict=True):
        if isinstance(a, dict):
            assert a == b
        else:
            np.testing.assert_array_equal(a, b)
    assert_same_weights(eager, planned)  # BatchNormalization's moving statistics included


def test_planned_fit_of_a_sequential_seq2seq_is_bit_identical_to_eager():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 5, 6)).astype("float32")
    y = np.eye(6, dtype="float32")[rng.integers(0, 6, (40, 3))]
    histories, predictions, models = [], [], []
    for run_eagerly in (True, False):
        model = addition_model(run_eagerly)
        rk.utils.set_random_seed(5)  # dropout, and fit's shuffling (NumPy's global generator)
        history = model.fit(x, y, batch_size=16, epochs=2, validation_data=(x[:8], y[:8]), verbose=0)
        histories.append(history.history)
        predictions.append(model.predict(x, batch_size=16, verbose=0))
        models.append(model)
    assert models[1]._graph_plan.steps is not None and models[0]._graph_plan is None
    assert histories[0] == histories[1]
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert_same_weights(*models)


def test_planned_two_output_model_and_float64_inputs_match_eager():
    x, y = mnist_data()
    y_seq = np.random.default_rng(2).standard_normal((16, 6, 2)).astype("float32")
    eager, planned = two_output_model(True), two_output_model(False)
    assert planned.jit_compile
    outs = []
    for model in (eager, planned):
        logs = [model.train_on_batch(x.astype("float64"), [y_seq, y], return_dict=True) for _ in range(3)]
        outs.append((logs, model.predict_on_batch(x.astype("float64")), model.predict_on_batch(x.astype("float64"))))
    assert outs[0][0] == outs[1][0]
    for a, b in zip(outs[0][1] + outs[0][2], outs[1][1] + outs[1][2], strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert_same_weights(eager, planned)


class ScaledDense(L.Dense):
    """A custom layer: its `call` is not one the plan may skip `__call__` for."""

    def call(self, inputs):
        return super().call(inputs) * 2.0


def custom_model(**compile_args):
    rk.utils.set_random_seed(7)
    model = rk.Sequential([rk.Input(shape=(6, 5)), L.LSTM(8), ScaledDense(4)])
    model.compile(optimizer="sgd", loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), **compile_args)
    return model


def test_jit_compile_true_on_a_model_it_cannot_plan_warns_once_and_runs_eagerly(layer_calls):
    x, y = mnist_data()
    model = custom_model(jit_compile=True)
    assert model.jit_compile is False
    with pytest.warns(UserWarning, match=r"jit_compile=True, but the model runs eagerly \(layer scaled_dense"):
        first = model.train_on_batch(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = layer_calls["calls"]
        second = model.train_on_batch(x, y)
        assert layer_calls["calls"] - before == 3  # eager: the model and its two layers
    eager = custom_model(run_eagerly=True)
    assert [eager.train_on_batch(x, y) for _ in range(2)] == [first, second]
    assert_same_weights(eager, model)


def test_auto_runs_models_it_cannot_plan_eagerly_without_a_warning():
    x, y = mnist_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = custom_model()
        model.train_on_batch(x, y)
        assert model.jit_compile is False
        masked = rk.Sequential([rk.Input(shape=(6,)), L.Embedding(10, 4, mask_zero=True), L.LSTM(3)])
        masked.compile(optimizer="sgd", loss="mse")
        assert masked.jit_compile is False
        masked.predict_on_batch(np.array([[1, 2, 0, 0, 0, 0]]))


def test_the_plan_follows_a_sequential_model_that_grows():
    model = rk.Sequential([rk.Input(shape=(6, 5)), L.LSTM(8)])
    x, _ = mnist_data(4)
    for _ in range(2):
        assert model.predict_on_batch(x).shape == (4, 8)
    model.add(L.Dense(3))
    for _ in range(2):
        assert model.predict_on_batch(x).shape == (4, 3)
    model.pop()
    assert model.predict_on_batch(x).shape == (4, 8)


def test_run_eagerly_true_overrides_jit_compile_true_with_keras_warning():
    with pytest.warns(UserWarning, match="If `run_eagerly` is True, then `jit_compile` cannot also be True"):
        model = custom_model(run_eagerly=True, jit_compile=True)
    assert (model.run_eagerly, model.jit_compile) == (True, False)
    model.run_eagerly = False
    assert model.jit_compile is False  # jit_compile was disabled
    model.jit_compile = "auto"
    assert model.jit_compile is False  # the custom layer cannot be planned
    planned = mnist_model(False)
    assert planned.jit_compile is True
    planned.jit_compile = False
    assert planned.jit_compile is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"jit_compile": "xla"}, "jit_compile: expected 'auto', True or False, received 'xla'."),
        ({"jit_compile": 1}, "jit_compile: expected 'auto', True or False, received 1."),
        ({"run_eagerly": "yes"}, "run_eagerly: expected True or False, received 'yes'."),
        ({"run_eagerly": None}, "run_eagerly: expected True or False, received None."),
    ],
)
def test_compile_rejects_bad_run_eagerly_and_jit_compile(args, message):
    model = rk.Sequential([rk.Input(shape=(3,)), L.Dense(1)])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.compile(optimizer="sgd", loss="mse", **args)
    with pytest.raises(ValueError, match="^" + message.split(":")[0]):
        setattr(model, *next(iter(args.items())))


def test_a_loss_added_outside_a_call_is_dropped_by_the_next_step_as_in_eager_execution():
    x, y = mnist_data()
    losses = []
    for run_eagerly in (True, False):
        model = mnist_model(run_eagerly)
        model.train_on_batch(x, y)
        model.add_loss(rk.ops.convert_to_tensor(np.float32(100.0)))
        losses.append(model.train_on_batch(x, y, return_dict=True)["loss"])
    assert losses[0] == losses[1] < 100


def test_a_batch_that_fails_the_models_checks_fails_them_at_every_call():
    # A functional model checks its inputs' shapes in `__call__`; the LSTM would take 7 steps.
    x_in = rk.Input(shape=(6, 5))
    model = rk.Model(x_in, L.Dense(2)(L.LSTM(3)(x_in)))
    for _ in range(3):
        with pytest.raises(ValueError, match=r"expected shape \(None, 6, 5\), received \(2, 7, 5\)"):
            model.predict_on_batch(np.zeros((2, 7, 5), "float32"))
    assert model.predict_on_batch(np.zeros((2, 6, 5), "float32")).shape == (2, 2)


class LoggingModel(rk.Model):
    """A functional model whose `__call__` does more than `Layer.__call__`."""

    calls = 0

    def __call__(self, *args, **kwargs):
        LoggingModel.calls += 1
        return super().__call__(*args, **kwargs)


def test_a_model_class_with_its_own_call_runs_eagerly():
    x_in = rk.Input(shape=(6, 5))
    model = LoggingModel(x_in, L.Dense(2)(L.LSTM(3)(x_in)))
    assert model.jit_compile is False
    x, _ = mnist_data(4)
    for _ in range(3):
        model.predict_on_batch(x)
    assert LoggingModel.calls == 3


def test_keras_files_record_run_eagerly_and_jit_compile_and_loading_restores_run_eagerly(tmp_path):
    import json
    import zipfile

    for compile_args, expected in (({}, (False, "auto")), ({"run_eagerly": True, "jit_compile": False}, (True, False))):
        model = custom_model(**compile_args)
        model.save(tmp_path / "model.keras")
        with zipfile.ZipFile(tmp_path / "model.keras") as archive:
            config = json.loads(archive.read("config.json"))["compile_config"]
        assert (config["run_eagerly"], config["jit_compile"]) == expected
        loaded = rk.models.load_model(tmp_path / "model.keras", custom_objects={"ScaledDense": ScaledDense})
        assert loaded.run_eagerly is expected[0]


def inference_models():
    """Models whose planned inference covers each array path and each fallback to `call`."""
    rk.utils.set_random_seed(11)
    x_in = rk.Input(shape=(6, 5))
    hidden = L.GRU(7, return_sequences=True, go_backwards=True)(x_in)
    hidden = L.LSTM(6, return_sequences=True, zoneout=0.3, recurrent_dropout=0.2)(hidden)
    hidden = L.SimpleRNN(4, activation="relu")(L.Dropout(0.5)(hidden))
    normed = L.BatchNormalization(axis=-1, scale=False)(L.Activation("tanh")(hidden))
    yield "rnn variants", rk.Model(x_in, L.Dense(3, activation="softmax")(L.LayerNormalization()(normed)))
    yield "stacked cells", rk.Sequential([rk.Input(shape=(6, 5)), L.RNN([L.LSTMCell(4), L.GRUCell(3)]), L.Dense(2)])
    yield "stateful", rk.Sequential([rk.Input(shape=(6, 5), batch_size=4), L.LSTM(3, stateful=True), L.Dense(2)])
    quantized = rk.Sequential([rk.Input(shape=(6, 5)), L.LSTM(5), L.Dense(4)])
    quantized.quantize("int8")
    yield "int8", quantized
    yield "float64", rk.Sequential([rk.Input(shape=(6, 5)), L.LSTM(3, dtype="float64"), L.Dense(2, dtype="float64")])


@pytest.mark.parametrize("name", [name for name, _ in inference_models()])
def test_planned_inference_on_arrays_gives_the_eager_bits(name):
    x, _ = mnist_data(4)
    model = dict(inference_models())[name]
    model.compile(optimizer="sgd", loss="mse")
    planned = [model.predict_on_batch(x) for _ in range(3)]  # the first call runs `__call__`
    model.run_eagerly = True
    if name == "stateful":
        model.layers[0].reset_state()
    eager = [model.predict_on_batch(x) for _ in range(3)]
    for a, b in zip(planned, eager, strict=True):
        np.testing.assert_array_equal(a, b)
    if name == "stateful":
        assert not np.array_equal(eager[0], eager[1])  # the states carried over
    if name == "float64":
        assert planned[0].dtype == np.float64


def test_planned_inference_skips_the_calls_of_layers_with_an_array_path(monkeypatch):
    x, y = mnist_data()
    model = mnist_model(False)
    model.predict_on_batch(x)
    model.test_on_batch(x, y)
    calls = []
    for cls in (L.LSTM, L.BatchNormalization, L.Dense):
        original = cls.call

        def counting(self, *args, original=original, **kwargs):
            calls.append(type(self).__name__)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "call", counting)
    before = model.get_weights()
    model.predict_on_batch(x)
    model.test_on_batch(x, y)
    assert calls == []
    model.train_on_batch(x, y)  # training runs the layers' calls, on the tape
    assert calls == ["LSTM", "BatchNormalization", "Dense"]
    for a, b in zip(before, model.get_weights(), strict=True):
        assert not np.array_equal(a, b)  # the weights moved, and the next inference reads them
    model.run_eagerly = True
    eager = model.predict_on_batch(x)
    model.run_eagerly = False
    np.testing.assert_array_equal(model.predict_on_batch(x), eager)
