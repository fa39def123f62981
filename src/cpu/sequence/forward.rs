//! The forward pass on the CPU: the input projection of every step as one product, then the
//! time loop on slices of the batch.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut3, Axis};

use super::layout::{gate, masked_rows, pack_gates, rows_per_task, split_opt_rows, split_rows};
use super::layout::{swap_leading_axes, time_major};
use super::steps::with_step;
use super::time_loop::{simd, DrawnZoneout, ForwardChunk, StepContext, ZoneoutRows};
use crate::core::cell::{CellKind, CellSpec, Weights};
use crate::core::sequence::{check_input, shared_or_per_gate, Forward, KeptZoneout, Saved};
use crate::core::sequence::{Precision, SequenceInput, SequenceOptions, Zoneout};
use crate::core::Float;
use crate::cpu::alloc::{check_total, overwritten, zeros};
use crate::cpu::denormals;
use crate::cpu::gemm::products;
use crate::cpu::packed::{fast_tile, PackedMatrix};
use crate::error::Result;

/// Rows of the input projection between two looks at the cancel flag.
const PROJECTION_ROWS: usize = 1 << 16;
/// The largest input kernel the time loop's steps project with (see [`per_step_projection`]).
const PER_STEP_KERNEL_BYTES: usize = 64 << 10;
/// The most input features whose steps project their own inputs: the `gemm` crate splits the
/// depth of a product into blocks of at least 512 (`gemm_common::cache::kernel_params`), so up
/// to this depth its hoisted product is one chain of multiply-adds per element, the chain the
/// tiles compute, and the choice between the two (which depends on the rows per thread) never
/// changes a bit.
const PER_STEP_MAX_FEATURES: usize = 512;
/// The fewest rows per batch slice whose steps project their own inputs: at a batch of one
/// (LSTM(64), 28 features, 100 steps) each step's call of the tiles cost more than the one
/// product of every step (109 against 92 us).
const PER_STEP_MIN_ROWS: usize = 8;

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
    check_input(spec, weights, input, options)?;
    let _flush = denormals::flush();
    // The input kernel in row-major order (a copy only when it is not): the products' blocking,
    // and so their rounding, then do not depend on how the caller laid it out. The time loop
    // reads IndRNN's recurrent vector and the peepholes as contiguous rows.
    let kernel = weights.kernel.as_standard_layout();
    let recurrent_kernel = weights.recurrent_kernel.as_standard_layout();
    let peephole = weights.peephole.as_ref().map(|p| p.as_standard_layout());
    let layer_norm = weights.layer_norm.as_ref().map(|p| p.as_standard_layout());
    let cell_norm = weights.cell_norm.as_ref().map(|p| p.as_standard_layout());
    let weights = &Weights {
        kernel: kernel.view(),
        recurrent_kernel: recurrent_kernel.view(),
        bias: weights.bias,
        peephole: peephole.as_ref().map(|p| p.view()),
        projection: weights.projection,
        layer_norm: layer_norm.as_ref().map(|p| p.view()),
        cell_norm: cell_norm.as_ref().map(|p| p.view()),
    };
    let mut saved = start(spec, weights, input, options)?;
    // Without a mask every step's output is its hidden state: only a mask needs its own buffer
    // (masked steps repeat the previous output, or zeros, while the state carries on).
    let (b, t, _) = input.x.dim();
    let mut ys = match saved.mask {
        Some(_) => Some(zeros((t, b, spec.output_units()), "outputs")?),
        None => None,
    };
    let step_kernel = per_step_projection(spec, weights, &saved, threads)?;
    if step_kernel.is_none() {
        // In chunks of steps, so that Ctrl-C also stops a very long sequence before its loop.
        let chunk_steps = (PROJECTION_ROWS / b.max(1)).max(1);
        // The product is written, not added (the buffer starts unwritten): the time loop adds
        // the bias, or under layer normalisation (the product then lands apart) normalises it
        // onto it.
        let target = saved.input_raw.as_mut().unwrap_or(&mut saved.pre);
        for (x, pre) in (saved.x.axis_chunks_iter(Axis(0), chunk_steps))
            .zip(target.axis_chunks_iter_mut(Axis(0), chunk_steps))
        {
            input.cancel.check()?;
            let dropout = saved.input_dropout.as_ref().map(|m| m.view());
            project_inputs(spec, weights, x, dropout, pre, threads, options.precision)?;
        }
    }
    time_loop(
        &mut saved,
        ys.as_mut(),
        weights,
        input,
        step_kernel.as_ref(),
        threads,
    )?;

    let final_states = std::iter::once(&saved.hs)
        .chain(saved.cs.as_ref())
        .map(|a| a.index_axis(Axis(0), t).to_owned())
        .collect();
    let per_step = match &ys {
        Some(ys) => ys.view(),
        None => saved.hs.slice(s![1.., .., ..]),
    };
    let kept = if options.last_output_only {
        t.saturating_sub(1)..t
    } else {
        0..t
    };
    let outputs = swap_leading_axes(per_step.slice(s![kept, .., ..]), "outputs")?;
    Ok(Forward {
        outputs,
        final_states,
        saved,
    })
}

