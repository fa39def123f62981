"""`Hashing` against Keras 3's numbers. Keras's layer needs TensorFlow (not installed here), so
the expected bins are Keras's own golden values (keras/src/layers/preprocessing/hashing_test.py
and the layer's docstring) and full 64-bit hashes made with the reference implementations
(Google's FarmHash through the pyfarmhash package, SipHash through siphashc); output modes,
masks, configs, saving and the errors."""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import layers

NAMES = [["omar"], ["stringer"], ["marlo"], ["wire"], ["skywalker"]]


def bins(layer, inputs):
    return np.asarray(layer(inputs)).tolist()


# --- Keras's golden values ---------------------------------------------------------------------


def test_farmhash_bins_match_keras():
    assert bins(layers.Hashing(num_bins=3), [["A"], ["B"], ["C"], ["D"], ["E"]]) == [[1], [0], [1], [1], [2]]
    assert bins(layers.Hashing(num_bins=2), NAMES) == [[0], [0], [1], [0], [0]]
    assert bins(layers.Hashing(num_bins=2), np.asarray(NAMES)) == [[0], [0], [1], [0], [0]]
    assert bins(layers.Hashing(num_bins=1), [["A"], ["B"]]) == [[0], [0]]
    # Integers hash as their decimal strings.
    assert bins(layers.Hashing(num_bins=3), np.asarray([[0], [1], [2], [3], [4]])) == [[1], [0], [1], [0], [2]]
    assert bins(layers.Hashing(num_bins=2), [[1, 2], [2, 3], [3, 4]]) == [[1, 1], [1, 1], [1, 1]]


def test_mask_value_bins_match_keras():
    assert bins(layers.Hashing(num_bins=3, mask_value=""), [["A"], ["B"], [""], ["C"], ["D"]]) == [
        [1],
        [1],
        [0],
        [2],
        [2],
    ]
    assert bins(layers.Hashing(num_bins=3, mask_value=""), NAMES) == [[1], [1], [2], [1], [1]]
    assert bins(layers.Hashing(num_bins=3, mask_value="omar"), NAMES) == [[0], [1], [2], [1], [1]]


def test_siphash_bins_match_keras():
    letters = [["A"], ["B"], ["C"], ["D"], ["E"]]
    assert bins(layers.Hashing(num_bins=3, salt=[133, 137]), letters) == [[1], [2], [1], [0], [2]]
    assert bins(layers.Hashing(num_bins=3, salt=133), letters) == [[0], [0], [2], [1], [0]]
    assert bins(layers.Hashing(num_bins=2, salt=[133, 137]), NAMES) == [[0], [1], [0], [1], [0]]
    assert bins(layers.Hashing(num_bins=2, salt=[211, 137]), NAMES) == [[1], [0], [1], [0], [1]]
    ints = np.asarray([[0], [1], [2], [3], [4]])
    assert bins(layers.Hashing(num_bins=3, salt=[133, 137]), ints) == [[1], [1], [2], [0], [1]]


def test_encoded_outputs_match_keras():
    assert bins(layers.Hashing(num_bins=3, output_mode="multi_hot"), np.array([[0, 1, 2, 3, 4]])) == [[1, 1, 1]]
    assert bins(layers.Hashing(num_bins=3, output_mode="count"), np.array([[0, 1, 2, 3, 4]])) == [[2, 2, 1]]
    one_hot = layers.Hashing(num_bins=3, output_mode="one_hot")(np.array([[0], [1], [2], [3], [4]]))
    np.testing.assert_array_equal(one_hot, np.eye(3, dtype="float32")[[1, 0, 1, 0, 2]])
    assert np.asarray(one_hot).dtype == np.float32
    assert np.asarray(layers.Hashing(num_bins=3)(np.array([[1]]))).dtype == np.int64
    assert np.asarray(layers.Hashing(num_bins=3, dtype="int32")(np.array([[1]]))).dtype == np.int32


# --- the full hashes ---------------------------------------------------------------------------


