"""Layer wrappers: the `Wrapper` base class, `Bidirectional` and `TimeDistributed`."""

import numpy as np

from rnnkit import ops, quantizers, tree
from rnnkit.layers import fused, serialization
from rnnkit.layers.layer import Layer, call_parameters
from rnnkit.layers.rnn import RNN, as_mask

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _copy(layer, **overrides):
    config = serialization.serialize(layer)
    config["config"].update(overrides)
    return serialization.deserialize(config, {type(layer).__name__: type(layer)})


class Bidirectional(Layer):
    """Runs an RNN layer forwards and a copy of it backwards, and merges their outputs.

    Args:
        layer: The RNN layer; a fresh copy named `forward_<name>` runs forwards.
        merge_mode: "concat" (default), "sum", "mul", "ave", or None for a list of both outputs.
        weights: Accepted for compatibility, unused (as in Keras 3).
        backward_layer: Optional layer for the backward direction; by default a copy of `layer`
            with `go_backwards` flipped, named `backward_<name>`.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `Bidirectional` layer with a `keras.layers.Layer` instance. Received: {layer}"
            )
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(
                f"`backward_layer` needs to be a `keras.layers.Layer` instance. Received: {backward_layer}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                '{"sum", "mul", "ave", "concat", None}'
            )
        super().__init__(**kwargs)
        self.forward_layer = _copy(layer, name="forward_" + layer.name)
        if backward_layer is None:
            backward_layer = _copy(layer, name="backward_" + layer.name, go_backwards=not layer.go_backwards)
        else:
            for attr, same in (
                ("go_backwards", False),
                ("stateful", True),
                ("return_sequences", True),
                ("return_state", True),
            ):
                if (getattr(backward_layer, attr) == getattr(layer, attr)) != same:
                    raise ValueError(
                        f"Forward layer and backward layer should have {'the same' if same else 'different'} "
                        f"`{attr}`. forward_layer.{attr} = {getattr(layer, attr)}, "
                        f"backward_layer.{attr} = {getattr(backward_layer, attr)}"
                    )
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        for half in (self.forward_layer, self.backward_layer):
            half.zero_output_for_mask = self.return_sequences
        self.supports_masking = True

    @property
    def states(self):
        """The forward layer's states followed by the backward layer's (stateful layers)."""
        if self.forward_layer.states is None:
            return None
        return list(self.forward_layer.states) + list(self.backward_layer.states)

    def reset_state(self, states=None):
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        half = None if states is None else len(states) // 2
        self.forward_layer.reset_state(None if states is None else states[:half])
        self.backward_layer.reset_state(None if states is None else states[half:])

    def reset_states(self, states=None):
        self.reset_state(states)

    def build(self, sequences_shape):
        for half in (self.forward_layer, self.backward_layer):
            if not half.built:
                half.build(sequences_shape)
                half.built = True
        self.built = True

    def call(self, sequences, initial_state=None, mask=None, training=None):
        fw_state = bw_state = None
        first = self.forward_layer.check_sequences(sequences) if isinstance(self.forward_layer, RNN) else None
        if mask is not None and first is not None:
            mask = as_mask(mask, first.shape[0], first.shape[1], self.name)
        if not tree.is_nested(sequences) and sequences.dtype.kind in "biu":
            sequences = ops.cast(sequences, self.dtype)
        if initial_state is not None:
            initial_state = tree.flatten(initial_state)
            expected = 2 * self.forward_layer._flat_state_count() if isinstance(self.forward_layer, RNN) else None
            if len(initial_state) % 2 or (expected is not None and len(initial_state) != expected):
                raise ValueError(
                    "When passing `initial_state` to a Bidirectional RNN, the state should be a list "
                    "containing the states of the underlying RNNs (the forward layer's, then the backward "
                    f"layer's): expected {expected if expected is not None else 'an even number of'} states, "
                    f"received {len(initial_state)} states."
                )
            half = len(initial_state) // 2
            fw_state, bw_state = initial_state[:half], initial_state[half:]
        if self._fused and not tree.is_nested(sequences):
            output, fw_states, bw_states = self._fused_call(sequences, fw_state, bw_state, mask, training)
            if not self.return_state:
                return output
            return (list(output) if self.merge_mode is None else [output]) + fw_states + bw_states
        y = self.forward_layer(sequences, initial_state=fw_state, mask=mask, training=training)
        y_rev = self.backward_layer(sequences, initial_state=bw_state, mask=mask, training=training)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            output = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = [y, y_rev]
        if not self.return_state:
            return output
        return (list(output) if self.merge_mode is None else [output]) + list(states)

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes both directions to int8 (see `RNN.quantize`).

        Args:
            mode: "int8".
            type_check: Refuse cell subclasses that override `call`.
            config: Only None.

        Raises:
            ValueError: If the layer is not built or already quantized, or for an unknown mode.
            NotImplementedError: For Keras's other modes, a `config`, or halves that are not
                quantizable recurrent layers (nothing is quantized then).
        """
        quantizers.check_quantize_args(self, mode, config)
        halves = (self.forward_layer, self.backward_layer)
        for half in halves:
            if not isinstance(half, RNN):
                raise NotImplementedError(f"Layer {type(half).__name__} does not have a `quantize` method implemented.")
            quantizers.check_quantize_args(half, mode, config)
            for cell in half._cells:
                reason = getattr(cell, "_int8_refusal", lambda _: "not a built-in cell")(type_check)
                if reason:
                    raise NotImplementedError(
                        f"Layer {type(self).__name__} '{self.name}' cannot be quantized: cell "
                        f"{type(cell).__name__} '{cell.name}': {reason}."
                    )
        for half in halves:
            half.quantize(mode, type_check, config)
        self._quantization_mode = mode

    @property
    def _fused(self):
        """Both halves are single built-in cells: one concurrent pass in the Rust core."""
        halves = (self.forward_layer, self.backward_layer)
        return all(isinstance(h, RNN) and h._fused and len(h._cells) == 1 and not h.stateful for h in halves)

    def _fused_call(self, x, fw_state, bw_state, mask, training):
        fw, bw = self.forward_layer, self.backward_layer
        for half in (fw, bw):
            if not half.built:
                half.build(tuple(x.shape))
        batch = x.shape[0]
        states = None
        if fw_state is not None:
            states = (fw._check_initial_state(fw_state, batch)[0], bw._check_initial_state(bw_state, batch)[0])
        dropouts = tuple(h.cell.step_masks(batch, x.shape[-1], self.dtype, training) for h in (fw, bw))
        return fused.bidirectional(
            fw.cell,
            bw.cell,
            x,
            states,
            None if mask is None else np.asarray(mask, dtype=bool),
            dropouts,
            self.merge_mode,
            self.return_sequences,
            self.return_sequences,
            fw.go_backwards,
        )

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        masks = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n_states = 2 * self.forward_layer._flat_state_count()
            return masks + [None] * n_states
        return masks if self.merge_mode is None else out

    def get_config(self):
        config = {"merge_mode": self.merge_mode, "layer": serialization.serialize(self.forward_layer)}
        config["layer"]["config"]["name"] = self.forward_layer.name[len("forward_") :]
        config["backward_layer"] = serialization.serialize(self.backward_layer)
        return {**super().get_config(), **config}

    def to_torch_state_dict(self):
        """The PyTorch state dict (numpy arrays, `_reverse` keys) of this bidirectional layer."""
        from rnnkit.interop import torch

        return torch.to_torch_state_dict(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = serialization.deserialize(config["layer"], custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = serialization.deserialize(config["backward_layer"], custom_objects)
        return cls(**config)


class Wrapper(Layer):
    """Base class of layers that wrap another layer and change what it does, as Keras's
    `keras.layers.Wrapper` (`TimeDistributed` is one).

    A subclass implements `call` (usually calling `self.layer`); `build` builds the wrapped
    layer on the same input shape unless it is built, and the config holds the wrapped layer's,
    so subclasses with no arguments of their own save and load as they are. In `.keras` files
    the wrapped layer's weights sit under `layer`, the wrapper's own beside it, as in Keras.

    Args:
        layer: The layer to wrap.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Layer {layer!r:.80} supplied to Wrapper isn't a supported layer type. Please ensure wrapped "
                "layer is a valid Keras layer."
            )
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        self.built = True

    def get_config(self):
        return {**super().get_config(), "layer": serialization.serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Creates the wrapper, deserialising the wrapped layer's config.

        Args:
            config: `get_config()`'s output.
            custom_objects: Optional `{name: class}` for user-defined wrapped layers.

        Returns:
            The new wrapper.
        """
        config = dict(config)
        layer = serialization.deserialize(config.pop("layer"), custom_objects)
        return cls(layer, **config)


class TimeDistributed(Wrapper):
    """Applies a layer to every time step of its input (axis 1) separately.

    Args:
        layer: The layer applied to each `(batch, ...)` slice.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. Received: {layer}"
            )
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, received: "
                f"{input_shape}"
            )
        if not self.layer.built:
            self.layer.build((input_shape[0], *input_shape[2:]))
            self.layer.built = True
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if inputs.ndim < 3:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: expected min_ndim=3, "
                f"found ndim={inputs.ndim}. Full shape received: {tuple(inputs.shape)}"
            )
        if mask is not None and tuple(np.shape(mask)[:2]) != tuple(inputs.shape[:2]):
            raise ValueError(
                f"The `mask` passed to the `TimeDistributed` layer has a shape {tuple(mask.shape)} that is "
                f"incompatible with the input shape {tuple(inputs.shape)}."
            )
        if inputs.shape[1] == 0:
            # No steps: the layer runs once over zero samples, which gives the output's shape.
            flat = self.layer(ops.reshape(inputs, (0, *inputs.shape[2:])))
            return ops.reshape(flat, (inputs.shape[0], 0, *flat.shape[1:]))
        params = call_parameters(type(self.layer))
        outputs = []
        for t in range(inputs.shape[1]):
            kwargs = {}
            if "training" in params:
                kwargs["training"] = training
            if "mask" in params and mask is not None:
                kwargs["mask"] = mask[:, t]
            outputs.append(self.layer(inputs[:, t], **kwargs))
        return ops.stack(outputs, axis=1)
