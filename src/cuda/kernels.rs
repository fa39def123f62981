//! The element-wise kernels (`kernels.cu`), compiled at run time by NVRTC for the GPU at hand.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, DeviceRepr};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

use crate::core::activation::Activation;
use crate::core::cell::CellKind;

/// The CUDA C++ source of every kernel.
pub const SOURCE: &str = include_str!("kernels.cu");

/// An activation's code in the kernels (`ACTIVATION_*` in `kernels.cu`).
pub fn activation_code(a: Activation) -> i32 {
    use Activation as A;
    match a {
        A::Linear => 0,
        A::Tanh => 1,
        A::Sigmoid => 2,
        A::HardSigmoid => 3,
        A::Relu => 4,
        A::Relu6 => 5,
        A::LeakyRelu => 6,
        A::Elu => 7,
        A::Selu => 8,
        A::Softplus => 9,
        A::Softsign => 10,
        A::SoftShrink => 11,
        A::SparsePlus => 12,
        A::Silu => 13,
        A::HardSilu => 14,
        A::Squareplus => 15,
        A::Gelu => 16,
        A::Celu => 17,
        A::Mish => 18,
        A::TanhShrink => 19,
        A::HardTanh => 20,
        A::Exponential => 21,
        A::LogSigmoid => 22,
        A::HardShrink => 23,
        A::SparseSigmoid => 24,
    }
}

/// Compiles [`SOURCE`] to PTX for compute capability `major.minor` (IEEE float math: no fast
/// math, no flush to zero, so the results match the CPU's within rounding). Needs NVRTC only,
/// no GPU. The error carries NVRTC's log.
pub fn compile(major: i32, minor: i32) -> Result<Ptx, String> {
    let options = CompileOptions {
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
        name: Some("rnnkit_kernels.cu".into()),
        ..Default::default()
    };
    compile_ptx_with_opts(SOURCE, options).map_err(|e| format!("{e:?}"))
}

/// The kernels of a loaded module.
pub struct Functions {
    pub simple_forward: CudaFunction,
    pub lstm_forward: CudaFunction,
    pub gru_after_forward: CudaFunction,
    pub gru_before_gates: CudaFunction,
    pub gru_before_output: CudaFunction,
    pub simple_backward: CudaFunction,
    pub lstm_backward: CudaFunction,
    pub gru_after_backward: CudaFunction,
    pub gru_before_backward_gates: CudaFunction,
    pub gru_before_backward_reset: CudaFunction,
    pub swap_leading: CudaFunction,
    pub tile_row: CudaFunction,
    pub fill: CudaFunction,
    pub scale: CudaFunction,
    pub scale_add: CudaFunction,
    pub persistent_forward: CudaFunction,
    pub persistent_backward: CudaFunction,
}

impl Functions {
    /// Looks every kernel up in `module`.
    pub fn load(module: &Arc<CudaModule>) -> Result<Self, String> {
        let f = |name: &str| {
            module
                .load_function(name)
                .map_err(|e| format!("kernel {name}: {e:?}"))
        };
        Ok(Self {
            simple_forward: f("simple_forward")?,
            lstm_forward: f("lstm_forward")?,
            gru_after_forward: f("gru_after_forward")?,
            gru_before_gates: f("gru_before_gates")?,
            gru_before_output: f("gru_before_output")?,
            simple_backward: f("simple_backward")?,
            lstm_backward: f("lstm_backward")?,
            gru_after_backward: f("gru_after_backward")?,
            gru_before_backward_gates: f("gru_before_backward_gates")?,
            gru_before_backward_reset: f("gru_before_backward_reset")?,
            swap_leading: f("swap_leading")?,
            tile_row: f("tile_row")?,
            fill: f("fill")?,
            scale: f("scale")?,
            scale_add: f("scale_add")?,
            persistent_forward: f("persistent_forward")?,
            persistent_backward: f("persistent_backward")?,
        })
    }
}

/// A cell's code in the persistent kernels (`CELL_*` in `kernels.cu`); `None` for GRU with the
/// reset before its product and IndRNN, which they do not run.
pub fn persistent_cell_code(kind: CellKind) -> Option<i32> {
    match kind {
        CellKind::SimpleRnn => Some(0),
        CellKind::Lstm => Some(1),
        CellKind::Gru { reset_after: true } => Some(2),
        CellKind::Gru { reset_after: false } | CellKind::IndRnn => None,
    }
}

/// A device address as a kernel argument (null: 0).
pub type DevicePtr = u64;

/// `struct Step` of `kernels.cu`: what every forward step kernel reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Step {
    pub batch: i32,
    pub units: i32,
    pub mask: DevicePtr,
    pub h_prev: DevicePtr,
    pub h_next: DevicePtr,
    pub ys: DevicePtr,
    pub ys_prev: DevicePtr,
    pub zero_output: i32,
    pub act: i32,
    pub ract: i32,
}

/// `struct BackStep` of `kernels.cu`: what every backward step kernel reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BackStep {
    pub batch: i32,
    pub units: i32,
    pub mask: DevicePtr,
    pub dy: DevicePtr,
    pub dy_stride: i64,
    pub carry: DevicePtr,
    pub dh: DevicePtr,
    pub dh_prev: DevicePtr,
    pub h_prev: DevicePtr,
    pub zero_output: i32,
    pub act: i32,
    pub ract: i32,
}

// SAFETY: both are plain `repr(C)` data laid out as their CUDA counterparts.
unsafe impl DeviceRepr for Step {}
unsafe impl DeviceRepr for BackStep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_codes_match_the_kernels_defines() {
        let mut seen = Vec::new();
        for name in Activation::names() {
            let a = Activation::from_name(name).expect("a listed name");
            let define = format!("#define ACTIVATION_{} ", a.name().to_uppercase());
            let line = SOURCE
                .lines()
                .find(|l| l.starts_with(&define))
                .unwrap_or_else(|| panic!("kernels.cu lacks {define}"));
            let code: i32 = line[define.len()..].trim().parse().expect("a number");
            assert_eq!(code, activation_code(a), "{name}");
            seen.push(code);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn the_kernels_compile_for_hopper() {
        if !crate::cuda::has_nvrtc() {
            // CI puts the nvidia-cuda-nvrtc wheel's folder on the library path (.ci/run): there
            // a missing NVRTC is a failure, not a skip.
            assert!(
                std::env::var_os("CI").is_none(),
                "NVRTC (libnvrtc) is not on the library path"
            );
            eprintln!("skipped: NVRTC (libnvrtc) is not on the library path");
            return;
        }
        let ptx = compile(9, 0).unwrap_or_else(|log| panic!("NVRTC failed:\n{log}"));
        let text = ptx.to_src();
        for name in ["lstm_forward", "gru_before_backward_reset", "swap_leading"] {
            assert!(text.contains(&format!(".entry {name}")), "no kernel {name}");
        }
    }
}
