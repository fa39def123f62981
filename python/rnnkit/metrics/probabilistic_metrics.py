"""Probabilistic metrics: the means of the cross-entropy, KL divergence and Poisson losses."""

from rnnkit import losses
from rnnkit.metrics.reduction_metrics import MeanMetricWrapper


class KLDivergence(MeanMetricWrapper):
    """The mean Kullback-Leibler divergence; see `losses.kl_divergence`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(losses.kl_divergence, name=name, dtype=dtype)


class Poisson(MeanMetricWrapper):
    """The mean Poisson loss; see `losses.poisson`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="poisson", dtype=None):
        super().__init__(losses.poisson, name=name, dtype=dtype)


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean binary cross-entropy; see `losses.binary_crossentropy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
        from_logits: Whether predictions are logits.
        label_smoothing: In [0, 1]; squeezes targets towards 0.5.
    """

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(
            losses.binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class CategoricalCrossentropy(MeanMetricWrapper):
    """The mean cross-entropy of one-hot (or soft) targets; see `losses.categorical_crossentropy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
        from_logits: Whether predictions are logits.
        label_smoothing: In [0, 1]; mixes the targets with the uniform distribution.
        axis: The class axis.
    """

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        super().__init__(
            losses.categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The mean cross-entropy of integer targets; see `losses.sparse_categorical_crossentropy`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
        from_logits: Whether predictions are logits.
        ignore_class: Optional target value whose entries are left out.
        axis: The class axis.
    """

    def __init__(
        self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, ignore_class=None, axis=-1
    ):
        super().__init__(
            losses.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
