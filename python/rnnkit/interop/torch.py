"""PyTorch's `nn.LSTM`, `nn.GRU` and `nn.RNN` as rnnkit layers, and rnnkit layers as their state dicts.

PyTorch is never imported: a module is read through its attributes and `state_dict()` (duck
typing), and a plain dict of numpy arrays with PyTorch's key names (`weight_ih_l0`,
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse`) works the same way, the constructor's
facts (layers, directions, bias, projection) read from its keys.

The mappings, per layer and direction:

- LSTM: PyTorch's gates i, f, g, o are Keras's i, f, c, o (the same order); kernels are the
  transposed `weight_ih`/`weight_hh`; Keras has one bias, `bias_ih + bias_hh` (back to PyTorch
  as `bias_ih = bias`, `bias_hh = 0`). A `proj_size` LSTM is rnnkit's `LSTM(projection=...)`,
  its `projection_kernel` the transposed `weight_hr`.
- GRU: PyTorch's gates r, z, n become Keras's z, r, h; PyTorch's formulation is Keras's
  `reset_after=True`, whose `(2, 3·units)` bias holds `bias_ih` (row 0) and `bias_hh` (row 1).
  A `reset_after=False` GRU has no PyTorch equivalent.
- RNN: `nonlinearity` "tanh" or "relu" is the activation; one bias, `bias_ih + bias_hh`.

rnnkit's layers take batch-major input `(batch, time, features)`: the weights of a
`batch_first=False` module are the same, but its time-major input must be transposed
(`x.transpose(1, 0, 2)`) before it reaches the rnnkit layers.
"""

import re

import numpy as np

_GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
_TORCH_NAMES = {"lstm": "nn.LSTM", "gru": "nn.GRU", "simple_rnn": "nn.RNN"}
_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "simple_rnn", "RNN_RELU": "simple_rnn"}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _layer_classes():
    from rnnkit.layers.recurrent import GRU, LSTM, SimpleRNN

    return {"lstm": LSTM, "gru": GRU, "simple_rnn": SimpleRNN}


def _kind_of(kind):
    """`kind` as "lstm", "gru" or "simple_rnn", from that name or from the layer class."""
    if isinstance(kind, str) and kind in _GATES:
        return kind
    for name, cls in _layer_classes().items():
        if isinstance(kind, type) and issubclass(kind, cls):
            return name
    raise ValueError(
        f"Argument `kind` expected 'lstm', 'gru', 'simple_rnn' or one of their layer classes, received {kind!r}."
    )


def _to_numpy(value):
    """A numpy array from a numpy array or a torch tensor (duck-typed: detach, cpu, numpy)."""
    if hasattr(value, "detach"):
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
        try:
            return value.numpy()
        except TypeError:  # bfloat16 and other dtypes numpy lacks
            return value.float().numpy()
    return np.asarray(value)


def _is_module(source):
    return callable(getattr(source, "state_dict", None)) and hasattr(source, "hidden_size")


def _read_module(source, kind):
    """The state dict and constructor facts of a PyTorch RNN module."""
    mode = getattr(source, "mode", None)
    if mode not in _MODES:
        raise ValueError(
            f"Argument `module` expected a PyTorch nn.LSTM, nn.GRU or nn.RNN, received {type(source).__name__} "
            f"(mode={mode!r})."
        )
    if _MODES[mode] != kind:
        raise ValueError(
            f"Argument `module` expected a PyTorch {_TORCH_NAMES[kind]} for this layer, received "
            f"{type(source).__name__} (mode={mode!r}); use the matching layer's `from_torch`."
        )
    facts = {
        "num_layers": int(source.num_layers),
        "bidirectional": bool(source.bidirectional),
        "bias": bool(source.bias),
        "proj_size": int(getattr(source, "proj_size", 0) or 0),
        "batch_first": bool(source.batch_first),
    }
    if kind == "simple_rnn":
        facts["nonlinearity"] = "relu" if mode == "RNN_RELU" else "tanh"
    state = {k: _to_numpy(v) for k, v in source.state_dict().items()}
    return state, facts


