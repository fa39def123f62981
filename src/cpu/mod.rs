//! CPU kernels: GEMMs split across rayon threads and the buffers they fill.
//!
//! Every parallel split here depends only on the problem's shape, never on the number of
//! threads, so results are bit-identical whatever the thread count.

pub mod alloc;
pub mod block_cache;
pub mod gemm;
pub mod packed;
