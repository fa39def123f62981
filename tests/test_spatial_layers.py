"""The 2-D and 3-D layers of issue 16 against Keras 3 (JAX backend): DepthwiseConv2D and
SeparableConv2D (the Rust core's grouped convolution), Cropping2D/3D, ZeroPadding2D/3D,
UpSampling2D (nearest and bilinear)/3D and SpatialDropout2D/3D. Random configurations with the
same weights and inputs compare forward values and the gradients of the weights and inputs;
configs round-trip; `.keras` files move both ways; bad arguments raise errors naming them."""

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


def shaped(data_format, batch, spatial, channels):
    return (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)


def twins(keras, name, kwargs, shape, rng):
    """Keras's and our layer built on `shape`, with the same random weights."""
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


# --- depthwise and separable 2-D convolutions --------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", ["DepthwiseConv2D", "SeparableConv2D"])
def test_depthwise_and_separable_conv2d_match_keras(keras, name, seed):
    rng = np.random.default_rng(1000 + seed)
    kwargs = {
        "kernel_size": tuple(int(k) for k in rng.integers(1, 4, size=2)),
        "depth_multiplier": int(rng.integers(1, 3)),
        "padding": ["valid", "same"][rng.integers(2)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
        "use_bias": bool(rng.integers(3)),
        "activation": ["linear", "tanh", "relu"][rng.integers(3)],
    }
    if rng.integers(2):
        kwargs["strides"] = tuple(int(s) for s in rng.integers(1, 3, size=2))
    else:
        kwargs["dilation_rate"] = tuple(int(d) for d in rng.integers(1, 3, size=2))
    if name == "SeparableConv2D":
        kwargs["filters"] = int(rng.integers(1, 4))
    shape = shaped(kwargs["data_format"], 2, tuple(int(s) for s in rng.integers(5, 8, size=2)), int(rng.integers(1, 4)))
    theirs, ours = twins(keras, name, kwargs, shape, rng)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-4, atol=1e-4)
    assert_same_config(ours, theirs)


def test_conv2d_aliases_and_errors():
    assert layers.SeparableConvolution2D is layers.SeparableConv2D
    with pytest.raises(ValueError, match="depth_multiplier"):
        layers.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(ValueError, match="`kernel_size` argument must be a tuple of 2 integers"):
        layers.SeparableConv2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match="`padding` argument must be one of"):
        layers.DepthwiseConv2D(3, padding="causal")
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.DepthwiseConv2D(3)(np.zeros((1, 5, 2), "float32"))


# --- cropping, padding and upsampling ----------------------------------------------------------

RESHAPING_CASES = [
    ("Cropping2D", {}, (2, 4, 5, 3)),
    ("Cropping2D", {"cropping": 1}, (2, 4, 5, 3)),
    ("Cropping2D", {"cropping": (1, 2)}, (2, 4, 6, 3)),
    ("Cropping2D", {"cropping": ((0, 2), (1, 0)), "data_format": "channels_first"}, (2, 3, 5, 4)),
    ("Cropping3D", {}, (2, 4, 5, 3, 2)),
    ("Cropping3D", {"cropping": ((0, 1), 2, (1, 0))}, (2, 4, 5, 3, 2)),
    ("Cropping3D", {"cropping": 1, "data_format": "channels_first"}, (2, 2, 4, 5, 3)),
    ("ZeroPadding2D", {}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": 2}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": ((1, 0), (0, 2)), "data_format": "channels_first"}, (2, 2, 3, 4)),
    ("ZeroPadding3D", {}, (2, 3, 2, 4, 2)),
    ("ZeroPadding3D", {"padding": (1, (0, 2), 0), "data_format": "channels_first"}, (2, 2, 3, 2, 4)),
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (1, 3), "data_format": "channels_first"}, (2, 2, 3, 4)),
    ("UpSampling2D", {"interpolation": "bilinear"}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (3, 2), "interpolation": "bilinear"}, (2, 4, 5, 3)),
    ("UpSampling2D", {"size": (4, 1), "interpolation": "bilinear", "data_format": "channels_first"}, (2, 3, 2, 5)),
    ("UpSampling2D", {"size": 3, "interpolation": "BILINEAR"}, (1, 1, 2, 1)),
    ("UpSampling3D", {}, (2, 2, 3, 2, 2)),
    ("UpSampling3D", {"size": (1, 2, 3), "data_format": "channels_first"}, (2, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("name, kwargs, shape", RESHAPING_CASES)
def test_spatial_reshaping_layers_match_keras(keras, name, kwargs, shape):
    rng = np.random.default_rng(len(shape) + sum(shape))
    x = rng.normal(size=shape).astype("float32")
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-5, atol=1e-6)
    assert_same_config(ours, theirs)
    inp = rk.Input(shape[1:])
    want = (None, *theirs.compute_output_shape((None, *shape[1:]))[1:])
    assert rk.Model(inp, ours(inp)).output_shape == want


def test_bilinear_upsampling_in_float64_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 3, 4, 2))
    layer = layers.UpSampling2D((2, 3), interpolation="bilinear", dtype="float64")
    r = rng.normal(size=(1, 6, 12, 2))
    x_t = rk.Tensor(x)
    with rk.GradientTape() as tape:
        tape.watch(x_t)
        loss = rk.ops.sum(layer(x_t) * r)
    grad = np.asarray(tape.gradient(loss, x_t))
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up.flat[i] += 1e-6
        down.flat[i] -= 1e-6
        numeric = (np.sum(np.asarray(layer(up)) * r) - np.sum(np.asarray(layer(down)) * r)) / 2e-6
        assert abs(grad.flat[i] - numeric) < 1e-6