def _read_state_dict(state, prefix):
    """The arrays under `prefix`, keyed by PyTorch's names, and the facts their keys imply."""
    if not hasattr(state, "items"):
        raise TypeError(
            "Argument `module` expected a PyTorch RNN module or a dict of arrays with PyTorch's key names "
            f"(weight_ih_l0, ...), received {type(state).__name__}."
        )
    arrays, unknown = {}, []
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if _KEY.match(name) is None:
            unknown.append(key)
        else:
            arrays[name] = _to_numpy(value)
    if unknown:
        raise ValueError(
            f"Argument `module`: the state dict has keys that a PyTorch RNN does not have: {sorted(unknown)}; "
            "expected weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> (and _reverse) after prefix "
            f"{prefix!r}."
        )
    layers = sorted({int(_KEY.match(k).group(2)) for k in arrays})
    if not layers or layers != list(range(len(layers))):
        raise ValueError(
            f"Argument `module`: expected weight_ih_l0 ... weight_ih_l<n-1> in the state dict (prefix {prefix!r}), "
            f"received the keys {sorted(arrays)}."
        )
    facts = {
        "num_layers": len(layers),
        "bidirectional": any(k.endswith("_reverse") for k in arrays),
        "bias": "bias_ih_l0" in arrays,
        "proj_size": int(arrays["weight_hr_l0"].shape[0]) if "weight_hr_l0" in arrays else 0,
    }
    return arrays, facts


def _check_fact(name, given, found, source):
    if given is not None and given != found:
        raise ValueError(f"Argument `{name}` is {given!r}, but the {source} says {name}={found!r}.")


def from_torch(
    module,
    kind=None,
    *,
    num_layers=None,
    bidirectional=None,
    bias=None,
    batch_first=None,
    nonlinearity=None,
    proj_size=None,
    prefix="",
    return_sequences=True,
    return_state=False,
    merge_mode="concat",
    **layer_kwargs,
):
    """The rnnkit layers that hold the weights of a PyTorch `nn.LSTM`, `nn.GRU` or `nn.RNN`.

    Args:
        module: The PyTorch module, or its state dict (a dict of numpy arrays or tensors with
            PyTorch's key names, e.g. `{k: v.numpy() for k, v in m.state_dict().items()}`).
        kind: "lstm", "gru", "simple_rnn", or the layer class (`rk.layers.LSTM`, ...); None
            takes it from the module's `mode` (a state dict needs it).
        num_layers: The module's `num_layers`; read from the state dict's keys when None.
        bidirectional: The module's `bidirectional`; read from the keys when None.
        bias: The module's `bias`; read from the keys when None.
        batch_first: The module's `batch_first`: either way the layers take `(batch, time,
            features)`, so transpose a time-major input first; only checked against the module.
        nonlinearity: For `nn.RNN`, "tanh" (default) or "relu"; read from the module when given one.
        proj_size: The LSTM's `proj_size` (rnnkit's `projection`); read from the keys when None.
        prefix: Key prefix of the RNN's entries in a larger state dict (e.g. "encoder.rnn.").
        return_sequences: The last layer's `return_sequences` (True matches the module's
            `output`; the layers before it always return sequences).
        return_state: The last layer's `return_state`.
        merge_mode: The `Bidirectional` merge mode of the last layer ("concat" matches PyTorch;
            the layers before it always concatenate, as PyTorch).
        **layer_kwargs: Other arguments of each layer (`dtype`, `name`, `stateful`, ...); a name
            gets `_l<k>` appended when there are several layers.

    Returns:
        One layer (`LSTM`, `GRU`, `SimpleRNN`, or `Bidirectional` around one) for a one-layer
        module, else a list of them, one per PyTorch layer, to stack in a `Sequential`. The
        layers are built (input size from the weights) and hold the module's weights.

    Raises:
        ValueError: For a module of another kind, facts that contradict the weights, a
            `proj_size` for a GRU or RNN, an unknown nonlinearity, or weights of the wrong shapes.
        TypeError: For a `module` that is neither a PyTorch RNN module nor a dict.
    """
    if kind is None and not _is_module(module):
        raise ValueError("Argument `kind` is needed with a state dict: expected 'lstm', 'gru' or 'simple_rnn'.")
    if kind is None:
        kind = _MODES.get(getattr(module, "mode", None))
        if kind is None:
            raise ValueError(
                f"Argument `module` expected a PyTorch nn.LSTM, nn.GRU or nn.RNN, received {type(module).__name__}."
            )
    kind = _kind_of(kind)
    if _is_module(module):
        state, module_facts = _read_module(module, kind)
        given = dict(
            num_layers=num_layers,
            bidirectional=bidirectional,
            bias=bias,
            proj_size=proj_size,
            batch_first=batch_first,
            nonlinearity=nonlinearity,
        )
        for name, value in module_facts.items():
            _check_fact(name, given[name], value, "module")
        nonlinearity = module_facts.get("nonlinearity", nonlinearity)
        arrays, found = _read_state_dict(state, "")
    else:
        arrays, found = _read_state_dict(module, prefix)
    for name, given in (("num_layers", num_layers), ("bidirectional", bidirectional), ("bias", bias)):
        _check_fact(name, given, found[name], "state dict")
    _check_fact("proj_size", proj_size, found["proj_size"], "state dict")
    if found["proj_size"] and kind != "lstm":
        raise ValueError(f"Argument `module`: proj_size applies to nn.LSTM only, received weight_hr for {kind}.")
    if batch_first is not None and not isinstance(batch_first, bool):
        raise TypeError(f"Argument `batch_first` expected a bool, received {batch_first!r}.")
    if kind == "simple_rnn":
        nonlinearity = "tanh" if nonlinearity is None else nonlinearity
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Argument `nonlinearity` expected 'tanh' or 'relu', received {nonlinearity!r}.")
    elif nonlinearity is not None:
        raise ValueError(f"Argument `nonlinearity` applies to nn.RNN only, received {nonlinearity!r} for {kind}.")

    cls = _layer_classes()[kind]
    gates = _GATES[kind]
    directions = ("", "_reverse") if found["bidirectional"] else ("",)
    name = layer_kwargs.pop("name", None)
    layers = []
    for k in range(found["num_layers"]):
        last = k == found["num_layers"] - 1
        weights = []
        for suffix in directions:
            weights.extend(_keras_weights(kind, arrays, f"l{k}{suffix}", gates, found["bias"], found["proj_size"]))
        units = weights[0].shape[1] // gates
        options = dict(layer_kwargs, use_bias=found["bias"], return_sequences=return_sequences or not last)
        if found["proj_size"]:
            options["projection"] = found["proj_size"]
        if last:
            options["return_state"] = return_state
        if name is not None:
            options["name"] = name if found["num_layers"] == 1 else f"{name}_l{k}"
        if kind == "simple_rnn":
            options["activation"] = nonlinearity
        if kind == "gru":
            options["reset_after"] = True
        layer = cls(units, **options)
        if found["bidirectional"]:
            from rnnkit.layers.wrappers import Bidirectional

            layer = Bidirectional(layer, merge_mode=merge_mode if last else "concat")
        layer.build((None, None, weights[0].shape[0]))
        layer.set_weights([w.astype(layer.dtype) for w in weights])
        layers.append(layer)
    return layers[0] if len(layers) == 1 else layers


