"""The functional graph as Keras exposes it, checked against Keras 3 (jax backend): `model.input`
/ `output` / `input_shape` / `output_shape`, `layer.input` / `output`, `get_layer`, models built
from inner tensors of a trained model (the inference models of keras-io's
`examples/nlp/lstm_seq2seq.py`, same numbers as Keras's with the same weights), `clone_model`,
`to_json` / `model_from_json` and `save_model`."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import json

import numpy as np
import pytest

import rnnkit as rk

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras

TOKENS_IN, TOKENS_OUT, LATENT = 7, 9, 8


def seq2seq_training_model(lib):
    """The training model of lstm_seq2seq.py, verbatim but for `lib` and the sizes."""
    encoder_inputs = lib.Input(shape=(None, TOKENS_IN))
    encoder = lib.layers.LSTM(LATENT, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = lib.Input(shape=(None, TOKENS_OUT))
    decoder_lstm = lib.layers.LSTM(LATENT, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = lib.layers.Dense(TOKENS_OUT, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    return lib.Model([encoder_inputs, decoder_inputs], decoder_outputs)


def seq2seq_inference_models(lib, model):
    """The example's inference models, built from the trained model's tensors and layers."""
    encoder_inputs = model.input[0]  # input_1
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output  # lstm_1
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = lib.Model(encoder_inputs, encoder_states)

    decoder_inputs = model.input[1]  # input_2
    decoder_state_input_h = lib.Input(shape=(LATENT,))
    decoder_state_input_c = lib.Input(shape=(LATENT,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = lib.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)
    return encoder_model, decoder_model


def decode_sequence(encoder_model, decoder_model, input_seq, steps=4):
    """The example's greedy sampling loop (a fixed number of steps, no token table)."""
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((1, 1, TOKENS_OUT))
    target_seq[0, 0, 0] = 1.0
    decoded, probabilities = [], []
    for _ in range(steps):
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled = int(np.argmax(output_tokens[0, -1, :]))
        decoded.append(sampled)
        probabilities.append(output_tokens[0, -1])
        target_seq = np.zeros((1, 1, TOKENS_OUT))
        target_seq[0, 0, sampled] = 1.0
        states_value = [h, c]
    return decoded, np.array(probabilities)


def shapes(structure):
    """The shapes of a tensor, or of a list or dict of them, as plain tuples."""
    if isinstance(structure, dict):
        return {k: shapes(v) for k, v in structure.items()}
    if isinstance(structure, list):
        return [shapes(v) for v in structure]
    return tuple(structure.shape)


def container(structure):
    """ "list" or "dict" for a structure of tensors, "tensor" for one."""
    return type(structure).__name__ if isinstance(structure, (list, dict)) else "tensor"


@pytest.fixture(scope="module")
def seq2seq_pair():
    """The training model in Keras and rnnkit with Keras's (trained) weights."""
    rng = np.random.default_rng(0)
    theirs = seq2seq_training_model(keras)
    enc = np.eye(TOKENS_IN, dtype="float32")[rng.integers(0, TOKENS_IN, (16, 5))]
    dec = np.eye(TOKENS_OUT, dtype="float32")[rng.integers(0, TOKENS_OUT, (16, 6))]
    target = np.eye(TOKENS_OUT, dtype="float32")[rng.integers(0, TOKENS_OUT, (16, 6))]
    theirs.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    theirs.fit([enc, dec], target, batch_size=8, epochs=1, verbose=0)
    ours = seq2seq_training_model(rk)
    ours.set_weights(theirs.get_weights())
    return theirs, ours, enc


# --- model.input / output, layer.input / output ------------------------------------------------


def test_seq2seq_graph_structure_matches_keras(seq2seq_pair):
    theirs, ours, _ = seq2seq_pair
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    assert isinstance(ours.input, list) and shapes(ours.input) == shapes(theirs.input)
    assert not isinstance(ours.output, list) and shapes(ours.output) == shapes(theirs.output)
    assert ours.input_shape == theirs.input_shape and ours.output_shape == theirs.output_shape
    encoder, decoder = ours.layers[2], ours.layers[3]
    assert shapes(encoder.output) == shapes(theirs.layers[2].output)  # [output, h, c]
    assert encoder.input is ours.input[0]
    # The decoder's inputs: the sequence, then the initial states, as Keras flattens its call.
    assert shapes(decoder.input) == shapes(theirs.layers[3].input)
    assert decoder.input[0] is ours.input[1] and decoder.input[1] is encoder.output[1]
    assert ours.layers[0].output is ours.input[0]  # an InputLayer's output is its Input


