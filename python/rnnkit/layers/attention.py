"""Attention layers: `Attention` (Luong), `AdditiveAttention` (Bahdanau) and `MultiHeadAttention`.

Everything is computed through `rnnkit.ops`, so the tape differentiates it. Masked scores get
-1e9 added before the softmax, as in Keras, so a fully masked row attends uniformly in
`Attention`; in `MultiHeadAttention` the masked probabilities are then zeroed (Keras's `Softmax`
layer with a mask), so a fully masked query row outputs the projection of zeros.
"""

import math
import string

import numpy as np

from rnnkit import constraints, initializers, ops, random, regularizers
from rnnkit.layers.einsum_dense import EinsumDense
from rnnkit.layers.layer import Layer, in_symbolic_call
from rnnkit.tensor import convert_to_tensor

_LARGE_NEGATIVE = 1e9


def _dropout(x, rate, rng):
    """Inverted dropout of `x` with keep probability `1 - rate`, drawn from `rng`."""
    if rate >= 1:
        return ops.multiply(x, np.zeros((), x.dtype))
    keep = (rng or random.generator()).random(x.shape) >= rate
    return ops.multiply(x, (keep / (1 - rate)).astype(x.dtype))


def _as_bool(mask):
    return None if mask is None else np.asarray(mask).astype(bool)


def _causal_mask(query_length, value_length):
    """`(1, Tq, Tv)`: query step i sees value steps 0..i."""
    return (np.arange(query_length)[:, None] >= np.arange(value_length)[None, :])[None]