def _get(arrays, key, shape):
    if key not in arrays:
        raise ValueError(f"Argument `module`: the state dict lacks {key!r}; it has {sorted(arrays)}.")
    value = np.asarray(arrays[key])
    if any(expected is not None and got != expected for got, expected in zip(value.shape, shape)) or (
        value.ndim != len(shape)
    ):
        raise ValueError(
            f"Argument `module`: {key!r} expected shape {tuple('?' if d is None else d for d in shape)}, "
            f"received {value.shape}."
        )
    return value


def _blocks(array, order, axis=0):
    """The gate blocks of `array` along `axis`, rearranged: `order[i]` is the source block of block i."""
    parts = np.split(array, len(order), axis=axis)
    return np.concatenate([parts[i] for i in order], axis=axis)


# Keras's gate i is PyTorch's gate _FROM_TORCH[kind][i] (and the reverse map is the same permutation:
# the GRU's swap is its own inverse).
_FROM_TORCH = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "simple_rnn": (0,)}


def _keras_weights(kind, arrays, tag, gates, use_bias, proj_size=0):
    """[kernel, recurrent_kernel, (bias), (projection_kernel)] in Keras's layout from one
    PyTorch layer direction."""
    w_hh = _get(arrays, f"weight_hh_{tag}", (None, None))
    units = w_hh.shape[0] // gates if proj_size else w_hh.shape[1]
    w_ih = _get(arrays, f"weight_ih_{tag}", (None, None))
    if w_ih.shape[0] != gates * units or units == 0:
        raise ValueError(
            f"Argument `module`: 'weight_ih_{tag}' expected {gates}·hidden_size = {gates * units} rows for "
            f"{_TORCH_NAMES[kind]} (hidden_size {units}, from 'weight_hh_{tag}'), received shape {w_ih.shape}."
        )
    w_hh = _get(arrays, f"weight_hh_{tag}", (gates * units, proj_size or units))
    order = _FROM_TORCH[kind]
    weights = [_blocks(w_ih, order).T, _blocks(w_hh, order).T]
    if use_bias:
        b_ih = _blocks(_get(arrays, f"bias_ih_{tag}", (gates * units,)), order)
        b_hh = _blocks(_get(arrays, f"bias_hh_{tag}", (gates * units,)), order)
        # float64 for the sum, so that the only rounding is the cast to the layer's dtype.
        weights.append(np.stack([b_ih, b_hh]) if kind == "gru" else b_ih.astype(np.float64) + b_hh)
    if proj_size:
        weights.append(_get(arrays, f"weight_hr_{tag}", (proj_size, units)).T)
    return [np.ascontiguousarray(w) for w in weights]


