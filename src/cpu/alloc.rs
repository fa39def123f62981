//! Fallible allocation of the large buffers, so an impossible size is an error, not an abort.

use std::alloc::{alloc_zeroed, Layout};

use ndarray::{Array, Dimension, IntoDimension};

use crate::core::Float;
use crate::error::{Error, Result};

/// A zero-filled array of `shape`, or [`Error::Allocation`] when its size overflows or the memory
/// cannot be obtained.
///
/// The memory comes zeroed from the allocator (large blocks as fresh pages from the OS), so no
/// serial pass writes the zeros: pages are first touched by whichever thread fills them.
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
        .ok_or_else(too_large)?;
    let layout = Layout::array::<T>(len).map_err(|_| too_large())?;
    let data = if layout.size() == 0 {
        Vec::new()
    } else {
        // SAFETY: the layout has a non-zero size. `Float` is implemented only for f32 and f64,
        // whose all-zero bit pattern is 0.0, so the zeroed block holds `len` initialised values;
        // the Vec takes ownership with the same layout the block was allocated with.
        unsafe {
            let ptr = alloc_zeroed(layout) as *mut T;
            if ptr.is_null() {
                return Err(too_large());
            }
            Vec::from_raw_parts(ptr, len, len)
        }
    };
    Ok(Array::from_shape_vec(shape, data).expect("length matches shape"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_zero_and_impossible_sizes_are_errors() {
        let a: Array<f32, _> = zeros((3, 5, 7), "test").unwrap();
        assert!(a.iter().all(|&v| v == 0.0) && a.dim() == (3, 5, 7));
        let empty: Array<f64, _> = zeros((0, 4), "test").unwrap();
        assert_eq!(empty.len(), 0);
        let huge = zeros::<f64, _>((usize::MAX / 4, 3), "test").unwrap_err();
        assert!(huge.to_string().starts_with("cannot allocate"), "{huge}");
    }
}
