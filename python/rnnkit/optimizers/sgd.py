"""Stochastic gradient descent, with optional (Nesterov) momentum."""

import numpy as np

from rnnkit.optimizers.optimizer import Optimizer
from rnnkit.tensor import wrap

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent: `w -= learning_rate * g`, or with momentum
    `m = momentum * m - learning_rate * g; w += m` (Nesterov: `w += momentum * m - learning_rate * g`).

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        momentum: In [0, 1].
        nesterov: Whether to use Nesterov momentum.
        **kwargs: The other arguments of `Optimizer` (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name).

    Raises:
        ValueError: If `momentum` is outside [0, 1].
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if isinstance(momentum, bool) or not 0 <= momentum <= 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum != 0 else []

    def update_step(self, gradient, variable, learning_rate):
        step = gradient * learning_rate
        if self.momentum == 0:
            variable.assign(wrap(np.asarray(variable) - step))  # a new array: taken without a copy
            return
        momentum = variable.dtype.type(self.momentum)
        m = self.momentums[self._get_variable_index(variable)]
        m = np.asarray(m.assign(np.asarray(m) * momentum - step))
        variable.assign(np.asarray(variable) + (m * momentum - step if self.nesterov else m))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
