"""IndRNN and LSTM peepholes, the cells beyond Keras fused in the core.

Forward passes against a float64 NumPy reference written here from the equations (independent of
the core); the core's gradients against central differences of that reference over sampled
option combinations (hypothesis); the layers' fused path against their cells' own step math
through the tape; weights, configs and files; the errors bad input gets.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit as rk
from finite_differences import central_differences
from rnnkit import _core, layers

B, T, F, U = 3, 5, 4, 3

# --- the reference ---------------------------------------------------------------------------


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}


def reference(
    kind, weights, x, *, states=None, mask=None, in_drop=None, rec_drop=None, options=None, act="tanh", zoneout=None
):
    """The float64 forward pass of one of `KINDS`.

    IndRNN: `h = act(x·W + u ⊙ h₋₁ + b)`. LSTM: `z = x·W + h₋₁·U + b` per gate i, f, c, o;
    with peepholes `p`, `i = σ(z_i + p_i ⊙ c₋₁)`, `f = σ(z_f + p_f ⊙ c₋₁)`,
    `c = f ⊙ c₋₁ + i ⊙ act(z_c)`, `o = σ(z_o + p_o ⊙ c)`; `h = o ⊙ act(c)`, times `W_hr` with a
    projection (PyTorch's documented `h_t = W_hr(o_t ⊙ tanh(c_t))`, `W_hr` stored transposed).
    Dropout multipliers `(gates, batch, dim)` scale the input and `h₋₁` per gate. Zoneout weights
    `m` (per state, `(batch, time, size)`, time as `x`) make each state `m ⊙ s₋₁ + (1 - m) ⊙ s̃`
    after the step (LSTM's `h̃` reading `c̃`, as Krueger et al.'s equations). A masked step keeps
    the states and outputs the previous output (or zeros with `zero_output_for_mask`). Returns
    `(outputs in processing order, final states)`.
    """
    options = options or {}
    f = ACTIVATIONS[act]
    x = np.asarray(x, np.float64)
    b, t, _ = x.shape
    weights = [None if w is None else np.asarray(w, np.float64) for w in weights]
    kernel, recurrent, bias, *extras = weights
    peephole = extras.pop(0) if "peephole" in kind else None
    projection = extras.pop(0) if "projection" in kind else None
    gates = gates_of(kind)
    u = kernel.shape[1] // gates
    out = u if projection is None else projection.shape[1]
    bias = np.zeros(gates * u) if bias is None else bias
    h = np.zeros((b, out)) if states is None else np.asarray(states[0], np.float64)
    c = np.zeros((b, u)) if states is None or kind == "indrnn" else np.asarray(states[1], np.float64)
    in_drop = np.ones((gates, b, x.shape[2])) if in_drop is None else in_drop
    rec_drop = np.ones((gates, b, out)) if rec_drop is None else rec_drop
    order = range(t - 1, -1, -1) if options.get("go_backwards") else range(t)
    outputs, previous = [], np.zeros((b, out))
    for step in order:
        xs = x[:, step]
        if kind == "indrnn":
            h_new = f((xs * in_drop[0]) @ kernel + recurrent * (h * rec_drop[0]) + bias)
            c_new = c
        else:
            blocks = [slice(g * u, (g + 1) * u) for g in range(4)]
            z = [
                (xs * in_drop[g]) @ kernel[:, blocks[g]] + (h * rec_drop[g]) @ recurrent[:, blocks[g]] for g in range(4)
            ]
            z = [z[g] + bias[blocks[g]] for g in range(4)]
            p = np.zeros((3, u)) if peephole is None else peephole
            i, fg = sigmoid(z[0] + p[0] * c), sigmoid(z[1] + p[1] * c)
            c_new = fg * c + i * f(z[2])
            h_new = sigmoid(z[3] + p[2] * c_new) * f(c_new)
            h_new = h_new if projection is None else h_new @ projection
        if zoneout is not None:
            h_new = zoneout[0][:, step] * h + (1 - zoneout[0][:, step]) * h_new
            if kind != "indrnn":
                c_new = zoneout[1][:, step] * c + (1 - zoneout[1][:, step]) * c_new
        keep = np.ones((b, 1), bool) if mask is None else np.asarray(mask)[:, step : step + 1]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        fallback = np.zeros((b, out)) if options.get("zero_output_for_mask") else previous
        previous = np.where(keep, h_new, fallback)
        outputs.append(previous)
    finals = [h] if kind == "indrnn" else [h, c]
    return np.stack(outputs, axis=1), finals


KINDS = ["indrnn", "peephole", "projection", "peephole_projection"]  # "lstm" (plain) is the reference's too
P = 2  # the projection's size


def gates_of(kind):
    return 1 if kind == "indrnn" else 4


def out_units(kind):
    return P if "projection" in kind else U


def state_units(kind):
    return [U] if kind == "indrnn" else [out_units(kind), U]


def spec(kind, act="tanh", use_bias=True):
    if kind == "indrnn":
        return _core.CellSpec("indrnn", U, act, "sigmoid", use_bias)
    projection = P if "projection" in kind else None
    return _core.CellSpec("lstm", U, act, "sigmoid", use_bias, peephole="peephole" in kind, projection=projection)


def random_weights(kind, rng, use_bias=True, dtype=np.float64):
    """`(kernel, recurrent_kernel, bias[, peephole][, projection])` in the core's layout."""
    gates = gates_of(kind)
    weights = [rng.uniform(-0.6, 0.6, (F, gates * U))]
    recurrent = (U,) if kind == "indrnn" else (out_units(kind), 4 * U)
    weights.append(rng.uniform(-0.9 if kind == "indrnn" else -0.6, 0.9 if kind == "indrnn" else 0.6, recurrent))
    weights.append(rng.uniform(-0.5, 0.5, (gates * U,)) if use_bias else None)
    if "peephole" in kind:
        weights.append(rng.uniform(-0.8, 0.8, (3, U)))
    if "projection" in kind:
        weights.append(rng.uniform(-0.8, 0.8, (U, P)))
    return [None if w is None else w.astype(dtype) for w in weights]


# --- forward against the reference ----------------------------------------------------------

CASES = {
    "plain": {},
    "states_mask_zero_output": {"states": True, "mask": True, "zero_output_for_mask": True},
    "go_backwards_dropout": {"go_backwards": True, "dropout": True, "mask": True},
    "relu_no_bias": {"act": "relu", "use_bias": False, "states": True},
}


def run_case(kind, case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    act, use_bias = case.get("act", "tanh"), case.get("use_bias", True)
    weights = random_weights(kind, rng, use_bias, dtype)
    x = rng.normal(size=(B, T, F)).astype(dtype)
    states = [rng.normal(size=(B, n)).astype(dtype) for n in state_units(kind)]
    mask = rng.random((B, T)) < 0.7 if case.get("mask") else None
    g = gates_of(kind)
    drops = [None, None]
    if case.get("dropout"):
        drops = [((rng.random((g, B, d)) > 0.3) / 0.7).astype(dtype) for d in (F, out_units(kind))]
    options = {k: case.get(k, False) for k in ("go_backwards", "zero_output_for_mask")}
    given_states = states if case.get("states") else None
    core = _core.rnn_forward(
        spec(kind, act, use_bias),
        weights,
        x,
        initial_states=given_states,
        mask=mask,
        input_dropout=drops[0],
        recurrent_dropout=drops[1],
        **options,
    )
    want = reference(
        kind, weights, x, states=given_states, mask=mask, in_drop=drops[0], rec_drop=drops[1], options=options, act=act
    )
    return core, want


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_forward_equals_the_numpy_reference(kind, case, dtype):
    (outputs, finals, _), (want_outputs, want_finals) = run_case(kind, CASES[case], dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert outputs.dtype == dtype
    np.testing.assert_allclose(outputs, want_outputs, rtol=tol, atol=tol)
    assert len(finals) == len(want_finals)
    for got, want in zip(finals, want_finals):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# --- gradients against central differences of the reference --------------------------------


@settings(max_examples=16, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    use_bias=st.booleans(),
    act=st.sampled_from(["tanh", "linear"]),
    with_states=st.booleans(),
    mask_seed=st.one_of(st.none(), st.integers(0, 2**16)),
    dropout=st.booleans(),
    go_backwards=st.booleans(),
    zero_output=st.booleans(),
    last_only=st.booleans(),
    zoneout=st.sampled_from([None, "masks", "rate", "expectation", "drawn"]),
)
def test_gradients_equal_central_differences(
    kind, use_bias, act, with_states, mask_seed, dropout, go_backwards, zero_output, last_only, zoneout
):
    rng = np.random.default_rng(1)
    weights = random_weights(kind, rng, use_bias)
    x = rng.normal(size=(B, T, F))
    states = [rng.normal(size=(B, n)) * 0.5 for n in state_units(kind)]
    mask = None if mask_seed is None else np.random.default_rng(mask_seed).random((B, T)) < 0.6
    g = gates_of(kind)
    in_drop = ((rng.random((g, B, F)) > 0.3) / 0.7) if dropout else None
    rec_drop = ((rng.random((g, B, out_units(kind))) > 0.3) / 0.7) if dropout else None
    options = {"go_backwards": go_backwards, "zero_output_for_mask": zero_output}
    r_out = rng.normal(size=(B, T, out_units(kind)))
    r_states = [rng.normal(size=s.shape) for s in states]
    zone = None
    if zoneout == "masks":
        zone = [(rng.random((B, T, n)) < 0.4).astype(np.float64) for n in state_units(kind)]
    elif zoneout in ("rate", "expectation"):
        zone = [np.full((B, T, n), 0.3) for n in state_units(kind)]
    # Masks the pass draws itself, the reference given them as weights.
    drawn = (0.4, [21, 22][: len(state_units(kind))]) if zoneout == "drawn" else None
    if drawn:
        zone = drawn_masks(drawn, kind)
    # The expectation: the rate alone, the reference given it as weights.
    core_zone = drawn or (0.3 if zoneout == "expectation" else zone)

    def loss():
        out, finals = reference(
            kind,
            weights,
            x,
            states=states if with_states else None,
            mask=mask,
            in_drop=in_drop,
            rec_drop=rec_drop,
            options=options,
            act=act,
            zoneout=zone,
        )
        y = np.sum(out[:, -1] * r_out[:, -1]) if last_only else np.sum(out * r_out)
        return y + sum(np.sum(s * r) for s, r in zip(finals, r_states))

    _, _, saved = _core.rnn_forward(
        spec(kind, act, use_bias),
        weights,
        x,
        initial_states=states if with_states else None,
        mask=mask,
        input_dropout=in_drop,
        recurrent_dropout=rec_drop,
        return_sequences=not last_only,
        zoneout=core_zone,
        **options,
    )
    d_out = {"d_last_output": r_out[:, -1]} if last_only else {"d_outputs": r_out}
    dx, dk, drk, db, dstates, *d_extra = _core.rnn_backward(saved, d_final_states=r_states, **d_out)
    analytic = [dx, dk, drk] + ([db] if use_bias else []) + d_extra + (list(dstates) if with_states else [])
    arrays = [x] + [w for w in weights if w is not None] + (states if with_states else [])
    assert len(analytic) == len(arrays)
    for k, (a, n) in enumerate(zip(analytic, central_differences(loss, arrays))):
        assert a.shape == n.shape, k
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7, err_msg=f"gradient {k} (x, weights, states)")


def test_extra_gradients_come_after_the_states_in_the_weights_order():
    rng = np.random.default_rng(3)
    kind = "peephole_projection"
    _, _, saved = _core.rnn_forward(spec(kind), random_weights(kind, rng), rng.normal(size=(B, T, F)))
    grads = _core.rnn_backward(saved, d_outputs=np.ones((B, T, P)))
    assert len(grads) == 7 and grads[5].shape == (3, U) and grads[6].shape == (U, P)
    assert np.abs(grads[5]).min() > 0 and np.abs(grads[6]).min() > 0
    _, _, saved = _core.rnn_forward(spec("indrnn"), random_weights("indrnn", rng), rng.normal(size=(B, T, F)))
    grads = _core.rnn_backward(saved, d_outputs=np.ones((B, T, U)))
    assert len(grads) == 5 and grads[2].shape == (U,)


# --- the layers -------------------------------------------------------------------------------


def lstm_extras(kind):
    return {"peephole": "peephole" in kind, "projection": P if "projection" in kind else None}


def make_layer(kind, **kwargs):
    if kind == "indrnn":
        return layers.IndRNN(U, activation="tanh", **kwargs)
    return layers.LSTM(U, **lstm_extras(kind), **kwargs)


class SteppedIndRNNCell(layers.IndRNNCell):
    """The same cell stepped in Python through `rk.ops` (its `call` is not the built-in one)."""

    def call(self, inputs, states, training=False):
        return super().call(inputs, states, training=training)


class SteppedLSTMCell(layers.LSTMCell):
    """The same cell stepped in Python through `rk.ops`."""

    def call(self, inputs, states, training=False):
        return super().call(inputs, states, training=training)


class SteppedGRUCell(layers.GRUCell):
    """The same cell stepped in Python through `rk.ops`."""

    def call(self, inputs, states, training=False):
        return super().call(inputs, states, training=training)


def stepped_twin(kind, layer, **kwargs):
    cell = (
        SteppedIndRNNCell(U, activation="tanh", **kwargs)
        if kind == "indrnn"
        else SteppedLSTMCell(U, **lstm_extras(kind), **kwargs)
    )
    return layers.RNN(
        cell,
        return_sequences=layer.return_sequences,
        return_state=layer.return_state,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
    )


def randomized(layer, seed=0):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_fused_layer_equals_its_cell_stepped_through_the_tape(kind, go_backwards):
    """Outputs, states and every gradient, with a mask, initial states and seeded dropout."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    mask = rng.random((B, T)) < 0.7
    states = [rng.normal(size=(B, n)).astype(np.float32) for n in state_units(kind)]
    options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards, zero_output_for_mask=True)
    fused = make_layer(kind, dropout=0.2, recurrent_dropout=0.3, seed=7, **options)
    fused(x)
    randomized(fused)
    stepped = stepped_twin(kind, fused, dropout=0.2, recurrent_dropout=0.3, seed=7)
    stepped(x)
    stepped.set_weights(fused.get_weights())
    assert not stepped._fused and fused._fused
    results = []
    for layer in (fused, stepped):
        xt = rk.ops.convert_to_tensor(x)
        st_ = [rk.ops.convert_to_tensor(s) for s in states]
        with rk.GradientTape() as tape:
            tape.watch(xt)
            for s in st_:
                tape.watch(s)
            out = layer(xt, initial_state=st_, mask=mask, training=True)
            loss = sum(rk.ops.sum(o * o) for o in out)
        grads = tape.gradient(loss, [xt, *st_, *layer.trainable_weights])
        results.append(([np.asarray(o) for o in out], [np.asarray(g) for g in grads]))
    (out_a, grad_a), (out_b, grad_b) = results
    for a, b in zip(out_a, out_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(grad_a) == len(grad_b)
    for a, b in zip(grad_a, grad_b):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_equals_the_reference_and_bidirectional_runs_both_directions(kind):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    layer = make_layer(kind, return_sequences=True)
    layer(x)
    randomized(layer)
    weights = layer.get_weights()
    want, _ = reference(kind, weights, x)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-5, atol=2e-6)

    pair = layers.Bidirectional(make_layer(kind, return_sequences=True))
    pair(x)
    randomized(pair, seed=2)
    n = len(pair.get_weights()) // 2
    fw, bw = pair.get_weights()[:n], pair.get_weights()[n:]
    want_fw, _ = reference(kind, fw, x)
    want_bw, _ = reference(kind, bw, x, options={"go_backwards": True})
    want = np.concatenate([want_fw, want_bw[:, ::-1]], axis=-1)
    np.testing.assert_allclose(np.asarray(pair(x)), want, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_rnn_of_the_cell_stateful_and_weights_in_order(kind):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, T, F)).astype(np.float32)
    layer = make_layer(kind, return_sequences=True)
    layer(x)
    randomized(layer)
    shapes = [w.shape for w in layer.get_weights()]
    if kind == "indrnn":
        assert shapes == [(F, U), (U,), (U,)]
        cell = layers.IndRNNCell(U, activation="tanh")
    else:
        extra = [(3, U)] * ("peephole" in kind) + [(U, P)] * ("projection" in kind)
        assert shapes == [(F, 4 * U), (out_units(kind), 4 * U), (4 * U,), *extra]
        names = [w.name.split("/")[-1] for w in layer.weights][3:]
        assert names == ["peephole"] * ("peephole" in kind) + ["projection_kernel"] * ("projection" in kind)
        cell = layers.LSTMCell(U, **lstm_extras(kind))
    wrapped = layers.RNN(cell, return_sequences=True)
    wrapped(x)
    wrapped.set_weights(layer.get_weights())
    assert wrapped._fused
    np.testing.assert_array_equal(np.asarray(wrapped(x)), np.asarray(layer(x)))

    stateful = make_layer(kind, stateful=True, batch_size=2)
    stateful(x[:, :2])
    stateful.set_weights(layer.get_weights())
    stateful.reset_state()
    stateful(x[:, :2])
    last = np.asarray(stateful(x[:, 2:]))
    np.testing.assert_allclose(last, np.asarray(layer(x))[:, -1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_keep_config_and_weights(kind, tmp_path):
    extra = {"recurrent_max_abs": 2.0} if kind == "indrnn" else {}
    model = rk.Sequential([rk.Input((T, F)), make_layer(kind, **extra), layers.Dense(2)])
    randomized(model.layers[0])
    x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
    want = np.asarray(model(x))
    model.save(tmp_path / "m.keras")
    loaded = rk.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded(x)), want)
    config = loaded.layers[0].get_config()
    if kind == "indrnn":
        assert type(loaded.layers[0]) is layers.IndRNN and config["recurrent_max_abs"] == 2.0
    else:
        assert config.get("peephole", False) == ("peephole" in kind)
        assert config.get("projection") == lstm_extras(kind)["projection"]
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = rk.Sequential([rk.Input((T, F)), make_layer(kind, **extra), layers.Dense(2)])
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(np.asarray(fresh(x)), want)


def test_plain_lstm_config_and_weights_are_keras_s():
    layer = layers.LSTM(U)
    layer(np.zeros((1, 2, F), np.float32))
    config = layer.get_config()
    assert "peephole" not in config and "projection" not in config and len(layer.get_weights()) == 3


def test_recurrent_max_abs_clips_u_after_each_update():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, F)).astype(np.float32)
    y = rng.normal(size=(32, 1)).astype(np.float32)
    # u starts at 1, beyond the bound: the first update's clipping brings it to the bound.
    indrnn = layers.IndRNN(8, activation="tanh", recurrent_initializer="ones", recurrent_max_abs=0.25)
    model = rk.Sequential([rk.Input((6, F)), indrnn, layers.Dense(1)])
    model.compile(optimizer=rk.optimizers.SGD(0.01), loss="mse")
    model.train_on_batch(x[:8], y[:8])
    np.testing.assert_array_equal(np.asarray(indrnn.cell.recurrent_kernel), np.full(8, 0.25, np.float32))
    model.compile(optimizer=rk.optimizers.SGD(5.0), loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    u = np.asarray(indrnn.cell.recurrent_kernel)
    assert np.all(np.abs(u) <= 0.25) and not np.all(u == 0.25)


@pytest.mark.parametrize("kind", KINDS)
def test_each_variant_learns_a_sequence_task(kind):
    """Sum of a noisy sequence's first feature: the loss falls well below the baseline."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 8, 2)).astype(np.float32)
    y = x[:, :, :1].sum(axis=1) / 3.0
    model = rk.Sequential(
        [rk.Input((8, 2)), make_layer(kind) if kind != "indrnn" else layers.IndRNN(16), layers.Dense(1)]
    )
    model.compile(optimizer=rk.optimizers.Adam(0.02), loss="mse")
    rk.utils.set_random_seed(0)
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.25 * float(np.var(y))


# --- errors -----------------------------------------------------------------------------------


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="Argument `peephole` expected a bool, received 'yes'"):
        layers.LSTM(3, peephole="yes")
    with pytest.raises(ValueError, match="Argument `recurrent_max_abs` expected a positive number or None"):
        layers.IndRNN(3, recurrent_max_abs=-1)
    with pytest.raises(TypeError, match="Argument `recurrent_max_abs` expected a positive number"):
        layers.IndRNNCell(3, recurrent_max_abs="big")
    with pytest.raises(
        ValueError, match="peephole: expected false for a cell other than 'lstm', received true for 'gru'"
    ):
        _core.CellSpec("gru", 3, peephole=True)
    with pytest.raises(ValueError, match=r"Unrecognized keyword arguments passed to GRUCell: \{'peephole': True\}"):
        layers.GRU(3, peephole=True)


def test_core_weights_must_match_the_spec():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F))
    weights = random_weights("peephole", rng)
    with pytest.raises(ValueError, match="peephole: expected an array since peephole is true, received None"):
        _core.rnn_forward(spec("peephole"), weights[:3], x)
    with pytest.raises(ValueError, match=r"peephole: expected shape \(3, 3\), received \(3, 2\)"):
        _core.rnn_forward(spec("peephole"), [*weights[:3], weights[3][:, :2]], x)
    with pytest.raises(ValueError, match=r"weights: expected \(kernel, recurrent_kernel, bias\), received 4 items"):
        _core.rnn_forward(_core.CellSpec("lstm", U), weights, x)
    ind = random_weights("indrnn", rng)
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected a 1-d array \(units,\), received shape \(3, 3\)"):
        _core.rnn_forward(spec("indrnn"), [ind[0], np.zeros((U, U)), ind[2]], x)
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected shape \(1, 3\), received \(1, 2\)"):
        _core.rnn_forward(spec("indrnn"), [ind[0], np.zeros(2), ind[2]], x)


