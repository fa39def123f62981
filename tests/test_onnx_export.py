"""ONNX export (rnnkit.export): every recurrent layer and merge mode, masks, the guide's models,
run in onnxruntime and compared with rnnkit's own outputs (atol 1e-5)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import rnnkit as rk
from rnnkit.export import export_onnx

layers = rk.layers
ATOL = 1e-5


def randomize(model, seed=0):
    """Every weight random (biases included, so a wrong bias layout shows); variances positive."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(scale=0.5, size=tuple(w.shape))
        if "variance" in w.name:
            value = np.abs(value) + 0.5
        w.assign(value.astype(np.asarray(w).dtype))
    return model


def run_onnx(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def check(model, inputs, tmp_path, name="model.onnx"):
    """Exports `model`, runs it in onnxruntime on `inputs` and compares every output with rnnkit's."""
    inputs = inputs if isinstance(inputs, list) else [inputs]
    path = tmp_path / name
    model.export(path, format="onnx")
    got = run_onnx(path, inputs)
    want = model(inputs if len(inputs) > 1 else inputs[0])
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=ATOL)
    return path


def sequences(batch=3, steps=7, features=4, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def padded(batch=4, steps=7, features=4, seed=2):
    """Right-padded sequences (zeros after each sample's length), lengths 7, 4, 1 and 0."""
    x = sequences(batch, steps, features, seed)
    for row, length in enumerate([7, 4, 1, 0][:batch]):
        x[row, length:] = 0.0
    return x


def one_layer(layer, features=4):
    inp = rk.Input((None, features))
    out = layer(inp)
    return randomize(rk.Model(inp, out))


RECURRENT = {
    "lstm": lambda **kw: layers.LSTM(5, **kw),
    "gru": lambda **kw: layers.GRU(5, **kw),
    "gru_reset_before": lambda **kw: layers.GRU(5, reset_after=False, **kw),
    "simple_rnn": lambda **kw: layers.SimpleRNN(5, **kw),
    "simple_rnn_relu": lambda **kw: layers.SimpleRNN(5, activation="relu", **kw),
    "lstm_hard_sigmoid": lambda **kw: layers.LSTM(5, recurrent_activation="hard_sigmoid", **kw),
    "gru_no_bias": lambda **kw: layers.GRU(5, use_bias=False, **kw),
    "rnn_lstm_cell": lambda **kw: layers.RNN(layers.LSTMCell(5), **kw),
    "lstm_peephole": lambda **kw: layers.LSTM(5, peephole=True, **kw),
    "rnn_stacked_cells": lambda **kw: layers.RNN([layers.GRUCell(5), layers.GRUCell(3)], **kw),
}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_recurrent_layer(kind, return_sequences, tmp_path):
    model = one_layer(RECURRENT[kind](return_sequences=return_sequences))
    check(model, sequences(), tmp_path)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_go_backwards_and_return_state(kind, tmp_path):
    for return_sequences in (False, True):
        model = one_layer(RECURRENT[kind](go_backwards=True, return_sequences=return_sequences, return_state=True))
        check(model, sequences(), tmp_path)
    path = tmp_path / "model.onnx"
    ops = [(n.op_type, {a.name: a for a in n.attribute}) for n in onnx.load(path).graph.node]
    (direction,) = [a["direction"].s for op, a in ops if op in ("LSTM", "GRU", "RNN")]
    assert direction == b"reverse"


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_bidirectional(kind, merge_mode, return_sequences, tmp_path):
    layer = layers.Bidirectional(RECURRENT[kind](return_sequences=return_sequences), merge_mode=merge_mode)
    path = check(one_layer(layer), sequences(), tmp_path)
    recurrent = [n for n in onnx.load(path).graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert len(recurrent) == 1
    assert {a.name: a.s for a in recurrent[0].attribute}["direction"] == b"bidirectional"


def test_peephole_lstm_as_the_p_input(tmp_path):
    """Peepholes go to ONNX's P (order i, o, f), with masks, initial-less reverse runs and pairs."""
    for layer in (
        layers.LSTM(5, peephole=True, go_backwards=True, return_sequences=True, return_state=True),
        layers.Bidirectional(layers.LSTM(5, peephole=True, return_sequences=True)),
    ):
        path = check(one_layer(layer), sequences(), tmp_path)
        (lstm,) = [n for n in onnx.load(path).graph.node if n.op_type == "LSTM"]
        assert len(lstm.input) == 8 and lstm.input[7].endswith("/P")
    masked = rk.Sequential([rk.Input((None, 4)), layers.Masking(), layers.LSTM(5, peephole=True)])
    check(randomize(masked), padded(), tmp_path)


def test_indrnn_and_projection_are_refused_by_name(tmp_path):
    model = one_layer(layers.IndRNN(5))
    with pytest.raises(ValueError, match="IndRNNCell is not a built-in cell"):
        model.export(tmp_path / "m.onnx")
    model = one_layer(layers.LSTM(5, projection=2))
    with pytest.raises(ValueError, match="projection=... has no equivalent in ONNX's LSTM operator"):
        model.export(tmp_path / "m.onnx")
    model = one_layer(layers.GRU(5, zoneout=0.1))
    with pytest.raises(ValueError, match="zoneout=0.1 has no equivalent in ONNX's recurrent operators"):
        model.export(tmp_path / "m.onnx")


def test_bidirectional_return_state(tmp_path):
    layer = layers.Bidirectional(layers.LSTM(5, return_sequences=True, return_state=True))
    check(one_layer(layer), sequences(), tmp_path)


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.LSTM(5, return_sequences=True),
        lambda: layers.LSTM(5),
        lambda: layers.GRU(5, return_sequences=True, zero_output_for_mask=True),
        lambda: layers.GRU(5, return_sequences=True, go_backwards=True),
        lambda: layers.SimpleRNN(5, go_backwards=True, return_state=True),
        lambda: layers.Bidirectional(layers.LSTM(5, return_sequences=True), merge_mode="sum"),
        lambda: layers.Bidirectional(layers.GRU(5), merge_mode="concat"),
        lambda: layers.Bidirectional(layers.SimpleRNN(5, return_sequences=True), merge_mode=None),
    ],
    ids=[
        "lstm_seq",
        "lstm_last",
        "gru_zero_output",
        "gru_backwards",
        "rnn_backwards_state",
        "bi_sum",
        "bi_last",
        "bi_none",
    ],
)
def test_masking_as_sequence_lens(make, tmp_path):
    inp = rk.Input((None, 4))
    out = make()(layers.Masking()(inp))
    model = randomize(rk.Model(inp, out))
    path = check(model, padded(), tmp_path)
    recurrent = [n for n in onnx.load(path).graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert recurrent[0].input[4]  # sequence_lens is wired


def test_embedding_mask_zero_stacked(tmp_path):
    """The guide's stacked model with masks: Embedding(mask_zero) -> LSTM -> LSTM -> Dense."""
    model = randomize(
        rk.Sequential(
            [
                rk.Input((None,), dtype="int32"),
                layers.Embedding(20, 6, mask_zero=True),
                layers.LSTM(8, return_sequences=True),
                layers.Bidirectional(layers.GRU(4, return_sequences=True)),
                layers.LSTM(5),
                layers.Dense(3, activation="softmax"),
            ]
        )
    )
    tokens = np.random.default_rng(3).integers(1, 20, size=(4, 9)).astype("int32")
    for row, length in enumerate([9, 5, 2, 1]):
        tokens[row, length:] = 0
    check(model, tokens, tmp_path)


def test_guide_mnist_model(tmp_path):
    """The guide's MNIST model: LSTM(64) -> BatchNormalization -> Dense(10)."""
    model = randomize(
        rk.Sequential([layers.LSTM(64, input_shape=(None, 28)), layers.BatchNormalization(), layers.Dense(10)])
    )
    x = np.random.default_rng(4).random((5, 28, 28)).astype("float32")
    path = check(model, x, tmp_path)
    # Dynamic batch and time axes: other sizes run from the same file.
    x2 = np.random.default_rng(5).random((2, 11, 28)).astype("float32")
    np.testing.assert_allclose(run_onnx(path, [x2])[0], np.asarray(model(x2)), atol=ATOL)
    dims = [d.dim_param or d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 28]


def test_guide_encoder_decoder(tmp_path):
    """The guide's encoder-decoder: the encoder's states start the decoder (initial_state)."""
    encoder_input = rk.Input(shape=(None,), dtype="int32")
    encoder_embedded = layers.Embedding(input_dim=30, output_dim=8)(encoder_input)
    output, state_h, state_c = layers.LSTM(16, return_state=True, name="encoder")(encoder_embedded)
    decoder_input = rk.Input(shape=(None,), dtype="int32")
    decoder_embedded = layers.Embedding(input_dim=20, output_dim=8)(decoder_input)
    decoder_output = layers.LSTM(16, name="decoder")(decoder_embedded, initial_state=[state_h, state_c])
    output = layers.Dense(10)(decoder_output)
    model = randomize(rk.Model([encoder_input, decoder_input], output))
    rng = np.random.default_rng(6)
    check(model, [rng.integers(0, 30, (3, 6)).astype("int32"), rng.integers(0, 20, (3, 4)).astype("int32")], tmp_path)


def test_bidirectional_initial_state(tmp_path):
    inp = rk.Input((None, 4))
    states = [rk.Input((5,)) for _ in range(4)]
    out = layers.Bidirectional(layers.LSTM(5, return_sequences=True))(inp, initial_state=states)
    model = randomize(rk.Model([inp, *states], out))
    rng = np.random.default_rng(7)
    check(model, [sequences(), *[rng.normal(size=(3, 5)).astype("float32") for _ in range(4)]], tmp_path)


def test_other_layers(tmp_path):
    inp = rk.Input((6,))
    x = layers.Dense(8, activation="relu")(inp)
    x = layers.Dropout(0.5)(x)
    x = layers.RepeatVector(5)(x)
    x = layers.GRU(7, return_sequences=True)(x)
    x = layers.LayerNormalization()(x)
    x = layers.TimeDistributed(layers.Dense(3, activation="tanh"))(x)
    x = layers.Activation("sigmoid")(x)
    y = layers.Concatenate()([x, layers.TimeDistributed(layers.Dense(2))(x)])
    y = layers.Add()([y, y])
    flat = layers.Flatten()(y)
    model = randomize(rk.Model(inp, [y, flat]))
    check(model, np.random.default_rng(8).normal(size=(3, 6)).astype("float32"), tmp_path)


def test_export_function_and_opset_14(tmp_path):
    model = one_layer(layers.Bidirectional(layers.GRU(5)))
    proto = export_onnx(model, tmp_path / "m.onnx", opset_version=14)
    assert proto.opset_import[0].version == 14
    x = sequences()
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", [x])[0], np.asarray(model(x)), atol=ATOL)
    assert rk.export.export_onnx is export_onnx


def test_unsupported_layers_listed_in_one_error(tmp_path):
    class Custom(rk.layers.Layer):
        def call(self, x):
            return x * 2

    model = rk.Sequential(
        [
            layers.LSTM(4, return_sequences=True, stateful=True, batch_input_shape=(2, 5, 3)),
            Custom(name="doubler"),
            layers.GRU(3, activation="gelu"),
        ]
    )
    with pytest.raises(ValueError) as info:
        model.export(tmp_path / "m.onnx")
    message = str(info.value)
    assert "3 layer(s) cannot be exported" in message
    assert "(LSTM): stateful=True" in message
    assert "'doubler' (Custom): no ONNX conversion for this layer type" in message
    assert "(GRU): activation 'gelu' has no ONNX recurrent equivalent" in message
    assert not (tmp_path / "m.onnx").exists()


def test_export_argument_errors(tmp_path):
    model = one_layer(layers.LSTM(3))
    with pytest.raises(ValueError, match="`format` expected 'onnx', received 'tf_saved_model'"):
        model.export(tmp_path / "m", format="tf_saved_model")
    with pytest.raises(ValueError, match="`opset_version` expected an integer >= 14, received 13"):
        model.export(tmp_path / "m.onnx", opset_version=13)
    with pytest.raises(ValueError, match="no graph to export"):
        rk.Sequential([layers.LSTM(3)]).export(tmp_path / "m.onnx")


def test_nested_models_inlined(tmp_path):
    """A Sequential inside a functional model, itself inside a Sequential; the mask flows through."""
    inner = rk.Sequential([rk.Input((None, 4)), layers.Masking(), layers.LSTM(6, return_sequences=True)])
    inp = rk.Input((None, 4))
    middle = rk.Model(inp, layers.Bidirectional(layers.GRU(3))(inner(inp)))
    model = randomize(rk.Sequential([rk.Input((None, 4)), middle, layers.Dense(2)]))
    check(model, padded(), tmp_path)
