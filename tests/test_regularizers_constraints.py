"""Tests of rnnkit.regularizers and rnnkit.constraints: values and configs against Keras 3."""

import os

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import constraints, regularizers


@pytest.fixture(scope="module")
def keras():
    # Imported on first use rather than at collection, so that a module that needs another
    # backend (test_keras_parity.py needs jax) chooses it in a full run; values agree on both.
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


_rng = np.random.default_rng(0)
MATRIX = _rng.normal(size=(5, 7))
KERNEL = _rng.normal(size=(3, 4, 6)) * 2

REGULARIZERS = [
    regularizers.L1(0.3),
    regularizers.L1(),
    regularizers.L2(0.2),
    regularizers.L2(),
    regularizers.L1L2(l1=0.01, l2=0.05),
    regularizers.L1L2(l1=0.1),
    regularizers.L1L2(),
    regularizers.OrthogonalRegularizer(0.2),
    regularizers.OrthogonalRegularizer(0.5, mode="columns"),
]
CONSTRAINTS = [
    constraints.MaxNorm(),
    constraints.MaxNorm(max_value=1.5, axis=1),
    constraints.MaxNorm(3.0, axis=[0, 1]),
    constraints.NonNeg(),
    constraints.UnitNorm(),
    constraints.UnitNorm(axis=-1),
    constraints.MinMaxNorm(),
    constraints.MinMaxNorm(0.5, 2.0, rate=0.7, axis=1),
    constraints.MinMaxNorm(min_value=4.0, max_value=5.0, axis=[0, 2]),
]


def _keras_twin(module, obj):
    return getattr(module, type(obj).__name__)(**obj.get_config())


def _rounded(config):
    return {key: float(np.float32(v)) if isinstance(v, float) else v for key, v in config.items()}


def _name(obj):
    return f"{type(obj).__name__}{obj.get_config()}"


