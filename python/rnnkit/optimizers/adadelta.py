"""Adadelta (Zeiler, 2012): step sizes from running averages of squared gradients and updates."""

import numpy as np

from rnnkit.optimizers.optimizer import Optimizer


class Adadelta(Optimizer):
    """Adadelta: with `rms(a) = sqrt(a + epsilon)`, the update is
    `delta = -rms(acc_delta) / rms(acc_grad) * g` scaled by the learning rate, where `acc_grad`
    and `acc_delta` are `rho`-averages of the squared gradients and squared deltas.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer` (Keras's default 0.001;
            the paper's method uses 1.0).
        rho: The decay of the running averages.
        epsilon: Added inside the square roots.
        **kwargs: The other arguments of `Optimizer`.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._accumulated_grads, self._accumulated_delta_vars = self.add_optimizer_variables(
            variables, ["accumulated_grad", "accumulated_delta_var"]
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype.type
        index = self._get_variable_index(variable)
        rho, epsilon = dtype(self.rho), dtype(self.epsilon)
        grads, deltas = self._accumulated_grads[index], self._accumulated_delta_vars[index]
        acc_grad = np.asarray(grads.assign(rho * np.asarray(grads) + (1 - rho) * np.square(gradient)))
        delta = -(np.sqrt(np.asarray(deltas) + epsilon) * gradient) / np.sqrt(acc_grad + epsilon)
        deltas.assign(rho * np.asarray(deltas) + (1 - rho) * np.square(delta))
        variable.assign(np.asarray(variable) + learning_rate * delta)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
