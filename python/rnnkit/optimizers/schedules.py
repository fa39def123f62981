"""Learning-rate schedules with Keras 3's names, arguments and configs.

A schedule maps the optimizer's step (its `iterations` before the update) to a learning rate. As in
Keras, rates are computed in float32, the dtype Keras gives a Python float.
"""

import math

import numpy as np

from rnnkit._registry import Registry

__all__ = ["CosineDecay", "ExponentialDecay", "LearningRateSchedule", "deserialize", "serialize"]


def _float32(value):
    return np.float32(np.asarray(value))


def _check_decay_steps(decay_steps):
    if decay_steps <= 0:
        raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")


class LearningRateSchedule:
    """Base class: a schedule is called with the step and returns the learning rate."""

    def __call__(self, step):
        """Returns the learning rate at `step` (a float32 numpy scalar); subclasses implement it."""
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in order to be serializable."
        )

    @classmethod
    def from_config(cls, config):
        """Creates a schedule from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments.

        Returns:
            A new schedule.
        """
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`.

    Args:
        initial_learning_rate: The rate at step 0.
        decay_steps: Positive; the rate is multiplied by `decay_rate` every `decay_steps` steps.
        decay_rate: The decay factor.
        staircase: Whether `step / decay_steps` is rounded down, so the rate drops in steps.
        name: The schedule's name.

    Raises:
        ValueError: If `decay_steps` is not positive.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        progress = _float32(step) / _float32(self.decay_steps)
        if self.staircase:
            progress = np.floor(progress)
        return _float32(self.initial_learning_rate) * _float32(self.decay_rate) ** progress

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay (SGDR, Loshchilov & Hutter 2017) after an optional linear warmup.

    Without `warmup_target`, the rate falls from `initial_learning_rate` along a half cosine to
    `alpha * initial_learning_rate` at `decay_steps` and stays there. With it, the rate first
    rises linearly from `initial_learning_rate` to `warmup_target` over `warmup_steps`, then decays
    from `warmup_target` over the next `decay_steps`.

    Args:
        initial_learning_rate: The rate at step 0.
        decay_steps: Positive; the length of the decay.
        alpha: The final rate as a fraction of the rate the decay starts from.
        name: The schedule's name.
        warmup_target: Optional rate reached at the end of the warmup.
        warmup_steps: The length of the warmup.

    Raises:
        ValueError: If `decay_steps` is not positive.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, decay_steps, decay_from):
        cosine = 0.5 * (1.0 + np.cos(np.float32(math.pi) * (step / decay_steps)))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        initial, decay_steps, step = map(_float32, (self.initial_learning_rate, self.decay_steps, step))
        if self.warmup_target is None:
            return self._decay(np.minimum(step, decay_steps), decay_steps, initial)
        target, warmup_steps = _float32(self.warmup_target), _float32(self.warmup_steps)
        step = np.minimum(step, decay_steps + warmup_steps)
        if step < warmup_steps:
            return (target - initial) * (step / warmup_steps) + initial
        return self._decay(step - warmup_steps, decay_steps, target)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


_registry = Registry(
    "learning rate schedule",
    "keras.optimizers.schedules",
    [LearningRateSchedule, ExponentialDecay, CosineDecay],
)


def serialize(learning_rate_schedule):
    """Returns a schedule's config as Keras writes it.

    Args:
        learning_rate_schedule: A LearningRateSchedule.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(learning_rate_schedule)


def deserialize(config):
    """Creates a schedule from a config written by `serialize` (or Keras).

    Args:
        config: A dict with "class_name" and "config".

    Returns:
        A new LearningRateSchedule.

    Raises:
        ValueError: If the class name is unknown.
    """
    return _registry.deserialize(config)
