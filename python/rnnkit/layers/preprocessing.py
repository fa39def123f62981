"""Preprocessing layers that sequence models put in front of their RNNs: `Normalization` (with
`adapt`), `Discretization`, `CategoryEncoding` and `Rescaling`. They compute in numpy (`Normalization`
through `rnnkit.ops`, so gradients reach its inputs) and need no TensorFlow.
"""

import math

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer
from rnnkit.tensor import Tensor, convert_to_tensor

# Keras's backend.epsilon(): the smallest standard deviation Normalization divides by.
_EPSILON = 1e-7


def _batches(data):
    """`data` as a list of numpy batches: one array, or the batches of an iterable (the inputs
    of `(inputs, targets)` pairs)."""
    if isinstance(data, (np.ndarray, Tensor)) or np.isscalar(data):
        return [np.asarray(data)]
    if isinstance(data, (list, tuple)) and data and not hasattr(data[0], "__len__"):
        return [np.asarray(data)]
    batches = []
    for batch in data:
        if isinstance(batch, tuple):
            batch = batch[0]
        batches.append(np.asarray(batch))
    if not batches:
        raise ValueError("adapt: received an empty iterable; expected at least one batch of data")
    return batches


class Normalization(Layer):
    """Shifts and scales inputs to zero mean and unit variance per feature:
    `(x - mean) / max(sqrt(variance), 1e-7)` (or the inverse with `invert=True`).

    The statistics are given as `mean` and `variance`, or learned from data with `adapt(data)`
    (then they are the layer's non-trainable weights `mean`, `variance` and `count`, as in Keras,
    and are saved with it). Masks pass through.

    Args:
        axis: The axis or axes that keep separate statistics (the features); None for one mean
            and variance over everything. Every other axis is averaged over.
        mean: Optional mean (a number or an array broadcastable to the kept axes).
        variance: Optional variance, given together with `mean`.
        invert: Whether to undo the normalisation (`mean + x * std`) instead.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = invert
        self.supports_masking = True
        if (mean is None) != (variance is None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    "When setting values directly, `mean` and `variance` must have the same shape. "
                    f"Received: mean shape {np.shape(mean)} and variance shape {np.shape(variance)}"
                )
            if np.ndim(mean) > len(self.axis):
                raise ValueError(
                    f"The rank of `mean` must be less than or equal to the number of axes ({len(self.axis)}). "
                    f"Received: mean shape {np.shape(mean)} for axis {self.axis}"
                )
        self._input_shape = None
        self.mean = self.variance = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(
                f"All `axis` values must be in the range [-ndim, ndim). Received inputs with ndim={ndim}, "
                f"while axis={self.axis}"
            )
        self._input_shape = tuple(input_shape)
        self._keep = tuple(sorted(a % ndim for a in self.axis))
        for a in self._keep:
            if input_shape[a] is None:
                raise ValueError(
                    f"All `axis` values to be kept must have a known shape. Received axis={self.axis}, "
                    f"inputs.shape={tuple(input_shape)}, with unknown axis at index {a}"
                )
        self._reduce = tuple(a for a in range(ndim) if a not in self._keep)
        self._broadcast = tuple(input_shape[a] if a in self._keep else 1 for a in range(ndim))
        stats_shape = tuple(input_shape[a] for a in self._keep)
        self._stats_shape = stats_shape
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=stats_shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(
                name="variance", shape=stats_shape, initializer="ones", trainable=False
            )
            self.count = self.add_weight(name="count", shape=(), dtype="int32", initializer="zeros", trainable=False)
        else:
            mean, variance = (np.asarray(v, self.dtype) for v in (self.input_mean, self.input_variance))
            # Given statistics fill the kept axes from the right.
            shape = [1] * ndim
            for i in range(1, mean.ndim + 1):
                shape[self._keep[-i]] = mean.shape[-i]
            self.mean = np.broadcast_to(mean.reshape(shape), self._broadcast)
            self.variance = np.broadcast_to(variance.reshape(shape), self._broadcast)
        self.built = True

    def adapt(self, data):
        """Sets the mean and variance to those of `data`.

        Args:
            data: A numpy array (or Tensor), or an iterable of batches (arrays, or
                `(inputs, targets)` pairs), e.g. a list or a generator; batches are combined
                exactly (pooled mean and variance).

        Raises:
            ValueError: If the data's kept axes differ from the layer's.
        """
        batches = _batches(data)
        if not self.built:
            self.build((None, *batches[0].shape[1:]) if batches[0].ndim else ())
            self.built = True
        mean = np.zeros(self._stats_shape)
        variance = np.zeros(self._stats_shape)
        total = 0
        for batch in batches:
            batch = batch.astype(self.dtype)
            if batch.ndim != len(self._input_shape) or any(batch.shape[a] != self._input_shape[a] for a in self._keep):
                raise ValueError(
                    f"The layer was built with input_shape={self._input_shape}, but adapt() is being called with "
                    f"data with an incompatible shape, data.shape={batch.shape}"
                )
            count = math.prod(batch.shape[a] for a in self._reduce)
            batch_mean = batch.mean(axis=self._reduce)
            batch_variance = batch.var(axis=self._reduce)
            total += count
            weight = count / total
            new_mean = mean * (1 - weight) + batch_mean * weight
            variance = (variance + (mean - new_mean) ** 2) * (1 - weight) + (
                batch_variance + (batch_mean - new_mean) ** 2
            ) * weight
            mean = new_mean
        self.adapt_mean.assign(np.asarray(mean, self.dtype))
        self.adapt_variance.assign(np.asarray(variance, self.dtype))

    def call(self, inputs):
        if self.input_mean is None:
            mean = np.reshape(np.asarray(self.adapt_mean), self._broadcast)
            variance = np.reshape(np.asarray(self.adapt_variance), self._broadcast)
        else:
            mean, variance = self.mean, self.variance
        inputs = ops.cast(inputs, self.dtype) if inputs.dtype != np.dtype(self.dtype) else inputs
        std = np.maximum(np.sqrt(variance), _EPSILON).astype(self.dtype)
        mean = mean.astype(self.dtype)
        if self.invert:
            return ops.add(mean, ops.multiply(inputs, std))
        return ops.divide(ops.subtract(inputs, mean), std)

    def get_config(self):
        def listed(value):
            return None if value is None else np.asarray(value).tolist()

        return {
            **super().get_config(),
            "axis": list(self.axis),
            "invert": self.invert,
            "mean": listed(self.input_mean),
            "variance": listed(self.input_variance),
        }


def _encode(indices, output_mode, depth, dtype, count_weights=None):
    """Integer indices as Keras encodes them: "int" as is, "one_hot" (a trailing size-1 axis is
    replaced), "multi_hot" and "count" per sample of a rank-2 input (a rank-1 input is one
    sample; higher ranks are refused, as Keras does).
    Indices outside [0, depth) encode to nothing."""
    indices = np.asarray(indices)
    if output_mode == "int":
        return indices.astype(dtype)
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot" and indices.ndim > 1 and indices.shape[-1] == 1:
        indices = indices[..., 0]
    hot = (indices[..., None] == np.arange(depth)).astype(dtype)
    if output_mode == "one_hot":
        return hot
    if indices.ndim > 2:
        raise ValueError(
            f"output_mode={output_mode!r} encodes inputs of rank 1 or 2 (as Keras), received an input of rank "
            f"{indices.ndim} with shape {indices.shape}"
        )
    axis = 1 if indices.ndim > 1 else 0
    if output_mode == "multi_hot":
        return hot.max(axis=axis)
    if count_weights is not None:
        hot = hot.astype(np.asarray(count_weights).dtype) * np.asarray(count_weights)[..., None]
    return hot.sum(axis=axis)


def _check_mode(output_mode, allowed, caller):
    if output_mode not in allowed:
        raise ValueError(
            f"Invalid value for argument `output_mode` of {caller}: expected one of {allowed}, received {output_mode!r}"
        )


class CategoryEncoding(Layer):
    """Encodes integer category indices in `[0, num_tokens)`: "one_hot" (one vector per index),
    "multi_hot" (one vector per sample, 1 where an index occurs) or "count" (occurrences,
    weighted by `count_weights` when given).

    Args:
        num_tokens: The number of categories (>= 1).
        output_mode: "multi_hot" (the default; "binary" is an alias), "one_hot" or "count".
        sparse: Only False (dense outputs) is supported.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        _check_mode(output_mode, ("count", "one_hot", "multi_hot"), "CategoryEncoding")
        if num_tokens is None:
            raise ValueError(
                "num_tokens must be set to use this layer. If the number of tokens is not known beforehand, "
                "use the IntegerLookup layer instead."
            )
        if num_tokens < 1:
            raise ValueError(f"`num_tokens` must be >= 1. Received: num_tokens={num_tokens}.")
        if sparse:
            raise ValueError("sparse: only False is supported (rnnkit has no sparse tensors)")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = sparse
        self.built = True

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(
                f"`count_weights` is not used when `output_mode` is not `'count'`. Received `count_weights="
                f"{count_weights}`."
            )
        weights = None if count_weights is None else np.asarray(count_weights, self.dtype)
        return convert_to_tensor(_encode(np.asarray(inputs), self.output_mode, self.num_tokens, self.dtype, weights))

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode}


