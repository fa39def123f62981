"""Normalization, Discretization and CategoryEncoding against Keras 3 (JAX backend): adapted
statistics and boundaries, outputs of every output mode, gradients through Normalization,
configs and save/load. Keras's own `adapt` of lists of batches needs TensorFlow, so batched
adaptation is compared with Keras's adaptation of the whole array (Normalization pools exactly)
and with Keras's quantile-summary functions (Discretization)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("axis", [-1, 1, (1, 2), None])
def test_normalization_adapt_matches_keras(keras, axis):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(40, 4, 3)).astype("float32")
    theirs, ours = keras.layers.Normalization(axis=axis), layers.Normalization(axis=axis)
    theirs.adapt(x)
    ours.adapt([x[:15], x[15:22], x[22:]])  # batches pooled exactly
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert_twins_agree(theirs, ours, (x,), rng=rng)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("mean, variance", [(2.0, 4.0), ([1.0, 2.0, 3.0], [1.0, 0.25, 9.0])])
def test_normalization_with_given_statistics_matches_keras(keras, mean, variance, invert):
    x = np.random.default_rng(1).normal(size=(5, 2, 3)).astype("float32")
    theirs = keras.layers.Normalization(mean=mean, variance=variance, invert=invert)
    ours = layers.Normalization(mean=mean, variance=variance, invert=invert)
    assert_twins_agree(theirs, ours, (x,))
    assert_same_config(ours, theirs)


def test_normalization_errors():
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)
    layer = layers.Normalization()
    layer.adapt(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.zeros((4, 5)))


def test_adapted_normalization_saves_and_loads(tmp_path):
    x = np.random.default_rng(2).normal(5.0, 2.0, size=(16, 6, 3)).astype("float32")
    norm = layers.Normalization()
    norm.adapt(x)
    model = rk.Sequential([rk.Input((6, 3)), norm, layers.LSTM(4)])
    model.save(tmp_path / "norm.keras")
    loaded = rk.models.load_model(tmp_path / "norm.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(norm(x)).mean(axis=(0, 1)), 0, atol=1e-5)


def keras_boundaries(batches, num_bins, epsilon=0.01):
    """Keras's boundaries for `adapt(batches)`, from its summary functions (its adapt of a
    list needs TensorFlow)."""
    from keras.src.layers.preprocessing import discretization

    summary = np.zeros((2, 0), "float32")
    for batch in batches:
        summary = discretization.merge_summaries(
            discretization.summarize(np.asarray(batch, "float32"), epsilon), summary, epsilon
        )
    return discretization.get_bin_boundaries(summary, num_bins).tolist()


@pytest.mark.parametrize("num_bins", [2, 4, 10])
@pytest.mark.parametrize("sizes", [[1000], [300, 700], [17], [50, 50, 50]])
@pytest.mark.parametrize("epsilon", [0.01, 0.1])
def test_discretization_adapt_matches_keras(keras, num_bins, sizes, epsilon):
    rng = np.random.default_rng(num_bins + len(sizes))
    batches = [rng.normal(size=(n,)).astype("float32") for n in sizes]
    ours = layers.Discretization(num_bins=num_bins, epsilon=epsilon)
    ours.adapt(batches if len(batches) > 1 else batches[0])
    np.testing.assert_allclose(ours.bin_boundaries, keras_boundaries(batches, num_bins, epsilon), rtol=1e-6)
    clone = layers.Discretization.from_config(ours.get_config())
    assert clone.bin_boundaries == ours.bin_boundaries


@pytest.mark.parametrize("output_mode", ["int", "one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("shape", [(6,), (3, 4), (3, 1), (2, 3, 4)])
def test_discretization_outputs_match_keras(keras, output_mode, shape):
    x = np.random.default_rng(3).normal(size=shape).astype("float32")
    if output_mode in ("multi_hot", "count") and len(shape) > 2:
        # Keras encodes ranks 1 and 2 only; rnnkit refuses the others with a message.
        layer = layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.5], output_mode=output_mode)
        with pytest.raises(ValueError, match=rf"^output_mode='{output_mode}' encodes inputs of rank 1 or 2"):
            layer(x)
        return
    x.flat[0] = 0.0  # on a boundary
    theirs = keras.layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.5], output_mode=output_mode)
    ours = layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.5], output_mode=output_mode)
    got, want = np.asarray(ours(x)), np.asarray(theirs(x))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("output_mode", ["one_hot", "multi_hot", "count", "binary"])
@pytest.mark.parametrize("shape", [(6,), (3, 4), (3, 1)])
def test_category_encoding_matches_keras(keras, output_mode, shape):
    x = np.random.default_rng(4).integers(0, 5, size=shape)
    theirs = keras.layers.CategoryEncoding(5, output_mode=output_mode)
    ours = layers.CategoryEncoding(5, output_mode=output_mode)
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))
    assert_same_config(ours, theirs)


def test_category_encoding_count_weights_match_keras(keras):
    x = np.array([[0, 1, 1], [2, 2, 2]])
    weights = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 0.5]], "float32")
    theirs, ours = (
        keras.layers.CategoryEncoding(3, output_mode="count"),
        layers.CategoryEncoding(3, output_mode="count"),
    )
    np.testing.assert_allclose(
        np.asarray(ours(x, count_weights=weights)), np.asarray(theirs(x, count_weights=weights)), rtol=1e-6
    )
    with pytest.raises(ValueError, match="count_weights"):
        layers.CategoryEncoding(3, output_mode="one_hot")(x, count_weights=weights)


def test_preprocessing_argument_errors():
    with pytest.raises(ValueError, match="num_tokens"):
        layers.CategoryEncoding()
    with pytest.raises(ValueError, match="output_mode"):
        layers.CategoryEncoding(3, output_mode="tf_idf")
    with pytest.raises(ValueError, match="either `num_bins` or `bin_boundaries`"):
        layers.Discretization()
    with pytest.raises(ValueError, match="Cannot adapt"):
        layers.Discretization(bin_boundaries=[0.0]).adapt(np.zeros(3))
