"""Hinge metrics: the means of the hinge losses."""

from rnnkit import losses
from rnnkit.metrics.reduction_metrics import MeanMetricWrapper


class Hinge(MeanMetricWrapper):
    """The mean hinge loss; see `losses.hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="hinge", dtype=None):
        super().__init__(losses.hinge, name=name, dtype=dtype)


class SquaredHinge(MeanMetricWrapper):
    """The mean squared hinge loss; see `losses.squared_hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(losses.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(MeanMetricWrapper):
    """The mean categorical hinge loss; see `losses.categorical_hinge`.

    Args:
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(losses.categorical_hinge, name=name, dtype=dtype)
