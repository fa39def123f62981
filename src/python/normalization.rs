//! `BatchNormalization`'s training and inference arithmetic (`crate::core::normalization`) on
//! numpy arrays: inputs as `(rows, features)` matrices, one float dtype per call.

use numpy::ndarray::{Ix1, Ix2};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{
    compute, dtype_name, float_dtype, guarded, optional_array, read, read_opt, to_numpy, Dtype,
    Elem,
};
use crate::core::normalization::{moments, normalize, normalize_backward};

/// The statistics and parameters a call reads: `(name, array)`, the array optional.
type Vectors<'a, 'py> = [(&'a str, Option<&'a Bound<'py, PyAny>>); 4];

/// Normalizes the rows of `x` (features along axis 1): with `mean` and `variance` (moving
/// statistics, inference) by those, else by the batch's own moments. Returns `(output, mean,
/// variance)`, the moments being the batch's (None when given). Every array has `x`'s dtype,
/// float32 or float64; `epsilon` is rounded to it.
#[pyfunction]
#[pyo3(signature = (x, gamma, beta, mean = None, variance = None, *, epsilon))]
pub fn batch_norm_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    beta: Option<&Bound<'py, PyAny>>,
    mean: Option<&Bound<'py, PyAny>>,
    variance: Option<&Bound<'py, PyAny>>,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let vectors = [
            ("gamma", gamma),
            ("beta", beta),
            ("mean", mean),
            ("variance", variance),
        ];
        match float_dtype("x", x)? {
            Dtype::F32 => forward_typed::<f32>(py, x, vectors, epsilon),
            Dtype::F64 => forward_typed::<f64>(py, x, vectors, epsilon),
        }
    })
}

fn forward_typed<'py, T: Elem>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    vectors: Vectors<'_, 'py>,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    let dtype = dtype_name(T::DTYPE);
    let x = read::<T, Ix2>("x", x, "(rows, features)", dtype)?;
    let [gamma, beta, mean, variance] =
        vectors.map(|(name, obj)| read_opt::<T, Ix1>(name, obj, "(features,)", dtype));
    let (gamma, beta, mean, variance) = (gamma?, beta?, mean?, variance?);
    if mean.is_some() != variance.is_some() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "mean and variance: expected both or neither, received one",
        ));
    }
    let epsilon = T::from_f64(epsilon).expect("a float converts to a float");
    let x = x.as_array();
    let (gamma, beta) = (
        gamma.as_ref().map(|g| g.as_array()),
        beta.as_ref().map(|b| b.as_array()),
    );
    let given = mean
        .as_ref()
        .zip(variance.as_ref())
        .map(|(m, v)| (m.as_array(), v.as_array()));
    let (output, batch) = compute(py, x.len(), |_| {
        let batch = match given {
            Some(_) => None,
            None => Some(moments(x)?),
        };
        let (m, v) = match (&batch, given) {
            (Some(b), _) => (b.mean.view(), b.variance.view()),
            (None, Some((m, v))) => (m, v),
            (None, None) => unreachable!("the batch moments exist when none are given"),
        };
        Ok((normalize(x, m, v, gamma, beta, epsilon)?, batch))
    })?;
    let (mean, variance) = batch.map(|b| (b.mean, b.variance)).unzip();
    PyTuple::new(
        py,
        [
            to_numpy(py, output),
            optional_array(py, mean),
            optional_array(py, variance),
        ],
    )
}

/// The gradients of `batch_norm_forward` with the batch's moments (`mean`, `variance`, as it
/// returned them) given the output's gradient `grad`: `(d_x, d_gamma, d_beta)`, `d_gamma` None
/// without `gamma`. Every array has `x`'s dtype; `epsilon` is rounded to it.
#[pyfunction]
#[pyo3(signature = (x, mean, variance, gamma, grad, *, epsilon))]
pub fn batch_norm_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    mean: &Bound<'py, PyAny>,
    variance: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    grad: &Bound<'py, PyAny>,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let arrays = (x, mean, variance, gamma, grad);
        match float_dtype("x", x)? {
            Dtype::F32 => backward_typed::<f32>(py, arrays, epsilon),
            Dtype::F64 => backward_typed::<f64>(py, arrays, epsilon),
        }
    })
}

/// The arrays `batch_norm_backward` takes: x, mean, variance, gamma, grad.
type BackwardArrays<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
    &'a Bound<'py, PyAny>,
);

fn backward_typed<'py, T: Elem>(
    py: Python<'py>,
    (x, mean, variance, gamma, grad): BackwardArrays<'_, 'py>,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    let dtype = dtype_name(T::DTYPE);
    let x = read::<T, Ix2>("x", x, "(rows, features)", dtype)?;
    let grad = read::<T, Ix2>("grad", grad, "(rows, features)", dtype)?;
    let mean = read::<T, Ix1>("mean", mean, "(features,)", dtype)?;
    let variance = read::<T, Ix1>("variance", variance, "(features,)", dtype)?;
    let gamma = read_opt::<T, Ix1>("gamma", gamma, "(features,)", dtype)?;
    let epsilon = T::from_f64(epsilon).expect("a float converts to a float");
    let x = x.as_array();
    let (gamma, grad) = (gamma.as_ref().map(|g| g.as_array()), grad.as_array());
    let (mean, variance) = (mean.as_array(), variance.as_array());
    let grads = compute(py, x.len(), |_| {
        normalize_backward(x, mean, variance, gamma, grad, epsilon)
    })?;
    PyTuple::new(
        py,
        [
            to_numpy(py, grads.x),
            optional_array(py, grads.gamma),
            to_numpy(py, grads.beta),
        ],
    )
}
