"""`BatchNormalization` and `LayerNormalization` (each normalising in one op with an analytic gradient),
`GroupNormalization` and `UnitNormalization` (composed of differentiable ops)."""

import collections
import math

import numpy as np

from rnnkit import _core, config, constraints, initializers, ops, regularizers
from rnnkit.distribution.state import replicas
from rnnkit.layers.layer import Layer, in_symbolic_call
from rnnkit.tape import record
from rnnkit.tensor import wrap

# Keras's `backend.epsilon()`, which it adds to the count of unmasked entries.
_MASKED_COUNT_EPSILON = 1e-7

# The (keepdims) moments of x over `axes`; `weights` is the 0/1 mask broadcast to x (None: all
# ones) and `count` the denominator they were divided by; `reduce` sums an array over the ranks
# of data-parallel training when the moments are the global batch's (None: x's alone).
Moments = collections.namedtuple("Moments", ["mean", "variance", "count", "axes", "weights", "reduce"], defaults=[None])


def _in_place(ufunc, a, b, reverse=False):
    """`ufunc(a, b)` (`ufunc(b, a)` with `reverse`) written over `a` when that is its dtype and
    shape: the same numbers without a fresh temporary as large as x (fresh pages are slow)."""
    args = (b, a) if reverse else (a, b)
    # b broadcasts to a's shape: each of its trailing sizes is 1 or a's (a tuple walk: a tenth of
    # np.broadcast_shapes's cost, which is several microseconds per call of a training step).
    b_shape = np.shape(b)
    fits = (
        np.result_type(a, b) == a.dtype
        and len(b_shape) <= a.ndim
        and all(m in (1, n) for m, n in zip(reversed(b_shape), reversed(a.shape)))
    )
    return ufunc(*args, out=a) if fits else ufunc(*args)


def moments(x, axes, weights=None, reduce=None):
    """The mean and biased variance of `x` over `axes`, of the entries where `weights` is 1.

    Args:
        x: A tensor-like.
        axes: The reduced axes (a tuple of ints).
        weights: Optional 0/1 array of x's shape; Keras divides masked sums by their count plus
            1e-7, and so does this.
        reduce: Optional function summing an array over the ranks of data-parallel training:
            the moments are then those of every rank's `x` together.

    Returns:
        A `Moments` whose mean and variance keep the reduced axes with size 1.
    """
    x = np.asarray(x)
    if reduce is not None:
        return _global_moments(x, axes, weights, reduce)
    if weights is None:
        # np.mean's own arithmetic (a sum, then a division by the count), without its wrapper.
        count = math.prod(x.shape[a] for a in axes)
        mean = np.add.reduce(x, axis=axes, keepdims=True) / count
        deviations = np.subtract(x, mean)
        variance = np.add.reduce(np.square(deviations, out=deviations), axis=axes, keepdims=True) / count
        return Moments(mean, variance, count, axes, None)
    count = weights.sum(axis=axes, keepdims=True) + _MASKED_COUNT_EPSILON
    mean = (weights * x).sum(axis=axes, keepdims=True) / count
    variance = np.square(weights * (x - mean)).sum(axis=axes, keepdims=True) / count
    return Moments(mean, variance, count, axes, weights)


def _global_moments(x, axes, weights, reduce):
    """`moments` over the ranks in one reduction: each rank's count, mean and sum of squared
    deviations from its mean, combined in float64 (Chan et al.'s parallel variance), which keeps
    the two-pass accuracy of one process without a second round."""
    shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    ones = np.ones_like(x) if weights is None else weights.astype(x.dtype)
    count = ones.sum(axis=axes, keepdims=True)
    local_mean = (ones * x).sum(axis=axes, keepdims=True) / np.maximum(count, 1)
    deviations = np.square(ones * (x - local_mean)).sum(axis=axes, keepdims=True)
    count, local_mean = count.astype(np.float64), local_mean.astype(np.float64)
    parts = (count, count * local_mean, count * local_mean * local_mean, deviations.astype(np.float64))
    sums = reduce(np.concatenate([p.ravel() for p in parts])).reshape(4, *shape)
    count = sums[0] + (0 if weights is None else _MASKED_COUNT_EPSILON)
    mean = sums[1] / count
    # sum over ranks of count * (local mean - mean)² is sums[2] - count * mean²
    variance = np.maximum(sums[3] + sums[2] - sums[1] * mean, 0) / count
    return Moments(mean.astype(x.dtype), variance.astype(x.dtype), count.astype(x.dtype), axes, weights, reduce)


