"""Tests of the elementwise ops added for activations: erf, expm1 and softplus."""

import math

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import ops

X = np.concatenate([np.linspace(-8, 8, 33) + 0.01, [-1e-9, 1e-9, 40.0, -40.0]])

REFERENCES = {
    "erf": np.vectorize(math.erf),
    "expm1": lambda x: np.array([math.expm1(v) for v in x]),
    "softplus": lambda x: np.array([math.log1p(math.exp(-abs(v))) + max(v, 0.0) for v in x]),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_and_dtypes(name):
    fn = getattr(ops, name)
    np.testing.assert_allclose(np.asarray(fn(X)), REFERENCES[name](X), rtol=1e-14, atol=1e-300)
    assert fn(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradients_match_finite_differences(name):
    # The ops are elementwise, so one perturbation of every element gives every derivative.
    fn = getattr(ops, name)
    x = rk.Tensor(X[np.abs(X) < 20])
    weights = np.random.default_rng(0).normal(size=x.shape)
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    grad = tape.gradient(y, x, output_gradients=weights).numpy()
    eps = 1e-6
    numeric = (np.asarray(fn(np.asarray(x) + eps)) - np.asarray(fn(np.asarray(x) - eps))) / (2 * eps) * weights
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_softplus_does_not_overflow():
    x = rk.Tensor(np.array([-1e4, 1e4]))
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = ops.softplus(x)
    np.testing.assert_array_equal(np.asarray(y), [0.0, 1e4])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 1.0])
