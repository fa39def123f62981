"""What the fit-input and callback tests share: Keras on JAX (or a skip), pairs of rnnkit and Keras
models with the same weights and optimizer, small data sets, and the same batches served to both
(a duck-typed PyDataset for rnnkit, `keras.utils.PyDataset` for Keras)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402

keras = pytest.importorskip("keras", reason="the Keras comparisons need keras>=3 (pip install keras)")
if keras.backend.backend() != "jax":
    pytest.skip(f"the Keras comparisons need the JAX backend, got {keras.backend.backend()!r}", allow_module_level=True)


def regression_data(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    y = (x @ np.arange(1, features + 1, dtype="float32")[:, None] / features).astype("float32")
    return x, y


def classification_data(n=40, features=4, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    labels = rng.integers(0, classes, n)
    return x, labels


def model_pair(features=3, units=1, activation=None, loss="mse", lr=0.1, metrics=None, seed=0):
    """An rnnkit and a Keras `Dense(units)` model with the same weights, each compiled with SGD(lr)."""
    ours = rk.Sequential([rk.Input((features,)), rk.layers.Dense(units, activation=activation)])
    theirs = keras.Sequential([keras.Input((features,)), keras.layers.Dense(units, activation=activation)])
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(features, units)).astype("float32"), rng.normal(size=units).astype("float32")]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    ours.compile(rk.optimizers.SGD(lr), loss, metrics=metrics)
    theirs.compile(keras.optimizers.SGD(lr), loss, metrics=metrics)
    return ours, theirs


def assert_same_weights(ours, theirs, rtol=1e-5, atol=1e-6):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def assert_same_history(ours, theirs, rtol=1e-5):
    assert ours.epoch == theirs.epoch
    assert set(ours.history) == set(theirs.history)
    for key, values in theirs.history.items():
        assert ours.history[key] == pytest.approx(values, rel=rtol, abs=1e-7), key


class Batches:
    """A PyDataset by behaviour only: `__len__`, `__getitem__` and `on_epoch_end` (counted)."""

    def __init__(self, x, y=None, batch_size=8, sample_weight=None):
        self.x, self.y, self.sample_weight, self.batch_size = x, y, sample_weight, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.y is None:
            return (self.x[part],)
        if self.sample_weight is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.sample_weight[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def keras_batches(x, y=None, batch_size=8, sample_weight=None):
    """The same batches as `Batches`, as a `keras.utils.PyDataset`."""

    class KerasBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.inner = Batches(x, y, batch_size, sample_weight)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            return self.inner[i]

    return KerasBatches()
