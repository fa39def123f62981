//! What a sequence pass takes and gives, on every device: its options and inputs, the
//! activations it keeps for the backward pass ([`Saved`], the CPU's), the gradients, and the
//! checks every engine runs before any work starts. The CPU's time loops are in
//! [`crate::cpu::sequence`], the GPU's in `crate::cuda`.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::cancel::Cancel;
use super::cell::{CellSpec, Weights};
use super::Float;
use crate::error::{check_shape, Error, Result};

/// How the sequence is walked and what masked steps output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceOptions {
    /// Process the sequence in reverse; outputs come back in processing (reversed) order.
    pub go_backwards: bool,
    /// A masked step outputs zeros instead of the previous output.
    pub zero_output_for_mask: bool,
    /// Return only the last step's output, as `(batch, 1, units)` (`(batch, 0, units)` for an
    /// empty sequence): a layer without `return_sequences` needs no copy of the others.
    pub last_output_only: bool,
    /// No backward pass follows (inference): the saved activations keep no copy of the
    /// weights, and [`crate::cpu::sequence::backward`] refuses them.
    pub inference: bool,
    /// How the matrix products round their operands (forward and backward).
    pub precision: Precision,
}

/// How a pass's matrix products round their operands; the step math, the states and the
/// weights keep the pass's float type either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// In the pass's float type: Keras's numbers.
    #[default]
    Full,
    /// Operands rounded to bfloat16, sums in f32 (f32 passes on the CPU only): Keras's
    /// `mixed_bfloat16` policy, on AMX tiles where the CPU has them.
    Bf16,
    /// int8 products (f32 inference passes on the CPU only): the weights quantized per output
    /// column, the left operands per row at each product, sums in i32 (see
    /// [`crate::cpu::int8`]); Keras's `quantize("int8")`.
    Int8,
}

impl Precision {
    /// The `compute_dtype` name of this precision.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "float32",
            Self::Bf16 => "bfloat16",
            Self::Int8 => "int8",
        }
    }
}

/// The arrays a forward pass reads. Views may have any strides.
#[derive(Clone, Debug)]
pub struct SequenceInput<'a, T> {
    /// `(batch, time, features)`.
    pub x: ArrayView3<'a, T>,
    /// One `(batch, units)` array per state (`[h]`, or `[h, c]` for LSTM); zeros when absent.
    pub initial_states: Option<Vec<ArrayView2<'a, T>>>,
    /// `(batch, time)`; a false step keeps the previous state.
    pub mask: Option<ArrayView2<'a, bool>>,
    /// `(gates, batch, features)` multipliers of the input, one per gate, shared over time.
    pub input_dropout: Option<ArrayView3<'a, T>>,
    /// `(gates, batch, units)` multipliers of the previous `h`, one per gate, shared over time.
    pub recurrent_dropout: Option<ArrayView3<'a, T>>,
    /// Zoneout of the states (see [`Zoneout`]).
    pub zoneout: Option<Zoneout<'a, T>>,
    /// Stops the pass between two steps.
    pub cancel: Cancel,
}

impl<'a, T> SequenceInput<'a, T> {
    /// An input with no initial states, mask or dropout.
    pub fn new(x: ArrayView3<'a, T>) -> Self {
        Self {
            x,
            initial_states: None,
            mask: None,
            input_dropout: None,
            recurrent_dropout: None,
            zoneout: None,
            cancel: Cancel::default(),
        }
    }
}

/// What a forward pass returns; `S` is what it keeps for the backward pass ([`Saved`] on the
/// CPU).
#[derive(Debug)]
pub struct Forward<T, S = Saved<T>> {
    /// `(batch, time, units)` per-step outputs in processing order.
    pub outputs: Array3<T>,
    /// `[h]` or `[h, c]`, each `(batch, units)`.
    pub final_states: Vec<Array2<T>>,
    /// Everything the backward pass needs.
    pub saved: S,
}

/// Zoneout: per state (`[h]`, or `[h, c]` for LSTM), weights `m` of the previous value at each
/// step: a used step's state becomes `m ⊙ s₋₁ + (1 - m) ⊙ s̃`, `s̃` the cell's new value.
/// LSTM's `h̃ = o ⊙ act(c̃)` reads the new `c̃` before its zoneout.
#[derive(Clone, Debug)]
pub enum Zoneout<'a, T> {
    /// Per state, `(batch, time, state units)` weights, time indexed as `x` (0/1 masks in
    /// training, the rate at inference).
    Weights(Vec<ArrayView3<'a, T>>),
    /// Training masks the forward pass draws itself, step by step: per state, the masks
    /// [`super::zoneout::masks`]`(seed, rate, (time, batch, state units))` of its seed (time
    /// indexed as `x`), so no mask array crosses into the pass.
    Drawn {
        /// The probability that a unit keeps its previous value, in `[0, 1]`.
        rate: f64,
        /// One seed per state.
        seeds: Vec<u64>,
    },
    /// Zoneout's expectation at inference: every unit of every state moves by `1 - rate`,
    /// `s = rate·s₋₁ + (1 - rate)·s̃`, with no array.
    Expectation {
        /// The probability that a unit keeps its previous value in training, in `[0, 1]`.
        rate: f64,
    },
}

