"""Keras's model configs (Keras 3's dialect, or tf.keras 2's) translated to rnnkit's.

Nothing in a config is ever run as code (Lambda layers are refused); arguments of Keras's layers
that rnnkit's lack are accepted only at the values that mean "not used"; every layer class rnnkit
lacks is listed at once; and layers declaring more units than the weights file can hold are
refused before anything is built.
"""

import inspect

from rnnkit.layers import serialization

# Keys whose integer value is a count of units: a layer with N of them holds at least N numbers,
# so a config declaring more than the weights file can hold is refused before anything is built.
_SIZE_KEYS = ("units", "input_dim", "output_dim", "filters")


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
    # `jit_compile` is not read: it changes no number, and rnnkit files before it existed
    # recorded False whatever the model was compiled with.
    if compile_config.get("run_eagerly") is True:
        args["run_eagerly"] = True
    if compile_config.get("steps_per_execution", 1) != 1:
        args["steps_per_execution"] = compile_config["steps_per_execution"]
    return args
