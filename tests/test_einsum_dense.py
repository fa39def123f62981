"""EinsumDense against Keras 3 (JAX backend): kernel and bias shapes of the three equation forms,
forward values and gradients on the same weights and inputs, output shapes with partial
`output_shape`s, the fans its default initializer counts, configs, `.keras` files both ways, and
errors naming the bad argument; `rk.ops.einsum` against `keras.ops.einsum` and its gradients."""

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


CASES = [
    ("ab,bc->ac", 4, "c", (3, 5)),
    ("ab,bc->ac", (4,), None, (3, 5)),
    ("abc,cd->abd", (None, 4), "d", (2, 3, 5)),
    ("abc,cde->abde", (None, 2, 3), "de", (2, 4, 5)),
    ("abc,cde->abde", (4, 2, 3), "e", (2, 4, 5)),
    ("abcd,cde->abe", (None, 3), "e", (2, 4, 2, 5)),
    ("abc,bcd->ad", 3, "d", (2, 4, 5)),
    ("abc,cd->abd", (3, 4), "bd", (2, 3, 5)),
    ("...x,xy->...y", 4, "y", (2, 3, 5)),
    ("...x,xy->...y", 4, None, (2, 5)),
    ("...bc,cd->...bd", (None, 3), "d", (2, 2, 3, 5)),
    ("ab...,bc->ac...", 4, "c", (2, 3, 6, 2)),
    ("abc...,cd->abd...", (None, 4), "d", (2, 3, 5, 2)),
    ("abc,dce->abde", (3, 4, 2), "de", (2, 3, 5)),
]


@pytest.mark.parametrize("equation, output_shape, bias_axes, shape", CASES)
def test_einsum_dense_matches_keras(keras, equation, output_shape, bias_axes, shape):
    rng = np.random.default_rng(len(equation) + sum(shape))
    kwargs = {"equation": equation, "output_shape": output_shape, "bias_axes": bias_axes}
    if rng.integers(2):
        kwargs["activation"] = "tanh"
    theirs, ours = keras.layers.EinsumDense(**kwargs), layers.EinsumDense(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=1e-5, atol=1e-5)
    assert_same_config(ours, theirs)
    # Keras's shapes leave a None of `output_shape` None; ours take the input's size there, as
    # Keras's docstring shows (`EinsumDense("abc,cd->abd", (None, 64))` on (None, 32, 128) gives
    # (None, 32, 64)).
    want = theirs.compute_output_shape(shape)
    assert all(k is None or k == o for k, o in zip(want, ours.compute_output_shape(shape)))
    assert ours.compute_output_shape(shape) == ours(x).shape
    k_inp, inp = keras.Input(shape[1:]), rk.Input(shape[1:])
    want = tuple(keras.layers.EinsumDense(**kwargs)(k_inp).shape)
    got = rk.Model(inp, layers.EinsumDense(**kwargs)(inp)).output_shape
    assert len(got) == len(want) and got[0] is None
    assert all(k is None or k == o for k, o in zip(want, got))
    assert all(o is not None for o in got[1:])


def test_einsum_dense_unknown_sequence_axis(keras):
    """A None output size takes the input's size; Keras's symbolic output agrees."""
    ours = rk.Model(inp := rk.Input((None, 6)), layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d")(inp))
    k_inp = keras.Input((None, 6))
    theirs = keras.Model(k_inp, keras.layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="d")(k_inp))
    assert ours.output_shape == tuple(theirs.output_shape) == (None, None, 4)
    assert ours.predict(np.ones((2, 7, 6), "float32"), verbose=0).shape == (2, 7, 4)


def test_einsum_dense_initializer_counts_the_kernel_fans(keras):
    """glorot_uniform over a (5, 2, 3) kernel: fan_in 5, fan_out 6, as Keras, not the conv rule."""
    layer = layers.EinsumDense("abc,cde->abde", (None, 2, 3), kernel_initializer=rk.initializers.GlorotUniform(seed=3))
    layer.build((None, 4, 5))
    limit = np.sqrt(6 / (5 + 6))
    kernel = layer.kernel.numpy()
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.8 * limit  # the conv rule's limit sqrt(6 / (10 + 15)) is smaller
    assert layer.kernel_initializer.input_axes is None  # the user's initializer and config are kept


