"""The registry of user-defined objects and Keras-style serialisation, checked against Keras 3
(jax backend): `register_keras_serializable` names, `get_registered_object`,
`get_custom_objects`, `CustomObjectScope`, `serialize_keras_object` structures, custom layers and
cells that save and load without `custom_objects` once registered, and the one naming helper."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _naming

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside Keras


def define_scale_layer(lib, package, name=None):
    """A user layer with a config (multiplies by a constant), registered with `lib`."""

    @lib.saving.register_keras_serializable(package=package, name=name)
    class Scale(lib.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, inputs):
            return inputs * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    return Scale


def define_minimal_cell(lib, package):
    """The Keras RNN guide's minimal cell (a tanh RNN without bias), registered with `lib`."""

    @lib.saving.register_keras_serializable(package=package)
    class MinimalCell(lib.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

        def call(self, inputs, states):
            h = lib.ops.tanh(lib.ops.matmul(inputs, self.kernel) + lib.ops.matmul(states[0], self.recurrent_kernel))
            return h, [h]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return MinimalCell


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("package, name", [("Custom", None), ("my_pkg", None), ("my_pkg", "Renamed")])
def test_registered_names_equal_keras(package, name):
    ours, theirs = define_scale_layer(rk, package, name), define_scale_layer(keras, package, name)
    assert rk.saving.get_registered_name(ours) == keras.saving.get_registered_name(theirs)
    assert rk.saving.get_registered_name(ours) == f"{package}>{name or 'Scale'}"
    assert rk.saving.get_registered_object(rk.saving.get_registered_name(ours)) is ours
    assert rk.saving.get_custom_objects()[f"{package}>{name or 'Scale'}"] is ours


def test_unregistered_and_builtin_names_equal_keras():
    def plain(x):
        return x

    assert rk.saving.get_registered_name(plain) == keras.saving.get_registered_name(plain) == "plain"
    assert rk.saving.get_registered_name(rk.layers.LSTM) == keras.saving.get_registered_name(keras.layers.LSTM)
    assert rk.saving.get_registered_object("no>such") is None
    assert rk.saving.get_registered_object("x", custom_objects={"x": plain}) is plain
    assert rk.saving.get_registered_object("x", module_objects={"x": plain}) is plain


def test_registering_a_class_without_get_config_fails():
    class NoConfig:
        pass

    with pytest.raises(ValueError):
        keras.saving.register_keras_serializable()(NoConfig)
    with pytest.raises(ValueError, match="register_keras_serializable: expected a class with a get_config"):
        rk.saving.register_keras_serializable()(NoConfig)


@pytest.mark.parametrize(
    "name", ["LSTMCell", "SimpleRNN", "GRU", "GlorotUniform", "L1L2", "MeanSquaredError", "KLDivergence", "AdamW"]
)
def test_snake_case_is_keras(name):
    from keras.src.utils.naming import to_snake_case

    assert _naming.snake_case(name) == to_snake_case(name)


def test_default_names_use_the_one_helper():
    assert rk.layers.LSTMCell(2).name.startswith("lstm_cell")
    assert rk.layers.SimpleRNN(2).name.startswith("simple_rnn")
    assert rk.losses.MeanSquaredError().name.startswith("mean_squared_error")
    assert type(rk.regularizers.get("l1_l2")) is type(rk.regularizers.get("l1l2")) is rk.regularizers.L1L2


# --- serialize_keras_object ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 3, 2.5, "text", True, [1, "a"], (1, 2), {"a": [1, 2]}, np.float32(1.5)])
def test_plain_values_serialize_as_keras(value):
    assert rk.saving.serialize_keras_object(value) == keras.saving.serialize_keras_object(value)


def test_arrays_and_functions_serialize_as_keras():
    array = np.arange(6, dtype="int64").reshape(2, 3)
    assert rk.saving.serialize_keras_object(array) == keras.saving.serialize_keras_object(array)
    np.testing.assert_array_equal(rk.saving.deserialize_keras_object(rk.saving.serialize_keras_object(array)), array)
    relu = rk.saving.serialize_keras_object(rk.activations.relu)
    assert relu == keras.saving.serialize_keras_object(keras.activations.relu)
    assert rk.saving.deserialize_keras_object(relu) is rk.activations.relu

    def shifted(x):
        return x + 1

    ours = rk.saving.register_keras_serializable("fns")(shifted)
    config = rk.saving.serialize_keras_object(ours)
    assert config == keras.saving.serialize_keras_object(keras.saving.register_keras_serializable("fns")(shifted))
    assert rk.saving.deserialize_keras_object(config) is ours
    with pytest.raises(ValueError, match="obj: expected a named function, received a lambda"):
        rk.saving.serialize_keras_object(lambda x: x)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.layers.Dense(3, name="d"),
        lambda lib: lib.layers.LSTM(4, name="l"),
        lambda lib: lib.layers.DepthwiseConv2D(3, name="dw"),
        lambda lib: lib.layers.SeparableConv2D(2, 3, name="sc"),
        lambda lib: lib.layers.Cropping3D(1, name="c"),
        lambda lib: lib.layers.ZeroPadding2D((1, 2), name="z"),
        lambda lib: lib.layers.UpSampling2D(interpolation="bilinear", name="u"),
        lambda lib: lib.layers.SpatialDropout3D(0.1, name="s"),
        lambda lib: lib.layers.AlphaDropout(0.1, name="a"),
        lambda lib: lib.layers.RMSNormalization(name="r"),
        lambda lib: lib.initializers.GlorotUniform(seed=1),
        lambda lib: lib.regularizers.L1L2(l1=0.1),
        lambda lib: lib.constraints.MaxNorm(2.0),
        lambda lib: lib.losses.Huber(),
        lambda lib: lib.optimizers.Adam(),
    ],
)
def test_builtin_objects_serialize_with_keras_structure(make):
    ours, theirs = rk.saving.serialize_keras_object(make(rk)), keras.saving.serialize_keras_object(make(keras))
    assert set(ours) == set(theirs) - {"build_config"}
    assert (ours["module"], ours["class_name"], ours["registered_name"]) == (
        theirs["module"],
        theirs["class_name"],
        theirs["registered_name"],
    )
    rebuilt = rk.saving.deserialize_keras_object(ours)
    assert type(rebuilt) is type(make(rk)) and rk.saving.serialize_keras_object(rebuilt) == ours