def _sketch(values, epsilon):
    """A weighted-quantile summary of `values`: every `step`-th sorted value with weight `step`,
    `step = max(size * epsilon, 1)` (Keras's summary, so `adapt` finds Keras's boundaries)."""
    values = np.sort(np.reshape(values, -1))
    step = max(values.size * epsilon, 1)
    points = values[int(step - 1) :: int(step)]
    return np.stack([points, np.full(points.shape, step, points.dtype)])


def _compress(summary, epsilon):
    """At most 1/epsilon summary points, at evenly spaced cumulative-weight fractions."""
    if summary.shape[1] * epsilon < 1:
        return summary
    fractions = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    at = cumulative / cumulative[-1]
    points = np.interp(fractions, at, summary[0])
    weights = np.diff(np.interp(fractions, at, cumulative), prepend=0)
    return np.stack((points, weights)).astype("float32")


class Discretization(Layer):
    """Buckets continuous values: index `i` for `bin_boundaries[i-1] <= x < bin_boundaries[i]`
    (0 below the first boundary), as an int or encoded (see `CategoryEncoding`).

    With `num_bins` instead of boundaries, `adapt(data)` finds `num_bins - 1` boundaries at the
    quantiles of the data (Keras's approximate quantile summary with accuracy `epsilon`).

    Args:
        bin_boundaries: Sorted list of boundaries.
        num_bins: Number of bins to learn with `adapt`.
        epsilon: Accuracy of the quantile summary (smaller is more exact).
        output_mode: "int", "one_hot", "multi_hot" or "count".
        sparse: Only False is supported.
        dtype: The dtype of encoded outputs ("int" outputs are int32).
        name: The layer's name.
    """

    def __init__(
        self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False, dtype=None, name=None
    ):
        super().__init__(name=name, dtype=dtype)
        _check_mode(output_mode, ("int", "one_hot", "multi_hot", "count"), "Discretization")
        if sparse:
            raise ValueError("sparse: only False is supported (rnnkit has no sparse tensors)")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"`num_bins` must be greater than or equal to 0. Received: `num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                "Both `num_bins` and `bin_boundaries` should not be set. Received: "
                f"`num_bins={num_bins}` and `bin_boundaries={bin_boundaries}`"
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError("You need to set either `num_bins` or `bin_boundaries`.")
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = sparse
        self._summary = np.zeros((2, 0), "float32")
        self.built = True

    def adapt(self, data, steps=None):
        """Learns `num_bins - 1` boundaries from the quantiles of `data`.

        Args:
            data: An array or an iterable of batches.
            steps: Optional number of batches to read from an iterable.

        Raises:
            ValueError: If the layer was made with `bin_boundaries`.
        """
        if self.num_bins is None:
            raise ValueError(
                "Cannot adapt a Discretization layer that has been initialized with `bin_boundaries`, "
                "use `num_bins` instead."
            )
        batches = _batches(data)
        if steps is not None:
            batches = batches[:steps]
        summary = np.zeros((2, 0), "float32")
        for batch in batches:
            merged = np.concatenate((_sketch(batch.astype("float32"), self.epsilon), summary), axis=1)
            summary = _compress(merged[:, np.argsort(merged[0], kind="stable")], self.epsilon)
        self._summary = summary
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(
                "You need to either pass the `bin_boundaries` argument at construction time or call "
                "`adapt(dataset)` before you can start using the `Discretization` layer."
            )
        indices = np.digitize(np.asarray(inputs, "float32"), np.asarray(self.bin_boundaries, "float32"))
        dtype = "int32" if self.output_mode == "int" else self.dtype
        return convert_to_tensor(_encode(indices, self.output_mode, len(self.bin_boundaries) + 1, dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Adapted boundaries are kept; the bin count that found them is then dropped, as in Keras.
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            config["num_bins"] = None
        config.pop("trainable", None)
        config.pop("batch_input_shape", None)
        return cls(**config)


def _scale_value(name, value):
    """A float, or a list of floats (nested for arrays), as Keras's config keeps them."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a float or an array of floats, received {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a float or an array of floats, received {value!r:.80}") from None
    return array.tolist()


class Rescaling(Layer):
    """`inputs * scale + offset`, in the layer's dtype (integer inputs too), as Keras's.

    `scale` and `offset` may be arrays broadcasting against the inputs (per channel on the last
    axis: rnnkit's image data format is always channels_last, where Keras's channels_first
    global setting would lay an array `scale` along a leading channel axis). Masks pass through.

    Args:
        scale: A float or an array of floats.
        offset: A float or an array of floats.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _scale_value("scale", scale)
        self.offset = _scale_value("offset", offset)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        if inputs.dtype != self.dtype:
            inputs = ops.cast(inputs, self.dtype)
        return inputs * np.asarray(self.scale, self.dtype) + np.asarray(self.offset, self.dtype)

    def compute_output_shape(self, input_shape):
        """The input's shape (the values change, not the shape)."""
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