def normalize(x, stats, gamma, beta, epsilon, shape):
    """`gamma * (x - mean) / sqrt(variance + epsilon) + beta`, recorded as one op.

    Args:
        x: The input Tensor.
        stats: Either x's own `Moments` (batch or layer statistics: the gradient flows through
            them into x), or a pair `(mean, variance)` of tensors with `prod(shape)` elements
            (moving statistics: inputs of the op with gradients of their own).
        gamma: Scale with `prod(shape)` elements, or None.
        beta: Offset with `prod(shape)` elements, or None.
        epsilon: Added to the variance.
        shape: The shape gamma, beta and moving statistics take to broadcast against x.

    Returns:
        A Tensor of x's shape.
    """
    from_x = isinstance(stats, Moments)
    inputs = [x, gamma, beta] if from_x else [x, gamma, beta, *stats]
    x_array = np.asarray(x)
    out, gamma_array, mean, variance, inv = normalized(x_array, stats, gamma, beta, epsilon, shape)
    output = wrap(out)
    param_axes = tuple(i for i, size in enumerate(shape) if size == 1)

    def backward(grads):
        (grad,) = grads
        inv_std = 1 / np.sqrt(variance + epsilon) if inv is None else inv
        x_hat = _in_place(np.multiply, np.subtract(x_array, mean), inv_std)
        d_gamma = None if gamma is None else (grad * x_hat).sum(axis=param_axes).reshape(np.shape(gamma))
        d_beta = None if beta is None else grad.sum(axis=param_axes).reshape(np.shape(beta))
        d_x_hat = grad if gamma_array is None else grad * gamma_array
        if not from_x:
            d_mean = -(d_x_hat * inv_std).sum(axis=param_axes).reshape(np.shape(stats[0]))
            d_variance = (-0.5 * d_x_hat * x_hat * inv_std * inv_std).sum(axis=param_axes).reshape(np.shape(stats[1]))
            return d_x_hat * inv_std, d_gamma, d_beta, d_mean, d_variance
        # Through the (weighted) mean and variance, each entry's share of them is weight / count.
        # (Keras's 1e-7 in masked counts leaves sum(weights * (x - mean)) at ~1e-7 * mean, not 0;
        # the term it adds to the gradient is below float32 resolution and left out.)
        axes, count = stats.axes, stats.count
        weights = 1 if stats.weights is None else stats.weights
        sums = np.stack([d_x_hat.sum(axis=axes, keepdims=True), (d_x_hat * x_hat).sum(axis=axes, keepdims=True)])
        if stats.reduce is not None:  # the global statistics depend on every rank's x
            sums = stats.reduce(sums)
        # inv * (d_x_hat - weights * (sums[0] + x_hat * sums[1]) / count), reusing x_hat.
        through_stats = _in_place(np.add, _in_place(np.multiply, x_hat, sums[1]), sums[0])
        if stats.weights is not None:
            through_stats = _in_place(np.multiply, through_stats, weights)
        through_stats = _in_place(np.divide, through_stats, count)
        d_x = _in_place(np.subtract, through_stats, d_x_hat, reverse=True)
        return _in_place(np.multiply, d_x, inv_std), d_gamma, d_beta

    record(inputs, [output], backward)
    return output


