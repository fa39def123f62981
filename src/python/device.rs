//! Where a call computes: the `device` argument, the one dispatch over float type and engine,
//! and what Python can ask about the GPU.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::cuda::Gpu;

/// The `device` argument of the forward functions.
#[derive(Clone, Copy)]
pub(super) enum Device {
    Cpu,
    Gpu(&'static Gpu),
}

impl Device {
    /// Parses `device` (None or "cpu", "cuda"); "cuda" without a usable GPU is a RuntimeError
    /// saying why.
    pub(super) fn from_name(name: Option<&str>) -> PyResult<Self> {
        match name {
            None | Some("cpu") => Ok(Self::Cpu),
            Some("cuda") => gpu().map(Self::Gpu),
            Some(other) => Err(PyValueError::new_err(format!(
                "device: expected 'cpu' or 'cuda', received '{other}'"
            ))),
        }
    }
}

/// The GPU, or a RuntimeError saying why there is none.
pub(super) fn gpu() -> PyResult<&'static Gpu> {
    crate::cuda::gpu()
        .map_err(|why| PyRuntimeError::new_err(format!("device 'cuda' is not available: {why}")))
}

/// Evaluates `$body` with `$t` naming the float type of `$dtype` and `$engine` bound to the
/// engine `$device` names for it. The GPU kernels are float32 only: float64 computes on the
/// CPU whatever the device.
macro_rules! with_engine {
    ($dtype:expr, $device:expr, |$t:ident, $engine:ident| $body:expr) => {{
        use $crate::python::convert::Dtype;
        use $crate::python::device::Device;
        match ($dtype, $device) {
            (Dtype::F32, Device::Gpu(gpu)) => {
                type $t = f32;
                let $engine = gpu;
                $body
            }
            (Dtype::F32, Device::Cpu) => {
                type $t = f32;
                let $engine = &$crate::Cpu;
                $body
            }
            (Dtype::F64, _) => {
                type $t = f64;
                let $engine = &$crate::Cpu;
                $body
            }
        }
    }};
}
pub(super) use with_engine;

/// `(available, description)`: whether `device="cuda"` works here, with the GPU's name, or why
/// not (no GPU support in this build, CUDA libraries missing, no device...).
#[pyfunction]
pub fn cuda_status() -> (bool, String) {
    match crate::cuda::gpu() {
        Ok(gpu) => (true, gpu.name().to_string()),
        Err(why) => (false, why.to_string()),
    }
}

/// Compiles the GPU kernels with NVRTC for compute capability `major.minor` and returns the
/// PTX's size in bytes; needs NVRTC, not a GPU. A RuntimeError carries NVRTC's log.
#[pyfunction]
pub fn compile_cuda_kernels(major: i32, minor: i32) -> PyResult<usize> {
    crate::cuda::ptx_size(major, minor).map_err(PyRuntimeError::new_err)
}
