//! Matrix products for the hoisted input projection and the post-loop gradients.
//!
//! The products themselves are `matrixmultiply` (through ndarray); what this module adds is the
//! split into independent blocks run by rayon. Each output element is computed by exactly one
//! block with the same inner dimension, so the split does not change any rounding.

use ndarray::linalg::general_mat_mul;
use ndarray::parallel::prelude::*;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::core::Float;

/// Rows of the output per parallel block in row-split products.
const ROW_BLOCK: usize = 256;
/// Columns of the output per parallel block in column-split products.
const COL_BLOCK: usize = 64;

/// `c = a · b + beta · c`, computed serially (the per-step recurrent products).
#[inline]
pub fn gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: &mut ArrayViewMut2<T>) {
    general_mat_mul(T::one(), &a, &b, beta, c);
}

/// Batches up to this many rows use [`small_gemm`] for the per-step products.
pub const SMALL_BATCH: usize = 4;

/// `c = a · b + beta · c` for a few rows of `a`, reading `b` in place.
///
/// matrixmultiply packs all of `b` on every call, which dominates when `a` has one or two rows
/// (streaming inference re-packs the whole recurrent kernel every step). Here each element of
/// `c` is a sum over `k` in order: as axpy updates when `b`'s rows are contiguous, as dot
/// products (eight partial sums, combined in a fixed order) when its columns are.
#[inline(always)]
pub fn small_gemm<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: &mut ArrayViewMut2<T>) {
    let contiguous_c = c.ncols() == 0 || c.strides()[1] == 1;
    if !contiguous_c || (b.strides()[1] != 1 && b.strides()[0] != 1) {
        return gemm(a, b, beta, c);
    }
    for (a_row, mut c_row) in a.rows().into_iter().zip(c.rows_mut()) {
        let c_row = c_row.as_slice_mut().expect("contiguous row");
        if b.ncols() <= 1 || b.strides()[1] == 1 {
            if beta == T::zero() {
                c_row.fill(T::zero());
            } else {
                c_row.iter_mut().for_each(|v| *v *= beta);
            }
            for (k, &a_k) in a_row.iter().enumerate() {
                let b_k = b.row(k);
                let b_k = b_k.as_slice().expect("contiguous row");
                c_row.iter_mut().zip(b_k).for_each(|(c, &b)| *c += a_k * b);
            }
        } else {
            let a_row = a_row.to_vec();
            for (j, c_j) in c_row.iter_mut().enumerate() {
                let b_j = b.column(j);
                let sum = dot(&a_row, b_j.as_slice().expect("contiguous column"));
                *c_j = if beta == T::zero() {
                    sum
                } else {
                    beta * *c_j + sum
                };
            }
        }
    }
}

/// `Σ x[i]·y[i]` with eight partial sums (so it vectorises) combined in a fixed order.
#[inline(always)]
fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let chunks = x.len() / 8 * 8;
    for (xs, ys) in x[..chunks].chunks_exact(8).zip(y[..chunks].chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += xs[l] * ys[l];
        }
    }
    for (i, (&xi, &yi)) in x[chunks..].iter().zip(&y[chunks..]).enumerate() {
        lanes[i] += xi * yi;
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// `c = a · b + beta · c` with the rows of `c` split across threads.
pub fn par_gemm_rows<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    mut c: ArrayViewMut2<T>,
) {
    let a_blocks: Vec<_> = a.axis_chunks_iter(Axis(0), ROW_BLOCK).collect();
    let c_blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(0), ROW_BLOCK).collect();
    a_blocks
        .into_par_iter()
        .zip(c_blocks)
        .for_each(|(a, mut c)| gemm(a, b, beta, &mut c));
}

/// `c = aᵀ · b + beta · c` with the columns of `c` split across threads: the weight gradients,
/// where the inner dimension runs over every time step and batch row.
pub fn par_gemm_tn<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, beta: T, mut c: ArrayViewMut2<T>) {
    let b_blocks: Vec<_> = b.axis_chunks_iter(Axis(1), COL_BLOCK).collect();
    let c_blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(1), COL_BLOCK).collect();
    b_blocks
        .into_par_iter()
        .zip(c_blocks)
        .for_each(|(b, mut c)| gemm(a.t(), b, beta, &mut c));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17) as f64 * seed).sin()
        })
    }

    #[test]
    fn small_products_match_the_general_ones() {
        let a = filled(3, 37, 0.41);
        let row_major = filled(37, 21, 0.13);
        let column_major = filled(21, 37, 0.29).reversed_axes(); // (37, 21), columns contiguous
        for b in [row_major.view(), column_major.view()] {
            for beta in [0.0, 1.0, 0.5] {
                let start = filled(3, 21, 0.7);
                let (mut want, mut got) = (start.clone(), start);
                gemm(a.view(), b, beta, &mut want.view_mut());
                small_gemm(a.view(), b, beta, &mut got.view_mut());
                let err = (&want - &got).iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(
                    err < 1e-12,
                    "strides {:?}, beta {beta}: max error {err}",
                    b.strides()
                );
            }
        }
    }

    #[test]
    fn parallel_products_equal_serial_ones() {
        let a = filled(600, 40, 0.37);
        let b = filled(40, 150, 0.11);
        let mut serial = Array2::zeros((600, 150));
        gemm(a.view(), b.view(), 0.0, &mut serial.view_mut());
        let mut split = Array2::zeros((600, 150));
        par_gemm_rows(a.view(), b.view(), 0.0, split.view_mut());
        assert_eq!(serial, split);

        let g = filled(600, 150, 0.23);
        let mut serial_tn = Array2::zeros((40, 150));
        gemm(a.t(), g.view(), 0.0, &mut serial_tn.view_mut());
        let mut split_tn = Array2::zeros((40, 150));
        par_gemm_tn(a.view(), g.view(), 0.0, split_tn.view_mut());
        assert_eq!(serial_tn, split_tn);
    }
}