def normalized(x_array, stats, gamma, beta, epsilon, shape):
    """`normalize`'s output as an array, recording nothing.

    Args:
        x_array: The input array.
        stats: As for `normalize`.
        gamma: As for `normalize`.
        beta: As for `normalize`.
        epsilon: As for `normalize`.
        shape: As for `normalize`.

    Returns:
        `(output, gamma, mean, variance, inv)`: the output, then the arrays the backward pass
        reuses: gamma, mean and variance in `shape`, and `1 / sqrt(variance + epsilon)` (None
        where the Rust kernel normalised).
    """
    from_x = isinstance(stats, Moments)
    gamma_array = None if gamma is None else np.asarray(gamma).reshape(shape)
    beta_array = None if beta is None else np.asarray(beta).reshape(shape)
    if from_x:
        mean, variance = stats.mean, stats.variance
    else:
        mean, variance = np.asarray(stats[0]).reshape(shape), np.asarray(stats[1]).reshape(shape)
    rows = None if from_x else _kernel_rows(x_array, shape, (gamma_array, beta_array, mean, variance))
    if rows is not None:  # moving statistics: the numpy arithmetic below, in one Rust call
        vectors = [None if a is None else a.reshape(-1) for a in (gamma_array, beta_array, mean, variance)]
        output = _core.batch_norm_forward(rows, *vectors, epsilon=epsilon)[0].reshape(x_array.shape)
        return output, gamma_array, mean, variance, None
    inv = 1 / np.sqrt(variance + epsilon)
    # Keras's arithmetic, x * (inv * gamma) + (beta - mean * inv * gamma), for the same rounding.
    scale = inv if gamma_array is None else inv * gamma_array
    offset = -mean * scale if beta_array is None else beta_array - mean * scale
    output = _in_place(np.add, x_array * scale, offset).astype(x_array.dtype, copy=False)
    return output, gamma_array, mean, variance, inv


def _kernel_rows(x_array, shape, params):
    """`x_array` as the `(rows, features)` matrix the Rust kernels take, or None where they do
    not apply: they normalise the last axis of float32 or float64 inputs (with at least one
    element) by parameters of the same dtype."""
    fits = (
        x_array.dtype in config.KERNEL_DTYPES
        and x_array.size
        and all(size == 1 for size in shape[:-1])
        and all(p is None or p.dtype == x_array.dtype for p in params)
    )
    return x_array.reshape(-1, x_array.shape[-1]) if fits else None


def batch_normalize(x, gamma, beta, epsilon, shape):
    """`normalize` by x's own moments over every axis but the last, in one Rust call each way.

    Args:
        x: The input Tensor.
        gamma: Scale Tensor of `x.shape[-1]` elements, or None.
        beta: Offset Tensor of `x.shape[-1]` elements, or None.
        epsilon: Added to the variance.
        shape: As for `normalize`.

    Returns:
        `(output, mean, variance)`: a Tensor of x's shape and the batch moments as arrays of
        `x.shape[-1]` elements; or None where the kernel does not apply (see `_kernel_rows`),
        for `moments` and `normalize` to compute instead.
    """
    x_array = np.asarray(x)
    gamma_array, beta_array = (None if p is None else np.asarray(p) for p in (gamma, beta))
    rows = _kernel_rows(x_array, shape, (gamma_array, beta_array))
    if rows is None:
        return None
    out, mean, variance = _core.batch_norm_forward(rows, gamma_array, beta_array, epsilon=epsilon)
    output = wrap(out.reshape(x_array.shape))

    def backward(grads):
        grad = grads[0].reshape(rows.shape)
        d_x, d_gamma, d_beta = _core.batch_norm_backward(rows, mean, variance, gamma_array, grad, epsilon=epsilon)
        return d_x.reshape(x_array.shape), d_gamma, None if beta is None else d_beta

    record([x, gamma, beta], [output], backward)
    return output, mean, variance


def _replica_sum():
    """The function summing an array over the ranks of data-parallel training, or None on one
    process (BatchNormalization's training statistics are the global batch's, as Keras's
    DataParallel implies)."""
    distributed = replicas()
    return None if distributed is None else distributed.communicator.allreduce_sum


def _set_scale_and_offset(layer, center, scale, initializer, regularizer, constraint):
    """Stores `center`, `scale` and the `(beta, gamma)` pairs of initializers, regularizers and
    constraints (names or objects, resolved here) on `layer`, for `_add_scale_and_offset`."""
    layer.center, layer.scale = center, scale
    layer.beta_initializer, layer.gamma_initializer = map(initializers.get, initializer)
    layer.beta_regularizer, layer.gamma_regularizer = map(regularizers.get, regularizer)
    layer.beta_constraint, layer.gamma_constraint = map(constraints.get, constraint)


