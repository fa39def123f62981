"""`ProgbarLogger`, Keras's progress bar for `fit`, `evaluate` and `predict`."""

import numbers
import sys
import time

from rnnkit.callbacks.callback import Callback


class ProgbarLogger(Callback):
    """Keras's progress bar: `938/938 [====] - 6s 5ms/step - loss: ... - accuracy: ...`.

    With `verbose=1` on a terminal the bar is redrawn in place; otherwise (and with `verbose=2`)
    one line is printed per epoch. An input of unknown length counts its steps (`12/Unknown`)
    and knows the count from the end of its first epoch on. Validation inside `fit` is silent.

    Args:
        stream: Where to write (default: `sys.stdout`).
    """

    chief_only = True  # one process prints or writes in data-parallel training

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
