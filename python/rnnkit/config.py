"""Device placement: `rk.device("cpu" | "cuda" | "auto")`, `list_devices()`, and where a call runs;
and the global dtype policy (`set_dtype_policy`, `dtype_policy`, `bfloat16_products`: see
`rnnkit.dtype_policies`).

"auto", the default, computes on the GPU when this build has GPU support, a GPU is present and
CUDA's libraries load, else on the CPU; "cuda" insists on the GPU and says why when there is none.
The environment variable RNNKIT_DEVICE ("cpu", "cuda", "auto") sets the default outside any
`device(...)` block. The GPU computes float32 (TF32 off); float64 always runs on the CPU.
Weights are plain arrays either way, so a model trained on one device runs on the other.
"""

import contextlib
import os
import threading

import numpy as np

from rnnkit import _core, _cuda_libraries
from rnnkit.dtype_policies import bfloat16_products, dtype_policy, set_dtype_policy  # noqa: F401

_state = threading.local()
_KINDS = ("auto", "cpu", "cuda")
# The dtypes the Rust kernels compute in (others take the numpy paths).
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_status = []


def cuda_status():
    """`(available, description)`: whether the GPU can be used, with its name or why not."""
    if not _status:
        _cuda_libraries.preload()
        _status.append(_core.cuda_status())
    return _status[0]


def list_devices():
    """The devices rnnkit can compute on: `["CPU:0"]`, plus `"GPU:0"` when a GPU is usable."""
    return ["CPU:0"] + (["GPU:0"] if cuda_status()[0] else [])


def current_device():
    """The device requested by the innermost `device(...)` block; outside any, RNNKIT_DEVICE's
    or "auto"."""
    return getattr(_state, "device", None) or device_kind(os.environ.get("RNNKIT_DEVICE", "auto"))


def device_kind(name):
    """`name` ("cpu", "cuda", "auto", "CPU:0", "GPU:0", ...) as one of "cpu", "cuda", "auto".

    Raises:
        ValueError: For an unknown device name.
    """
    kind = str(name).lower().split(":")[0].replace("gpu", "cuda")
    if kind not in _KINDS:
        raise ValueError(f"device: expected one of 'cpu', 'cuda', 'auto' (or 'CPU:0', 'GPU:0'), received {name!r}")
    return kind


@contextlib.contextmanager
def device(name):
    """Runs the block's layer calls on `name`: "cpu", "cuda" or "auto" (also "CPU:0", "GPU:0").

    Raises:
        ValueError: For an unknown device name.
        RuntimeError: For "cuda" when no GPU can be used (the message says why).
    """
    kind = device_kind(name)
    if kind == "cuda":
        available, why = cuda_status()
        if not available:
            raise RuntimeError(f"device('cuda'): no GPU can be used: {why}. Use 'cpu' or 'auto'.")
    saved = getattr(_state, "device", None)  # None outside any block: RNNKIT_DEVICE decides
    _state.device = kind
    try:
        yield kind
    finally:
        _state.device = saved


def compute_device():
    """The `device` argument of the core's calls: "cuda" or "cpu" (the core runs float64 on
    the CPU whatever it is asked)."""
    kind = current_device()
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        return "cuda"
    return "cuda" if cuda_status()[0] else "cpu"
