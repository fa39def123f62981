//! The binding of Keras's `Hashing` bins: `hash_strings` over UTF-8 strings packed in one buffer.

use numpy::ndarray::{Array1, Ix1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::convert::{guarded, read, to_numpy};
use crate::core::hashing::hash_to_bins;

/// The bins (uint64) of the strings `data[ends[i - 1]:ends[i]]`: `FarmHash` `Fingerprint64`
/// modulo `num_bins`, or SipHash-2-4 under the key `salt` when one is given.
#[pyfunction]
#[pyo3(signature = (data, ends, *, num_bins, salt=None))]
pub fn hash_strings<'py>(
    py: Python<'py>,
    data: &[u8],
    ends: &Bound<'py, PyAny>,
    num_bins: u64,
    salt: Option<(u64, u64)>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        if num_bins == 0 {
            return Err(PyValueError::new_err(
                "num_bins: expected a positive integer, received 0",
            ));
        }
        let ends = read::<u64, Ix1>("ends", ends, "(strings,)", "uint64")?;
        let ends: Vec<usize> = ends
            .as_array()
            .iter()
            .map(|&e| usize::try_from(e).unwrap_or(usize::MAX))
            .collect();
        if ends.windows(2).any(|w| w[0] > w[1]) || ends.last().is_some_and(|&e| e > data.len()) {
            return Err(PyValueError::new_err(format!(
                "ends: expected non-decreasing offsets at most {} (the length of data)",
                data.len()
            )));
        }
        let key = salt.map(|(low, high)| [low, high]);
        let bins = py.detach(|| hash_to_bins(data, &ends, num_bins, key));
        Ok(to_numpy(py, Array1::from(bins)))
    })
}
