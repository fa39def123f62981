//! One direction's forward and backward passes on the GPU: the steps of the CPU loops
//! (`core/sequence.rs`). Where most of the recurrent kernel fits in a block's shared memory the
//! whole time loop is one persistent launch; otherwise each step is one cuBLAS product (two for
//! GRU without `reset_after`) and one element-wise kernel for the whole batch. The input
//! projection, the input gradient and the weight gradients are single products over all
//! `time · batch` rows.

use std::borrow::Cow;
use std::ops::Range;

use cudarc::driver::CudaSlice;
use ndarray::{Array2, Array3, ArrayView, ArrayView2, Dimension};

use super::kernels::{activation_code, persistent_cell_code, BackStep, Step};
use super::{ptr, Gpu, Lane};
use crate::core::cancel::Cancel;
use crate::core::cell::{CellKind, CellSpec, Weights};
use crate::core::engine::Engine;
use crate::core::sequence::{
    check_grads, check_input, shared_or_per_gate, Forward, Gradients, OutputGrad, Precision,
    SequenceInput, SequenceOptions, Zoneout,
};
use crate::error::{Error, Result};

/// What a GPU forward pass keeps on the device for its backward pass (the layout of the CPU's
/// `Saved`, with the pre-activations always as such, never as gate values).
pub struct DeviceSaved {
    spec: CellSpec,
    options: SequenceOptions,
    /// `(batch, time, features)`.
    dims: (usize, usize, usize),
    kernel: CudaSlice<f32>,
    recurrent_kernel: CudaSlice<f32>,
    /// `(rows, gates·units)`.
    bias: Option<CudaSlice<f32>>,
    /// `(time, batch, features)`, processing order.
    x: CudaSlice<f32>,
    /// `(time, batch)` bytes, processing order.
    mask: Option<CudaSlice<u8>>,
    /// `(count, batch, features)`: one mask for every gate (count 1) or one per gate.
    input_dropout: Option<(CudaSlice<f32>, usize)>,
    /// `(gates, batch, units)`.
    recurrent_dropout: Option<CudaSlice<f32>>,
    /// `(time, batch, gates·units)` pre-activations.
    pre: CudaSlice<f32>,
    /// `(time + 1, batch, units)`.
    hs: CudaSlice<f32>,
    cs: Option<CudaSlice<f32>>,
    /// `(time, batch, units)`: GRU `reset_after`'s recurrent h-gate term.
    rec_h: Option<CudaSlice<f32>>,
}

/// The address of element `index` of a float buffer at `base`.
fn at(base: u64, index: usize) -> u64 {
    base + (index * std::mem::size_of::<f32>()) as u64
}

/// The address of an optional buffer; null (0) without one.
fn opt_ptr<T>(buffer: &Option<CudaSlice<T>>) -> u64 {
    buffer.as_ref().map_or(0, ptr)
}

/// `a`'s elements in row-major order, borrowed when already so.
fn row_major<'a, D: Dimension>(a: &'a ArrayView<'_, f32, D>) -> Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// Refuses the cells the GPU kernels do not run yet (IndRNN, LSTM peepholes and projection,
/// layer normalisation): they run on the CPU (`device="cpu"`), never as another cell here.
pub fn check_supported(spec: &CellSpec) -> Result<()> {
    let variant = match spec.kind {
        CellKind::IndRnn => "IndRNN",
        CellKind::Lstm if spec.peephole => "an LSTM with peepholes",
        CellKind::Lstm if spec.projection.is_some() => "an LSTM with a projection",
        _ if spec.layer_norm => "a cell with layer_norm",
        _ => return Ok(()),
    };
    Err(crate::error::Error::Value {
        argument: "spec".into(),
        expected:
            "a cell the GPU kernels run (SimpleRNN, GRU, LSTM without peepholes, projection or layer_norm)"
                .into(),
        received: format!("{variant}, which runs on the CPU only: use device=\"cpu\""),
    })
}

/// A dimension as the kernels' `int` ([`check_dims`] keeps them in range).
fn int(v: usize) -> i32 {
    i32::try_from(v).expect("dimensions checked by check_dims")
}

/// The kernels index rows and units with 32-bit integers (and cuBLAS its dimensions): refuses
/// a pass whose dimensions or `time · batch` rows reach 2^31.
fn check_dims(b: usize, t: usize, f: usize, width: usize) -> Result<()> {
    let largest = [b, t, f, width, t.saturating_mul(b)]
        .into_iter()
        .max()
        .unwrap_or(0);
    if i32::try_from(largest).is_err() {
        return Err(crate::error::Error::Value {
            argument: "x".into(),
            expected: "dimensions and time × batch below 2^31 on the GPU".into(),
            received: format!("a dimension of {largest}"),
        });
    }
    Ok(())
}