/// The pass's time-major buffers before any step: the input and masks in processing order,
/// the initial states, room for the pre-activations and the later states, and the backward
/// pass's copies of the weights (none for inference).
fn start<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
    options: SequenceOptions,
) -> Result<Saved<T>> {
    let (b, t, f) = input.x.dim();
    let (u, width, out) = (spec.units, spec.width(), spec.output_units());
    let reset_after = spec.kind == (CellKind::Gru { reset_after: true });
    // Per (step, row): the input copy, pre-activations, states, per-step outputs and result.
    let buffers = spec.state_count() + usize::from(reset_after || spec.projection.is_some());
    let norm = usize::from(spec.layer_norm);
    let per_row = f + (width * 2 + 4) * norm + width + u * buffers + out * 2;
    check_total::<T>(
        per_row.saturating_mul(b).saturating_mul(t),
        "the forward pass",
    )?;
    let reverse = options.go_backwards;
    let mask = input.mask.map(|m| {
        let mut out = Array2::from_elem((t, b), true);
        for (s, mut row) in out.outer_iter_mut().enumerate() {
            row.assign(&m.column(if reverse { t - 1 - s } else { s }));
        }
        out
    });
    // SAFETY: the first step of each is written here, and every step of the loop writes every
    // row of the next (masked rows too) before anything reads it.
    let mut hs = unsafe { overwritten((t + 1, b, out), "hidden states")? };
    let mut cs = match spec.kind {
        CellKind::Lstm => Some(unsafe { overwritten((t + 1, b, u), "cell states")? }),
        _ => None,
    };
    for (i, states) in std::iter::once(&mut hs).chain(cs.as_mut()).enumerate() {
        let mut first = states.index_axis_mut(Axis(0), 0);
        match &input.initial_states {
            Some(given) => first.assign(&given[i]),
            None => first.fill(T::zero()),
        }
    }
    // Row-major copies: the time loop reads the multipliers as contiguous rows.
    let standard = |m: ArrayView3<T>| m.as_standard_layout().into_owned();
    let keep_gates = matches!(spec.kind, CellKind::Lstm) || reset_after;
    Ok(Saved {
        spec: *spec,
        options,
        kernel: backward_copy(weights.kernel, options.inference),
        recurrent_kernel: backward_copy(weights.recurrent_kernel, options.inference),
        bias: weights.bias.map(|b| backward_copy(b, options.inference)),
        peephole: weights
            .peephole
            .map(|p| backward_copy(p, options.inference)),
        projection: (weights.projection).map(|p| backward_copy(p, options.inference)),
        x: time_major(input.x, reverse, "input")?,
        mask,
        input_dropout: input.input_dropout.map(|m| standard(shared_or_per_gate(m))),
        recurrent_dropout: input.recurrent_dropout.map(standard),
        // Time-major, as the steps read them: a step's rows are then adjacent in memory.
        zoneout: match &input.zoneout {
            Some(Zoneout::Weights(z)) => Some(KeptZoneout::Weights(
                (z.iter())
                    .map(|m| time_major(m.view(), reverse, "zoneout weights"))
                    .collect::<Result<_>>()?,
            )),
            // SAFETY: the forward loop draws every element (each step's rows, masked ones
            // too) before anything reads it.
            Some(Zoneout::Drawn { .. }) => Some(KeptZoneout::Weights(
                (0..spec.state_count())
                    .map(|i| unsafe { overwritten((t, b, spec.state_units(i)), "zoneout masks") })
                    .collect::<Result<_>>()?,
            )),
            Some(Zoneout::Expectation { rate }) => {
                Some(KeptZoneout::Rate(vec![T::lit(*rate); u.max(out)]))
            }
            None => None,
        },
        // SAFETY: the input projection writes every element (under layer normalisation the
        // time loop writes every row of each step) before the time loop reads it.
        pre: unsafe { overwritten((t, b, width), "pre-activations")? },
        keep_gates: keep_gates && spec.has_default_activations(),
        hs,
        cs,
        rec_h: match reset_after {
            true => Some(zeros((t, b, u), "GRU terms")?),
            false => None,
        },
        unprojected: match spec.projection {
            Some(_) => Some(zeros((t, b, u), "unprojected states")?),
            None => None,
        },
        // SAFETY: each step writes every row of its `c_candidate` (masked rows too).
        c_candidate: match (&input.zoneout, spec.kind) {
            (Some(_), CellKind::Lstm) if !options.inference => {
                Some(unsafe { overwritten((t, b, u), "c candidates")? })
            }
            _ => None,
        },
        layer_norm: (weights.layer_norm).map(|w| backward_copy(w, options.inference)),
        cell_norm: (weights.cell_norm).map(|w| backward_copy(w, options.inference)),
        // SAFETY: the input projection writes every element of `input_raw` and each
        // step's recurrent products every row of that step's `recurrent_raw` (masked rows too),
        // before the time loop reads them.
        input_raw: match spec.layer_norm {
            true => Some(unsafe { overwritten((t, b, width), "input products")? }),
            false => None,
        },
        recurrent_raw: match spec.layer_norm {
            true => Some(unsafe { overwritten((t, b, width), "recurrent products")? }),
            false => None,
        },
        // SAFETY: each step's normalisations write every row's moments (masked rows too) before
        // the backward pass reads them.
        norm_moments: match spec.layer_norm {
            true => Some(unsafe { overwritten((t, b, 4), "normalisation moments")? }),
            false => None,
        },
    })
}

