"""Weights in and out of other frameworks: `rnnkit.interop.torch` maps PyTorch's recurrent modules.

Nothing here imports another framework: PyTorch modules are read through their `state_dict()`
(duck-typed), and plain dicts of numpy arrays with PyTorch's key names work the same way.
"""

from rnnkit.interop import torch

__all__ = ["torch"]
