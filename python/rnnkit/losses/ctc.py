"""The CTC loss of sequence labelling (speech, handwriting): `ctc` and `CTC`."""

from rnnkit import ops
from rnnkit.losses.loss import LossFunctionWrapper


def ctc(y_true, y_pred):
    """CTC loss per sample, class 0 the blank, every output step used.

    Args:
        y_true: `(batch, max_length)` integer labels, padded with 0 (the blank, never a class).
        y_pred: `(batch, time, num_classes)` logits (not softmax-normalised).

    Returns:
        A `(batch,)` Tensor of losses.
    """
    y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
    if len(y_true.shape) != 2:
        raise ValueError(
            f"y_true: expected (batch_size, max_length) integer labels, received shape {tuple(y_true.shape)}"
        )
    if len(y_pred.shape) != 3:
        raise ValueError(
            f"y_pred: expected (batch_size, max_length, num_classes) logits, received shape {tuple(y_pred.shape)}"
        )
    batch, steps = y_pred.shape[0], y_pred.shape[1]
    label_length = ops.sum(ops.cast(ops.not_equal(y_true, 0), "int32"), axis=-1)
    output_length = ops.full((batch,), steps, dtype="int32")
    return ops.ctc_loss(y_true, y_pred, label_length, output_length, mask_index=0)


class CTC(LossFunctionWrapper):
    """CTC loss; see `ctc`.

    Args:
        reduction: See `Loss`.
        name: The loss's name.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)
