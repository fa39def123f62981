"""Convolution layers: `Conv1D`, `Conv2D`, `Conv3D`, `Conv1DTranspose`, `Conv2DTranspose`,
`Conv3DTranspose`, `DepthwiseConv1D`, `DepthwiseConv2D`, `SeparableConv1D` and `SeparableConv2D`,
with Keras 3's arguments, weights and numbers; the convolutions run in the Rust core
(`rk.ops.conv`)."""

from rnnkit import activations, constraints, initializers, ops, regularizers
from rnnkit.layers.layer import Layer
from rnnkit.ops.conv import (
    data_format_of,
    output_length,
    padding_of,
    per_axis,
    positive,
    spatial_output_shape,
    transpose_output_length,
)

# Where each `<weight>_<kind>` argument is looked up and serialized.
_OPTION_MODULES = {"initializer": initializers, "regularizer": regularizers, "constraint": constraints}


def _check_strides_dilation(strides, dilation_rate):
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
            f"Received: strides={strides} and dilation_rate={dilation_rate}"
        )


class _SpatialLayer(Layer):
    """What every convolution layer shares: the checks of the input's rank and channels per data
    format, the window arguments, the weights' options, the bias and the activation."""

    rank = 1

    def _channels(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim={self.rank + 2}, "
                f"found ndim={len(shape)}. Full shape received: {tuple(shape)}"
            )
        channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        if channels is None:
            raise ValueError(
                f"Layer {self.name}: the channel dimension of the inputs should be defined. Found None. "
                f"Full input shape received: {tuple(shape)}"
            )
        return int(channels)

    def _check_input(self, inputs, channels):
        got = self._channels(inputs.shape)
        if got != channels:
            axis = -1 if self.data_format == "channels_last" else 1
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected axis {axis} of input "
                f"shape to have value {channels}, but received input with shape {tuple(inputs.shape)}"
            )

    def _set_window(self, kernel_size, strides, dilation_rate, padding, data_format, causal=False):
        """Reads the window arguments every convolution takes (one value per spatial axis)."""
        self.kernel_size = per_axis("kernel_size", kernel_size, self.rank)
        self.strides = per_axis("strides", strides, self.rank)
        self.dilation_rate = per_axis("dilation_rate", dilation_rate, self.rank)
        self.padding = padding_of(padding, allow_causal=causal)
        self.data_format = data_format_of(data_format)

    def _output_length(self, axis, size):
        return output_length(size, self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis], self.padding)

    def _output_channels(self, channels):
        return self.filters

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of shape `input_shape` (None for unknown sizes), as Keras's.

        Args:
            input_shape: The inputs' shape, batch axis included.

        Returns:
            A tuple, None where the size depends on an unknown input size.
        """
        channels = self._output_channels(self._channels(input_shape))
        lengths = [lambda size, axis=axis: self._output_length(axis, size) for axis in range(self.rank)]
        return spatial_output_shape(input_shape, self.data_format, lengths, channels)

    def _set_weight_options(self, activation, use_bias, **options):
        """Reads the activation, `use_bias` and the weights' `<weight>_initializer`,
        `<weight>_regularizer` and `<weight>_constraint` arguments, kept under those names."""
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self._option_names = list(options)
        for name, value in options.items():
            setattr(self, name, _OPTION_MODULES[name.rsplit("_", 1)[1]].get(value))

    def _add_weight(self, options, shape, name):
        """A weight named `name` with the `<options>_*` initializer, regularizer and constraint."""
        return self.add_weight(
            shape=shape,
            initializer=getattr(self, f"{options}_initializer"),
            regularizer=getattr(self, f"{options}_regularizer"),
            constraint=getattr(self, f"{options}_constraint"),
            name=name,
        )

    def _add_bias(self, size):
        self.bias = self._add_weight("bias", (size,), "bias") if self.use_bias else None

    def _in_own_dtype(self, inputs):
        return ops.cast(inputs, self.dtype) if inputs.dtype != self.dtype else inputs

    def _finish(self, outputs):
        """`activation(outputs + bias)`, the bias along the channel axis."""
        if self.use_bias:
            channels_last = self.data_format == "channels_last"
            outputs = ops.add(
                outputs, self.bias if channels_last else ops.reshape(self.bias, (1, -1) + (1,) * self.rank)
            )
        return self.activation(outputs)

    def _options_config(self):
        """The config entries of the activation, `use_bias` and the weights' options."""
        return {
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **{
                name: _OPTION_MODULES[name.rsplit("_", 1)[1]].serialize(getattr(self, name))
                for name in self._option_names
            },
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
        }


