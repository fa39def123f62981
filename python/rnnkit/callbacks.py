"""Callbacks for `Model.fit`, `evaluate` and `predict`, with Keras's names, arguments, hooks and log keys."""

import csv
import json
import math
import numbers
import os
import shutil
import sys
import time
import warnings

import numpy as np


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.params` (`verbose`,
    `epochs`, `steps`) are set by `fit`, `evaluate` and `predict`.

    `on_train_batch_begin/end` call `on_batch_begin/end`, their older names, unless overridden.
    Batch logs hold the running means of the epoch so far; epoch logs the epoch's values, with
    `val_` entries after validation.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


class CallbackList(Callback):
    """Calls every callback's hook in order, always passing `logs` (as Keras does, so
    `LambdaCallback(on_epoch_begin=lambda epoch, logs: ...)` works).

    Args:
        callbacks: A list of `Callback`s.
        add_history: Append a `History` unless the list has one (it becomes `model.history`).
        add_progbar: Append a `ProgbarLogger` unless the list has one.
        model: The model the callbacks watch.
        **params: Passed to every callback's `set_params` (`verbose`, `epochs`, `steps`).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise ValueError(f"callbacks: expected Callback instances, received {type(callback).__name__}.")
        history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if history is None and add_history:
            history = History()
            self.callbacks.append(history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            if history is not None:
                model.history = history
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)


class History(Callback):
    """Records each epoch's logs: `history.history["loss"]` is the list of epoch losses.

    `fit` adds one and returns it (it is also `model.history`); `epoch` lists the epochs run.
    """

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"<rnnkit.callbacks.History at {id(self):#x}>"


class ProgbarLogger(Callback):
    """Keras's progress bar: `938/938 [====] - 6s 5ms/step - loss: ... - accuracy: ...`.

    With `verbose=1` on a terminal the bar is redrawn in place; otherwise (and with `verbose=2`)
    one line is printed per epoch. An input of unknown length counts its steps (`12/Unknown`)
    and knows the count from the end of its first epoch on. Validation inside `fit` is silent.

    Args:
        stream: Where to write (default: `sys.stdout`).
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdout
        self.target = None
        self.seen = 0
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        self.target = params.get("steps")
        self.verbose = params.get("verbose", 1)

    def _start(self):
        self.seen = 0
        self._began = time.perf_counter()
        self._last_draw = 0.0

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._start()
        if self.params.get("epochs", 1) > 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
            self.stream.flush()

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._start()

    def on_predict_begin(self, logs=None):
        self._start()

    def _line(self, logs, final):
        width = 30
        if self.target:
            done = int(width * self.seen / self.target)
            bar = "=" * done if self.seen >= self.target else "=" * max(done - 1, 0) + ">"
            head = f"{self.seen:>{len(str(self.target))}}/{self.target} [{bar[:width].ljust(width, '.')}]"
        else:
            head = f"{self.seen}/Unknown"
        elapsed = time.perf_counter() - self._began
        per_step = elapsed / max(self.seen, 1)
        if final:
            timing = f" - {elapsed:.0f}s {per_step * 1e3:.0f}ms/step"
        else:
            timing = (
                f" - ETA: {per_step * max(self.target - self.seen, 0):.0f}s" if self.target else f" - {elapsed:.0f}s"
            )
        values = "".join(f" - {k}: {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, numbers.Real))
        return head + timing + values

    def _update(self, batch, logs):
        self.seen = batch + 1
        if self.verbose != 1 or not self.stream.isatty():
            return
        now = time.perf_counter()
        if now - self._last_draw > 0.05:
            self._last_draw = now
            self.stream.write("\r" + self._line(logs, final=False))
            self.stream.flush()

    def _finish(self, logs):
        if self.target is None:
            self.target = self.seen
        self.seen = self.target
        prefix = "\r" if self.verbose == 1 and self.stream.isatty() else ""
        self.stream.write(prefix + self._line(logs, final=True) + "\n")
        self.stream.flush()

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finish(logs)

    def on_predict_end(self, logs=None):
        self._finish(None)


# Words in a metric's name that say which way is better, for `mode="auto"`.
_RISING = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "cosine_similarity", "true_")
_FALLING = (
    "loss",
    "error",
    "crossentropy",
    "hinge",
    "poisson",
    "divergence",
    "logcosh",
    "mse",
    "mae",
    "mape",
    "msle",
    "false_",
)


def _direction(monitor):
    """Whether a monitored log key improves upwards ("max") or downwards ("min"), from its name.

    As Keras's metrics declare it.
    """
    name = monitor.removeprefix("val_")
    if any(word in name for word in _RISING):
        return "max"
    if any(word in name for word in _FALLING):
        return "min"
    raise ValueError(
        f"mode: 'auto' cannot tell whether monitor={monitor!r} should be maximized or minimized; "
        "pass mode='max' or mode='min'."
    )


class MonitorCallback(Callback):
    """Base of the callbacks that watch one logged quantity for improvement.

    Args:
        monitor: The log key watched, e.g. "val_loss".
        mode: "min", "max", or "auto" (from the name: losses and errors fall, accuracies rise).
        baseline: The value to beat first, or None.
        min_delta: The smallest change that counts as an improvement.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', received {mode!r}.")
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self.mode == "auto":  # resolved on first use, so a monitor never compared never fails
            self.mode = _direction(self.monitor)
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def _monitored(self, logs):
        """The monitored value in `logs`, or None with a warning naming the keys there are."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not in the logs. "
                f"Available metrics are: {','.join(logs or {})}",
                stacklevel=3,
            )
        return value


class EarlyStopping(MonitorCallback):
    """Stops training when `monitor` has not improved for `patience` epochs.

    Args:
        monitor: The log key watched.
        min_delta: The smallest change that counts as an improvement.
        patience: Epochs without improvement after which training stops.
        verbose: 1 prints when training stops and when weights are restored.
        mode: "min", "max" or "auto".
        baseline: A value to reach: the wait restarts only on epochs that beat it.
        restore_best_weights: At the end, set the weights of the best epoch.
        start_from_epoch: Epochs of warm-up before any epoch is watched.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = self._monitored(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class _BatchCounter:
    """Counts the batches seen towards a save every `every` batches (across epochs)."""

    def __init__(self, every):
        self.every = every
        self.since_save = 0

    def due(self):
        self.since_save += 1
        if self.since_save >= self.every:
            self.since_save = 0
            return True
        return False


def _batch_counter(save_freq):
    if save_freq != "epoch" and not (isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0):
        raise ValueError(f"save_freq: expected 'epoch' or a positive integer (batches), received {save_freq!r}.")
    return None if save_freq == "epoch" else _BatchCounter(save_freq)


class ModelCheckpoint(MonitorCallback):
    """Saves the model (or its weights) at the end of each epoch or every `save_freq` batches.

    Args:
        filepath: Where to save; may hold format fields filled from the epoch (1-based), the
            batch (1-based, when saving by batches) and the logs, e.g.
            `"ckpt/model-{epoch:02d}-{val_loss:.2f}.keras"`. Missing folders are created.
        monitor: The log key compared when `save_best_only`.
        verbose: 1 prints a line per save.
        save_best_only: Save only when `monitor` improves on the best value so far.
        save_weights_only: `model.save_weights` instead of `model.save`.
        mode: "min", "max" or "auto".
        save_freq: "epoch", or an integer: save every that many batches.
        initial_value_threshold: The value `monitor` must beat for the first save.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self._batches = _batch_counter(save_freq)
        self.save_freq = save_freq
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._batches is not None and self._batches.due():
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._batches is None:
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs):
        fields = dict(logs or {})
        if batch is not None:
            fields.setdefault("batch", batch + 1)
        try:
            return self.filepath.format(epoch=epoch + 1, **fields)
        except KeyError as error:
            raise KeyError(
                f"filepath: the field {error} of {self.filepath!r} is not in the logs ({', '.join(fields)})."
            ) from None

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if self.save_best_only:
            value = (logs or {}).get(self.monitor)
            if value is None:
                warnings.warn(
                    f"ModelCheckpoint can save the best model only with {self.monitor} in the logs; saving anyway.",
                    stacklevel=3,
                )
            elif not self._is_improvement(value, self.best):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            else:
                if self.verbose > 0:
                    best = "None" if self.best is None else f"{self.best:.5f}"
                    print(
                        f"Epoch {epoch + 1}: {self.monitor} improved from {best} to {value:.5f}, saving model to {path}"
                    )
                self.best = value
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(f"filepath: expected a file path, received an existing directory: {path}")
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at each epoch's start to `schedule(epoch, lr)`.

    Args:
        schedule: A function of the epoch (0-based) and the current learning rate (or of the
            epoch alone) returning the new learning rate.
        verbose: 1 prints each new learning rate.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # a schedule of the epoch alone
            lr = self.schedule(epoch)
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool):
            raise ValueError(f"schedule: expected a function returning a float, received {lr!r} for epoch {epoch}.")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by `factor` when `monitor` stops improving for `patience` epochs.

    Args:
        monitor: The log key watched.
        factor: The multiplier, below 1.
        patience: Epochs without improvement before a reduction.
        verbose: 1 prints each reduction.
        mode: "min", "max" or "auto".
        min_delta: The smallest change that counts as an improvement.
        cooldown: Epochs after a reduction during which the wait does not count.
        min_lr: The learning rate is never reduced below this.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        if factor >= 1.0:
            raise ValueError(
                "factor: expected a float below 1.0 (ReduceLROnPlateau does not support a factor >= 1.0), received "
                f"{factor}."
            )
        super().__init__(monitor, mode, min_delta=min_delta)
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        value = self._monitored(logs)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(value, self.best):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file: `epoch`, then the first epoch's keys sorted, and
    `val_` columns for them (written "NA") when the first epoch had no validation, as Keras.

    Args:
        filename: The file.
        separator: The field separator.
        append: Append to an existing file (its header is not written again) instead of overwriting.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file = self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        has_header = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        if self._file is not None:
            self._file.close()
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._write_header = not has_header
        self._writer = self._keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            if not any(key.startswith("val_") for key in self._keys):
                self._keys += [f"val_{key}" for key in self._keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self._keys], delimiter=self.separator)
            if self._write_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._writer = None


class TerminateOnNaN(Callback):
    """Stops training as soon as a training batch's loss is NaN or infinite.

    Args:
        raise_error: Raise a `RuntimeError` instead of stopping quietly after the batch.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


# The hooks a `LambdaCallback` can be given, `on_batch_*` being the older names of `on_train_batch_*`.
_HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """A callback made of functions, one per hook: `on_epoch_end=lambda epoch, logs: ...`.

    Args:
        on_epoch_begin: Function of `(epoch, logs)` called when an epoch starts.
        on_epoch_end: Function of `(epoch, logs)` called when an epoch ends.
        on_train_begin: Function of `(logs)` called when training starts.
        on_train_end: Function of `(logs)` called when training ends.
        on_train_batch_begin: Function of `(batch, logs)` called before each training batch.
        on_train_batch_end: Function of `(batch, logs)` called after each training batch.
        **kwargs: Any other hook: `on_batch_begin/end`, `on_test_*`, `on_predict_*`.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hooks {unknown}; expected some of {list(_HOOKS)}.")
        hooks = dict(
            kwargs,
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
        )
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


class BackupAndRestore(Callback):
    """Backs up the weights and the epoch reached, so that a `fit` interrupted (killed, or
    stopped by an error) resumes, when run again with this callback, at the epoch it reached.

    Args:
        backup_dir: The folder of the backup (created when needed).
        save_freq: "epoch", or an integer: back up every that many batches too.
        double_checkpoint: Keep the previous backup as well, used when the latest is unreadable.
        delete_checkpoint: Delete the backup when training ends normally.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"backup_dir: expected a folder path, received {backup_dir!r}.")
        self._batches = _batch_counter(save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._epochs_done = 0

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                f"model: expected a built model for BackupAndRestore, received the unbuilt model {self.model.name!r}; "
                "build it first (give it an Input, or call it on a batch)."
            )
        try:
            self._restore("")
        except (OSError, ValueError, KeyError):
            if not (self.double_checkpoint and os.path.exists(self._weights_path + ".bkp")):
                raise
            self._restore(".bkp")

    def _restore(self, suffix):
        if os.path.exists(self._weights_path + suffix):
            self.model.load_weights(self._weights_path + suffix)
        if os.path.exists(self._metadata_path + suffix):
            with open(self._metadata_path + suffix) as f:
                self._epochs_done = json.load(f)["epoch"]
            self.model._initial_epoch = self._epochs_done

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_done = epoch + 1
        if self._batches is None:
            self._backup()

    def on_train_batch_end(self, batch, logs=None):
        if self._batches is not None and self._batches.due():
            self._backup()

    def _backup(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._weights_path, self._metadata_path):
                if os.path.exists(path):
                    shutil.copyfile(path, path + ".bkp")
        self.model.save_weights(self._weights_path)
        with open(self._metadata_path, "w") as f:
            json.dump({"epoch": self._epochs_done}, f)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)
