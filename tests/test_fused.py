"""The fused ops (one autograd op per stack of built-in cells, or per bidirectional pair) agree
with the Python stepping path and the generic Bidirectional, in values and gradients."""

import itertools

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import layers, ops
from rnnkit.layers import fused

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 6, 4)).astype(np.float32)
MASK = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], bool)


def stepping(cell_class):
    """A subclass with the same math, which RNN cannot fuse (it steps it in Python)."""
    return type("Stepped" + cell_class.__name__, (cell_class,), {"call": lambda self, *a, **k: cell_class.call(self, *a, **k)})


def values_and_grads(layer, **call):
    with rk.GradientTape() as tape:
        flat = rk.tree.flatten(layer(X, **call))
        loss = sum(ops.sum(ops.square(o)) * (i + 1) for i, o in enumerate(flat))
    return [np.asarray(o) for o in flat], [np.asarray(g) for g in tape.gradient(loss, layer.trainable_weights)]


def assert_close(a, b):
    # float32: errors scale with the array's magnitude (sums of products over steps cancel).
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(y).max()))


def count_records(monkeypatch):
    calls = []
    original = fused.record
    monkeypatch.setattr(fused, "record", lambda *a: (calls.append(1), original(*a)))
    return calls


@pytest.mark.parametrize("go_backwards", [False, True])
def test_stacked_cells_are_one_op_equal_to_stepping(go_backwards, monkeypatch):
    cells = [layers.LSTMCell(5), layers.GRUCell(4, reset_after=False), layers.SimpleRNNCell(3)]
    fused_layer = layers.RNN(cells, return_sequences=True, return_state=True, go_backwards=go_backwards)
    stepped = [stepping(type(c))(c.units, **({"reset_after": False} if isinstance(c, layers.GRUCell) else {})) for c in cells]
    step_layer = layers.RNN(stepped, return_sequences=True, return_state=True, go_backwards=go_backwards)
    fused_layer(X)
    step_layer(X)
    step_layer.set_weights(fused_layer.get_weights())
    calls = count_records(monkeypatch)
    got = values_and_grads(fused_layer, mask=MASK)
    assert len(calls) == 1
    want = values_and_grads(step_layer, mask=MASK)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


CASES = list(itertools.product([layers.LSTM, layers.GRU], ["concat", "sum", "mul", "ave", None], [True, False]))


@pytest.mark.parametrize("cls,merge_mode,return_sequences", CASES)
def test_fused_bidirectional_equals_two_layers(cls, merge_mode, return_sequences, monkeypatch):
    cell_class = layers.LSTMCell if cls is layers.LSTM else layers.GRUCell
    make = lambda **kw: cls(4, return_sequences=return_sequences, return_state=True, **kw)  # noqa: E731
    fast = layers.Bidirectional(make(), merge_mode=merge_mode)
    # A backward layer over a stepping cell makes Bidirectional call its two halves separately.
    slow_backward = layers.RNN(stepping(cell_class)(4), return_sequences=return_sequences, return_state=True, go_backwards=True)
    slow = layers.Bidirectional(make(), merge_mode=merge_mode, backward_layer=slow_backward)
    fast(X)
    slow(X)
    slow.set_weights(fast.get_weights())
    states = [RNG.normal(size=(3, 4)).astype(np.float32) for _ in range(4 if cls is layers.LSTM else 2)]
    calls = count_records(monkeypatch)
    got = values_and_grads(fast, mask=MASK, initial_state=states)
    assert len(calls) == 1
    want = values_and_grads(slow, mask=MASK, initial_state=states)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