class BaseConv(_SpatialLayer):
    """The N-d convolution layer (Keras's `BaseConv`): `activation(conv(inputs, kernel) + bias)`.

    Args:
        rank: Spatial axes (1, 2 or 3).
        filters: Output channels.
        kernel_size: An int or `rank` ints.
        strides: An int or `rank` ints (not with `dilation_rate > 1`).
        padding: "valid", "same" or, for `rank=1`, "causal" (case-insensitive).
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints.
        groups: Channel groups; `filters` and the input channels must be divisible by it.
        activation: Activation name or function; None is linear.
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of the `(*kernel_size, channels // groups, filters)` kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Optional regularizer of the kernel.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        kernel_constraint: Optional constraint of the kernel.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = positive("filters", filters)
        self.groups = positive("groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}."
            )
        self._set_window(kernel_size, strides, dilation_rate, padding, data_format, causal=rank == 1)
        _check_strides_dilation(self.strides, self.dilation_rate)
        self._set_weight_options(
            activation,
            use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )

    def build(self, input_shape):
        channels = self._channels(input_shape)
        if channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of groups. Received "
                f"groups={self.groups}, but the input has {channels} channels (full input shape is {input_shape})."
            )
        self.kernel = self._add_weight("kernel", (*self.kernel_size, channels // self.groups, self.filters), "kernel")
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        self._check_input(inputs, self.kernel.shape[-2] * self.groups)
        outputs = ops.conv(
            self._in_own_dtype(inputs),
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        return self._finish(outputs)

    def get_config(self):
        config = {**super().get_config()}
        config.pop("rank", None)
        return {
            **config,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            **self._options_config(),
        }


class Conv1D(BaseConv):
    """1-D convolution over `(batch, steps, channels)` (channels_last) inputs, as Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 1-tuple.
        **kwargs: The other arguments of `BaseConv` (padding "causal" allowed).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class Conv2D(BaseConv):
    """2-D convolution over `(batch, rows, cols, channels)` (channels_last) inputs, as Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 2-tuple.
        **kwargs: The other arguments of `BaseConv`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3D(BaseConv):
    """3-D convolution over `(batch, d1, d2, d3, channels)` (channels_last) inputs, as Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 3-tuple.
        **kwargs: The other arguments of `BaseConv`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)


