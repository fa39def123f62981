"""The layers other than recurrent ones as ONNX operators (dense, normalisation, masking,
embedding, reshaping, merging and identity layers), and `_convert_node`, which converts one layer
call of any supported kind.
"""

import numpy as np

from rnnkit.export.onnx_activations import _apply_activation
from rnnkit.export.onnx_graph import _Unsupported
from rnnkit.export.onnx_recurrent import _bidirectional, _rnn_layer

# Layers that compute nothing at inference.
_IDENTITY_LAYERS = {
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
}


def _dense(g, layer, x):
    y = g.op("MatMul", [x, g.weight(layer, "kernel", np.asarray(layer.kernel, np.float32))])
    if layer.use_bias:
        y = g.op("Add", [y, g.weight(layer, "bias", np.asarray(layer.bias, np.float32))])
    return _apply_activation(g, layer.activation, y, f"{layer.name}/output")


def _batch_normalization(g, layer, x, ndim):
    if getattr(layer, "renorm", False):
        raise _Unsupported("renorm=True")
    variance = np.asarray(layer.moving_variance, np.float64)
    scale = 1.0 / np.sqrt(variance + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * np.asarray(layer.gamma, np.float64)
    shift = -np.asarray(layer.moving_mean, np.float64) * scale
    if layer.beta is not None:
        shift = shift + np.asarray(layer.beta, np.float64)
    shape = [1] * ndim
    shape[layer.axis % ndim] = -1
    scale = g.weight(layer, "scale", scale.reshape(shape).astype(np.float32))
    shift = g.weight(layer, "shift", shift.reshape(shape).astype(np.float32))
    return g.op("Add", [g.op("Mul", [x, scale]), shift], hint=f"{layer.name}/output")


def _layer_normalization(g, layer, x, ndim, opset):
    axes = sorted(a % ndim for a in layer.axis)
    if axes != list(range(axes[0], ndim)):
        raise _Unsupported(f"axis={layer.axis}: ONNX normalises trailing axes only")
    if opset < 17:
        raise _Unsupported("LayerNormalization needs opset 17 or later")
    shape = tuple(np.shape(layer.gamma if layer.gamma is not None else layer.beta)) if layer.built else None
    if shape is None or not shape:
        raise _Unsupported("the layer is not built")
    gamma = np.ones(shape, np.float32) if layer.gamma is None else np.asarray(layer.gamma, np.float32)
    beta = np.zeros(shape, np.float32) if layer.beta is None else np.asarray(layer.beta, np.float32)
    return g.op(
        "LayerNormalization",
        [x, g.weight(layer, "gamma", gamma), g.weight(layer, "beta", beta)],
        hint=f"{layer.name}/output",
        axis=axes[0],
        epsilon=float(layer.epsilon),
    )


def _masking(g, layer, x):
    value = g.const(np.float32(layer.mask_value))
    differs = g.op("Cast", [g.op("Not", [g.op("Equal", [x, value])])], to=1)
    # ReduceMax takes its axes as an input from opset 18, as an attribute before.
    if g.opset >= 18:
        any_differs = g.op("ReduceMax", [differs, g.ints([-1])], keepdims=0)
    else:
        any_differs = g.op("ReduceMax", [differs], axes=[-1], keepdims=0)
    keep = g.op("Cast", [any_differs], hint=f"{layer.name}/mask", to=9)
    output = g.op("Mul", [x, g.op("Unsqueeze", [g.op("Cast", [keep], to=1), g.ints([-1])])], hint=layer.name)
    return output, keep


def _embedding(g, layer, x):
    indices = g.op("Cast", [x], to=7)
    output = g.op("Gather", [g.weight(layer, "embeddings", np.asarray(layer.embeddings, np.float32)), indices])
    mask = None
    if layer.mask_zero:
        mask = g.op("Not", [g.op("Equal", [indices, g.const(np.int64(0))])], hint=f"{layer.name}/mask")
    return output, mask


def _last_axis_layer(g, layer, x, ndim, opset):
    """Layers that act on each sample's last axis (so also inside TimeDistributed)."""
    kind = type(layer).__name__
    if kind == "Dense":
        return _dense(g, layer, x)
    if kind == "Activation":
        return _apply_activation(g, layer.activation, x, f"{layer.name}/output")
    if kind in _IDENTITY_LAYERS:
        return g.op("Identity", [x], hint=layer.name)
    if kind == "BatchNormalization":
        return _batch_normalization(g, layer, x, ndim)
    if kind == "LayerNormalization":
        return _layer_normalization(g, layer, x, ndim, opset)
    return None


def _merge_masks(g, masks):
    present = [m for m in masks if m is not None]
    if not present:
        return None
    mask = present[0]
    for other in present[1:]:
        mask = g.op("And", [mask, other])
    return mask


def _convert_node(g, layer, args, kwargs, in_shapes, opset):
    """One layer call: `args` are (name, mask) pairs of its flattened first argument; returns the
    (name, mask) pairs of its flattened outputs."""
    from rnnkit.layers.rnn import RNN
    from rnnkit.layers.wrappers import Bidirectional

    kind = type(layer).__name__
    x, mask = args[0]
    ndim = len(in_shapes[0])
    if kwargs.get("mask") is not None:
        mask = kwargs["mask"]
    initial = kwargs.get("initial_state")
    if initial is not None and not isinstance(layer, (RNN, Bidirectional)):
        raise _Unsupported("initial_state")
    if isinstance(layer, (RNN, Bidirectional)):
        if len(args) != 1:
            raise _Unsupported("several input tensors")
        if ndim != 3:
            raise _Unsupported(f"inputs of rank {ndim}")
        return (_bidirectional if isinstance(layer, Bidirectional) else _rnn_layer)(g, layer, x, mask, initial)
    if kind in ("Add", "Concatenate"):
        names = [a[0] for a in args]
        if kind == "Add":
            output = names[0]
            for other in names[1:]:
                output = g.op("Add", [output, other], hint=layer.name)
        else:
            output = g.op("Concat", names, hint=layer.name, axis=int(layer.axis) % ndim)
        return [(output, _merge_masks(g, [a[1] for a in args]))]
    if len(args) != 1:
        raise _Unsupported("several input tensors")
    out = _last_axis_layer(g, layer, x, ndim, opset)
    if out is not None:
        return [(out, mask)]
    if kind == "Masking":
        return [_masking(g, layer, x)]
    if kind == "Embedding":
        return [_embedding(g, layer, x)]
    if kind == "RepeatVector":
        expanded = g.op("Unsqueeze", [x, g.ints([1])])
        return [(g.op("Tile", [expanded, g.ints([1, layer.n, 1], "repeats")], hint=layer.name), None)]
    if kind == "Flatten":
        return [(g.op("Flatten", [x], hint=layer.name, axis=1), None)]
    if kind == "Reshape":
        shape = g.ints([0, *[int(d) for d in layer.target_shape]], "shape")
        return [(g.op("Reshape", [x, shape], hint=layer.name), None)]
    if kind == "TimeDistributed":
        out = _last_axis_layer(g, layer.layer, x, ndim, opset)
        if out is None:
            raise _Unsupported(
                f"TimeDistributed over {type(layer.layer).__name__} (Dense, Activation, normalisation and "
                "dropout layers export)"
            )
        return [(out, mask)]
    if kind == "InputLayer":
        return [(x, mask)]
    raise _Unsupported("no ONNX conversion for this layer type")
