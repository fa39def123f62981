//! The fused sequence loop: forward over `(batch, time, features)` and backpropagation through
//! time, for every cell and option.
//!
//! Layout: inside, everything is time-major and in processing order (reversed when
//! `go_backwards`), so the input projection and the weight gradients are single products over
//! all `time · batch` rows. The time loop itself runs on slices of the batch, one task per
//! slice for the whole sequence, with no barrier between steps.

use ndarray::parallel::prelude::*;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Zip};

use super::activation::{
    Activation, AnyPair, FixedPair, HardSigmoid, Pointwise, Relu, Sigmoid, Tanh,
};
use super::cancel::Cancel;
use super::cell::{self, CellKind, CellSpec, Weights};
use super::Float;
use crate::cpu::alloc::{check_total, tiled, zeros};
use crate::cpu::denormals;
use crate::cpu::gemm::{par_gemm_rows, par_gemm_tn};
use crate::cpu::packed::{packed_product, PackedMatrix};
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
    /// weights, and [`backward`] refuses them.
    pub inference: bool,
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

/// The activations a forward pass keeps for its backward pass, with copies of its inputs.
#[derive(Debug)]
pub struct Saved<T> {
    spec: CellSpec,
    options: SequenceOptions,
    kernel: Array2<T>,
    recurrent_kernel: Array2<T>,
    bias: Option<Array2<T>>,
    /// `(time, batch, features)`, processing order.
    x: Array3<T>,
    /// `(time, batch)`, processing order.
    mask: Option<Array2<bool>>,
    input_dropout: Option<Array3<T>>,
    recurrent_dropout: Option<Array3<T>>,
    /// `(time, batch, gates·units)` pre-activations, or the gate values with `keep_gates`.
    pre: Array3<T>,
    keep_gates: bool,
    /// `(time + 1, batch, units)`: `h` before each step, then the final `h`.
    hs: Array3<T>,
    /// Same as `hs` for the LSTM cell state.
    cs: Option<Array3<T>>,
    /// `(time, batch, units)`: GRU `reset_after`'s recurrent h-gate term.
    rec_h: Option<Array3<T>>,
}

impl<T> Saved<T> {
    /// The cell this pass ran.
    pub fn spec(&self) -> &CellSpec {
        &self.spec
    }

    /// `(batch, time, features, units)`.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        let (t, b, f) = self.x.dim();
        (b, t, f, self.spec.units)
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
    pub kernel: Array2<T>,
    pub recurrent_kernel: Array2<T>,
    /// Same shape as the bias; `None` without bias.
    pub bias: Option<Array2<T>>,
    /// One per state.
    pub initial_states: Vec<Array2<T>>,
}

/// Evaluates `$body` with `$p` bound to the cell's activation pair: a [`FixedPair`] for the
/// common pairs (the loops then inline and vectorize the functions; on fused multiply-adds
/// where the CPU has them), else an [`AnyPair`].
macro_rules! with_pair {
    ($spec:expr, $p:ident => $body:expr) => {{
        if crate::cpu::has_fma() {
            with_pair!(@fma true, $spec, $p => $body)
        } else {
            with_pair!(@fma false, $spec, $p => $body)
        }
    }};
    (@fma $fma:literal, $spec:expr, $p:ident => $body:expr) => {{
        use Activation as A;
        match ($spec.activation, $spec.recurrent_activation) {
            (A::Tanh, A::Sigmoid) => {
                let $p = &FixedPair::<Tanh, Sigmoid, $fma>::new();
                $body
            }
            (A::Relu, A::Sigmoid) => {
                let $p = &FixedPair::<Relu, Sigmoid, $fma>::new();
                $body
            }
            (A::Tanh, A::HardSigmoid) => {
                let $p = &FixedPair::<Tanh, HardSigmoid, $fma>::new();
                $body
            }
            (A::Relu, A::HardSigmoid) => {
                let $p = &FixedPair::<Relu, HardSigmoid, $fma>::new();
                $body
            }
            (act, ract) => {
                let $p = &AnyPair(act, ract);
                $body
            }
        }
    }};
}

/// Runs the time loop's tasks on the spinning team (one task runs on this thread).
fn for_each_task<I: Send>(
    tasks: Vec<I>,
    run: impl Fn(I) -> Result<()> + Sync + Send,
) -> Result<()> {
    crate::cpu::team::for_each(tasks, run)
}

/// The batch rows each task owns in the time loop: at least `MIN_ROWS`, at most one slice per
/// thread of the `threads` the pass has. Row results do not depend on the slicing (each row's
/// products see the same inner dimension in the same order), so neither do the outputs.
fn rows_per_task(batch: usize, threads: usize) -> usize {
    const MIN_ROWS: usize = 4;
    let tasks = threads.min(batch.div_ceil(MIN_ROWS)).max(1);
    batch.div_ceil(tasks).max(1)
}

/// Columns of gate `g` in a `gates · units` wide array.
fn gate<T>(a: ArrayView2<T>, g: usize, units: usize) -> ArrayView2<T> {
    a.slice_move(s![.., g * units..(g + 1) * units])
}

/// The gate blocks of the recurrent kernel `U`, packed for the per-step products: `U_g`, or
/// `U_gᵀ` (`transpose`) for the backward pass.
fn pack_gates<T: Float>(
    kernel: ArrayView2<T>,
    units: usize,
    transpose: bool,
) -> Result<Vec<PackedMatrix<T>>> {
    (0..kernel.ncols() / units.max(1))
        .map(|g| {
            let block = gate(kernel, g, units);
            PackedMatrix::new(if transpose {
                block.reversed_axes()
            } else {
                block
            })
        })
        .collect()
}

/// Copies `(batch, time, ·)` into a new time-major array in processing order.
fn time_major<T: Float>(a: ArrayView3<T>, reverse: bool, what: &'static str) -> Result<Array3<T>> {
    if reverse {
        swap_leading_axes(a.slice(s![.., ..;-1, ..]), what)
    } else {
        swap_leading_axes(a, what)
    }
}

