"""`Layer.add_loss` as Keras 3 has it: losses of the last outermost call (sublayers' included,
none from the symbolic build), summed into the training loss (a per-sample loss counts as its
sum), models compiled without a loss (endpoint layers), values against Keras, errors."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def endpoint_class(lib):
    """An endpoint layer that adds a per-sample squared error between its two inputs."""

    class Endpoint(lib.layers.Layer):
        def call(self, y_true, y_pred):
            self.add_loss(lib.ops.mean(lib.ops.square(y_true - y_pred), axis=-1, keepdims=True))
            return y_pred

    return Endpoint


def endpoint_model(lib):
    x_in, y_in = lib.layers.Input((5,)), lib.layers.Input((2,))
    hidden = lib.layers.Dense(2, kernel_regularizer=lib.regularizers.L2(0.1))(x_in)
    model = lib.Model([x_in, y_in], endpoint_class(lib)()(y_in, hidden))
    model.compile(optimizer=lib.optimizers.SGD(0.01))
    return model


def test_losses_are_those_of_the_last_outermost_call():
    class Inner(rk.layers.Layer):
        def call(self, x):
            self.add_loss(rk.ops.sum(x))
            return x * 2

    class Outer(rk.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def call(self, x):
            self.add_loss(rk.ops.mean(x))
            return self.inner(x)

    layer = Outer()
    layer(np.ones((2, 3), "float32"))
    assert sorted(float(loss) for loss in layer.losses) == [1.0, 6.0]
    layer(np.full((1, 2), 3.0, "float32"))  # the next call replaces them
    assert sorted(float(loss) for loss in layer.losses) == [3.0, 6.0]
    # Building a functional model runs the call on placeholders: no losses left behind.
    inputs = rk.layers.Input((3,))
    model = rk.Model(inputs, Outer()(inputs))
    assert model.losses == []
    model(np.ones((1, 3), "float32"))
    assert len(model.losses) == 2


def test_endpoint_model_compiled_without_a_loss_matches_keras():
    keras = pytest.importorskip("keras")
    ours, theirs = endpoint_model(rk), endpoint_model(keras)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    # Keras sums the per-sample loss over the batch and adds the kernel's L2 penalty.
    np.testing.assert_allclose(ours.evaluate([x, y], verbose=0), theirs.evaluate([x, y], verbose=0), rtol=1e-5)
    for _ in range(3):
        ours_loss = ours.train_on_batch([x, y])
        theirs_loss = theirs.train_on_batch([x, y])
        np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-4)
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_added_losses_join_the_compiled_loss():
    x_in = rk.layers.Input((4,))

    class Penalty(rk.layers.Layer):
        def call(self, x):
            self.add_loss(0.5 * rk.ops.sum(rk.ops.square(x)))
            return x

    out = Penalty()(rk.layers.Dense(1, kernel_initializer="ones")(x_in))
    model = rk.Model(x_in, out)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 4), "float32"), np.zeros((4, 1), "float32")
    # Predictions are 4 each: mse 16, plus 0.5 * 4 * 16.
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), 16 + 32, rtol=1e-6)


def test_errors():
    layer = rk.layers.Layer()
    with pytest.raises(ValueError, match="`add_loss\\(\\)` can only be called from inside"):
        layer.add_loss(1.0)
    inputs = rk.layers.Input((3,))
    model = rk.Model(inputs, rk.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        model.train_on_batch(np.ones((2, 3), "float32"), np.ones((2, 1), "float32"))