def test_pytorch_export_refuses_peepholes_indrnn_and_zoneout():
    layer = layers.LSTM(U, peephole=True)
    layer(np.zeros((1, 2, F), np.float32))
    with pytest.raises(ValueError, match="has peephole=True; PyTorch's nn.LSTM has no peepholes"):
        layer.to_torch_state_dict()
    ind = layers.IndRNN(U)
    ind(np.zeros((1, 2, F), np.float32))
    with pytest.raises(ValueError, match="expected an LSTM, GRU or SimpleRNN layer"):
        ind.to_torch_state_dict()
    gru = layers.GRU(U, zoneout=0.2)
    gru(np.zeros((1, 2, F), np.float32))
    with pytest.raises(ValueError, match="has zoneout=0.2; PyTorch's recurrent modules have no zoneout"):
        gru.to_torch_state_dict()


# --- projection LSTM and PyTorch's nn.LSTM(proj_size=...) ------------------------------------


def torch_state_dict(rng, input_size, suffixes=("",), layer=0):
    """Random weights in PyTorch's names and shapes for `nn.LSTM(input_size, U, proj_size=P)`."""
    sd = {}
    for s in suffixes:
        tag = f"l{layer}{s}"
        sd[f"weight_ih_{tag}"] = rng.uniform(-0.5, 0.5, (4 * U, input_size)).astype(np.float32)
        sd[f"weight_hh_{tag}"] = rng.uniform(-0.5, 0.5, (4 * U, P)).astype(np.float32)
        sd[f"bias_ih_{tag}"] = rng.uniform(-0.5, 0.5, (4 * U,)).astype(np.float32)
        sd[f"bias_hh_{tag}"] = rng.uniform(-0.5, 0.5, (4 * U,)).astype(np.float32)
        sd[f"weight_hr_{tag}"] = rng.uniform(-0.5, 0.5, (P, U)).astype(np.float32)
    return sd