/// A new array with the first two axes of `a` swapped (time-major to batch-major or back).
/// Large copies fill the result's outer rows in parallel.
fn swap_leading_axes<T: Float>(a: ArrayView3<T>, what: &'static str) -> Result<Array3<T>> {
    const PARALLEL_FROM: usize = 1 << 16;
    let (p, q, f) = a.dim();
    let mut out = zeros((q, p, f), what)?;
    let copy =
        |(i, mut dst): (usize, ndarray::ArrayViewMut2<T>)| dst.assign(&a.index_axis(Axis(1), i));
    if out.len() < PARALLEL_FROM {
        out.outer_iter_mut().enumerate().for_each(copy);
    } else {
        out.outer_iter_mut()
            .into_par_iter()
            .enumerate()
            .for_each(copy);
    }
    Ok(out)
}

pub(crate) fn check_input<T>(
    spec: &CellSpec,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
) -> Result<()> {
    let (b, t, f) = input.x.dim();
    spec.check_weights(weights, f)?;
    let u = spec.units;
    if let Some(states) = &input.initial_states {
        if states.len() != spec.state_count() {
            return Err(Error::Value {
                argument: "initial_states".into(),
                expected: format!("{} arrays", spec.state_count()),
                received: states.len().to_string(),
            });
        }
        for (i, st) in states.iter().enumerate() {
            check_shape(&format!("initial_states[{i}]"), &[b, u], st.shape())?;
        }
    }
    if let Some(m) = &input.mask {
        check_shape("mask", &[b, t], m.shape())?;
    }
    if let Some(m) = &input.input_dropout {
        check_shape("input_dropout", &[spec.gates(), b, f], m.shape())?;
    }
    if let Some(m) = &input.recurrent_dropout {
        check_shape("recurrent_dropout", &[spec.gates(), b, u], m.shape())?;
    }
    Ok(())
}

/// Runs the cell over the sequence.
///
/// Every shape is checked before any work starts. A masked step keeps the previous states and
/// outputs the previous output (zeros before the first unmasked step, as TensorFlow does), or
/// zeros with `zero_output_for_mask`.
pub fn forward<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
    options: SequenceOptions,
) -> Result<Forward<T>> {
    forward_sharing(spec, weights, input, options, rayon::current_num_threads())
}

/// [`forward`] for a pass that runs beside others: its time loop and its products split the
/// work for `threads` threads (each task's rows then stream the recurrent kernel once per step).
pub(crate) fn forward_sharing<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
    options: SequenceOptions,
    threads: usize,
) -> Result<Forward<T>> {
    check_input(spec, weights, input)?;
    let _flush = denormals::flush();
    // The input kernel in row-major order (a copy only when it is not): the products' blocking,
    // and so their rounding, then do not depend on how the caller laid it out.
    let kernel = weights.kernel.as_standard_layout();
    let weights = &Weights {
        kernel: kernel.view(),
        ..*weights
    };
    let (b, t, f) = input.x.dim();
    // Per (step, row): the input copy, pre-activations, states, per-step outputs and result.
    let buffers =
        spec.state_count() + usize::from(spec.kind == CellKind::Gru { reset_after: true });
    let per_row = f + spec.width() + spec.units * (buffers + 2);
    check_total::<T>(
        per_row.saturating_mul(b).saturating_mul(t),
        "the forward pass",
    )?;
    let (u, width) = (spec.units, spec.width());
    let reverse = options.go_backwards;

    let x = time_major(input.x, reverse, "input")?;
    let mask = input.mask.map(|m| {
        let mut out = Array2::from_elem((t, b), true);
        for (s, mut row) in out.outer_iter_mut().enumerate() {
            row.assign(&m.column(if reverse { t - 1 - s } else { s }));
        }
        out
    });
    // Starts as the input bias: the projection adds onto it.
    let mut pre = match weights.bias {
        Some(bias) => tiled((t, b, width), &bias.row(0).to_vec(), "pre-activations")?,
        None => zeros((t, b, width), "pre-activations")?,
    };
    let mut hs = zeros((t + 1, b, u), "hidden states")?;
    let mut cs = if spec.kind == CellKind::Lstm {
        Some(zeros((t + 1, b, u), "cell states")?)
    } else {
        None
    };
    let mut rec_h = if spec.kind == (CellKind::Gru { reset_after: true }) {
        Some(zeros((t, b, u), "GRU terms")?)
    } else {
        None
    };
    // Without a mask every step's output is its hidden state: only a mask needs its own buffer
    // (masked steps repeat the previous output, or zeros, while the state carries on).
    let mut ys = match mask {
        Some(_) => Some(zeros((t, b, u), "outputs")?),
        None => None,
    };
    if let Some(states) = &input.initial_states {
        hs.index_axis_mut(Axis(0), 0).assign(&states[0]);
        if let Some(cs) = &mut cs {
            cs.index_axis_mut(Axis(0), 0).assign(&states[1]);
        }
    }

    // Row-major copies: the time loop reads the multipliers as contiguous rows.
    let standard = |m: ArrayView3<T>| m.as_standard_layout().into_owned();
    let input_dropout = input.input_dropout.map(|m| standard(shared_or_per_gate(m)));
    let recurrent_dropout = input.recurrent_dropout.map(standard);
    // In chunks of steps, so that Ctrl-C also stops a very long sequence before its loop.
    let chunk_steps = (PROJECTION_ROWS / b.max(1)).max(1);
    for (x, pre) in x
        .axis_chunks_iter(Axis(0), chunk_steps)
        .zip(pre.axis_chunks_iter_mut(Axis(0), chunk_steps))
    {
        input.cancel.check()?;
        project_inputs(
            spec,
            weights,
            x,
            input_dropout.as_ref().map(|m| m.view()),
            pre,
            threads,
        );
    }

    let rows = rows_per_task(b, threads);
    let tasks: Vec<_> = split_rows(&mut pre, rows)
        .into_iter()
        .zip(split_rows(&mut hs, rows))
        .zip(split_opt_rows(cs.as_mut(), rows, b))
        .zip(split_opt_rows(rec_h.as_mut(), rows, b))
        .zip(split_opt_rows(ys.as_mut(), rows, b))
        .enumerate()
        .collect();
    let packed = pack_gates(weights.recurrent_kernel, spec.units, false)?;
    let keep_gates = matches!(
        spec.kind,
        CellKind::Lstm | CellKind::Gru { reset_after: true }
    ) && spec.has_default_activations();
    let ctx = StepContext {
        spec,
        packed: &packed,
        recurrent_bias: weights
            .bias
            .filter(|b| b.nrows() == 2)
            .map(|b| b.index_axis_move(Axis(0), 1)),
        mask: mask.as_ref().map(|m| m.view()),
        recurrent_dropout: recurrent_dropout.as_ref().map(|m| m.view()),
        zero_output: options.zero_output_for_mask,
        keep_gates,
        cancel: &input.cancel,
    };
    for_each_task(tasks, |(i, ((((pre, hs), cs), rec_h), ys))| {
        let chunk = ForwardChunk {
            first_row: i * rows,
            pre,
            hs,
            cs,
            rec_h,
            ys,
        };
        with_pair!(spec, p => simd::forward(&ctx, chunk, p))
    })?;

    let final_states = std::iter::once(&hs)
        .chain(cs.as_ref())
        .map(|a| a.index_axis(Axis(0), t).to_owned())
        .collect();
    let per_step = match &ys {
        Some(ys) => ys.view(),
        None => hs.slice(s![1.., .., ..]),
    };
    let kept = if options.last_output_only {
        t.saturating_sub(1)..t
    } else {
        0..t
    };
    let outputs = swap_leading_axes(per_step.slice(s![kept, .., ..]), "outputs")?;
    let saved = Saved {
        spec: *spec,
        options,
        // The backward pass's copies of the weights (none for inference).
        kernel: backward_copy(weights.kernel, options.inference),
        recurrent_kernel: backward_copy(weights.recurrent_kernel, options.inference),
        bias: weights.bias.map(|b| backward_copy(b, options.inference)),
        x,
        mask,
        input_dropout,
        recurrent_dropout,
        pre,
        keep_gates,
        hs,
        cs,
        rec_h,
    };
    Ok(Forward {
        outputs,
        final_states,
        saved,
    })
}

