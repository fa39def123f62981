"""`Embedding`: integer indices to dense vectors, with the padding mask `mask_zero` gives."""

import numpy as np

from rnnkit import constraints, initializers, ops, quantizers, regularizers
from rnnkit.layers.layer import Layer
from rnnkit.tensor import Tensor, wrap


class Embedding(Layer):
    """Turns indices `(batch, ...)` into vectors `(batch, ..., output_dim)`, as Keras's.

    Args:
        input_dim: Vocabulary size (indices lie in `[0, input_dim)`).
        output_dim: Size of each vector.
        embeddings_initializer: Initializer of the `(input_dim, output_dim)` table.
        embeddings_regularizer: Optional regularizer of the table.
        embeddings_constraint: Optional constraint of the table.
        mask_zero: Whether index 0 is padding: the output then carries the mask `inputs != 0`.
        weights: Optional initial table, as a one-element list.
        **kwargs: Base `Layer` arguments. Without `input_shape`, sequences of any length are
            assumed (`input_shape=(None,)`), which lets a Sequential model infer its shapes.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        **kwargs,
    ):
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"Received an invalid value for argument `{arg}`. Expected a positive integer, received "
                    f"{arg}={value}"
                )
        kwargs.pop("input_length", None)
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (None,)
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _indices(self, inputs):
        values = np.asarray(inputs)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"Layer {self.name}: expected integer indices, received dtype {values.dtype}.")
        if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise ValueError(f"Layer {self.name}: expected integer indices, received non-integer values.")
        # The range is checked before the cast, which would wrap values beyond int64.
        if values.size and (values.min() < 0 or values.max() >= self.input_dim):
            show = (lambda v: f"{v.item():g}") if values.dtype.kind == "f" else (lambda v: str(v.item()))
            raise ValueError(
                f"Layer {self.name}: indices must lie in [0, {self.input_dim}) (input_dim), received values "
                f"in [{show(values.min())}, {show(values.max())}]."
            )
        return values.astype(np.int64)

    def call(self, inputs):
        indices = self._indices(inputs)
        if self.quantization_mode == "int8":
            # The int8 table is frozen (as in Keras): nothing to differentiate.
            scale = np.asarray(self.embeddings_scale)
            values = np.asarray(self.embeddings)[indices].astype(scale.dtype)
            return wrap(values / scale[indices][..., None])
        return ops.take(self.embeddings, indices, axis=0)

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes the table to int8 per row (per index), as Keras's `Embedding.quantize`:
        `embeddings` becomes int8 and non-trainable beside `embeddings_scale`, and each lookup
        returns `values / scale` of its rows.

        Args:
            mode: "int8".
            type_check: Refuse subclasses, as Keras.
            config: Only None.

        Raises:
            ValueError: If the layer is not built or already quantized, or for an unknown mode.
            NotImplementedError: For Keras's other modes, a `config`, or a subclass.
        """
        quantizers.check_quantize_args(self, mode, config)
        if type_check and type(self) is not Embedding:
            raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize` method implemented.")
        quantizers.quantize_weight(self, "embeddings", axis=-1)
        self._quantization_mode = mode

    def compute_mask(self, inputs, mask=None):
        return np.asarray(inputs) != 0 if self.mask_zero else None

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
        }


class ReversibleEmbedding(Embedding):
    """An `Embedding` that also projects vectors back to the vocabulary: `layer(ids)` embeds,
    `layer(hidden, reverse=True)` gives logits `hidden · embeddingsᵀ` (the tied weights of a
    language model's input and output), as Keras's.

    With `tie_weights=False` the reverse projection has its own trainable
    `(output_dim, input_dim)` weight `reverse_embeddings`. The forward call carries the
    `mask_zero` mask; the reverse call carries none (as in Keras).

    Args:
        input_dim: Vocabulary size (indices lie in `[0, input_dim)`).
        output_dim: Size of each vector.
        tie_weights: Whether the reverse projection uses the transposed embeddings.
        embeddings_initializer: Initializer of the table (and of `reverse_embeddings`).
        embeddings_regularizer: Optional regularizer of the table.
        embeddings_constraint: Optional constraint of the table.
        mask_zero: Whether index 0 is padding: the forward output then carries `inputs != 0`.
        reverse_dtype: Optional float dtype the reverse projection computes (and returns) in;
            the layer's dtype when None.
        logit_soft_cap: Optional positive float: reverse logits become
            `tanh(logits / logit_soft_cap) * logit_soft_cap`.
        **kwargs: `Embedding`'s other arguments and the base `Layer` arguments.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        tie_weights=True,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        reverse_dtype=None,
        logit_soft_cap=None,
        **kwargs,
    ):
        super().__init__(
            input_dim,
            output_dim,
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero,
            **kwargs,
        )
        if reverse_dtype is not None:
            try:
                kind = np.dtype(reverse_dtype).kind
            except TypeError:
                kind = None
            if kind != "f":
                raise ValueError(f"reverse_dtype: expected a float dtype or None, received {reverse_dtype!r}")
            reverse_dtype = np.dtype(reverse_dtype).name
        if logit_soft_cap is not None and (
            isinstance(logit_soft_cap, bool) or not isinstance(logit_soft_cap, (int, float)) or logit_soft_cap <= 0
        ):
            raise ValueError(f"logit_soft_cap: expected a positive number or None, received {logit_soft_cap!r}")
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer,
                name="reverse_embeddings",
            )

    def __call__(self, inputs, *args, reverse=False, **kwargs):
        if not reverse:
            return super().__call__(inputs, *args, **kwargs)
        outputs = super().__call__(inputs, *args, reverse=True, **kwargs)
        if isinstance(outputs, Tensor):
            outputs._keras_mask = None
        return outputs

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        if inputs.shape[-1] != self.output_dim:
            raise ValueError(
                f"Layer {self.name}: reverse=True expects vectors of size {self.output_dim} (output_dim) on the "
                f"last axis, received input shape {tuple(inputs.shape)}"
            )
        kernel = ops.transpose(self.embeddings) if self.tie_weights else self.reverse_embeddings
        if self.reverse_dtype is not None:
            inputs, kernel = ops.cast(inputs, self.reverse_dtype), ops.cast(kernel, self.reverse_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = np.asarray(self.logit_soft_cap, logits.dtype)
            logits = ops.tanh(logits / cap) * cap
        return logits

    def get_config(self):
        return {
            **super().get_config(),
            "tie_weights": self.tie_weights,
            "reverse_dtype": self.reverse_dtype,
            "logit_soft_cap": self.logit_soft_cap,
        }
