//! The time loops. Each task walks the whole sequence for its slice of the batch, with no
//! barrier between steps: per step the cell's recurrent products for the slice, then its
//! element-wise math row by row. What differs between cells is a [`CellStep`], chosen once
//! before the loop; masking, dropout rows and the output copies are the loop's.

use std::ops::Range;

use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, ArrayViewMut2};
use ndarray::{ArrayViewMut3, Axis, ShapeBuilder, Zip};

use super::layout::gate;
use super::steps::{BackwardProducts, BackwardRow, CellStep, ForwardProducts, ForwardRow};
use crate::core::cancel::Cancel;
use crate::core::cell::{self, moments, CellKind, CellSpec};
use crate::core::sequence::{OutputGrad, Saved};
use crate::core::zoneout::Stream;
use crate::core::Float;
use crate::cpu::alloc::zeros;
use crate::cpu::packed::{packed_product, PackedMatrix};
use crate::error::Result;

/// What every batch slice of the time loop shares.
pub(super) struct StepContext<'a, T> {
    pub spec: &'a CellSpec,
    /// The recurrent kernel's gate blocks, packed: `U_g` forward, `U_gᵀ` backward; or, forward
    /// without recurrent dropout for cells whose steps take every gate's product at once, the
    /// whole `U` as one matrix.
    pub packed: &'a [PackedMatrix<T>],
    /// The forward loop's input bias (the bias's first row, zeros without one), `gates·units`;
    /// empty backward.
    pub input_bias: &'a [T],
    /// The input kernel `W` packed, when each forward step projects its own inputs (else the
    /// pre-activations hold `x·W` already); None backward.
    pub input_kernel: Option<&'a PackedMatrix<T>>,
    /// GRU `reset_after`'s second bias row.
    pub recurrent_bias: Option<ArrayView1<'a, T>>,
    /// IndRNN's recurrent vector `u`, `(1, units)`.
    pub diagonal: Option<ArrayView2<'a, T>>,
    /// LSTM's `(3, units)` peephole weights (row-major).
    pub peephole: Option<ArrayView2<'a, T>>,
    /// A projected LSTM's `W_hr` packed: `W_hr` forward, `W_hrᵀ` backward.
    pub projection: Option<&'a PackedMatrix<T>>,
    /// The `(2, gates·units)` layer-normalisation gains `[γ_x, γ_h]` (row-major).
    pub layer_norm: Option<ArrayView2<'a, T>>,
    /// An LSTM's `(2, units)` cell-state normalisation `[γ_c, β_c]` (row-major).
    pub cell_norm: Option<ArrayView2<'a, T>>,
    /// Zoneout weights of `h` and (LSTM) `c`, when given (else the forward loop's drawn
    /// masks, in its slices' [`ForwardChunk::zoneout`]).
    pub zoneout: [Option<ZoneoutRows<'a, T>>; 2],
    /// Zoneout masks the forward loop draws, step by step.
    pub drawn_zoneout: Option<DrawnZoneout>,
    /// `(time, batch)`, processing order.
    pub mask: Option<ArrayView2<'a, bool>>,
    pub recurrent_dropout: Option<ArrayView3<'a, T>>,
    pub zero_output: bool,
    pub cancel: &'a Cancel,
}

/// A state's zoneout weights, `(time, batch, state units)` row-major in processing order, or
/// one row every step and batch row shares (the expectation's rate), read row by row.
#[derive(Clone, Copy)]
pub(super) struct ZoneoutRows<'a, T> {
    data: &'a [T],
    batch: usize,
    /// Elements between two batch rows: 0 for a shared row.
    row_stride: usize,
    units: usize,
}

impl<'a, T> ZoneoutRows<'a, T> {
    /// The rows of `weights` (standard layout).
    pub fn new(weights: &'a ndarray::Array3<T>) -> Self {
        let (_, batch, units) = weights.dim();
        let data = (weights.as_slice()).expect("the zoneout weights are kept row-major");
        Self {
            data,
            batch,
            row_stride: units,
            units,
        }
    }

    /// `row` as every step's and batch row's weights.
    pub fn shared(row: &'a [T]) -> Self {
        Self {
            data: row,
            batch: 0,
            row_stride: 0,
            units: row.len(),
        }
    }

    /// Where batch row `row`'s weights at step `step` start.
    #[inline(always)]
    fn start(&self, step: usize, row: usize) -> usize {
        (step * self.batch + row) * self.row_stride
    }

