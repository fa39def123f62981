"""Activation functions with Keras 3's names and arguments, built from `rnnkit.ops`.

Each takes a tensor-like and returns a Tensor (`linear` returns its input), so gradient tapes
differentiate through them.
"""

import math

import numpy as np

from rnnkit import ops
from rnnkit._registry import Registry
from rnnkit.ops import convert_to_tensor, log_softmax, sigmoid, softmax, softplus, tanh

__all__ = [
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]

# Constants of SELU (Klambauer et al., 2017), to the digits Keras uses.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def linear(x):
    """Returns `x` unchanged.

    Args:
        x: Any value.

    Returns:
        `x`.
    """
    return x


def exponential(x):
    """Computes exp(x).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return ops.exp(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, with Keras's options.

    Computes `x` where `x > threshold` and 0 elsewhere, clipped to `[0, max_value]` when
    `max_value` is given, minus `negative_slope * max(threshold - x, 0)`.

    Args:
        x: A tensor-like.
        negative_slope: Slope below the threshold.
        max_value: Optional largest output.
        threshold: Inputs at or below it give 0 (before the negative slope).

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    if negative_slope != 0 and max_value is None and threshold == 0:
        return leaky_relu(x, negative_slope)
    out = ops.where(x > threshold, x, 0) if threshold != 0 else ops.relu(x)
    if max_value is not None:
        out = ops.clip(out, 0, max_value)
    if negative_slope != 0:
        out = out - negative_slope * ops.relu(threshold - x)
    return out


def relu6(x):
    """Computes min(max(x, 0), 6).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return ops.clip(x, 0, 6)


def leaky_relu(x, negative_slope=0.2):
    """Computes x for x >= 0 and negative_slope * x below.

    Args:
        x: A tensor-like.
        negative_slope: Slope for negative inputs. Above 1 this follows Keras's JAX and
            TensorFlow backends; Keras's numpy backend computes max(x, negative_slope * x).

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """Exponential linear unit: x for x >= 0, alpha * (exp(x) - 1) below.

    Args:
        x: A tensor-like.
        alpha: Scale of the negative part.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    # expm1 sees min(x, 0) only, so large x cannot overflow into a NaN gradient.
    return ops.where(x >= 0, x, alpha * ops.expm1(ops.minimum(x, 0)))


def selu(x):
    """Scaled exponential linear unit: `scale * elu(x, alpha)` with SELU's constants.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1).

    Args:
        x: A tensor-like.
        alpha: Scale of the negative part.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.relu(x) + alpha * ops.expm1(ops.minimum(x, 0) / alpha)


def softsign(x):
    """Computes x / (1 + |x|).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return x / (1 + ops.abs(x))


def soft_shrink(x, threshold=0.5):
    """Shrinks towards 0: x - threshold above it, x + threshold below -threshold, else 0.

    Args:
        x: A tensor-like.
        threshold: Half-width of the band mapped to 0.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.where(x > threshold, x - threshold, ops.where(x < -threshold, x + threshold, 0))


def hard_shrink(x, threshold=0.5):
    """Computes x where |x| > threshold, else 0.

    Args:
        x: A tensor-like.
        threshold: Half-width of the band mapped to 0.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.where(ops.abs(x) > threshold, x, 0)


def threshold(x, threshold, default_value):
    """Computes x where x > threshold, else `default_value`.

    Args:
        x: A tensor-like.
        threshold: The threshold.
        default_value: The value for inputs at or below the threshold.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.where(x > threshold, x, default_value)


def sparse_plus(x):
    """Computes 0 for x <= -1, (x + 1)**2 / 4 for -1 < x < 1, and x above.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.where(x <= -1, 0, ops.where(x < 1, 0.25 * ops.square(x + 1), x))


def squareplus(x, b=4):
    """Computes (x + sqrt(x**2 + b)) / 2.

    Args:
        x: A tensor-like.
        b: Smoothness parameter.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return (x + ops.sqrt(ops.square(x) + b)) / 2


def silu(x):
    """Sigmoid linear unit (swish): x * sigmoid(x).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return x * sigmoid(x)


def hard_sigmoid(x):
    """Piecewise linear sigmoid: relu6(x + 3) / 6.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return relu6(x + 3) / 6


def hard_silu(x):
    """Hard swish: x * hard_sigmoid(x).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return x * hard_sigmoid(x)


