"""The Rust core's numbers do not depend on how many threads it runs on (`RAYON_NUM_THREADS`):
forward values and every gradient of the recurrent layers, including the shapes whose weight
gradients the packing GEMM computes (gate widths that are not whole panels of 16, more than
128 input features, float64), a batch whose slices project their own inputs on one thread and
not on two, with more input features than the gemm crate's depth block, and a convolution's
kernel gradient."""

import hashlib
import os
import subprocess
import sys

_SCRIPT = """
import hashlib, sys
import numpy as np
import rnnkit as rk
rk.utils.set_random_seed(3)
rng = np.random.default_rng(3)
parts = []
cases = [("LSTM", 7, 28, "float32", 64), ("LSTM", 10, 130, "float32", 64), ("GRU", 5, 20, "float32", 64),
         ("SimpleRNN", 9, 12, "float32", 64), ("LSTM", 20, 28, "float64", 64),
         ("SimpleRNN", 16, 1000, "float32", 12), ("LSTM", 4, 600, "float32", 12)]
for name, units, features, dtype, batch in cases:
    layer = getattr(rk.layers, name)(units, return_sequences=True, dtype=dtype)
    x = rk.ops.convert_to_tensor(rng.normal(size=(batch, 28, features)).astype(dtype))
    with rk.GradientTape() as tape:
        tape.watch(x)
        loss = rk.ops.sum(layer(x) ** 2)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    parts += [np.asarray(layer(x))] + [np.asarray(g) for g in grads]
conv = rk.layers.Conv1D(7, 5, padding="causal")
x = rng.normal(size=(64, 40, 6)).astype("float32")
with rk.GradientTape() as tape:
    loss = rk.ops.sum(conv(x) ** 2)
parts += [np.asarray(g) for g in tape.gradient(loss, conv.trainable_weights)]
print(hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest())
"""


def test_results_are_the_same_bits_on_one_two_and_three_threads():
    digests = {}
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        run = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
        digests[threads] = run.stdout.strip()
    assert len(set(digests.values())) == 1, digests
    assert len(digests["1"]) == len(hashlib.sha256().hexdigest())
