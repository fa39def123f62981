"""`EinsumDense`: a dense layer whose product is an einsum equation between the inputs and a kernel."""

import re

import numpy as np

from rnnkit import activations, constraints, initializers, ops, regularizers
from rnnkit.layers.layer import Layer

# The three forms Keras accepts: "ab,bc->ac", "...ab,bc->...ac" and "ab...,bc->ac...".
_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), None),
    (re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)"), "left"),
    (re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\."), "right"),
)


def parse_equation(equation):
    """Splits an EinsumDense equation into `(input, kernel, output, ellipsis)` labels.

    Args:
        equation: "ab,bc->ac", "...ab,bc->...ac" or "ab...,bc->ac..." (any letters).

    Returns:
        The three label strings and where the ellipsis is: None, "left" or "right".

    Raises:
        ValueError: If `equation` has none of the three forms.
    """
    if isinstance(equation, str):
        for pattern, ellipsis in _FORMS:
            match = pattern.fullmatch(equation.replace(" ", ""))
            if match:
                return (*match.groups(), ellipsis)
    raise ValueError(
        f"Invalid einsum equation {equation!r}. Equations must be in the form "
        "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...."
    )


def einsum_shapes(equation, bias_axes, input_shape, partial_output_shape):
    """The kernel, bias and output shapes of an EinsumDense, and the kernel's input/output axes.

    The output is the batch axis, then the ellipsis axes of a left ellipsis, the sizes the user
    gave (None: the size of the input's axis of the same label, as Keras's docstring shows, where
    its `compute_output_shape` leaves None), then the ellipsis axes of a right ellipsis. Without
    a left ellipsis the output's first label is the batch axis, so `partial_output_shape` sizes
    the labels after it.

    Args:
        equation: The layer's equation.
        bias_axes: Output labels with a bias, or None.
        input_shape: The input's shape, batch axis included.
        partial_output_shape: The output sizes the user gave (a tuple, None where unknown).

    Returns:
        `(kernel_shape, bias_shape or None, output_shape, kernel_input_axes, kernel_output_axes)`.

    Raises:
        ValueError: If the equation, the shapes or `bias_axes` do not fit together.
    """
    inputs, kernel, outputs, ellipsis = parse_equation(equation)
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(inputs)
    if elided < 0 or (ellipsis is None and elided) or (ellipsis is not None and elided < 1):
        want = f"{len(inputs)}" if ellipsis is None else f"more than {len(inputs)}"
        raise ValueError(
            f"EinsumDense: equation {equation!r} needs inputs of rank {want}, received input shape {input_shape}"
        )
    named = len(outputs) - (0 if ellipsis == "left" else 1)
    if len(partial_output_shape) != named:
        raise ValueError(
            f"EinsumDense: output_shape must give {named} sizes (the output labels {outputs!r} "
            f"{'' if ellipsis == 'left' else 'but the batch label '}of {equation!r}), "
            f"received output_shape={partial_output_shape}"
        )
    first = elided if ellipsis == "left" else 0
    output_shape = [input_shape[0], *input_shape[1:first], *partial_output_shape]
    if ellipsis == "right":
        output_shape += input_shape[len(inputs) :]
    input_axis = {label: first + i for i, label in enumerate(inputs)}
    output_axis = {label: first + i for i, label in enumerate(outputs)}
    for label, axis in output_axis.items():
        if label in input_axis:
            size = input_shape[input_axis[label]]
            if output_shape[axis] is None:
                output_shape[axis] = size
            elif size is not None and output_shape[axis] != size:
                raise ValueError(
                    f"Input shape and output shape do not match at shared dimension '{label}'. "
                    f"Input shape is {size}, and output shape is {output_shape[axis]}."
                )
        elif label not in kernel:
            raise ValueError(
                f"Dimension '{label}' was specified in the output '{outputs}' but has no corresponding "
                f"dim in the input spec '{inputs}' or weight spec '{kernel}'"
            )
    kernel_shape, input_axes, output_axes = [], [], []
    for i, label in enumerate(kernel):
        if label in output_axis:
            size = output_shape[output_axis[label]]
            output_axes.append(i)
        elif label in input_axis:
            size = input_shape[input_axis[label]]
            input_axes.append(i)
        else:
            raise ValueError(
                f"Weight dimension '{label}' did not have a match in either the input spec '{inputs}' "
                f"or the output spec '{outputs}'. For this layer, the weight must be fully specified."
            )
        if size is None:
            raise ValueError(
                f"EinsumDense: the size of kernel dimension '{label}' of {equation!r} is unknown; give it "
                f"in output_shape or in the input shape (received input shape {input_shape})"
            )
        kernel_shape.append(int(size))
    bias_shape = None
    if bias_axes is not None:
        for label in bias_axes:
            if label not in outputs:
                raise ValueError(
                    f"Bias dimension '{label}' was requested, but is not part of the output spec '{outputs}'"
                )
        start = min(outputs.index(label) for label in bias_axes)
        bias_shape = [output_shape[output_axis[label]] if label in bias_axes else 1 for label in outputs[start:]]
        if None in bias_shape:
            raise ValueError(f"EinsumDense: bias_axes={bias_axes!r} includes an axis of unknown size ({output_shape})")
        if ellipsis == "right":
            bias_shape += [1] * elided
    return kernel_shape, bias_shape, tuple(output_shape), input_axes, output_axes


