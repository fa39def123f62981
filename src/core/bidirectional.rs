//! Bidirectional: two sequence passes run concurrently and merged, as Keras's `Bidirectional`.
//!
//! The second direction's per-step outputs come back in its processing order; with
//! `return_sequences` they are flipped into input time order before merging (Keras does the same),
//! and its last output is merged as is.

use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayViewD, Axis, Slice};

use super::cancel::Cancel;
use super::cell::{CellSpec, Weights};
use super::engine::Engine;
use super::sequence::{
    last_output, Forward, Gradients, OutputGrad, Saved, SequenceInput, SequenceOptions,
};
use super::Float;
use crate::cpu::Cpu;
use crate::error::{check_shape, Error, Result};

/// How the two directions' outputs are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// The outputs side by side on the last axis.
    Concat,
    /// Their sum.
    Sum,
    /// Their product.
    Mul,
    /// Their mean.
    Ave,
    /// Both outputs are returned separately.
    None,
}

impl MergeMode {
    /// Parses Keras's `merge_mode` (`None` is Python's None).
    pub fn from_name(name: Option<&str>) -> Result<Self> {
        match name {
            Some("concat") => Ok(Self::Concat),
            Some("sum") => Ok(Self::Sum),
            Some("mul") => Ok(Self::Mul),
            Some("ave") => Ok(Self::Ave),
            None => Ok(Self::None),
            Some(other) => Err(Error::Value {
                argument: "merge_mode".into(),
                expected: "one of 'sum', 'mul', 'ave', 'concat', None".into(),
                received: format!("'{other}'"),
            }),
        }
    }
}

/// One direction: its cell, weights, inputs and options.
pub struct Direction<'a, T> {
    /// The direction's cell.
    pub spec: &'a CellSpec,
    /// Its weights.
    pub weights: Weights<'a, T>,
    /// The input (shared by both directions) with this direction's states and dropout.
    pub input: SequenceInput<'a, T>,
    /// How it walks the sequence (the second direction has the opposite `go_backwards`).
    pub options: SequenceOptions,
}

/// What a bidirectional forward pass returns.
#[derive(Debug)]
pub struct BidirectionalForward<T, S = Saved<T>> {
    /// The merged output, or both outputs for [`MergeMode::None`]: `(batch, time, ·)` with
    /// `return_sequences`, else `(batch, ·)`.
    pub outputs: Vec<ArrayD<T>>,
    /// The first direction's final states.
    pub forward_states: Vec<Array2<T>>,
    /// The second direction's final states.
    pub backward_states: Vec<Array2<T>>,
    /// What the backward pass needs.
    pub saved: BidirectionalSaved<T, S>,
}

/// Both directions' saved activations (`S`: [`Saved`] on the CPU) and what the merge needs for
/// its backward.
#[derive(Debug)]
pub struct BidirectionalSaved<T, S = Saved<T>> {
    /// The first direction's.
    pub forward: S,
    /// The second direction's.
    pub backward: S,
    merge_mode: MergeMode,
    return_sequences: bool,
    /// The two unmerged outputs, kept for the backward of `mul`.
    merged_inputs: Option<[ArrayD<T>; 2]>,
}

/// Gradients of both directions; `input` is their sum.
#[derive(Debug)]
pub struct BidirectionalGradients<T> {
    /// The sum of both directions' input gradients; `None` when not asked for.
    pub input: Option<Array3<T>>,
    /// The first direction's weight and state gradients.
    pub forward: Gradients<T>,
    /// The second direction's.
    pub backward: Gradients<T>,
}

/// The output each direction contributes: every step (the second flipped into time order), or
/// its last step.
fn direction_output<T: Float>(out: &Array3<T>, return_sequences: bool, flip: bool) -> ArrayD<T> {
    if return_sequences {
        let slice = if flip {
            Slice::new(0, None, -1)
        } else {
            Slice::from(..)
        };
        out.slice_axis(Axis(1), slice).to_owned().into_dyn()
    } else {
        last_output(out).into_dyn()
    }
}

