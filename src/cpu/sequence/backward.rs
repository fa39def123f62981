//! Backpropagation through time on the CPU: the time loop on slices of the batch, then the
//! input and weight gradients as single products over all steps.

use ndarray::parallel::prelude::*;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Zip};

use super::layout::{gate, masked_rows, pack_gates, rows_per_task, split_opt_rows, split_rows};
use super::layout::{swap_leading_axes, ROWS_PER_JOB};
use super::steps::with_step;
use super::time_loop::{simd, BackwardChunk, StepContext};
use crate::core::cancel::Cancel;
use crate::core::cell::{CellKind, CellSpec};
use crate::core::sequence::{check_grads, Gradients, OutputGrad, Precision, Saved};
use crate::core::Float;
use crate::cpu::alloc::{check_total, overwritten, zeros};
use crate::cpu::denormals;
use crate::cpu::gemm::{column_sums, products, products_tn};
use crate::cpu::packed::PackedMatrix;
use crate::error::{Error, Result};

/// Backpropagation through time of a [`super::forward`] pass.
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
    let (b, t, f, _) = saved.dims();
    let (u, width) = (spec.units, spec.width());
    let is_gru = matches!(spec.kind, CellKind::Gru { .. });
    // Per (step, row): pre-activation gradients, GRU terms and the input gradient (twice, three
    // times with input dropout).
    let input_copies = if input_gradient {
        2 + usize::from(saved.input_dropout.is_some())
    } else {
        0
    };
    let per_row =
        width * (1 + 2 * usize::from(spec.layer_norm)) + usize::from(is_gru) * u + input_copies * f;
    check_total::<T>(
        per_row.saturating_mul(b).saturating_mul(t),
        "the backward pass",
    )?;

    let mut dpre = match saved.mask {
        // SAFETY: without a mask every step of every row runs its cell's backward row, which
        // writes the row's whole `dpre` (the products and layer normalisation then read and
        // rewrite it); a mask's skipped rows stay zero.
        None => unsafe { overwritten((t, b, width), "pre-activation gradients")? },
        Some(_) => zeros((t, b, width), "pre-activation gradients")?,
    };
    let mut gru = if is_gru {
        Some(zeros((t, b, u), "GRU gradients")?)
    } else {
        None
    };
    let mut dh_steps = match spec.projection {
        Some(p) => Some(zeros((t, b, p), "projected state gradients")?),
        None => None,
    };
    let (mut dh0, mut dc0) = final_state_grads(spec, b, d_final_states)?;
    let mut norm = match spec.layer_norm {
        true => Some(NormBuffers {
            // SAFETY: each backward step writes every row of its step (zeros at masked rows)
            // before the products read it.
            d_recurrent_raw: unsafe { overwritten((t, b, width), "normalisation gradients")? },
            sums: zeros(
                (b, 4 * width + 2 * u * usize::from(spec.has_cell_norm())),
                "normalisation gradients",
            )?,
        }),
        false => None,
    };
    let states = (&mut dh0, dc0.as_mut());
    let buffers = (&mut dpre, gru.as_mut(), dh_steps.as_mut(), norm.as_mut());
    time_loop(saved, d_outputs, buffers, states, cancel, threads)?;

    // The products over all steps: Ctrl-C is looked for between them.
    cancel.check()?;
    let dpre2 = dpre
        .view()
        .into_shape_with_order((t * b, width))
        .expect("contiguous");
    let gru2 = gru.as_ref().map(|g| {
        g.view()
            .into_shape_with_order((t * b, u))
            .expect("contiguous")
    });
    // Under layer normalisation `dpre` has left the loop as the gradient of `x·W` before its
    // normalisation, and the recurrent side's products read the loop's gradient of `h₋₁·U`;
    // the biases' gradients are the rows' sums.
    let norm_sums = norm.as_ref().map(|n| n.sums.sum_axis(Axis(0)));
    let d_input = dpre2;
    let d_recurrent = norm.as_ref().map(|n| {
        (n.d_recurrent_raw.view())
            .into_shape_with_order((t * b, width))
            .expect("contiguous")
    });
    let input = if input_gradient {
        Some(input_gradient_of(saved, d_input, threads)?)
    } else {
        None
    };
    // The bias's first row is the sum of the rows of `dpre` (without layer normalisation),
    // summed in the kernel gradient's pass over them.
    let mut bias = saved.bias.as_ref().map(|b| Array2::zeros(b.raw_dim()));
    let sums = (bias.as_mut())
        .filter(|_| norm_sums.is_none())
        .map(|db| (db.row_mut(0).into_slice()).expect("a row of a new array"));
    let (kernel, recurrent_kernel) =
        weight_grads(saved, (d_input, d_recurrent), gru2, sums, cancel, threads)?;
    if let Some(db) = &mut bias {
        if let Some(sums) = &norm_sums {
            for (i, mut row) in db.outer_iter_mut().enumerate() {
                row.assign(&sums.slice(s![(2 + i) * width..(3 + i) * width]));
            }
        } else if let (2, Some(g)) = (db.nrows(), &gru2) {
            // GRU's recurrent bias: the z and r columns' sums are the first row's.
            let (first, mut second) = db.view_mut().split_at(Axis(0), 1);
            second
                .slice_mut(s![0, ..2 * u])
                .assign(&first.slice(s![0, ..2 * u]));
            let out = second.slice_mut(s![0, 2 * u..]).into_slice();
            column_sums(g.view(), out.expect("a row of a new array"), threads);
        }
    }
    Ok(Gradients {
        input,
        kernel,
        recurrent_kernel,
        bias,
        peephole: saved.peephole.as_ref().map(|_| peephole_grad(saved, dpre2)),
        projection: dh_steps
            .map(|d| projection_grad(saved, &d, threads))
            .transpose()?,
        layer_norm: norm_sums.as_ref().map(|sums| {
            let mut grad = Array2::zeros((2, width));
            grad.row_mut(0).assign(&sums.slice(s![width..2 * width]));
            grad.row_mut(1).assign(&sums.slice(s![..width]));
            grad
        }),
        cell_norm: (norm_sums.as_ref())
            .filter(|_| spec.has_cell_norm())
            .map(|sums| {
                let cell = sums.slice(s![4 * width..]).to_owned();
                cell.into_shape_with_order((2, u)).expect("2 · units sums")
            }),
        initial_states: std::iter::once(dh0).chain(dc0).collect(),
    })
}

