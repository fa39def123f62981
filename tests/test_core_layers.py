"""Dropout, BatchNormalization, LayerNormalization, Flatten, Reshape, RepeatVector, Concatenate,
Add and Activation against Keras 3 itself (JAX backend; weights copied with ``set_weights``), against
central finite differences (float64 layers), and in their own right: dropout statistics and seeds,
configs, weight layouts, masks and symbolic shapes.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import layers, ops  # noqa: E402

# Keras's own variables trigger numpy 2's warning about `__array__` without `copy`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

RNG = np.random.default_rng(20240611)
# float32 against Keras: both round differently (rsqrt vs 1/sqrt, summation order).
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras", reason="the Keras cross-checks need keras>=3 with a backend (jax)")


def randn(*shape, dtype="float32", loc=0.0, scale=1.0):
    return RNG.normal(loc, scale, shape).astype(dtype)


def twins(keras, name, input_shape, *args, **kwargs):
    """The Keras layer `name` and ours, built for `input_shape`, sharing random weights (positive,
    so that they are valid variances)."""
    theirs, ours = getattr(keras.layers, name)(*args, **kwargs), getattr(layers, name)(*args, **kwargs)
    theirs.build(input_shape)
    ours.build(input_shape)
    weights = [np.abs(randn(*w.shape, loc=1.0, scale=0.5)) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


def assert_weights_match(theirs, ours):
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, want, **TOL)


def finite_difference(loss, array, eps=1e-6):
    """Central differences of the scalar `loss(array)` with respect to every element of `array`."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[index] += eps
        minus[index] -= eps
        grad[index] = (loss(plus) - loss(minus)) / (2 * eps)
    return grad


def check_gradients(layer, x, variables, **call):
    """Tape gradients of `sum(layer(x) * r)` against finite differences, for x and `variables`."""
    r = randn(*x.shape, dtype="float64")
    x = rk.Tensor(x)
    with rk.GradientTape() as tape:
        tape.watch([x, *variables])
        loss = ops.sum(layer(x, **call) * r)
    grads = tape.gradient(loss, [x, *variables])

    def loss_of(value, variable=None):
        if variable is not None:
            variable.assign(value)
        return float(np.sum(np.asarray(layer(value if variable is None else x, **call)) * r))

    np.testing.assert_allclose(grads[0], finite_difference(loss_of, x.numpy()), rtol=1e-6, atol=1e-8)
    for variable, grad in zip(variables, grads[1:]):
        original = variable.numpy()
        expected = finite_difference(lambda v, variable=variable: loss_of(v, variable), original)
        variable.assign(original)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8, err_msg=variable.name)


# --- Dense (its one-op product on the rows' matrix) -------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3), (2, 2, 2, 3)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients_for_inputs_of_any_rank(shape, use_bias):
    layer = layers.Dense(2, use_bias=use_bias, dtype="float64")
    x = randn(*shape, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([randn(*w.shape, dtype="float64") for w in layer.weights])
    r = randn(*shape[:-1], 2, dtype="float64")
    x_tensor = rk.Tensor(x)
    with rk.GradientTape() as tape:
        tape.watch(x_tensor)
        loss = ops.sum(layer(x_tensor) * r)
    grads = tape.gradient(loss, [x_tensor, *layer.weights])

    def loss_of(value, variable=None):
        if variable is not None:
            variable.assign(value)
        return float(np.sum(np.asarray(layer(x if variable is not None else value)) * r))

    np.testing.assert_allclose(grads[0], finite_difference(loss_of, x), rtol=1e-6, atol=1e-8)
    for variable, grad in zip(layer.weights, grads[1:]):
        original = variable.numpy()
        expected = finite_difference(lambda v, variable=variable: loss_of(v, variable), original)
        variable.assign(original)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8, err_msg=variable.name)


