"""Tests of the numpy-style rk.ops that Keras programs call: values and dtypes against keras.ops
(JAX backend) on the same inputs, gradients against central finite differences in float64."""

import os

import numpy as np
import pytest

from test_ops import check_gradients

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import rnnkit as rk  # noqa: E402
from rnnkit import ops  # noqa: E402

_rng = np.random.default_rng(2024)


def normal(*shape):
    return _rng.standard_normal(shape)


X = normal(3, 4).astype(np.float32)
X3 = normal(2, 3, 4).astype(np.float32)
IDS = np.array([[2, 0, 1, 2], [1, 1, 0, 3], [0, 2, 3, 1]])
WITH_ZEROS = np.array([[1.5, 0.0, 2.0, 0.0], [0.5, -1.0, 0.0, 3.0]], np.float32)

# name -> a function applied to both `rk.ops` and `keras.ops`, and its inputs.
VALUE_CASES = {
    "arange_int": (lambda o: o.arange(5), []),
    "arange_float": (lambda o: o.arange(1, 2, 0.25), []),
    "arange_dtype": (lambda o: o.arange(2, 11, 3, dtype="float32"), []),
    "argsort": (lambda o, x: o.argsort(x, axis=0), [X]),
    "argsort_ties": (lambda o, x: o.argsort(x), [IDS]),
    "cumsum": (lambda o, x: o.cumsum(x, axis=1), [X]),
    "cumsum_flat": (lambda o, x: o.cumsum(x), [X]),
    "cumsum_bool": (lambda o, x: o.cumsum(x > 0, axis=0), [X]),
    "cumprod": (lambda o, x: o.cumprod(x, axis=-1), [WITH_ZEROS]),
    "flip": (lambda o, x: o.flip(x, axis=(0, 2)), [X3]),
    "flip_all": (lambda o, x: o.flip(x), [X]),
    "where": (lambda o, x: o.where(x > 0, x, -1.0), [X]),
    "where_indices": (lambda o, x: o.where(x > 0)[1], [X]),
    "take": (lambda o, x: o.take(x, np.array([[0, 2], [1, 1]]), axis=1), [X]),
    "take_along_axis": (lambda o, x, i: o.take_along_axis(x, i[:, :3], axis=1), [X, IDS]),
    "take_along_axis_flat": (lambda o, x: o.take_along_axis(x, np.array([11, 0, 5])), [X]),
    "top_k_values": (lambda o, x: o.top_k(x, 2)[0], [X]),
    "top_k_indices": (lambda o, x: o.top_k(x, 3)[1], [IDS]),
    "one_hot": (lambda o, i: o.one_hot(i, 3), [IDS]),
    "one_hot_axis": (lambda o, i: o.one_hot(i, 4, axis=0, dtype="int32"), [IDS]),
    "logsumexp": (lambda o, x: o.logsumexp(x, axis=1), [X3]),
    "logsumexp_keepdims": (lambda o, x: o.logsumexp(x * 50, axis=(0, 2), keepdims=True), [X3]),
    "maximum": (lambda o, x: o.maximum(x, 0.0), [X]),
    "minimum": (lambda o, x: o.minimum(x, x.T[:1].T), [X]),
    "sort": (lambda o, x: o.sort(x, axis=0), [X]),
    "any": (lambda o, x: o.any(x > 1, axis=1), [X]),
    "all": (lambda o, x: o.all(x > -2, axis=0, keepdims=True), [X]),
    "isnan": (lambda o, x: o.isnan(x), [np.array([1.0, np.nan, np.inf], np.float32)]),
    "isfinite": (lambda o, x: o.isfinite(x), [np.array([1.0, np.nan, -np.inf], np.float32)]),
    "stack": (lambda o, x: o.stack([x, 2 * x], axis=1), [X]),
    "unstack": (lambda o, x: o.unstack(x, axis=2)[3], [X3]),
    "tile": (lambda o, x: o.tile(x, (2, 1, 3)), [X]),
    "repeat": (lambda o, x: o.repeat(x, 2, axis=0), [X]),
    "repeat_counts": (lambda o, x: o.repeat(x, np.array([1, 0, 3, 2]), axis=1), [X]),
    "repeat_flat": (lambda o, x: o.repeat(x, 2), [X]),
    "pad": (lambda o, x: o.pad(x, ((1, 0), (2, 3))), [X]),
    "pad_value": (lambda o, x: o.pad(x, 1, constant_values=7.0), [X]),
    "pad_reflect": (lambda o, x: o.pad(x, ((2, 1), (0, 3)), mode="reflect"), [X]),
    "pad_symmetric": (lambda o, x: o.pad(x, ((1, 2), (3, 0)), mode="symmetric"), [X]),
    "pad_edge": (lambda o, x: o.pad(x, 2, mode="edge"), [X]),
    "pad_wrap": (lambda o, x: o.pad(x, ((0, 5), (1, 1)), mode="wrap"), [X]),
    "squeeze": (lambda o, x: o.squeeze(x[:, :1], axis=1), [X]),
    "transpose": (lambda o, x: o.transpose(x, (2, 0, 1)), [X3]),
    "moveaxis": (lambda o, x: o.moveaxis(x, [0, 1], [2, 0]), [X3]),
    "linspace": (lambda o: o.linspace(-1, 1, 7), []),
    "linspace_no_endpoint": (lambda o: o.linspace(0, 1, 4, endpoint=False), []),
    "linspace_arrays": (lambda o: o.linspace(np.zeros(2, np.float32), np.ones(2, np.float32), 3, axis=1), []),
    "eye": (lambda o: o.eye(3, 4, k=1), []),
    "full": (lambda o: o.full((2, 3), 4), []),
    "full_like": (lambda o, x: o.full_like(x, 2), [X]),
    "zeros_like": (lambda o, x: o.zeros_like(x), [X]),
    "norm": (lambda o, x: o.norm(x), [X3]),
    "norm_axis": (lambda o, x: o.norm(x, axis=-1, keepdims=True), [X3]),
    "norm_ord3": (lambda o, x: o.norm(x, ord=3, axis=0), [X]),
    "norm_ord1": (lambda o, x: o.norm(x, ord=1, axis=1), [X]),
    "norm_inf": (lambda o, x: o.norm(x, ord=np.inf, axis=1), [X]),
    "norm_ord0": (lambda o, x: o.norm(x, ord=0, axis=1), [WITH_ZEROS]),
    "norm_fro": (lambda o, x: o.norm(x, ord="fro", axis=(0, 2)), [X3]),
    "norm_matrix_1": (lambda o, x: o.norm(x, ord=1), [X]),
    "norm_matrix_inf": (lambda o, x: o.norm(x, ord=-np.inf, axis=(2, 1)), [X3]),
    "norm_matrix_2": (lambda o, x: o.norm(x, ord=2, axis=(1, 2), keepdims=True), [X3]),
    "norm_nuc": (lambda o, x: o.norm(x, ord="nuc"), [X]),
    "norm_int": (lambda o, i: o.norm(i, axis=0), [IDS]),
    "dot_matrix": (lambda o, x: o.dot(x, x.T), [X]),
    "dot_nd": (lambda o, x, y: o.dot(x, y), [X3, normal(2, 4, 5).astype(np.float32)]),
    "dot_vector": (lambda o, x: o.dot(x, x[0]), [X]),
    "dot_scalar": (lambda o, x: o.dot(x, 3.0), [X]),
    "tensordot_int": (lambda o, x, y: o.tensordot(x, y, axes=2), [X3, normal(3, 4, 2).astype(np.float32)]),
    "tensordot_pairs": (
        lambda o, x, y: o.tensordot(x, y, axes=([0, 2], [1, 0])),
        [X3, normal(4, 2, 5).astype(np.float32)],
    ),
    "matmul": (lambda o, x: o.matmul(x, x.T), [X]),
    "softmax_axis0": (lambda o, x: o.softmax(x, axis=0), [X3]),
    "softmax_axes": (lambda o, x: o.softmax(x, axis=(1, 2)), [X3]),
    "log_softmax_axis1": (lambda o, x: o.log_softmax(x, axis=1), [X3]),
    "segment_sum": (lambda o, x: o.segment_sum(x, np.array([1, 0, 1]), num_segments=2), [X]),
    "segment_sum_num": (lambda o, x: o.segment_sum(x, np.array([0, 4, 2]), num_segments=4), [X]),
}


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_values_match_keras(name):
    fn, args = VALUE_CASES[name]
    ours = fn(ops, *args)
    theirs = fn(keras.ops, *args)
    theirs = keras.ops.convert_to_numpy(theirs)
    assert isinstance(ours, rk.Tensor)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype or (ours.dtype.kind == theirs.dtype.kind and ours.dtype.kind in "iu"), (
        f"dtype {ours.dtype} != Keras's {theirs.dtype}"
    )
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=2e-5, atol=2e-6)


