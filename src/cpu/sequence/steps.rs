//! One step of each cell for the time loops: its recurrent products for a batch slice and its
//! element-wise math for one row, forward and backward. A new cell is one more [`CellStep`]
//! here and one more arm in [`with_step!`].

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};

use super::layout::gate;
use super::time_loop::{row, slice_mut, StepBuffers, StepContext};
use crate::core::activation::Pointwise;
use crate::core::cell;
use crate::core::Float;
use crate::cpu::packed::packed_product;

/// The arrays of one forward step's recurrent products for a batch slice.
pub(super) struct ForwardProducts<'s, T> {
    /// `(rows, units)`: the state before the step.
    pub h_prev: ArrayView2<'s, T>,
    /// `(rows, gates·units)`: the pre-activations, already holding the input projection.
    pub pre: ArrayViewMut2<'s, T>,
    pub buffers: &'s mut StepBuffers<T>,
    /// The slice's rows in the batch.
    pub rows: Range<usize>,
}

/// One row of a forward step, after the products.
pub(super) struct ForwardRow<'r, T> {
    pub pre: &'r mut [T],
    /// The recurrent products kept apart from `pre` (GRU).
    pub rec: &'r [T],
    pub h_prev: &'r [T],
    pub h: &'r mut [T],
    /// LSTM: `(c₋₁, c)`.
    pub c: Option<(&'r [T], &'r mut [T])>,
    /// GRU `reset_after`: the recurrent h-gate term, kept for the backward pass.
    pub rec_h: Option<&'r mut [T]>,
    /// LSTM with peepholes: `[p_i, p_f, p_o]`.
    pub peephole: Option<[&'r [T]; 3]>,
    /// Layer-normalised LSTM: the cell-state normalisation `[γ_c, β_c]`.
    pub cell_norm: Option<[&'r [T]; 2]>,
}

/// One row of a backward step.
pub(super) struct BackwardRow<'r, T> {
    /// The saved pre-activations (or gate values).
    pub pre: &'r [T],
    pub h_prev: &'r [T],
    /// The gradient reaching `h`.
    pub dh: &'r [T],
    pub dpre: &'r mut [T],
    /// The gradient of `h₋₁` outside the recurrent products.
    pub dh_prev: &'r mut [T],
    /// LSTM: `(c₋₁, c, dc)`, `dc` carried from step to step.
    pub c: Option<(&'r [T], &'r [T], &'r mut [T])>,
    /// GRU `reset_after`: the saved recurrent h-gate term and its gradient.
    pub rec_h: Option<(&'r [T], &'r mut [T])>,
    /// LSTM with peepholes: `[p_i, p_f, p_o]`.
    pub peephole: Option<[&'r [T]; 3]>,
    /// Layer-normalised LSTM: `[γ_c, β_c]` and the row's sums of their gradients
    /// (`2 · units`).
    pub cell_norm: Option<([&'r [T]; 2], &'r mut [T])>,
}

/// The arrays of one backward step's recurrent products for a batch slice, after its rows.
pub(super) struct BackwardProducts<'s, T> {
    pub step: usize,
    pub first_row: usize,
    pub rows: Range<usize>,
    pub pre: ArrayView2<'s, T>,
    pub h_prev: ArrayView2<'s, T>,
    pub dpre: ArrayViewMut2<'s, T>,
    /// GRU: see [`super::time_loop::BackwardChunk::gru`].
    pub gru: Option<ArrayViewMut2<'s, T>>,
    pub scratch: &'s mut Array2<T>,
    pub dh_prev: &'s mut Array2<T>,
}

/// What one cell does in a step. The default products are those of cells whose every gate
/// adds `h₋₁ · U_g` to its pre-activation (SimpleRNN, LSTM).
pub(super) trait CellStep<T: Float>: Sync {
    /// The recurrent products of a forward step.
    #[inline(always)]
    fn forward_products(&self, ctx: &StepContext<T>, mut s: ForwardProducts<T>) {
        let gates = 0..ctx.spec.gates();
        let scratch = &mut s.buffers.scratch;
        ctx.recurrent_product(s.h_prev, gates, s.rows, scratch, &mut s.pre, true);
    }

    /// The element-wise math of a forward step for one row.
    fn forward_row(&self, row: ForwardRow<T>);

    /// The element-wise math of a backward step for one row.
    fn backward_row(&self, row: BackwardRow<T>);

    /// The recurrent products of a backward step: `dh_prev` from the gates' gradients.
    #[inline(always)]
    fn backward_products(&self, ctx: &StepContext<T>, s: BackwardProducts<T>) {
        let gates = 0..ctx.spec.gates();
        ctx.recurrent_grad(s.dpre.view(), gates, s.rows, s.scratch, s.dh_prev);
    }
}

/// Keras's `SimpleRNNCell`.
pub(super) struct SimpleRnn<'p, P>(pub &'p P);

impl<T: Float, P: Pointwise<T>> CellStep<T> for SimpleRnn<'_, P> {
    #[inline(always)]
    fn forward_row(&self, r: ForwardRow<T>) {
        cell::simple_forward(self.0, r.pre, r.h);
    }

    #[inline(always)]
    fn backward_row(&self, r: BackwardRow<T>) {
        cell::simple_backward(self.0, r.pre, r.dh, r.dpre);
        r.dh_prev.fill(T::zero());
    }
}

