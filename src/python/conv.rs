//! The convolution bindings: `conv_forward`/`conv_backward` (Keras's `ops.conv`, channels-last)
//! and the `ConvLSTM` recurrence `conv_lstm_forward`/`conv_lstm_backward`, with the opaque object
//! holding what its forward pass saves; and max and average pooling, `pool_forward`/`pool_backward`.

use numpy::ndarray::{Array, ArrayView2, IxDyn};
use numpy::{PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{
    compute, dtype_name, float_dtype, guarded, instance, optional_array, read, read_opt, to_numpy,
    Dtype, Elem,
};
use super::ShapeError;
use crate::core::conv::{ConvGeometry, Padding};
use crate::cpu::conv::Conv;
use crate::cpu::conv_lstm::{self, ConvLstmInput, ConvLstmSaved, ConvLstmSpec};
use crate::cpu::pool::{Pool, PoolKind};
use crate::error::ShapeDisplay;
use crate::Activation;

/// The geometry of `x` (`(batch, *spatial, channels)`) convolved with `kernel` (`(*kernel_size,
/// channels / groups, filters)`).
fn geometry(
    x: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilation_rate: &[usize],
    padding: &str,
    groups: usize,
) -> PyResult<ConvGeometry> {
    let rank = x.len().saturating_sub(2);
    if rank == 0 || kernel.len() != x.len() {
        return Err(ShapeError::new_err(format!(
            "kernel: expected a {}-d array (*kernel_size, channels / groups, filters) for inputs of shape {}, received shape {}",
            x.len(),
            ShapeDisplay(x),
            ShapeDisplay(kernel)
        )));
    }
    let channels = x[rank + 1];
    let per_group = channels / groups.max(1);
    if groups == 0 || !channels.is_multiple_of(groups) || kernel[rank] != per_group {
        return Err(ShapeError::new_err(format!(
            "kernel: expected {per_group} input channels on axis {rank} ({channels} channels in {groups} groups), received shape {}",
            ShapeDisplay(kernel)
        )));
    }
    Ok(ConvGeometry::new(
        x[0],
        &x[1..=rank],
        channels,
        &kernel[..rank],
        kernel[rank + 1],
        strides,
        dilation_rate,
        Padding::parse("padding", padding)?,
        groups,
    )?)
}

/// The convolution of channels-last `x` `(batch, *spatial, channels)` with `kernel`
/// `(*kernel_size, channels / groups, filters)`: `(batch, *output, filters)`, of `x`'s dtype.
#[pyfunction]
#[pyo3(signature = (x, kernel, *, strides, dilation_rate, padding, groups = 1))]
pub fn conv_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    strides: Vec<usize>,
    dilation_rate: Vec<usize>,
    padding: &str,
    groups: usize,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let options = (
            strides.as_slice(),
            dilation_rate.as_slice(),
            padding,
            groups,
        );
        match float_dtype("x", x)? {
            Dtype::F32 => conv_forward_typed::<f32>(py, x, kernel, options),
            Dtype::F64 => conv_forward_typed::<f64>(py, x, kernel, options),
        }
    })
}

/// Strides, dilation, padding and groups.
type ConvOptions<'a> = (&'a [usize], &'a [usize], &'a str, usize);

fn read_any<'py, T: Elem>(
    name: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArray<'py, T, IxDyn>> {
    read(name, obj, "", dtype_name(T::DTYPE))
}

fn conv_forward_typed<'py, T: Elem>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    (strides, dilation, padding, groups): ConvOptions<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let (x, kernel) = (read_any::<T>("x", x)?, read_any::<T>("kernel", kernel)?);
    let g = geometry(
        x.shape(),
        kernel.shape(),
        strides,
        dilation,
        padding,
        groups,
    )?;
    let (x, kernel) = (x.as_array(), kernel.as_array());
    let conv = Conv::new(g);
    let y = compute(py, conv.geometry().work(), |_| {
        let (x, kernel) = (x.as_standard_layout(), kernel.as_standard_layout());
        let (x, kernel) = (
            x.as_slice().expect("standard"),
            kernel.as_slice().expect("standard"),
        );
        conv.forward(x, kernel, rayon::current_num_threads())
    })?;
    let shape = conv.geometry().output_shape();
    Ok(to_numpy(
        py,
        y.into_shape_with_order(shape).expect("output shape"),
    ))
}