@pytest.mark.parametrize("kind", ["single", "list", "list of one", "dict"])
def test_input_and_output_keep_the_constructor_structure(kind):
    def build(lib):
        a, b = lib.Input((3,), name="a"), lib.Input((4,), name="b")
        h = lib.layers.Dense(2, name="h")(a)
        out = lib.layers.Concatenate(name="c")([h, b])
        return {
            "single": lambda: lib.Model(a, h),
            "list": lambda: lib.Model([a, b], [out, h]),
            "list of one": lambda: lib.Model([a], [h]),
            "dict": lambda: lib.Model({"a": a, "b": b}, {"out": out}),
        }[kind]()

    ours, theirs = build(rk), build(keras)
    for attr in ("input", "output"):
        assert container(getattr(ours, attr)) == container(getattr(theirs, attr))
        assert shapes(getattr(ours, attr)) == shapes(getattr(theirs, attr))
    assert ours.input_shape == theirs.input_shape and ours.output_shape == theirs.output_shape


def test_layer_input_and_output_are_the_first_calls():
    a, b = rk.Input((3,)), rk.Input((3,))
    shared = rk.layers.Dense(2)
    first, second = shared(a), shared(b)
    assert shared.input is a and shared.output is first and second is not first
    merge = rk.layers.Add()
    summed = merge([first, second])
    assert merge.input == [first, second] and merge.output is summed


def test_a_layer_never_called_has_no_input_or_output():
    layer = rk.layers.Dense(3, name="idle")
    theirs = keras.layers.Dense(3, name="idle")
    for attr in ("input", "output"):
        with pytest.raises(AttributeError) as keras_error:
            getattr(theirs, attr)
        with pytest.raises(AttributeError) as error:
            getattr(layer, attr)
        assert str(error.value) == str(keras_error.value)


def test_sequential_input_output_and_shapes():
    model = rk.Sequential([rk.Input((5, 3)), rk.layers.LSTM(4), rk.layers.Dense(2)])
    theirs = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    assert model.input is model.inputs[0] and model.output is model.layers[-1].output
    assert model.input_shape == theirs.input_shape and model.output_shape == theirs.output_shape
    assert shapes(model.layers[0].output) == shapes(theirs.layers[0].output)
    unbuilt = rk.Sequential([rk.layers.Dense(2)], name="later")
    with pytest.raises(AttributeError, match="Sequential model 'later' has no defined input yet"):
        unbuilt.input
    with pytest.raises(AttributeError, match="Model 'later' has no defined output shape yet"):
        unbuilt.output_shape


# --- get_layer ------------------------------------------------------------------------------


def test_get_layer_by_name_and_index_as_keras(seq2seq_pair):
    theirs, ours, _ = seq2seq_pair
    for index in range(-len(ours.layers), len(ours.layers)):
        assert type(ours.get_layer(index=index)).__name__ == type(theirs.get_layer(index=index)).__name__
    for layer in ours.layers:
        assert ours.get_layer(layer.name) is layer
    assert ours.get_layer(index=2) is ours.layers[2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "nope"}, r"No such layer: nope. Existing layers are: \["),
        ({"index": 9}, "get_layer: index 9 is out of range; model .* has 5 layers"),
        ({"name": "x", "index": 0}, "get_layer: expected a name or an index, received both"),
        ({}, "get_layer: expected a name or an index, received neither"),
    ],
)
def test_get_layer_errors(seq2seq_pair, kwargs, message):
    theirs, ours, _ = seq2seq_pair
    with pytest.raises(ValueError):
        theirs.get_layer(**kwargs)  # Keras refuses the same requests
    with pytest.raises(ValueError, match=message):
        ours.get_layer(**kwargs)


# --- models from inner tensors ----------------------------------------------------------------