/// A copy of `a` for the backward pass, or an empty array when none follows.
fn backward_copy<T: Float>(a: ArrayView2<T>, inference: bool) -> Array2<T> {
    if inference {
        Array2::zeros((0, 0))
    } else {
        a.to_owned()
    }
}

/// The input projection of every step at once: `pre += (x ⊙ m_g)·W_g` onto the input bias,
/// one product over all `time · batch` rows (one per gate when input dropout gives each gate
/// its own mask), split for `threads` threads.
fn project_inputs<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    x: ArrayView3<T>,
    dropout: Option<ArrayView3<T>>,
    pre: ndarray::ArrayViewMut3<T>,
    threads: usize,
) {
    let (t, b, f) = x.dim();
    let x2 = x
        .into_shape_with_order((t * b, f))
        .expect("x is contiguous");
    let mut pre2 = pre
        .into_shape_with_order((t * b, spec.width()))
        .expect("pre is contiguous");
    match dropout {
        None => par_gemm_rows(x2, weights.kernel, T::one(), pre2.view_mut(), threads),
        Some(masks) if masks.dim().0 == 1 => {
            let mut xm = Array2::zeros((t * b, f));
            masked_rows(x2, masks.index_axis(Axis(0), 0), &mut xm);
            par_gemm_rows(
                xm.view(),
                weights.kernel,
                T::one(),
                pre2.view_mut(),
                threads,
            );
        }
        Some(masks) => {
            let mut xm = Array2::zeros((t * b, f));
            for g in 0..spec.gates() {
                masked_rows(x2, masks.index_axis(Axis(0), g), &mut xm);
                let cols = g * spec.units..(g + 1) * spec.units;
                par_gemm_rows(
                    xm.view(),
                    gate(weights.kernel, g, spec.units),
                    T::one(),
                    pre2.slice_mut(s![.., cols]),
                    threads,
                );
            }
        }
    }
}

/// Rows of the input projection between two looks at the cancel flag.
const PROJECTION_ROWS: usize = 1 << 16;

/// Rows per rayon job in the element-wise passes over all `time · batch` rows.
const ROWS_PER_JOB: usize = 256;

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

/// `out[r] = a[r] ⊙ mask[r % batch]`: a time-major matrix times a per-sample mask.
fn masked_rows<T: Float>(a: ArrayView2<T>, mask: ArrayView2<T>, out: &mut Array2<T>) {
    let batch = mask.nrows();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .with_min_len(ROWS_PER_JOB)
        .enumerate()
        .for_each(|(r, mut o)| {
            Zip::from(&mut o)
                .and(a.row(r))
                .and(mask.row(r % batch))
                .for_each(|o, &a, &m| *o = a * m);
        });
}

/// Splits a `(steps, batch, ·)` view into batch slices of `rows`.
fn split_rows<T>(a: &mut Array3<T>, rows: usize) -> Vec<ndarray::ArrayViewMut3<'_, T>> {
    a.axis_chunks_iter_mut(Axis(1), rows).collect()
}

fn split_opt_rows<T>(
    a: Option<&mut Array3<T>>,
    rows: usize,
    batch: usize,
) -> Vec<Option<ndarray::ArrayViewMut3<'_, T>>> {
    match a {
        Some(a) => split_rows(a, rows).into_iter().map(Some).collect(),
        None => (0..batch.div_ceil(rows).max(1)).map(|_| None).collect(),
    }
}

/// What every batch slice of the time loop shares.
struct StepContext<'a, T> {
    spec: &'a CellSpec,
    /// The recurrent kernel's gate blocks, packed: `U_g` forward, `U_gᵀ` backward.
    packed: &'a [PackedMatrix<T>],
    /// GRU `reset_after`'s second bias row.
    recurrent_bias: Option<ndarray::ArrayView1<'a, T>>,
    /// `(time, batch)`, processing order.
    mask: Option<ArrayView2<'a, bool>>,
    recurrent_dropout: Option<ArrayView3<'a, T>>,
    zero_output: bool,
    /// LSTM or GRU (`reset_after`) with tanh/sigmoid: the forward pass stores the gate values in
    /// place of the pre-activations, and the backward pass reads them.
    keep_gates: bool,
    cancel: &'a Cancel,
}

