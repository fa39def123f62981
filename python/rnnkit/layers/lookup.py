"""Lookup layers: `StringLookup` and `IntegerLookup` (and their shared base), computed in numpy
and Python (no TensorFlow) with Keras 3's vocabularies, indices and encodings.

A lookup layer maps tokens to indices laid out as `[mask] + [OOV] * num_oov_indices + tokens`
(the mask slot only in "int" mode), learns its tokens with `adapt` (most frequent first, ties by
the larger token first, as Keras sorts them), and encodes the indices as "int", "one_hot",
"multi_hot", "count" or "tf_idf". Token inputs are numpy arrays, lists or Python strings; a
learned vocabulary is written into the config, so saved layers load without their data.
"""

import collections
import os

import numpy as np

from rnnkit.layers.layer import Layer
from rnnkit.layers.preprocessing import _check_mode, _encode
from rnnkit.symbolic import is_symbolic
from rnnkit.tensor import Tensor, convert_to_tensor

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _no_sparse(sparse):
    if sparse:
        raise ValueError("sparse: expected False (rnnkit has no sparse tensors), received True")


class _ArrayLayer(Layer):
    """A preprocessing layer computed on numpy arrays, outside the tape: a call on data goes
    straight to `call`; a call on symbolic tensors builds the graph as any layer's does."""

    def __call__(self, inputs, *args, **kwargs):
        if is_symbolic(inputs):
            return super().__call__(inputs, *args, **kwargs)
        return self.call(inputs)