fn merge<T: Float>(mode: MergeMode, a: ArrayD<T>, b: ArrayD<T>) -> Result<Vec<ArrayD<T>>> {
    if mode != MergeMode::Concat && mode != MergeMode::None && a.shape() != b.shape() {
        return check_shape("backward layer output", a.shape(), b.shape()).map(|_| Vec::new());
    }
    Ok(match mode {
        MergeMode::Concat => {
            let axis = Axis(a.ndim() - 1);
            vec![ndarray::concatenate(axis, &[a.view(), b.view()]).expect("leading dims agree")]
        }
        MergeMode::Sum => vec![a + b],
        MergeMode::Mul => vec![a * b],
        MergeMode::Ave => vec![(a + b) * T::lit(0.5)],
        MergeMode::None => vec![a, b],
    })
}

/// Runs both directions concurrently on the CPU and merges their outputs.
pub fn forward<T: Float>(
    forward_dir: &Direction<T>,
    backward_dir: &Direction<T>,
    merge_mode: MergeMode,
    return_sequences: bool,
) -> Result<BidirectionalForward<T>> {
    forward_on(
        &Cpu,
        forward_dir,
        backward_dir,
        merge_mode,
        return_sequences,
    )
}

/// [`forward`] on `engine`.
pub fn forward_on<T: Float, E: Engine<T>>(
    engine: &E,
    forward_dir: &Direction<T>,
    backward_dir: &Direction<T>,
    merge_mode: MergeMode,
    return_sequences: bool,
) -> Result<BidirectionalForward<T, E::Saved>> {
    if forward_dir.input.x.shape()[..2] != backward_dir.input.x.shape()[..2] {
        check_shape(
            "backward input",
            &forward_dir.input.x.shape()[..2],
            &backward_dir.input.x.shape()[..2],
        )?;
    }
    // The directions run side by side, each in its own lane.
    let run = |d: &Direction<T>, lane| {
        let options = SequenceOptions {
            last_output_only: !return_sequences,
            ..d.options
        };
        engine.forward(d.spec, &d.weights, &d.input, options, Some(lane))
    };
    let (fw, bw) = rayon::join(|| run(forward_dir, 0), || run(backward_dir, 1));
    let (fw, bw): (Forward<T, E::Saved>, Forward<T, E::Saved>) = (fw?, bw?);
    let a = direction_output(&fw.outputs, return_sequences, false);
    let b = direction_output(&bw.outputs, return_sequences, true);
    let merged_inputs = (merge_mode == MergeMode::Mul).then(|| [a.clone(), b.clone()]);
    let outputs = merge(merge_mode, a, b)?;
    Ok(BidirectionalForward {
        outputs,
        forward_states: fw.final_states,
        backward_states: bw.final_states,
        saved: BidirectionalSaved {
            forward: fw.saved,
            backward: bw.saved,
            merge_mode,
            return_sequences,
            merged_inputs,
        },
    })
}

/// Backward of the merge and of both directions, run concurrently.
///
/// `d_outputs` has one entry per returned output (two for [`MergeMode::None`]), `None` for an
/// unused output; an empty slice means no output is used. `input_gradient` as in
/// [`crate::cpu::sequence::backward`]; `cancel` stops both directions.
pub fn backward<T: Float>(
    saved: &BidirectionalSaved<T>,
    d_outputs: &[Option<ArrayViewD<T>>],
    d_forward_states: &[Option<ArrayView2<T>>],
    d_backward_states: &[Option<ArrayView2<T>>],
    input_gradient: bool,
    cancel: &Cancel,
) -> Result<BidirectionalGradients<T>> {
    let d_states = [d_forward_states, d_backward_states];
    backward_on(&Cpu, saved, d_outputs, d_states, input_gradient, cancel)
}

/// [`backward`] on the engine that ran the forward pass.
pub fn backward_on<T: Float, E: Engine<T>>(
    engine: &E,
    saved: &BidirectionalSaved<T, E::Saved>,
    d_outputs: &[Option<ArrayViewD<T>>],
    [d_forward_states, d_backward_states]: [&[Option<ArrayView2<T>>]; 2],
    input_gradient: bool,
    cancel: &Cancel,
) -> Result<BidirectionalGradients<T>> {
    let ((b, t, _, u_fw), u_bw) = (E::dims(&saved.forward), E::dims(&saved.backward).3);
    check_output_grads(saved, (b, t, u_fw, u_bw), d_outputs)?;
    let (d_fw, d_bw) = direction_grads(saved, u_fw, d_outputs);
    let (g_fw, g_bw) = (
        output_grad(&d_fw, saved.return_sequences),
        output_grad(&d_bw, saved.return_sequences),
    );
    let run = |saved, d_outputs, d_states, lane| {
        engine.backward(
            saved,
            d_outputs,
            d_states,
            input_gradient,
            cancel,
            Some(lane),
        )
    };
    let (fw, bw) = rayon::join(
        || run(&saved.forward, g_fw, d_forward_states, 0),
        || run(&saved.backward, g_bw, d_backward_states, 1),
    );
    let (mut forward, mut backward) = (fw?, bw?);
    // The sum is the pair's input gradient; the directions keep none of their own.
    let input = match (forward.input.take(), backward.input.take()) {
        (Some(mut dx), Some(bw)) => {
            dx += &bw;
            Some(dx)
        }
        _ => None,
    };
    Ok(BidirectionalGradients {
        input,
        forward,
        backward,
    })
}