class Attention(Layer):
    """Dot-product attention (Luong style) over `[query, value]` or `[query, value, key]`.

    Scores are `query · keyᵀ` (times a learned `scale` with `use_scale`) for `score_mode="dot"`,
    or `concat_score_weight * sum(tanh(scale * (query + key)))` for `score_mode="concat"`; a
    softmax over the value steps weighs `value`. Call with `mask=[query_mask, value_mask]`
    (taken from the inputs' masks by default), `return_attention_scores=True` to also get the
    `(batch, Tq, Tv)` weights, and `use_causal_mask=True` for decoder self-attention. The
    output keeps the query mask.

    Args:
        use_scale: Whether to learn a scalar `scale` multiplying the scores.
        score_mode: "dot" or "concat".
        dropout: Fraction of the attention weights dropped in training, in [0, 1].
        seed: An int for reproducible dropout.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"Invalid value for argument score_mode. Expected one of {{'dot', 'concat'}}. "
                f"Received: score_mode={score_mode!r}"
            )
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a float in [0, 1], received {dropout!r}")
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = dropout
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True
        self.scale = self.concat_score_weight = None

    def _validate_inputs(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{name} layer must be called on a list of inputs, namely [query, value] or "
                f"[query, value, key]. Received: inputs={inputs!r:.80}."
            )
        if not 2 <= len(inputs) <= 3:
            raise ValueError(
                f"{name} layer accepts inputs list of length 2 or 3, namely [query, value] or "
                f"[query, value, key]. Received length: {len(inputs)}."
            )
        if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
            raise ValueError(
                f"{name} layer mask must be a list of length 2 or 3, namely [query_mask, value_mask]. "
                f"Received: mask={mask!r:.80}."
            )

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(name="concat_score_weight", shape=(), initializer="ones")
        self.built = True

    def _calculate_scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.moveaxis(key, -1, -2))
            return scores if self.scale is None else scores * self.scale
        summed = ops.expand_dims(query, -2) + ops.expand_dims(key, -3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * ops.sum(ops.tanh(summed), axis=-1)

    def call(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False):
        self._validate_inputs(inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        query_mask = _as_bool(mask[0]) if mask else None
        value_mask = _as_bool(mask[1]) if mask else None
        scores = self._calculate_scores(query, key)
        scores_mask = None if value_mask is None else value_mask[..., None, :]
        if use_causal_mask:
            causal = _causal_mask(scores.shape[-2], scores.shape[-1])
            scores_mask = causal if scores_mask is None else scores_mask & causal
        if scores_mask is not None:
            scores = ops.where(scores_mask, scores, scores - _LARGE_NEGATIVE)
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0 and not in_symbolic_call():
            weights = _dropout(weights, self.dropout, self._rng)
        output = ops.matmul(weights, value)
        if query_mask is not None:
            output = ops.where(query_mask[..., None], output, np.zeros((), output.dtype))
        return (output, weights) if return_attention_scores else output

    def compute_mask(self, inputs, mask=None):
        self._validate_inputs(inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return _as_bool(mask[0])

    def get_config(self):
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


class AdditiveAttention(Attention):
    """Additive attention (Bahdanau style): scores are `sum(scale * tanh(query + key))` over the
    features, `scale` a learned vector of the query's size with `use_scale`. Inputs, masks and
    call arguments are `Attention`'s.

    Args:
        use_scale: Whether to learn the `(dim,)` vector `scale`.
        dropout: Fraction of the attention weights dropped in training, in [0, 1].
        seed: An int for reproducible dropout.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, use_scale=True, dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(input_shape[0][-1],), initializer="glorot_uniform")
        self.built = True

    def _calculate_scores(self, query, key):
        summed = ops.tanh(ops.expand_dims(query, -2) + ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = self.scale * summed
        return ops.sum(summed, axis=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


def _letters(start, count):
    return string.ascii_lowercase[start : start + count]


def _check_sizes(optional=(), **sizes):
    """Raises a ValueError naming the first size that is not a positive int (None allowed for
    the names in `optional`)."""
    for name, value in sizes.items():
        if name in optional and value is None:
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a positive integer"
                f"{' or None' if name in optional else ''}. Received: {name}={value!r}"
            )


class _HeadsAttention(Layer):
    """What `MultiHeadAttention` and `GroupQueryAttention` share: the arguments of their
    projections, the `(query, value, key)` call that takes the inputs' masks, the attention mask
    (input masks, causal, sliding window, `attention_mask`) and scaled dot-product attention
    over the projected heads. Subclasses build the projections and the equations.
    """

    _regularize_own_output = False

    def __init__(
        self,
        dropout,
        use_bias,
        sliding_window,
        flash_attention,
        kernel_initializer,
        bias_initializer,
        kernel_regularizer,
        bias_regularizer,
        activity_regularizer,
        kernel_constraint,
        bias_constraint,
        use_gate,
        seed,
        **kwargs,
    ):
        _check_sizes(optional=("sliding_window",), sliding_window=sliding_window)
        if flash_attention:
            raise ValueError("flash_attention: only False or None is supported (rnnkit computes exact attention).")
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a float in [0, 1], received {dropout!r}")
        # As in Keras, the activity regularizer applies to each projection's output (the output
        # projection's is the layer's output); GroupQueryAttention also applies it to its own
        # output, so Keras counts that output twice.
        projection_activity = regularizers.get(activity_regularizer)
        own_activity = projection_activity if self._regularize_own_output else None
        super().__init__(activity_regularizer=own_activity, **kwargs)
        self.projection_activity_regularizer = projection_activity
        self.supports_masking = True
        self.dropout = dropout
        self.use_bias = use_bias
        self.use_gate = use_gate
        self.sliding_window = sliding_window
        self.flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _projection(self, name, equation, output_shape, bias_axes, activation=None):
        """An EinsumDense with the layer's initializers (fresh copies), regularizers and constraints."""
        return EinsumDense(
            equation,
            output_shape,
            activation=activation,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=initializers.get(initializers.serialize(self.kernel_initializer)),
            bias_initializer=initializers.get(initializers.serialize(self.bias_initializer)),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            activity_regularizer=self.projection_activity_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            name=name,
            dtype=self.dtype,
        )

    def _set_attention_axes(self, rank, axes):
        """The einsum equations of attention over `axes` of projected tensors of `rank` axes
        (batch, ..., heads, features): scores `(batch axes, heads, query axes, key axes)`."""
        self._axes = axes
        target = _letters(0, rank)
        batch = [i for i in range(rank) if i not in axes and i != rank - 1]
        source = list(target)
        for n, axis in enumerate(axes):
            source[axis] = string.ascii_lowercase[rank + n]
        source = "".join(source)
        product = "".join([target[i] for i in batch] + [target[i] for i in axes] + [source[i] for i in axes])
        self._score_equation = f"{source},{target}->{product}"
        self._combine_equation = f"{product},{source}->{target}"
        self._score_axes = tuple(range(len(product) - len(axes), len(product)))

    def __call__(self, query, value=None, key=None, **kwargs):
        if value is None:
            raise TypeError(f"Layer {self.name}: missing the `value` argument (call as layer(query, value)).")
        for name, tensor in (("query_mask", query), ("value_mask", value), ("key_mask", key)):
            if kwargs.get(name) is None and getattr(tensor, "_keras_mask", None) is not None:
                kwargs[name] = tensor._keras_mask
        if not self.built:
            self.build(query.shape, value.shape, None if key is None else key.shape)
        return super().__call__(query, value, key, **kwargs)

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask):
        auto = None
        if query_mask is not None:
            auto = _as_bool(query_mask)[..., None]
        for m in (value_mask, key_mask):
            if m is not None:
                m = _as_bool(m)[..., None, :]
                auto = m if auto is None else auto & m
        if use_causal_mask:
            m = _causal_mask(query.shape[1], value.shape[1])
            auto = m if auto is None else auto & m
        if self.sliding_window is not None:
            steps = np.abs(np.arange(query.shape[1])[:, None] - np.arange(value.shape[1])[None, :])
            m = (steps < self.sliding_window)[None]
            auto = m if auto is None else auto & m
        if attention_mask is not None:
            attention_mask = _as_bool(attention_mask)
            return attention_mask if auto is None else attention_mask & auto
        return auto

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        value = self._convert_input(value)
        key = value if key is None else self._convert_input(key)
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        gate = self.gate_dense(query) if self.use_gate else None
        q = self.query_dense(query)
        k, v = self._key_value_heads(self.key_dense(key), self.value_dense(value))
        zero_masked = self._zero_masked(return_attention_scores)
        output, probs = self._attend(q, k, v, mask, self._scale(), training, zero_masked)
        if gate is not None:
            output = output * gate
        output = self.output_dense(output)
        return (output, probs) if return_attention_scores else output

    def _key_value_heads(self, k, v):
        """The projected keys and values, one head per query head."""
        return k, v

    def _zero_masked(self, return_attention_scores):
        """Whether masked probabilities are zeroed after the softmax (see `_attend`)."""
        return True

    def _attend(self, q, k, v, mask, scale, training, zero_masked):
        """`(output, probabilities)` of scaled dot-product attention of the projected heads.

        Masked scores get -1e9; with `zero_masked` the masked probabilities are then zeroed (so a
        fully masked query row outputs zeros), else such a row attends uniformly (Keras's
        `dot_product_attention` path).
        """
        q = q * np.asarray(scale, q.dtype)
        scores = ops.einsum(self._score_equation, k, q)
        if mask is not None:
            while mask.ndim < scores.ndim:
                mask = np.expand_dims(mask, -2 * len(self._axes) - 1)
            scores = ops.where(mask, scores, np.asarray(-_LARGE_NEGATIVE, scores.dtype))
        if len(self._score_axes) == 1:
            probs = ops.softmax(scores, axis=self._score_axes[0])
        else:
            probs = ops.exp(scores - ops.logsumexp(scores, axis=self._score_axes, keepdims=True))
        if mask is not None and zero_masked:
            probs = ops.where(mask, probs, np.zeros((), probs.dtype))
        dropped = probs
        if training and self.dropout > 0 and not in_symbolic_call():
            dropped = _dropout(probs, self.dropout, self._rng)
        return ops.einsum(self._combine_equation, dropped, v), probs

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else convert_to_tensor(_as_bool(mask))

    _keras_attribute_prefix = ""  # Keras's MultiHeadAttention has public projections, its GQA private ones

    def keras_sublayers(self):
        """`(attribute name, projection)` pairs, the names Keras's class gives them (the groups of
        a `.keras` weights file).

        Returns:
            A list of pairs; empty before the layer is built.
        """
        if not self.built:
            return []
        prefix = self._keras_attribute_prefix
        pairs = [
            (f"{prefix}query_dense", self.query_dense),
            (f"{prefix}key_dense", self.key_dense),
            ("_gate_dense", self.gate_dense),
            (f"{prefix}value_dense", self.value_dense),
            (f"{prefix}output_dense", self.output_dense),
        ]
        return [(name, layer) for name, layer in pairs if layer is not None]

    def get_config(self):
        return {
            **super().get_config(),
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.projection_activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        }


