"""int8 quantization for inference, in Keras 3's spelling: `model.quantize("int8")` or
`layer.quantize("int8")`.

Keras's scheme, abs-max and symmetric: a weight matrix is quantized per output column (an
Embedding's table per row), `q = clip(round(w · s), -127, 127)` in int8 with the float32 scale
`s = 127 / (max |w| + 1e-7)`; a product's input is quantized the same way per row at each call;
the int32 sums are divided by the product of the two scales.

`Dense` and `Embedding` keep Keras's variables (`kernel` int8 and `kernel_scale`;
`embeddings` int8 and `embeddings_scale`) and its numbers. Beyond Keras, the recurrent layers
(`SimpleRNN`, `GRU`, `LSTM`, in `RNN` or `Bidirectional`) quantize their `kernel` and
`recurrent_kernel` the same way (`kernel_scale`, `recurrent_kernel_scale`), and the fused
kernels quantize the input of every step and the hidden state `h` at every step per row: the
recurrent kernel streamed at each step is a quarter of its float32 bytes. Quantized recurrent
layers run inference only; `rk.quantizers.int8_products()` says which kernel computes here.
Saving a quantized model is not supported yet (quantize after loading).
"""

import re
import warnings

import numpy as np

from rnnkit import _core

QUANTIZATION_MODES = ("int8", "float8", "int4", "gptq", "awq")
"""Keras 3's quantization modes; rnnkit runs "int8"."""

EPSILON = 1e-7
"""Added to each abs-max, as Keras's `epsilon()`, so that zeros get a finite scale."""


def abs_max_quantize(inputs, axis, value_range=(-127, 127), dtype="int8", epsilon=EPSILON):
    """Quantizes `inputs` with one abs-max scale per slice along `axis`, as Keras's
    `keras.quantizers.abs_max_quantize(..., to_numpy=True)`.

    Args:
        inputs: A float array-like.
        axis: The axis (or axes) each scale is taken over.
        value_range: The `(min, max)` of the quantized values.
        dtype: The quantized values' dtype.
        epsilon: Added to each abs-max.

    Returns:
        `(values, scale)`: the quantized values and the scales (the input's float dtype, with
        `axis` kept as size 1), so that `values / scale` approximates `inputs`.
    """
    x = np.asarray(inputs)
    scale = np.divide(value_range[1], np.add(np.max(np.abs(x), axis=axis, keepdims=True), x.dtype.type(epsilon)))
    values = np.clip(np.round(x * scale), value_range[0], value_range[1]).astype(dtype)
    return values, scale.astype(x.dtype)


def int8_products():
    """Which kernel computes the recurrent layers' int8 products on this CPU: "avx512_vnni",
    "avx2" or "portable" (the same numbers on each)."""
    return _core.int8_products()


def _check_mode(mode, config):
    if mode not in QUANTIZATION_MODES:
        raise ValueError(f"Invalid quantization mode. Expected one of {QUANTIZATION_MODES}. Received: mode={mode}")
    if mode != "int8":
        raise NotImplementedError(
            f"Quantization mode '{mode}' is not supported by rnnkit: only 'int8' is (Keras's "
            f"{QUANTIZATION_MODES[1:]} are not implemented)."
        )
    if config is not None:
        raise NotImplementedError(
            f"quantize: a `config` is not supported by rnnkit (only the default int8 quantizers), received {config!r}."
        )


def check_quantize_args(layer, mode, config=None):
    """Raises Keras's errors for a `quantize(mode)` call that cannot run, and rnnkit's for the
    Keras modes and options it does not run.

    Raises:
        ValueError: If the layer is not built or already quantized, or `mode` is not a Keras
            quantization mode.
        NotImplementedError: For "float8", "int4", "gptq" and "awq", and for a `config`
            (Keras's `QuantizationConfig`: rnnkit has only the default quantizers).
    """
    if not layer.built:
        raise ValueError(
            "Cannot quantize a layer that isn't yet built. "
            f"Layer '{layer.name}' (of type '{type(layer).__name__}') is not built yet."
        )
    if layer.quantization_mode is not None:
        raise ValueError(
            f"Layer '{layer.name}' is already quantized with quantization_mode='{layer.quantization_mode}'. "
            f"Received: mode={mode}"
        )
    _check_mode(mode, config)


