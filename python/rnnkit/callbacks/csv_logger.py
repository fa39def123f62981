"""`CSVLogger`, which writes each epoch's logs as a row of a CSV file."""

import csv
import os

from rnnkit.callbacks.callback import Callback


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file: `epoch`, then the first epoch's keys sorted, and
    `val_` columns for them (written "NA") when the first epoch had no validation, as Keras.

    Args:
        filename: The file.
        separator: The field separator.
        append: Append to an existing file (its header is not written again) instead of overwriting.
    """

    chief_only = True  # one process prints or writes in data-parallel training

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
