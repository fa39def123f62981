"""Connectionist temporal classification: the CTC loss and greedy decoding, as Keras 3 defines them.

The loss is the negative log-likelihood of the target label sequence summed over every alignment
of it with the output steps (blank `mask_index` between and around labels, repeated labels
merged). It runs as a scan over the steps, vectorised over the batch, in log space with
Keras's finite "log zero" (`-1e5`), so an impossible target gives a large finite loss, never
infinity or NaN. The gradient is the exact reverse of that scan (what automatic differentiation
of Keras's formulation gives), chained through the log-softmax of the logits.
"""

import numpy as np

from rnnkit.ops.core import op
from rnnkit.ops.nn import log_softmax_array

__all__ = ["ctc_decode", "ctc_loss"]

# Keras's stand-in for log(0).
_LOG_ZERO = -1e5


def _integers(value, name, shape):
    """`value` as an int array of `shape`, or a ValueError naming `name`."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise ValueError(f"{name}: expected integers, received dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, received {array.shape}")
    return array.astype(np.int64)


def _log_add(x, y):
    """`log(exp(x) + exp(y))` and the weights `exp(x - z)`, `exp(y - z)` of its gradient."""
    z = np.logaddexp(x, y)
    return z, np.exp(x - z), np.exp(y - z)


@op(inputs=4)
def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC loss per sample.

    Args:
        target: `(batch, max_label_length)` integer labels (entries past a sample's
            `target_length` are ignored).
        output: `(batch, max_time, num_classes)` logits (not softmax-normalised).
        target_length: `(batch,)` label counts.
        output_length: `(batch,)` steps of `output` each sample uses.
        mask_index: The blank class.

    Returns:
        A `(batch,)` Tensor of losses (float32 at least).
    """
    if output.ndim != 3:
        raise ValueError(f"output: expected (batch, time, classes) logits, received shape {output.shape}")
    batch, steps, classes = output.shape
    if target.ndim != 2 or target.shape[0] != batch:
        raise ValueError(f"target: expected shape ({batch}, max_label_length), received {target.shape}")
    labels = _integers(target, "target", target.shape)
    n = labels.shape[1]
    target_length = _integers(target_length, "target_length", (batch,))
    output_length = _integers(output_length, "output_length", (batch,))
    if not 0 <= mask_index < classes:
        raise ValueError(f"mask_index: expected a class in [0, {classes}), received {mask_index}")
    if np.any((labels < 0) | (labels >= classes)):
        raise ValueError(f"target: expected labels in [0, {classes}), received {labels.min()}..{labels.max()}")
    if np.any((target_length < 0) | (target_length > n)):
        raise ValueError(f"target_length: expected values in [0, {n}], received {target_length.tolist()}")
    dtype = np.result_type(output.dtype, np.float32)
    logprobs = log_softmax_array(output.astype(dtype))
    repeat = np.zeros((batch, n), dtype)
    repeat[:, :-1] = labels[:, :-1] == labels[:, 1:]
    rows = np.arange(batch)[:, None]
    emit_lp = logprobs[rows, :, labels].transpose(2, 0, 1) if n else np.zeros((steps, batch, 0), dtype)
    blank_lp = logprobs[:, :, mask_index].T[:, :, None]  # (steps, batch, 1)
    padded = (np.arange(steps)[:, None] >= output_length[None, :])[:, :, None]  # (steps, batch, 1)

    # phi: log-probabilities of having emitted n labels and being in a blank; emit: of being on
    # label n. `tape` keeps each step's inputs and the weights of its log-additions.
    phi = np.full((batch, n + 1), _LOG_ZERO, dtype)
    phi[:, 0] = 0.0
    emit = np.full((batch, n), _LOG_ZERO, dtype)
    tape = []
    for t in range(steps):
        into_blank, v_stay, v_from = _log_add(phi[:, 1:], emit + _LOG_ZERO * repeat)
        phi1 = np.concatenate([phi[:, :1], into_blank], axis=1)
        next_emit, u_new, u_same = _log_add(phi1[:, :-1] + emit_lp[t], emit + emit_lp[t])
        stay = phi1 + blank_lp[t]
        after, w_stay, w_from = _log_add(stay[:, 1:], emit + blank_lp[t] + _LOG_ZERO * (1.0 - repeat))
        next_phi = np.concatenate([stay[:, :1], after], axis=1)
        tape.append((v_stay, v_from, u_new, u_same, w_stay, w_from))
        phi = np.where(padded[t], phi, next_phi)
        emit = np.where(padded[t], emit, next_emit)
    final, f_phi, f_emit = _log_add(phi[:, 1:], emit)
    last = np.concatenate([phi[:, :1], final], axis=1)
    loss = -last[np.arange(batch), target_length]

    def backward(grad):
        g_last = np.zeros((batch, n + 1), dtype)
        g_last[np.arange(batch), target_length] = -np.asarray(grad, dtype)
        g_phi = np.concatenate([g_last[:, :1], g_last[:, 1:] * f_phi], axis=1)
        g_emit = g_last[:, 1:] * f_emit
        g_emit_lp = np.zeros((steps, batch, n), dtype)
        g_blank_lp = np.zeros((steps, batch), dtype)
        for t in reversed(range(steps)):
            v_stay, v_from, u_new, u_same, w_stay, w_from = tape[t]
            used = ~padded[t]
            g_next_phi, g_next_emit = np.where(used, g_phi, 0), np.where(used, g_emit, 0)
            g_phi, g_emit = np.where(used, 0, g_phi), np.where(used, 0, g_emit)
            # next_phi = [stay[0], logadd(stay[1:], emit + blank + ...)]
            g_from = g_next_phi[:, 1:] * w_from
            g_stay = np.concatenate([g_next_phi[:, :1], g_next_phi[:, 1:] * w_stay], axis=1)
            g_emit += g_from
            g_blank_lp[t] = g_from.sum(axis=1) + g_stay.sum(axis=1)
            # next_emit = logadd(phi1[:-1] + emit_lp, emit + emit_lp); stay = phi1 + blank
            g_new, g_same = g_next_emit * u_new, g_next_emit * u_same
            g_emit_lp[t] = g_new + g_same
            g_emit += g_same
            g_phi1 = g_stay
            g_phi1[:, :-1] += g_new
            # phi1 = [phi[0], logadd(phi[1:], emit + ...)]
            g_phi = g_phi + np.concatenate([g_phi1[:, :1], g_phi1[:, 1:] * v_stay], axis=1)
            g_emit += g_phi1[:, 1:] * v_from
        g_logprobs = np.zeros((batch, steps, classes), dtype)
        np.add.at(g_logprobs, (rows, slice(None), labels), g_emit_lp.transpose(1, 2, 0))
        g_logprobs[:, :, mask_index] += g_blank_lp.T
        g_output = g_logprobs - np.exp(logprobs) * g_logprobs.sum(axis=-1, keepdims=True)
        return None, g_output.astype(output.dtype, copy=False), None, None

    return loss, backward


