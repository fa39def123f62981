"""Tests of rnnkit.losses and rnnkit.metrics: values and configs against Keras 3, gradients
against central finite differences, and the resolution of "accuracy"."""

import os

# Keras is imported once per process, so every test module that imports it must agree on the
# backend: test_keras_parity.py and test_optimizers.py need JAX. Loss and metric values agree on
# the numpy and JAX backends (except BCE from logits at extreme logits, where the numpy backend
# clips; the parity cases use moderate logits).
os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import losses, metrics  # noqa: E402


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


_rng = np.random.default_rng(0)
B, T, C = 6, 3, 5


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


LOGITS = (_rng.normal(size=(B, C)) * 2).astype(np.float32)
PROBS = _softmax(LOGITS)
UNNORMALISED = _rng.uniform(0.1, 2.0, size=(B, C)).astype(np.float32)  # Keras normalises these
LABELS = _rng.integers(0, C, size=B)
ONE_HOT = np.eye(C, dtype=np.float32)[LABELS]
SOFT_TARGETS = _softmax(_rng.normal(size=(B, C))).astype(np.float32)
SEQ_LOGITS = (_rng.normal(size=(B, T, C)) * 2).astype(np.float32)
SEQ_LABELS = _rng.integers(0, C, size=(B, T))
IGNORED_LABELS = np.where(_rng.uniform(size=(B, T)) < 0.3, -1, SEQ_LABELS)
BIN_TRUE = _rng.integers(0, 2, size=(B, 3)).astype(np.float32)
BIN_LOGITS = (_rng.normal(size=(B, 3)) * 2).astype(np.float32)
BIN_PROBS = _sigmoid(BIN_LOGITS).astype(np.float32)
REG_TRUE = _rng.normal(size=(B, 4)).astype(np.float32)
REG_PRED = (REG_TRUE + _rng.normal(size=(B, 4)) * 1.5).astype(np.float32)
WEIGHTS = _rng.uniform(0.0, 2.0, size=B).astype(np.float32)
SEQ_WEIGHTS = _rng.uniform(0.0, 2.0, size=(B, T)).astype(np.float32)

IGNORE = {"from_logits": True, "ignore_class": -1}

# (class name, constructor arguments, y_true, y_pred, sample weights to try)
LOSS_CASES = [
    ("SparseCategoricalCrossentropy", {}, LABELS, PROBS, WEIGHTS),
    ("SparseCategoricalCrossentropy", {}, LABELS[:, None], UNNORMALISED, WEIGHTS),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, LABELS, LOGITS, WEIGHTS),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, SEQ_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("SparseCategoricalCrossentropy", IGNORE, IGNORED_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("SparseCategoricalCrossentropy", {"ignore_class": 2}, LABELS, PROBS, WEIGHTS),
    ("CategoricalCrossentropy", {}, ONE_HOT, PROBS, WEIGHTS),
    ("CategoricalCrossentropy", {}, SOFT_TARGETS, UNNORMALISED, WEIGHTS),
    ("CategoricalCrossentropy", {"from_logits": True}, ONE_HOT, LOGITS, WEIGHTS),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, ONE_HOT, PROBS, WEIGHTS),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, SOFT_TARGETS, LOGITS, WEIGHTS),
    ("BinaryCrossentropy", {}, BIN_TRUE, BIN_PROBS, WEIGHTS),
    ("BinaryCrossentropy", {"from_logits": True}, BIN_TRUE, BIN_LOGITS, WEIGHTS),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, BIN_TRUE, BIN_PROBS, WEIGHTS),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.3}, BIN_TRUE, BIN_LOGITS, WEIGHTS),
    ("BinaryCrossentropy", {"from_logits": True}, BIN_TRUE[:, 0], BIN_LOGITS[:, :1], WEIGHTS),
    ("BinaryCrossentropy", {}, BIN_TRUE[:, :1], BIN_PROBS[:, 0], WEIGHTS),
    ("MeanSquaredError", {}, REG_TRUE, REG_PRED, WEIGHTS),
    ("MeanSquaredError", {}, REG_TRUE[:, 0], REG_PRED[:, :1], WEIGHTS),
    ("MeanAbsoluteError", {}, REG_TRUE, REG_PRED, WEIGHTS),
    ("Huber", {}, REG_TRUE, REG_PRED, WEIGHTS),
    ("Huber", {"delta": 0.5}, REG_TRUE, REG_PRED, WEIGHTS),
    ("Huber", {"delta": 2.5}, REG_TRUE, REG_PRED, WEIGHTS),
]
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None, "none"]


