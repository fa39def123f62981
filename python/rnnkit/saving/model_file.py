"""Saving and loading models and weights, never through pickle.

`model.save("m.keras")` writes Keras 3's archive (`keras_writer`): Keras itself loads it, and
`rk.models.load_model` reads the archives Keras writes, tf.keras's legacy `.h5` models and
rnnkit's earlier zip format. That earlier format, written by `save_rnnkit_zip`, holds
`config.json` (the architecture and compile settings), `metadata.json`, `model.weights.npz` and,
once the model has trained, the optimizer's state in `optimizer.npz`. `save_weights` writes
Keras's HDF5 layout for a `.h5` name and rnnkit's npz otherwise. Every write goes to a temporary
file that replaces the target only once complete, so a crash mid-save leaves the previous file
intact. Reading validates names, sizes, dtypes and shapes before any array data is read, and never
executes code.
"""

import io
import json
import os
import tempfile
import zipfile

import numpy as np

import rnnkit
from rnnkit import quantizers
from rnnkit._registry import CustomObjectScope
from rnnkit.layers import serialization
from rnnkit.saving import keras_format, keras_reader, keras_writer

_CONFIG, _METADATA, _WEIGHTS, _OPTIMIZER = "config.json", "metadata.json", "model.weights.npz", "optimizer.npz"
_MAX_JSON_BYTES = 64 << 20


def _check_target(filepath, overwrite):
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{os.fspath(filepath)}: the file exists and overwrite=False.")


