"""Writes Keras's own files (see `keras_format`): the Keras 3 `.keras` archive and `.weights.h5`
weight files, with rnnkit's configs translated into Keras 3's dialect.
"""

import datetime
import io
import json
import zipfile

import numpy as np

import rnnkit
from rnnkit.layers import serialization
from rnnkit.saving.keras_format import CONFIG, METADATA, WEIGHTS, _h5py, _tree


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
        "run_eagerly": model.run_eagerly,
        "steps_per_execution": model.steps_per_execution,
        "jit_compile": model._jit_compile,  # as passed to compile, as Keras records it
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
