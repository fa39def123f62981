//! The Python extension `rnnkit._core`: the only place that knows about Python.
//!
//! Arrays come in as numpy views without copies (any strides), the GIL is released while the
//! core computes, saved activations stay in Rust behind an opaque object, and every failure,
//! panics included, becomes a Python exception.

mod cell_spec;
mod conv;
mod convert;
mod device;
mod hashing;
mod losses;
mod normalization;
mod optimizers;
mod passes;
mod zoneout;

use pyo3::prelude::*;

use crate::cpu::block_cache::BlockCache;

/// The extension's Rust allocations keep up to 2 GiB of freed large blocks for the next call
/// (see [`BlockCache`]); numpy arrays handed to Python own Rust memory too, so their buffers
/// come back to it when Python drops them. (A training step of the keras-io next-frame
/// `ConvLSTM2D` model frees about 1.6 GB of such blocks: with 512 MiB kept, the page faults of
/// the rest were a sixth of its time.)
#[global_allocator]
pub(crate) static ALLOCATOR: BlockCache = BlockCache::new(2 << 30);

pyo3::create_exception!(
    rnnkit,
    ShapeError,
    pyo3::exceptions::PyValueError,
    "An array argument has the wrong shape; the message names the argument, the expected and the received shapes."
);

/// Bytes of freed large blocks the extension keeps for its next calls.
#[pyfunction]
pub fn cached_bytes() -> usize {
    ALLOCATOR.held()
}

/// Returns the freed large blocks the extension keeps to the system.
#[pyfunction]
pub fn release_cached_memory() {
    ALLOCATOR.release();
}

/// Raises MemoryError when `nbytes` exceed the machine's physical memory, naming `what` (the
/// check every large buffer of the core goes through, for arrays Python is about to make).
#[pyfunction]
pub fn check_memory(nbytes: u64, what: &str) -> PyResult<()> {
    Ok(crate::cpu::alloc::check_bytes(nbytes, what)?)
}

/// How bfloat16 products compute here: "amx" (the CPU's matrix tiles) or "emulated" (the same
/// rounding on the portable tile).
#[pyfunction]
pub fn bfloat16_products() -> &'static str {
    if crate::cpu::bf16::on_amx() {
        "amx"
    } else {
        "emulated"
    }
}

/// Which kernel computes int8 products here: `"avx512_vnni"`, `"avx2"` or `"portable"` (the
/// same numbers on each).
#[pyfunction]
pub fn int8_products() -> &'static str {
    crate::cpu::int8::kernel_name()
}

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::cell_spec::CellSpec;
    #[pymodule_export]
    use super::conv::{
        conv_backward, conv_forward, conv_lstm_backward, conv_lstm_forward,
        conv_transpose_backward, conv_transpose_forward, pool_backward, pool_forward,
        ConvLstmSavedObject,
    };
    #[pymodule_export]
    use super::device::{compile_cuda_kernels, cuda_status};
    #[pymodule_export]
    use super::hashing::hash_strings;
    #[pymodule_export]
    use super::losses::{sparse_softmax_cross_entropy, sparse_softmax_cross_entropy_backward};
    #[pymodule_export]
    use super::normalization::{batch_norm_backward, batch_norm_forward};
    #[pymodule_export]
    use super::optimizers::{adagrad_update, adam_update, rmsprop_update, sgd_update};
    #[pymodule_export]
    use super::passes::{
        bidirectional_backward, bidirectional_forward, rnn_backward, rnn_forward, SavedActivations,
    };
    #[pymodule_export]
    use super::zoneout::zoneout_masks;
    #[pymodule_export]
    use super::ShapeError;
    #[pymodule_export]
    use super::{
        bfloat16_products, cached_bytes, check_memory, int8_products, release_cached_memory,
    };

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("ACTIVATIONS", crate::Activation::names())
    }
}