def _atomic_write(path, write):
    """Runs `write(file)` on a temporary file next to `path`, then moves it over `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rnnkit-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _weights_bytes(weights):
    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i:05d}": np.asarray(w) for i, w in enumerate(weights)})
    return buffer.getvalue()


def _read_weights(source, expected, what):
    """Arrays from an npz (path, bytes or file), checked against `expected` `(shape, dtype)`s
    from their headers before their data is read."""
    try:
        archive = zipfile.ZipFile(source)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"{what}: not a weights file ({err}).") from None
    try:
        return _read_arrays(archive, expected, what)
    except (zipfile.BadZipFile, EOFError) as err:  # e.g. a CRC mismatch: the data was damaged
        raise ValueError(f"{what}: the weights are corrupt ({err}).") from None
    finally:
        archive.close()


def _read_arrays(archive, expected, what):
    """The arrays of an open npz archive (see `_read_weights`)."""
    names = sorted(archive.namelist())
    wanted = [f"w{i:05d}.npy" for i in range(len(expected))]
    if names != wanted:
        raise ValueError(
            f"{what}: expected {len(expected)} weight arrays for this model, found {len(names)} entries "
            f"({names[:3]}{'...' if len(names) > 3 else ''}). The file was saved from another architecture."
        )
    arrays = []
    for i, (name, (shape, dtype)) in enumerate(zip(wanted, expected)):
        with archive.open(name) as f:
            try:
                readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                version = np.lib.format.read_magic(f)
                if version not in readers:
                    raise ValueError(f"unsupported .npy version {version}")
                got_shape, fortran, got_dtype = readers[version](f)  # the header only, no data
            except ValueError as err:
                raise ValueError(f"{what}: weight {i} is corrupt ({err}).") from None
            if tuple(got_shape) != tuple(shape) or got_dtype.kind not in "fiu" or got_dtype.hasobject:
                raise ValueError(
                    f"{what}: weight {i} has shape {tuple(got_shape)} and dtype {got_dtype}, but the model "
                    f"expects shape {tuple(shape)} ({dtype})."
                )
            nbytes = int(np.prod(got_shape, dtype=np.int64)) * got_dtype.itemsize
            data = f.read(nbytes + 1)
            if len(data) != nbytes:
                raise ValueError(f"{what}: weight {i} is truncated ({len(data)} of {nbytes} bytes).")
            order = "F" if fortran else "C"
            arrays.append(np.frombuffer(data, got_dtype).reshape(got_shape, order=order).astype(dtype))
    return arrays


def _expected(model):
    return [(w.shape, w.dtype) for w in model.weights]


def _is_h5_name(filepath):
    return os.fspath(filepath).lower().endswith((".h5", ".hdf5"))


def save_weights(model, filepath, overwrite=True):
    """Writes the model's weights (atomically): Keras 3's HDF5 layout for a name ending in `.h5`
    (`"model.weights.h5"`, which Keras's `load_weights` reads), rnnkit's npz otherwise.

    Args:
        model: The model.
        filepath: The file to write.
        overwrite: Whether to replace an existing file (False raises FileExistsError then).

    Raises:
        NotImplementedError: For a model with quantized layers.
    """
    quantizers.check_not_quantized(model, "save_weights")
    _check_target(filepath, overwrite)
    data = keras_writer.weights_bytes(model) if _is_h5_name(filepath) else _weights_bytes(model.get_weights())
    _atomic_write(filepath, lambda f: f.write(data))


def load_weights(model, filepath):
    """Sets the model's weights from a weights file or a model file: Keras's `.weights.h5`,
    legacy `.h5` weights or models, `.keras` archives (Keras's or rnnkit's), or rnnkit's npz.

    Args:
        model: The model.
        filepath: The file.

    Raises:
        ValueError: If the file is not a weights file of this architecture.
    """
    filepath = os.fspath(filepath)
    if os.path.exists(filepath) and keras_reader.is_hdf5(filepath):
        keras_reader.load_h5_weights(model, filepath)
        return
    source = filepath
    if zipfile.is_zipfile(filepath):
        with zipfile.ZipFile(filepath) as archive:
            names = archive.namelist()
            if keras_format.WEIGHTS in names:
                keras_reader._check_member_names(names, filepath)
                data = keras_reader._member(archive, keras_format.WEIGHTS, None, filepath)
                with keras_reader._open_h5(io.BytesIO(data), filepath) as h5:
                    keras_reader._load_tree(h5, model, filepath)
                return
            if _WEIGHTS in names:
                source = io.BytesIO(_read_member(archive, _WEIGHTS, None, filepath))
    model.set_weights(_read_weights(source, _expected(model), filepath))


def compile_config(model):
    """The record of `model.compile`'s arguments (None for an uncompiled model)."""
    if not getattr(model, "compiled", False):
        return None
    from rnnkit import losses, metrics, optimizers

    def name_of(value, module):
        try:
            return module.serialize(value)
        except (ValueError, TypeError, AttributeError):
            return None

    def loss_of(loss):
        # `compile(loss="mse")` wraps the function in a plain LossFunctionWrapper, which has no
        # config of its own: save the function's name, as the user wrote it.
        if type(loss) is losses.LossFunctionWrapper:
            return name_of(loss.fn, losses)
        return name_of(loss, losses)

    return {
        "optimizer": name_of(model.optimizer, optimizers),
        "loss": [loss_of(loss) for loss in model._losses],
        "loss_weights": list(model._loss_weights),
        "metrics": [[m if isinstance(m, str) else name_of(m, metrics) for m in specs] for specs in model._metric_specs],
    }


def save_model(model, filepath, overwrite=True, zipped=None):
    """Writes the architecture, compile settings, weights and optimizer state to a Keras 3
    `.keras` archive (atomically), which `keras.models.load_model` reads too.

    Args:
        model: The model.
        filepath: The file to write, e.g. "model.keras".
        overwrite: Whether to replace an existing file (False raises FileExistsError then).
        zipped: None or True; the file is always a zip archive.

    Raises:
        ValueError: If `zipped` is False, or the name ends in `.h5` (legacy HDF5 models are read only).
        NotImplementedError: For a model with quantized layers.
    """
    quantizers.check_not_quantized(model, "save")
    if zipped is not None and not zipped:
        raise ValueError(f"zipped: rnnkit writes model files as zip archives only, received {zipped!r}")
    if _is_h5_name(filepath):
        raise ValueError(
            f"filepath: rnnkit reads legacy HDF5 models but writes Keras 3's format, received {os.fspath(filepath)!r}; "
            "use a .keras name (or save_weights for a .weights.h5 file)."
        )
    _check_target(filepath, overwrite)
    data = keras_writer.archive_bytes(model)
    _atomic_write(filepath, lambda f: f.write(data))


def save_rnnkit_zip(model, filepath, overwrite=True, zipped=None):
    """Writes rnnkit's earlier model format, a zip of JSON and npz arrays (atomically); kept so
    that files from earlier versions can be made and tested, `load_model` reads them.

    Args:
        model: The model.
        filepath: The file to write, e.g. "model.keras".
        overwrite: Whether to replace an existing file (False raises FileExistsError then).
        zipped: None or True; the file is always a zip archive.

    Raises:
        ValueError: If `zipped` is False.
    """
    if zipped is not None and not zipped:
        raise ValueError(f"zipped: rnnkit writes model files as zip archives only, received {zipped!r}")
    _check_target(filepath, overwrite)
    config = {**serialization.serialize(model), "compile_config": compile_config(model)}
    metadata = {"rnnkit_version": rnnkit.__version__, "format": 1}
    weights = _weights_bytes(model.get_weights())
    optimizer = getattr(model, "optimizer", None) if getattr(model, "compiled", False) else None
    state = (
        _weights_bytes([v.numpy() for v in optimizer.variables]) if optimizer is not None and optimizer.built else None
    )

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_CONFIG, json.dumps(config))
            archive.writestr(_METADATA, json.dumps(metadata))
            archive.writestr(_WEIGHTS, weights)
            if state is not None:
                archive.writestr(_OPTIMIZER, state)

    _atomic_write(filepath, write)


