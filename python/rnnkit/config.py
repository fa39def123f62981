"""Device placement: `rk.device("cpu" | "cuda" | "auto")` and `list_devices()`.

This build computes on the CPU only (the CUDA kernels are a separate piece of work); "auto"
therefore means the CPU, and asking for "cuda" says so clearly instead of falling back silently.
"""

import contextlib
import threading

_state = threading.local()
_KINDS = ("auto", "cpu", "cuda")


def list_devices():
    """The devices rnnkit can compute on, e.g. `["CPU:0"]`."""
    return ["CPU:0"]


def current_device():
    """The device requested by the innermost `device(...)` block ("auto" outside any)."""
    return getattr(_state, "device", "auto")


@contextlib.contextmanager
def device(name):
    """Runs the block's layer calls on `name`: "cpu", "cuda" or "auto" (also "CPU:0", "GPU:0").

    Weights are plain arrays, so a model built or trained under one device runs under another.

    Raises:
        ValueError: For an unknown device name.
        RuntimeError: For "cuda" when no GPU backend is available.
    """
    kind = str(name).lower().split(":")[0].replace("gpu", "cuda")
    if kind not in _KINDS:
        raise ValueError(f"device: expected one of 'cpu', 'cuda', 'auto' (or 'CPU:0', 'GPU:0'), received {name!r}")
    if kind == "cuda" and not any(d.startswith("GPU") for d in list_devices()):
        raise RuntimeError("device('cuda'): no GPU backend is available in this build of rnnkit; use 'cpu' or 'auto'.")
    saved = current_device()
    _state.device = kind
    try:
        yield kind
    finally:
        _state.device = saved
