"""SpectralNormalization against Keras 3's (JAX backend): the same wrapped layers and weights
(vector_u included), training calls that update the kernel and `vector_u` by power iteration,
inference calls that do not, outputs and gradients, weight order, configs, `.keras` files both
ways and bad arguments."""

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


CASES = [
    ("Dense", {"units": 3}, (4, 5), 1),
    ("Dense", {"units": 4, "use_bias": False}, (2, 3, 6), 3),
    ("Conv1D", {"filters": 3, "kernel_size": 2}, (2, 6, 4), 2),
    ("Embedding", {"input_dim": 7, "output_dim": 3}, None, 1),
]


@pytest.mark.parametrize("name, kwargs, shape, iterations", CASES)
def test_spectral_normalization_matches_keras(keras, name, kwargs, shape, iterations):
    rng = np.random.default_rng(len(kwargs) + iterations)
    theirs = keras.layers.SpectralNormalization(getattr(keras.layers, name)(**kwargs), power_iterations=iterations)
    ours = layers.SpectralNormalization(getattr(layers, name)(**kwargs), power_iterations=iterations)
    x = rng.integers(0, 7, size=(3, 4)) if shape is None else rng.normal(size=shape).astype("float32")
    theirs.build(x.shape)
    ours.build(x.shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.kernel.numpy(), np.asarray(theirs.kernel.value), rtol=1e-6)  # no update
    for _ in range(2):
        want = np.asarray(theirs(x, training=True))
        np.testing.assert_allclose(np.asarray(ours(x, training=True)), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.vector_u.numpy(), np.asarray(theirs.vector_u.value), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours.kernel.numpy(), np.asarray(theirs.kernel.value), rtol=1e-4, atol=1e-6)
    if shape is not None:
        assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-5, atol=1e-5)
    config, keras_config = ours.get_config(), theirs.get_config()
    assert config["power_iterations"] == keras_config["power_iterations"] == iterations
    assert config["layer"]["class_name"] == keras_config["layer"]["class_name"] == name
    assert layers.SpectralNormalization.from_config(config).get_config() == config


def test_zero_kernel_is_left_alone():
    layer = layers.SpectralNormalization(layers.Dense(2, kernel_initializer="zeros", bias_initializer="ones"))
    out = layer(np.ones((1, 3), "float32"), training=True)
    np.testing.assert_array_equal(np.asarray(out), [[1, 1]])
    np.testing.assert_array_equal(layer.kernel.numpy(), 0)


def test_training_in_a_model_keeps_the_spectral_norm_near_one():
    rng = np.random.default_rng(0)
    model = rk.Sequential([rk.Input((5,)), layers.SpectralNormalization(layers.Dense(4, kernel_initializer="ones"))])
    model.compile(optimizer=rk.optimizers.SGD(0.01), loss="mse")
    model.fit(
        rng.normal(size=(32, 5)).astype("float32"), rng.normal(size=(32, 4)).astype("float32"), epochs=5, verbose=0
    )
    sigma = np.linalg.svd(model.layers[0].kernel.numpy(), compute_uv=False)[0]
    assert abs(sigma - 1) < 0.1


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((6, 4))
    h = keras.layers.SpectralNormalization(keras.layers.Conv1D(3, 2), power_iterations=2)(inp)
    h = keras.layers.GRU(3)(h)
    theirs = keras.Model(inp, keras.layers.SpectralNormalization(keras.layers.Dense(2))(h))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    theirs(x, training=True)  # moves vector_u away from its initial values
    theirs.save(tmp_path / "keras.keras")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.layers[1].vector_u.numpy(), np.asarray(theirs.layers[1].vector_u.value))
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="`power_iterations` should be greater than zero"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="`power_iterations` should be an integer"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=1.5)
    with pytest.raises(ValueError, match="has no attribute 'kernel' nor 'embeddings'"):
        layers.SpectralNormalization(layers.LayerNormalization())(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="supplied to Wrapper"):
        layers.SpectralNormalization("dense")
    layer = layers.SpectralNormalization(layers.Dense(2))
    layer(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer(np.ones((2, 4), "float32"))
