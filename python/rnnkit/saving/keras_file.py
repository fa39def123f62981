"""Keras's own files: the Keras 3 `.keras` archive, `.weights.h5` weight files and tf.keras's
legacy HDF5 models.

A `.keras` archive is a zip of `config.json` (the architecture in Keras's dialect: functional
layers list their `inbound_nodes`, tensors are `__keras_tensor__` objects, dtypes are
`DTypePolicy` objects), `metadata.json` and `model.weights.h5`. The HDF5 file holds a tree that
follows the objects' attributes: `layers/<class in snake case>[_<k>]/vars/<i>` for each layer of a
model (the k-th layer of the same class gets `_k`), `.../cell/vars` for a recurrent layer's cell,
`forward_layer` and `backward_layer` for Bidirectional, `layer` for TimeDistributed, `cells/...`
for StackedRNNCells, and `optimizer/vars/<i>` for the optimizer's state.

A legacy `.h5` model has the config as a JSON attribute and one group per layer under
`model_weights`, whose `weight_names` attribute lists the layer's arrays in `get_weights()` order.

Reading builds the model from the config alone (nothing in a file is ever run as code: Lambda
layers are refused), checks every array's declared shape and dtype against the model before its
data is read, and refuses HDF5 links and external storage that would reach outside the file.
"""

import datetime
import inspect
import io
import json
import os
import re
import warnings
import zipfile

import numpy as np

import rnnkit
from rnnkit.layers import serialization

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_JSON_BYTES = 64 << 20
# Keys whose integer value is a count of units: a layer with N of them holds at least N numbers,
# so a config declaring more than the weights file can hold is refused before anything is built.
_SIZE_KEYS = ("units", "input_dim", "output_dim", "filters")


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


def _weight_entries(obj, path):
    """`(path, name, variables)` for `obj` and everything under it, as Keras lays out its tree."""
    from rnnkit.layers import Bidirectional, InputLayer, StackedRNNCells, TimeDistributed

    yield path, obj.name, []
    if _is_model(obj):
        layers = [layer for layer in obj.layers if not isinstance(layer, InputLayer)]
        yield from _container(layers, _join(path, "layers"))
    elif isinstance(obj, Bidirectional):
        yield from _weight_entries(obj.forward_layer, _join(path, "forward_layer"))
        yield from _weight_entries(obj.backward_layer, _join(path, "backward_layer"))
    elif isinstance(obj, TimeDistributed):
        yield from _weight_entries(obj.layer, _join(path, "layer"))
    elif isinstance(obj, StackedRNNCells):
        yield from _container(obj.cells, _join(path, "cells"))
    elif hasattr(obj, "cell") and hasattr(obj.cell, "weights"):
        yield from _weight_entries(obj.cell, _join(path, "cell"))
    else:
        yield path, obj.name, list(obj.weights)


def _container(objects, path):
    used = {}
    for obj in objects:
        base = _snake_case(_keras_class_name(obj))
        used[base] = used.get(base, -1) + 1
        yield from _weight_entries(obj, _join(path, base if used[base] == 0 else f"{base}_{used[base]}"))


def _join(path, name):
    return f"{path}/{name}" if path else name


def _tree(model):
    """`{path: (name, variables)}` for the model's weights (paths with variables only; a later
    entry of the same path, as the plain layer after its empty header, wins)."""
    entries = {}
    for path, name, variables in _weight_entries(model, ""):
        entries[path] = (name, variables)
    return {path: entry for path, entry in entries.items() if entry[1]}


def _write_tree(h5, model, optimizer):
    h5.create_group("vars").attrs["name"] = model.name
    for path, (name, variables) in _tree(model).items():
        group = h5.require_group(path).create_group("vars")
        group.attrs["name"] = name
        for i, variable in enumerate(variables):
            group.create_dataset(str(i), data=np.asarray(variable.numpy()))
    if optimizer is not None:
        group = h5.create_group("optimizer").create_group("vars")
        group.attrs["name"] = optimizer.name
        for i, variable in enumerate(optimizer.variables):
            group.create_dataset(str(i), data=np.asarray(variable.numpy()))


def _h5_bytes(model, optimizer):
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as h5:
        _write_tree(h5, model, optimizer)
    return buffer.getvalue()


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
    values = []
    for path, (_, variables) in _tree(model).items():
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


