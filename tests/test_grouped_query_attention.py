"""GroupedQueryAttention against Keras 3's (JAX backend): random configurations (head sizes,
groups, biases, gates, keys, masks of every kind, causal and sliding-window masks), the same
weights and inputs, forward values, attention scores and gradients of the weights and inputs;
configs, `.keras` files both ways and errors naming the bad argument.

Keras's layer takes two paths: without dropout and `return_attention_scores` it calls
`ops.dot_product_attention`, where a query row whose keys are all masked attends uniformly; else
its masked softmax gives that row zero weights. rnnkit follows the same rule, so fully masked
rows are compared too.
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
]


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def twins(keras, kwargs, args, rng):
    theirs, ours = keras.layers.GroupQueryAttention(**kwargs), layers.GroupQueryAttention(**kwargs)
    theirs(*args)
    ours(*args)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


@pytest.mark.parametrize("seed", range(6))
def test_grouped_query_attention_matches_keras(keras, seed):
    rng = np.random.default_rng(500 + seed)
    batch, tq, tv = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    kv_heads = int(rng.integers(1, 4))
    kwargs = {
        "head_dim": int(rng.integers(1, 5)),
        "num_query_heads": kv_heads * int(rng.integers(1, 4)),
        "num_key_value_heads": kv_heads,
        "use_bias": bool(rng.integers(2)),
        "use_gate": bool(rng.integers(3) == 0),
    }
    if rng.integers(3) == 0:
        kwargs["sliding_window"] = int(rng.integers(1, 4))
    dim = int(rng.integers(1, 6))
    args = [rng.normal(size=(batch, tq, dim)).astype("float32"), rng.normal(size=(batch, tv, dim)).astype("float32")]
    if rng.integers(2):
        args.append(rng.normal(size=(batch, tv, int(rng.integers(1, 5)))).astype("float32"))
    call = {"return_attention_scores": bool(rng.integers(2))}
    if rng.integers(2):
        call["use_causal_mask"] = True
    masks = rng.integers(4)
    if masks == 1:
        call["attention_mask"] = rng.random((batch, tq, tv)) > 0.3
    elif masks == 2:
        call["query_mask"] = rng.random((batch, tq)) > 0.3
        call["value_mask"] = rng.random((batch, tv)) > 0.2
    theirs, ours = twins(keras, kwargs, args, rng)
    assert_twins_agree(theirs, ours, tuple(args), call, rng=rng, rtol=2e-5, atol=2e-5)
    assert_same_config(ours, theirs)


@pytest.mark.parametrize("return_attention_scores", [False, True])
def test_fully_masked_query_rows_follow_keras(keras, return_attention_scores):
    """Uniform attention on Keras's fast path, zero weights when scores are returned."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    theirs, ours = twins(keras, {"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 2}, (x, x), rng)
    call = {"query_mask": np.array([[1, 0, 1, 0], [0, 1, 1, 1]], bool), "use_causal_mask": True}
    call["return_attention_scores"] = return_attention_scores
    assert_twins_agree(theirs, ours, (x, x), call, rng=rng, rtol=2e-5, atol=2e-5)


def test_embedding_masks_join_and_the_output_keeps_the_query_mask(keras):
    rng = np.random.default_rng(3)
    tokens_q = np.array([[1, 2, 3, 0], [4, 1, 0, 0]])
    tokens_v = np.array([[1, 2, 0], [3, 3, 1]])

    def model(lib):
        q_in, v_in = lib.Input((4,), dtype="int32"), lib.Input((3,), dtype="int32")
        emb = lib.layers.Embedding(6, 4, mask_zero=True, name="emb")
        gqa = lib.layers.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2, name="gqa")
        out = gqa(emb(q_in), emb(v_in), return_attention_scores=True)
        return lib.Model([q_in, v_in], list(out))

    theirs, ours = model(keras), model(rk)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    k_out, k_scores = theirs([tokens_q, tokens_v])
    r_out, r_scores = ours([tokens_q, tokens_v])
    assert r_scores.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(np.asarray(r_scores), np.asarray(k_scores), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r_out), np.asarray(k_out), rtol=1e-5, atol=1e-5)
    emb = layers.Embedding(6, 4, mask_zero=True)
    gqa = layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1)
    out = gqa(emb(tokens_q), emb(tokens_v))
    np.testing.assert_array_equal(np.asarray(out._keras_mask), tokens_q != 0)


