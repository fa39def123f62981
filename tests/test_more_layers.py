"""The merge, activation, noise, reshaping and wrapper layers of issue 16 against Keras 3 (JAX
backend): forward values and gradients on the same inputs and weights, masks, configs and
save/load; the random layers (noise, spatial dropout) by their statistics and seeds.
"""

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


def randn(rng, *shape):
    return rng.normal(size=shape).astype("float32")


# --- merges ----------------------------------------------------------------------------------

MERGES = ["Subtract", "Multiply", "Average", "Maximum", "Minimum"]


SHAPES = [[(2, 3, 4), (2, 3, 4)], [(2, 3, 4), (2, 4)], [(2, 5), (2, 5), (2, 5)]]


@pytest.mark.parametrize(
    "name,shapes",
    # Subtract takes two inputs exactly.
    [(name, shapes) for name in MERGES for shapes in SHAPES if name != "Subtract" or len(shapes) == 2],
)
def test_merges_match_keras(keras, name, shapes):
    rng = np.random.default_rng(len(shapes) + len(shapes[1]))
    inputs = [randn(rng, *s) for s in shapes]
    theirs, ours = getattr(keras.layers, name)(), getattr(layers, name)()
    assert_twins_agree(theirs, ours, (inputs,), rng=rng)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum", "Add", "Average"])
@pytest.mark.parametrize("masked", [(True, True), (True, False)])
def test_merge_masks_match_keras(keras, name, masked):
    rng = np.random.default_rng(11)
    a, b = randn(rng, 2, 4, 3), randn(rng, 2, 4, 3)
    a[0, 1] = 0  # masked steps
    b[1, 2] = 0
    b[0, 1] = 0

    def model(lib):
        ia, ib = lib.Input((4, 3)), lib.Input((4, 3))
        xa = lib.layers.Masking()(ia) if masked[0] else ia
        xb = lib.layers.Masking()(ib) if masked[1] else ib
        return lib.Model([ia, ib], getattr(lib.layers, name)()([xa, xb]))

    np.testing.assert_allclose(np.asarray(model(rk)([a, b])), np.asarray(model(keras)([a, b])), rtol=1e-6)


@pytest.mark.parametrize(
    "axes, shapes, normalize",
    [
        (-1, [(2, 4), (2, 4)], False),
        (1, [(2, 4), (2, 4)], True),
        (2, [(2, 3, 4), (2, 5, 4)], False),
        ((1, 2), [(2, 3, 4), (2, 5, 3)], True),
        ((2, 1), [(2, 3, 4), (2, 4, 5)], False),
        (-1, [(2, 3, 4), (2, 4)], False),
        (1, [(2, 3, 2, 4), (2, 3, 5)], False),
    ],
)
def test_dot_matches_keras(keras, axes, shapes, normalize):
    rng = np.random.default_rng(5)
    inputs = [randn(rng, *s) for s in shapes]
    theirs, ours = keras.layers.Dot(axes=axes, normalize=normalize), layers.Dot(axes=axes, normalize=normalize)
    assert_twins_agree(theirs, ours, (inputs,), rng=rng)
    assert_same_config(ours, theirs)


def test_dot_and_subtract_errors():
    with pytest.raises(TypeError, match="axes"):
        layers.Dot(axes="x")
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        layers.Dot(axes=1)([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([np.zeros((2, 3))] * 3)


# --- activation layers -------------------------------------------------------------------------

ACTIVATION_CASES = [
    ("ReLU", {}),
    ("ReLU", {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.2}),
    ("ReLU", {"negative_slope": 0.2}),
    ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.05}),
    ("ELU", {}),
    ("ELU", {"alpha": 0.5}),
    ("Softmax", {}),
    ("Softmax", {"axis": 1}),
    ("Softmax", {"axis": [1, 2]}),
    ("PReLU", {}),
    ("PReLU", {"shared_axes": [1]}),
    ("PReLU", {"shared_axes": [1, 2]}),
]


@pytest.mark.parametrize("name, kwargs", ACTIVATION_CASES)
def test_activation_layers_match_keras(keras, name, kwargs):
    rng = np.random.default_rng(3)
    x = randn(rng, 2, 3, 4) * 2
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build(x.shape)
    ours.build(x.shape)
    if theirs.weights:
        weights = [randn(rng, *w.shape) for w in theirs.get_weights()]
        theirs.set_weights(weights)
        ours.set_weights(weights)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert_twins_agree(theirs, ours, (x,), rng=rng)
    assert_same_config(ours, theirs)