# --- configs: Keras's dialect to rnnkit's ----------------------------------------------------


def _clean(value):
    """A config with Keras-only wrappers removed: DTypePolicy objects become their name."""
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") == "__lambda__":
        raise ValueError("holds a lambda (Python bytecode), which rnnkit never loads: it would run code from the file.")
    if value.get("class_name") in ("DTypePolicy", "Policy", "FloatDTypePolicy") and isinstance(
        value.get("config"), dict
    ):
        return value["config"].get("name", "float32")
    return {k: _clean(v) for k, v in value.items() if k not in ("shared_object_id", "build_config", "compile_config")}


_INPUT_KEYS = ("batch_shape", "dtype", "name")
# Arguments of Keras's layers that rnnkit's lack, with the values that mean "not used".
_NEUTRAL = {
    "quantization_config": (None,),
    "lora_rank": (None, 0),
    "lora_alpha": (None,),
    "time_major": (False,),
    "implementation": (0, 1, 2),  # how tf.keras 2 grouped the gate products: the same numbers
    "synchronized": (False,),
    "input_length": (None,),
    "batch_input_shape": (None,),
    "use_cudnn": ("auto", True, False),
    "embeddings_constraint": (None,),
    "sparse": (False,),
    "optional": (False,),
    "rms_scaling": (False,),
    "ragged": (False,),
}


def _accepted_arguments(cls):
    """The keyword arguments `cls(...)` takes (following `**kwargs` up to the base classes), or
    None if any of them takes `**kwargs` without a base class to pass them to."""
    from rnnkit.layers import Layer

    names = set()
    for klass in cls.__mro__:
        if klass is Layer:  # its **kwargs takes these, and refuses the rest
            return names | {"name", "trainable", "dtype", "activity_regularizer", "device", "input_shape", "batch_size"}
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None


