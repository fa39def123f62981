"""Differentiable operations on tensor-likes (Tensors, Variables, numpy arrays, Python numbers)."""

from rnnkit.ops import linalg
from rnnkit.ops.core import cast, convert_to_numpy, convert_to_tensor, shape, stop_gradient
from rnnkit.ops.linalg import dot, norm, tensordot
from rnnkit.ops.manipulation import (
    arange, concatenate, expand_dims, eye, flip, full, full_like, linspace, moveaxis, ones, ones_like, pad,
    repeat, reshape, split, squeeze, stack, take, take_along_axis, tile, transpose, unstack, zeros,
    zeros_like,
)
from rnnkit.ops.math import (
    abs, add, all, any, argmax, argmin, argsort, clip, cumprod, cumsum, divide, einsum, equal, erf, exp,
    expm1, greater, greater_equal, isfinite, isinf, isnan, less, less_equal, log, logsumexp, matmul, max,
    maximum, mean, min, minimum, multiply, negative, not_equal, power, segment_sum, sort, sqrt, square,
    subtract, sum, tanh, top_k, where,
)
from rnnkit.ops.nn import log_softmax, one_hot, relu, sigmoid, softmax, softplus
