"""CTC: `rk.ops.ctc_loss`, `rk.ops.ctc_decode` and `rk.losses.CTC` against Keras 3 (JAX backend):
losses and their gradients on random batches (repeated labels, padded and empty targets, short
outputs, impossible targets), finite differences in float64, greedy and beam-search decoding, the loss class,
and a small speech-style model (Bidirectional GRU + Dense) that learns its labels under CTC."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def batch(seed, classes=6, steps=12, labels=5, batch_size=5):
    """Logits, labels (with repeats and zero padding), label and output lengths."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((batch_size, steps, classes)) * rng.uniform(0.5, 3)).astype("float32")
    target = rng.integers(1, classes, (batch_size, labels))
    target[0, 1] = target[0, 2]  # a repeated label needs a blank between its copies
    target_length = rng.integers(0, labels + 1, batch_size)
    target[np.arange(labels)[None, :] >= target_length[:, None]] = 0
    output_length = rng.integers(max(1, steps // 2), steps + 1, batch_size)
    return logits, target, target_length, output_length


@pytest.mark.parametrize("seed", range(8))
def test_loss_and_gradient_match_keras(keras, seed):
    import jax
    import jax.numpy as jnp

    logits, target, target_length, output_length = batch(seed, classes=3 + seed % 5, steps=6 + seed)
    want = np.asarray(keras.ops.ctc_loss(target, logits, target_length, output_length))
    got = np.asarray(rk.ops.ctc_loss(target, logits, target_length, output_length))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    weights = np.arange(1, len(logits) + 1, dtype="float32")
    want_grad = jax.grad(
        lambda z: jnp.sum(jnp.asarray(keras.ops.ctc_loss(target, z, target_length, output_length)) * weights)
    )(jnp.asarray(logits))
    x = rk.Variable(logits)
    with rk.GradientTape() as tape:
        total = rk.ops.sum(rk.ops.ctc_loss(target, x, target_length, output_length) * weights)
    np.testing.assert_allclose(np.asarray(tape.gradient(total, x)), np.asarray(want_grad), rtol=1e-4, atol=1e-5)


def test_blank_class_elsewhere_and_impossible_targets_match_keras(keras):
    logits, target, target_length, output_length = batch(3, classes=5)
    target = np.where(target == 4, 0, target)  # class 4 is the blank here, 0 a label
    want = np.asarray(keras.ops.ctc_loss(target, logits, target_length, output_length, mask_index=4))
    got = np.asarray(rk.ops.ctc_loss(target, logits, target_length, output_length, mask_index=4))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Five labels cannot fit two steps: a large finite loss (Keras's log zero is -1e5), as Keras.
    full = np.full(len(logits), 5)
    short = np.full(len(logits), 2)
    impossible = np.asarray(rk.ops.ctc_loss(target, logits, full, short))
    np.testing.assert_allclose(impossible, np.asarray(keras.ops.ctc_loss(target, logits, full, short)))
    assert np.all(np.isfinite(impossible)) and np.all(impossible > 1e4)


def test_gradient_matches_finite_differences_in_float64():
    logits, target, target_length, output_length = batch(11, classes=4, steps=7, labels=3, batch_size=3)
    logits = logits.astype("float64")

    def loss(z):
        return float(np.sum(np.asarray(rk.ops.ctc_loss(target, z, target_length, output_length))))

    x = rk.Variable(logits)
    with rk.GradientTape() as tape:
        total = rk.ops.sum(rk.ops.ctc_loss(target, x, target_length, output_length))
    grad = np.asarray(tape.gradient(total, x))
    assert grad.dtype == np.float64
    numeric = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[i] = 1e-6
        numeric[i] = (loss(logits + step) - loss(logits - step)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # Steps past a sample's output length get no gradient.
    for b, length in enumerate(output_length):
        assert not np.any(grad[b, length:])


@pytest.mark.parametrize("merge_repeated", [True, False])
@pytest.mark.parametrize("mask_index", [0, 3, None])
def test_greedy_decoding_matches_keras(keras, merge_repeated, mask_index):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 10, 4)).astype("float32")
    logits[:, 3] = logits[:, 2]  # consecutive equal best classes
    lengths = rng.integers(1, 11, 6)
    want = keras.ops.ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index)
    got = rk.ops.ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-6)


