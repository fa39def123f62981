"""Adagrad (Duchi et al., 2011)."""

import numpy as np

from rnnkit import _core, initializers
from rnnkit.optimizers.optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad: `a += g**2; w -= lr * g / sqrt(a + epsilon)`, the accumulator `a` starting at
    `initial_accumulator_value`.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        initial_accumulator_value: The accumulators' starting value.
        epsilon: Added under the square root.
        **kwargs: The other arguments of `Optimizer` (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name).
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        initializer = initializers.Constant(self.initial_accumulator_value)
        self._accumulators = self.add_optimizer_variables(variables, "accumulator", initializer)

    def _update_steps(self, grads, variables, learning_rate):
        for dtype, pairs in self._fused_groups(Adagrad, grads, variables, learning_rate):
            slots = [self._get_variable_index(v) for _, v in pairs]
            values, accumulators = _core.adagrad_update(
                [v._array for _, v in pairs],
                [g for g, _ in pairs],
                [self._accumulators[i]._array for i in slots],
                learning_rate=float(learning_rate.astype(dtype)),
                epsilon=self.epsilon,
            )
            for k, ((_, variable), i) in enumerate(zip(pairs, slots)):
                variable._take(values[k])
                self._accumulators[i]._take(accumulators[k])

    def update_step(self, gradient, variable, learning_rate):
        accumulator = self._accumulators[self._get_variable_index(variable)]
        accumulated = np.asarray(accumulator.assign(np.asarray(accumulator) + np.square(gradient)))
        variable.assign(np.asarray(variable) - learning_rate * gradient / np.sqrt(accumulated + self.epsilon))

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
