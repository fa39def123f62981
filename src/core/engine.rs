//! Where a sequence pass runs: the CPU's time loops ([`crate::cpu::Cpu`]) or, with the `cuda`
//! feature, a GPU. Bidirectional is written once over this trait.

use ndarray::ArrayView2;

use super::cancel::Cancel;
use super::cell::{CellSpec, Weights};
use super::sequence::{Forward, Gradients, OutputGrad, SequenceInput, SequenceOptions};
use super::Float;
use crate::error::Result;

/// Runs one direction's forward and backward passes.
///
/// `lane` is `None` for a pass that runs alone, or 0 and 1 for the two directions of a pair,
/// which run at the same time (on the CPU each gets half the threads, on a GPU its own stream).
pub trait Engine<T: Float>: Sync {
    /// What a forward pass keeps for its backward pass.
    type Saved: Send + Sync;

    /// A forward pass, as [`crate::cpu::sequence::forward`].
    fn forward(
        &self,
        spec: &CellSpec,
        weights: &Weights<T>,
        input: &SequenceInput<T>,
        options: SequenceOptions,
        lane: Option<usize>,
    ) -> Result<Forward<T, Self::Saved>>;

    /// The backward pass of a [`Engine::forward`] pass, as [`crate::cpu::sequence::backward`].
    fn backward(
        &self,
        saved: &Self::Saved,
        d_outputs: OutputGrad<T>,
        d_final_states: &[Option<ArrayView2<T>>],
        input_gradient: bool,
        cancel: &Cancel,
        lane: Option<usize>,
    ) -> Result<Gradients<T>>;

    /// The cell of a saved pass.
    fn spec(saved: &Self::Saved) -> &CellSpec;

    /// `(batch, time, features, units)` of a saved pass.
    fn dims(saved: &Self::Saved) -> (usize, usize, usize, usize);
}
