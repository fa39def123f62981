"""Tests of rnnkit.initializers: shapes, dtypes, seeds, limits, statistics and configs vs Keras 3."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import initializers


@pytest.fixture(scope="module")
def keras():
    # Imported on first use rather than at collection, so that a module that needs another
    # backend (test_keras_parity.py needs jax) chooses it in a full run.
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    return pytest.importorskip("keras")


SHAPES = [(7, 3), (3, 7), (2, 3, 4, 5)]


def _shape_for(initializer, shape):
    """Identity takes the last two axes of a larger shape, as the parity test asks for them."""
    return shape[-2:] if isinstance(initializer, initializers.Identity) else shape


@pytest.fixture(scope="module")
def keras_numpy_values():
    """Keras's values of every example initializer at every shape, from Keras's numpy backend.

    They come from a subprocess: in a full run another test module has already imported Keras
    on JAX, and a process keeps the backend it first imported.
    """
    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras is not installed")
    cases = [(type(i).__name__, i.get_config(), _shape_for(i, s)) for i in EXAMPLES for s in SHAPES]
    script = (
        "import json, sys\n"
        "import numpy as np, keras\n"
        "assert keras.backend.backend() == 'numpy', keras.backend.backend()\n"
        "cases = json.load(sys.stdin)\n"
        "np.savez(sys.argv[1], *[np.asarray(getattr(keras.initializers, name)(**config)(tuple(shape)))\n"
        "                        for name, config, shape in cases])\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "values.npz")
        subprocess.run(
            [sys.executable, "-c", script, path],
            input=json.dumps(cases),
            env={**os.environ, "KERAS_BACKEND": "numpy"},
            check=True,
            text=True,
            capture_output=True,
        )
        with np.load(path) as stored:
            arrays = [stored[f"arr_{k}"] for k in range(len(cases))]
    keys = [(i, s) for i in range(len(EXAMPLES)) for s in SHAPES]
    return dict(zip(keys, arrays))


SEEDED = [
    initializers.GlorotUniform,
    initializers.GlorotNormal,
    initializers.HeUniform,
    initializers.HeNormal,
    initializers.LecunUniform,
    initializers.LecunNormal,
    initializers.Orthogonal,
    initializers.RandomUniform,
    initializers.RandomNormal,
    initializers.TruncatedNormal,
    initializers.VarianceScaling,
]
# One instance of every initializer, with arguments that differ from the defaults where any.
EXAMPLES = [
    initializers.Constant(0.25),
    initializers.Zeros(),
    initializers.Ones(),
    initializers.Identity(gain=2.0),
    initializers.RandomUniform(-1.0, 2.0, seed=3),
    initializers.RandomNormal(1.0, 0.5, seed=3),
    initializers.TruncatedNormal(0.5, 2.0, seed=3),
    initializers.Orthogonal(gain=1.5, seed=3),
    initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=3),
    initializers.VarianceScaling(0.5, "fan_avg", "uniform", seed=4),
] + [cls(seed=5) for cls in SEEDED[:6]]

# Names keras.initializers.get accepts in Keras 3.15 (all but STFT's).
NAMES = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "IdentityInitializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "one",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "zero",
    "zeros",
]


def _keras_twin(keras, initializer):
    return getattr(keras.initializers, type(initializer).__name__)(**initializer.get_config())


@pytest.mark.parametrize("initializer", EXAMPLES, ids=lambda i: type(i).__name__)
@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_shapes_and_dtypes(initializer, dtype):
    shape = (6, 6) if isinstance(initializer, initializers.Identity) else (3, 4, 5)
    values = initializer(shape, dtype=dtype)
    assert isinstance(values, np.ndarray)
    assert values.shape == shape and values.dtype == np.dtype(dtype or "float32")


@pytest.mark.parametrize("cls", SEEDED)
def test_a_seed_makes_values_reproducible(cls):
    first = cls(seed=7)((20, 30))
    np.testing.assert_array_equal(first, cls(seed=7)((20, 30)))
    assert not np.array_equal(first, cls(seed=8)((20, 30)))
    initializer = cls(seed=7)
    np.testing.assert_array_equal(initializer((20, 30)), initializer((20, 30)))


def test_unseeded_initializers_are_fixed_when_created_and_follow_the_package_seed():
    # As in Keras: an unseeded initializer returns the same values on every call.
    initializer = initializers.GlorotUniform()
    np.testing.assert_array_equal(initializer((4, 4)), initializer((4, 4)))
    assert not np.array_equal(initializers.GlorotUniform()((4, 4)), initializers.GlorotUniform()((4, 4)))
    rk.utils.set_random_seed(11)
    first = initializers.RandomNormal()((4, 4))
    rk.utils.set_random_seed(11)
    np.testing.assert_array_equal(first, initializers.RandomNormal()((4, 4)))


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[type(i).__name__ for i in EXAMPLES])
@pytest.mark.parametrize("shape", SHAPES)
def test_values_match_keras_numpy_backend(keras_numpy_values, index, shape):
    initializer = EXAMPLES[index]
    expected = keras_numpy_values[(index, shape)]
    np.testing.assert_array_equal(initializer(_shape_for(initializer, shape)), expected)


def test_golden_values_from_keras_numpy_backend():
    # KERAS_BACKEND=numpy python -c "import keras
    # for cls in [keras.initializers.GlorotUniform, keras.initializers.HeNormal,
    #             keras.initializers.Orthogonal, keras.initializers.TruncatedNormal]:
    #     print(cls(seed=3)((2, 3)).tolist())"
    golden = {
        initializers.GlorotUniform: [
            [-0.9077972173690796, -0.5766192674636841, 0.6600592732429504],
            [0.18000800907611847, -0.8892195820808411, -0.14651153981685638],
        ],
        initializers.HeNormal: [
            [0.47531452775001526, -0.6454672813415527, -0.5145931243896484],
            [-0.24510103464126587, -0.2636716961860657, -0.9836151003837585],
        ],
        initializers.Orthogonal: [
            [0.9573186635971069, 0.19611449539661407, -0.21232081949710846],
            [-0.19634442031383514, -0.09782607108354568, -0.9756428003311157],
        ],
        initializers.TruncatedNormal: [
            [0.020904941484332085, -0.028388479724526405, -0.02263246476650238],
            [-0.010779858566820621, -0.01159661915153265, -0.04326065257191658],
        ],
    }
    for cls, expected in golden.items():
        np.testing.assert_array_equal(cls(seed=3)((2, 3)), np.array(expected, np.float32), err_msg=cls.__name__)


@pytest.mark.parametrize(
    "initializer, shape, limit",
    [
        (initializers.GlorotUniform(seed=1), (300, 500), math.sqrt(6 / 800)),
        (initializers.GlorotUniform(seed=1), (3, 3, 16, 32), math.sqrt(6 / (9 * 48))),
        (initializers.HeUniform(seed=1), (400, 100), math.sqrt(6 / 400)),
        (initializers.LecunUniform(seed=1), (400, 100), math.sqrt(3 / 400)),
        (initializers.VarianceScaling(3.0, "fan_out", "uniform", seed=1), (100, 400), math.sqrt(9 / 400)),
        (initializers.VarianceScaling(1.0, "fan_in", "uniform", seed=1), (50000,), math.sqrt(3 / 50000)),
    ],
)
def test_uniform_limits(initializer, shape, limit):
    values = initializer(shape, dtype="float64")
    assert values.min() >= -limit and values.max() < limit
    assert values.min() < -0.99 * limit and values.max() > 0.99 * limit
    np.testing.assert_allclose(values.std(), limit / math.sqrt(3), rtol=0.02)


def test_random_uniform_bounds():
    values = initializers.RandomUniform(-1.0, 3.0, seed=2)((100_000,), dtype="float64")
    assert values.min() >= -1.0 and values.max() < 3.0
    np.testing.assert_allclose([values.mean(), values.std()], [1.0, 4 / math.sqrt(12)], rtol=0.02)


@pytest.mark.parametrize(
    "initializer, shape, stddev",
    [
        (initializers.GlorotNormal(seed=1), (300, 500), math.sqrt(2 / 800)),
        (initializers.HeNormal(seed=1), (3, 3, 40, 20), math.sqrt(2 / 360)),
        (initializers.LecunNormal(seed=1), (400, 250), math.sqrt(1 / 400)),
        (initializers.VarianceScaling(2.0, "fan_avg", "untruncated_normal", seed=1), (200, 600), math.sqrt(2 / 400)),
    ],
)
def test_variance_scaling_normal_statistics(initializer, shape, stddev):
    values = initializer(shape, dtype="float64")
    assert abs(values.mean()) < 0.02 * stddev
    np.testing.assert_allclose(values.std(), stddev, rtol=0.02)
    if initializer.distribution == "truncated_normal":  # cut at 2 stddev of the underlying normal
        assert np.abs(values).max() <= 2 * stddev / 0.87962566103423978


def test_random_and_truncated_normal_statistics():
    normal = initializers.RandomNormal(mean=1.0, stddev=2.0, seed=3)((200_000,), dtype="float64")
    np.testing.assert_allclose([normal.mean(), normal.std()], [1.0, 2.0], rtol=0.01)
    assert normal.min() < 1.0 - 8.0  # not truncated
    truncated = initializers.TruncatedNormal(mean=1.0, stddev=2.0, seed=3)((200_000,), dtype="float64")
    assert truncated.min() >= 1.0 - 4.0 and truncated.max() <= 1.0 + 4.0
    np.testing.assert_allclose([truncated.mean(), truncated.std()], [1.0, 2.0 * 0.87962566103423978], rtol=0.01)


def test_compute_fans():
    assert initializers.compute_fans(()) == (1, 1)
    assert initializers.compute_fans((5,)) == (5, 5)
    assert initializers.compute_fans((3, 4)) == (3, 4)
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)  # receptive field 9 on both
    assert initializers.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == (6, 4)


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (4, 9), (2, 3, 4)])
def test_orthogonal_matrices(shape):
    gain = 1.7
    values = initializers.Orthogonal(gain=gain, seed=4)(shape, dtype="float64")
    matrix = values.reshape(-1, shape[-1])
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    np.testing.assert_allclose(gram, gain**2 * np.eye(len(gram)), atol=1e-12)
    with pytest.raises(ValueError, match="at least two-dimensional"):
        initializers.Orthogonal()((5,))


def test_identity_and_constants(keras):
    np.testing.assert_array_equal(initializers.Identity(gain=3.0)((2, 3)), [[3, 0, 0], [0, 3, 0]])
    np.testing.assert_array_equal(initializers.get("identity")((4, 4)), np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="2D matrices"):
        initializers.Identity()((2, 2, 2))
    for initializer in EXAMPLES[:4]:
        shape = (3, 3)
        expected = np.asarray(_keras_twin(keras, initializer)(shape, dtype="float32"))
        np.testing.assert_array_equal(initializer(shape), expected)
    assert initializers.Zeros()((2,), dtype="int32").dtype == np.int32


@pytest.mark.parametrize("initializer", EXAMPLES + [cls() for cls in SEEDED], ids=lambda i: type(i).__name__)
def test_configs_match_keras_and_round_trip(keras, initializer):
    config = initializers.serialize(initializer)
    keras_config = keras.initializers.serialize(_keras_twin(keras, initializer))
    if isinstance(initializer, initializers.Identity):  # Keras 3.15 leaves out the gain
        assert config["config"] == {"gain": initializer.gain} and keras_config["config"] == {}
    else:
        assert config == keras_config
    rebuilt = initializers.deserialize(config)
    assert type(rebuilt) is type(initializer) and rebuilt.get_config() == initializer.get_config()
    assert initializer.clone().get_config() == initializer.get_config()
    if isinstance(initializer, initializers.RandomInitializer) and initializer.seed is not None:
        np.testing.assert_array_equal(rebuilt((5, 5)), initializer((5, 5)))


@pytest.mark.parametrize("name", NAMES)
def test_get_accepts_every_keras_name(keras, name):
    if name.lower() == "constant":  # Keras 3.15 fails here: Constant.from_config needs "value"
        assert initializers.get(name)((2,)).tolist() == [0.0, 0.0]
        return
    assert type(initializers.get(name)).__name__ == type(keras.initializers.get(name)).__name__


def test_get_resolves_identifiers():
    assert initializers.get(None) is None
    instance = initializers.Ones()
    assert initializers.get(instance) is instance
    assert isinstance(initializers.get(initializers.HeNormal), initializers.HeNormal)

    def fn(shape, dtype=None):
        return np.full(shape, 2.0, dtype)

    assert initializers.get(fn) is fn
    uniform = initializers.get({"class_name": "RandomUniform", "config": {"minval": 0.0, "maxval": 1.0, "seed": 9}})
    assert isinstance(uniform, initializers.RandomUniform) and uniform.get_config()["seed"] == 9
    assert isinstance(initializers.get("uniform"), initializers.RandomUniform)


def test_unknown_identifiers_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="'glorot_unifrom'.*glorot_uniform"):
        initializers.get("glorot_unifrom")
    with pytest.raises(ValueError, match="'Xavier'"):
        initializers.get({"class_name": "Xavier", "config": {}})
    with pytest.raises(ValueError, match="3.5"):
        initializers.get(3.5)


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="scale"):
        initializers.VarianceScaling(scale=0.0)
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan_sum")
    with pytest.raises(ValueError, match="distribution"):
        initializers.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="seed"):
        initializers.GlorotUniform(seed="1")
    assert initializers.VarianceScaling(distribution="Normal").distribution == "truncated_normal"
