"""GPU benchmark: rnnkit's CUDA path against PyTorch's cuDNN LSTM/GRU, in one process on one GPU.

Workloads (fp32; TF32 off in both: cuBLAS's default math for rnnkit, `allow_tf32 = False` for
PyTorch):
  W1  the guide's MNIST train step: LSTM(64) -> BatchNormalization -> Dense(10), B=64, T=28,
      F=28, sparse cross-entropy from logits, SGD (rnnkit `train_on_batch` from numpy arrays;
      PyTorch with the batch already on the GPU);
  W3  the same model with LSTM(512), B=64, T=100, F=512;
  each also as the recurrent layer alone: forward + backward of every step's output (no input
      gradient, as for a first layer), output gradient ones;
  grid (haste's): B in {1, 64}, H in {128, 512, 1024}, F=256, T=50, LSTM and GRU, forward and
      forward + backward.
rnnkit's calls take numpy arrays and return numpy arrays, so its times include the copies to and
from the GPU; PyTorch's tensors stay on the GPU (its times end with a synchronize). Each time is the
median over repetitions after warm-up.

    python benches/gpu.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def median_ms(step, repeat, warmup=3, sync=None):
    for _ in range(warmup):
        step()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        if sync:
            sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def rnnkit_train(b, t, f, h, repeat):
    import rnnkit as rk

    rng = np.random.default_rng(0)
    x = rng.random((b, t, f), dtype=np.float32)
    y = rng.integers(0, 10, size=b)
    model = rk.Sequential([rk.Input((t, f)), rk.layers.LSTM(h), rk.layers.BatchNormalization(), rk.layers.Dense(10)])
    model.compile(optimizer=rk.optimizers.SGD(0.01), loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True))
    with rk.device("cuda"):
        return median_ms(lambda: model.train_on_batch(x, y), repeat)


def torch_train(torch, b, t, f, h, repeat):
    dev = torch.device("cuda")
    lstm = torch.nn.LSTM(f, h, batch_first=True).to(dev)
    norm = torch.nn.BatchNorm1d(h).to(dev)
    dense = torch.nn.Linear(h, 10).to(dev)
    params = list(lstm.parameters()) + list(norm.parameters()) + list(dense.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.rand(b, t, f, device=dev)
    y = torch.randint(0, 10, (b,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = lstm(x)
        loss = torch.nn.functional.cross_entropy(dense(norm(out[:, -1])), y)
        loss.backward()
        opt.step()

    return median_ms(step, repeat, sync=torch.cuda.synchronize)


def rnnkit_layer(cell, b, t, f, h, backward, repeat):
    from rnnkit import _core

    rng = np.random.default_rng(1)
    spec = _core.CellSpec(cell, h)
    g = spec.gates
    weights = [
        rng.normal(scale=0.05, size=(f, g * h)).astype(np.float32),
        rng.normal(scale=0.05, size=(h, g * h)).astype(np.float32),
        np.zeros(spec.bias_shape, np.float32),
    ]
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    ones = np.ones((b, t, h), np.float32)

    def step():
        _, _, saved = _core.rnn_forward(spec, weights, x, device="cuda")
        if backward:
            _core.rnn_backward(saved, d_outputs=ones, input_gradient=False)

    return median_ms(step, repeat)


def torch_layer(torch, cell, b, t, f, h, backward, repeat):
    dev = torch.device("cuda")
    layer = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(f, h, batch_first=True).to(dev)
    x = torch.randn(b, t, f, device=dev)

    def step():
        if backward:
            layer.zero_grad(set_to_none=True)
            out, _ = layer(x)
            out.sum().backward()
        else:
            with torch.no_grad():
                layer(x)

    return median_ms(step, repeat, sync=torch.cuda.synchronize)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 10 if args.quick else 30

    import torch

    import rnnkit as rk

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"GPU: {torch.cuda.get_device_name(0)}; rnnkit sees: {rk.config.cuda_status()[1]}")
    print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; fp32, TF32 off in both\n")

    rows = []
    # (label, B, T, F, H): the guide's MNIST model and the large LSTM, as train steps and as the
    # recurrent layer alone.
    for name, b, t, f, h in [("W1", 64, 28, 28, 64), ("W3", 64, 100, 512, 512)]:
        step = (rnnkit_train(b, t, f, h, repeat), torch_train(torch, b, t, f, h, repeat))
        rows.append((f"{name} train step (LSTM {h}, B{b} T{t} F{f})", *step))
        layer = (
            rnnkit_layer("lstm", b, t, f, h, True, repeat),
            torch_layer(torch, "lstm", b, t, f, h, True, repeat),
        )
        rows.append((f"{name}'s LSTM layer alone, fwd+bwd", *layer))
    w1, w3 = rows[0][1:], rows[2][1:]
    for cell in ("lstm", "gru"):
        for b in (1, 64):
            for h in (128, 512, 1024):
                for backward in (False, True):
                    label = f"grid {cell} B{b} H{h} F256 T50 {'fwd+bwd' if backward else 'fwd'}"
                    ours = rnnkit_layer(cell, b, 50, 256, h, backward, repeat)
                    theirs = torch_layer(torch, cell, b, 50, 256, h, backward, repeat)
                    rows.append((label, ours, theirs))

    # A call's fixed cost: one step of a tiny cell.
    for backward in (False, True):
        label = f"fixed cost: lstm B1 H8 F8 T1 {'fwd+bwd' if backward else 'fwd'}"
        rows.append(
            (
                label,
                rnnkit_layer("lstm", 1, 1, 8, 8, backward, repeat),
                torch_layer(torch, "lstm", 1, 1, 8, 8, backward, repeat),
            )
        )

    print(f"{'workload':<46} {'rnnkit ms':>10} {'cuDNN ms':>10} {'ratio':>7}")
    for label, ours, theirs in rows:
        print(f"{label:<46} {ours:>10.3f} {theirs:>10.3f} {ours / theirs:>7.2f}")
    print("\ntargets (ratio = rnnkit / PyTorch+cuDNN):")
    print(f"  W1 <= 0.5: {w1[0] / w1[1]:.2f} -> {'MET' if w1[0] <= 0.5 * w1[1] else 'NOT MET'}")
    small = [(lbl, o / t) for lbl, o, t in rows[4:] if (" H128 " in lbl or " H512 " in lbl)]
    met = sum(r < 1.0 for _, r in small)
    print(f"  H <= 512, B <= 64 faster than cuDNN: {met} of {len(small)} grid rows")
    large = [(lbl, o / t) for lbl, o, t in rows[4:] if " H1024 " in lbl]
    within = sum(r <= 1.1 for _, r in large)
    print(f"  elsewhere within 10%: {within} of {len(large)} grid rows (W3: {w3[0] / w3[1]:.2f})")


if __name__ == "__main__":
    main()
