"""Nadam, Adamax, Adadelta and Lion (and AdamW's options) against Keras 3's optimizers: the same
variables and gradients step by step, the optimizer variables, configs and name lookup."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import optimizers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


_rng = np.random.default_rng(16)
# A quadratic bowl per variable (gradient curvature * (w - centre)), as in test_optimizers.py.
INITIAL = [_rng.normal(size=(3, 2)).astype(np.float32), _rng.normal(size=(2,)).astype(np.float32)]
CENTRES = [_rng.normal(size=(3, 2)).astype(np.float32), _rng.normal(size=(2,)).astype(np.float32)]
CURVATURES = [_rng.uniform(0.5, 4.0, size=(3, 2)).astype(np.float32), np.array([0.1, 8.0], np.float32)]
NAMES = ["kernel", "bias"]
STEPS = 8

CASES = [
    ("Nadam", {}),
    ("Nadam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-4}),
    ("Nadam", {"learning_rate": 0.05, "weight_decay": 0.1, "clipnorm": 1.0}),
    ("Nadam", {"learning_rate": 0.05, "gradient_accumulation_steps": 2}),
    ("Adamax", {}),
    ("Adamax", {"learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.8, "epsilon": 1e-3}),
    ("Adamax", {"learning_rate": 0.1, "global_clipnorm": 0.5, "use_ema": True}),
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}),
    ("Adadelta", {"learning_rate": 0.5, "clipvalue": 0.3, "weight_decay": 0.05}),
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 1.0, "weight_decay": 0.1}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.01, "beta_1": 0.8, "global_clipnorm": 2.0}),
]


def _gradients(variables):
    return [c * (np.asarray(v.value) - m) for v, m, c in zip(variables, CENTRES, CURVATURES)]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}{k}" for n, k in CASES])
def test_trajectory_matches_keras(keras, name, kwargs):
    ours, theirs = getattr(optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    our_vars = [rk.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    their_vars = [keras.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    for step in range(STEPS):
        ours.apply_gradients(zip(_gradients(our_vars), our_vars))
        theirs.apply_gradients(zip(_gradients(their_vars), their_vars))
        for mine, reference in zip(our_vars, their_vars):
            assert mine.dtype == np.float32
            np.testing.assert_allclose(
                np.asarray(mine), np.asarray(reference.value), rtol=1e-5, atol=1e-6, err_msg=f"step {step}"
            )
    assert int(ours.iterations) == int(keras.ops.convert_to_numpy(theirs.iterations))
    assert [v.shape for v in ours.variables] == [tuple(v.shape) for v in theirs.variables]
    for mine, reference in zip(ours.variables[2:], theirs.variables[2:]):
        np.testing.assert_allclose(np.asarray(mine), keras.ops.convert_to_numpy(reference), rtol=1e-5, atol=1e-6)
    if kwargs.get("use_ema"):
        ours.finalize_variable_values(our_vars)
        theirs.finalize_variable_values(their_vars)
        for mine, reference in zip(our_vars, their_vars):
            np.testing.assert_allclose(np.asarray(mine), np.asarray(reference.value), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}{k}" for n, k in CASES])
def test_configs_match_keras(keras, name, kwargs):
    ours = getattr(optimizers, name)(name="opt", **kwargs)
    theirs = getattr(keras.optimizers, name)(name="opt", **kwargs)
    assert ours.get_config() == theirs.get_config()
    assert getattr(optimizers, name).from_config(theirs.get_config()).get_config() == ours.get_config()
    assert optimizers.deserialize(optimizers.serialize(ours)).get_config() == ours.get_config()


@pytest.mark.parametrize("name", ["nadam", "Adamax", "adadelta", "LION"])
def test_get_finds_the_new_optimizers(name):
    assert type(optimizers.get(name)).__name__.lower() == name.lower()


@pytest.mark.parametrize("name", ["Nadam", "Adamax", "Adadelta", "Lion"])
def test_float64_variables_stay_float64(name):
    variable = rk.Variable(np.ones(3), name="w")
    getattr(optimizers, name)(0.1).apply_gradients([(np.full(3, 0.5), variable)])
    assert variable.dtype == np.float64 and (np.asarray(variable) < 1).all()


def test_lion_rejects_beta_1_outside_zero_one():
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)


def test_a_model_trains_with_each_optimizer():
    x = np.random.default_rng(0).normal(size=(32, 5, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    for name in ("nadam", "adamax", "adadelta", "lion"):
        model = rk.Sequential([rk.Input((5, 3)), rk.layers.LSTM(4), rk.layers.Dense(1)])
        model.compile(optimizer=name, loss="mse")
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