def _add_scale_and_offset(layer, shape):
    """Creates `gamma` (with `scale`) and `beta` (with `center`) of `shape`, in Keras's order."""
    if layer.scale:
        layer.gamma = layer.add_weight(
            shape,
            layer.gamma_initializer,
            regularizer=layer.gamma_regularizer,
            constraint=layer.gamma_constraint,
            name="gamma",
        )
    if layer.center:
        layer.beta = layer.add_weight(
            shape,
            layer.beta_initializer,
            regularizer=layer.beta_regularizer,
            constraint=layer.beta_constraint,
            name="beta",
        )


class BatchNormalization(Layer):
    """Normalises each feature with batch statistics in training and moving ones in inference.

    With `training=True` (and a trainable layer) the output is
    `gamma * (x - mean(x)) / sqrt(var(x) + epsilon) + beta`, the moments taken over every axis
    but `axis` (biased variance), and the moving statistics move towards them:
    `moving = moving * momentum + batch * (1 - momentum)`. Otherwise the moving statistics
    normalise. A mask (one axis fewer than the inputs) restricts the batch statistics to the
    unmasked entries. As Keras's.

    Args:
        axis: The feature axis.
        momentum: Momentum of the moving averages.
        epsilon: Added to the variance.
        center: Whether to add the offset `beta`.
        scale: Whether to multiply by `gamma`.
        beta_initializer: Initializer of the offset `beta`.
        gamma_initializer: Initializer of the scale `gamma`.
        moving_mean_initializer: Initializer of the moving mean.
        moving_variance_initializer: Initializer of the moving variance.
        beta_regularizer: Optional regularizer of `beta`.
        gamma_regularizer: Optional regularizer of `gamma`.
        beta_constraint: Optional constraint applied to `beta` after each update.
        gamma_constraint: Optional constraint applied to `gamma` after each update.
        synchronized: Only False (Keras's TensorFlow-backend option): under
            `rk.distribution.DataParallel` on several processes the training statistics are
            always the global batch's, summed over the processes (and so is their gradient).
        renorm: Whether to use batch renormalisation (Ioffe, 2017), which adds the
            non-trainable weights `moving_stddev`, `renorm_mean` and `renorm_stddev`.
        renorm_clipping: Optional dict with keys among "rmax", "rmin", "dmax" bounding the
            renormalisation corrections `r` and `d`.
        renorm_momentum: Momentum of the renormalisation statistics.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm=False,
        renorm_clipping=None,
        renorm_momentum=0.99,
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if synchronized:
            raise ValueError("Argument synchronized=True is only supported with the TensorFlow backend.")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        _set_scale_and_offset(
            self,
            center,
            scale,
            (beta_initializer, gamma_initializer),
            (beta_regularizer, gamma_regularizer),
            (beta_constraint, gamma_constraint),
        )
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.synchronized = synchronized
        self.renorm = renorm
        if renorm:
            renorm_clipping = renorm_clipping or {}
            unknown = set(renorm_clipping) - {"rmax", "rmin", "dmax"}
            if unknown:
                raise ValueError(
                    f"Received invalid keys for `renorm_clipping` argument: {renorm_clipping}. "
                    "Supported values: ['rmax', 'rmin', 'dmax']."
                )
            rmax, rmin, dmax = (renorm_clipping.get(k) for k in ("rmax", "rmin", "dmax"))
            if rmax is not None and rmin is not None and rmax < rmin:
                raise ValueError(
                    "rmax should be greater than rmin in the `renorm_clipping` argument. "
                    f"Received: rmax={rmax}, rmin={rmin}."
                )
            if dmax is not None and dmax < 0:
                raise ValueError(
                    f"dmax should be non-negative in the `renorm_clipping` argument. Received: dmax={dmax}."
                )
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.supports_masking = True
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(f"Axis {self.axis} is out of bounds for input shape {tuple(input_shape)}.")
        if input_shape[self.axis] is None:
            raise ValueError(
                f"Layer {self.name}: axis {self.axis} of the inputs must be known, received {tuple(input_shape)}."
            )
        shape = (input_shape[self.axis],)
        _add_scale_and_offset(self, shape)
        self.moving_mean = self.add_weight(shape, self.moving_mean_initializer, trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(
            shape, self.moving_variance_initializer, trainable=False, name="moving_variance"
        )
        if self.renorm:
            # Batch renormalisation tracks standard deviations, starting from sqrt(moving variance).
            def stddev_initializer(shape, dtype=None):
                return np.sqrt(self.moving_variance_initializer(shape, dtype=dtype))

            self.moving_stddev = self.add_weight(shape, stddev_initializer, trainable=False, name="moving_stddev")
            self.renorm_mean = self.add_weight(shape, self.moving_mean_initializer, trainable=False, name="renorm_mean")
            self.renorm_stddev = self.add_weight(shape, stddev_initializer, trainable=False, name="renorm_stddev")
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if mask is not None and np.ndim(mask) != inputs.ndim - 1:
            raise ValueError(
                "The mask provided should be one dimension less than the inputs. Received: "
                f"mask.shape={np.shape(mask)}, inputs.shape={inputs.shape}"
            )
        shape = self._parameter_shape(inputs.shape)
        if not (training and self.trainable):
            return normalize(
                inputs, (self.moving_mean, self.moving_variance), self.gamma, self.beta, self.epsilon, shape
            )
        reduce = None if in_symbolic_call() else _replica_sum()
        if mask is None and reduce is None and not self.renorm:
            normalized = batch_normalize(inputs, self.gamma, self.beta, self.epsilon, shape)
            if normalized is not None:
                output, mean, variance = normalized
                if not in_symbolic_call():
                    self._update_statistics(mean, variance)
                return output
        axes = tuple(i for i in range(inputs.ndim) if i != self.axis % inputs.ndim)
        weights = None
        if mask is not None:
            weights = np.broadcast_to(np.expand_dims(np.asarray(mask, bool), -1), inputs.shape).astype(inputs.dtype)
        stats = moments(inputs, axes, weights, reduce=reduce)
        mean, variance = stats.mean.reshape(-1), stats.variance.reshape(-1)
        gamma, beta = self.gamma, self.beta
        if self.renorm:
            gamma, beta = self._renormalize(mean, variance, gamma, beta)
        if not in_symbolic_call():
            self._update_statistics(mean, variance)
        return normalize(inputs, stats, gamma, beta, self.epsilon, shape)

    def _parameter_shape(self, input_shape):
        """The shape the parameters and statistics take to broadcast against the inputs."""
        shape = [1] * len(input_shape)
        shape[self.axis] = input_shape[self.axis]
        return shape

    def _inference_array(self, x):
        """`call(x)` at inference (the moving statistics) outside any tape on the array `x` of a
        call already checked, as an array."""
        stats = (self.moving_mean, self.moving_variance)
        return normalized(x, stats, self.gamma, self.beta, self.epsilon, self._parameter_shape(x.shape))[0]

    def _renormalize(self, mean, variance, gamma, beta):
        """The scale and offset with the renormalisation corrections `r` and `d` folded in."""
        stddev = np.sqrt(variance + self.epsilon)
        renorm_stddev = np.maximum(np.asarray(self.renorm_stddev), np.sqrt(np.asarray(self.epsilon, stddev.dtype)))
        r = stddev / renorm_stddev
        d = (mean - np.asarray(self.renorm_mean)) / renorm_stddev
        clipping = self.renorm_clipping
        if clipping.get("rmin") is not None:
            r = np.maximum(r, clipping["rmin"])
        if clipping.get("rmax") is not None:
            r = np.minimum(r, clipping["rmax"])
        if clipping.get("dmax") is not None:
            d = np.clip(d, -clipping["dmax"], clipping["dmax"])
        if gamma is None:
            return r, d if beta is None else ops.add(d, beta)
        offset = ops.multiply(d, gamma)
        return ops.multiply(r, gamma), offset if beta is None else ops.add(offset, beta)

    def _update_statistics(self, mean, variance):
        def moved(variable, value, momentum):
            return np.asarray(variable) * momentum + value * (1.0 - momentum)

        self.moving_mean.assign(moved(self.moving_mean, mean, self.momentum))
        if not self.renorm:
            self.moving_variance.assign(moved(self.moving_variance, variance, self.momentum))
            return
        stddev = np.sqrt(variance + self.epsilon)
        self.renorm_mean.assign(moved(self.renorm_mean, mean, self.renorm_momentum))
        self.renorm_stddev.assign(moved(self.renorm_stddev, stddev, self.renorm_momentum))
        moving_stddev = moved(self.moving_stddev, stddev, self.momentum)
        self.moving_stddev.assign(moving_stddev)
        # Rounding can make stddev² - epsilon slightly negative.
        self.moving_variance.assign(np.maximum(moving_stddev * moving_stddev - self.epsilon, 0))

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


class LayerNormalization(Layer):
    """Normalises each sample over `axis`: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    The moments are taken per sample over the `axis` dimensions (biased variance); gamma and beta
    have the shape of those dimensions. As Keras's, the layer passes masks through, and `axis`
    becomes a sorted list once the layer is built.

    Args:
        axis: An int or a list of ints: the normalised axes.
        epsilon: Added to the variance.
        center: Whether to add the offset `beta`.
        scale: Whether to multiply by `gamma`.
        beta_initializer: Initializer of the offset `beta`.
        gamma_initializer: Initializer of the scale `gamma`.
        beta_regularizer: Optional regularizer of `beta`.
        gamma_regularizer: Optional regularizer of `gamma`.
        beta_constraint: Optional constraint applied to `beta` after each update.
        gamma_constraint: Optional constraint applied to `gamma` after each update.
        **kwargs: Base `Layer` arguments. Keras's deprecated `rms_scaling` is accepted only as
            False (the value in Keras's configs); use an RMS normalisation layer instead.
    """

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        if kwargs.pop("rms_scaling", False):
            raise ValueError(
                "rms_scaling=True is deprecated in Keras and not supported: it scales by the variance, not the RMS."
            )
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = list(axis)
        elif isinstance(axis, (int, np.integer)):
            self.axis = int(axis)
        else:
            raise TypeError(f"Expected an int or a list/tuple of ints for the argument 'axis', but received: {axis!r}")
        self.epsilon = epsilon
        _set_scale_and_offset(
            self,
            center,
            scale,
            (beta_initializer, gamma_initializer),
            (beta_regularizer, gamma_regularizer),
            (beta_constraint, gamma_constraint),
        )
        self.supports_masking = True
        self.gamma = self.beta = None

    def build(self, input_shape):
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        for axis in self.axis:
            if not -len(input_shape) <= axis < len(input_shape):
                raise ValueError(
                    f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. Received: axis={self.axis}"
                )
        shape = tuple(input_shape[axis] for axis in self.axis)
        _add_scale_and_offset(self, shape)
        self.built = True

    def call(self, inputs):
        axes = tuple(sorted(axis % inputs.ndim for axis in self.axis))
        shape = [1] * inputs.ndim
        for axis in axes:
            shape[axis] = inputs.shape[axis]
        return normalize(inputs, moments(inputs, axes), self.gamma, self.beta, self.epsilon, shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": False,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


def _check_axis(axis):
    if isinstance(axis, (list, tuple)):
        return [int(a) for a in axis]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError(f"axis: expected an int or a list/tuple of ints, received {axis!r}")


class GroupNormalization(Layer):
    """Normalises groups of channels per sample (Wu & He, 2018), as Keras's.

    The `axis` channels are split into `groups` groups; each sample's group is normalised over
    its channels and all other non-batch axes, then scaled by `gamma` and offset by `beta`
    (one per channel). `groups=-1` is instance normalisation, `groups=1` layer normalisation
    over all axes. Masks pass through.

    Args:
        groups: Number of groups, a divisor of the channel count (or -1: one per channel).
        axis: The channel axis.
        epsilon: Added to the variance.
        center: Whether to add the offset `beta`.
        scale: Whether to multiply by `gamma`.
        beta_initializer: Initializer of `beta`.
        gamma_initializer: Initializer of `gamma`.
        beta_regularizer: Optional regularizer of `beta`.
        gamma_regularizer: Optional regularizer of `gamma`.
        beta_constraint: Optional constraint of `beta`.
        gamma_constraint: Optional constraint of `gamma`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        groups=32,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or (groups <= 0 and groups != -1):
            raise ValueError(
                "Received an invalid value for argument `groups`, expected a positive integer "
                f"(or `-1` for instance normalization). Received: groups={groups!r}"
            )
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"axis: expected an int, received {axis!r}")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = epsilon
        _set_scale_and_offset(
            self,
            center,
            scale,
            (beta_initializer, gamma_initializer),
            (beta_regularizer, gamma_regularizer),
            (beta_constraint, gamma_constraint),
        )
        self.supports_masking = True
        self.gamma = self.beta = None

    def build(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(f"Axis {self.axis} is out of bounds for input shape {tuple(input_shape)}.")
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(
                f"Axis {self.axis} of input tensor should have a defined dimension but the layer received "
                f"an input with shape {tuple(input_shape)}."
            )
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the number of channels ({dim}).")
        if dim % self.groups:
            raise ValueError(f"groups: expected a divisor of the number of channels ({dim}), received {self.groups}.")
        _add_scale_and_offset(self, (dim,))
        self.built = True

    def call(self, inputs):
        axis = self.axis % inputs.ndim
        size = inputs.shape[axis]
        grouped_shape = (*inputs.shape[:axis], self.groups, size // self.groups, *inputs.shape[axis + 1 :])
        x = ops.reshape(inputs, grouped_shape)
        reduce = tuple(i for i in range(1, x.ndim) if i != axis)
        mean = ops.mean(x, axis=reduce, keepdims=True)
        variance = ops.mean(ops.square(x - ops.stop_gradient(mean)), axis=reduce, keepdims=True)
        # The variance's gradient through the mean is zero (the deviations sum to zero).
        inv = 1.0 / ops.sqrt(variance + self.epsilon)
        param_shape = [1] * x.ndim
        param_shape[axis], param_shape[axis + 1] = self.groups, size // self.groups
        if self.gamma is not None:
            inv = inv * ops.reshape(self.gamma, param_shape)
        offset = -mean * inv
        if self.beta is not None:
            offset = offset + ops.reshape(self.beta, param_shape)
        return ops.reshape(x * inv + offset, inputs.shape)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over `axis`: `x * min(1 / ||x||, 1e12)`. Masks pass through.

    Args:
        axis: An int or a list of ints: the axes the norm is taken over.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        square_sum = ops.sum(ops.square(inputs), axis=axis, keepdims=True)
        # 1 / sqrt(max(s, 1e-24)) is Keras's min(rsqrt(s), 1e12), with a finite gradient at zero.
        return inputs / ops.sqrt(ops.maximum(square_sum, np.asarray(1e-24, square_sum.dtype)))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """Root-mean-square normalisation (Zhang and Sennrich, 2019), as Keras's:
    `x / sqrt(mean(x², axis) + epsilon) * scale`, without centring. Masks pass through.

    Args:
        axis: An int or a list of ints: the normalised axes; `scale` has their shape.
        epsilon: Added to the mean square before the square root.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)
        self.epsilon = epsilon
        self.supports_masking = True

    def build(self, input_shape):
        # As Keras's, the axes become a sorted list once built (and so in the config).
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        for axis in self.axis:
            if not -len(input_shape) <= axis < len(input_shape):
                raise ValueError(
                    f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. Received: axis={self.axis}"
                )
        self.scale = self.add_weight(
            name="scale", shape=tuple(input_shape[axis] for axis in self.axis), initializer="ones"
        )
        self.built = True

    def call(self, inputs):
        axes = tuple(sorted(axis % inputs.ndim for axis in self.axis))
        mean_square = ops.mean(ops.square(inputs), axis=axes, keepdims=True)
        normalized = inputs / ops.sqrt(mean_square + np.asarray(self.epsilon, mean_square.dtype))
        shape = [1] * inputs.ndim
        for axis in axes:
            shape[axis] = inputs.shape[axis]
        return normalized * ops.reshape(self.scale, shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
