//! rnnkit: fused recurrent neural network kernels.
//!
//! The crate is a pure-Rust core (`core`, `cpu`) usable from `cargo test` and `cargo bench`, plus
//! the PyO3 bindings (`python`, behind the default `python` feature) that expose it as
//! `rnnkit._core`. Arrays follow Keras's layouts so weights move between the two unchanged.

pub mod core;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "no_cuda.rs"]
pub mod cuda;
pub mod error;

#[cfg(feature = "python")]
mod python;

pub use crate::core::activation::Activation;

pub use crate::core::bidirectional::{self, Direction, MergeMode};
pub use crate::core::cancel::Cancel;
pub use crate::core::cell::{CellKind, CellSpec, Weights};
pub use crate::core::engine::Engine;
pub use crate::core::sequence::{
    Forward, Gradients, OutputGrad, Precision, Saved, SequenceInput, SequenceOptions, Zoneout,
};
pub use crate::core::Float;
pub use crate::cpu::sequence;
pub use crate::cpu::Cpu;
pub use crate::error::{Error, Result};
