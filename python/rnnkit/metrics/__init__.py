"""Metrics with Keras 3's names, arguments and configs, computed on numpy values.

A metric accumulates over batches with `update_state(y_true, y_pred, sample_weight=None)` and
reports with `result()`; `reset_state()` starts over. State and results are numpy scalars of the
metric's dtype (float32 by default, as Keras accumulates). Inputs may be Tensors, but nothing is
recorded on gradient tapes.
"""

from rnnkit._registry import Registry
from rnnkit.metrics.accuracy_metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    resolve_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from rnnkit.metrics.confusion_metrics import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from rnnkit.metrics.f_score_metrics import F1Score, FBetaScore
from rnnkit.metrics.hinge_metrics import CategoricalHinge, Hinge, SquaredHinge
from rnnkit.metrics.metric import Metric
from rnnkit.metrics.probabilistic_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
)
from rnnkit.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum
from rnnkit.metrics.regression_metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    RootMeanSquaredError,
    cosine_similarity,
)

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "Sum",
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "SquaredHinge",
    "TopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "cosine_similarity",
    "deserialize",
    "get",
    "resolve_accuracy",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


_registry = Registry(
    "metric",
    "keras.metrics",
    [
        Metric,
        Mean,
        MeanMetricWrapper,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        KLDivergence,
        Poisson,
        LogCoshError,
        CosineSimilarity,
        RootMeanSquaredError,
        Precision,
        Recall,
        AUC,
        FBetaScore,
        F1Score,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        TruePositives,
        FalsePositives,
        TrueNegatives,
        FalseNegatives,
        Sum,
    ],
    # "acc" is not a name in keras.metrics.get; compile resolves it (see resolve_accuracy).
    aliases={
        "acc": Accuracy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
    },
)


def serialize(metric):
    """Returns a metric's config as Keras writes it.

    Args:
        metric: A Metric.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name".
    """
    return _registry.serialize(metric)


def deserialize(config):
    """Creates a metric from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "mae", or a dict with "class_name" and "config".

    Returns:
        A new Metric.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a metric identifier as `keras.metrics.get` does.

    "accuracy" and "acc" give a plain `Accuracy` (exact equality) here, as in `keras.metrics.get`;
    `compile` turns them into the accuracy that fits the data with `resolve_accuracy`.

    Args:
        identifier: None; a name ("accuracy", "acc", "sparse_categorical_accuracy",
            "categorical_accuracy", "binary_accuracy", "mae", "mse", "top_k_categorical_accuracy",
            "sparse_top_k_categorical_accuracy", or a class name); a config dict; a Metric class
            or instance; or any callable.

    Returns:
        A Metric instance (a new one for names, dicts and classes), the callable, or None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message names it.
    """
    return _registry.get(identifier)
