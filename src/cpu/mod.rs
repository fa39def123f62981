//! CPU kernels: GEMMs split across rayon threads and the buffers they fill.
//!
//! Every parallel split here depends only on the problem's shape, never on the number of
//! threads, so results are bit-identical whatever the thread count.

pub mod alloc;
pub mod block_cache;
pub mod gemm;
pub mod packed;

/// A deterministic test matrix with values in [-1, 1].
#[cfg(test)]
fn filled(rows: usize, cols: usize, seed: f64) -> ndarray::Array2<f64> {
    ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17) as f64 * seed).sin()
    })
}