/// Keras's `LSTMCell`; with `keep_gates` the forward pass stores the gate values in place of
/// the pre-activations and the backward pass reads them (tanh/sigmoid only).
pub(super) struct Lstm<'p, P> {
    pub p: &'p P,
    pub keep_gates: bool,
}

impl<T: Float, P: Pointwise<T>> CellStep<T> for Lstm<'_, P> {
    #[inline(always)]
    fn forward_row(&self, r: ForwardRow<T>) {
        let (c_prev, c) = r.c.expect("LSTM has cell states");
        let p = self.p;
        if let Some(w) = r.cell_norm {
            if self.keep_gates {
                cell::lstm_norm_forward::<_, _, true>(p, w, r.pre, c_prev, r.h, c);
            } else {
                cell::lstm_norm_forward::<_, _, false>(p, w, r.pre, c_prev, r.h, c);
            }
            return;
        }
        match (r.peephole, self.keep_gates) {
            (None, true) => cell::lstm_forward::<_, _, true>(p, r.pre, c_prev, r.h, c),
            (None, false) => cell::lstm_forward::<_, _, false>(p, r.pre, c_prev, r.h, c),
            (Some(w), true) => {
                cell::lstm_peephole_forward::<_, _, true>(p, w, r.pre, c_prev, r.h, c);
            }
            (Some(w), false) => {
                cell::lstm_peephole_forward::<_, _, false>(p, w, r.pre, c_prev, r.h, c);
            }
        }
    }

    #[inline(always)]
    fn backward_row(&self, r: BackwardRow<T>) {
        let (c_prev, c, dc) = r.c.expect("LSTM has cell states");
        let (p, pre, dh, dpre) = (self.p, r.pre, r.dh, r.dpre);
        r.dh_prev.fill(T::zero());
        if let Some((w, sums)) = r.cell_norm {
            if self.keep_gates {
                cell::lstm_norm_backward::<_, _, true>(p, w, pre, c_prev, c, dh, dc, dpre, sums);
            } else {
                cell::lstm_norm_backward::<_, _, false>(p, w, pre, c_prev, c, dh, dc, dpre, sums);
            }
            return;
        }
        match (r.peephole, self.keep_gates) {
            (None, true) => cell::lstm_backward::<_, _, true>(p, pre, c_prev, c, dh, dc, dpre),
            (None, false) => cell::lstm_backward::<_, _, false>(p, pre, c_prev, c, dh, dc, dpre),
            (Some(w), true) => {
                cell::lstm_peephole_backward::<_, _, true>(p, w, pre, c_prev, c, dh, dc, dpre);
            }
            (Some(w), false) => {
                cell::lstm_peephole_backward::<_, _, false>(p, w, pre, c_prev, c, dh, dc, dpre);
            }
        }
    }
}

/// IndRNN: SimpleRNN's row math, with the recurrent product an element-wise one, `h₋₁ ⊙ u`.
pub(super) struct IndRnn<'p, P>(pub &'p P);

