"""`BackupAndRestore`, which resumes interrupted training from a backup."""

import json
import os
import shutil

from rnnkit.callbacks.callback import Callback
from rnnkit.callbacks.model_checkpoint import _batch_counter
from rnnkit.distribution.state import is_chief


class BackupAndRestore(Callback):
    """Backs up the weights and the epoch reached, so that a `fit` interrupted (killed, or
    stopped by an error) resumes, when run again with this callback, at the epoch it reached.

    Args:
        backup_dir: The folder of the backup (created when needed).
        save_freq: "epoch", or an integer: back up every that many batches too.
        double_checkpoint: Keep the previous backup as well, used when the latest is unreadable.
        delete_checkpoint: Delete the backup when training ends normally.

    In data-parallel training rank 0 writes and deletes the backup and every rank restores from
    it, so its folder must be on a filesystem every process sees.
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

    def on_epoch_begin(self, epoch, logs=None):
        if self._batches is not None:
            self._batches.start_epoch()

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_done = epoch + 1
        if self._batches is None:
            self._backup()

    def on_train_batch_end(self, batch, logs=None):
        if self._batches is not None and self._batches.due(batch):
            self._backup()

    def _backup(self):
        if not is_chief():  # in data-parallel training, rank 0 writes; every rank restores
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._weights_path, self._metadata_path):
                if os.path.exists(path):
                    shutil.copyfile(path, path + ".bkp")
        self.model.save_weights(self._weights_path)
        with open(self._metadata_path, "w") as f:
            json.dump({"epoch": self._epochs_done}, f)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and is_chief() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)