def test_seq2seq_inference_models_give_keras_numbers(seq2seq_pair):
    theirs, ours, enc = seq2seq_pair
    keras_encoder, keras_decoder = seq2seq_inference_models(keras, theirs)
    encoder, decoder = seq2seq_inference_models(rk, ours)
    assert [type(l).__name__ for l in decoder.layers] == [type(l).__name__ for l in keras_decoder.layers]
    assert shapes(decoder.output) == shapes(keras_decoder.output)
    states = encoder.predict(enc, verbose=0)
    for got, want in zip(states, keras_encoder.predict(enc, verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for sample in range(3):
        tokens, probabilities = decode_sequence(encoder, decoder, enc[sample : sample + 1])
        keras_tokens, keras_probabilities = decode_sequence(keras_encoder, keras_decoder, enc[sample : sample + 1])
        assert tokens == keras_tokens
        np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-5)


def test_inference_models_share_the_trained_weights():
    model = seq2seq_training_model(rk)
    encoder, decoder = seq2seq_inference_models(rk, model)
    assert encoder.layers[1] is model.layers[2] and decoder.get_layer(index=-1) is model.layers[4]
    x = np.random.default_rng(1).random((2, 4, TOKENS_IN)).astype("float32")
    before = encoder.predict(x, verbose=0)[0]
    model.set_weights([w * 2 for w in model.get_weights()])
    assert not np.allclose(encoder.predict(x, verbose=0)[0], before)


def test_a_model_from_an_inner_tensor_has_an_input_standing_for_it():
    def build(lib):
        a = lib.Input((3,))
        h = lib.layers.Dense(4, name="first")(a)
        out = lib.layers.Dense(2, name="second")(h)
        return lib.Model(a, out), lib.Model(h, out)

    (model, tail), (keras_model, keras_tail) = build(rk), build(keras)
    model.set_weights(keras_model.get_weights())
    assert tail.input is not model.layers[1].output and tail.input_shape == keras_tail.input_shape == (None, 4)
    assert [type(l).__name__ for l in tail.layers] == [type(l).__name__ for l in keras_tail.layers]
    h = np.random.default_rng(2).random((5, 4)).astype("float32")
    np.testing.assert_allclose(tail.predict(h, verbose=0), keras_tail.predict(h, verbose=0), atol=1e-6)
    # Its config names the stand-in, so it rebuilds on its own.
    rebuilt = rk.models.model_from_json(tail.to_json())
    rebuilt.set_weights(tail.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(h, verbose=0), tail.predict(h, verbose=0))


def test_a_model_input_must_be_symbolic():
    with pytest.raises(TypeError, match="inputs: expected symbolic tensors"):
        rk.Model(np.zeros((2, 3)), rk.Input((3,)))


# --- clone_model --------------------------------------------------------------------------------


def test_clone_functional_model_has_new_layers_and_same_architecture(seq2seq_pair):
    _, ours, enc = seq2seq_pair
    clone = rk.models.clone_model(ours)
    keras_clone = keras.models.clone_model(seq2seq_training_model(keras))
    assert [type(l).__name__ for l in clone.layers] == [type(l).__name__ for l in keras_clone.layers]
    assert [l.name for l in clone.layers] == [l.name for l in ours.layers] and clone.name == ours.name
    assert all(a is not b for a, b in zip(clone.layers, ours.layers))
    assert shapes(clone.input) == shapes(ours.input)
    dec = np.zeros((enc.shape[0], 3, TOKENS_OUT), "float32")
    clone.set_weights(ours.get_weights())
    np.testing.assert_array_equal(clone.predict([enc, dec], verbose=0), ours.predict([enc, dec], verbose=0))
    clone.set_weights([w + 1 for w in clone.get_weights()])
    assert not np.allclose(clone.get_weights()[0], ours.get_weights()[0])  # weights are not shared


def test_clone_with_clone_and_call_functions():
    a = rk.Input((3,))
    model = rk.Model(a, rk.layers.Dense(2, name="d")(rk.layers.Dense(4, name="c")(a)))
    shared = rk.models.clone_model(model, clone_function=lambda layer: layer)
    assert shared.layers[1:] == model.layers[1:]
    calls = []

    def call_function(layer, *args, **kwargs):
        calls.append(layer.name)
        return layer(*args, **kwargs)

    rk.models.clone_model(model, call_function=call_function)
    assert calls == ["c", "d"]
    own_input = rk.Input((3,), name="mine")
    assert rk.models.clone_model(model, input_tensors=own_input).input is own_input


def test_clone_sequential_and_nested_models():
    inner = rk.Sequential([rk.Input((3,)), rk.layers.Dense(4)], name="inner")
    outer = rk.Sequential([rk.Input((3,)), inner, rk.layers.Dense(1)], name="outer")
    keras_inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)], name="inner")
    keras_outer = keras.Sequential([keras.Input((3,)), keras_inner, keras.layers.Dense(1)], name="outer")
    seen = []

    def record(layer):
        seen.append(type(layer).__name__)
        return layer.__class__.from_config(layer.get_config())

    clone = rk.models.clone_model(outer, clone_function=record, recursive=True)
    keras_seen = []
    keras.models.clone_model(
        keras_outer,
        clone_function=lambda l: keras_seen.append(type(l).__name__) or l.__class__.from_config(l.get_config()),
        recursive=True,
    )
    assert seen == keras_seen == ["Dense", "Dense"]
    assert isinstance(clone.layers[0], rk.Sequential) and clone.layers[0] is not inner
    assert clone.input_shape == outer.input_shape and clone.name == "outer"


