"""Data-parallel scaling on MPI: samples per second of one process against two, and the allreduce.

For W1 (the guide's MNIST train step: LSTM(64) -> BatchNormalization -> Dense(10), B=64, T=28,
F=28) and W3 (the same model with LSTM(512), B=64, T=100, F=512), `fit` runs on random data with
a global batch of 64, plain SGD, no metrics:

- one process on one core (RAYON_NUM_THREADS=1);
- `mpiexec -n 2`, each process on one core (32 rows of every batch each).

It prints samples per second of each, the scaling efficiency throughput(2) / (2 x throughput(1)),
and, from the two-process run, the time per step spent in allreduces (the gradients' one flat
buffer plus BatchNormalization's statistics; waiting for the slower rank included) with the bytes
each step sums, and the time of the gradient buffer's allreduce alone (timed apart after training).
On a machine other jobs share, the wall-clock figures suffer from them; samples per CPU second
(of all the processes together, waiting included) give the efficiency of the work itself.

Each configuration runs `--rounds` times (3), alternated, and the fastest run of each is shown:
the one least disturbed by other work on the machine.

    python benches/distributed.py               # W1 and W3
    python benches/distributed.py --only W1     # one workload
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORKLOADS = {
    "W1": dict(units=64, timesteps=28, features=28, steps=60, title="LSTM H=64, B=64, T=28, F=28 (guide's MNIST)"),
    "W3": dict(units=512, timesteps=100, features=512, steps=10, title="LSTM H=512, B=64, T=100, F=512"),
}
BATCH = 64


def _worker(name):
    """Trains the workload under the distribution in effect; rank 0 prints its figures as JSON."""
    import numpy as np

    import rnnkit as rk

    spec = WORKLOADS[name]
    data_parallel = rk.distribution.DataParallel()
    rk.distribution.set_distribution(data_parallel)
    rk.utils.set_random_seed(0)
    model = rk.Sequential(
        [
            rk.Input((spec["timesteps"], spec["features"])),
            rk.layers.LSTM(spec["units"]),
            rk.layers.BatchNormalization(),
            rk.layers.Dense(10),
        ]
    )
    model.compile(loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd")
    generator = np.random.default_rng(0)
    samples = BATCH * spec["steps"]
    x = generator.normal(size=(samples, spec["timesteps"], spec["features"])).astype("float32")
    y = generator.integers(0, 10, samples)
    model.fit(x[: 2 * BATCH], y[: 2 * BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)  # warm-up
    communicator = data_parallel.communicator
    before = (0.0, 0, 0) if communicator is None else _stats(communicator)
    began, cpu_began = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    if communicator is not None:
        cpu_seconds = sum(communicator.allgather(cpu_seconds))
    result = {"samples_per_second": samples / seconds, "samples_per_cpu_second": samples / cpu_seconds}
    if communicator is not None:
        after = _stats(communicator)
        reduce_seconds, reduce_bytes, reduce_calls = (a - b for a, b in zip(after, before))
        result.update(
            allreduce_ms_per_step=1e3 * reduce_seconds / spec["steps"],
            allreduce_bytes_per_step=reduce_bytes / spec["steps"],
            allreduces_per_step=reduce_calls / spec["steps"],
        )
        gradients = np.ones(sum(int(np.prod(w.shape)) for w in model.trainable_weights) + 1, "float32")
        communicator.allreduce_sum(gradients)
        began = time.perf_counter()
        for _ in range(20):
            communicator.allreduce_sum(gradients)
        result["gradient_allreduce_ms"] = 1e3 * (time.perf_counter() - began) / 20
        result["gradient_bytes"] = gradients.nbytes
    if data_parallel.process_id == 0:
        print(json.dumps(result))


def _stats(communicator):
    return communicator.allreduce_seconds, communicator.allreduce_bytes, communicator.allreduce_calls


def _run(name, processes):
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    if processes > 1:
        command = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(processes), *command]
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="W1,W3", help="workloads, comma-separated (W1, W3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each; the best counts")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker)
    import platform

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; one core per process")
    for name in args.only.split(","):
        runs = [(_run(name, 1), _run(name, 2)) for _ in range(args.rounds)]
        one, two = (max(column, key=lambda r: r["samples_per_second"]) for column in zip(*runs))
        efficiency = two["samples_per_second"] / (2 * one["samples_per_second"])
        cpu_efficiency = two["samples_per_cpu_second"] / one["samples_per_cpu_second"]
        print(f"{name}  {WORKLOADS[name]['title']}, global batch {BATCH}")
        print(f"  1 process:   {one['samples_per_second']:9.1f} samples/s")
        print(
            f"  2 processes: {two['samples_per_second']:9.1f} samples/s  efficiency {efficiency:.0%} "
            f"(samples per CPU second: {cpu_efficiency:.0%} of one process's)"
        )
        print(
            f"  allreduce: {two['allreduces_per_step']:.0f} per step, {two['allreduce_bytes_per_step'] / 1e6:.2f} MB, "
            f"{two['allreduce_ms_per_step']:.2f} ms per step (waiting for the slower rank included); the gradient "
            f"buffer alone ({two['gradient_bytes'] / 1e6:.2f} MB): {two['gradient_allreduce_ms']:.2f} ms"
        )
    return None


if __name__ == "__main__":
    main()
