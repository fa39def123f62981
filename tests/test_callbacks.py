"""Callbacks compared with Keras 3's on the same data and weights: the hooks called and the logs
they get, which checkpoints are written, when training stops, the learning rates, the CSV
files, NaN termination, and resuming an interrupted fit."""

import csv
import json

import numpy as np
import pytest

import rnnkit as rk
from keras_training import assert_same_history, assert_same_weights, keras, model_pair, regression_data
from rnnkit import callbacks as cbks


def scripted(lib, values):
    """A callback writing `values[epoch]` as the "score" log, read by the callbacks after it."""
    return lib.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("score", values[epoch]))


def recorder(lib):
    """A callback recording each hook with its index and its logs' keys (or None)."""

    class Recorder(lib.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

    def hook(name):
        def record(self, *args, logs=None):  # Keras passes logs by position or by keyword
            index, rest = (args[:1], args[1:]) if "batch" in name or "epoch" in name else ((), args)
            logs = rest[0] if rest else logs
            self.calls.append((name, *index, sorted(logs) if logs else None))

        return record

    for name in (
        "on_train_begin",
        "on_train_end",
        "on_epoch_begin",
        "on_epoch_end",
        "on_test_begin",
        "on_test_end",
        "on_predict_begin",
        "on_predict_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_predict_batch_begin",
        "on_predict_batch_end",
    ):
        setattr(Recorder, name, hook(name))
    return Recorder()


def test_hooks_and_their_logs_match_keras():
    x, y = regression_data(n=20)
    runs = {}
    for name, model in zip(("ours", "keras"), model_pair(metrics=["mae"])):
        lib = rk if name == "ours" else keras
        callback = recorder(lib)
        batch_logs = []
        logger = lib.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs, batch_logs=batch_logs: batch_logs.append(dict(logs))
        )
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=(x[:10], y[:10]),
            callbacks=[callback, logger],
        )
        model.evaluate(x, y, batch_size=10, verbose=0, callbacks=[callback])
        model.predict(x, batch_size=16, verbose=0, callbacks=[callback])
        runs[name] = callback.calls, batch_logs
    assert runs["ours"][0] == runs["keras"][0]
    for ours, theirs in zip(runs["ours"][1], runs["keras"][1]):
        assert ours == pytest.approx(theirs, rel=1e-5)


def test_on_batch_aliases_see_training_batches_only():
    x, y = regression_data(n=20)
    seen = {}
    for name, model in zip(("ours", "keras"), model_pair()):
        lib = rk if name == "ours" else keras

        class Old(lib.callbacks.Callback):
            def on_batch_end(self, batch, logs=None, name=name):
                seen.setdefault(name, []).append(batch)

        model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y), callbacks=[Old()])
        model.evaluate(x, y, verbose=0, callbacks=[Old()])
    assert seen["ours"] == seen["keras"] == [0, 1, 2]


def test_history_is_model_history():
    x, y = regression_data(n=8)
    model, _ = model_pair()
    history = model.fit(x, y, epochs=2, verbose=0)
    assert model.history is history and history.epoch == [0, 1]
    with pytest.raises(ValueError, match=r"^callbacks: expected Callback instances, received function"):
        model.fit(x, y, verbose=0, callbacks=[lambda: None])


# --- ModelCheckpoint ------------------------------------------------------------------------------


def checkpoint_names(lib, model, folder, x, y, **kwargs):
    scores = [3.0, 1.0, 2.0, 0.5, 0.7]
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[
            scripted(lib, scores),
            lib.callbacks.ModelCheckpoint(str(folder / "deep" / "er" / kwargs.pop("name")), **kwargs),
        ],
    )
    return sorted(p.name for p in (folder / "deep" / "er").iterdir())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(name="w-{epoch:02d}-{score:.2f}.weights.h5", monitor="score", mode="min", save_best_only=True),
        dict(name="w-{epoch:02d}-{score:.2f}.weights.h5", monitor="score", mode="max", save_best_only=True),
        dict(name="w-{epoch}.weights.h5"),
        dict(name="w-{epoch}-{batch}.weights.h5", save_freq=3),
        dict(name="w-{epoch}-{batch}-{loss:.3f}.weights.h5", save_freq=4, monitor="loss", save_best_only=True),
    ],
)
def test_model_checkpoint_writes_the_files_keras_writes(tmp_path, kwargs):
    x, y = regression_data(n=40)
    ours, theirs = model_pair()
    names = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        names[name] = checkpoint_names(
            rk if name == "ours" else keras, model, tmp_path / name, x, y, save_weights_only=True, **dict(kwargs)
        )
    assert names["ours"] == names["keras"] and names["ours"]