def _case_id(case):
    name, kwargs, y_true, y_pred, _ = case
    return f"{name}{kwargs}{np.shape(y_true)}{np.shape(y_pred)}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", LOSS_CASES, ids=_case_id)
def test_loss_matches_keras(keras, case, weighted, reduction):
    name, kwargs, y_true, y_pred, weights = case
    sample_weight = weights if weighted else None
    ours = getattr(losses, name)(reduction=reduction, **kwargs)(y_true, y_pred, sample_weight=sample_weight)
    reference = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    theirs = reference(y_true, y_pred, sample_weight=sample_weight)
    assert isinstance(ours, rk.Tensor) and ours.dtype == np.float32
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=2e-5, atol=1e-6)


FUNCTION_CASES = [
    ("sparse_categorical_crossentropy", {}, LABELS, PROBS),
    ("sparse_categorical_crossentropy", {"from_logits": True}, SEQ_LABELS, SEQ_LOGITS),
    ("sparse_categorical_crossentropy", IGNORE, IGNORED_LABELS, SEQ_LOGITS),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, ONE_HOT, UNNORMALISED),
    ("categorical_crossentropy", {"from_logits": True}, SOFT_TARGETS, LOGITS),
    ("categorical_crossentropy", {"from_logits": True, "axis": 0}, SOFT_TARGETS, LOGITS),
    ("binary_crossentropy", {"label_smoothing": 0.2}, BIN_TRUE, BIN_PROBS),
    ("binary_crossentropy", {"from_logits": True}, BIN_TRUE, BIN_LOGITS),
    ("binary_crossentropy", {"from_logits": True, "axis": 0}, BIN_TRUE, BIN_LOGITS),
    ("mean_squared_error", {}, REG_TRUE, REG_PRED),
    ("mean_absolute_error", {}, REG_TRUE[:, :1], REG_PRED[:, 0]),
    ("huber", {"delta": 0.7}, REG_TRUE, REG_PRED),
]


@pytest.mark.parametrize("name, kwargs, y_true, y_pred", FUNCTION_CASES, ids=[f"{n}{k}" for n, k, *_ in FUNCTION_CASES])
def test_loss_functions_give_keras_per_sample_losses(keras, name, kwargs, y_true, y_pred):
    ours = getattr(losses, name)(y_true, y_pred, **kwargs)
    theirs = getattr(keras.losses, name)(y_true, y_pred, **kwargs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=2e-5, atol=1e-6)


def test_short_names_are_the_functions():
    assert losses.mse is losses.mean_squared_error and losses.mae is losses.mean_absolute_error
    for name, fn in [
        ("mse", losses.mean_squared_error),
        ("MAE", losses.mean_absolute_error),
        ("huber", losses.huber),
        ("sparse_categorical_crossentropy", losses.sparse_categorical_crossentropy),
        ("categorical_crossentropy", losses.categorical_crossentropy),
        ("binary_crossentropy", losses.binary_crossentropy),
        ("bce", losses.binary_crossentropy),
        ("mean_squared_error", losses.mean_squared_error),
    ]:
        assert losses.get(name) is fn


