"""The keras-io clients of tests/clients/ on rnnkit and on Keras 3 (TensorFlow backend): each
example's final metric and its seconds per epoch, on the same synthetic data.

Each client script runs unchanged in a fresh worker process per framework (this file started
with `--worker FRAMEWORK SCRIPT`): for Keras the worker sets KERAS_BACKEND=tensorflow and makes
`import rnnkit as keras` / `from rnnkit import layers` resolve to Keras 3 itself
(`sys.modules["rnnkit"] = keras`), so both frameworks run the very same file, data and seeds
(`utils.set_random_seed(0)`, as the tests do). The worker wraps `Model.fit` with a timing
callback and reports, for every `fit` call, the history, each epoch's wall time (training and
validation, from `on_epoch_begin` to `on_epoch_end`) and each training batch's time. The parent
prints a markdown table:

- metric: the example's last reported metric of the fit named in CLIENTS below;
- s/epoch: the wall time of that fit's last epoch. A fit of one epoch (the addition and text
  generation examples call `fit(epochs=1)` in a loop; the guide's fits are single epochs of
  fresh models) counts Keras's graph tracing of its first call, so the ms/step columns add the
  median training-step time over all fits, which excludes it;
- script s: the whole script, up to where it stopped if it raised (listed under the table),
  including the sampling and decoding loops, one `predict` call per
  character, where rnnkit's per-call overhead is small.

Where matplotlib is not installed (the bench environment), the worker substitutes a no-op
pyplot: plotting is not timed.

Usage (from the repository root; the bench environment has tensorflow-cpu and keras 3):

    /work/benchenv/bin/python benches/clients.py [--clients NAME ...] [--frameworks rnnkit keras]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_DIR = os.path.join(ROOT, "tests", "clients")

# script name -> (label, index of the fit whose numbers are reported, metric key)
CLIENTS = {
    "addition_rnn": ("addition_rnn (LSTM 128, 450 questions)", -1, "val_accuracy"),
    "bidirectional_lstm_imdb": ("bidirectional_lstm_imdb (2 x BiLSTM 64, 400 reviews)", -1, "val_accuracy"),
    "lstm_seq2seq": ("lstm_seq2seq (LSTM 256 enc/dec, 300 pairs)", -1, "val_accuracy"),
    "lstm_character_level_text_generation": (
        "lstm_character_level_text_generation (LSTM 128, 2,170 windows)",
        -1,
        "loss",
    ),
    "timeseries_weather_forecasting": (
        "timeseries_weather_forecasting (LSTM 32, 4,291 windows of 120)",
        -1,
        "val_loss",
    ),
    "working_with_rnns": ("working_with_rnns (RNN(LSTMCell(64)) + BN, 1,000 digits)", 1, "val_accuracy"),
}


# ---------------------------------------------------------------------------------------------
# Worker: runs one client script on one framework and prints one JSON line.


def _stub_matplotlib():
    """A pyplot whose every function does nothing, for environments without matplotlib."""
    import types
    from unittest import mock

    matplotlib = types.ModuleType("matplotlib")
    pyplot = mock.MagicMock(name="pyplot")
    pyplot.subplots.side_effect = lambda *a, **k: (mock.MagicMock(), mock.MagicMock())
    matplotlib.pyplot = pyplot
    matplotlib.use = lambda *a, **k: None
    sys.modules["matplotlib"] = matplotlib
    sys.modules["matplotlib.pyplot"] = pyplot


def worker(framework, script):
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _stub_matplotlib()
    if framework == "keras":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras as kit

        sys.modules["rnnkit"] = kit
    else:
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import rnnkit as kit

    fits = []

    class Timer(kit.callbacks.Callback):
        def __init__(self, record):
            super().__init__()
            self.record = record

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.record["epoch_s"].append(time.perf_counter() - self.epoch_start)

        def on_train_batch_begin(self, batch, logs=None):
            self.batch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.record["step_s"].append(time.perf_counter() - self.batch_start)

    original_fit = kit.Model.fit

    def timed_fit(self, *args, **kwargs):
        record = {"epoch_s": [], "step_s": []}
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [Timer(record)]
        history = original_fit(self, *args, **kwargs)
        record["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        fits.append(record)
        return history

    kit.Model.fit = timed_fit
    kit.utils.set_random_seed(0)
    import runpy

    real_stdout = os.dup(1)
    error = None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as devnull:
        os.chdir(folder)
        sys.stdout.flush()
        os.dup2(devnull.fileno(), 1)  # the scripts' prints and progress bars
        try:
            with contextlib.redirect_stdout(devnull):
                runpy.run_path(os.path.join(CLIENT_DIR, f"{script}.py"), run_name="__main__")
        except Exception as exc:  # the fits before it still count; the table says it stopped
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        finally:
            sys.stdout.flush()
            os.dup2(real_stdout, 1)
    total = time.perf_counter() - start
    print(json.dumps({"fits": fits, "script_s": total, "error": error}))


# ---------------------------------------------------------------------------------------------
# Parent.


def run_worker(python, framework, script):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    command = [python, os.path.abspath(__file__), "--worker", framework, script]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"fits": [], "error": " / ".join(tail)}
    return json.loads(lines[-1])


def summarize(result, fit_index, key):
    fits = result["fits"]
    if not -len(fits) <= fit_index < len(fits):
        return None
    fit = fits[fit_index]
    steps = [s for f in result["fits"] for s in f["step_s"]]
    return {
        "metric": fit["history"][key][-1],
        "epoch_s": fit["epoch_s"][-1],
        "step_ms": 1e3 * statistics.median(steps),
        "script_s": result["script_s"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "SCRIPT"), help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs="*", default=list(CLIENTS))
    parser.add_argument("--frameworks", nargs="*", default=["rnnkit", "keras"])
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the workers")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.worker:
        worker(*args.worker)
        return

    from peers import cpu_model

    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); Python {platform.python_version()}")
    versions = subprocess.run(
        [
            args.python,
            "-c",
            "import keras, tensorflow as tf, numpy as np; print(keras.__version__, tf.__version__, np.__version__)",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()
    if len(versions) == 3:
        print(f"Keras {versions[0]} (TensorFlow {versions[1]} backend), numpy {versions[2]}")
    print()
    rows, errors = [], []
    for script in args.clients:
        label, fit_index, key = CLIENTS[script]
        cells = {}
        for framework in args.frameworks:
            result = run_worker(args.python, framework, script)
            if result.get("error"):
                errors.append(f"{script} on {framework} stopped: {result['error']}")
            cells[framework] = summarize(result, fit_index, key)
        rows.append((label, key, cells))

    def cell(cells, framework, field, fmt):
        value = cells.get(framework)
        return "failed" if value is None else format(value[field], fmt)

    print(
        "| example | metric | rnnkit | Keras | rnnkit s/epoch | Keras s/epoch "
        "| rnnkit ms/step | Keras ms/step | rnnkit script s | Keras script s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, key, cells in rows:
        print(
            f"| {label} | {key} | {cell(cells, 'rnnkit', 'metric', '.4f')} | {cell(cells, 'keras', 'metric', '.4f')} "
            f"| {cell(cells, 'rnnkit', 'epoch_s', '.2f')} | {cell(cells, 'keras', 'epoch_s', '.2f')} "
            f"| {cell(cells, 'rnnkit', 'step_ms', '.1f')} | {cell(cells, 'keras', 'step_ms', '.1f')} "
            f"| {cell(cells, 'rnnkit', 'script_s', '.1f')} | {cell(cells, 'keras', 'script_s', '.1f')} |"
        )
    if errors:
        print()
    for error in errors:
        print(f"- {error}")


if __name__ == "__main__":
    main()
