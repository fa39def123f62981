"""`Activation` and the activation layers `ReLU`, `LeakyReLU`, `ELU`, `PReLU` and `Softmax`."""

import numpy as np

from rnnkit import activations, constraints, initializers, ops, regularizers
from rnnkit.layers.layer import Layer


class Activation(Layer):
    """Applies `activation` to the inputs; masks pass through.

    Args:
        activation: An activation name (e.g. "relu") or function; None is linear.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


def _non_negative(name, value, allow_none=False):
    if value is None and allow_none:
        return value
    if value is None or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise ValueError(f"{name}: expected a number >= 0, received {value!r}")
    return value


class ReLU(Layer):
    """`activations.relu` with its options as a layer; masks pass through.

    Args:
        max_value: Optional largest output (>= 0).
        negative_slope: Slope below the threshold (>= 0).
        threshold: Inputs at or below it give 0 before the negative slope (>= 0).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative("max_value", max_value, allow_none=True)
        self.negative_slope = _non_negative("negative_slope", negative_slope)
        self.threshold = _non_negative("threshold", threshold)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return activations.relu(
            inputs, negative_slope=self.negative_slope, max_value=self.max_value, threshold=self.threshold
        )

    def get_config(self):
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(Layer):
    """`x` for `x >= 0`, `negative_slope * x` below; masks pass through.

    Args:
        negative_slope: Slope of the negative part (>= 0); Keras's old name `alpha` is accepted.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _non_negative("negative_slope", negative_slope)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """Exponential linear unit: `x` for `x >= 0`, `alpha * (exp(x) - 1)` below; masks pass through.

    Args:
        alpha: Scale of the negative part.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: `x` for `x >= 0`, `alpha * x` below, with a learned `alpha` of the input's
    shape without the batch axis (size 1 along `shared_axes`). Masks pass through.

    Args:
        alpha_initializer: Initializer of `alpha` ("Zeros" as Keras).
        alpha_regularizer: Optional regularizer of `alpha`.
        alpha_constraint: Optional constraint of `alpha`.
        shared_axes: Optional int or list of axes (1-based, batch axis excluded) along which
            `alpha` is shared, e.g. `[1]` for one slope per feature over time.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None or isinstance(shared_axes, (list, tuple)):
            self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]
        elif isinstance(shared_axes, (int, np.integer)):
            self.shared_axes = [int(shared_axes)]
        else:
            raise ValueError(f"shared_axes: expected None, an int or a list of ints, received {shared_axes!r}")
        self.supports_masking = True

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if not 1 <= axis < len(input_shape):
                raise ValueError(
                    f"shared_axes: expected axes in [1, {len(input_shape) - 1}], received {self.shared_axes}"
                )
            shape[axis - 1] = 1
        if None in shape:
            raise ValueError(f"PReLU: the non-shared input sizes must be known, received input shape {input_shape}")
        self.alpha = self.add_weight(
            shape=shape,
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            name="alpha",
        )
        self.built = True

    def call(self, inputs):
        return ops.relu(inputs) - self.alpha * ops.relu(-inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


class Softmax(Layer):
    """Softmax over `axis` (an int or a list of ints). With a mask (broadcastable to the inputs;
    True or > 0.5 keeps), masked entries get -1e9 before the softmax and 0 after, as in Keras.

    Args:
        axis: The axis or axes the probabilities sum to one over.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = [int(a) for a in axis]
        elif not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"axis: expected an int or a list of ints, received {axis!r}")
        else:
            axis = int(axis)
        self.axis = axis
        self.supports_masking = True
        self.built = True

    def call(self, inputs, mask=None):
        keep = None
        if mask is not None:
            keep = np.asarray(mask)
            keep = keep if keep.dtype == bool else keep > 0.5
            if keep.ndim > inputs.ndim:
                raise ValueError(
                    f"mask: expected at most {inputs.ndim} dimensions (broadcastable to the inputs), "
                    f"received shape {keep.shape}"
                )
            large = -3e4 if inputs.dtype == np.float16 else -1e9
            inputs = ops.where(keep, inputs, np.asarray(large, inputs.dtype))
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        if isinstance(axis, tuple) and len(axis) > 1:
            outputs = ops.exp(inputs - ops.logsumexp(inputs, axis=axis, keepdims=True))
        else:
            outputs = ops.softmax(inputs, axis=axis[0] if isinstance(axis, tuple) else axis)
        if keep is not None:
            outputs = ops.where(keep, outputs, np.zeros((), outputs.dtype))
        return outputs

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
