"""pad_sequences: lists of variable-length sequences to one padded array."""

import numpy as np

__all__ = ["pad_sequences"]

_SIDES = ("pre", "post")


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pads (or truncates) sequences to a common length, as Keras's `pad_sequences`.

    Args:
        sequences: A list of sequences (lists or arrays); their elements may themselves be
            arrays, of one shape for all sequences.
        maxlen: The length of the result, by default the longest sequence's.
        dtype: The dtype of the result; strings need `object` or a numpy string dtype.
        padding: "pre" or "post": pad before or after each sequence.
        truncating: "pre" or "post": drop values at the start or at the end of sequences
            longer than `maxlen`.
        value: The padding value (a number, or a string for string dtypes).

    Returns:
        A numpy array of shape `(len(sequences), maxlen) + element_shape`.

    Raises:
        ValueError: If an argument is invalid or the elements' shapes differ between sequences.
    """
    for name, side in (("padding", padding), ("truncating", truncating)):
        if side not in _SIDES:
            raise ValueError(f"pad_sequences: {name}: expected 'pre' or 'post', received {side!r}")
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: sequences: expected a list of sequences, received {type(sequences).__name__}")
    for index, sequence in enumerate(sequences):
        if not hasattr(sequence, "__len__"):
            raise ValueError(
                f"pad_sequences: sequences: expected a list of sequences, received {sequence!r} at position {index}"
            )
    textual = dtype is object or np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and not textual:
        raise ValueError(
            f"pad_sequences: dtype: expected object or a string dtype for the string value {value!r}, "
            f"received {dtype!r}"
        )
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    elif maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen: expected None or an int >= 0, received {maxlen}")
    # The element shape comes from the first non-empty sequence; the others must agree.
    element_shape = next((np.asarray(s).shape[1:] for s in sequences if len(s)), ())

    padded = np.full((len(sequences), maxlen) + element_shape, value, dtype=dtype)
    for index, sequence in enumerate(sequences):
        if not len(sequence) or not maxlen:
            continue
        kept = np.asarray(sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen], dtype=dtype)
        if kept.shape[1:] != element_shape:
            raise ValueError(
                f"pad_sequences: sequences: expected elements of shape {element_shape}, received "
                f"{kept.shape[1:]} in the sequence at position {index}"
            )
        if padding == "post":
            padded[index, : len(kept)] = kept
        else:
            padded[index, maxlen - len(kept) :] = kept
    return padded