class BaseDepthwiseConv(_SpatialLayer):
    """The N-d depthwise convolution layer (Keras's `BaseDepthwiseConv`): each input channel
    convolved with its own `depth_multiplier` filters (output channel `c * depth_multiplier + m`).

    Args:
        rank: Spatial axes (1 or 2).
        kernel_size: An int or `rank` ints.
        strides: An int or `rank` ints.
        padding: "valid" or "same" (case-insensitive).
        depth_multiplier: Filters per input channel.
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints.
        activation: Activation name or function; None is linear.
        use_bias: Whether to add a bias.
        depthwise_initializer: Initializer of the `(*kernel_size, channels, depth_multiplier)` kernel.
        bias_initializer: Initializer of the bias.
        depthwise_regularizer: Optional regularizer of the kernel.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        depthwise_constraint: Optional constraint of the kernel.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        rank,
        kernel_size,
        strides=1,
        padding="valid",
        depth_multiplier=1,
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.depth_multiplier = positive("depth_multiplier", depth_multiplier)
        self._set_window(kernel_size, strides, dilation_rate, padding, data_format)
        self._set_weight_options(
            activation,
            use_bias,
            depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer,
            depthwise_constraint=depthwise_constraint,
            bias_constraint=bias_constraint,
        )

    def _output_channels(self, channels):
        return channels * self.depth_multiplier

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.kernel = self._add_weight("depthwise", (*self.kernel_size, channels, self.depth_multiplier), "kernel")
        self._add_bias(channels * self.depth_multiplier)
        self.built = True

    def call(self, inputs):
        self._check_input(inputs, self.kernel.shape[-2])
        outputs = ops.depthwise_conv(
            self._in_own_dtype(inputs),
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        return self._finish(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            **self._options_config(),
        }


class BaseSeparableConv(_SpatialLayer):
    """The N-d separable convolution layer (Keras's `BaseSeparableConv`): a depthwise
    convolution (`depth_multiplier` filters per input channel) followed by a pointwise (1-wide)
    convolution to `filters` channels.

    Args:
        rank: Spatial axes (1 or 2).
        filters: Output channels.
        kernel_size: An int or `rank` ints, of the depthwise convolution.
        strides: An int or `rank` ints, of the depthwise convolution.
        padding: "valid" or "same" (case-insensitive).
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints.
        depth_multiplier: Depthwise filters per input channel.
        activation: Activation name or function; None is linear.
        use_bias: Whether to add a bias.
        depthwise_initializer: Initializer of `depthwise_kernel` `(*kernel_size, channels, depth_multiplier)`.
        pointwise_initializer: Initializer of `pointwise_kernel` `(*[1] * rank, channels * depth_multiplier,
            filters)`.
        bias_initializer: Initializer of the bias.
        depthwise_regularizer: Optional regularizer of `depthwise_kernel`.
        pointwise_regularizer: Optional regularizer of `pointwise_kernel`.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        depthwise_constraint: Optional constraint of `depthwise_kernel`.
        pointwise_constraint: Optional constraint of `pointwise_kernel`.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = positive("filters", filters)
        self.depth_multiplier = positive("depth_multiplier", depth_multiplier)
        self._set_window(kernel_size, strides, dilation_rate, padding, data_format)
        self._set_weight_options(
            activation,
            use_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer,
            bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer,
            bias_regularizer=bias_regularizer,
            depthwise_constraint=depthwise_constraint,
            pointwise_constraint=pointwise_constraint,
            bias_constraint=bias_constraint,
        )

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.depthwise_kernel = self._add_weight(
            "depthwise", (*self.kernel_size, channels, self.depth_multiplier), "depthwise_kernel"
        )
        self.pointwise_kernel = self._add_weight(
            "pointwise", (*(1,) * self.rank, channels * self.depth_multiplier, self.filters), "pointwise_kernel"
        )
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        self._check_input(inputs, self.depthwise_kernel.shape[-2])
        depthwise = ops.depthwise_conv(
            self._in_own_dtype(inputs),
            self.depthwise_kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        outputs = ops.conv(depthwise, self.pointwise_kernel, data_format=self.data_format)
        return self._finish(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            **self._options_config(),
        }


class DepthwiseConv1D(BaseDepthwiseConv):
    """Depthwise 1-D convolution over `(batch, steps, channels)` (channels_last) inputs, as Keras's.

    Args:
        kernel_size: An int or a 1-tuple.
        **kwargs: The other arguments of `BaseDepthwiseConv`.
    """

    def __init__(self, kernel_size, **kwargs):
        super().__init__(1, kernel_size, **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    """Depthwise 2-D convolution over `(batch, rows, cols, channels)` (channels_last) inputs, as
    Keras's.

    Args:
        kernel_size: An int or a 2-tuple.
        **kwargs: The other arguments of `BaseDepthwiseConv`.
    """

    def __init__(self, kernel_size, **kwargs):
        super().__init__(2, kernel_size, **kwargs)


class SeparableConv1D(BaseSeparableConv):
    """Separable 1-D convolution over `(batch, steps, channels)` (channels_last) inputs, as Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 1-tuple.
        **kwargs: The other arguments of `BaseSeparableConv`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class SeparableConv2D(BaseSeparableConv):
    """Separable 2-D convolution over `(batch, rows, cols, channels)` (channels_last) inputs, as
    Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 2-tuple.
        **kwargs: The other arguments of `BaseSeparableConv`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class BaseConvTranspose(_SpatialLayer):
    """The N-d transposed convolution layer (Keras's `BaseConvTranspose`):
    `activation(conv_transpose(inputs, kernel) + bias)`, with Keras's output sizes.

    Args:
        rank: Spatial axes (1, 2 or 3).
        filters: Output channels.
        kernel_size: An int or `rank` ints.
        strides: An int or `rank` ints.
        padding: "valid" or "same" (case-insensitive).
        output_padding: None (Keras's default sizes), or an int or `rank` ints each smaller than
            its stride.
        data_format: "channels_last" (None) or "channels_first".
        dilation_rate: An int or `rank` ints.
        activation: Activation name or function; None is linear.
        use_bias: Whether to add a bias.
        kernel_initializer: Initializer of the `(*kernel_size, filters, channels)` kernel.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Optional regularizer of the kernel.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        kernel_constraint: Optional constraint of the kernel.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = positive("filters", filters)
        self._set_window(kernel_size, strides, dilation_rate, padding, data_format)
        self.output_padding = None if output_padding is None else per_axis("output_padding", output_padding, rank, 0)
        if self.output_padding is not None:
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` for all dimensions. At dimension "
                        f"{i}, `output_padding` is {op} but `strides` is {s}. Received: "
                        f"output_padding={self.output_padding}, strides={self.strides}"
                    )
        self._set_weight_options(
            activation,
            use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
        )

    def _output_length(self, axis, size):
        output_padding = None if self.output_padding is None else self.output_padding[axis]
        return transpose_output_length(
            size, self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis], self.padding, output_padding
        )

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.kernel = self._add_weight("kernel", (*self.kernel_size, self.filters, channels), "kernel")
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        self._check_input(inputs, self.kernel.shape[-1])
        outputs = ops.conv_transpose(
            self._in_own_dtype(inputs),
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        return self._finish(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            **self._options_config(),
        }


class Conv1DTranspose(BaseConvTranspose):
    """1-D transposed convolution over `(batch, steps, channels)` (channels_last) inputs, as Keras's.

    Args:
        filters: Output channels.
        kernel_size: An int or a 1-tuple.
        **kwargs: The other arguments of `BaseConvTranspose`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    """2-D transposed convolution over `(batch, rows, cols, channels)` (channels_last) inputs.

    Args:
        filters: Output channels.
        kernel_size: An int or a 2-tuple.
        **kwargs: The other arguments of `BaseConvTranspose`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    """3-D transposed convolution over `(batch, d1, d2, d3, channels)` (channels_last) inputs.

    Args:
        filters: Output channels.
        kernel_size: An int or a 3-tuple.
        **kwargs: The other arguments of `BaseConvTranspose`.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)