impl Lane {
    /// The recurrent products of `gates` for one step: `out[:, g] = (h ⊙ m_g)·U_g + beta·out[:, g]`,
    /// one product without recurrent dropout.
    #[allow(clippy::too_many_arguments)] // the product's operands
    fn recurrent_product(
        &self,
        gpu: &Gpu,
        saved: &DeviceSaved,
        h: u64,
        gates: Range<usize>,
        scratch: u64,
        out: u64,
        beta: f32,
    ) -> Result<()> {
        let (b, u, width) = (saved.dims.0, saved.spec.units, saved.spec.width());
        let rk = ptr(&saved.recurrent_kernel);
        match &saved.recurrent_dropout {
            None => self.gemm(
                (false, false),
                (b, gates.len() * u, u),
                (h, u),
                (at(rk, gates.start * u), width),
                beta,
                (at(out, gates.start * u), width),
            ),
            Some(m) => gates.into_iter().try_for_each(|g| {
                let n = (b * u) as i64;
                let mg = at(ptr(m), g * b * u);
                self.launch(&gpu.functions.scale, b * u, &[&n, &n, &h, &mg, &scratch])?;
                self.gemm(
                    (false, false),
                    (b, u, u),
                    (scratch, u),
                    (at(rk, g * u), width),
                    beta,
                    (at(out, g * u), width),
                )
            }),
        }
    }

    /// `dh_prev += Σ_g (d_g·U_gᵀ) ⊙ m_g` over `gates` for one step (`d` has `gates·units`
    /// columns in the kernel's layout).
    fn recurrent_gradient(
        &self,
        gpu: &Gpu,
        saved: &DeviceSaved,
        d: u64,
        gates: Range<usize>,
        scratch: u64,
        dh_prev: u64,
    ) -> Result<()> {
        let (b, u, width) = (saved.dims.0, saved.spec.units, saved.spec.width());
        let rk = ptr(&saved.recurrent_kernel);
        match &saved.recurrent_dropout {
            None => self.gemm(
                (false, true),
                (b, u, gates.len() * u),
                (at(d, gates.start * u), width),
                (at(rk, gates.start * u), width),
                1.0,
                (dh_prev, u),
            ),
            Some(m) => gates.into_iter().try_for_each(|g| {
                self.gemm(
                    (false, true),
                    (b, u, u),
                    (at(d, g * u), width),
                    (at(rk, g * u), width),
                    0.0,
                    (scratch, u),
                )?;
                let n = (b * u) as i64;
                let mg = at(ptr(m), g * b * u);
                self.launch(
                    &gpu.functions.scale_add,
                    b * u,
                    &[&n, &n, &scratch, &mg, &dh_prev],
                )
            }),
        }
    }

