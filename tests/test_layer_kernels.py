"""Tests of the Rust kernels under BatchNormalization (`_core.batch_norm_forward`/`_backward`)
and the sparse softmax cross-entropy from logits (`_core.sparse_softmax_cross_entropy`): the
same bits as the numpy arithmetic they replace (where the order of operations is the same),
rounding-level agreement otherwise, gradients against finite differences, Keras's values, and
the messages for bad arguments."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # as every test module importing Keras

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import _core  # noqa: E402
from rnnkit.layers import normalization  # noqa: E402
from rnnkit.losses import probabilistic  # noqa: E402
from rnnkit.tensor import Variable, wrap  # noqa: E402

_rng = np.random.default_rng(0)
DTYPES = ["float32", "float64"]
SHAPES = [(64, 16), (5, 4, 7), (1, 3)]


def _numpy_batch_norm(x, gamma, beta, epsilon):
    """The numpy path (`moments` then `normalize`), which the kernel replaces."""
    shape = [1] * (x.ndim - 1) + [x.shape[-1]]
    stats = normalization.moments(x, tuple(range(x.ndim - 1)))
    return normalization.normalize(x, stats, gamma, beta, epsilon, shape), stats


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernel_is_the_numpy_arithmetic_bit_for_bit(dtype, shape, affine):
    x = wrap(_rng.standard_normal(shape).astype(dtype) * 3 + 1)
    features = shape[-1]
    gamma = Variable(_rng.standard_normal(features).astype(dtype)) if affine else None
    beta = Variable(_rng.standard_normal(features).astype(dtype)) if affine else None
    weights = _rng.standard_normal(shape).astype(dtype)
    with rk.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out, mean, variance = normalization.batch_normalize(x, gamma, beta, 1e-3, [1] * (len(shape) - 1) + [features])
        ref, stats = _numpy_batch_norm(x, gamma, beta, 1e-3)
        loss, ref_loss = rk.ops.sum(out * weights), rk.ops.sum(ref * weights)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(mean, stats.mean.ravel())
    np.testing.assert_array_equal(variance, stats.variance.ravel())
    sources = [x] + ([gamma, beta] if affine else [])
    for got, want in zip(tape.gradient(loss, sources), tape.gradient(ref_loss, sources)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_kernel_with_moving_statistics_is_the_numpy_arithmetic(dtype):
    x = _rng.standard_normal((6, 5, 8)).astype(dtype)
    layer = rk.layers.BatchNormalization(
        beta_initializer="random_normal",
        gamma_initializer="random_normal",
        moving_mean_initializer="random_normal",
        dtype=dtype,
    )
    layer.build(x.shape)
    layer.moving_variance.assign(_rng.random(8).astype(dtype) + 0.5)
    g, b, m, v = (np.asarray(w) for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
    inv = 1 / np.sqrt(v + 1e-3)
    expected = x * (inv * g) + (b - m * (inv * g))
    np.testing.assert_array_equal(layer(x, training=False), expected.astype(dtype))


def test_batch_norm_layer_gradients_match_finite_differences():
    x = _rng.standard_normal((5, 3, 4))
    layer = rk.layers.BatchNormalization(
        gamma_initializer="random_normal", beta_initializer="random_normal", momentum=1.0, dtype="float64"
    )
    layer.build(x.shape)
    weights = _rng.standard_normal(x.shape)

    def loss(value):
        return float(np.sum(np.asarray(layer(value, training=True)) * weights))

    xt = rk.ops.convert_to_tensor(x)
    with rk.GradientTape() as tape:
        tape.watch(xt)
        total = rk.ops.sum(layer(xt, training=True) * weights)
    d_x, d_gamma, d_beta = tape.gradient(total, [xt, layer.gamma, layer.beta])
    numeric = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(d_x, numeric, atol=1e-7)
    np.testing.assert_allclose(d_beta, weights.sum(axis=(0, 1)), rtol=1e-12)
    assert np.asarray(d_gamma).shape == (4,)


def test_batch_norm_layer_training_matches_keras():
    keras = pytest.importorskip("keras")
    x = _rng.standard_normal((8, 6)).astype("float32")
    ours = rk.layers.BatchNormalization(momentum=0.9)
    theirs = keras.layers.BatchNormalization(momentum=0.9)
    np.testing.assert_allclose(ours(x, training=True), np.asarray(theirs(x, training=True)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_mean, np.asarray(theirs.moving_mean), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.moving_variance, np.asarray(theirs.moving_variance), rtol=1e-6)


def test_batch_norm_kernel_is_skipped_where_it_does_not_apply():
    # float16 inputs and a feature axis that is not the last keep the numpy arithmetic.
    x = _rng.standard_normal((4, 3)).astype("float16")
    assert normalization._kernel_rows(x, [1, 3], ()) is None
    assert normalization._kernel_rows(x.astype("float32"), [4, 1], ()) is None
    assert normalization._kernel_rows(np.zeros((0, 3), "float32"), [1, 3], ()) is None
    layer = rk.layers.BatchNormalization(axis=1)
    y = np.asarray(layer(_rng.standard_normal((5, 3, 2)).astype("float32"), training=True))
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-5)


def test_batch_norm_bindings_name_bad_arguments():
    x = np.zeros((4, 3), "float32")
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, received int64"):
        _core.batch_norm_forward(np.zeros((4, 3), "int64"), None, None, epsilon=1e-3)
    with pytest.raises(_core.ShapeError, match="x: expected a 2-d array"):
        _core.batch_norm_forward(np.zeros(3, "float32"), None, None, epsilon=1e-3)
    with pytest.raises(TypeError, match="gamma: expected dtype float32, received float64"):
        _core.batch_norm_forward(x, np.ones(3), None, epsilon=1e-3)
    with pytest.raises(ValueError, match=r"gamma: expected shape \(3,\), received \(2,\)"):
        _core.batch_norm_forward(x, np.ones(2, "float32"), None, epsilon=1e-3)
    with pytest.raises(ValueError, match="mean and variance: expected both or neither"):
        _core.batch_norm_forward(x, None, None, np.zeros(3, "float32"), epsilon=1e-3)
    with pytest.raises(ValueError, match="x: expected at least one row, received none"):
        _core.batch_norm_forward(np.zeros((0, 3), "float32"), None, None, epsilon=1e-3)
    mean = np.zeros(3, "float32")
    with pytest.raises(ValueError, match=r"grad: expected shape \(4, 3\), received \(4, 2\)"):
        _core.batch_norm_backward(x, mean, mean, None, np.zeros((4, 2), "float32"), epsilon=1e-3)


def _one_hot_crossentropy(labels, logits, ignore_class=None):
    """The numpy path the kernel replaces: the cross-entropy of one-hot targets."""
    classes = logits.shape[-1]
    one_hot = labels[..., None] == np.arange(classes)
    if ignore_class is not None:
        one_hot &= (labels != ignore_class)[..., None]
    return probabilistic._plain_crossentropy(one_hot.astype(logits.dtype), logits, True, -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 10), (4, 3, 5), (2, 1)])
@pytest.mark.parametrize("ignore_class", [None, 1])
def test_sparse_crossentropy_kernel_matches_the_one_hot_arithmetic(dtype, shape, ignore_class):
    logits = wrap(_rng.standard_normal(shape).astype(dtype) * 4)
    labels = _rng.integers(0, shape[-1], shape[:-1])
    labels.flat[0] = shape[-1]  # out of range: no class, loss 0
    weights = _rng.standard_normal(shape[:-1]).astype(dtype)
    with rk.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        got = rk.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True, ignore_class=ignore_class)
        want = _one_hot_crossentropy(labels, logits, ignore_class)
        loss, ref_loss = rk.ops.sum(got * weights), rk.ops.sum(want * weights)
    # Rounding-level: the exponentials and the order of the row sums differ from numpy's.
    tol = {"float32": 2e-6, "float64": 1e-14}[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(tape.gradient(loss, logits), tape.gradient(ref_loss, logits), rtol=tol, atol=tol)
    assert np.asarray(got).dtype == dtype
    assert np.asarray(got).flat[0] == 0
    if ignore_class is None:
        assert got._keras_mask is None
    else:
        np.testing.assert_array_equal(got._keras_mask, labels != ignore_class)


def test_sparse_crossentropy_gradient_matches_finite_differences():
    logits = _rng.standard_normal((3, 4))
    labels = np.array([2, 0, 3])
    weights = _rng.standard_normal(3)

    def loss(z):
        return float(
            np.sum(np.asarray(rk.losses.sparse_categorical_crossentropy(labels, z, from_logits=True)) * weights)
        )

    z = rk.ops.convert_to_tensor(logits)
    with rk.GradientTape() as tape:
        tape.watch(z)
        total = rk.ops.sum(rk.losses.sparse_categorical_crossentropy(labels, z, from_logits=True) * weights)
    grad = np.asarray(tape.gradient(total, z))
    h = 1e-6
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += h
        down[i] -= h
        assert abs((loss(up) - loss(down)) / (2 * h) - grad[i]) < 1e-8


def test_sparse_crossentropy_kernel_matches_keras():
    keras = pytest.importorskip("keras")
    logits = (_rng.standard_normal((16, 10)) * 5).astype("float32")
    labels = _rng.integers(0, 10, 16)
    ours = rk.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_sparse_crossentropy_bindings_name_bad_arguments():
    logits = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match=r"labels: expected shape \(3,\), received \(2,\)"):
        _core.sparse_softmax_cross_entropy(logits, np.zeros(2, "int64"))
    with pytest.raises(TypeError, match="labels: expected dtype int64, received float32"):
        _core.sparse_softmax_cross_entropy(logits, np.zeros(3, "float32"))
    with pytest.raises(TypeError, match="logits: expected a numpy array, received list"):
        _core.sparse_softmax_cross_entropy([[0.0]], np.zeros(1, "int64"))
    with pytest.raises(ValueError, match=r"grad: expected shape \(3,\), received \(4,\)"):
        _core.sparse_softmax_cross_entropy_backward(logits, np.zeros(3, "int64"), np.zeros(4, "float32"))
