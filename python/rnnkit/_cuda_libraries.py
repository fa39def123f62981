"""Makes CUDA's pip-installed libraries loadable by name before the GPU path looks for them.

The extension opens cuBLAS and NVRTC by name (`libcublas.so.13`, `libnvrtc.so.13`) at run time.
pip's `nvidia-*` wheels put them under `site-packages/nvidia/.../lib`, outside the loader's
search path; loading them here by full path first means the later load by name finds them. A
system-wide CUDA needs nothing from this, and where neither exists nothing happens.
"""

import ctypes
import glob
import os
import sys

# File name patterns, each library after those it loads by name (cuBLASLt for cuBLAS, NVRTC's
# builtins for NVRTC).
_LIBRARIES = ("libcublasLt.so.13", "libcublas.so.13", "libnvrtc-builtins.so.13.?", "libnvrtc.so.13")


def _pip_library_dirs():
    for entry in sys.path:
        yield from sorted(glob.glob(os.path.join(entry, "nvidia", "*", "lib")))
        yield from sorted(glob.glob(os.path.join(entry, "nvidia", "*", "*", "lib")))


def preload():
    """Loads each library from the first pip install that has it (Linux only; at most once per
    library, as the loader keeps them)."""
    if not sys.platform.startswith("linux"):
        return
    missing = list(_LIBRARIES)
    for directory in _pip_library_dirs():
        for pattern in list(missing):
            for path in sorted(glob.glob(os.path.join(directory, pattern))):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                    missing.remove(pattern)
                    break
                except OSError:
                    pass