def test_dropout_is_seeded_and_only_in_training():
    x = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
    make = lambda: layers.GroupQueryAttention(2, 4, 2, dropout=0.5, seed=3, bias_initializer="ones")  # noqa: E731
    a, b = make(), make()
    b.set_weights(a.get_weights()) if b.built else (b(x, x), b.set_weights(a.get_weights()) if a.built else None)
    a(x, x)
    b.set_weights(a.get_weights())
    inference = np.asarray(a(x, x))
    np.testing.assert_allclose(np.asarray(a(x, x, training=False)), inference)
    trained = np.asarray(a(x, x, training=True))
    assert not np.allclose(trained, inference)
    np.testing.assert_allclose(np.asarray(b(x, x, training=True)), trained)


def test_keras_files_move_both_ways(keras, tmp_path):
    inp, mem = keras.Input((5, 6)), keras.Input((4, 6))
    gqa = keras.layers.GroupQueryAttention(
        head_dim=3, num_query_heads=4, num_key_value_heads=2, use_gate=True, bias_initializer="glorot_uniform"
    )
    theirs = keras.Model([inp, mem], gqa(inp, mem, use_causal_mask=True))
    theirs.save(tmp_path / "keras.keras")
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(2, 5, 6)).astype("float32"), rng.normal(size=(2, 4, 6)).astype("float32")]
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: layers.GroupQueryAttention(0, 2, 1), "head_dim"),
        (lambda: layers.GroupQueryAttention(2, 3, 2), "divisible by `num_key_value_heads`"),
        (lambda: layers.GroupQueryAttention(2, 2, 0), "num_key_value_heads"),
        (lambda: layers.GroupQueryAttention(2, 2, 1, flash_attention=True), "flash_attention"),
        (lambda: layers.GroupQueryAttention(2, 2, 1, dropout=1.5), "dropout"),
        (lambda: layers.GroupQueryAttention(2, 2, 1, sliding_window=0), "sliding_window"),
        (lambda: layers.GroupQueryAttention(2, 2, 1, key_dim=3), "Unrecognized keyword arguments"),
    ],
)
def test_invalid_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_inputs_raise():
    gqa = layers.GroupQueryAttention(2, 2, 1)
    with pytest.raises(ValueError, match=r"query: expected a shape \(batch, steps, features\)"):
        gqa(np.ones((2, 3, 4, 5), "float32"), np.ones((2, 3, 4, 5), "float32"))
    with pytest.raises(ValueError, match="except the last one, must be equal"):
        gqa(np.ones((2, 3, 4), "float32"), np.ones((2, 3, 4), "float32"), np.ones((2, 5, 4), "float32"))
    with pytest.raises(TypeError, match="missing the `value` argument"):
        gqa(np.ones((2, 3, 4), "float32"))


@pytest.mark.parametrize("name", ["MultiHeadAttention", "GroupQueryAttention"])
def test_activity_regularizer_losses_match_keras(keras, name):
    """Keras regularizes each projection's output (MultiHeadAttention: four losses) and
    GroupQueryAttention its own output once more (five)."""
    rng = np.random.default_rng(7)
    if name == "MultiHeadAttention":
        kwargs = {"num_heads": 2, "key_dim": 3}
    else:
        kwargs = {"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 1}
    args = [rng.normal(size=(2, 4, 5)).astype("float32"), rng.normal(size=(2, 3, 5)).astype("float32")]
    theirs = getattr(keras.layers, name)(activity_regularizer=keras.regularizers.L2(0.5), **kwargs)
    ours = getattr(layers, name)(activity_regularizer=rk.regularizers.L2(0.5), **kwargs)
    theirs(*args)
    ours(*args)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    theirs(*args)
    ours(*args)
    expected = sorted(float(loss) for loss in theirs.losses)
    assert len(expected) == (4 if name == "MultiHeadAttention" else 5)
    np.testing.assert_allclose(sorted(float(loss) for loss in ours.losses), expected, rtol=1e-5)
    assert ours.get_config()["activity_regularizer"] == rk.regularizers.serialize(rk.regularizers.L2(0.5))
