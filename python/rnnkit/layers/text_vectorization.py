"""`TextVectorization`: standardize, split and n-gram strings in numpy and Python (no
TensorFlow), then look the tokens up with a `StringLookup` as Keras 3 does.
"""

import re
import string

import numpy as np

from rnnkit.layers.layer import Layer
from rnnkit.layers.lookup import _MODES, StringLookup, _no_sparse
from rnnkit.layers.preprocessing import _batches, _check_mode
from rnnkit.tensor import Tensor, convert_to_tensor

# tf.strings.lower without an encoding lowers ASCII letters only; Keras's punctuation class is
# string.punctuation; tf.strings.split splits on ASCII whitespace.
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")


def _ngrams(tokens, widths):
    return [" ".join(tokens[i : i + w]) for w in widths for i in range(len(tokens) - w + 1)]


class TextVectorization(Layer):
    """Turns strings into token indices or bag-of-words vectors: standardize, split, form
    n-grams, then look the tokens up (a `StringLookup` with mask token "" at index 0 and
    "[UNK]" at index 1).

    Args:
        max_tokens: Largest vocabulary size, "" and "[UNK]" included; None for no limit.
        standardize: "lower_and_strip_punctuation" (the default), "lower",
            "strip_punctuation", None, or a callable taking and returning a numpy array of
            strings. Lowering is of ASCII letters, punctuation is ASCII punctuation (as
            TensorFlow does).
        split: "whitespace" (the default), "character", None (each input is one token), or a
            callable taking a 1-D numpy array of strings and returning a list of token lists.
        ngrams: None, an integer n (1- to n-grams), or a tuple of n-gram widths.
        output_mode: "int", "multi_hot" ("binary"), "count" or "tf_idf" (also "one_hot").
        output_sequence_length: In "int" mode, the padded (with 0) or truncated length of each
            output; None pads to the longest input of the batch.
        pad_to_max_tokens: Whether encodings have `max_tokens` columns whatever the vocabulary.
        vocabulary: Optional list of tokens or path of a text file, instead of `adapt`.
        idf_weights: IDF weights for a given vocabulary ("tf_idf" only).
        sparse: Only False is supported.
        ragged: Only False is supported (outputs are padded arrays).
        encoding: Text encoding of byte-string inputs.
        name: The layer's name.
        vocabulary_size: The vocabulary size a saved config records (set by `get_config`).
        has_input_vocabulary: Whether a config's vocabulary was given rather than learned (set
            by `get_config`).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        max_tokens=None,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        ngrams=None,
        output_mode="int",
        output_sequence_length=None,
        pad_to_max_tokens=False,
        vocabulary=None,
        idf_weights=None,
        sparse=False,
        ragged=False,
        encoding="utf-8",
        name=None,
        vocabulary_size=None,
        has_input_vocabulary=None,
        **kwargs,
    ):
        if has_input_vocabulary is None:
            has_input_vocabulary = vocabulary is not None
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if not (
            callable(standardize) or standardize in (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
        ):
            raise ValueError(
                "standardize: expected None, a callable, 'lower_and_strip_punctuation', 'lower' or "
                f"'strip_punctuation', received {standardize!r}"
            )
        if not (callable(split) or split in (None, "whitespace", "character")):
            raise ValueError(f"split: expected None, a callable, 'whitespace' or 'character', received {split!r}")
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        _check_mode(output_mode, _MODES, "TextVectorization")
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (
            ngrams is None
            or (isinstance(ngrams, int) and not isinstance(ngrams, bool))
            or (isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))
        ):
            raise ValueError(f"ngrams: expected None, an integer or a tuple of integers, received {ngrams!r}")
        if output_mode == "int" and not (output_sequence_length is None or isinstance(output_sequence_length, int)):
            raise ValueError(
                "output_sequence_length: expected None or an integer in 'int' mode, received "
                f"{output_sequence_length!r}"
            )
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError(
                f"output_sequence_length: only used when output_mode='int', received {output_sequence_length} with "
                f"output_mode={output_mode!r}"
            )
        if ragged:
            raise ValueError("ragged: expected False (rnnkit has no ragged tensors; outputs are padded), received True")
        _no_sparse(sparse)
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.ragged = ragged
        self.encoding = encoding
        self._lookup = StringLookup(
            max_tokens=max_tokens,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens,
            mask_token="",
            output_mode=output_mode,
            sparse=sparse,
            has_input_vocabulary=has_input_vocabulary,
            encoding=encoding,
            vocabulary_size=vocabulary_size,
        )
        self.built = True

    # --- text to tokens -----------------------------------------------------------------------

    def _strings(self, inputs):
        array = np.asarray(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
        if array.dtype.kind == "S" or array.dtype.kind == "O":
            flat = [t.decode(self.encoding) if isinstance(t, bytes) else str(t) for t in array.reshape(-1).tolist()]
            array = np.array(flat, dtype=str).reshape(array.shape) if flat else array.astype(str)
        elif array.dtype.kind != "U":
            raise TypeError(f"TextVectorization: expected string inputs, received an array of dtype {array.dtype}")
        return array

    def _standardized(self, array):
        if callable(self.standardize):
            return np.asarray(self.standardize(array)).astype(str)
        if self.standardize is None:
            return array
        flat = array.reshape(-1).tolist()
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            flat = [s.translate(_LOWER) for s in flat]
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [s.translate(_NO_PUNCTUATION) for s in flat]
        return np.array(flat, dtype=str).reshape(array.shape) if flat else array

    def _preprocess(self, inputs):
        """Standardized tokens: a list of token lists (split or n-grams), or an array of whole
        strings (no split, no n-grams)."""
        array = self._standardized(self._strings(inputs))
        if self.split is None:
            if self._widths is None:
                return array
            rows = [row.tolist() for row in array.reshape(-1, array.shape[-1] if array.ndim else 1)]
        else:
            if array.ndim > 1:
                if array.shape[-1] != 1:
                    raise ValueError(
                        "TextVectorization: to split strings the inputs must have rank 1 or a last dimension of 1, "
                        f"received inputs of shape {array.shape}"
                    )
                array = array[..., 0]
            if array.ndim == 0:
                array = array[None]
            if self.split == "whitespace":
                rows = [[t for t in _WHITESPACE.split(s) if t] for s in array.reshape(-1).tolist()]
            elif self.split == "character":
                rows = [list(s) for s in array.reshape(-1).tolist()]
            else:
                rows = [list(np.asarray(r).reshape(-1).astype(str).tolist()) for r in self.split(array)]
        if self._widths is not None:
            rows = [_ngrams(row, self._widths) for row in rows]
        return rows

    # --- vocabulary ---------------------------------------------------------------------------

    def adapt(self, data, batch_size=None, steps=None):
        """Learns the vocabulary (and IDF weights) from text: each string is a document.

        Args:
            data: An array or list of strings, or an iterable of such batches.
            batch_size: Unused (Keras's argument; arrays are read whole).
            steps: Optional number of batches to read from an iterable.

        Raises:
            ValueError: If the layer was given a vocabulary.
        """
        if self._lookup._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer '{self.name}' after setting a static vocabulary via the `vocabulary` "
                "argument or `set_vocabulary()`"
            )
        if isinstance(data, (str, bytes, list, tuple, np.ndarray, Tensor)):
            array = np.asarray(data)
            batches = [array[:, None] if array.ndim == 1 and self.split is None else array]
        else:
            batches = _batches(data)
            if steps is not None:
                batches = batches[:steps]
        documents = []
        for batch in batches:
            tokens = self._preprocess(batch)
            if isinstance(tokens, np.ndarray):
                documents += self._lookup._batch_documents(tokens)
            else:
                documents += tokens
        self._lookup._learn(documents)

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, index by index ("" and "[UNK]" first).

        Args:
            include_special_tokens: Whether to include "" and "[UNK]".

        Returns:
            A list of strings.
        """
        return self._lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        """The number of indices, "" and "[UNK]" included.

        Returns:
            The vocabulary size.
        """
        return self._lookup.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Sets the vocabulary (and IDF weights) directly; see `StringLookup.set_vocabulary`.

        Args:
            vocabulary: A list or 1-D array of tokens, or the path of a text file.
            idf_weights: One weight per entry ("tf_idf" only).
        """
        self._lookup.set_vocabulary(vocabulary, idf_weights)

    # --- calling ------------------------------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        return self.call(inputs)

    def call(self, inputs):
        lookup = self._lookup
        lookup._check_known_size()
        tokens = self._preprocess(inputs)
        if isinstance(tokens, np.ndarray):
            indices = lookup._lookup_array(tokens)
            if self.output_mode == "int" and self.output_sequence_length is not None:
                indices = indices[..., : self.output_sequence_length]
                pad = self.output_sequence_length - indices.shape[-1]
                indices = np.pad(indices, [(0, 0)] * (indices.ndim - 1) + [(0, pad)])
            return convert_to_tensor(lookup._encode(indices))
        rows = [lookup._indices([lookup._clean(t) for t in row]) for row in tokens]
        if self.output_mode == "int":
            length = self.output_sequence_length
            if length is None:
                length = max((len(r) for r in rows), default=0)
            indices = np.zeros((len(rows), length), "int64")
            for i, row in enumerate(rows):
                row = row[:length]
                indices[i, : len(row)] = row
            return convert_to_tensor(indices)
        width = max(1, max((len(r) for r in rows), default=0))
        indices = np.full((len(rows), width), -1, "int64")  # -1 encodes to nothing
        for i, row in enumerate(rows):
            indices[i, : len(row)] = row
        if self.output_mode == "one_hot":
            raise ValueError("output_mode: 'one_hot' encodes one token per input; use split=None with it")
        return convert_to_tensor(lookup._encode(indices))

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        depth = self._lookup.max_tokens if self._lookup.pad_to_max_tokens else self._lookup._frozen_size
        return (input_shape[0], depth)

    def get_config(self):
        lookup = self._lookup.get_config()
        config = {
            **super().get_config(),
            "max_tokens": lookup["max_tokens"],
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": lookup["pad_to_max_tokens"],
            "sparse": lookup["sparse"],
            "ragged": self.ragged,
            "vocabulary": lookup["vocabulary"],
            "idf_weights": lookup["idf_weights"],
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size(),
        }
        if "has_input_vocabulary" in lookup:
            config["has_input_vocabulary"] = False
        return config


__all__ = ["TextVectorization"]