/// One batch slice's share of the forward buffers (time-major).
struct ForwardChunk<'a, T> {
    first_row: usize,
    pre: ndarray::ArrayViewMut3<'a, T>,
    hs: ndarray::ArrayViewMut3<'a, T>,
    cs: Option<ndarray::ArrayViewMut3<'a, T>>,
    rec_h: Option<ndarray::ArrayViewMut3<'a, T>>,
    /// Only with a mask: otherwise the outputs are the hidden states.
    ys: Option<ndarray::ArrayViewMut3<'a, T>>,
}

impl<T: Float> StepContext<'_, T> {
    fn used(&self, step: usize, row: usize) -> bool {
        self.mask.is_none_or(|m| m[[step, row]])
    }

    /// Recurrent dropout rows of gate `g` for this slice.
    fn dropout_rows(&self, g: usize, rows: std::ops::Range<usize>) -> Option<ArrayView2<'_, T>> {
        self.recurrent_dropout
            .map(|m| m.slice_move(s![g, rows, ..]))
    }

    /// `out[:, gates] = (h ⊙ m_g) · U_g` for each gate in `gates` (`+=` with `accumulate`).
    fn recurrent_product(
        &self,
        h: ArrayView2<T>,
        gates: std::ops::Range<usize>,
        rows: std::ops::Range<usize>,
        scratch: &mut Array2<T>,
        out: &mut ArrayViewMut2<T>,
        accumulate: bool,
    ) {
        let u = self.spec.units;
        for g in gates {
            let mut out = out.slice_mut(s![.., g * u..(g + 1) * u]);
            match self.dropout_rows(g, rows.clone()) {
                None => packed_product(h, &self.packed[g], accumulate, &mut out),
                Some(m) => {
                    Zip::from(&mut *scratch)
                        .and(h)
                        .and(m)
                        .for_each(|s, &h, &m| *s = h * m);
                    packed_product(scratch.view(), &self.packed[g], accumulate, &mut out);
                }
            }
        }
    }

    #[inline(always)]
    fn run_forward<P: Pointwise<T>>(&self, mut c: ForwardChunk<T>, p: &P) -> Result<()> {
        let (steps, n, width) = c.pre.dim();
        let u = self.spec.units;
        let rows = c.first_row..c.first_row + n;
        let mut rec = zeros((n, width), "recurrent products")?;
        let mut scratch = zeros((n, u), "dropout scratch")?;
        let mut q = zeros((n, u), "GRU reset products")?;
        for step in 0..steps {
            self.cancel.check()?;
            let (h_prev_buf, mut h_next) = split_step(&mut c.hs, step);
            let h_prev = h_prev_buf.view();
            let mut pre = c.pre.index_axis_mut(Axis(0), step);
            let before_reset = self.spec.kind == (CellKind::Gru { reset_after: false });
            let product_gates = if before_reset {
                0..2
            } else {
                0..self.spec.gates()
            };
            // LSTM and SimpleRNN add the product straight into the pre-activations; GRU keeps
            // it apart (its h-gate term is scaled by the reset gate).
            if matches!(self.spec.kind, CellKind::Lstm | CellKind::SimpleRnn) {
                self.recurrent_product(
                    h_prev,
                    product_gates,
                    rows.clone(),
                    &mut scratch,
                    &mut pre,
                    true,
                );
            } else {
                let out = &mut rec.view_mut();
                self.recurrent_product(
                    h_prev,
                    product_gates,
                    rows.clone(),
                    &mut scratch,
                    out,
                    false,
                );
            }
            if let Some(b) = self.recurrent_bias {
                rec += &b;
            }
            if before_reset {
                let mh = self.dropout_rows(2, rows.clone());
                for r in 0..n {
                    let mh_row = mh
                        .as_ref()
                        .map(|m| m.row(r).to_slice().expect("contiguous rows"));
                    cell::gru_before_gates(
                        p,
                        slice_mut(pre.row_mut(r)),
                        &rec.row(r).to_slice().expect("contiguous")[..2 * u],
                        h_prev.row(r).to_slice().expect("contiguous"),
                        mh_row,
                        slice_mut(q.row_mut(r)),
                    );
                }
                packed_product(
                    q.view(),
                    &self.packed[2],
                    false,
                    &mut rec.slice_mut(s![.., 2 * u..]),
                );
            }
            let mut c_pair = c.cs.as_mut().map(|cs| split_step(cs, step));
            for r in 0..n {
                let hp = h_prev.row(r).to_slice().expect("contiguous");
                let mut h_row = h_next.row_mut(r);
                let mut pre_row = pre.row_mut(r);
                if !self.used(step, c.first_row + r) {
                    h_row.assign(&h_prev.row(r));
                    if let Some((c_prev, c_next)) = &mut c_pair {
                        c_next.row_mut(r).assign(&c_prev.row(r));
                    }
                    pre_row.fill(T::zero());
                    continue;
                }
                let h_out = slice_mut(h_row.view_mut());
                let rec_row = rec.row(r).to_slice().expect("contiguous");
                match self.spec.kind {
                    CellKind::SimpleRnn => {
                        cell::simple_forward(p, pre_row.as_slice().expect("contiguous"), h_out);
                    }
                    CellKind::Lstm => {
                        let (c_prev, c_next) = c_pair.as_mut().expect("LSTM has cell states");
                        let c_prev = c_prev.row(r).to_slice().expect("contiguous");
                        let c_next = slice_mut(c_next.row_mut(r));
                        let pre_row = slice_mut(pre_row);
                        if self.keep_gates {
                            cell::lstm_forward::<_, _, true>(p, pre_row, c_prev, h_out, c_next);
                        } else {
                            cell::lstm_forward::<_, _, false>(p, pre_row, c_prev, h_out, c_next);
                        }
                    }
                    CellKind::Gru { reset_after: true } => {
                        let rec_h = c.rec_h.as_mut().expect("GRU keeps its recurrent term");
                        let rec_h = slice_mut(rec_h.slice_mut(s![step, r, ..]));
                        let pre_row = slice_mut(pre_row);
                        if self.keep_gates {
                            cell::gru_after_forward::<_, _, true>(
                                p, pre_row, rec_row, hp, h_out, rec_h,
                            );
                        } else {
                            cell::gru_after_forward::<_, _, false>(
                                p, pre_row, rec_row, hp, h_out, rec_h,
                            );
                        }
                    }
                    CellKind::Gru { reset_after: false } => {
                        cell::gru_before_output(
                            p,
                            slice_mut(pre_row),
                            &rec_row[2 * u..],
                            hp,
                            h_out,
                        );
                    }
                }
            }
            if let Some(ys) = &mut c.ys {
                self.write_outputs(ys, &h_next, step, c.first_row);
            }
        }
        Ok(())
    }

    /// Per-step outputs: `h` where the step is used, else the previous output (or zeros).
    fn write_outputs(
        &self,
        ys: &mut ndarray::ArrayViewMut3<T>,
        h: &ArrayViewMut2<T>,
        step: usize,
        first_row: usize,
    ) {
        let (before, mut after) = ys.view_mut().split_at(Axis(0), step);
        let mut now = after.index_axis_mut(Axis(0), 0);
        for (r, mut y) in now.outer_iter_mut().enumerate() {
            if self.used(step, first_row + r) {
                y.assign(&h.row(r));
            } else if !self.zero_output && step > 0 {
                y.assign(&before.slice(s![step - 1, r, ..]));
            }
        }
    }
}

