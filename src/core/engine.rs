//! Where a sequence pass runs: the CPU's time loops ([`Cpu`]) or, with the `cuda` feature, a
//! GPU. Bidirectional is written once over this trait.

use ndarray::ArrayView2;

use super::cancel::Cancel;
use super::cell::{CellSpec, Weights};
use super::sequence::{
    self, Forward, Gradients, OutputGrad, Saved, SequenceInput, SequenceOptions,
};
use super::Float;
use crate::error::Result;

/// Runs one direction's forward and backward passes.
///
/// `lane` is `None` for a pass that runs alone, or 0 and 1 for the two directions of a pair,
/// which run at the same time (on the CPU each gets half the threads, on a GPU its own stream).
pub trait Engine<T: Float>: Sync {
    /// What a forward pass keeps for its backward pass.
    type Saved: Send + Sync;

    /// A forward pass, as [`sequence::forward`].
    fn forward(
        &self,
        spec: &CellSpec,
        weights: &Weights<T>,
        input: &SequenceInput<T>,
        options: SequenceOptions,
        lane: Option<usize>,
    ) -> Result<Forward<T, Self::Saved>>;

    /// The backward pass of a [`Engine::forward`] pass, as [`sequence::backward`].
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

/// The CPU: time loops over slices of the batch, in parallel on the thread team.
pub struct Cpu;

impl<T: Float> Engine<T> for Cpu {
    type Saved = Saved<T>;

    fn forward(
        &self,
        spec: &CellSpec,
        weights: &Weights<T>,
        input: &SequenceInput<T>,
        options: SequenceOptions,
        lane: Option<usize>,
    ) -> Result<Forward<T>> {
        sequence::forward_sharing(spec, weights, input, options, lane_threads(lane))
    }

    fn backward(
        &self,
        saved: &Saved<T>,
        d_outputs: OutputGrad<T>,
        d_final_states: &[Option<ArrayView2<T>>],
        input_gradient: bool,
        cancel: &Cancel,
        lane: Option<usize>,
    ) -> Result<Gradients<T>> {
        let threads = lane_threads(lane);
        sequence::backward_sharing(
            saved,
            d_outputs,
            d_final_states,
            input_gradient,
            cancel,
            threads,
        )
    }

    fn spec(saved: &Saved<T>) -> &CellSpec {
        saved.spec()
    }

    fn dims(saved: &Saved<T>) -> (usize, usize, usize, usize) {
        saved.dims()
    }
}

/// The threads a pass splits its work for: all of rayon's, or half of them for one of two lanes
/// running side by side (a Bidirectional layer's directions), so that the two together do not
/// ask for more threads than there are.
fn lane_threads(lane: Option<usize>) -> usize {
    let threads = rayon::current_num_threads();
    if lane.is_some() {
        threads.div_ceil(2)
    } else {
        threads
    }
}