def test_spatial_reshaping_errors_name_the_argument():
    with pytest.raises(ValueError, match="cropping: expected an int >= 0, or 2 entries"):
        layers.Cropping2D(((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match="2nd entry of cropping: expected an int >= 0 or a pair"):
        layers.Cropping2D((1, (1, -1)))
    with pytest.raises(ValueError, match="padding: expected an int >= 0"):
        layers.ZeroPadding3D(-1)
    with pytest.raises(ValueError, match="1st entry of padding"):
        layers.ZeroPadding3D(((1, 2, 3), 1, 1))
    with pytest.raises(ValueError, match="The `size` argument must be a tuple of 3 integers"):
        layers.UpSampling3D((2, 2))
    with pytest.raises(ValueError, match="interpolation: expected 'nearest' or 'bilinear'"):
        layers.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="data_format"):
        layers.ZeroPadding2D(data_format="channels_middle")
    with pytest.raises(ValueError, match="must be smaller than the input length"):
        layers.Cropping2D(((2, 2), (0, 0)))(np.zeros((1, 4, 5, 1)))
    with pytest.raises(ValueError, match="expected ndim=5"):
        layers.UpSampling3D()(np.zeros((1, 4, 5, 1)))


# --- spatial dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, data_format",
    [
        ("SpatialDropout2D", (6, 5, 7, 8), "channels_last"),
        ("SpatialDropout2D", (6, 8, 5, 7), "channels_first"),
        ("SpatialDropout3D", (6, 3, 4, 5, 8), "channels_last"),
        ("SpatialDropout3D", (6, 8, 3, 4, 5), "channels_first"),
    ],
)
def test_spatial_dropout_drops_whole_channels(keras, name, shape, data_format):
    x = np.ones(shape, "float32")
    layer = getattr(layers, name)(0.5, data_format=data_format, seed=4)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    out = np.asarray(layer(x, training=True))
    assert set(np.unique(out)) == {0.0, 2.0}
    spatial = tuple(range(2, len(shape))) if data_format == "channels_first" else tuple(range(1, len(shape) - 1))
    # One value per (sample, channel): the same at every position.
    assert (out.max(axis=spatial) == out.min(axis=spatial)).all()
    again = np.asarray(getattr(layers, name)(0.5, data_format=data_format, seed=4)(x, training=True))
    np.testing.assert_array_equal(out, again)
    # Keras's layer makes the same kind of pattern and has the same config.
    theirs = getattr(keras.layers, name)(0.5, data_format=data_format, seed=4)
    kept = np.asarray(theirs(x, training=True))
    assert (kept.max(axis=spatial) == kept.min(axis=spatial)).all()
    assert_same_config(layer, theirs)


def test_spatial_dropout_gradient_is_the_pattern():
    x = rk.Tensor(np.random.default_rng(0).normal(size=(3, 4, 4, 5)).astype("float32"))
    layer = layers.SpatialDropout2D(0.4, seed=1)
    with rk.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        total = rk.ops.sum(out)
    grad = np.asarray(tape.gradient(total, x))
    np.testing.assert_allclose(grad * np.asarray(x), np.asarray(out), rtol=1e-6)
    with pytest.raises(ValueError, match="expected inputs of rank 5"):
        layers.SpatialDropout3D(0.5)(np.ones((2, 3, 4, 5)), training=True)


# --- files -------------------------------------------------------------------------------------


def test_keras_files_move_both_ways(keras, tmp_path):
    """A Keras model of the new layers saved by Keras loads in rnnkit with the same outputs,
    and rnnkit's file of it loads back in Keras."""
    L = keras.layers
    inp = keras.Input((8, 9, 3))
    h = L.ZeroPadding2D(((1, 0), (0, 1)))(inp)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, bias_initializer="glorot_uniform")(h)
    h = L.SpatialDropout2D(0.3)(h)
    h = L.SeparableConv2D(4, (2, 3), padding="same", bias_initializer="glorot_uniform")(h)
    h = L.Cropping2D(((1, 0), (2, 1)))(h)
    h = L.UpSampling2D((2, 1), interpolation="bilinear")(h)
    h = L.Reshape((12, 5, 4, 1))(h)
    h = L.ZeroPadding3D((0, 1, 0))(h)
    h = L.UpSampling3D((1, 1, 2))(h)
    h = L.Cropping3D(((1, 1), (0, 1), (1, 2)))(h)
    h = L.SpatialDropout3D(0.2)(h)
    theirs = keras.Model(inp, h)
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(1).normal(size=(2, 8, 9, 3)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
