"""Layers that merge a list of inputs: `Concatenate`, `Add`, `Subtract`, `Multiply`, `Average`,
`Maximum`, `Minimum` and `Dot`."""

import functools

import numpy as np

from rnnkit import ops
from rnnkit.layers.layer import Layer


def _check_masks(inputs, mask):
    if not isinstance(mask, (tuple, list)):
        raise ValueError(f"`mask` should be a list. Received: mask={mask}")
    if not isinstance(inputs, (tuple, list)):
        raise ValueError(f"`inputs` should be a list. Received: inputs={inputs}")
    if len(mask) != len(inputs):
        raise ValueError(
            "The lists `inputs` and `mask` should have the same length. "
            f"Received: inputs of length {len(inputs)}, and mask of length {len(mask)}"
        )


def _expand_to_rank(x, rank):
    """`x` with size-1 axes inserted after the batch axis up to `rank`."""
    return x if x.ndim == rank else ops.reshape(x, (x.shape[0], *(1,) * (rank - x.ndim), *x.shape[1:]))


class Merge(Layer):
    """Base of the elementwise merge layers: inputs of different ranks get size-1 axes inserted
    after the batch axis, so `(batch, 4)` broadcasts against `(batch, 3, 4)`.

    The output mask is the OR of the input masks, or None when an input has none.

    Args:
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _merge_function(self, inputs):
        raise NotImplementedError

    def build(self, input_shape):
        if not input_shape or not isinstance(input_shape[0], (tuple, list)):
            raise ValueError(
                "A merge layer should be called on a list of inputs. "
                f"Received: input_shape={input_shape} (not a list of shapes)"
            )
        if len({s[0] for s in input_shape if s} - {None}) > 1:
            raise ValueError(
                f"Cannot merge tensors with different batch sizes. Received tensors with shapes {input_shape}"
            )
        # Sizes broadcast from the right, as the axes inserted in `call` make them.
        for shape in input_shape[1:]:
            for i, j in zip(reversed(input_shape[0][1:]), reversed(shape[1:])):
                if None not in (i, j) and 1 not in (i, j) and i != j:
                    raise ValueError(f"Inputs have incompatible shapes. Received shapes {input_shape}")
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. Received: inputs={inputs} (not a list of tensors)"
            )
        rank = max(x.ndim for x in inputs)
        return self._merge_function([_expand_to_rank(x, rank) for x in inputs])

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        _check_masks(inputs, mask)
        if any(m is None for m in mask):
            return None
        return functools.reduce(np.logical_or, [np.asarray(m, bool) for m in mask])


class Add(Merge):
    """Adds a list of inputs elementwise (with broadcasting, see `Merge`)."""

    def _merge_function(self, inputs):
        return functools.reduce(ops.add, inputs)


class Concatenate(Merge):
    """Concatenates a list of inputs along `axis`; their other sizes must agree.

    The output mask (when an input has one) concatenates the masks along `axis`, with all-True
    masks for unmasked inputs, and keeps a position where any of its features is unmasked.

    Args:
        axis: The axis to concatenate along.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape):
        if not input_shape or not isinstance(input_shape[0], (tuple, list)):
            raise ValueError(
                "A `Concatenate` layer should be called on a list of at least 1 input. "
                f"Received: input_shape={input_shape}"
            )
        ranks = {len(shape) for shape in input_shape}
        mismatch = len(ranks) > 1
        if not mismatch:
            axis = self.axis % ranks.pop()
            sizes = zip(*(s[:axis] + s[axis + 1 :] for s in map(tuple, input_shape)))
            mismatch = any(len(set(dims) - {None}) > 1 for dims in sizes)
        if mismatch:
            raise ValueError(
                "A `Concatenate` layer requires inputs with matching shapes except for the "
                f"concatenation axis. Received: input_shape={input_shape}"
            )
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. Received: inputs={inputs} (not a list of tensors)"
            )
        return ops.concatenate(inputs, axis=self.axis)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        _check_masks(inputs, mask)
        if all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask):
            m = np.ones(x.shape, bool) if m is None else np.asarray(m, bool)
            masks.append(np.broadcast_to(m[..., None], x.shape) if m.ndim < x.ndim else m)
        return np.concatenate(masks, axis=self.axis).any(axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _input_masks(inputs, mask):
    """Each input's mask broadcast to the input's shape (None where it has none)."""
    masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
    masks += [None] * (len(inputs) - len(masks))
    out = []
    for x, m in zip(inputs, masks):
        if m is not None:
            m = np.asarray(m, bool)
            m = np.broadcast_to(m[..., None] if m.ndim < x.ndim else m, x.shape)
        out.append(m)
    return out


class _MaskedMerge(Merge):
    """A merge whose masked entries take no part in the result, as Keras's `Multiply`,
    `Maximum` and `Minimum` do."""

    def call(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. Received: inputs={inputs} (not a list of tensors)"
            )
        rank = max(x.ndim for x in inputs)
        expanded = [_expand_to_rank(x, rank) for x in inputs]
        if mask is None or all(m is None for m in mask):
            return self._merge_function(expanded)
        return self._masked_merge(expanded, _input_masks(expanded, mask))


class Subtract(Merge):
    """Subtracts the second of two inputs from the first, elementwise.

    Args:
        **kwargs: Base `Layer` arguments.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                f"A `Subtract` layer should be called on exactly 2 inputs. Received: input_shape={input_shape}"
            )

    def _merge_function(self, inputs):
        if len(inputs) != 2:
            raise ValueError(f"A `Subtract` layer should be called on exactly 2 inputs. Received {len(inputs)} inputs")
        return ops.subtract(inputs[0], inputs[1])


class Average(Merge):
    """Averages a list of inputs elementwise.

    Args:
        **kwargs: Base `Layer` arguments.
    """

    def _merge_function(self, inputs):
        return functools.reduce(ops.add, inputs) / len(inputs)


class Multiply(_MaskedMerge):
    """Multiplies a list of inputs elementwise. Masked entries count as 1; when every input has a
    mask, entries masked in all of them are 0.

    Args:
        **kwargs: Base `Layer` arguments.
    """

    def _merge_function(self, inputs):
        return functools.reduce(ops.multiply, inputs)

    def _masked_merge(self, inputs, masks):
        output, output_mask = None, None
        every = all(m is not None for m in masks)
        for x, m in zip(inputs, masks):
            if m is not None:
                x = ops.where(m, x, np.ones((), x.dtype))
                if every:
                    output_mask = m if output_mask is None else output_mask | m
            output = x if output is None else ops.multiply(output, x)
        if every:
            output = ops.where(output_mask, output, np.zeros((), output.dtype))
        return output


class _Extremum(_MaskedMerge):
    """`Maximum`/`Minimum`: a masked entry takes the other operand's value."""

    _op = None

    def _merge_function(self, inputs):
        return functools.reduce(type(self)._op, inputs)

    def _masked_merge(self, inputs, masks):
        output, output_mask = inputs[0], masks[0]
        for x, m in zip(inputs[1:], masks[1:]):
            if m is not None:
                x = ops.where(m, x, output)
            if output_mask is not None:
                output = ops.where(output_mask, output, x)
            output_mask = output_mask | m if m is not None and output_mask is not None else None
            output = type(self)._op(output, x)
        return output


class Maximum(_Extremum):
    """Takes the elementwise maximum of a list of inputs (masked entries left out).

    Args:
        **kwargs: Base `Layer` arguments.
    """

    _op = staticmethod(ops.maximum)


class Minimum(_Extremum):
    """Takes the elementwise minimum of a list of inputs (masked entries left out).

    Args:
        **kwargs: Base `Layer` arguments.
    """

    _op = staticmethod(ops.minimum)


def _l2_normalize(x, axis):
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(square_sum, np.asarray(1e-24, square_sum.dtype)))


class Dot(Merge):
    """The dot product of two batched inputs along `axes` (one axis of each, never the batch
    axis): `(b, n, d)` and `(b, m, d)` with `axes=2` give `(b, n, m)`; two `(b, d)` give `(b, 1)`.
    The output has no mask.

    Args:
        axes: An int (the same axis of both) or a pair of ints.
        normalize: Whether to L2-normalise both inputs along their axis first (cosine proximity).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, (int, np.integer)) for a in axes):
                raise ValueError(f"axes: expected an int or a pair of ints, received {axes!r}")
            axes = [int(a) for a in axes]
        elif not isinstance(axes, (int, np.integer)) or isinstance(axes, bool):
            raise TypeError(f"Invalid type for argument `axes`: it should be a list or an int. Received: axes={axes!r}")
        else:
            axes = int(axes)
        self.axes = axes
        self.normalize = normalize

    def _resolve(self, ranks):
        axes = [self.axes] * 2 if isinstance(self.axes, int) else self.axes
        return [a % r if a < 0 else a for a, r in zip(axes, ranks)]

    def build(self, input_shape):
        if not input_shape or not isinstance(input_shape[0], (tuple, list)) or len(input_shape) != 2:
            raise ValueError(
                f"A `Dot` layer should be called on a list of 2 inputs. Received: input_shape={input_shape}"
            )
        a0, a1 = self._resolve([len(s) for s in input_shape])
        d0, d1 = input_shape[0][a0], input_shape[1][a1]
        if None not in (d0, d1) and d0 != d1:
            raise ValueError(
                f"Incompatible input shapes: axis values {d0} (at axis {a0}) != {d1} (at axis {a1}). "
                f"Full input shapes: {tuple(input_shape[0])}, {tuple(input_shape[1])}"
            )
        self.built = True

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("A `Dot` layer should be called on exactly 2 inputs.")
        x, y = inputs
        a0, a1 = self._resolve([x.ndim, y.ndim])
        if 0 in (a0, a1):
            raise ValueError(f"axes: cannot take the dot product over the batch axis 0, received {self.axes!r}")
        if self.normalize:
            x, y = _l2_normalize(x, a0), _l2_normalize(y, a1)
        # Contract the two axes with einsum; the other axes of x come first, then y's.
        letters = "abcdefghijklmnopqrstuvwxyz"
        xs = ["a", *letters[1 : x.ndim]]
        ys = ["a", *letters[x.ndim : x.ndim + y.ndim - 1]]
        ys[a1] = xs[a0]
        out = [c for i, c in enumerate(xs) if i != a0] + [c for i, c in enumerate(ys) if i not in (0, a1)]
        result = ops.einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y)
        return ops.expand_dims(result, -1) if result.ndim == 1 else result

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}
