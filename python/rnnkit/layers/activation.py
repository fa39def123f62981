"""`Activation`: applies an activation function elementwise."""

from rnnkit import activations
from rnnkit.layers.layer import Layer


class Activation(Layer):
    """Applies `activation` to the inputs; masks pass through.

    Args:
        activation: An activation name (e.g. "relu") or function; None is linear.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}
