//! `CellSpec`: a recurrent cell's kind, size and functions, as Python sees it.

use pyo3::prelude::*;

use pyo3::exceptions::PyTypeError;

use super::convert::{positive_int, type_name};
use crate::{Activation, CellKind};

/// A recurrent cell's kind, size and functions (no weights).
#[pyclass(frozen, name = "CellSpec", module = "rnnkit._core")]
pub struct CellSpec {
    inner: crate::CellSpec,
}

#[pymethods]
impl CellSpec {
    #[new]
    #[pyo3(
        signature = (kind, units, activation = Some("tanh"), recurrent_activation = Some("sigmoid"), use_bias = true, reset_after = true, *, peephole = false, projection = None, layer_norm = false),
        text_signature = "(kind, units, activation='tanh', recurrent_activation='sigmoid', use_bias=True, reset_after=True, *, peephole=False, projection=None, layer_norm=False)"
    )]
    #[allow(clippy::fn_params_excessive_bools, clippy::too_many_arguments)] // Keras's arguments, named
    fn new(
        kind: &Bound<'_, PyAny>,
        units: &Bound<'_, PyAny>,
        activation: Option<&str>,
        recurrent_activation: Option<&str>,
        use_bias: bool,
        reset_after: bool,
        peephole: bool,
        projection: Option<&Bound<'_, PyAny>>,
        layer_norm: bool,
    ) -> PyResult<Self> {
        let projection = projection
            .filter(|p| !p.is_none())
            .map(|p| positive_int("projection", p))
            .transpose()?;
        let kind: String = kind.extract().map_err(|_| {
            let expected = CellKind::EXPECTED;
            PyTypeError::new_err(format!(
                "kind: expected {expected}, received {}",
                type_name(kind)
            ))
        })?;
        let act =
            |argument, name: Option<&str>| Activation::parse(argument, name.unwrap_or("linear"));
        let inner = crate::CellSpec::new(
            CellKind::from_name(&kind, reset_after)?,
            positive_int("units", units)?,
            act("activation", activation)?,
            act("recurrent_activation", recurrent_activation)?,
            use_bias,
        )?
        .with_peephole(peephole)?
        .with_projection(projection)?
        .with_layer_norm(layer_norm)?;
        Ok(Self { inner })
    }

    /// `"simple_rnn"`, `"gru"`, `"lstm"` or `"indrnn"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.name()
    }

    #[getter]
    fn units(&self) -> usize {
        self.inner.units
    }

    #[getter]
    fn activation(&self) -> &'static str {
        self.inner.activation.name()
    }

    #[getter]
    fn recurrent_activation(&self) -> &'static str {
        self.inner.recurrent_activation.name()
    }

    #[getter]
    fn use_bias(&self) -> bool {
        self.inner.use_bias
    }

    /// GRU's `reset_after`; false for the other cells.
    #[getter]
    fn reset_after(&self) -> bool {
        self.inner.kind == CellKind::Gru { reset_after: true }
    }

    /// Whether an LSTM has peephole connections (weights `(3, units)` after the bias).
    #[getter]
    fn peephole(&self) -> bool {
        self.inner.peephole
    }

    /// An LSTM's projected size of `h` (weights `(units, projection)` last), or None.
    #[getter]
    fn projection(&self) -> Option<usize> {
        self.inner.projection
    }

    /// Whether the cell is layer-normalised (weights `layer_norm (2, gates·units)`, then an
    /// LSTM's `cell_norm (2, units)`, last).
    #[getter]
    fn layer_norm(&self) -> bool {
        self.inner.layer_norm
    }

    /// Gate blocks in the kernels (1, 3 or 4).
    #[getter]
    fn gates(&self) -> usize {
        self.inner.gates()
    }

    /// Number of state arrays (2 for LSTM, else 1).
    #[getter]
    fn state_count(&self) -> usize {
        self.inner.state_count()
    }

    /// Expected bias shape: `(gates·units,)`, or `(2, 3·units)` for GRU with `reset_after`.
    #[getter]
    fn bias_shape(&self) -> Vec<usize> {
        bias_shape(&self.inner)
    }

    fn __repr__(&self) -> String {
        let flag = |b: bool| if b { "True" } else { "False" };
        let peephole = if self.peephole() {
            ", peephole=True"
        } else {
            ""
        };
        let projection = self
            .projection()
            .map_or(String::new(), |p| format!(", projection={p}"));
        let layer_norm = if self.layer_norm() {
            ", layer_norm=True"
        } else {
            ""
        };
        format!(
            "CellSpec(kind='{}', units={}, activation='{}', recurrent_activation='{}', use_bias={}, reset_after={}{peephole}{projection}{layer_norm})",
            self.kind(),
            self.units(),
            self.activation(),
            self.recurrent_activation(),
            flag(self.use_bias()),
            flag(self.reset_after()),
        )
    }
}

/// The bias's shape as Python sees it: `(gates·units,)`, or `(2, 3·units)` with two rows.
pub(super) fn bias_shape(spec: &crate::CellSpec) -> Vec<usize> {
    if spec.bias_rows() == 2 {
        vec![2, spec.width()]
    } else {
        vec![spec.width()]
    }
}

impl CellSpec {
    /// The core's spec.
    pub(super) fn spec(&self) -> crate::CellSpec {
        self.inner
    }
}
