"""Probabilistic metrics: the means of the KL divergence and Poisson losses."""

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
