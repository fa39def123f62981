"""Conv1D, Conv2D and Conv3D (the Rust core's im2col convolution) against Keras 3 (JAX backend):
random configurations with the same weights and inputs, forward values and the gradients of the
weights and inputs; `rk.ops.conv` against finite differences in float64; configs, saving and the
errors for bad arguments."""

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


def random_conv_config(rng, rank):
    """Keyword arguments of a Conv layer and an input shape that suits them."""
    padding = ["valid", "same", "causal"][rng.integers(3 if rank == 1 else 2)]
    groups = int(rng.choice([1, 1, 2]))
    channels = groups * int(rng.integers(1, 4))
    filters = groups * int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=rank))
    if rng.integers(2):
        strides, dilation = tuple(int(s) for s in rng.integers(1, 3, size=rank)), (1,) * rank
    else:
        strides, dilation = (1,) * rank, tuple(int(d) for d in rng.integers(1, 3, size=rank))
    spatial = tuple(int(s) for s in rng.integers(5, 9 - rank, size=rank))
    kwargs = {
        "filters": filters,
        "kernel_size": kernel,
        "strides": strides,
        "padding": padding,
        "dilation_rate": dilation,
        "groups": groups,
        "use_bias": bool(rng.integers(4)),
        "activation": ["linear", "tanh", "relu"][rng.integers(3)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
    }
    batch = int(rng.integers(1, 4))
    shape = (batch, *spatial, channels) if kwargs["data_format"] == "channels_last" else (batch, channels, *spatial)
    return kwargs, shape


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_matches_keras(keras, rank, seed):
    rng = np.random.default_rng(100 * rank + seed)
    kwargs, shape = random_conv_config(rng, rank)
    name = f"Conv{rank}D"
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-4, atol=1e-4)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["DepthwiseConv1D", "SeparableConv1D"])
def test_depthwise_and_separable_conv_match_keras(keras, name, seed):
    rng = np.random.default_rng(seed)
    kwargs = {
        "kernel_size": int(rng.integers(1, 4)),
        "depth_multiplier": int(rng.integers(1, 3)),
        "padding": ["valid", "same"][rng.integers(2)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
        "use_bias": bool(rng.integers(3)),
        "activation": ["linear", "tanh"][rng.integers(2)],
    }
    if rng.integers(2):
        kwargs["strides"] = int(rng.integers(1, 3))
    else:
        kwargs["dilation_rate"] = int(rng.integers(1, 3))
    if name == "SeparableConv1D":
        kwargs["filters"] = int(rng.integers(1, 4))
    channels, steps = int(rng.integers(1, 4)), int(rng.integers(6, 10))
    shape = (2, steps, channels) if kwargs["data_format"] == "channels_last" else (2, channels, steps)
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-4, atol=1e-4)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_matches_keras(keras, rank, seed):
    rng = np.random.default_rng(50 * rank + seed)
    strides = tuple(int(s) for s in rng.integers(1, 4, size=rank))
    kwargs = {
        "filters": int(rng.integers(1, 4)),
        "kernel_size": tuple(int(k) for k in rng.integers(1, 4, size=rank)),
        "strides": strides,
        "padding": ["valid", "same"][rng.integers(2)],
        "data_format": ["channels_last", "channels_first"][rng.integers(2)],
        "use_bias": bool(rng.integers(3)),
    }
    if rng.integers(2):
        kwargs["output_padding"] = tuple(int(rng.integers(0, s)) for s in strides)
    if max(strides) == 1 and rng.integers(2):
        kwargs["dilation_rate"] = tuple(int(d) for d in rng.integers(1, 3, size=rank))
    channels, spatial = int(rng.integers(1, 4)), tuple(int(s) for s in rng.integers(2, 6 - rank, size=rank))
    shape = (2, *spatial, channels) if kwargs["data_format"] == "channels_last" else (2, channels, *spatial)
    name = f"Conv{rank}DTranspose"
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-4, atol=1e-4)
    assert_same_config(ours, theirs)


def test_conv_op_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    for rank, kwargs in [
        (1, {"strides": 2, "padding": "causal"}),
        (2, {"dilation_rate": (2, 1), "padding": "same", "data_format": "channels_first"}),
        (3, {"strides": (1, 2, 1), "padding": "valid"}),
    ]:
        x = rng.normal(size=(2, *([5] * rank), 4))
        if kwargs.get("data_format") == "channels_first":
            x = np.moveaxis(x, -1, 1).copy()
        kernel = rng.normal(size=(*([3] * rank), 2, 4))  # two groups
        r = rng.normal(size=np.shape(rk.ops.conv(x, kernel, **kwargs)))
        x_t, k_t = rk.Tensor(x), rk.Tensor(kernel)
        with rk.GradientTape() as tape:
            tape.watch([x_t, k_t])
            loss = rk.ops.sum(rk.ops.conv(x_t, k_t, **kwargs) * r)
        dx, dk = (np.asarray(g) for g in tape.gradient(loss, [x_t, k_t]))
        assert dx.dtype == np.float64

        def value(x, kernel, kwargs=kwargs, r=r):
            return float(np.sum(np.asarray(rk.ops.conv(x, kernel, **kwargs)) * r))

        for array, grad, which in [(x, dx, "x"), (kernel, dk, "kernel")]:
            for i in rng.choice(array.size, size=6, replace=False):
                up, down = array.copy(), array.copy()
                up.flat[i] += 1e-6
                down.flat[i] -= 1e-6
                args_up = (up, kernel) if which == "x" else (x, up)
                args_down = (down, kernel) if which == "x" else (x, down)
                numeric = (value(*args_up) - value(*args_down)) / 2e-6
                assert abs(grad.flat[i] - numeric) < 1e-6 * max(1.0, abs(numeric)), (rank, which, i)


