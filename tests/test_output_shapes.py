"""Output shapes of the layers with windows, strides, crops and pads on inputs of unknown sizes:
`compute_output_shape` and the symbolic shapes of functional models against Keras 3 (JAX backend),
and against the shapes the layers compute on arrays. Before, a pooled unknown axis was inferred
as a known size and a crop larger than 2 could not be built on `Input` with unknown sizes."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def random_layer(rng, rank):
    """A random window, crop, pad or upsampling layer over `rank` spatial axes: (name, kwargs)."""
    data_format = str(rng.choice(["channels_last", "channels_first"]))
    window = {"data_format": data_format}
    kind = str(rng.choice(["conv", "transpose", "pool", "crop", "pad", "upsample", "depthwise", "separable"]))
    if kind in ("depthwise", "separable") and rank == 3:
        kind = "conv"
    stride = int(rng.integers(1, 4))
    dilation = 1 if stride > 1 else int(rng.integers(1, 3))
    kernel = int(rng.integers(1, 5))
    padding = str(rng.choice(["valid", "same", "causal"] if rank == 1 and kind == "conv" else ["valid", "same"]))
    if kind == "conv":
        window |= {"filters": 3, "kernel_size": kernel, "strides": stride, "dilation_rate": dilation}
        return f"Conv{rank}D", window | {"padding": padding}
    if kind == "transpose":
        output_padding = None if rng.random() < 0.5 or stride == 1 else int(rng.integers(0, stride))
        window |= {"filters": 2, "kernel_size": kernel, "strides": stride, "output_padding": output_padding}
        return f"Conv{rank}DTranspose", window | {"padding": padding}
    if kind == "pool":
        name = str(rng.choice(["MaxPooling", "AveragePooling"]))
        return f"{name}{rank}D", window | {"pool_size": kernel, "strides": stride, "padding": padding}
    if kind == "depthwise":
        return f"DepthwiseConv{rank}D", window | {"kernel_size": kernel, "strides": stride, "depth_multiplier": 2}
    if kind == "separable":
        return f"SeparableConv{rank}D", window | {"filters": 4, "kernel_size": kernel, "strides": stride}
    widths = int(rng.integers(0, 4))
    if kind == "crop":
        return f"Cropping{rank}D", {"cropping": widths} | ({} if rank == 1 else window)
    if kind == "pad":
        return f"ZeroPadding{rank}D", {"padding": widths} | ({} if rank == 1 else window)
    return f"UpSampling{rank}D", {"size": int(rng.integers(1, 4))} | ({} if rank == 1 else window)


def input_shape(rng, rank, kwargs):
    """A (batch-less) input shape with 2 channels and each spatial size unknown or 6..9."""
    spatial = [None if rng.random() < 0.6 else int(rng.integers(6, 10)) for _ in range(rank)]
    if kwargs.get("data_format", "channels_last") == "channels_first":
        return (2, *spatial)
    return (*spatial, 2)


@pytest.mark.parametrize("seed", range(40))
def test_symbolic_shapes_match_keras_and_the_computed_arrays(keras, seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 4))
    name, kwargs = random_layer(rng, rank)
    shape = input_shape(rng, rank, kwargs)
    ours = getattr(layers, name)(**kwargs)(rk.Input(shape)).shape
    theirs = tuple(getattr(keras.layers, name)(**kwargs)(keras.Input(shape)).shape)
    assert ours == theirs, (name, kwargs, shape)
    # An array of a size each unknown axis may take: the layer's output has the declared shape.
    concrete = (3, *(int(rng.integers(12, 16)) if d is None else d for d in shape))
    layer = getattr(layers, name)(**kwargs)
    outputs = layer(np.zeros(concrete, "float32"))
    assert tuple(outputs.shape) == layer.compute_output_shape(concrete)


def test_a_crop_wider_than_two_builds_on_unknown_sizes():
    x = rk.Input((None, None, 3))
    y = layers.Cropping2D(((3, 1), (2, 2)))(x)
    assert y.shape == (None, None, None, 3)
    model = rk.Model(x, y)
    assert model.predict(np.ones((2, 9, 7, 3), "float32"), verbose=0).shape == (2, 5, 3, 3)


def test_a_pooled_sequence_of_unknown_length_trains_and_predicts_any_length():
    rk.utils.set_random_seed(0)
    x = rk.Input((None, 4))
    h = layers.Conv1D(8, 3, strides=2, activation="relu")(x)
    h = layers.MaxPooling1D(2)(h)
    assert h.shape == (None, None, 8)  # the sizes of two placeholders pooled to one are not a known size
    model = rk.Model(x, layers.Dense(1)(layers.LSTM(5)(h)))
    model.compile(loss="mse", optimizer="adam")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 21, 4)), rng.normal(size=(16, 1)), epochs=1, verbose=0)
    for steps in (7, 30):
        assert model.predict(rng.normal(size=(2, steps, 4)), verbose=0).shape == (2, 1)


def test_compute_output_shape_checks_the_rank():
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=4"):
        layers.MaxPooling1D(2).compute_output_shape((None, 5, 5, 2))
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        layers.Cropping2D(1).compute_output_shape((None, 5, 2))
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=4"):
        layers.Conv1D(2, 3).compute_output_shape((None, 5, 5, 2))


def test_a_crop_wider_than_a_known_size_is_refused_by_the_layer():
    with pytest.raises(ValueError, match="`cropping` of layer crop must be smaller than the input length"):
        layers.Cropping1D((2, 2), name="crop")(rk.Input((4, 3)))
