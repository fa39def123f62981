"""Parity of rnnkit's recurrent LAYERS with Keras 3's own layers (JAX backend), in float32.

`tests/test_keras_parity.py` checks the low-level `rnnkit._core` functions; this file checks the
public layers built on them, end to end: `SimpleRNN`, `GRU` (`reset_after` True and False),
`LSTM`, `RNN(<built-in cell>)`, `RNN([cell, cell])` (stacked, cells of any kinds) and
`Bidirectional(<any of those>, merge_mode=...)` for every merge mode. For each drawn configuration the
same layer is made from `keras.layers` and from `rk.layers`; the Keras layer is called once
(symbolically) to build it and gets random weights; the rnnkit layer is built by calling it and
gets `keras_layer.get_weights()` through `set_weights`. Then:

- every output and final state is compared (tolerance 1e-5 relative to magnitude);
- the gradients of `loss = sum over outputs and states of sum(tensor * R)` (fixed random R) with
  respect to the trainable weights, the input and the initial states are compared (tolerance
  1e-4 relative to magnitude): rnnkit's through `rk.GradientTape`, Keras's through `jax.vjp` of the
  layer's `stateless_call`, compiled with `jax.jit` (one program per example: every drawn shape
  compiles anew, which is what the time goes into).

Known Keras/JAX differences, handled as in `test_keras_parity.py`:

- With a mask and an initial state (and `zero_output_for_mask=False`), Keras's JAX `lax.scan` loop
  outputs the first state (for stacked cells, the last cell's first state) at masked steps that
  come before a row's first unmasked step (in processing order); the TensorFlow backend and
  rnnkit output zeros there. Exactly those output positions are left out of the comparison and
  get a zero cotangent; the test checks that Keras outputs h0 and rnnkit 0 there.
- `Bidirectional` overrides both halves' `zero_output_for_mask` with `return_sequences` (rnnkit
  does the same, and the test asserts it), so that option is drawn only for the other layers.
- Keras builds the backward layer of a `Bidirectional` with `go_backwards=True` whatever the
  forward layer does, so a forward layer that goes backwards is given an explicit backward
  layer that goes forwards (on both sides).
- JAX's 64-bit mode is kept off while the Keras layers are made and run: float32 GRU layers
  without bias fail in Keras's JAX GRU path with it on (see `jax_x64` in keras_reference.py).

Activations are drawn among those both libraries know by name that stay finite on these small
inputs (gates among the bounded ones, see GATE_ACTIVATIONS). A user-defined activation, which has
no Rust kernel, sends rnnkit's `RNN` down its Python step loop (differentiated op by op on the
tape) instead of the fused kernels; `test_rnn_of_cell_matches_keras[python_step_loop]` covers it.
A Bidirectional of a stack runs rnnkit's unfused Bidirectional (its two halves called in turn).

Hypothesis runs without shrinking (each example compiles a JAX program), and masks, initial states
and return_state are drawn more often than not, so that few examples cover the cases that matter
(`pytest --hypothesis-show-statistics` lists what was covered).

Dropout cannot be compared with Keras (different random streams): `test_dropout_training_rnnkit`
checks rnnkit alone (finite outputs and gradients of the right shapes with `training=True`,
identical results for the same `seed`, and no dropout with `training=False`).
"""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rnnkit as rk
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

# Known by name to both libraries (equal to about 5e-7 in float32) and finite over a few steps
# of small random inputs ("exponential" can overflow, so it is left out).
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
    "relu6",
    "leaky_relu",
    "celu",
    "mish",
    "hard_silu",
    "hard_tanh",
    "log_sigmoid",
    "soft_shrink",
    "sparse_plus",
    "squareplus",
    "tanh_shrink",
    "hard_shrink",
]
# GRU and LSTM gates (recurrent_activation) are drawn among the bounded ones. An unbounded gate
# multiplies the state by an unbounded factor at every step: a drawn stacked GRU with "linear"
# gates reached 1e15 (or overflowed) in 6 steps, where float32 rounding differences between any
# two implementations grow past every relative tolerance.
GATE_ACTIVATIONS = ["sigmoid", "hard_sigmoid", "tanh", "softsign", "hard_tanh", "relu6"]


