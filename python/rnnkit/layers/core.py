"""`Dense` (a fully-connected layer over the last axis of inputs of any rank), `Identity` and `Lambda`."""

import inspect

import numpy as np

from rnnkit import activations, constraints, initializers, quantizers, regularizers
from rnnkit._registry import get_registered_name, get_registered_object
from rnnkit.layers.layer import Layer
from rnnkit.tape import needs_gradient, record
from rnnkit.tensor import wrap


class Dense(Layer):
    """`output = activation(inputs · kernel + bias)` over the last axis, as Keras's.

    Args:
        units: Output size (positive).
        activation: Activation name or function; None is linear.
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of the `(input_dim, units)` kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Optional regularizer of the kernel.
        bias_regularizer: Optional regularizer of the bias.
        kernel_constraint: Optional constraint applied to the kernel after each update.
        bias_constraint: Optional constraint applied to the bias after each update.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"Received an invalid value for argument `units`, expected a positive integer, got {units!r}."
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.supports_masking = True

    def _check_rank(self, shape):
        if len(shape) < 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected min_ndim=2, "
                f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            )

    def build(self, input_shape):
        self._check_rank(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name}: the last dimension of the inputs must be known, received {input_shape}."
            )
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    def call(self, inputs):
        self._check_rank(inputs.shape)
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected axis -1 of input "
                f"shape to have value {self.kernel.shape[0]}, but received input with shape {tuple(inputs.shape)}"
            )
        bias = self.bias if self.use_bias else None
        if self.quantization_mode == "int8":
            return self.activation(_int8_affine(inputs, self.kernel, self.kernel_scale, bias))
        return self.activation(_affine(inputs, self.kernel, bias))

    def _inference_array(self, x):
        """`call(x)` outside any tape on the array `x` of a call already checked, as an array;
        None for an int8 layer (only `call` applies)."""
        if self.quantization_mode is not None:
            return None
        out = _affine_values(x, np.asarray(self.kernel), self.bias if self.use_bias else None)[1]
        return np.asarray(self.activation(wrap(out)))

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes the kernel to int8 per output unit, as Keras's `Dense.quantize`: `kernel`
        becomes int8 and non-trainable beside `kernel_scale`; each call then quantizes its
        inputs per row (see `rk.quantizers`). The bias still trains, and gradients reach the
        inputs through the dequantized kernel, as in Keras.

        Args:
            mode: "int8".
            type_check: Refuse subclasses (their `call` may not read the int8 kernel), as Keras.
            config: Only None.

        Raises:
            ValueError: If the layer is not built or already quantized, or for an unknown mode.
            NotImplementedError: For Keras's other modes, a `config`, or a subclass.
        """
        quantizers.check_quantize_args(self, mode, config)
        if type_check and type(self) is not Dense:
            raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize` method implemented.")
        quantizers.quantize_weight(self, "kernel", axis=0)
        self._quantization_mode = mode

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


def _affine(x, kernel, bias):
    """`x · kernel + bias` over the last axis of the Tensor `x`, recorded as one op.

    The rows of `x` (all axes but the last) form one matrix, so the product and each gradient
    are one matrix product whatever the rank of `x`, and the input gradient is computed only when
    a tape asks for it (not for a model's input data).
    """
    x_array, kernel_array = np.asarray(x), np.asarray(kernel)
    rows, out = _affine_values(x_array, kernel_array, bias)
    output = wrap(out)
    x_gradient = needs_gradient(x)

    def backward(grads):
        grad = grads[0].reshape(rows.shape[0], kernel_array.shape[1])
        d_x = (grad @ kernel_array.T).reshape(x_array.shape) if x_gradient else None
        return [d_x, rows.T @ grad] + ([] if bias is None else [grad.sum(axis=0)])

    record([x, kernel] + ([] if bias is None else [bias]), [output], backward)
    return output


def _affine_values(x_array, kernel_array, bias):
    """`(rows, x · kernel + bias)`, recording nothing: the rows of `x_array` (all axes but the
    last) as a matrix, and the product over the last axis in the shape of `x_array`."""
    rows = x_array.reshape(-1, x_array.shape[-1])
    out = rows @ kernel_array
    if bias is not None:
        out = out + np.asarray(bias)
    return rows, out.reshape(x_array.shape[:-1] + out.shape[-1:])


def _int8_affine(x, kernel, kernel_scale, bias):
    """Keras's int8 `Dense` product: the rows of `x` quantized per row, the int32 sums of the
    int8 values divided by `kernel_scale · inputs_scale`, plus `bias`; recorded as one op whose
    input gradient goes through the dequantized kernel (the kernel and its scale are frozen).
    """
    x_array = np.asarray(x)
    rows = x_array.reshape(-1, x_array.shape[-1])
    values, inputs_scale = quantizers.quantize_inputs(rows)
    scale = np.asarray(kernel_scale)
    # In float64 the sums of int8 products are exact (as int32's), and BLAS computes them.
    sums = values.astype(np.float64) @ np.asarray(kernel).astype(np.float64)
    out = sums.astype(scale.dtype) / (scale * inputs_scale)
    if bias is not None:
        out = out + np.asarray(bias)
    output = wrap(out.reshape(x_array.shape[:-1] + out.shape[-1:]))
    x_gradient = needs_gradient(x)

    def backward(grads):
        grad = grads[0].reshape(out.shape)
        float_kernel = quantizers.dequantized(kernel, scale, 0)
        d_x = (grad @ float_kernel.T).reshape(x_array.shape) if x_gradient else None
        return [d_x] + ([] if bias is None else [grad.sum(axis=0)])

    record([x] + ([] if bias is None else [bias]), [output], backward)
    return output


class Identity(Layer):
    """Returns its inputs unchanged (masks included): a placeholder in a model.

    Args:
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs


def _function_config(fn, what):
    """A named function as Keras's function config; a Python lambda cannot be saved."""
    if not callable(fn):
        raise ValueError(f"{what}: expected a callable, received {fn!r:.80}")
    name = getattr(fn, "__name__", None)
    if name is None or name == "<lambda>":
        raise ValueError(
            f"Lambda layer: cannot save a Python lambda as its `{what}` (rnnkit never writes or runs "
            "code from a file). Use a named function registered with "
            "`@rnnkit.saving.register_keras_serializable()` (or passed in `custom_objects` when "
            "loading), or a subclassed layer."
        )
    return {
        "module": getattr(fn, "__module__", None),
        "class_name": "function",
        "config": name,
        "registered_name": get_registered_name(fn),
    }


def _function_from_config(config, what, custom_objects=None):
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "__lambda__":
        raise ValueError(
            f"Lambda layer: the file's `{what}` is a Python lambda stored as bytecode; rnnkit never "
            "runs code from a file. Rebuild the layer with a named function registered with "
            "`@rnnkit.saving.register_keras_serializable()` or passed in `custom_objects`."
        )
    name, registered = config.get("config"), config.get("registered_name")
    fn = get_registered_object(registered or name, custom_objects) or get_registered_object(name, custom_objects)
    if fn is None:
        from rnnkit import activations, ops

        fn = getattr(activations, name, None) if config.get("module", "").endswith("activations") else None
        fn = fn or (getattr(ops, name, None) if config.get("module", "").endswith("ops") else None)
    if fn is None:
        raise ValueError(
            f"Lambda layer: unknown function {registered or name!r} for `{what}`. Register it with "
            "`@rnnkit.saving.register_keras_serializable()` or pass it in `custom_objects`."
        )
    return fn


class Lambda(Layer):
    """Wraps a function as a layer: `function(inputs, **arguments)`.

    The function gets `mask=` and `training=` when its signature takes them. It must compute with
    `rnnkit.ops` to be differentiable. Saving needs a named function registered with
    `register_keras_serializable` (or given in `custom_objects` when loading): a Python lambda
    raises a ValueError in `get_config`, and a Keras file holding lambda bytecode raises on
    loading, since rnnkit never runs code from files.

    Args:
        function: The function, taking the inputs first.
        output_shape: Optional output shape (without the batch axis) or function of the input
            shape, kept for Keras compatibility; rnnkit infers shapes by running the function.
        mask: Optional output mask, or a function `(inputs, mask) -> mask`; None drops the mask.
        arguments: Optional dict of keyword arguments for `function`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"function: expected a callable, received {function!r:.80}")
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError(f"arguments: expected a dict, received {type(arguments).__name__}")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self._output_shape = output_shape
        self.supports_masking = mask is not None
        params = inspect.signature(function).parameters if _has_signature(function) else {}
        self._takes_mask = "mask" in params
        self._takes_training = "training" in params
        self.built = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._takes_mask:
            kwargs["mask"] = mask
        if self._takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return self.mask(inputs, mask) if callable(self.mask) else self.mask

    def get_config(self):
        config = {**super().get_config(), "function": _function_config(self.function, "function")}
        if self._output_shape is not None:
            shape = self._output_shape
            config["output_shape"] = _function_config(shape, "output_shape") if callable(shape) else list(shape)
        if self.mask is not None:
            config["mask"] = _function_config(self.mask, "mask") if callable(self.mask) else self.mask
        config["arguments"] = self.arguments
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("function", "output_shape", "mask"):
            if key in config:
                config[key] = _function_from_config(config[key], key, custom_objects)
        return cls(**config)


def _has_signature(fn):
    try:
        inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return True