/// The gradients of `conv_forward(x, kernel, ...)` given `dy`, that of its output: returns
/// `(dx, d_kernel)`; `dx` is None with `input_gradient=False` (its product is then skipped).
#[pyfunction]
#[pyo3(signature = (x, kernel, dy, *, strides, dilation_rate, padding, groups = 1, input_gradient = true))]
#[allow(clippy::too_many_arguments)]
pub fn conv_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    strides: Vec<usize>,
    dilation_rate: Vec<usize>,
    padding: &str,
    groups: usize,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let options = (
            strides.as_slice(),
            dilation_rate.as_slice(),
            padding,
            groups,
        );
        match float_dtype("x", x)? {
            Dtype::F32 => conv_backward_typed::<f32>(py, [x, kernel, dy], options, input_gradient),
            Dtype::F64 => conv_backward_typed::<f64>(py, [x, kernel, dy], options, input_gradient),
        }
    })
}

fn conv_backward_typed<'py, T: Elem>(
    py: Python<'py>,
    [x, kernel, dy]: [&Bound<'py, PyAny>; 3],
    (strides, dilation, padding, groups): ConvOptions<'_>,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let (x, kernel, dy) = (
        read_any::<T>("x", x)?,
        read_any::<T>("kernel", kernel)?,
        read_any::<T>("dy", dy)?,
    );
    let g = geometry(
        x.shape(),
        kernel.shape(),
        strides,
        dilation,
        padding,
        groups,
    )?;
    crate::error::check_shape("dy", &g.output_shape(), dy.shape())?;
    let (x_shape, kernel_shape) = (g.input_shape(), g.kernel_shape());
    let (x, kernel, dy) = (x.as_array(), kernel.as_array(), dy.as_array());
    let conv = Conv::new(g);
    let (dx, dk) = compute(py, 2 * conv.geometry().work(), |_| {
        let (x, kernel, dy) = (
            x.as_standard_layout(),
            kernel.as_standard_layout(),
            dy.as_standard_layout(),
        );
        conv.backward(
            x.as_slice().expect("standard"),
            kernel.as_slice().expect("standard"),
            dy.as_slice().expect("standard"),
            input_gradient,
            rayon::current_num_threads(),
        )
    })?;
    let shaped = |v: Vec<T>, shape: &[usize]| {
        Array::from_shape_vec(IxDyn(shape), v).expect("gradient shape")
    };
    PyTuple::new(
        py,
        [
            optional_array(py, dx.map(|dx| shaped(dx, &x_shape))),
            to_numpy(py, shaped(dk, &kernel_shape)),
        ],
    )
}

/// What a `ConvLSTM` forward pass keeps in Rust memory for its backward pass. Opaque.
#[pyclass(frozen, weakref, name = "ConvLstmSaved", module = "rnnkit._core")]
pub struct ConvLstmSavedObject {
    inner: SavedInner,
    /// `(batch, *spatial, filters)`: the states' shape.
    state_shape: Vec<usize>,
    /// The recurrent kernel's shape.
    kernel_shape: Vec<usize>,
}

enum SavedInner {
    F32(ConvLstmSaved<f32>),
    F64(ConvLstmSaved<f64>),
}

#[pymethods]
impl ConvLstmSavedObject {
    fn __repr__(&self) -> &'static str {
        "<ConvLstmSaved of a ConvLSTM pass>"
    }
}

