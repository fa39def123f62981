"""`MonitorCallback`, the base of callbacks that watch a logged quantity improve."""

import warnings

from rnnkit.callbacks.callback import Callback

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
