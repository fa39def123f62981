"""Adamax (Kingma & Ba, 2015): Adam with the infinity norm in place of the squared gradients."""

import numpy as np

from rnnkit.optimizers.optimizer import Optimizer


class Adamax(Optimizer):
    """Adamax: `m` averages the gradients, `u = max(beta_2 * u, |g|)`, and
    `w -= lr * m / ((1 - beta_1**t) * (u + epsilon))` at step `t`.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        beta_1: The decay of the gradients' average.
        beta_2: The decay of the infinity norm.
        epsilon: Added to the norm in the denominator.
        **kwargs: The other arguments of `Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._m, self._u = self.add_optimizer_variables(variables, ["momentum", "norm"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype.type
        index = self._get_variable_index(variable)
        step = dtype(int(self.iterations) + 1)
        m = np.asarray(self._m[index])
        m = np.asarray(self._m[index].assign(m + (gradient - m) * (1 - dtype(self.beta_1))))
        u = np.asarray(
            self._u[index].assign(np.maximum(dtype(self.beta_2) * np.asarray(self._u[index]), np.abs(gradient)))
        )
        denominator = (1 - dtype(self.beta_1) ** step) * (u + dtype(self.epsilon))
        variable.assign(np.asarray(variable) - learning_rate * m / denominator)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
