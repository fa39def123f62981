"""Type stubs of the compiled extension ``rnnkit._core`` (the Rust core's bindings)."""

from typing import Optional, Sequence, Tuple, Union

import numpy as np

__version__: str
ACTIVATIONS: list[str]

Array = np.ndarray
Weights = Union[Tuple[Array, Array], Tuple[Array, Array, Optional[Array]]]
WeightGrads = Tuple[Array, Array, Optional[Array], list[Array]]

class ShapeError(ValueError):
    """An array argument has the wrong shape."""

class CellSpec:
    """A recurrent cell's kind ("simple_rnn", "gru", "lstm"), size and activations."""

    def __init__(
        self,
        kind: str,
        units: int,
        activation: Optional[str] = "tanh",
        recurrent_activation: Optional[str] = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
    ) -> None: ...
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
    def gates(self) -> int: ...
    @property
    def state_count(self) -> int: ...
    @property
    def bias_shape(self) -> list[int]: ...

class SavedActivations:
    """Activations a forward pass keeps in Rust memory for its backward pass (weak-referenceable)."""

def rnn_forward(
    spec: CellSpec,
    weights: Weights,
    x: Array,
    *,
    initial_states: Optional[Sequence[Array]] = None,
    mask: Optional[Array] = None,
    input_dropout: Optional[Array] = None,
    recurrent_dropout: Optional[Array] = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    return_sequences: bool = True,
    device: Optional[str] = None,
    inference: bool = False,
) -> Tuple[Array, list[Array], Optional[SavedActivations]]: ...
def rnn_backward(
    saved: SavedActivations,
    d_outputs: Optional[Array] = None,
    d_last_output: Optional[Array] = None,
    d_final_states: Optional[Sequence[Optional[Array]]] = None,
    *,
    input_gradient: bool = True,
) -> Tuple[Optional[Array], Array, Array, Optional[Array], list[Array]]: ...
def bidirectional_forward(
    fw_spec: CellSpec,
    fw_weights: Weights,
    bw_spec: CellSpec,
    bw_weights: Weights,
    x: Array,
    *,
    merge_mode: Optional[str] = "concat",
    return_sequences: bool = False,
    mask: Optional[Array] = None,
    fw_initial_states: Optional[Sequence[Array]] = None,
    bw_initial_states: Optional[Sequence[Array]] = None,
    fw_input_dropout: Optional[Array] = None,
    fw_recurrent_dropout: Optional[Array] = None,
    bw_input_dropout: Optional[Array] = None,
    bw_recurrent_dropout: Optional[Array] = None,
    zero_output_for_mask: bool = False,
    fw_go_backwards: bool = False,
    device: Optional[str] = None,
) -> Tuple[Union[Array, Tuple[Array, Array]], list[Array], list[Array], SavedActivations]: ...
def bidirectional_backward(
    saved: SavedActivations,
    d_outputs: Optional[Union[Array, Sequence[Optional[Array]]]] = None,
    d_fw_states: Optional[Sequence[Optional[Array]]] = None,
    d_bw_states: Optional[Sequence[Optional[Array]]] = None,
    *,
    input_gradient: bool = True,
) -> Tuple[Optional[Array], WeightGrads, WeightGrads]: ...

def adam_update(
    values: Sequence[Array],
    gradients: Sequence[Array],
    momentums: Sequence[Array],
    velocities: Sequence[Array],
    velocity_hats: Optional[Sequence[Array]],
    *,
    alpha: float,
    one_minus_beta_1: float,
    one_minus_beta_2: float,
    epsilon: float,
) -> Tuple[list[Array], list[Array], list[Array], Optional[list[Array]]]:
    """Adam's step for every weight at once (numpy's arithmetic); new values, m, v, largest v."""

def sgd_update(
    values: Sequence[Array],
    gradients: Sequence[Array],
    momentums: Optional[Sequence[Array]] = None,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> Tuple[list[Array], Optional[list[Array]]]:
    """SGD's step for every weight at once (numpy's arithmetic); new values and momentums."""

def cached_bytes() -> int:
    """Bytes of freed large blocks the extension keeps for its next calls."""

def release_cached_memory() -> None:
    """Returns the freed large blocks the extension keeps to the system."""

def check_memory(nbytes: int, what: str) -> None:
    """Raises MemoryError, naming `what`, when `nbytes` exceed the machine's memory."""

def cuda_status() -> Tuple[bool, str]:
    """Whether `device="cuda"` works here, with the GPU's name, or why not."""

def compile_cuda_kernels(major: int, minor: int) -> int:
    """Compiles the GPU kernels with NVRTC for compute capability `major.minor`; the PTX's size."""