/// Checks the merged output's gradients against a pass of `(batch, time, forward units,
/// backward units)`.
fn check_output_grads<T, S>(
    saved: &BidirectionalSaved<T, S>,
    (b, t, u_fw, u_bw): (usize, usize, usize, usize),
    d_outputs: &[Option<ArrayViewD<T>>],
) -> Result<()> {
    let lead: Vec<usize> = if saved.return_sequences {
        vec![b, t]
    } else {
        vec![b]
    };
    let with = |last: usize| [lead.as_slice(), &[last]].concat();
    let expected: Vec<Vec<usize>> = match saved.merge_mode {
        MergeMode::Concat => vec![with(u_fw + u_bw)],
        MergeMode::None => vec![with(u_fw), with(u_bw)],
        _ => vec![with(u_fw)],
    };
    if !d_outputs.is_empty() && d_outputs.len() != expected.len() {
        return Err(Error::Value {
            argument: "d_outputs".into(),
            expected: format!("{} arrays", expected.len()),
            received: d_outputs.len().to_string(),
        });
    }
    for (i, (g, e)) in d_outputs.iter().zip(&expected).enumerate() {
        if let Some(g) = g {
            check_shape(&format!("d_outputs[{i}]"), e, g.shape())?;
        }
    }
    Ok(())
}

/// Each direction's output gradient from the merged output's (checked), the second one's
/// steps back in its processing order.
fn direction_grads<T: Float, S>(
    saved: &BidirectionalSaved<T, S>,
    u_fw: usize,
    d_outputs: &[Option<ArrayViewD<T>>],
) -> (Option<ArrayD<T>>, Option<ArrayD<T>>) {
    let (d_fw, d_bw) = match (saved.merge_mode, d_outputs) {
        (_, []) | (_, [None]) => (None, None),
        (MergeMode::Concat, [Some(d)]) => {
            let axis = Axis(d.ndim() - 1);
            let (a, b) = d.view().split_at(axis, u_fw);
            (Some(a.to_owned()), Some(b.to_owned()))
        }
        (MergeMode::Sum, [Some(d)]) => (Some(d.to_owned()), Some(d.to_owned())),
        (MergeMode::Ave, [Some(d)]) => {
            let half = d.mapv(|v| v * T::lit(0.5));
            (Some(half.clone()), Some(half))
        }
        (MergeMode::Mul, [Some(d)]) => {
            let [a, b] = saved.merged_inputs.as_ref().expect("mul keeps its inputs");
            (Some(d * b), Some(d * a))
        }
        (MergeMode::None, [da, db]) => (
            da.as_ref().map(|d| d.to_owned()),
            db.as_ref().map(|d| d.to_owned()),
        ),
        _ => unreachable!("counts checked before"),
    };
    // Undo the flip of the second direction's sequence.
    let d_bw = d_bw.map(|d| {
        if saved.return_sequences {
            d.slice_axis(Axis(1), Slice::new(0, None, -1)).to_owned()
        } else {
            d
        }
    });
    (d_fw, d_bw)
}

/// A direction's output gradient as the sequence loop takes it.
fn output_grad<T: Float>(d: &Option<ArrayD<T>>, return_sequences: bool) -> OutputGrad<'_, T> {
    match d {
        None => OutputGrad::None,
        Some(d) if return_sequences => {
            OutputGrad::Sequence(d.view().into_dimensionality().expect("3-d gradient"))
        }
        Some(d) => OutputGrad::Last(d.view().into_dimensionality().expect("2-d gradient")),
    }
}
