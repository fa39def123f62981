"""Adam (Kingma & Ba, 2015), with optional AMSGrad, and AdamW (decoupled weight decay)."""

import numpy as np

from rnnkit import _core
from rnnkit.optimizers.optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: moving averages `m` of the gradients and `v` of their squares, and
    `w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)` at step `t`.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        beta_1: The decay of the gradients' average.
        beta_2: The decay of the squared gradients' average.
        epsilon: Added to the denominator (to `sqrt(v)`, as in the paper's "epsilon hat").
        amsgrad: Whether to divide by the largest `v` seen (AMSGrad, Reddi et al., 2018).
        **kwargs: The other arguments of `Optimizer` (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums, self._velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(variables, "velocity_hat")

    def _alpha(self, learning_rate, dtype):
        step = dtype(int(self.iterations) + 1)
        return learning_rate * np.sqrt(1 - dtype(self.beta_2) ** step) / (1 - dtype(self.beta_1) ** step)

    def _update_steps(self, grads, variables, learning_rate):
        # One Rust call per dtype updates the variables with `update_step`'s arithmetic.
        for dtype, pairs in self._fused_groups(Adam, grads, variables, learning_rate):
            slots = [self._get_variable_index(v) for _, v in pairs]
            hats = [self._velocity_hats[i] for i in slots] if self.amsgrad else None
            values, momentums, velocities, new_hats = _core.adam_update(
                [v._array for _, v in pairs],
                [g for g, _ in pairs],
                [self._momentums[i]._array for i in slots],
                [self._velocities[i]._array for i in slots],
                None if hats is None else [h._array for h in hats],
                alpha=float(self._alpha(learning_rate.astype(dtype), dtype.type)),
                one_minus_beta_1=1 - self.beta_1,
                one_minus_beta_2=1 - self.beta_2,
                epsilon=self.epsilon,
            )
            # The new arrays are ours: the variables take them without a copy.
            for k, ((_, variable), i) in enumerate(zip(pairs, slots)):
                variable._take(values[k])
                self._momentums[i]._take(momentums[k])
                self._velocities[i]._take(velocities[k])
                if hats is not None:
                    hats[k]._take(new_hats[k])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype.type
        index = self._get_variable_index(variable)
        alpha = self._alpha(learning_rate, dtype)
        m = np.asarray(self._momentums[index])
        m = np.asarray(self._momentums[index].assign(m + (gradient - m) * (1 - self.beta_1)))
        v = np.asarray(self._velocities[index])
        v = np.asarray(self._velocities[index].assign(v + (np.square(gradient) - v) * (1 - self.beta_2)))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            v = np.asarray(v_hat.assign(np.maximum(np.asarray(v_hat), v)))
        variable.assign(np.asarray(variable) - m * alpha / (np.sqrt(v) + self.epsilon))

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): before each update,
    `w -= w * weight_decay * learning_rate`.

    Args:
        learning_rate: A float, schedule or callable; see `Optimizer`.
        weight_decay: The decay factor (required).
        beta_1: See `Adam`.
        beta_2: See `Adam`.
        epsilon: See `Adam`.
        amsgrad: See `Adam`.
        **kwargs: The other arguments of `Optimizer`.

    Raises:
        ValueError: If `weight_decay` is None.
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )
