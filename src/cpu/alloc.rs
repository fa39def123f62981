//! Fallible allocation of the large buffers, so an impossible size is an error, not an abort.

use std::alloc::{alloc_zeroed, Layout};
use std::sync::OnceLock;

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
    let too_large = || too_large(shape.slice(), what);
    let len = element_count(shape.slice(), what)?;
    let layout = Layout::array::<T>(len).map_err(|_| too_large())?;
    let data = if layout.size() == 0 {
        Vec::new()
    } else {
        // SAFETY: the layout has a non-zero size. `Float` is implemented only for f32 and f64,
        // whose all-zero bit pattern is 0.0, so the zeroed block holds `len` initialised values;
        // the Vec takes ownership with the same layout the block was allocated with.
        unsafe {
            let ptr = alloc_zeroed(layout).cast::<T>();
            if ptr.is_null() {
                return Err(too_large());
            }
            Vec::from_raw_parts(ptr, len, len)
        }
    };
    Ok(Array::from_shape_vec(shape, data).expect("length matches shape"))
}

/// An array of `shape` whose elements are whatever the allocator's block holds, for a buffer
/// every element of which is written before any is read: a recycled block is then not
/// zero-filled first (a serial pass over megabytes per call, see [`zeros`]).
///
/// # Safety
/// The caller writes every element before reading it (or drops the array unread).
pub unsafe fn overwritten<T: Float, D: Dimension>(
    shape: impl IntoDimension<Dim = D>,
    what: &'static str,
) -> Result<Array<T, D>> {
    let shape = shape.into_dimension();
    let len = element_count(shape.slice(), what)?;
    let mut data = reserved::<T>(len, what)?;
    // SAFETY: `reserved` gave room for `len` values. `Float` is implemented only for f32 and
    // f64, which have no invalid bit patterns and no destructors, and the caller writes each
    // value before reading it.
    unsafe { data.set_len(len) };
    Ok(Array::from_shape_vec(shape, data).expect("length matches shape"))
}

/// An empty Vec with room for `len` values, to be filled by pushing (no zero-filling pass), or
/// [`Error::Allocation`] when the memory cannot be obtained.
pub fn reserved<T>(len: usize, what: &'static str) -> Result<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| too_large(&[len], what))?;
    Ok(data)
}

/// The number of elements of `dims`, or [`Error::Allocation`] when it overflows.
fn element_count(dims: &[usize], what: &'static str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| too_large(dims, what))
}

fn too_large(dims: &[usize], what: &'static str) -> Error {
    Error::Allocation {
        what,
        elements: dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" x "),
    }
}

/// Fails with [`Error::Memory`] when `elements` values of `T`, all the buffers of one call
/// together, would exceed the machine's physical memory.
///
/// With memory overcommit, blocks that each succeed can together outgrow the RAM and get the
/// process killed once their pages are touched, so a call checks its total before allocating.
/// Where the size of the memory is unknown (not Linux) only each buffer's own allocation is
/// checked.
pub fn check_total<T>(elements: usize, what: &str) -> Result<()> {
    let needed = elements.saturating_mul(std::mem::size_of::<T>());
    check_bytes(u64::try_from(needed).unwrap_or(u64::MAX), what)
}

/// Fails with [`Error::Memory`] when `needed` bytes exceed the machine's physical memory: the
/// one guard, on the one measure of the RAM, for the core's buffers and Python's arrays alike.
pub fn check_bytes(needed: u64, what: &str) -> Result<()> {
    match physical_memory() {
        Some(available) if needed > available => Err(Error::Memory {
            what: what.to_string(),
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

/// The machine's RAM in bytes (`MemTotal` of /proc/meminfo), read once.
fn physical_memory() -> Option<u64> {
    static TOTAL: OnceLock<Option<u64>> = OnceLock::new();
    *TOTAL.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    })
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
        let overflow = zeros::<f64, _>((usize::MAX, 3), "test").unwrap_err();
        assert!(
            overflow.to_string().starts_with("cannot allocate"),
            "{overflow}"
        );
    }

    #[test]
    fn a_total_beyond_the_memory_is_an_error_before_allocating() {
        assert!(check_total::<f32>(1 << 20, "small").is_ok());
        if let Some(ram) = physical_memory() {
            let elements = usize::try_from(ram / 4 + 1).unwrap();
            let err = check_total::<f32>(elements, "the forward pass").unwrap_err();
            assert!(
                err.to_string().starts_with("the forward pass needs "),
                "{err}"
            );
            assert!(err.to_string().ends_with(" GiB of memory"), "{err}");
            assert!(check_total::<f32>(elements - 1, "the forward pass").is_ok());
        }
    }
}