def ctc_decode(
    inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1, merge_repeated=True, mask_index=0
):
    """Decodes CTC outputs into label sequences.

    Greedy decoding takes the most likely class of each step, merges repeats (with
    `merge_repeated`) and drops blanks. Beam search keeps the `beam_width` most likely label
    sequences (prefixes) after each step, each sequence's probability summed over the alignments
    ending in a blank and those ending in its last label (a repeated label needs a blank between
    its copies), and returns the `top_paths` most likely at the end; it reads `inputs` as logits.

    Args:
        inputs: `(batch, max_time, num_classes)` scores (logits or probabilities for greedy
            decoding, logits for beam search).
        sequence_lengths: `(batch,)` steps each sample uses.
        strategy: `"greedy"` or `"beam_search"`.
        beam_width: Sequences beam search keeps.
        top_paths: Sequences beam search returns.
        merge_repeated: Whether greedy decoding counts consecutive repeats of a class once (beam
            search always does, as Keras).
        mask_index: The blank class (None: the last class).

    Returns:
        `(decoded, scores)`: `(paths, batch, max_time)` int32 labels, each sample's first,
        padded with -1 (`paths` is 1 for greedy decoding, else `top_paths`); `(batch, paths)`
        scores: for greedy decoding the negative sum of each sample's per-step maxima, for beam
        search each sequence's log-probability.
    """
    from rnnkit.tensor import wrap

    if strategy not in ("greedy", "beam_search"):
        raise ValueError(f"strategy: expected 'greedy' or 'beam_search', received {strategy!r}")
    scores = np.asarray(inputs)
    if scores.ndim != 3:
        raise ValueError(f"inputs: expected (batch, time, classes), received shape {scores.shape}")
    batch, steps, classes = scores.shape
    lengths = _integers(sequence_lengths, "sequence_lengths", (batch,))
    blank = classes - 1 if mask_index is None else mask_index
    if not 0 <= blank < classes:
        raise ValueError(f"mask_index: expected a class in [0, {classes}), received {mask_index}")
    dtype = np.result_type(scores.dtype, np.float32)
    if strategy == "beam_search":
        for name, value in (("beam_width", beam_width), ("top_paths", top_paths)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, received {value!r}")
        if top_paths > beam_width:
            raise ValueError(f"top_paths: expected at most beam_width={beam_width}, received {top_paths}")
        logprobs = log_softmax_array(scores.astype(dtype))
        decoded = np.full((top_paths, batch, steps), -1, np.int32)
        best = np.full((batch, top_paths), -np.inf, dtype)
        for b in range(batch):
            for rank, (path, score) in enumerate(_beam_search(logprobs[b], lengths[b], beam_width, blank)[:top_paths]):
                decoded[rank, b, : len(path)] = path
                best[b, rank] = score
        return wrap(decoded), wrap(best)
    beyond = np.arange(steps)[None, :] >= lengths[:, None]
    best = np.where(beyond, blank, scores.argmax(axis=-1))
    score = -np.where(beyond, 0.0, scores.max(axis=-1)).sum(axis=1, keepdims=True)
    if merge_repeated:
        best[:, 1:] = np.where(best[:, 1:] == best[:, :-1], blank, best[:, 1:])
    kept = best != blank
    # Each sample's kept labels first, in order, then -1.
    order = np.argsort(np.where(kept, np.arange(steps), steps), axis=1, kind="stable")
    decoded = np.take_along_axis(np.where(kept, best, -1), order, axis=1).astype(np.int32)
    return wrap(decoded[None]), wrap(score.astype(dtype))


def _beam_search(logprobs, length, width, blank):
    """One sample's prefix beam search: `(labels, log-probability)` pairs, most likely first.

    Each kept prefix has two scores, of its alignments ending in a blank (`masked`) and of those
    ending in its last label (`emitted`). The first step starts from its `width` most likely
    classes, as Keras; every later step up to `length` extends each prefix by every class.
    """
    first = logprobs[0]
    start = np.argsort(first, kind="stable")[::-1][: min(width, len(first))]
    prefixes = {}
    for c in start:
        key = () if c == blank else (int(c),)
        emitted, masked = prefixes.get(key, (-np.inf, -np.inf))
        prefixes[key] = (emitted, np.logaddexp(masked, first[c])) if c == blank else (first[c], masked)
    labels = np.array([c for c in range(len(first)) if c != blank])
    for t in range(1, max(1, min(length, len(logprobs)))):
        lp = logprobs[t]
        paths = list(prefixes)
        emitted = np.array([prefixes[p][0] for p in paths])
        masked = np.array([prefixes[p][1] for p in paths])
        both = np.logaddexp(emitted, masked)
        last = np.array([p[-1] if p else -1 for p in paths])
        # Staying on a prefix: a blank after either ending, or its last label repeated.
        stay_masked = both + lp[blank]
        stay_emitted = np.where(last >= 0, emitted + lp[np.maximum(last, 0)], -np.inf)
        # Growing it by a label: a repeat of its last label only after a blank.
        grow = np.where(labels[None, :] == last[:, None], masked[:, None], both[:, None]) + lp[labels][None, :]
        index = {p: i for i, p in enumerate(paths)}
        for i, p in enumerate(paths):
            parent = index.get(p[:-1]) if p else None
            if parent is not None:  # p grown from another kept prefix: one sequence, scores summed
                j = int(np.searchsorted(labels, p[-1]))
                stay_emitted[i] = np.logaddexp(stay_emitted[i], grow[parent, j])
                grow[parent, j] = -np.inf
        totals = np.concatenate([np.logaddexp(stay_emitted, stay_masked), grow.ravel()])
        keep = np.argsort(totals, kind="stable")[::-1][:width]
        kept = {}
        for k in keep:
            if totals[k] == -np.inf:
                continue
            if k < len(paths):
                kept[paths[k]] = (stay_emitted[k], stay_masked[k])
            else:
                i, j = divmod(k - len(paths), len(labels))
                kept[paths[i] + (int(labels[j]),)] = (grow[i, j], -np.inf)
        prefixes = kept
    ranked = sorted(prefixes.items(), key=lambda item: -np.logaddexp(*item[1]))
    return [(list(path), np.logaddexp(*scores)) for path, scores in ranked]
