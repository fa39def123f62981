"""Tests of rnnkit.ops: every gradient against central finite differences in float64, and values."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

import rnnkit as rk
from rnnkit import ops


def check_gradients(fn, *args, seed=0):
    """Asserts that the tape's gradients of `fn` at `args` match central finite differences.

    The outputs of `fn` (a Tensor or a list of them) are weighted by fixed random arrays, given
    as output_gradients, so every output element counts and errors cannot cancel out.
    """
    args = [np.asarray(a, np.float64) for a in args]
    sources = [rk.Tensor(a) for a in args]
    with rk.GradientTape() as tape:
        tape.watch(sources)
        outputs = rk.tree.flatten(fn(*sources))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(out.shape) for out in outputs]
    grads = tape.gradient(outputs, sources, output_gradients=weights)

    def objective(*arrays):
        outputs = rk.tree.flatten(fn(*arrays))
        return sum(float(np.sum(np.asarray(out) * w)) for out, w in zip(outputs, weights))

    eps = 1e-6
    for i, (arg, grad) in enumerate(zip(args, grads)):
        numeric = np.zeros_like(arg)
        for index in np.ndindex(arg.shape):
            step = np.zeros_like(arg)
            step[index] = eps
            up = objective(*args[:i], arg + step, *args[i + 1 :])
            down = objective(*args[:i], arg - step, *args[i + 1 :])
            numeric[index] = (up - down) / (2 * eps)
        assert grad is not None, f"no gradient for argument {i}"
        assert grad.dtype == np.float64 and grad.shape == arg.shape
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-6, atol=1e-8, err_msg=f"argument {i}")


_rng = np.random.default_rng(1234)


def normal(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def einsum(subscripts):
    return lambda *operands: ops.einsum(subscripts, *operands)


CONSTANT = normal(2, 3)
MASK = normal(2, 3) > 0

GRADIENT_CASES = {
    "add": (ops.add, [normal(2, 3), normal(3)]),
    "add_both_broadcast": (ops.add, [normal(2, 1, 3), normal(4, 1)]),
    "subtract": (ops.subtract, [normal(3, 1), normal(1, 4)]),
    "multiply": (ops.multiply, [normal(2, 3), normal(2, 1)]),
    "divide": (ops.divide, [normal(2, 3), positive(3)]),
    "negative": (ops.negative, [normal(2, 3)]),
    "power": (ops.power, [positive(2, 3), normal(3)]),
    "power_scalar_exponent": (lambda x: x**3, [normal(4)]),
    "power_scalar_base": (lambda x: 2.0**x, [normal(4)]),
    "operators": (lambda a, b: (1.0 - a) * b / 2.0 + 3.0 / (b + 3) - -a, [normal(3), positive(3)]),
    "rmatmul_numpy_left": (lambda b: CONSTANT @ b, [normal(3, 2)]),
    "matmul": (ops.matmul, [normal(2, 3), normal(3, 4)]),
    "matmul_batch_broadcast": (ops.matmul, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    "matmul_vector_matrix": (ops.matmul, [normal(3), normal(2, 3, 4)]),
    "matmul_matrix_vector": (ops.matmul, [normal(2, 3, 4), normal(4)]),
    "matmul_vector_vector": (ops.matmul, [normal(3), normal(3)]),
    "einsum_bij_ijkl": (einsum("bij,ijkl->bkl"), [normal(2, 3, 4), normal(3, 4, 2, 3)]),
    "einsum_three_operands": (einsum("ij,jk,kl->il"), [normal(2, 3), normal(3, 4), normal(4, 2)]),
    "einsum_outer": (einsum("bi,bj->bij"), [normal(2, 3), normal(2, 4)]),
    "einsum_diagonal": (einsum("ii->i"), [normal(3, 3)]),
    "einsum_repeated_label_transposed": (einsum("iij->ji"), [normal(3, 3, 2)]),
    "einsum_summed_out_label": (einsum("ij,k->i"), [normal(2, 3), normal(4)]),
    "einsum_total": (einsum("ij->"), [normal(2, 3)]),
    "einsum_ellipsis_broadcast": (einsum("...ij,...jk->...ik"), [normal(2, 3, 4), normal(1, 4, 2)]),
    "einsum_size_one_label": (einsum("ij,ij->ij"), [normal(1, 3), normal(2, 3)]),
    "sum_axis": (lambda x: ops.sum(x, axis=1), [normal(2, 3, 4)]),
    "sum_axes_keepdims": (lambda x: ops.sum(x, axis=(0, 2), keepdims=True), [normal(2, 3, 4)]),
    "sum_all": (ops.sum, [normal(2, 3)]),
    "mean_negative_axis": (lambda x: ops.mean(x, axis=-1), [normal(2, 3, 4)]),
    "mean_all_keepdims": (lambda x: ops.mean(x, keepdims=True), [normal(2, 3)]),
    "max_axis": (lambda x: ops.max(x, axis=0), [normal(3, 4)]),
    "max_all": (ops.max, [normal(3, 4)]),
    "min_axes_keepdims": (lambda x: ops.min(x, axis=(1,), keepdims=True), [normal(3, 4)]),
    "exp": (ops.exp, [normal(2, 3)]),
    "log": (ops.log, [positive(2, 3)]),
    "sqrt": (ops.sqrt, [positive(2, 3)]),
    "square": (ops.square, [normal(2, 3)]),
    "abs": (ops.abs, [normal(2, 3)]),
    "tanh": (ops.tanh, [normal(2, 3)]),
    "sigmoid": (ops.sigmoid, [normal(2, 3)]),
    "relu": (ops.relu, [normal(2, 3)]),
    "softmax": (ops.softmax, [normal(2, 3)]),
    "softmax_axis0": (lambda x: ops.softmax(x, axis=0), [normal(3, 2)]),
    "log_softmax": (lambda x: ops.log_softmax(x, axis=1), [normal(2, 4, 2)]),
    "maximum": (ops.maximum, [normal(2, 3), normal(3)]),
    "minimum": (ops.minimum, [normal(2, 1), normal(1, 3)]),
    "where": (lambda a, b: ops.where(MASK, a, b), [normal(2, 3), normal(3)]),
    "clip_tensor_bounds": (ops.clip, [2 * normal(3, 4), -0.5 + 0.1 * normal(4), 0.5 + 0.1 * normal(3, 1)]),
    "clip_scalar_bounds": (lambda x: ops.clip(x, -0.5, 0.5), [normal(3, 4)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=1), [normal(2, 3), normal(2, 1)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=-1), [normal(2, 3), normal(2, 3)]),
    "split_sections": (lambda x: ops.split(x, 3, axis=1), [normal(2, 6)]),
    "split_indices": (lambda x: ops.split(x, [1, 3])[1:], [normal(5, 2)]),
    "reshape": (lambda x: ops.reshape(x, (3, -1)), [normal(2, 3, 2)]),
    "transpose_axes": (lambda x: ops.transpose(x, (-1, 0, 1)), [normal(2, 3, 4)]),
    "transpose_default": (ops.transpose, [normal(2, 3, 4)]),
    "T": (lambda x: x.T, [normal(2, 3)]),
    "expand_dims": (lambda x: ops.expand_dims(x, 1), [normal(2, 3)]),
    "squeeze": (lambda x: ops.squeeze(x, axis=0), [normal(1, 3, 1)]),
    "take_axis_repeated": (lambda x: ops.take(x, [2, 0, 2, -1], axis=1), [normal(2, 3)]),
    "take_flat": (lambda x: ops.take(x, [[1, 1], [5, 0]]), [normal(2, 3)]),
    "getitem_slices": (lambda x: x[1:, ::-2], [normal(3, 4)]),
    "getitem_int_and_ellipsis": (lambda x: x[..., 1, None], [normal(2, 3, 4)]),
    "getitem_repeated_indices": (lambda x: x[[0, 2, 0], 1:], [normal(3, 4)]),
    "getitem_tensor_index": (lambda x: x[rk.Tensor(np.array([1, 1]))], [normal(3, 2)]),
    "getitem_boolean_mask": (lambda x: x[MASK], [normal(2, 3)]),
    "iteration": (lambda x: ops.stack(list(x)[::-1]), [normal(3, 2)]),
    "cast_same_dtype": (lambda x: ops.cast(x, "float64") * 2.0, [normal(3)]),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_gradient_matches_finite_differences(name):
    fn, args = GRADIENT_CASES[name]
    check_gradients(fn, *args)


@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_broadcasting_gradients_reduce_to_input_shapes(shapes):
    rng = np.random.default_rng(7)
    a, b = (rng.standard_normal(shape) for shape in shapes.input_shapes)
    check_gradients(lambda x, y: x * y + ops.maximum(x, y), a, b)


def test_max_splits_gradient_between_ties():
    x = rk.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]))
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = ops.max(x, axis=1)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


def test_maximum_tie_sends_gradient_to_first_argument():
    a, b = rk.Tensor([1.0, 2.0]), rk.Tensor([1.0, 3.0])
    with rk.GradientTape() as tape:
        tape.watch([a, b])
        y = ops.maximum(a, b)
    grad_a, grad_b = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(grad_a.numpy(), [1, 0])
    np.testing.assert_array_equal(grad_b.numpy(), [0, 1])


def test_clip_sends_gradient_to_the_bound_used():
    x, lo, hi = rk.Tensor([-2.0, 0.0, 2.0]), rk.Tensor(-1.0), rk.Tensor(1.0)
    with rk.GradientTape() as tape:
        tape.watch([x, lo, hi])
        y = ops.clip(x, lo, hi)
    np.testing.assert_array_equal(y.numpy(), [-1, 0, 1])
    grads = tape.gradient(y, [x, lo, hi])
    assert [g.numpy().tolist() for g in grads] == [[0, 1, 0], 1.0, 1.0]


def test_stop_gradient_blocks_the_gradient():
    x = rk.Tensor([3.0])
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = x * ops.stop_gradient(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [3.0])


def test_cast_passes_gradients_back_in_the_source_dtype():
    x = rk.Variable(np.array([1.0, 2.0], np.float32))
    with rk.GradientTape() as tape:
        y = ops.cast(x, "float64") ** 2
    assert y.dtype == np.float64
    grad = tape.gradient(y, x)
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad.numpy(), [2.0, 4.0])


def test_integer_casts_cut_the_gradient():
    x = rk.Variable([1.5, 2.5])
    with rk.GradientTape() as tape:
        y = ops.cast(ops.cast(x, "int32"), "float32")
    assert tape.gradient(y, x) is None


def test_split_gives_zero_gradient_to_unused_parts():
    x = rk.Variable(np.arange(6.0))
    with rk.GradientTape() as tape:
        first, _, third = ops.split(x, 3)
        y = ops.sum(first) + 2 * ops.sum(third)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1, 1, 0, 0, 2, 2])


def test_values_match_numpy():
    a, b = normal(2, 3, 4), normal(3, 4, 5)
    np.testing.assert_allclose(ops.einsum("bij,ijk->bk", a, b).numpy(), np.einsum("bij,ijk->bk", a, b))
    np.testing.assert_allclose(ops.matmul(a, b[0]).numpy(), a @ b[0])
    probabilities = ops.softmax(a, axis=1).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), np.ones((2, 4)))
    np.testing.assert_allclose(ops.log_softmax(a, axis=1).numpy(), np.log(probabilities))
    np.testing.assert_allclose(ops.take(a, [2, 0], axis=-1).numpy(), a[..., [2, 0]])
    assert [part.shape for part in ops.split(a, [1, 3], axis=2)] == [(2, 3, 1), (2, 3, 2), (2, 3, 1)]
    np.testing.assert_array_equal(ops.argmax([[1, 5, 2], [7, 0, 9]], axis=1).numpy(), [1, 2])
    np.testing.assert_array_equal(ops.where([True, False], 1.0, [5.0, 6.0]).numpy(), [1.0, 6.0])


def test_sigmoid_is_stable_at_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.sigmoid(np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], np.float32)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0.0, 4.248354e-18, 0.5, 1.0, 1.0], rtol=1e-6)


def test_float32_stays_float32_with_python_scalars():
    x = rk.Tensor([1.0, 2.0])
    for result in (x * 2.0, 2.0 - x, x / 3, x**2, ops.maximum(x, 0.0), ops.where(x > 1, x, 0.0), ops.relu(x)):
        assert result.dtype == np.float32
    assert ops.add(1.0, 2.0).dtype == np.float32
    assert ops.where(x > 1, 1.0, 0.0).dtype == np.float32
    assert (rk.Tensor([1, 2]) + 1).dtype.kind == "i"
    assert (rk.Tensor(np.ones(2)) + 1.0).dtype == np.float64


def test_comparisons_return_boolean_tensors():
    x = rk.Tensor([1.0, 2.0, 3.0])
    assert (x > 2).numpy().tolist() == [False, False, True]
    assert (x <= 2).numpy().tolist() == [True, True, False]
    assert (x == np.array([1.0, 0.0, 3.0])).numpy().tolist() == [True, False, True]
    assert (x != 2.0).numpy().tolist() == [True, False, True]
    assert ops.less(x, 2).dtype == np.bool_
    assert (x == None) is False  # noqa: E711 - comparing with None must not raise


def test_constants_and_shape():
    assert ops.zeros((2, 3)).dtype == np.float32 and ops.zeros((2, 3)).numpy().sum() == 0
    assert ops.ones((2,), dtype="int32").numpy().tolist() == [1, 1]
    assert ops.zeros_like(np.ones((2, 2), np.float64)).dtype == np.float64
    assert ops.ones_like(rk.Tensor([1.0, 2.0]), dtype="float64").numpy().tolist() == [1.0, 1.0]
    assert ops.shape(rk.Tensor(np.zeros((4, 1)))) == (4, 1)
    assert ops.shape([[1, 2, 3]]) == (1, 3)


def test_einsum_requires_explicit_form():
    with pytest.raises(ValueError, match="explicit form"):
        ops.einsum("ij,jk", np.ones((2, 2)), np.ones((2, 2)))


def test_tensor_arguments_may_be_passed_by_keyword():
    a = rk.Variable(np.eye(2))
    with rk.GradientTape() as tape:
        y = ops.matmul(x1=a, x2=np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(tape.gradient(y, a).numpy(), [[3.0, 7.0], [3.0, 7.0]])


def test_inputs_may_be_variables_arrays_and_numbers():
    v = rk.Variable([1.0, 2.0])
    np.testing.assert_array_equal(ops.add(v, np.array([1.0, 1.0], np.float32)).numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(ops.multiply(3, [1.0, 2.0]).numpy(), [3.0, 6.0])
    assert float(ops.sum(v)) == 3.0


def test_integer_scalar_tensors_serve_as_sizes_and_indices():
    n = rk.ops.cast(rk.ops.shape(np.zeros((3, 2)))[0], "int64")
    assert rk.ops.ones((n, 1)).shape == (3, 1)
    assert np.arange(5)[n] == 3
    with pytest.raises(TypeError):
        np.ones((rk.ops.convert_to_tensor(2.5),))