def test_get_resolves_classes_instances_configs_and_callables():
    assert isinstance(losses.get("SparseCategoricalCrossentropy"), losses.SparseCategoricalCrossentropy)
    assert isinstance(losses.get(losses.Huber), losses.Huber)
    instance = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(instance) is instance and losses.get(None) is None
    custom = lambda y_true, y_pred: y_pred  # noqa: E731
    assert losses.get(custom) is custom
    config = {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}
    assert losses.get(config).from_logits is True
    restored = losses.deserialize(losses.serialize(losses.Huber(delta=3.0, name="h")))
    assert isinstance(restored, losses.Huber) and restored.get_config()["delta"] == 3.0
    with pytest.raises(ValueError, match="no_such_loss"):
        losses.get("no_such_loss")
    with pytest.raises(ValueError, match="42"):
        losses.get(42)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": -1}),
        ("CategoricalCrossentropy", {"label_smoothing": 0.1, "axis": 1, "reduction": "sum"}),
        ("BinaryCrossentropy", {"from_logits": True, "name": "bce"}),
        ("MeanSquaredError", {"reduction": None}),
        ("MeanAbsoluteError", {}),
        ("Huber", {"delta": 2.0}),
    ],
)
def test_loss_configs_extend_keras(keras, name, kwargs):
    ours = getattr(losses, name)(**kwargs).get_config()
    theirs = getattr(keras.losses, name)(**kwargs).get_config()
    # Keras 3.15 leaves SparseCategoricalCrossentropy's axis and Huber's delta out; we keep them.
    assert {k: v for k, v in ours.items() if k not in ("axis", "delta") or k in theirs} == theirs
    rebuilt = getattr(losses, name).from_config(theirs)
    assert {k: rebuilt.get_config()[k] for k in theirs} == theirs
    assert getattr(losses, name).from_config(ours).get_config() == ours


def test_unknown_reduction_raises():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")


def test_shape_mismatches_raise():
    with pytest.raises(ValueError, match="same shape"):
        losses.categorical_crossentropy(ONE_HOT[:, :3], PROBS)
    with pytest.raises(ValueError, match="same shape"):
        losses.sparse_categorical_crossentropy(SEQ_LABELS, PROBS)


def test_default_names_follow_keras():
    assert losses.SparseCategoricalCrossentropy().name == "sparse_categorical_crossentropy"
    assert losses.Huber().name == "huber_loss" and losses.MeanSquaredError().name == "mean_squared_error"


# Numerical stability and dtypes


def test_crossentropy_from_extreme_logits_is_finite_and_exact():
    logits = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]])
    loss = losses.sparse_categorical_crossentropy(np.array([1, 2]), logits, from_logits=True)
    np.testing.assert_allclose(np.asarray(loss), [2000.0, 1 + np.log1p(np.exp(-1))], rtol=1e-12)
    z = np.array([[100.0, -100.0, 0.0]])
    bce = losses.binary_crossentropy(np.array([[0.0, 0.0, 1.0]]), z, from_logits=True)
    np.testing.assert_allclose(float(bce[0]), (100 + 0 + np.log(2)) / 3, rtol=1e-12)
    with rk.GradientTape() as tape:
        x = rk.Variable(z)
        loss = losses.binary_crossentropy(np.array([[0.0, 1.0, 1.0]]), x, from_logits=True)
    np.testing.assert_allclose(np.asarray(tape.gradient(loss, x)), [[1 / 3, -1 / 3, -1 / 6]], rtol=1e-12)


