"""FBetaScore and F1Score, from the counts of true and false positives and negatives."""

import numpy as np

from rnnkit import losses
from rnnkit.metrics.metric import Metric


class FBetaScore(Metric):
    """The F-beta score per class, `(1 + b²) * p * r / (b² * p + r)`, of rank-2 one-hot targets
    and predictions; predictions above `threshold` are positive (with no threshold, each sample's
    largest prediction).

    Args:
        average: None (a score per class), "micro" (from counts summed over classes), "macro"
            (mean of the class scores) or "weighted" (mean weighted by each class's support).
        beta: The weight of recall relative to precision (a float > 0).
        threshold: Optional float in (0, 1].
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', 'weighted'}. "
                f"Received: average={average!r}"
            )
        if not isinstance(beta, float) or beta <= 0:
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or not 0 < threshold <= 1):
            raise ValueError(
                "Invalid `threshold` argument value. It should be a Python float with 0 < threshold <= 1. "
                f"Received: threshold={threshold!r}"
            )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self._classes = None
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's per-class counts.

        Args:
            y_true: One-hot (or multi-hot) targets, `(batch, classes)`.
            y_pred: Predictions, `(batch, classes)`.
            sample_weight: Optional per-sample weights.
        """
        y_true, y_pred = np.asarray(y_true, self.dtype), np.asarray(y_pred, self.dtype)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                "FBetaScore expects 2D inputs with shape (batch_size, output_dim). Received input shapes: "
                f"y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}."
            )
        if self._classes is None:
            self._classes = y_pred.shape[-1]
            self.reset_state()
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(self.dtype)
        weights = None if sample_weight is None else np.asarray(sample_weight, self.dtype).reshape(-1, 1)
        axis = None if self.average == "micro" else 0

        def total(values):
            return np.sum(values if weights is None else values * weights, axis=axis)

        self.true_positives = self.true_positives + total(predicted * y_true)
        self.false_positives = self.false_positives + total(predicted * (1 - y_true))
        self.false_negatives = self.false_negatives + total((1 - predicted) * y_true)
        self.intermediate_weights = self.intermediate_weights + total(y_true)

    def result(self):
        """Returns the score (per class with `average=None`)."""
        eps = losses.EPSILON
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + eps)
        recall = tp / (tp + self.false_negatives + eps)
        score = precision * recall / (self.beta**2 * precision + recall + eps) * (1 + self.beta**2)
        if self.average == "weighted":
            score = np.sum(score * self.intermediate_weights / (np.sum(self.intermediate_weights) + eps))
        elif self.average is not None:
            score = np.mean(score)
        return np.asarray(score, self.dtype)[()]

    def reset_state(self):
        """Sets the counts to 0."""
        shape = () if self.average == "micro" else (self._classes or 0,)
        for attr in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, attr, np.zeros(shape, self.dtype))

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """The F1 score (`FBetaScore` with beta 1): the harmonic mean of precision and recall.

    Args:
        average: None, "micro", "macro" or "weighted"; see `FBetaScore`.
        threshold: Optional float in (0, 1]; see `FBetaScore`.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config
