//! The Python extension `rnnkit._core`: the only place that knows about Python.
//!
//! Arrays come in as numpy views without copies (any strides), the GIL is released while the
//! core computes, saved activations stay in Rust behind an opaque object, and every failure,
//! panics included, becomes a Python exception.

mod convert;
mod functions;

use pyo3::prelude::*;

pyo3::create_exception!(
    rnnkit,
    ShapeError,
    pyo3::exceptions::PyValueError,
    "An array argument has the wrong shape; the message names the argument, the expected and the received shapes."
);

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::functions::{
        bidirectional_backward, bidirectional_forward, rnn_backward, rnn_forward, CellSpec,
        SavedActivations,
    };
    #[pymodule_export]
    use super::ShapeError;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("ACTIVATIONS", crate::Activation::names())
    }
}
