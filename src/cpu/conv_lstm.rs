//! The `ConvLSTM` recurrence on the CPU (Keras's `ConvLSTM1D/2D/3D`): per step, the recurrent
//! convolution of the previous output (stride 1, padding "same") added to the hoisted input
//! convolution, then the LSTM gate math; and backpropagation through time.
//!
//! The input convolution over all steps is one call of [`super::conv::Conv`] by the caller
//! (its output, bias included, is `projected`), as the dense cells hoist their projection.
//! States are channels-last `(batch · positions, filters)`; gates are Keras's i, f, c, o.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Zip};

use super::alloc;
use super::conv::Conv;
use super::team;
use crate::core::activation::Activation;
use crate::core::conv::{ConvGeometry, Padding};
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
    /// The input convolution with its bias, `(steps, batch · positions, 4 · filters)`, in
    /// processing order.
    pub projected: ArrayView3<'a, T>,
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

    /// The recurrent convolution producing `outputs` channels.
    fn recurrent_conv(&self, outputs: usize) -> Result<Conv> {
        let ones = vec![1; self.spatial.len()];
        let geometry = ConvGeometry::new(
            self.batch,
            &self.spatial,
            self.filters,
            &self.kernel,
            outputs,
            &ones,
            &ones,
            Padding::Same,
            1,
        )?;
        Ok(Conv::new(geometry))
    }
}