/// The `ConvLSTM` recurrence over `projected`, the input convolution `(steps, batch, *spatial,
/// 4 · filters)` in processing order, plus `bias` `(4 · filters,)` when given, with
/// `recurrent_kernel` `(*kernel_size, filters, 4 · filters)`.
///
/// `initial_states` is `[h, c]`, each `(batch, *spatial, filters)`; `mask` `(batch, steps)` in
/// processing order; `recurrent_dropout` the per-gate multipliers `(4, batch, *spatial,
/// filters)`. Returns `(outputs, h, c, saved)`: every step's output `(steps, batch, *spatial,
/// filters)`, the final states and what `conv_lstm_backward` needs. `device` must be "cpu" (or
/// None): there are no GPU kernels for `ConvLSTM`.
#[pyfunction]
#[pyo3(signature = (projected, recurrent_kernel, *, bias = None, initial_states = None, mask = None, recurrent_dropout = None, activation = "tanh", recurrent_activation = "sigmoid", zero_output_for_mask = false, device = None))]
#[allow(clippy::too_many_arguments)]
pub fn conv_lstm_forward<'py>(
    py: Python<'py>,
    projected: &Bound<'py, PyAny>,
    recurrent_kernel: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    initial_states: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    mask: Option<&Bound<'py, PyAny>>,
    recurrent_dropout: Option<&Bound<'py, PyAny>>,
    activation: &str,
    recurrent_activation: &str,
    zero_output_for_mask: bool,
    device: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        match device {
            None | Some("cpu") => {}
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "device: expected 'cpu' (ConvLSTM has no GPU kernels yet), received '{other}'"
                )))
            }
        }
        let activations = (
            Activation::parse("activation", activation)?,
            Activation::parse("recurrent_activation", recurrent_activation)?,
        );
        let args = (
            projected,
            recurrent_kernel,
            bias,
            initial_states.as_ref(),
            mask,
            recurrent_dropout,
        );
        match float_dtype("projected", projected)? {
            Dtype::F32 => {
                conv_lstm_forward_typed::<f32>(py, args, activations, zero_output_for_mask)
            }
            Dtype::F64 => {
                conv_lstm_forward_typed::<f64>(py, args, activations, zero_output_for_mask)
            }
        }
    })
}

/// The array arguments of `conv_lstm_forward`.
type LstmArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);

/// `a` as a 2-d view of `rows × cols` (it is standard layout with that many elements).
fn matrix<T>(a: numpy::ndarray::ArrayViewD<'_, T>, rows: usize) -> ArrayView2<'_, T> {
    let cols = a.len() / rows.max(1);
    a.into_shape_with_order((rows, cols))
        .expect("standard layout, checked length")
}

#[allow(clippy::too_many_lines)]
fn conv_lstm_forward_typed<'py, T: SavedElem>(
    py: Python<'py>,
    (projected, recurrent_kernel, bias, initial_states, mask, recurrent_dropout): LstmArgs<'_, 'py>,
    (activation, recurrent_activation): (Activation, Activation),
    zero_output_for_mask: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let dn = dtype_name(T::DTYPE);
    let projected = read_any::<T>("projected", projected)?;
    let kernel = read_any::<T>("recurrent_kernel", recurrent_kernel)?;
    let shape = projected.shape().to_vec();
    let rank = shape.len().saturating_sub(3);
    if rank == 0 || shape[rank + 2] % 4 != 0 {
        return Err(ShapeError::new_err(format!(
            "projected: expected (steps, batch, *spatial, 4 * filters), received shape {}",
            ShapeDisplay(&shape)
        )));
    }
    let filters = shape[rank + 2] / 4;
    let kshape = kernel.shape().to_vec();
    if kshape.len() != rank + 2 || kshape[rank..] != [filters, 4 * filters] {
        return Err(ShapeError::new_err(format!(
            "recurrent_kernel: expected (*kernel_size, {filters}, {}), received shape {}",
            4 * filters,
            ShapeDisplay(&kshape)
        )));
    }
    let spec = ConvLstmSpec {
        activation,
        recurrent_activation,
        batch: shape[1],
        spatial: shape[2..rank + 2].to_vec(),
        filters,
        kernel: kshape[..rank].to_vec(),
    };
    let state_shape: Vec<usize> = [&shape[1..rank + 2], &[filters][..]].concat();
    let states = match initial_states {
        Some((h, c)) => {
            let (h, c) = (
                read_any::<T>("initial_states[0]", h)?,
                read_any::<T>("initial_states[1]", c)?,
            );
            crate::error::check_shape("initial_states[0]", &state_shape, h.shape())?;
            crate::error::check_shape("initial_states[1]", &state_shape, c.shape())?;
            Some((h, c))
        }
        None => None,
    };
    let bias = read_opt::<T, numpy::ndarray::Ix1>("bias", bias, "(4 * filters,)", dn)?;
    if let Some(b) = &bias {
        crate::error::check_shape("bias", &[4 * filters], b.shape())?;
    }
    let mask = read_opt::<bool, numpy::ndarray::Ix2>("mask", mask, "(batch, steps)", "bool")?;
    let dropout = read_opt::<T, IxDyn>("recurrent_dropout", recurrent_dropout, "", dn)?;
    if let Some(d) = &dropout {
        let want: Vec<usize> = [&[4][..], &state_shape].concat();
        crate::error::check_shape("recurrent_dropout", &want, d.shape())?;
    }
    let (steps, rows) = (shape[0], state_shape[..rank + 1].iter().product::<usize>());
    let (projected, kernel) = (projected.as_array(), kernel.as_array());
    let states = states.as_ref().map(|(h, c)| (h.as_array(), c.as_array()));
    let mask = mask.as_ref().map(|m| m.as_array());
    let bias = bias.as_ref().map(|b| b.as_array());
    let dropout = dropout.as_ref().map(|d| d.as_array());
    let work = steps * rows * kshape.iter().product::<usize>();
    let out = compute(py, work, |cancel| {
        let projected = projected.as_standard_layout();
        let kernel = kernel.as_standard_layout();
        let states = states
            .as_ref()
            .map(|(h, c)| (h.as_standard_layout(), c.as_standard_layout()));
        let dropout = dropout.as_ref().map(|d| d.as_standard_layout());
        let input = ConvLstmInput {
            projected: projected
                .view()
                .into_shape_with_order((steps, rows, 4 * filters))
                .expect("checked shape"),
            bias,
            recurrent_kernel: matrix(kernel.view(), kernel.len() / (4 * filters)),
            initial: states
                .as_ref()
                .map(|(h, c)| (matrix(h.view(), rows), matrix(c.view(), rows))),
            mask,
            recurrent_dropout: dropout.as_ref().map(|d| {
                d.view()
                    .into_shape_with_order((4, rows, filters))
                    .expect("checked shape")
            }),
            zero_output_for_mask,
        };
        conv_lstm::forward(&spec, &input, &cancel)
    })?;
    let outputs_shape: Vec<usize> = [&[steps][..], &state_shape].concat();
    let reshape = |a: Array<T, _>, shape: &[usize]| -> Array<T, IxDyn> {
        a.into_dyn()
            .into_shape_with_order(IxDyn(shape))
            .expect("state shape")
    };
    let outputs = reshape(out.outputs.into_dyn(), &outputs_shape);
    let (h, c) = (
        reshape(out.h.into_dyn(), &state_shape),
        reshape(out.c.into_dyn(), &state_shape),
    );
    let saved = ConvLstmSavedObject {
        inner: T::wrap(out.saved),
        state_shape,
        kernel_shape: kshape,
    };
    PyTuple::new(
        py,
        [
            to_numpy(py, outputs),
            to_numpy(py, h),
            to_numpy(py, c),
            Bound::new(py, saved)?.into_any(),
        ],
    )
}

