"""`SpectralNormalization`: a wrapper that divides a layer's kernel by its largest singular value,
estimated by power iteration in training."""

import numpy as np

from rnnkit import initializers, ops
from rnnkit.layers.input_spec import InputSpec
from rnnkit.layers.layer import in_symbolic_call
from rnnkit.layers.wrappers import Wrapper

# Keras's `backend.epsilon()`: the smallest norm the power iteration divides by.
_EPSILON = 1e-7


def _unit(x):
    """`x` over its L2 norm (at least `_EPSILON`), as Keras's `normalize(x, axis=None)`."""
    return x * np.minimum(1.0 / np.sqrt(np.sum(np.square(x))), 1.0 / _EPSILON).astype(x.dtype)


class SpectralNormalization(Wrapper):
    """Spectral normalisation of the wrapped layer's `kernel` (or `embeddings`), as Keras's.

    Each call with `training=True` runs `power_iterations` steps of power iteration from the
    non-trainable `vector_u` `(1, units)` on the kernel reshaped to `(-1, units)`, then assigns
    `kernel / sigma` (sigma the estimated largest singular value) to the kernel and the new
    vector to `vector_u`, and calls the layer; a kernel of zeros is left as it is. Inference
    calls the layer as it is. As in Keras's eager backends, the assignment is a state update: the
    gradient reaches the kernel as the wrapped layer uses it, not through the normalisation.
    Weights: the kernel, `vector_u`, then the layer's others (Keras's order).

    Args:
        layer: A layer with a `kernel` or `embeddings` weight (Dense, Conv1D, Embedding, ...).
        power_iterations: The number of power iteration steps per training call (positive).
        **kwargs: Base `Layer` arguments.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer)):
            raise ValueError(
                f"`power_iterations` should be an integer. Received: power_iterations={power_iterations!r}"
            )
        if power_iterations <= 0:
            raise ValueError(
                f"`power_iterations` should be greater than zero. Received: `power_iterations={power_iterations}`"
            )
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None:
            kernel = getattr(self.layer, "embeddings", None)
        if kernel is None:
            raise ValueError(f"{type(self.layer).__name__} object has no attribute 'kernel' nor 'embeddings'")
        self.kernel = kernel
        self.vector_u = self.add_weight(
            shape=(1, kernel.shape[-1]),
            initializer=initializers.TruncatedNormal(stddev=0.02),
            trainable=False,
            name="vector_u",
            dtype=kernel.dtype,
        )
        # Keras tracks the kernel as this layer's weight too (first), in `weights` and in files.
        self._own_weights.insert(0, kernel)
        self.built = True

    def normalized_weights(self):
        """The power iteration's new `vector_u` and the kernel over its spectral norm.

        Returns:
            Two numpy arrays: `vector_u` `(1, units)` and the kernel (its own shape).
        """
        kernel = self.kernel.numpy()
        weights = kernel.reshape(-1, kernel.shape[-1])
        vector_u = self.vector_u.numpy()
        for _ in range(self.power_iterations):
            vector_v = _unit(vector_u @ weights.T)
            vector_u = _unit(vector_v @ weights)
        sigma = (vector_v @ weights) @ vector_u.T
        return vector_u, (kernel / sigma).astype(kernel.dtype)

    def call(self, inputs, training=False):
        if training and not in_symbolic_call() and np.any(self.kernel.numpy() != 0):
            vector_u, kernel = self.normalized_weights()
            self.vector_u.assign(vector_u)
            self.kernel.assign(kernel)
        output = self.layer(inputs)
        return output if output.dtype == inputs.dtype else ops.cast(output, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}
