"""Tests of Tensor, Variable, convert_to_tensor, GradientTape, record and tree."""

import collections
import gc
import threading
import weakref

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import ops, tree
from rnnkit.tape import record
from rnnkit.tensor import convert_to_tensor, wrap

# Tensor and Variable


def test_tensor_basics():
    t = rk.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and len(t) == 2 and t.dtype == np.float32
    assert repr(t) == "<rk.Tensor shape=(2, 3) dtype=float32 numpy=\n[[1. 2. 3.]\n [4. 5. 6.]]>"
    assert repr(rk.Tensor(2.5)) == "<rk.Tensor shape=() dtype=float32 numpy=2.5>"
    assert t.T.shape == (3, 2) and t.T.numpy()[2, 1] == 6.0
    assert [row.numpy().tolist() for row in t] == [[1, 2, 3], [4, 5, 6]]
    assert t[1, 2].numpy() == 6.0 and t[:, 0].numpy().tolist() == [1.0, 4.0]
    with pytest.raises(TypeError):
        len(rk.Tensor(1.0))


def test_scalar_conversions():
    assert float(rk.Tensor(2.5)) == 2.5
    assert int(rk.Tensor(7)) == 7
    assert bool(rk.Tensor(0.0)) is False and bool(rk.Tensor(3.0)) is True
    assert f"{rk.Tensor(1 / 3):.3f}" == "0.333"
    with pytest.raises(ValueError):
        bool(rk.Tensor([1.0, 2.0]))


def test_tensor_is_immutable_and_copies_its_source():
    source = np.array([1.0, 2.0])
    t = rk.Tensor(source)
    source[0] = 100.0
    assert t.numpy().tolist() == [1.0, 2.0]
    view = np.asarray(t)
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 5.0
    copy = t.numpy()
    copy[0] = 5.0
    assert t.numpy()[0] == 1.0


def test_array_protocol():
    t = rk.Tensor(np.array([1.5, 2.5]))
    assert np.asarray(t) is np.asarray(t)  # no copy
    assert np.asarray(t, dtype=np.int64).tolist() == [1, 2]
    copy = np.array(t)
    copy[0] = 0.0
    assert t.numpy()[0] == 1.5
    with pytest.raises(ValueError):
        t.__array__(np.float32, copy=False)
    assert np.exp(t).dtype == np.float64  # numpy functions take Tensors as arrays
    result = np.array([1.0, 1.0]) + t  # numpy defers to Tensor.__radd__
    assert isinstance(result, rk.Tensor) and result.numpy().tolist() == [2.5, 3.5]


