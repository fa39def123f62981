"""The op machinery (numpy kernels made differentiable) and the core ops."""

import functools
import inspect

import numpy as np

from rnnkit.tape import record
from rnnkit.tensor import Tensor, convert_to_tensor, wrap

__all__ = ["cast", "convert_to_numpy", "convert_to_tensor", "shape", "stop_gradient"]


def _is_python_scalar(value):
    return isinstance(value, (bool, int, float, complex)) and not isinstance(value, np.generic)


def unbroadcast(grad, shape):
    """Sums `grad` over the axes that broadcasting added or stretched, so it has `shape`.

    Args:
        grad: A numpy array whose shape is `shape` broadcast against other operands.
        shape: The shape of the operand the gradient is for.

    Returns:
        An array of `shape`.
    """
    grad = np.asarray(grad)
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def op(inputs=1):
    """Makes a differentiable op out of a numpy kernel.

    The kernel receives numpy arrays for its first `inputs` positional arguments (all of them
    when `inputs` is None, for ops taking `*tensors`) and every other argument unchanged. Beside
    a floating-point tensor, Python scalars stay Python scalars so that numpy's weak scalar typing
    keeps the tensor's precision (`float32 * 2.0` is float32); otherwise they are converted by
    `convert_to_tensor`.

    The kernel returns `(output, backward)`. `output` is an array, or a list of arrays for several
    outputs. `backward(grad)` takes the gradient of the output (for several outputs a list, with
    zeros for outputs the target ignores) and returns one gradient per tensor argument (a bare
    array when there is one), None where there is none; gradients may keep the broadcast shape,
    they are reduced to each input's shape here. Non-differentiable ops return None as `backward`.

    Args:
        inputs: How many leading positional arguments are tensors, or None for all of them.

    Returns:
        A decorator turning the kernel into a function of tensor-likes that returns Tensors.
    """

    def decorate(kernel):
        names = list(inspect.signature(kernel).parameters)[: inputs or 0]

        @functools.wraps(kernel)
        def apply(*args, **kwargs):
            # Tensor arguments may also be passed by keyword, e.g. matmul(x1=a, x2=b).
            args += tuple(kwargs.pop(name) for name in names[len(args) :] if name in kwargs)
            count = len(args) if inputs is None else inputs
            tensors = [v if _is_python_scalar(v) else convert_to_tensor(v) for v in args[:count]]
            if not any(isinstance(t, Tensor) and t.dtype.kind in "fc" for t in tensors):
                tensors = [convert_to_tensor(t) for t in tensors]
            arrays = [np.asarray(t) if isinstance(t, Tensor) else t for t in tensors]
            try:
                output, backward = kernel(*arrays, *args[count:], **kwargs)
            except ValueError as err:  # numpy's shape errors, named after the op and its inputs
                shapes = ", ".join(str(np.shape(a)) for a in arrays)
                # A private kernel (`_softmax`) is named after the public op that calls it.
                name = kernel.__name__.lstrip("_")
                raise ValueError(f"rk.ops.{name}: {err} (received shapes {shapes})") from None
            several = isinstance(output, (list, tuple))
            outputs = [wrap(array) for array in output] if several else [wrap(output)]
            if backward is not None:
                input_shapes = [t.shape if isinstance(t, Tensor) else None for t in tensors]
                output_specs = [(t.shape, t.dtype) for t in outputs] if several else None
                backward = functools.partial(_backward, backward, input_shapes, output_specs)
                record(tensors, outputs, backward)
            return outputs if several else outputs[0]

        return apply

    return decorate


def _backward(backward, input_shapes, output_specs, output_grads):
    """Adapts a kernel's backward to the contract of `record`."""
    if output_specs is None:
        grads = backward(output_grads[0])
    else:  # kernels with several outputs get zeros for the outputs the target ignores
        grads = backward([np.zeros(*spec) if g is None else g for g, spec in zip(output_grads, output_specs)])
    if not isinstance(grads, (list, tuple)):
        grads = (grads,)
    return [None if g is None or shape is None else unbroadcast(g, shape) for g, shape in zip(grads, input_shapes)]


@op()
def cast(x, dtype):
    """Casts a tensor to another dtype; gradients flow between floating dtypes.

    Args:
        x: A tensor-like.
        dtype: The target dtype, e.g. "float32".

    Returns:
        A Tensor of `dtype`.
    """
    return x.astype(dtype), lambda grad: grad.astype(x.dtype)


@op()
def stop_gradient(x):
    """Returns `x` as a Tensor through which no gradient flows.

    Args:
        x: A tensor-like.

    Returns:
        A Tensor with the same value.
    """
    return x, None


def shape(x):
    """Returns the shape of a tensor-like as a tuple of ints.

    Args:
        x: A tensor-like.

    Returns:
        A tuple of ints.
    """
    return np.shape(x)


def convert_to_numpy(x):
    """Returns the value of a tensor-like as a numpy array the caller may modify.

    Args:
        x: A Tensor, Variable, numpy array, number or nested list.

    Returns:
        A new numpy array.
    """
    return np.array(x)
