//! The `ConvLSTM` recurrence on the CPU (Keras's `ConvLSTM1D/2D/3D`): per step, the recurrent
//! convolution of the previous output (stride 1, padding "same") added to the hoisted input
//! convolution, then the LSTM gate math; and backpropagation through time.
//!
//! The input convolution over all steps is one call of [`super::conv::Conv`] by the caller
//! (its output, bias included, is `projected`), as the dense cells hoist their projection; the
//! recurrent one runs as shifted products over padded states ([`super::shifted_conv`]).
//! States are channels-last `(batch · positions, filters)`; gates are Keras's i, f, c, o.

use std::ops::Range;

use ndarray::{s, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Zip};

use super::alloc;
use super::sequence::with_pair;
use super::shifted_conv::ShiftedConv;
use super::team;
use crate::core::activation::{Activation, Pointwise};
use crate::core::Float;
use crate::error::{check_shape, Result};
use crate::Cancel;

/// What a `ConvLSTM` cell is: its activations and the shape of its states and kernel.
#[derive(Clone, Debug)]
pub struct ConvLstmSpec {
    /// Applied to the candidate and to the carry (Keras's `activation`, default tanh).
    pub activation: Activation,
    /// Applied to the i, f and o gates (Keras's `recurrent_activation`, default sigmoid).
    pub recurrent_activation: Activation,
    /// Samples.
    pub batch: usize,
    /// The states' spatial sizes (the input convolution's output).
    pub spatial: Vec<usize>,
    /// Filters (channels of the states).
    pub filters: usize,
    /// The recurrent kernel's spatial sizes.
    pub kernel: Vec<usize>,
}

/// The inputs of one forward pass.
#[derive(Clone, Copy, Debug)]
pub struct ConvLstmInput<'a, T> {
    /// The input convolution, `(steps, batch · positions, 4 · filters)`, in processing order.
    pub projected: ArrayView3<'a, T>,
    /// Keras's bias `(4 · filters,)`, added to `projected` (its gradient is the sum of
    /// `projected`'s over the rows).
    pub bias: Option<ArrayView1<'a, T>>,
    /// Keras's recurrent kernel `(*kernel, filters, 4 · filters)` as its `(taps · filters, 4 ·
    /// filters)` matrix.
    pub recurrent_kernel: ArrayView2<'a, T>,
    /// Initial output and carry, `(batch · positions, filters)` each; zeros when absent.
    pub initial: Option<(ArrayView2<'a, T>, ArrayView2<'a, T>)>,
    /// `(batch, steps)`, in processing order: a false step keeps the states.
    pub mask: Option<ArrayView2<'a, bool>>,
    /// Recurrent dropout multipliers per gate, `(4, batch · positions, filters)`.
    pub recurrent_dropout: Option<ArrayView3<'a, T>>,
    /// Masked steps output zeros instead of the previous output.
    pub zero_output_for_mask: bool,
}

/// What the backward pass needs from the forward pass.
#[derive(Debug)]
pub struct ConvLstmSaved<T> {
    spec: ConvLstmSpec,
    recurrent_kernel: Array2<T>,
    /// Gate pre-activations per step.
    z: Array3<T>,
    /// Outputs `h` and carries `c` before the first step and after each.
    h: Array3<T>,
    c: Array3<T>,
    mask: Option<Array2<bool>>,
    recurrent_dropout: Option<Array3<T>>,
    zero_output_for_mask: bool,
}

/// What the forward pass returns.
#[derive(Debug)]
pub struct ConvLstmForward<T> {
    /// Each step's output `(steps, batch · positions, filters)`.
    pub outputs: Array3<T>,
    /// The final output state.
    pub h: Array2<T>,
    /// The final carry.
    pub c: Array2<T>,
    /// For [`backward`].
    pub saved: ConvLstmSaved<T>,
}

/// The gradients [`backward`] returns.
#[derive(Debug)]
pub struct ConvLstmGradients<T> {
    /// Of `projected`.
    pub projected: Array3<T>,
    /// Of the recurrent kernel matrix.
    pub recurrent_kernel: Array2<T>,
    /// Of the initial output state.
    pub h: Array2<T>,
    /// Of the initial carry.
    pub c: Array2<T>,
}

