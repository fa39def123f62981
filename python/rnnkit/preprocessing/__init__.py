"""Keras's legacy `keras.preprocessing` namespace: `sequence.pad_sequences` and
`timeseries_dataset_from_array`, the same functions as in `rnnkit.utils`."""

from rnnkit.preprocessing import sequence
from rnnkit.utils.timeseries import timeseries_dataset_from_array

__all__ = ["sequence", "timeseries_dataset_from_array"]
