"""Utilities as in `keras.utils`: data pipelines of numpy batches, padding, one-hot encoding,
downloads, a progress bar, seeding and session reset, and (as Keras re-exports them) the
serialization registry of `rnnkit.saving`."""

from rnnkit.saving import (
    CustomObjectScope,
    custom_object_scope,
    deserialize_keras_object,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    serialize_keras_object,
)
from rnnkit.utils.dataset import (
    PyDataset,
    Sequence,
    pack_x_y_sample_weight,
    split_dataset,
    unpack_x_y_sample_weight,
)
from rnnkit.utils.file_utils import get_file
from rnnkit.utils.numerical import normalize, to_categorical
from rnnkit.utils.progbar import Progbar
from rnnkit.utils.sequence_utils import pad_sequences
from rnnkit.utils.session import clear_session, set_random_seed
from rnnkit.utils.timeseries import timeseries_dataset_from_array

__all__ = [
    "CustomObjectScope",
    "Progbar",
    "PyDataset",
    "Sequence",
    "clear_session",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_file",
    "get_registered_name",
    "get_registered_object",
    "normalize",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "register_keras_serializable",
    "serialize_keras_object",
    "set_random_seed",
    "split_dataset",
    "timeseries_dataset_from_array",
    "to_categorical",
    "unpack_x_y_sample_weight",
]