/// `(a[step], a[step + 1])` of a time-major buffer.
fn split_step<'b, T>(
    a: &'b mut ndarray::ArrayViewMut3<'_, T>,
    step: usize,
) -> (ArrayViewMut2<'b, T>, ArrayViewMut2<'b, T>) {
    let (before, after) = a.view_mut().split_at(Axis(0), step + 1);
    (
        before.index_axis_move(Axis(0), step),
        after.index_axis_move(Axis(0), 0),
    )
}

/// A standard-layout row as a mutable slice.
fn slice_mut<T>(row: ndarray::ArrayViewMut1<'_, T>) -> &mut [T] {
    row.into_slice()
        .expect("rows of the time-major buffers are contiguous")
}

/// One batch slice's share of the backward buffers (time-major).
struct BackwardChunk<'a, T> {
    first_row: usize,
    /// `(time, n, gates·units)` input-side gradients of the pre-activations.
    dpre: ndarray::ArrayViewMut3<'a, T>,
    /// GRU only, `(time, n, units)`: with `reset_after` the gradient of the recurrent h-gate
    /// term; without it the h-gate product's input `q = r ⊙ h₋₁ ⊙ m_h`.
    gru: Option<ndarray::ArrayViewMut3<'a, T>>,
    /// `(n, units)` gradients of the initial states.
    dh0: ArrayViewMut2<'a, T>,
    dc0: Option<ArrayViewMut2<'a, T>>,
}

/// Checks the gradients given to the backward pass of a `spec` pass of `dims` (`(batch, time,
/// features, units)`).
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
            check_shape(&format!("d_final_states[{i}]"), &[b, u], g.shape())?;
        }
    }
    Ok(())
}

/// Backpropagation through time of a [`forward`] pass.
///
/// `d_final_states` is empty or has one entry per state (`None` for a state with no gradient).
/// The weight gradients are single products over all steps after the time loop. Without
/// `input_gradient` the input's gradient (a product as large as the input projection) is not
/// computed: a first layer's input is data. `cancel` stops the pass between two steps.
pub fn backward<T: Float>(
    saved: &Saved<T>,
    d_outputs: OutputGrad<T>,
    d_final_states: &[Option<ArrayView2<T>>],
    input_gradient: bool,
    cancel: &Cancel,
) -> Result<Gradients<T>> {
    let threads = rayon::current_num_threads();
    backward_sharing(
        saved,
        d_outputs,
        d_final_states,
        input_gradient,
        cancel,
        threads,
    )
}

