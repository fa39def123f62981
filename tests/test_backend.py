"""`rk.backend`, Keras 3's `keras.backend`: the default float type (layers follow it), unique ids
shared with layer names, dtype helpers against Keras's answers, and the settings rnnkit refuses
with a message instead of ignoring."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402


@pytest.fixture
def keras():
    return pytest.importorskip("keras")


def test_floatx_sets_the_layers_default_dtype():
    assert rk.backend.floatx() == "float32" and rk.backend.backend() == "rnnkit"
    rk.backend.set_floatx("float64")
    try:
        layer = rk.layers.LSTM(3)
        out = layer(np.ones((2, 4, 5), "float32"))
        assert layer.dtype == "float64" and out.dtype == np.float64
        assert all(w.dtype == np.float64 for w in layer.weights)
        rk.config.set_dtype_policy("float32")  # an explicit policy wins over floatx
        assert rk.layers.Dense(2).dtype == "float32"
        rk.config.set_dtype_policy(None)
        assert rk.layers.Dense(2).dtype == "float64"
    finally:
        rk.backend.set_floatx("float32")
        rk.config.set_dtype_policy(None)
    assert rk.layers.Dense(2).dtype == "float32"


def test_uids_are_shared_with_layer_names_as_keras():
    rk.utils.clear_session()
    assert rk.backend.get_uid("probe") == 1
    assert rk.layers.Dense(1, name=None).name == "dense"
    assert rk.backend.get_uid("dense") == 2
    assert rk.layers.Dense(1).name == "dense_2"
    rk.backend.clear_session()
    assert rk.backend.get_uid("dense") == 1


@pytest.mark.parametrize("dtype", [None, "float32", "float64", "int32", "int64", "bool", np.float32, "uint8"])
def test_dtype_helpers_match_keras(keras, dtype):
    assert rk.backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)
    assert rk.backend.is_float_dtype(dtype or "float32") == keras.backend.is_float_dtype(dtype or "float32")
    assert rk.backend.is_int_dtype(dtype or "float32") == keras.backend.is_int_dtype(dtype or "float32")


@pytest.mark.parametrize("dtypes", [("int8", "int16"), ("bool", "int32"), ("float32",), ("uint8", "int8")])
def test_result_type_matches_keras_where_the_promotion_rules_agree(keras, dtypes):
    assert rk.backend.result_type(*dtypes) == keras.backend.result_type(*dtypes)


def test_result_type_is_what_rnnkit_ops_produce():
    # numpy's promotion (Keras follows JAX's, which keeps float32 beside int32 and float64).
    for a, b in [("float32", "float64"), ("int32", "float32")]:
        got = rk.ops.add(np.ones(2, a), np.ones(2, b)).dtype
        assert rk.backend.result_type(a, b) == np.dtype(got).name


def test_is_keras_tensor_and_fixed_settings():
    assert rk.backend.is_keras_tensor(rk.layers.Input((3,)))
    assert not rk.backend.is_keras_tensor(np.ones(3))
    assert rk.backend.epsilon() == 1e-7 and rk.backend.image_data_format() == "channels_last"
    rk.backend.set_epsilon(1e-7)
    rk.backend.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="fuzz factor is fixed at 1e-07, received 0.001"):
        rk.backend.set_epsilon(1e-3)
    with pytest.raises(ValueError, match="pass data_format='channels_first' to each layer"):
        rk.backend.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match="value: expected 'float32' or 'float64', received 'float16'"):
        rk.backend.set_floatx("float16")
