"""Data-parallel training on MPI: `mpiexec -n 2` and `-n 3` against one process, files written by
rank 0 only, a failing or stuck rank ending the job, and the API on one process without MPI.

The same file is the program the ranks run: `python tests/test_distribution.py SCENARIO OUT`.
The MPI tests need mpi4py and an `mpiexec` (the `mpich` wheel of the `mpi` extra); they skip
without them, except under CI (`CI` set, as the Rust NVRTC test), where they fail.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.distribution.sharding import shard_bounds
from rnnkit.layers.normalization import moments

HERE = Path(__file__).resolve()


def _mpiexec():
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH, or None."""
    beside = Path(sys.executable).with_name("mpiexec")
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def _mpi_missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError as error:
        return f"mpi4py cannot be imported ({error}); pip install -e '.[mpi]'"
    return None if _mpiexec() else "no mpiexec found (pip install -e '.[mpi]' brings MPICH's)"


def _require_mpi():
    """Skips without MPI, except under CI, where a missing MPI fails the test."""
    missing = _mpi_missing()
    if missing and "CI" in os.environ:
        pytest.fail(f"CI runs the MPI tests: {missing}")
    if missing:
        pytest.skip(missing)


def _run(scenario, out, processes=None, timeout=60):
    """Runs a scenario of this file, under `mpiexec -n processes` or as one plain process."""
    command = [sys.executable, str(HERE), scenario, str(out)]
    if processes is not None:
        command = [_mpiexec(), "-n", str(processes), *command]
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    return result, time.perf_counter() - began


# --- one process, no MPI needed -----------------------------------------------------------------


def test_shard_bounds_cover_each_batch_without_overlap():
    for samples in range(0, 12):
        for size in (1, 2, 3, 5):
            bounds = [shard_bounds(samples, rank, size) for rank in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == samples
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    assert [shard_bounds(2, rank, 3) for rank in range(3)] == [(0, 1), (1, 2), (2, 2)]


@pytest.mark.parametrize("masked", [False, True])
def test_batch_statistics_summed_over_ranks_are_the_global_batchs(masked):
    """BatchNormalization's moments on 4 simulated ranks (one with no rows) equal the whole batch's."""
    generator = np.random.default_rng(0)
    x = (generator.normal(size=(10, 6, 3)) * 3 + 5).astype("float32")
    weights = (generator.random((10, 6, 3)) < 0.7).astype("float32") if masked else None
    cuts = [(0, 4), (4, 7), (7, 10), (10, 10)]
    parts = [(x[a:b], None if weights is None else weights[a:b]) for a, b in cuts]
    sent = []
    with np.errstate(invalid="ignore"):  # this pass only records: the empty rank's own 0 / 0
        for part, w in parts:
            moments(part, (0, 1), w, reduce=lambda a: sent.append(a) or a)
    expected = moments(x, (0, 1), weights)
    for part, w in parts:
        got = moments(part, (0, 1), w, reduce=lambda a: sum(sent))
        np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-6)
        np.testing.assert_allclose(got.variance, expected.variance, rtol=1e-5)
        np.testing.assert_allclose(got.count, expected.count, rtol=1e-6)


def test_set_distribution_and_distribution():
    assert rk.distribution.distribution() is None
    with pytest.raises(TypeError, match="expected a DataParallel or None, received str"):
        rk.distribution.set_distribution("data_parallel")
    for bad in (0, -1.0, "10", True):
        with pytest.raises(ValueError, match="timeout: expected a positive number of seconds or None"):
            rk.distribution.DataParallel(timeout=bad)


def test_one_process_data_parallel_changes_nothing():
    def train(distributed):
        rk.utils.set_random_seed(0)
        model = _model()
        x, y = _data()
        rk.distribution.set_distribution(rk.distribution.DataParallel() if distributed else None)
        try:
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        finally:
            rk.distribution.set_distribution(None)
        return model.get_weights()

    data_parallel = rk.distribution.DataParallel()
    assert (data_parallel.num_processes, data_parallel.process_id) == (1, 0)
    for a, b in zip(train(False), train(True)):
        np.testing.assert_array_equal(a, b)


def test_mpiexec_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match=r"one of 2 started by mpiexec, but mpi4py cannot be imported.*rnnkit\[mpi\]"):
        rk.distribution.DataParallel()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert rk.distribution.DataParallel().num_processes == 1


