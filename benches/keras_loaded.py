"""A model trained and saved by Keras 3, loaded in rnnkit: CPU inference time against Keras itself.

For the W2 shape (the guide's MNIST model: LSTM(64) -> BatchNormalization -> Dense(10) on a
(64, 28, 28) batch) and the W5 shape (LSTM(128) -> BatchNormalization -> Dense(10) on one
sequence of 100 steps of 64 features), Keras (TensorFlow backend) builds the model, trains it one
epoch on random data and saves it as `.keras`; rnnkit loads the file with
`rk.models.load_model`. Both then predict the same batch with `predict_on_batch`, alternating
blocks of calls; the script prints the median time of each, the ratio, and the largest
difference between their outputs.

Usage (from the repository root, in the bench environment with tensorflow-cpu and keras 3):

    PYTHONPATH=python /path/to/benchenv/bin/python benches/keras_loaded.py
"""

import functools
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnkit as rk  # noqa: E402
from clients import cpu_model  # noqa: E402  (benches/ is the script's folder)

SHAPES = {
    "W2": dict(units=64, batch=64, steps=28, features=28),
    "W5": dict(units=128, batch=1, steps=100, features=64),
}


def keras_model(units, steps, features, **_):
    """The guide's model at this shape, trained one epoch on random data."""
    model = keras.Sequential(
        [
            keras.Input((steps, features)),
            keras.layers.LSTM(units),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, steps, features)).astype("float32")
    model.fit(x, rng.integers(0, 10, 256), batch_size=64, epochs=1, verbose=0)
    return model


def median_ms(step, rounds=7, block=0.3):
    """Median milliseconds per call over alternating-friendly blocks of about `block` seconds."""
    times = []
    for _ in range(rounds):
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < block:
            step()
            calls += 1
        times.append(1e3 * (time.perf_counter() - start) / calls)
    return statistics.median(times)


def main():
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    print(f"keras {keras.__version__} ({keras.backend.backend()}), rnnkit {rk.__version__}")
    print("| shape | Keras predict_on_batch ms | rnnkit ms (loaded .keras) | rnnkit / Keras | max |diff| |")
    print("|---|---:|---:|---:|---:|")
    for name, shape in SHAPES.items():
        theirs = keras_model(**shape)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.keras")
            theirs.save(path)
            ours = rk.models.load_model(path)
        x = np.random.default_rng(1).standard_normal((shape["batch"], shape["steps"], shape["features"]))
        x = x.astype("float32")
        diff = float(np.max(np.abs(np.asarray(theirs.predict_on_batch(x)) - ours.predict_on_batch(x))))
        for _ in range(20):  # warm both up (Keras traces its predict function on the first call)
            theirs.predict_on_batch(x)
            ours.predict_on_batch(x)
        keras_ms, rnnkit_ms = [], []
        for _ in range(3):
            keras_ms.append(median_ms(functools.partial(theirs.predict_on_batch, x), rounds=3))
            rnnkit_ms.append(median_ms(functools.partial(ours.predict_on_batch, x), rounds=3))
        k, r = statistics.median(keras_ms), statistics.median(rnnkit_ms)
        print(f"| {name} | {k:.3f} | {r:.3f} | {r / k:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