    /// The weights of batch rows `first_row..first_row + rows` at step `step`, `(rows,
    /// units)`.
    fn step(&self, step: usize, first_row: usize, rows: usize) -> ArrayView2<'a, T> {
        let start = self.start(step, first_row);
        let shape = (rows, self.units).strides((self.row_stride, 1));
        ArrayView2::from_shape(shape, &self.data[start..])
            .expect("a step's rows are in the weights")
    }

    /// Batch row `row`'s weights at step `step` (a plain slice: the loops read one per row and
    /// step, where an ndarray slice would cost more than the arithmetic).
    #[inline(always)]
    fn row(&self, row: usize, step: usize) -> &'a [T] {
        let start = self.start(step, row);
        &self.data[start..start + self.units]
    }
}

/// The streams of zoneout masks a forward loop draws from (see
/// [`crate::core::sequence::Zoneout::Drawn`]): per state, its masks at step `s` and batch row
/// `r` are elements `(t·batch + r)·units ..` of its stream, `t` the step's index in the input.
#[derive(Clone, Copy)]
pub(super) struct DrawnZoneout {
    streams: [Option<Stream>; 2],
    steps: usize,
    batch: usize,
    reverse: bool,
}

impl DrawnZoneout {
    /// The draws of `seeds` (one per state) at `rate` for a pass of `(steps, batch)`, walked
    /// in reverse with `reverse`.
    pub fn new(
        rate: f64,
        seeds: &[u64],
        (steps, batch): (usize, usize),
        reverse: bool,
    ) -> Result<Self> {
        let stream = |i: usize| {
            seeds
                .get(i)
                .map(|&seed| Stream::new(seed, rate))
                .transpose()
        };
        Ok(Self {
            streams: [stream(0)?, stream(1)?],
            steps,
            batch,
            reverse,
        })
    }

    /// Draws state `i`'s `(rows, units)` masks of rows `first_row..` at processing step
    /// `step` into `masks`.
    #[inline(always)]
    fn draw<T: Float>(
        &self,
        i: usize,
        step: usize,
        first_row: usize,
        masks: &mut ArrayViewMut2<T>,
    ) {
        let Some(stream) = &self.streams[i] else {
            return;
        };
        let t = if self.reverse {
            self.steps - 1 - step
        } else {
            step
        };
        let first = (t * self.batch + first_row) * masks.ncols();
        stream.fill(first as u64, whole_mut(masks));
    }
}

/// One batch slice's share of the forward buffers (time-major).
pub(super) struct ForwardChunk<'a, T> {
    pub first_row: usize,
    /// The slice's inputs `(time, n, features)`, when its steps project them (see
    /// [`StepContext::input_kernel`]).
    pub x: Option<ArrayView3<'a, T>>,
    pub pre: ArrayViewMut3<'a, T>,
    pub hs: ArrayViewMut3<'a, T>,
    pub cs: Option<ArrayViewMut3<'a, T>>,
    pub rec_h: Option<ArrayViewMut3<'a, T>>,
    /// Only with a mask: otherwise the outputs are the hidden states.
    pub ys: Option<ArrayViewMut3<'a, T>>,
    /// A projected LSTM's `o ⊙ act(c)` per step, `(time, n, units)`.
    pub unprojected: Option<ArrayViewMut3<'a, T>>,
    /// Under zoneout, LSTM's new cell state before its zoneout, `(time, n, units)`.
    pub c_candidate: Option<ArrayViewMut3<'a, T>>,
    /// Under layer normalisation, the input products before it, `(time, n, gates·units)`.
    pub input_raw: Option<ArrayView3<'a, T>>,
    /// Under layer normalisation, the recurrent products before it, `(time, n, gates·units)`.
    pub recurrent_raw: Option<ArrayViewMut3<'a, T>>,
    /// Under layer normalisation, the moments of both products, `(time, n, 4)`.
    pub norm_moments: Option<ArrayViewMut3<'a, T>>,
    /// Under drawn zoneout, the masks of `h` and (LSTM) `c` the loop draws, `(time, n, state
    /// units)`.
    pub zoneout: [Option<ArrayViewMut3<'a, T>>; 2],
}

