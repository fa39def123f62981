"""Reads Keras's own files (see `keras_format`): the Keras 3 `.keras` archive, `.weights.h5`
weight files and tf.keras's legacy HDF5 models.

Reading builds the model from the config alone (nothing in a file is ever run as code: Lambda
layers are refused), checks every array's declared shape and dtype against the model before its
data is read, and refuses HDF5 links and external storage that would reach outside the file.
"""

import io
import json
import os
import warnings
import zipfile

import numpy as np

from rnnkit.saving.keras_config_reader import compile_args_from_keras, model_config_from_keras
from rnnkit.saving.keras_format import CONFIG, METADATA, WEIGHTS, _h5py, _tree

MAX_JSON_BYTES = 64 << 20


def _checked_get(group, path, what):
    """The object at `path` under `group`, reached through hard links only (a soft or external
    link could point outside the file); None if absent."""
    h5py = _h5py()
    node = group
    for part in path.split("/"):
        if not isinstance(node, h5py.Group) or part not in node:
            return None
        link = node.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"{what}: {path} is a {type(link).__name__}; rnnkit reads arrays stored in the file only.")
        node = node[part]
    return node


def _read_dataset(group, key, shape, dtype, what):
    h5py = _h5py()
    dataset = _checked_get(group, key, what)
    where = f"{group.name}/{key}"
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{what}: expected an array at {where}, found {type(dataset).__name__}.")
    if dataset.external or dataset.is_virtual:
        raise ValueError(
            f"{what}: {where} keeps its data outside the file; rnnkit reads arrays stored in the file only."
        )
    if tuple(dataset.shape) != tuple(shape) or dataset.dtype.kind not in "fiub" or dataset.dtype.hasobject:
        raise ValueError(
            f"{what}: {where} has shape {tuple(dataset.shape)} and dtype {dataset.dtype}, but the model expects "
            f"shape {tuple(shape)} ({dtype})."
        )
    try:
        return np.asarray(dataset[()], dtype=dtype)
    except OSError as err:
        raise ValueError(f"{what}: {where} is corrupt ({err}).") from None


def _read_vars(group, variables, what, where):
    keys = sorted(group.keys(), key=lambda k: (len(k), k)) if group is not None else []
    if keys != [str(i) for i in range(len(variables))]:
        raise ValueError(
            f"{what}: expected {len(variables)} arrays at {where}/vars for this model, found {len(keys)}. "
            "The file was saved from another architecture."
        )
    return [_read_dataset(group, str(i), v.shape, v.dtype, what) for i, v in enumerate(variables)]


def _load_tree(h5, model, what):
    tree = _tree(model)
    earlier = _tree(model, sublayer_groups=False)
    if earlier.keys() != tree.keys() and all(
        len(_checked_get(h5, f"{path}/vars", what) or ()) == len(variables) for path, (_, variables) in earlier.items()
    ):
        tree = earlier  # a file rnnkit wrote before attention's arrays moved to Keras's groups
    values = []
    for path, (_, variables) in tree.items():
        group = _checked_get(h5, f"{path}/vars", what)
        values.append((variables, _read_vars(group, variables, what, path)))
    for variables, arrays in values:  # all or nothing: assign once every array has been read
        for variable, array in zip(variables, arrays):
            variable.assign(array)


def _load_optimizer(h5, model, what):
    group = _checked_get(h5, "optimizer/vars", what)
    if group is None or not len(group):
        return
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)
    arrays = _read_vars(group, optimizer.variables, f"{what}: optimizer state", "optimizer")
    for variable, array in zip(optimizer.variables, arrays):
        variable.assign(array)


def _open_h5(source, what):
    try:
        return _h5py().File(source, "r")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"{what}: not an HDF5 file ({err}).") from None


def _check_member_names(names, filepath):
    for name in names:
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise ValueError(f"{filepath}: refusing archive member {name!r} (an absolute path or a path outside).")
    extra = sorted(set(names) - {CONFIG, METADATA, WEIGHTS})
    if extra:
        raise ValueError(f"{filepath}: unexpected archive members {extra[:5]} in a Keras model file.")


def _member(archive, name, limit, filepath):
    info = archive.getinfo(name)
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{filepath}: {name} declares {info.file_size} bytes, more than the {limit} allowed.")
    try:
        with archive.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{filepath}: {name} is corrupt ({err}).") from None
    if len(data) != info.file_size:
        raise ValueError(f"{filepath}: {name} is corrupt.")
    return data


def _model_bytes(model):
    return sum(int(np.prod(w.shape, dtype=np.int64)) * np.dtype(w.dtype).itemsize for w in model.weights)


