"""`rk.random`, Keras 3's `keras.random`: the distributions' moments on large draws, Keras's seed
semantics (an int repeats, a SeedGenerator advances reproducibly, none follows
`set_random_seed`), shapes and dtypes, dropout's scaling and gradient, and argument errors."""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import random

N = 200_000


@pytest.mark.parametrize(
    "draw, mean, std",
    [
        (lambda seed: random.normal((N,), 1.5, 2.0, seed=seed), 1.5, 2.0),
        (lambda seed: random.uniform((N,), -1.0, 3.0, seed=seed), 1.0, 4 / np.sqrt(12)),
        # A standard normal truncated at two deviations has variance 1 - 4 phi(2) / (2 Phi(2) - 1).
        (lambda seed: random.truncated_normal((N,), 0.0, 1.0, seed=seed), 0.0, np.sqrt(0.7737413)),
        (lambda seed: random.gamma((N,), 3.0, seed=seed), 3.0, np.sqrt(3.0)),
        (lambda seed: random.beta((N,), 2.0, 5.0, seed=seed), 2 / 7, np.sqrt(10 / (49 * 8))),
        (lambda seed: random.binomial((N,), 10, 0.3, seed=seed), 3.0, np.sqrt(2.1)),
        (lambda seed: random.randint((N,), 0, 10, seed=seed), 4.5, np.sqrt(99 / 12)),
    ],
)
def test_distributions_have_their_moments_and_int_seeds_repeat(draw, mean, std):
    values = np.asarray(draw(7))
    assert abs(values.mean() - mean) < 5 * std / np.sqrt(N)
    assert abs(values.std() - std) < 0.02 * std
    np.testing.assert_array_equal(np.asarray(draw(7)), values)
    assert not np.array_equal(np.asarray(draw(8)), values)


def test_truncated_normal_stays_within_two_deviations():
    values = np.asarray(random.truncated_normal((N,), 1.0, 0.5, seed=1))
    assert values.min() >= 0.0 and values.max() <= 2.0


def test_seed_generators_advance_reproducibly_and_no_seed_follows_set_random_seed():
    first = random.SeedGenerator(42)
    a, b = np.asarray(random.normal((5,), seed=first)), np.asarray(random.normal((5,), seed=first))
    assert not np.array_equal(a, b)
    again = random.SeedGenerator(42)
    np.testing.assert_array_equal(np.asarray(random.normal((5,), seed=again)), a)
    np.testing.assert_array_equal(np.asarray(random.normal((5,), seed=again)), b)
    assert random.SeedGenerator.from_config(first.get_config()).get_config() == {"seed": 42}
    rk.utils.set_random_seed(3)
    c = np.asarray(random.uniform((4,)))
    rk.utils.set_random_seed(3)
    np.testing.assert_array_equal(np.asarray(random.uniform((4,))), c)


def test_set_random_seed_seeds_numpy_and_python_as_keras_does():
    """Keras's `set_random_seed` also seeds NumPy's global generator (which fit's shuffling draws
    from) and Python's `random`."""
    import random as python_random

    draws = []
    for _ in range(2):
        rk.utils.set_random_seed(11)
        draws.append((np.random.permutation(12), python_random.random(), np.asarray(random.uniform((3,)))))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    assert draws[0][1] == draws[1][1]
    np.testing.assert_array_equal(draws[0][2], draws[1][2])
    with pytest.raises(ValueError, match="Expected `seed` argument to be an integer. Received: seed=1.5"):
        rk.utils.set_random_seed(1.5)


def test_shapes_and_dtypes():
    assert random.normal((2, 3), dtype="float64").dtype == np.float64
    assert random.uniform((4,)).dtype == np.float32
    assert random.randint((2, 2), 0, 5, dtype="int64").dtype == np.int64
    assert random.binomial((3,), 5, 0.5).dtype == np.float32
    assert tuple(random.normal(4).shape) == (4,)


def test_categorical_draws_each_rows_distribution():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    draws = np.asarray(random.categorical(logits, 50_000, seed=0))
    assert draws.shape == (2, 50_000) and draws.dtype == np.int32
    for row, probabilities in enumerate(np.exp(logits)):
        np.testing.assert_allclose(np.bincount(draws[row], minlength=3) / 50_000, probabilities, atol=0.01)


def test_shuffle_permutes_whole_slices():
    x = np.arange(12).reshape(4, 3)
    rows = np.asarray(random.shuffle(x, seed=0))
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x)) and not np.array_equal(rows, x)
    columns = np.asarray(random.shuffle(x, axis=1, seed=1))
    assert sorted(map(tuple, columns.T)) == sorted(map(tuple, x.T))


def test_dropout_scales_the_kept_entries_and_differentiates():
    x = rk.Variable(np.full((200, 50), 2.0, "float32"))
    with rk.GradientTape() as tape:
        y = random.dropout(x, 0.3, seed=5)
        total = rk.ops.sum(y)
    y = np.asarray(y)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2.0 / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(np.asarray(tape.gradient(total, x)), kept / 0.7, rtol=1e-6)
    # noise_shape: one pattern per column, shared by the rows.
    pattern = np.asarray(random.dropout(np.ones((6, 40), "float32"), 0.5, noise_shape=(1, None), seed=2))
    assert (pattern == pattern[:1]).all()
    assert not np.any(np.asarray(random.dropout(np.ones(5, "float32"), 1.0)))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="seed: expected None, an int or a keras.random.SeedGenerator"):
        random.normal((2,), seed="x")
    with pytest.raises(ValueError, match="dtype: expected a float dtype, received int32"):
        random.normal((2,), dtype="int32")
    with pytest.raises(ValueError, match="dtype: expected an integer dtype"):
        random.randint((2,), 0, 3, dtype="float32")
    with pytest.raises(ValueError, match=r"rate: expected a value in \[0, 1\], received 1.5"):
        random.dropout(np.ones(3), 1.5)
    with pytest.raises(ValueError, match="logits: expected shape"):
        random.categorical(np.zeros(3), 2)
    with pytest.raises(ValueError, match="shape: expected a tuple of ints"):
        random.uniform(("a",))
    with pytest.raises(TypeError):
        random.SeedGenerator(1, backend="jax")