def test_conv1d_causal_output_depends_only_on_the_past():
    layer = layers.Conv1D(2, 3, padding="causal", dilation_rate=2)
    x = np.random.default_rng(1).normal(size=(1, 10, 3)).astype("float32")
    y = np.asarray(layer(x))
    x2 = x.copy()
    x2[:, 6:] += 1.0
    y2 = np.asarray(layer(x2))
    assert y.shape == (1, 10, 2)
    np.testing.assert_array_equal(y[:, :6], y2[:, :6])
    assert not np.allclose(y[:, 6:], y2[:, 6:])


def test_conv_in_a_model_trains_and_saves(tmp_path):
    rng = np.random.default_rng(2)
    model = rk.Sequential(
        [
            rk.Input((12, 3)),
            layers.Conv1D(4, 3, padding="same", activation="relu"),
            layers.Conv1D(2, 2, strides=2),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    x, y = rng.normal(size=(16, 12, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "conv.keras"
    model.save(path)
    loaded = rk.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)))


def test_bad_conv_arguments_are_named():
    with pytest.raises(ValueError, match="filters must be evenly divisible by the number of groups"):
        layers.Conv1D(3, 2, groups=2)
    with pytest.raises(ValueError, match="`kernel_size` argument must be a tuple of 2 integers"):
        layers.Conv2D(3, (2, 2, 2))
    with pytest.raises(ValueError, match="`padding` argument must be one of"):
        layers.Conv2D(3, 2, padding="causal")
    with pytest.raises(ValueError, match="`strides > 1` not supported in conjunction with `dilation_rate > 1`"):
        layers.Conv1D(3, 2, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="`output_padding` must be strictly less than `strides`"):
        layers.Conv1DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="`padding` argument must be one of"):
        layers.DepthwiseConv1D(3, padding="causal")
    with pytest.raises(ValueError, match="input channels must be evenly divisible"):
        layers.Conv1D(4, 2, groups=2)(np.zeros((1, 5, 3), "float32"))
    layer = layers.Conv2D(2, 3)
    layer(np.zeros((1, 5, 5, 2), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 2"):
        layer(np.zeros((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match="expected ndim=4"):
        layer(np.zeros((1, 5, 2), "float32"))
    with pytest.raises(ValueError, match="at least 3 positions on spatial axis 1"):
        layer(np.zeros((1, 5, 2, 2), "float32"))


def test_core_conv_rejects_mismatched_arrays():
    x = np.zeros((1, 5, 4), "float32")
    with pytest.raises(rk._core.ShapeError, match="kernel: expected 2 input channels on axis 1"):
        rk._core.conv_forward(
            x, np.zeros((3, 3, 2), "float32"), strides=[1], dilation_rate=[1], padding="valid", groups=2
        )
    with pytest.raises(TypeError, match="kernel: expected dtype float32, received float64"):
        rk._core.conv_forward(x, np.zeros((3, 4, 2)), strides=[1], dilation_rate=[1], padding="valid")
    with pytest.raises(ValueError, match="strides: expected 1 positive integers"):
        rk._core.conv_forward(x, np.zeros((3, 4, 2), "float32"), strides=[0], dilation_rate=[1], padding="valid")
    with pytest.raises(rk._core.ShapeError, match=r"dy: expected shape \(1, 3, 2\), received \(1, 4, 2\)"):
        rk._core.conv_backward(
            x,
            np.zeros((3, 4, 2), "float32"),
            np.zeros((1, 4, 2), "float32"),
            strides=[1],
            dilation_rate=[1],
            padding="valid",
        )


def test_keras_files_move_both_ways(keras, tmp_path):
    """A Keras model of the convolution and pooling layers saved by Keras loads in rnnkit with
    the same outputs, and rnnkit's file of it loads back in Keras."""
    inp = keras.Input((12, 3))
    h = keras.layers.Conv1D(4, 3, padding="causal")(inp)
    h = keras.layers.MaxPooling1D(2)(h)
    h = keras.layers.SeparableConv1D(3, 2)(h)
    h = keras.layers.DepthwiseConv1D(2, depth_multiplier=2)(h)
    h = keras.layers.Conv1DTranspose(2, 3, strides=2)(h)
    h = keras.layers.AveragePooling1D(2, padding="same")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    theirs = keras.Model(inp, h)
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(1).normal(size=(2, 12, 3)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