def test_dense_is_one_recorded_op_and_skips_the_gradient_of_data():
    layer = layers.Dense(3)
    x = randn(4, 5, 2)
    layer(x)  # builds
    with rk.GradientTape() as tape:
        out = layer(x)
    assert len(tape._nodes) == 1  # matmul and bias add as one op
    d_x = tape._nodes[0].backward((np.ones(out.shape, out.dtype),))[0]
    assert d_x is None  # the model's input data: no tape asked for its gradient


# --- Dropout ----------------------------------------------------------------------------------


def test_dropout_is_the_identity_outside_training(keras):
    x = randn(4, 3, 5)
    for training in (None, False):
        for layer in (layers.Dropout(0.5), keras.layers.Dropout(0.5)):
            np.testing.assert_array_equal(np.asarray(layer(x, training=training)), x)
    np.testing.assert_array_equal(layers.Dropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(layers.Dropout(1.0)(x, training=True), np.zeros_like(x))


def test_dropout_statistics():
    rate = 0.3
    x = np.ones((400, 500), np.float32)
    y = np.asarray(layers.Dropout(rate)(x, training=True))
    dropped = y == 0
    assert abs(dropped.mean() - rate) < 0.005
    np.testing.assert_allclose(y[~dropped], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.01


def test_dropout_gradient_is_the_scaled_keep_pattern():
    x = rk.Tensor(randn(8, 6))
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = layers.Dropout(0.5, seed=1)(x, training=True)
    grad = np.asarray(tape.gradient(y, x))
    np.testing.assert_allclose(grad, np.where(np.asarray(y) == 0, 0, 2))


def test_dropout_seed_reproducibility():
    x = np.ones((16, 32), np.float32)
    first, second = layers.Dropout(0.5, seed=7), layers.Dropout(0.5, seed=7)
    calls = [np.asarray(first(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(calls[0], second(x, training=True))
    np.testing.assert_array_equal(calls[1], second(x, training=True))
    assert not np.array_equal(calls[0], calls[1])  # each call draws a new pattern
    # Unseeded layers draw from rnnkit.random, which set_seed makes reproducible.
    rk.random.set_seed(3)
    unseeded = np.asarray(layers.Dropout(0.5)(x, training=True))
    rk.random.set_seed(3)
    np.testing.assert_array_equal(layers.Dropout(0.5)(x, training=True), unseeded)


def test_dropout_noise_shape_shares_the_pattern():
    x = np.ones((4, 10, 6), np.float32)
    y = np.asarray(layers.Dropout(0.5, noise_shape=(None, 1, None), seed=2)(x, training=True))
    assert (y == y[:, :1]).all()
    assert 0 < (y == 0).mean() < 1


def test_dropout_symbolic_call_keeps_the_seeded_sequence():
    used = layers.Dropout(0.5, seed=11)
    out = used(layers.Input((5,)), training=True)
    assert out.shape == (None, 5)
    x = np.ones((6, 5), np.float32)
    np.testing.assert_array_equal(used(x, training=True), layers.Dropout(0.5, seed=11)(x, training=True))


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 1.5}, {"rate": -0.1}, {"rate": 0.5, "noise_shape": "abc"}, {"rate": 0.5, "noise_shape": (None, 0)}],
)
def test_dropout_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        layers.Dropout(**kwargs)


# --- BatchNormalization -------------------------------------------------------------------------

BATCH_NORM_CASES = [
    {},
    {"axis": 1},
    {"center": False},
    {"scale": False},
    {"momentum": 0.9, "epsilon": 0.01},
    {"renorm": True, "renorm_clipping": {"rmax": 1.2, "rmin": 0.9, "dmax": 0.2}},
    {"renorm": True, "scale": False, "center": False},
]


@pytest.mark.parametrize("kwargs", BATCH_NORM_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_batch_normalization_matches_keras(keras, kwargs, masked):
    x = randn(4, 5, 6, loc=2.0, scale=3.0)
    mask = RNG.random((4, 5)) > 0.3 if masked else None
    theirs, ours = twins(keras, "BatchNormalization", x.shape, **kwargs)
    # One training call: batch statistics, and the moving statistics move.
    np.testing.assert_allclose(ours(x, training=True, mask=mask), theirs(x, training=True, mask=mask), **TOL)
    assert_weights_match(theirs, ours)
    # Inference uses the moved statistics.
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), **TOL)
    np.testing.assert_allclose(ours(x), theirs(x), **TOL)


def test_batch_normalization_mask_restricts_the_statistics():
    x = randn(3, 4, 2)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], bool)
    layer = layers.BatchNormalization(momentum=0.0)
    y = np.asarray(layer(x, training=True, mask=mask))
    np.testing.assert_allclose(y[mask].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), x[mask].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), x[mask].var(axis=0), rtol=1e-4)
    with pytest.raises(ValueError, match="one dimension less"):
        layer(x, training=True, mask=np.ones((3, 4, 2), bool))