/// The float types whose saved passes the object holds.
trait SavedElem: Elem {
    fn wrap(saved: ConvLstmSaved<Self>) -> SavedInner;
}

impl SavedElem for f32 {
    fn wrap(saved: ConvLstmSaved<Self>) -> SavedInner {
        SavedInner::F32(saved)
    }
}

impl SavedElem for f64 {
    fn wrap(saved: ConvLstmSaved<Self>) -> SavedInner {
        SavedInner::F64(saved)
    }
}

/// The gradients of the final states `(d_h, d_c)`, either of which may be None.
type StateGrads<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

/// Backpropagation through time of a `conv_lstm_forward` pass, given the gradients of its
/// outputs (`(steps, batch, *spatial, filters)`) and of its final states `[h, c]` (None entries,
/// or None, are zeros). Returns `(d_projected, d_recurrent_kernel, [d_h0, d_c0])`.
#[pyfunction]
#[pyo3(signature = (saved, d_outputs = None, d_final_states = None))]
pub fn conv_lstm_backward<'py>(
    py: Python<'py>,
    saved: &Bound<'py, PyAny>,
    d_outputs: Option<&Bound<'py, PyAny>>,
    d_final_states: Option<StateGrads<'py>>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let saved = instance::<ConvLstmSavedObject>("saved", "ConvLstmSaved", saved)?.get();
        let (d_h, d_c) = d_final_states.unwrap_or((None, None));
        let grads = [d_outputs, d_h.as_ref(), d_c.as_ref()];
        match &saved.inner {
            SavedInner::F32(s) => conv_lstm_backward_typed(py, saved, s, grads),
            SavedInner::F64(s) => conv_lstm_backward_typed(py, saved, s, grads),
        }
    })
}

