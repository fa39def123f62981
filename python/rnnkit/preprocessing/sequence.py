"""Keras's legacy `keras.preprocessing.sequence`: `pad_sequences`, the one in `rnnkit.utils`."""

from rnnkit.utils.sequence_utils import pad_sequences

__all__ = ["pad_sequences"]