def test_model_checkpoint_saves_a_loadable_best_model(tmp_path):
    x, y = regression_data(n=40)
    model, _ = model_pair()
    per_epoch = []
    path = tmp_path / "missing" / "folder" / "best.keras"
    model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            scripted(rk, [3.0, 1.0, 2.0, 4.0]),
            cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: per_epoch.append(model.get_weights())),
            cbks.ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True),
        ],
    )
    for got, want in zip(rk.models.load_model(path).get_weights(), per_epoch[1]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(
        ValueError, match=r"^save_freq: expected 'epoch' or a positive integer \(batches\), received 'batch'"
    ):
        cbks.ModelCheckpoint(path, save_freq="batch")


# --- EarlyStopping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, scores",
    [
        (dict(patience=2), [3.0, 1.0, 2.0, 4.0, 0.5, 0.1, 0.1, 0.1]),
        (dict(patience=1, min_delta=0.5), [3.0, 2.7, 2.0, 1.8, 1.7, 1.0, 0.9, 0.8]),
        (dict(patience=2, baseline=1.0), [3.0, 2.0, 1.5, 1.2, 0.9, 0.95, 0.97, 0.99]),
        (dict(patience=1, start_from_epoch=3), [1.0, 2.0, 3.0, 4.0, 3.0, 5.0, 6.0, 7.0]),
        (dict(patience=1, mode="max"), [1.0, 2.0, 3.0, 2.5, 2.0, 1.0, 1.0, 1.0]),
        (dict(patience=3, restore_best_weights=True), [3.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
        (dict(patience=1, restore_best_weights=True, start_from_epoch=2), [0.1, 0.2, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    ],
)
def test_early_stopping_matches_keras(kwargs, scores):
    x, y = regression_data(n=16)
    ours, theirs = model_pair()
    stoppers, histories = {}, {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        stoppers[name] = lib.callbacks.EarlyStopping(monitor="score", **{"mode": "min", **kwargs})
        histories[name] = model.fit(
            x, y, batch_size=8, epochs=8, shuffle=False, verbose=0, callbacks=[scripted(lib, scores), stoppers[name]]
        )
    assert_same_history(histories["ours"], histories["keras"])
    assert len(histories["ours"].epoch) < 8 or "baseline" in kwargs  # the scripts stop early
    for attribute in ("stopped_epoch", "best_epoch", "wait", "best"):
        assert getattr(stoppers["ours"], attribute) == getattr(stoppers["keras"], attribute), attribute
    assert_same_weights(ours, theirs)  # restored (or not) alike


def test_monitor_direction_from_the_name():
    x, y = regression_data(n=16)
    model, _ = model_pair(metrics=["mae"])
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[cbks.EarlyStopping("mae", patience=0)])
    assert len(history.epoch) == 3  # "mae" falls while it trains
    with pytest.raises(
        ValueError, match=r"^mode: 'auto' cannot tell whether monitor='score' should be maximized or minimized"
    ):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[scripted(rk, [1.0, 2.0]), cbks.EarlyStopping("score")])
    with pytest.raises(ValueError, match=r"^mode: expected 'auto', 'min' or 'max', received 'up'"):
        cbks.EarlyStopping(mode="up")


# --- learning rates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, scores",
    [
        (dict(factor=0.5, patience=2, min_lr=0.03), [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]),
        (dict(factor=0.5, patience=1, cooldown=2), [5.0, 5.0, 5.0, 5.0, 5.0, 4.0, 5.0, 5.0]),
        (dict(factor=0.1, patience=1, min_delta=0.5, mode="max"), [1.0, 1.2, 2.0, 2.1, 2.2, 3.0, 3.6, 3.7]),
    ],
)
def test_reduce_lr_on_plateau_matches_keras(kwargs, scores):
    x, y = regression_data(n=16)
    ours, theirs = model_pair()
    histories = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        callback = lib.callbacks.ReduceLROnPlateau(monitor="score", **{"mode": "min", **kwargs})
        histories[name] = model.fit(
            x, y, batch_size=8, epochs=8, shuffle=False, verbose=0, callbacks=[scripted(lib, scores), callback]
        )
    assert_same_history(histories["ours"], histories["keras"])
    assert len(set(histories["ours"].history["learning_rate"])) > 1
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize(
    "schedule",
    [
        lambda epoch, lr: lr * 0.5 if epoch else 0.2,
        lambda epoch: 0.0 if epoch == 1 else 0.1 / (epoch + 1),
    ],
)
def test_learning_rate_scheduler_matches_keras(schedule):
    x, y = regression_data(n=16)
    ours, theirs = model_pair()
    histories = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        histories[name] = model.fit(
            x,
            y,
            batch_size=8,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[lib.callbacks.LearningRateScheduler(schedule)],
        )
    assert_same_history(histories["ours"], histories["keras"])
    assert_same_weights(ours, theirs)
    with pytest.raises(
        ValueError, match=r"^schedule: expected a function returning a float, received '0.1' for epoch 0"
    ):
        ours.fit(x, y, verbose=0, callbacks=[cbks.LearningRateScheduler(lambda epoch: "0.1")])


# --- CSVLogger ------------------------------------------------------------------------------------


def read_csv(path, separator):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


@pytest.mark.parametrize("validate, separator", [(True, ","), (False, ";")])
def test_csv_logger_matches_keras(tmp_path, validate, separator):
    x, y = regression_data(n=24)
    ours, theirs = model_pair(metrics=["mae"])
    files = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        files[name] = tmp_path / f"{name}.csv"
        for append, epochs in ((False, 2), (True, 3)):  # the second run appends without a header
            model.fit(
                x,
                y,
                batch_size=8,
                epochs=epochs,
                shuffle=False,
                verbose=0,
                validation_data=(x[:8], y[:8]) if validate else None,
                callbacks=[lib.callbacks.CSVLogger(files[name], separator=separator, append=append)],
            )
    ours_rows, theirs_rows = read_csv(files["ours"], separator), read_csv(files["keras"], separator)
    assert len(ours_rows) == len(theirs_rows) == 6
    assert ours_rows[0] == theirs_rows[0]  # the header
    for a, b in zip(ours_rows[1:], theirs_rows[1:]):
        assert a[0] == b[0] and [v == "NA" for v in a] == [v == "NA" for v in b]
        assert [float(v) for v in a[1:] if v != "NA"] == pytest.approx([float(v) for v in b[1:] if v != "NA"], rel=1e-5)


# --- TerminateOnNaN -------------------------------------------------------------------------------


def test_terminate_on_nan_matches_keras(capsys):
    x, y = regression_data(n=40)
    x[13] = np.nan  # in the second batch of 8
    ours, theirs = model_pair()
    seen = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        seen[name] = []
        history = model.fit(
            x,
            y,
            epochs=3,
            batch_size=8,
            shuffle=False,
            verbose=0,
            callbacks=[
                lib.callbacks.LambdaCallback(
                    on_train_batch_end=lambda batch, logs, name=name: seen[name].append(batch)
                ),
                lib.callbacks.TerminateOnNaN(),
            ],
        )
        seen[name].append(history.epoch)
    assert seen["ours"] == seen["keras"] == [0, 1, [0]]
    assert capsys.readouterr().out.count("Batch 1: Invalid loss, terminating training") == 2
    fresh, _ = model_pair()
    with pytest.raises(RuntimeError, match=r"^NaN or Inf loss encountered at batch 1"):
        fresh.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[cbks.TerminateOnNaN(raise_error=True)])


# --- LambdaCallback -------------------------------------------------------------------------------


def test_lambda_callback_takes_every_hook():
    x, y = regression_data(n=16)
    model, _ = model_pair()
    calls = []
    callback = cbks.LambdaCallback(
        on_test_batch_end=lambda batch, logs: calls.append(("test", batch)),
        on_predict_end=lambda logs: calls.append(("predict_end",)),
        on_batch_begin=lambda batch, logs: calls.append(("train", batch)),
    )
    model.fit(x, y, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[callback])
    model.predict(x, verbose=0, callbacks=[callback])
    assert calls == [("train", 0), ("train", 1), ("test", 0), ("test", 1), ("predict_end",)]
    with pytest.raises(TypeError, match=r"^LambdaCallback: unknown hooks \['on_nothing'\]"):
        cbks.LambdaCallback(on_nothing=print)


# --- BackupAndRestore -----------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def interrupted_then_resumed(lib, model, backup_dir, x, y, save_freq="epoch"):
    def fail_at_epoch_2(epoch, logs):
        if epoch == 2:
            raise Interrupt

    backup = lib.callbacks.BackupAndRestore(str(backup_dir), save_freq=save_freq)
    with pytest.raises(Interrupt):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=5,
            shuffle=False,
            verbose=0,
            callbacks=[backup, lib.callbacks.LambdaCallback(on_epoch_begin=fail_at_epoch_2)],
        )
    metadata = json.loads((backup_dir / "training_metadata.json").read_text())
    history = model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0, callbacks=[backup])
    return metadata["epoch"], history


