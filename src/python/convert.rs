//! Conversions at the boundary: numpy arrays in (checked, without copies), arrays out, errors
//! mapped to exceptions, and the one helper that runs core code with the GIL released.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use numpy::ndarray::{Array, Dimension};
use numpy::{
    Element, IntoPyArray, PyArray, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use super::ShapeError;
use crate::error::ShapeDisplay;
use crate::{Cancel, Error};

/// The element type of a call, taken from its main input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

/// The element types the bindings dispatch on, with their dtype.
pub trait Elem: crate::Float + Element {
    /// The dtype as the messages name it.
    const DTYPE: Dtype;
}

impl Elem for f32 {
    const DTYPE: Dtype = Dtype::F32;
}

impl Elem for f64 {
    const DTYPE: Dtype = Dtype::F64;
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }
}

/// Each core error as its Python exception.
impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        match err {
            Error::Shape { .. } => ShapeError::new_err(err.to_string()),
            Error::Value { .. } => PyValueError::new_err(err.to_string()),
            Error::Allocation { .. } | Error::Memory { .. } | Error::DeviceMemory(_) => {
                PyMemoryError::new_err(err.to_string())
            }
            Error::Device(_) => PyRuntimeError::new_err(err.to_string()),
            Error::Cancelled => PyKeyboardInterrupt::new_err(err.to_string()),
        }
    }
}

/// Calls of at least this many multiply-adds take long enough (milliseconds) that Ctrl-C must
/// be able to stop them.
const INTERRUPTIBLE_WORK: usize = 50_000_000;

/// How often a long call looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `work` with the GIL released; a core error or a panic becomes a Python exception.
///
/// `size` is the call's multiply-add count. A long call runs on a thread of rayon's pool while
/// this thread checks Python's signals every [`SIGNAL_POLL`]: on Ctrl-C it raises the work's
/// [`Cancel`] flag, waits for the work to stop at its next step and returns KeyboardInterrupt.
pub fn compute<R: Send>(
    py: Python<'_>,
    size: usize,
    work: impl FnOnce(Cancel) -> crate::Result<R> + Send,
) -> PyResult<R> {
    let (result, interrupt) = if size < INTERRUPTIBLE_WORK {
        (py.detach(|| catch_panic(|| work(Cancel::default()))), None)
    } else {
        run_interruptible(py, work)
    };
    match interrupt {
        Some(err) => Err(err),
        None => Ok(result.map_err(internal_error)??),
    }
}

/// Runs `work` on a thread of rayon's pool (no thread to start, and the work's parallel
/// parts are then the pool's own) with the GIL released while this thread looks for Ctrl-C;
/// returns the work's outcome and the KeyboardInterrupt, if one came.
fn run_interruptible<R: Send>(
    py: Python<'_>,
    work: impl FnOnce(Cancel) -> crate::Result<R> + Send,
) -> (Result<crate::Result<R>, String>, Option<PyErr>) {
    let (cancel, done) = (Cancel::new(), AtomicBool::new(false));
    let mut result = Err("the work did not run".to_string());
    let mut interrupt = None;
    py.detach(|| {
        rayon::in_place_scope(|scope| {
            let (waiter, token, done, out) =
                (std::thread::current(), cancel.clone(), &done, &mut result);
            scope.spawn(move |_| {
                *out = catch_panic(|| work(token));
                done.store(true, Ordering::Release);
                waiter.unpark();
            });
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(SIGNAL_POLL);
                if interrupt.is_none() {
                    interrupt = Python::attach(|py| py.check_signals()).err();
                    if interrupt.is_some() {
                        cancel.raise();
                    }
                }
            }
        });
    });
    (result, interrupt)
}

/// Runs a binding's body so that a panic in it becomes a RuntimeError instead of reaching Python.
pub fn guarded<R>(body: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    catch_panic(body).map_err(internal_error)?
}

/// Runs `work`, turning a panic (on this thread, or one that rayon hands back from a worker)
/// into the message it carried. This is the whole of the panic mapping that needs no Python,
/// so `cargo test --features python` checks it without an interpreter.
fn catch_panic<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| panic_message(panic.as_ref()))
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn internal_error(message: String) -> PyErr {
    PyRuntimeError::new_err(format!(
        "internal error in rnnkit (please report it): {message}"
    ))
}

/// `obj` as a positive integer (a Python or numpy int, not a bool); a too large int is a
/// ValueError like any other bad value, never an OverflowError.
pub fn positive_int(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let message = || {
        let shown = obj
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| type_name(obj));
        format!("{name}: expected a positive integer, received {shown}")
    };
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(message()));
    }
    match obj.extract::<i64>() {
        Ok(n) => usize::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| PyValueError::new_err(message())),
        Err(_) if obj.is_instance_of::<PyInt>() => Err(PyValueError::new_err(message())),
        Err(_) => Err(PyTypeError::new_err(message())),
    }
}

/// `obj` as an instance of the pyclass `T`, or a TypeError naming the argument.
pub fn instance<'a, 'py, T: pyo3::PyClass>(
    name: &str,
    class: &str,
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, T>> {
    obj.cast::<T>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected a {class}, received {}",
            type_name(obj)
        ))
    })
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn numpy_array<'a, 'py>(
    name: &str,
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let kind = type_name(obj);
        PyTypeError::new_err(format!("{name}: expected a numpy array, received {kind}"))
    })
}

/// The float dtype of `obj`, which must be a float32 or float64 numpy array.
pub fn float_dtype(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let arr = numpy_array(name, obj)?;
    let dtype = arr.dtype();
    let py = obj.py();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(Dtype::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(Dtype::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{name}: expected dtype float32 or float64, received {dtype}"
        )))
    }
}

/// Borrows `obj` as a read-only array of `T` with `ndim` axes (any strides; no copy).
///
/// `dims` names the axes for the error message, e.g. `"(batch, time, features)"`.
pub fn read<'py, T: Element, D: Dimension>(
    name: &str,
    obj: &Bound<'py, PyAny>,
    dims: &str,
    dtype_name: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    let arr = numpy_array(name, obj)?;
    if let Some(ndim) = D::NDIM.filter(|&n| n != arr.ndim()) {
        return Err(ShapeError::new_err(format!(
            "{name}: expected a {ndim}-d array {dims}, received shape {}",
            ShapeDisplay(arr.shape())
        )));
    }
    let typed = arr.cast::<PyArray<T, D>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected dtype {dtype_name}, received {}",
            arr.dtype()
        ))
    })?;
    typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// Reads an optional array argument (`None` is absent).
pub fn read_opt<'py, T: Element, D: Dimension>(
    name: &str,
    obj: Option<&Bound<'py, PyAny>>,
    dims: &str,
    dtype_name: &str,
) -> PyResult<Option<PyReadonlyArray<'py, T, D>>> {
    match obj {
        Some(o) if !o.is_none() => read(name, o, dims, dtype_name).map(Some),
        _ => Ok(None),
    }
}

/// A list of optional arrays, as `read_list` returns it.
pub type ArrayList<'py, T, D> = Vec<Option<PyReadonlyArray<'py, T, D>>>;

/// Reads a list of arrays whose entries may be None.
pub fn read_list<'py, T: Element, D: Dimension>(
    name: &str,
    obj: Option<&Bound<'py, PyAny>>,
    dims: &str,
    dtype_name: &str,
) -> PyResult<Option<ArrayList<'py, T, D>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.cast::<PyUntypedArray>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected a list of arrays, received a single array"
        )));
    }
    let items: Vec<Bound<'py, PyAny>> = obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected a list of arrays")))?
        .collect::<PyResult<_>>()?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| read_opt(&format!("{name}[{i}]"), Some(item), dims, dtype_name))
        .collect::<PyResult<Vec<_>>>()
        .map(Some)
}

/// The dtype name used in messages about arrays that must match the main input.
pub fn dtype_name(dtype: Dtype) -> &'static str {
    dtype.name()
}

/// Moves an owned array into a numpy array (no copy).
pub fn to_numpy<'py, T: Element, D: Dimension>(
    py: Python<'py>,
    a: Array<T, D>,
) -> Bound<'py, PyAny> {
    a.into_pyarray(py).into_any()
}

/// [`to_numpy`], or None.
pub fn optional_array<'py, T: Element, D: Dimension>(
    py: Python<'py>,
    a: Option<Array<T, D>>,
) -> Bound<'py, PyAny> {
    match a {
        Some(a) => to_numpy(py, a),
        None => py.None().into_bound(py),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet<R>(f: impl FnOnce() -> R) -> R {
        // The default hook would print every expected panic's backtrace into the test output.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = f();
        std::panic::set_hook(hook);
        out
    }

    #[test]
    fn a_result_passes_through() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        let err = || -> crate::Result<()> {
            Err(Error::Value {
                argument: "units".into(),
                expected: "a positive integer".into(),
                received: "0".into(),
            })
        };
        assert_eq!(catch_panic(err), Ok(err()));
    }

    #[test]
    fn a_panic_becomes_its_message() {
        let literal = quiet(|| catch_panic(|| -> u8 { panic!("boom") }));
        assert_eq!(literal, Err("boom".to_string()));
        let formatted = quiet(|| catch_panic(|| -> u8 { panic!("index {} of {}", 5, 3) }));
        assert_eq!(formatted, Err("index 5 of 3".to_string()));
        let other = quiet(|| catch_panic(|| std::panic::panic_any(42_u32)));
        assert_eq!(other, Err("unknown panic".to_string()));
    }

    #[test]
    fn a_panic_in_a_rayon_worker_is_caught_on_the_calling_thread() {
        let out = quiet(|| {
            catch_panic(|| {
                rayon::join(|| 1, || -> i32 { panic!("worker failed") });
            })
        });
        assert_eq!(out, Err("worker failed".to_string()));
    }

    #[test]
    fn an_ndarray_shape_panic_is_caught() {
        // The kind of panic validation exists to prevent: ndarray's own out-of-bounds check.
        let a = numpy::ndarray::Array2::<f32>::zeros((2, 3));
        let out = quiet(|| catch_panic(|| a[[5, 0]]));
        assert!(out.unwrap_err().contains("out of bounds"));
    }
}