class MultiHeadAttention(_HeadsAttention):
    """Multi-head attention (Vaswani et al.), with Keras's arguments and weight layout.

    `query`, `key` and `value` are projected to `num_heads` heads of `key_dim` (`value_dim`)
    features, scaled dot-product attention runs over `attention_axes` in each head, and the heads
    are projected back to the query's last size (or `output_shape`). Weights, in
    `get_weights()` order: `query` kernel `(dim, heads, key_dim)` and bias `(heads, key_dim)`,
    `key` likewise, (`gate` with `use_gate`), `value` with `value_dim`, and `attention_output`
    kernel `(heads, value_dim, *output_shape)` and bias `output_shape`.

    Call as `layer(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False)`; the masks of `query`, `value` and `key` (e.g. from
    `Embedding(mask_zero=True)`) join `attention_mask`, and the output keeps the query's mask.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key.
        value_dim: Size of each head for value; `key_dim` when None.
        dropout: Dropout rate of the attention probabilities.
        use_bias: Whether the projections have biases.
        output_shape: The output's trailing shape (int or tuple); the query's last size when None.
        attention_axes: The axes attention runs over (ints, of the projected query without the
            heads axis); all but the batch, head and feature axes when None.
        sliding_window: Optional int: each query step only sees value steps closer than it.
        flash_attention: Accepted for Keras compatibility; only False/None (the exact path) is
            supported.
        kernel_initializer: Initializer of the projection kernels.
        bias_initializer: Initializer of the projection biases.
        kernel_regularizer: Optional regularizer of the kernels.
        bias_regularizer: Optional regularizer of the biases.
        activity_regularizer: Optional regularizer of each projection's output.
        kernel_constraint: Optional constraint of the kernels.
        bias_constraint: Optional constraint of the biases.
        use_gate: Whether to multiply the attention output by a sigmoid gate projected from the query.
        seed: An int for reproducible dropout.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate=False,
        seed=None,
        **kwargs,
    ):
        _check_sizes(optional=("value_dim",), num_heads=num_heads, key_dim=key_dim, value_dim=value_dim)
        super().__init__(
            dropout,
            use_bias,
            sliding_window,
            flash_attention,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
            kernel_constraint,
            bias_constraint,
            use_gate,
            seed,
            **kwargs,
        )
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        if output_shape:
            if isinstance(output_shape, (int, np.integer)):
                output_shape = (int(output_shape),)
            if not isinstance(output_shape, (list, tuple)):
                raise ValueError(
                    f"output_shape: expected an int, a tuple or a list, received {type(output_shape).__name__}"
                )
            output_shape = tuple(int(d) for d in output_shape)
        self.output_shape = output_shape or None
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(
                f"`attention_axes` must be an int, list, or tuple. Received: attention_axes={attention_axes}"
            )
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)

    def _input_projection(self, name, shape, size, activation=None):
        free = _letters(0, len(shape) - 1)
        dim, heads, features = _letters(len(shape) - 1, 3)
        return self._projection(
            name,
            f"{free}{dim},{dim}{heads}{features}->{free}{heads}{features}",
            (None,) * (len(free) - 1) + (self.num_heads, size),
            heads + features,
            activation,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        """Creates the projections for inputs of these shapes.

        Args:
            query_shape: Shape of the query, batch axis included.
            value_shape: Shape of the value; the query's when None.
            key_shape: Shape of the key; the value's when None.
        """
        value_shape = tuple(query_shape if value_shape is None else value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        query_shape = tuple(query_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ValueError(f"{name}: expected a rank >= 3 shape with a known last size, received {shape}")
        self.query_dense = self._input_projection("query", query_shape, self.key_dim)
        self.key_dense = self._input_projection("key", key_shape, self.key_dim)
        self.gate_dense = None
        if self.use_gate:
            self.gate_dense = self._input_projection("gate", query_shape, self.value_dim, "sigmoid")
        self.value_dense = self._input_projection("value", value_shape, self.value_dim)
        out_shape = self.output_shape or (query_shape[-1],)
        free = _letters(0, len(query_shape) - 1)
        heads, features = _letters(len(query_shape) - 1, 2)
        outs = _letters(len(query_shape) + 1, len(out_shape))
        self.output_dense = self._projection(
            "attention_output",
            f"{free}{heads}{features},{heads}{features}{outs}->{free}{outs}",
            (None,) * (len(free) - 1) + tuple(out_shape),
            outs,
        )
        for layer, shape in (
            (self.query_dense, query_shape),
            (self.key_dense, key_shape),
            (self.gate_dense, query_shape),
            (self.value_dense, value_shape),
            (self.output_dense, (*query_shape[:-1], self.num_heads, self.value_dim)),
        ):
            if layer is not None:
                layer.build(shape)
        # Attention axes index the projected query (batch, ..., heads, features).
        rank = len(query_shape) + 1
        if self.attention_axes is None:
            axes = tuple(range(1, rank - 2))
        else:
            axes = tuple(a % (rank - 1) if a < 0 else a for a in self.attention_axes)
        self._set_attention_axes(rank, axes)
        self.built = True

    def _scale(self):
        return 1.0 / math.sqrt(float(self.key_dim))

    def _config_axes(self):
        # Once built, the resolved axes, as Keras writes them.
        axes = getattr(self, "_axes", None) or self.attention_axes
        return None if axes is None else list(axes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "attention_axes": self._config_axes(),
        }


class GroupQueryAttention(_HeadsAttention):
    """Grouped-query attention (Ainslie et al., 2023), with Keras's arguments and weight layout.

    `num_query_heads` query heads share `num_key_value_heads` key and value heads (each group of
    `num_query_heads // num_key_value_heads` query heads attends with one key/value head);
    `num_key_value_heads == num_query_heads` is multi-head attention and 1 is multi-query
    attention. Inputs are `(batch, steps, features)`. Weights, in `get_weights()` order:
    `query` kernel `(features, num_query_heads, head_dim)` and bias `(num_query_heads,
    head_dim)`, `key` kernel `(key features, num_key_value_heads, head_dim)` and bias, (`gate`
    like `query`, with `use_gate`), `value` like `key`, and `attention_output` kernel
    `(num_query_heads, head_dim, features)` and bias `(features,)`.

    Call as `MultiHeadAttention`: `layer(query, value, key=None, attention_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)`; the scores are
    `(batch, num_query_heads, query steps, value steps)`. As in Keras, a query row whose keys are
    all masked gets zero weights when the layer returns scores or has dropout, and attends
    uniformly otherwise (Keras's fast path).

    Args:
        head_dim: Size of each attention head.
        num_query_heads: Number of query heads.
        num_key_value_heads: Number of key and value heads; divides `num_query_heads`.
        dropout: Dropout rate of the attention probabilities.
        use_bias: Whether the projections have biases.
        sliding_window: Optional int: each query step only sees value steps closer than it.
        flash_attention: Accepted for Keras compatibility; only False/None (the exact path) is
            supported.
        kernel_initializer: Initializer of the projection kernels.
        bias_initializer: Initializer of the projection biases.
        kernel_regularizer: Optional regularizer of the kernels.
        bias_regularizer: Optional regularizer of the biases.
        activity_regularizer: Optional regularizer of each projection's output and, again, of
            the layer's output (as Keras counts it).
        kernel_constraint: Optional constraint of the kernels.
        bias_constraint: Optional constraint of the biases.
        use_gate: Whether to multiply the attention output by a sigmoid gate projected from the query.
        seed: An int for reproducible dropout.
        **kwargs: Base `Layer` arguments.
    """

    _keras_attribute_prefix = "_"
    keras_weights_group = "grouped_query_attention"  # Keras's class is GroupedQueryAttention
    _regularize_own_output = True

    def __init__(
        self,
        head_dim,
        num_query_heads,
        num_key_value_heads,
        dropout=0.0,
        use_bias=True,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate=False,
        seed=None,
        **kwargs,
    ):
        _check_sizes(head_dim=head_dim, num_query_heads=num_query_heads, num_key_value_heads=num_key_value_heads)
        if num_query_heads % num_key_value_heads:
            raise ValueError(
                "`num_query_heads` must be divisible by `num_key_value_heads`. Received: "
                f"num_query_heads={num_query_heads}, num_key_value_heads={num_key_value_heads}"
            )
        super().__init__(
            dropout,
            use_bias,
            sliding_window,
            flash_attention,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
            kernel_constraint,
            bias_constraint,
            use_gate,
            seed,
            **kwargs,
        )
        self.head_dim = int(head_dim)
        self.num_query_heads = int(num_query_heads)
        self.num_key_value_heads = int(num_key_value_heads)
        self.num_repeats = self.num_query_heads // self.num_key_value_heads

    def build(self, query_shape, value_shape=None, key_shape=None):
        """Creates the projections for inputs of these shapes.

        Args:
            query_shape: Shape of the query `(batch, steps, features)`.
            value_shape: Shape of the value; the query's when None.
            key_shape: Shape of the key; the value's when None.
        """
        query_shape = tuple(query_shape)
        value_shape = query_shape if value_shape is None else tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(
                    f"{name}: expected a shape (batch, steps, features) with known features, received {shape}"
                )
        if value_shape[1] != key_shape[1]:
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        query_heads = (None, self.num_query_heads, self.head_dim)
        kv_heads = (None, self.num_key_value_heads, self.head_dim)
        self.query_dense = self._projection("query", "bqm,muh->bquh", query_heads, "uh")
        self.key_dense = self._projection("key", "bkm,mvh->bkvh", kv_heads, "vh")
        self.gate_dense = None
        if self.use_gate:
            self.gate_dense = self._projection("gate", "bqm,muh->bquh", query_heads, "uh", "sigmoid")
        self.value_dense = self._projection("value", "bkm,mvh->bkvh", kv_heads, "vh")
        self.output_dense = self._projection("attention_output", "bquh,uhm->bqm", (None, query_shape[-1]), "m")
        for layer, shape in (
            (self.query_dense, query_shape),
            (self.key_dense, key_shape),
            (self.gate_dense, query_shape),
            (self.value_dense, value_shape),
            (self.output_dense, (None, None, self.num_query_heads, self.head_dim)),
        ):
            if layer is not None:
                layer.build(shape)
        self._set_attention_axes(4, (1,))
        self.built = True

    def _scale(self):
        return 1.0 / math.sqrt(float(self.head_dim))

    def _key_value_heads(self, k, v):
        return ops.repeat(k, self.num_repeats, axis=2), ops.repeat(v, self.num_repeats, axis=2)

    def _zero_masked(self, return_attention_scores):
        return bool(return_attention_scores) or self.dropout > 0

    def get_config(self):
        return {
            **super().get_config(),
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
        }