def _recurrent_layer(layer, where):
    """The kind of a built-in recurrent layer that maps to PyTorch, after checking what cannot map."""
    from rnnkit.layers.rnn import RNN

    cells = layer._cells if isinstance(layer, RNN) else []
    if len(cells) != 1 or getattr(cells[0], "kind", None) not in _GATES:
        raise ValueError(
            f"{where}: expected an LSTM, GRU or SimpleRNN layer (or a Bidirectional around one), "
            f"received {type(layer).__name__} {layer.name!r}."
        )
    cell = cells[0]
    if not cell.built:
        raise ValueError(f"{where}: layer {layer.name!r} is not built yet; call it or build it first.")
    if getattr(cell, "peephole", False):
        raise ValueError(f"{where}: layer {layer.name!r} has peephole=True; PyTorch's nn.LSTM has no peepholes.")
    if cell.zoneout:
        raise ValueError(
            f"{where}: layer {layer.name!r} has zoneout={cell.zoneout}; PyTorch's recurrent modules have no zoneout."
        )
    if getattr(cell, "layer_norm", False):
        raise ValueError(
            f"{where}: layer {layer.name!r} has layer_norm=True; PyTorch's recurrent modules have no "
            "layer normalisation."
        )
    from rnnkit import activations

    act = activations.serialize(cell.activation)
    if cell.kind == "simple_rnn":
        if act not in ("tanh", "relu"):
            raise ValueError(
                f"{where}: layer {layer.name!r} has activation {act!r}; PyTorch's nn.RNN expects 'tanh' or 'relu'."
            )
    else:
        rec = activations.serialize(cell.recurrent_activation)
        if act != "tanh" or rec != "sigmoid":
            raise ValueError(
                f"{where}: layer {layer.name!r} has activation={act!r}, recurrent_activation={rec!r}; PyTorch's "
                f"{_TORCH_NAMES[cell.kind]} expects 'tanh' and 'sigmoid'."
            )
    if cell.kind == "gru" and not cell.reset_after:
        raise ValueError(
            f"{where}: layer {layer.name!r} is a GRU with reset_after=False, which PyTorch's nn.GRU cannot "
            "compute (its reset gate applies after the recurrent product); expected reset_after=True."
        )
    return cell.kind


def _torch_weights(cell, tag):
    kind = cell.kind
    order = _FROM_TORCH[kind]
    out = {
        f"weight_ih_{tag}": _blocks(np.asarray(cell.kernel), order, axis=1).T,
        f"weight_hh_{tag}": _blocks(np.asarray(cell.recurrent_kernel), order, axis=1).T,
    }
    if cell.use_bias:
        bias = np.asarray(cell.bias)
        if kind == "gru":
            out[f"bias_ih_{tag}"], out[f"bias_hh_{tag}"] = _blocks(bias[0], order), _blocks(bias[1], order)
        else:
            out[f"bias_ih_{tag}"], out[f"bias_hh_{tag}"] = bias.copy(), np.zeros_like(bias)
    if getattr(cell, "projection", None):
        out[f"weight_hr_{tag}"] = np.asarray(cell.projection_kernel).T
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def _directions(layer, where):
    """The per-direction RNN layers of `layer` (one, or forward and backward of a Bidirectional)."""
    from rnnkit.layers.wrappers import Bidirectional

    if isinstance(layer, Bidirectional):
        fw, bw = layer.forward_layer, layer.backward_layer
        if fw.go_backwards or not bw.go_backwards:
            raise ValueError(
                f"{where}: Bidirectional {layer.name!r} expected a forward layer with go_backwards=False and a "
                "backward layer with go_backwards=True, as PyTorch's bidirectional layers."
            )
        return [fw, bw]
    if getattr(layer, "go_backwards", False):
        raise ValueError(
            f"{where}: layer {layer.name!r} has go_backwards=True, which a PyTorch RNN has no equivalent for "
            "(only bidirectional=True runs backwards)."
        )
    return [layer]


