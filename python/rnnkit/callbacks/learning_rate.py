"""Callbacks that set the learning rate: `LearningRateScheduler` and `ReduceLROnPlateau`."""

import numbers

import numpy as np

from rnnkit.callbacks.callback import Callback
from rnnkit.callbacks.monitor import MonitorCallback


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