fn conv_lstm_backward_typed<'py, T: Elem>(
    py: Python<'py>,
    object: &ConvLstmSavedObject,
    saved: &ConvLstmSaved<T>,
    [d_outputs, d_h, d_c]: [Option<&Bound<'py, PyAny>>; 3],
) -> PyResult<Bound<'py, PyTuple>> {
    let dn = dtype_name(T::DTYPE);
    let state_shape = &object.state_shape;
    let d_outputs = read_opt::<T, IxDyn>("d_outputs", d_outputs, "", dn)?;
    let d_h = read_opt::<T, IxDyn>("d_final_states[0]", d_h, "", dn)?;
    let d_c = read_opt::<T, IxDyn>("d_final_states[1]", d_c, "", dn)?;
    let rows: usize = state_shape[..state_shape.len() - 1].iter().product();
    let filters = state_shape[state_shape.len() - 1];
    for (name, d) in [("d_final_states[0]", &d_h), ("d_final_states[1]", &d_c)] {
        if let Some(d) = d {
            crate::error::check_shape(name, state_shape, d.shape())?;
        }
    }
    let steps = d_outputs.as_ref().map(|d| d.shape()[0]);
    if let (Some(d), Some(steps)) = (&d_outputs, steps) {
        let want: Vec<usize> = [&[steps][..], state_shape].concat();
        crate::error::check_shape("d_outputs", &want, d.shape())?;
    }
    let d_outputs = d_outputs.as_ref().map(|d| d.as_array());
    let (d_h, d_c) = (
        d_h.as_ref().map(|d| d.as_array()),
        d_c.as_ref().map(|d| d.as_array()),
    );
    let work = 2 * steps.unwrap_or(1) * rows * object.kernel_shape.iter().product::<usize>();
    let grads = compute(py, work, |cancel| {
        let d_outputs = d_outputs.as_ref().map(|d| d.as_standard_layout());
        let d_h = d_h.as_ref().map(|d| d.as_standard_layout());
        let d_c = d_c.as_ref().map(|d| d.as_standard_layout());
        conv_lstm::backward(
            saved,
            d_outputs.as_ref().map(|d| {
                d.view()
                    .into_shape_with_order((d.shape()[0], rows, filters))
                    .expect("checked")
            }),
            d_h.as_ref().map(|d| matrix(d.view(), rows)),
            d_c.as_ref().map(|d| matrix(d.view(), rows)),
            &cancel,
        )
    })?;
    let steps = grads.projected.shape()[0];
    let projected_shape: Vec<usize> = [
        &[steps][..],
        &state_shape[..state_shape.len() - 1],
        &[4 * filters],
    ]
    .concat();
    let shaped = |a: Array<T, IxDyn>, shape: &[usize]| {
        a.into_shape_with_order(IxDyn(shape))
            .expect("gradient shape")
    };
    PyTuple::new(
        py,
        [
            to_numpy(py, shaped(grads.projected.into_dyn(), &projected_shape)),
            to_numpy(
                py,
                shaped(grads.recurrent_kernel.into_dyn(), &object.kernel_shape),
            ),
            pyo3::types::PyList::new(
                py,
                [
                    to_numpy(py, shaped(grads.h.into_dyn(), state_shape)),
                    to_numpy(py, shaped(grads.c.into_dyn(), state_shape)),
                ],
            )?
            .into_any(),
        ],
    )
}

/// The geometry of pooling `x` (`(batch, *spatial, channels)`) with windows of `pool_size`.
fn pool_geometry(
    x: &[usize],
    pool_size: &[usize],
    strides: &[usize],
    padding: &str,
) -> PyResult<ConvGeometry> {
    let rank = x.len().saturating_sub(2);
    if rank == 0 {
        return Err(ShapeError::new_err(format!(
            "x: expected (batch, *spatial, channels) with at least one spatial axis, received shape {}",
            ShapeDisplay(x)
        )));
    }
    let ones = vec![1; rank];
    let channels = x[rank + 1];
    Ok(ConvGeometry::new(
        x[0],
        &x[1..=rank],
        channels,
        pool_size,
        channels,
        strides,
        &ones,
        Padding::parse("padding", padding)?,
        1,
    )?)
}

