"""Differentiable operations on tensor-likes (Tensors, Variables, numpy arrays, Python numbers)."""

from rnnkit.ops.core import cast, convert_to_tensor, shape, stop_gradient
from rnnkit.ops.manipulation import (
    concatenate, expand_dims, ones, ones_like, reshape, split, squeeze, stack, take, transpose,
    zeros, zeros_like,
)
from rnnkit.ops.math import (
    abs, add, argmax, clip, divide, einsum, equal, erf, exp, expm1, greater, greater_equal, less,
    less_equal, log, matmul, max, maximum, mean, min, minimum, multiply, negative, not_equal, power,
    sqrt, square, subtract, sum, tanh, where,
)
from rnnkit.ops.nn import log_softmax, relu, sigmoid, softmax, softplus