def test_convert_to_numpy_and_tensor():
    t = ops.convert_to_tensor([[1.0, 2.0]])
    array = ops.convert_to_numpy(t)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    array[0, 0] = 5.0  # a copy the caller may modify
    assert t.numpy()[0, 0] == 1.0
    np.testing.assert_array_equal(ops.convert_to_numpy(rk.Variable([3.0])), keras.ops.convert_to_numpy([3.0]))
    assert ops.convert_to_numpy(7).tolist() == 7


def test_top_k_returns_values_and_indices_like_keras():
    x = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, -1.0, 5.0, 5.0]], np.float32)
    values, indices = ops.top_k(x, 2)
    keras_values, keras_indices = keras.ops.top_k(x, 2)
    np.testing.assert_array_equal(values.numpy(), keras_values)
    np.testing.assert_array_equal(indices.numpy(), keras_indices)  # ties: the lower index first
    assert indices.dtype == np.int32


def test_segment_sum_counts_segments_from_the_ids():
    # Keras's JAX backend needs num_segments; its numpy backend takes the largest id plus one.
    np.testing.assert_array_equal(ops.segment_sum(X, [1, 0, 3]).numpy(), ops.segment_sum(X, [1, 0, 3], 4).numpy())
    assert ops.segment_sum(X, [1, 0, 3]).shape == (4, 4)


