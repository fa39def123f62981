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
    return type(
        "Stepped" + cell_class.__name__, (cell_class,), {"call": lambda self, *a, **k: cell_class.call(self, *a, **k)}
    )


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
    stepped = [
        stepping(type(c))(c.units, **({"reset_after": False} if isinstance(c, layers.GRUCell) else {})) for c in cells
    ]
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
    slow_backward = layers.RNN(
        stepping(cell_class)(4), return_sequences=return_sequences, return_state=True, go_backwards=True
    )
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


def spy_input_gradient(monkeypatch, name):
    """Records the `input_gradient` argument of each `_core.<name>` call."""
    asked = []
    original = getattr(fused._core, name)

    def spy(*args, **kwargs):
        asked.append(kwargs["input_gradient"])
        return original(*args, **kwargs)

    monkeypatch.setattr(fused._core, name, spy)
    return asked


@pytest.mark.parametrize("bidirectional", [False, True])
def test_input_gradient_is_computed_only_when_a_tape_wants_it(bidirectional, monkeypatch):
    if bidirectional:
        layer, name = layers.Bidirectional(layers.LSTM(4, return_sequences=True)), "bidirectional_backward"
    else:
        layer, name = layers.RNN([layers.LSTMCell(5), layers.GRUCell(4)], return_sequences=True), "rnn_backward"
    x = rk.Tensor(X)
    values, weight_grads = values_and_grads(layer)
    asked = spy_input_gradient(monkeypatch, name)
    with rk.GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(ops.square(layer(x)))
    dx, *watched_grads = tape.gradient(loss, [x] + layer.trainable_weights)
    # Unwatched input: the first cell skips its input gradient, a later cell's feeds the first
    # (the backward pass calls the cells last to first).
    values_and_grads(layer)
    assert asked == ([True, False] if bidirectional else [True, True, True, False])
    assert_close([np.asarray(g) for g in watched_grads], weight_grads)
    eps, i = 1e-2, (1, 2, 3)
    bumped = [X.copy(), X.copy()]
    bumped[0][i] += eps
    bumped[1][i] -= eps
    plus, minus = (float(ops.sum(ops.square(layer(b)))) for b in bumped)
    np.testing.assert_allclose(np.asarray(dx)[i], (plus - minus) / (2 * eps), rtol=2e-2)


def test_core_backward_without_input_gradient_returns_none_and_the_same_weight_grads():
    spec = layers.GRUCell(3)
    spec.build((None, 4))
    weights = fused._weight_arrays(spec)
    outputs, _, saved = fused._core.rnn_forward(spec.spec, weights, X, mask=MASK)
    d = RNG.normal(size=outputs.shape).astype(np.float32)
    full = fused._core.rnn_backward(saved, d_outputs=d)
    skipped = fused._core.rnn_backward(saved, d_outputs=d, input_gradient=False)
    assert full[0].shape == X.shape and skipped[0] is None
    for a, b in zip(full[1:4], skipped[1:4], strict=True):
        np.testing.assert_array_equal(a, b)


def test_core_forward_of_the_last_output_alone_is_the_last_step():
    cell = layers.LSTMCell(3)
    cell.build((None, 4))
    weights = fused._weight_arrays(cell)
    for go_backwards in (False, True):
        kwargs = dict(mask=MASK, go_backwards=go_backwards, zero_output_for_mask=True)
        outputs, states, _ = fused._core.rnn_forward(cell.spec, weights, X, **kwargs)
        last, last_states, _ = fused._core.rnn_forward(cell.spec, weights, X, return_sequences=False, **kwargs)
        np.testing.assert_array_equal(last, outputs[:, -1])
        for a, b in zip(states, last_states, strict=True):
            np.testing.assert_array_equal(a, b)
    empty, _, _ = fused._core.rnn_forward(cell.spec, weights, X[:, :0], return_sequences=False)
    np.testing.assert_array_equal(empty, np.zeros((3, 3), np.float32))