/// What the backward time loop fills: the pre-activation gradients, the GRU terms, a projected
/// LSTM's gradients of `h` per step, and the buffers of layer normalisation.
type LoopBuffers<'b, T> = (
    &'b mut Array3<T>,
    Option<&'b mut Array3<T>>,
    Option<&'b mut Array3<T>>,
    Option<&'b mut NormBuffers<T>>,
);

/// The backward pass's buffers under layer normalisation.
struct NormBuffers<T> {
    /// `(time, batch, gates·units)`: the gradient of the recurrent products before their
    /// normalisation.
    d_recurrent_raw: Array3<T>,
    /// `(batch, 4·gates·units [+ 2·units])`: each row's sums over its steps (the bias rows'
    /// from column `2·gates·units` on), see
    /// [`BackwardChunk::norm_grads`].
    sums: Array2<T>,
}

/// The projection's gradient `(units, output units)`: `Σ (o ⊙ act(c))ᵀ · dh` over all steps and
/// rows, `dh_steps` holding the gradient of `h` at each used step.
fn projection_grad<T: Float>(
    saved: &Saved<T>,
    dh_steps: &Array3<T>,
    threads: usize,
) -> Result<Array2<T>> {
    let (b, t, _, out) = saved.dims();
    let u = saved.spec.units;
    let unprojected = saved
        .unprojected
        .as_ref()
        .expect("a projected LSTM keeps o ⊙ act(c)");
    let lhs = (unprojected.view().into_shape_with_order((t * b, u))).expect("contiguous");
    let rhs = (dh_steps.view().into_shape_with_order((t * b, out))).expect("contiguous");
    let mut grad = Array2::zeros((u, out));
    let precision = saved.options.precision;
    products_tn(
        lhs,
        rhs,
        T::zero(),
        grad.view_mut(),
        None,
        threads,
        precision,
    )?;
    Ok(grad)
}

