"""The layout of Keras's own files, which the reader (`keras_reader`) and the writer
(`keras_writer`) share: the members of a `.keras` archive and the tree of its weights file.

A `.keras` archive is a zip of `config.json` (the architecture in Keras's dialect: functional
layers list their `inbound_nodes`, tensors are `__keras_tensor__` objects, dtypes are
`DTypePolicy` objects), `metadata.json` and `model.weights.h5`. The HDF5 file holds a tree that
follows the objects' attributes: `layers/<class in snake case>[_<k>]/vars/<i>` for each layer of a
model (the k-th layer of the same class gets `_k`), `.../cell/vars` for a recurrent layer's cell,
`forward_layer` and `backward_layer` for Bidirectional, `layer` for TimeDistributed and other
Wrappers, `cells/...` for StackedRNNCells, the sub-layers of a layer with `keras_sublayers()`
(attention's projections) under their Keras attribute names, and `optimizer/vars/<i>` for the
optimizer's state.

A legacy `.h5` model has the config as a JSON attribute and one group per layer under
`model_weights`, whose `weight_names` attribute lists the layer's arrays in `get_weights()` order.
"""

import re

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("Keras's HDF5 files need h5py: `pip install h5py`.") from None
    return h5py


def _snake_case(name):
    """Keras's name for a class in the weights tree ("SimpleRNN" -> "simple_rnn")."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_class_name(obj):
    from rnnkit.models import Model, Sequential

    if isinstance(obj, Sequential):
        return "Sequential"
    if type(obj) is Model:
        return "Functional"
    return type(obj).__name__


# --- the weights tree ------------------------------------------------------------------------


def _is_model(obj):
    from rnnkit.models import Model

    return isinstance(obj, Model)


def _weight_entries(obj, path, sublayer_groups=True):
    """`(path, name, variables)` for `obj` and everything under it, as Keras lays out its tree
    (`sublayer_groups=False`: the tree rnnkit wrote before, attention's arrays in one group)."""
    from rnnkit.layers import Bidirectional, InputLayer, StackedRNNCells, Wrapper

    yield path, obj.name, []
    if _is_model(obj):
        layers = [layer for layer in obj.layers if not isinstance(layer, InputLayer)]
        yield from _container(layers, _join(path, "layers"), sublayer_groups)
    elif isinstance(obj, Bidirectional):
        yield from _weight_entries(obj.forward_layer, _join(path, "forward_layer"), sublayer_groups)
        yield from _weight_entries(obj.backward_layer, _join(path, "backward_layer"), sublayer_groups)
    elif isinstance(obj, Wrapper):
        yield (
            path,
            obj.name,
            [w for w in obj._own_weights if w.trainable] + [w for w in obj._own_weights if not w.trainable],
        )
        yield from _weight_entries(obj.layer, _join(path, "layer"), sublayer_groups)
    elif isinstance(obj, StackedRNNCells):
        yield from _container(obj.cells, _join(path, "cells"), sublayer_groups)
    elif hasattr(obj, "cell") and hasattr(obj.cell, "weights"):
        yield from _weight_entries(obj.cell, _join(path, "cell"), sublayer_groups)
    elif hasattr(obj, "keras_sublayers") and sublayer_groups:
        # Layers built of sub-layers (attention's projections): Keras files keep each one under
        # the attribute name Keras's class gives it.
        yield path, obj.name, list(obj._own_weights)
        for name, layer in obj.keras_sublayers():
            yield from _weight_entries(layer, _join(path, name), sublayer_groups)
    else:
        yield path, obj.name, list(obj.weights)


def _container(objects, path, sublayer_groups):
    used = {}
    for obj in objects:
        # A class Keras exports under another name keeps its Python name's in the tree.
        base = getattr(obj, "keras_weights_group", None) or _snake_case(_keras_class_name(obj))
        used[base] = used.get(base, -1) + 1
        yield from _weight_entries(
            obj, _join(path, base if used[base] == 0 else f"{base}_{used[base]}"), sublayer_groups
        )


def _join(path, name):
    return f"{path}/{name}" if path else name


def _tree(model, sublayer_groups=True):
    """`{path: (name, variables)}` for the model's weights (paths with variables only; a later
    entry of the same path, as the plain layer after its empty header, wins)."""
    entries = {}
    for path, name, variables in _weight_entries(model, "", sublayer_groups):
        entries[path] = (name, variables)
    return {path: entry for path, entry in entries.items() if entry[1]}