/// One batch slice's share of the backward buffers (time-major).
pub(super) struct BackwardChunk<'a, T> {
    pub first_row: usize,
    /// `(time, n, gates·units)` input-side gradients of the pre-activations.
    pub dpre: ArrayViewMut3<'a, T>,
    /// GRU only, `(time, n, units)`: with `reset_after` the gradient of the recurrent h-gate
    /// term; without it the h-gate product's input `q = r ⊙ h₋₁ ⊙ m_h`.
    pub gru: Option<ArrayViewMut3<'a, T>>,
    /// `(n, output units)` and `(n, units)` gradients of the initial states.
    pub dh0: ArrayViewMut2<'a, T>,
    pub dc0: Option<ArrayViewMut2<'a, T>>,
    /// A projected LSTM's gradient of `h` at each used step, `(time, n, output units)` (zeros
    /// at masked steps), for the projection's gradient.
    pub dh_steps: Option<ArrayViewMut3<'a, T>>,
    /// Under layer normalisation, the gradient of the recurrent products before it,
    /// `(time, n, gates·units)`.
    pub d_recurrent_raw: Option<ArrayViewMut3<'a, T>>,
    /// Under layer normalisation, each row's sums over its steps of gradients, `(n, 4·width)`
    /// (`width = gates·units`; an LSTM's `(n, 4·width + 2·units)`): `γ_h`'s, `γ_x`'s, the
    /// bias's first row's, GRU's recurrent bias's (zeros for LSTM), then an LSTM's `γ_c`'s and
    /// `β_c`'s. The pre-activation gradients then leave as those of `x·W` before its
    /// normalisation.
    pub norm_grads: Option<ArrayViewMut2<'a, T>>,
}

/// A slice's per-step work arrays of the forward loop, `(rows, ·)`.
pub(super) struct StepBuffers<T> {
    /// Recurrent products kept apart from the pre-activations (GRU).
    pub rec: Array2<T>,
    /// `h ⊙ m` under recurrent dropout.
    pub scratch: Array2<T>,
    /// GRU without `reset_after`: the h-gate product's input.
    pub q: Array2<T>,
}