def torch_lstm(sd, tag, x, reverse=False):
    """PyTorch's documented nn.LSTM equations (gates i, f, g, o; `h_t = W_hr(o_t ⊙ tanh(c_t))`)
    in float64 over batch-major `x`; outputs in time order."""
    w_ih, w_hh, w_hr = (np.asarray(sd[f"{k}_{tag}"], np.float64) for k in ("weight_ih", "weight_hh", "weight_hr"))
    bias = np.asarray(sd[f"bias_ih_{tag}"], np.float64) + sd[f"bias_hh_{tag}"]
    h, c = np.zeros((x.shape[0], P)), np.zeros((x.shape[0], U))
    outputs = {}
    for t in reversed(range(x.shape[1])) if reverse else range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ w_ih.T + h @ w_hh.T + bias, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = (sigmoid(o) * np.tanh(c)) @ w_hr.T
        outputs[t] = h
    return np.stack([outputs[t] for t in range(x.shape[1])], axis=1), (h, c)


def test_projection_lstm_from_pytorch_state_dict_equals_pytorch_s_equations():
    """`from_torch` on a `proj_size` state dict (PyTorch itself is not needed: a dict of arrays
    with its names), one layer and a bidirectional stack of two, and back to the same dict."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    sd = torch_state_dict(rng, F)
    layer = layers.LSTM.from_torch(sd, return_state=True)
    assert layer.projection == P and layer.units == U
    y, h, c = (np.asarray(t) for t in layer(x))
    want, (want_h, want_c) = torch_lstm(sd, "l0", x)
    np.testing.assert_allclose(y, want, atol=1e-5)
    np.testing.assert_allclose(h, want_h, atol=1e-5)
    np.testing.assert_allclose(c, want_c, atol=1e-5)
    back = layer.to_torch_state_dict()
    assert set(back) == set(sd)
    for key in ("weight_ih_l0", "weight_hh_l0", "weight_hr_l0"):
        np.testing.assert_array_equal(back[key], sd[key])
    np.testing.assert_allclose(back["bias_ih_l0"] + back["bias_hh_l0"], sd["bias_ih_l0"] + sd["bias_hh_l0"], rtol=1e-6)
    assert rk.interop.torch.torch_config(layer)["proj_size"] == P

    pair = {**torch_state_dict(rng, F, ("", "_reverse")), **torch_state_dict(rng, 2 * P, ("", "_reverse"), layer=1)}
    stack = layers.LSTM.from_torch(pair)
    assert len(stack) == 2
    got = np.asarray(stack[1](stack[0](x)))
    first = np.concatenate([torch_lstm(pair, "l0", x)[0], torch_lstm(pair, "l0_reverse", x, reverse=True)[0]], -1)
    want = np.concatenate(
        [torch_lstm(pair, "l1", first)[0], torch_lstm(pair, "l1_reverse", first, reverse=True)[0]], -1
    )
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert rk.interop.torch.torch_config(stack) == {
        "module": "LSTM",
        "input_size": F,
        "hidden_size": U,
        "num_layers": 2,
        "bias": True,
        "batch_first": True,
        "bidirectional": True,
        "proj_size": P,
    }


def test_projection_lstm_equals_pytorch_forward_and_gradients():
    """With PyTorch installed: nn.LSTM(proj_size=P) and the layer from it agree on the outputs
    and on every gradient of a loss over the outputs."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.LSTM(F, U, proj_size=P, batch_first=True)
    layer = layers.LSTM.from_torch(module)
    x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
    r = np.random.default_rng(1).normal(size=(B, T, P)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    y = module(xt)[0]
    (y * torch.from_numpy(r)).sum().backward()
    x_rk = rk.ops.convert_to_tensor(x)
    with rk.GradientTape() as tape:
        tape.watch(x_rk)
        loss = rk.ops.sum(layer(x_rk) * r)
    d_x, d_kernel, d_recurrent, d_bias, d_projection = tape.gradient(loss, [x_rk, *layer.trainable_weights])
    np.testing.assert_allclose(np.asarray(layer(x)), y.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(d_x), xt.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(d_kernel), module.weight_ih_l0.grad.numpy().T, atol=1e-5)
    np.testing.assert_allclose(np.asarray(d_recurrent), module.weight_hh_l0.grad.numpy().T, atol=1e-5)
    np.testing.assert_allclose(np.asarray(d_bias), module.bias_ih_l0.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(d_projection), module.weight_hr_l0.grad.numpy().T, atol=1e-5)


def test_projection_argument_errors():
    with pytest.raises(ValueError, match=r"Argument `projection` expected None or an integer from 1 to units - 1 = 2"):
        layers.LSTM(3, projection=3)
    with pytest.raises(TypeError, match="Argument `projection` expected None or an integer, received 1.5"):
        layers.LSTMCell(3, projection=1.5)
    with pytest.raises(
        ValueError, match=r"projection: expected None for a cell other than 'lstm' \('gru'\), received 2"
    ):
        _core.CellSpec("gru", 3, projection=2)
    with pytest.raises(ValueError, match="projection: expected None or an integer from 1 to units - 1 = 2, received 3"):
        _core.CellSpec("lstm", 3, projection=3)
    rng = np.random.default_rng(0)
    weights = random_weights("projection", rng)
    with pytest.raises(ValueError, match="projection: expected an array since the spec projects, received None"):
        _core.rnn_forward(spec("projection"), weights[:3], rng.normal(size=(B, T, F)))
    with pytest.raises(ValueError, match=r"initial_states\[0\]: expected shape \(3, 2\), received \(3, 3\)"):
        _core.rnn_forward(
            spec("projection"), weights, rng.normal(size=(B, T, F)), initial_states=[np.zeros((B, U))] * 2
        )


# --- zoneout ------------------------------------------------------------------------------------


def zoneout_layer(kind, **kwargs):
    if kind == "gru":
        return layers.GRU(U, zoneout=0.3, return_sequences=True, **kwargs)
    return make_layer(kind, zoneout=0.3, return_sequences=True, **kwargs)


@pytest.mark.parametrize("kind", ["gru", "peephole", "projection"])
def test_zoneout_training_masks_are_seeded_and_inference_is_the_expectation(kind):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    runs = []
    for seed in (5, 5, 6):
        layer = zoneout_layer(kind, seed=seed)
        layer(x)
        randomized(layer)
        runs.append((layer, np.asarray(layer(x, training=True)), np.asarray(layer(x))))
    (layer, train, infer), (_, train_again, infer_again), (_, other_seed, _) = runs
    np.testing.assert_array_equal(train, train_again)
    assert np.abs(train - other_seed).max() > 1e-3 and np.abs(train - infer).max() > 1e-3
    np.testing.assert_array_equal(infer, infer_again)
    # Inference: the Python step of the same cell, whose zoneout is the deterministic formula.
    stepped_class = SteppedGRUCell if kind == "gru" else SteppedLSTMCell
    stepped = layers.RNN(stepped_class.from_config(layer.cell.get_config()), return_sequences=True)
    stepped(x)
    stepped.set_weights(layer.get_weights())
    assert not stepped._fused
    np.testing.assert_allclose(np.asarray(stepped(x)), infer, rtol=1e-5, atol=1e-6)
    if kind != "gru":
        rate = [np.full((B, T, n), 0.3) for n in state_units(kind)]
        want, _ = reference(kind, layer.get_weights(), x, zoneout=rate)
        np.testing.assert_allclose(infer, want, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_zoneout_expectation_is_the_formula_and_the_weights_path(kind, dtype):
    """`zoneout=rate` (what the layers pass at inference) is the deterministic formula
    `s = rate·s₋₁ + (1 - rate)·s̃` of the reference, and the same numbers as every weight `rate`
    given as arrays, with a mask and `go_backwards`, for training and inference passes."""
    rng = np.random.default_rng(12)
    weights = random_weights(kind, rng, dtype=dtype)
    x = rng.normal(size=(B, T, F)).astype(dtype)
    mask = rng.random((B, T)) < 0.7
    arrays = [np.full((B, T, n), 0.3, dtype) for n in state_units(kind)]
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for go_backwards in (False, True):
        options = {"mask": mask, "go_backwards": go_backwards}
        backwards = {"go_backwards": go_backwards}
        want, want_finals = reference(kind, weights, x, zoneout=arrays, options=backwards, mask=mask)
        for inference in (False, True):
            run = {**options, "inference": inference}
            out, finals, _ = _core.rnn_forward(spec(kind), weights, x, zoneout=0.3, **run)
            given_out, given_finals, _ = _core.rnn_forward(spec(kind), weights, x, zoneout=arrays, **run)
            np.testing.assert_array_equal(out, given_out)
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
            for got, given_state, want_state in zip(finals, given_finals, want_finals):
                np.testing.assert_array_equal(got, given_state)
                np.testing.assert_allclose(got, want_state, rtol=tol, atol=tol)


def test_zoneout_expectation_in_a_bidirectional_pass():
    rng = np.random.default_rng(13)
    fw, bw = random_weights("projection", rng), random_weights("projection", rng)
    x = rng.normal(size=(B, T, F))
    pair = (spec("projection"), fw, spec("projection"), bw, x)
    out = _core.bidirectional_forward(*pair, fw_zoneout=0.2, bw_zoneout=0.6)[0]
    fw_rate, bw_rate = ([np.full((B, T, n), r) for n in state_units("projection")] for r in (0.2, 0.6))
    want = np.concatenate(
        [
            reference("projection", fw, x, zoneout=fw_rate)[0][:, -1],
            reference("projection", bw, x, zoneout=bw_rate, options={"go_backwards": True})[0][:, -1],
        ],
        axis=-1,
    )
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def drawn_masks(drawn, kind, batch=B, steps=T):
    """The `(batch, steps, size)` masks the core draws for `drawn = (rate, seeds)`, per state."""
    rate, seeds = drawn
    return [
        _core.zoneout_masks(s, (steps, batch, n), rate, "float64").transpose(1, 0, 2)
        for s, n in zip(seeds, state_units(kind))
    ]


@pytest.mark.parametrize("kind", ["peephole", "projection"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_zoneout_training_output_follows_the_drawn_masks(kind, go_backwards):
    """The masks a seeded cell draws (`step_masks`'s seeds) are the ones the fused pass applied,
    indexed by the input's time under `go_backwards` too."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    layer = zoneout_layer(kind, seed=3, go_backwards=go_backwards)
    layer(x)
    randomized(layer)
    got = np.asarray(layer(x, training=True))
    twin = zoneout_layer(kind, seed=3)
    _, _, drawn = twin.cell.step_masks(B, F, np.float32, True)
    masks = drawn_masks(drawn, kind)
    assert drawn[0] == 0.3 and {float(v) for m in masks for v in np.unique(m)} == {0.0, 1.0}
    options = {"go_backwards": go_backwards}
    want, _ = reference(kind, layer.get_weights(), x, zoneout=masks, options=options)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


def test_zoneout_in_a_bidirectional_pair_config_and_files(tmp_path):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    model = rk.Sequential([rk.Input((T, F)), layers.Bidirectional(layers.LSTM(U, zoneout=0.25)), layers.Dense(2)])
    randomized(model.layers[0])
    fw, bw = model.layers[0].forward_layer.get_weights(), model.layers[0].backward_layer.get_weights()
    rate = [np.full((B, T, U), 0.25)] * 2
    want = np.concatenate(
        [
            reference("lstm", fw, x, zoneout=rate)[0][:, -1],
            reference("lstm", bw, x, zoneout=rate, options={"go_backwards": True})[0][:, -1],
        ],
        -1,
    )
    np.testing.assert_allclose(np.asarray(model.layers[0](x)), want, rtol=1e-5, atol=2e-6)
    model.save(tmp_path / "m.keras")
    loaded = rk.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[0].forward_layer.zoneout == 0.25
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert "zoneout" not in layers.LSTM(U).get_config()


def test_each_layer_with_zoneout_learns():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 8, 2)).astype(np.float32)
    y = x[:, :, :1].sum(axis=1) / 3.0
    for layer in (layers.LSTM(16, zoneout=0.1, seed=0), layers.GRU(16, zoneout=0.1, seed=0)):
        model = rk.Sequential([rk.Input((8, 2)), layer, layers.Dense(1)])
        model.compile(optimizer=rk.optimizers.Adam(0.02), loss="mse")
        history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
        assert history.history["loss"][-1] < 0.25 * float(np.var(y))


def test_core_zoneout_masks_are_seeded_zeros_and_ones_at_the_rate():
    a = _core.zoneout_masks(11, (40, 30, 20), 0.3)
    assert a.dtype == np.float32 and a.shape == (40, 30, 20)
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 0.015  # 24000 draws: the share's standard deviation is 0.003
    np.testing.assert_array_equal(a, _core.zoneout_masks(11, (40, 30, 20), 0.3, "float64"))
    assert not np.array_equal(a, _core.zoneout_masks(12, (40, 30, 20), 0.3))
    assert not _core.zoneout_masks(11, (2, 3, 4), 0.0).any() and _core.zoneout_masks(11, (2, 3, 4), 1.0).all()
    with pytest.raises(ValueError, match="""dtype: expected 'float32' or 'float64', received "int8\""""):
        _core.zoneout_masks(11, (2, 3, 4), 0.3, "int8")
    with pytest.raises(ValueError, match="rate: expected a float between 0 and 1, received 1.5"):
        _core.zoneout_masks(11, (2, 3, 4), 1.5)


def test_zoneout_rate_errors():
    with pytest.raises(TypeError, match="Argument `zoneout` expected a float between 0 and 1, received 'x'"):
        layers.LSTM(3, zoneout="x")
    rng = np.random.default_rng(0)
    weights = random_weights("projection", rng)
    x = rng.normal(size=(B, T, F))
    with pytest.raises(ValueError, match=r"zoneout: expected 2 arrays \(one per state\), received 1"):
        _core.rnn_forward(spec("projection"), weights, x, zoneout=[np.zeros((B, T, P))])
    with pytest.raises(ValueError, match=r"zoneout\[1\]: expected shape \(3, 5, 3\), received \(3, 5, 2\)"):
        _core.rnn_forward(spec("projection"), weights, x, zoneout=[np.zeros((B, T, P))] * 2)
    with pytest.raises(ValueError, match=r"zoneout: expected 2 seeds \(one per state\), received 1"):
        _core.rnn_forward(spec("projection"), weights, x, zoneout=(0.3, [1]))
    with pytest.raises(ValueError, match="zoneout: expected a rate between 0 and 1, received 1.5"):
        _core.rnn_forward(spec("projection"), weights, x, zoneout=(1.5, [1, 2]))
    with pytest.raises(ValueError, match="zoneout: expected a rate between 0 and 1, received -0.5"):
        _core.rnn_forward(spec("projection"), weights, x, zoneout=-0.5, inference=True)