class _Lookup(_ArrayLayer):
    """Shared state and arithmetic of `StringLookup` and `IntegerLookup`."""

    _is_string = True

    def __init__(
        self,
        max_tokens,
        num_oov_indices,
        mask_token,
        oov_token,
        vocabulary,
        idf_weights,
        invert,
        output_mode,
        sparse,
        pad_to_max_tokens,
        oov_method="floormod",
        salt=None,
        name=None,
        vocabulary_size=None,
        has_input_vocabulary=None,
        **kwargs,
    ):
        # `vocabulary_size` and `has_input_vocabulary` are Keras's hidden config entries.
        if has_input_vocabulary is None:
            has_input_vocabulary = vocabulary is not None
        frozen_size = vocabulary_size
        kwargs.pop("vocabulary_dtype", None)
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"max_tokens: expected None or an integer > 1, received {max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError("pad_to_max_tokens: True needs `max_tokens` to be set, received max_tokens=None")
        if num_oov_indices < 0:
            raise ValueError(f"num_oov_indices: expected an integer >= 0, received {num_oov_indices}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"oov_method: expected 'floormod' or 'farmhash', received {oov_method!r}")
        if oov_method == "farmhash" or salt is not None:
            raise NotImplementedError(
                f"oov_method={oov_method!r}, salt={salt!r}: hashing OOV tokens with FarmHash or SipHash is not "
                "implemented in rnnkit; use num_oov_indices <= 1 (or integer tokens with 'floormod')"
            )
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        _check_mode(output_mode, _MODES, type(self).__name__)
        if invert and output_mode != "int":
            raise ValueError(f"output_mode: expected 'int' when invert=True, received {output_mode!r}")
        _no_sparse(sparse)
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(
                "idf_weights: only used when output_mode='tf_idf', received idf_weights with "
                f"output_mode={output_mode!r}"
            )
        if output_mode == "tf_idf" and has_input_vocabulary and idf_weights is None and vocabulary is not None:
            raise ValueError("idf_weights: required with `vocabulary` when output_mode='tf_idf', received None")
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.invert = invert
        self.output_mode = output_mode
        self.sparse = sparse
        self.pad_to_max_tokens = pad_to_max_tokens
        self.oov_method = oov_method
        self.salt = salt
        self.input_vocabulary = None if isinstance(vocabulary, str) else vocabulary
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = has_input_vocabulary
        self._frozen_size = frozen_size
        self._tokens = None  # the learned or given tokens, special tokens excluded
        self._index = {}
        self.idf_weights = None
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # --- layout -------------------------------------------------------------------------------

    def _oov_start(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self):
        return self._oov_start() + self.num_oov_indices

    def _special_tokens(self):
        return [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices

    def vocabulary_size(self):
        """The number of indices the layer outputs: mask, OOV and learned tokens.

        Returns:
            The vocabulary size (0 tokens when neither adapted nor given a vocabulary).
        """
        return self._token_start() + len(self._tokens or ())

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, index by index.

        Args:
            include_special_tokens: Whether to include the mask and OOV tokens (then a token's
                position is its index).

        Returns:
            A list of tokens.
        """
        tokens = list(self._tokens or ())
        return self._special_tokens() + tokens if include_special_tokens else tokens

    def _token(self, value):
        """A vocabulary entry in the layer's token type."""
        return str(value) if self._is_string else int(value)

    def _read_file(self, path):
        if not os.path.exists(path):
            raise ValueError(f"vocabulary: the file {path!r} does not exist")
        if self.output_mode == "tf_idf":
            raise ValueError("vocabulary: output_mode='tf_idf' cannot load a vocabulary from a file")
        with open(path, encoding=getattr(self, "encoding", "utf-8")) as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        return lines

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Sets the tokens (and their IDF weights) directly instead of learning them.

        Args:
            vocabulary: A list, tuple or 1-D array of unique tokens, or the path of a text file
                with one token per line. It may start with the mask and OOV tokens in the
                layer's order; otherwise they are added.
            idf_weights: One weight per vocabulary entry; required (and only allowed) when
                `output_mode="tf_idf"`.

        Raises:
            ValueError: If the vocabulary is empty, repeats a token, holds a special token
                elsewhere, exceeds `max_tokens`, or the weights do not match it.
        """
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("idf_weights: required when output_mode='tf_idf', received None")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(
                f"idf_weights: only used when output_mode='tf_idf', received idf_weights with "
                f"output_mode={self.output_mode!r}"
            )
        if isinstance(vocabulary, str):
            vocabulary = self._read_file(vocabulary)
        if isinstance(vocabulary, Tensor):
            vocabulary = np.asarray(vocabulary)
        values = [v.decode() if isinstance(v, bytes) else v for v in np.asarray(vocabulary).reshape(-1).tolist()]
        values = [self._token(v) for v in values]
        if not values:
            raise ValueError(f"vocabulary: expected at least one token, received {vocabulary!r}")
        special = self._special_tokens()
        found_special = values[: len(special)] == special
        tokens = values[len(special) :] if found_special else values
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"vocabulary: expected unique tokens, received repeated tokens {repeated}")
        for which, token in (("mask_token", self.mask_token), ("oov_token", self.oov_token if self.invert else None)):
            if token is not None and token in tokens:
                raise ValueError(
                    f"vocabulary: found the reserved {which} {token!r} at index {values.index(token)}; "
                    f"leave special tokens out, or put them first in this order: {special}"
                )
        size = self._token_start() + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(
                f"vocabulary: expected at most max_tokens={self.max_tokens} entries with the special tokens, "
                f"received {size}"
            )
        self._set_tokens(tokens)
        if idf_weights is not None:
            weights = np.asarray(idf_weights, "float32")
            if weights.ndim != 1:
                raise ValueError(f"idf_weights: expected a 1-D array, received shape {weights.shape}")
            if len(weights) != len(values):
                raise ValueError(
                    f"idf_weights: expected one weight per vocabulary entry ({len(values)}), received {len(weights)}"
                )
            if not found_special:
                weights = np.concatenate([np.full(self._token_start(), np.mean(weights), "float32"), weights])
            self.idf_weights = self._pad_idf(weights)

    def _pad_idf(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = np.pad(weights, (0, self.max_tokens - len(weights)))
        return weights.astype("float32")

    def _set_tokens(self, tokens):
        if self._frozen_size is not None and self.output_mode != "int" and not self.pad_to_max_tokens:
            if self._token_start() + len(tokens) != self._frozen_size:
                raise RuntimeError(
                    f"vocabulary: with output_mode={self.output_mode!r} and pad_to_max_tokens=False the vocabulary "
                    f"size cannot change once set; it was {self._frozen_size}, received "
                    f"{self._token_start() + len(tokens)}"
                )
        self._tokens = tokens
        start = self._token_start()
        self._index = {t: i + start for i, t in enumerate(tokens)}
        self._frozen_size = self.vocabulary_size()

    # --- adapt --------------------------------------------------------------------------------

    def _documents(self, data):
        """The documents of `data`, each a list of tokens: the rows of an array (an array of
        rank 1 holds one-token documents) or of each batch of an iterable (a rank-1 batch is
        one document)."""
        if isinstance(data, (str, bytes)) or np.isscalar(data):
            return [[data]]
        if isinstance(data, (list, tuple, np.ndarray, Tensor)):
            array = np.asarray(data)
            return [[t] for t in array.reshape(-1).tolist()] if array.ndim <= 1 else self._rows(array)
        documents = []
        for batch in data:
            if isinstance(batch, tuple):
                batch = batch[0]
            documents += self._batch_documents(batch)
        if not documents:
            raise ValueError("adapt: received an empty iterable; expected at least one batch of data")
        return documents

    def _batch_documents(self, batch):
        array = np.asarray(batch)
        return [array.reshape(-1).tolist()] if array.ndim <= 1 else self._rows(array)

    @staticmethod
    def _rows(array):
        return [row.reshape(-1).tolist() for row in array]

    def adapt(self, data, steps=None):
        """Learns the vocabulary (and IDF weights) from data: the most frequent tokens first,
        ties broken by the larger token first, at most `max_tokens` entries in all.

        Args:
            data: An array or list of tokens (each row a document), or an iterable of batches
                (e.g. a generator).
            steps: Optional number of batches to read from an iterable.

        Raises:
            ValueError: If the layer was given a vocabulary.
        """
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer '{self.name}' after setting a static vocabulary via the `vocabulary` "
                "argument or `set_vocabulary()`"
            )
        if steps is not None and not isinstance(data, (list, tuple, np.ndarray, Tensor)):
            data = [batch for _, batch in zip(range(steps), data)]
            documents = [
                d for batch in data for d in self._batch_documents(batch[0] if isinstance(batch, tuple) else batch)
            ]
        else:
            documents = self._documents(data)
        self._learn([[self._clean(t) for t in doc] for doc in documents])

    def _learn(self, documents):
        counts = collections.Counter(t for doc in documents for t in doc)
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        if not counts:
            return
        ordered = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
        if self.max_tokens:
            ordered = ordered[: self.max_tokens - self._token_start()]
        self._set_tokens(ordered)
        if self.output_mode == "tf_idf":
            in_documents = collections.Counter(t for doc in documents for t in set(doc))
            frequency = np.array([in_documents[t] for t in ordered], "float64")
            idf = np.log(1 + len(documents) / (1 + frequency)).astype("float32")
            self.idf_weights = self._pad_idf(np.concatenate([np.full(self._token_start(), idf.mean(), "float32"), idf]))

    # --- lookup -------------------------------------------------------------------------------

    def _clean(self, token):
        """An input token as a vocabulary key."""
        if self._is_string:
            return token.decode(self.encoding) if isinstance(token, bytes) else str(token)
        return int(token)

    def _check_known_size(self):
        if self.output_mode != "int" and not self.pad_to_max_tokens and self._tokens is None:
            raise RuntimeError(
                f"{type(self).__name__}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False, set "
                "the vocabulary (the `vocabulary` argument or `adapt`) before calling the layer"
            )

    def _indices(self, tokens):
        """The indices of a flat list of tokens."""
        if self.invert:
            return self._inverted(tokens)
        unknown = -1 if self.num_oov_indices != 1 else self._oov_start()
        out = [self._index.get(t, unknown) for t in tokens]
        if self.mask_token is not None:
            masked = 0 if self.output_mode == "int" else -1  # dropped from the encodings
            out = [masked if t == self.mask_token else i for t, i in zip(tokens, out)]
        if self.num_oov_indices == 0:
            missing = [t for t, i in zip(tokens, out) if i == -1 and t != self.mask_token]
            if missing:
                raise ValueError(
                    f"{type(self).__name__}: with num_oov_indices=0 all inputs must be in the vocabulary, "
                    f"found OOV values {missing[:10]}; consider num_oov_indices=1"
                )
        elif self.num_oov_indices > 1:
            if self._is_string:
                raise NotImplementedError(
                    f"num_oov_indices={self.num_oov_indices}: Keras hashes string OOV tokens with FarmHash, "
                    "which rnnkit does not implement; use num_oov_indices <= 1"
                )
            start = self._oov_start()
            out = [
                t % self.num_oov_indices + start if i == -1 and t != self.mask_token else i for t, i in zip(tokens, out)
            ]
        return out

    def _inverted(self, indices):
        words = dict(enumerate(self._special_tokens()))
        words.update((i, t) for t, i in self._index.items())
        if self.mask_token is not None:
            words[0] = self.mask_token
        return [words.get(int(i), self.oov_token) for i in indices]

    def _lookup_array(self, array):
        """Indices (or tokens, inverted) of an array of any shape."""
        flat = [self._clean(t) for t in array.reshape(-1).tolist()] if not self.invert else array.reshape(-1).tolist()
        out = self._indices(flat)
        if self.invert:
            dtype = object if self._is_string else "int64"
            result = np.empty(len(out), dtype) if dtype is object else np.array(out, dtype)
            if dtype is object:
                result[:] = out
                result = result.astype(str) if out else np.array([], str)
            return result.reshape(array.shape)
        return np.array(out, "int64").reshape(array.shape)

    def _encode(self, indices):
        """The output of `indices` in the layer's output mode."""
        if self.output_mode == "int" or self.invert:
            return indices
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_size
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        # Keras (on TensorFlow) encodes to int64; "tf_idf" multiplies the counts by float32 weights.
        encoded = _encode(indices, mode, depth, "int64")
        if self.output_mode == "tf_idf":
            encoded = encoded.astype("float32") * self.idf_weights[:depth]
        return encoded

    def call(self, inputs):
        self._check_known_size()
        array = np.asarray(inputs)
        if not self._is_string and not self.invert and array.dtype.kind not in "iu":
            array = array.astype("int64")
        out = self._encode(self._lookup_array(array))
        return out if out.dtype.kind in "USO" else convert_to_tensor(out)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_size
        shape = tuple(input_shape)
        if self.output_mode == "one_hot":
            return (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (depth,)
        return shape[:-1] + (depth,)

    # --- config -------------------------------------------------------------------------------

    def get_config(self):
        """The constructor arguments; a learned vocabulary (and its IDF weights) is included so
        that a loaded layer needs no `adapt`."""
        vocabulary, idf = self.input_vocabulary, self.input_idf_weights
        if not self._has_input_vocabulary and self._tokens is not None:
            vocabulary = self.get_vocabulary()
            if self.idf_weights is not None:
                idf = self.idf_weights[: self.vocabulary_size()]
        config = {
            **super().get_config(),
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "idf_weights": None if idf is None else np.asarray(idf).tolist(),
            "vocabulary": None if vocabulary is None else np.asarray(vocabulary).tolist(),
            "vocabulary_size": self._frozen_size,
            "oov_method": self.oov_method,
            "salt": self.salt,
        }
        if not self._has_input_vocabulary and self._tokens is not None:
            config["has_input_vocabulary"] = False
        return config


class StringLookup(_Lookup):
    """Maps strings to integer indices (or, with `invert=True`, indices back to strings).

    Index layout: `mask_token` at 0 (when set, "int" mode), then `num_oov_indices` OOV
    indices, then the vocabulary. Outputs: int64 indices ("int") or encodings ("one_hot",
    "multi_hot", "count" as int64, "tf_idf" as float32; the last three encode the last axis of
    each sample), as Keras on TensorFlow returns them; inverted outputs are numpy string arrays.

    Args:
        max_tokens: Largest vocabulary size, special tokens included; None for no limit.
        num_oov_indices: Number of OOV indices (0 refuses unknown tokens; more than 1 needs
            FarmHash, which rnnkit does not implement).
        mask_token: Token that maps to index 0 in "int" mode (dropped from encodings); None for
            no mask.
        oov_token: Token returned for OOV indices when `invert=True`.
        vocabulary: Optional list or 1-D array of tokens, or the path of a text file with one
            token per line.
        idf_weights: IDF weights, one per vocabulary entry ("tf_idf" only).
        invert: Whether to map indices to tokens instead.
        output_mode: "int", "one_hot", "multi_hot" ("binary"), "count" or "tf_idf".
        pad_to_max_tokens: Whether encodings have `max_tokens` columns whatever the vocabulary.
        sparse: Only False is supported.
        encoding: Text encoding of byte-string inputs.
        name: The layer's name.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token="[UNK]",
        vocabulary=None,
        idf_weights=None,
        invert=False,
        output_mode="int",
        pad_to_max_tokens=False,
        sparse=False,
        encoding="utf-8",
        name=None,
        **kwargs,
    ):
        self.encoding = encoding
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            name=name,
            **kwargs,
        )

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(_Lookup):
    """Maps integers to contiguous indices (or, with `invert=True`, indices back to integers).

    Index layout as in `StringLookup`; with several OOV indices an unknown value `v` goes to
    OOV index `v mod num_oov_indices` (Keras's "floormod").

    Args:
        max_tokens: Largest vocabulary size, special tokens included; None for no limit.
        num_oov_indices: Number of OOV indices (0 refuses unknown values).
        mask_token: Value that maps to index 0 in "int" mode (dropped from encodings); None
            for no mask.
        oov_token: Value returned for OOV indices when `invert=True`.
        vocabulary: Optional list or 1-D array of integers, or the path of a text file with one
            per line.
        vocabulary_dtype: Only "int64" is supported.
        idf_weights: IDF weights, one per vocabulary entry ("tf_idf" only).
        invert: Whether to map indices to values instead.
        output_mode: "int", "one_hot", "multi_hot" ("binary"), "count" or "tf_idf".
        sparse: Only False is supported.
        pad_to_max_tokens: Whether encodings have `max_tokens` columns whatever the vocabulary.
        name: The layer's name.
        **kwargs: Base `Layer` arguments.
    """

    _is_string = False

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token=-1,
        vocabulary=None,
        vocabulary_dtype="int64",
        idf_weights=None,
        invert=False,
        output_mode="int",
        sparse=False,
        pad_to_max_tokens=False,
        name=None,
        **kwargs,
    ):
        if vocabulary_dtype != "int64":
            raise ValueError(f"vocabulary_dtype: expected 'int64', received {vocabulary_dtype!r}")
        if max_tokens is not None and max_tokens <= 0:
            raise ValueError(f"max_tokens: expected None or an integer > 0, received {max_tokens}")
        if num_oov_indices < 0:
            raise ValueError(f"num_oov_indices: expected an integer >= 0, received {num_oov_indices}")
        self.vocabulary_dtype = vocabulary_dtype
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            name=name,
            **kwargs,
        )

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}


__all__ = ["IntegerLookup", "StringLookup"]