/// The input kernel `W` packed for the time loop's steps to project their own inputs, or None
/// where the whole sequence's projection comes first, in one product.
///
/// Each step's `x·W` then lands in the pre-activations just before its recurrent product reads
/// them, on the core that runs the step, where the hoisted product's `time · batch` rows went
/// out to memory and back (W2's shape, LSTM(64) on a batch of 64: 1.8 MB) and kept the time
/// loop waiting for its slowest block. The packed tiles compute each element as the same chain
/// of multiply-adds over the inputs as the `gemm` crate's kernels do (tested), so the bits are
/// those of the hoisted product. Only for plain full-precision products on the fast tiles, and
/// a small `W` (a large one streamed every step would cost more than the product saves).
fn per_step_projection<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    saved: &Saved<T>,
    threads: usize,
) -> Result<Option<PackedMatrix<T>>> {
    let (_, b, f) = saved.x.dim();
    let bytes = (f * spec.width()).saturating_mul(size_of::<T>());
    let plain = saved.options.precision == Precision::Full
        && saved.input_dropout.is_none()
        && saved.input_raw.is_none()
        && fast_tile::<T>();
    let rows = rows_per_task(b, threads);
    if !plain
        || bytes > PER_STEP_KERNEL_BYTES
        || f > PER_STEP_MAX_FEATURES
        || rows < PER_STEP_MIN_ROWS
    {
        return Ok(None);
    }
    PackedMatrix::new(weights.kernel, Precision::Full, rows).map(Some)
}

