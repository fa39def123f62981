"""rnnkit: Keras-style recurrent neural networks with a fused Rust core.

Use it as Keras: `import rnnkit as keras`, then `keras.layers.LSTM(64)`, `keras.Sequential`,
`keras.Model`, `keras.Input`, `keras.ops`, `keras.GradientTape`.
"""

from rnnkit import (
    activations,
    backend,
    callbacks,
    config,
    constraints,
    datasets,
    distribution,
    dtype_policies,
    export,
    initializers,
    interop,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    ops,
    optimizers,
    preprocessing,
    quantizers,
    random,
    regularizers,
    saving,
    tree,
    utils,
)
from rnnkit.config import device
from rnnkit.dtype_policies import DTypePolicy
from rnnkit.layers import Input
from rnnkit.models import Model, Sequential
from rnnkit.tape import GradientTape
from rnnkit.tensor import Tensor, Variable

__version__ = "0.1.0"

__all__ = [
    "DTypePolicy",
    "GradientTape",
    "Input",
    "Model",
    "Sequential",
    "Tensor",
    "Variable",
    "activations",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "device",
    "datasets",
    "distribution",
    "dtype_policies",
    "export",
    "initializers",
    "interop",
    "layers",
    "losses",
    "metrics",
    "mixed_precision",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "quantizers",
    "random",
    "regularizers",
    "saving",
    "tree",
    "utils",
]