def test_softmax_mask_matches_keras(keras):
    rng = np.random.default_rng(4)
    x = randn(rng, 2, 3, 4)
    mask = rng.random((2, 3, 4)) > 0.4
    mask[0, 0] = False  # a fully masked row: all zeros
    want = keras.layers.Softmax()(x, mask=mask)
    np.testing.assert_allclose(np.asarray(layers.Softmax()(x, mask=mask)), np.asarray(want), rtol=1e-6, atol=1e-7)


def test_activation_layer_argument_errors():
    with pytest.raises(ValueError, match="max_value"):
        layers.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        layers.LeakyReLU(negative_slope=-0.1)
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1


# --- reshaping along time ----------------------------------------------------------------------

RESHAPE_CASES = [
    ("Permute", {"dims": (2, 1)}, (2, 3, 4)),
    ("Permute", {"dims": (3, 1, 2)}, (2, 3, 4, 5)),
    ("Cropping1D", {}, (2, 5, 3)),
    ("Cropping1D", {"cropping": (0, 2)}, (2, 5, 3)),
    ("Cropping1D", {"cropping": 2}, (2, 5, 3)),
    ("ZeroPadding1D", {}, (2, 3, 4)),
    ("ZeroPadding1D", {"padding": (2, 0)}, (2, 3, 4)),
    ("ZeroPadding1D", {"padding": (1, 2), "data_format": "channels_first"}, (2, 3, 4)),
    ("UpSampling1D", {}, (2, 3, 4)),
    ("UpSampling1D", {"size": 3}, (2, 3, 4)),
    ("Identity", {}, (2, 3, 4)),
]


@pytest.mark.parametrize("name, kwargs, shape", RESHAPE_CASES)
def test_reshaping_layers_match_keras(keras, name, kwargs, shape):
    rng = np.random.default_rng(6)
    x = randn(rng, *shape)
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    assert_twins_agree(theirs, ours, (x,), rng=rng)
    assert_same_config(ours, theirs)
    inp = rk.Input(shape[1:])
    want = (None, *theirs.compute_output_shape((None, *shape[1:]))[1:])
    assert rk.Model(inp, ours(inp)).output_shape == want


def test_cropping_too_much_raises():
    with pytest.raises(ValueError, match="smaller than the input length"):
        layers.Cropping1D((2, 2))(np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="Permute"):
        layers.Permute((0, 1))


