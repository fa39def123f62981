"""Attention, AdditiveAttention, MultiHeadAttention, GroupNormalization, UnitNormalization and
LayerNormalization against Keras 3 (JAX backend): random configurations, the same weights and
inputs, forward values and gradients (weights and inputs); configs, save/load and masks.

Keras's MultiHeadAttention takes two paths on JAX: with 3-D inputs, no dropout and no
`return_attention_scores` it calls `ops.dot_product_attention`, where a query row whose keys are
all masked attends uniformly; otherwise its masked `Softmax` gives such a row zero weights.
rnnkit always computes the second (the one whose scores it can return), so outputs at fully
masked query rows are left out of the comparison on the first path.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.filterwarnings("ignore:You are using a softmax over axis"),
]


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def random_mask(rng, batch, steps):
    mask = rng.random((batch, steps)) > 0.3
    mask[:, 0] = True  # at least one visible step per row
    return mask


def set_random_weights(theirs, ours, rng, positive=False):
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    if positive:
        weights = [np.abs(w) + 0.5 for w in weights]
    theirs.set_weights(weights)
    ours.set_weights(weights)


# --- Attention and AdditiveAttention ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", ["Attention", "AdditiveAttention"])
def test_attention_matches_keras(keras, name, seed):
    rng = np.random.default_rng(seed)
    batch, tq, tv, dim = rng.integers(1, 4), rng.integers(1, 6), rng.integers(1, 6), rng.integers(1, 5)
    kwargs = {"use_scale": bool(rng.integers(2))}
    if name == "Attention":
        kwargs["score_mode"] = ["dot", "concat"][rng.integers(2)]
    query = rng.normal(size=(batch, tq, dim)).astype("float32")
    value = rng.normal(size=(batch, tv, dim)).astype("float32")
    inputs = [query, value]
    if rng.integers(2):
        inputs.append(rng.normal(size=(batch, tv, dim)).astype("float32"))
    call = {
        "return_attention_scores": bool(rng.integers(2)),
        "use_causal_mask": bool(rng.integers(2)) and tq == tv,
    }
    if rng.integers(2):
        call["mask"] = [random_mask(rng, batch, tq), random_mask(rng, batch, tv)]
    theirs, ours = getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)
    theirs.build([x.shape for x in inputs])
    ours.build([x.shape for x in inputs])
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    set_random_weights(theirs, ours, rng)
    assert_twins_agree(theirs, ours, (inputs,), call, rng=rng)
    assert_same_config(ours, theirs)


def test_attention_output_keeps_the_query_mask():
    query = rk.layers.Embedding(5, 3, mask_zero=True)(np.array([[1, 2, 0]]))
    value = rk.layers.Embedding(5, 3, mask_zero=True)(np.array([[3, 0, 4, 1]]))
    out = layers.Attention()([query, value])
    np.testing.assert_array_equal(np.asarray(out._keras_mask), [[True, True, False]])
    np.testing.assert_array_equal(np.asarray(out)[0, 2], 0)


def test_attention_dropout_is_seeded_and_only_in_training():
    q = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    a, b = layers.Attention(dropout=0.5, seed=3), layers.Attention(dropout=0.5, seed=3)
    _, wa = a([q, q], training=True, return_attention_scores=True)
    _, wb = b([q, q], training=True, return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb))
    assert (np.asarray(wa) == 0).any()
    _, w = a([q, q], return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(w).sum(-1), 1, rtol=1e-6)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: layers.Attention(score_mode="add"), "score_mode"),
        (lambda: layers.Attention()(np.zeros((1, 2, 3))), "list of inputs"),
        (lambda: layers.Attention()([np.zeros((1, 2, 3))]), "length 2 or 3"),
        (lambda: layers.MultiHeadAttention(num_heads=0, key_dim=2), "num_heads"),
        (lambda: layers.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes="x"), "attention_axes"),
        (
            lambda: layers.MultiHeadAttention(2, 2)(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)), np.zeros((1, 2, 3))),
            "value` and `key",
        ),
        (lambda: layers.GroupNormalization(groups=0), "groups"),
        (lambda: layers.GroupNormalization(groups=4)(np.zeros((1, 2, 6))), "groups"),
    ],
)
def test_invalid_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


# --- MultiHeadAttention ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_multi_head_attention_matches_keras(keras, seed):
    rng = np.random.default_rng(100 + seed)
    batch, tq, tv = rng.integers(1, 4), rng.integers(1, 5), rng.integers(1, 5)
    heads, key_dim = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dq, dv = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    kwargs = {"num_heads": heads, "key_dim": key_dim, "use_bias": bool(rng.integers(2))}
    if rng.integers(2):
        kwargs["value_dim"] = int(rng.integers(1, 4))
    if rng.integers(2):
        kwargs["output_shape"] = int(rng.integers(1, 4)) if rng.integers(2) else (2, 3)
    if rng.integers(3) == 0:
        kwargs["use_gate"] = True
    query = rng.normal(size=(batch, tq, dq)).astype("float32")
    value = rng.normal(size=(batch, tv, dv)).astype("float32")
    args = [query, value]
    if rng.integers(2):
        args.append(rng.normal(size=(batch, tv, int(rng.integers(1, 4)))).astype("float32"))
    call = {"return_attention_scores": bool(rng.integers(2))}
    if kwargs.get("value_dim", key_dim) != key_dim:
        # Keras's JAX fast path (jax.nn.dot_product_attention) rejects value heads of another size.
        call["return_attention_scores"] = True
    if rng.integers(2) and tq == tv:
        call["use_causal_mask"] = True
    keep = None
    if rng.integers(2):
        call["attention_mask"] = random_mask(rng, batch * tq, tv).reshape(batch, tq, tv)
    theirs, ours = keras.layers.MultiHeadAttention(**kwargs), layers.MultiHeadAttention(**kwargs)
    theirs(*args, return_attention_scores=True)
    ours(*args)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    set_random_weights(theirs, ours, rng)
    assert_twins_agree(theirs, ours, tuple(args), call, keep=keep, rng=rng, rtol=2e-5, atol=2e-5)
    config, keras_config = ours.get_config(), theirs.get_config()
    for key in ("num_heads", "key_dim", "value_dim", "use_bias", "use_gate", "dropout", "sliding_window"):
        assert config[key] == keras_config[key], key
    assert config["attention_axes"] == list(keras_config["attention_axes"])


@pytest.mark.parametrize("axes", [None, 2, (1, 2), (-2,)])
def test_multi_head_attention_attention_axes_match_keras(keras, axes):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=axes)
    ours = layers.MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=axes)
    theirs(x, x)
    ours(x, x)
    set_random_weights(theirs, ours, rng)
    assert_twins_agree(theirs, ours, (x, x), {"return_attention_scores": True}, rng=rng, rtol=2e-5, atol=2e-5)


def test_multi_head_attention_input_masks_match_keras(keras):
    rng = np.random.default_rng(3)
    tokens_q = np.array([[1, 2, 3, 0], [4, 1, 0, 0]])
    tokens_v = np.array([[1, 2, 0], [3, 3, 1]])

    def model(lib):
        q_in, v_in = lib.Input((4,), dtype="int32"), lib.Input((3,), dtype="int32")
        emb = lib.layers.Embedding(6, 4, mask_zero=True, name="emb")
        mha = lib.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")
        out = mha(emb(q_in), emb(v_in), return_attention_scores=True)
        return lib.Model([q_in, v_in], list(out))

    theirs, ours = model(keras), model(rk)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    k_out, k_scores = theirs([tokens_q, tokens_v])
    r_out, r_scores = ours([tokens_q, tokens_v])
    np.testing.assert_allclose(np.asarray(r_scores), np.asarray(k_scores), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r_out), np.asarray(k_out), rtol=1e-5, atol=1e-5)


def test_multi_head_attention_fully_masked_rows_get_zero_weights():
    mha = layers.MultiHeadAttention(num_heads=1, key_dim=2)
    x = np.ones((1, 2, 3), "float32")
    _, scores = mha(x, x, attention_mask=np.array([[[True, True], [False, False]]]), return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(scores)[0, 0, 1], 0)


def test_multi_head_attention_dropout_and_save_load(tmp_path):
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    inp = rk.Input((3, 4))
    out = layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.3, seed=5, output_shape=6)(
        inp, inp, use_causal_mask=True
    )
    model = rk.Model(inp, out)
    assert model.output_shape == (None, 3, 6)
    trained = np.asarray(model(q, training=True))
    assert not np.allclose(trained, np.asarray(model(q)))
    model.save(tmp_path / "mha.keras")
    loaded = rk.models.load_model(tmp_path / "mha.keras")
    np.testing.assert_allclose(np.asarray(loaded(q)), np.asarray(model(q)), rtol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=2),
        lambda: layers.AdditiveAttention(use_scale=False),
    ],
)
def test_attention_save_load(tmp_path, layer):
    rng = np.random.default_rng(2)
    q, v = rng.normal(size=(2, 3, 4)).astype("float32"), rng.normal(size=(2, 5, 4)).astype("float32")
    qi, vi = rk.Input((3, 4)), rk.Input((5, 4))
    model = rk.Model([qi, vi], layer()([qi, vi]))
    clone = type(model.layers[-1]).from_config(model.layers[-1].get_config())
    assert clone.get_config() == model.layers[-1].get_config()
    model.save(tmp_path / "att.keras")
    loaded = rk.models.load_model(tmp_path / "att.keras")
    np.testing.assert_allclose(np.asarray(loaded([q, v])), np.asarray(model([q, v])), rtol=1e-6)


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_group_normalization_matches_keras(keras, seed):
    rng = np.random.default_rng(200 + seed)
    groups = int(rng.choice([1, 2, 3, -1]))
    channels = 6
    rank = int(rng.integers(2, 5))
    axis = int(rng.choice([-1, 1])) if rank > 2 else -1
    shape = [int(rng.integers(1, 4)) for _ in range(rank)]
    shape[axis] = channels
    kwargs = {
        "groups": groups,
        "axis": axis,
        "epsilon": float(rng.choice([1e-3, 0.1])),
        "center": bool(rng.integers(2)),
        "scale": bool(rng.integers(2)),
    }
    x = rng.normal(1.0, 2.0, size=shape).astype("float32")
    theirs, ours = keras.layers.GroupNormalization(**kwargs), layers.GroupNormalization(**kwargs)
    theirs.build(x.shape)
    ours.build(x.shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    set_random_weights(theirs, ours, rng)
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=2e-5, atol=2e-5)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization_matches_keras(keras, axis):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 5)).astype("float32")
    theirs, ours = keras.layers.UnitNormalization(axis=axis), layers.UnitNormalization(axis=axis)
    assert_twins_agree(theirs, ours, (x,), rng=rng)
    assert ours.get_config()["axis"] == theirs.get_config()["axis"]


def test_unit_normalization_of_zeros_is_zero_with_a_finite_gradient():
    # Keras's min(rsqrt(0), 1e12) has a NaN gradient at 0; 1 / sqrt(max(s, 1e-24)) has none.
    x = rk.Tensor(np.zeros((1, 3), "float32"))
    with rk.GradientTape() as tape:
        tape.watch(x)
        y = layers.UnitNormalization()(x)
        total = rk.ops.sum(y)
    np.testing.assert_array_equal(np.asarray(y), 0)
    assert np.isfinite(np.asarray(tape.gradient(total, x))).all()


@pytest.mark.parametrize("seed", range(4))
def test_layer_normalization_gradients_match_keras(keras, seed):
    rng = np.random.default_rng(300 + seed)
    x = rng.normal(1.0, 2.0, size=(2, 3, 4)).astype("float32")
    kwargs = {
        "axis": [-1, 1, [1, 2]][seed % 3],
        "center": bool(rng.integers(2)),
        "scale": bool(rng.integers(2)),
        "epsilon": float(rng.choice([1e-3, 1e-5])),
    }
    theirs, ours = keras.layers.LayerNormalization(**kwargs), layers.LayerNormalization(**kwargs)
    theirs.build(x.shape)
    ours.build(x.shape)
    set_random_weights(theirs, ours, rng)
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize(
    "layer",
    [lambda: layers.GroupNormalization(groups=2, center=False), lambda: layers.UnitNormalization(axis=[1, 2])],
)
def test_normalization_save_load(tmp_path, layer):
    x = np.random.default_rng(4).normal(size=(2, 3, 4)).astype("float32")
    inp = rk.Input((3, 4))
    model = rk.Model(inp, layer()(inp))
    model.save(tmp_path / "norm.keras")
    loaded = rk.models.load_model(tmp_path / "norm.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)


def test_group_normalization_passes_masks():
    x = rk.layers.Masking()(np.array([[[1.0, 2.0], [0.0, 0.0]]], "float32"))
    out = layers.GroupNormalization(groups=1)(x)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), [[True, False]])


def test_multi_head_attention_keras_files_move_both_ways(keras, tmp_path):
    """Keras keeps the projections under their attribute names (query_dense, ..., _gate_dense)."""
    inp = keras.Input((4, 6))
    mha = keras.layers.MultiHeadAttention(2, 3, use_gate=True, bias_initializer="glorot_uniform")
    theirs = keras.Model(inp, mha(inp, inp))
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(5).normal(size=(2, 4, 6)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_a_multi_head_attention_file_rnnkit_wrote_before_keras_layout_still_loads():
    # tests/data/mha_rnnkit_0_1.keras: saved by rnnkit at 4911fc4, when MultiHeadAttention's eight
    # arrays sat in one group (Keras keeps one group per projection); golden outputs from then.
    model = rk.models.load_model(os.path.join(os.path.dirname(__file__), "data", "mha_rnnkit_0_1.keras"))
    rng = np.random.default_rng(0)
    query, value = rng.normal(size=(2, 4, 6)).astype("float32"), rng.normal(size=(2, 5, 6)).astype("float32")
    expected = [
        [0.05079949, -0.19733596, 0.12838121, -0.12954095, 0.08731601, 0.35736138],
        [0.13234538, 0.23330948, -0.07239337, 0.1886305, 0.05209649, 0.26238492],
    ]
    np.testing.assert_allclose(model.predict([query, value], verbose=0), expected, atol=1e-6)
