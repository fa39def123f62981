"""HashedCrossing without TensorFlow. Keras's layer needs TensorFlow (not installed here), so its
numbers are checked against the golden values of Keras's own tests (which ran
`tf.sparse.cross_hashed`), and the hash against the FingerprintCat64 rule written out with
Python integers; configs, symbolic calls and errors as Keras's."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit.layers import HashedCrossing  # noqa: E402
from rnnkit.layers.hashing import _fingerprints  # noqa: E402

FEAT1 = np.array(["A", "B", "A", "B", "A"])
FEAT2 = np.array([101, 101, 101, 102, 102])


def test_golden_values_of_keras_tests():
    # keras/src/layers/preprocessing/hashed_crossing_test.py: test_correctness and test_tf_string.
    np.testing.assert_array_equal(np.asarray(HashedCrossing(num_bins=5)((FEAT1, FEAT2))), [1, 4, 1, 1, 3])
    one_hot = np.asarray(HashedCrossing(num_bins=5, output_mode="one_hot")((FEAT1, FEAT2)))
    np.testing.assert_array_equal(one_hot, np.eye(5, dtype="float32")[[1, 4, 1, 1, 3]])
    assert one_hot.dtype == np.float32
    scalar = HashedCrossing(num_bins=10)(("A", 101))
    assert scalar.shape == () and int(np.asarray(scalar)) == 1
    column = HashedCrossing(num_bins=5)((FEAT1[:, None], FEAT2[:, None]))
    assert column.shape == (5, 1) and np.asarray(column)[:, 0].tolist() == [1, 4, 1, 1, 3]
    assert HashedCrossing(num_bins=5, output_mode="one_hot")((FEAT1[:, None], FEAT2[:, None])).shape == (5, 5)
    assert HashedCrossing(num_bins=5, output_mode="one_hot")(("A", 101)).shape == (5,)


def reference_cross(values, num_bins):
    """TensorFlow's HashCrosser with Python integers: start from 0xDECAFCAFFE, FingerprintCat64
    each feature's hash (an integer as itself, a string by Fingerprint64), modulo num_bins."""
    top, mul = 2**64 - 1, 0xC6A4A7935BD1E995

    def mix(v):
        return v ^ (v >> 47)

    result = 0xDECAFCAFFE
    for v in values:
        h = int(_fingerprints([v.encode()])[0]) if isinstance(v, str) else v & top
        r = result ^ mul
        r ^= (mix((h * mul) & top) * mul) & top
        r = (r * mul) & top
        result = mix((mix(r) * mul) & top)
    return result % num_bins


def test_three_features_negative_and_large_integers_follow_the_rule():
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**62), 2**62, size=20)
    b = np.array([f"w{int(i)}" for i in rng.integers(0, 50, size=20)])
    c = rng.integers(-5, 5, size=20).astype("int32")
    got = np.asarray(HashedCrossing(num_bins=1000, dtype="int32")((a, b, c)))
    assert got.dtype == np.int32
    assert got.tolist() == [reference_cross([int(x), str(y), int(z)], 1000) for x, y, z in zip(a, b, c)]
    # Order matters, and bytes hash as their UTF-8 strings do.
    assert not np.array_equal(np.asarray(HashedCrossing(1000)((b, a))), np.asarray(HashedCrossing(1000)((a, b))))
    encoded = np.array([s.encode() for s in b], dtype=object)
    np.testing.assert_array_equal(HashedCrossing(97)((a, encoded)), HashedCrossing(97)((a, b)))


def test_fingerprints_agree_with_the_core_hash():
    """The fingerprints (the core's hash modulo 2**64 - 1, its parity telling 0 from 2**64 - 1, a
    case no known string reaches) give the core's bins modulo other numbers."""
    values = [b"", b"a", b"hello world"]
    fps = _fingerprints(values)
    for v, fp in zip(values, fps):
        assert int(rk._core.hash_strings(v, np.array([len(v)], np.uint64), num_bins=1000)[0]) == int(fp) % 1000


def test_config_and_symbolic_calls():
    layer = HashedCrossing(num_bins=7, output_mode="one_hot", name="cross")
    config = layer.get_config()
    assert {k: config[k] for k in ("num_bins", "output_mode", "sparse", "dtype")} == {
        "num_bins": 7,
        "output_mode": "one_hot",
        "sparse": False,
        "dtype": "float32",
    }
    assert HashedCrossing.from_config(config).get_config() == config
    a, b = rk.Input((1,), dtype="int64"), rk.Input((1,), dtype="int64")
    model = rk.Model([a, b], HashedCrossing(num_bins=7, output_mode="one_hot")([a, b]))
    assert model.output_shape == (None, 7)
    out = model([np.array([[1], [2]]), np.array([[3], [3]])])
    np.testing.assert_array_equal(np.asarray(out).sum(axis=1), [1, 1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: HashedCrossing(10)(np.array(1)), "should be called on a list"),
        (lambda: HashedCrossing(10)([np.array(1)]), "at least two inputs"),
        (lambda: HashedCrossing(10)((np.array([[[1]]]), np.array([[[1]]]))), "inputs should have shape"),
        (lambda: HashedCrossing(10)((np.array([1, 2]), np.array([1]))), "should have equal shape"),
        (lambda: HashedCrossing(10)((np.array([1.0]), np.array([1.0]))), "should have an integer or string"),
        (lambda: HashedCrossing(10, output_mode="multi_hot"), "output_mode"),
        (lambda: HashedCrossing(10, sparse=True), "sparse"),
        (lambda: HashedCrossing(0), "num_bins"),
        (lambda: HashedCrossing(10, dtype="float32"), "dtype"),
    ],
)
def test_bad_arguments_and_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
