"""The keras-io next-frame prediction model (examples/vision/conv_lstm.py: three ConvLSTM2D, two
BatchNormalization, a Conv3D) on rnnkit and on Keras 3 (each backend that is installed), in one
run on this machine: the training step and predict on the example's shape (frames 40x40, 64
filters, kernels 5x5 / 3x3 / 1x1, batch 5, 19 steps), Moving MNIST replaced by random arrays.

Each framework runs in its own process (Keras's backend is chosen at import). Prints the median
of the timed repeats after warm-up steps, and rnnkit's ratio to each Keras backend.

    python benches/conv_lstm.py [--repeats 3] [--frame 40] [--filters 64] [--steps 19] [--batch 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def build(lib, frame, filters):
    """The example's model, written with `lib` (rnnkit or keras)."""
    inp = lib.layers.Input(shape=(None, frame, frame, 1))
    x = lib.layers.ConvLSTM2D(filters, (5, 5), padding="same", return_sequences=True, activation="relu")(inp)
    x = lib.layers.BatchNormalization()(x)
    x = lib.layers.ConvLSTM2D(filters, (3, 3), padding="same", return_sequences=True, activation="relu")(x)
    x = lib.layers.BatchNormalization()(x)
    x = lib.layers.ConvLSTM2D(filters, (1, 1), padding="same", return_sequences=True, activation="relu")(x)
    x = lib.layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid", padding="same")(x)
    model = lib.models.Model(inp, x)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    return model


def worker(name, args):
    """Times one framework; prints a JSON line."""
    import numpy as np

    if name == "rnnkit":
        import rnnkit as lib
    else:
        os.environ["KERAS_BACKEND"] = name.split("-", 1)[1]
        import keras as lib
    rng = np.random.default_rng(0)
    shape = (args.batch, args.steps, args.frame, args.frame, 1)
    x = (rng.random(shape) > 0.8).astype("float32")
    y = np.roll(x, -1, axis=1)
    model = build(lib, args.frame, args.filters)
    times = {}
    for what, step in [
        ("train step", lambda: model.train_on_batch(x, y)),
        ("predict", lambda: model.predict_on_batch(x)),
    ]:
        step()  # warm-up: traces and compiles for Keras
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step()
            samples.append(time.perf_counter() - start)
        times[what] = statistics.median(samples)
    print(json.dumps({"framework": name, **times}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frame", type=int, default=40)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--steps", type=int, default=19)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args)
    from peers import cpu_model

    print(f"CPU: {cpu_model()}; {os.cpu_count()} logical CPUs")
    print(
        f"next-frame model: frames {args.frame}x{args.frame}, {args.filters} filters, batch {args.batch}, "
        f"{args.steps} steps; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    results = {}
    for name in ["rnnkit", "keras-tensorflow", "keras-jax"]:
        command = [sys.executable, __file__, "--worker", name] + sys.argv[1:]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode or not lines:
            reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  {name:17s} skipped: {reason[:120]}")
            continue
        results[name] = json.loads(lines[-1])
        row = results[name]
        print(f"  {name:17s} train step {row['train step']:8.3f} s   predict {row['predict']:8.3f} s")
    for name, row in results.items():
        if name != "rnnkit" and "rnnkit" in results:
            ours = results["rnnkit"]
            print(
                f"  rnnkit / {name}: train step {ours['train step'] / row['train step']:.2f}x, "
                f"predict {ours['predict'] / row['predict']:.2f}x"
            )


if __name__ == "__main__":
    main()
