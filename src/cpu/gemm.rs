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

use super::packed::product_tn;
use super::team;
use super::{bf16, int8};
use crate::core::sequence::Precision;
use crate::core::Float;
use crate::error::Result;

/// Row-split products give each block at least this many rows.
const MIN_ROWS: usize = 64;
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
/// gradients (see [`par_gemm_tn`]).
///
/// # Errors
/// As [`products`].
pub fn products_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    c: ArrayViewMut2<T>,
    threads: usize,
    precision: Precision,
) -> Result<()> {
    match precision {
        Precision::Full => {
            par_gemm_tn(a, b, beta, c, threads);
            Ok(())
        }
        Precision::Bf16 | Precision::Int8 => {
            products(a.reversed_axes(), b, beta, c, threads, precision)
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

/// `c = aᵀ · b + beta · c` with the columns of `c` split for `threads` threads: the weight gradients,
/// where the inner dimension runs over every time step and batch row.
///
/// One block of columns per thread (whole panels of 16): each block reads (or packs) all of
/// `a` again, so more blocks than threads would only repeat that work. The split does not change the rounding
/// (each element is one product over the whole inner dimension, wherever its column lands).
pub fn par_gemm_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    mut c: ArrayViewMut2<T>,
    threads: usize,
) {
    let blocks = threads.min(b.ncols().div_ceil(PANEL)).max(1);
    let cols = b.ncols().div_ceil(blocks).next_multiple_of(PANEL).max(1);
    if blocks == 1 {
        return gemm_tn(a, b, beta, &mut c);
    }
    let b_blocks: Vec<_> = b.axis_chunks_iter(Axis(1), cols).collect();
    let c_blocks: Vec<_> = c.axis_chunks_iter_mut(Axis(1), cols).collect();
    let blocks: Vec<_> = b_blocks.into_iter().zip(c_blocks).collect();
    team::each(blocks, |(b, mut c)| gemm_tn(a, b, beta, &mut c));
}

/// `c = aᵀ · b + beta · c`, computed serially: by the packed tiles reading `b` in place where
/// they can, else by `matrixmultiply`.
fn gemm_tn<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: &mut ArrayViewMut2<T>) {
    if !(beta == T::zero() && product_tn(a, b, c, false)) {
        gemm(a.t(), b, beta, c);
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

        let g = filled(600, 150, 0.23);
        let mut serial_tn = Array2::zeros((40, 150));
        gemm(a.t(), g.view(), 0.0, &mut serial_tn.view_mut());
        let mut split_tn = Array2::zeros((40, 150));
        par_gemm_tn(a.view(), g.view(), 0.0, split_tn.view_mut(), 2);
        assert_eq!(serial_tn, split_tn);
    }

    #[test]
    fn f32_weight_gradient_products_are_split_without_changing_bits() {
        let a = filled(700, 38, 0.37).mapv(|v| v as f32);
        let g = filled(700, 96, 0.23).mapv(|v| v as f32);
        let mut serial = Array2::zeros((38, 96));
        gemm_tn(a.view(), g.view(), 0.0, &mut serial.view_mut());
        let mut split = Array2::zeros((38, 96));
        par_gemm_tn(a.view(), g.view(), 0.0, split.view_mut(), 2);
        assert_eq!(serial, split);
        let want = a.t().mapv(f64::from).dot(&g.mapv(f64::from));
        let err = (&want - &split.mapv(f64::from))
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        assert!(err < 1e-3, "error {err}");
    }
}
