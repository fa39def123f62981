"""Cross-checks of ``rnnkit._core`` against Keras 3 itself (JAX backend).

Every test builds a real Keras layer (SimpleRNN, GRU with ``reset_after`` True/False, LSTM, or a
``Bidirectional`` wrapper), gives it random weights, and compares its outputs and final states with
``rnnkit._core.rnn_forward`` / ``bidirectional_forward`` on the same weights (``get_weights()``
layout). Gradients come from ``jax.vjp`` through the layer's ``stateless_call`` and are compared with
``rnn_backward`` / ``bidirectional_backward`` for the loss ``sum(outputs * R1) + sum(states * R2)``.

Known backend difference (checked below, not assumed): Keras's JAX ``lax.scan`` loop outputs
``states[0]`` at a masked step (``keras/src/backend/jax/rnn.py``, the ``output_tm1 = states[0]``
branch), so before the first unmasked step of a row it outputs the *initial* state h0, where the
TensorFlow backend (and Keras's own JAX ``unroll=True`` loop) outputs zeros. rnnkit follows TF. In
the random parity tests exactly those output positions are left out of the comparison (and get a
zero cotangent); ``test_masked_leading_steps_follow_tf_semantics`` asserts both behaviours.

Keras precision bug worked around: with the JAX backend, ``keras.ops.tanh`` of a float64 tensor
returns float32 (``ops.tanh`` casts to ``result_type(x.dtype, float)``, and Keras's type promotion
maps float64 to float32 on non-TF backends: ``BIT64_TO_BIT32_DTYPE`` in
``keras/src/backend/common/dtypes.py``). A float64 ``SimpleRNN(activation="tanh")`` therefore fails
in ``lax.scan`` (carry float64 in, float32 out), and float64 GRU/LSTM are only float32-accurate.
The other activations used here keep float64. So float64 layers get ``jnp.tanh`` (the same function,
evaluated in float64) where "tanh" is drawn; float32 layers use Keras's own "tanh". With that, the
float64 comparisons agree to about 1e-15 relative, and their tolerance is 1e-9.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_reference import (
    KINDS,
    MERGE_MODES,
    assert_close,
    jax,
    jax_h0_quirk_applies,
    jax_x64,
    keras,
    leading_masked,
)
from rnnkit import _core

# Activations that Keras and rnnkit both know by name and that stay finite on small random inputs
# over a few steps ("exponential" can overflow, so it is left out).
ACTIVATIONS = [
    "tanh",
    "sigmoid",
    "relu",
    "elu",
    "selu",
    "softsign",
    "softplus",
    "silu",
    "gelu",
    "hard_sigmoid",
    "linear",
]
# Tolerances, relative to the magnitude of the reference (max(1, max |reference|)). Observed
# errors: about 3e-7 in float32, 1e-15 in float64 (with the float64 tanh, see the module docstring).
FLOAT32_OUTPUT_TOL = 1e-5
FLOAT64_OUTPUT_TOL = 1e-9
FLOAT64_GRAD_TOL = 1e-9

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# Configurations


@st.composite
def rnn_configs(draw, kind=None, go_backwards=None, merge_mode=False):
    """A random configuration. `kind` is one of KINDS; `merge_mode` other than False (one of
    MERGE_MODES) makes a Bidirectional configuration."""
    kind = draw(st.sampled_from(KINDS)) if kind is None else kind
    batch = draw(st.integers(1, 4))
    time = draw(st.integers(1, 6))
    cfg = dict(
        kind="gru" if kind.startswith("gru") else kind,
        reset_after=kind != "gru_before",
        units=draw(st.integers(1, 5)),
        batch=batch,
        time=time,
        features=draw(st.integers(1, 5)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        recurrent_activation=draw(st.sampled_from(ACTIVATIONS)) if kind != "simple_rnn" else "sigmoid",
        use_bias=draw(st.booleans()),
        go_backwards=draw(st.booleans()) if go_backwards is None else go_backwards,
        initial_state=draw(st.booleans()),
        # Any pattern: hypothesis readily produces all-False rows and masked leading steps.
        # (Masks first: hypothesis favours the first alternative, and its simplest mask is all False.)
        mask=draw(hnp.arrays(np.bool_, (batch, time)) | st.none()),
        zero_output_for_mask=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    if merge_mode is not False:
        cfg["merge_mode"] = merge_mode
        cfg["return_sequences"] = draw(st.booleans())
        cfg["unroll"] = False
    else:
        cfg["return_sequences"] = draw(st.booleans())
        # Keras's JAX unroll loop ignores zero_output_for_mask, so only draw it without that option.
        cfg["unroll"] = draw(st.booleans()) if not cfg["zero_output_for_mask"] else False
    return cfg


def record_events(cfg):
    """Coverage counts for `pytest --hypothesis-show-statistics`."""
    kind = cfg["kind"] + ("" if cfg["kind"] != "gru" else f"(reset_after={cfg['reset_after']})")
    event(f"kind={kind}")
    mask = cfg["mask"]
    if mask is None:
        event("mask=None")
    else:
        event(f"mask has a fully masked row: {bool((~mask).all(axis=1).any())}")
        event(f"mask has a masked first step (time order): {bool((~mask[:, 0]).any())}")
        event(f"Keras-JAX h0 quirk excluded: {jax_h0_quirk_applies(cfg)}")
    event(f"go_backwards={cfg['go_backwards']}, return_sequences={cfg['return_sequences']}")
    if "merge_mode" in cfg:
        event(f"merge_mode={cfg['merge_mode']}")


def cell_spec(cfg):
    return _core.CellSpec(
        cfg["kind"],
        cfg["units"],
        activation=cfg["activation"],
        recurrent_activation=cfg["recurrent_activation"],
        use_bias=cfg["use_bias"],
        reset_after=cfg["reset_after"],
    )


@keras.saving.register_keras_serializable(package="rnnkit_parity_tests")  # Bidirectional clones by config
def float64_tanh(v):
    """tanh that keeps float64 (Keras's "tanh" computes float64 tensors in float32 on JAX)."""
    return jnp.tanh(v)


def keras_activation(name, dtype):
    return float64_tanh if name == "tanh" and np.dtype(dtype) == np.float64 else name


def keras_rnn(cfg, dtype, go_backwards=None, return_sequences=True):
    kwargs = dict(
        activation=keras_activation(cfg["activation"], dtype),
        use_bias=cfg["use_bias"],
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=cfg["go_backwards"] if go_backwards is None else go_backwards,
        zero_output_for_mask=cfg["zero_output_for_mask"],
        unroll=cfg.get("unroll", False),
        dtype=dtype,
        # The weights are always replaced; cheap initializers keep building fast (the default
        # Orthogonal one runs a QR decomposition, compiled anew for each shape).
        kernel_initializer="zeros",
        recurrent_initializer="zeros",
    )
    if cfg["kind"] == "simple_rnn":
        return keras.layers.SimpleRNN(cfg["units"], **kwargs)
    if cfg["kind"] == "gru":
        return keras.layers.GRU(
            cfg["units"],
            recurrent_activation=keras_activation(cfg["recurrent_activation"], dtype),
            reset_after=cfg["reset_after"],
            **kwargs,
        )
    return keras.layers.LSTM(
        cfg["units"], recurrent_activation=keras_activation(cfg["recurrent_activation"], dtype), **kwargs
    )


def state_count(cfg):
    return 2 if cfg["kind"] == "lstm" else 1


def random_inputs(cfg, dtype, rng, layer):
    """Builds `layer`, and draws x and weights in the layer's get_weights() order.

    The weights are not assigned: every Keras call here is `stateless_call`, which takes them.
    """
    shape = (cfg["batch"], cfg["time"], cfg["features"])
    layer.build(shape)
    # get_weights() lists layer.weights; the trainable ones are exactly these, in the same order:
    # kernel, recurrent_kernel[, bias], forward layer first for Bidirectional.
    variables = layer.trainable_variables
    assert [v.path for v in variables] == [v.path for v in layer.weights]
    names = [v.path.rsplit("/", 1)[-1] for v in variables]
    per_layer = ["kernel", "recurrent_kernel"] + (["bias"] if cfg["use_bias"] else [])
    assert names == per_layer * (len(names) // len(per_layer)), names
    weights = [(rng.standard_normal(v.shape) * 0.5).astype(dtype) for v in variables]
    x = rng.standard_normal(shape).astype(dtype)
    return x, weights


def random_states(cfg, dtype, rng):
    if not cfg["initial_state"]:
        return None
    return [rng.standard_normal((cfg["batch"], cfg["units"])).astype(dtype) for _ in range(state_count(cfg))]


def keras_call(layer, weights, x, states, mask):
    """Runs `layer` purely functionally on jnp arrays: (output(s), [final states])."""
    non_trainable = [v.value for v in layer.non_trainable_variables]
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = jnp.asarray(mask)
    if states is not None:
        kwargs["initial_state"] = list(states)
    outs, _ = layer.stateless_call(list(weights), non_trainable, x, **kwargs)
    return outs


def keras_value_and_vjp(fn, primals, cotangents):
    """`fn(*primals)` and its VJP with `cotangents`, as one jitted program: every drawn shape
    compiles anew, and one compilation costs less than JAX's op-by-op dispatch of the scans."""

    def value_and_vjp(primals, cotangents):
        out, vjp = jax.vjp(fn, *primals)
        return out, vjp(cotangents)

    return jax.jit(value_and_vjp)(primals, cotangents)


def rnnkit_weights(cfg, weights):
    return tuple(weights) if cfg["use_bias"] else (weights[0], weights[1], None)


# Single layers


def single_layer_case(cfg, dtype):
    """Runs Keras and rnnkit on one drawn configuration; returns everything needed to compare."""
    rng = np.random.default_rng(cfg["seed"])
    layer = keras_rnn(cfg, dtype, return_sequences=cfg["return_sequences"])
    x, weights = random_inputs(cfg, dtype, rng, layer)
    states = random_states(cfg, dtype, rng)
    mask = cfg["mask"]
    ours, our_states, saved = _core.rnn_forward(
        cell_spec(cfg),
        rnnkit_weights(cfg, weights),
        x,
        initial_states=states,
        mask=mask,
        go_backwards=cfg["go_backwards"],
        zero_output_for_mask=cfg["zero_output_for_mask"],
    )
    assert ours.dtype == dtype and ours.shape == (cfg["batch"], cfg["time"], cfg["units"])
    # Output positions (processing order) where Keras-JAX and TF semantics differ.
    excluded = np.zeros((cfg["batch"], cfg["time"]), bool)
    if jax_h0_quirk_applies(cfg):
        excluded = leading_masked(mask, cfg["go_backwards"])
    if not cfg["return_sequences"]:
        ours = ours[:, -1]
        excluded = excluded[:, -1]
    return rng, layer, x, weights, states, ours, our_states, saved, excluded


def run_keras(cfg, layer, x, weights, states):
    def fn(weights, x, states):
        return keras_call(layer, weights, x, states, cfg["mask"])

    js = None if states is None else [jnp.asarray(s) for s in states]
    return jax.jit(fn)([jnp.asarray(w) for w in weights], jnp.asarray(x), js)


def check_forward(cfg, outs, states, ours, our_states, excluded, tol):
    """Compares Keras's (output, *states) with rnnkit's outside the excluded output positions."""
    keras_out, keras_states = np.asarray(outs[0]), [np.asarray(s) for s in outs[1:]]
    assert len(keras_states) == len(our_states) == state_count(cfg)
    assert_close(ours, keras_out, tol, "outputs", keep=~excluded[..., None])
    if excluded.any():
        # The JAX-backend difference, checked rather than assumed: Keras outputs h0, rnnkit 0.
        h0 = np.broadcast_to(states[0][:, None, :], ours.shape) if ours.ndim == 3 else states[0]
        assert_close(keras_out, h0, tol, "Keras-JAX output h0 at leading masked steps", keep=excluded[..., None])
        assert np.all(ours[excluded] == 0), "rnnkit (TF semantics) outputs 0 at leading masked steps"
    for i, (mine, theirs) in enumerate(zip(our_states, keras_states)):
        assert_close(mine, theirs, tol, f"final state {i}")


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
@jax_x64(True)
def test_rnn_matches_keras_float64(kind, go_backwards, data):
    """Outputs, final states and every gradient, in float64, against Keras + jax.vjp."""
    cfg = data.draw(rnn_configs(kind=kind, go_backwards=go_backwards), label="cfg")
    record_events(cfg)
    rng, layer, x, weights, states, ours, our_states, saved, excluded = single_layer_case(cfg, np.float64)
    mask = cfg["mask"]

    def keras_fn(weights, x, states):
        outs = keras_call(layer, weights, x, states, mask)
        return outs[0], list(outs[1:])

    r1 = rng.standard_normal(ours.shape)
    r1[excluded] = 0.0  # positions whose value differs by backend get no cotangent
    r2 = [rng.standard_normal(s.shape) for s in our_states]
    jw = [jnp.asarray(w) for w in weights]
    js = None if states is None else [jnp.asarray(s) for s in states]
    (k_out, k_states), (k_dw, k_dx, k_ds) = keras_value_and_vjp(
        keras_fn, (jw, jnp.asarray(x), js), (jnp.asarray(r1), [jnp.asarray(r) for r in r2])
    )
    check_forward(cfg, [k_out, *k_states], states, ours, our_states, excluded, FLOAT64_OUTPUT_TOL)

    if cfg["return_sequences"]:
        grads = _core.rnn_backward(saved, d_outputs=r1, d_final_states=r2)
    else:
        grads = _core.rnn_backward(saved, d_last_output=r1, d_final_states=r2)
    check_gradients(cfg, grads, (k_dw, k_dx, k_ds))


def check_gradients(cfg, grads, keras_grads, what=""):
    """Compares rnn_backward's gradients with Keras's (d_weights, d_x, d_initial_states or None)."""
    dx, d_kernel, d_recurrent_kernel, d_bias, d_states = grads
    k_dw, k_dx, k_ds = keras_grads
    assert_close(dx, k_dx, FLOAT64_GRAD_TOL, "d_x" + what)
    assert_close(d_kernel, k_dw[0], FLOAT64_GRAD_TOL, "d_kernel" + what)
    assert_close(d_recurrent_kernel, k_dw[1], FLOAT64_GRAD_TOL, "d_recurrent_kernel" + what)
    if cfg["use_bias"]:
        assert_close(d_bias, k_dw[2], FLOAT64_GRAD_TOL, "d_bias" + what)
    else:
        assert d_bias is None and len(k_dw) == 2
    assert len(d_states) == state_count(cfg)
    if k_ds is not None:
        for i, (mine, theirs) in enumerate(zip(d_states, k_ds)):
            assert_close(mine, theirs, FLOAT64_GRAD_TOL, f"d_initial_state {i}" + what)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
@jax_x64(False)
def test_rnn_matches_keras_float32_forward(kind, data):
    """Outputs and final states of float32 Keras layers (float32 rnnkit)."""
    cfg = data.draw(rnn_configs(kind=kind), label="cfg")
    record_events(cfg)
    _, layer, x, weights, states, ours, our_states, _, excluded = single_layer_case(cfg, np.float32)
    assert all(s.dtype == np.float32 for s in our_states)
    outs = run_keras(cfg, layer, x, weights, states)
    check_forward(cfg, outs, states, ours, our_states, excluded, FLOAT32_OUTPUT_TOL)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@jax_x64(True)
def test_masked_leading_steps_follow_tf_semantics(kind, go_backwards):
    """rnnkit outputs 0 (TF semantics) at a row's masked leading steps, even with a non-zero h0.

    Keras's JAX scan loop outputs h0 there instead; Keras's own JAX unroll loop, which tracks the
    previous output from zeros like the TF backend, agrees with rnnkit at every step, in values
    and in gradients (including the initial state's, which gets nothing from the zero outputs).
    """
    cfg = dict(
        kind=kind.replace("_before", ""),
        reset_after=kind != "gru_before",
        units=3,
        batch=3,
        time=5,
        features=2,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        go_backwards=go_backwards,
        initial_state=True,
        zero_output_for_mask=False,
        seed=11,
    )
    # In processing order: row 0 masked at its first two steps, row 1 fully masked, row 2 unmasked
    # at its first step and masked at its last one.
    processed = np.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 0]], bool)
    mask = processed[:, ::-1].copy() if go_backwards else processed
    cfg["mask"] = mask
    rng = np.random.default_rng(cfg["seed"])
    layers = {u: keras_rnn(dict(cfg, unroll=u), np.float64) for u in (False, True)}
    x, weights = random_inputs(cfg, np.float64, rng, layers[False])
    layers[True].build(x.shape)
    h0 = random_states(cfg, np.float64, rng)
    assert np.all(np.abs(h0[0]) > 1e-3)

    ours, our_states, saved = _core.rnn_forward(
        cell_spec(cfg), tuple(weights), x, initial_states=h0, mask=mask, go_backwards=go_backwards
    )
    lead = leading_masked(mask, go_backwards)
    assert lead.tolist() == [[1, 1, 0, 0, 0], [1] * 5, [0] * 5]
    # TF semantics: zeros before the first unmasked step, the previous output at later masked steps.
    assert np.all(ours[lead] == 0)
    np.testing.assert_array_equal(ours[0, 3], ours[0, 2])
    np.testing.assert_array_equal(ours[2, 1], ours[2, 0])
    np.testing.assert_array_equal(ours[2, 4], ours[2, 3])
    # A fully masked row keeps its initial state.
    for mine, start in zip(our_states, h0):
        np.testing.assert_array_equal(mine[1], start[1])

    r1 = rng.standard_normal(ours.shape)
    r2 = [rng.standard_normal(s.shape) for s in our_states]

    def keras_fn(weights, x, states):
        outs = keras_call(layers[True], weights, x, states, mask)
        return outs[0], list(outs[1:])

    (k_out, k_states), keras_grads = keras_value_and_vjp(
        keras_fn,
        ([jnp.asarray(w) for w in weights], jnp.asarray(x), [jnp.asarray(s) for s in h0]),
        (jnp.asarray(r1), [jnp.asarray(r) for r in r2]),
    )
    assert_close(ours, k_out, FLOAT64_OUTPUT_TOL, "outputs vs Keras unroll=True")
    for i, (mine, theirs) in enumerate(zip(our_states, k_states)):
        assert_close(mine, theirs, FLOAT64_OUTPUT_TOL, f"final state {i} vs Keras unroll=True")
    grads = _core.rnn_backward(saved, d_outputs=r1, d_final_states=r2)
    check_gradients(cfg, grads, keras_grads, " vs Keras unroll=True")

    scanned = np.asarray(run_keras(cfg, layers[False], x, weights, h0)[0])
    # The documented JAX-backend difference: h0 where TF and rnnkit output 0 ...
    assert_close(
        scanned[lead],
        np.broadcast_to(h0[0][:, None, :], scanned.shape)[lead],
        FLOAT64_OUTPUT_TOL,
        "Keras-JAX scan output at leading masked steps",
    )
    assert np.all(np.abs(scanned[lead]) > 1e-3)
    # ... and agreement everywhere else.
    assert_close(ours, scanned, FLOAT64_OUTPUT_TOL, "outputs vs Keras scan", keep=~lead[..., None])


