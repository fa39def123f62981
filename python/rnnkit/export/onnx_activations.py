"""Keras activations as ONNX: the recurrent operators' activation attributes, and the operators
that apply an activation after a layer.
"""

import numpy as np

from rnnkit import activations
from rnnkit.export.onnx_graph import _Unsupported

# Activations of the recurrent operators (ONNX's names, with alpha and beta where they take them).
_RNN_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
}


def _activation_name(fn):
    name = activations.serialize(fn)
    return name if isinstance(name, str) else None


def _rnn_activation_attributes(functions):
    """`activations`, `activation_alpha`, `activation_beta` for a recurrent operator."""
    names, alphas, betas = [], [], []
    for fn in functions:
        name = _activation_name(fn)
        if name not in _RNN_ACTIVATIONS:
            raise _Unsupported(
                f"activation {name or fn!r} has no ONNX recurrent equivalent (expected one of "
                f"{sorted(_RNN_ACTIVATIONS)})"
            )
        onnx_name, alpha, beta = _RNN_ACTIVATIONS[name]
        names.append(onnx_name)
        if alpha is not None:
            alphas.append(alpha)
        if beta is not None:
            betas.append(beta)
    attributes = {"activations": names}
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    return attributes


def _apply_activation(g, fn, x, hint):
    """`fn(x)` as ONNX operators (the identity for linear)."""
    name = _activation_name(fn)
    simple = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "softplus": "Softplus",
        "softsign": "Softsign",
        "exponential": "Exp",
    }
    if name == "linear":
        return x
    if name in simple:
        return g.op(simple[name], [x], hint=hint)
    if name in ("softmax", "log_softmax"):
        return g.op("Softmax" if name == "softmax" else "LogSoftmax", [x], hint=hint, axis=-1)
    if name == "elu":
        return g.op("Elu", [x], hint=hint, alpha=1.0)
    if name == "selu":
        return g.op("Selu", [x], hint=hint, alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], hint=hint, alpha=0.2)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], hint=hint, alpha=1.0 / 6.0, beta=0.5)
    if name == "relu6":
        return g.op("Clip", [x, g.const(np.float32(0)), g.const(np.float32(6))], hint=hint)
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x])], hint=hint)
    if name == "gelu":
        erf = g.op("Erf", [g.op("Div", [x, g.const(np.float32(np.sqrt(2.0)))])])
        half = g.op("Mul", [x, g.const(np.float32(0.5))])
        return g.op("Mul", [half, g.op("Add", [erf, g.const(np.float32(1))])], hint=hint)
    raise _Unsupported(f"activation {name or fn!r} has no ONNX conversion here")