def test_frozen_batch_normalization_runs_in_inference_mode(keras):
    x = randn(8, 3)
    theirs, ours = twins(keras, "BatchNormalization", x.shape)
    theirs.trainable = ours.trainable = False
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), **TOL)
    assert_weights_match(theirs, ours)
    assert ours.non_trainable_weights == ours.weights


def test_batch_normalization_weights(keras):
    ours, theirs = layers.BatchNormalization(), keras.layers.BatchNormalization()
    ours.build((None, 64))
    theirs.build((None, 64))
    assert [w.name for w in ours.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [(64,)] * 4
    assert ours.count_params() == theirs.count_params() == 256
    assert sum(np.prod(w.shape) for w in ours.non_trainable_weights) == 128
    assert [w.name for w in ours.trainable_weights] == ["gamma", "beta"]
    for kwargs in ({"center": False}, {"scale": False}, {"renorm": True}):
        ours, theirs = layers.BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
        ours.build((None, 3))
        theirs.build((None, 3))
        assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
        np.testing.assert_array_equal(ours.get_weights(), theirs.get_weights())


def test_batch_normalization_symbolic_call_leaves_the_statistics():
    layer = layers.BatchNormalization(moving_mean_initializer="ones")
    out = layer(layers.Input((5, 4)), training=True)
    assert out.shape == (None, 5, 4)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.ones(4))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.ones(4))


def test_batch_normalization_training_through_a_model():
    inputs = layers.Input((3,))
    norm = layers.BatchNormalization(momentum=0.5)
    model = rk.Model(inputs, layers.Dropout(0.5)(norm(inputs)))
    x = randn(10, 3, loc=4.0)
    model(x)
    np.testing.assert_array_equal(norm.moving_mean.numpy(), np.zeros(3))
    model(x, training=True)
    np.testing.assert_allclose(norm.moving_mean.numpy(), x.mean(axis=0) / 2, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, masked",
    [({}, False), ({}, True), ({"axis": 1}, False), ({"center": False}, True), ({"scale": False}, False)],
)
def test_batch_normalization_training_gradients(kwargs, masked):
    layer = layers.BatchNormalization(dtype="float64", **kwargs)
    x = randn(3, 4, 2, dtype="float64", loc=1.0)
    layer.build(x.shape)
    layer.set_weights([randn(*w.shape, dtype="float64", loc=1.0) for w in layer.weights])
    call = {"training": True}
    if masked:
        call["mask"] = np.array([[1, 1, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1]], bool)
    check_gradients(layer, x, layer.trainable_weights, **call)