# A user-defined activation, written once per library: rnnkit has no Rust kernel for it, so a
# layer using it runs rnnkit's Python step loop (differentiated op by op on the tape).
def keras_leaky_tanh(v):
    return keras.ops.tanh(v) + 0.1 * v


def rnnkit_leaky_tanh(v):
    return rk.ops.tanh(v) + 0.1 * v


CUSTOM_ACTIVATIONS = {"leaky_tanh": {"keras": keras_leaky_tanh, "rnnkit": rnnkit_leaky_tanh}}
LAYER_CLASSES = {"simple_rnn": "SimpleRNN", "gru": "GRU", "gru_before": "GRU", "lstm": "LSTM"}

# Relative to max(1, max |Keras value|).
OUTPUT_TOL = 1e-5
GRAD_TOL = 1e-4

# Keras's own `Variable.numpy()` (inside `get_weights()`) calls `np.array` on a JAX-backed variable
# whose `__array__` takes no `copy` argument: a NumPy 2 DeprecationWarning from Keras, not rnnkit.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    # No shrinking: every example compiles a JAX program (about a second), so shrinking a failure
    # can take many minutes; the failing draws are reported in full anyway.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# Configurations


@st.composite
def cell_configs(draw, kind=None):
    kind = draw(st.sampled_from(KINDS)) if kind is None else kind
    return dict(
        kind=kind,
        units=draw(st.integers(1, 5)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        recurrent_activation=draw(st.sampled_from(GATE_ACTIVATIONS)) if kind != "simple_rnn" else None,
        use_bias=draw(st.booleans()),
    )


@st.composite
def layer_configs(draw, structure, kind=None, merge_mode=False, wrapped=None, kinds=None):
    """`structure`: "layer" (SimpleRNN/GRU/LSTM), "rnn_cell" (RNN(cell)), "stacked" (RNN([c, c]))
    or "bidirectional" (of a `wrapped` layer: one of those three, drawn by default; `merge_mode`
    is then one of MERGE_MODES). `kind` fixes every cell's kind, `kinds` each cell's (None: drawn)."""
    if structure == "bidirectional":
        wrapped = draw(st.sampled_from(["layer", "rnn_cell", "stacked"])) if wrapped is None else wrapped
    n_cells = 2 if "stacked" in (structure, wrapped) else 1
    kinds = kinds or [kind] * n_cells
    batch = draw(st.integers(1, 4))
    time = draw(st.integers(1, 6))
    # Few examples are affordable, so masks (3 in 4) and initial states (2 in 3) are drawn more
    # often than not: together they make the cases where the backends differ.
    masked = draw(st.sampled_from([True, True, True, False]))
    cfg = dict(
        structure=structure,
        batch=batch,
        time=time,
        # Any pattern: hypothesis readily produces all-False rows and masked leading steps.
        mask=draw(hnp.arrays(np.bool_, (batch, time))) if masked else None,
        initial_state=draw(st.sampled_from([True, True, False])),
        cells=[draw(cell_configs(k)) for k in kinds],
        features=draw(st.integers(1, 5)),
        go_backwards=draw(st.booleans()),
        return_sequences=draw(st.booleans()),
        return_state=draw(st.sampled_from([True, True, False])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    if structure == "bidirectional":
        cfg["merge_mode"] = merge_mode
        cfg["wrapped"] = wrapped
        cfg["zero_output_for_mask"] = cfg["return_sequences"]  # what both libraries force
    else:
        cfg["zero_output_for_mask"] = draw(st.booleans())
    return cfg


def python_step_loop(cfg):
    """Whether rnnkit runs this configuration in its Python step loop (no Rust kernel)."""
    names = [c["activation"] for c in cfg["cells"]] + [c["recurrent_activation"] or "tanh" for c in cfg["cells"]]
    return not all(n in _core.ACTIVATIONS for n in names)


def stacked(cfg):
    """Whether the layer (or the layer a Bidirectional wraps) is an RNN of a list of cells."""
    return "stacked" in (cfg["structure"], cfg.get("wrapped"))


def record_events(cfg):
    """Coverage counts for `pytest --hypothesis-show-statistics`."""
    wrapped = f" of {cfg['wrapped']}" if cfg["structure"] == "bidirectional" else ""
    event(f"structure={cfg['structure']}{wrapped}, kinds={[c['kind'] for c in cfg['cells']]}")
    mask = cfg["mask"]
    if mask is None:
        event("mask=None")
    else:
        event(f"mask has a fully masked row: {bool((~mask).all(axis=1).any())}")
        event(f"Keras-JAX h0 quirk excluded: {jax_h0_quirk_applies(cfg)}")
    event(f"initial_state={cfg['initial_state']}, return_state={cfg['return_state']}")
    event(f"go_backwards={cfg['go_backwards']}, return_sequences={cfg['return_sequences']}")
    event(f"rnnkit path: {'Python step loop' if python_step_loop(cfg) else 'fused'}")


# Layers, made alike from `keras.layers` and `rk.layers`


def cell_kwargs(lib, cell, extra):
    activation = cell["activation"]
    if activation in CUSTOM_ACTIVATIONS:
        activation = CUSTOM_ACTIVATIONS[activation]["rnnkit" if lib is rk.layers else "keras"]
    kwargs = dict(
        activation=activation,
        use_bias=cell["use_bias"],
        # The weights are always replaced; cheap initializers keep building fast (Keras's
        # default Orthogonal one runs a QR decomposition, compiled anew for each shape).
        kernel_initializer="zeros",
        recurrent_initializer="zeros",
        **extra,
    )
    if cell["kind"] != "simple_rnn":
        kwargs["recurrent_activation"] = cell["recurrent_activation"]
    if cell["kind"].startswith("gru"):
        kwargs["reset_after"] = cell["kind"] == "gru"
    return kwargs


def make_rnn(lib, cfg, extra, go_backwards):
    kwargs = dict(return_sequences=cfg["return_sequences"], return_state=cfg["return_state"], go_backwards=go_backwards)
    if cfg["structure"] != "bidirectional":
        kwargs["zero_output_for_mask"] = cfg["zero_output_for_mask"]
    cells = cfg["cells"]
    if cfg["structure"] == "layer" or cfg.get("wrapped") == "layer":
        layer_class = getattr(lib, LAYER_CLASSES[cells[0]["kind"]])
        return layer_class(cells[0]["units"], **cell_kwargs(lib, cells[0], extra), **kwargs)
    made = [getattr(lib, LAYER_CLASSES[c["kind"]] + "Cell")(c["units"], **cell_kwargs(lib, c, extra)) for c in cells]
    return lib.RNN(made if stacked(cfg) else made[0], **kwargs)


def make_layer(lib, cfg, extra=None):
    """The configured layer from `lib` (`keras.layers` or `rk.layers`); `extra`: cell kwargs."""
    extra = extra or {}
    if cfg["structure"] != "bidirectional":
        return make_rnn(lib, cfg, extra, cfg["go_backwards"])
    backward = make_rnn(lib, cfg, extra, False) if cfg["go_backwards"] else None
    layer = lib.Bidirectional(
        make_rnn(lib, cfg, extra, cfg["go_backwards"]), merge_mode=cfg["merge_mode"], backward_layer=backward
    )
    assert layer.forward_layer.go_backwards == cfg["go_backwards"] != layer.backward_layer.go_backwards
    # Both libraries force the halves' zero_output_for_mask to return_sequences.
    assert layer.forward_layer.zero_output_for_mask == layer.backward_layer.zero_output_for_mask
    assert layer.forward_layer.zero_output_for_mask == cfg["return_sequences"]
    return layer


def state_groups(cfg):
    """Per group of states (a cell of a stack, per direction for a Bidirectional), the number of states."""
    counts = [2 if c["kind"] == "lstm" else 1 for c in cfg["cells"]]
    return counts * 2 if cfg["structure"] == "bidirectional" else counts


def group_units(cfg):
    units = [c["units"] for c in cfg["cells"]]
    return units * 2 if cfg["structure"] == "bidirectional" else units


def random_initial_states(cfg, rng):
    """None, or per state group a list of (batch, units) float32 arrays."""
    if not cfg["initial_state"]:
        return None
    return [
        [rng.standard_normal((cfg["batch"], units)).astype(np.float32) for _ in range(count)]
        for count, units in zip(state_groups(cfg), group_units(cfg))
    ]


def as_initial_state(cfg, groups):
    """The `initial_state` argument: nested per cell for a stack (the forward cells' then the
    backward cells' for a Bidirectional, which gives each half its half), else a flat list."""
    if groups is None:
        return None
    return [list(g) for g in groups] if stacked(cfg) else [s for g in groups for s in g]


def split_result(cfg, result, who):
    """A layer call's result as (outputs, flat final states), checking its structure: Keras's and
    rnnkit's `RNN([cells])` return the states nested per cell (a Bidirectional of it: the forward
    cells' then the backward cells'), the others a flat list."""
    n_outputs = 2 if cfg["structure"] == "bidirectional" and cfg["merge_mode"] is None else 1
    if not cfg["return_state"]:
        if n_outputs == 2:
            assert isinstance(result, (list, tuple)) and len(result) == 2, f"{who}: expected [y, y_rev]"
            return list(result), []
        assert not isinstance(result, (list, tuple)), f"{who}: expected one tensor, got {type(result)}"
        return [result], []
    assert isinstance(result, (list, tuple)), f"{who}: expected a list, got {type(result)}"
    outputs, rest = list(result[:n_outputs]), list(result[n_outputs:])
    counts = state_groups(cfg)
    if stacked(cfg):
        assert len(rest) == len(counts), f"{who}: {len(rest)} state entries for {len(counts)} cells"
        for i, (group, count) in enumerate(zip(rest, counts)):
            assert isinstance(group, (list, tuple)) and len(group) == count, f"{who}: states of cell {i}: {group!r:.80}"
        return outputs, [s for group in rest for s in group]
    assert len(rest) == sum(counts), f"{who}: {len(rest)} states, expected {sum(counts)}"
    assert not any(isinstance(s, (list, tuple)) for s in rest), f"{who}: nested states"
    return outputs, rest


# The Keras-JAX h0 quirk (see the module docstring)


def excluded_outputs(cfg, output_shapes):
    """Per output, a boolean array of its shape: the positions where Keras-JAX outputs h0."""
    seq = cfg["return_sequences"]
    if not jax_h0_quirk_applies(cfg):
        return [np.zeros(s, bool) for s in output_shapes]
    if cfg["structure"] != "bidirectional":
        ex = leading_masked(cfg["mask"], cfg["go_backwards"])
        return [np.broadcast_to((ex if seq else ex[:, -1])[..., None], output_shapes[0])]
    fw = leading_masked(cfg["mask"], cfg["go_backwards"])  # in processing order, as returned
    bw = leading_masked(cfg["mask"], not cfg["go_backwards"])  # flipped into time order if seq
    fw, bw = (fw[..., None], bw[:, ::-1, None]) if seq else (fw[:, -1, None], bw[:, -1, None])
    units = cfg["cells"][-1]["units"]
    if cfg["merge_mode"] is None:
        excluded = [fw, bw]
    elif cfg["merge_mode"] == "concat":
        excluded = [np.concatenate([np.repeat(fw, units, -1), np.repeat(bw, units, -1)], -1)]
    else:
        excluded = [fw | bw]
    return [np.broadcast_to(e, s) for e, s in zip(excluded, output_shapes)]


# Running both sides


def keras_value_and_vjp(cfg, layer, weights, x, initial_state, cotangents):
    """Keras's (outputs, states) and the VJP (d_weights, d_x, d_initial_state) with `cotangents`,
    through `stateless_call`, as one jitted program."""
    non_trainable = [v.value for v in layer.non_trainable_variables]
    mask = None if cfg["mask"] is None else jnp.asarray(cfg["mask"])

    def fn(weights, x, initial_state):
        kwargs = {} if mask is None else {"mask": mask}
        if initial_state is not None:
            kwargs["initial_state"] = initial_state
        result, _ = layer.stateless_call(weights, non_trainable, x, **kwargs)
        outputs, states = split_result(cfg, result, "Keras")
        return list(outputs), list(states)

    def value_and_vjp(primals, cotangents):
        value, vjp = jax.vjp(fn, *primals)
        return value, vjp(cotangents)

    primals = (
        [jnp.asarray(w) for w in weights],
        jnp.asarray(x),
        jax.tree_util.tree_map(jnp.asarray, initial_state),
    )
    return jax.jit(value_and_vjp)(primals, jax.tree_util.tree_map(jnp.asarray, cotangents))


def rnnkit_value_and_grads(cfg, layer, x, groups, training=False, cotangents=None):
    """rnnkit's (outputs, states) as numpy, and the gradients (d_weights, d_x, flat d_initial_states)
    of sum(tensor * R) through `rk.GradientTape` (ones for R when `cotangents` is None)."""
    x_t = rk.Tensor(x)
    groups_t = None if groups is None else [[rk.Tensor(s) for s in g] for g in groups]
    flat_t = [] if groups_t is None else [s for g in groups_t for s in g]
    kwargs = {"training": training}
    if cfg["mask"] is not None:
        kwargs["mask"] = cfg["mask"]
    if groups_t is not None:
        kwargs["initial_state"] = as_initial_state(cfg, groups_t)
    with rk.GradientTape() as tape:
        tape.watch(x_t)
        tape.watch(flat_t)
        outputs, states = split_result(cfg, layer(x_t, **kwargs), "rnnkit")
        tensors = outputs + states
        rs = cotangents or [np.ones(t.shape, np.float32) for t in tensors]
        assert len(rs) == len(tensors)
        loss = sum(rk.ops.sum(t * r) for t, r in zip(tensors, rs))
    weights = list(layer.trainable_weights)
    d_weights, d_x, d_states = tape.gradient(loss, [weights, x_t, flat_t], unconnected_gradients="zero")
    value = ([np.asarray(o) for o in outputs], [np.asarray(s) for s in states])
    grads = ([np.asarray(g) for g in d_weights], np.asarray(d_x), [np.asarray(g) for g in d_states])
    return value, grads


def build_pair(cfg, rng):
    """The Keras layer (built by a symbolic call, random weights) and the rnnkit layer (built by
    a call, Keras's weights through set_weights), and the input x."""
    shape = (cfg["batch"], cfg["time"], cfg["features"])
    k_layer = make_layer(keras.layers, cfg)
    k_layer(keras.KerasTensor(shape))
    variables = k_layer.trainable_variables
    # get_weights() lists `weights`, whose trainable ones are exactly these, in the same order.
    assert [v.path for v in variables] == [v.path for v in k_layer.weights]
    k_layer.set_weights([(rng.standard_normal(v.shape) * 0.5).astype(np.float32) for v in variables])
    x = rng.standard_normal(shape).astype(np.float32)
    rk_layer = make_layer(rk.layers, cfg)
    rk_layer(x)
    rk_layer.set_weights(k_layer.get_weights())
    assert [tuple(w.shape) for w in rk_layer.trainable_weights] == [tuple(v.shape) for v in variables]
    rnn = rk_layer.forward_layer if cfg["structure"] == "bidirectional" else rk_layer
    cells = rnn.cell.cells if stacked(cfg) else [rnn.cell]
    # A cell's `spec` is None when rnnkit has no Rust kernel for an activation.
    assert any(c.spec is None for c in cells) == python_step_loop(cfg)
    return k_layer, rk_layer, x


def check_parity(cfg):
    record_events(cfg)
    rng = np.random.default_rng(cfg["seed"])
    k_layer, rk_layer, x = build_pair(cfg, rng)
    groups = random_initial_states(cfg, rng)

    # rnnkit's forward pass first, for the shapes of R.
    (ours, our_states), _ = rnnkit_value_and_grads(cfg, rk_layer, x, groups)
    excluded = excluded_outputs(cfg, [o.shape for o in ours])
    r_outputs = [rng.standard_normal(o.shape).astype(np.float32) for o in ours]
    for r, ex in zip(r_outputs, excluded):
        r[ex] = 0.0  # positions whose value differs by backend get no cotangent
    r_states = [rng.standard_normal(s.shape).astype(np.float32) for s in our_states]

    (k_outputs, k_states), (k_dw, k_dx, k_ds) = keras_value_and_vjp(
        cfg,
        k_layer,
        [v.value for v in k_layer.trainable_variables],
        x,
        as_initial_state(cfg, groups),
        (r_outputs, r_states),
    )
    (ours, our_states), (dw, dx, ds) = rnnkit_value_and_grads(cfg, rk_layer, x, groups, cotangents=r_outputs + r_states)

    # Forward values.
    assert len(ours) == len(k_outputs) and len(our_states) == len(k_states) == len(r_states)
    for i, (mine, theirs, ex) in enumerate(zip(ours, k_outputs, excluded)):
        assert_close(mine, theirs, OUTPUT_TOL, f"output {i}", keep=~ex)
        if ex.any() and (cfg["structure"] != "bidirectional" or cfg["merge_mode"] is None):
            # The JAX-backend difference, checked rather than assumed: Keras outputs the (last
            # cell's) first initial state (of the output's direction), rnnkit (TF semantics) 0.
            h0 = groups[(i + 1) * len(cfg["cells"]) - 1][0]
            h0 = np.broadcast_to(h0[:, None, :] if mine.ndim == 3 else h0, mine.shape)
            assert_close(theirs, h0, OUTPUT_TOL, "Keras-JAX output h0 at leading masked steps", keep=ex)
            assert np.all(mine[ex] == 0), "rnnkit outputs 0 at leading masked steps"
    for i, (mine, theirs) in enumerate(zip(our_states, k_states)):
        assert_close(mine, theirs, OUTPUT_TOL, f"final state {i}")

    # Gradients.
    names = [v.path for v in k_layer.trainable_variables]
    assert len(dw) == len(k_dw) == len(names)
    for name, mine, theirs in zip(names, dw, k_dw):
        assert_close(mine, theirs, GRAD_TOL, f"d {name}")
    assert_close(dx, k_dx, GRAD_TOL, "d_x")
    k_ds = [] if k_ds is None else jax.tree_util.tree_leaves(k_ds)
    assert len(ds) == len(k_ds) == (0 if groups is None else sum(state_groups(cfg)))
    for i, (mine, theirs) in enumerate(zip(ds, k_ds)):
        assert_close(mine, theirs, GRAD_TOL, f"d_initial_state {i}")


# The parity tests


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=4, **SETTINGS)
@given(data=st.data())
@jax_x64(False)
def test_layer_matches_keras(kind, data):
    """SimpleRNN / GRU(reset_after=True) / GRU(reset_after=False) / LSTM layers."""
    check_parity(data.draw(layer_configs("layer", kind=kind), label="cfg"))


@pytest.mark.parametrize("path", ["fused", "python_step_loop"])
@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
@jax_x64(False)
def test_rnn_of_cell_matches_keras(path, data):
    """RNN(SimpleRNNCell | GRUCell | LSTMCell), in rnnkit's fused kernels and (with a user-defined
    activation, which has no Rust kernel) in its Python step loop."""
    cfg = data.draw(layer_configs("rnn_cell"), label="cfg")
    if path == "python_step_loop":
        cfg["cells"][0]["activation"] = "leaky_tanh"
    check_parity(cfg)


@pytest.mark.parametrize("kinds", [["lstm", None], [None, "lstm"]], ids=["lstm_first", "lstm_second"])
@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
@jax_x64(False)
def test_stacked_rnn_matches_keras(kinds, data):
    """RNN([cell, cell]), an LSTM cell and a cell of any kind; states are returned (and passed)
    nested per cell."""
    check_parity(data.draw(layer_configs("stacked", kinds=kinds), label="cfg"))


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
@jax_x64(False)
def test_bidirectional_matches_keras(merge_mode, data):
    """Bidirectional(SimpleRNN | GRU | LSTM | RNN(cell) | RNN([cell, cell]), merge_mode)."""
    check_parity(data.draw(layer_configs("bidirectional", merge_mode=merge_mode), label="cfg"))


# Dropout (rnnkit alone)


@pytest.mark.parametrize(
    "structure, path",
    [(s, "fused") for s in ("layer", "rnn_cell", "stacked", "bidirectional")]
    + [(s, "python_step_loop") for s in ("rnn_cell", "stacked")],
)
@settings(max_examples=15, **SETTINGS)
@given(data=st.data())
def test_dropout_training_rnnkit(structure, path, data):
    """training=True with dropout/recurrent_dropout: finite outputs and gradients of the right
    shapes; two layers with the same seed (and weights) give identical results, call after call;
    training=False applies no dropout (equals the same layer without dropout)."""
    merge_mode = data.draw(st.sampled_from(MERGE_MODES), label="merge_mode") if structure == "bidirectional" else False
    cfg = data.draw(layer_configs(structure, merge_mode=merge_mode), label="cfg")
    if path == "python_step_loop":
        for cell in cfg["cells"]:
            cell["activation"] = "leaky_tanh"
    rate = st.one_of(st.floats(0.05, 0.95), st.just(1.0))
    dropout, recurrent_dropout = data.draw(
        st.tuples(rate, st.just(0.0) | rate) | st.tuples(st.just(0.0), rate), label="rates"
    )
    extra = dict(dropout=dropout, recurrent_dropout=recurrent_dropout, seed=cfg["seed"] % 2**31)
    record_events(cfg)
    event(f"dropout > 0: {dropout > 0}, recurrent_dropout > 0: {recurrent_dropout > 0}")

    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["batch"], cfg["time"], cfg["features"])).astype(np.float32)
    groups = random_initial_states(cfg, rng)
    layers = [make_layer(rk.layers, cfg, extra) for _ in range(2)] + [make_layer(rk.layers, cfg)]
    layers[0](x)
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in layers[0].get_weights()]
    for layer in layers:
        if not layer.built:
            layer(x)
        layer.set_weights(weights)

    for call in range(2):
        (a, a_states), (dw, dx, ds) = rnnkit_value_and_grads(cfg, layers[0], x, groups, training=True)
        (b, b_states), _ = rnnkit_value_and_grads(cfg, layers[1], x, groups, training=True)
        for i, (u, v) in enumerate(zip(a + a_states, b + b_states)):
            assert np.all(np.isfinite(u)), f"call {call}: tensor {i} is not finite"
            np.testing.assert_array_equal(u, v, err_msg=f"call {call}, tensor {i}: same seed, different values")
        assert [g.shape for g in dw] == [tuple(w.shape) for w in weights]
        assert dx.shape == x.shape
        assert [g.shape for g in ds] == ([] if groups is None else [s.shape for g in groups for s in g])
        for g in dw + [dx] + ds:
            assert np.all(np.isfinite(g)), "non-finite gradient"

    (c, c_states), _ = rnnkit_value_and_grads(cfg, layers[0], x, groups, training=False)
    (d, d_states), _ = rnnkit_value_and_grads(cfg, layers[2], x, groups, training=False)
    for i, (u, v) in enumerate(zip(c + c_states, d + d_states)):
        np.testing.assert_array_equal(u, v, err_msg=f"tensor {i}: training=False still applies dropout")
