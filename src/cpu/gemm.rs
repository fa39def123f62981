//! Matrix products for the hoisted input projection and the post-loop gradients (the per-step
//! products are in [`super::packed`]).
//!
//! The products themselves are the `gemm` crate's (its AVX-512 or AVX2 kernels, picked at run
//! time; measured on an AVX-512 Xeon, one thread: 168 GFLOP/s at W3's projection 3200×512×2048
//! against 122 for matrixmultiply's AVX-512 kernel and 166 for OpenBLAS's 2048² sgemm); what this
//! module adds is the split into independent blocks run by the thread team ([`super::team`]).
//! Each output element is computed by exactly one block with the same inner dimension, so the
//! split does not change any rounding.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::packed::{product_tn_sums, tn_tiles_take};
use super::team;
use super::{bf16, int8};
use crate::core::sequence::Precision;
use crate::core::Float;
use crate::error::Result;

/// Row-split products give each block at least this many rows.
const MIN_ROWS: usize = 64;
/// Column blocks of a weight-gradient product the `gemm` crate computes, for any thread count
/// (see [`par_gemm_tn`]): enough for 8 threads.
const GEMM_TN_BLOCKS: usize = 8;
/// Column blocks of column-split products are whole multiples of this (whole panels of the
/// tiles that read `b` in place).
const PANEL: usize = super::packed::NR;

/// `c = a · b + beta · c`, computed serially.
pub fn gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: &mut ArrayViewMut2<T>) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)), "gemm shapes");
    let negative = [a.strides(), b.strides(), c.strides()]
        .iter()
        .any(|s| s.iter().any(|&s| s < 0));
    if negative || k == 0 {
        // Views with reversed axes (never ours on the hot paths), and empty inner dimensions.
        return general_mat_mul(T::one(), &a, &b, beta, c);
    }
    if m == 0 || n == 0 {
        return;
    }
    let (sa, sb) = (a.strides(), b.strides());
    let sc = [c.strides()[0], c.strides()[1]];
    // SAFETY: the shapes were checked above and the strides (in elements, non-negative) are the
    // views' own, so every element `gemm` reads or writes is inside them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            sc[1],
            sc[0],
            beta != T::zero(),
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
            sb[1],
            sb[0],
            beta,
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `c = a · b + beta · c` (`beta` 0 or 1 for bfloat16 and int8 products) in `precision`.
///
/// # Errors
/// Only bfloat16 and int8 products allocate (their rounded operands), and fail when that
/// memory cannot be obtained.
pub fn products<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    c: ArrayViewMut2<T>,
    threads: usize,
    precision: Precision,
) -> Result<()> {
    match precision {
        Precision::Full => par_gemm_rows(a, b, beta, c, threads),
        Precision::Bf16 => {
            assert!(
                beta == T::zero() || beta == T::one(),
                "bfloat16 products add onto c or not"
            );
            let (a, b, c) = (bf16::as_f32(a), bf16::as_f32(b), bf16::as_f32_mut(c));
            let f32_only = "bfloat16 products of f32 only (checked with the input)";
            return bf16::par_gemm(
                a.expect(f32_only),
                b.expect(f32_only),
                beta == T::one(),
                c.expect(f32_only),
                threads,
            );
        }
        Precision::Int8 => {
            assert!(
                beta == T::zero() || beta == T::one(),
                "int8 products add onto c or not"
            );
            let (a, b, c) = (bf16::as_f32(a), bf16::as_f32(b), bf16::as_f32_mut(c));
            let f32_only = "int8 products of f32 only (checked with the input)";
            return int8::par_product(
                a.expect(f32_only),
                b.expect(f32_only),
                beta == T::one(),
                c.expect(f32_only),
                threads,
            );
        }
    }
    Ok(())
}

/// `c = aᵀ · b + beta · c` (`beta` 0 or 1 for bfloat16 products) in `precision`: the weight
/// gradients (see [`par_gemm_tn`]); with `sums`, the sums of `b`'s columns written there too
/// (a bias's gradient, see [`column_sums`]).
///
/// # Errors
/// As [`products`].
pub fn products_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    c: ArrayViewMut2<T>,
    sums: Option<&mut [T]>,
    threads: usize,
    precision: Precision,
) -> Result<()> {
    match precision {
        Precision::Full => {
            par_gemm_tn(a, b, beta, c, sums, threads);
            Ok(())
        }
        Precision::Bf16 | Precision::Int8 => {
            products(a.reversed_axes(), b, beta, c, threads, precision)?;
            if let Some(sums) = sums {
                column_sums(b, sums, threads);
            }
            Ok(())
        }
    }
}