# --- several processes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The scenario "train" on one plain process (the reference)."""
    _require_mpi()
    out = tmp_path_factory.mktemp("single")
    result, _ = _run("train", out)
    assert result.returncode == 0, result.stderr
    return np.load(out / "rank0.npz")


@pytest.mark.parametrize("processes", [2, 3])
def test_ranks_train_as_one_process_on_the_same_global_batches(processes, single_process, tmp_path):
    _require_mpi()
    result, _ = _run("train", tmp_path, processes)
    assert result.returncode == 0, result.stderr
    for rank in range(processes):
        ranked = np.load(tmp_path / f"rank{rank}.npz")
        assert sorted(ranked.files) == sorted(single_process.files)
        for key in single_process.files:
            # float32 sums over the ranks in another order than over one batch
            np.testing.assert_allclose(ranked[key], single_process[key], rtol=1e-5, atol=1e-5, err_msg=key)
    assert not (tmp_path / "backup").exists()
    # Only rank 0 writes: the CSV log, the checkpoints and model.save.
    assert sorted(p.name for p in (tmp_path / "files0").iterdir()) == [
        "ckpt-1.weights.h5",
        "ckpt-2.weights.h5",
        "log.csv",
        "model.keras",
    ]
    assert [
        p for p in tmp_path.iterdir() if p.name.startswith("files") and p.name != "files0" and any(p.iterdir())
    ] == []
    # Rank 0 alone prints the progress bar.
    assert result.stdout.count("Epoch 1/2") == 1


def test_a_failing_rank_stops_every_rank_with_its_error(tmp_path):
    _require_mpi()
    result, seconds = _run("fail", tmp_path, 3)
    assert result.returncode != 0
    # The ranks that did not fail name the one that did, and its message.
    assert result.stderr.count("DistributedError: rank 1 failed with ValueError: rank 1 fails on purpose") >= 1, (
        result.stderr
    )
    assert seconds < 20


def test_a_stuck_rank_ends_the_job_after_the_timeout(tmp_path):
    _require_mpi()
    result, seconds = _run("stuck", tmp_path, 2)
    assert result.returncode != 0
    assert "rank 0: the allreduce waited more than 1 s for the other ranks" in result.stderr, result.stderr
    assert seconds < 20  # rank 1 sleeps 60 s: the abort ended it


def test_datasets_of_unequal_lengths_stop_every_rank_with_an_error(tmp_path):
    _require_mpi()
    result, seconds = _run("uneven", tmp_path, 2)
    assert result.returncode != 0
    for rank, mine in ((0, "a batch of 8 rows"), (1, "no batch")):
        message = f"expected as many batches from every process's iterable, received at batch 5 {mine} on rank {rank}"
        assert f"{message}, a batch on 1 of the 2 processes, 8 rows in all." in result.stderr, result.stderr
    assert seconds < 20


def test_iterables_giving_different_batches_stop_every_rank_with_an_error(tmp_path):
    _require_mpi()
    result, _ = _run("differing", tmp_path, 2)
    assert result.returncode != 0
    for rank, rows in ((0, 16), (1, 8)):
        message = f"expected the same batches from every process's iterable, received at batch 1 a batch of {rows} rows"
        assert f"{message} on rank {rank}, a batch on 2 of the 2 processes, 24 rows in all." in result.stderr


def test_ctrl_c_stops_every_rank(tmp_path):
    _require_mpi()
    command = [_mpiexec(), "-n", "2", sys.executable, str(HERE), "endless", str(tmp_path)]
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert job.stdout.readline().strip() == "training"  # rank 0 is in its first step
        job.send_signal(signal.SIGINT)  # mpiexec passes Ctrl-C on to the ranks
        _, stderr = job.communicate(timeout=20)
    finally:
        job.kill()
    assert job.returncode != 0
    assert stderr.count("KeyboardInterrupt") >= 1, stderr


