"""Memory: training does not grow the process, and a tape's saved activations die with it.

The fused forward keeps its activations in Rust memory (a `SavedActivations` object held by the
backward closure the tape records). Leaking them, or anything per step, would grow the resident
set by at least their size at every step; the bounds below are computed from that size.
"""

import ctypes
import gc
import os
import weakref

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _core

L = rk.layers

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")


def release_free_heap():
    """Hands the memory malloc keeps after frees back to the system (glibc's `malloc_trim`), so
    that what a test allocates next shows in the resident size; a no-op elsewhere."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def rss():
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lstm_saved_bytes(batch, steps, units, features, itemsize=4):
    """A lower bound of what one fused LSTM forward keeps for its backward pass: the
    pre-activations (4 gates), hidden and cell states (one more step than the sequence), the
    outputs and the time-major input."""
    pre, states = steps * batch * 4 * units, 2 * (steps + 1) * batch * units
    return itemsize * (pre + states + steps * batch * units + steps * batch * features)


def saved_activations(tape):
    """The SavedActivations objects the tape's recorded backward closures hold."""
    found, stack, seen = [], [node.backward for node in tape._nodes], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _core.SavedActivations):
            found.append(obj)
        elif callable(obj) and getattr(obj, "__closure__", None):
            stack.extend(cell.cell_contents for cell in obj.__closure__)
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    return found


def test_many_train_steps_do_not_grow_memory():
    batch, steps, units, features, iterations = 16, 32, 32, 8, 2000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features)).astype("float32")
    y = rng.standard_normal((batch, 1)).astype("float32")
    model = rk.Sequential([rk.Input((steps, features)), L.LSTM(units), L.Dense(1)])
    optimizer = rk.optimizers.Adam(1e-3)

    def train_step():
        with rk.GradientTape() as tape:
            loss = rk.ops.mean(rk.ops.square(model(x, training=True) - y))
        optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)

    for _ in range(100):  # warm up: optimizer slots, allocator pools, caches
        train_step()
    gc.collect()
    objects_before, rss_before = len(gc.get_objects()), rss()
    for _ in range(iterations):
        train_step()
    gc.collect()
    objects_growth, rss_growth = len(gc.get_objects()) - objects_before, rss() - rss_before

    per_step = lstm_saved_bytes(batch, steps, units, features)  # about 480 kB
    # Keeping even a quarter of one step's activations per step would add iterations·per_step/4
    # (about 240 MB; a real leak of them grows about 830 MiB); allocator noise is a few MB.
    bound = iterations * per_step // 4
    assert rss_growth < bound, (
        f"RSS grew {rss_growth / 2**20:.1f} MiB over {iterations} steps (bound {bound / 2**20:.1f} MiB)"
    )
    assert objects_growth < iterations // 4, f"{objects_growth} more Python objects after {iterations} steps"
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_fit_many_epochs_does_not_grow_memory():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((64, 16, 4)).astype("float32"), rng.standard_normal((64, 1)).astype("float32")
    model = rk.Sequential([rk.Input((16, 4)), L.GRU(16, return_sequences=True), L.LSTM(16), L.Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    gc.collect()
    before = rss()
    history = model.fit(x, y, batch_size=8, epochs=40, verbose=0)  # 320 steps
    gc.collect()
    per_step = lstm_saved_bytes(8, 16, 16, 16)  # the LSTM's share alone
    assert rss() - before < 320 * per_step // 2
    # History keeps one float per epoch and metric, nothing per step.
    assert len(history.history["loss"]) == 40


@pytest.mark.parametrize("persistent", [False, True])
def test_saved_activations_are_freed_with_the_tape(persistent):
    layers = [L.LSTM(8, return_sequences=True), L.Bidirectional(L.GRU(4)), L.RNN([L.LSTMCell(4), L.SimpleRNNCell(3)])]
    x = np.random.default_rng(2).standard_normal((4, 6, 5)).astype("float32")
    with rk.GradientTape(persistent=persistent) as tape:
        outputs = [layers[0](x), layers[1](x), layers[2](x)]
    saved = saved_activations(tape)
    assert len(saved) == 4  # LSTM, the Bidirectional pair, two stacked cells
    refs = [weakref.ref(s) for s in saved]
    del saved
    gc.collect()
    assert all(r() is not None for r in refs)  # the tape keeps them for gradient()
    tape.gradient(sum(rk.ops.sum(o) for o in outputs), [w for layer in layers for w in layer.trainable_weights])
    gc.collect()
    if persistent:
        assert all(r() is not None for r in refs)  # kept for further gradient() calls
        del tape
        gc.collect()
    # A non-persistent tape frees them once gradient() has run; a persistent one when it dies.
    assert all(r() is None for r in refs)


def test_saved_activations_are_freed_without_calling_gradient():
    x = np.zeros((2, 3, 4), "float32")
    layer = L.GRU(3)
    with rk.GradientTape() as tape:
        out = layer(x)
    refs = [weakref.ref(s) for s in saved_activations(tape)]
    assert refs
    del tape
    gc.collect()
    assert all(r() is None for r in refs)
    assert out.shape == (2, 3)  # the outputs do not keep the activations alive


def test_saved_activations_memory_goes_back_when_the_tape_goes():
    batch, steps, units = 256, 512, 64  # about 270 MB of activations in blocks of 32 MiB and more
    expected = lstm_saved_bytes(batch, steps, units, 1)
    layer = L.LSTM(units, return_sequences=True)
    x = np.random.default_rng(3).standard_normal((batch, steps, 1)).astype("float32")
    layer(x[:1, :2])
    rk.utils.clear_session()  # blocks earlier tests left in the core's cache would be reused
    gc.collect()
    release_free_heap()  # and so would resident memory that earlier tests freed to malloc
    before = rss()
    with rk.GradientTape() as tape:
        out = layer(x)
    held = rss() - before
    assert held > 0.8 * expected, f"held {held / 2**20:.0f} MiB, expected about {expected / 2**20:.0f} MiB"
    del tape, out
    gc.collect()
    # The freed buffers go to the core's block cache for the next call, not to a leak: what is
    # still resident is the cache, and clear_session returns it to the system.
    cached = _core.cached_bytes()
    assert cached > 0.8 * expected
    left = rss() - before
    assert left - cached < 0.2 * expected, (
        f"{left / 2**20:.0f} MiB of {held / 2**20:.0f} MiB resident, {cached / 2**20:.0f} MiB of it cached"
    )
    rk.utils.clear_session()
    assert _core.cached_bytes() == 0
    # What the core freed and malloc keeps for reuse (below glibc's adaptive mmap threshold, in
    # any thread's arena) is not held by rnnkit: hand it back before measuring what is.
    release_free_heap()
    left = rss() - before
    assert left < 0.2 * expected, f"{left / 2**20:.0f} MiB of {held / 2**20:.0f} MiB still resident after clear_session"
