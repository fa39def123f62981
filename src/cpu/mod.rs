//! The CPU engine ([`Cpu`]): the sequence passes' time loops, register tiles and GEMMs, the
//! thread team that runs their parallel splits, and the buffers they fill.
//!
//! Every parallel split here depends only on the problem's shape, never on the number of
//! threads, so results are bit-identical whatever the thread count.

pub mod alloc;
mod amx;
pub mod bf16;
pub mod block_cache;
pub mod conv;
pub mod conv_lstm;
pub mod denormals;
mod engine;
pub mod gemm;
pub mod int8;
pub mod packed;
pub mod pool;
pub mod sequence;
pub mod shifted_conv;
pub mod team;

pub use engine::Cpu;

/// Whether the CPU has AVX2 and FMA, which the fast kernels need (checked at run time; the
/// answer is cached by the standard library).
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Whether the CPU has the AVX-512 subsets the time loops are compiled for (F, VL, DQ, BW:
/// every AVX-512 CPU since Skylake-SP), besides AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    has_avx2_fma()
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512bw")
}

/// Whether `mul_add` is one instruction in the fast loops: x86-64 with AVX2 and FMA (those
/// loops are compiled for both), or an ARM64 CPU, which always has fused multiply-add.
pub fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return has_avx2_fma();
    #[cfg(not(target_arch = "x86_64"))]
    return cfg!(target_arch = "aarch64");
}

/// A deterministic test matrix with values in [-1, 1].
#[cfg(test)]
fn filled(rows: usize, cols: usize, seed: f64) -> ndarray::Array2<f64> {
    ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17) as f64 * seed).sin()
    })
}