/// [`backward`] for a pass that runs beside others: its time loop and its products split the
/// work for `threads` threads.
pub(crate) fn backward_sharing<T: Float>(
    saved: &Saved<T>,
    d_outputs: OutputGrad<T>,
    d_final_states: &[Option<ArrayView2<T>>],
    input_gradient: bool,
    cancel: &Cancel,
    threads: usize,
) -> Result<Gradients<T>> {
    let _flush = denormals::flush();
    if saved.options.inference {
        return Err(Error::Value {
            argument: "saved".into(),
            expected: "the activations of a forward pass run for training".into(),
            received: "those of an inference pass, which keeps no weights".into(),
        });
    }
    check_grads(&saved.spec, saved.dims(), &d_outputs, d_final_states)?;
    let spec = &saved.spec;
    let (b, t, f, u) = saved.dims();
    let width = spec.width();
    let is_gru = matches!(spec.kind, CellKind::Gru { .. });
    // Per (step, row): pre-activation gradients, GRU terms and the input gradient (twice, three
    // times with input dropout).
    let input_copies = if input_gradient {
        2 + usize::from(saved.input_dropout.is_some())
    } else {
        0
    };
    let per_row = width + usize::from(is_gru) * u + input_copies * f;
    check_total::<T>(
        per_row.saturating_mul(b).saturating_mul(t),
        "the backward pass",
    )?;

    let mut dpre = zeros((t, b, width), "pre-activation gradients")?;
    let mut gru = if is_gru {
        Some(zeros((t, b, u), "GRU gradients")?)
    } else {
        None
    };
    let mut dh0 = zeros((b, u), "state gradients")?;
    let mut dc0 = if spec.kind == CellKind::Lstm {
        Some(zeros((b, u), "state gradients")?)
    } else {
        None
    };
    if let Some(Some(g)) = d_final_states.first() {
        dh0.assign(g);
    }
    if let (Some(dc0), Some(Some(g))) = (dc0.as_mut(), d_final_states.get(1)) {
        dc0.assign(g);
    }

    let rows = rows_per_task(b, threads);
    let dh0_chunks: Vec<_> = dh0.axis_chunks_iter_mut(Axis(0), rows).collect();
    let dc0_chunks: Vec<_> = match dc0.as_mut() {
        Some(a) => a.axis_chunks_iter_mut(Axis(0), rows).map(Some).collect(),
        None => (0..dh0_chunks.len()).map(|_| None).collect(),
    };
    let tasks: Vec<_> = split_rows(&mut dpre, rows)
        .into_iter()
        .zip(split_opt_rows(gru.as_mut(), rows, b))
        .zip(dh0_chunks)
        .zip(dc0_chunks)
        .enumerate()
        .collect();
    let packed = pack_gates(saved.recurrent_kernel.view(), spec.units, true)?;
    let ctx = StepContext {
        spec,
        packed: &packed,
        recurrent_bias: None,
        mask: saved.mask.as_ref().map(|m| m.view()),
        recurrent_dropout: saved.recurrent_dropout.as_ref().map(|m| m.view()),
        zero_output: saved.options.zero_output_for_mask,
        keep_gates: saved.keep_gates,
        cancel,
    };
    for_each_task(tasks, |(i, (((dpre, gru), dh0), dc0))| {
        let chunk = BackwardChunk {
            first_row: i * rows,
            dpre,
            gru,
            dh0,
            dc0,
        };
        with_pair!(spec, p => simd::backward(&ctx, saved, d_outputs, chunk, p))
    })?;

    // The products over all steps: Ctrl-C is looked for between them.
    cancel.check()?;
    let rows_all = t * b;
    let dpre2 = dpre
        .view()
        .into_shape_with_order((rows_all, width))
        .expect("contiguous");
    let x2 = saved
        .x
        .view()
        .into_shape_with_order((rows_all, f))
        .expect("contiguous");
    let h_prev = saved
        .hs
        .slice(s![..t, .., ..])
        .into_shape_with_order((rows_all, u))
        .expect("contiguous");
    let gru2 = gru.as_ref().map(|g| {
        g.view()
            .into_shape_with_order((rows_all, u))
            .expect("contiguous")
    });

    let idrop = saved.input_dropout.as_ref().map(|m| m.view());
    let input = if input_gradient {
        Some(input_gradient_of(saved, dpre2, threads)?)
    } else {
        None
    };

    cancel.check()?;
    let mut kernel = zeros((f, width), "kernel gradient")?;
    weight_grad(
        x2,
        idrop,
        dpre2,
        0..spec.gates(),
        u,
        kernel.view_mut(),
        threads,
    )?;

    cancel.check()?;
    let mut recurrent_kernel = zeros((u, width), "recurrent kernel gradient")?;
    let rdrop = saved.recurrent_dropout.as_ref().map(|m| m.view());
    match (spec.kind, &gru2) {
        (CellKind::Gru { reset_after }, Some(g)) => {
            weight_grad(
                h_prev,
                rdrop,
                dpre2.slice(s![.., ..2 * u]),
                0..2,
                u,
                recurrent_kernel.slice_mut(s![.., ..2 * u]),
                threads,
            )?;
            let out = recurrent_kernel.slice_mut(s![.., 2 * u..]);
            if reset_after {
                weight_grad(h_prev, rdrop, g.view(), 2..3, u, out, threads)?;
            } else {
                // `q` already carries the reset gate and the dropout mask.
                par_gemm_tn(g.view(), gate(dpre2, 2, u), T::zero(), out, threads);
            }
        }
        _ => weight_grad(
            h_prev,
            rdrop,
            dpre2,
            0..spec.gates(),
            u,
            recurrent_kernel.view_mut(),
            threads,
        )?,
    }

    let bias = saved.bias.as_ref().map(|bias| {
        let mut db = Array2::zeros(bias.raw_dim());
        db.row_mut(0).assign(&dpre2.sum_axis(Axis(0)));
        if let (2, Some(g)) = (bias.nrows(), &gru2) {
            db.slice_mut(s![1, ..2 * u])
                .assign(&dpre2.slice(s![.., ..2 * u]).sum_axis(Axis(0)));
            db.slice_mut(s![1, 2 * u..]).assign(&g.sum_axis(Axis(0)));
        }
        db
    });

    let initial_states = std::iter::once(dh0).chain(dc0).collect();
    Ok(Gradients {
        input,
        kernel,
        recurrent_kernel,
        bias,
        initial_states,
    })
}

/// The input's gradient, `(batch, time, features)`, from the pre-activation gradients
/// `dpre2` (`(time * batch, width)`, in processing order), its products split for `threads`.
fn input_gradient_of<T: Float>(
    saved: &Saved<T>,
    dpre2: ArrayView2<T>,
    threads: usize,
) -> Result<Array3<T>> {
    let spec = &saved.spec;
    let (b, t, f, u) = saved.dims();
    let rows_all = t * b;
    let mut dx = zeros((rows_all, f), "input gradients")?;
    match saved.input_dropout.as_ref().map(|m| m.view()) {
        None => par_gemm_rows(dpre2, saved.kernel.t(), T::zero(), dx.view_mut(), threads),
        Some(masks) if masks.dim().0 == 1 => {
            par_gemm_rows(dpre2, saved.kernel.t(), T::zero(), dx.view_mut(), threads);
            let m = masks.index_axis(Axis(0), 0);
            dx.axis_iter_mut(Axis(0))
                .into_par_iter()
                .with_min_len(ROWS_PER_JOB)
                .enumerate()
                .for_each(|(r, mut dx)| dx *= &m.row(r % b));
        }
        Some(masks) => {
            let mut scratch = zeros((rows_all, f), "input gradients")?;
            for g in 0..spec.gates() {
                par_gemm_rows(
                    gate(dpre2, g, u),
                    gate(saved.kernel.view(), g, u).t(),
                    T::zero(),
                    scratch.view_mut(),
                    threads,
                );
                let m = masks.index_axis(Axis(0), g);
                dx.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .with_min_len(ROWS_PER_JOB)
                    .zip(scratch.axis_iter(Axis(0)))
                    .enumerate()
                    .for_each(|(r, (mut dx, tmp))| {
                        Zip::from(&mut dx)
                            .and(tmp)
                            .and(m.row(r % b))
                            .for_each(|d, &v, &m| *d += v * m)
                    });
            }
        }
    }
    let dx3 = dx.into_shape_with_order((t, b, f)).expect("contiguous");
    if saved.options.go_backwards {
        swap_leading_axes(dx3.slice(s![..;-1, .., ..]), "input gradients")
    } else {
        swap_leading_axes(dx3.view(), "input gradients")
    }
}