# Bidirectional


def bidirectional_excluded(cfg, fw_go_backwards):
    """Per-direction (B, T) or (B,) arrays of output positions where the JAX h0 quirk applies."""
    b, t = cfg["batch"], cfg["time"]
    if not jax_h0_quirk_applies(cfg):
        none = np.zeros((b, t) if cfg["return_sequences"] else (b,), bool)
        return none, none
    fw = leading_masked(cfg["mask"], fw_go_backwards)  # forward output is kept in processing order
    bw = leading_masked(cfg["mask"], not fw_go_backwards)[:, ::-1]  # Keras flips the backward output
    if not cfg["return_sequences"]:
        return fw[:, -1], bw[:, 0]
    return fw, bw


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@settings(max_examples=4, **SETTINGS)
@given(data=st.data())
@jax_x64(True)
def test_bidirectional_matches_keras(merge_mode, data):
    """Bidirectional: outputs, states and gradients of x, both directions' weights and initial
    states, in float64, against keras.layers.Bidirectional + jax.vjp."""
    cfg = data.draw(rnn_configs(merge_mode=merge_mode), label="cfg")
    dtype = np.float64
    fw_go_backwards = cfg["go_backwards"]
    return_sequences = cfg["return_sequences"]
    rng = np.random.default_rng(cfg["seed"])
    # Keras always builds its own backward layer with go_backwards=True, so a forward layer that
    # goes backwards needs an explicit backward layer going forwards.
    backward_layer = (
        keras_rnn(cfg, dtype, go_backwards=False, return_sequences=return_sequences) if fw_go_backwards else None
    )
    bi = keras.layers.Bidirectional(
        keras_rnn(cfg, dtype, return_sequences=return_sequences),
        merge_mode=merge_mode,
        backward_layer=backward_layer,
        dtype=dtype,
    )
    # Keras's Bidirectional overrides both layers' zero_output_for_mask with return_sequences
    # (`force_zero_output_for_mask` in bidirectional.py), whatever the wrapped layer says; rnnkit's
    # core takes the flag as given, so it is passed the value Keras actually uses.
    assert bi.forward_layer.zero_output_for_mask == bi.backward_layer.zero_output_for_mask == return_sequences
    assert bi.forward_layer.go_backwards == fw_go_backwards != bi.backward_layer.go_backwards
    cfg = dict(cfg, zero_output_for_mask=return_sequences)
    record_events(cfg)
    x, weights = random_inputs(cfg, dtype, rng, bi)
    half = len(weights) // 2
    assert half == (3 if cfg["use_bias"] else 2)
    fw_states, bw_states = random_states(cfg, dtype, rng), random_states(cfg, dtype, rng)
    mask = cfg["mask"]
    spec = cell_spec(cfg)
    out, our_fw_states, our_bw_states, saved = _core.bidirectional_forward(
        spec,
        rnnkit_weights(cfg, weights[:half]),
        spec,
        rnnkit_weights(cfg, weights[half:]),
        x,
        merge_mode=merge_mode,
        return_sequences=return_sequences,
        mask=mask,
        fw_initial_states=fw_states,
        bw_initial_states=bw_states,
        zero_output_for_mask=cfg["zero_output_for_mask"],
        fw_go_backwards=fw_go_backwards,
    )
    ours = list(out) if merge_mode is None else [out]

    # Output positions where the Keras-JAX h0 quirk applies (see the module docstring).
    ex_fw, ex_bw = bidirectional_excluded(cfg, fw_go_backwards)
    ex_fw, ex_bw = ex_fw[..., None], ex_bw[..., None]
    units = cfg["units"]
    if merge_mode is None:
        excluded = [ex_fw, ex_bw]
    elif merge_mode == "concat":
        excluded = [np.concatenate([np.repeat(ex_fw, units, -1), np.repeat(ex_bw, units, -1)], -1)]
    else:
        excluded = [ex_fw | ex_bw]
    excluded = [np.broadcast_to(e, o.shape) for e, o in zip(excluded, ours)]

    states = None if fw_states is None else fw_states + bw_states
    n_out = len(ours)

    def keras_fn(weights, x, states):
        outs = keras_call(bi, weights, x, states, mask)
        return list(outs[:n_out]), list(outs[n_out:])

    r1 = [rng.standard_normal(o.shape) for o in ours]
    for r, ex in zip(r1, excluded):
        r[ex] = 0.0  # positions whose value differs by backend get no cotangent
    r2 = [rng.standard_normal(s.shape) for s in our_fw_states + our_bw_states]
    jw = [jnp.asarray(w) for w in weights]
    js = None if states is None else [jnp.asarray(s) for s in states]
    (k_outs, k_states), (k_dw, k_dx, k_ds) = keras_value_and_vjp(
        keras_fn, (jw, jnp.asarray(x), js), ([jnp.asarray(r) for r in r1], [jnp.asarray(r) for r in r2])
    )

    k_outs = [np.asarray(o) for o in k_outs]
    for i, (mine, theirs, ex) in enumerate(zip(ours, k_outs, excluded)):
        assert_close(mine, theirs, FLOAT64_OUTPUT_TOL, f"output {i}", keep=~ex)
    n_states = state_count(cfg)
    assert len(our_fw_states) == len(our_bw_states) == n_states and len(k_states) == 2 * n_states
    for i, (mine, theirs) in enumerate(zip(our_fw_states + our_bw_states, k_states)):
        assert_close(mine, np.asarray(theirs), FLOAT64_OUTPUT_TOL, f"final state {i}")

    dx, fw_grads, bw_grads = _core.bidirectional_backward(
        saved,
        d_outputs=tuple(r1) if merge_mode is None else r1[0],
        d_fw_states=r2[:n_states],
        d_bw_states=r2[n_states:],
    )
    assert_close(dx, k_dx, FLOAT64_GRAD_TOL, "d_x")
    for name, grads, k_grads, k_dstates in (
        ("forward", fw_grads, k_dw[:half], None if k_ds is None else k_ds[:n_states]),
        ("backward", bw_grads, k_dw[half:], None if k_ds is None else k_ds[n_states:]),
    ):
        d_kernel, d_recurrent_kernel, d_bias, d_states = grads
        assert_close(d_kernel, k_grads[0], FLOAT64_GRAD_TOL, f"{name} d_kernel")
        assert_close(d_recurrent_kernel, k_grads[1], FLOAT64_GRAD_TOL, f"{name} d_recurrent_kernel")
        if cfg["use_bias"]:
            assert_close(d_bias, k_grads[2], FLOAT64_GRAD_TOL, f"{name} d_bias")
        else:
            assert d_bias is None
        assert len(d_states) == n_states
        if k_dstates is not None:
            for i, (mine, theirs) in enumerate(zip(d_states, k_dstates)):
                assert_close(mine, theirs, FLOAT64_GRAD_TOL, f"{name} d_initial_state {i}")