@pytest.mark.parametrize("save_freq", ["epoch", 3])
def test_backup_and_restore_resumes_as_keras(tmp_path, save_freq):
    x, y = regression_data(n=24)
    ours, theirs = model_pair()
    resumed = {}
    for name, model in (("ours", ours), ("keras", theirs)):
        lib = rk if name == "ours" else keras
        resumed[name] = interrupted_then_resumed(lib, model, tmp_path / name, x, y, save_freq)
        assert not (tmp_path / name).exists()  # deleted when training ends normally
    # By epochs, the backup is of the 2 epochs done; by batches, of the last save, inside epoch 1.
    start = 2 if save_freq == "epoch" else 1
    assert resumed["ours"][0] == resumed["keras"][0] == start
    assert_same_history(resumed["ours"][1], resumed["keras"][1])
    assert resumed["ours"][1].epoch == list(range(start, 5))
    assert_same_weights(ours, theirs)
    if save_freq == "epoch":  # the resumed run ends where an uninterrupted one does
        straight, _ = model_pair()
        straight.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)
        assert_same_weights(ours, straight)
    unbuilt = rk.Sequential([rk.layers.Dense(1)])
    unbuilt.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"^model: expected a built model for BackupAndRestore"):
        unbuilt.fit(x, y, verbose=0, callbacks=[cbks.BackupAndRestore(tmp_path / "unbuilt")])