fn pool_kind(kind: &str) -> PyResult<PoolKind> {
    match kind {
        "max" => Ok(PoolKind::Max),
        "average" => Ok(PoolKind::Average),
        other => Err(PyValueError::new_err(format!(
            "kind: expected 'max' or 'average', received '{other}'"
        ))),
    }
}

/// Max or average pooling of channels-last `x` `(batch, *spatial, channels)`: `(batch,
/// *output, channels)`; padding "same" is never read (an average counts the positions inside).
#[pyfunction]
#[pyo3(signature = (x, *, pool_size, strides, padding, kind))]
pub fn pool_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    pool_size: Vec<usize>,
    strides: Vec<usize>,
    padding: &str,
    kind: &str,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let kind = pool_kind(kind)?;
        match float_dtype("x", x)? {
            Dtype::F32 => pool_typed::<f32>(py, x, None, (&pool_size, &strides, padding, kind)),
            Dtype::F64 => pool_typed::<f64>(py, x, None, (&pool_size, &strides, padding, kind)),
        }
    })
}

/// The input gradient of `pool_forward(x, ...)` given `dy`, that of its output.
#[pyfunction]
#[pyo3(signature = (x, dy, *, pool_size, strides, padding, kind))]
pub fn pool_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    pool_size: Vec<usize>,
    strides: Vec<usize>,
    padding: &str,
    kind: &str,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let kind = pool_kind(kind)?;
        match float_dtype("x", x)? {
            Dtype::F32 => pool_typed::<f32>(py, x, Some(dy), (&pool_size, &strides, padding, kind)),
            Dtype::F64 => pool_typed::<f64>(py, x, Some(dy), (&pool_size, &strides, padding, kind)),
        }
    })
}

/// Pool size, strides, padding and kind.
type PoolOptions<'a> = (&'a [usize], &'a [usize], &'a str, PoolKind);

/// The forward pass, or with `dy` the backward pass, of a pooling.
fn pool_typed<'py, T: Elem>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dy: Option<&Bound<'py, PyAny>>,
    (pool_size, strides, padding, kind): PoolOptions<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = read_any::<T>("x", x)?;
    let g = pool_geometry(x.shape(), pool_size, strides, padding)?;
    let dy = dy.map(|dy| read_any::<T>("dy", dy)).transpose()?;
    if let Some(dy) = &dy {
        crate::error::check_shape("dy", &g.output_shape(), dy.shape())?;
    }
    let shape = if dy.is_some() {
        g.input_shape()
    } else {
        g.output_shape()
    };
    let pool = Pool::new(g, kind);
    let (x, dy) = (x.as_array(), dy.as_ref().map(|d| d.as_array()));
    let work = pool.geometry().batch
        * pool.geometry().output_positions()
        * pool.geometry().taps()
        * pool.geometry().in_channels;
    let out = compute(py, work, |_| {
        let x = x.as_standard_layout();
        let x = x.as_slice().expect("standard");
        match &dy {
            None => pool.forward(x),
            Some(dy) => pool.backward(x, dy.as_standard_layout().as_slice().expect("standard")),
        }
    })?;
    Ok(to_numpy(
        py,
        Array::from_shape_vec(IxDyn(&shape), out).expect("pooled shape"),
    ))
}

/// The geometry of Keras's transposed convolution of `x` with `kernel` `(*kernel_size, filters,
/// channels)`, as the convolution whose input gradient it is.
fn transposed_geometry(
    x: &[usize],
    kernel: &[usize],
    (strides, dilation, padding, output_padding): TransposeOptions<'_>,
) -> PyResult<ConvGeometry> {
    let rank = x.len().saturating_sub(2);
    if rank == 0 || kernel.len() != x.len() || kernel[rank + 1] != x[rank + 1] {
        return Err(ShapeError::new_err(format!(
            "kernel: expected (*kernel_size, filters, {}) for inputs of shape {}, received shape {}",
            x.get(rank + 1).copied().unwrap_or(0),
            ShapeDisplay(x),
            ShapeDisplay(kernel)
        )));
    }
    Ok(ConvGeometry::transposed(
        x[0],
        &x[1..=rank],
        x[rank + 1],
        &kernel[..rank],
        kernel[rank],
        strides,
        dilation,
        Padding::parse("padding", padding)?,
        output_padding,
    )?)
}

