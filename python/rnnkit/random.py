"""Random numbers: Keras 3's `keras.random` functions and `SeedGenerator`, and the package's
shared generator for unseeded initializers and dropout masks.

As in Keras, an integer `seed` gives the same values on every call, a `SeedGenerator` new values
on each call (reproducible from its own seed), and no seed draws from the shared generator that
`keras.utils.set_random_seed` reseeds. The distributions are Keras's; the values are numpy's
(Keras's backends each draw their own).
"""

import numpy as np

from rnnkit.tensor import wrap

__all__ = [
    "SeedGenerator",
    "beta",
    "binomial",
    "categorical",
    "dropout",
    "gamma",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]

_generator = np.random.default_rng()


def generator():
    """The shared numpy Generator."""
    return _generator


def set_seed(seed):
    """Reseeds the shared generator, making unseeded initializers and dropout reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


class SeedGenerator:
    """A source of seeds that changes on every draw, for reproducible streams of random values.

    Args:
        seed: An int (None: drawn from the shared generator).
        name: Optional name.
    """

    def __init__(self, seed=None, name=None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: expected an int or None, received {seed!r}")
        self._initial_seed = int(generator().integers(2**31)) if seed is None else int(seed)
        self.name = name or "seed_generator"
        self._rng = np.random.default_rng(self._initial_seed)

    def next(self):
        """The generator to draw the next values from (it advances with every draw)."""
        return self._rng

    def get_config(self):
        return {"seed": self._initial_seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _rng(seed):
    """A numpy Generator for Keras's `seed` argument."""
    if seed is None:
        return generator()
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed: expected None, an int or a keras.random.SeedGenerator, received {seed!r}")


def _shape(shape):
    try:
        return tuple(int(d) for d in (shape if np.iterable(shape) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"shape: expected a tuple of ints, received {shape!r}") from None


def _float(dtype):
    dtype = np.dtype("float32" if dtype is None else dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype: expected a float dtype, received {dtype}")
    return dtype


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Values from a normal distribution.

    Args:
        shape: The output's shape.
        mean: The distribution's mean.
        stddev: Its standard deviation.
        dtype: A float dtype (float32 by default).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    values = _rng(seed).normal(mean, stddev, size=_shape(shape))
    return wrap(values.astype(_float(dtype)))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Values from a uniform distribution over `[minval, maxval)`.

    Args:
        shape: The output's shape.
        minval: The lower bound.
        maxval: The upper bound (excluded).
        dtype: A float dtype (float32 by default).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    values = _rng(seed).uniform(minval, maxval, size=_shape(shape))
    return wrap(values.astype(_float(dtype)))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers from a uniform distribution over `[minval, maxval)`.

    Args:
        shape: The output's shape.
        minval: The lower bound.
        maxval: The upper bound (excluded).
        dtype: An integer dtype.
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    if np.dtype(dtype).kind not in "iu":
        raise ValueError(f"dtype: expected an integer dtype, received {dtype}")
    return wrap(_rng(seed).integers(minval, maxval, size=_shape(shape)).astype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Values from a normal distribution, redrawn where more than two deviations from the mean.

    Args:
        shape: The output's shape.
        mean: The distribution's mean.
        stddev: Its standard deviation.
        dtype: A float dtype (float32 by default).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    rng, shape = _rng(seed), _shape(shape)
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return wrap((mean + stddev * values).astype(_float(dtype)))


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zeroes each entry with probability `rate` and scales the others by `1 / (1 - rate)`
    (differentiable in `inputs`).

    Args:
        inputs: A tensor-like.
        rate: The drop probability, in [0, 1].
        noise_shape: Optional shape, broadcastable to the inputs', of the drop pattern (None
            entries take the inputs' sizes).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    from rnnkit import ops

    if not 0 <= rate <= 1:
        raise ValueError(f"rate: expected a value in [0, 1], received {rate}")
    inputs = ops.convert_to_tensor(inputs)
    if rate == 1:
        return ops.zeros_like(inputs)
    shape = tuple(inputs.shape)
    if noise_shape is not None:
        noise_shape = tuple(shape[i] if d is None else d for i, d in enumerate(noise_shape))
    keep = _rng(seed).random(noise_shape or shape) >= rate
    return ops.multiply(inputs, (keep / (1 - rate)).astype(inputs.dtype))


def shuffle(x, axis=0, seed=None):
    """`x` with its slices along `axis` in a random order.

    Args:
        x: A tensor-like.
        axis: The axis whose entries are permuted.
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    array = np.asarray(x)
    order = _rng(seed).permutation(array.shape[axis])
    return wrap(np.take(array, order, axis=axis))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """Class indices drawn from each row's distribution `softmax(logits)`.

    Args:
        logits: `(batch, classes)` unnormalised log-probabilities.
        num_samples: Draws per row.
        dtype: An integer dtype.
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A `(batch, num_samples)` Tensor.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (batch_size, num_classes), received {logits.shape}")
    # The Gumbel-max trick: argmax of the logits plus independent Gumbel noise.
    noise = _rng(seed).gumbel(size=(logits.shape[0], int(num_samples), logits.shape[1]))
    return wrap(np.argmax(logits[:, None, :] + noise, axis=-1).astype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    """Values from a gamma distribution of shape parameter `alpha` and scale 1.

    Args:
        shape: The output's shape.
        alpha: The shape parameter (broadcastable to `shape`).
        dtype: A float dtype (float32 by default).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    return wrap(_rng(seed).gamma(alpha, 1.0, size=_shape(shape)).astype(_float(dtype)))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Successes in `counts` trials of success probability `probabilities`.

    Args:
        shape: The output's shape.
        counts: Trials (broadcastable to `shape`).
        probabilities: Success probabilities (broadcastable to `shape`).
        dtype: A float dtype (float32 by default, as Keras).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    values = _rng(seed).binomial(np.asarray(counts, np.int64), probabilities, size=_shape(shape))
    return wrap(values.astype(_float(dtype)))


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Values from a beta distribution.

    Args:
        shape: The output's shape.
        alpha: The first shape parameter (broadcastable to `shape`).
        beta: The second shape parameter (broadcastable to `shape`).
        dtype: A float dtype (float32 by default).
        seed: None, an int or a `SeedGenerator`.

    Returns:
        A Tensor.
    """
    return wrap(_rng(seed).beta(alpha, beta, size=_shape(shape)).astype(_float(dtype)))
