"""Fuzzing the layers and the extension's functions with hypothesis.

Shapes (zero sizes included), every RNN option, and bad values (NaN, inf, huge numbers, wrong
dtypes, wrong ranks, mismatched weights, masks and states). Each call must either return
results of the expected shapes or raise ValueError, TypeError or MemoryError; any other
exception fails the test, and a crash would take the whole run down. The number of examples
is bounded so that the module stays well under a minute; the examples are derandomized, so
every run tries the same ones.

The counts of probes tried, handled (a clean ValueError/TypeError/MemoryError) and crashed (any
other exception) are printed at the end of the module.
"""

import collections
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit as rk
from rnnkit import _core

L = rk.layers
ACCEPTED = (ValueError, TypeError, MemoryError)
COUNTS = collections.Counter()
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    line = (
        f"fuzz probes: {COUNTS['tried']} tried, {COUNTS['returned']} returned, "
        f"{COUNTS['handled']} handled (ValueError/TypeError/MemoryError), {COUNTS['crashed']} crashed"
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # past pytest's output capture, into the run's log
        print(f"\n{line}")


def probe(call, check=None):
    """Runs `call()`; a result goes to `check`, an accepted error is counted as handled, any
    other exception fails the test (re-raised after counting it)."""
    COUNTS["tried"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow/invalid warnings on inf/NaN
            result = call()
    except ACCEPTED as exc:
        COUNTS["handled"] += 1
        assert str(exc), f"{type(exc).__name__} without a message"
        return None
    except BaseException:
        COUNTS["crashed"] += 1
        raise
    COUNTS["returned"] += 1
    if check is not None:
        check(result)
    return result


# --- strategies ---------------------------------------------------------------------------------

KINDS = ["simple_rnn", "gru", "lstm"]
LAYER_CLASSES = {"simple_rnn": L.SimpleRNN, "gru": L.GRU, "lstm": L.LSTM}
CELL_CLASSES = {"simple_rnn": L.SimpleRNNCell, "gru": L.GRUCell, "lstm": L.LSTMCell}
ACTIVATIONS = list(_core.ACTIVATIONS) + ["softmax", None]
FILLS = ["normal", "zeros", "nan", "inf", "-inf", "huge", "tiny", "mixed"]
DTYPES = ["float32", "float64", "float16", "int32", "int64", "bool", "complex64", "str", "object"]


def fill(shape, how, dtype="float32", seed=0):
    """An array of `shape` filled as `how` says, cast to `dtype`."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(shape)
    if how == "zeros":
        base = np.zeros(shape)
    elif how == "nan":
        base = np.full(shape, np.nan)
    elif how in ("inf", "-inf"):
        base = np.full(shape, float(how))
    elif how == "huge":
        base = base * 1e38
    elif how == "tiny":
        base = base * 1e-40
    elif how == "mixed" and base.size:
        flat = base.reshape(-1)
        flat[rng.integers(0, flat.size, size=max(1, flat.size // 3))] = rng.choice([np.nan, np.inf, -np.inf, 1e38])
    if dtype == "str":
        return base.astype(str)
    if dtype == "object":
        return base.astype(object)
    with np.errstate(all="ignore"):
        return base.astype(dtype)


@st.composite
def rnn_options(draw):
    kind = draw(st.sampled_from(KINDS))
    options = {
        "return_sequences": draw(st.booleans()),
        "return_state": draw(st.booleans()),
        "go_backwards": draw(st.booleans()),
        "zero_output_for_mask": draw(st.booleans()),
        "unroll": draw(st.booleans()),
        "use_bias": draw(st.booleans()),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "dropout": draw(st.sampled_from([0.0, 0.3, 1.0, -0.5, 2.0])),
        "recurrent_dropout": draw(st.sampled_from([0.0, 0.4, 1.0])),
        "kernel_initializer": draw(st.sampled_from(["glorot_uniform", "zeros", "ones", "orthogonal", "he_normal"])),
        "recurrent_initializer": draw(st.sampled_from(["orthogonal", "zeros", "identity", "random_normal"])),
    }
    if kind != "simple_rnn":
        options["recurrent_activation"] = draw(st.sampled_from(ACTIVATIONS))
    if kind == "gru":
        options["reset_after"] = draw(st.booleans())
    if kind == "lstm":
        options["unit_forget_bias"] = draw(st.booleans())
    return kind, options


sizes = st.integers(0, 4)


@st.composite
def call_arguments(draw):
    batch, steps, features = draw(sizes), draw(sizes), draw(st.integers(0, 5))
    rank = draw(st.sampled_from([3, 3, 3, 3, 0, 1, 2, 4]))
    shape = {0: (), 1: (batch,), 2: (batch, steps), 3: (batch, steps, features), 4: (batch, steps, features, 2)}[rank]
    dtype = draw(st.sampled_from(DTYPES[:3] + DTYPES[:3] + DTYPES))
    return {
        "x": fill(shape, draw(st.sampled_from(FILLS)), dtype, seed=draw(st.integers(0, 3))),
        "mask": draw(
            st.sampled_from([None, None, "random", "all_false", "all_true", "wrong_shape", "float01", "float", "str"])
        ),
        "initial_state": draw(
            st.sampled_from([None, None, "right", "nan", "wrong_count", "wrong_batch", "wrong_units"])
        ),
        "training": draw(st.booleans()),
        "layout": draw(st.sampled_from(["c", "fortran", "strided", "list"])),
    }


def make_mask(how, batch, steps, seed=0):
    rng = np.random.default_rng(seed)
    return {
        None: None,
        "random": rng.random((batch, steps)) > 0.4,
        "all_false": np.zeros((batch, steps), bool),
        "all_true": np.ones((batch, steps), bool),
        "wrong_shape": np.ones((batch + 1, steps), bool),
        "float01": (rng.random((batch, steps)) > 0.5).astype("float32"),
        "float": rng.random((batch, steps)),
        "str": np.full((batch, steps), "x"),
    }[how]


def make_states(how, batch, units, count):
    if how is None:
        return None
    shape, n = (batch, units), count
    if how == "wrong_count":
        n = count + 1
    elif how == "wrong_batch":
        shape = (batch + 1, units)
    elif how == "wrong_units":
        shape = (batch, units + 1)
    value = np.nan if how == "nan" else 0.25
    return [np.full(shape, value, "float32") for _ in range(n)]


def relayout(x, how):
    if not isinstance(x, np.ndarray) or x.ndim == 0 or x.dtype.kind not in "biufc":
        return x
    if how == "fortran":
        return np.asfortranarray(x)
    if how == "strided":
        wide = np.repeat(x, 2, axis=-1)
        return wide[..., ::2]
    if how == "list" and x.size:
        return x.tolist()
    return x


def expected_shapes(kind, options, batch, steps, units):
    seq = (batch, steps, units) if options["return_sequences"] else (batch, units)
    if not options["return_state"]:
        return [seq]
    return [seq] + [(batch, units)] * (2 if kind == "lstm" else 1)


def shape_check(shapes):
    def check(result):
        got = [tuple(np.asarray(r).shape) for r in rk.tree.flatten(result)]
        assert got == shapes

    return check


# --- the layers ---------------------------------------------------------------------------------


@FUZZ
@given(rnn_options(), st.integers(1, 5), call_arguments(), st.sampled_from(["layer", "cell", "stepping"]))
def test_rnn_layers(kind_options, units, args, how):
    kind, options = kind_options
    options = dict(options)
    rnn_args = ("return_sequences", "return_state", "go_backwards", "zero_output_for_mask", "unroll")
    layer_options = {k: options.pop(k) for k in rnn_args}

    def make():
        if how == "layer":
            return LAYER_CLASSES[kind](units, **options, **layer_options)
        cell_class = CELL_CLASSES[kind]
        if how == "stepping":
            cell_class = type(
                "Stepped", (cell_class,), {"call": lambda self, *a, **k: CELL_CLASSES[kind].call(self, *a, **k)}
            )
        return L.RNN(cell_class(units, **options), **layer_options)

    layer = probe(make)
    if layer is None:
        return
    x = args["x"]
    batch, steps = (x.shape + (0, 0))[:2] if isinstance(x, np.ndarray) else (0, 0)
    mask = make_mask(args["mask"], batch, steps)
    states = make_states(args["initial_state"], batch, units, 2 if kind == "lstm" else 1)
    check = None
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype.kind in "biuf":
        check = shape_check(expected_shapes(kind, layer_options, batch, steps, units))
    probe(lambda: layer(relayout(x, args["layout"]), mask=mask, initial_state=states, training=args["training"]), check)


@FUZZ
@given(
    st.sampled_from(["concat", "sum", "mul", "ave", None, "bad", 3]),
    st.sampled_from(KINDS),
    st.booleans(),
    st.booleans(),
    call_arguments(),
)
def test_bidirectional(merge_mode, kind, return_sequences, return_state, args):
    inner = LAYER_CLASSES[kind](3, return_sequences=return_sequences, return_state=return_state)
    layer = probe(lambda: L.Bidirectional(inner, merge_mode=merge_mode))
    if layer is None:
        return
    x = args["x"]
    batch, steps = (x.shape + (0, 0))[:2]
    states = make_states(args["initial_state"], batch, 3, 2 * (2 if kind == "lstm" else 1))
    mask = make_mask(args["mask"], batch, steps)
    probe(lambda: layer(relayout(x, args["layout"]), mask=mask, initial_state=states, training=args["training"]))


@FUZZ
@given(
    call_arguments(),
    st.integers(-2, 4),
    st.sampled_from(["Dense", "TimeDistributed", "Embedding", "Masking", "stacked"]),
)
def test_other_layers(args, units, which):
    def make():
        if which == "Dense":
            return L.Dense(units)
        if which == "TimeDistributed":
            return L.TimeDistributed(L.Dense(units))
        if which == "Embedding":
            return L.Embedding(max(units, 0) + 3, 2, mask_zero=units % 2 == 0)
        if which == "Masking":
            return L.Masking(mask_value=0.0)
        return L.RNN([L.LSTMCell(max(units, 1)), L.GRUCell(2)], return_sequences=True)

    layer = probe(make)
    if layer is not None:
        probe(lambda: layer(relayout(args["x"], args["layout"])))


@FUZZ
@given(
    call_arguments(),
    call_arguments(),
    st.sampled_from([None, 0, 1, 3, -1]),
    st.sampled_from(["predict", "fit", "evaluate", "call"]),
)
def test_models(args, targets, batch_size, method):
    model = rk.Sequential([rk.Input((None, 3)), L.GRU(2, return_sequences=True), L.LSTM(2), L.Dense(1)])
    model.compile("adam", "mse")
    x = relayout(args["x"], args["layout"])
    y = targets["x"][..., :1] if isinstance(targets["x"], np.ndarray) and targets["x"].ndim else targets["x"]
    calls = {
        "predict": lambda: model.predict(x, batch_size=batch_size, verbose=0),
        "fit": lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0),
        "evaluate": lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0),
        "call": lambda: model(x),
    }
    probe(calls[method])


# --- the extension's functions ------------------------------------------------------------------


@st.composite
def core_arguments(draw):
    kind = draw(st.sampled_from(KINDS))
    units = draw(st.integers(1, 4))
    gates = {"simple_rnn": 1, "gru": 3, "lstm": 4}[kind]
    reset_after = draw(st.booleans())
    use_bias = draw(st.booleans())
    batch, steps, features = draw(sizes), draw(sizes), draw(st.integers(0, 4))
    dtype = draw(st.sampled_from(["float32", "float64", "float32", "int64", "float16", "bool", "object"]))
    how = draw(st.sampled_from(FILLS))

    def off(dim):  # a dimension that is right most of the time and off by one sometimes
        return dim + draw(st.sampled_from([0, 0, 0, 0, 1, -1])) if dim > 0 else dim + draw(st.sampled_from([0, 0, 1]))

    width = gates * units
    bias_shape = (2, width) if kind == "gru" and reset_after else (width,)
    weight_dtype = draw(st.sampled_from([dtype, dtype, dtype, "float32", "float64"]))
    weights = [
        fill((off(features), off(width)), how, weight_dtype),
        fill((off(units), off(width)), "normal", weight_dtype),
        fill(tuple(off(d) for d in bias_shape), "normal", weight_dtype) if use_bias or draw(st.booleans()) else None,
    ]
    weights = weights[: draw(st.sampled_from([3, 3, 3, 2, 1, 4]))] if draw(st.booleans()) else weights
    x_rank = draw(st.sampled_from([3, 3, 3, 2, 4]))
    x_shape = (batch, steps, features)[:x_rank] + ((1,) if x_rank == 4 else ())
    states = draw(st.sampled_from([None, "right", "wrong"]))
    count = 2 if kind == "lstm" else 1
    return {
        "spec": (
            kind,
            units,
            draw(st.sampled_from(list(_core.ACTIVATIONS) + ["nope"])),
            draw(st.sampled_from(["sigmoid", "hard_sigmoid", "relu"])),
            use_bias,
            reset_after,
        ),
        "weights": weights,
        "x": relayout(fill(x_shape, how, dtype), draw(st.sampled_from(["c", "fortran", "strided"]))),
        "mask": draw(st.sampled_from([None, (batch, steps), (batch, off(steps)), "float"])),
        "initial_states": None
        if states is None
        else [fill((off(batch) if states == "wrong" else batch, units), how, dtype) for _ in range(count)],
        "input_dropout": draw(st.sampled_from([None, (gates, batch, features), (1, batch, features)])),
        "recurrent_dropout": draw(st.sampled_from([None, (gates, batch, units), (gates, batch, units + 1)])),
        "go_backwards": draw(st.booleans()),
        "zero_output_for_mask": draw(st.booleans()),
        "d_outputs": draw(st.sampled_from(["sequence", "last", "both", "none", "wrong", "states"])),
        "dtype": dtype,
    }


def core_inputs(args):
    dtype = args["dtype"] if args["dtype"] in ("float32", "float64") else "float32"
    mask = args["mask"]
    if mask == "float":
        mask = np.ones(args["x"].shape[:2], "float32")
    elif mask is not None:
        mask = np.random.default_rng(0).random(mask) > 0.3
    drop = lambda shape: None if shape is None else np.full(shape, 1.25, dtype)  # noqa: E731
    return mask, drop(args["input_dropout"]), drop(args["recurrent_dropout"])


@FUZZ
@given(core_arguments())
def test_core_rnn_forward_and_backward(args):
    spec = probe(lambda: _core.CellSpec(*args["spec"]))
    if spec is None:
        return
    mask, input_dropout, recurrent_dropout = core_inputs(args)
    result = probe(
        lambda: _core.rnn_forward(
            spec,
            tuple(args["weights"]),
            args["x"],
            initial_states=args["initial_states"],
            mask=mask,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            go_backwards=args["go_backwards"],
            zero_output_for_mask=args["zero_output_for_mask"],
        )
    )
    if result is None:
        return
    outputs, states, saved = result
    batch, steps, _ = args["x"].shape
    assert outputs.shape == (batch, steps, spec.units)
    assert [s.shape for s in states] == [(batch, spec.units)] * spec.state_count
    grads = {
        "sequence": {"d_outputs": np.ones_like(outputs)},
        "last": {"d_last_output": np.ones((batch, spec.units), outputs.dtype)},
        "both": {"d_outputs": np.ones_like(outputs), "d_last_output": np.ones((batch, spec.units), outputs.dtype)},
        "none": {},
        "wrong": {"d_outputs": np.ones((batch + 1, steps, spec.units), outputs.dtype)},
        "states": {"d_final_states": [np.ones_like(s) for s in states] + [None]},
    }[args["d_outputs"]]

    def check(backward):
        dx, dk, drk, db, dstates = backward
        assert dx.shape == args["x"].shape
        assert dk.shape == args["weights"][0].shape and drk.shape == args["weights"][1].shape

    probe(lambda: _core.rnn_backward(saved, **grads), check)


@FUZZ
@given(core_arguments(), st.sampled_from(["concat", "sum", "mul", "ave", None, "nope"]), st.booleans(), st.booleans())
def test_core_bidirectional_forward_and_backward(args, merge_mode, return_sequences, wrong_pair):
    spec = probe(lambda: _core.CellSpec(*args["spec"]))
    if spec is None:
        return
    bw_spec = _core.CellSpec("lstm" if spec.kind != "lstm" else "gru", spec.units) if wrong_pair else spec
    mask, input_dropout, recurrent_dropout = core_inputs(args)
    weights = tuple(args["weights"])
    result = probe(
        lambda: _core.bidirectional_forward(
            spec,
            weights,
            bw_spec,
            weights,
            args["x"],
            merge_mode=merge_mode,
            return_sequences=return_sequences,
            mask=mask,
            fw_initial_states=args["initial_states"],
            bw_initial_states=args["initial_states"],
            fw_input_dropout=input_dropout,
            fw_recurrent_dropout=recurrent_dropout,
            bw_input_dropout=input_dropout,
            bw_recurrent_dropout=recurrent_dropout,
            zero_output_for_mask=args["zero_output_for_mask"],
            fw_go_backwards=args["go_backwards"],
        )
    )
    if result is None:
        return
    output, fw_states, bw_states, saved = result
    outputs = list(output) if isinstance(output, tuple) else [output]
    d_out = [np.ones_like(o) for o in outputs]
    if args["d_outputs"] == "wrong":
        d_out = [np.ones(o.shape + (1,), o.dtype) for o in outputs]
    elif args["d_outputs"] == "none":
        d_out = None
    probe(
        lambda: _core.bidirectional_backward(
            saved,
            d_outputs=d_out if d_out is None or len(d_out) > 1 else d_out[0],
            d_fw_states=[np.ones_like(s) for s in fw_states],
            d_bw_states=[None] * len(bw_states),
        )
    )


@FUZZ
@given(st.data())
def test_core_arguments_of_the_wrong_kind(data):
    spec = _core.CellSpec("gru", 2)
    good = (np.zeros((3, 6), "float32"), np.zeros((2, 6), "float32"), np.zeros((2, 6), "float32"))
    x = np.zeros((1, 2, 3), "float32")
    junk = data.draw(
        st.sampled_from(
            [
                None,
                1,
                0,
                -1,
                2**70,
                True,
                1.5,
                float("nan"),
                "x",
                b"x",
                [],
                [1, 2],
                (np.zeros(2),),
                {"a": 1},
                object(),
                np.float32(1),
                np.zeros(()),
                np.zeros((2, 3), "float32"),
                spec,
            ]
        )
    )
    slot = data.draw(
        st.sampled_from(
            [
                "spec",
                "weights",
                "weight",
                "x",
                "mask",
                "initial_states",
                "input_dropout",
                "saved",
                "d_outputs",
                "kind",
                "units",
            ]
        )
    )
    calls = {
        "spec": lambda: _core.rnn_forward(junk, good, x),
        "weights": lambda: _core.rnn_forward(spec, junk, x),
        "weight": lambda: _core.rnn_forward(spec, (good[0], junk, good[2]), x),
        "x": lambda: _core.rnn_forward(spec, good, junk),
        "mask": lambda: _core.rnn_forward(spec, good, x, mask=junk),
        "initial_states": lambda: _core.rnn_forward(spec, good, x, initial_states=junk),
        "input_dropout": lambda: _core.rnn_forward(spec, good, x, input_dropout=junk),
        "saved": lambda: _core.rnn_backward(junk),
        "d_outputs": lambda: _core.rnn_backward(_core.rnn_forward(spec, good, x)[2], d_outputs=junk),
        "kind": lambda: _core.CellSpec(junk, 2),
        "units": lambda: _core.CellSpec("lstm", junk),
    }
    probe(calls[slot])
