"""The `Layer` base class: lazy build, weights, configs, masks, training flag, symbolic calls."""

import contextlib
import functools
import inspect
import math
import threading

import numpy as np

from rnnkit import _core, config, dtype_policies, ops, tree

# clear_session is imported by rnnkit.utils from here.
from rnnkit._naming import clear_session, snake_case, unique_name  # noqa: F401
from rnnkit.layers.input_spec import assert_input_compatibility
from rnnkit.symbolic import KerasTensor, Node, is_symbolic, output_spec
from rnnkit.tensor import Tensor, Variable, convert_to_tensor, wrap

_context = threading.local()


def in_symbolic_call():
    """Whether layers are being run on placeholders to infer shapes (no side effects allowed)."""
    return getattr(_context, "symbolic", False)


class _call_context:
    """Sets the calls' `training` (and `symbolic`) flags for a block, restoring them after (a
    class rather than a generator: it runs for every layer call)."""

    __slots__ = ("saved", "symbolic", "training")

    def __init__(self, training, symbolic=None):
        self.training, self.symbolic = training, symbolic

    def __enter__(self):
        self.saved = getattr(_context, "training", None), in_symbolic_call(), in_layer_call()
        _context.training = self.training
        _context.in_call = True
        if self.symbolic is not None:
            _context.symbolic = self.symbolic

    def __exit__(self, *exc_info):
        _context.training, _context.symbolic, _context.in_call = self.saved


def in_layer_call():
    """Whether a layer's `call` is running (so a layer called now is not the outermost one)."""
    return getattr(_context, "in_call", False)


def _device_context(kind):
    """`rk.device(kind)` for a layer created with `device=`, else nothing."""
    return contextlib.nullcontext() if kind is None else config.device(kind)


@functools.cache
def call_parameters(cls):
    """The parameter names of `cls.call` (looked up once per class: this runs on every call)."""
    return frozenset(inspect.signature(cls.call).parameters)


def _one_or_list(tensors):
    """A lone tensor as itself, several as a list (Keras's `layer.input`/`output`)."""
    return tensors[0] if len(tensors) == 1 else list(tensors)


def _shape_of(x):
    return tuple(x.shape)