def _read_member(archive, name, limit, filepath):
    info = archive.getinfo(name)
    if limit is not None and info.file_size > limit:
        raise ValueError(f"{filepath}: {name} declares {info.file_size} bytes, more than the {limit} allowed.")
    try:
        with archive.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError) as err:  # e.g. a CRC mismatch: the data was damaged
        raise ValueError(f"{filepath}: {name} is corrupt ({err}).") from None
    if len(data) != info.file_size:
        raise ValueError(f"{filepath}: {name} is corrupt.")
    return data


def model_from_config(config, custom_objects=None, source="config"):
    """Builds the model (with fresh weights) that `{"class_name", "config", ...}` describes.

    Args:
        config: The model's serialised form, as `model.save` and `model.to_json` write it.
        custom_objects: `{name: class}` for user-defined layers, cells or models that are not
            registered with `rk.saving.register_keras_serializable`.
        source: Where the config comes from, for messages.

    Returns:
        The model.

    Raises:
        ValueError: If the config does not describe a model, or names an unknown class.
    """
    from rnnkit.models import Model

    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(f"{source} does not describe a model (expected an object with 'class_name' and 'config').")
    cls = serialization.find(config.get("class_name"), config.get("registered_name"), custom_objects)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"{source}: unknown model class {config.get('class_name')!r}; pass it in custom_objects.")
    with CustomObjectScope(custom_objects):
        return cls.from_config(config["config"])


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads a model: a Keras 3 `.keras` archive (from Keras or `model.save`), a legacy HDF5
    model (tf.keras 2's or Keras 3's `save("m.h5")`) or rnnkit's earlier zip format.

    Args:
        filepath: The file.
        custom_objects: `{name: class}` for user-defined layers, cells or models that are not
            registered with `rk.saving.register_keras_serializable`.
        compile: Whether to compile the model with the saved settings (and restore the
            optimizer's state when the file has it).
        safe_mode: Accepted for Keras's signature: loading never runs code from the file, so it
            is always safe (Lambda layers are refused).

    Returns:
        The model.

    Raises:
        ValueError: If the file is not a model file, is damaged or hostile, or uses layers rnnkit
            does not have (all of them are listed).
    """
    filepath = os.fspath(filepath)
    if os.path.isfile(filepath) and keras_reader.is_hdf5(filepath):
        return keras_reader.load_h5_model(filepath, custom_objects, compile)
    try:
        archive = zipfile.ZipFile(filepath)
    except zipfile.BadZipFile:
        raise ValueError(
            f"{filepath}: not an rnnkit model file (expected a Keras .keras zip archive, an HDF5 .h5 file or "
            "rnnkit's earlier zip)."
        ) from None
    with archive:
        names = set(archive.namelist())
        if keras_format.WEIGHTS in names:
            return keras_reader.load_archive(archive, filepath, custom_objects, compile)
        if not {_CONFIG, _WEIGHTS} <= names or names - {_CONFIG, _METADATA, _WEIGHTS, _OPTIMIZER}:
            raise ValueError(f"{filepath}: not an rnnkit model file (members: {sorted(names)[:5]}).")
        try:
            config = json.loads(_read_member(archive, _CONFIG, _MAX_JSON_BYTES, filepath))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{filepath}: config.json is not valid JSON ({err}).") from None
        weights = io.BytesIO(_read_member(archive, _WEIGHTS, None, filepath))
        state = io.BytesIO(_read_member(archive, _OPTIMIZER, None, filepath)) if _OPTIMIZER in names else None
    model = model_from_config(config, custom_objects, f"{filepath}: config.json")
    model.set_weights(_read_weights(weights, _expected(model), filepath))
    compile_config = config.get("compile_config")
    if compile and compile_config and compile_config.get("optimizer") is not None:
        model.compile(
            optimizer=compile_config["optimizer"],
            loss=compile_config["loss"],  # one per output (a lone config dict would read as {output: loss})
            loss_weights=compile_config["loss_weights"],
            metrics=compile_config["metrics"] if len(compile_config["metrics"]) > 1 else compile_config["metrics"][0],
        )
        if state is not None:
            optimizer = model.optimizer
            optimizer.build(model.trainable_weights)
            expected = [(v.shape, v.dtype) for v in optimizer.variables]
            for variable, value in zip(
                optimizer.variables, _read_weights(state, expected, f"{filepath}: optimizer state")
            ):
                variable.assign(value)
    return model