impl ConvLstmSpec {
    fn positions(&self) -> usize {
        self.spatial.iter().product()
    }

    fn rows(&self) -> usize {
        self.batch * self.positions()
    }

    /// The recurrent convolution.
    fn recurrent_conv(&self) -> Result<ShiftedConv> {
        ShiftedConv::new(self.batch, &self.spatial, &self.kernel)
    }
}

/// The columns of the gates that the recurrent convolution computes together: all four at once,
/// or one at a time when each has its own recurrent dropout.
fn gate_groups(filters: usize, dropout: bool) -> Vec<Range<usize>> {
    let count = if dropout { 4 } else { 1 };
    let width = 4 * filters / count;
    (0..count).map(|g| g * width..(g + 1) * width).collect()
}

/// The gate math's operands for consecutive rows (standard layout): pre-activations `z`
/// (`4 · filters` a row), the previous carry and the new one (`filters` a row).
struct Rows<'a, T, C> {
    filters: usize,
    z: &'a [T],
    c_prev: &'a [T],
    c: C,
}

fn whole<'a, T>(a: ArrayView2<'a, T>) -> &'a [T] {
    a.to_slice()
        .expect("rows of the ConvLSTM buffers are contiguous")
}

fn whole_mut<'a, T>(a: &'a mut ArrayViewMut2<'_, T>) -> &'a mut [T] {
    a.as_slice_mut()
        .expect("rows of the ConvLSTM buffers are contiguous")
}