impl<T: Float, P: Pointwise<T>> CellStep<T> for IndRnn<'_, P> {
    /// `pre += (h₋₁ ⊙ m) ⊙ u`.
    #[inline(always)]
    fn forward_products(&self, ctx: &StepContext<T>, mut s: ForwardProducts<T>) {
        let u = ctx.diagonal();
        let mask = ctx.dropout_rows(0, s.rows);
        for r in 0..s.h_prev.nrows() {
            let (pre, h) = (slice_mut(s.pre.row_mut(r)), row(s.h_prev, r));
            let m = mask.map(|m| row(m, r));
            for j in 0..pre.len() {
                pre[j] += h[j] * m.map_or(T::one(), |m| m[j]) * u[j];
            }
        }
    }

    #[inline(always)]
    fn forward_row(&self, r: ForwardRow<T>) {
        cell::simple_forward(self.0, r.pre, r.h);
    }

    #[inline(always)]
    fn backward_row(&self, r: BackwardRow<T>) {
        cell::simple_backward(self.0, r.pre, r.dh, r.dpre);
        r.dh_prev.fill(T::zero());
    }

    /// `dh_prev += dpre ⊙ u ⊙ m` (rows of masked steps have `dpre = 0`).
    #[inline(always)]
    fn backward_products(&self, ctx: &StepContext<T>, s: BackwardProducts<T>) {
        let u = ctx.diagonal();
        let mask = ctx.dropout_rows(0, s.rows);
        for r in 0..s.dpre.nrows() {
            let (dh_prev, dpre) = (slice_mut(s.dh_prev.row_mut(r)), row(s.dpre.view(), r));
            let m = mask.map(|m| row(m, r));
            for j in 0..dpre.len() {
                dh_prev[j] += dpre[j] * u[j] * m.map_or(T::one(), |m| m[j]);
            }
        }
    }
}

/// Keras's `GRUCell` with `reset_after=True` (the reset gate scales the recurrent h-gate
/// term, which has its own bias row); `keep_gates` as for [`Lstm`].
pub(super) struct GruResetAfter<'p, P> {
    pub p: &'p P,
    pub keep_gates: bool,
}

impl<T: Float, P: Pointwise<T>> CellStep<T> for GruResetAfter<'_, P> {
    #[inline(always)]
    fn forward_products(&self, ctx: &StepContext<T>, mut s: ForwardProducts<T>) {
        let b = &mut s.buffers;
        let rec = &mut b.rec.view_mut();
        let gates = 0..ctx.spec.gates();
        ctx.recurrent_product(s.h_prev, gates, s.rows, &mut b.scratch, rec, false);
        if let Some(bias) = ctx.recurrent_bias {
            b.rec += &bias;
        }
    }

    #[inline(always)]
    fn forward_row(&self, r: ForwardRow<T>) {
        let rec_h = r.rec_h.expect("GRU keeps its recurrent term");
        if self.keep_gates {
            cell::gru_after_forward::<_, _, true>(self.p, r.pre, r.rec, r.h_prev, r.h, rec_h);
        } else {
            cell::gru_after_forward::<_, _, false>(self.p, r.pre, r.rec, r.h_prev, r.h, rec_h);
        }
    }

    #[inline(always)]
    fn backward_row(&self, r: BackwardRow<T>) {
        let (rec_h, drec_h) = r.rec_h.expect("GRU keeps its recurrent term");
        let (p, pre, hp, dh) = (self.p, r.pre, r.h_prev, r.dh);
        if self.keep_gates {
            cell::gru_after_backward::<_, _, true>(
                p, pre, rec_h, hp, dh, r.dpre, drec_h, r.dh_prev,
            );
        } else {
            cell::gru_after_backward::<_, _, false>(
                p, pre, rec_h, hp, dh, r.dpre, drec_h, r.dh_prev,
            );
        }
    }

    #[inline(always)]
    fn backward_products(&self, ctx: &StepContext<T>, s: BackwardProducts<T>) {
        let u = ctx.spec.units;
        let zr = s.dpre.slice(s![.., ..2 * u]);
        ctx.recurrent_grad(zr, 0..2, s.rows.clone(), s.scratch, s.dh_prev);
        let drec_h = s.gru.expect("GRU keeps its recurrent term's gradient");
        ctx.recurrent_grad(drec_h.view(), 2..3, s.rows, s.scratch, s.dh_prev);
    }
}

/// Keras's `GRUCell` with `reset_after=False`: the reset gate scales `h₋₁` before the h-gate
/// product, so each step runs two rounds of products.
pub(super) struct GruResetBefore<'p, P>(pub &'p P);

