"""Layers and models used from several Python threads at once.

The Rust core runs with the GIL released, so these calls really overlap. Each thread must get
exactly what a serial call gives (forward values and `GradientTape` gradients; tapes are per
thread, as in TensorFlow), and training in one thread while another predicts must not crash.
Layers are built before the threads start: building is a one-time mutation, not a call.
"""

import threading

import numpy as np
import pytest

import rnnkit as rk

L = rk.layers
THREADS = 4
ROUNDS = 6


class Stepped(L.GRUCell):
    """A GRU cell that RNN steps in Python (its `call` is not the built-in one)."""

    def call(self, *args, **kwargs):
        return super().call(*args, **kwargs)


def run_in_threads(work, count=THREADS):
    """Runs `work(i)` in `count` threads started together; returns the results in order and
    re-raises the first exception a thread hit."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def inputs(i, shape=(16, 12, 6)):
    return np.random.default_rng(100 + i).standard_normal(shape).astype("float32")


def masks(i, shape=(16, 12)):
    return np.random.default_rng(200 + i).random(shape) > 0.3


def build(layer, shape=(16, 12, 6)):
    layer(np.zeros(shape, "float32"))
    return layer


LAYERS = {
    "LSTM": lambda: L.LSTM(8, return_sequences=True),
    "GRU masked": lambda: L.GRU(8, return_sequences=True, go_backwards=True),
    "SimpleRNN states": lambda: L.SimpleRNN(8, return_state=True),
    "stacked cells": lambda: L.RNN([L.LSTMCell(8), L.GRUCell(5)], return_sequences=True),
    "stepping cell": lambda: L.RNN(Stepped(5), return_sequences=True),
    "Bidirectional": lambda: L.Bidirectional(L.LSTM(6, return_sequences=True)),
}


def forward(layer, i, masked):
    out = layer(inputs(i), mask=masks(i) if masked else None)
    return [np.asarray(o) for o in rk.tree.flatten(out)]


@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_called_from_threads_equal_serial_calls(name):
    layer = build(LAYERS[name]())
    masked = "masked" in name or name == "Bidirectional"
    serial = [[forward(layer, THREADS * r + i, masked) for r in range(ROUNDS)] for i in range(THREADS)]
    threaded = run_in_threads(lambda i: [forward(layer, THREADS * r + i, masked) for r in range(ROUNDS)])
    for i in range(THREADS):
        for got, expected in zip(threaded[i], serial[i]):
            for g, e in zip(got, expected):
                np.testing.assert_array_equal(g, e)


def gradients(model, i):
    x = rk.Variable(inputs(i))
    with rk.GradientTape() as tape:
        tape.watch(x)
        loss = rk.ops.mean(rk.ops.square(model(x, training=False) - 0.5))
    grads = tape.gradient(loss, [x] + model.trainable_weights)
    return [float(loss)] + [np.asarray(g) for g in grads]


def test_models_and_gradient_tapes_in_threads_equal_serial_ones():
    inp = rk.Input((12, 6))
    hidden = L.Bidirectional(L.GRU(6, return_sequences=True))(inp)
    hidden = L.RNN(Stepped(4), return_sequences=True)(hidden)
    model = rk.Model(inp, L.Dense(2)(L.LSTM(5)(hidden)))
    serial = [[gradients(model, THREADS * r + i) for r in range(3)] for i in range(THREADS)]
    threaded = run_in_threads(lambda i: [gradients(model, THREADS * r + i) for r in range(3)])
    for i in range(THREADS):
        for got, expected in zip(threaded[i], serial[i]):
            assert got[0] == expected[0]
            for g, e in zip(got[1:], expected[1:]):
                np.testing.assert_array_equal(g, e)


def test_a_tape_records_only_its_own_threads_ops():
    layer = build(L.LSTM(4))
    started, release = threading.Event(), threading.Event()
    other = {}

    def other_thread():
        started.wait()
        other["out"] = layer(inputs(1))  # runs while the main thread's tape is open
        release.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with rk.GradientTape(persistent=True) as tape:
        started.set()
        assert release.wait(timeout=30)
        mine = layer(inputs(0))
    thread.join(timeout=30)
    assert tape.gradient(other["out"], layer.trainable_weights) == [None, None, None]
    assert all(g is not None for g in tape.gradient(mine, layer.trainable_weights))


def test_predict_in_threads_equals_serial_predict():
    model = rk.Sequential([rk.Input((12, 6)), L.LSTM(8, return_sequences=True), L.GRU(4), L.Dense(3)])
    data = [inputs(i, (40, 12, 6)) for i in range(THREADS)]
    serial = [model.predict(d, batch_size=16, verbose=0) for d in data]
    threaded = run_in_threads(lambda i: model.predict(data[i], batch_size=16, verbose=0))
    for got, expected in zip(threaded, serial):
        np.testing.assert_array_equal(got, expected)


def test_fit_in_one_thread_while_another_predicts():
    model = rk.Sequential([rk.Input((12, 6)), L.LSTM(8), L.Dense(1)])
    model.compile("adam", "mse")
    x, y = inputs(0, (64, 12, 6)), np.random.default_rng(1).standard_normal((64, 1)).astype("float32")
    done = threading.Event()

    def work(i):
        if i == 0:
            try:
                return model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]
            finally:
                done.set()
        outputs = []
        while not done.is_set() or not outputs:
            outputs.append(model.predict(x[:16], verbose=0))
        return outputs

    losses, *predictions = run_in_threads(work, count=3)
    assert len(losses) == 3 and all(np.isfinite(losses))
    for outputs in predictions:
        assert all(o.shape == (16, 1) and np.isfinite(o).all() for o in outputs)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    np.testing.assert_array_equal(model.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0))