    /// `out[:, cols_g] = (lhs ⊙ m_g)ᵀ · grad[:, cols_g]` over all `rows` time-major rows: one
    /// product per mask (or one without masks). `masks` holds `count` masks of `period`
    /// elements, each for `width / count` columns from `first` on.
    #[allow(clippy::too_many_arguments)] // the product's operands
    fn weight_gradient(
        &self,
        gpu: &Gpu,
        (lhs, lhs_cols, rows): (u64, usize, usize),
        masks: Option<(u64, usize, usize)>,
        (grad, first, cols, ld): (u64, usize, usize, usize),
        out: u64,
        what: &str,
    ) -> Result<()> {
        match masks {
            None => self.gemm(
                (true, false),
                (lhs_cols, cols, rows),
                (lhs, lhs_cols),
                (at(grad, first), ld),
                0.0,
                (at(out, first), ld),
            ),
            Some((m, count, period)) => {
                let masked = self.uninit(rows * lhs_cols, what)?;
                let per = cols / count;
                for g in 0..count {
                    let n = (rows * lhs_cols) as i64;
                    let args: [&dyn super::KernelArg; 5] = [
                        &n,
                        &(period as i64),
                        &lhs,
                        &at(m, g * period),
                        &ptr(&masked),
                    ];
                    self.launch(&gpu.functions.scale, rows * lhs_cols, &args)?;
                    self.gemm(
                        (true, false),
                        (lhs_cols, per, rows),
                        (ptr(&masked), lhs_cols),
                        (at(grad, first + g * per), ld),
                        0.0,
                        (at(out, first + g * per), ld),
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Runs the cell over the sequence on the GPU: the same results as [`crate::sequence::forward`]
/// within float rounding.
pub fn forward(
    gpu: &Gpu,
    spec: &CellSpec,
    weights: &Weights<f32>,
    input: &SequenceInput<f32>,
    options: SequenceOptions,
    lane: Option<usize>,
) -> Result<Forward<f32, DeviceSaved>> {
    check_input(spec, weights, input, options)?;
    check_supported(spec)?;
    if let Some(zoneout) = &input.zoneout {
        let given = match zoneout {
            Zoneout::Weights(_) => "zoneout weights".to_string(),
            Zoneout::Drawn { rate, .. } => format!("zoneout masks to draw at rate {rate}"),
            Zoneout::Expectation { rate } => format!("zoneout's expectation at rate {rate}"),
        };
        return Err(Error::Value {
            argument: "zoneout".into(),
            expected: "None on the GPU, whose kernels do not run zoneout yet".into(),
            received: format!("{given}: use device=\"cpu\""),
        });
    }
    if options.precision != Precision::Full {
        return Err(Error::Value {
            argument: "compute_dtype".into(),
            expected: "float32 on the GPU (bfloat16 and int8 products run on the CPU)".into(),
            received: options.precision.name().into(),
        });
    }
    let (b, t, f) = input.x.dim();
    check_dims(b, t, f, spec.width())?;
    let (u, width) = (spec.units, spec.width());
    let functions = &gpu.functions;
    let lane = gpu.lane(lane)?;
    let l = &*lane;
    let reverse = options.go_backwards;

    let x_input = l.upload(&row_major(&input.x), "the input")?;
    let x = l.uninit(t * b * f, "the input")?;
    let args: [&dyn super::KernelArg; 7] = [
        &int(b),
        &int(t),
        &int(f),
        &ptr(&x_input),
        &ptr(&x),
        &0i32,
        &i32::from(reverse),
    ];
    l.launch(&functions.swap_leading, t * b * f, &args)?;
    let kernel = l.upload(&row_major(&weights.kernel), "the kernel")?;
    let recurrent_kernel = l.upload(&row_major(&weights.recurrent_kernel), "the kernel")?;
    let bias = match &weights.bias {
        Some(bias) => Some(l.upload(&row_major(bias), "the bias")?),
        None => None,
    };
    let mask = match &input.mask {
        Some(m) => {
            let order: Vec<u8> = (0..t)
                .flat_map(|s| {
                    let col = if reverse { t - 1 - s } else { s };
                    (0..b).map(move |r| u8::from(m[[r, col]]))
                })
                .collect();
            Some(l.upload_bytes(&order, "the mask")?)
        }
        None => None,
    };
    let input_dropout = match &input.input_dropout {
        Some(m) => {
            let m = shared_or_per_gate(m.view());
            Some((l.upload(&row_major(&m), "dropout masks")?, m.dim().0))
        }
        None => None,
    };
    let recurrent_dropout = match &input.recurrent_dropout {
        Some(m) => Some(l.upload(&row_major(m), "dropout masks")?),
        None => None,
    };

    // The pre-activations start as the input bias; the projection adds onto them.
    let pre = l.zeros(t * b * width, "pre-activations")?;
    if let Some(bias) = &bias {
        let n = (t * b * width) as i64;
        let args: [&dyn super::KernelArg; 4] = [&n, &int(width), &ptr(bias), &ptr(&pre)];
        l.launch(&functions.tile_row, t * b * width, &args)?;
    }
    let mut hs = l.zeros((t + 1) * b * u, "hidden states")?;
    let mut cs = match spec.kind {
        CellKind::Lstm => Some(l.zeros((t + 1) * b * u, "cell states")?),
        _ => None,
    };
    if let Some(states) = &input.initial_states {
        l.write(&row_major(&states[0]), &mut hs, 0)?;
        if let Some(cs) = &mut cs {
            l.write(&row_major(&states[1]), cs, 0)?;
        }
    }
    let rec_h = match spec.kind {
        CellKind::Gru { reset_after: true } => Some(l.uninit(t * b * u, "GRU terms")?),
        _ => None,
    };
    let ys = match mask {
        Some(_) => Some(l.uninit(t * b * u, "outputs")?),
        None => None,
    };
    let saved = DeviceSaved {
        spec: *spec,
        options,
        dims: (b, t, f),
        kernel,
        recurrent_kernel,
        bias,
        x,
        mask,
        input_dropout,
        recurrent_dropout,
        pre,
        hs,
        cs,
        rec_h,
    };
    l.project_inputs(gpu, &saved)?;

    let rec = l.uninit(b * width, "recurrent products")?;
    let q = l.uninit(b * u, "GRU reset products")?;
    let scratch = l.uninit(b * u, "dropout scratch")?;
    let (act, ract) = (
        activation_code(spec.activation),
        activation_code(spec.recurrent_activation),
    );
    let (hs, pre) = (ptr(&saved.hs), ptr(&saved.pre));
    let step_at = |s: usize| Step {
        batch: int(b),
        units: int(u),
        mask: saved.mask.as_ref().map_or(0, |m| ptr(m) + (s * b) as u64),
        h_prev: at(hs, s * b * u),
        h_next: at(hs, (s + 1) * b * u),
        ys: ys_at(&ys, s, b * u),
        ys_prev: if s > 0 { ys_at(&ys, s - 1, b * u) } else { 0 },
        zero_output: i32::from(options.zero_output_for_mask),
        act,
        ract,
    };
    let rec_bias = match (&saved.bias, spec.bias_rows()) {
        (Some(bias), 2) => at(ptr(bias), width),
        _ => 0,
    };
    // One launch for the whole loop where the recurrent kernel fits on chip, else per step.
    let persistent = gpu.persistent_split(spec.kind, u, width);
    if let Some((kept, shared)) = persistent {
        let rows = gpu.rows_per_block(b);
        let cell = persistent_cell_code(spec.kind).expect("a cell the persistent kernels run");
        let args: [&dyn super::KernelArg; 12] = [
            &step_at(0),
            &cell,
            &int(t),
            &int(rows),
            &pre,
            &opt_ptr(&saved.cs),
            &ptr(&rec),
            &rec_bias,
            &opt_ptr(&saved.rec_h),
            &ptr(&saved.recurrent_kernel),
            &int(kept),
            &opt_ptr(&saved.recurrent_dropout),
        ];
        if t > 0 && b > 0 {
            l.launch_blocks(
                &functions.persistent_forward,
                b.div_ceil(rows),
                shared,
                &args,
            )?;
        }
    }
    let stepwise = if persistent.is_some() { 0 } else { t };
    for s in 0..stepwise {
        input.cancel.check()?;
        let step = step_at(s);
        let pre_t = at(pre, s * b * width);
        let (h_prev, rec, q, scratch) = (step.h_prev, ptr(&rec), ptr(&q), ptr(&scratch));
        match spec.kind {
            CellKind::SimpleRnn => {
                l.recurrent_product(gpu, &saved, h_prev, 0..1, scratch, pre_t, 1.0)?;
                l.launch(&functions.simple_forward, b * u, &[&step, &pre_t])?;
            }
            CellKind::Lstm => {
                l.recurrent_product(gpu, &saved, h_prev, 0..4, scratch, pre_t, 1.0)?;
                let cs = opt_ptr(&saved.cs);
                let (c_prev, c_next) = (at(cs, s * b * u), at(cs, (s + 1) * b * u));
                let args: [&dyn super::KernelArg; 4] = [&step, &pre_t, &c_prev, &c_next];
                l.launch(&functions.lstm_forward, b * u, &args)?;
            }
            CellKind::Gru { reset_after: true } => {
                l.recurrent_product(gpu, &saved, h_prev, 0..3, scratch, rec, 0.0)?;
                let rec_h = at(opt_ptr(&saved.rec_h), s * b * u);
                let args: [&dyn super::KernelArg; 5] = [&step, &pre_t, &rec, &rec_bias, &rec_h];
                l.launch(&functions.gru_after_forward, b * u, &args)?;
            }
            CellKind::Gru { reset_after: false } => {
                l.recurrent_product(gpu, &saved, h_prev, 0..2, scratch, rec, 0.0)?;
                let mask_h = saved
                    .recurrent_dropout
                    .as_ref()
                    .map_or(0, |m| at(ptr(m), 2 * b * u));
                let args: [&dyn super::KernelArg; 5] = [&step, &pre_t, &rec, &mask_h, &q];
                l.launch(&functions.gru_before_gates, b * u, &args)?;
                let rk = ptr(&saved.recurrent_kernel);
                l.gemm(
                    (false, false),
                    (b, u, u),
                    (q, u),
                    (at(rk, 2 * u), width),
                    0.0,
                    (at(rec, 2 * u), width),
                )?;
                l.launch(&functions.gru_before_output, b * u, &[&step, &pre_t, &rec])?;
            }
            CellKind::IndRnn => unreachable!("check_supported refuses IndRNN"),
        }
    }

    // Outputs: the masked outputs, else the hidden states after each step.
    let (per_step, first) = match &ys {
        Some(ys) => (ys, 0),
        None => (&saved.hs, b * u),
    };
    // Batch-major outputs: all steps, or the last one (none for an empty sequence).
    let kept = if options.last_output_only {
        t.min(1)
    } else {
        t
    };
    let out = l.uninit(b * kept * u, "outputs")?;
    let args: [&dyn super::KernelArg; 7] = [
        &int(kept),
        &int(b),
        &int(u),
        &at(ptr(per_step), first + (t - kept) * b * u),
        &ptr(&out),
        &0i32,
        &0i32,
    ];
    l.launch(&functions.swap_leading, kept * b * u, &args)?;
    let mut ranges = vec![(&out, 0, b * kept * u), (&saved.hs, t * b * u, b * u)];
    if let Some(cs) = &saved.cs {
        ranges.push((cs, t * b * u, b * u));
    }
    let mut host = l.download(&ranges)?.into_iter();
    let outputs = Array3::from_shape_vec((b, kept, u), host.next().expect("outputs"))
        .expect("the outputs have the sizes downloaded");
    let final_states = host.map(|values| matrix(values, (b, u))).collect();
    drop(lane);
    Ok(Forward {
        outputs,
        final_states,
        saved,
    })
}

/// The address of step `step`'s outputs (`size` floats a step); null without an outputs buffer.
fn ys_at(ys: &Option<CudaSlice<f32>>, step: usize, size: usize) -> u64 {
    ys.as_ref().map_or(0, |ys| at(ptr(ys), step * size))
}

/// Downloaded values as a matrix of `shape`.
fn matrix(values: Vec<f32>, shape: (usize, usize)) -> Array2<f32> {
    Array2::from_shape_vec(shape, values).expect("a download has its matrix's size")
}

impl Lane {
    /// The input projection of every step at once: `pre += (x ⊙ m_g)·W_g`, one product over
    /// all `time · batch` rows (one per mask with input dropout).
    fn project_inputs(&self, gpu: &Gpu, saved: &DeviceSaved) -> Result<()> {
        let (b, t, f) = saved.dims;
        let width = saved.spec.width();
        let (x, kernel, pre) = (ptr(&saved.x), ptr(&saved.kernel), ptr(&saved.pre));
        match &saved.input_dropout {
            None => self.gemm(
                (false, false),
                (t * b, width, f),
                (x, f),
                (kernel, width),
                1.0,
                (pre, width),
            ),
            Some((masks, count)) => {
                let masked = self.uninit(t * b * f, "masked inputs")?;
                let cols = width / count;
                for g in 0..*count {
                    let (n, period) = ((t * b * f) as i64, (b * f) as i64);
                    let mg = at(ptr(masks), g * b * f);
                    let args: [&dyn super::KernelArg; 5] = [&n, &period, &x, &mg, &ptr(&masked)];
                    self.launch(&gpu.functions.scale, t * b * f, &args)?;
                    self.gemm(
                        (false, false),
                        (t * b, cols, f),
                        (ptr(&masked), f),
                        (at(kernel, g * cols), width),
                        1.0,
                        (at(pre, g * cols), width),
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Backpropagation through time of a GPU [`forward`] pass: the same results as
/// [`crate::sequence::backward`] within float rounding.
pub fn backward(
    gpu: &Gpu,
    saved: &DeviceSaved,
    d_outputs: OutputGrad<f32>,
    d_final_states: &[Option<ArrayView2<f32>>],
    input_gradient: bool,
    cancel: &Cancel,
    lane: Option<usize>,
) -> Result<Gradients<f32>> {
    let (b, t, f) = saved.dims;
    let spec = &saved.spec;
    check_grads(spec, (b, t, f, spec.units), &d_outputs, d_final_states)?;
    let (u, width, gates) = (spec.units, spec.width(), spec.gates());
    let rows = t * b;
    let functions = &gpu.functions;
    let lane = gpu.lane(lane)?;
    let l = &*lane;

    // Every step writes every row of these (zeros for masked rows).
    let dpre = l.uninit(rows * width, "pre-activation gradients")?;
    // GRU: with reset_after the recurrent side's gradients [dz, dr, dpre_h ⊙ r]; without it
    // the h-gate product's inputs q.
    let gru = match spec.kind {
        CellKind::Gru { reset_after: true } => Some(l.uninit(rows * width, "GRU gradients")?),
        CellKind::Gru { reset_after: false } => Some(l.zeros(rows * u, "GRU products")?),
        _ => None,
    };
    let mut dh = l.zeros(b * u, "state gradients")?;
    if let Some(Some(g)) = d_final_states.first() {
        l.write(&row_major(g), &mut dh, 0)?;
    }
    let mut dc = match spec.kind {
        CellKind::Lstm => Some(l.zeros(b * u, "state gradients")?),
        _ => None,
    };
    if let (Some(dc), Some(Some(g))) = (dc.as_mut(), d_final_states.get(1)) {
        l.write(&row_major(g), dc, 0)?;
    }
    let mut dh_prev = l.uninit(b * u, "state gradients")?;
    let carry = l.zeros(b * u, "output gradients")?;
    let scratch = l.uninit(b * u, "dropout scratch")?;
    let (dy, dy_stride, last_only) = match d_outputs {
        OutputGrad::Sequence(g) => (
            Some(l.upload(&row_major(&g), "output gradients")?),
            t * u,
            false,
        ),
        OutputGrad::Last(g) => (Some(l.upload(&row_major(&g), "output gradients")?), u, true),
        OutputGrad::None => (None, 0, false),
    };
    let (act, ract) = (
        activation_code(spec.activation),
        activation_code(spec.recurrent_activation),
    );
    let (pre, hs, dpre_all) = (ptr(&saved.pre), ptr(&saved.hs), ptr(&dpre));
    let (scratch, carry) = (ptr(&scratch), ptr(&carry));
    let rk = ptr(&saved.recurrent_kernel);
    let mask_at = |s: usize| saved.mask.as_ref().map_or(0, |m| ptr(m) + (s * b) as u64);
    let back_at = |s: usize, dy: u64, dh: &CudaSlice<f32>, dh_prev: &CudaSlice<f32>| BackStep {
        batch: int(b),
        units: int(u),
        mask: mask_at(s),
        dy,
        dy_stride: dy_stride as i64,
        carry,
        dh: ptr(dh),
        dh_prev: ptr(dh_prev),
        h_prev: at(hs, s * b * u),
        zero_output: i32::from(saved.options.zero_output_for_mask),
        act,
        ract,
    };
    // One launch for the whole loop where the recurrent kernel fits on chip, else per step.
    let persistent = gpu.persistent_split(spec.kind, width, u);
    if let (Some((kept, shared)), true) = (persistent, t > 0 && b > 0) {
        // Uᵀ, so that the threads of a block read consecutive units.
        let rk_t = l.uninit(u * width, "the transposed recurrent kernel")?;
        let args: [&dyn super::KernelArg; 7] = [
            &int(u),
            &int(width),
            &int(1),
            &rk,
            &ptr(&rk_t),
            &0i32,
            &0i32,
        ];
        l.launch(&functions.swap_leading, u * width, &args)?;
        let rows = gpu.rows_per_block(b);
        let cell = persistent_cell_code(spec.kind).expect("a cell the persistent kernels run");
        let args: [&dyn super::KernelArg; 15] = [
            &back_at(0, 0, &dh, &dh_prev),
            &cell,
            &int(t),
            &int(rows),
            &pre,
            &opt_ptr(&saved.cs),
            &opt_ptr(&dc),
            &opt_ptr(&saved.rec_h),
            &dpre_all,
            &opt_ptr(&gru),
            &opt_ptr(&dy),
            &i32::from(last_only),
            &ptr(&rk_t),
            &int(kept),
            &opt_ptr(&saved.recurrent_dropout),
        ];
        l.launch_blocks(
            &functions.persistent_backward,
            b.div_ceil(rows),
            shared,
            &args,
        )?;
        // The kernel swaps its two state-gradient buffers after every step.
        if t % 2 == 1 {
            std::mem::swap(&mut dh, &mut dh_prev);
        }
    }
    let stepwise = if persistent.is_some() { 0 } else { t };
    for s in (0..stepwise).rev() {
        cancel.check()?;
        let dy_step = match &dy {
            Some(d) if !last_only => at(ptr(d), s * u),
            Some(d) if s + 1 == t => ptr(d),
            _ => 0,
        };
        let mask = mask_at(s);
        let back = back_at(s, dy_step, &dh, &dh_prev);
        let (pre_t, dpre_t) = (at(pre, s * b * width), at(dpre_all, s * b * width));
        let n = b * u;
        let recurrent = match spec.kind {
            CellKind::SimpleRnn => {
                l.launch(&functions.simple_backward, n, &[&back, &pre_t, &dpre_t])?;
                (dpre_t, 0..1)
            }
            CellKind::Lstm => {
                let cs = opt_ptr(&saved.cs);
                let (c_prev, c) = (at(cs, s * b * u), at(cs, (s + 1) * b * u));
                let dc = opt_ptr(&dc);
                let args: [&dyn super::KernelArg; 6] = [&back, &pre_t, &c_prev, &c, &dc, &dpre_t];
                l.launch(&functions.lstm_backward, n, &args)?;
                (dpre_t, 0..gates)
            }
            CellKind::Gru { reset_after: true } => {
                let rec_h = at(opt_ptr(&saved.rec_h), s * b * u);
                let drec_t = at(opt_ptr(&gru), s * b * width);
                let args: [&dyn super::KernelArg; 5] = [&back, &pre_t, &rec_h, &dpre_t, &drec_t];
                l.launch(&functions.gru_after_backward, n, &args)?;
                (drec_t, 0..3)
            }
            CellKind::Gru { reset_after: false } => {
                l.launch(
                    &functions.gru_before_backward_gates,
                    n,
                    &[&back, &pre_t, &dpre_t],
                )?;
                // dq = dpre_h · U_hᵀ (zero on masked rows), then the reset gate.
                l.gemm(
                    (false, true),
                    (b, u, u),
                    (at(dpre_t, 2 * u), width),
                    (at(rk, 2 * u), width),
                    0.0,
                    (scratch, u),
                )?;
                let mask_h = saved
                    .recurrent_dropout
                    .as_ref()
                    .map_or(0, |m| at(ptr(m), 2 * b * u));
                let q_t = at(opt_ptr(&gru), s * b * u);
                let args: [&dyn super::KernelArg; 11] = [
                    &int(b),
                    &int(u),
                    &mask,
                    &ract,
                    &pre_t,
                    &back.h_prev,
                    &mask_h,
                    &scratch,
                    &dpre_t,
                    &back.dh_prev,
                    &q_t,
                ];
                l.launch(&functions.gru_before_backward_reset, n, &args)?;
                (dpre_t, 0..2)
            }
            CellKind::IndRnn => unreachable!("check_supported refuses IndRNN"),
        };
        let (d, range) = recurrent;
        l.recurrent_gradient(gpu, saved, d, range, scratch, ptr(&dh_prev))?;
        std::mem::swap(&mut dh, &mut dh_prev);
    }

    cancel.check()?;
    let idrop = saved
        .input_dropout
        .as_ref()
        .map(|(m, count)| (ptr(m), *count, b * f));
    let dx = if input_gradient {
        let dx = l.zeros(rows * f, "input gradients")?;
        let kernel = ptr(&saved.kernel);
        match idrop {
            None => l.gemm(
                (false, true),
                (rows, f, width),
                (dpre_all, width),
                (kernel, width),
                0.0,
                (ptr(&dx), f),
            )?,
            Some((m, count, period)) => {
                let tmp = l.uninit(rows * f, "input gradients")?;
                let cols = width / count;
                for g in 0..count {
                    l.gemm(
                        (false, true),
                        (rows, f, cols),
                        (at(dpre_all, g * cols), width),
                        (at(kernel, g * cols), width),
                        0.0,
                        (ptr(&tmp), f),
                    )?;
                    let n = (rows * f) as i64;
                    let args: [&dyn super::KernelArg; 5] = [
                        &n,
                        &(period as i64),
                        &ptr(&tmp),
                        &at(m, g * period),
                        &ptr(&dx),
                    ];
                    l.launch(&functions.scale_add, rows * f, &args)?;
                }
            }
        }
        // Back to (batch, time, features) in input time order.
        let out = l.uninit(rows * f, "input gradients")?;
        let args: [&dyn super::KernelArg; 7] = [
            &int(t),
            &int(b),
            &int(f),
            &ptr(&dx),
            &ptr(&out),
            &i32::from(saved.options.go_backwards),
            &0i32,
        ];
        l.launch(&functions.swap_leading, rows * f, &args)?;
        Some(out)
    } else {
        None
    };

    cancel.check()?;
    let dk = l.uninit(f * width, "kernel gradient")?;
    l.weight_gradient(
        gpu,
        (ptr(&saved.x), f, rows),
        idrop,
        (dpre_all, 0, width, width),
        ptr(&dk),
        "masked inputs",
    )?;
    let du = l.uninit(u * width, "recurrent kernel gradient")?;
    let rdrop = |count| {
        saved
            .recurrent_dropout
            .as_ref()
            .map(|m| (ptr(m), count, b * u))
    };
    let h_prev = (hs, u, rows);
    match spec.kind {
        CellKind::Gru { reset_after } => {
            let g = opt_ptr(&gru);
            let zr = (dpre_all, 0, 2 * u, width);
            l.weight_gradient(gpu, h_prev, rdrop(2), zr, ptr(&du), "masked states")?;
            if reset_after {
                // The h gate's mask is the third: offset the masks by two.
                let m = rdrop(1).map(|(m, c, p)| (at(m, 2 * p), c, p));
                let h_gate = (g, 2 * u, u, width);
                l.weight_gradient(gpu, h_prev, m, h_gate, ptr(&du), "masked states")?;
            } else {
                // q already carries the reset gate and the dropout mask.
                l.weight_gradient(
                    gpu,
                    (g, u, rows),
                    None,
                    (dpre_all, 2 * u, u, width),
                    ptr(&du),
                    "masked states",
                )?;
            }
        }
        _ => {
            let all = (dpre_all, 0, width, width);
            l.weight_gradient(gpu, h_prev, rdrop(gates), all, ptr(&du), "masked states")?;
        }
    }

    let bias_rows = spec.bias_rows();
    let db = match &saved.bias {
        Some(_) => {
            let ones = l.uninit(rows, "bias gradient")?;
            let args: [&dyn super::KernelArg; 3] = [&(rows as i64), &1.0f32, &ptr(&ones)];
            l.launch(&functions.fill, rows, &args)?;
            let db = l.zeros(bias_rows * width, "bias gradient")?;
            let sums = [Some(dpre_all), (bias_rows == 2).then(|| opt_ptr(&gru))];
            for (row, source) in sums.into_iter().enumerate() {
                if let Some(source) = source {
                    l.gemm(
                        (false, false),
                        (1, width, rows),
                        (ptr(&ones), rows),
                        (source, width),
                        0.0,
                        (at(ptr(&db), row * width), width),
                    )?;
                }
            }
            Some(db)
        }
        None => None,
    };

    // Every result in one copy.
    let mut ranges = vec![(&dk, 0, f * width), (&du, 0, u * width), (&dh, 0, b * u)];
    ranges.extend(dc.as_ref().map(|dc| (dc, 0, b * u)));
    ranges.extend(db.as_ref().map(|db| (db, 0, bias_rows * width)));
    ranges.extend(dx.as_ref().map(|dx| (dx, 0, rows * f)));
    let mut host = l.download(&ranges)?.into_iter();
    let mut next = || host.next().expect("one vector per range");
    let kernel = matrix(next(), (f, width));
    let recurrent_kernel = matrix(next(), (u, width));
    let mut initial_states = vec![matrix(next(), (b, u))];
    if dc.is_some() {
        initial_states.push(matrix(next(), (b, u)));
    }
    let bias = db.as_ref().map(|_| matrix(next(), (bias_rows, width)));
    let input = dx
        .as_ref()
        .map(|_| Array3::from_shape_vec((b, t, f), next()).expect("sizes match"));
    Ok(Gradients {
        input,
        kernel,
        recurrent_kernel,
        bias,
        peephole: None,
        projection: None,
        layer_norm: None,
        cell_norm: None,
        initial_states,
    })
}

impl Engine<f32> for Gpu {
    type Saved = DeviceSaved;

    fn forward(
        &self,
        spec: &CellSpec,
        weights: &Weights<f32>,
        input: &SequenceInput<f32>,
        options: SequenceOptions,
        lane: Option<usize>,
    ) -> Result<Forward<f32, DeviceSaved>> {
        forward(self, spec, weights, input, options, lane)
    }

    fn backward(
        &self,
        saved: &DeviceSaved,
        d_outputs: OutputGrad<f32>,
        d_final_states: &[Option<ArrayView2<f32>>],
        input_gradient: bool,
        cancel: &Cancel,
        lane: Option<usize>,
    ) -> Result<Gradients<f32>> {
        backward(
            self,
            saved,
            d_outputs,
            d_final_states,
            input_gradient,
            cancel,
            lane,
        )
    }

    fn spec(saved: &DeviceSaved) -> &CellSpec {
        &saved.spec
    }

    fn dims(saved: &DeviceSaved) -> (usize, usize, usize, usize) {
        let (b, t, f) = saved.dims;
        (b, t, f, saved.spec.output_units())
    }
}

#[cfg(test)]
mod tests {
    use super::check_dims;

    #[test]
    fn dimensions_past_32_bits_are_refused_by_name() {
        assert!(check_dims(64, 100, 512, 2048).is_ok());
        let err = check_dims(1 << 16, 1 << 16, 8, 32).unwrap_err().to_string();
        assert!(
            err.starts_with("x: expected dimensions and time × batch below 2^31"),
            "{err}"
        );
        assert!(check_dims(1, 1, 1 << 31, 4).is_err());
    }
}
