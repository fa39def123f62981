"""`model.summary()`: the layer table of the guide's Keras, with the same shapes and counts."""

import numpy as np


def _print_row(fields, positions, print_fn):
    line = ""
    for i, (field, end) in enumerate(zip(fields, positions)):
        if i:
            line = line[:-1] + " "  # keep a space between a truncated field and the next
        line = (line + str(field))[:end]
        line += " " * (end - len(line))
    print_fn(line)


def _shape_text(shapes):
    return str(shapes[0]) if len(shapes) == 1 else "[" + ", ".join(str(s) for s in shapes) + "]"


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def print_summary(model, rows, line_length=None, positions=None, print_fn=None):
    """Prints the table.

    Args:
        model: The model (for its name and weights).
        rows: Per layer `(layer, output_shapes, connections)`; `connections` is None for
            Sequential models (no "Connected to" column), else a list of `name[node][index]`.
        line_length: Total width (65, or 98 with connections, by default).
        positions: Relative or absolute column ends.
        print_fn: Replaces `print`.
    """
    print_fn = print_fn or print
    functional = any(r[2] is not None for r in rows)
    line_length = line_length or (98 if functional else 65)
    positions = positions or ([0.33, 0.55, 0.67, 1.0] if functional else [0.45, 0.85, 1.0])
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    _print_row(headers, positions, print_fn)
    print_fn("=" * line_length)
    for i, (layer, shapes, connections) in enumerate(rows):
        params = layer.count_params() if layer.built else 0
        connections = connections or [""]
        _print_row(
            [f"{layer.name} ({type(layer).__name__})", _shape_text(shapes), params, connections[0]],
            positions,
            print_fn,
        )
        for extra in connections[1:]:
            _print_row(["", "", "", extra], positions, print_fn)
        print_fn(("=" if i == len(rows) - 1 else "_") * line_length)
    trainable = _count(model.trainable_weights)
    total = _count(model.weights)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