class _Reader:
    """Translates one Keras model config to rnnkit's, collecting the classes rnnkit lacks."""

    def __init__(self, custom_objects, what):
        self.custom_objects = custom_objects
        self.what = what
        self.unknown = []
        self.sizes = []  # (layer name, key, value) for the size check

    def layer(self, entry):
        if not isinstance(entry, dict) or "class_name" not in entry:
            raise ValueError(f"{self.what}: expected a layer config with 'class_name', received {entry!r:.80}")
        class_name, config = entry["class_name"], entry.get("config") or {}
        if class_name == "Lambda":
            raise ValueError(
                f"{self.what}: layer {config.get('name')!r} is a Lambda layer, whose Python code rnnkit never loads "
                "(it would run code from the file). Rewrite it as a registered layer class."
            )
        if class_name in ("Functional", "Model") and "layers" in config:
            return self._wrap(entry, "Model", self.functional(config))
        if class_name == "Sequential":
            return self._wrap(entry, "Sequential", self.sequential(config))
        self.check(entry)
        config = self.fit(class_name, entry.get("registered_name"), _clean(config))
        if class_name == "InputLayer":
            if config.get("sparse") or config.get("ragged"):
                raise ValueError(f"{self.what}: input {config.get('name')!r} is sparse or ragged, which rnnkit lacks.")
            if "batch_shape" not in config:
                config["batch_shape"] = config.get("batch_input_shape")
            config = {k: config[k] for k in _INPUT_KEYS if k in config}
        return self._wrap(entry, class_name, config)

    def fit(self, class_name, registered_name, config):
        """The config with the arguments Keras has and rnnkit lacks removed where they hold their
        neutral value (`quantization_config=None`, ...), nested layer configs included.

        Raises:
            ValueError: If such an argument has another value (it would change the numbers).
        """
        config = {k: self._fit_nested(v) for k, v in config.items()}
        cls = serialization.find(class_name, registered_name, self.custom_objects)
        accepted = _accepted_arguments(cls) if cls is not None and class_name != "InputLayer" else None
        if accepted is None:
            return config
        for key in [k for k in config if k not in accepted]:
            value = config.pop(key)
            if key not in _NEUTRAL or value not in _NEUTRAL[key]:
                raise ValueError(
                    f"{self.what}: layer {config.get('name')!r} ({class_name}) sets {key}={value!r}, which rnnkit's "
                    f"{class_name} does not have."
                )
        return config

    def _fit_nested(self, value):
        if isinstance(value, list):
            return [self._fit_nested(v) for v in value]
        if not isinstance(value, dict):
            return value
        if isinstance(value.get("class_name"), str) and isinstance(value.get("config"), dict):
            if value["class_name"] in ("Functional", "Sequential", "Model") and "layers" in value["config"]:
                return self.layer(value)
            cls = serialization.find(value["class_name"], value.get("registered_name"), self.custom_objects)
            if cls is not None:
                return {**value, "config": self.fit(value["class_name"], value.get("registered_name"), value["config"])}
        return value

    def _wrap(self, entry, class_name, config):
        out = {
            "module": entry.get("module", "keras.layers"),
            "class_name": class_name,
            "config": config,
            "registered_name": entry.get("registered_name"),
        }
        if class_name in ("Model", "Sequential"):
            out["module"], out["registered_name"] = "keras.layers", None
        return out

    def check(self, entry):
        """Records the classes in a layer config (cells and wrapped layers included) rnnkit lacks."""
        if isinstance(entry, list):
            for item in entry:
                self.check(item)
            return
        if not isinstance(entry, dict):
            return
        module = entry.get("module") or ""
        class_name = entry.get("class_name")
        config = entry.get("config")
        if isinstance(class_name, str) and isinstance(config, dict):
            is_layer = module.startswith(("keras.layers", "keras.src.layers", "keras.src.ops")) or not module
            if is_layer and class_name not in ("DTypePolicy", "Policy", "FloatDTypePolicy", "__keras_tensor__"):
                if class_name in ("Functional", "Sequential", "Model") and "layers" in config:
                    return
                if serialization.find(class_name, entry.get("registered_name"), self.custom_objects) is None:
                    self.unknown.append(f"{class_name} ({config.get('name', '?')})")
            for key in _SIZE_KEYS:
                if isinstance(config.get(key), int):
                    self.sizes.append((config.get("name", class_name), key, config[key]))
        for value in (config if isinstance(config, dict) else entry).values():
            if isinstance(value, (dict, list)):
                self.check(value)

    def sequential(self, config):
        layers = list(config.get("layers", []))
        out = {"name": config.get("name"), "trainable": config.get("trainable", True), "layers": []}
        shape, dtype = config.get("build_input_shape"), None
        if layers and layers[0].get("class_name") == "InputLayer":
            inner = layers.pop(0).get("config", {})
            shape = inner.get("batch_shape", inner.get("batch_input_shape"))
            dtype = inner.get("dtype")
        elif layers and "batch_input_shape" in layers[0].get("config", {}):  # tf.keras 2
            shape = layers[0]["config"]["batch_input_shape"]
            dtype = layers[0]["config"].get("dtype")
        for entry in layers:
            converted = self.layer(entry)
            converted["config"].pop("batch_input_shape", None)
            out["layers"].append(converted)
        if shape is not None:
            out["build_input_shape"] = list(shape)
            out["input_dtype"] = dtype if isinstance(dtype, str) else "float32"
        return out

    def functional(self, config):
        entries = list(config.get("layers", []))
        op_names = {  # Keras ops (keras.src.ops), which older files write without a module
            e.get("name")
            for e in entries
            if str(e.get("module", "")).startswith("keras.src.ops")
            or serialization.find(e.get("class_name"), e.get("registered_name"), self.custom_objects) is None
        }
        layers = []
        for entry in entries:
            calls = [self.node(node, op_names) for node in entry.get("inbound_nodes", [])]
            layers.append((entry, calls))
        # Keras writes the ops that compute masks (not_equal, any, ...) as nodes of the graph;
        # rnnkit's layers propagate masks themselves, so those ops go once nothing else uses them.
        while True:
            used = {ref[1] for _, calls in layers for call in calls for ref in _refs(call)}
            used |= {ref[1] for key in ("input_layers", "output_layers") for ref in _refs(_ref_tree(config.get(key)))}
            dropped = [e for e, _ in layers if e.get("name") in op_names and e.get("name") not in used]
            if not dropped:
                break
            layers = [(e, c) for e, c in layers if not any(e is d for d in dropped)]
        out_layers = []
        for entry, calls in layers:
            converted = self.layer(entry)
            converted["config"].pop("batch_input_shape", None) if converted["class_name"] != "InputLayer" else None
            converted["name"] = entry.get("name", converted["config"].get("name"))
            converted["calls"] = calls
            out_layers.append(converted)
        return {
            "name": config.get("name"),
            "trainable": config.get("trainable", True),
            "layers": out_layers,
            "input_layers": _unwrap(_ref_tree(config.get("input_layers"))),
            "output_layers": _unwrap(_ref_tree(config.get("output_layers"))),
        }

    def node(self, node, op_names):
        if isinstance(node, list):  # tf.keras 2: [[layer, node_index, tensor_index, kwargs], ...]
            tensors = [["__tensor__", item[0], item[1], item[2]] for item in node]
            kwargs = node[-1][3] if node and len(node[-1]) > 3 else {}
            args = [tensors[0] if len(tensors) == 1 else tensors]
            kwargs = _ref_tree(kwargs)
        else:
            args, kwargs = _keras_tensors(node.get("args", [])), _keras_tensors(node.get("kwargs", {}))
        kwargs = dict(kwargs)
        kwargs.pop("training", None)  # a run-time flag; Keras records training=False for every call
        mask = kwargs.get("mask")
        if mask is None or all(ref[1] in op_names for ref in _refs(mask)):
            kwargs.pop("mask", None)
        return [args, kwargs]