@pytest.mark.parametrize("regularizer", REGULARIZERS, ids=_name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regularizer_values_match_keras(keras, regularizer, dtype):
    x = MATRIX.astype(dtype)
    penalty = regularizer(x)
    assert isinstance(penalty, rk.Tensor) and penalty.shape == () and penalty.dtype == dtype
    twin = _keras_twin(keras.regularizers, regularizer)
    if getattr(regularizer, "mode", None) == "columns":
        # Keras 3.15's numpy path of mode="columns" fails (it normalises with `axis or -1`).
        twin, x = _keras_twin(keras.regularizers, regularizers.OrthogonalRegularizer(regularizer.factor)), x.T
    # Keras converts float64 numpy arrays to float32 and keeps L1's factor as float32.
    np.testing.assert_allclose(float(penalty), float(twin(x)), rtol=1e-6)


def test_regularizers_on_known_values():
    x = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert float(regularizers.L1(0.5)(x)) == 3.0
    assert float(regularizers.L2(0.5)(x)) == 7.0
    assert float(regularizers.L1L2(0.5, 0.5)(x)) == 10.0
    assert float(regularizers.L1L2()(x)) == 0.0
    # factor times the mean |cosine| between distinct rows (or columns).
    assert float(regularizers.OrthogonalRegularizer(1.0)(np.eye(3))) == 0.0
    assert float(regularizers.OrthogonalRegularizer(0.5)(np.ones((2, 4)))) == pytest.approx(0.5)
    rows = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    cosines = [np.sqrt(0.5), 0.0, np.sqrt(0.5)]
    assert float(regularizers.OrthogonalRegularizer(0.3)(rows)) == pytest.approx(0.3 * np.mean(cosines))
    assert float(regularizers.OrthogonalRegularizer(0.3, mode="columns")(rows.T)) == pytest.approx(
        0.3 * np.mean(cosines)
    )


def test_l1_l2_gradients():
    w = rk.Variable(MATRIX)
    with rk.GradientTape() as tape:
        penalty = regularizers.L1L2(l1=0.3, l2=0.2)(w)
    np.testing.assert_allclose(tape.gradient(penalty, w).numpy(), 0.3 * np.sign(MATRIX) + 0.4 * MATRIX)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_gradient_matches_finite_differences(mode):
    regularizer = regularizers.OrthogonalRegularizer(0.7, mode=mode)
    w = rk.Variable(MATRIX)
    with rk.GradientTape() as tape:
        penalty = regularizer(w)
    grad = tape.gradient(penalty, w).numpy()
    eps = 1e-6
    numeric = np.zeros_like(MATRIX)
    for index in np.ndindex(MATRIX.shape):
        step = np.zeros_like(MATRIX)
        step[index] = eps
        numeric[index] = (float(regularizer(MATRIX + step)) - float(regularizer(MATRIX - step))) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_orthogonal_regularizer_gradient_is_finite_for_zero_rows():
    w = rk.Variable(np.array([[0.0, 0.0], [1.0, 2.0], [2.0, -1.5]]))
    with rk.GradientTape() as tape:
        penalty = regularizers.OrthogonalRegularizer()(w)
    assert np.isfinite(tape.gradient(penalty, w).numpy()).all()


def test_invalid_regularizer_arguments_raise_value_error():
    for make in [
        lambda: regularizers.L1(-1.0),
        lambda: regularizers.L2(float("nan")),
        lambda: regularizers.L1L2(l2="0.1"),
        lambda: regularizers.OrthogonalRegularizer(-0.1),
    ]:
        with pytest.raises(ValueError, match="non-negative"):
            make()
    with pytest.raises(ValueError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="rank 2"):
        regularizers.OrthogonalRegularizer()(np.zeros((2, 2, 2)))
    assert regularizers.L1(None).l1 == 0.01 and regularizers.L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=_name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constraint_values_match_keras(keras, constraint, dtype):
    w = KERNEL.astype(dtype)
    constrained = constraint(w)
    assert isinstance(constrained, np.ndarray) and constrained.dtype == dtype and constrained.shape == w.shape
    expected = np.asarray(_keras_twin(keras.constraints, constraint)(w))  # float32 for numpy float64
    np.testing.assert_allclose(constrained, expected, rtol=1e-6, atol=1e-7)


def test_constraints_on_known_values():
    w = np.array([[3.0, 0.1], [4.0, -0.2]])
    norms = np.array([5.0, np.hypot(0.1, 0.2)])
    np.testing.assert_allclose(constraints.MaxNorm(2.0)(w), w * np.minimum(norms, 2.0) / (norms + 1e-7))
    np.testing.assert_allclose(np.linalg.norm(constraints.UnitNorm()(w), axis=0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(constraints.NonNeg()(w), [[3.0, 0.1], [4.0, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(constraints.MinMaxNorm(1.0, 2.0)(w), axis=0), [2.0, 1.0], rtol=1e-6)
    half_way = constraints.MinMaxNorm(1.0, 2.0, rate=0.5)(w)
    np.testing.assert_allclose(np.linalg.norm(half_way, axis=0), [3.5, (1.0 + norms[1]) / 2], rtol=1e-6)
    np.testing.assert_array_equal(constraints.Constraint()(w), w)


def test_constraints_accept_variables():
    w = rk.Variable(np.array([[-1.0, 2.0]], np.float32))
    assert constraints.NonNeg()(w).tolist() == [[0.0, 2.0]]


@pytest.mark.parametrize(
    "module, obj",
    [(regularizers, r) for r in REGULARIZERS] + [(constraints, c) for c in CONSTRAINTS],
    ids=lambda o: _name(o) if hasattr(o, "get_config") else o.__name__.split(".")[-1],
)
def test_configs_match_keras_and_round_trip(keras, module, obj):
    keras_module = getattr(keras, module.__name__.split(".")[-1])
    config = module.serialize(obj)
    keras_config = keras_module.serialize(_keras_twin(keras_module, obj))
    # Keras keeps L1's and OrthogonalRegularizer's factors as float32, so its configs are rounded.
    assert {**config, "config": _rounded(config["config"])} == {
        **keras_config,
        "config": _rounded(keras_config["config"]),
    }
    rebuilt = module.deserialize(config)
    assert type(rebuilt) is type(obj) and rebuilt.get_config() == obj.get_config()
    assert module.get(config).get_config() == obj.get_config()


@pytest.mark.parametrize(
    "module, name, cls",
    [
        (regularizers, "l1", regularizers.L1),
        (regularizers, "l2", regularizers.L2),
        (regularizers, "l1_l2", regularizers.L1L2),
        (regularizers, "l1l2", regularizers.L1L2),
        (regularizers, "L1L2", regularizers.L1L2),
        (regularizers, "orthogonal_regularizer", regularizers.OrthogonalRegularizer),
        (regularizers, "OrthogonalRegularizer", regularizers.OrthogonalRegularizer),
        (constraints, "max_norm", constraints.MaxNorm),
        (constraints, "MaxNorm", constraints.MaxNorm),
        (constraints, "non_neg", constraints.NonNeg),
        (constraints, "unit_norm", constraints.UnitNorm),
        (constraints, "min_max_norm", constraints.MinMaxNorm),
        (constraints, "MinMaxNorm", constraints.MinMaxNorm),
    ],
)
def test_get_by_name(module, name, cls):
    obj = module.get(name)
    assert type(obj) is cls and obj.get_config() == cls().get_config()


@pytest.mark.parametrize("module", [regularizers, constraints])
def test_get_resolves_identifiers(module):
    assert module.get(None) is None

    def fn(w):
        return w

    assert module.get(fn) is fn
    instance = module.get("l2" if module is regularizers else "non_neg")
    assert module.get(instance) is instance
    assert type(module.get(type(instance))) is type(instance)


@pytest.mark.parametrize("module, name, listed", [(regularizers, "l3", "l1_l2"), (constraints, "maxnorm", "max_norm")])
def test_unknown_identifiers_raise_value_error_naming_them(module, name, listed):
    with pytest.raises(ValueError, match=f"'{name}'.*{listed}"):
        module.get(name)
    with pytest.raises(ValueError, match="'Nope'"):
        module.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="7"):
        module.get(7)
