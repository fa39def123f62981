"""Lion (Chen et al., 2023): sign updates of an interpolated momentum."""

import numpy as np

from rnnkit.optimizers.optimizer import Optimizer


class Lion(Optimizer):
    """Lion: `w -= lr * sign(beta_1 * m + (1 - beta_1) * g)`, then `m = beta_2 * m + (1 - beta_2) * g`.
    Its updates are larger than Adam's: use a 3-10x smaller learning rate.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        beta_1: The interpolation factor of the update, in (0, 1].
        beta_2: The decay of the momentum.
        **kwargs: The other arguments of `Optimizer`.

    Raises:
        ValueError: If `beta_1` is not in (0, 1].
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        if not 0 < beta_1 <= 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates to "
                f"SignSGD. Received: beta_1={beta_1}."
            )
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype.type
        beta_1, beta_2 = dtype(self.beta_1), dtype(self.beta_2)
        momentum = self._momentums[self._get_variable_index(variable)]
        m = np.asarray(momentum)
        variable.assign(np.asarray(variable) - learning_rate * np.sign(m * beta_1 + gradient * (1 - beta_1)))
        momentum.assign(m * beta_2 + gradient * (1 - beta_2))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
