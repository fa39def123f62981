"""The losses and metrics of issue 16 against Keras 3 (JAX backend): values on random batches
(with sample weights and several batches for metrics), loss gradients, configs, names and
masks."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import losses, metrics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def data(kind, rng, shape=(6, 4)):
    """Targets and predictions fitting each loss."""
    if kind == "probabilities":
        y_true = rng.dirichlet(np.ones(shape[-1]), size=shape[0]).astype("float32")
        y_pred = rng.dirichlet(np.ones(shape[-1]), size=shape[0]).astype("float32")
    elif kind == "hinge":
        y_true = rng.choice([-1.0, 1.0], size=shape).astype("float32")
        y_pred = rng.normal(size=shape).astype("float32")
    elif kind == "binary":
        y_true = rng.integers(0, 2, size=shape).astype("float32")
        y_pred = rng.normal(size=shape).astype("float32")
    elif kind == "onehot":
        y_true = np.eye(shape[-1], dtype="float32")[rng.integers(0, shape[-1], shape[0])]
        y_pred = rng.normal(size=shape).astype("float32")
    elif kind == "counts":
        y_true = rng.poisson(2.0, size=shape).astype("float32")
        y_pred = rng.uniform(0.1, 4.0, size=shape).astype("float32")
    else:
        y_true = rng.normal(size=shape).astype("float32")
        y_pred = rng.normal(size=shape).astype("float32")
    return y_true, y_pred


LOSSES = [
    ("MeanAbsolutePercentageError", "normal", {}),
    ("MeanSquaredLogarithmicError", "counts", {}),
    ("CosineSimilarity", "normal", {}),
    ("Hinge", "hinge", {}),
    ("Hinge", "binary", {}),
    ("SquaredHinge", "hinge", {}),
    ("SquaredHinge", "binary", {}),
    ("CategoricalHinge", "onehot", {}),
    ("LogCosh", "normal", {}),
    ("KLDivergence", "probabilities", {}),
    ("Poisson", "counts", {}),
]


@pytest.mark.parametrize("name, kind, kwargs", LOSSES)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None])
def test_losses_match_keras(keras, name, kind, kwargs, reduction):
    import jax

    rng = np.random.default_rng(len(name) + len(kind))
    y_true, y_pred = data(kind, rng)
    weights = rng.uniform(0.5, 2.0, size=y_true.shape[0]).astype("float32")
    ours = getattr(losses, name)(reduction=reduction, **kwargs)
    theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    np.testing.assert_allclose(
        np.asarray(ours(y_true, y_pred, sample_weight=weights)),
        np.asarray(theirs(y_true, y_pred, sample_weight=weights)),
        rtol=2e-5,
        atol=1e-6,
    )
    # Gradients with respect to the predictions.
    pred = rk.Tensor(y_pred)
    with rk.GradientTape() as tape:
        tape.watch(pred)
        total = rk.ops.sum(ours(y_true, pred))
    want = jax.grad(lambda p: theirs(y_true, p).sum())(y_pred)
    np.testing.assert_allclose(np.asarray(tape.gradient(total, pred)), np.asarray(want), rtol=1e-4, atol=1e-6)
    config, keras_config = ours.get_config(), theirs.get_config()
    # Keras 3.15 leaves CosineSimilarity's axis out of its config (a round trip resets it); ours keeps it.
    assert set(config) - set(keras_config) <= {"axis"}
    assert {k: v for k, v in config.items() if k in keras_config} == keras_config
    assert type(ours).from_config(config).get_config() == config
    assert losses.deserialize(losses.serialize(ours)).get_config() == config


@pytest.mark.parametrize(
    "name",
    [
        "mape",
        "MAPE",
        "msle",
        "kld",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "poisson",
        "cosine_similarity",
        "kl_divergence",
        "log_cosh",
        "mean_absolute_percentage_error",
    ],
)
def test_loss_names_give_the_functions(keras, name):
    rng = np.random.default_rng(1)
    y_true, y_pred = data("counts", rng)
    ours, theirs = losses.get(name), keras.losses.get(name)
    np.testing.assert_allclose(np.asarray(ours(y_true, y_pred)), np.asarray(theirs(y_true, y_pred)), rtol=2e-5)


def test_losses_respect_the_prediction_mask():
    y_pred = rk.layers.Masking()(np.array([[[1.0], [0.0], [2.0]]], "float32"))
    y_true = np.array([[[2.0], [5.0], [1.0]]], "float32")
    value = float(losses.LogCosh()(y_true, y_pred))
    expected = np.mean(np.log(np.cosh([1.0, 1.0])))
    assert value == pytest.approx(expected * 2 / 3, rel=1e-5) or value == pytest.approx(expected, rel=1e-5)


MEAN_METRICS = [
    ("MeanAbsolutePercentageError", "normal", {}),
    ("MeanSquaredLogarithmicError", "counts", {}),
    ("CosineSimilarity", "normal", {}),
    ("Hinge", "hinge", {}),
    ("SquaredHinge", "binary", {}),
    ("CategoricalHinge", "onehot", {}),
    ("LogCoshError", "normal", {}),
    ("KLDivergence", "probabilities", {}),
    ("Poisson", "counts", {}),
    ("RootMeanSquaredError", "normal", {}),
]


@pytest.mark.parametrize("name, kind, kwargs", MEAN_METRICS)
def test_mean_metrics_match_keras(keras, name, kind, kwargs):
    rng = np.random.default_rng(len(name))
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for batch in range(3):
        y_true, y_pred = data(kind, rng)
        weights = rng.uniform(0.5, 2.0, size=y_true.shape[0]).astype("float32") if batch else None
        ours.update_state(y_true, y_pred, sample_weight=weights)
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=2e-5, atol=1e-6)
    config, keras_config = ours.get_config(), theirs.get_config()
    assert set(config) - set(keras_config) <= {"axis"}  # CosineSimilarity's, which Keras leaves out
    assert {k: v for k, v in config.items() if k in keras_config} == keras_config
    assert metrics.deserialize(metrics.serialize(ours)).get_config() == config
    ours.reset_state()
    assert float(ours.result()) == 0


def binary_batch(rng, shape=(8, 3)):
    y_true = rng.integers(0, 2, size=shape).astype("float32")
    y_pred = rng.uniform(size=shape).astype("float32")
    return y_true, y_pred


CONFUSION = [
    ("Precision", {}),
    ("Precision", {"thresholds": [0.2, 0.5, 0.8]}),
    ("Precision", {"top_k": 1}),
    ("Precision", {"class_id": 2, "thresholds": 0.3}),
    ("Precision", {"top_k": 2, "class_id": 1}),
    ("Recall", {}),
    ("Recall", {"thresholds": [0.1, 0.9]}),
    ("Recall", {"top_k": 2}),
    ("Recall", {"class_id": 0}),
    ("AUC", {}),
    ("AUC", {"num_thresholds": 7}),
    ("AUC", {"curve": "PR"}),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}),
    ("AUC", {"summation_method": "minoring", "num_thresholds": 13}),
    ("AUC", {"curve": "PRGAIN"}),
    ("AUC", {"thresholds": [0.25, 0.5, 0.75]}),
    ("AUC", {"multi_label": True}),
    ("AUC", {"multi_label": True, "num_labels": 3, "label_weights": [0.5, 1.0, 2.0]}),
    ("AUC", {"label_weights": [0.5, 1.0, 2.0]}),
    ("AUC", {"from_logits": True}),
    ("TruePositives", {}),
    ("TruePositives", {"thresholds": [0.2, 0.7]}),
    ("FalsePositives", {"thresholds": 0.3}),
    ("TrueNegatives", {}),
    ("FalseNegatives", {"thresholds": [0.1, 0.5, 0.9]}),
]


@pytest.mark.parametrize("name, kwargs", CONFUSION, ids=[f"{n}{k}" for n, k in CONFUSION])
def test_confusion_metrics_match_keras(keras, name, kwargs):
    rng = np.random.default_rng(sum(map(ord, name + str(kwargs))))
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for batch in range(3):
        y_true, y_pred = binary_batch(rng)
        if kwargs.get("from_logits"):
            y_pred = rng.normal(size=y_pred.shape).astype("float32") * 3
        weights = rng.uniform(0.5, 2.0, size=y_true.shape[0]).astype("float32") if batch == 1 else None
        ours.update_state(y_true, y_pred, sample_weight=weights)
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    config = ours.get_config()
    keras_config = theirs.get_config()
    for key in set(config) - {"name"}:  # both number unnamed metrics, each its own way
        want = keras_config[key]
        want = np.asarray(want).tolist() if want is not None and key == "label_weights" else want
        assert config[key] == want, key
    assert type(ours).from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs", [{}, {"average": "micro"}, {"average": "macro"}, {"average": "weighted"}, {"threshold": 0.4}]
)
@pytest.mark.parametrize("name", ["F1Score", "FBetaScore"])
def test_f_scores_match_keras(keras, name, kwargs):
    if name == "FBetaScore":
        kwargs = {**kwargs, "beta": 2.0}
    rng = np.random.default_rng(4)
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for batch in range(3):
        y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, 10)]
        y_pred = rng.uniform(size=(10, 4)).astype("float32")
        weights = rng.uniform(0.5, 2.0, size=10).astype("float32") if batch == 2 else None
        ours.update_state(y_true, y_pred, sample_weight=weights)
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    assert ours.get_config() == theirs.get_config()


def test_metric_argument_errors():
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match="threshold"):
        metrics.F1Score(threshold=1.5)
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="thresholds"):
        metrics.Precision(thresholds=[2.0])


def test_compile_with_the_new_losses_and_metrics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 3)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    model = rk.Sequential([rk.Input((5, 3)), rk.layers.GRU(4), rk.layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=[metrics.Precision(), metrics.Recall(), metrics.AUC(), metrics.RootMeanSquaredError(), "mape"],
    )
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for key in ("precision", "recall", "auc", "root_mean_squared_error", "mape"):
        assert any(k.startswith(key) for k in history.history), (key, list(history.history))


CROSSENTROPY_METRICS = [
    ("BinaryCrossentropy", {}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary"),
    ("CategoricalCrossentropy", {}, "probabilities"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, "logits"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": 1}, "sparse_logits"),
]


@pytest.mark.parametrize(
    "name, kwargs, kind", CROSSENTROPY_METRICS, ids=[f"{n}{k}" for n, k, _ in CROSSENTROPY_METRICS]
)
def test_crossentropy_metrics_match_keras(keras, name, kwargs, kind):
    rng = np.random.default_rng(len(name) + len(kwargs))
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for batch in range(3):
        if kind == "binary":
            y_true, y_pred = binary_batch(rng)
            if kwargs.get("from_logits"):
                y_pred = rng.normal(size=y_pred.shape).astype("float32")
        elif kind.startswith("sparse"):
            y_true = rng.integers(0, 4, size=(8,)).astype("float32")
            y_pred = rng.dirichlet(np.ones(4), size=8).astype("float32")
            if kind == "sparse_logits":
                y_pred = rng.normal(size=(8, 4)).astype("float32")
        else:
            y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, 8)]
            y_pred = rng.dirichlet(np.ones(4), size=8).astype("float32")
            if kind == "logits":
                y_pred = rng.normal(size=(8, 4)).astype("float32")
        weights = rng.uniform(0.5, 2.0, size=8).astype("float32") if batch == 1 else None
        ours.update_state(y_true, y_pred, sample_weight=weights)
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    assert ours.get_config() == theirs.get_config()
    assert metrics.deserialize(metrics.serialize(ours)).get_config() == ours.get_config()


def test_sum_matches_keras(keras):
    rng = np.random.default_rng(9)
    ours, theirs = metrics.Sum(), keras.metrics.Sum()
    for values, weights in [
        (rng.normal(size=(5,)), None),
        (rng.normal(size=(4, 3)), rng.uniform(size=(4,))),
        (rng.normal(size=(2, 3, 2)), rng.uniform(size=(2, 3))),
    ]:
        ours.update_state(values.astype("float32"), weights)
        theirs.update_state(values.astype("float32"), weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5)
    assert ours.get_config() == theirs.get_config()
    ours.reset_state()
    assert float(ours.result()) == 0


def test_crossentropy_metric_names_in_compile_match_keras(keras):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    model = rk.Sequential([rk.Input((4, 3)), rk.layers.GRU(4), rk.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["categorical_crossentropy"])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["categorical_crossentropy"], logs["loss"], rtol=1e-6)
