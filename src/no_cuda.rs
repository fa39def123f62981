//! The GPU module's names in a build without the `cuda` feature, so that every caller compiles
//! the same way with or without it: [`gpu`] says there is no GPU, and no [`Gpu`] or
//! [`DeviceSaved`] can exist.

use std::convert::Infallible;

use ndarray::ArrayView2;

use crate::core::cancel::Cancel;
use crate::core::cell::{CellSpec, Weights};
use crate::core::engine::Engine;
use crate::core::sequence::{Forward, Gradients, OutputGrad, SequenceInput, SequenceOptions};
use crate::error::Result;

/// Why a build without the `cuda` feature has no GPU.
const NO_CUDA: &str = "this build of rnnkit has no GPU support (the cuda feature)";

/// A GPU; none exists in this build.
pub struct Gpu(Infallible);

/// A GPU pass's saved activations; none exist in this build.
pub struct DeviceSaved(Infallible);

/// Always why there is no GPU.
pub fn gpu() -> std::result::Result<&'static Gpu, &'static str> {
    Err(NO_CUDA)
}

/// Always why the kernels cannot be compiled.
pub fn ptx_size(_major: i32, _minor: i32) -> std::result::Result<usize, String> {
    Err(NO_CUDA.to_string())
}

impl Gpu {
    /// The device's name.
    pub fn name(&self) -> &str {
        match self.0 {}
    }
}

impl Engine<f32> for Gpu {
    type Saved = DeviceSaved;

    fn forward(
        &self,
        _: &CellSpec,
        _: &Weights<f32>,
        _: &SequenceInput<f32>,
        _: SequenceOptions,
        _: Option<usize>,
    ) -> Result<Forward<f32, DeviceSaved>> {
        match self.0 {}
    }

    fn backward(
        &self,
        _: &DeviceSaved,
        _: OutputGrad<f32>,
        _: &[Option<ArrayView2<f32>>],
        _: bool,
        _: &Cancel,
        _: Option<usize>,
    ) -> Result<Gradients<f32>> {
        match self.0 {}
    }

    fn spec(saved: &DeviceSaved) -> &CellSpec {
        match saved.0 {}
    }

    fn dims(saved: &DeviceSaved) -> (usize, usize, usize, usize) {
        match saved.0 {}
    }
}