def sparse_sigmoid(x):
    """Computes 0 for x <= -1, (x + 1) / 2 for -1 < x < 1, and 1 above.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return ops.clip((x + 1) / 2, 0, 1)


def gelu(x, approximate=False):
    """Gaussian error linear unit: x * P(X <= x) for a standard normal X.

    Args:
        x: A tensor-like.
        approximate: Whether to use the tanh approximation instead of the erf form.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return x * (0.5 * (1 + ops.tanh(inner)))
    return x * (ops.erf(x / math.sqrt(2)) + 1) / 2


def mish(x):
    """Computes x * tanh(softplus(x)).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return x * ops.tanh(softplus(x))


def tanh_shrink(x):
    """Computes x - tanh(x).

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    x = convert_to_tensor(x)
    return x - ops.tanh(x)


def hard_tanh(x):
    """Clips x to [-1, 1].

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return ops.clip(x, -1, 1)


def log_sigmoid(x):
    """Computes log(sigmoid(x)) = -softplus(-x), without overflow.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor.
    """
    return -softplus(-convert_to_tensor(x))


def glu(x, axis=-1):
    """Gated linear unit: splits x in halves a, b along `axis` and computes a * sigmoid(b).

    Args:
        x: A tensor-like whose size along `axis` is even.
        axis: The axis to split.

    Returns:
        A Tensor with half the size along `axis`.

    Raises:
        ValueError: If the size along `axis` is odd.
    """
    x = convert_to_tensor(x)
    if x.shape[axis] % 2:
        raise ValueError(f"axis size must be divisible by 2. Received: x.shape={x.shape} with axis={axis}")
    a, b = ops.split(x, 2, axis)
    return a * sigmoid(b)


def sparsemax(x, axis=-1):
    """Sparsemax: the Euclidean projection of x onto the probability simplex along `axis`.

    Computes max(x - tau, 0) with tau chosen so that the outputs sum to one (Martins and
    Astudillo, 2016). Keras 3.15 computes tau wrongly when more than one output is non-zero
    (keras-team/keras#23425); this follows the paper.

    Args:
        x: A tensor-like of floats.
        axis: The axis the outputs sum to one over.

    Returns:
        A Tensor of the shape of `x`.
    """
    x = convert_to_tensor(x)
    z = np.asarray(x)
    descending = -np.sort(-z, axis=axis)
    ranks = np.arange(1, z.shape[axis] + 1)
    ranks = ranks.reshape([-1 if a == axis % z.ndim else 1 for a in range(z.ndim)])
    size = np.sum(1 + ranks * descending > np.cumsum(descending, axis=axis), axis=axis, keepdims=True)
    smallest_kept = np.take_along_axis(descending, size - 1, axis=axis)
    # The support is fixed locally, so the gradient flows through tau's sum over it.
    kept = ops.where(z >= smallest_kept, x, 0)
    tau = (ops.sum(kept, axis=axis, keepdims=True) - 1) / size.astype(z.dtype)
    return ops.relu(x - tau)


swish = silu
hard_swish = hard_silu

_registry = Registry(
    "activation function",
    "keras.activations",
    [
        celu,
        elu,
        exponential,
        gelu,
        glu,
        hard_shrink,
        hard_sigmoid,
        hard_silu,
        hard_tanh,
        leaky_relu,
        linear,
        log_sigmoid,
        log_softmax,
        mish,
        relu,
        relu6,
        selu,
        sigmoid,
        silu,
        soft_shrink,
        softmax,
        softplus,
        softsign,
        sparse_plus,
        sparse_sigmoid,
        sparsemax,
        squareplus,
        tanh,
        tanh_shrink,
        threshold,
    ],
    aliases={"swish": silu, "hard_swish": hard_silu},
)


def serialize(activation):
    """Returns the name of a built-in activation function ("silu" for `swish`).

    Args:
        activation: One of this module's functions.

    Returns:
        Its name.

    Raises:
        ValueError: If `activation` is not one of them.
    """
    return _registry.serialize(activation)


def deserialize(config):
    """Returns the activation function a name or a Keras function config refers to.

    Args:
        config: A name, or a dict `{"class_name": "function", "config": name, ...}`.

    Returns:
        The function.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves an activation identifier as `keras.activations.get` does.

    Args:
        identifier: None (gives `linear`), a name such as "tanh", a config dict, or a callable
            (returned as is).

    Returns:
        A callable.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message lists the names.
    """
    return linear if identifier is None else _registry.get(identifier)