def _unwrap(value):
    """One tensor for a list of one, as Keras reads `[[name, 0, 0]]` (tf.keras 2 always wrote lists)."""
    if isinstance(value, list) and len(value) == 1 and _refs(value) == [value[0]]:
        return value[0]
    return value


def _refs(value):
    if isinstance(value, list) and len(value) == 4 and value[0] == "__tensor__":
        return [value]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [r for child in children for r in _refs(child)]


def _ref_tree(value):
    """Keras's `[layer, node, tensor]` triples (input_layers, output_layers) as rnnkit's references."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
        return ["__tensor__", value[0], value[1], value[2]]
    if isinstance(value, list):
        return [_ref_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: _ref_tree(v) for k, v in value.items()}
    return value


def _keras_tensors(value):
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return ["__tensor__", history[0], history[1], history[2]]
    if isinstance(value, dict):
        return {k: _keras_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_keras_tensors(v) for v in value]
    return value


def model_config_from_keras(config, custom_objects=None, what="config", weights_bytes=None):
    """The rnnkit config for the model a Keras config describes.

    Args:
        config: Keras's `{"class_name", "config", ...}` of a Sequential or functional model.
        custom_objects: Optional `{name: class}` for user-defined layers.
        what: The file, for messages.
        weights_bytes: The size of the weights file, to refuse configs declaring layers larger than
            it can hold (None skips the check).

    Returns:
        The config in rnnkit's dialect.

    Raises:
        ValueError: Listing every layer class rnnkit lacks, for a Lambda layer, or for a layer
            declaring more units than the weights file holds.
    """
    reader = _Reader(custom_objects, what)
    converted = reader.layer(config)
    if reader.unknown:
        raise ValueError(
            f"{what}: the model uses layers rnnkit does not have: {', '.join(dict.fromkeys(reader.unknown))}. "
            "Register your own classes with `@rk.saving.register_keras_serializable()` or pass them in "
            "`custom_objects`."
        )
    if weights_bytes is not None:
        for name, key, value in reader.sizes:
            if value < 0 or value > max(weights_bytes, 1 << 16):
                raise ValueError(
                    f"{what}: layer {name!r} declares {key}={value}, more than the {weights_bytes}-byte weights file "
                    "can hold; refusing to build it."
                )
    return converted


def compile_args_from_keras(compile_config):
    """`model.compile` keyword arguments from Keras's (or rnnkit's earlier) compile config."""
    if not compile_config or compile_config.get("optimizer") is None:
        return None
    optimizer = compile_config["optimizer"]
    if isinstance(optimizer, dict):
        optimizer = {k: v for k, v in optimizer.items() if k != "module" or v.startswith("keras")}
    loss = compile_config.get("loss")
    if isinstance(loss, dict) and "class_name" in loss:  # one loss object, not {output: loss}
        loss = [loss]
    metrics = compile_config.get("metrics")
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        metrics = metrics[0]
    args = {"optimizer": optimizer, "loss": loss, "metrics": metrics or None}
    if compile_config.get("loss_weights") is not None:
        args["loss_weights"] = compile_config["loss_weights"]
    return args


# --- configs: rnnkit's to Keras's ------------------------------------------------------------


def _keras_tensor(tensor, history):
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": list(tensor.shape), "dtype": tensor.dtype.name, "keras_history": list(history)},
    }


def keras_config(obj):
    """`obj`'s config in Keras 3's dialect (models nested in models included).

    Args:
        obj: A layer or model.

    Returns:
        `{"module", "class_name", "config", "registered_name", ...}` as Keras writes it.
    """
    from rnnkit.models import Model, Sequential

    if isinstance(obj, Sequential):
        inner = obj.get_config()
        layers = [keras_config(layer) for layer in obj._stack]
        config = {"name": obj.name, "trainable": obj.trainable, "dtype": None, "layers": layers}
        if inner.get("build_input_shape") is not None:
            input_layer = {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {
                    "batch_shape": inner["build_input_shape"],
                    "dtype": inner.get("input_dtype", "float32"),
                    "sparse": False,
                    "ragged": False,
                    "name": getattr(obj._input, "name", None) or "input_layer",
                },
                "registered_name": None,
            }
            config["layers"] = [input_layer, *layers]
            config["build_input_shape"] = inner["build_input_shape"]
        return {"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None}
    if type(obj) is Model and obj._nodes is not None:
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": _functional_config(obj),
            "registered_name": "Functional",
        }
    entry = serialization.serialize(obj)
    entry["config"].pop("batch_input_shape", None)  # rnnkit's own; Keras takes the shape from InputLayer
    return entry


def _functional_config(model):
    config = model.get_config()
    tensors = {}
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            tensors[(layer.name, 0, 0)] = layer.output
        nodes = [n for n in model._nodes if n.layer is layer]
        for call, node in enumerate(nodes):
            for index, tensor in enumerate(rnnkit.tree.flatten(node.outputs)):
                tensors[(layer.name, call, index)] = tensor

    def convert(value):
        if isinstance(value, list) and len(value) == 4 and value[0] == "__tensor__":
            return _keras_tensor(tensors[tuple(value[1:])], value[1:])
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    def triple(value):
        if isinstance(value, list) and len(value) == 4 and value[0] == "__tensor__":
            return list(value[1:])
        if isinstance(value, dict):
            return {k: triple(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [triple(v) for v in value]
        return value

    layers = []
    for layer, entry in zip(model.layers, config["layers"]):
        layers.append(
            {
                **keras_config(layer),
                "name": entry["name"],
                "inbound_nodes": [
                    {"args": convert(args), "kwargs": convert(kwargs)} for args, kwargs in entry["calls"]
                ],
            }
        )
    return {
        "name": config["name"],
        "trainable": config["trainable"],
        "layers": layers,
        "input_layers": triple(config["input_layers"]),
        "output_layers": triple(config["output_layers"]),
    }


def keras_compile_config(model):
    """Keras's compile config for a compiled model, or None."""
    from rnnkit.saving.model_file import compile_config

    config = compile_config(model)
    if config is None:
        return None
    losses, metrics = config["loss"], config["metrics"]
    return {
        "optimizer": config["optimizer"],
        "loss": losses[0] if len(losses) == 1 else losses,
        "loss_weights": None if all(w == 1.0 for w in config["loss_weights"]) else config["loss_weights"],
        "metrics": (metrics[0] if len(metrics) == 1 else metrics) or None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


# --- files ---------------------------------------------------------------------------------


def archive_bytes(model):
    """The bytes of a Keras 3 `.keras` archive of `model` (architecture, compile settings,
    weights and, once it has trained, the optimizer's state)."""
    config = {**keras_config(model), "compile_config": keras_compile_config(model)}
    if config["compile_config"] is None:
        del config["compile_config"]
    config["build_config"] = {"input_shape": None}
    metadata = {
        "keras_version": "3.0.0",
        "rnnkit_version": rnnkit.__version__,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    optimizer = getattr(model, "optimizer", None) if getattr(model, "compiled", False) else None
    if optimizer is not None and not optimizer.built:
        optimizer = None
    weights = _h5_bytes(model, optimizer)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA, json.dumps(metadata))
        archive.writestr(CONFIG, json.dumps(config))
        archive.writestr(WEIGHTS, weights)
    return buffer.getvalue()


def weights_bytes(model):
    """The bytes of a Keras 3 `.weights.h5` file of `model`'s weights."""
    return _h5_bytes(model, None)


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