def to_torch_state_dict(layers):
    """The PyTorch state dict of an rnnkit recurrent layer, or of a list of stacked ones.

    Args:
        layers: An `LSTM`, `GRU` or `SimpleRNN` layer (built), a `Bidirectional` around one, or a
            list of them of one kind, stacked as PyTorch's `num_layers` (each layer's input
            being the previous one's output).

    Returns:
        A dict of numpy arrays keyed by PyTorch's names (`weight_ih_l0`, `bias_hh_l1_reverse`,
        ...), for `module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})`
        on a module made with `torch_config(layers)`'s arguments.

    Raises:
        ValueError: For what PyTorch cannot compute: a GRU with `reset_after=False`, other
            activations than PyTorch's, `go_backwards` outside a Bidirectional, mixed kinds or
            directions, a merge other than "concat" before the last layer, or unbuilt layers.
    """
    stack = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    if not stack:
        raise ValueError("Argument `layers` expected a recurrent layer or a non-empty list of them, received [].")
    torch_config(stack)  # checks that the stack is one PyTorch module
    state = {}
    for k, layer in enumerate(stack):
        for d, half in enumerate(_directions(layer, f"Argument `layers` (layer {k})")):
            state.update(_torch_weights(half._cells[0], f"l{k}" + ("_reverse" if d else "")))
    return state


def torch_config(layers):
    """The constructor arguments of the PyTorch module that `to_torch_state_dict(layers)` fits.

    Args:
        layers: As for `to_torch_state_dict`.

    Returns:
        A dict with "module" ("LSTM", "GRU" or "RNN", the `torch.nn` class name) and the keyword
        arguments `input_size`, `hidden_size`, `num_layers`, `bias`, `batch_first` (True: rnnkit's
        layout), `bidirectional`, for a projected LSTM `proj_size`, and for RNN `nonlinearity`.

    Raises:
        ValueError: As `to_torch_state_dict`.
    """
    from rnnkit import activations
    from rnnkit.layers.wrappers import Bidirectional

    stack = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    if not stack:
        raise ValueError("Argument `layers` expected a recurrent layer or a non-empty list of them, received [].")
    first = None
    for k, layer in enumerate(stack):
        where = f"Argument `layers` (layer {k})"
        halves = _directions(layer, where)
        kinds = {_recurrent_layer(h, where) for h in halves}
        cells = [h._cells[0] for h in halves]
        facts = (
            kinds.pop() if len(kinds) == 1 else None,
            len(halves) == 2,
            {c.units for c in cells},
            {bool(c.use_bias) for c in cells},
            {activations.serialize(c.activation) for c in cells},
            {getattr(c, "projection", None) or 0 for c in cells},
        )
        if facts[0] is None or any(len(s) != 1 for s in facts[2:]):
            raise ValueError(f"{where}: the forward and backward layers of {layer.name!r} differ in kind or options.")
        if isinstance(layer, Bidirectional) and layer.merge_mode != "concat" and k < len(stack) - 1:
            raise ValueError(
                f"{where}: Bidirectional {layer.name!r} merges with {layer.merge_mode!r}; PyTorch concatenates "
                "the directions between layers (expected merge_mode='concat')."
            )
        if first is None:
            first = facts
            input_size = cells[0].kernel.shape[0]
        elif facts != first:
            raise ValueError(
                f"{where}: expected layers of one kind, units, bias, direction and activation, as PyTorch's "
                f"num_layers stacks; layer 0 has {first}, layer {k} has {facts}."
            )
        expected_in = input_size if k == 0 else cells[0].output_size * (2 if first[1] else 1)
        if cells[0].kernel.shape[0] != expected_in:
            raise ValueError(
                f"{where}: expected input size {expected_in} (the previous layer's output), received "
                f"{cells[0].kernel.shape[0]}."
            )
    kind, bidirectional, (units,), (use_bias,), (act,), (proj_size,) = first
    config = {
        "module": {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}[kind],
        "input_size": int(input_size),
        "hidden_size": int(units),
        "num_layers": len(stack),
        "bias": use_bias,
        "batch_first": True,
        "bidirectional": bidirectional,
    }
    if proj_size:
        config["proj_size"] = proj_size
    if kind == "simple_rnn":
        config["nonlinearity"] = act
    return config
