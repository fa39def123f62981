"""ReversibleEmbedding against Keras 3's (JAX backend): forward embeddings with their mask,
reverse logits with tied and untied weights, `logit_soft_cap` and `reverse_dtype`, gradients
of the weights and hidden states, configs, `.keras` files both ways and bad arguments."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def twins(keras, kwargs, rng):
    theirs, ours = keras.layers.ReversibleEmbedding(**kwargs), layers.ReversibleEmbedding(**kwargs)
    theirs.build((None, None))
    ours.build((None, None))
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


@pytest.mark.parametrize("tie_weights", [True, False])
@pytest.mark.parametrize("logit_soft_cap", [None, 2.5])
def test_reverse_projection_matches_keras(keras, tie_weights, logit_soft_cap):
    rng = np.random.default_rng(7 + tie_weights)
    kwargs = {"input_dim": 9, "output_dim": 4, "tie_weights": tie_weights, "logit_soft_cap": logit_soft_cap}
    theirs, ours = twins(keras, kwargs, rng)
    hidden = rng.normal(size=(2, 3, 4)).astype("float32")
    assert_twins_agree(theirs, ours, (hidden,), {"reverse": True}, rng=rng)
    config, keras_config = ours.get_config(), theirs.get_config()
    for key in ("input_dim", "output_dim", "tie_weights", "mask_zero", "reverse_dtype", "logit_soft_cap"):
        assert config[key] == keras_config[key], key
    assert layers.ReversibleEmbedding.from_config(config).get_config() == config


def test_forward_embedding_and_mask_match_keras(keras):
    rng = np.random.default_rng(1)
    theirs, ours = twins(keras, {"input_dim": 6, "output_dim": 3, "mask_zero": True}, rng)
    ids = np.array([[1, 5, 0, 0], [2, 3, 4, 0]])
    np.testing.assert_allclose(np.asarray(ours(ids)), np.asarray(theirs(ids)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours(ids)._keras_mask), ids != 0)
    logits = ours(ours(ids), reverse=True)
    assert logits.shape == (2, 4, 6) and logits._keras_mask is None
    np.testing.assert_allclose(np.asarray(logits), np.asarray(theirs(theirs(ids), reverse=True)), rtol=1e-5)


def test_reverse_dtype(keras):
    rng = np.random.default_rng(2)
    theirs, ours = twins(keras, {"input_dim": 5, "output_dim": 3, "reverse_dtype": "float64"}, rng)
    hidden = rng.normal(size=(2, 3)).astype("float32")
    out = ours(hidden, reverse=True)
    assert out.dtype == np.float64 and ours.get_config()["reverse_dtype"] == "float64"
    np.testing.assert_allclose(np.asarray(out), np.asarray(theirs(hidden, reverse=True)), rtol=1e-6)


def test_language_model_trains_and_files_move_both_ways(keras, tmp_path):
    """Embedding in, LSTM, tied logits out: a Keras model loads in rnnkit and back."""

    def model(lib):
        ids = lib.Input((5,), dtype="int32")
        embed = lib.layers.ReversibleEmbedding(7, 4, tie_weights=False, mask_zero=True, name="embed")
        hidden = lib.layers.LSTM(4, return_sequences=True)(embed(ids))
        return lib.Model(ids, embed(hidden, reverse=True))

    theirs = model(keras)
    theirs.save(tmp_path / "keras.keras")
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 0]])
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(ids, verbose=0), theirs.predict(ids, verbose=0), rtol=1e-5, atol=1e-5)
    fresh = model(rk)
    assert fresh.output_shape == (None, 5, 7)
    fresh.compile(optimizer="adam", loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = fresh.fit(ids, np.roll(ids, -1, axis=1), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reverse_dtype": "int32"}, "reverse_dtype"),
        ({"reverse_dtype": "nonsense"}, "reverse_dtype"),
        ({"logit_soft_cap": 0}, "logit_soft_cap"),
        ({"logit_soft_cap": "2"}, "logit_soft_cap"),
        ({"input_dim": 0}, "input_dim"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.ReversibleEmbedding(**{"input_dim": 4, "output_dim": 2, **kwargs})


def test_reverse_input_of_the_wrong_size_raises():
    layer = layers.ReversibleEmbedding(4, 3)
    with pytest.raises(ValueError, match=r"reverse=True expects vectors of size 3 \(output_dim\)"):
        layer(np.ones((2, 5), "float32"), reverse=True)
