"""Progbar: Keras's text progress bar, for loops users write themselves."""

import sys
import time

import numpy as np

__all__ = ["Progbar"]


class Progbar:
    """Displays a progress bar: `32/100 [=====>......] - ETA: 2s - loss: 0.4321`.

    As in Keras 3, values passed to `update` are shown as given, except the stateless ones,
    which are averaged over the steps until the final update: the names in `stateless_metrics`,
    or every name not in `stateful_metrics` when that is given.

    Args:
        target: The total number of steps, or None when it is unknown.
        width: The width of the bar in characters.
        verbose: 0 for silence, 1 for a bar redrawn in place, 2 for one line when finished.
        interval: The minimum seconds between redraws.
        stateful_metrics: Names of values shown as given; all others are averaged.
        unit_name: What one step is called in the timing ("step", "sample", ...).
        stateless_metrics: Names of values averaged; all others are shown as given.

    Raises:
        ValueError: If both `stateful_metrics` and `stateless_metrics` are given.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        unit_name="step",
        stateless_metrics=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Progbar: stateful_metrics and stateless_metrics: expected at most one of them, received both"
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = None if stateful_metrics is None else set(stateful_metrics)
        self.stateless_metrics = set(stateless_metrics or ())
        self.unit_name = unit_name
        self._seen = 0
        self._sums = {}  # name -> [weighted sum, weight], or [value, 1] for stateful metrics
        self._start = time.time()
        self._last_draw = 0.0

    def update(self, current, values=None, finalize=None):
        """Moves the bar to step `current`.

        Args:
            current: The index of the current step.
            values: A list of `(name, value)` pairs to show.
            finalize: Whether this is the last update, by default `current >= target`.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or ():
            value = float(np.mean(value))
            if self.stateful_metrics is not None:
                averaged = name not in self.stateful_metrics
            else:
                averaged = name in self.stateless_metrics
            if averaged and not finalize:
                steps = max(current - self._seen, 1)
                total, weight = self._sums.get(name, [0.0, 0])
                self._sums[name] = [total + value * steps, weight + steps]
            else:
                self._sums[name] = [value, 1]
        self._seen = current
        now = time.time()
        if self.verbose == 1 and (finalize or now - self._last_draw >= self.interval):
            self._last_draw = now
            # On a terminal the bar is redrawn in place; elsewhere each draw is a line.
            in_place = sys.stdout.isatty()
            line = self._line(current, now, finalize)
            self._write(("\r" + line if in_place else line) + ("\n" if finalize or not in_place else ""))
        elif self.verbose == 2 and finalize:
            self._write(self._line(current, now, finalize=True, bar=False) + "\n")

    def add(self, n, values=None):
        """Advances the bar by `n` steps.

        Args:
            n: How many steps.
            values: A list of `(name, value)` pairs to show.
        """
        self.update(self._seen + n, values)

    def _line(self, current, now, finalize, bar=True):
        parts = []
        if self.target is None:
            parts.append(f"{current:7d}/Unknown")
        elif bar:
            digits = len(str(self.target))
            done = int(self.width * min(current / self.target, 1))
            arrow = "=" * done if current >= self.target else "=" * max(done - 1, 0) + ">"
            parts.append(f"{current:{digits}d}/{self.target} [{arrow.ljust(self.width, '.')}]")
        else:
            parts.append(f"{current}/{self.target}")
        elapsed = now - self._start
        per_step = elapsed / current if current else 0.0
        if finalize:
            timing = f"{_per_unit(per_step)}/{self.unit_name}"
            parts += [f"{elapsed:.0f}s {timing}"] if bar else [f"{elapsed:.0f}s", timing]
        elif self.target is not None:
            parts.append(f"ETA: {per_step * (self.target - current):.0f}s")
        for name, (total, weight) in self._sums.items():
            value = total / weight
            parts.append(f"{name}: {value:.4f}" if abs(value) > 1e-3 else f"{name}: {value:.4e}")
        return " - ".join(parts)

    @staticmethod
    def _write(text):
        sys.stdout.write(text)
        sys.stdout.flush()


def _per_unit(seconds):
    """A duration in s, ms or us, as Keras shows time per step."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}us"
