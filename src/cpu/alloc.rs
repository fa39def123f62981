//! Fallible allocation of the large buffers, so an impossible size is an error, not an abort.

use ndarray::{Array, Dimension, IntoDimension};

use crate::core::Float;
use crate::error::{Error, Result};

/// A zero-filled array of `shape`, or [`Error::Allocation`] when its size overflows or the memory
/// cannot be reserved.
pub fn zeros<T: Float, D: Dimension>(
    shape: impl IntoDimension<Dim = D>,
    what: &'static str,
) -> Result<Array<T, D>> {
    let shape = shape.into_dimension();
    let dims = shape.slice().to_vec();
    let too_large = || Error::Allocation {
        what,
        elements: dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" x "),
    };
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| {
            n.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(too_large)?;
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| too_large())?;
    data.resize(len, T::zero());
    Ok(Array::from_shape_vec(shape, data).expect("length matches shape"))
}