def test_linspace_retstep():
    samples, step = ops.linspace(0.0, 1.0, 5, retstep=True)
    keras_samples, keras_step = keras.ops.linspace(0.0, 1.0, 5, retstep=True)
    np.testing.assert_allclose(samples.numpy(), keras_samples)
    assert step == pytest.approx(float(keras_step))


def test_unstack_gives_every_slice():
    parts = ops.unstack(X3, axis=1)
    assert len(parts) == 3 and all(p.shape == (2, 4) for p in parts)
    np.testing.assert_array_equal(parts[1].numpy(), X3[:, 1])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: ops.unstack(X, num=2), ValueError, "unstack: num: expected the size of axis 0, 3, received 2"),
        (lambda: ops.top_k(X, 5), ValueError, r"top_k: k: expected an int in \[1, 4\], received 5"),
        (lambda: ops.pad(X, 1, mode="mean"), ValueError, "pad: mode: expected one of .*, received 'mean'"),
        (
            lambda: ops.pad(X, 1, mode="edge", constant_values=1),
            ValueError,
            "pad: constant_values: expected only with mode='constant', received mode='edge'",
        ),
        (lambda: ops.one_hot(IDS, 3, sparse=True), ValueError, "one_hot: sparse: expected False"),
        (lambda: ops.one_hot(X, 3), ValueError, "one_hot: x: expected integer class ids, received dtype float32"),
        (lambda: ops.norm(X3, ord=1), ValueError, "norm: axis: expected an axis or two when ord is given"),
        (lambda: ops.norm(X, ord="fro", axis=0), ValueError, "norm: ord: expected a number for a vector norm"),
        (lambda: ops.norm(X, ord=3, axis=(0, 1)), ValueError, "norm: ord: expected None, 'fro', 'nuc'"),
        (
            lambda: ops.norm(X3, axis=(0, 1, 2)),
            ValueError,
            r"norm: axis: expected an int or a pair of ints, received \(0, 1, 2\)",
        ),
        (lambda: ops.segment_sum(X, [0, 1]), ValueError, r"segment_sum.*segment_ids: expected shape \(3,\)"),
        (lambda: ops.where(X > 0, X), ValueError, "where: x1 and x2: expected both or neither"),
    ],
)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _reversed_cumsum(x):
    return ops.flip(ops.cumsum(ops.flip(x, 0), axis=0), 0)


