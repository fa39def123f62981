"""Metrics counted from the confusion matrix at thresholds: Precision, Recall and AUC."""

import numpy as np

from rnnkit import losses
from rnnkit.metrics.metric import Metric

# Keras's stand-in for minus infinity when top_k hides predictions.
_NEG_INF = -1e10


def _thresholds(thresholds, default):
    values = [default] if thresholds is None else list(np.atleast_1d(thresholds))
    for t in values:
        if not 0 <= t <= 1 and t != _NEG_INF:
            raise ValueError(f"thresholds: expected values in [0, 1], received {thresholds!r}")
    return np.asarray(values, "float64")


def _confusion(
    y_true,
    y_pred,
    thresholds,
    dtype,
    top_k=None,
    class_id=None,
    sample_weight=None,
    multi_label=False,
    label_weights=None,
):
    """Weighted true/false positives/negatives at each threshold (`y_pred > threshold` is a
    positive prediction), Keras's rules: `(thresholds,)` arrays over all entries, or
    `(thresholds, labels)` with `multi_label`."""
    y_true, y_pred = np.asarray(y_true, dtype), np.asarray(y_pred, dtype)
    y_pred, y_true = map(np.asarray, losses.squeeze_or_expand_to_same_rank(y_pred, y_true))
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype)[..., None]
        _, weights = losses.squeeze_or_expand_to_same_rank(y_true, weights, expand_rank_1=False)
        weights = np.asarray(weights)
    if top_k is not None:
        order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :top_k]
        keep = np.zeros(y_pred.shape, bool)
        np.put_along_axis(keep, order, True, axis=-1)
        y_pred = np.where(keep, y_pred, _NEG_INF).astype(dtype)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array with shape (num_samples, num_classes), "
                f"found shape: {y_pred.shape}"
            )
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
        if weights is not None and weights.ndim == y_pred.ndim and weights.shape[-1] != 1:
            weights = weights[..., class_id, None]
    weights = np.ones(y_pred.shape, dtype) if weights is None else np.broadcast_to(weights, y_pred.shape).astype(dtype)
    if label_weights is not None and not multi_label:
        weights = weights * np.broadcast_to(np.asarray(label_weights, dtype), y_pred.shape)
    label = y_true.astype(bool)
    if multi_label:
        label, pred, weights = label[None], y_pred[None], weights[None]
        axis = 1
    else:
        label, pred, weights = label.reshape(1, -1), y_pred.reshape(1, -1), weights.reshape(1, -1)
        axis = 1
    cut = np.asarray(thresholds, dtype).reshape((-1,) + (1,) * (pred.ndim - 1))
    positive = pred > cut
    out = {}
    for key, (lab, pre) in {
        "tp": (label, positive),
        "fp": (~label, positive),
        "tn": (~label, ~positive),
        "fn": (label, ~positive),
    }.items():
        out[key] = np.sum(np.where(lab & pre, weights, 0), axis=axis).astype(dtype)
    return out