# --- noise and regularisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.GaussianNoise(0.5, seed=1),
        lambda: layers.GaussianDropout(0.3, seed=1),
        lambda: layers.SpatialDropout1D(0.5, seed=1),
    ],
)
def test_noise_layers_are_identity_in_inference_and_seeded_in_training(layer):
    x = np.random.default_rng(0).normal(size=(4, 50, 8)).astype("float32")
    first, second = layer(), layer()
    np.testing.assert_array_equal(np.asarray(first(x)), x)
    a, b = np.asarray(first(x, training=True)), np.asarray(second(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x)
    clone = type(first).from_config(first.get_config())
    assert clone.get_config() == first.get_config()


def test_noise_statistics():
    x = np.ones((200, 100, 10), "float32")
    noisy = np.asarray(layers.GaussianNoise(0.5, seed=0)(x, training=True)) - 1
    assert abs(noisy.std() - 0.5) < 0.01 and abs(noisy.mean()) < 0.01
    dropped = np.asarray(layers.GaussianDropout(0.2, seed=0)(x, training=True))
    assert abs(dropped.std() - np.sqrt(0.2 / 0.8)) < 0.01 and abs(dropped.mean() - 1) < 0.01


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((8, 20, 16), "float32")
    out = np.asarray(layers.SpatialDropout1D(0.5, seed=3)(x, training=True))
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert (out == out[:, :1, :]).all()  # the same pattern at every step
    assert "noise_shape" not in layers.SpatialDropout1D(0.5).get_config()
    with pytest.raises(ValueError, match="rank 3"):
        layers.SpatialDropout1D(0.5)(np.ones((2, 3)), training=True)


def test_noise_layers_pass_gradients_and_masks():
    x = rk.Tensor(np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32"))
    for layer in (layers.GaussianNoise(0.1, seed=0), layers.GaussianDropout(0.1, seed=0)):
        with rk.GradientTape() as tape:
            tape.watch(x)
            total = rk.ops.sum(layer(x, training=True))
        assert np.isfinite(np.asarray(tape.gradient(total, x))).all()
    masked = rk.layers.Masking()(np.array([[[1.0], [0.0]]], "float32"))
    for layer in (layers.GaussianNoise(0.1), layers.GaussianDropout(0.1), layers.ActivityRegularization()):
        np.testing.assert_array_equal(np.asarray(layer(masked)._keras_mask), [[True, False]])


def test_activity_regularization_matches_keras(keras):
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    theirs, ours = keras.layers.ActivityRegularization(l1=0.1, l2=0.01), layers.ActivityRegularization(l1=0.1, l2=0.01)
    theirs(x)
    np.testing.assert_array_equal(np.asarray(ours(x)), x)
    np.testing.assert_allclose(float(ours.losses[0]), float(theirs.losses[0]), rtol=1e-6)
    assert_same_config(ours, theirs)
    for invalid in ({"rate": 1.5}, {"rate": -0.1}):
        with pytest.raises(ValueError, match="rate"):
            layers.GaussianDropout(**invalid)


# --- Lambda ------------------------------------------------------------------------------------


@rk.saving.register_keras_serializable(package="tests")
def double_plus(x, offset=0.0):
    return x * 2 + offset


def test_lambda_matches_keras_and_passes_arguments(keras):
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    ours = layers.Lambda(double_plus, arguments={"offset": 1.0})
    theirs = keras.layers.Lambda(lambda v, offset: v * 2 + offset, arguments={"offset": 1.0})
    assert_twins_agree(theirs, ours, (x,))


def test_lambda_with_a_named_function_round_trips_its_config():
    # (The .keras reader refuses every Lambda layer for now, so this checks the config alone.)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    config = rk.layers.serialization.serialize(layers.Lambda(double_plus, arguments={"offset": 0.5}))
    assert config["config"]["function"]["registered_name"] == "tests>double_plus"
    loaded = rk.layers.serialization.deserialize(config)
    np.testing.assert_allclose(np.asarray(loaded(x)), x * 2 + 0.5, rtol=1e-6)


def test_lambda_with_a_python_lambda_cannot_be_saved(tmp_path):
    layer = layers.Lambda(lambda v: v + 1)
    with pytest.raises(ValueError, match="cannot save a Python lambda"):
        layer.get_config()
    inp = rk.Input((3,))
    model = rk.Model(inp, layer(inp))
    with pytest.raises(ValueError, match="cannot save a Python lambda"):
        model.save(tmp_path / "lam.keras")


def test_lambda_bytecode_from_keras_is_refused():
    config = {"function": {"class_name": "__lambda__", "config": {"code": "abc", "defaults": None, "closure": None}}}
    with pytest.raises(ValueError, match="never runs code"):
        layers.Lambda.from_config(config)


def test_lambda_mask_argument():
    x = rk.layers.Masking()(np.array([[[1.0], [0.0]]], "float32"))
    assert layers.Lambda(double_plus)(x)._keras_mask is None
    kept = layers.Lambda(double_plus, mask=lambda inputs, mask: mask)(x)
    np.testing.assert_array_equal(np.asarray(kept._keras_mask), [[True, False]])


# --- save/load of the new layers in one model --------------------------------------------------


def test_new_layers_save_and_load(tmp_path):
    rng = np.random.default_rng(9)
    a, b = randn(rng, 2, 6, 4), randn(rng, 2, 6, 4)
    ia, ib = rk.Input((6, 4)), rk.Input((6, 4))
    x = layers.Multiply()([ia, ib])
    x = layers.Maximum()([x, layers.Subtract()([ia, ib])])
    x = layers.Average()([x, layers.Minimum()([ia, ib])])
    x = layers.PReLU(shared_axes=[1])(x)
    x = layers.LeakyReLU(0.1)(layers.ELU(0.5)(layers.ReLU(max_value=3.0)(x)))
    x = layers.Cropping1D((1, 0))(layers.ZeroPadding1D((0, 1))(x))
    x = layers.UpSampling1D(2)(x)
    x = layers.Permute((2, 1))(x)
    x = layers.SpatialDropout1D(0.2)(layers.GaussianNoise(0.1)(layers.GaussianDropout(0.1)(x)))
    x = layers.Identity()(layers.ActivityRegularization(l2=0.01)(x))
    x = layers.Softmax(axis=1)(x)
    out = layers.Dot(axes=(2, 2), normalize=True)([x, x])
    model = rk.Model([ia, ib], out)
    model.layers[next(i for i, l in enumerate(model.layers) if isinstance(l, layers.PReLU))].set_weights(
        [randn(rng, 1, 4)]
    )
    model.save(tmp_path / "many.keras")
    loaded = rk.models.load_model(tmp_path / "many.keras")
    np.testing.assert_allclose(np.asarray(loaded([a, b])), np.asarray(model([a, b])), rtol=1e-6)