/// The peephole weights' gradients `(3, units)`: `Σ dz_i ⊙ c₋₁`, `Σ dz_f ⊙ c₋₁` and
/// `Σ dz_o ⊙ c̃` over all steps and rows (masked steps have `dz = 0`; `c̃` is the new cell state,
/// before any zoneout).
fn peephole_grad<T: Float>(saved: &Saved<T>, dpre2: ArrayView2<T>) -> Array2<T> {
    let (b, t, _, _) = saved.dims();
    let u = saved.spec.units;
    let cs = saved.cs.as_ref().expect("LSTM has cell states");
    let c_prev = (cs.slice(s![..t, .., ..]).into_shape_with_order((t * b, u))).expect("contiguous");
    // `o` reads the new cell state before its zoneout.
    let c = match &saved.c_candidate {
        Some(a) => a.view(),
        None => cs.slice(s![1.., .., ..]),
    };
    let c = c.into_shape_with_order((t * b, u)).expect("contiguous");
    let mut grad = Array2::zeros((3, u));
    for (row, (g, states)) in [(0, c_prev), (1, c_prev), (3, c)].into_iter().enumerate() {
        let dz = gate(dpre2, g, u);
        grad.row_mut(row).assign(&(&dz * &states).sum_axis(Axis(0)));
    }
    grad
}

/// IndRNN's recurrent vector's gradient `(1, units)`: `Σ dpre ⊙ h₋₁ ⊙ m` over all steps and
/// rows (`m` the recurrent dropout multiplier of the row's sample).
fn diagonal_grad<T: Float>(
    saved: &Saved<T>,
    dpre2: ArrayView2<T>,
    h_prev: ArrayView2<T>,
) -> Array2<T> {
    let b = saved.dims().0;
    let mask = saved
        .recurrent_dropout
        .as_ref()
        .map(|m| m.index_axis(Axis(0), 0));
    let mut grad = Array2::zeros((1, saved.spec.units));
    let mut out = grad.row_mut(0);
    for (r, (d, h)) in dpre2.outer_iter().zip(h_prev.outer_iter()).enumerate() {
        match mask {
            None => Zip::from(&mut out)
                .and(d)
                .and(h)
                .for_each(|o, &d, &h| *o += d * h),
            Some(m) => Zip::from(&mut out)
                .and(d)
                .and(h)
                .and(m.row(r % b))
                .for_each(|o, &d, &h, &m| *o += d * h * m),
        }
    }
    grad
}

/// The gradients of the final states `(dh, dc)` the loop starts from (zeros where none is
/// given); the loop turns them into the initial states'.
fn final_state_grads<T: Float>(
    spec: &CellSpec,
    batch: usize,
    given: &[Option<ArrayView2<T>>],
) -> Result<(Array2<T>, Option<Array2<T>>)> {
    let mut dh = zeros((batch, spec.output_units()), "state gradients")?;
    let mut dc = if spec.kind == CellKind::Lstm {
        Some(zeros((batch, spec.units), "state gradients")?)
    } else {
        None
    };
    if let Some(Some(g)) = given.first() {
        dh.assign(g);
    }
    if let (Some(dc), Some(Some(g))) = (dc.as_mut(), given.get(1)) {
        dc.assign(g);
    }
    Ok((dh, dc))
}

