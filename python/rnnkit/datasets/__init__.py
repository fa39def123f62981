"""Data sets: MNIST with Keras's `load_data`, and the 8×8 digits that ship with rnnkit."""

from rnnkit.datasets import digits, mnist

__all__ = ["digits", "mnist"]