/// Writes the sums of `a`'s columns into `sums`, added in row order as `sum_axis(Axis(0))` adds
/// those of a matrix of two or more columns (the same bits), the columns split for `threads`
/// threads (a column's sum is the same wherever it runs).
pub fn column_sums<T: Float>(a: ArrayView2<T>, sums: &mut [T], threads: usize) {
    let cols = a
        .ncols()
        .div_ceil(threads.max(1))
        .next_multiple_of(16)
        .max(1);
    let blocks: Vec<_> = (a.axis_chunks_iter(Axis(1), cols))
        .zip(sums.chunks_mut(cols))
        .collect();
    team::each(blocks, |(a, out)| serial_column_sums(a, out));
}

/// [`column_sums`] on the calling thread: one plain loop per row (an array operation per row
/// cost as much as the additions for the thousands of short rows of a small model's
/// `(time · batch, width)` gradients).
fn serial_column_sums<T: Float>(a: ArrayView2<T>, sums: &mut [T]) {
    sums.fill(T::zero());
    for row in a.outer_iter() {
        for (sum, &v) in sums.iter_mut().zip(row) {
            *sum += v;
        }
    }
}

/// `c = a · b + beta · c` with the rows of `c` split for `threads` threads (the pass's share).
pub fn par_gemm_rows<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    mut c: ArrayViewMut2<T>,
    threads: usize,
) {
    // One block per thread: equal shares keep both cores busy to the end.
    let blocks = threads.min(a.nrows() / MIN_ROWS).max(1);
    if blocks == 1 {
        return gemm(a, b, beta, &mut c);
    }
    let rows = a.nrows().div_ceil(blocks);
    let a_blocks: Vec<_> = a.axis_chunks_iter(Axis(0), rows).collect();
    let c_blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(0), rows).collect();
    let blocks: Vec<_> = a_blocks.into_iter().zip(c_blocks).collect();
    team::each(blocks, |(a, mut c)| gemm(a, b, beta, &mut c));
}

/// `c = aᵀ · b + beta · c` with the columns of `c` split into blocks run by `threads` threads:
/// the weight gradients, where the inner dimension runs over every time step and batch row;
/// with `sums`, the sums of `b`'s columns too, each block's in the same pass over its columns
/// of `b` (see [`product_tn_sums`]).
///
/// Blocks are whole panels of 16 columns. The packed tiles compute each element as one chain
/// over the inner dimension, wherever its column lands: there, one block per thread, as each
/// block reads all of `a` again. The `gemm` crate's blocking and kernels depend on the shape it
/// is given (at most 64 rows and columns: other depth blocks; at most 256 elements: horizontal
/// sums), so for it the blocks are `GEMM_TN_BLOCKS` (8) whatever the thread count, and the bits do
/// not depend on it.
pub fn par_gemm_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    mut c: ArrayViewMut2<T>,
    sums: Option<&mut [T]>,
    threads: usize,
) {
    let tiles = beta == T::zero() && tn_tiles_take(a, b, c.view());
    let blocks = if tiles { threads } else { GEMM_TN_BLOCKS };
    let blocks = blocks.min(b.ncols().div_ceil(PANEL)).max(1);
    let cols = b.ncols().div_ceil(blocks).next_multiple_of(PANEL).max(1);
    if blocks == 1 {
        gemm_tn(a, b, beta, &mut c, sums);
        return;
    }
    let b_blocks = b.axis_chunks_iter(Axis(1), cols);
    let c_blocks = c.axis_chunks_iter_mut(Axis(1), cols);
    let sum_blocks: Vec<Option<&mut [T]>> = match sums {
        Some(sums) => sums.chunks_mut(cols).map(Some).collect(),
        None => b_blocks.clone().map(|_| None).collect(),
    };
    let blocks: Vec<_> = b_blocks.zip(c_blocks).zip(sum_blocks).collect();
    team::each(blocks, |((b, mut c), sums)| {
        gemm_tn(a, b, beta, &mut c, sums);
    });
}

