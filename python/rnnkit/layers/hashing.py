"""`Hashing` and `HashedCrossing`: strings and integers (and crosses of them) to bins by a stable
hash, with Keras 3's numbers and no TensorFlow.

As Keras (which calls TensorFlow's `to_hash_bucket_fast` and `to_hash_bucket_strong`), integers
are hashed as their decimal strings (floats truncated to integers first, booleans as "true" and
"false"), strings as their UTF-8 bytes, and a value's bin is FarmHash's `Fingerprint64` of those
bytes modulo the number of bins, or SipHash-2-4 keyed with `salt` when a salt is given. Both
hashes are computed in the Rust core (`rnnkit._core.hash_strings`).
"""

import numpy as np

from rnnkit import _core
from rnnkit.layers.lookup import _ArrayLayer, _no_sparse
from rnnkit.layers.preprocessing import _check_mode, _encode
from rnnkit.tensor import convert_to_tensor

_MODES = ("int", "one_hot", "multi_hot", "count")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _salt_of(salt):
    """Keras's `salt`: None, an int (used twice) or two ints; each an unsigned 64-bit key word."""
    if salt is None:
        return None
    words = [salt, salt] if _is_int(salt) else salt
    if not isinstance(words, (list, tuple)) or len(words) != 2 or not all(_is_int(w) for w in words):
        raise ValueError(
            "The `salt` argument for `Hashing` can only be a tuple of size 2 integers, or a single integer. "
            f"Received: salt={salt!r}."
        )
    if not all(0 <= w < 2**64 for w in words):
        raise ValueError(f"salt: expected unsigned 64-bit integers, received salt={salt!r}")
    return [int(w) for w in words]


def _dtype_name(dtype, output_mode):
    """The output dtype: Keras's default (int64 for "int", float32 otherwise) or the `dtype`
    argument (a name, a NumPy dtype or Keras's serialised policy)."""
    if dtype is None:
        return "int64" if output_mode == "int" else "float32"
    if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict):
        dtype = dtype["config"].get("name")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise ValueError(f"dtype: expected a NumPy dtype name, received {dtype!r}") from None
    if output_mode == "int" and name not in ("int32", "int64"):
        raise ValueError(
            "When `output_mode=\"int\"`, `dtype` should be an integer type, 'int32' or 'int64'. "
            f"Received: dtype={dtype!r}"
        )
    return name


def _as_bytes(array):
    """The bytes Keras hashes for each value of `array` (flattened)."""
    if array.dtype.kind == "b":
        return [b"true" if v else b"false" for v in array.reshape(-1).tolist()]
    if array.dtype.kind == "f":
        array = array.astype("int64")  # tf.cast truncates toward zero
    if array.dtype.kind in "iu":
        return [str(v).encode() for v in array.reshape(-1).tolist()]
    values = []
    for v in array.reshape(-1).tolist():
        if isinstance(v, str):
            values.append(v.encode("utf-8"))
        elif isinstance(v, bytes):
            values.append(v)
        else:
            raise TypeError(f"Hashing: expected strings, bytes or integers, received {v!r} of type {type(v).__name__}")
    return values


