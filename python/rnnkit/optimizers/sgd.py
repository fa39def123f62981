"""Stochastic gradient descent, with optional (Nesterov) momentum."""

import numpy as np

from rnnkit import _core
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

    def _update_steps(self, grads, variables, learning_rate):
        # One Rust call per dtype updates the variables with `update_step`'s arithmetic.
        for dtype, pairs in self._fused_groups(SGD, grads, variables, learning_rate):
            momentums = [self.momentums[self._get_variable_index(v)] for _, v in pairs] if self.momentum else None
            values, new_momentums = _core.sgd_update(
                [v._array for _, v in pairs],
                [g for g, _ in pairs],
                None if momentums is None else [m._array for m in momentums],
                learning_rate=float(learning_rate.astype(dtype)),
                momentum=float(dtype.type(self.momentum)),
                nesterov=bool(self.nesterov),
            )
            # The new arrays are ours: the variables take them without a copy.
            for k, (_, variable) in enumerate(pairs):
                variable._take(values[k])
                if momentums is not None:
                    momentums[k]._take(new_momentums[k])

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
