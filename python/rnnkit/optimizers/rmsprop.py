"""RMSprop (Hinton, lecture 6e of "Neural Networks for Machine Learning")."""

import numpy as np

from rnnkit import _core
from rnnkit.optimizers.optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: `v = rho * v + (1 - rho) * g**2; w -= lr * g / sqrt(v + epsilon)`.

    Centered, the running mean `a` of the gradients is subtracted: `sqrt(v - a**2 + epsilon)`.
    With momentum, the increments accumulate: `m = momentum * m + increment; w -= m`.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        rho: The decay of the squared gradients' average.
        momentum: The momentum (0 for none).
        epsilon: Added under the square root.
        centered: Whether to normalise by the gradients' estimated variance.
        **kwargs: The other arguments of `Optimizer` (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        self._momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum > 0 else []
        self._average_gradients = self.add_optimizer_variables(variables, "average_gradient") if self.centered else []

    def _update_steps(self, grads, variables, learning_rate):
        for dtype, pairs in self._fused_groups(RMSprop, grads, variables, learning_rate):
            slots = [self._get_variable_index(v) for _, v in pairs]
            momentums = [self._momentums[i] for i in slots] if self.momentum > 0 else None
            averages = [self._average_gradients[i] for i in slots] if self.centered else None
            values, velocities, new_momentums, new_averages = _core.rmsprop_update(
                [v._array for _, v in pairs],
                [g for g, _ in pairs],
                [self._velocities[i]._array for i in slots],
                _arrays(momentums),
                _arrays(averages),
                learning_rate=float(learning_rate.astype(dtype)),
                rho=self.rho,
                momentum=self.momentum if self.momentum > 0 else 0.0,
                epsilon=self.epsilon,
            )
            for k, ((_, variable), i) in enumerate(zip(pairs, slots)):
                variable._take(values[k])
                self._velocities[i]._take(velocities[k])
            for slot, value in zip(momentums or [], new_momentums or []):
                slot._take(value)
            for slot, value in zip(averages or [], new_averages or []):
                slot._take(value)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        rho, velocity = self.rho, self._velocities[index]
        velocity = np.asarray(velocity.assign(rho * np.asarray(velocity) + (1 - rho) * np.square(gradient)))
        if self.centered:
            average = self._average_gradients[index]
            average = np.asarray(average.assign(rho * np.asarray(average) + (1 - rho) * gradient))
            denominator = velocity - np.square(average) + self.epsilon
        else:
            denominator = velocity + self.epsilon
        increment = learning_rate * gradient / np.sqrt(denominator)
        if self.momentum > 0:
            momentum = self._momentums[index]
            increment = np.asarray(momentum.assign(self.momentum * np.asarray(momentum) + increment))
        variable.assign(np.asarray(variable) - increment)

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


def _arrays(slots):
    """The values of optimizer variables, or None."""
    return None if slots is None else [s._array for s in slots]