/// The time loop over the buffers of `saved` (and the per-step outputs `ys` under a mask), one
/// task per batch slice; with `input_kernel`, each step projects its inputs first (see
/// [`per_step_projection`]).
fn time_loop<T: Float>(
    saved: &mut Saved<T>,
    ys: Option<&mut Array3<T>>,
    weights: &Weights<T>,
    input: &SequenceInput<T>,
    input_kernel: Option<&PackedMatrix<T>>,
    threads: usize,
) -> Result<()> {
    let spec = saved.spec;
    let (steps, b, _) = saved.x.dim();
    let rows = rows_per_task(b, threads);
    let x = input_kernel.map(|_| saved.x.view());
    let mut pre = split_rows(&mut saved.pre, rows).into_iter();
    let mut hs = split_rows(&mut saved.hs, rows).into_iter();
    let mut cs = split_opt_rows(saved.cs.as_mut(), rows, b).into_iter();
    let mut rec_h = split_opt_rows(saved.rec_h.as_mut(), rows, b).into_iter();
    let mut ys = split_opt_rows(ys, rows, b).into_iter();
    let mut unprojected = split_opt_rows(saved.unprojected.as_mut(), rows, b).into_iter();
    let mut c_candidate = split_opt_rows(saved.c_candidate.as_mut(), rows, b).into_iter();
    let mut recurrent_raw = split_opt_rows(saved.recurrent_raw.as_mut(), rows, b).into_iter();
    let mut norm_moments = split_opt_rows(saved.norm_moments.as_mut(), rows, b).into_iter();
    let input_raw = saved.input_raw.as_ref();
    // Drawn zoneout masks are written by the loop, slice by slice; given weights only read.
    let drawn = match &input.zoneout {
        Some(Zoneout::Drawn { rate, seeds }) => Some(DrawnZoneout::new(
            *rate,
            seeds,
            (steps, b),
            saved.options.go_backwards,
        )?),
        _ => None,
    };
    let (mut drawn_masks, given) = match drawn {
        Some(_) => match saved.zoneout.as_mut() {
            Some(KeptZoneout::Weights(z)) => (Some(z.iter_mut()), None),
            _ => (None, None),
        },
        None => (None, saved.zoneout.as_ref()),
    };
    let mut zoneout_h =
        split_opt_rows(drawn_masks.as_mut().and_then(Iterator::next), rows, b).into_iter();
    let mut zoneout_c =
        split_opt_rows(drawn_masks.as_mut().and_then(Iterator::next), rows, b).into_iter();
    let chunks: Vec<_> = (0..pre.len())
        .map(|i| ForwardChunk {
            first_row: i * rows,
            x: x.map(|x| x.slice_move(s![.., i * rows..((i + 1) * rows).min(b), ..])),
            pre: pre.next().expect("one slice per task"),
            hs: hs.next().expect("one slice per task"),
            cs: cs.next().flatten(),
            rec_h: rec_h.next().flatten(),
            ys: ys.next().flatten(),
            unprojected: unprojected.next().flatten(),
            c_candidate: c_candidate.next().flatten(),
            input_raw: input_raw.map(|a| a.slice(s![.., i * rows..((i + 1) * rows).min(b), ..])),
            recurrent_raw: recurrent_raw.next().flatten(),
            norm_moments: norm_moments.next().flatten(),
            zoneout: [zoneout_h.next().flatten(), zoneout_c.next().flatten()],
        })
        .collect();
    let precision = saved.options.precision;
    let input_bias = match weights.bias {
        Some(bias) => bias.row(0).to_vec(),
        None => vec![T::zero(); spec.width()],
    };
    // One product of all gates per step where the steps take them all at once, the same
    // multiply-add chains as gate by gate (so the same bits) in one call of the tiles.
    let whole = precision == Precision::Full
        && saved.recurrent_dropout.is_none()
        && matches!(
            spec.kind,
            CellKind::Lstm | CellKind::SimpleRnn | CellKind::Gru { reset_after: true }
        );
    let packed = match whole {
        true => vec![PackedMatrix::new(weights.recurrent_kernel, precision, b)?],
        false => pack_gates(&spec, weights.recurrent_kernel, false, precision, b)?,
    };
    let projection = (weights.projection)
        .map(|w| PackedMatrix::new(w, precision, b))
        .transpose()?;
    let ctx = StepContext {
        spec: &spec,
        packed: &packed,
        input_bias: &input_bias,
        input_kernel,
        recurrent_bias: (weights.bias)
            .filter(|b| b.nrows() == 2)
            .map(|b| b.index_axis_move(Axis(0), 1)),
        diagonal: (spec.kind == CellKind::IndRnn).then_some(weights.recurrent_kernel),
        peephole: weights.peephole,
        projection: projection.as_ref(),
        layer_norm: weights.layer_norm,
        cell_norm: weights.cell_norm,
        zoneout: zoneout_views(given, &spec),
        drawn_zoneout: drawn,
        mask: saved.mask.as_ref().map(|m| m.view()),
        recurrent_dropout: saved.recurrent_dropout.as_ref().map(|m| m.view()),
        zero_output: saved.options.zero_output_for_mask,
        cancel: &input.cancel,
    };
    let keep_gates = saved.keep_gates;
    crate::cpu::team::for_each(
        chunks,
        |chunk| with_step!(spec, keep_gates, cell => simd::forward(&ctx, chunk, cell)),
    )
}