def test_batch_normalization_inference_gradients():
    layer = layers.BatchNormalization(dtype="float64")
    x = randn(3, 4, 2, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([np.abs(randn(2, dtype="float64", loc=1.0)) for _ in layer.weights])
    check_gradients(layer, x, layer.weights, training=False)


def test_normalization_is_one_recorded_op():
    for layer, call in ((layers.BatchNormalization(), {"training": True}), (layers.LayerNormalization(), {})):
        x = rk.Tensor(randn(4, 3))
        layer(x, **call)  # builds
        with rk.GradientTape() as tape:
            tape.watch(x)
            layer(x, **call)
        assert len(tape._nodes) == 1  # the tape's record of ops: one normalisation, no small ops


# --- LayerNormalization -------------------------------------------------------------------------

LAYER_NORM_CASES = [
    {},
    {"axis": [1, 2]},
    {"axis": (-1, 1)},
    {"axis": 1},
    {"center": False, "scale": False},
    {"epsilon": 0.1},
]


@pytest.mark.parametrize("kwargs", LAYER_NORM_CASES)
def test_layer_normalization_matches_keras(keras, kwargs):
    x = randn(4, 5, 6, loc=1.0, scale=2.0)
    theirs, ours = twins(keras, "LayerNormalization", x.shape, **kwargs)
    assert_weights_match(theirs, ours)
    np.testing.assert_allclose(ours(x), theirs(x), **TOL)
    assert ours.get_config()["axis"] == theirs.get_config()["axis"]


@pytest.mark.parametrize("kwargs", [{}, {"axis": [1, 2]}, {"axis": 1}, {"center": False}, {"scale": False}])
def test_layer_normalization_gradients(kwargs):
    layer = layers.LayerNormalization(dtype="float64", **kwargs)
    x = randn(2, 3, 4, dtype="float64", loc=1.0)
    layer.build(x.shape)
    layer.set_weights([randn(*w.shape, dtype="float64", loc=1.0) for w in layer.weights])
    check_gradients(layer, x, layer.weights)


def test_layer_normalization_arguments():
    with pytest.raises(ValueError, match="rms_scaling"):
        layers.LayerNormalization(rms_scaling=True)
    with pytest.raises(TypeError):
        layers.LayerNormalization(axis="last")
    layer = layers.LayerNormalization(axis=[2, 1])
    layer.build((None, 3, 4))
    assert layer.axis == [1, 2]
    assert [w.shape for w in layer.weights] == [(3, 4), (3, 4)]


# --- Flatten, Reshape, RepeatVector, Activation, Concatenate, Add ----------------------------------

# (layer name, constructor arguments, input shapes without the batch axis); a list of shapes is a
# merge layer's list of inputs.
SHAPE_CASES = [
    ("Flatten", {}, (5, 4)),
    ("Flatten", {}, (None, 4)),
    ("Flatten", {}, (3,)),
    ("Flatten", {"data_format": "channels_first"}, (2, 3, 4)),
    ("Reshape", {"target_shape": (4, 5)}, (20,)),
    ("Reshape", {"target_shape": (-1, 2)}, (3, 4)),
    ("Reshape", {"target_shape": (2, -1)}, (None, 4)),
    ("RepeatVector", {"n": 3}, (32,)),
    ("Activation", {"activation": "relu"}, (5, 4)),
    ("Activation", {"activation": "softmax"}, (5, 4)),
    ("Activation", {"activation": None}, (5,)),
    ("Dropout", {"rate": 0.5}, (None, 4)),
    ("BatchNormalization", {}, (5, 4)),
    ("LayerNormalization", {}, (None, 4)),
    ("Concatenate", {}, [(5, 3), (5, 4)]),
    ("Concatenate", {"axis": 1}, [(5, 3), (2, 3), (None, 3)]),
    ("Add", {}, [(5, 3), (5, 3), (5, 3)]),
    ("Add", {}, [(5, 3), (3,)]),
    ("Add", {}, [(1, 3), (5, 1)]),
]


def _inputs(module, shapes):
    return [module.Input(s) for s in shapes] if isinstance(shapes, list) else module.Input(shapes)


def _data(shapes, batch=3, time=4):
    def one(shape):
        return randn(batch, *(time if d is None else d for d in shape))

    return [one(s) for s in shapes] if isinstance(shapes, list) else one(shapes)


@pytest.mark.parametrize("name, kwargs, shapes", SHAPE_CASES)
def test_symbolic_shapes_match_keras(keras, name, kwargs, shapes):
    ours = getattr(layers, name)(**kwargs)(_inputs(layers, shapes))
    theirs = getattr(keras.layers, name)(**kwargs)(_inputs(keras, shapes))
    assert ours.shape == tuple(theirs.shape)


def test_flatten_symbolic_shape():
    assert layers.Flatten()(layers.Input((5, 4))).shape == (None, 20)
    assert layers.Flatten()(layers.Input((None, 4))).shape == (None, None)


@pytest.mark.parametrize(
    "name, kwargs, shapes",
    [c for c in SHAPE_CASES if c[0] not in ("Dropout", "BatchNormalization", "LayerNormalization")],
)
def test_outputs_match_keras(keras, name, kwargs, shapes):
    x = _data(shapes)
    np.testing.assert_allclose(getattr(layers, name)(**kwargs)(x), getattr(keras.layers, name)(**kwargs)(x), **TOL)


def test_shape_layers_pass_gradients():
    x = rk.Tensor(randn(2, 3))
    y = rk.Tensor(randn(2, 4, 3))
    with rk.GradientTape() as tape:
        tape.watch([x, y])
        repeated = layers.RepeatVector(4)(x)
        out = layers.Flatten()(layers.Concatenate(axis=1)([repeated, layers.Add()([y, x])]))
        loss = ops.sum(layers.Reshape((-1, 2))(out) * 2.0)
    d_x, d_y = tape.gradient(loss, [x, y])
    np.testing.assert_allclose(d_x, np.full((2, 3), 16.0))  # 4 repeats + 4 broadcast rows, times 2
    np.testing.assert_allclose(d_y, np.full((2, 4, 3), 2.0))


def test_repeat_vector_gradient_sums_the_copies():
    x = rk.Tensor(randn(2, 3))
    weights = randn(2, 4, 3)
    with rk.GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(layers.RepeatVector(4)(x) * weights)
    np.testing.assert_allclose(tape.gradient(loss, x), weights.sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize(
    "factory, exception",
    [
        (lambda: layers.RepeatVector(0), ValueError),
        (lambda: layers.RepeatVector(2.0), TypeError),
        (lambda: layers.Reshape((-1, -1)), ValueError),
        (lambda: layers.Reshape((-2, 3)), ValueError),
        (lambda: layers.Flatten(data_format="nchw"), ValueError),
        (lambda: layers.Concatenate()([randn(2, 3), randn(3, 3)]), ValueError),
        (lambda: layers.Concatenate()([randn(2, 3, 1), randn(2, 3)]), ValueError),
        (lambda: layers.Add()([randn(2, 3), randn(2, 4)]), ValueError),
        (lambda: layers.Add()(randn(2, 3)), ValueError),
        (lambda: layers.RepeatVector(2)(randn(2, 3, 4)), ValueError),
    ],
)
def test_invalid_arguments_and_inputs(factory, exception):
    with pytest.raises(exception):
        factory()


# --- masks ----------------------------------------------------------------------------------------

MASK_A = np.array([[1, 1, 0], [1, 0, 0]], bool)
MASK_B = np.array([[1, 0, 1], [0, 0, 0]], bool)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("masks", [[MASK_A, MASK_B], [MASK_A, None], [None, None]])
def test_concatenate_mask_matches_keras(keras, axis, masks):
    inputs = [randn(2, 3, 4), randn(2, 3, 4)]
    want = keras.layers.Concatenate(axis=axis).compute_mask(inputs, masks)
    got = layers.Concatenate(axis=axis).compute_mask(inputs, masks)
    assert (got is None) == (want is None)
    if want is not None:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("masks", [[MASK_A, MASK_B], [MASK_A, None]])
def test_add_mask_matches_keras(keras, masks):
    inputs = [randn(2, 3, 4), randn(2, 3, 4)]
    want = keras.layers.Add().compute_mask(inputs, masks)
    got = layers.Add().compute_mask(inputs, masks)
    assert (got is None) == (want is None)
    if want is not None:
        np.testing.assert_array_equal(got, want)


def test_batch_normalization_passes_the_mask_on():
    x = randn(2, 3, 4)
    x[0, 2] = x[1, 1:] = 0
    out = layers.BatchNormalization()(layers.Masking()(x), training=True)
    np.testing.assert_array_equal(out._keras_mask, MASK_A)


@pytest.mark.parametrize(
    "layer, call",
    [
        (layers.Dropout(0.5), {}),
        (layers.Dropout(0.5), {"training": True}),
        (layers.Activation("relu"), {}),
        (layers.LayerNormalization(), {}),
    ],
    ids=["Dropout", "Dropout-training", "Activation", "LayerNormalization"],
)
def test_mask_passes_through(layer, call):
    x = randn(2, 3, 4)
    x[0, 2] = x[1, 1:] = 0
    out = layer(layers.Masking()(x), **call)
    np.testing.assert_array_equal(out._keras_mask, MASK_A)


def test_merge_masks_combine():
    x, y = randn(2, 3, 4), randn(2, 3, 4)
    x[0, 2] = x[1, 1:] = 0
    y[0, 1] = y[1] = 0
    masked = [layers.Masking()(x), layers.Masking()(y)]
    np.testing.assert_array_equal(layers.Add()(masked)._keras_mask, MASK_A | MASK_B)
    np.testing.assert_array_equal(layers.Concatenate(axis=1)(masked)._keras_mask, np.concatenate([MASK_A, MASK_B], 1))


def test_unmasked_layers_drop_the_mask():
    out = layers.Flatten()(layers.Masking()(randn(2, 3, 4)))
    assert out._keras_mask is None


# --- configs --------------------------------------------------------------------------------------

CONFIG_CASES = [
    ("Dropout", {"rate": 0.25, "noise_shape": (None, 1, 4), "seed": 5}),
    (
        "BatchNormalization",
        {"axis": 1, "momentum": 0.9, "epsilon": 0.01, "center": False, "gamma_initializer": "random_normal"},
    ),
    (
        "BatchNormalization",
        {"renorm": True, "renorm_clipping": {"rmax": 2.0}, "renorm_momentum": 0.9, "beta_regularizer": "l2"},
    ),
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 0.1, "scale": False, "gamma_constraint": "non_neg"}),
    ("Flatten", {"data_format": "channels_first"}),
    ("Reshape", {"target_shape": (2, -1)}),
    ("RepeatVector", {"n": 3}),
    ("Activation", {"activation": "tanh"}),
    ("Concatenate", {"axis": 1}),
    ("Add", {}),
]


def _without_base(config):
    return {k: v for k, v in config.items() if k not in ("name", "dtype", "trainable")}


@pytest.mark.parametrize("name, kwargs", CONFIG_CASES)
def test_config_round_trip(name, kwargs):
    layer = getattr(layers, name)(**kwargs)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert layers.serialization.deserialize(layers.serialization.serialize(layer)).get_config() == config


@pytest.mark.parametrize("name, kwargs", CONFIG_CASES)
def test_config_matches_keras(keras, name, kwargs):
    theirs = getattr(keras.layers, name)(**kwargs).get_config()
    assert _without_base(getattr(layers, name)(**kwargs).get_config()) == _without_base(theirs)
    # A Keras config (less its dtype policy) makes the same layer here.
    assert _without_base(getattr(layers, name).from_config(_without_base(theirs)).get_config()) == _without_base(theirs)