impl<T: Float, P: Pointwise<T>> CellStep<T> for GruResetBefore<'_, P> {
    #[inline(always)]
    fn forward_products(&self, ctx: &StepContext<T>, mut s: ForwardProducts<T>) {
        let u = ctx.spec.units;
        let b = &mut s.buffers;
        let rec = &mut b.rec.view_mut();
        ctx.recurrent_product(s.h_prev, 0..2, s.rows.clone(), &mut b.scratch, rec, false);
        let mh = ctx.dropout_rows(2, s.rows);
        for r in 0..s.h_prev.nrows() {
            cell::gru_before_gates(
                self.0,
                slice_mut(s.pre.row_mut(r)),
                &row(b.rec.view(), r)[..2 * u],
                row(s.h_prev, r),
                mh.map(|m| row(m, r)),
                slice_mut(b.q.row_mut(r)),
            );
        }
        let out = &mut b.rec.slice_mut(s![.., 2 * u..]);
        packed_product(b.q.view(), &ctx.packed[2], false, out);
    }

    #[inline(always)]
    fn forward_row(&self, r: ForwardRow<T>) {
        let u = r.h.len();
        cell::gru_before_output(self.0, r.pre, &r.rec[2 * u..], r.h_prev, r.h);
    }

    #[inline(always)]
    fn backward_row(&self, r: BackwardRow<T>) {
        cell::gru_before_backward_gates(self.0, r.pre, r.h_prev, r.dh, r.dpre, r.dh_prev);
    }

    /// `dq = dpre_h · U_hᵀ` (rows of masked steps are zero), then through the reset gate into
    /// `dpre_r`, `dh_prev` and the h-gate product's input `q`, then the z and r gates' products.
    #[inline(always)]
    fn backward_products(&self, ctx: &StepContext<T>, mut s: BackwardProducts<T>) {
        let u = ctx.spec.units;
        let dq = &mut s.scratch.view_mut();
        packed_product(gate(s.dpre.view(), 2, u), &ctx.packed[2], false, dq);
        let mh = ctx.dropout_rows(2, s.rows.clone());
        let mut q = s.gru.expect("GRU keeps the h-gate product's input");
        for r in 0..s.pre.nrows() {
            if !ctx.used(s.step, s.first_row + r) {
                continue;
            }
            cell::gru_before_backward_reset(
                self.0,
                row(s.pre, r),
                row(s.h_prev, r),
                mh.map(|m| row(m, r)),
                row(s.scratch.view(), r),
                slice_mut(s.dpre.row_mut(r)),
                slice_mut(s.dh_prev.row_mut(r)),
                slice_mut(q.row_mut(r)),
            );
        }
        let zr = s.dpre.slice(s![.., ..2 * u]);
        ctx.recurrent_grad(zr, 0..2, s.rows, s.scratch, s.dh_prev);
    }
}

/// Evaluates `$body` with `$p` bound to the cell's activation pair: a
/// [`crate::core::activation::FixedPair`] for the common pairs (the loops then inline and
/// vectorize the functions; on fused multiply-adds where the CPU has them), else an
/// [`crate::core::activation::AnyPair`].
macro_rules! with_pair {
    ($spec:expr, $p:ident => $body:expr) => {{
        if crate::cpu::has_fma() {
            crate::cpu::sequence::with_pair!(@fma true, $spec, $p => $body)
        } else {
            crate::cpu::sequence::with_pair!(@fma false, $spec, $p => $body)
        }
    }};
    (@fma $fma:literal, $spec:expr, $p:ident => $body:expr) => {{
        use crate::core::activation::{Activation as A, AnyPair, FixedPair, HardSigmoid, Relu};
        use crate::core::activation::{Sigmoid, Tanh};
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

/// Evaluates `$body` with `$cell` bound to the [`CellStep`] of `$spec` (`$keep_gates` as in
/// [`Lstm`]), over its activation pair.
macro_rules! with_step {
    ($spec:expr, $keep_gates:expr, $cell:ident => $body:expr) => {{
        use crate::core::cell::CellKind;
        use crate::cpu::sequence::steps::{GruResetAfter, GruResetBefore, IndRnn, Lstm, SimpleRnn};
        let keep_gates = $keep_gates;
        crate::cpu::sequence::with_pair!($spec, p => match $spec.kind {
            CellKind::SimpleRnn => {
                let $cell = &SimpleRnn(p);
                $body
            }
            CellKind::Lstm => {
                let $cell = &Lstm { p, keep_gates };
                $body
            }
            CellKind::Gru { reset_after: true } => {
                let $cell = &GruResetAfter { p, keep_gates };
                $body
            }
            CellKind::Gru { reset_after: false } => {
                let $cell = &GruResetBefore(p);
                $body
            }
            CellKind::IndRnn => {
                let $cell = &IndRnn(p);
                $body
            }
        })
    }};
}
pub(crate) use with_pair;
pub(super) use with_step;