/// `out[:, gate g] = (lhs ⊙ m_g)ᵀ · grad[:, gate g]` for the gates in `gates`, over all
/// time-major rows, split for `threads`; one product when there are no masks.
fn weight_grad<T: Float>(
    lhs: ArrayView2<T>,
    masks: Option<ArrayView3<T>>,
    grad: ArrayView2<T>,
    gates: std::ops::Range<usize>,
    units: usize,
    mut out: ArrayViewMut2<T>,
    threads: usize,
) -> Result<()> {
    match masks {
        None => par_gemm_tn(lhs, grad, T::zero(), out, threads),
        Some(masks) if masks.dim().0 == 1 => {
            let mut masked = zeros(lhs.raw_dim(), "masked inputs")?;
            masked_rows(lhs, masks.index_axis(Axis(0), 0), &mut masked);
            par_gemm_tn(masked.view(), grad, T::zero(), out, threads);
        }
        Some(masks) => {
            let mut masked = zeros(lhs.raw_dim(), "masked inputs")?;
            for (i, g) in gates.enumerate() {
                masked_rows(lhs, masks.index_axis(Axis(0), g), &mut masked);
                let cols = i * units..(i + 1) * units;
                par_gemm_tn(
                    masked.view(),
                    grad.slice(s![.., cols.clone()]),
                    T::zero(),
                    out.slice_mut(s![.., cols]),
                    threads,
                );
            }
        }
    }
    Ok(())
}