def test_einsum_dense_trains_with_regularizer_and_constraint():
    layer = layers.EinsumDense(
        "abc,cd->abd",
        (None, 3),
        bias_axes="d",
        kernel_regularizer=rk.regularizers.L2(0.1),
        kernel_constraint=rk.constraints.MaxNorm(0.5),
    )
    model = rk.Sequential([rk.Input((4, 2)), layer])
    model.compile(optimizer=rk.optimizers.SGD(0.5), loss="mse")
    model(np.ones((1, 4, 2), "float32"))
    np.testing.assert_allclose(float(model.losses[0]), 0.1 * np.sum(layer.kernel.numpy() ** 2), rtol=1e-5)
    model.fit(np.ones((8, 4, 2), "float32"), np.full((8, 4, 3), 5.0, "float32"), epochs=2, verbose=0)
    assert np.sqrt((layer.kernel.numpy() ** 2).sum(axis=0)).max() <= 0.5 + 1e-6


def test_einsum_dense_errors():
    with pytest.raises(ValueError, match="Invalid einsum equation"):
        layers.EinsumDense("ab,bc", 4)
    with pytest.raises(ValueError, match="Invalid einsum equation"):
        layers.EinsumDense("a...,bc->c...", 4)
    with pytest.raises(ValueError, match="output_shape"):
        layers.EinsumDense("ab,bc->ac", "4")
    with pytest.raises(ValueError, match="bias_axes"):
        layers.EinsumDense("ab,bc->ac", 4, bias_axes="cc")
    with pytest.raises(ValueError, match="lora_rank"):
        layers.EinsumDense("ab,bc->ac", 4, lora_rank=2)
    with pytest.raises(ValueError, match="quantization_config"):
        layers.EinsumDense("ab,bc->ac", 4, quantization_config={"mode": "int8"})
    with pytest.raises(ValueError, match="output_shape must give 2 sizes"):
        layers.EinsumDense("abc,cd->abd", 4).build((2, 3, 5))
    with pytest.raises(ValueError, match="Bias dimension 'q'"):
        layers.EinsumDense("ab,bc->ac", 4, bias_axes="q").build((2, 5))
    with pytest.raises(ValueError, match="Weight dimension 'z'"):
        layers.EinsumDense("ab,bz->a", ()).build((2, 5))
    with pytest.raises(ValueError, match="Dimension 'q' was specified in the output"):
        layers.EinsumDense("ab,bc->aq", 4).build((2, 5))
    with pytest.raises(ValueError, match="do not match at shared dimension 'b'"):
        layers.EinsumDense("abc,cd->abd", (5, 4)).build((2, 3, 5))
    with pytest.raises(ValueError, match="kernel dimension 'c' .* is unknown"):
        layers.EinsumDense("abc,cd->abd", (None, 4)).build((2, 3, None))
    with pytest.raises(ValueError, match="bias_axes='bd' includes an axis of unknown size"):
        layers.EinsumDense("abc,cd->abd", (None, 4), bias_axes="bd").build((2, None, 5))
    with pytest.raises(ValueError, match="needs inputs of rank 2"):
        layers.EinsumDense("ab,bc->ac", 4).build((2, 3, 5))
    layer = layers.EinsumDense("abc,cd->abd", (None, 4))
    layer(np.ones((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match=r"expected ndim=3"):
        layer(np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"label 'c' of 'abc,cd->abd'\) should have size 5"):
        layer(np.ones((2, 3, 6), "float32"))


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((6, 5))
    h = keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", activation="relu")(inp)
    h = keras.layers.Reshape((6, 6))(h)
    h = keras.layers.EinsumDense("...x,xy->...y", 4, bias_axes="y", bias_initializer="glorot_uniform")(h)
    theirs = keras.Model(inp, h)
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(2).normal(size=(3, 6, 5)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,jk->...ik", [(2, 3, 3, 4), (4, 2)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("bqhd,bkhd->bhqk", [(2, 3, 2, 4), (2, 5, 2, 4)]),
]


@pytest.mark.parametrize("subscripts, shapes", EINSUMS)
def test_ops_einsum_matches_keras_with_gradients(keras, subscripts, shapes):
    import jax

    rng = np.random.default_rng(len(subscripts))
    arrays = [rng.normal(size=s).astype("float32") for s in shapes]
    want = np.asarray(keras.ops.einsum(subscripts, *arrays))
    cotangent = rng.normal(size=want.shape).astype("float32")
    tensors = [rk.Variable(a) for a in arrays]
    with rk.GradientTape() as tape:
        out = rk.ops.einsum(subscripts, *tensors)
        loss = rk.ops.sum(out * cotangent)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)

    def keras_loss(*xs):
        return (keras.ops.einsum(subscripts, *xs) * cotangent).sum()

    want_grads = jax.grad(keras_loss, argnums=tuple(range(len(arrays))))(*arrays)
    for got, expected in zip(tape.gradient(loss, tensors), want_grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-5)
