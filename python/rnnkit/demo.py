"""The main job until the training API lands: an LSTM over random data through the fused core.

Runs ``python -m rnnkit.demo`` (or ``rnnkit-demo``): builds an LSTM at the guide's MNIST shape
(batch 64, 28 steps of 28 features, 64 units) with Keras's default initialisers, runs the fused
forward and backward passes, and prints the shapes and the time per batch.
"""

import argparse
import time

import numpy as np

from rnnkit import _core


def glorot_uniform(rng, shape):
    """Keras's default kernel initialiser."""
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def orthogonal(rng, shape):
    """Keras's default recurrent initialiser: an orthogonal matrix (rows, cols)."""
    q, r = np.linalg.qr(rng.normal(size=(max(shape), min(shape))))
    q *= np.sign(np.diag(r))
    return (q if shape[0] >= shape[1] else q.T).astype(np.float32)


def main(argv=None):
    """Runs the demo and prints what it did."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    spec = _core.CellSpec("lstm", args.units)
    bias = np.zeros(4 * args.units, np.float32)
    bias[args.units : 2 * args.units] = 1.0  # unit_forget_bias
    weights = (
        glorot_uniform(rng, (args.features, 4 * args.units)),
        orthogonal(rng, (args.units, 4 * args.units)),
        bias,
    )
    x = rng.random((args.batch, args.steps, args.features), dtype=np.float32)

    outputs, states, saved = _core.rnn_forward(spec, weights, x)
    grads = _core.rnn_backward(saved, d_last_output=np.ones_like(outputs[:, -1]))
    print(f"input            {x.shape}")
    print(f"outputs          {outputs.shape}  (last step: {outputs[:, -1].shape})")
    print(f"final states     {[s.shape for s in states]}")
    print(f"d_input          {grads[0].shape}")
    print(f"d_kernel         {grads[1].shape}, d_recurrent_kernel {grads[2].shape}, d_bias {grads[3].shape}")

    def timed(fn):
        fn()
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        return (time.perf_counter() - start) / args.repeats * 1e3

    fwd_ms = timed(lambda: _core.rnn_forward(spec, weights, x))
    both_ms = timed(
        lambda: _core.rnn_backward(_core.rnn_forward(spec, weights, x)[2], d_last_output=outputs[:, -1])
    )
    print(f"forward          {fwd_ms:.2f} ms per batch")
    print(f"forward+backward {both_ms:.2f} ms per batch")


if __name__ == "__main__":
    main()
