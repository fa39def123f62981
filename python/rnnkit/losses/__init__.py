"""Losses with Keras 3's names, arguments, defaults and configs; gradient tapes differentiate them.

A `Loss` instance maps `(y_true, y_pred, sample_weight)` to a scalar Tensor (or per-sample losses
with `reduction=None`); the function forms return one loss per sample. The cross-entropies are
each ONE recorded op whose forward and backward are fused numpy kernels, so a training step does
not pay for a chain of small ops on the tape.
"""

from rnnkit._registry import Registry
from rnnkit.losses.ctc import CTC, ctc
from rnnkit.losses.hinge_losses import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from rnnkit.losses.loss import EPSILON as EPSILON
from rnnkit.losses.loss import Loss, LossFunctionWrapper
from rnnkit.losses.loss import apply_mask as apply_mask
from rnnkit.losses.loss import reduce_values as reduce_values
from rnnkit.losses.loss import reduce_weighted_values as reduce_weighted_values
from rnnkit.losses.loss import squeeze_or_expand_to_same_rank as squeeze_or_expand_to_same_rank
from rnnkit.losses.loss import standardize_reduction as standardize_reduction
from rnnkit.losses.probabilistic import (
    KLD,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    kld,
    poisson,
    sparse_categorical_crossentropy,
)
from rnnkit.losses.regression import (
    MAPE,
    MSLE,
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
)

__all__ = [
    "KLD",
    "MAPE",
    "MSLE",
    "CTC",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "ctc",
    "categorical_hinge",
    "cosine_similarity",
    "deserialize",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "log_cosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "serialize",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]


_registry = Registry(
    "loss",
    "keras.losses",
    # Classes first: their snake_case names ("huber", "mean_squared_error", ...) are taken over by
    # the functions of the same name, as in Keras, where a name gives the function.
    [
        Loss,
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        CosineSimilarity,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        LogCosh,
        KLDivergence,
        Poisson,
        CTC,
        mean_squared_error,
        mean_absolute_error,
        huber,
        binary_crossentropy,
        categorical_crossentropy,
        sparse_categorical_crossentropy,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        cosine_similarity,
        hinge,
        squared_hinge,
        categorical_hinge,
        log_cosh,
        kl_divergence,
        poisson,
        ctc,
    ],
    aliases={
        "mse": mean_squared_error,
        "MSE": mean_squared_error,
        "mae": mean_absolute_error,
        "MAE": mean_absolute_error,
        "bce": binary_crossentropy,
        "BCE": binary_crossentropy,
        "mape": mean_absolute_percentage_error,
        "MAPE": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "MSLE": mean_squared_logarithmic_error,
        "kld": kl_divergence,
        "KLD": kl_divergence,
    },
)


def serialize(loss):
    """Returns a loss's config as Keras writes it (a name for a built-in function).

    Args:
        loss: A Loss or a built-in loss function.

    Returns:
        A dict with "module", "class_name", "config" and "registered_name", or a name.
    """
    return _registry.serialize(loss)


def deserialize(config):
    """Creates a loss from a name or a config written by `serialize` (or Keras).

    Args:
        config: A name such as "mse", or a dict with "class_name" and "config".

    Returns:
        A Loss instance, or a loss function for a function name.

    Raises:
        ValueError: If the name is unknown.
    """
    return _registry.deserialize(config)


def get(identifier):
    """Resolves a loss identifier as `keras.losses.get` does.

    Args:
        identifier: None; a function name ("sparse_categorical_crossentropy", "mse", "mae",
            "binary_crossentropy", "huber", ...), which gives the function; a class name
            ("SparseCategoricalCrossentropy", ...), which gives an instance; a config dict; a Loss
            class or instance; or any callable.

    Returns:
        A loss function or Loss instance, or None for None.

    Raises:
        ValueError: If the identifier cannot be interpreted; the message names it.
    """
    return _registry.get(identifier)