def _matches(layer, filters):
    """Keras's `filters`: None, a regex searched in the layer's name, a list of them (any), or a
    callable of the layer."""
    if filters is None:
        return True
    if isinstance(filters, str):
        return re.search(filters, layer.name) is not None
    if isinstance(filters, (list, tuple)):
        return any(re.search(f, layer.name) is not None for f in filters)
    return bool(filters(layer))


def _quantizable(layer):
    """The layers under `layer` that define `quantize` (not looking inside them), and those with
    weights that do not, in tracking order."""
    from rnnkit.layers.layer import Layer

    children = layer.layers if hasattr(layer, "layers") else layer._layers
    for child in children:
        if type(child).quantize is not Layer.quantize:
            yield child
        elif child._layers or hasattr(child, "layers"):
            yield from _quantizable(child)
        elif child.weights:
            yield child


def quantize_model(model, mode, config=None, filters=None, type_check=True):
    """`Model.quantize`: quantizes each quantizable layer of `model` that `filters` selects; a
    layer with weights that cannot be quantized gets a warning, as in Keras.

    Raises:
        ValueError: For an unknown mode, a `filters` of another type, or a layer not built or
            already quantized.
        NotImplementedError: For Keras's other modes or a `config`.
    """
    if filters is not None and not isinstance(filters, (str, list, tuple)) and not callable(filters):
        raise ValueError(
            "The `filters` argument must be a regex string, a list of regex strings, or a callable. "
            f"Received: {type(filters)}"
        )
    _check_mode(mode, config)
    for layer in _quantizable(model):
        if not _matches(layer, filters):
            continue
        try:
            layer.quantize(mode, type_check=type_check, config=config)
        except NotImplementedError as e:
            warnings.warn(str(e), stacklevel=3)
    model._plan = None  # the trainable weights changed


def check_not_quantized(model, what):
    """Refuses to write a model holding quantized layers (their files are not supported yet).

    Raises:
        NotImplementedError: Naming the first quantized layer.
    """
    pending = [model]
    while pending:
        layer = pending.pop()
        if layer.quantization_mode is not None:
            raise NotImplementedError(
                f"{what}: layer '{layer.name}' is quantized ({layer.quantization_mode}), and rnnkit does not "
                "save quantized models yet. Save the float model, and call quantize('int8') after loading it."
            )
        pending.extend(layer.layers if hasattr(layer, "layers") else layer._layers)


def quantize_weight(layer, name, axis):
    """Replaces the float weight `layer.<name>` with its int8 values (non-trainable, same name)
    and adds `<name>_scale`, the scales over `axis` (squeezed), as Keras's int8 layers hold them.

    Returns:
        The new `(values, scale)` Variables.
    """
    weight = getattr(layer, name)
    values, scale = abs_max_quantize(np.asarray(weight), axis=axis)
    scale = np.squeeze(scale, axis=axis)
    layer.remove_weight(weight)
    q = layer.add_weight(shape=values.shape, initializer="zeros", dtype="int8", trainable=False, name=name)
    q.assign(values)
    s = layer.add_weight(
        shape=scale.shape, initializer="ones", dtype=scale.dtype, trainable=False, name=f"{name}_scale"
    )
    s.assign(scale)
    setattr(layer, name, q)
    setattr(layer, f"{name}_scale", s)
    return q, s


def dequantized(values, scale, axis):
    """`values / scale` in the scale's dtype, the scale expanded over `axis`: what a quantized
    weight stands for."""
    return np.asarray(values).astype(np.asarray(scale).dtype) / np.expand_dims(np.asarray(scale), axis)


def quantize_inputs(x):
    """Quantizes the rows of `x` (its last axis) as Keras's int8 layers do with their inputs.

    Returns:
        `(values, scale)`: int8 values and `(..., 1)` scales in `x`'s dtype.
    """
    return abs_max_quantize(x, axis=-1)
