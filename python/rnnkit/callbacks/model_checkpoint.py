"""`ModelCheckpoint`, which saves the model or its weights by epoch or every n batches."""

import os
import warnings

from rnnkit.callbacks.monitor import MonitorCallback


class _BatchCounter:
    """Counts the batches seen towards a save every `every` batches (across epochs), from the
    batch indices of `on_train_batch_end`, which step by `steps_per_execution`."""

    def __init__(self, every):
        self.every = every
        self.since_save = 0
        self.last = -1

    def start_epoch(self):
        """Batch indices start again at 0."""
        self.last = -1

    def due(self, batch):
        """Whether a save is due at the end of batch `batch` (an index within its epoch)."""
        self.since_save += batch - self.last
        self.last = batch
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

    chief_only = True  # one process prints or writes in data-parallel training

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
        if self._batches is not None:
            self._batches.start_epoch()

    def on_train_batch_end(self, batch, logs=None):
        if self._batches is not None and self._batches.due(batch):
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
