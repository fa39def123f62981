"""The suites assert the CPU's exact semantics (bit-identical thread counts, Keras's golden values
at float32 rounding), so they compute on the CPU even where a GPU is present; tests/test_gpu.py
names its devices explicitly."""

import os

os.environ.setdefault("RNNKIT_DEVICE", "cpu")