ZEROS_3 = np.array([[1.3, 0.0, -0.7, 0.0, 2.1], [0.0, 0.0, 1.1, -0.4, 0.9]])

GRADIENT_CASES = {
    "cumsum_axis": (lambda x: ops.cumsum(x, axis=1), [normal(2, 4)]),
    "cumsum_flat": (ops.cumsum, [normal(2, 3)]),
    "cumprod": (lambda x: ops.cumprod(x, axis=0), [normal(4, 2)]),
    "cumprod_with_zeros": (lambda x: ops.cumprod(x, axis=1), [ZEROS_3]),
    "cumprod_flat": (ops.cumprod, [normal(2, 3)]),
    "flip": (lambda x: ops.flip(x, axis=1), [normal(2, 3)]),
    "flip_reversed_cumsum": (_reversed_cumsum, [normal(4)]),
    "take_along_axis": (lambda x: ops.take_along_axis(x, np.array([[2, 0, 2], [1, 1, -1]]), axis=1), [normal(2, 3)]),
    "take_along_axis_broadcast": (lambda x: ops.take_along_axis(x, np.array([[0], [2]]), axis=-1), [normal(2, 3)]),
    "take_along_axis_flat": (lambda x: ops.take_along_axis(x, np.array([4, 4, 0])), [normal(2, 3)]),
    "sort": (lambda x: ops.sort(x, axis=0), [normal(4, 3)]),
    "sort_flat": (lambda x: ops.sort(x, axis=None), [normal(2, 3)]),
    "top_k": (lambda x: ops.top_k(x, 2)[0], [normal(3, 5)]),
    "logsumexp": (lambda x: ops.logsumexp(x, axis=-1), [normal(2, 3, 4)]),
    "logsumexp_all_keepdims": (lambda x: ops.logsumexp(x, keepdims=True), [normal(2, 3)]),
    "unstack": (lambda x: ops.unstack(x, axis=1)[::2], [normal(2, 3, 2)]),
    "tile": (lambda x: ops.tile(x, (2, 1, 3)), [normal(2, 3)]),
    "tile_short_repeats": (lambda x: ops.tile(x, 2), [normal(2, 3)]),
    "repeat": (lambda x: ops.repeat(x, [2, 0, 1], axis=1), [normal(2, 3)]),
    "repeat_flat": (lambda x: ops.repeat(x, 3), [normal(2, 2)]),
    "pad_constant": (lambda x: ops.pad(x, ((1, 2), (0, 1)), constant_values=3.0), [normal(2, 3)]),
    "pad_reflect": (lambda x: ops.pad(x, ((2, 2), (1, 2)), mode="reflect"), [normal(3, 3)]),
    "pad_symmetric": (lambda x: ops.pad(x, 2, mode="symmetric"), [normal(2, 3)]),
    "pad_edge": (lambda x: ops.pad(x, ((0, 3), (2, 0)), mode="edge"), [normal(2, 3)]),
    "pad_wrap": (lambda x: ops.pad(x, 4, mode="wrap"), [normal(2, 3)]),
    "moveaxis": (lambda x: ops.moveaxis(x, 0, -1), [normal(2, 3, 4)]),
    "norm_default": (ops.norm, [normal(2, 3)]),
    "norm_axis_keepdims": (lambda x: ops.norm(x, axis=1, keepdims=True), [normal(2, 3)]),
    "norm_ord3": (lambda x: ops.norm(x, ord=3, axis=0), [normal(3, 2)]),
    "norm_ord_half": (lambda x: ops.norm(x, ord=0.5, axis=1), [normal(2, 3)]),
    "norm_inf": (lambda x: ops.norm(x, ord=np.inf, axis=1), [normal(2, 3)]),
    "norm_matrix_1": (lambda x: ops.norm(x, ord=1), [normal(3, 4)]),
    "norm_matrix_minus_inf": (lambda x: ops.norm(x, ord=-np.inf, axis=(2, 0)), [normal(3, 4, 2)]),
    "norm_matrix_2": (lambda x: ops.norm(x, ord=2, axis=(0, 1)), [normal(3, 2, 2)]),
    "norm_matrix_minus_2": (lambda x: ops.norm(x, ord=-2), [normal(3, 4)]),
    "norm_nuc_keepdims": (lambda x: ops.norm(x, ord="nuc", axis=(1, 2), keepdims=True), [normal(2, 3, 4)]),
    "dot_matrix": (ops.dot, [normal(2, 3), normal(3, 4)]),
    "dot_nd": (ops.dot, [normal(2, 3, 4), normal(2, 4, 3)]),
    "dot_vector": (ops.dot, [normal(2, 3), normal(3)]),
    "dot_scalar": (ops.dot, [normal(2, 3), normal()]),
    "tensordot_int": (lambda a, b: ops.tensordot(a, b, axes=1), [normal(2, 3), normal(3, 2)]),
    "tensordot_pairs": (lambda a, b: ops.tensordot(a, b, axes=([0, 2], [1, 0])), [normal(2, 3, 4), normal(4, 2, 2)]),
    "tensordot_zero_axes": (lambda a, b: ops.tensordot(a, b, axes=0), [normal(2), normal(3)]),
    "segment_sum": (lambda x: ops.segment_sum(x, np.array([2, 0, 2, -1]), num_segments=3), [normal(4, 2)]),
    "softmax_axes": (lambda x: ops.softmax(x, axis=(0, 2)), [normal(2, 3, 2)]),
    "log_softmax_axis0": (lambda x: ops.log_softmax(x, axis=0), [normal(3, 2)]),
    "where_only_the_chosen_side": (lambda a, b: ops.where(np.array([True, False, True]), a, b), [normal(3), normal(3)]),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_gradient_matches_finite_differences(name):
    fn, args = GRADIENT_CASES[name]
    check_gradients(fn, *args)


def test_cumprod_gradient_at_zero_is_the_product_of_the_others():
    x = rk.Variable(np.array([2.0, 0.0, 3.0]))
    with rk.GradientTape() as tape:
        y = ops.sum(ops.cumprod(x))  # 2 + 2*x1 + 2*x1*3
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [1.0, 8.0, 0.0])


def test_integer_ops_pass_no_gradient():
    x = rk.Variable(np.array([0.3, 0.1, 0.2]))
    with rk.GradientTape() as tape:
        indices = ops.argsort(x)
        y = ops.sum(ops.one_hot(indices, 3))
    assert indices.dtype == np.int32 and tape.gradient(y, x) is None


def test_float32_results_stay_float32():
    x = rk.Tensor(X)
    for result in (
        ops.cumsum(x),
        ops.logsumexp(x),
        ops.norm(x),
        ops.tile(x, 2),
        ops.pad(x, 1),
        ops.dot(x, x.T),
        ops.sort(x),
        ops.segment_sum(x, [0, 0, 1]),
    ):
        assert result.dtype == np.float32