class _ConfusionMetric(Metric):
    """Precision and Recall: confusion counts at each threshold, one result per threshold.

    Args:
        thresholds: A float or list of floats in [0, 1] (0.5 by default, or all predictions kept
            by `top_k`).
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) the metric is computed for.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ()

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _thresholds(thresholds, 0.5 if top_k is None else _NEG_INF)
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's confusion counts.

        Args:
            y_true: Binary targets.
            y_pred: Predictions in [0, 1].
            sample_weight: Optional weights.
        """
        counts = _confusion(y_true, y_pred, self.thresholds, self.dtype, self.top_k, self.class_id, sample_weight)
        for key in self._counts:
            setattr(self, _COUNT_NAMES[key], getattr(self, _COUNT_NAMES[key]) + counts[key])

    def _ratio(self, other):
        tp = self.true_positives
        denominator = tp + other
        result = np.where(denominator > 0, tp / np.where(denominator > 0, denominator, 1), 0).astype(self.dtype)
        return result[0] if len(self.thresholds) == 1 else result

    def reset_state(self):
        """Sets the counts to 0."""
        for key in self._counts:
            setattr(self, _COUNT_NAMES[key], np.zeros(len(self.thresholds), self.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


_COUNT_NAMES = {"tp": "true_positives", "fp": "false_positives", "tn": "true_negatives", "fn": "false_negatives"}


class _Count(_ConfusionMetric):
    """One confusion count at each threshold (0.5 by default).

    Args:
        thresholds: A float or list of floats in [0, 1]; one count per threshold.
        name: The metric's name (by default the count's: "true_positives", ...).
        dtype: The dtype of the state and result.
    """

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(thresholds=thresholds, name=name or _COUNT_NAMES[self._counts[0]], dtype=dtype)

    def result(self):
        """Returns the count (an array for several thresholds)."""
        count = getattr(self, _COUNT_NAMES[self._counts[0]])
        return count[0] if np.ndim(self.init_thresholds) == 0 else count

    def get_config(self):
        return {**Metric.get_config(self), "thresholds": self.init_thresholds}


class TruePositives(_Count):
    """The (weighted) number of positive targets predicted above `thresholds`.

    Args:
        thresholds: A float or list of floats in [0, 1]; one count per threshold.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tp",)


class FalsePositives(_Count):
    """The (weighted) number of negative targets predicted above `thresholds`.

    Args:
        thresholds: A float or list of floats in [0, 1]; one count per threshold.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("fp",)


class TrueNegatives(_Count):
    """The (weighted) number of negative targets predicted at or below `thresholds`.

    Args:
        thresholds: A float or list of floats in [0, 1]; one count per threshold.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tn",)


class FalseNegatives(_Count):
    """The (weighted) number of positive targets predicted at or below `thresholds`.

    Args:
        thresholds: A float or list of floats in [0, 1]; one count per threshold.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("fn",)


class Precision(_ConfusionMetric):
    """Precision, `tp / (tp + fp)`, of predictions above `thresholds` (0.5 by default).

    Args:
        thresholds: A float or list of floats in [0, 1]; one result per threshold.
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) to compute the precision of.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tp", "fp")

    def result(self):
        """Returns the precision (an array for several thresholds)."""
        return self._ratio(self.false_positives)


class Recall(_ConfusionMetric):
    """Recall, `tp / (tp + fn)`, of predictions above `thresholds` (0.5 by default).

    Args:
        thresholds: A float or list of floats in [0, 1]; one result per threshold.
        top_k: Optional int: only the `top_k` highest predictions of each sample count as positive.
        class_id: Optional int: the class (last-axis index) to compute the recall of.
        name: The metric's name.
        dtype: The dtype of the state and result.
    """

    _counts = ("tp", "fn")

    def result(self):
        """Returns the recall (an array for several thresholds)."""
        return self._ratio(self.false_negatives)


def _divide_no_nan(a, b):
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0)


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from confusion counts at `num_thresholds`
    thresholds (Keras's Riemann sums, and Davis & Goadrich's interpolation for PR).

    Args:
        num_thresholds: Number of thresholds (> 1), evenly spaced in [0, 1] with the ends nudged
            by 1e-7 outward.
        curve: "ROC", "PR" or "PRGAIN".
        summation_method: "interpolation", "minoring" or "majoring".
        name: The metric's name.
        dtype: The dtype of the state and result.
        thresholds: Optional list of thresholds in [0, 1] used instead of `num_thresholds`.
        multi_label: Whether each label (last axis of rank-2 predictions) gets its own curve,
            the AUCs then averaged.
        num_labels: The number of labels with `multi_label` (else taken from the first batch).
        label_weights: Optional per-label weights (of the average with `multi_label`, of the
            counts otherwise).
        from_logits: Whether predictions are logits (a sigmoid is applied).
    """

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        super().__init__(name=name, dtype=dtype)
        curve = str(curve).upper()
        if curve not in ("ROC", "PR", "PRGAIN"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        summation_method = str(summation_method).lower()
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                '["interpolation", "majoring", "minoring"]'
            )
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 1:
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self._thresholds = np.array([0.0 - losses.EPSILON, *inner, 1.0 + losses.EPSILON])
        self.curve = curve
        self.summation_method = summation_method
        self.multi_label = multi_label
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, self.dtype)
        self.from_logits = from_logits
        self._shape = None
        if not multi_label:
            self._shape = (self.num_thresholds,)
        elif num_labels:
            self._shape = (self.num_thresholds, int(num_labels))
        self.reset_state()

    @property
    def thresholds(self):
        """The thresholds, the two nudged ends included."""
        return list(self._thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch's confusion counts.

        Args:
            y_true: Binary targets.
            y_pred: Predictions in [0, 1] (logits with `from_logits`).
            sample_weight: Optional weights.
        """
        y_pred = np.asarray(y_pred, self.dtype)
        if self.from_logits:
            y_pred = (1 / (1 + np.exp(-y_pred))).astype(self.dtype)
        if self._shape is None:
            if y_pred.ndim != 2:
                raise ValueError(
                    f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {y_pred.ndim}. "
                    f"Full shape received for `y_pred`: {y_pred.shape}"
                )
            self._shape = (self.num_thresholds, y_pred.shape[1])
            self.reset_state()
        counts = _confusion(
            y_true,
            y_pred,
            self._thresholds,
            self.dtype,
            sample_weight=sample_weight,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )
        for key, attr in _COUNT_NAMES.items():
            setattr(self, attr, getattr(self, attr) + counts[key].reshape(self._shape))

    def _average(self, by_label):
        if not self.multi_label:
            return by_label
        if self.label_weights is None:
            return np.mean(by_label)
        return _divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights))

    def _interpolate_pr_auc(self):
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[: n - 1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[: n - 1], np.maximum(p[1:], 0)), 1)
        increment = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return self._average(np.sum(increment, axis=0))

    def result(self):
        """Returns the area under the curve."""
        if self._shape is None:
            return np.zeros((), self.dtype)[()]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.curve == "PR" and self.summation_method == "interpolation":
                return np.asarray(self._interpolate_pr_auc(), self.dtype)[()]
            tp, fp = self.true_positives, self.false_positives
            tn, fn = self.true_negatives, self.false_negatives
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            elif self.curve == "PR":
                x, y = recall, _divide_no_nan(tp, tp + fp)
            else:
                scale = _divide_no_nan(tp + fn, tn + fp)
                x = np.maximum(np.where(tp == 0, 0, 1 - scale * _divide_no_nan(fn, tp)), 0)
                y = np.where(tp == 0, 1, 1 - scale * _divide_no_nan(fp, tp))
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            return np.asarray(self._average(np.sum((x[:-1] - x[1:]) * heights, axis=0)), self.dtype)[()]

    def reset_state(self):
        """Sets the counts to 0."""
        for attr in _COUNT_NAMES.values():
            setattr(self, attr, None if self._shape is None else np.zeros(self._shape, self.dtype))

    def get_config(self):
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return config
