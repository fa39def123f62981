"""MaxPooling1D/2D/3D and AveragePooling1D/2D/3D (the Rust core's window loops) and the global
pooling layers against Keras 3 (JAX backend): random configurations, forward values and input
gradients, configs; GlobalAveragePooling1D with a mask; finite differences of `rk.ops.max_pool`
and `average_pool` in float64; errors."""

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


def random_input(rng, rank, data_format):
    batch, channels = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    spatial = tuple(int(s) for s in rng.integers(3, 9 - rank, size=rank))
    shape = (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)
    return rng.normal(size=shape).astype("float32")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["Max", "Average"])
def test_pooling_matches_keras(keras, mode, rank, seed):
    rng = np.random.default_rng(1000 * rank + seed + (0 if mode == "Max" else 500))
    kwargs = {
        "pool_size": tuple(int(p) for p in rng.integers(1, 4, size=rank)),
        "strides": None if rng.integers(2) else tuple(int(s) for s in rng.integers(1, 3, size=rank)),
        "padding": ["valid", "same"][rng.integers(2)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
    }
    x = random_input(rng, rank, kwargs["data_format"])
    name = f"{mode}Pooling{rank}D"
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    assert_twins_agree(theirs, ours, (x,), rng=rng)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["Max", "Average"])
def test_global_pooling_matches_keras(keras, mode, rank):
    rng = np.random.default_rng(rank)
    for data_format in ["channels_last", "channels_first"]:
        kwargs = {"data_format": data_format, "keepdims": bool(rng.integers(2))}
        x = random_input(rng, rank, data_format)
        name = f"Global{mode}Pooling{rank}D"
        theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
        assert_twins_agree(theirs, ours, (x,), rng=rng)
        assert_same_config(ours, theirs)


def test_global_average_pooling_1d_leaves_masked_steps_out(keras):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    mask = np.array([[1, 1, 0, 0, 0], [1, 0, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
    theirs, ours = keras.layers.GlobalAveragePooling1D(), layers.GlobalAveragePooling1D()
    assert_twins_agree(theirs, ours, (x,), {"mask": mask}, rng=rng)
    np.testing.assert_allclose(np.asarray(ours(x, mask=mask))[0], x[0, :2].mean(axis=0), rtol=1e-6)


def test_pooling_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    for pool, kwargs in [
        (rk.ops.max_pool, {"pool_size": 3, "strides": 2, "padding": "same"}),
        (
            rk.ops.average_pool,
            {"pool_size": (2, 3), "strides": (1, 2), "padding": "same", "data_format": "channels_first"},
        ),
        (rk.ops.average_pool, {"pool_size": (2, 2, 1), "padding": "valid"}),
    ]:
        rank = len(kwargs["pool_size"]) if isinstance(kwargs["pool_size"], tuple) else 1
        x = rng.normal(size=(2, *([5] * rank), 3))
        r = rng.normal(size=np.shape(pool(x, **kwargs)))
        x_t = rk.Tensor(x)
        with rk.GradientTape() as tape:
            tape.watch(x_t)
            loss = rk.ops.sum(pool(x_t, **kwargs) * r)
        dx = np.asarray(tape.gradient(loss, x_t))
        for i in rng.choice(x.size, size=10, replace=False):
            up, down = x.copy(), x.copy()
            up.flat[i] += 1e-6
            down.flat[i] -= 1e-6
            numeric = (np.sum(np.asarray(pool(up, **kwargs)) * r) - np.sum(np.asarray(pool(down, **kwargs)) * r)) / 2e-6
            assert abs(dx.flat[i] - numeric) < 1e-6, (pool.__name__, i)


def test_bad_pooling_arguments_are_named():
    with pytest.raises(ValueError, match="`pool_size` argument must be a tuple of 2 integers"):
        layers.MaxPooling2D(pool_size=(2, 2, 2))
    with pytest.raises(ValueError, match="`padding` argument must be one of"):
        layers.AveragePooling1D(padding="causal")
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        layers.MaxPooling2D()(np.zeros((1, 4, 4), "float32"))
    with pytest.raises(ValueError, match="at least 3 positions on spatial axis 0"):
        layers.MaxPooling1D(3)(np.zeros((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="kind: expected 'max' or 'average', received 'min'"):
        rk._core.pool_forward(np.zeros((1, 4, 1), "float32"), pool_size=[2], strides=[2], padding="valid", kind="min")


def test_keras_other_names_are_the_same_classes(keras):
    for name in [
        "MaxPool1D",
        "AvgPool2D",
        "GlobalAvgPool1D",
        "GlobalMaxPool3D",
        "Convolution2D",
        "SeparableConvolution1D",
    ]:
        assert getattr(layers, name) is getattr(layers, getattr(keras.layers, name).__name__), name