def test_probabilities_are_clipped_like_keras():
    # log(1e-7): a zero probability for the target costs 16.118..., not infinity.
    loss = losses.sparse_categorical_crossentropy(np.array([0]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(float(loss[0]), -np.log(1e-7), rtol=1e-6)
    bce = losses.binary_crossentropy(np.array([[1.0]]), np.array([[0.0]]))
    np.testing.assert_allclose(float(bce[0]), -np.log(1e-7), rtol=1e-6)


def test_dtype_follows_predictions_unless_given():
    y_pred = PROBS.astype(np.float64)
    assert losses.SparseCategoricalCrossentropy()(LABELS, y_pred).dtype == np.float64
    assert losses.SparseCategoricalCrossentropy(dtype="float32")(LABELS, y_pred).dtype == np.float32
    assert losses.MeanSquaredError()(np.array([[1, 2]]), np.array([[1, 3]])).dtype == np.float32


def test_ignore_class_averages_over_the_kept_entries():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)(IGNORED_LABELS, SEQ_LOGITS)
    kept = IGNORED_LABELS != -1
    per_entry = np.asarray(losses.sparse_categorical_crossentropy(SEQ_LABELS, SEQ_LOGITS, from_logits=True))
    np.testing.assert_allclose(float(loss), per_entry[kept].mean(), rtol=1e-6)


def test_output_mask_is_honoured():
    y_pred = rk.Tensor(SEQ_LOGITS)
    mask = SEQ_LABELS > 0
    y_pred._keras_mask = rk.Tensor(mask)
    per_entry = np.asarray(losses.sparse_categorical_crossentropy(SEQ_LABELS, SEQ_LOGITS, from_logits=True))
    scce = losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(float(scce(SEQ_LABELS, y_pred)), per_entry[mask].mean(), rtol=1e-6)
    summed = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")(SEQ_LABELS, y_pred)
    np.testing.assert_allclose(float(summed), per_entry[mask].sum(), rtol=1e-6)


# Gradients


def _finite_difference(fn, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


def _away_from_kinks(y_true, y_pred, delta):
    # Moves predictions away from |error| = 0 and |error| = delta, where MAE and Huber have kinks.
    error = y_pred - y_true
    too_close = (np.abs(np.abs(error) - delta) < 0.05) | (np.abs(error) < 0.05)
    return np.where(too_close, y_pred + 0.2, y_pred)


GRADIENT_CASES = [
    ("SparseCategoricalCrossentropy", {}, LABELS, PROBS, WEIGHTS),
    ("SparseCategoricalCrossentropy", {}, LABELS, UNNORMALISED, WEIGHTS),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, SEQ_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("SparseCategoricalCrossentropy", IGNORE, IGNORED_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("CategoricalCrossentropy", {}, SOFT_TARGETS, UNNORMALISED, WEIGHTS),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, ONE_HOT, LOGITS, WEIGHTS),
    ("CategoricalCrossentropy", {"from_logits": True, "axis": 0}, SOFT_TARGETS, LOGITS, None),
    ("BinaryCrossentropy", {}, BIN_TRUE, BIN_PROBS, WEIGHTS),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, BIN_TRUE, BIN_LOGITS, WEIGHTS),
    ("MeanSquaredError", {}, REG_TRUE, REG_PRED, WEIGHTS),
    ("MeanAbsoluteError", {}, REG_TRUE, _away_from_kinks(REG_TRUE, REG_PRED, 0.0), WEIGHTS),
    ("Huber", {"delta": 0.8}, REG_TRUE, _away_from_kinks(REG_TRUE, REG_PRED, 0.8), WEIGHTS),
]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=_case_id)
def test_loss_gradients_match_finite_differences(case, reduction):
    name, kwargs, y_true, y_pred, weights = case
    loss = getattr(losses, name)(reduction=reduction, **kwargs)
    y_pred = y_pred.astype(np.float64)
    with rk.GradientTape() as tape:
        x = rk.Variable(y_pred)
        value = loss(y_true, x, sample_weight=weights)
    assert value.dtype == np.float64
    expected = _finite_difference(lambda p: float(loss(y_true, p, sample_weight=weights)), y_pred)
    np.testing.assert_allclose(np.asarray(tape.gradient(value, x)), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight"])
@pytest.mark.parametrize(
    "name, kwargs, y_true",
    [
        ("CategoricalCrossentropy", {}, SOFT_TARGETS),
        ("CategoricalCrossentropy", {"label_smoothing": 0.2}, ONE_HOT),
        ("SparseCategoricalCrossentropy", {}, LABELS),
    ],
)
@pytest.mark.parametrize("scale", [1.0, 15.0], ids=["moderate", "clipped"])
def test_crossentropy_of_a_softmax_differentiates_the_logits(name, kwargs, y_true, scale, reduction):
    # A softmax's probabilities carry their logits, and the cross-entropy differentiates those in
    # one step; the gradient is still that of the clipped probabilities' cross-entropy. At scale 15
    # some probabilities lie below 1e-7 or above 1 - 1e-7, where the clip stops the gradient.
    logits = (LOGITS * scale).astype(np.float64)
    probs = _softmax(logits)
    assert scale == 1.0 or ((probs < 1e-7).any() and (probs > 1 - 1e-7).any())
    loss = getattr(losses, name)(reduction=reduction, **kwargs)
    with rk.GradientTape() as tape:
        z = rk.Variable(logits)
        p = rk.ops.softmax(z)
        value = loss(y_true, p, sample_weight=WEIGHTS)
    assert p._keras_logits is z
    np.testing.assert_allclose(float(value), float(loss(y_true, probs, sample_weight=WEIGHTS)), rtol=1e-12)
    expected = _finite_difference(lambda x: float(loss(y_true, _softmax(x), sample_weight=WEIGHTS)), logits)
    np.testing.assert_allclose(np.asarray(tape.gradient(value, z)), expected, rtol=1e-6, atol=1e-8)


def test_mean_loss_with_zero_weights_is_zero_with_a_zero_gradient():
    loss = losses.MeanSquaredError(reduction="mean_with_sample_weight")
    with rk.GradientTape() as tape:
        x = rk.Variable(REG_PRED)
        value = loss(REG_TRUE, x, sample_weight=np.zeros(len(REG_PRED), np.float32))
    assert float(value) == 0.0
    np.testing.assert_array_equal(tape.gradient(value, x), np.zeros_like(REG_PRED))


@pytest.mark.parametrize(
    "fn, kwargs, y_true, y_pred",
    [
        (losses.categorical_crossentropy, {}, SOFT_TARGETS, UNNORMALISED),
        (losses.categorical_crossentropy, {"from_logits": True, "label_smoothing": 0.3}, ONE_HOT, LOGITS),
        (losses.binary_crossentropy, {}, BIN_PROBS[::-1], BIN_PROBS),
        (losses.binary_crossentropy, {"from_logits": True}, BIN_PROBS[::-1], BIN_LOGITS),
    ],
)
def test_soft_target_gradients_match_finite_differences(fn, kwargs, y_true, y_pred):
    y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
    with rk.GradientTape() as tape:
        t = rk.Variable(y_true)
        value = rk.ops.sum(fn(t, y_pred, **kwargs))
    expected = _finite_difference(lambda s: float(np.sum(np.asarray(fn(s, y_pred, **kwargs)))), y_true)
    np.testing.assert_allclose(np.asarray(tape.gradient(value, t)), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "fn, y_true, y_pred",
    [
        (losses.sparse_categorical_crossentropy, SEQ_LABELS, SEQ_LOGITS),
        (losses.categorical_crossentropy, ONE_HOT, LOGITS),
        (losses.binary_crossentropy, BIN_TRUE, BIN_LOGITS),
    ],
)
@pytest.mark.parametrize("from_logits", [True, False])
def test_crossentropies_are_one_recorded_op(fn, y_true, y_pred, from_logits):
    y_pred = y_pred if from_logits else np.abs(y_pred) + 0.1
    with rk.GradientTape() as tape:
        x = rk.Variable(y_pred)
        fn(y_true, x, from_logits=from_logits)
    assert len(tape._nodes) == 1


# Metrics


def _halves(*arrays):
    """Splits the arrays into two batches, to check that metrics accumulate."""
    return [tuple(a[: B // 2] for a in arrays), tuple(a[B // 2 :] for a in arrays)]


BIN_SCORES = _rng.uniform(size=(B, 1)).astype(np.float32)
INT_PRED = _rng.integers(0, 3, size=(B, 1))
TOP_SCORES = np.round(_rng.normal(size=(B, 8)), 1).astype(np.float32)  # rounding makes ties
TOP_SCORES[0, :] = 0.5  # all tied: the target counts as in the top k
TOP_LABELS = _rng.integers(0, 8, size=B)

# (class name, constructor arguments, y_true, y_pred, sample weights)
METRIC_CASES = [
    ("Accuracy", {}, _rng.integers(0, 3, size=(B, 1)), INT_PRED, WEIGHTS),
    ("BinaryAccuracy", {}, BIN_TRUE[:, :1], BIN_SCORES, WEIGHTS),
    ("BinaryAccuracy", {"threshold": 0.7}, BIN_TRUE[:, 0], BIN_SCORES, WEIGHTS),
    ("BinaryAccuracy", {}, BIN_TRUE, BIN_PROBS, WEIGHTS),
    ("CategoricalAccuracy", {}, ONE_HOT, PROBS, WEIGHTS),
    ("CategoricalAccuracy", {}, np.eye(C)[SEQ_LABELS], SEQ_LOGITS, SEQ_WEIGHTS),
    ("SparseCategoricalAccuracy", {}, LABELS, PROBS, WEIGHTS),
    ("SparseCategoricalAccuracy", {}, LABELS[:, None], PROBS, WEIGHTS[:, None]),
    ("SparseCategoricalAccuracy", {}, SEQ_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("SparseCategoricalAccuracy", {}, SEQ_LABELS, SEQ_LOGITS, WEIGHTS),
    ("TopKCategoricalAccuracy", {}, np.eye(8)[TOP_LABELS], TOP_SCORES, WEIGHTS),
    ("TopKCategoricalAccuracy", {"k": 2}, np.eye(8)[TOP_LABELS], TOP_SCORES, WEIGHTS),
    ("SparseTopKCategoricalAccuracy", {}, TOP_LABELS, TOP_SCORES, WEIGHTS),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, TOP_LABELS[:, None], TOP_SCORES, WEIGHTS),
    ("SparseTopKCategoricalAccuracy", {"k": 1}, SEQ_LABELS, SEQ_LOGITS, SEQ_WEIGHTS),
    ("MeanSquaredError", {}, REG_TRUE, REG_PRED, WEIGHTS),
    ("MeanSquaredError", {}, REG_TRUE, REG_PRED, WEIGHTS[:, None]),
    ("MeanAbsoluteError", {}, REG_TRUE, REG_PRED, WEIGHTS),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", METRIC_CASES, ids=_case_id)
def test_metric_matches_keras(keras, case, weighted):
    name, kwargs, y_true, y_pred, weights = case
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for batch_true, batch_pred, batch_weights in _halves(y_true, y_pred, weights):
        sample_weight = batch_weights if weighted else None
        ours.update_state(batch_true, batch_pred, sample_weight=sample_weight)
        theirs.update_state(batch_true, batch_pred, sample_weight=sample_weight)
        result = ours.result()
        assert isinstance(result, np.float32)
        np.testing.assert_allclose(result, np.asarray(theirs.result()), rtol=1e-6)
    ours.reset_state()
    assert ours.result() == 0
    fresh = getattr(keras.metrics, name)(**kwargs)
    np.testing.assert_allclose(ours(y_true, y_pred), np.asarray(fresh(y_true, y_pred)), rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("values", [REG_TRUE[:, 0], REG_TRUE, np.float32(3.0)], ids=["vector", "matrix", "0d"])
def test_mean_matches_keras(keras, values, weighted):
    sample_weight = WEIGHTS if weighted and np.ndim(values) else None
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for _ in range(2):
        ours.update_state(values, sample_weight=sample_weight)
        theirs.update_state(values, sample_weight=sample_weight)
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-6)


def test_metric_of_masked_predictions_skips_masked_entries():
    y_pred = rk.Tensor(SEQ_LOGITS)
    mask = SEQ_LABELS != 1
    y_pred._keras_mask = rk.Tensor(mask)
    metric = metrics.SparseCategoricalAccuracy()
    metric.update_state(SEQ_LABELS, y_pred)
    hits = SEQ_LABELS == SEQ_LOGITS.argmax(-1)
    np.testing.assert_allclose(metric.result(), hits[mask].sum() / mask.sum(), rtol=1e-6)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("Mean", {"name": "m"}),
        ("Accuracy", {}),
        ("BinaryAccuracy", {"threshold": 0.3}),
        ("CategoricalAccuracy", {"dtype": "float16"}),
        ("SparseCategoricalAccuracy", {}),
        ("TopKCategoricalAccuracy", {"k": 3}),
        ("SparseTopKCategoricalAccuracy", {"k": 2, "from_sorted_ids": True}),
        ("MeanSquaredError", {}),
        ("MeanAbsoluteError", {"name": "err"}),
    ],
)
def test_metric_configs_match_keras(keras, name, kwargs):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name and ours.get_config() == theirs.get_config()
    assert getattr(metrics, name).from_config(ours.get_config()).get_config() == ours.get_config()


def test_sparse_top_k_from_sorted_ids_matches_keras(keras):
    ids = np.argsort(-TOP_SCORES, axis=-1)[:, :4]
    ours = metrics.SparseTopKCategoricalAccuracy(k=3, from_sorted_ids=True)
    theirs = keras.metrics.SparseTopKCategoricalAccuracy(k=3, from_sorted_ids=True)
    np.testing.assert_allclose(ours(TOP_LABELS, ids), np.asarray(theirs(TOP_LABELS, ids)))


@pytest.mark.parametrize(
    "identifier, cls",
    [
        ("accuracy", metrics.Accuracy),
        ("acc", metrics.Accuracy),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
        ("categorical_accuracy", metrics.CategoricalAccuracy),
        ("binary_accuracy", metrics.BinaryAccuracy),
        ("mae", metrics.MeanAbsoluteError),
        ("mse", metrics.MeanSquaredError),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
        ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
        ("SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy),
        (metrics.Mean, metrics.Mean),
        ({"class_name": "BinaryAccuracy", "config": {"threshold": 0.9}}, metrics.BinaryAccuracy),
    ],
)
def test_metrics_get(identifier, cls):
    metric = metrics.get(identifier)
    assert type(metric) is cls


def test_metrics_get_passes_instances_and_rejects_unknown_names():
    metric = metrics.BinaryAccuracy(threshold=0.9)
    assert metrics.get(metric) is metric and metrics.get(None) is None
    assert metrics.get({"class_name": "BinaryAccuracy", "config": {"threshold": 0.9}}).threshold == 0.9
    with pytest.raises(ValueError, match="accuracyy"):
        metrics.get("accuracyy")


# compile(metrics=["accuracy"]): shapes of (y_true, y_pred), the loss, and what Keras picks.
RESOLVE_CASES = [
    ((B,), (B, C), "sparse_categorical_crossentropy", "SparseCategoricalAccuracy"),
    ((B, 1), (B, C), losses.SparseCategoricalCrossentropy(), "SparseCategoricalAccuracy"),
    ((B, T), (B, T, C), "sparse_categorical_crossentropy", "SparseCategoricalAccuracy"),
    ((B, C), (B, C), "categorical_crossentropy", "CategoricalAccuracy"),
    ((B, T, C), (B, T, C), losses.CategoricalCrossentropy(), "CategoricalAccuracy"),
    ((B, 1), (B, 1), "binary_crossentropy", "BinaryAccuracy"),
    ((B,), (B, 1), losses.BinaryCrossentropy(), "BinaryAccuracy"),
    ((B, T, 1), (B, T, 1), "binary_crossentropy", "BinaryAccuracy"),
    # Keras 3 looks at shapes only: multi-label binary cross-entropy gets categorical accuracy.
    ((B, 3), (B, 3), losses.BinaryCrossentropy(), "CategoricalAccuracy"),
    ((B, 2), (B, 2), "mse", "CategoricalAccuracy"),
]


@pytest.mark.parametrize("identifier", ["accuracy", "acc"])
@pytest.mark.parametrize("true_shape, pred_shape, loss, expected", RESOLVE_CASES)
def test_resolve_accuracy(keras, true_shape, pred_shape, loss, expected, identifier):
    metric = metrics.resolve_accuracy(loss, true_shape, pred_shape, name=identifier)
    assert type(metric).__name__ == expected and metric.name == identifier
    from keras.src.trainers.compile_utils import get_metric

    theirs = get_metric(identifier, np.zeros(true_shape), np.zeros(pred_shape))
    assert type(theirs).__name__ == expected and theirs.name == identifier
