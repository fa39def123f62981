"""Rescaling against Keras 3's (JAX backend): scalar and per-channel scales and offsets, integer
inputs, gradients of the inputs, masks passing through, configs and
`.keras` files both ways."""

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


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"scale": 1 / 255}, (2, 3, 4)),
        ({"scale": 1 / 127.5, "offset": -1}, (2, 5)),
        ({"scale": [0.5, 2.0, -1.0], "offset": [1.0, 0.0, 3.0]}, (2, 4, 3)),
        ({"scale": 2, "offset": [0.5, -0.5]}, (3, 2)),
    ],
)
def test_rescaling_matches_keras(keras, kwargs, shape):
    rng = np.random.default_rng(sum(shape))
    theirs, ours = keras.layers.Rescaling(**kwargs), layers.Rescaling(**kwargs)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-6, atol=1e-6)
    assert_same_config(ours, theirs)
    ints = rng.integers(0, 256, size=shape)
    np.testing.assert_allclose(np.asarray(ours(ints)), np.asarray(theirs(ints)), rtol=1e-6)
    assert ours(ints).dtype == np.float32


def test_masks_pass_through():
    x = layers.Masking()(np.array([[[1.0], [0.0], [2.0]]], "float32"))
    out = layers.Rescaling(0.5)(x)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), [[True, False, True]])


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((6, 3))
    h = keras.layers.Rescaling([0.5, 1.0, 2.0], offset=-1.0)(inp)
    theirs = keras.Model(inp, keras.layers.GRU(2)(h))
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(2).uniform(0, 3, size=(2, 6, 3)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [({"scale": "big"}, "scale"), ({"scale": 1, "offset": True}, "offset")])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Rescaling(**kwargs)