class Hashing(_ArrayLayer):
    """Hashes strings or integers to bins in `[0, num_bins)`, stably across runs and machines,
    with Keras's numbers: FarmHash64 by default, SipHash-2-4 keyed with `salt` when given.

    Args:
        num_bins: The number of bins, the mask bin included when `mask_value` is set (then the
            values hash to `[1, num_bins)` and the mask value to 0).
        mask_value: A value mapped to bin 0, or None.
        salt: None (FarmHash64), an int (SipHash key `[salt, salt]`) or two ints (the key).
        output_mode: "int" (the bins), "one_hot", "multi_hot" or "count" (as `CategoryEncoding`).
        sparse: Only False (dense outputs): rnnkit has no sparse tensors.
        **kwargs: Base `Layer` arguments; `dtype` is the output's: "int64" (the default) or
            "int32" for "int", a float dtype ("float32" by default) otherwise.
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        dtype = kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if not _is_int(num_bins) or num_bins <= 0:
            raise ValueError(
                "The `num_bins` for `Hashing` cannot be `None` or non-positive values. "
                f"Received: num_bins={num_bins!r}."
            )
        _check_mode(output_mode, _MODES, "Hashing")
        _no_sparse(sparse)
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.salt = _salt_of(salt)
        self.output_mode = output_mode
        self.sparse = sparse
        self.output_dtype = _dtype_name(dtype, output_mode)
        self.built = True

    def call(self, inputs):
        array = np.asarray(inputs)
        bins = self._bins(array.reshape(-1)).reshape(array.shape)
        return convert_to_tensor(_encode(bins, self.output_mode, self.num_bins, self.output_dtype))

    def _bins(self, values):
        """The bins of a 1-d array of values."""
        num_bins, mask = self.num_bins, None
        if self.mask_value is not None and num_bins > 1:
            num_bins -= 1  # bin 0 is the mask's
            is_text = values.dtype.kind in "USO"
            if isinstance(self.mask_value, (str, bytes)) != is_text:
                raise ValueError(
                    f"mask_value: expected a {'string' if is_text else 'number'} for inputs of dtype {values.dtype}, "
                    f"received {self.mask_value!r}"
                )
            mask = np.array([v == self.mask_value for v in values.tolist()], bool)
        encoded = _as_bytes(values)
        ends = np.cumsum([len(v) for v in encoded], dtype=np.uint64)
        salt = None if self.salt is None else tuple(self.salt)
        bins = _core.hash_strings(b"".join(encoded), ends, num_bins=num_bins, salt=salt).astype("int64")
        if mask is not None:
            bins = np.where(mask, 0, bins + 1)
        return bins

    def compute_output_shape(self, input_shape):
        """The output shape: the input's for "int", the last axis replaced by `num_bins` otherwise."""
        if self.output_mode == "int":
            return tuple(input_shape)
        shape = tuple(input_shape)
        if self.output_mode == "one_hot" and not (shape and shape[-1] == 1):
            return (*shape, self.num_bins)
        return (*shape[:-1], self.num_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self.output_dtype,
            "num_bins": self.num_bins,
            "salt": self.salt,
            "mask_value": self.mask_value,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


_UINT64_MAX = 2**64 - 1
# TensorFlow's `sparse.cross_hashed` starts each cross from this key and concatenates the
# features' fingerprints with FingerprintCat64 (a mix with this multiplier, as in MurmurHash2).
_CROSS_KEY = 0xDECAFCAFFE
_CAT_MULTIPLIER = np.uint64(0xC6A4A7935BD1E995)


def _fingerprints(encoded):
    """FarmHash `Fingerprint64` of each bytes value, as uint64.

    The core returns fingerprints modulo a number of bins: modulo 2**64 - 1 that is the
    fingerprint itself except for 2**64 - 1 (which gives 0, as 0 does), and the parity modulo 2
    tells those two apart.
    """
    data = b"".join(encoded)
    ends = np.cumsum([len(v) for v in encoded], dtype=np.uint64)
    top = _core.hash_strings(data, ends, num_bins=_UINT64_MAX).astype(np.uint64)
    odd = _core.hash_strings(data, ends, num_bins=2)
    return np.where((top == 0) & (odd == 1), np.uint64(_UINT64_MAX), top)


def _shift_mix(values):
    return values ^ (values >> np.uint64(47))


def _fingerprint_cat(first, second):
    """TensorFlow's FingerprintCat64 of two uint64 arrays (wrapping arithmetic)."""
    result = first ^ _CAT_MULTIPLIER
    result ^= _shift_mix(second * _CAT_MULTIPLIER) * _CAT_MULTIPLIER
    result *= _CAT_MULTIPLIER
    return _shift_mix(_shift_mix(result) * _CAT_MULTIPLIER)


def _feature_hashes(array):
    """A feature's hashes in a cross: integers as their 64-bit two's complement, strings (UTF-8)
    and bytes by Fingerprint64."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "i":
        return flat.astype(np.int64).view(np.uint64)
    if flat.dtype.kind == "u":
        return flat.astype(np.uint64)
    values = []
    for v in flat.tolist():
        if not isinstance(v, (str, bytes)):
            raise ValueError(
                "All `HashedCrossing` inputs should have an integer or string dtype. "
                f"Received {v!r} of type {type(v).__name__}"
            )
        values.append(v.encode("utf-8") if isinstance(v, str) else v)
    return _fingerprints(values)


class HashedCrossing(_ArrayLayer):
    """Crosses two or more categorical features by hashing each combination of their values to a
    bin in `[0, num_bins)`, with Keras's (TensorFlow's `sparse.cross_hashed`) numbers and no
    TensorFlow.

    Call on a list or tuple of inputs of one shape, `()`, `(batch,)` or `(batch, 1)`, of integers
    or strings; sample i's bin hashes the i-th value of every input, in order.

    Args:
        num_bins: The number of bins.
        output_mode: "int" (the bins) or "one_hot".
        sparse: Only False (dense outputs): rnnkit has no sparse tensors.
        name: The layer's name.
        dtype: The output's dtype: "int64" (the default) or "int32" for "int", a float dtype
            ("float32" by default) for "one_hot".
        **kwargs: Other base `Layer` arguments.
    """

    def __init__(self, num_bins, output_mode="int", sparse=False, name=None, dtype=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not _is_int(num_bins) or num_bins <= 0:
            raise ValueError(f"num_bins: expected a positive integer, received num_bins={num_bins!r}")
        _check_mode(output_mode, ("int", "one_hot"), "HashedCrossing")
        _no_sparse(sparse)
        self.num_bins = int(num_bins)
        self.output_mode = output_mode
        self.sparse = sparse
        self.output_dtype = _dtype_name(dtype, output_mode)
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"`HashedCrossing` should be called on a list or tuple of inputs. Received: {inputs!r:.80}"
            )
        if len(inputs) < 2:
            raise ValueError(f"`HashedCrossing` should be called on at least two inputs. Received {len(inputs)}.")
        arrays = [np.asarray(x) for x in inputs]
        shape = arrays[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(
                f"All `HashedCrossing` inputs should have shape `()`, `(batch_size)` or `(batch_size, 1)`. "
                f"Received shape {shape}"
            )
        if any(a.shape != shape for a in arrays[1:]):
            raise ValueError(
                f"All `HashedCrossing` inputs should have equal shape. Received shapes {[a.shape for a in arrays]}"
            )
        for a in arrays:
            if a.dtype.kind not in "iuUSO":
                raise ValueError(
                    f"All `HashedCrossing` inputs should have an integer or string dtype. Received dtype {a.dtype}"
                )
        hashed = np.full(int(np.prod(shape)), _CROSS_KEY, np.uint64)
        for a in arrays:
            hashed = _fingerprint_cat(hashed, _feature_hashes(a))
        bins = (hashed % np.uint64(self.num_bins)).astype(np.int64).reshape(shape)
        out = _encode(bins.reshape(-1) if bins.ndim == 0 else bins, self.output_mode, self.num_bins, self.output_dtype)
        return convert_to_tensor(out[0] if bins.ndim == 0 else out)

    def compute_output_shape(self, input_shape):
        """The output shape for a list of input shapes: the first's for "int"; for "one_hot" its
        trailing size-1 axis (if any) replaced by `num_bins`, else `num_bins` appended."""
        shape = tuple(input_shape[0])
        if self.output_mode == "int":
            return shape
        if shape and shape[-1] == 1:
            return (*shape[:-1], self.num_bins)
        return (*shape, self.num_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self.output_dtype,
            "num_bins": self.num_bins,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }
