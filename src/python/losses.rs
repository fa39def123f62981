//! The sparse softmax cross-entropy from logits (`crate::core::loss`) on numpy arrays.

use numpy::ndarray::{Ix1, Ix2};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{compute, dtype_name, float_dtype, guarded, read, to_numpy, Dtype, Elem};
use crate::core::loss::{
    sparse_softmax_cross_entropy as forward, sparse_softmax_cross_entropy_backward as backward,
};

/// The cross-entropy of each row of `logits` (float32 or float64, `(rows, classes)`) against
/// its int64 label, a label outside `[0, classes)` counting 0: returns `(losses,
/// probabilities)`, the softmax probabilities being what the backward pass reads.
#[pyfunction]
pub fn sparse_softmax_cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| match float_dtype("logits", logits)? {
        Dtype::F32 => forward_typed::<f32>(py, logits, labels),
        Dtype::F64 => forward_typed::<f64>(py, logits, labels),
    })
}

fn forward_typed<'py, T: Elem>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let logits = read::<T, Ix2>("logits", logits, "(rows, classes)", dtype_name(T::DTYPE))?;
    let labels = read::<i64, Ix1>("labels", labels, "(rows,)", "int64")?;
    let (logits, labels) = (logits.as_array(), labels.as_array());
    let (losses, probabilities) = compute(py, logits.len(), |_| forward(logits, labels))?;
    PyTuple::new(py, [to_numpy(py, losses), to_numpy(py, probabilities)])
}

/// The gradient of `sparse_softmax_cross_entropy`'s losses with respect to the logits, given
/// the losses' gradient `grad` (`(rows,)`) and the `probabilities` it returned.
#[pyfunction]
pub fn sparse_softmax_cross_entropy_backward<'py>(
    py: Python<'py>,
    probabilities: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| match float_dtype("probabilities", probabilities)? {
        Dtype::F32 => backward_typed::<f32>(py, probabilities, labels, grad),
        Dtype::F64 => backward_typed::<f64>(py, probabilities, labels, grad),
    })
}

fn backward_typed<'py, T: Elem>(
    py: Python<'py>,
    probabilities: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let dtype = dtype_name(T::DTYPE);
    let probabilities = read::<T, Ix2>("probabilities", probabilities, "(rows, classes)", dtype)?;
    let labels = read::<i64, Ix1>("labels", labels, "(rows,)", "int64")?;
    let grad = read::<T, Ix1>("grad", grad, "(rows,)", dtype)?;
    let (p, labels, grad) = (probabilities.as_array(), labels.as_array(), grad.as_array());
    Ok(to_numpy(
        py,
        compute(py, p.len(), |_| backward(p, labels, grad))?,
    ))
}