/// The zoneout weights of `h` and (LSTM) `c` of a `spec` pass as the time loops read them.
pub(super) fn zoneout_views<'a, T>(
    zoneout: Option<&'a KeptZoneout<T>>,
    spec: &CellSpec,
) -> [Option<ZoneoutRows<'a, T>>; 2] {
    let rows = |i: usize| match zoneout? {
        KeptZoneout::Weights(w) => Some(ZoneoutRows::new(w.get(i)?)),
        KeptZoneout::Rate(rate) => {
            (i < spec.state_count()).then(|| ZoneoutRows::shared(&rate[..spec.state_units(i)]))
        }
    };
    [rows(0), rows(1)]
}

/// A copy of `a` for the backward pass, or an empty array when none follows.
fn backward_copy<T: Float>(a: ArrayView2<T>, inference: bool) -> Array2<T> {
    if inference {
        Array2::zeros((0, 0))
    } else {
        a.to_owned()
    }
}

/// The input projection of every step at once: `pre = (x ⊙ m_g)·W_g` into a buffer not yet
/// written, one product over all `time · batch` rows (one per gate when input dropout gives each
/// gate its own mask), split for `threads` threads.
fn project_inputs<T: Float>(
    spec: &CellSpec,
    weights: &Weights<T>,
    x: ArrayView3<T>,
    dropout: Option<ArrayView3<T>>,
    pre: ArrayViewMut3<T>,
    threads: usize,
    precision: Precision,
) -> Result<()> {
    let (t, b, f) = x.dim();
    let x2 = x
        .into_shape_with_order((t * b, f))
        .expect("x is contiguous");
    let mut pre2 = pre
        .into_shape_with_order((t * b, spec.width()))
        .expect("pre is contiguous");
    match dropout {
        None => products(
            x2,
            weights.kernel,
            T::zero(),
            pre2.view_mut(),
            threads,
            precision,
        )?,
        Some(masks) if masks.dim().0 == 1 => {
            let mut xm = Array2::zeros((t * b, f));
            masked_rows(x2, masks.index_axis(Axis(0), 0), &mut xm);
            products(
                xm.view(),
                weights.kernel,
                T::zero(),
                pre2.view_mut(),
                threads,
                precision,
            )?;
        }
        Some(masks) => {
            let mut xm = Array2::zeros((t * b, f));
            for g in 0..spec.gates() {
                masked_rows(x2, masks.index_axis(Axis(0), g), &mut xm);
                let cols = g * spec.units..(g + 1) * spec.units;
                products(
                    xm.view(),
                    gate(weights.kernel, g, spec.units),
                    T::zero(),
                    pre2.slice_mut(s![.., cols]),
                    threads,
                    precision,
                )?;
            }
        }
    }
    Ok(())
}