def load_archive(archive, filepath, custom_objects, compile):
    """The model in an open Keras 3 `.keras` archive (see `rk.models.load_model`)."""
    from rnnkit.saving.model_file import model_from_config

    names = archive.namelist()
    _check_member_names(names, filepath)
    if CONFIG not in names or WEIGHTS not in names:
        raise ValueError(f"{filepath}: not a Keras model file (members: {sorted(names)[:5]}).")
    try:
        config = json.loads(_member(archive, CONFIG, MAX_JSON_BYTES, filepath))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{filepath}: config.json is not valid JSON ({err}).") from None
    declared = archive.getinfo(WEIGHTS).file_size
    try:
        rnnkit_config = model_config_from_keras(config, custom_objects, f"{filepath}: config.json", declared)
    except ValueError as err:
        if str(err).startswith(str(filepath)):
            raise
        raise ValueError(f"{filepath}: config.json {err}") from None
    model = model_from_config(rnnkit_config, custom_objects, f"{filepath}: config.json")
    # The weights file holds the model's arrays, the optimizer's (at most three per weight, plus
    # two scalars) and HDF5's bookkeeping, no more.
    limit = 4 * _model_bytes(model) + 4096 * (len(model.weights) + 16) * 4
    weights = io.BytesIO(_member(archive, WEIGHTS, limit, filepath))
    with _open_h5(weights, f"{filepath}: {WEIGHTS}") as h5:
        _load_tree(h5, model, filepath)
        args = compile_args_from_keras(config.get("compile_config"))
        if compile and args is not None:
            _compile(model, args, filepath)
            if getattr(model, "compiled", False):
                _load_optimizer(h5, model, filepath)
    return model


def _compile(model, args, filepath):
    try:
        model.compile(**args)
    except (ValueError, TypeError) as err:
        warnings.warn(
            f"{filepath}: the model loads uncompiled; its compile settings are not usable ({err}).", stacklevel=4
        )


def is_hdf5(filepath):
    """Whether the file starts with HDF5's signature."""
    with open(filepath, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def load_h5_model(filepath, custom_objects, compile):
    """The model in a legacy HDF5 file (tf.keras 2's or Keras 3's `save("m.h5")`)."""
    from rnnkit.saving.model_file import model_from_config

    with _open_h5(filepath, filepath) as h5:
        if "model_config" not in h5.attrs:
            raise ValueError(f"{filepath}: an HDF5 file without a model config; load it with `model.load_weights`.")
        try:
            config = json.loads(_attr_text(h5.attrs["model_config"]))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{filepath}: the model config is not valid JSON ({err}).") from None
        declared = os.path.getsize(filepath)
        rnnkit_config = model_config_from_keras(config, custom_objects, f"{filepath}: model_config", declared)
        model = model_from_config(rnnkit_config, custom_objects, f"{filepath}: model_config")
        weights = _checked_get(h5, "model_weights", filepath)
        _load_legacy_weights(weights if weights is not None else h5, model, filepath)
        training = h5.attrs.get("training_config")
        if compile and training is not None:
            training = json.loads(_attr_text(training))
            optimizer = training.get("optimizer_config")
            args = compile_args_from_keras(
                {
                    "optimizer": optimizer,
                    "loss": training.get("loss"),
                    "metrics": training.get("metrics"),
                    "loss_weights": training.get("loss_weights"),
                }
            )
            if args is not None:
                _compile(model, args, filepath)
                state = _checked_get(h5, "optimizer_weights", filepath)
                if getattr(model, "compiled", False) and state is not None:
                    _load_legacy_optimizer(state, model, filepath)
    return model


def _attr_text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _names(group, key):
    return [_attr_text(n) for n in group.attrs.get(key, [])]


def _legacy_arrays(group, names, expected, what):
    if len(names) != len(expected):
        raise ValueError(
            f"{what}: {group.name} holds {len(names)} arrays, the model's layer expects {len(expected)}. "
            "The file was saved from another architecture."
        )
    return [_read_dataset(group, name, v.shape, v.dtype, what) for name, v in zip(names, expected)]


def _load_legacy_weights(root, model, what):
    from rnnkit.layers import InputLayer

    layer_names = _names(root, "layer_names")
    layers = [layer for layer in model.layers if not isinstance(layer, InputLayer)]
    filed = [name for name in layer_names if _names(root[name], "weight_names")]
    wanted = [layer for layer in layers if layer.weights]
    if len(filed) != len(wanted):
        raise ValueError(
            f"{what}: the file has weights for {len(filed)} layers, the model has {len(wanted)} layers with weights."
        )
    by_name = {layer.name: layer for layer in wanted}
    pairs = list(zip(filed, wanted))
    if all(name in by_name for name in filed):  # match by name when the names agree, else by order
        pairs = [(name, by_name[name]) for name in filed]
    values = [
        (layer, _legacy_arrays(root[name], _names(root[name], "weight_names"), layer.weights, what))
        for name, layer in pairs
    ]
    for layer, arrays in values:
        layer.set_weights(arrays)


def _load_legacy_optimizer(group, model, what):
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)
    arrays = _legacy_arrays(group, _names(group, "weight_names"), optimizer.variables, f"{what}: optimizer state")
    for variable, array in zip(optimizer.variables, arrays):
        variable.assign(array)


def load_h5_weights(model, filepath):
    """Sets `model`'s weights from a Keras `.weights.h5` file or a legacy HDF5 weights or model file."""
    with _open_h5(filepath, filepath) as h5:
        if "layer_names" in h5.attrs:
            _load_legacy_weights(h5, model, filepath)
        elif "model_weights" in h5:
            _load_legacy_weights(h5["model_weights"], model, filepath)
        else:
            _load_tree(h5, model, filepath)