def test_convert_to_tensor_dtypes():
    assert convert_to_tensor(1.5).dtype == np.float32
    assert convert_to_tensor([[1.0, 2.0]]).dtype == np.float32
    assert convert_to_tensor(np.ones(2)).dtype == np.float64
    assert convert_to_tensor(np.float64(1.0)).dtype == np.float64
    assert convert_to_tensor([1, 2]).dtype.kind == "i"
    assert convert_to_tensor(True).dtype == np.bool_
    assert convert_to_tensor([1, 2], dtype="float64").dtype == np.float64
    t = rk.Tensor([1.0])
    assert convert_to_tensor(t) is t
    assert convert_to_tensor(t, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("value, name", [("abc", "str"), (None, "NoneType"), ([object()], "list")])
def test_convert_to_tensor_rejects_non_numbers(value, name):
    with pytest.raises(TypeError, match=name):
        convert_to_tensor(value)


def test_variable():
    v = rk.Variable([[1.0, 2.0]], name="kernel")
    assert v.name == "kernel" and v.trainable and v.dtype == np.float32 and v.shape == (1, 2)
    assert repr(v) == "<rk.Variable name='kernel' shape=(1, 2) dtype=float32 numpy=[[1. 2.]]>"
    snapshot = v.value
    copy = v.numpy()
    copy[0, 0] = 50.0
    v.assign([[3.0, 4.0]])
    v.assign_add(np.array([[1.0, 1.0]]))
    v.assign_sub(rk.Tensor([[0.5, 0.5]]))
    assert v.numpy().tolist() == [[3.5, 4.5]] and v.dtype == np.float32
    assert snapshot.numpy().tolist() == [[1.0, 2.0]]
    assert rk.Variable(lambda: np.zeros(3), trainable=False).trainable is False
    assert rk.Variable(1.0).name == "Variable"
    assert {v: 1}[v] == 1  # hashable by identity, as Keras variables


def test_arrays_from_numpy_are_stored_row_major():
    # The core reads weights as rows; a column-major one (an orthogonal initializer's QR factor,
    # a transposed assignment) would otherwise be copied again on every call.
    column_major = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    v = rk.Variable(column_major)
    assert np.asarray(v).flags.c_contiguous and np.array_equal(v.numpy(), column_major)
    v.assign(column_major.T.copy().T)
    assert np.asarray(v).flags.c_contiguous and np.array_equal(v.numpy(), column_major)
    layer = rk.layers.LSTM(6)
    layer.build((None, 3, 2))
    assert all(np.asarray(w).flags.c_contiguous for w in layer.weights)


def test_variable_assign_checks_shape():
    v = rk.Variable(np.zeros((2, 3)), name="w")
    with pytest.raises(ValueError, match=r"'w'.*expected shape \(2, 3\), received shape \(3,\)"):
        v.assign(np.zeros(3))
    assert v.shape == (2, 3)


def test_assign_does_not_corrupt_saved_values():
    v = rk.Variable([2.0])
    with rk.GradientTape() as tape:
        y = v * v
    v.assign([10.0])
    assert tape.gradient(y, v).numpy().tolist() == [4.0]


# GradientTape


def test_no_recording_outside_a_tape():
    x = rk.Variable([1.0, 2.0])
    y = ops.tanh(x)  # computed before any tape exists
    saved = weakref.ref(np.asarray(y))  # tanh's backward would keep its output alive
    with rk.GradientTape() as tape:
        z = y * 2.0
    assert tape.gradient(z, x) is None
    del y, z
    assert saved() is None


def test_tape_releases_saved_arrays():
    gc.disable()  # the arrays must be freed by reference counting alone: no cycles
    try:
        x = rk.Variable(np.ones(3))
        with rk.GradientTape(persistent=True) as tape:
            y = ops.tanh(x)
        saved = weakref.ref(np.asarray(y))
        del y
        assert saved() is not None  # kept by the tape for the backward pass
        del tape
        assert saved() is None
    finally:
        gc.enable()


def test_non_persistent_tape_allows_one_gradient_call():
    x = rk.Variable(3.0)
    with rk.GradientTape() as tape:
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


def test_persistent_tape_allows_several_gradient_calls():
    x = rk.Variable(3.0)
    with rk.GradientTape(persistent=True) as tape:
        y = x * x
        z = y * x
    assert float(tape.gradient(y, x)) == 6.0
    assert float(tape.gradient(z, x)) == 27.0
    assert float(tape.gradient(y, x)) == 6.0


def test_plain_tensors_need_watch():
    a, b = rk.Tensor([1.0, 2.0]), rk.Tensor([3.0, 4.0])
    with rk.GradientTape() as tape:
        tape.watch({"a": a})
        y = a * b
    grads = tape.gradient(y, {"a": a, "b": b})
    assert grads["a"].numpy().tolist() == [3.0, 4.0] and grads["b"] is None


def test_watch_rejects_non_tensors():
    with rk.GradientTape() as tape, pytest.raises(TypeError, match="ndarray"):
        tape.watch(np.ones(2))


def test_trainable_variables_are_watched_automatically():
    trained, frozen = rk.Variable(2.0), rk.Variable(5.0, trainable=False)
    with rk.GradientTape() as tape:
        y = trained * frozen
    assert tape.watched_variables() == (trained,)
    grad_trained, grad_frozen = tape.gradient(y, [trained, frozen])
    assert float(grad_trained) == 5.0 and grad_frozen is None


def test_watch_accessed_variables_false_watches_only_what_is_asked():
    a, b = rk.Variable(2.0), rk.Variable(3.0)
    with rk.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(b)
        y = a * b
    grad_a, grad_b = tape.gradient(y, (a, b))
    assert grad_a is None and float(grad_b) == 2.0


def test_unconnected_gradients():
    x, unused = rk.Variable([1.0, 2.0]), rk.Variable(np.ones((2, 2), np.float32))
    with rk.GradientTape(persistent=True) as tape:
        y = ops.sum(x)
        tape.watch(unused)
    assert tape.gradient(y, [x, unused])[1] is None
    zero = tape.gradient(y, unused, unconnected_gradients="zero")
    assert zero.shape == (2, 2) and zero.dtype == np.float32 and not zero.numpy().any()
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.gradient(y, x, unconnected_gradients="zeros")


def test_gradients_accumulate_over_every_use():
    x = rk.Variable([1.0, -2.0])
    with rk.GradientTape() as tape:
        y = x * x + 3.0 * x + ops.sum(x)  # sum(x) is broadcast into both elements of y
    assert tape.gradient(y, x).numpy().tolist() == [2 + 3 + 2, -4 + 3 + 2]


def test_non_scalar_target_is_seeded_with_ones():
    x = rk.Variable([1.0, 2.0])
    with rk.GradientTape() as tape:
        y = ops.stack([x * 3.0, x * x])
    assert y.shape == (2, 2)
    assert tape.gradient(y, x).numpy().tolist() == [5.0, 7.0]


def test_several_targets_add_up():
    x = rk.Variable(2.0)
    with rk.GradientTape() as tape:
        targets = [x * x, x * 10.0]
    assert float(tape.gradient(targets, x)) == 14.0


def test_output_gradients_weight_the_target():
    x = rk.Variable([1.0, 2.0])
    with rk.GradientTape(persistent=True) as tape:
        y = x * x
    assert tape.gradient(y, x, output_gradients=np.array([10.0, 100.0])).numpy().tolist() == [20.0, 400.0]
    with pytest.raises(ValueError, match="shape"):
        tape.gradient(y, x, output_gradients=np.ones(3))


def test_gradient_with_respect_to_an_intermediate_tensor():
    x = rk.Variable(2.0)
    with rk.GradientTape() as tape:
        y = x * x
        z = y * 3.0 + y
    grad_y, grad_x = tape.gradient(z, [y, x])
    assert float(grad_y) == 4.0 and float(grad_x) == 16.0


def test_nested_tapes_record_independently():
    x = rk.Tensor(3.0)
    with rk.GradientTape(persistent=True) as outer:
        outer.watch(x)
        y = x * x  # before the inner tape: outer only
        with rk.GradientTape(persistent=True) as inner:
            inner.watch(x)
            z = x * y  # both tapes
        w = z + x  # after the inner tape: outer only
    assert float(outer.gradient(z, x)) == 27.0  # d(x^3)/dx
    assert float(inner.gradient(z, x)) == 9.0  # y is a constant to the inner tape
    assert float(outer.gradient(w, x)) == 28.0
    assert inner.gradient(w, x) is None


def test_ops_in_other_threads_are_not_recorded():
    x = rk.Variable(2.0)
    results = []
    with rk.GradientTape() as tape:
        thread = threading.Thread(target=lambda: results.append(x * x))
        thread.start()
        thread.join()
    assert tape.gradient(results[0], x) is None


def test_gradient_has_the_source_dtype_and_is_read_only():
    x = rk.Variable(np.ones((2, 2), np.float32))
    with rk.GradientTape() as tape:
        y = ops.sum(x * np.float64(2.0))  # float64 on the way
    grad = tape.gradient(y, x)
    assert grad.dtype == np.float32 and grad.numpy().tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert np.asarray(grad).flags.c_contiguous and not np.asarray(grad).flags.writeable


# record: the primitive every op (and the fused RNN op) uses


def two_in_two_out(a, b, calls):
    """An op with outputs (a + b, a * b), built directly on `record`."""
    a_array, b_array = np.asarray(a), np.asarray(b)
    total, product = wrap(a_array + b_array), wrap(a_array * b_array)

    def backward(output_grads):
        calls.append(output_grads)
        d_total, d_product = (0.0 if g is None else g for g in output_grads)
        return d_total + d_product * b_array, d_total + d_product * a_array

    record([a, b], [total, product], backward)
    return total, product


def test_record_with_several_inputs_and_outputs():
    a, b = rk.Variable([2.0]), rk.Variable([5.0])
    calls = []
    with rk.GradientTape(persistent=True) as tape:
        total, product = two_in_two_out(a, b, calls)
    assert [g.numpy().tolist() for g in tape.gradient([total, product], [a, b])] == [[6.0], [3.0]]
    # Only `product` is differentiated: the gradient of `total` is None.
    assert [g.numpy().tolist() for g in tape.gradient(product, [a, b])] == [[5.0], [2.0]]
    assert calls[1][0] is None and calls[1][1].tolist() == [1.0] and calls[1][1].dtype == np.float32


def test_record_does_nothing_outside_a_tape():
    calls = []
    a, b = rk.Variable([2.0]), rk.Variable([5.0])
    total, _ = two_in_two_out(a, b, calls)
    with rk.GradientTape() as tape:
        y = total * 1.0
    assert tape.gradient(y, a) is None and not calls


def test_record_ignores_non_tensor_inputs():
    x = rk.Variable([1.0, 2.0])
    with rk.GradientTape() as tape:
        out = wrap(np.asarray(x) * 3.0)
        record([x, 3.0], [out], lambda grads: (grads[0] * 3.0, grads[0]))
    assert tape.gradient(out, x).numpy().tolist() == [3.0, 3.0]


def test_record_checks_what_backward_returns():
    x = rk.Variable([1.0, 2.0])
    with rk.GradientTape(persistent=True) as tape:
        wrong_shape = wrap(np.asarray(x) * 1.0)
        record([x], [wrong_shape], lambda grads: (np.ones(3),))
        wrong_count = wrap(np.asarray(x) * 1.0)
        record([x], [wrong_count], lambda grads: (grads[0], grads[0]))
    with pytest.raises(ValueError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        tape.gradient(wrong_shape, x)
    with pytest.raises(ValueError, match="2 gradients for 1 inputs"):
        tape.gradient(wrong_count, x)


# tree


Point = collections.namedtuple("Point", ["x", "y"])


def test_flatten_order_and_leaves():
    structure = {"b": [1, (2, None)], "a": Point(3, {"z": 4, "y": 5})}
    assert tree.flatten(structure) == [3, 5, 4, 1, 2, None]
    assert tree.flatten(7) == [7] and tree.flatten(None) == [None] and tree.flatten([]) == []
    assert tree.is_nested([1]) and tree.is_nested({}) and not tree.is_nested(rk.Tensor(1.0))


def test_pack_sequence_as_rebuilds_containers():
    structure = {"b": [1, (2, None)], "a": Point(3, 4)}
    packed = tree.pack_sequence_as(structure, ["p", "q", "r", "s", "t"])
    assert packed == {"b": ["r", ("s", "t")], "a": Point("p", "q")}
    assert list(packed) == ["b", "a"] and isinstance(packed["a"], Point)
    with pytest.raises(ValueError, match="5 leaves but flat_sequence has 2"):
        tree.pack_sequence_as(structure, [1, 2])


def test_map_structure():
    assert tree.map_structure(lambda a, b: a + b, {"k": [1, 2]}, {"k": [10, 20]}) == {"k": [11, 22]}
    with pytest.raises(ValueError, match=r"at \['k'\]: length 2 vs 3"):
        tree.map_structure(lambda a, b: a, {"k": [1, 2]}, {"k": [1, 2, 3]})
    with pytest.raises(ValueError, match="list vs tuple"):
        tree.map_structure(lambda a, b: a, [1], (1,))
    with pytest.raises(ValueError, match=r"keys \['a'\] vs \['b'\]"):
        tree.map_structure(lambda a, b: a, {"a": 1}, {"b": 1})
