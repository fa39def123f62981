"""rnnkit: Keras-style recurrent neural networks with a fused Rust core."""

from rnnkit import ops, tree
from rnnkit.tape import GradientTape
from rnnkit.tensor import Tensor, Variable

__version__ = "0.1.0"

__all__ = ["GradientTape", "Tensor", "Variable", "ops", "tree"]