/// Strides, dilation, padding and output padding of a transposed convolution.
type TransposeOptions<'a> = (&'a [usize], &'a [usize], &'a str, Option<&'a [usize]>);

/// Keras's transposed convolution of channels-last `x` `(batch, *spatial, channels)` with
/// `kernel` `(*kernel_size, filters, channels)`: `(batch, *output, filters)`, the output sizes
/// and padding as Keras's (`output_padding` None is Keras's default).
#[pyfunction]
#[pyo3(signature = (x, kernel, *, strides, dilation_rate, padding, output_padding = None))]
pub fn conv_transpose_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    strides: Vec<usize>,
    dilation_rate: Vec<usize>,
    padding: &str,
    output_padding: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let options = (
            &strides[..],
            &dilation_rate[..],
            padding,
            output_padding.as_deref(),
        );
        match float_dtype("x", x)? {
            Dtype::F32 => transpose_typed::<f32>(py, x, kernel, None, options),
            Dtype::F64 => transpose_typed::<f64>(py, x, kernel, None, options),
        }
    })
}

/// The gradients `(dx, d_kernel)` of `conv_transpose_forward(x, kernel, ...)` given `dy`, that
/// of its output.
#[pyfunction]
#[pyo3(signature = (x, kernel, dy, *, strides, dilation_rate, padding, output_padding = None))]
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    strides: Vec<usize>,
    dilation_rate: Vec<usize>,
    padding: &str,
    output_padding: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let options = (
            &strides[..],
            &dilation_rate[..],
            padding,
            output_padding.as_deref(),
        );
        match float_dtype("x", x)? {
            Dtype::F32 => transpose_typed::<f32>(py, x, kernel, Some(dy), options),
            Dtype::F64 => transpose_typed::<f64>(py, x, kernel, Some(dy), options),
        }
    })
}

/// The forward pass, or with `dy` the backward pass, of a transposed convolution.
fn transpose_typed<'py, T: Elem>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    dy: Option<&Bound<'py, PyAny>>,
    options: TransposeOptions<'_>,
) -> PyResult<Bound<'py, PyAny>> {
    let (x, kernel) = (read_any::<T>("x", x)?, read_any::<T>("kernel", kernel)?);
    let g = transposed_geometry(x.shape(), kernel.shape(), options)?;
    let dy = dy.map(|dy| read_any::<T>("dy", dy)).transpose()?;
    if let Some(dy) = &dy {
        crate::error::check_shape("dy", &g.input_shape(), dy.shape())?;
    }
    let (x_shape, y_shape, kernel_shape) = (g.output_shape(), g.input_shape(), g.kernel_shape());
    let conv = Conv::new(g);
    let (x, kernel, dy) = (
        x.as_array(),
        kernel.as_array(),
        dy.as_ref().map(|d| d.as_array()),
    );
    let threads = rayon::current_num_threads();
    let shaped = |v: Vec<T>, shape: &[usize]| {
        to_numpy(
            py,
            Array::from_shape_vec(IxDyn(shape), v).expect("computed shape"),
        )
    };
    let Some(dy) = dy else {
        let y = compute(py, conv.geometry().work(), |_| {
            let (x, kernel) = (x.as_standard_layout(), kernel.as_standard_layout());
            conv.input_gradient(
                kernel.as_slice().expect("standard"),
                x.as_slice().expect("standard"),
                threads,
            )
        })?;
        return Ok(shaped(y, &y_shape));
    };
    let (dx, dk) = compute(py, 2 * conv.geometry().work(), |_| {
        let (x, kernel, dy) = (
            x.as_standard_layout(),
            kernel.as_standard_layout(),
            dy.as_standard_layout(),
        );
        let (x, kernel, dy) = (
            x.as_slice().expect("standard"),
            kernel.as_slice().expect("standard"),
            dy.as_slice().expect("standard"),
        );
        let dx = conv.forward(dy, kernel, threads)?;
        let (_, dk) = conv.backward(dy, kernel, x, false, threads)?;
        Ok((dx.into_raw_vec_and_offset().0, dk))
    })?;
    PyTuple::new(py, [shaped(dx, &x_shape), shaped(dk, &kernel_shape)]).map(Bound::into_any)
}