class EinsumDense(Layer):
    """`activation(einsum(equation, inputs, kernel) + bias)`, as Keras's `EinsumDense`.

    The kernel's shape follows from the equation: each kernel label takes its size from the
    output (`output_shape`) or, if only in the input, from the input. A `VarianceScaling`
    kernel initializer (the default glorot_uniform is one) counts the kernel's input and output
    labels as its fans, as Keras does. The layer does not propagate masks (nor does Keras's).

    Args:
        equation: "ab,bc->ac", "...ab,bc->...ac" or "ab...,bc->ac..." with any letters; the first
            operand is the input, the second the kernel.
        output_shape: The output's sizes without the batch axis and the ellipsis axes: an int or
            a tuple, None for the size of the input's axis of the same label.
        activation: Activation name or function; None is linear.
        bias_axes: Output labels to add a bias along (a string), or None for no bias.
        kernel_initializer: Initializer of the kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Optional regularizer of the kernel.
        bias_regularizer: Optional regularizer of the bias.
        kernel_constraint: Optional constraint of the kernel.
        bias_constraint: Optional constraint of the bias.
        lora_rank: Keras's LoRA rank; only None is supported (raises otherwise).
        lora_alpha: Keras's LoRA scale; only None is supported (raises otherwise).
        gptq_unpacked_column_size: Keras's quantization argument; only None is supported.
        quantization_config: Keras's quantization argument; only None is supported.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        equation,
        output_shape,
        activation=None,
        bias_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        gptq_unpacked_column_size=None,
        quantization_config=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("lora_rank", lora_rank),
            ("lora_alpha", lora_alpha),
            ("gptq_unpacked_column_size", gptq_unpacked_column_size),
            ("quantization_config", quantization_config),
        ):
            if value is not None:
                raise ValueError(
                    f"EinsumDense: {name} is not supported by rnnkit (no LoRA or quantization); "
                    f"received {name}={value!r:.80}"
                )
        parse_equation(equation)
        if bias_axes is not None and (not isinstance(bias_axes, str) or len(set(bias_axes)) != len(bias_axes)):
            raise ValueError(f"bias_axes: expected a string of distinct output labels or None, received {bias_axes!r}")
        if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
            output_shape = (output_shape,)
        if not isinstance(output_shape, (list, tuple)) or not all(
            d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0) for d in output_shape
        ):
            raise ValueError(
                f"output_shape: expected a positive int or a tuple of positive ints and None, received {output_shape!r}"
            )
        self.equation = equation
        self.partial_output_shape = tuple(None if d is None else int(d) for d in output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _shapes(self, input_shape):
        return einsum_shapes(self.equation, self.bias_axes, input_shape, self.partial_output_shape)

    def build(self, input_shape):
        kernel_shape, bias_shape, _, input_axes, output_axes = self._shapes(input_shape)
        self._input_rank = len(input_shape)
        initializer = self.kernel_initializer
        if isinstance(initializer, initializers.VarianceScaling) and (
            initializer.input_axes is None or initializer.output_axes is None
        ):
            config = {**initializer.get_config(), "input_axes": input_axes, "output_axes": output_axes}
            initializer = type(initializer).from_config(config)
        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel_shape,
            initializer=initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight(
                name="bias",
                shape=bias_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output's shape for inputs of `input_shape` (batch axis included)."""
        return self._shapes(input_shape)[2]

    def call(self, inputs):
        if inputs.ndim != self._input_rank:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim={self._input_rank}, "
                f"found ndim={inputs.ndim}. Full shape received: {tuple(inputs.shape)}"
            )
        inputs_labels, kernel_labels, _, ellipsis = parse_equation(self.equation)
        first = inputs.ndim - len(inputs_labels) if ellipsis == "left" else 0
        for i, label in enumerate(inputs_labels):
            size = self.kernel.shape[kernel_labels.index(label)] if label in kernel_labels else None
            if size is not None and inputs.shape[first + i] != size:
                raise ValueError(
                    f"Input 0 of layer {self.name} is incompatible with the layer: axis {first + i} (label "
                    f"'{label}' of {self.equation!r}) should have size {size}, received input shape "
                    f"{tuple(inputs.shape)}"
                )
        x = ops.einsum(self.equation, inputs, self.kernel)
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x)

    def get_config(self):
        return {
            **super().get_config(),
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "quantization_config": None,
        }