/// The zoneout a forward pass keeps for its backward pass.
#[derive(Debug)]
pub(crate) enum KeptZoneout<T> {
    /// Per state, `(time, batch, state units)` weights (given, or the drawn masks), processing
    /// order.
    Weights(Vec<Array3<T>>),
    /// [`Zoneout::Expectation`]'s rate, as a row as long as the longest state (each state
    /// reads its first units).
    Rate(Vec<T>),
}

/// The activations a forward pass keeps for its backward pass, with copies of its inputs.
#[derive(Debug)]
pub struct Saved<T> {
    pub(crate) spec: CellSpec,
    pub(crate) options: SequenceOptions,
    pub(crate) kernel: Array2<T>,
    pub(crate) recurrent_kernel: Array2<T>,
    pub(crate) bias: Option<Array2<T>>,
    pub(crate) peephole: Option<Array2<T>>,
    pub(crate) projection: Option<Array2<T>>,
    pub(crate) layer_norm: Option<Array2<T>>,
    pub(crate) cell_norm: Option<Array2<T>>,
    /// `(time, batch, features)`, processing order.
    pub(crate) x: Array3<T>,
    /// `(time, batch)`, processing order.
    pub(crate) mask: Option<Array2<bool>>,
    pub(crate) input_dropout: Option<Array3<T>>,
    pub(crate) recurrent_dropout: Option<Array3<T>>,
    /// The zoneout weights of the pass.
    pub(crate) zoneout: Option<KeptZoneout<T>>,
    /// `(time, batch, gates·units)` pre-activations, or the gate values with `keep_gates`.
    pub(crate) pre: Array3<T>,
    pub(crate) keep_gates: bool,
    /// `(time + 1, batch, output units)`: `h` before each step, then the final `h`.
    pub(crate) hs: Array3<T>,
    /// `(time + 1, batch, units)`: as `hs` for the LSTM cell state.
    pub(crate) cs: Option<Array3<T>>,
    /// `(time, batch, units)`: GRU `reset_after`'s recurrent h-gate term.
    pub(crate) rec_h: Option<Array3<T>>,
    /// `(time, batch, units)`: a projected LSTM's `o ⊙ act(c)` before the projection (zeros at
    /// masked steps).
    pub(crate) unprojected: Option<Array3<T>>,
    /// `(time, batch, units)`: under zoneout, LSTM's new cell state `c̃` before its zoneout (at
    /// masked steps the kept `c₋₁`).
    pub(crate) c_candidate: Option<Array3<T>>,
    /// `(time, batch, gates·units)`: under layer normalisation, the input product `(x ⊙ m)·W`
    /// before its normalisation.
    pub(crate) input_raw: Option<Array3<T>>,
    /// `(time, batch, gates·units)`: under layer normalisation, the recurrent product
    /// `(h₋₁ ⊙ m)·U` before its normalisation.
    pub(crate) recurrent_raw: Option<Array3<T>>,
    /// `(time, batch, 4)`: under layer normalisation, each row's [`super::cell::moments`] of
    /// `input_raw` then of `recurrent_raw` (`mean, rstd, mean, rstd`), for the backward pass.
    pub(crate) norm_moments: Option<Array3<T>>,
}

impl<T> Saved<T> {
    /// The cell this pass ran.
    pub fn spec(&self) -> &CellSpec {
        &self.spec
    }

    /// `(batch, time, features, output units)` (the output units are `h`'s size).
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        let (t, b, f) = self.x.dim();
        (b, t, f, self.spec.output_units())
    }
}

