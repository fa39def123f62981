//! The pure-Rust core: cells, the sequence loop with masking and dropout, backpropagation
//! through time, and Bidirectional. No Python here.

pub mod activation;
pub mod bidirectional;
pub mod cell;
pub mod sequence;

use std::fmt::Debug;

/// The element types the kernels are generic over: `f32` and `f64`.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + Debug
    + Default
    + 'static
{
    /// The error function, which `num_traits::Float` lacks (GELU needs it).
    fn erf(self) -> Self;

    /// Converts an `f64` constant into this type.
    fn lit(value: f64) -> Self {
        Self::from_f64(value).expect("f64 constants convert to every Float")
    }
}

impl Float for f32 {
    fn erf(self) -> Self {
        libm::erff(self)
    }
}

impl Float for f64 {
    fn erf(self) -> Self {
        libm::erf(self)
    }
}