/// The time loop backwards over the saved steps, one task per batch slice: fills the
/// pre-activation gradients `dpre`, the GRU terms, a projected LSTM's gradients of `h` per step,
/// and turns the final states' gradients `(dh, dc)` into the initial states'.
fn time_loop<T: Float>(
    saved: &Saved<T>,
    d_outputs: OutputGrad<T>,
    (dpre, gru, dh_steps, norm): LoopBuffers<'_, T>,
    (dh0, dc0): (&mut Array2<T>, Option<&mut Array2<T>>),
    cancel: &Cancel,
    threads: usize,
) -> Result<()> {
    let spec = &saved.spec;
    let b = dh0.nrows();
    let rows = rows_per_task(b, threads);
    let dh0_chunks: Vec<_> = dh0.axis_chunks_iter_mut(Axis(0), rows).collect();
    let dc0_chunks: Vec<_> = match dc0 {
        Some(a) => a.axis_chunks_iter_mut(Axis(0), rows).map(Some).collect(),
        None => (0..dh0_chunks.len()).map(|_| None).collect(),
    };
    let (d_raw, sums) = match norm {
        Some(n) => (Some(&mut n.d_recurrent_raw), Some(&mut n.sums)),
        None => (None, None),
    };
    let sums: Vec<_> = match sums {
        Some(a) => a.axis_chunks_iter_mut(Axis(0), rows).map(Some).collect(),
        None => (0..dh0_chunks.len()).map(|_| None).collect(),
    };
    let norm_chunks = split_opt_rows(d_raw, rows, b).into_iter().zip(sums);
    let tasks: Vec<_> = split_rows(dpre, rows)
        .into_iter()
        .zip(split_opt_rows(gru, rows, b))
        .zip(dh0_chunks)
        .zip(dc0_chunks)
        .zip(split_opt_rows(dh_steps, rows, b))
        .zip(norm_chunks)
        .enumerate()
        .collect();
    let precision = saved.options.precision;
    let packed = pack_gates(spec, saved.recurrent_kernel.view(), true, precision, b)?;
    let projection = (saved.projection.as_ref())
        .map(|w| PackedMatrix::new(w.t(), precision, b))
        .transpose()?;
    let ctx = StepContext {
        spec,
        packed: &packed,
        input_bias: &[],
        input_kernel: None,
        recurrent_bias: None,
        diagonal: (spec.kind == CellKind::IndRnn).then(|| saved.recurrent_kernel.view()),
        peephole: saved.peephole.as_ref().map(|p| p.view()),
        projection: projection.as_ref(),
        layer_norm: saved.layer_norm.as_ref().map(|p| p.view()),
        cell_norm: saved.cell_norm.as_ref().map(|p| p.view()),
        zoneout: super::forward::zoneout_views(saved.zoneout.as_ref(), spec),
        drawn_zoneout: None,
        mask: saved.mask.as_ref().map(|m| m.view()),
        recurrent_dropout: saved.recurrent_dropout.as_ref().map(|m| m.view()),
        zero_output: saved.options.zero_output_for_mask,
        cancel,
    };
    crate::cpu::team::for_each(
        tasks,
        |(i, (((((dpre, gru), dh0), dc0), dh_steps), norm))| {
            let chunk = BackwardChunk {
                first_row: i * rows,
                dpre,
                gru,
                dh0,
                dc0,
                dh_steps,
                d_recurrent_raw: norm.0,
                norm_grads: norm.1,
            };
            with_step!(spec, saved.keep_gates, cell => simd::backward(&ctx, saved, d_outputs, chunk, cell))
        },
    )
}

/// The gradients of the input and recurrent kernels from the gradients of the input
/// products `dpre2` (the pre-activations', or under layer normalisation those of `x·W` before
/// it), of the recurrent products before their normalisation `d_recurrent` (with layer
/// normalisation) and the GRU terms `gru2`, all `(time · batch, ·)`; with `sums`, the sums of
/// `dpre2`'s columns too, in the kernel gradient's pass over them.
fn weight_grads<T: Float>(
    saved: &Saved<T>,
    (dpre2, d_recurrent): (ArrayView2<T>, Option<ArrayView2<T>>),
    gru2: Option<ArrayView2<T>>,
    sums: Option<&mut [T]>,
    cancel: &Cancel,
    threads: usize,
) -> Result<(Array2<T>, Array2<T>)> {
    let spec = &saved.spec;
    let (b, t, f, out) = saved.dims();
    let (u, width) = (spec.units, spec.width());
    let precision = saved.options.precision;
    let x2 = saved
        .x
        .view()
        .into_shape_with_order((t * b, f))
        .expect("contiguous");
    let h_prev = saved
        .hs
        .slice(s![..t, .., ..])
        .into_shape_with_order((t * b, out))
        .expect("contiguous");

    cancel.check()?;
    let mut kernel = zeros((f, width), "kernel gradient")?;
    let idrop = saved.input_dropout.as_ref().map(|m| m.view());
    let all = 0..spec.gates();
    let kernel_out = (kernel.view_mut(), sums);
    weight_grad(
        x2,
        idrop,
        dpre2,
        all.clone(),
        u,
        kernel_out,
        threads,
        precision,
    )?;

    cancel.check()?;
    if spec.kind == CellKind::IndRnn {
        return Ok((kernel, diagonal_grad(saved, dpre2, h_prev)));
    }
    let mut recurrent = zeros((out, width), "recurrent kernel gradient")?;
    let rdrop = saved.recurrent_dropout.as_ref().map(|m| m.view());
    match (spec.kind, gru2) {
        _ if d_recurrent.is_some() => {
            let d = d_recurrent.expect("checked");
            let out = (recurrent.view_mut(), None);
            weight_grad(h_prev, rdrop, d, all, u, out, threads, precision)?;
        }
        (CellKind::Gru { reset_after }, Some(g)) => {
            let zr = dpre2.slice(s![.., ..2 * u]);
            let out = (recurrent.slice_mut(s![.., ..2 * u]), None);
            weight_grad(h_prev, rdrop, zr, 0..2, u, out, threads, precision)?;
            let out = recurrent.slice_mut(s![.., 2 * u..]);
            if reset_after {
                let out = (out, None);
                weight_grad(h_prev, rdrop, g, 2..3, u, out, threads, precision)?;
            } else {
                // `q` already carries the reset gate and the dropout mask.
                let dz = gate(dpre2, 2, u);
                products_tn(g, dz, T::zero(), out, None, threads, precision)?;
            }
        }
        _ => {
            let out = (recurrent.view_mut(), None);
            weight_grad(h_prev, rdrop, dpre2, all, u, out, threads, precision)?;
        }
    }
    Ok((kernel, recurrent))
}