@pytest.mark.parametrize(
    "seed, beam_width, top_paths, mask_index",
    [(0, 100, 1, 0), (1, 4, 2, None), (2, 8, 3, 1), (3, 3, 3, 0), (4, 2, 1, 2), (5, 16, 4, 0)],
)
def test_beam_search_matches_keras(keras, seed, beam_width, top_paths, mask_index):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((3, 8 + seed, 3 + seed)) * 2).astype("float32")
    lengths = rng.integers(1, 9 + seed, 3)
    options = dict(strategy="beam_search", beam_width=beam_width, top_paths=top_paths, mask_index=mask_index)
    want = keras.ops.ctc_decode(logits, lengths, **options)
    got = rk.ops.ctc_decode(logits, lengths, **options)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-5)


def test_beam_search_pads_missing_paths_as_keras(keras):
    # One label and the blank over one used step: two sequences exist, the third is padding.
    logits = np.random.default_rng(0).standard_normal((2, 3, 2)).astype("float32")
    lengths = np.array([1, 0])
    want = keras.ops.ctc_decode(logits, lengths, strategy="beam_search", beam_width=3, top_paths=3)
    got = rk.ops.ctc_decode(logits, lengths, strategy="beam_search", beam_width=3, top_paths=3)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-6)
    assert np.isneginf(np.asarray(got[1])[:, 2]).all()


def test_loss_class_matches_keras_and_round_trips(keras):
    logits, target, _, _ = batch(7)
    weights = np.linspace(0.5, 2, len(logits)).astype("float32")
    for reduction in ["sum_over_batch_size", "sum", None]:
        ours, theirs = rk.losses.CTC(reduction=reduction), keras.losses.CTC(reduction=reduction)
        np.testing.assert_allclose(
            np.asarray(ours(target, logits, sample_weight=weights)),
            np.asarray(theirs(target, logits, sample_weight=weights)),
            rtol=1e-6,
        )
    assert rk.losses.CTC().get_config() == keras.losses.CTC().get_config()
    assert rk.losses.get("ctc") is rk.losses.ctc
    restored = rk.losses.deserialize(rk.losses.serialize(rk.losses.CTC(name="c")))
    assert isinstance(restored, rk.losses.CTC) and restored.name == "c"


def test_errors_name_the_argument():
    logits, target, target_length, output_length = batch(1)
    with pytest.raises(ValueError, match=r"target: expected labels in \[0, 6\)"):
        rk.ops.ctc_loss(target + 6, logits, target_length, output_length)
    with pytest.raises(ValueError, match="target_length: expected shape"):
        rk.ops.ctc_loss(target, logits, target_length[:2], output_length)
    with pytest.raises(ValueError, match="output: expected"):
        rk.ops.ctc_loss(target, logits[0], target_length, output_length)
    with pytest.raises(ValueError, match="mask_index: expected a class"):
        rk.ops.ctc_loss(target, logits, target_length, output_length, mask_index=6)
    with pytest.raises(ValueError, match="y_true: expected"):
        rk.losses.ctc(target[:, :, None], logits)
    with pytest.raises(ValueError, match="strategy: expected 'greedy' or 'beam_search', received 'best'"):
        rk.ops.ctc_decode(logits, output_length, strategy="best")
    with pytest.raises(ValueError, match="top_paths: expected at most beam_width=2, received 3"):
        rk.ops.ctc_decode(logits, output_length, strategy="beam_search", beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="beam_width: expected a positive integer, received 0"):
        rk.ops.ctc_decode(logits, output_length, strategy="beam_search", beam_width=0)
    with pytest.raises(ValueError, match="sequence_lengths: expected shape"):
        rk.ops.ctc_decode(logits, output_length[:1])


def test_a_bidirectional_model_learns_its_labels_under_ctc():
    rng = np.random.default_rng(0)
    classes, steps = 5, 16
    # Each sample shows its two labels as bursts of a one-hot feature: the model must learn to
    # emit them in order.
    target = rng.integers(1, classes, (256, 2))
    x = np.zeros((256, steps, classes), "float32")
    for i, (a, b) in enumerate(target):
        x[i, 2:6, a] = 1
        x[i, 9:13, b] = 1
    x += rng.normal(0, 0.1, x.shape).astype("float32")
    rk.utils.set_random_seed(1)
    model = rk.Sequential(
        [
            rk.Input((steps, classes)),
            rk.layers.Bidirectional(rk.layers.GRU(16, return_sequences=True)),
            rk.layers.Dense(classes),
        ]
    )
    model.compile(optimizer=rk.optimizers.Adam(0.01), loss=rk.losses.CTC())
    history = model.fit(x, target, batch_size=32, epochs=25, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    decoded = np.asarray(rk.ops.ctc_decode(model.predict(x[:64], verbose=0), np.full(64, steps))[0])[0]
    assert np.mean(np.all(decoded[:, :2] == target[:64], axis=1)) > 0.9