def test_full_64_bit_hashes_match_the_reference_implementations():
    # Made with pyfarmhash and siphashc (the bins of num_bins=2**63 + 1 keep all but the top bit):
    #   farmhash.fingerprint64(s) % (2**63 + 1)
    #   siphashc.siphash(struct.pack("<QQ", 133, 137), s.encode()) % (2**63 + 1)
    strings = ["omar", "skywalker", "x" * 17, "héllo wörld ✓", "z" * 65]
    fingerprints = [0x2EE20DEEC3396B4A, 0x73A16CDC0E8CB39E, 0x9CE745A1F3812FA5, 0x03D4A54EAA15B02C, 0x732F393FA3E7DF35]
    want = [f % (2**63 + 1) for f in fingerprints]
    assert bins(layers.Hashing(num_bins=2**63 + 1), strings) == want
    assert bins(layers.Hashing(num_bins=2**63 + 1), np.array(strings, object)) == want
    assert bins(layers.Hashing(num_bins=2**63 + 1), [s.encode() for s in strings]) == want
    sip = rk._core.hash_strings(b"omar", np.array([4], np.uint64), num_bins=2**64 - 1, salt=(133, 137))
    assert int(sip[0]) == 0x5189D34391A78B02 % (2**64 - 1)


def test_floats_truncate_and_booleans_hash_as_words():
    layer = layers.Hashing(num_bins=1000)
    np.testing.assert_array_equal(layer(np.array([1.9, -2.5, 3.0])), layer(np.array([1, -2, 3])))
    np.testing.assert_array_equal(layer(np.array([True, False])), layer(["true", "false"]))


def test_scalar_input_and_masked_integers():
    assert np.asarray(layers.Hashing(num_bins=3)("A")).shape == ()
    masked = bins(layers.Hashing(num_bins=3, mask_value=0), np.array([[0], [5], [0]]))
    assert masked[0] == masked[2] == [0] and masked[1] != [0]


# --- configs, models and errors ----------------------------------------------------------------


def test_config_round_trips_and_saves(tmp_path):
    layer = layers.Hashing(num_bins=7, mask_value="", salt=5, output_mode="count", name="hash")
    config = layer.get_config()
    assert config["salt"] == [5, 5] and config["dtype"] == "float32" and config["sparse"] is False
    assert layers.Hashing.from_config(config).get_config() == config
    inp = rk.Input((3,), dtype="int64")
    model = rk.Model(inp, layers.Dense(2)(layers.Hashing(num_bins=5, output_mode="multi_hot")(inp)))
    x = np.array([[1, 2, 3], [4, 5, 6]])
    model.save(tmp_path / "hashing.keras")
    loaded = rk.models.load_model(tmp_path / "hashing.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_bins"):
        layers.Hashing(num_bins=None)
    with pytest.raises(ValueError, match="num_bins"):
        layers.Hashing(num_bins=0)
    with pytest.raises(ValueError, match="output_mode"):
        layers.Hashing(num_bins=3, output_mode="tf_idf")
    with pytest.raises(ValueError, match="sparse: expected False"):
        layers.Hashing(num_bins=3, output_mode="one_hot", sparse=True)
    with pytest.raises(ValueError, match="salt"):
        layers.Hashing(num_bins=3, salt="string")
    with pytest.raises(ValueError, match="salt"):
        layers.Hashing(num_bins=3, salt=[1, 2, 3])
    with pytest.raises(ValueError, match="salt: expected unsigned 64-bit"):
        layers.Hashing(num_bins=3, salt=-1)
    with pytest.raises(ValueError, match="dtype"):
        layers.Hashing(num_bins=3, dtype="float32")
    with pytest.raises(ValueError, match="mask_value: expected a string"):
        layers.Hashing(num_bins=3, mask_value=0)(["a"])
    with pytest.raises(TypeError, match="expected strings, bytes or integers"):
        layers.Hashing(num_bins=3)(np.array([None, "a"], object))
    with pytest.raises(ValueError, match="ends: expected non-decreasing"):
        rk._core.hash_strings(b"ab", np.array([2, 1], np.uint64), num_bins=3)
