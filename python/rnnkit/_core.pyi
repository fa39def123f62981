"""Type stubs of the compiled extension ``rnnkit._core`` (the Rust core's bindings).

Checked against the built extension in CI with
``python -m mypy.stubtest rnnkit._core --allowlist python/rnnkit/_core_stubtest_allowlist.txt``.
"""

from collections.abc import Sequence
from typing import Any, Literal, SupportsIndex, overload

import numpy as np
from typing_extensions import Self, TypeAlias, final

__all__ = [
    "CellSpec",
    "compile_cuda_kernels",
    "cuda_status",
    "adagrad_update",
    "adam_update",
    "rmsprop_update",
    "sgd_update",
    "batch_norm_backward",
    "batch_norm_forward",
    "sparse_softmax_cross_entropy",
    "sparse_softmax_cross_entropy_backward",
    "bidirectional_backward",
    "bidirectional_forward",
    "rnn_backward",
    "rnn_forward",
    "SavedActivations",
    "ShapeError",
    "conv_backward",
    "conv_forward",
    "conv_lstm_backward",
    "conv_lstm_forward",
    "ConvLstmSaved",
    "conv_transpose_backward",
    "conv_transpose_forward",
    "pool_backward",
    "pool_forward",
    "hash_strings",
    "zoneout_masks",
    "bfloat16_products",
    "cached_bytes",
    "check_memory",
    "int8_products",
    "release_cached_memory",
    "__version__",
    "ACTIVATIONS",
]

# Stub-only aliases (private: the extension has no such names).
_Array: TypeAlias = np.ndarray[Any, np.dtype[Any]]
# `(kernel, recurrent_kernel)` or `(kernel, recurrent_kernel, bias or None)`.
# `(kernel, recurrent_kernel[, bias[, peephole][, projection][, layer_norm[, cell_norm]]])`: the
# extras a spec has.
_Weights: TypeAlias = tuple[_Array, _Array] | tuple[_Array, _Array, _Array | None] | tuple[_Array | None, ...]
# `(d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_states])`, then `d_peephole`,
# `d_projection`, `d_layer_norm` and `d_cell_norm` for a cell with them.
_WeightGrads: TypeAlias = tuple[_Array, _Array, _Array | None, list[_Array]] | tuple[_Array | list[_Array] | None, ...]

__version__: str
ACTIVATIONS: list[str]

class ShapeError(ValueError):
    """An array argument has the wrong shape; the message names the argument, the expected and the received shapes."""

@final
class CellSpec:
    """A recurrent cell's kind ("simple_rnn", "gru", "lstm", "indrnn"), size and functions (no weights).

    An activation of None is "linear"; `peephole` (LSTM only) adds peephole connections and
    `projection` (LSTM only) projects `h` to that size; `layer_norm` (LSTM, GRU with
    reset_after) normalises the input and recurrent products and an LSTM's cell state.
    """

    def __new__(
        cls,
        kind: str,
        units: SupportsIndex,
        activation: str | None = "tanh",
        recurrent_activation: str | None = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
        *,
        peephole: bool = False,
        projection: SupportsIndex | None = None,
        layer_norm: bool = False,
    ) -> Self: ...
    @property
    def kind(self) -> str: ...
    @property
    def units(self) -> int: ...
    @property
    def activation(self) -> str: ...
    @property
    def recurrent_activation(self) -> str: ...
    @property
    def use_bias(self) -> bool: ...
    @property
    def reset_after(self) -> bool: ...
    @property
    def peephole(self) -> bool: ...
    @property
    def projection(self) -> int | None: ...
    @property
    def layer_norm(self) -> bool: ...
    @property
    def gates(self) -> int: ...
    @property
    def state_count(self) -> int: ...
    @property
    def bias_shape(self) -> list[int]: ...

@final
class SavedActivations:
    """Activations a forward pass keeps in Rust memory for its backward pass (weak-referenceable)."""