def _is_number_list(value):
    """Whether `value` is a (nested) list or tuple of plain numbers, i.e. one array's worth."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    leaves = tree.flatten(value)
    return bool(leaves) and all(isinstance(v, (int, float, bool, np.number, np.bool_)) for v in leaves)


# Below this size an array fits in any machine's memory: the check (and its message) is skipped,
# as it runs on every layer call.
_ALWAYS_FITS = 1 << 24


def check_allocation(what, shape, dtype):
    """Raises MemoryError, before allocating, for an array larger than the machine's memory
    (the core's check, on the same measure of the RAM).

    A size that cannot fit would otherwise fail deep in numpy or the Rust core, or, with
    memory overcommit, get the process killed once the pages are touched.
    """
    shape = tuple(int(d) for d in shape)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes >= _ALWAYS_FITS:
        _core.check_memory(min(nbytes, 2**64 - 1), f"{what}: shape {shape} of {np.dtype(dtype).name}")


class Layer:
    """Base class of every layer, Keras-style.

    Subclasses create weights in `build(input_shape)` with `add_weight`, compute in
    `call(inputs, ...)`, and list their constructor arguments in `get_config`. Calling a layer
    builds it on first use, fills `mask=` from the input's mask and `training=` from the
    enclosing call, and attaches `compute_mask`'s result to the output. Calling it on
    `rk.Input(...)` tensors returns KerasTensors for the functional API.

    Args:
        name: Unique name; derived from the class name by default (`lstm`, `lstm_1`, ...).
        trainable: Whether the weights are trained.
        dtype: The layer's dtype policy: "float32", "float64" or "mixed_bfloat16" (float32
            weights, bfloat16 products in the recurrent layers; see `rk.dtype_policies`), a
            NumPy float dtype or a `DTypePolicy`; by default the global policy
            (`rk.config.set_dtype_policy`, "float32" unless set).
        activity_regularizer: Optional regularizer of the layer's output.
        input_shape: Shape of the input without the batch axis, for the first layer of a
            Sequential model.
        batch_size: Fixed batch size to go with `input_shape`.
        batch_input_shape: Shape of the input with the batch axis.
        device: Where this layer's calls compute: "cpu", "cuda" or "auto"; None (the default)
            follows the enclosing `rk.device(...)` scope.
    """

    # What the first call argument must be (an `InputSpec` or a structure of them): checked on
    # every call when a subclass sets it.
    input_spec = None

    def __init__(self, *, name=None, trainable=True, dtype=None, activity_regularizer=None, device=None, **kwargs):
        input_shape = kwargs.pop("input_shape", None)
        batch_size = kwargs.pop("batch_size", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        kwargs.pop("autocast", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, received {type(name).__name__}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype_policy = dtype_policies.get(dtype)
        # Keras's `dtype`: the weights' (and here the outputs') dtype.
        self.dtype = self.dtype_policy.variable_dtype
        from rnnkit import regularizers

        # Where this layer's calls compute ("cpu", "cuda", "auto"); None follows `rk.device`.
        self.device = None if device is None else config.device_kind(device)

        self.activity_regularizer = regularizers.get(activity_regularizer)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size, *tuple(input_shape))
        self._batch_input_shape = None if batch_input_shape is None else tuple(batch_input_shape)
        self.built = False
        self.supports_masking = getattr(self, "supports_masking", False)
        self._own_weights = []
        self._weight_regularizers = []
        self._constraints = {}
        self._activity_losses = []
        self._added_losses = []
        self.inbound_nodes = []

    # --- tracking -----------------------------------------------------------------------------

    def __setattr__(self, name, value):
        # Sub-layers (alone or in lists) are tracked in assignment order, for `weights`.
        if not name.startswith("__"):
            layers = self.__dict__.setdefault("_layers", [])
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Layer) and item is not self and all(item is not x for x in layers):
                    layers.append(item)
        object.__setattr__(self, name, value)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    @property
    def weights(self):
        """All weights, Keras's order: this layer's trainable then non-trainable ones, then each
        sub-layer's in tracking order (the order of `get_weights()`)."""
        own = [w for w in self._own_weights if w.trainable] + [w for w in self._own_weights if not w.trainable]
        seen, out = set(), []
        for w in own + [w for layer in self._layers for w in layer.weights]:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        return out

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.trainable] if self.trainable else self.weights

    @property
    def variables(self):
        return self.weights

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        return self.non_trainable_weights

    @property
    def losses(self):
        """The losses of the last outermost call (`add_loss`'s and the outputs' regularisation)
        and the weights' regularisation losses (from their current values), with the sublayers'."""
        own = [reg(w) for w, reg in self._weight_regularizers] + list(self._activity_losses)
        own += getattr(self, "_added_losses", [])
        return own + [loss for layer in self._layers for loss in layer.losses]

    def add_loss(self, loss):
        """Adds a loss (a tensor, or a structure of them) that training adds to the compiled
        loss, each summed to a scalar. Call it from `call`; the losses of a call replace those of
        the previous one (from the outermost layer called down).

        Args:
            loss: A Tensor (or nested structure of Tensors).
        """
        losses = tree.flatten(loss)
        for x in losses:
            if not isinstance(x, Tensor):
                raise ValueError(
                    "`add_loss()` can only be called from inside `build()` or `call()`, on a tensor input. "
                    f"Received invalid value: {x!r}"
                )
        if not in_symbolic_call():  # placeholders inferring shapes leave no losses behind
            self._added_losses.extend(losses)

    def _clear_losses(self):
        """Forgets the losses added by the previous call of this layer and its sublayers."""
        self.__dict__["_added_losses"] = []  # no layer to track in it: `__setattr__` skipped
        for layer in self._layers:
            layer._clear_losses()

    def add_weight(
        self,
        shape=None,
        initializer=None,
        dtype=None,
        trainable=True,
        regularizer=None,
        constraint=None,
        name=None,
        **kwargs,
    ):
        """Creates a weight of the layer.

        Args:
            shape: The weight's shape (a scalar when None).
            initializer: An initializer, its name or a callable `(shape, dtype) -> array`;
                `glorot_uniform` for floats and `zeros` otherwise by default.
            dtype: Defaults to the layer's dtype.
            trainable: Whether gradients update it.
            regularizer: Optional regularizer; its value joins `layer.losses`.
            constraint: Optional constraint applied after each optimizer update.
            name: The weight's name.
            **kwargs: Keras's `autocast` and `aggregation`, accepted and ignored; anything else
                raises TypeError.

        Returns:
            The new Variable.
        """
        from rnnkit import constraints, initializers, regularizers

        kwargs.pop("autocast", None)
        kwargs.pop("aggregation", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to add_weight: {kwargs}")
        dtype = np.dtype(dtype or self.dtype)
        shape = () if shape is None else tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(
                f"Layer {self.name}: weight {name or 'variable'} expected a shape of sizes >= 0, received {shape}."
            )
        check_allocation(f"Layer {self.name}: weight {name or 'variable'}", shape, dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtype.kind == "f" else "zeros"
        value = np.asarray(initializers.get(initializer)(shape, dtype=dtype), dtype=dtype)
        weight = Variable(value, trainable=trainable, name=name or "variable", dtype=dtype)
        self._own_weights.append(weight)
        if regularizer is not None:
            self._weight_regularizers.append((weight, regularizers.get(regularizer)))
        if constraint is not None:
            self._constraints[id(weight)] = constraints.get(constraint)
        return weight

    def remove_weight(self, weight):
        """Removes `weight` (a Variable made by `add_weight`) from the layer, with its
        regularizer and constraint (quantization replaces float weights by int8 ones)."""
        self._own_weights = [w for w in self._own_weights if w is not weight]
        self._weight_regularizers = [(w, r) for w, r in self._weight_regularizers if w is not weight]
        self._constraints.pop(id(weight), None)

    @property
    def quantization_mode(self):
        """The quantization mode, "int8" once `quantize("int8")` ran on the layer, else None."""
        return self.__dict__.get("_quantization_mode")

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes the layer's weights for inference (see `rk.quantizers`); layers that can
        override it (Dense, Embedding, the recurrent layers and Bidirectional).

        Args:
            mode: "int8" (Keras's other modes raise NotImplementedError).
            type_check: Refuse subclasses of the quantizable layers, as Keras.
            config: Keras's `QuantizationConfig`; only None (the default quantizers).

        Raises:
            NotImplementedError: Always, for a layer that cannot be quantized.
        """
        raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize` method implemented.")

    def constraint_for(self, weight):
        """The constraint attached to `weight` by this layer or a sub-layer, or None."""
        found = self._constraints.get(id(weight))
        for layer in self._layers:
            found = found or layer.constraint_for(weight)
        return found

    def get_weights(self):
        """The weights' values as numpy arrays, in `weights` order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Sets the weights from numpy arrays, in `weights` order.

        Raises:
            ValueError: If the count or a shape differs from the layer's weights.
        """
        params = self.weights
        if len(params) != len(weights):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of "
                f"length {len(weights)}, but the layer was expecting {len(params)} weights."
            )
        arrays = [np.asarray(w) for w in weights]
        for param, value in zip(params, arrays):
            if param.shape != value.shape:
                raise ValueError(
                    f"Layer {self.name} weight shape {param.shape} is not compatible with provided "
                    f"weight shape {value.shape}."
                )
        for param, value in zip(params, arrays):
            param.assign(value)

    def count_params(self):
        """The number of scalars in the weights.

        Raises:
            ValueError: If the layer is not built yet.
        """
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                "built. You can build it manually via: `layer.build(input_shape)`."
            )
        return int(sum(np.prod(w.shape) for w in self.weights))

    # --- what subclasses override -------------------------------------------------------------

    def build(self, input_shape):
        """Creates the weights for inputs of `input_shape` (batch axis included, None unknown)."""
        self.built = True

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call().")

    @property
    def compute_dtype(self):
        """The dtype of the layer's computations: its policy's ("bfloat16" under
        "mixed_bfloat16", for the recurrent products)."""
        return self.dtype_policy.compute_dtype

    @property
    def variable_dtype(self):
        """The dtype of the layer's weights (its `dtype`)."""
        return self.dtype_policy.variable_dtype

    def compute_mask(self, inputs, mask=None):
        """The output mask: the input mask if the layer supports masking, else None."""
        return mask if self.supports_masking else None

    def get_config(self):
        """The constructor arguments, JSON-serialisable."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """Creates a layer from `get_config()`'s output."""
        return cls(**config)

    # --- calling ------------------------------------------------------------------------------

    @property
    def _call_parameters(self):
        return call_parameters(type(self))

    def _maybe_build(self, inputs):
        if not self.built:
            shapes = tree.map_structure(_shape_of, inputs)
            self.build(shapes)
            self.built = True

    def __call__(self, *args, **kwargs):
        if not args:
            raise TypeError(f"Layer {self.name} was called without inputs.")
        if len(args) == 1 and not kwargs and isinstance(args[0], Tensor):
            # A model's layers are called this way at every step: no structure to walk.
            inputs = self._convert_input(args[0])
            if self.input_spec is not None:
                assert_input_compatibility(self.input_spec, inputs, self.name)
            args, mask = (inputs,), inputs._keras_mask
        else:
            if is_symbolic(args[0] if len(args) == 1 and not kwargs else (args, kwargs)):
                if self.input_spec is not None:
                    assert_input_compatibility(self.input_spec, args[0], self.name)
                return self._symbolic_call(args, kwargs)
            inputs = args[0]
            if _is_number_list(inputs):
                inputs = convert_to_tensor(inputs)  # nested lists of numbers are one array, as numpy reads them
            inputs = tree.map_structure(self._convert_input, inputs)
            if self.input_spec is not None:
                assert_input_compatibility(self.input_spec, inputs, self.name)
            args = (inputs, *args[1:])
            # The input mask goes to `call` when it takes one, and to `compute_mask` always.
            mask = kwargs.pop("mask", None)
            if mask is None:
                masks = [getattr(x, "_keras_mask", None) for x in tree.flatten(inputs)]
                if any(m is not None for m in masks):
                    mask = masks[0] if len(masks) == 1 else tree.pack_sequence_as(inputs, masks)
        params = self._call_parameters
        if "mask" in params and mask is not None:
            kwargs["mask"] = mask
        # `training` comes from the argument or the enclosing call; layers without it ignore it.
        training = kwargs.pop("training", None)
        if training is None:
            training = getattr(_context, "training", None)
        if "training" in params:
            kwargs["training"] = bool(training)
        self._maybe_build(inputs)
        if not in_layer_call():
            self._clear_losses()
        with _call_context(training), _device_context(self.device):
            outputs = self.call(*args, **kwargs)
        self._attach_mask(inputs, mask, outputs)
        if self.activity_regularizer is not None:
            self._activity_losses = [self.activity_regularizer(x) / x.shape[0] for x in tree.flatten(outputs)]
        return outputs

    def _convert_input(self, x):
        # Float inputs are cast to the layer's dtype, Tensors too (differentiably), as Keras does.
        if isinstance(x, Tensor):
            return ops.cast(x, self.dtype) if x.dtype.kind == "f" and x.dtype != self.dtype else x
        if x is None:
            return x
        if isinstance(x, np.ndarray):
            check_allocation(f"Layer {self.name}: input", x.shape, x.dtype)  # the copy a Tensor makes
        tensor = convert_to_tensor(x)
        if tensor.dtype.kind == "f" and tensor.dtype != self.dtype:
            tensor = wrap(np.asarray(tensor, dtype=self.dtype))
        return tensor

    def _attach_mask(self, inputs, mask, outputs):
        try:
            out_mask = self.compute_mask(inputs, mask)
        except NotImplementedError:
            return
        single = out_mask is None or isinstance(out_mask, (Tensor, np.ndarray))
        if single and isinstance(outputs, Tensor) and isinstance(inputs, Tensor):  # the common case, quickly
            if outputs is not inputs:
                outputs._keras_mask = None if out_mask is None else convert_to_tensor(out_mask)
            return
        flat_out = [t for t in tree.flatten(outputs)]
        flat_mask = [out_mask] if single else tree.flatten(out_mask)
        flat_mask += [None] * (len(flat_out) - len(flat_mask))
        flat_in = tree.flatten(inputs)
        for tensor, m in zip(flat_out, flat_mask):
            # A layer that returns its input as is must not change the caller's tensor.
            if isinstance(tensor, Tensor) and all(tensor is not x for x in flat_in):
                tensor._keras_mask = None if m is None else convert_to_tensor(m)

    def _symbolic_call(self, args, kwargs):
        if not self.built:
            self.build(tree.map_structure(lambda x: x.shape if isinstance(x, KerasTensor) else np.shape(x), args[0]))
            self.built = True
        sizes, static_shape = (2, 3), None
        if isinstance(args[0], KerasTensor) and hasattr(self, "compute_output_shape"):
            # Windows, crops and strides: placeholders big enough for the layer, and the shape from
            # its arithmetic (two sizes pooled by 2 can give one size, which is not a known size).
            static_shape = tuple(self.compute_output_shape(args[0].shape))
            sizes = self._placeholder_sizes(args[0].shape)
        runs = []
        for size in sizes:
            concrete = tree.map_structure(
                lambda x, size=size: x.placeholder(size) if isinstance(x, KerasTensor) else x, (args, kwargs)
            )
            with _call_context(False, symbolic=True):
                runs.append(self(*concrete[0], **concrete[1]))
        outputs = tree.map_structure(output_spec, runs[0], runs[1])
        if static_shape is not None and isinstance(outputs, KerasTensor):
            outputs.shape = static_shape
        node = Node(self, args, kwargs, outputs)
        for i, tensor in enumerate(tree.flatten(outputs)):
            tensor.node, tensor.index = node, i
        self.inbound_nodes.append(node)
        return outputs

    def _placeholder_sizes(self, shape):
        """Two consecutive sizes for the unknown axes of `shape` that give every output axis at
        least one position (a crop or a window needs more than 2); 2 and 3 when none does, so the
        layer's call says what is wrong with the known sizes."""
        for size in range(2, 4097):
            concrete = tuple(size if d is None else d for d in shape)
            if all(d is None or d >= 1 for d in self.compute_output_shape(concrete)):
                return size, size + 1
        return 2, 3

    # --- the functional graph -----------------------------------------------------------------

    def _first_call(self, what):
        if not self.inbound_nodes:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no defined {what}.")
        return self.inbound_nodes[0]

    @property
    def input(self):
        """The symbolic inputs of the layer's first call on symbolic tensors: one KerasTensor, or
        a list when the call took several (the `initial_state` tensors included), as in Keras.

        Raises:
            AttributeError: If the layer was never called on symbolic tensors.
        """
        return _one_or_list(self._first_call("input").input_tensors)

    @property
    def output(self):
        """The symbolic outputs of the layer's first call on symbolic tensors: one KerasTensor,
        or a list (an RNN's `[output, *states]` with `return_state=True`).

        Raises:
            AttributeError: If the layer was never called on symbolic tensors.
        """
        return _one_or_list(tree.flatten(self._first_call("output").outputs))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
