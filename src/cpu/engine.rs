//! The CPU engine: the sequence passes of [`super::sequence`] behind the [`Engine`] trait.

use ndarray::ArrayView2;

use super::sequence;
use crate::core::cancel::Cancel;
use crate::core::cell::{CellSpec, Weights};
use crate::core::engine::Engine;
use crate::core::sequence::{
    Forward, Gradients, OutputGrad, Saved, SequenceInput, SequenceOptions,
};
use crate::core::Float;
use crate::error::Result;

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