impl<T: Float> StepContext<'_, T> {
    /// `dh_prev += Σ_g (drec_g · U_gᵀ) ⊙ m_g` for the gates in `gates`, `drec` holding exactly
    /// those gates' columns.
    fn recurrent_grad(
        &self,
        drec: ArrayView2<T>,
        gates: std::ops::Range<usize>,
        rows: std::ops::Range<usize>,
        scratch: &mut Array2<T>,
        dh_prev: &mut Array2<T>,
    ) {
        let u = self.spec.units;
        for (i, g) in gates.enumerate() {
            let d = gate(drec, i, u);
            match self.dropout_rows(g, rows.clone()) {
                None => packed_product(d, &self.packed[g], true, &mut dh_prev.view_mut()),
                Some(m) => {
                    packed_product(d, &self.packed[g], false, &mut scratch.view_mut());
                    Zip::from(&mut *dh_prev)
                        .and(&*scratch)
                        .and(m)
                        .for_each(|d, &v, &m| *d += v * m);
                }
            }
        }
    }

    #[inline(always)]
    fn run_backward<P: Pointwise<T>>(
        &self,
        saved: &Saved<T>,
        d_outputs: OutputGrad<T>,
        mut c: BackwardChunk<T>,
        p: &P,
    ) -> Result<()> {
        let (steps, n, _) = c.dpre.dim();
        let u = self.spec.units;
        let rows = c.first_row..c.first_row + n;
        let pre = saved.pre.slice(s![.., rows.clone(), ..]);
        let hs = saved.hs.slice(s![.., rows.clone(), ..]);
        let cs = saved.cs.as_ref().map(|a| a.slice(s![.., rows.clone(), ..]));
        let rec_h = saved
            .rec_h
            .as_ref()
            .map(|a| a.slice(s![.., rows.clone(), ..]));
        let mut dh = c.dh0.to_owned();
        let mut dc = c.dc0.as_ref().map(|d| d.to_owned());
        let mut dh_prev = zeros((n, u), "state gradients")?;
        let mut carry = zeros((n, u), "output gradients")?;
        let mut scratch = zeros((n, u), "dropout scratch")?;
        for step in (0..steps).rev() {
            self.cancel.check()?;
            match d_outputs {
                OutputGrad::Sequence(g) => carry += &g.slice(s![rows.clone(), step, ..]),
                OutputGrad::Last(g) if step + 1 == steps => carry += &g.slice(s![rows.clone(), ..]),
                _ => {}
            }
            let mut dpre = c.dpre.index_axis_mut(Axis(0), step);
            let mut gru = c.gru.as_mut().map(|g| g.index_axis_mut(Axis(0), step));
            let h_prev = hs.index_axis(Axis(0), step);
            for r in 0..n {
                let mut carry_row = carry.row_mut(r);
                if !self.used(step, c.first_row + r) {
                    if self.zero_output {
                        carry_row.fill(T::zero());
                    }
                    dh_prev.row_mut(r).assign(&dh.row(r));
                    continue;
                }
                let mut dh_row = dh.row_mut(r);
                dh_row += &carry_row;
                carry_row.fill(T::zero());
                let dh_row = dh_row.into_slice().expect("contiguous");
                let pre_row = pre.slice(s![step, r, ..]).to_slice().expect("contiguous");
                let hp = h_prev.row(r).to_slice().expect("contiguous");
                let dpre_row = slice_mut(dpre.row_mut(r));
                let dhp = slice_mut(dh_prev.row_mut(r));
                match self.spec.kind {
                    CellKind::SimpleRnn => {
                        cell::simple_backward(p, pre_row, dh_row, dpre_row);
                        dhp.fill(T::zero());
                    }
                    CellKind::Lstm => {
                        let cs = cs.as_ref().expect("LSTM has cell states");
                        let dc = dc.as_mut().expect("LSTM has cell states");
                        let c_prev = cs.slice(s![step, r, ..]).to_slice().expect("contiguous");
                        let c = cs
                            .slice(s![step + 1, r, ..])
                            .to_slice()
                            .expect("contiguous");
                        let dc = slice_mut(dc.row_mut(r));
                        if self.keep_gates {
                            cell::lstm_backward::<_, _, true>(
                                p, pre_row, c_prev, c, dh_row, dc, dpre_row,
                            );
                        } else {
                            cell::lstm_backward::<_, _, false>(
                                p, pre_row, c_prev, c, dh_row, dc, dpre_row,
                            );
                        }
                        dhp.fill(T::zero());
                    }
                    CellKind::Gru { reset_after: true } => {
                        let rec_h = rec_h.as_ref().expect("GRU keeps its recurrent term");
                        let gru = gru.as_mut().expect("GRU buffer");
                        let rec_h = rec_h.slice(s![step, r, ..]).to_slice().expect("contiguous");
                        let drec_h = slice_mut(gru.row_mut(r));
                        if self.keep_gates {
                            cell::gru_after_backward::<_, _, true>(
                                p, pre_row, rec_h, hp, dh_row, dpre_row, drec_h, dhp,
                            );
                        } else {
                            cell::gru_after_backward::<_, _, false>(
                                p, pre_row, rec_h, hp, dh_row, dpre_row, drec_h, dhp,
                            );
                        }
                    }
                    CellKind::Gru { reset_after: false } => {
                        cell::gru_before_backward_gates(p, pre_row, hp, dh_row, dpre_row, dhp);
                    }
                }
            }
            let dpre = dpre.view();
            match (self.spec.kind, gru) {
                (CellKind::Gru { reset_after: false }, Some(mut q)) => {
                    // dq = dpre_h · U_hᵀ (rows of masked steps are zero), then the reset gate.
                    packed_product(
                        gate(dpre, 2, u),
                        &self.packed[2],
                        false,
                        &mut scratch.view_mut(),
                    );
                    let mh = self.dropout_rows(2, rows.clone());
                    let mut dpre_mut = c.dpre.index_axis_mut(Axis(0), step);
                    for r in 0..n {
                        if !self.used(step, c.first_row + r) {
                            continue;
                        }
                        cell::gru_before_backward_reset(
                            p,
                            pre.slice(s![step, r, ..]).to_slice().expect("contiguous"),
                            h_prev.row(r).to_slice().expect("contiguous"),
                            mh.as_ref()
                                .map(|m| m.row(r).to_slice().expect("contiguous")),
                            scratch.row(r).to_slice().expect("contiguous"),
                            slice_mut(dpre_mut.row_mut(r)),
                            slice_mut(dh_prev.row_mut(r)),
                            slice_mut(q.row_mut(r)),
                        );
                    }
                    let dpre = c.dpre.index_axis(Axis(0), step);
                    self.recurrent_grad(
                        dpre.slice(s![.., ..2 * u]),
                        0..2,
                        rows.clone(),
                        &mut scratch,
                        &mut dh_prev,
                    );
                }
                (CellKind::Gru { reset_after: true }, Some(drec_h)) => {
                    self.recurrent_grad(
                        dpre.slice(s![.., ..2 * u]),
                        0..2,
                        rows.clone(),
                        &mut scratch,
                        &mut dh_prev,
                    );
                    self.recurrent_grad(
                        drec_h.view(),
                        2..3,
                        rows.clone(),
                        &mut scratch,
                        &mut dh_prev,
                    );
                }
                _ => self.recurrent_grad(
                    dpre,
                    0..self.spec.gates(),
                    rows.clone(),
                    &mut scratch,
                    &mut dh_prev,
                ),
            }
            std::mem::swap(&mut dh, &mut dh_prev);
        }
        c.dh0.assign(&dh);
        if let (Some(dc0), Some(dc)) = (c.dc0.as_mut(), dc) {
            dc0.assign(&dc);
        }
        Ok(())
    }
}

mod simd {
    //! The time loops compiled for the CPU's vector extensions, picked at run time: AVX-512
    //! (16 floats at a time, 32 registers: no spills in the activation math), else AVX2 with
    //! FMA (8 at a time), else the baseline. The AVX-512 and AVX2 loops do the same operations
    //! on each element, so their results are the same; the baseline rounds differently where
    //! the others fuse multiply-adds (the fixed activation pairs, the f32 recurrent products).
    use super::{BackwardChunk, ForwardChunk, OutputGrad, Pointwise, Saved, StepContext};
    use crate::core::Float;
    use crate::error::Result;

    /// Expands to the three compilations of one loop and the dispatch between them.
    macro_rules! dispatch {
        ($name:ident($($arg:ident: $ty:ty),*) => $run:ident) => {
            pub(super) fn $name<T: Float, P: Pointwise<T>>(
                ctx: &StepContext<T>,
                $($arg: $ty,)*
                p: &P,
            ) -> Result<()> {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")]
                    unsafe fn avx512<T: Float, P: Pointwise<T>>(
                        ctx: &StepContext<T>,
                        $($arg: $ty,)*
                        p: &P,
                    ) -> Result<()> {
                        ctx.$run($($arg,)* p)
                    }
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2<T: Float, P: Pointwise<T>>(
                        ctx: &StepContext<T>,
                        $($arg: $ty,)*
                        p: &P,
                    ) -> Result<()> {
                        ctx.$run($($arg,)* p)
                    }
                    if crate::cpu::has_avx512() {
                        // SAFETY: the CPU has these extensions (checked just above).
                        return unsafe { avx512(ctx, $($arg,)* p) };
                    }
                    if crate::cpu::has_avx2_fma() {
                        // SAFETY: the CPU has AVX2 and FMA (checked just above).
                        return unsafe { avx2(ctx, $($arg,)* p) };
                    }
                }
                ctx.$run($($arg,)* p)
            }
        };
    }

    dispatch!(forward(c: ForwardChunk<T>) => run_forward);
    dispatch!(backward(saved: &Saved<T>, d_outputs: OutputGrad<T>, c: BackwardChunk<T>) => run_backward);
}