def test_clone_model_errors():
    class Subclassed(rk.Model):
        def call(self, x):
            return x

    with pytest.raises(
        ValueError, match="apply to Sequential and functional models, received the subclassed model Subclassed"
    ):
        rk.models.clone_model(Subclassed(), clone_function=lambda layer: layer)
    sequential = rk.Sequential([rk.Input((3,)), rk.layers.Dense(1)])
    with pytest.raises(ValueError, match="call_function: only functional models"):
        rk.models.clone_model(sequential, call_function=lambda layer, *a, **k: layer(*a, **k))
    with pytest.raises(ValueError, match="input_tensors: expected one tensor for a Sequential model, received 2"):
        rk.models.clone_model(sequential, input_tensors=[rk.Input((3,)), rk.Input((3,))])
    a = rk.Input((3,))
    functional = rk.Model(a, rk.layers.Dense(1)(a))
    with pytest.raises(ValueError, match="input_tensors: expected 1 tensors for model .*, received 2"):
        rk.models.clone_model(functional, input_tensors=[rk.Input((3,)), rk.Input((3,))])


# --- to_json / model_from_json / save_model ---------------------------------------------------------


def test_to_json_round_trip_and_structure(seq2seq_pair):
    theirs, ours, enc = seq2seq_pair
    text = ours.to_json(indent=1)
    config = json.loads(text)
    assert set(config) >= {"module", "class_name", "config", "registered_name"}
    assert set(config) - {"build_config", "compile_config"} == set(json.loads(theirs.to_json())) - {
        "build_config",
        "compile_config",
    }
    rebuilt = rk.models.model_from_json(text)
    assert [l.name for l in rebuilt.layers] == [l.name for l in ours.layers]
    rebuilt.set_weights(ours.get_weights())
    dec = np.zeros((enc.shape[0], 2, TOKENS_OUT), "float32")
    np.testing.assert_array_equal(rebuilt.predict([enc, dec], verbose=0), ours.predict([enc, dec], verbose=0))
    sequential = rk.Sequential([rk.Input((3,)), rk.layers.Dense(2)])
    assert isinstance(rk.models.model_from_json(sequential.to_json()), rk.Sequential)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "json_string: expected the JSON that model.to_json"),
        ('{"class_name": "Dense", "config": {}}', "json_string: unknown model class 'Dense'"),
        ("[1]", "json_string does not describe a model"),
    ],
)
def test_model_from_json_errors(text, message):
    with pytest.raises(ValueError, match=message):
        rk.models.model_from_json(text)


def test_save_model_and_its_arguments(tmp_path, seq2seq_pair):
    _, ours, enc = seq2seq_pair
    path = tmp_path / "s2s.keras"
    rk.models.save_model(ours, path)
    loaded = rk.models.load_model(path, safe_mode=True)
    dec = np.zeros((enc.shape[0], 2, TOKENS_OUT), "float32")
    np.testing.assert_array_equal(loaded.predict([enc, dec], verbose=0), ours.predict([enc, dec], verbose=0))
    encoder, _ = seq2seq_inference_models(rk, loaded)  # the loaded model's graph serves the same pattern
    assert len(encoder.predict(enc, verbose=0)) == 2
    with pytest.raises(FileExistsError, match="the file exists and overwrite=False"):
        rk.models.save_model(ours, path, overwrite=False)
    with pytest.raises(ValueError, match="zipped: rnnkit writes model files as zip archives only, received False"):
        ours.save(tmp_path / "other.keras", zipped=False)
    with pytest.raises(FileExistsError):
        ours.save_weights(tmp_path / "s2s.keras", overwrite=False)