@overload
def rnn_forward(
    spec: CellSpec,
    weights: _Weights,
    x: _Array,
    *,
    initial_states: Sequence[_Array] | None = None,
    mask: _Array | None = None,
    input_dropout: _Array | None = None,
    recurrent_dropout: _Array | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    return_sequences: bool = True,
    device: str | None = None,
    inference: Literal[False] = False,
    compute_dtype: str | None = None,
    zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[_Array, list[_Array], SavedActivations]: ...
@overload
def rnn_forward(
    spec: CellSpec,
    weights: _Weights,
    x: _Array,
    *,
    initial_states: Sequence[_Array] | None = None,
    mask: _Array | None = None,
    input_dropout: _Array | None = None,
    recurrent_dropout: _Array | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    return_sequences: bool = True,
    device: str | None = None,
    inference: Literal[True],
    compute_dtype: str | None = None,
    zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[_Array, list[_Array], None]: ...
@overload
def rnn_forward(
    spec: CellSpec,
    weights: _Weights,
    x: _Array,
    *,
    initial_states: Sequence[_Array] | None = None,
    mask: _Array | None = None,
    input_dropout: _Array | None = None,
    recurrent_dropout: _Array | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    return_sequences: bool = True,
    device: str | None = None,
    inference: bool = False,
    compute_dtype: str | None = None,
    zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[_Array, list[_Array], SavedActivations | None]: ...
def rnn_backward(
    saved: SavedActivations,
    d_outputs: _Array | None = None,
    d_last_output: _Array | None = None,
    d_final_states: Sequence[_Array | None] | None = None,
    *,
    input_gradient: bool = True,
) -> tuple[_Array | None, _Array, _Array, _Array | None, list[_Array]] | tuple[_Array | list[_Array] | None, ...]: ...
@overload
def bidirectional_forward(
    fw_spec: CellSpec,
    fw_weights: _Weights,
    bw_spec: CellSpec,
    bw_weights: _Weights,
    x: _Array,
    *,
    merge_mode: str = "concat",
    return_sequences: bool = False,
    mask: _Array | None = None,
    fw_initial_states: Sequence[_Array] | None = None,
    bw_initial_states: Sequence[_Array] | None = None,
    fw_input_dropout: _Array | None = None,
    fw_recurrent_dropout: _Array | None = None,
    bw_input_dropout: _Array | None = None,
    bw_recurrent_dropout: _Array | None = None,
    zero_output_for_mask: bool = False,
    fw_go_backwards: bool = False,
    device: str | None = None,
    compute_dtype: str | None = None,
    fw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
    bw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[_Array, list[_Array], list[_Array], SavedActivations]: ...
@overload
def bidirectional_forward(
    fw_spec: CellSpec,
    fw_weights: _Weights,
    bw_spec: CellSpec,
    bw_weights: _Weights,
    x: _Array,
    *,
    merge_mode: None,
    return_sequences: bool = False,
    mask: _Array | None = None,
    fw_initial_states: Sequence[_Array] | None = None,
    bw_initial_states: Sequence[_Array] | None = None,
    fw_input_dropout: _Array | None = None,
    fw_recurrent_dropout: _Array | None = None,
    bw_input_dropout: _Array | None = None,
    bw_recurrent_dropout: _Array | None = None,
    zero_output_for_mask: bool = False,
    fw_go_backwards: bool = False,
    device: str | None = None,
    compute_dtype: str | None = None,
    fw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
    bw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[tuple[_Array, _Array], list[_Array], list[_Array], SavedActivations]: ...
@overload
def bidirectional_forward(
    fw_spec: CellSpec,
    fw_weights: _Weights,
    bw_spec: CellSpec,
    bw_weights: _Weights,
    x: _Array,
    *,
    merge_mode: str | None = "concat",
    return_sequences: bool = False,
    mask: _Array | None = None,
    fw_initial_states: Sequence[_Array] | None = None,
    bw_initial_states: Sequence[_Array] | None = None,
    fw_input_dropout: _Array | None = None,
    fw_recurrent_dropout: _Array | None = None,
    bw_input_dropout: _Array | None = None,
    bw_recurrent_dropout: _Array | None = None,
    zero_output_for_mask: bool = False,
    fw_go_backwards: bool = False,
    device: str | None = None,
    compute_dtype: str | None = None,
    fw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
    bw_zoneout: Sequence[_Array] | tuple[float, Sequence[int]] | float | None = None,
) -> tuple[_Array | tuple[_Array, _Array], list[_Array], list[_Array], SavedActivations]: ...
def bidirectional_backward(
    saved: SavedActivations,
    d_outputs: _Array | Sequence[_Array | None] | None = None,
    d_fw_states: Sequence[_Array | None] | None = None,
    d_bw_states: Sequence[_Array | None] | None = None,
    *,
    input_gradient: bool = True,
) -> tuple[_Array | None, _WeightGrads, _WeightGrads]: ...
def adam_update(
    values: Sequence[_Array],
    gradients: Sequence[_Array],
    momentums: Sequence[_Array],
    velocities: Sequence[_Array],
    velocity_hats: Sequence[_Array] | None,
    *,
    alpha: float,
    one_minus_beta_1: float,
    one_minus_beta_2: float,
    epsilon: float,
) -> tuple[list[_Array], list[_Array], list[_Array], list[_Array] | None]:
    """Adam's step for every weight at once.

    Returns the new values, momentums, velocities and largest velocities (None without velocity_hats).
    """

def batch_norm_forward(
    x: _Array,
    gamma: _Array | None,
    beta: _Array | None,
    mean: _Array | None = None,
    variance: _Array | None = None,
    *,
    epsilon: float,
) -> tuple[_Array, _Array | None, _Array | None]:
    """Normalizes the rows of `x` by `mean` and `variance`, or by its own batch moments when
    they are None; returns the output and the batch moments (None when given)."""

def batch_norm_backward(
    x: _Array, mean: _Array, variance: _Array, gamma: _Array | None, grad: _Array, *, epsilon: float
) -> tuple[_Array, _Array | None, _Array]:
    """The gradients of `batch_norm_forward` with the batch's moments: d_x, d_gamma (None
    without gamma), d_beta."""

def sparse_softmax_cross_entropy(logits: _Array, labels: _Array) -> tuple[_Array, _Array]:
    """The softmax cross-entropy of each row of `logits` against its int64 label; returns the
    losses and the softmax probabilities."""

def sparse_softmax_cross_entropy_backward(probabilities: _Array, labels: _Array, grad: _Array) -> _Array:
    """The gradient of `sparse_softmax_cross_entropy`'s losses with respect to the logits."""

def sgd_update(
    values: Sequence[_Array],
    gradients: Sequence[_Array],
    momentums: Sequence[_Array] | None = None,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> tuple[list[_Array], list[_Array] | None]:
    """SGD's step for every weight at once; new values and momentums (None without momentums)."""

def rmsprop_update(
    values: Sequence[_Array],
    gradients: Sequence[_Array],
    velocities: Sequence[_Array],
    momentums: Sequence[_Array] | None = None,
    averages: Sequence[_Array] | None = None,
    *,
    learning_rate: float,
    rho: float,
    momentum: float = 0.0,
    epsilon: float,
) -> tuple[list[_Array], list[_Array], list[_Array] | None, list[_Array] | None]:
    """RMSprop's step for every weight at once; new values, velocities, momentums and averages."""

def adagrad_update(
    values: Sequence[_Array],
    gradients: Sequence[_Array],
    accumulators: Sequence[_Array],
    *,
    learning_rate: float,
    epsilon: float,
) -> tuple[list[_Array], list[_Array]]:
    """Adagrad's step for every weight at once; new values and accumulators."""

def bfloat16_products() -> Literal["amx", "emulated"]:
    """How bfloat16 products compute here: "amx" (the CPU's matrix tiles) or "emulated" (portable tiles)."""

def int8_products() -> Literal["avx512_vnni", "avx2", "portable"]:
    """Which kernel computes int8 products here: "avx512_vnni", "avx2" or "portable" (the same numbers on each)."""

def cached_bytes() -> int:
    """Bytes of freed large blocks the extension keeps for its next calls."""

def release_cached_memory() -> None:
    """Returns the freed large blocks the extension keeps to the system."""

def check_memory(nbytes: int, what: str) -> None:
    """Raises MemoryError when `nbytes` exceed the machine's physical memory, naming `what`."""

def cuda_status() -> tuple[bool, str]:
    """Whether `device="cuda"` works here, with the GPU's name, or why not."""

def compile_cuda_kernels(major: int, minor: int) -> int:
    """Compiles the GPU kernels with NVRTC for compute capability `major.minor`; the PTX's size in bytes."""

def conv_forward(
    x: _Array,
    kernel: _Array,
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    groups: int = 1,
) -> _Array:
    """Convolves channels-last `x` `(batch, *spatial, channels)` with `kernel` `(*kernel_size, in/groups, filters)`."""

def conv_backward(
    x: _Array,
    kernel: _Array,
    dy: _Array,
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    groups: int = 1,
    input_gradient: bool = True,
) -> tuple[_Array | None, _Array]:
    """The gradients `(dx or None, d_kernel)` of `conv_forward` given that of its output."""

@final
class ConvLstmSaved:
    """What a ConvLSTM forward pass keeps in Rust memory for its backward pass (weak-referenceable)."""

def conv_lstm_forward(
    projected: _Array,
    recurrent_kernel: _Array,
    *,
    bias: _Array | None = None,
    initial_states: tuple[_Array, _Array] | None = None,
    mask: _Array | None = None,
    recurrent_dropout: _Array | None = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    zero_output_for_mask: bool = False,
    device: str | None = None,
) -> tuple[_Array, _Array, _Array, ConvLstmSaved]:
    """The ConvLSTM recurrence over the hoisted input convolution: `(outputs, h, c, saved)`."""

def conv_lstm_backward(
    saved: ConvLstmSaved,
    d_outputs: _Array | None = None,
    d_final_states: tuple[_Array | None, _Array | None] | None = None,
) -> tuple[_Array, _Array, list[_Array]]:
    """Backpropagation through time: `(d_projected, d_recurrent_kernel, [d_h0, d_c0])`."""

def pool_forward(
    x: _Array,
    *,
    pool_size: Sequence[int],
    strides: Sequence[int],
    padding: str,
    kind: str,
) -> _Array:
    """Max or average pooling of channels-last `x` `(batch, *spatial, channels)`."""

def pool_backward(
    x: _Array,
    dy: _Array,
    *,
    pool_size: Sequence[int],
    strides: Sequence[int],
    padding: str,
    kind: str,
) -> _Array:
    """The input gradient of `pool_forward(x, ...)` given `dy`, that of its output."""

def hash_strings(
    data: bytes,
    ends: _Array,
    *,
    num_bins: int,
    salt: tuple[int, int] | None = None,
) -> _Array:
    """The uint64 bins of the strings `data[ends[i - 1]:ends[i]]`: FarmHash `Fingerprint64`, or
    SipHash-2-4 keyed with `salt`, modulo `num_bins`."""

def zoneout_masks(seed: int, shape: tuple[int, int, int], rate: float, dtype: str = "float32") -> _Array:
    """A `shape` array of 0/1 zoneout masks of `dtype` ("float32" or "float64") drawn from
    `seed` (SplitMix64), each element 1 with probability `rate`."""

def conv_transpose_forward(
    x: _Array,
    kernel: _Array,
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None = None,
) -> _Array:
    """Keras's transposed convolution of channels-last `x` with `kernel` `(*kernel_size, filters, channels)`."""

def conv_transpose_backward(
    x: _Array,
    kernel: _Array,
    dy: _Array,
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None = None,
) -> tuple[_Array, _Array]:
    """The gradients `(dx, d_kernel)` of `conv_transpose_forward` given that of its output."""
