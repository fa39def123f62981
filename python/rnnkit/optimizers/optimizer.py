"""The `Optimizer` base class: Keras 3's update pipeline, run in numpy on `Variable.assign`."""

import re
import warnings

import numpy as np

from rnnkit import initializers
from rnnkit._naming import snake_case, unique_name
from rnnkit.optimizers import schedules
from rnnkit.tensor import Tensor, Variable

__all__ = ["Optimizer"]


def _array_of(gradient, dtype):
    """A gradient as a numpy array of `dtype` (a Tensor's own array when it has that dtype)."""
    if isinstance(gradient, Tensor) and gradient.dtype == dtype:
        return gradient._array
    return np.asarray(gradient, dtype)


class Optimizer:
    """Base class of optimizers, with Keras 3's arguments and update order.

    Each `apply` skips variables whose gradient is None, unscales the gradients by
    `loss_scale_factor`, accumulates them when `gradient_accumulation_steps` is set, clips them
    (`clipnorm`, else `global_clipnorm`, else `clipvalue`), applies weight decay
    (`variable -= variable * weight_decay * learning_rate`), calls `update_step` per variable,
    updates the moving averages when `use_ema` is set, applies the constraints given to it, and
    increments `iterations`. All of it is numpy on the variables' values, in their dtypes; nothing
    is recorded on gradient tapes.

    Subclasses create their slot variables in `build` (with `add_optimizer_variables`) and update
    one variable in `update_step`.

    Args:
        learning_rate: A float, a `LearningRateSchedule` (called with `iterations`), or a callable
            taking no arguments. A float is held as a float32 variable, as Keras holds it.
        weight_decay: Optional decoupled weight decay factor.
        clipnorm: Optional bound on each gradient's L2 norm.
        clipvalue: Optional bound on each gradient's absolute values.
        global_clipnorm: Optional bound on the L2 norm of all gradients together.
        use_ema: Whether to keep exponential moving averages of the variables.
        ema_momentum: The moving averages' momentum.
        ema_overwrite_frequency: Optional number of steps after which the variables are set to
            their moving averages (otherwise `finalize_variable_values` does it).
        loss_scale_factor: Optional factor the loss is multiplied by (`scale_loss`) and the
            gradients divided by.
        gradient_accumulation_steps: Optional number (>= 2) of steps whose gradients are averaged
            into one update.
        name: The optimizer's name (the snake_case class name by default).

    Raises:
        ValueError: For unknown arguments, a learning rate that is not a number, schedule or
            callable, more than one clipping argument, or invalid EMA or accumulation settings.
    """

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=2)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        if gradient_accumulation_steps and gradient_accumulation_steps < 2:
            raise ValueError(
                "`gradient_accumulation_steps` must be an integer >= 2. "
                f"Received: gradient_accumulation_steps={gradient_accumulation_steps}"
            )
        if use_ema and not 0 <= ema_momentum <= 1:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
        if (
            use_ema
            and ema_overwrite_frequency
            and (not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1)
        ):
            raise ValueError(
                "`ema_overwrite_frequency` must be an integer >= 1 or None. "
                f"Received: ema_overwrite_frequency={ema_overwrite_frequency}"
            )
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.built = False
        self._iterations = Variable(np.int64(0), trainable=False, name="iteration")
        self._variables = [self._iterations]
        self._trainable_variables = []
        self._indices = {}  # id(variable) -> its position in _trainable_variables
        self._excluded_ids, self._excluded_pattern = set(), None
        self._learning_rate = None
        self.learning_rate = learning_rate

    # --- learning rate and steps --------------------------------------------------------------

    @property
    def iterations(self):
        """The number of updates applied: a non-trainable int64 Variable; with
        `gradient_accumulation_steps`, an int counting each group of accumulated steps once."""
        if self.gradient_accumulation_steps:
            return int(self._iterations) // self.gradient_accumulation_steps
        return self._iterations

    @property
    def learning_rate(self):
        """The current learning rate: the float32 Variable a number is held in, or the schedule's
        (or callable's) value at the current step. Setting a number assigns it; setting a schedule
        or callable replaces the rate."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return self._learning_rate(self._iterations)
        if isinstance(self._learning_rate, Variable):
            return self._learning_rate
        return np.float32(self._learning_rate())

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if callable(learning_rate):  # schedules included
            if isinstance(self._learning_rate, Variable):
                self._variables.remove(self._learning_rate)
            self._learning_rate = learning_rate
            return
        value = np.asarray(learning_rate)
        if value.ndim or value.dtype.kind not in "fiu":
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of LearningRateSchedule, or a "
                "callable (that takes in the current iteration value and returns the corresponding "
                f"learning rate value). Received instead: learning_rate={learning_rate}"
            )
        if isinstance(self._learning_rate, Variable):
            self._learning_rate.assign(value)
        elif self._learning_rate is not None:
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                "constructor argument, hence its learning rate is not settable. If you need the learning "
                "rate to be settable, you should instantiate the optimizer with a float `learning_rate` "
                "argument."
            )
        else:
            self._learning_rate = Variable(value.astype(np.float32), trainable=False, name="learning_rate")
            self._variables.append(self._learning_rate)

    def scale_loss(self, loss):
        """Returns the loss multiplied by `loss_scale_factor` (if set), before differentiation."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # --- variables ----------------------------------------------------------------------------

    @property
    def variables(self):
        """The optimizer's own variables, in Keras's order: iterations, the learning rate (when a
        number), then the ones `build` created."""
        return list(self._variables)

    def add_variable(self, shape, initializer="zeros", dtype=None, name=None):
        """Creates a non-trainable variable of the optimizer.

        Args:
            shape: Its shape.
            initializer: An initializer or its name.
            dtype: Its dtype (float32 by default).
            name: Its name.

        Returns:
            The new Variable.
        """
        dtype = np.dtype(dtype or "float32")
        value = initializers.get(initializer)(tuple(shape), dtype=dtype)
        variable = Variable(np.asarray(value, dtype), trainable=False, name=name, dtype=dtype)
        self._variables.append(variable)
        return variable

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Creates a variable of the shape and dtype of a model variable, named after it.

        Args:
            reference_variable: The model variable.
            name: A suffix for the name ("var" by default).
            initializer: An initializer or its name.

        Returns:
            The new Variable.
        """
        return self.add_variable(
            reference_variable.shape,
            initializer,
            reference_variable.dtype,
            f"{reference_variable.name}_{name or 'var'}",
        )

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """Creates one slot variable per model variable, for one name or several.

        Args:
            trainable_variables: The model variables.
            name: A name, or a list of names (their variables are created interleaved, variable
                by variable, as Keras orders them).
            initializer: An initializer or its name, for all of them.

        Returns:
            A list of slot variables, or a tuple of such lists for a list of names.
        """
        names = [name] if isinstance(name, str) else list(name)
        slots = tuple([] for _ in names)
        for variable in trainable_variables:
            for slot, slot_name in zip(slots, names):
                slot.append(self.add_variable_from_reference(variable, slot_name, initializer))
        return slots[0] if isinstance(name, str) else slots

    def build(self, variables):
        """Creates the optimizer's variables for the model variables it will update.

        Args:
            variables: The trainable Variables, in a fixed order.
        """
        self._trainable_variables = list(variables)
        self._indices = {id(v): i for i, v in enumerate(self._trainable_variables)}
        if self.use_ema:
            self._model_variables_moving_average = self.add_optimizer_variables(variables, "average")
        if self.gradient_accumulation_steps:
            self._accumulated_gradients = self.add_optimizer_variables(variables, "gradient_accumulator")
        self.built = True

    def _get_variable_index(self, variable):
        """The position of a model variable in the list the optimizer was built with."""
        return self._indices[id(variable)]

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempts variables from weight decay; call it before the optimizer is built.

        Args:
            var_list: Variables to exempt.
            var_names: Strings; variables whose name contains one of them are exempt.

        Raises:
            ValueError: If the optimizer is built already.
        """
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the optimizer is built.")
        self._excluded_ids = {id(v) for v in var_list or ()}
        self._excluded_pattern = re.compile("|".join(map(re.escape, set(var_names)))) if var_names else None

    def _use_weight_decay(self, variable):
        if id(variable) in self._excluded_ids:
            return False
        return self._excluded_pattern is None or self._excluded_pattern.search(variable.name) is None

    # --- updates ------------------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars, constraints=None):
        """Applies one update from `(gradient, variable)` pairs.

        Args:
            grads_and_vars: Pairs of a gradient (a tensor-like, or None to skip the variable) and
                a Variable.
            constraints: Optional mapping `{id(variable): constraint}`; after the update each
                updated variable with a constraint (a callable on a numpy array, e.g. a Layer's
                `constraint_for(variable)`) is set to the constraint of its value.

        Returns:
            `iterations`.
        """
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables, constraints)
        return self._iterations

    def apply(self, grads, trainable_variables=None, constraints=None):
        """Applies one update; see the class docstring for the order of the steps.

        Args:
            grads: Gradients, one per variable (None skips a variable).
            trainable_variables: The Variables; on the first call they build the optimizer. When
                omitted, the ones it was built with.
            constraints: See `apply_gradients`.

        Raises:
            ValueError: If the optimizer is not built and no variables are given, the counts
                differ, a variable is not one it was built with, or every gradient is None.
        """
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be built on a "
                    "list of variables. Call `optimizer.build(trainable_variables)` first."
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
            for v in trainable_variables:
                if id(v) not in self._indices:
                    raise ValueError(
                        f"Unknown variable: {v!r}. This optimizer can only be called for the variables it "
                        "was originally built with. When working with a new set of variables, you should "
                        "recreate a new optimizer instance."
                    )
        if len(grads) != len(trainable_variables):
            raise ValueError(f"Received {len(grads)} gradients for {len(trainable_variables)} variables.")
        missing = [v.name for g, v in zip(grads, trainable_variables) if g is None]
        pairs = [(_array_of(g, v.dtype), v) for g, v in zip(grads, trainable_variables) if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss. If using "
                "`model.compile()`, did you forget to provide a `loss` argument?",
                stacklevel=2,
            )
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        if self.gradient_accumulation_steps:
            self._accumulate_and_update(grads, variables)
        else:
            self._update(grads, variables)
        if self.use_ema:
            self._update_moving_averages()
        for variable in variables:
            constraint = constraints.get(id(variable)) if constraints else None
            if constraint is not None:
                variable.assign(constraint(np.asarray(variable)))
        self._iterations.assign_add(1)

    def _update(self, grads, variables):
        """Clips, decays and steps: the update proper."""
        grads = self._clip_gradients(grads)
        learning_rate = np.asarray(self.learning_rate)
        if self.weight_decay is not None:
            for variable in variables:
                if self._use_weight_decay(variable):
                    value = np.asarray(variable)
                    decay = np.asarray(self.weight_decay, variable.dtype)
                    variable.assign(value - value * decay * learning_rate.astype(variable.dtype))
        self._update_steps(grads, variables, learning_rate)

    def _update_steps(self, grads, variables, learning_rate):
        """Calls `update_step` for each variable; optimizers with a fused update override it."""
        for grad, variable in zip(grads, variables):
            self.update_step(grad, variable, learning_rate.astype(variable.dtype))

    def _fused_groups(self, owner, grads, variables, learning_rate):
        """The `(dtype, [(grad, variable), ...])` groups that `owner`'s fused Rust update takes.

        Variables of other dtypes are updated here through `update_step`, and so is every
        variable when a subclass replaced `owner.update_step`'s arithmetic (then no group is left).
        """
        if type(self).update_step is not owner.update_step:
            Optimizer._update_steps(self, grads, variables, learning_rate)
            return []
        groups = {}
        for grad, variable in zip(grads, variables):
            groups.setdefault(variable.dtype, []).append((grad, variable))
        for dtype in [d for d in groups if d not in (np.float32, np.float64)]:
            pairs = groups.pop(dtype)
            Optimizer._update_steps(self, [g for g, _ in pairs], [v for _, v in pairs], learning_rate)
        return list(groups.items())

    def _accumulate_and_update(self, grads, variables):
        """Adds the gradients to the accumulators; every `gradient_accumulation_steps`-th step,
        updates with their mean instead and clears them."""
        steps = self.gradient_accumulation_steps
        accumulators = [self._accumulated_gradients[self._get_variable_index(v)] for v in variables]
        if (int(self._iterations) + 1) % steps:
            for accumulator, grad in zip(accumulators, grads):
                accumulator.assign(grad + np.asarray(accumulator))
            return
        self._update([(g + np.asarray(a)) / steps for g, a in zip(grads, accumulators)], variables)
        for accumulator in accumulators:
            accumulator.assign(np.zeros(accumulator.shape, accumulator.dtype))

    def _update_moving_averages(self):
        # The first average is the value itself: the momentum is 0 at step 0.
        step = int(self.iterations)
        for variable, average in zip(self._trainable_variables, self._model_variables_moving_average):
            momentum = np.asarray(self.ema_momentum if step else 0, variable.dtype)
            average.assign(momentum * np.asarray(average) + (1 - momentum) * np.asarray(variable))
        if self.ema_overwrite_frequency and (step + 1) % self.ema_overwrite_frequency == 0:
            self.finalize_variable_values(self._trainable_variables)

    def finalize_variable_values(self, var_list):
        """Sets the variables to their moving averages when `use_ema` is set (`fit` calls it at the end).

        Args:
            var_list: The model variables the optimizer was built with.
        """
        if self.use_ema:
            for variable, average in zip(var_list, self._model_variables_moving_average):
                variable.assign(average)

    def _clip_gradients(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            return [g * self.clipnorm / np.maximum(np.linalg.norm(g), self.clipnorm) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            norm = np.sqrt(sum(np.sum(np.square(g)) for g in grads))
            # `norm - norm` turns an infinite or NaN norm into NaN gradients, as in Keras.
            scale = self.global_clipnorm / np.maximum(norm, self.global_clipnorm) + (norm - norm)
            return [g * scale for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def update_step(self, gradient, variable, learning_rate):
        """Updates one variable; subclasses implement it.

        Args:
            gradient: The processed gradient, a numpy array in the variable's dtype.
            variable: The Variable.
            learning_rate: The learning rate, a numpy scalar in the variable's dtype.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update_step().")

    # --- configs ------------------------------------------------------------------------------

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict (Keras's keys).

        A schedule is written as its serialized config; a callable learning rate as its current
        value.
        """
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            learning_rate = schedules.serialize(self._learning_rate)
        else:
            learning_rate = float(self.learning_rate)
        return {
            "name": self.name,
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config):
        """Creates an optimizer (without its state) from the dict `get_config` returned.

        Args:
            config: A dict of constructor arguments; a dict learning rate is a serialized schedule.

        Returns:
            A new optimizer.
        """
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"
