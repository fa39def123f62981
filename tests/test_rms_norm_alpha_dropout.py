"""RMSNormalization and AlphaDropout against Keras 3 (JAX backend): RMSNormalization's forward
values and gradients on the same weights and inputs for random axes and epsilons; AlphaDropout's
affine map (Keras's random draws differ from ours, so the kept positions are read off each
output), its statistics, seeds, masks and configs; both save and load."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


# --- RMSNormalization --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "axis, shape",
    [(-1, (3, 5)), (-1, (2, 4, 6)), (2, (2, 4, 6)), ([-2, -1], (2, 3, 4, 5)), ((3, 2), (2, 3, 4, 5))],
)
@pytest.mark.parametrize("epsilon", [1e-6, 0.1])
def test_rms_normalization_matches_keras(keras, axis, shape, epsilon):
    rng = np.random.default_rng(len(shape) + int(epsilon * 10))
    theirs, ours = (
        keras.layers.RMSNormalization(axis=axis, epsilon=epsilon),
        layers.RMSNormalization(axis=axis, epsilon=epsilon),
    )
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["scale"]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    np.testing.assert_array_equal(ours.get_weights()[0], theirs.get_weights()[0])  # ones
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = (rng.normal(size=shape) * 3).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-5, atol=1e-5)
    assert_same_config(ours, theirs)


def test_rms_normalization_passes_masks_and_checks_axes():
    masked = rk.layers.Masking()(np.array([[[1.0, 2.0], [0.0, 0.0]]], "float32"))
    np.testing.assert_array_equal(layers.RMSNormalization()(masked)._keras_mask, [[True, False]])
    with pytest.raises(ValueError, match="Axis 3 is out of bounds"):
        layers.RMSNormalization(axis=3)(np.ones((2, 3)))
    with pytest.raises(TypeError, match="axis"):
        layers.RMSNormalization(axis="last")


# --- AlphaDropout ------------------------------------------------------------------------------

ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def affine(rate):
    a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
    return a, -a * ALPHA_P * rate


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_alpha_dropout_applies_keras_map(keras, rate):
    x = np.random.default_rng(0).normal(size=(20, 30)).astype("float32")
    a, b = affine(rate)
    dropped = a * ALPHA_P + b
    for out in (
        np.asarray(keras.layers.AlphaDropout(rate, seed=1)(x, training=True)),
        np.asarray(layers.AlphaDropout(rate, seed=1)(x, training=True)),
    ):
        kept = ~np.isclose(out, dropped, rtol=0, atol=1e-6)
        np.testing.assert_allclose(out[kept], a * x[kept] + b, rtol=1e-5, atol=1e-6)
        assert abs(kept.mean() - (1 - rate)) < 0.05
    np.testing.assert_array_equal(np.asarray(layers.AlphaDropout(rate)(x)), x)


def test_alpha_dropout_keeps_mean_and_variance_and_passes_gradients():
    x = np.random.default_rng(1).normal(size=(400, 500)).astype("float32")
    out = np.asarray(layers.AlphaDropout(0.2, seed=3)(x, training=True))
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01
    np.testing.assert_array_equal(np.asarray(layers.AlphaDropout(1.0)(x, training=True)), np.zeros_like(x))
    x_t = rk.Tensor(x[:4, :5])
    with rk.GradientTape() as tape:
        tape.watch(x_t)
        total = rk.ops.sum(layers.AlphaDropout(0.3, seed=2)(x_t, training=True))
    a, _ = affine(0.3)
    grad = np.asarray(tape.gradient(total, x_t))
    assert (np.isclose(grad, 0) | np.isclose(grad, a, rtol=1e-6)).all()


def test_alpha_dropout_noise_shape_seed_and_config(keras):
    x = np.ones((4, 6, 3), "float32")
    out = np.asarray(layers.AlphaDropout(0.5, noise_shape=(None, 1, None), seed=5)(x, training=True))
    assert (out == out[:, :1, :]).all()
    again = np.asarray(layers.AlphaDropout(0.5, noise_shape=(None, 1, None), seed=5)(x, training=True))
    np.testing.assert_array_equal(out, again)
    theirs = keras.layers.AlphaDropout(0.5, noise_shape=(None, 1, None), seed=5)
    assert_same_config(layers.AlphaDropout(0.5, noise_shape=(None, 1, None), seed=5), theirs)
    with pytest.raises(ValueError, match="rate"):
        layers.AlphaDropout(1.5)
    masked = rk.layers.Masking()(np.array([[[1.0], [0.0]]], "float32"))
    np.testing.assert_array_equal(layers.AlphaDropout(0.1)(masked)._keras_mask, [[True, False]])


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((5, 4))
    h = keras.layers.AlphaDropout(0.2)(inp)
    h = keras.layers.RMSNormalization(epsilon=1e-3)(h)
    h = keras.layers.LSTM(3, return_sequences=True)(h)
    h = keras.layers.RMSNormalization(axis=[1, 2])(h)
    theirs = keras.Model(inp, h)
    for layer in theirs.layers:
        if isinstance(layer, keras.layers.RMSNormalization):
            layer.set_weights([np.random.default_rng(2).normal(size=w.shape) for w in layer.get_weights()])
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
