//! The binding of zoneout's training masks, `zoneout_masks`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert::{guarded, to_numpy};
use crate::core::zoneout::masks;

/// A `shape` array of 0/1 zoneout masks of `dtype` ("float32" or "float64") drawn from `seed`,
/// each element 1 with probability `rate` (see `crate::core::zoneout`).
#[pyfunction]
#[pyo3(signature = (seed, shape, rate, dtype = "float32"))]
pub fn zoneout_masks<'py>(
    py: Python<'py>,
    seed: u64,
    shape: (usize, usize, usize),
    rate: f64,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| match dtype {
        "float32" => Ok(to_numpy(py, py.detach(|| masks::<f32>(seed, rate, shape))?)),
        "float64" => Ok(to_numpy(py, py.detach(|| masks::<f64>(seed, rate, shape))?)),
        _ => Err(PyValueError::new_err(format!(
            "dtype: expected 'float32' or 'float64', received {dtype:?}"
        ))),
    })
}
