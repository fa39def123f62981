"""Nadam (Dozat, 2016): Adam with Nesterov momentum and Keras's momentum schedule."""

import numpy as np

from rnnkit.optimizers.optimizer import Optimizer


class Nadam(Optimizer):
    """Adam with Nesterov momentum, as Keras's: the momentum factor of step `t` is
    `u_t = beta_1 * (1 - 0.5 * 0.96**t)`, and the update uses the product of these factors so far.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        beta_1: The decay of the gradients' average.
        beta_2: The decay of the squared gradients' average.
        epsilon: Added to `sqrt(v_hat)` in the denominator.
        **kwargs: The other arguments of `Optimizer` (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name).
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
        self._momentums, self._velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        dtype = variables[0].dtype if variables else "float32"
        self._u_product = self.add_variable((), initializer="ones", dtype=dtype, name="u_product")

    def _update_steps(self, grads, variables, learning_rate):
        # The product of the momentum factors advances once per step, before the variables.
        dtype = self._u_product.dtype.type
        step = dtype(int(self.iterations) + 1)
        factor = dtype(self.beta_1) * (dtype(1) - dtype(0.5) * dtype(0.96) ** step)
        self._u_product.assign(np.asarray(self._u_product) * factor)
        super()._update_steps(grads, variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype.type
        index = self._get_variable_index(variable)
        step, next_step = dtype(int(self.iterations) + 1), dtype(int(self.iterations) + 2)
        beta_1, beta_2 = dtype(self.beta_1), dtype(self.beta_2)
        u_t = beta_1 * (dtype(1) - dtype(0.5) * dtype(0.96) ** step)
        u_next = beta_1 * (dtype(1) - dtype(0.5) * dtype(0.96) ** next_step)
        u_product = dtype(np.asarray(self._u_product))
        u_product_next = u_product * u_next
        m = np.asarray(self._momentums[index])
        m = np.asarray(self._momentums[index].assign(m + (gradient - m) * (1 - beta_1)))
        v = np.asarray(self._velocities[index])
        v = np.asarray(self._velocities[index].assign(v + (np.square(gradient) - v) * (1 - beta_2)))
        m_hat = u_next * m / (1 - u_product_next) + (1 - u_t) * gradient / (1 - u_product)
        v_hat = v / (1 - beta_2**step)
        variable.assign(np.asarray(variable) - m_hat * learning_rate / (np.sqrt(v_hat) + dtype(self.epsilon)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