/// The gradient flowing into the outputs.
#[derive(Clone, Copy, Debug)]
pub enum OutputGrad<'a, T> {
    /// `(batch, time, units)`, for every step's output.
    Sequence(ArrayView3<'a, T>),
    /// `(batch, units)`, for the last output only.
    Last(ArrayView2<'a, T>),
    /// The outputs are unused.
    None,
}

/// Gradients of a forward pass's inputs.
#[derive(Debug)]
pub struct Gradients<T> {
    /// `(batch, time, features)`; `None` when the caller did not ask for it.
    pub input: Option<Array3<T>>,
    /// Same shape as the kernel.
    pub kernel: Array2<T>,
    /// Same shape as the recurrent kernel.
    pub recurrent_kernel: Array2<T>,
    /// Same shape as the bias; `None` without bias.
    pub bias: Option<Array2<T>>,
    /// `(3, units)`, for an LSTM with peepholes; else `None`.
    pub peephole: Option<Array2<T>>,
    /// `(units, projection)`, for a projected LSTM; else `None`.
    pub projection: Option<Array2<T>>,
    /// `(2, gates·units)`, the layer-normalisation gains'; else `None`.
    pub layer_norm: Option<Array2<T>>,
    /// `(2, units)`, an LSTM's cell-state normalisation's; else `None`.
    pub cell_norm: Option<Array2<T>>,
    /// One per state.
    pub initial_states: Vec<Array2<T>>,
}

/// Checks a forward pass's inputs against its cell and weights.
pub(crate) fn check_input<T: 'static>(
    spec: &CellSpec,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
    options: SequenceOptions,
) -> Result<()> {
    let (b, t, f) = input.x.dim();
    spec.check_weights(weights, f)?;
    if options.precision != Precision::Full
        && std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>()
    {
        return Err(Error::Value {
            argument: "compute_dtype".into(),
            expected: format!(
                "float32 inputs and weights for {} products",
                options.precision.name()
            ),
            received: "float64".into(),
        });
    }
    if options.precision == Precision::Int8 && !options.inference {
        return Err(Error::Value {
            argument: "compute_dtype".into(),
            expected: "inference=True with int8 products (quantized layers do not train)".into(),
            received: "int8 with inference=False".into(),
        });
    }
    if let Some(states) = &input.initial_states {
        if states.len() != spec.state_count() {
            return Err(Error::Value {
                argument: "initial_states".into(),
                expected: format!("{} arrays", spec.state_count()),
                received: states.len().to_string(),
            });
        }
        for (i, st) in states.iter().enumerate() {
            let shape = [b, spec.state_units(i)];
            check_shape(&format!("initial_states[{i}]"), &shape, st.shape())?;
        }
    }
    if let Some(m) = &input.mask {
        check_shape("mask", &[b, t], m.shape())?;
    }
    if let Some(m) = &input.input_dropout {
        check_shape("input_dropout", &[spec.gates(), b, f], m.shape())?;
    }
    if let Some(m) = &input.recurrent_dropout {
        let shape = [spec.gates(), b, spec.output_units()];
        check_shape("recurrent_dropout", &shape, m.shape())?;
    }
    match &input.zoneout {
        Some(Zoneout::Weights(zoneout)) => {
            check_per_state(spec, zoneout.len(), "arrays")?;
            for (i, m) in zoneout.iter().enumerate() {
                let shape = [b, t, spec.state_units(i)];
                check_shape(&format!("zoneout[{i}]"), &shape, m.shape())?;
            }
        }
        Some(Zoneout::Expectation { rate }) => check_zoneout_rate(*rate)?,
        Some(Zoneout::Drawn { rate, seeds }) => {
            check_zoneout_rate(*rate)?;
            check_per_state(spec, seeds.len(), "seeds")?;
        }
        None => {}
    }
    Ok(())
}

/// Checks that `zoneout` gave one of its `what` (arrays, seeds) per state of `spec`.
fn check_per_state(spec: &CellSpec, given: usize, what: &str) -> Result<()> {
    if given == spec.state_count() {
        return Ok(());
    }
    Err(Error::Value {
        argument: "zoneout".into(),
        expected: format!("{} {what} (one per state)", spec.state_count()),
        received: given.to_string(),
    })
}

/// Checks a zoneout rate.
fn check_zoneout_rate(rate: f64) -> Result<()> {
    if (0.0..=1.0).contains(&rate) {
        return Ok(());
    }
    Err(Error::Value {
        argument: "zoneout".into(),
        expected: "a rate between 0 and 1".into(),
        received: rate.to_string(),
    })
}

/// Checks the gradients given to the backward pass of a `spec` pass of `dims` (`(batch, time,
/// features, output units)`).
pub(crate) fn check_grads<T>(
    spec: &CellSpec,
    dims: (usize, usize, usize, usize),
    d_outputs: &OutputGrad<T>,
    d_final: &[Option<ArrayView2<T>>],
) -> Result<()> {
    let (b, t, _, u) = dims;
    match d_outputs {
        OutputGrad::Sequence(g) => check_shape("d_outputs", &[b, t, u], g.shape())?,
        OutputGrad::Last(g) => check_shape("d_last_output", &[b, u], g.shape())?,
        OutputGrad::None => {}
    }
    if !d_final.is_empty() && d_final.len() != spec.state_count() {
        return Err(Error::Value {
            argument: "d_final_states".into(),
            expected: format!("{} arrays", spec.state_count()),
            received: d_final.len().to_string(),
        });
    }
    for (i, g) in d_final.iter().enumerate() {
        if let Some(g) = g {
            let shape = [b, spec.state_units(i)];
            check_shape(&format!("d_final_states[{i}]"), &shape, g.shape())?;
        }
    }
    Ok(())
}

/// `masks` as one `(1, batch, dim)` mask when every gate has the same one (Keras's default
/// implementation draws one input mask for all gates), so the products run once, not per gate.
pub(crate) fn shared_or_per_gate<T: Float>(masks: ArrayView3<T>) -> ArrayView3<T> {
    let first = masks.index_axis(Axis(0), 0);
    if masks.outer_iter().all(|m| m == first) {
        masks.slice_move(s![..1, .., ..])
    } else {
        masks
    }
}

/// The last step's output of `(batch, time, units)` outputs, `(batch, units)`; zeros for an
/// empty sequence.
pub fn last_output<T: Float>(outputs: &Array3<T>) -> Array2<T> {
    let (b, t, u) = outputs.dim();
    match t {
        0 => Array2::zeros((b, u)),
        _ => outputs.index_axis(Axis(1), t - 1).to_owned(),
    }
}