impl<T: Float> StepContext<'_, T> {
    /// Whether the mask keeps `row` at `step`.
    pub fn used(&self, step: usize, row: usize) -> bool {
        self.mask.is_none_or(|m| m[[step, row]])
    }

    /// IndRNN's recurrent vector `u`.
    pub fn diagonal(&self) -> &[T] {
        row(self.diagonal.expect("IndRNN has a recurrent vector"), 0)
    }

    /// The peephole weights `[p_i, p_f, p_o]`, if the cell has them.
    fn peephole(&self) -> Option<[&[T]; 3]> {
        self.peephole.map(|w| [row(w, 0), row(w, 1), row(w, 2)])
    }

    /// An LSTM's cell-state normalisation `[γ_c, β_c]`, if it has one.
    fn cell_norm(&self) -> Option<[&[T]; 2]> {
        self.cell_norm.map(|w| [row(w, 0), row(w, 1)])
    }

    /// The products of a forward step under layer normalisation: `raw = (h₋₁ ⊙ m)·U` into the
    /// buffer kept for the backward pass, then per row `pre` written as the input bias plus the
    /// input side's `γ_x ⊙ LN(x·W)`, plus `γ_h ⊙ LN(raw)` too (LSTM) or that written to `rec`
    /// with the recurrent bias (GRU); both normalisations' moments go to `moments` (`n × 4`).
    #[inline(always)]
    fn normalized_products(
        &self,
        gains: ArrayView2<T>,
        s: ForwardProducts<T>,
        input_raw: ArrayView2<T>,
        (mut raw, mut moments_out): (ArrayViewMut2<T>, ArrayViewMut2<T>),
    ) {
        let (mut pre, buffers) = (s.pre, s.buffers);
        let gates = 0..self.spec.gates();
        self.recurrent_product(
            s.h_prev,
            gates,
            s.rows,
            &mut buffers.scratch,
            &mut raw,
            false,
        );
        let width = self.spec.width();
        let (gain_x, gain_h) = (&row(gains, 0)[..width], &row(gains, 1)[..width]);
        let input_bias = &self.input_bias[..width];
        let bias = self.recurrent_bias.map(|b| b.to_vec());
        let rows = (whole(input_raw).chunks_exact(width))
            .zip(whole(raw.view()).chunks_exact(width))
            .zip(whole_mut(&mut pre).chunks_exact_mut(width))
            .zip((buffers.rec.as_slice_mut().expect("owned")).chunks_exact_mut(width))
            .zip(whole_mut(&mut moments_out).chunks_exact_mut(4));
        for ((((x_raw, h_raw), pre), rec), kept) in rows {
            // One length for every slice, so the loops have no bounds checks and vectorize.
            let (x_raw, h_raw, rec) = (&x_raw[..width], &h_raw[..width], &mut rec[..width]);
            let (gain_x, gain_h, pre) = (&gain_x[..width], &gain_h[..width], &mut pre[..width]);
            let (x_mean, x_rstd) = moments(x_raw);
            let (h_mean, h_rstd) = moments(h_raw);
            kept.copy_from_slice(&[x_mean, x_rstd, h_mean, h_rstd]);
            if self.spec.kind == CellKind::Lstm {
                for j in 0..width {
                    pre[j] = input_bias[j]
                        + (gain_x[j] * ((x_raw[j] - x_mean) * x_rstd)
                            + gain_h[j] * ((h_raw[j] - h_mean) * h_rstd));
                }
                continue;
            }
            for j in 0..width {
                pre[j] = input_bias[j] + gain_x[j] * ((x_raw[j] - x_mean) * x_rstd);
                rec[j] = gain_h[j] * ((h_raw[j] - h_mean) * h_rstd);
            }
            if let Some(bias) = &bias {
                add_into(rec, bias);
            }
        }
    }

    /// A backward step's normalisations, per used row: the gradient `g` of the normalised
    /// recurrent product (LSTM: `dpre`; GRU: the z and r columns of `dpre` and the h-gate
    /// term's gradient) back through its normalisation into `d_raw`, and `dpre` itself back
    /// through the input side's into `dpre` in place (the gradient of `x·W`); the row's sums
    /// (see [`BackwardChunk::norm_grads`]) collect the gains' and biases' gradients. Then
    /// `dh_prev += d_raw · Uᵀ`.
    #[inline(always)]
    fn normalized_grad(
        &self,
        s: &mut BackwardProducts<T>,
        (x_raw, h_raw, moments): (ArrayView2<T>, ArrayView2<T>, ArrayView2<T>),
        mut d_raw: ArrayViewMut2<T>,
        norm_grads: &mut ArrayViewMut2<T>,
    ) {
        let gains = self.layer_norm.expect("layer_norm has gains");
        let (gain_x, gain_h) = (row(gains, 0), row(gains, 1));
        let (u, width) = (self.spec.units, self.spec.width());
        let sums_width = norm_grads.ncols();
        let gru = s.gru.as_ref().map(|g| whole(g.view()));
        let rows = (whole(x_raw).chunks_exact(width))
            .zip(whole(h_raw).chunks_exact(width))
            .zip(whole_mut(&mut d_raw).chunks_exact_mut(width))
            .zip(whole_mut(&mut s.dpre).chunks_exact_mut(width))
            .zip(whole_mut(norm_grads).chunks_exact_mut(sums_width))
            .zip(whole(moments).chunks_exact(4))
            .enumerate();
        for (r, (((((x_raw, h_raw), g), dpre), sums), kept)) in rows {
            if !self.used(s.step, s.first_row + r) {
                // `d_raw` starts unwritten, and its products read every row.
                g.fill(T::zero());
                continue;
            }
            g.copy_from_slice(dpre);
            let (recurrent_sums, rest) = sums.split_at_mut(width);
            let (input_sums, rest) = rest.split_at_mut(width);
            let (bias_sums, rest) = rest.split_at_mut(width);
            if let Some(gru) = gru {
                g[2 * u..].copy_from_slice(&gru[r * u..(r + 1) * u]);
                add_into(&mut rest[..width], g);
            }
            add_into(bias_sums, dpre);
            let (x_moments, h_moments) = ((kept[0], kept[1]), (kept[2], kept[3]));
            cell::layer_norm_backward(gain_h, h_raw, h_moments, g, recurrent_sums);
            cell::layer_norm_backward(gain_x, x_raw, x_moments, dpre, input_sums);
        }
        let gates = 0..self.spec.gates();
        self.recurrent_grad(d_raw.view(), gates, s.rows.clone(), s.scratch, s.dh_prev);
    }

    /// Recurrent dropout rows of gate `g` for this slice.
    pub fn dropout_rows(&self, g: usize, rows: Range<usize>) -> Option<ArrayView2<'_, T>> {
        self.recurrent_dropout
            .map(|m| m.slice_move(s![g, rows, ..]))
    }

    /// `out[:, gates] = (h ⊙ m_g) · U_g` for each gate in `gates` (`+=` with `accumulate`).
    pub fn recurrent_product(
        &self,
        h: ArrayView2<T>,
        gates: Range<usize>,
        rows: Range<usize>,
        scratch: &mut Array2<T>,
        out: &mut ArrayViewMut2<T>,
        accumulate: bool,
    ) {
        let u = self.spec.units;
        if let [whole] = self.packed {
            if whole.dim().1 > u {
                // The whole kernel: every gate at once.
                debug_assert_eq!(gates, 0..self.spec.gates(), "the whole kernel's gates");
                return packed_product(h, whole, accumulate, out);
            }
        }
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

    /// `dh_prev += Σ_g (drec_g · U_gᵀ) ⊙ m_g` for the gates in `gates`, `drec` holding exactly
    /// those gates' columns.
    pub fn recurrent_grad(
        &self,
        drec: ArrayView2<T>,
        gates: Range<usize>,
        rows: Range<usize>,
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
    fn run_forward<S: CellStep<T>>(&self, mut c: ForwardChunk<T>, cell: &S) -> Result<()> {
        let (steps, n, width) = c.pre.dim();
        let (u, out) = (self.spec.units, self.spec.output_units());
        let rows = c.first_row..c.first_row + n;
        let mut buffers = StepBuffers {
            rec: zeros((n, width), "recurrent products")?,
            scratch: zeros((n, out), "dropout scratch")?,
            q: zeros((n, u), "GRU reset products")?,
        };
        for step in 0..steps {
            self.cancel.check()?;
            let (h_prev, mut h_next) = split_step(&mut c.hs, step);
            let h_prev = h_prev.view();
            let mut pre = c.pre.index_axis_mut(Axis(0), step);
            if let (Some(w), Some(x)) = (self.input_kernel, &c.x) {
                packed_product(x.index_axis(Axis(0), step), w, false, &mut pre);
            }
            if c.input_raw.is_none() {
                // The projection wrote `x·W` alone: adding the bias here costs no serial pass
                // over all steps (and gives the bits of a product added onto the bias whenever
                // the product sums its inner dimension in one pass).
                for r in 0..n {
                    add_into(slice_mut(pre.row_mut(r)), self.input_bias);
                }
            }
            let products = ForwardProducts {
                h_prev,
                pre: pre.view_mut(),
                buffers: &mut buffers,
                rows: rows.clone(),
            };
            let norm = (c.recurrent_raw.as_mut()).zip(c.norm_moments.as_mut());
            match (self.layer_norm, &c.input_raw, norm) {
                (Some(gains), Some(input_raw), Some((raw, moments))) => self.normalized_products(
                    gains,
                    products,
                    input_raw.index_axis(Axis(0), step),
                    (
                        raw.index_axis_mut(Axis(0), step),
                        moments.index_axis_mut(Axis(0), step),
                    ),
                ),
                _ => cell.forward_products(self, products),
            }
            let mut c_pair = c.cs.as_mut().map(|cs| split_step(cs, step));
            let mut unprojected = c
                .unprojected
                .as_mut()
                .map(|a| a.index_axis_mut(Axis(0), step));
            for r in 0..n {
                if !self.used(step, c.first_row + r) {
                    h_next.row_mut(r).assign(&h_prev.row(r));
                    if let Some((c_prev, c_next)) = &mut c_pair {
                        c_next.row_mut(r).assign(&c_prev.row(r));
                    }
                    pre.row_mut(r).fill(T::zero());
                    continue;
                }
                // A projected LSTM's row math writes `o ⊙ act(c)`; the projection follows.
                let h = match &mut unprojected {
                    Some(a) => slice_mut(a.row_mut(r)),
                    None => slice_mut(h_next.row_mut(r)),
                };
                cell.forward_row(ForwardRow {
                    pre: slice_mut(pre.row_mut(r)),
                    rec: row(buffers.rec.view(), r),
                    h_prev: row(h_prev, r),
                    h,
                    c: c_pair.as_mut().map(|(c_prev, c_next)| {
                        (row(c_prev.view(), r), slice_mut(c_next.row_mut(r)))
                    }),
                    rec_h: c
                        .rec_h
                        .as_mut()
                        .map(|a| slice_mut(a.slice_mut(s![step, r, ..]))),
                    peephole: self.peephole(),
                    cell_norm: self.cell_norm(),
                });
            }
            if let (Some(w), Some(a)) = (self.projection, &unprojected) {
                packed_product(a.view(), w, false, &mut h_next);
                for r in 0..n {
                    if !self.used(step, c.first_row + r) {
                        h_next.row_mut(r).assign(&h_prev.row(r));
                    }
                }
            }
            let [zoneout_h, zoneout_c] = self.zoneout_step(&mut c.zoneout, (step, c.first_row, n));
            if let Some(z) = zoneout_h {
                for r in (0..n).filter(|&r| self.used(step, c.first_row + r)) {
                    zone(row(h_prev, r), slice_mut(h_next.row_mut(r)), row(z, r));
                }
            }
            if let (Some(z), Some((c_prev, c_next))) = (zoneout_c, &mut c_pair) {
                // Kept for the backward pass (not at inference).
                let mut candidates =
                    (c.c_candidate.as_mut()).map(|a| a.index_axis_mut(Axis(0), step));
                for r in 0..n {
                    let c_new = slice_mut(c_next.row_mut(r));
                    if let Some(candidates) = &mut candidates {
                        slice_mut(candidates.row_mut(r)).copy_from_slice(c_new);
                    }
                    if self.used(step, c.first_row + r) {
                        zone(row(c_prev.view(), r), c_new, row(z, r));
                    }
                }
            }
            if let Some(ys) = &mut c.ys {
                self.write_outputs(ys, &h_next, step, c.first_row);
            }
        }
        Ok(())
    }

    /// A forward slice's zoneout weights of `h` and (LSTM) `c` at `step`, `(rows, units)`:
    /// drawn into the slice's buffers now, or the given weights' rows.
    #[inline(always)]
    fn zoneout_step<'b>(
        &'b self,
        drawn: &'b mut [Option<ArrayViewMut3<'_, T>>; 2],
        (step, first_row, rows): (usize, usize, usize),
    ) -> [Option<ArrayView2<'b, T>>; 2] {
        let mut now = [None, None];
        for (i, (masks, out)) in drawn.iter_mut().zip(&mut now).enumerate() {
            *out = match (masks, &self.drawn_zoneout, self.zoneout[i]) {
                (Some(masks), Some(draws), _) => {
                    let mut masks = masks.index_axis_mut(Axis(0), step);
                    draws.draw(i, step, first_row, &mut masks);
                    let shape = masks.dim();
                    let data = masks.into_slice().expect("a step's rows are contiguous");
                    Some(ArrayView2::from_shape(shape, &*data).expect("the step's shape"))
                }
                (_, _, Some(z)) => Some(z.step(step, first_row, rows)),
                _ => None,
            };
        }
        now
    }

    /// Per-step outputs: `h` where the step is used, else the previous output (or zeros).
    fn write_outputs(
        &self,
        ys: &mut ArrayViewMut3<T>,
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

    #[inline(always)]
    fn run_backward<S: CellStep<T>>(
        &self,
        saved: &Saved<T>,
        d_outputs: OutputGrad<T>,
        mut c: BackwardChunk<T>,
        cell: &S,
    ) -> Result<()> {
        let (steps, n, _) = c.dpre.dim();
        let (u, out) = (self.spec.units, self.spec.output_units());
        let rows = c.first_row..c.first_row + n;
        let pre = saved.pre.slice(s![.., rows.clone(), ..]);
        let hs = saved.hs.slice(s![.., rows.clone(), ..]);
        let cs = saved.cs.as_ref().map(|a| a.slice(s![.., rows.clone(), ..]));
        let rec_h = (saved.rec_h.as_ref()).map(|a| a.slice(s![.., rows.clone(), ..]));
        let mut dh = c.dh0.to_owned();
        let mut dc = c.dc0.as_ref().map(|d| d.to_owned());
        let mut dh_prev = zeros((n, out), "state gradients")?;
        let mut carry = zeros((n, out), "output gradients")?;
        let mut scratch = zeros((n, out), "dropout scratch")?;
        // A projected LSTM's gradient of `o ⊙ act(c)`, `dh · W_hrᵀ`.
        let mut d_unprojected = match self.projection {
            Some(_) => Some(zeros((n, u), "projection gradients")?),
            None => None,
        };
        // Zoneout: the gradient reaching `h₋₁` directly, `m ⊙ dh`, and a row of `dc`.
        let mut dh_kept = match self.zoneout[0] {
            Some(_) => Some(zeros((n, out), "zoneout gradients")?),
            None => None,
        };
        let mut dc_kept = vec![T::zero(); u];
        let candidates = (saved.c_candidate.as_ref()).map(|a| a.slice(s![.., rows.clone(), ..]));
        let raws = (saved.input_raw.as_ref().zip(saved.recurrent_raw.as_ref()))
            .zip(saved.norm_moments.as_ref())
            .map(|((x, h), m)| {
                (
                    x.slice(s![.., rows.clone(), ..]),
                    h.slice(s![.., rows.clone(), ..]),
                    m.slice(s![.., rows.clone(), ..]),
                )
            });
        let cell_sums = 4 * self.spec.width();
        for step in (0..steps).rev() {
            self.cancel.check()?;
            match d_outputs {
                OutputGrad::Sequence(g) => carry += &g.slice(s![rows.clone(), step, ..]),
                OutputGrad::Last(g) if step + 1 == steps => carry += &g.slice(s![rows.clone(), ..]),
                _ => {}
            }
            let mut dpre = c.dpre.index_axis_mut(Axis(0), step);
            let mut gru = c.gru.as_mut().map(|g| g.index_axis_mut(Axis(0), step));
            let (pre, h_prev) = (pre.index_axis(Axis(0), step), hs.index_axis(Axis(0), step));
            for r in 0..n {
                let carry_row = slice_mut(carry.row_mut(r));
                if !self.used(step, c.first_row + r) {
                    if self.zero_output {
                        carry_row.fill(T::zero());
                    }
                    dh_prev.row_mut(r).assign(&dh.row(r));
                    if let Some(kept) = &mut dh_kept {
                        kept.row_mut(r).fill(T::zero());
                    }
                    continue;
                }
                let dh_row = slice_mut(dh.row_mut(r));
                add_into(dh_row, carry_row);
                carry_row.fill(T::zero());
                if let (Some(z), Some(kept)) = (self.zoneout[0], &mut dh_kept) {
                    let m = z.row(c.first_row + r, step);
                    split_zoned(m, dh_row, slice_mut(kept.row_mut(r)));
                }
            }
            if let (Some(w), Some(d)) = (self.projection, &mut d_unprojected) {
                packed_product(dh.view(), w, false, &mut d.view_mut());
                if let Some(steps_out) = &mut c.dh_steps {
                    let mut now = steps_out.index_axis_mut(Axis(0), step);
                    for r in 0..n {
                        if self.used(step, c.first_row + r) {
                            now.row_mut(r).assign(&dh.row(r));
                        }
                    }
                }
            }
            // The step's states, sliced once: per row, slicing a 3-d view cost as much as the
            // row's arithmetic.
            let c_pair = cs.as_ref().map(|cs| {
                let c = match &candidates {
                    Some(a) => a.index_axis(Axis(0), step),
                    None => cs.index_axis(Axis(0), step + 1),
                };
                (cs.index_axis(Axis(0), step), c)
            });
            let rec_h = rec_h.as_ref().map(|a| a.index_axis(Axis(0), step));
            for r in 0..n {
                if !self.used(step, c.first_row + r) {
                    continue;
                }
                let dh_row = match &d_unprojected {
                    Some(d) => row(d.view(), r),
                    None => row(dh.view(), r),
                };
                // Zoneout of `c`: the cell sees `(1 - m) ⊙ dc`; `m ⊙ dc` reaches `c₋₁` directly.
                let zoned_c = match (self.zoneout[1], dc.as_mut()) {
                    (Some(z), Some(dc)) => {
                        let m = z.row(c.first_row + r, step);
                        split_zoned(m, slice_mut(dc.row_mut(r)), &mut dc_kept);
                        true
                    }
                    _ => false,
                };
                cell.backward_row(BackwardRow {
                    pre: row(pre, r),
                    h_prev: row(h_prev, r),
                    dh: dh_row,
                    dpre: slice_mut(dpre.row_mut(r)),
                    dh_prev: slice_mut(dh_prev.row_mut(r)),
                    c: c_pair.zip(dc.as_mut()).map(|((c_prev, c), dc)| {
                        (row(c_prev, r), row(c, r), slice_mut(dc.row_mut(r)))
                    }),
                    rec_h: (rec_h.zip(gru.as_mut()))
                        .map(|(a, g)| (row(a, r), slice_mut(g.row_mut(r)))),
                    peephole: self.peephole(),
                    cell_norm: (self.cell_norm().zip(c.norm_grads.as_mut()))
                        .map(|(w, sums)| (w, &mut slice_mut(sums.row_mut(r))[cell_sums..])),
                });
                if let (true, Some(dc)) = (zoned_c, dc.as_mut()) {
                    add_into(slice_mut(dc.row_mut(r)), &dc_kept);
                }
            }
            let mut products = BackwardProducts {
                step,
                first_row: c.first_row,
                rows: rows.clone(),
                pre,
                h_prev,
                dpre,
                gru,
                scratch: &mut scratch,
                dh_prev: &mut dh_prev,
            };
            match (&raws, &mut c.d_recurrent_raw, &mut c.norm_grads) {
                (Some((x_raw, h_raw, moments)), Some(d_raw), Some(sums)) => self.normalized_grad(
                    &mut products,
                    (
                        x_raw.index_axis(Axis(0), step),
                        h_raw.index_axis(Axis(0), step),
                        moments.index_axis(Axis(0), step),
                    ),
                    d_raw.index_axis_mut(Axis(0), step),
                    sums,
                ),
                _ => cell.backward_products(self, products),
            }
            if let Some(kept) = &dh_kept {
                dh_prev += kept;
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

/// `sum += v`, element by element.
#[inline(always)]
fn add_into<T: Float>(sum: &mut [T], v: &[T]) {
    let n = sum.len();
    let v = &v[..n];
    for j in 0..n {
        sum[j] += v[j];
    }
}

/// Zoneout's split of the gradient `d` of a zoned state's row: `m ⊙ d` reaches the previous
/// state directly (into `kept`), `(1 - m) ⊙ d` stays in `d` for the cell.
#[inline(always)]
fn split_zoned<T: Float>(m: &[T], d: &mut [T], kept: &mut [T]) {
    let n = d.len();
    let (m, kept) = (&m[..n], &mut kept[..n]);
    for j in 0..n {
        (kept[j], d[j]) = (m[j] * d[j], (T::one() - m[j]) * d[j]);
    }
}

/// Zoneout of one row: `new = m ⊙ previous + (1 - m) ⊙ new`.
#[inline(always)]
fn zone<T: Float>(previous: &[T], new: &mut [T], m: &[T]) {
    // One length for every slice, so the loop has no bounds checks and vectorizes.
    let n = new.len();
    let (previous, m) = (&previous[..n], &m[..n]);
    for j in 0..n {
        new[j] = m[j] * previous[j] + (T::one() - m[j]) * new[j];
    }
}

/// `(a[step], a[step + 1])` of a time-major buffer.
fn split_step<'b, T>(
    a: &'b mut ArrayViewMut3<'_, T>,
    step: usize,
) -> (ArrayViewMut2<'b, T>, ArrayViewMut2<'b, T>) {
    let (before, after) = a.view_mut().split_at(Axis(0), step + 1);
    (
        before.index_axis_move(Axis(0), step),
        after.index_axis_move(Axis(0), 0),
    )
}

/// Row `r` of a standard-layout matrix as a slice.
pub(super) fn row<T>(a: ArrayView2<'_, T>, r: usize) -> &[T] {
    slice(a.index_axis_move(Axis(0), r))
}

/// A standard-layout matrix's elements, row after row.
fn whole<T>(a: ArrayView2<'_, T>) -> &[T] {
    a.to_slice()
        .expect("the time-major buffers' steps are contiguous")
}

/// A standard-layout matrix's elements, row after row, mutable.
fn whole_mut<'b, T>(a: &'b mut ArrayViewMut2<'_, T>) -> &'b mut [T] {
    a.as_slice_mut()
        .expect("the time-major buffers' steps are contiguous")
}

/// A standard-layout row as a slice.
fn slice<T>(row: ArrayView1<'_, T>) -> &[T] {
    row.to_slice()
        .expect("rows of the time-major buffers are contiguous")
}

/// A standard-layout row as a mutable slice.
pub(super) fn slice_mut<T>(row: ArrayViewMut1<'_, T>) -> &mut [T] {
    row.into_slice()
        .expect("rows of the time-major buffers are contiguous")
}

pub(super) mod simd {
    //! The time loops compiled for the CPU's vector extensions, picked at run time: AVX-512
    //! (16 floats at a time, 32 registers: no spills in the activation math), else AVX2 with
    //! FMA (8 at a time), else the baseline. The AVX-512 and AVX2 loops do the same operations
    //! on each element, so their results are the same; the baseline rounds differently where
    //! the others fuse multiply-adds (the fixed activation pairs, the f32 recurrent products).
    use super::{BackwardChunk, CellStep, ForwardChunk, OutputGrad, Saved, StepContext};
    use crate::core::Float;
    use crate::error::Result;

    /// Expands to the three compilations of one loop and the dispatch between them.
    macro_rules! dispatch {
        ($name:ident($($arg:ident: $ty:ty),*) => $run:ident) => {
            pub(in crate::cpu::sequence) fn $name<T: Float, S: CellStep<T>>(
                ctx: &StepContext<T>,
                $($arg: $ty,)*
                cell: &S,
            ) -> Result<()> {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")]
                    unsafe fn avx512<T: Float, S: CellStep<T>>(
                        ctx: &StepContext<T>,
                        $($arg: $ty,)*
                        cell: &S,
                    ) -> Result<()> {
                        ctx.$run($($arg,)* cell)
                    }
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2<T: Float, S: CellStep<T>>(
                        ctx: &StepContext<T>,
                        $($arg: $ty,)*
                        cell: &S,
                    ) -> Result<()> {
                        ctx.$run($($arg,)* cell)
                    }
                    if crate::cpu::has_avx512() {
                        // SAFETY: the CPU has these extensions (checked just above).
                        return unsafe { avx512(ctx, $($arg,)* cell) };
                    }
                    if crate::cpu::has_avx2_fma() {
                        // SAFETY: the CPU has AVX2 and FMA (checked just above).
                        return unsafe { avx2(ctx, $($arg,)* cell) };
                    }
                }
                ctx.$run($($arg,)* cell)
            }
        };
    }

    dispatch!(forward(c: ForwardChunk<T>) => run_forward);
    dispatch!(backward(saved: &Saved<T>, d_outputs: OutputGrad<T>, c: BackwardChunk<T>) => run_backward);
}