/// Adds the recurrent convolution of `h` to `z` (`(rows, 4F)`), per gate through its dropout
/// multipliers when there are some.
fn add_recurrent<T: Float>(
    conv: &Conv,
    h: ArrayView2<T>,
    kernel: ArrayView2<T>,
    dropout: Option<ArrayView3<T>>,
    mut z: ArrayViewMut2<T>,
    threads: usize,
) -> Result<()> {
    let f = h.ncols();
    let h = h.as_standard_layout();
    match dropout {
        None => conv.forward_into(
            h.as_slice().expect("standard layout"),
            kernel,
            T::one(),
            z,
            threads,
        ),
        Some(masks) => {
            for (gate, mask) in masks.outer_iter().enumerate() {
                let dropped = &h * &mask;
                let cols = s![.., gate * f..(gate + 1) * f];
                let x = dropped.as_slice().expect("fresh array");
                conv.forward_into(x, kernel.slice(cols), T::one(), z.slice_mut(cols), threads)?;
            }
            Ok(())
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
    let conv = spec.recurrent_conv(4 * f)?;
    let gate_conv = spec.recurrent_conv(f)?;
    let threads = rayon::current_num_threads();
    let mut z = alloc::zeros((steps, rows, 4 * f), "the ConvLSTM gates")?;
    let mut h = alloc::zeros((steps + 1, rows, f), "the ConvLSTM outputs")?;
    let mut c = alloc::zeros((steps + 1, rows, f), "the ConvLSTM carries")?;
    if let Some((h0, c0)) = input.initial {
        h.index_axis_mut(Axis(0), 0).assign(&h0);
        c.index_axis_mut(Axis(0), 0).assign(&c0);
    }
    let positions = spec.positions();
    for t in 0..steps {
        cancel.check()?;
        let mut zt = z.index_axis_mut(Axis(0), t);
        zt.assign(&input.projected.index_axis(Axis(0), t));
        let (h_prev, mut h_next) = h.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        let kernel = input.recurrent_kernel;
        let used = if input.recurrent_dropout.is_some() {
            &gate_conv
        } else {
            &conv
        };
        add_recurrent(
            used,
            h_prev.view(),
            kernel,
            input.recurrent_dropout,
            zt.view_mut(),
            threads,
        )?;
        let (c_prev, mut c_next) = c.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        let items: Vec<_> = (0..spec.batch)
            .zip(zt.axis_chunks_iter(Axis(0), positions))
            .zip(c_prev.axis_chunks_iter(Axis(0), positions))
            .zip(c_next.axis_chunks_iter_mut(Axis(0), positions))
            .zip(h_prev.axis_chunks_iter(Axis(0), positions))
            .zip(h_next.axis_chunks_iter_mut(Axis(0), positions))
            .collect();
        team::each(
            items,
            |(((((n, z), c_prev), mut c_next), h_prev), mut h_next)| {
                if input.mask.is_some_and(|m| !m[[n, t]]) {
                    c_next.assign(&c_prev);
                    h_next.assign(&h_prev);
                    return;
                }
                for r in 0..positions {
                    let zr = z.row(r);
                    for j in 0..f {
                        let gate = |k: usize| zr[k * f + j];
                        let i = spec.recurrent_activation.apply(gate(0));
                        let fg = spec.recurrent_activation.apply(gate(1));
                        let g = spec.activation.apply(gate(2));
                        let o = spec.recurrent_activation.apply(gate(3));
                        let cn = fg * c_prev[[r, j]] + i * g;
                        c_next[[r, j]] = cn;
                        h_next[[r, j]] = o * spec.activation.apply(cn);
                    }
                }
            },
        );
    }
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
    let conv = spec.recurrent_conv(4 * f)?;
    let gate_conv = spec.recurrent_conv(f)?;
    let threads = rayon::current_num_threads();
    let mut dz = alloc::zeros(
        (steps, rows, 4 * f),
        "the gradient of the input convolution",
    )?;
    let mut dkernel = alloc::zeros(
        saved.recurrent_kernel.dim(),
        "the recurrent kernel gradient",
    )?;
    let positions = spec.positions();
    let kept = |n: usize, t: usize| saved.mask.as_ref().is_none_or(|m| m[[n, t]]);
    for t in (0..steps).rev() {
        cancel.check()?;
        if let Some(d) = d_outputs {
            let d = d.index_axis(Axis(0), t);
            let mask = saved.mask.as_ref().map(|m| m.view());
            for n in (0..spec.batch).filter(|&n| emits(mask, saved.zero_output_for_mask, n, t)) {
                let rows = s![n * positions..(n + 1) * positions, ..];
                dh.slice_mut(rows)
                    .zip_mut_with(&d.slice(rows), |a, &b| *a += b);
            }
        }
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
            .collect();
        team::each(
            items,
            |((((((n, mut dz), z), c_prev), c_next), mut dh), mut dc)| {
                if !kept(n, t) {
                    return; // the states pass through; dz stays zero
                }
                let (act, rec) = (spec.activation, spec.recurrent_activation);
                for r in 0..positions {
                    for j in 0..f {
                        let gate = |k: usize| z[[r, k * f + j]];
                        let (zi, zf, zg, zo) = (gate(0), gate(1), gate(2), gate(3));
                        let (i, fg, g, o) =
                            (rec.apply(zi), rec.apply(zf), act.apply(zg), rec.apply(zo));
                        let (cn, cp) = (c_next[[r, j]], c_prev[[r, j]]);
                        let ac = act.apply(cn);
                        let dhv = dh[[r, j]];
                        let dct = dc[[r, j]] + dhv * o * act.derivative(cn, ac);
                        dz[[r, j]] = dct * g * rec.derivative(zi, i);
                        dz[[r, f + j]] = dct * cp * rec.derivative(zf, fg);
                        dz[[r, 2 * f + j]] = dct * i * act.derivative(zg, g);
                        dz[[r, 3 * f + j]] = dhv * ac * rec.derivative(zo, o);
                        dc[[r, j]] = dct * fg;
                        dh[[r, j]] = T::zero();
                    }
                }
            },
        );
        let h_prev = saved.h.index_axis(Axis(0), t);
        let dzt = dzt.view();
        let dh_flat = dh.as_slice_mut().expect("fresh array");
        match &saved.recurrent_dropout {
            None => {
                let h = h_prev.as_standard_layout();
                let x = h.as_slice().expect("standard layout");
                conv.backward_into(
                    x,
                    saved.recurrent_kernel.view(),
                    dzt,
                    dkernel.view_mut(),
                    Some(dh_flat),
                    threads,
                )?;
            }
            Some(masks) => {
                let mut dropped_grad = alloc::zeros((rows, f), "the output state gradient")?;
                for (gate, mask) in masks.outer_iter().enumerate() {
                    let dropped = &h_prev * &mask;
                    let cols = s![.., gate * f..(gate + 1) * f];
                    dropped_grad.fill(T::zero());
                    gate_conv.backward_into(
                        dropped.as_slice().expect("fresh array"),
                        saved.recurrent_kernel.slice(cols),
                        dzt.slice(cols),
                        dkernel.slice_mut(cols),
                        Some(dropped_grad.as_slice_mut().expect("fresh array")),
                        threads,
                    )?;
                    let dh_view = ArrayViewMut2::from_shape((rows, f), &mut *dh_flat)
                        .expect("rows × filters");
                    Zip::from(dh_view)
                        .and(&dropped_grad)
                        .and(&mask)
                        .for_each(|d, &g, &m| *d += g * m);
                }
            }
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