def test_the_example_prints_the_same_checksum_on_one_and_two_processes():
    _require_mpi()
    example = HERE.parent.parent / "examples" / "distributed_mnist.py"
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    lines = []
    for prefix in ([], [_mpiexec(), "-n", "2"]):
        result = subprocess.run(
            [*prefix, sys.executable, str(example)], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
        lines.append(result.stdout.strip().splitlines()[-1])
    assert lines[0].startswith("processes: 1 ") and lines[1].startswith("processes: 2 ")
    checksums = [float(line.split("checksum: ")[1]) for line in lines]
    assert checksums[1] == pytest.approx(checksums[0], rel=1e-5)
    accuracies = [float(line.split("accuracy: ")[1].split()[0]) for line in lines]
    assert accuracies[1] == pytest.approx(accuracies[0], abs=0.01) and accuracies[0] > 0.7
    assert result.stdout.count("Epoch 1/20") == 1  # rank 0 alone prints


# --- the ranks' program -------------------------------------------------------------------------


def _model():
    """The guide's MNIST model, smaller: LSTM -> BatchNormalization -> Dense."""
    model = rk.Sequential([rk.Input((28, 28)), rk.layers.LSTM(16), rk.layers.BatchNormalization(), rk.layers.Dense(10)])
    model.compile(
        loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="adam", metrics=["accuracy"]
    )
    return model


def _data(samples=98, seed=1):
    """98 samples: batches of 16 end with 2, so 3 ranks get 1, 1 and 0 rows of the last one."""
    generator = np.random.default_rng(seed)
    return generator.normal(size=(samples, 28, 28)).astype("float32"), generator.integers(0, 10, samples)


def _own_rows(x, y, data_parallel, batches=None):
    """A dataset of this rank's rows of each global batch of 16 (a PyDataset-style object, read
    again each epoch); `batches` cuts it short."""

    class OwnRows:
        def __len__(self):
            return len(range(0, len(x), 16)) if batches is None else batches

        def __getitem__(self, index):
            start = 16 * index
            a, b = shard_bounds(min(16, len(x) - start), data_parallel.process_id, data_parallel.num_processes)
            return x[start + a : start + b], y[start + a : start + b]

    return OwnRows()


def _masked_data(samples=98, steps=12, seed=2):
    """Token sequences right-padded with zeros (lengths 3 to 12) and a class per step."""
    generator = np.random.default_rng(seed)
    tokens = generator.integers(1, 21, (samples, steps))
    tokens[np.arange(steps) >= generator.integers(3, steps + 1, (samples, 1))] = 0
    return tokens, generator.integers(0, 5, (samples, steps))


def _masked_model():
    """A per-step classifier whose loss averages over the unmasked steps of the batch."""
    model = rk.Sequential(
        [
            rk.Input((12,)),
            rk.layers.Embedding(21, 8, mask_zero=True),
            rk.layers.LSTM(8, return_sequences=True),
            rk.layers.Dense(5),
        ]
    )
    model.compile(loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd", metrics=["accuracy"])
    return model


def _summed_model():
    """A linear classifier whose loss is summed over the batch."""
    model = rk.Sequential([rk.Input((28, 28)), rk.layers.Flatten(), rk.layers.Dense(10)])
    loss = rk.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    model.compile(loss=loss, optimizer=rk.optimizers.SGD(learning_rate=1e-3))
    return model


def _train(out):
    """Trains on arrays (shuffled, with validation and file-writing callbacks), then on a
    generator, then evaluates and predicts; writes each rank's results to `out/rank{r}.npz`."""
    data_parallel = rk.distribution.DataParallel(timeout=30)
    rk.distribution.set_distribution(data_parallel)
    rank = data_parallel.process_id
    # Different seeds on each rank: rank 0's weights and shuffles must win.
    rk.utils.set_random_seed(rank)
    np.random.seed(rank)
    random.seed(rank)  # shuffles a PyDataset's batches
    model = _model()
    x, y = _data()
    files = out / f"files{rank}"
    files.mkdir()
    callbacks = [
        rk.callbacks.BackupAndRestore(str(out / "backup"), save_freq=2),  # rank 0 writes, then deletes it
        rk.callbacks.CSVLogger(str(files / "log.csv")),
        rk.callbacks.ModelCheckpoint(str(files / "ckpt-{epoch}.weights.h5"), save_weights_only=True),
    ]
    history = model.fit(
        x[:80], y[:80], batch_size=16, epochs=2, validation_data=(x[80:], y[80:]), callbacks=callbacks, verbose=2
    )
    # A rank's optimizer state gone astray is replaced by rank 0's at the next fit.
    if rank != 0:
        for variable in model.optimizer.variables[2:]:
            variable.assign(np.ones(variable.shape, variable.dtype))

    def batches():
        for start in range(0, 98, 24):
            yield x[start : start + 24], y[start : start + 24]

    later = model.fit(batches(), epochs=1, verbose=0)
    model.save(str(files / "model.keras"))
    evaluated = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    predicted = model.predict(x, batch_size=32, verbose=0)
    # One global batch of 10 rows: 5 and 5 rows on 2 ranks, 4, 3 and 3 on 3.
    on_batch = [model.train_on_batch(x[:10], y[:10]), model.test_on_batch(x[10:20], y[10:20])]
    results = {f"weight{i}": w for i, w in enumerate(model.get_weights())}
    # A model built by its first batch: rank 0's weights are broadcast once it is.
    unbuilt = rk.Sequential([rk.layers.GRU(8), rk.layers.Dense(10)])
    unbuilt.compile(loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd")
    unbuilt.fit(x[:40], y[:40], batch_size=16, epochs=2, verbose=0)
    results.update({f"unbuilt{i}": w for i, w in enumerate(unbuilt.get_weights())})
    # Each rank reading its own rows of every global batch (auto_shard_dataset=False).
    rk.distribution.set_distribution(rk.distribution.DataParallel(timeout=30, auto_shard_dataset=False))
    own = _model()
    own.fit(_own_rows(x, y, data_parallel), epochs=2, verbose=0)
    results.update({f"own{i}": w for i, w in enumerate(own.get_weights())})
    # Losses whose divisor is not the rows: a mean over unmasked steps, and a sum.
    for name, model_of_loss in (("masked", _masked_model()), ("summed", _summed_model())):
        inputs, targets = _masked_data() if name == "masked" else (x, y)
        fitted = model_of_loss.fit(inputs, targets, batch_size=16, epochs=1, shuffle=False, verbose=0)
        results.update({f"{name}{i}": w for i, w in enumerate(model_of_loss.get_weights())})
        results.update({f"{name}_{k}": np.array(v) for k, v in fitted.history.items()})
        results[f"{name}_evaluate"] = np.array(model_of_loss.evaluate(inputs, targets, batch_size=16, verbose=0))
    results["on_batch"] = np.array(on_batch)
    results.update({f"history_{k}": np.array(v) for k, v in {**history.history, **later.history}.items()})
    results.update({f"evaluate_{k}": np.array(v) for k, v in evaluated.items()})
    np.savez(out / f"rank{rank}.npz", predicted=predicted, **results)


def _fail(out):
    """Rank 1 raises in its third training step; the others must stop with its error."""
    rk.distribution.set_distribution(rk.distribution.DataParallel(timeout=60))
    rank = rk.distribution.distribution().process_id

    def fail(batch, logs):
        if rank == 1 and batch == 2:
            raise ValueError("rank 1 fails on purpose")

    x, y = _data()
    _model().fit(x, y, batch_size=16, epochs=50, verbose=0, callbacks=[rk.callbacks.LambdaCallback(on_batch_end=fail)])


def _stuck(out):
    """Rank 1 sleeps a minute in its second step; with a 1 s timeout the job ends long before."""
    rk.distribution.set_distribution(rk.distribution.DataParallel(timeout=1))
    rank = rk.distribution.distribution().process_id

    def sleep(batch, logs):
        if rank == 1 and batch == 1:
            time.sleep(60)

    x, y = _data()
    _model().fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[rk.callbacks.LambdaCallback(on_batch_end=sleep)])


def _uneven(out):
    """Rank 1's dataset has one batch fewer than rank 0's: both stop with an error saying so."""
    data_parallel = rk.distribution.DataParallel(timeout=30, auto_shard_dataset=False)
    rk.distribution.set_distribution(data_parallel)
    x, y = _data()
    _model().fit(_own_rows(x, y, data_parallel, 4 if data_parallel.process_id == 1 else 5), verbose=0)


def _differing(out):
    """Rank 1's generator gives batches of 8 where rank 0's give 16: both stop with an error."""
    data_parallel = rk.distribution.DataParallel(timeout=30)
    rk.distribution.set_distribution(data_parallel)
    x, y = _data()
    size = 8 if data_parallel.process_id == 1 else 16
    _model().fit(((x[i : i + size], y[i : i + size]) for i in range(0, 96, size)), verbose=0)


def _endless(out):
    """Trains until interrupted; rank 0 says when it started."""
    rk.distribution.set_distribution(rk.distribution.DataParallel(timeout=60))
    rank = rk.distribution.distribution().process_id

    def started(batch, logs):
        if rank == 0 and batch == 0:
            print("training", flush=True)

    x, y = _data()
    callback = rk.callbacks.LambdaCallback(on_batch_begin=started)
    _model().fit(x, y, batch_size=16, epochs=10**6, verbose=0, callbacks=[callback])


if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    {"train": _train, "fail": _fail, "stuck": _stuck, "uneven": _uneven, "differing": _differing, "endless": _endless}[
        scenario
    ](out)
