"""Layers that merge a list of inputs: `Concatenate` and `Add`."""

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
