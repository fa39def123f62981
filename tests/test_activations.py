"""Tests of rnnkit.activations: values against Keras 3, gradients against finite differences."""

import os

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import activations


@pytest.fixture(scope="module")
def keras():
    # Imported on first use rather than at collection, so that a module that needs another
    # backend (test_keras_parity.py needs jax) chooses it in a full run; values agree on both.
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


# Every name keras.activations.get accepts in Keras 3.15.
NAMES = [
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]

# (name, keyword arguments): every activation with its defaults, and the non-default options.
CASES = [(name, {}) for name in NAMES if name != "threshold"] + [
    ("threshold", {"threshold": 0.3, "default_value": -2.0}),
    ("relu", {"negative_slope": 0.1}),
    ("relu", {"max_value": 6.0}),
    ("relu", {"max_value": 2.5}),
    ("relu", {"threshold": 1.5}),
    ("relu", {"negative_slope": 0.3, "max_value": 4.0, "threshold": -1.0}),
    ("leaky_relu", {"negative_slope": 0.01}),
    ("elu", {"alpha": 0.5}),
    ("celu", {"alpha": 2.0}),
    ("gelu", {"approximate": True}),
    ("soft_shrink", {"threshold": 1.0}),
    ("hard_shrink", {"threshold": 1.0}),
    ("squareplus", {"b": 1.0}),
    ("softmax", {"axis": 0}),
    ("log_softmax", {"axis": 0}),
    ("glu", {"axis": 0}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kwargs.items()) for name, kwargs in CASES]

# Kinks of all the piecewise functions above and inputs around them, extremes, and a grid.
VALUES = (
    np.concatenate(
        [
            [-1.0, -0.5, 0.0, 0.5, 1.0, -3.0, 3.0, 6.0, 0.3, -0.3, 1.5, -1.5, 2.5, 4.0],
            [1e-4, -1e-4, 20.0, -20.0, 60.0, -60.0, 0.7, -2.2, 5.5, -5.5],
            np.linspace(-7, 7, 48),
        ]
    )
    .astype(np.float32)
    .reshape(6, 12)
)

# Inputs at least 0.03 away from every kink, for finite differences.
SMOOTH = np.linspace(-6.9, 6.9, 24).reshape(4, 6) + 0.0123


def test_every_keras_name_is_known(keras):
    keras_names = {n for n in dir(keras.activations) if not n.startswith("_")} - {
        "get",
        "serialize",
        "deserialize",
    }
    assert keras_names <= set(NAMES)
    for name in NAMES:
        assert activations.get(name) is getattr(activations, name)
        assert callable(getattr(keras.activations, name))


@pytest.mark.parametrize("name, kwargs", CASES, ids=IDS)
def test_values_match_keras(keras, name, kwargs):
    x = VALUES * 10 if name == "sparsemax" else VALUES
    expected = np.asarray(getattr(keras.activations, name)(x, **kwargs))
    actual = activations.get(name)(x, **kwargs)
    if name == "sparsemax":  # where Keras is right: one non-zero per row (see the next test)
        assert (np.asarray(actual) > 0).sum(axis=-1).tolist() == [1] * len(x)
    assert isinstance(actual, rk.Tensor) or name == "linear"
    assert actual.dtype == np.float32
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=2e-6, atol=1e-6)


def test_sparsemax_projects_onto_the_simplex():
    # Keras 3.15 gives [0.3, 0.2, 0] and [0, 0, 0.25] here (keras-team/keras#23425).
    x = np.array([[0.5, 0.4, -1.0], [0.0, 0.5, 1.0], [1.0, 1.0, 1.0]], np.float32)
    expected = [[0.55, 0.45, 0.0], [0.0, 0.25, 0.75], [1 / 3, 1 / 3, 1 / 3]]
    np.testing.assert_allclose(np.asarray(activations.sparsemax(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(activations.sparsemax(x.T, axis=0)), np.transpose(expected), rtol=1e-6)
    out = np.asarray(activations.sparsemax(np.random.default_rng(0).normal(size=(50, 7))))
    assert out.min() >= 0
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", CASES, ids=IDS)
def test_gradients_match_finite_differences(name, kwargs):
    fn = activations.get(name)
    x = rk.Tensor(SMOOTH)
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = fn(x, **kwargs)
    weights = np.random.default_rng(0).normal(size=y.shape)  # so that errors cannot cancel out
    grad = tape.gradient(y, x, output_gradients=weights)

    def objective(values):
        return np.sum(np.asarray(fn(values, **kwargs)) * weights)

    eps = 1e-6
    numeric = np.zeros_like(SMOOTH)
    for index in np.ndindex(SMOOTH.shape):
        step = np.zeros_like(SMOOTH)
        step[index] = eps
        numeric[index] = (objective(SMOOTH + step) - objective(SMOOTH - step)) / (2 * eps)
    # Central differences are off by about (rounding error of the objective) / eps.
    atol = 1e-8 + 1e-9 * np.sum(np.abs(np.asarray(y) * weights))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-6, atol=atol)


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"exponential", "linear", "threshold"}))
def test_values_and_gradients_stay_finite_at_extremes(name):
    x = rk.Tensor(np.array([[-1e3, -50.0, 0.0, 50.0, 1e3, 1.0]]))
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = activations.get(name)(x)
    grad = tape.gradient(y, x)
    assert y.dtype == np.float64
    assert np.isfinite(np.asarray(y)).all() and np.isfinite(grad.numpy()).all()


def test_leaky_relu_with_a_slope_above_one_follows_its_definition():
    # Keras's JAX and TF backends agree; its numpy backend computes max(x, 2x) = x for x < 0.
    np.testing.assert_array_equal(np.asarray(activations.relu([-3.0, 0.0, 2.0], negative_slope=2.0)), [-6, 0, 2])


def test_exact_gradients_at_points_that_matter():
    x = rk.Tensor(np.array([0.0, 100.0]))
    for fn, expected in [
        (activations.softplus, [0.5, 1.0]),
        (activations.elu, [1.0, 1.0]),
        (activations.celu, [1.0, 1.0]),
    ]:
        with rk.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), expected, err_msg=fn.__name__)


def test_get_resolves_identifiers():
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.silu is activations.swish
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.get(np.tanh) is np.tanh
    assert (
        activations.get({"class_name": "function", "config": "relu", "module": "keras.activations"}) is activations.relu
    )
    assert activations.deserialize("gelu") is activations.gelu


def test_get_accepts_keras_function_configs(keras):
    config = keras.saving.serialize_keras_object(keras.activations.selu)
    assert activations.get(config) is activations.selu


@pytest.mark.parametrize("name", NAMES)
def test_serialize_gives_the_name_keras_gives(keras, name):
    assert activations.serialize(activations.get(name)) == keras.activations.serialize(keras.activations.get(name))


def test_unknown_identifiers_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="'relu7'.*hard_sigmoid"):
        activations.get("relu7")
    with pytest.raises(ValueError, match="42"):
        activations.get(42)
    with pytest.raises(ValueError, match="built-in"):
        activations.serialize(lambda x: x)


def test_glu_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 2"):
        activations.glu(np.zeros((2, 3), np.float32))


def test_activations_accept_lists_and_keep_float64():
    assert activations.relu([-1.0, 2.0]).dtype == np.float32  # Python floats follow floatx
    assert activations.gelu(np.zeros(3)).dtype == np.float64