/// The input's gradient, `(batch, time, features)`, from the pre-activation gradients
/// `dpre2` (`(time * batch, width)`, in processing order), its products split for `threads`.
fn input_gradient_of<T: Float>(
    saved: &Saved<T>,
    dpre2: ArrayView2<T>,
    threads: usize,
) -> Result<Array3<T>> {
    let spec = &saved.spec;
    let (b, t, f, _) = saved.dims();
    let (u, rows_all) = (spec.units, t * b);
    let precision = saved.options.precision;
    let mut dx = zeros((rows_all, f), "input gradients")?;
    match saved.input_dropout.as_ref().map(|m| m.view()) {
        None => products(
            dpre2,
            saved.kernel.t(),
            T::zero(),
            dx.view_mut(),
            threads,
            precision,
        )?,
        Some(masks) if masks.dim().0 == 1 => {
            products(
                dpre2,
                saved.kernel.t(),
                T::zero(),
                dx.view_mut(),
                threads,
                precision,
            )?;
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
                products(
                    gate(dpre2, g, u),
                    gate(saved.kernel.view(), g, u).t(),
                    T::zero(),
                    scratch.view_mut(),
                    threads,
                    precision,
                )?;
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
                            .for_each(|d, &v, &m| *d += v * m);
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
/// time-major rows, split for `threads`; one product when there are no masks. With `sums`,
/// `grad`'s column sums go there too (see [`products_tn`]).
#[allow(clippy::too_many_arguments)]
fn weight_grad<T: Float>(
    lhs: ArrayView2<T>,
    masks: Option<ArrayView3<T>>,
    grad: ArrayView2<T>,
    gates: std::ops::Range<usize>,
    units: usize,
    (mut out, mut sums): (ArrayViewMut2<T>, Option<&mut [T]>),
    threads: usize,
    precision: Precision,
) -> Result<()> {
    match masks {
        None => products_tn(lhs, grad, T::zero(), out, sums, threads, precision)?,
        Some(masks) if masks.dim().0 == 1 => {
            let mut masked = zeros(lhs.raw_dim(), "masked inputs")?;
            masked_rows(lhs, masks.index_axis(Axis(0), 0), &mut masked);
            products_tn(
                masked.view(),
                grad,
                T::zero(),
                out,
                sums,
                threads,
                precision,
            )?;
        }
        Some(masks) => {
            let mut masked = zeros(lhs.raw_dim(), "masked inputs")?;
            for (i, g) in gates.enumerate() {
                masked_rows(lhs, masks.index_axis(Axis(0), g), &mut masked);
                let cols = i * units..(i + 1) * units;
                products_tn(
                    masked.view(),
                    grad.slice(s![.., cols.clone()]),
                    T::zero(),
                    out.slice_mut(s![.., cols.clone()]),
                    sums.as_deref_mut().map(|s| &mut s[cols]),
                    threads,
                    precision,
                )?;
            }
        }
    }
    Ok(())
}