def test_registered_layer_serializes_with_its_registered_name():
    ours, theirs = define_scale_layer(rk, "structure"), define_scale_layer(keras, "structure")
    config = rk.saving.serialize_keras_object(ours(3.0, name="s"))
    keras_config = keras.saving.serialize_keras_object(theirs(3.0, name="s"))
    assert set(config) == set(keras_config) and config["registered_name"] == keras_config["registered_name"]
    assert config["class_name"] == keras_config["class_name"] == "Scale"
    rebuilt = rk.saving.deserialize_keras_object(config)
    assert type(rebuilt) is ours and rebuilt.factor == 3.0


def test_deserialize_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="Unknown class: 'Ghost'. Register it with"):
        rk.saving.deserialize_keras_object(
            {"module": None, "class_name": "Ghost", "config": {}, "registered_name": "x>Ghost"}
        )
    with pytest.raises(ValueError, match="Unknown function: 'ghost'"):
        rk.saving.deserialize_keras_object({"module": "builtins", "class_name": "function", "config": "ghost"})
    with pytest.raises(ValueError, match="rnnkit never loads"):
        rk.saving.deserialize_keras_object({"class_name": "__lambda__", "config": {"value": "..."}})


# --- scopes ----------------------------------------------------------------------------------------


def test_custom_object_scope_nests_and_ends():
    class Hidden(rk.layers.Dense):
        pass

    class Other(rk.layers.Dense):
        pass

    config = rk.layers.serialization.serialize(Hidden(2))
    assert rk.saving.custom_object_scope is rk.saving.CustomObjectScope
    with rk.saving.CustomObjectScope({"Hidden": Hidden}):
        with rk.saving.custom_object_scope({"Other": Other}):
            assert type(rk.saving.deserialize_keras_object(config)) is Hidden  # the outer scope still counts
            assert rk.saving.get_registered_object("Other") is Other
        assert rk.saving.get_registered_object("Other") is None
        assert "Hidden" not in rk.saving.get_custom_objects()  # scopes are not the global registry
    with pytest.raises(ValueError, match="Unknown layer: 'Hidden'"):
        rk.layers.serialization.deserialize(config)
    with pytest.raises(ValueError, match="custom_objects: expected a dict of names to objects, received"):
        rk.saving.CustomObjectScope([Hidden])


def test_registered_initializer_and_regularizer_load_by_name():
    @rk.saving.register_keras_serializable("inits")
    class Halves(rk.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 0.5, dtype or "float32")

    layer = rk.layers.Dense(2, kernel_initializer="inits>Halves")
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.get_weights()[0], np.full((3, 2), 0.5))
    config = rk.initializers.serialize(Halves())
    assert config["registered_name"] == "inits>Halves" and config["module"] == __name__
    assert type(rk.initializers.deserialize(config)) is Halves


# --- saving and loading without custom_objects ----------------------------------------------------


def test_registered_layer_saves_and_loads_without_custom_objects(tmp_path):
    scale = define_scale_layer(rk, "saved")
    inputs = rk.Input((4,))
    model = rk.Model(inputs, rk.layers.Dense(2)(scale(0.5)(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = rk.models.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[1]) is scale and loaded.layers[1].factor == 0.5
    x = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_registered_cell_saves_and_loads_without_custom_objects(tmp_path):
    cell = define_minimal_cell(rk, "cells")
    model = rk.Sequential([rk.Input((5, 3)), rk.layers.RNN(cell(4)), rk.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(1).random((6, 5, 3)).astype("float32")
    model.fit(x, np.ones((6, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "cell.keras")
    loaded = rk.models.load_model(tmp_path / "cell.keras")
    assert type(loaded.layers[0].cell) is cell
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_an_unregistered_layer_needs_custom_objects(tmp_path):
    class Unlisted(rk.layers.Layer):
        def call(self, inputs):
            return inputs

    inputs = rk.Input((2,))
    rk.Model(inputs, Unlisted()(inputs)).save(tmp_path / "u.keras")
    with pytest.raises(
        ValueError, match="Unknown layer: 'Unlisted'. Register it with `@rk.saving.register_keras_serializable"
    ):
        rk.models.load_model(tmp_path / "u.keras")
    assert type(rk.models.load_model(tmp_path / "u.keras", custom_objects={"Unlisted": Unlisted}).layers[1]) is Unlisted