/// Runs `$inner(args)` compiled for the CPU's widest vectors (AVX-512, else AVX2 with FMA, else
/// the baseline), so that the gate math's loops over filters vectorize with the fixed activation
/// pairs inlined (as the sequence engine's time loops do).
macro_rules! on_widest_vectors {
    ($inner:ident($($arg:ident: $ty:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")]
            unsafe fn avx512<T: Float, P: Pointwise<T>>($($arg: $ty),*) {
                $inner($($arg),*);
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<T: Float, P: Pointwise<T>>($($arg: $ty),*) {
                $inner($($arg),*);
            }
            if crate::cpu::has_avx512() {
                // SAFETY: the CPU has these extensions (checked just above).
                return unsafe { avx512($($arg),*) };
            }
            if crate::cpu::has_avx2_fma() {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { avx2($($arg),*) };
            }
        }
        $inner($($arg),*)
    }};
}

/// One step's gate math forward: the new carry and output (`h`) of each row.
fn forward_gates<T: Float, P: Pointwise<T>>(p: &P, rows: Rows<T, &mut [T]>, h: &mut [T]) {
    on_widest_vectors!(forward_rows(p: &P, rows: Rows<T, &mut [T]>, h: &mut [T]));
}

#[inline(always)]
fn forward_rows<T: Float, P: Pointwise<T>>(p: &P, rows: Rows<T, &mut [T]>, h: &mut [T]) {
    let filters = rows.filters;
    for (((z, c_prev), c), h) in rows
        .z
        .chunks_exact(4 * filters)
        .zip(rows.c_prev.chunks_exact(filters))
        .zip(rows.c.chunks_exact_mut(filters))
        .zip(h.chunks_exact_mut(filters))
    {
        let (zi, rest) = z.split_at(filters);
        let (zf, rest) = rest.split_at(filters);
        let (zg, zo) = rest.split_at(filters);
        for (((((zi, zf), zg), zo), c_prev), (c, h)) in zi
            .iter()
            .zip(zf)
            .zip(zg)
            .zip(zo)
            .zip(c_prev)
            .zip(c.iter_mut().zip(h.iter_mut()))
        {
            let (i, fg, g, o) = (p.ract(*zi), p.ract(*zf), p.act(*zg), p.ract(*zo));
            *c = fg * *c_prev + i * g;
            *h = o * p.act(*c);
        }
    }
}

/// One step's gate math backward: the gradients of the pre-activations (`dz`), and the output
/// and carry gradients (`dh`, `dc`) carried from this step's to the previous step's (`dh`
/// zeroed: the recurrent convolution's gradient is added to it next).
fn backward_gates<T: Float, P: Pointwise<T>>(
    p: &P,
    rows: Rows<T, &[T]>,
    grads: (&mut [T], &mut [T], &mut [T]),
) {
    on_widest_vectors!(backward_rows(p: &P, rows: Rows<T, &[T]>, grads: (&mut [T], &mut [T], &mut [T])));
}

#[inline(always)]
fn backward_rows<T: Float, P: Pointwise<T>>(
    p: &P,
    rows: Rows<T, &[T]>,
    (dz, dh, dc): (&mut [T], &mut [T], &mut [T]),
) {
    let filters = rows.filters;
    for (((((z, c_prev), c), dz), dh), dc) in rows
        .z
        .chunks_exact(4 * filters)
        .zip(rows.c_prev.chunks_exact(filters))
        .zip(rows.c.chunks_exact(filters))
        .zip(dz.chunks_exact_mut(4 * filters))
        .zip(dh.chunks_exact_mut(filters))
        .zip(dc.chunks_exact_mut(filters))
    {
        let (zi, rest) = z.split_at(filters);
        let (zf, rest) = rest.split_at(filters);
        let (zg, zo) = rest.split_at(filters);
        let (dzi, rest) = dz.split_at_mut(filters);
        let (dzf, rest) = rest.split_at_mut(filters);
        let (dzg, dzo) = rest.split_at_mut(filters);
        for j in 0..filters {
            let (i, fg, g, o) = (p.ract(zi[j]), p.ract(zf[j]), p.act(zg[j]), p.ract(zo[j]));
            let ac = p.act(c[j]);
            let dhv = dh[j];
            let dct = dc[j] + dhv * o * p.act_d(c[j], ac);
            dzi[j] = dct * g * p.ract_d(zi[j], i);
            dzf[j] = dct * c_prev[j] * p.ract_d(zf[j], fg);
            dzg[j] = dct * i * p.act_d(zg[j], g);
            dzo[j] = dhv * ac * p.ract_d(zo[j], o);
            dc[j] = dct * fg;
            dh[j] = T::zero();
        }
    }
}

/// Whether sample `n`'s output at step `t` is its output state: at an unmasked step, and at a
/// masked one after its first unmasked step (the previous output, as the states are kept) unless
/// `zero_output_for_mask`; else the output is zeros (there is no previous output yet).
fn emits(mask: Option<ArrayView2<bool>>, zero_output_for_mask: bool, n: usize, t: usize) -> bool {
    match mask {
        None => true,
        Some(m) if m[[n, t]] => true,
        Some(m) => !zero_output_for_mask && (0..t).any(|u| m[[n, u]]),
    }
}

/// Runs the recurrence over every step of `input`.
///
/// # Errors
/// [`crate::Error::Shape`] when an array does not fit `spec`; [`crate::Error::Cancelled`] when
/// `cancel` is raised.
pub fn forward<T: Float>(
    spec: &ConvLstmSpec,
    input: &ConvLstmInput<T>,
    cancel: &Cancel,
) -> Result<ConvLstmForward<T>> {
    let (rows, f, steps) = (spec.rows(), spec.filters, input.projected.shape()[0]);
    check_shape("projected", &[steps, rows, 4 * f], input.projected.shape())?;
    let taps: usize = spec.kernel.iter().product();
    check_shape(
        "recurrent_kernel",
        &[taps * f, 4 * f],
        input.recurrent_kernel.shape(),
    )?;
    if let Some((h0, c0)) = input.initial {
        check_shape("initial_state[0]", &[rows, f], h0.shape())?;
        check_shape("initial_state[1]", &[rows, f], c0.shape())?;
    }
    if let Some(mask) = input.mask {
        check_shape("mask", &[spec.batch, steps], mask.shape())?;
    }
    if let Some(d) = input.recurrent_dropout {
        check_shape("recurrent_dropout", &[4, rows, f], d.shape())?;
    }
    if let Some(b) = input.bias {
        check_shape("bias", &[4 * f], b.shape())?;
    }
    let conv = spec.recurrent_conv()?;
    let groups = gate_groups(f, input.recurrent_dropout.is_some());
    let kernels = groups
        .iter()
        .map(|cols| conv.pack_kernel(input.recurrent_kernel.slice(s![.., cols.clone()])))
        .collect::<Result<Vec<_>>>()?;
    let mut padded = groups
        .iter()
        .map(|_| conv.padded(f))
        .collect::<Result<Vec<_>>>()?;
    let mut z = alloc::zeros((steps, rows, 4 * f), "the ConvLSTM gates")?;
    let mut h = alloc::zeros((steps + 1, rows, f), "the ConvLSTM outputs")?;
    let mut c = alloc::zeros((steps + 1, rows, f), "the ConvLSTM carries")?;
    if let Some((h0, c0)) = input.initial {
        h.index_axis_mut(Axis(0), 0).assign(&h0);
        c.index_axis_mut(Axis(0), 0).assign(&c0);
    }
    let (width, per_sample) = (conv.line_rows(), conv.lines() / spec.batch.max(1));
    for t in 0..steps {
        cancel.check()?;
        for (g, padded) in padded.iter_mut().enumerate() {
            let scale = input
                .recurrent_dropout
                .map(|d| d.index_axis_move(Axis(0), g));
            conv.pad_states(h.index_axis(Axis(0), t), scale, padded);
        }
        let mut zt = z.index_axis_mut(Axis(0), t);
        let projected = input.projected.index_axis(Axis(0), t);
        let (h_prev, mut h_next) = h.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        let (c_prev, mut c_next) = c.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        // Each line: its gates (the projection plus the recurrent convolution), then its states.
        let items: Vec<_> = (0..conv.lines())
            .zip(zt.axis_chunks_iter_mut(Axis(0), width))
            .zip(projected.axis_chunks_iter(Axis(0), width))
            .zip(c_prev.axis_chunks_iter(Axis(0), width))
            .zip(c_next.axis_chunks_iter_mut(Axis(0), width))
            .zip(h_prev.axis_chunks_iter(Axis(0), width))
            .zip(h_next.axis_chunks_iter_mut(Axis(0), width))
            .collect();
        team::each(
            items,
            |((((((line, mut z), projected), c_prev), mut c_next), h_prev), mut h_next)| {
                if input.mask.is_some_and(|m| !m[[line / per_sample, t]]) {
                    c_next.assign(&c_prev);
                    h_next.assign(&h_prev);
                    return;
                }
                match input.bias {
                    Some(bias) => Zip::from(&mut z)
                        .and(&projected)
                        .and_broadcast(&bias)
                        .for_each(|z, &p, &b| *z = p + b),
                    None => z.assign(&projected),
                }
                for ((cols, kernel), padded) in groups.iter().zip(&kernels).zip(&padded) {
                    let mut z = z.slice_mut(s![.., cols.clone()]);
                    conv.forward_line(line, padded.view(), kernel, &mut z);
                }
                let rows = Rows {
                    filters: f,
                    z: whole(z.view()),
                    c_prev: whole(c_prev),
                    c: whole_mut(&mut c_next),
                };
                with_pair!(spec, p => forward_gates(p, rows, whole_mut(&mut h_next)));
            },
        );
    }
    let positions = spec.positions();
    let mut outputs = h.slice(s![1.., .., ..]).to_owned();
    for n in 0..spec.batch {
        for t in (0..steps).filter(|&t| !emits(input.mask, input.zero_output_for_mask, n, t)) {
            outputs
                .slice_mut(s![t, n * positions..(n + 1) * positions, ..])
                .fill(T::zero());
        }
    }
    let (h_last, c_last) = (
        h.index_axis(Axis(0), steps).to_owned(),
        c.index_axis(Axis(0), steps).to_owned(),
    );
    let saved = ConvLstmSaved {
        spec: spec.clone(),
        recurrent_kernel: input.recurrent_kernel.to_owned(),
        z,
        h,
        c,
        mask: input.mask.map(|m| m.to_owned()),
        recurrent_dropout: input.recurrent_dropout.map(|d| d.to_owned()),
        zero_output_for_mask: input.zero_output_for_mask,
    };
    Ok(ConvLstmForward {
        outputs,
        h: h_last,
        c: c_last,
        saved,
    })
}

/// The gradients of a forward pass given those of its outputs (`(steps, rows, filters)`) and
/// final states (`(rows, filters)`); absent ones are zeros.
///
/// # Errors
/// [`crate::Error::Shape`] when a gradient's shape differs from its value's;
/// [`crate::Error::Cancelled`] when `cancel` is raised.
pub fn backward<T: Float>(
    saved: &ConvLstmSaved<T>,
    d_outputs: Option<ArrayView3<T>>,
    d_h: Option<ArrayView2<T>>,
    d_c: Option<ArrayView2<T>>,
    cancel: &Cancel,
) -> Result<ConvLstmGradients<T>> {
    let spec = &saved.spec;
    let (steps, rows, f) = (saved.z.shape()[0], spec.rows(), spec.filters);
    if let Some(d) = d_outputs {
        check_shape("d_outputs", &[steps, rows, f], d.shape())?;
    }
    let mut dh = alloc::zeros((rows, f), "the output state gradient")?;
    let mut dc = alloc::zeros((rows, f), "the carry gradient")?;
    if let Some(d) = d_h {
        check_shape("d_final_states[0]", &[rows, f], d.shape())?;
        dh.assign(&d);
    }
    if let Some(d) = d_c {
        check_shape("d_final_states[1]", &[rows, f], d.shape())?;
        dc.assign(&d);
    }
    let conv = spec.recurrent_conv()?;
    let dropout = saved.recurrent_dropout.as_ref();
    let groups = gate_groups(f, dropout.is_some());
    let kernel = saved.recurrent_kernel.view();
    let transposed = groups
        .iter()
        .map(|cols| conv.pack_transposed(kernel.slice(s![.., cols.clone()])))
        .collect::<Result<Vec<_>>>()?;
    let mut padded = groups
        .iter()
        .map(|_| conv.padded(f))
        .collect::<Result<Vec<_>>>()?;
    let mut padded_dz = conv.padded(4 * f)?;
    let mut dz = alloc::zeros(
        (steps, rows, 4 * f),
        "the gradient of the input convolution",
    )?;
    let mut dkernel = alloc::zeros(kernel.dim(), "the recurrent kernel gradient")?;
    let positions = spec.positions();
    let width = conv.line_rows();
    let kept = |n: usize, t: usize| saved.mask.as_ref().is_none_or(|m| m[[n, t]]);
    let mask = saved.mask.as_ref().map(|m| m.view());
    for t in (0..steps).rev() {
        cancel.check()?;
        // Each sample's share of this step's output gradient, where its output is its state.
        let d_t = d_outputs.map(|d| d.index_axis_move(Axis(0), t));
        let d_rows: Vec<_> = (0..spec.batch)
            .map(|n| {
                d_t.filter(|_| emits(mask, saved.zero_output_for_mask, n, t))
                    .map(|d| d.slice_move(s![n * positions..(n + 1) * positions, ..]))
            })
            .collect();
        let mut dzt = dz.index_axis_mut(Axis(0), t);
        let zt = saved.z.index_axis(Axis(0), t);
        let (c_prev, c_next) = (
            saved.c.index_axis(Axis(0), t),
            saved.c.index_axis(Axis(0), t + 1),
        );
        let items: Vec<_> = (0..spec.batch)
            .zip(dzt.axis_chunks_iter_mut(Axis(0), positions))
            .zip(zt.axis_chunks_iter(Axis(0), positions))
            .zip(c_prev.axis_chunks_iter(Axis(0), positions))
            .zip(c_next.axis_chunks_iter(Axis(0), positions))
            .zip(dh.axis_chunks_iter_mut(Axis(0), positions))
            .zip(dc.axis_chunks_iter_mut(Axis(0), positions))
            .zip(d_rows)
            .collect();
        team::each(
            items,
            |(((((((n, mut dz), z), c_prev), c_next), mut dh), mut dc), d_rows)| {
                if let Some(d) = d_rows {
                    dh += &d;
                }
                if !kept(n, t) {
                    return; // the states pass through; dz stays zero
                }
                let rows = Rows {
                    filters: f,
                    z: whole(z),
                    c_prev: whole(c_prev),
                    c: whole(c_next),
                };
                let grads = (whole_mut(&mut dz), whole_mut(&mut dh), whole_mut(&mut dc));
                with_pair!(spec, p => backward_gates(p, rows, grads));
            },
        );
        let dzt = dzt.view();
        let h_prev = saved.h.index_axis(Axis(0), t);
        for (g, padded) in padded.iter_mut().enumerate() {
            let scale = dropout.map(|d| d.index_axis(Axis(0), g));
            conv.pad_states(h_prev, scale, padded);
        }
        conv.pad_gradient(dzt, &mut padded_dz);
        // The previous output's gradient, line by line (through each gate's dropout).
        let items: Vec<_> = (0..conv.lines())
            .zip(dh.axis_chunks_iter_mut(Axis(0), width))
            .collect();
        team::each(items, |(line, mut dh)| {
            for (g, (cols, kernel)) in groups.iter().zip(&transposed).enumerate() {
                let padded_dz = padded_dz.slice(s![.., cols.clone()]);
                match dropout {
                    None => conv.input_gradient_line(line, padded_dz, kernel, &mut dh),
                    Some(masks) => {
                        let mut dropped = Array2::zeros(dh.dim());
                        let mut view = dropped.view_mut();
                        conv.input_gradient_line(line, padded_dz, kernel, &mut view);
                        let mask = masks.slice(s![g, line * width..(line + 1) * width, ..]);
                        Zip::from(&mut dh)
                            .and(&dropped)
                            .and(mask)
                            .for_each(|d, &v, &m| *d += v * m);
                    }
                }
            }
        });
        for (cols, padded) in groups.iter().zip(&padded) {
            let cols = s![.., cols.clone()];
            conv.add_kernel_gradient(padded.view(), dzt.slice(cols), dkernel.slice_mut(cols));
        }
    }
    Ok(ConvLstmGradients {
        projected: dz,
        recurrent_kernel: dkernel,
        h: dh,
        c: dc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn values<D: ndarray::Dimension>(
        shape: impl ndarray::IntoDimension<Dim = D>,
        seed: f64,
    ) -> Array<f64, D> {
        let mut i = 0.0;
        Array::from_shape_simple_fn(shape.into_dimension(), || {
            i += 1.0;
            (i * seed).sin()
        })
    }

    fn spec() -> ConvLstmSpec {
        ConvLstmSpec {
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            batch: 2,
            spatial: vec![3, 2],
            filters: 2,
            kernel: vec![2, 3],
        }
    }

    struct Case {
        projected: Array3<f64>,
        kernel: Array2<f64>,
        h0: Array2<f64>,
        c0: Array2<f64>,
        mask: Array2<bool>,
        dropout: Array3<f64>,
    }

    impl Case {
        fn new(steps: usize) -> Self {
            let (rows, f) = (12, 2);
            Self {
                projected: values((steps, rows, 4 * f), 0.7),
                kernel: values((6 * f, 4 * f), 0.31) * 0.5,
                h0: values((rows, f), 0.13),
                c0: values((rows, f), 0.17),
                mask: Array2::from_shape_fn((2, steps), |(n, t)| (n + t) % 3 != 1),
                dropout: values((4, rows, f), 0.41).mapv(|v| if v > -0.3 { 1.4 } else { 0.0 }),
            }
        }

        fn input(&self, masked: bool, dropout: bool, zero_output: bool) -> ConvLstmInput<'_, f64> {
            ConvLstmInput {
                projected: self.projected.view(),
                bias: None,
                recurrent_kernel: self.kernel.view(),
                initial: Some((self.h0.view(), self.c0.view())),
                mask: masked.then(|| self.mask.view()),
                recurrent_dropout: dropout.then(|| self.dropout.view()),
                zero_output_for_mask: zero_output,
            }
        }
    }

    #[test]
    fn an_all_true_mask_is_no_mask() {
        let case = Case::new(3);
        let none = forward(
            &spec(),
            &case.input(false, false, false),
            &Cancel::default(),
        )
        .unwrap();
        let ones = Array2::from_elem((2, 3), true);
        let all = ConvLstmInput {
            mask: Some(ones.view()),
            ..case.input(false, false, false)
        };
        let all = forward(&spec(), &all, &Cancel::default()).unwrap();
        assert_eq!(none.outputs, all.outputs);
        assert_eq!((none.h, none.c), (all.h, all.c));
    }

    #[test]
    fn the_bias_is_added_to_the_projection() {
        let case = Case::new(3);
        let bias = values(8, 0.9);
        let with = ConvLstmInput {
            bias: Some(bias.view()),
            ..case.input(true, true, false)
        };
        let with = forward(&spec(), &with, &Cancel::default()).unwrap();
        let added = &case.projected + &bias;
        let plain = ConvLstmInput {
            projected: added.view(),
            ..case.input(true, true, false)
        };
        let plain = forward(&spec(), &plain, &Cancel::default()).unwrap();
        assert_eq!((with.outputs, with.c), (plain.outputs, plain.c));
    }

    #[test]
    fn a_masked_step_keeps_the_states() {
        let case = Case::new(3);
        let out = forward(&spec(), &case.input(true, false, false), &Cancel::default()).unwrap();
        // Sample 0 is masked at step 1: its output repeats step 0's; zeros with zero_output_for_mask.
        let rows = s![1, 0..6, ..];
        assert_eq!(out.outputs.slice(rows), out.outputs.slice(s![0, 0..6, ..]));
        // Sample 1 is masked at step 0: no output yet, so zeros (not its initial state).
        assert!(out
            .outputs
            .slice(s![0, 6..12, ..])
            .iter()
            .all(|&v| v == 0.0));
        let zero = forward(&spec(), &case.input(true, false, true), &Cancel::default()).unwrap();
        assert!(zero.outputs.slice(rows).iter().all(|&v| v == 0.0));
        assert_eq!(zero.h, out.h);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (masked, dropout, zero_output) in [
            (false, false, false),
            (true, true, false),
            (true, false, true),
        ] {
            let case = Case::new(4);
            let (w_out, w_h, w_c) = (
                values((4, 12, 2), 0.53),
                values((12, 2), 0.29),
                values((12, 2), 0.61),
            );
            let loss = |case: &Case| {
                let out = forward(
                    &spec(),
                    &case.input(masked, dropout, zero_output),
                    &Cancel::default(),
                )
                .unwrap();
                (&out.outputs * &w_out).sum() + (&out.h * &w_h).sum() + (&out.c * &w_c).sum()
            };
            let out = forward(
                &spec(),
                &case.input(masked, dropout, zero_output),
                &Cancel::default(),
            )
            .unwrap();
            let grads = backward(
                &out.saved,
                Some(w_out.view()),
                Some(w_h.view()),
                Some(w_c.view()),
                &Cancel::default(),
            )
            .unwrap();
            let eps = 1e-6;
            let check = |name: &str, analytic: &[f64], perturb: &dyn Fn(&mut Case, usize, f64)| {
                for i in (0..analytic.len()).step_by(7) {
                    let (mut up, mut down) = (Case::new(4), Case::new(4));
                    perturb(&mut up, i, eps);
                    perturb(&mut down, i, -eps);
                    let numeric = (loss(&up) - loss(&down)) / (2.0 * eps);
                    let err = (numeric - analytic[i]).abs();
                    assert!(
                        err < 1e-7,
                        "{name}[{i}] ({masked}, {dropout}, {zero_output}): {} vs {numeric}",
                        analytic[i]
                    );
                }
            };
            check(
                "projected",
                grads.projected.as_slice().unwrap(),
                &|c, i, e| c.projected.as_slice_mut().unwrap()[i] += e,
            );
            check(
                "kernel",
                grads.recurrent_kernel.as_slice().unwrap(),
                &|c, i, e| c.kernel.as_slice_mut().unwrap()[i] += e,
            );
            check("h0", grads.h.as_slice().unwrap(), &|c, i, e| {
                c.h0.as_slice_mut().unwrap()[i] += e;
            });
            check("c0", grads.c.as_slice().unwrap(), &|c, i, e| {
                c.c0.as_slice_mut().unwrap()[i] += e;
            });
            let _ = loss(&case);
        }
    }
}
