"""The public `Wrapper` base class and `InputSpec`, against Keras 3 (JAX backend): the same user
code subclassing `Wrapper` runs, saves and loads in both libraries (files both ways, weights of the
wrapper and of the wrapped layer); `InputSpec` checks every call's first input and refuses what
Keras refuses, with its messages."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def define_gated_residual(lib):
    """A user wrapper: `inputs + gain * layer(inputs)`, `gain` the wrapper's own weight."""

    @lib.saving.register_keras_serializable(package="WrapperTest")
    class GatedResidual(lib.layers.Wrapper):
        def build(self, input_shape):
            super().build(input_shape)
            self.gain = self.add_weight(shape=(), initializer="ones", name="gain")

        def call(self, inputs):
            return inputs + self.gain * self.layer(inputs)

    return GatedResidual


def test_a_user_wrapper_matches_keras_and_files_move_both_ways(keras, tmp_path):
    theirs_cls, ours_cls = define_gated_residual(keras), define_gated_residual(rk)
    inp = keras.Input((5, 3))
    h = theirs_cls(keras.layers.Dense(3, activation="tanh"))(inp)
    h = keras.layers.TimeDistributed(keras.layers.Dense(2))(h)
    theirs = keras.Model(inp, h)
    rng = np.random.default_rng(0)
    theirs.set_weights([rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()])
    theirs.save(tmp_path / "keras.keras")
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    assert isinstance(ours.layers[1], ours_cls) and isinstance(ours.layers[1], rk.layers.Wrapper)
    assert [w.name for w in ours.layers[1].weights] == ["gain", "kernel", "bias"]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_wrapper_builds_the_wrapped_layer_and_round_trips_its_config():
    wrapper = define_gated_residual(rk)(rk.layers.Dense(4, name="inner"))
    out = wrapper(np.ones((2, 4), "float32"))
    assert out.shape == (2, 4) and wrapper.layer.built
    config = wrapper.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["name"] == "inner"
    clone = type(wrapper).from_config(config)
    assert clone.get_config() == config
    assert isinstance(rk.layers.TimeDistributed(rk.layers.Dense(2)), rk.layers.Wrapper)


def test_wrapper_refuses_what_is_not_a_layer():
    with pytest.raises(ValueError, match="supplied to Wrapper isn't a supported layer type"):
        rk.layers.Wrapper("dense")


def define_spec_layer(lib, spec_kwargs, structure=False):
    class Checked(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            spec = lib.layers.InputSpec(**spec_kwargs)
            self.input_spec = [spec, lib.layers.InputSpec(ndim=2)] if structure else spec

        def call(self, inputs):
            return inputs[0] if isinstance(inputs, (list, tuple)) else inputs

    return Checked


SPECS = [
    ({"ndim": 3}, (2, 4, 5), [(2, 4), (2, 4, 5, 1)], "expected ndim=3, found ndim="),
    ({"min_ndim": 3}, (2, 4, 5, 6), [(2, 4)], "expected min_ndim=3, found ndim=2"),
    ({"max_ndim": 2}, (2, 4), [(2, 4, 5)], "expected max_ndim=2, found ndim=3"),
    ({"axes": {-1: 5}}, (2, 3, 5), [(2, 3, 4)], "expected axis -1 of input shape to have value 5"),
    ({"shape": (None, 3, 2)}, (7, 3, 2), [(7, 2, 2)], r"expected shape=\(None, 3, 2\), found shape=\(7, 2, 2\)"),
    ({"shape": (None, 3), "allow_last_axis_squeeze": True}, (2, 3, 1), [(2, 4)], "expected shape="),
    ({"dtype": "int32"}, (2, 3), [(2, 3)], "expected dtype=int32, found dtype=float32"),
]


@pytest.mark.parametrize("spec_kwargs, good, bad_shapes, match", SPECS)
def test_input_spec_refuses_what_keras_refuses(keras, spec_kwargs, good, bad_shapes, match):
    ours, theirs = define_spec_layer(rk, spec_kwargs)(), define_spec_layer(keras, spec_kwargs)()
    # Float inputs are cast to the layer's float32 first (in both), integers are kept.
    good_dtype = spec_kwargs.get("dtype", "float32")
    x = np.ones(good, good_dtype)
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))
    for shape in bad_shapes:
        bad = np.ones(shape, "float32")
        with pytest.raises(ValueError, match=match):
            theirs(bad)
        with pytest.raises(ValueError, match=match):
            ours(bad)


def test_input_spec_checks_symbolic_inputs_and_structures():
    checked = define_spec_layer(rk, {"ndim": 3})
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=2"):
        checked()(rk.Input((4,)))
    assert checked()(rk.Input((4, 5))).shape == (None, 4, 5)
    pair = define_spec_layer(rk, {"ndim": 3}, structure=True)()
    pair([np.ones((1, 2, 3), "float32"), np.ones((1, 2), "float32")])
    with pytest.raises(ValueError, match="Input 1 with name 'None' of layer .* expected ndim=2, found ndim=3"):
        pair([np.ones((1, 2, 3), "float32"), np.ones((1, 2, 3), "float32")])
    with pytest.raises(ValueError, match="expects 2 input"):
        pair([np.ones((1, 2, 3), "float32")])


def test_input_spec_named_inputs_and_config():
    spec = rk.layers.InputSpec(shape=(None, 3), name="tokens", dtype="float32")
    assert spec.ndim == 2 and repr(spec) == "InputSpec(dtype=float32, shape=(None, 3), ndim=2)"
    assert rk.layers.InputSpec.from_config(spec.get_config()).get_config() == spec.get_config()
    from rnnkit.layers.input_spec import assert_input_compatibility

    assert_input_compatibility([spec], {"tokens": np.ones((2, 3), "float32")}, "layer")
    with pytest.raises(ValueError, match='Missing data for input "tokens"'):
        assert_input_compatibility([spec], {"ids": np.ones((2, 3), "float32")}, "layer")
    with pytest.raises(TypeError, match="`axes` must be a dict with integer keys"):
        rk.layers.InputSpec(axes={"last": 3})
    with pytest.raises(ValueError, match="Axis 3 is greater than the maximum allowed value: 1"):
        rk.layers.InputSpec(ndim=2, axes={3: 4})