/// `c = aᵀ · b + beta · c` (and `b`'s column sums into `sums`), computed serially: by the
/// packed tiles reading `b` in place where they can, else by [`gemm`] and a loop.
fn gemm_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
    mut sums: Option<&mut [T]>,
) {
    if beta == T::zero() && product_tn_sums(a, b, c, sums.as_deref_mut(), false) {
        return;
    }
    gemm(a.t(), b, beta, c);
    if let Some(sums) = sums {
        serial_column_sums(b, sums);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::filled;
    use ndarray::Array2;

    #[test]
    fn parallel_products_equal_serial_ones() {
        let a = filled(600, 40, 0.37);
        let b = filled(40, 150, 0.11);
        let mut serial = Array2::zeros((600, 150));
        gemm(a.view(), b.view(), 0.0, &mut serial.view_mut());
        let mut split = Array2::zeros((600, 150));
        par_gemm_rows(a.view(), b.view(), 0.0, split.view_mut(), 2);
        assert_eq!(serial, split);

        // The packing GEMM's weight-gradient blocks are the same for any thread count (and
        // need not round as one product of the whole: see the next tests).
        let g = filled(600, 150, 0.23);
        let mut serial_tn = Array2::zeros((40, 150));
        par_gemm_tn(a.view(), g.view(), 0.0, serial_tn.view_mut(), None, 1);
        let mut split_tn = Array2::zeros((40, 150));
        par_gemm_tn(a.view(), g.view(), 0.0, split_tn.view_mut(), None, 2);
        assert_eq!(serial_tn, split_tn);
        let want = a.t().dot(&g);
        assert!(want
            .iter()
            .zip(&split_tn)
            .all(|(w, s)| (w - s).abs() < 1e-12));
    }

    #[test]
    fn f32_weight_gradient_products_are_split_without_changing_bits() {
        let a = filled(700, 38, 0.37).mapv(|v| v as f32);
        let g = filled(700, 96, 0.23).mapv(|v| v as f32);
        let mut serial = Array2::zeros((38, 96));
        gemm_tn(a.view(), g.view(), 0.0, &mut serial.view_mut(), None);
        let mut split = Array2::zeros((38, 96));
        par_gemm_tn(a.view(), g.view(), 0.0, split.view_mut(), None, 2);
        assert_eq!(serial, split);
        let want = a.t().mapv(f64::from).dot(&g.mapv(f64::from));
        let err = (&want - &split.mapv(f64::from))
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        assert!(err < 1e-3, "error {err}");
    }

    /// Values of many magnitudes, so that a different order of additions would round
    /// differently.
    fn spread(rows: usize, cols: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            let x = ((r * cols + c) as f32 * 0.618_034).sin();
            x * 10f32.powi(((r + c) % 7) as i32 - 3)
        })
    }

    #[test]
    fn column_sums_are_sum_axis_bit_for_bit() {
        let a = spread(1_791, 37);
        for threads in [1, 2, 3] {
            let mut sums = vec![f32::NAN; 37];
            column_sums(a.view(), &mut sums, threads);
            assert_eq!(sums, a.sum_axis(Axis(0)).to_vec());
            let mut sums = vec![f32::NAN; 20];
            column_sums(a.slice(ndarray::s![.., ..20]), &mut sums, threads);
            assert_eq!(
                sums,
                a.slice(ndarray::s![.., ..20]).sum_axis(Axis(0)).to_vec()
            );
        }
    }

    #[test]
    fn weight_gradient_products_sum_the_columns_in_the_same_bits() {
        // Tile rows (`a`'s columns) of 29 and 64, none (sums alone), and a packing GEMM's 130;
        // columns in whole panels (the tiles read `b` in place) and not (`n` = 37).
        for (m, n) in [(29, 256), (64, 96), (0, 48), (130, 64), (5, 37)] {
            let a = spread(1_791, m.max(1))
                .slice_move(ndarray::s![.., ..m])
                .to_owned();
            let g = spread(1_791, n + 3)
                .slice_move(ndarray::s![.., 3..])
                .to_owned();
            let want = g.sum_axis(Axis(0)).to_vec();
            for threads in [1, 2, 3] {
                let mut plain = Array2::zeros((m, n));
                par_gemm_tn(a.view(), g.view(), 0.0, plain.view_mut(), None, threads);
                let mut c = Array2::from_elem((m, n), f32::NAN);
                let mut sums = vec![f32::NAN; n];
                par_gemm_tn(
                    a.view(),
                    g.view(),
                    0.0,
                    c.view_mut(),
                    Some(&mut sums),
                    threads,
                );
                assert_eq!(sums, want, "({m}, {n}), {threads} threads");
                assert_eq!(c, plain, "({m}, {n}), {threads} threads");
            }
        }
    }

    #[test]
    fn weight_gradient_products_round_the_same_on_any_thread_count() {
        // The packing GEMM's shapes: LSTM(7)'s 28 gate columns (horizontal sums when split),
        // 80 columns of 20 rows (other depth blocks at 64 columns or fewer), 130 rows.
        fn check<T: Float + std::fmt::Debug>(m: usize, n: usize) {
            let a = spread(1_791, m).mapv(|v: f32| T::from(v).unwrap());
            let g = spread(1_791, n).mapv(|v: f32| T::from(v).unwrap());
            let mut one = Array2::zeros((m, n));
            par_gemm_tn(a.view(), g.view(), T::zero(), one.view_mut(), None, 1);
            for threads in [2, 3, 4, 8] {
                let mut c = Array2::zeros((m, n));
                par_gemm_tn(a.view(), g.view(), T::zero(), c.view_mut(), None, threads);
                assert_eq!(c, one, "({m}, {n}), {threads} threads");
            }
        }
        for (m, n) in [(7, 28), (28, 28), (20, 80), (130, 64), (10, 40)] {
            check::<f32>(m, n);
            check::<f64>(m, n);
        }
    }
}
