"""AdaptiveMaxPooling1D/2D/3D and AdaptiveAveragePooling1D/2D/3D against Keras 3's (JAX backend):
random input and output sizes (down- and upsampling, sizes that do not divide), both data
formats, forward values and input gradients, output shapes, configs, `.keras` files both ways
and bad arguments; the bins against PyTorch's rule written out."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402
from rnnkit.layers.pooling import adaptive_bins  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["Max", "Average"])
def test_adaptive_pooling_matches_keras(keras, mode, rank, seed):
    rng = np.random.default_rng(100 * rank + seed)
    name = f"Adaptive{mode}Pooling{rank}D"
    spatial = tuple(int(n) for n in rng.integers(1, 9 if rank < 3 else 6, size=rank))
    output_size = tuple(int(n) for n in rng.integers(1, 7 if rank < 3 else 5, size=rank))
    data_format = ["channels_last", "channels_first"][seed % 2]
    channels = int(rng.integers(1, 4))
    shape = (2, *spatial, channels) if data_format == "channels_last" else (2, channels, *spatial)
    kwargs = {"output_size": output_size if rank > 1 or seed % 3 else output_size[0], "data_format": data_format}
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-5, atol=1e-6)
    assert_same_config(ours, theirs)
    assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape)) == ours(x).shape
    inp = rk.Input(shape[1:])
    assert rk.Model(inp, ours(inp)).output_shape == (None, *ours.compute_output_shape(shape)[1:])


def test_bins_follow_the_floor_ceil_rule():
    # Window i of n positions pooled to m: floor(i n / m) to ceil((i + 1) n / m).
    assert adaptive_bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert adaptive_bins(2, 5) == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]
    assert adaptive_bins(6, 3) == [(0, 2), (2, 4), (4, 6)]
    x = np.arange(10, dtype="float32").reshape(1, 10, 1)
    np.testing.assert_allclose(np.asarray(layers.AdaptiveAveragePooling1D(4)(x))[0, :, 0], [1, 3, 6, 8])
    np.testing.assert_allclose(np.asarray(layers.AdaptiveMaxPooling1D(4)(x))[0, :, 0], [2, 4, 7, 9])


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((9, 7, 2))
    h = keras.layers.AdaptiveMaxPooling2D((4, 3))(inp)
    h = keras.layers.Reshape((4, 6))(h)
    h = keras.layers.AdaptiveAveragePooling1D(3)(h)
    theirs = keras.Model(inp, keras.layers.LSTM(2)(h))
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(2).normal(size=(2, 9, 7, 2)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(TypeError, match="`output_size` must be an integer or tuple of 2 integers"):
        layers.AdaptiveMaxPooling2D("4")
    with pytest.raises(ValueError, match="`output_size` argument must be a tuple of 2 integers"):
        layers.AdaptiveMaxPooling2D((4, 4, 4))
    with pytest.raises(ValueError, match="`output_size` argument must be a tuple of 1 integers >= 1"):
        layers.AdaptiveAveragePooling1D(0)
    with pytest.raises(ValueError, match="data_format"):
        layers.AdaptiveAveragePooling3D(2, data_format="channels_middle")
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        layers.AdaptiveAveragePooling2D(2)(np.ones((1, 4, 4), "float32"))
