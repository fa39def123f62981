//! The array moves of the sequence passes: time-major copies, gate blocks, batch slices and
//! per-sample masks over time-major rows.

use ndarray::parallel::prelude::*;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut3, Axis, Zip};

use crate::core::cell::{CellKind, CellSpec};
use crate::core::sequence::Precision;
use crate::core::Float;
use crate::cpu::alloc::overwritten;
use crate::cpu::packed::PackedMatrix;
use crate::error::Result;

/// Rows per rayon job in the element-wise passes over all `time · batch` rows.
pub(super) const ROWS_PER_JOB: usize = 256;

/// The batch rows each task owns in the time loop: at least `MIN_ROWS`, at most one slice per
/// thread of the `threads` the pass has. Row results do not depend on the slicing (each row's
/// products see the same inner dimension in the same order), so neither do the outputs.
pub(super) fn rows_per_task(batch: usize, threads: usize) -> usize {
    const MIN_ROWS: usize = 4;
    let tasks = threads.min(batch.div_ceil(MIN_ROWS)).max(1);
    batch.div_ceil(tasks).max(1)
}

/// Columns of gate `g` in a `gates · units` wide array.
pub(super) fn gate<T>(a: ArrayView2<T>, g: usize, units: usize) -> ArrayView2<T> {
    a.slice_move(s![.., g * units..(g + 1) * units])
}

/// The gate blocks of the recurrent kernel `U`, packed for the per-step products of a batch of
/// `batch` rows: `U_g`, or `U_gᵀ` (`transpose`) for the backward pass. None for IndRNN, whose
/// recurrent weight is a vector applied element-wise.
pub(super) fn pack_gates<T: Float>(
    spec: &CellSpec,
    kernel: ArrayView2<T>,
    transpose: bool,
    precision: Precision,
    batch: usize,
) -> Result<Vec<PackedMatrix<T>>> {
    if spec.kind == CellKind::IndRnn {
        return Ok(Vec::new());
    }
    let units = spec.units;
    (0..kernel.ncols() / units.max(1))
        .map(|g| {
            let block = gate(kernel, g, units);
            let block = if transpose {
                block.reversed_axes()
            } else {
                block
            };
            PackedMatrix::new(block, precision, batch)
        })
        .collect()
}

/// Copies `(batch, time, ·)` into a new time-major array in processing order.
pub(super) fn time_major<T: Float>(
    a: ArrayView3<T>,
    reverse: bool,
    what: &'static str,
) -> Result<Array3<T>> {
    if reverse {
        swap_leading_axes(a.slice(s![.., ..;-1, ..]), what)
    } else {
        swap_leading_axes(a, what)
    }
}

/// A new array with the first two axes of `a` swapped (time-major to batch-major or back).
/// Large copies fill the result's outer rows in parallel.
pub(super) fn swap_leading_axes<T: Float>(
    a: ArrayView3<T>,
    what: &'static str,
) -> Result<Array3<T>> {
    const PARALLEL_FROM: usize = 1 << 16;
    let (p, q, f) = a.dim();
    // SAFETY: the copy below assigns every outer row of `out` in full.
    let mut out = unsafe { overwritten((q, p, f), what)? };
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

/// `out[r] = a[r] ⊙ mask[r % batch]`: a time-major matrix times a per-sample mask.
pub(super) fn masked_rows<T: Float>(a: ArrayView2<T>, mask: ArrayView2<T>, out: &mut Array2<T>) {
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

/// Splits a `(steps, batch, ·)` array into batch slices of `rows`.
pub(super) fn split_rows<T>(a: &mut Array3<T>, rows: usize) -> Vec<ArrayViewMut3<'_, T>> {
    a.axis_chunks_iter_mut(Axis(1), rows).collect()
}

/// [`split_rows`] of an optional buffer: as many `None`s as slices when it is absent.
pub(super) fn split_opt_rows<T>(
    a: Option<&mut Array3<T>>,
    rows: usize,
    batch: usize,
) -> Vec<Option<ArrayViewMut3<'_, T>>> {
    match a {
        Some(a) => split_rows(a, rows).into_iter().map(Some).collect(),
        None => (0..batch.div_ceil(rows).max(1)).map(|_| None).collect(),
    }
}
