//! The functions and classes of `rnnkit._core`: a cell spec, the fused sequence and
//! bidirectional passes, and the opaque object holding saved activations.

use numpy::ndarray::{ArrayView2, Axis, Ix1, Ix2, IxDyn};
use numpy::{Element, PyReadonlyArray, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyTuple};

use super::convert::{
    compute, dtype_name, float_dtype, guarded, optional_array, read, read_list, read_opt, to_numpy,
    Dtype,
};
use super::ShapeError;
use crate::bidirectional::{self, BidirectionalSaved, Direction};
use crate::core::optimizer::{AdamState, AdamStep, SgdStep};
#[cfg(feature = "cuda")]
use crate::cuda::{DeviceSaved, Gpu};
use crate::error::ShapeDisplay;
use crate::{
    Activation, Cancel, CellKind, Cpu, Engine, Float, Gradients, MergeMode, OutputGrad, Saved,
    SequenceInput, SequenceOptions, Weights,
};

/// A recurrent cell's kind, size and functions (no weights).
#[pyclass(frozen, name = "CellSpec", module = "rnnkit._core")]
pub struct CellSpec {
    inner: crate::CellSpec,
}

#[pymethods]
impl CellSpec {
    #[new]
    #[pyo3(signature = (kind, units, activation = Some("tanh"), recurrent_activation = Some("sigmoid"), use_bias = true, reset_after = true))]
    fn new(
        kind: &Bound<'_, PyAny>,
        units: &Bound<'_, PyAny>,
        activation: Option<&str>,
        recurrent_activation: Option<&str>,
        use_bias: bool,
        reset_after: bool,
    ) -> PyResult<Self> {
        let kinds = "one of 'simple_rnn', 'gru', 'lstm'";
        let name: String = kind.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "kind: expected {kinds}, received {}",
                type_name(kind)
            ))
        })?;
        let kind = match name.as_str() {
            "simple_rnn" => CellKind::SimpleRnn,
            "gru" => CellKind::Gru { reset_after },
            "lstm" => CellKind::Lstm,
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind: expected {kinds}, received '{other}'"
                )))
            }
        };
        let units = positive_int("units", units)?;
        let act = |name: Option<&str>, arg: &str| {
            Activation::from_name(name.unwrap_or("linear"))
                .map_err(|e| PyValueError::new_err(e.to_string().replacen("activation", arg, 1)))
        };
        let inner = crate::CellSpec::new(
            kind,
            units,
            act(activation, "activation")?,
            act(recurrent_activation, "recurrent_activation")?,
            use_bias,
        )
        .map_err(super::convert::to_py_err)?;
        Ok(Self { inner })
    }

    /// `"simple_rnn"`, `"gru"` or `"lstm"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            CellKind::SimpleRnn => "simple_rnn",
            CellKind::Gru { .. } => "gru",
            CellKind::Lstm => "lstm",
        }
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
        format!(
            "CellSpec(kind='{}', units={}, activation='{}', recurrent_activation='{}', use_bias={}, reset_after={})",
            self.kind(),
            self.units(),
            self.activation(),
            self.recurrent_activation(),
            if self.use_bias() { "True" } else { "False" },
            if self.reset_after() { "True" } else { "False" },
        )
    }
}

/// `obj` as a positive integer (a Python or numpy int, not a bool); a too large int is a
/// ValueError like any other bad value, never an OverflowError.
fn positive_int(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
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
fn instance<'a, 'py, T: pyo3::PyClass>(
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

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn bias_shape(spec: &crate::CellSpec) -> Vec<usize> {
    if spec.bias_rows() == 2 {
        vec![2, spec.width()]
    } else {
        vec![spec.width()]
    }
}

/// Activations saved by a forward pass for its backward pass. Opaque; freed with the object
/// (weak references let tests see that a tape releases them).
#[pyclass(frozen, weakref, name = "SavedActivations", module = "rnnkit._core")]
pub struct SavedActivations {
    inner: SavedInner,
}

enum SavedInner {
    Sequence32(Saved<f32>),
    Sequence64(Saved<f64>),
    Bidirectional32(BidirectionalSaved<f32>),
    Bidirectional64(BidirectionalSaved<f64>),
    #[cfg(feature = "cuda")]
    Device(DeviceSaved),
    #[cfg(feature = "cuda")]
    DeviceBidirectional(BidirectionalSaved<f32, DeviceSaved>),
}

#[pymethods]
impl SavedActivations {
    fn __repr__(&self) -> &'static str {
        match self.inner {
            SavedInner::Sequence32(_) | SavedInner::Sequence64(_) => {
                "<SavedActivations of a sequence pass>"
            }
            #[cfg(feature = "cuda")]
            SavedInner::Device(_) => "<SavedActivations of a sequence pass on the GPU>",
            #[cfg(feature = "cuda")]
            SavedInner::DeviceBidirectional(_) => {
                "<SavedActivations of a bidirectional pass on the GPU>"
            }
            _ => "<SavedActivations of a bidirectional pass>",
        }
    }
}

/// The element types the bindings dispatch on.
trait Elem: Float + Element {
    const DTYPE: Dtype;
}

impl Elem for f32 {
    const DTYPE: Dtype = Dtype::F32;
}

impl Elem for f64 {
    const DTYPE: Dtype = Dtype::F64;
}

/// Where a call computes: the `device` argument of the forward functions.
#[derive(Clone, Copy)]
enum Device {
    Cpu,
    #[cfg(feature = "cuda")]
    Gpu(&'static Gpu),
}

impl Device {
    /// Parses `device` (None or "cpu", "cuda"); "cuda" without a usable GPU is a RuntimeError
    /// saying why.
    fn from_name(name: Option<&str>) -> PyResult<Self> {
        match name {
            None | Some("cpu") => Ok(Self::Cpu),
            #[cfg(feature = "cuda")]
            Some("cuda") => gpu().map(Self::Gpu),
            #[cfg(not(feature = "cuda"))]
            Some("cuda") => Err(PyRuntimeError::new_err(NO_CUDA)),
            Some(other) => Err(PyValueError::new_err(format!(
                "device: expected 'cpu' or 'cuda', received '{other}'"
            ))),
        }
    }
}

/// The GPU, or a RuntimeError saying why there is none.
#[cfg(feature = "cuda")]
fn gpu() -> PyResult<&'static Gpu> {
    crate::cuda::gpu()
        .map_err(|why| PyRuntimeError::new_err(format!("device 'cuda' is not available: {why}")))
}

#[cfg(not(feature = "cuda"))]
const NO_CUDA: &str =
    "device 'cuda' is not available: this build of rnnkit has no GPU support (the cuda feature)";

/// One direction's arrays, borrowed from numpy for the duration of a call.
struct DirectionArrays<'py, T: Element> {
    kernel: PyReadonlyArray2<'py, T>,
    recurrent_kernel: PyReadonlyArray2<'py, T>,
    bias: Option<PyReadonlyArray<'py, T, IxDyn>>,
    initial_states: Option<Vec<PyReadonlyArray2<'py, T>>>,
    input_dropout: Option<PyReadonlyArray3<'py, T>>,
    recurrent_dropout: Option<PyReadonlyArray3<'py, T>>,
}

/// The raw Python arguments of one direction; `prefix` names them in messages (`""`, `"fw_"`, `"bw_"`).
struct DirectionArgs<'a, 'py> {
    prefix: &'static str,
    spec: crate::CellSpec,
    weights: &'a Bound<'py, PyAny>,
    initial_states: Option<&'a Bound<'py, PyAny>>,
    input_dropout: Option<&'a Bound<'py, PyAny>>,
    recurrent_dropout: Option<&'a Bound<'py, PyAny>>,
}

impl<'py> DirectionArgs<'_, 'py> {
    fn read<T: Elem>(&self) -> PyResult<DirectionArrays<'py, T>> {
        let p = self.prefix;
        let dn = dtype_name(T::DTYPE);
        let items: Vec<Bound<'py, PyAny>> = self
            .weights
            .try_iter()
            .and_then(|it| it.collect::<PyResult<_>>())
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "{p}weights: expected (kernel, recurrent_kernel, bias)"
                ))
            })?;
        if !(2..=3).contains(&items.len()) {
            return Err(PyValueError::new_err(format!(
                "{p}weights: expected (kernel, recurrent_kernel, bias), received {} items",
                items.len()
            )));
        }
        let kernel: PyReadonlyArray2<T> = read(
            &format!("{p}kernel"),
            &items[0],
            "(input_dim, gates*units)",
            dn,
        )?;
        let recurrent_kernel: PyReadonlyArray2<T> = read(
            &format!("{p}recurrent_kernel"),
            &items[1],
            "(units, gates*units)",
            dn,
        )?;
        let bias = match items.get(2).filter(|b| !b.is_none()) {
            None => None,
            Some(b) => {
                let expected = bias_shape(&self.spec);
                let arr: PyReadonlyArray<'py, T, IxDyn> = read(&format!("{p}bias"), b, "", dn)?;
                if arr.shape() != expected.as_slice() {
                    return Err(ShapeError::new_err(format!(
                        "{p}bias: expected shape {}, received {}",
                        ShapeDisplay(&expected),
                        ShapeDisplay(arr.shape())
                    )));
                }
                Some(arr)
            }
        };
        let initial_states = read_list::<T, Ix2>(
            &format!("{p}initial_states"),
            self.initial_states,
            "(batch, units)",
            dn,
        )?
        .map(|states| {
            states
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    s.ok_or_else(|| {
                        PyTypeError::new_err(format!(
                            "{p}initial_states[{i}]: expected an array, received None"
                        ))
                    })
                })
                .collect::<PyResult<Vec<_>>>()
        })
        .transpose()?;
        Ok(DirectionArrays {
            kernel,
            recurrent_kernel,
            bias,
            initial_states,
            input_dropout: read_opt(
                &format!("{p}input_dropout"),
                self.input_dropout,
                "(gates, batch, features)",
                dn,
            )?,
            recurrent_dropout: read_opt(
                &format!("{p}recurrent_dropout"),
                self.recurrent_dropout,
                "(gates, batch, units)",
                dn,
            )?,
        })
    }
}

impl<'py, T: Elem> DirectionArrays<'py, T> {
    fn weights(&self) -> Weights<'_, T> {
        Weights {
            kernel: self.kernel.as_array(),
            recurrent_kernel: self.recurrent_kernel.as_array(),
            bias: self.bias.as_ref().map(|b| {
                let b = b.as_array();
                match b.ndim() {
                    1 => b
                        .into_dimensionality::<Ix1>()
                        .expect("1-d")
                        .insert_axis(Axis(0)),
                    _ => b.into_dimensionality::<Ix2>().expect("2-d"),
                }
            }),
        }
    }

    fn input<'a>(
        &'a self,
        x: &'a PyReadonlyArray3<'py, T>,
        mask: Option<&'a PyReadonlyArray2<'py, bool>>,
    ) -> SequenceInput<'a, T> {
        SequenceInput {
            x: x.as_array(),
            initial_states: self
                .initial_states
                .as_ref()
                .map(|s| s.iter().map(|a| a.as_array()).collect()),
            mask: mask.map(|m| m.as_array()),
            input_dropout: self.input_dropout.as_ref().map(|m| m.as_array()),
            recurrent_dropout: self.recurrent_dropout.as_ref().map(|m| m.as_array()),
            cancel: Cancel::default(),
        }
    }
}

/// `(d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_state, ...])`, the bias gradient
/// shaped like the bias.
fn weight_grads<'py, T: Elem>(
    py: Python<'py>,
    g: Gradients<T>,
    bias_rows: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let bias = match g.bias {
        Some(b) if bias_rows == 1 => to_numpy(py, b.index_axis_move(Axis(0), 0)),
        Some(b) => to_numpy(py, b),
        None => py.None().into_bound(py),
    };
    let states: Vec<_> = g
        .initial_states
        .into_iter()
        .map(|s| to_numpy(py, s))
        .collect();
    PyTuple::new(
        py,
        [
            to_numpy(py, g.kernel),
            to_numpy(py, g.recurrent_kernel),
            bias,
            states.into_pyobject(py)?.into_any(),
        ],
    )
}

/// The multiply-adds of the backward pass of `saved`'s forward pass.
fn backward_size<T: Float, E: Engine<T>>(saved: &E::Saved) -> usize {
    let (b, t, f, _) = E::dims(saved);
    E::spec(saved).multiply_adds(b, t, f).saturating_mul(2)
}

/// Views of a list of optional arrays.
fn views<'a, T: Element>(
    arrays: &'a [Option<PyReadonlyArray2<'_, T>>],
) -> Vec<Option<ArrayView2<'a, T>>> {
    arrays
        .iter()
        .map(|d| d.as_ref().map(|d| d.as_array()))
        .collect()
}

fn sequence_forward<'py, T: Elem, E: Engine<T>>(
    py: Python<'py>,
    engine: &E,
    wrap: fn(E::Saved) -> SavedInner,
    args: &DirectionArgs<'_, 'py>,
    x: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyAny>>,
    options: SequenceOptions,
) -> PyResult<Bound<'py, PyTuple>> {
    let x: PyReadonlyArray3<T> = read("x", x, "(batch, time, features)", dtype_name(T::DTYPE))?;
    let mask: Option<PyReadonlyArray2<bool>> = read_opt("mask", mask, "(batch, time)", "bool")?;
    let arrays = args.read::<T>()?;
    let (weights, mut input) = (arrays.weights(), arrays.input(&x, mask.as_ref()));
    let spec = args.spec;
    let (b, t, f) = input.x.dim();
    let size = spec.multiply_adds(b, t, f);
    let out = compute(py, size, |cancel| {
        input.cancel = cancel;
        engine.forward(&spec, &weights, &input, options, None)
    })?;
    let states: Vec<_> = out
        .final_states
        .into_iter()
        .map(|s| to_numpy(py, s))
        .collect();
    let saved = match options.inference {
        true => py.None().into_bound(py),
        false => Bound::new(
            py,
            SavedActivations {
                inner: wrap(out.saved),
            },
        )?
        .into_any(),
    };
    PyTuple::new(
        py,
        [
            to_numpy(py, out.outputs),
            states.into_pyobject(py)?.into_any(),
            saved,
        ],
    )
}

/// Runs a cell over a sequence.
///
/// Returns `(outputs, final_states, saved)`: outputs `(batch, time, units)` in processing order
/// (`(batch, 1, units)`, the last one, with `return_sequences=False`), the list of final states,
/// and the activations `rnn_backward` needs (None with `inference`: no backward pass follows,
/// so no copy of the weights is kept). `device` is "cpu" (or None) or "cuda" (float32 only:
/// float64 computes on the CPU).
#[pyfunction]
#[pyo3(signature = (spec, weights, x, *, initial_states = None, mask = None, input_dropout = None, recurrent_dropout = None, go_backwards = false, zero_output_for_mask = false, return_sequences = true, device = None, inference = false))]
#[allow(clippy::too_many_arguments)]
pub fn rnn_forward<'py>(
    py: Python<'py>,
    spec: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    initial_states: Option<&Bound<'py, PyAny>>,
    mask: Option<&Bound<'py, PyAny>>,
    input_dropout: Option<&Bound<'py, PyAny>>,
    recurrent_dropout: Option<&Bound<'py, PyAny>>,
    go_backwards: bool,
    zero_output_for_mask: bool,
    return_sequences: bool,
    device: Option<&str>,
    inference: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let device = Device::from_name(device)?;
        let args = DirectionArgs {
            prefix: "",
            spec: instance::<CellSpec>("spec", "CellSpec", spec)?.get().inner,
            weights,
            initial_states,
            input_dropout,
            recurrent_dropout,
        };
        let options = SequenceOptions {
            go_backwards,
            zero_output_for_mask,
            last_output_only: !return_sequences,
            inference,
        };
        match (float_dtype("x", x)?, device) {
            #[cfg(feature = "cuda")]
            (Dtype::F32, Device::Gpu(gpu)) => {
                sequence_forward(py, gpu, SavedInner::Device, &args, x, mask, options)
            }
            (Dtype::F32, _) => {
                sequence_forward(py, &Cpu, SavedInner::Sequence32, &args, x, mask, options)
            }
            (Dtype::F64, _) => {
                sequence_forward(py, &Cpu, SavedInner::Sequence64, &args, x, mask, options)
            }
        }
    })
}

fn sequence_backward<'py, T: Elem, E: Engine<T>>(
    py: Python<'py>,
    engine: &E,
    saved: &E::Saved,
    d_outputs: Option<&Bound<'py, PyAny>>,
    d_last_output: Option<&Bound<'py, PyAny>>,
    d_final_states: Option<&Bound<'py, PyAny>>,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let dn = dtype_name(T::DTYPE);
    let d_seq: Option<PyReadonlyArray3<T>> =
        read_opt("d_outputs", d_outputs, "(batch, time, units)", dn)?;
    let d_last: Option<PyReadonlyArray2<T>> =
        read_opt("d_last_output", d_last_output, "(batch, units)", dn)?;
    let d_states = read_list::<T, Ix2>("d_final_states", d_final_states, "(batch, units)", dn)?
        .unwrap_or_default();
    let grad = match (&d_seq, &d_last) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "d_outputs, d_last_output: expected at most one of them, received both",
            ))
        }
        (Some(d), None) => OutputGrad::Sequence(d.as_array()),
        (None, Some(d)) => OutputGrad::Last(d.as_array()),
        (None, None) => OutputGrad::None,
    };
    let d_states = views(&d_states);
    let mut g = compute(py, backward_size::<T, E>(saved), |cancel| {
        engine.backward(saved, grad, &d_states, input_gradient, &cancel, None)
    })?;
    let dx = optional_array(py, g.input.take());
    let rest = weight_grads(py, g, E::spec(saved).bias_rows())?;
    PyTuple::new(
        py,
        std::iter::once(dx).chain(rest.iter()).collect::<Vec<_>>(),
    )
}

/// Backpropagation through time of an `rnn_forward` pass.
///
/// Give the gradient of every output (`d_outputs`, `(batch, time, units)`) or of the last one
/// (`d_last_output`), and optionally of the final states (a list; `None` entries are zeros).
/// Returns `(dx, d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_states])`; `dx` is
/// None with `input_gradient=False` (its product is then skipped).
#[pyfunction]
#[pyo3(signature = (
    saved, d_outputs = None, d_last_output = None, d_final_states = None, *, input_gradient = true
))]
pub fn rnn_backward<'py>(
    py: Python<'py>,
    saved: &Bound<'py, PyAny>,
    d_outputs: Option<&Bound<'py, PyAny>>,
    d_last_output: Option<&Bound<'py, PyAny>>,
    d_final_states: Option<&Bound<'py, PyAny>>,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let saved = instance::<SavedActivations>("saved", "SavedActivations", saved)?;
        let inner = &saved.get().inner;
        let (d_out, d_last, d_states) = (d_outputs, d_last_output, d_final_states);
        match inner {
            SavedInner::Sequence32(s) => {
                sequence_backward(py, &Cpu, s, d_out, d_last, d_states, input_gradient)
            }
            SavedInner::Sequence64(s) => {
                sequence_backward(py, &Cpu, s, d_out, d_last, d_states, input_gradient)
            }
            #[cfg(feature = "cuda")]
            SavedInner::Device(s) => {
                sequence_backward(py, gpu()?, s, d_out, d_last, d_states, input_gradient)
            }
            _ => Err(PyTypeError::new_err(
                "saved: expected the result of rnn_forward, received that of bidirectional_forward",
            )),
        }
    })
}

#[allow(clippy::too_many_arguments)] // the pair's arguments, with where to run them
fn bidirectional_forward_typed<'py, T: Elem, E: Engine<T>>(
    py: Python<'py>,
    engine: &E,
    wrap: fn(BidirectionalSaved<T, E::Saved>) -> SavedInner,
    directions: [&DirectionArgs<'_, 'py>; 2],
    x: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyAny>>,
    options: [SequenceOptions; 2],
    merge_mode: MergeMode,
    return_sequences: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let x: PyReadonlyArray3<T> = read("x", x, "(batch, time, features)", dtype_name(T::DTYPE))?;
    let mask: Option<PyReadonlyArray2<bool>> = read_opt("mask", mask, "(batch, time)", "bool")?;
    let [fw, bw] = [directions[0].read::<T>()?, directions[1].read::<T>()?];
    let (fw_spec, bw_spec) = (directions[0].spec, directions[1].spec);
    let mut fw_dir = Direction {
        spec: &fw_spec,
        weights: fw.weights(),
        input: fw.input(&x, mask.as_ref()),
        options: options[0],
    };
    let mut bw_dir = Direction {
        spec: &bw_spec,
        weights: bw.weights(),
        input: bw.input(&x, mask.as_ref()),
        options: options[1],
    };
    let (b, t, f) = fw_dir.input.x.dim();
    let size = fw_spec
        .multiply_adds(b, t, f)
        .saturating_add(bw_spec.multiply_adds(b, t, f));
    let out = compute(py, size, |cancel| {
        fw_dir.input.cancel = cancel.clone();
        bw_dir.input.cancel = cancel;
        bidirectional::forward_on(engine, &fw_dir, &bw_dir, merge_mode, return_sequences)
    })?;
    let outputs: Vec<_> = out.outputs.into_iter().map(|o| to_numpy(py, o)).collect();
    let outputs = match outputs.len() {
        1 => outputs.into_iter().next().expect("one output"),
        _ => PyTuple::new(py, outputs)?.into_any(),
    };
    let states = |s: Vec<numpy::ndarray::Array2<T>>| -> PyResult<Bound<'py, PyAny>> {
        Ok(s.into_iter()
            .map(|s| to_numpy(py, s))
            .collect::<Vec<_>>()
            .into_pyobject(py)?
            .into_any())
    };
    let saved = Bound::new(
        py,
        SavedActivations {
            inner: wrap(out.saved),
        },
    )?;
    PyTuple::new(
        py,
        [
            outputs,
            states(out.forward_states)?,
            states(out.backward_states)?,
            saved.into_any(),
        ],
    )
}

/// Runs a bidirectional pair over a sequence, both directions concurrently, and merges them.
///
/// The second direction runs with the opposite `go_backwards`; with `return_sequences` its
/// outputs are flipped back into time order before the merge. Returns `(output, forward_states,
/// backward_states, saved)`, `output` being a tuple of both outputs when `merge_mode` is None.
/// `device` as in `rnn_forward` (on a GPU the directions run on two streams).
#[pyfunction]
#[pyo3(signature = (
    fw_spec, fw_weights, bw_spec, bw_weights, x, *, merge_mode = Some("concat"), return_sequences = false,
    mask = None, fw_initial_states = None, bw_initial_states = None, fw_input_dropout = None,
    fw_recurrent_dropout = None, bw_input_dropout = None, bw_recurrent_dropout = None,
    zero_output_for_mask = false, fw_go_backwards = false, device = None
))]
#[allow(clippy::too_many_arguments)]
pub fn bidirectional_forward<'py>(
    py: Python<'py>,
    fw_spec: &Bound<'py, PyAny>,
    fw_weights: &Bound<'py, PyAny>,
    bw_spec: &Bound<'py, PyAny>,
    bw_weights: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    merge_mode: Option<&str>,
    return_sequences: bool,
    mask: Option<&Bound<'py, PyAny>>,
    fw_initial_states: Option<&Bound<'py, PyAny>>,
    bw_initial_states: Option<&Bound<'py, PyAny>>,
    fw_input_dropout: Option<&Bound<'py, PyAny>>,
    fw_recurrent_dropout: Option<&Bound<'py, PyAny>>,
    bw_input_dropout: Option<&Bound<'py, PyAny>>,
    bw_recurrent_dropout: Option<&Bound<'py, PyAny>>,
    zero_output_for_mask: bool,
    fw_go_backwards: bool,
    device: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let device = Device::from_name(device)?;
        let merge_mode = MergeMode::from_name(merge_mode).map_err(super::convert::to_py_err)?;
        let fw = DirectionArgs {
            prefix: "fw_",
            spec: instance::<CellSpec>("fw_spec", "CellSpec", fw_spec)?
                .get()
                .inner,
            weights: fw_weights,
            initial_states: fw_initial_states,
            input_dropout: fw_input_dropout,
            recurrent_dropout: fw_recurrent_dropout,
        };
        let bw = DirectionArgs {
            prefix: "bw_",
            spec: instance::<CellSpec>("bw_spec", "CellSpec", bw_spec)?
                .get()
                .inner,
            weights: bw_weights,
            initial_states: bw_initial_states,
            input_dropout: bw_input_dropout,
            recurrent_dropout: bw_recurrent_dropout,
        };
        let options = [
            SequenceOptions {
                go_backwards: fw_go_backwards,
                zero_output_for_mask,
                ..Default::default()
            },
            SequenceOptions {
                go_backwards: !fw_go_backwards,
                zero_output_for_mask,
                ..Default::default()
            },
        ];
        let (directions, m, rs) = ([&fw, &bw], merge_mode, return_sequences);
        match (float_dtype("x", x)?, device) {
            #[cfg(feature = "cuda")]
            (Dtype::F32, Device::Gpu(gpu)) => {
                let wrap = SavedInner::DeviceBidirectional;
                bidirectional_forward_typed(py, gpu, wrap, directions, x, mask, options, m, rs)
            }
            (Dtype::F32, _) => {
                let wrap = SavedInner::Bidirectional32;
                bidirectional_forward_typed(py, &Cpu, wrap, directions, x, mask, options, m, rs)
            }
            (Dtype::F64, _) => {
                let wrap = SavedInner::Bidirectional64;
                bidirectional_forward_typed(py, &Cpu, wrap, directions, x, mask, options, m, rs)
            }
        }
    })
}

fn bidirectional_backward_typed<'py, T: Elem, E: Engine<T>>(
    py: Python<'py>,
    engine: &E,
    saved: &BidirectionalSaved<T, E::Saved>,
    d_outputs: Option<&Bound<'py, PyAny>>,
    d_fw_states: Option<&Bound<'py, PyAny>>,
    d_bw_states: Option<&Bound<'py, PyAny>>,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let dn = dtype_name(T::DTYPE);
    let d_out: Vec<Option<PyReadonlyArray<T, IxDyn>>> = match d_outputs.filter(|d| !d.is_none()) {
        None => Vec::new(),
        Some(d) if d.cast::<numpy::PyUntypedArray>().is_ok() => {
            vec![Some(read("d_outputs", d, "", dn)?)]
        }
        Some(d) => read_list::<T, IxDyn>("d_outputs", Some(d), "", dn)?.unwrap_or_default(),
    };
    let d_fw =
        read_list::<T, Ix2>("d_fw_states", d_fw_states, "(batch, units)", dn)?.unwrap_or_default();
    let d_bw =
        read_list::<T, Ix2>("d_bw_states", d_bw_states, "(batch, units)", dn)?.unwrap_or_default();
    let d_out_views: Vec<_> = d_out
        .iter()
        .map(|d| d.as_ref().map(|d| d.as_array()))
        .collect();
    let (d_fw, d_bw) = (views(&d_fw), views(&d_bw));
    let size = backward_size::<T, E>(&saved.forward)
        .saturating_add(backward_size::<T, E>(&saved.backward));
    let g = compute(py, size, |cancel| {
        let d_states = [d_fw.as_slice(), d_bw.as_slice()];
        bidirectional::backward_on(
            engine,
            saved,
            &d_out_views,
            d_states,
            input_gradient,
            &cancel,
        )
    })?;
    let fw = weight_grads(py, g.forward, E::spec(&saved.forward).bias_rows())?;
    let bw = weight_grads(py, g.backward, E::spec(&saved.backward).bias_rows())?;
    PyTuple::new(
        py,
        [optional_array(py, g.input), fw.into_any(), bw.into_any()],
    )
}

/// Backward of a `bidirectional_forward` pass.
///
/// `d_outputs` is the gradient of the merged output (a pair for merge_mode None, entries may be
/// None). Returns `(dx, forward_grads, backward_grads)`, each direction's grads being
/// `(d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_states])`; `dx` is None with
/// `input_gradient=False`.
#[pyfunction]
#[pyo3(signature = (
    saved, d_outputs = None, d_fw_states = None, d_bw_states = None, *, input_gradient = true
))]
pub fn bidirectional_backward<'py>(
    py: Python<'py>,
    saved: &Bound<'py, PyAny>,
    d_outputs: Option<&Bound<'py, PyAny>>,
    d_fw_states: Option<&Bound<'py, PyAny>>,
    d_bw_states: Option<&Bound<'py, PyAny>>,
    input_gradient: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let saved = instance::<SavedActivations>("saved", "SavedActivations", saved)?;
        let inner = &saved.get().inner;
        let (d_out, d_fw, d_bw) = (d_outputs, d_fw_states, d_bw_states);
        let ig = input_gradient;
        match inner {
            SavedInner::Bidirectional32(s) => {
                bidirectional_backward_typed(py, &Cpu, s, d_out, d_fw, d_bw, ig)
            }
            SavedInner::Bidirectional64(s) => {
                bidirectional_backward_typed(py, &Cpu, s, d_out, d_fw, d_bw, ig)
            }
            #[cfg(feature = "cuda")]
            SavedInner::DeviceBidirectional(s) => {
                bidirectional_backward_typed(py, gpu()?, s, d_out, d_fw, d_bw, ig)
            }
            _ => Err(PyTypeError::new_err(
                "saved: expected the result of bidirectional_forward, received that of rnn_forward",
            )),
        }
    })
}

/// Adam's step for every weight at once: returns the new values, momentums, velocities and
/// (with AMSGrad) largest velocities, as lists in the weights' order. All arrays share one float
/// dtype, that of `values[0]`; the scalars are rounded to it.
#[pyfunction]
#[pyo3(signature = (values, gradients, momentums, velocities, velocity_hats, *, alpha, one_minus_beta_1, one_minus_beta_2, epsilon))]
#[allow(clippy::too_many_arguments)]
pub fn adam_update<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    momentums: &Bound<'py, PyAny>,
    velocities: &Bound<'py, PyAny>,
    velocity_hats: Option<&Bound<'py, PyAny>>,
    alpha: f64,
    one_minus_beta_1: f64,
    one_minus_beta_2: f64,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let constants = [alpha, one_minus_beta_1, one_minus_beta_2, epsilon];
        let lists = (values, gradients, momentums, velocities, velocity_hats);
        match first_dtype(values)? {
            Dtype::F32 => adam_typed::<f32>(py, lists, constants),
            Dtype::F64 => adam_typed::<f64>(py, lists, constants),
        }
    })
}

/// The lists `adam_update` takes: values, gradients, momentums, velocities, largest velocities.
type AdamLists<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);

fn adam_typed<'py, T: Float + Element>(
    py: Python<'py>,
    (values, gradients, momentums, velocities, velocity_hats): AdamLists<'_, 'py>,
    [alpha, one_minus_beta_1, one_minus_beta_2, epsilon]: [f64; 4],
) -> PyResult<Bound<'py, PyTuple>> {
    let values = weight_arrays::<T>("values", values, None)?;
    let n = Some(values.len());
    let gradients = weight_arrays::<T>("gradients", gradients, n)?;
    let momentums = weight_arrays::<T>("momentums", momentums, n)?;
    let velocities = weight_arrays::<T>("velocities", velocities, n)?;
    let velocity_hats = velocity_hats
        .filter(|o| !o.is_none())
        .map(|obj| weight_arrays::<T>("velocity_hats", obj, n))
        .transpose()?;
    let scalar = |v: f64| T::from_f64(v).expect("a float converts to a float");
    let step = AdamStep {
        alpha: scalar(alpha),
        one_minus_beta_1: scalar(one_minus_beta_1),
        one_minus_beta_2: scalar(one_minus_beta_2),
        epsilon: scalar(epsilon),
    };
    let states: Vec<AdamState<T>> = (0..values.len())
        .map(|i| AdamState {
            value: values[i].as_array(),
            gradient: gradients[i].as_array(),
            momentum: momentums[i].as_array(),
            velocity: velocities[i].as_array(),
            velocity_hat: velocity_hats.as_ref().map(|v| v[i].as_array()),
        })
        .collect();
    let size = states.iter().map(|s| s.value.len()).sum();
    let updates = compute(py, size, |_| step.apply(&states))?;
    let (mut new_values, mut new_m, mut new_v, mut new_hats) = (vec![], vec![], vec![], vec![]);
    for (value, m, v, hat) in updates {
        new_values.push(value);
        new_m.push(m);
        new_v.push(v);
        new_hats.extend(hat);
    }
    let hats = velocity_hats.map(|_| new_hats);
    PyTuple::new(
        py,
        [
            array_list(py, Some(new_values))?,
            array_list(py, Some(new_m))?,
            array_list(py, Some(new_v))?,
            array_list(py, hats)?,
        ],
    )
}

/// SGD's step for every weight at once (with `momentum`, from the momentums given): returns the
/// new values and, with momentum, the new momentums, as lists in the weights' order. All arrays
/// share one float dtype, that of `values[0]`; the scalars are rounded to it.
#[pyfunction]
#[pyo3(signature = (values, gradients, momentums = None, *, learning_rate, momentum = 0.0, nesterov = false))]
pub fn sgd_update<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    momentums: Option<&Bound<'py, PyAny>>,
    learning_rate: f64,
    momentum: f64,
    nesterov: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let lists = (values, gradients, momentums);
        match first_dtype(values)? {
            Dtype::F32 => sgd_typed::<f32>(py, lists, learning_rate, momentum, nesterov),
            Dtype::F64 => sgd_typed::<f64>(py, lists, learning_rate, momentum, nesterov),
        }
    })
}

/// The lists `sgd_update` takes: values, gradients, momentums.
type SgdLists<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);

fn sgd_typed<'py, T: Float + Element>(
    py: Python<'py>,
    (values, gradients, momentums): SgdLists<'_, 'py>,
    learning_rate: f64,
    momentum: f64,
    nesterov: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let values = weight_arrays::<T>("values", values, None)?;
    let n = Some(values.len());
    let gradients = weight_arrays::<T>("gradients", gradients, n)?;
    let momentums = momentums
        .filter(|o| !o.is_none())
        .map(|obj| weight_arrays::<T>("momentums", obj, n))
        .transpose()?;
    if momentums.is_some() != (momentum != 0.0) {
        return Err(PyValueError::new_err(format!(
            "momentums: expected a list exactly when momentum is not 0, received {} with momentum={momentum}",
            if momentums.is_some() { "a list" } else { "None" }
        )));
    }
    let scalar = |v: f64| T::from_f64(v).expect("a float converts to a float");
    let step = SgdStep {
        learning_rate: scalar(learning_rate),
        momentum: scalar(momentum),
        nesterov,
    };
    let weights: Vec<_> = (0..values.len())
        .map(|i| {
            let m = momentums.as_ref().map(|m| m[i].as_array());
            (values[i].as_array(), gradients[i].as_array(), m)
        })
        .collect();
    let size = weights.iter().map(|(w, _, _)| w.len()).sum();
    let updates = compute(py, size, |_| step.apply(&weights))?;
    let (new_values, new_m): (Vec<_>, Vec<_>) = updates.into_iter().unzip();
    let new_m = momentums.map(|_| new_m.into_iter().flatten().collect());
    PyTuple::new(
        py,
        [array_list(py, Some(new_values))?, array_list(py, new_m)?],
    )
}

/// The float dtype of a list of weights, that of its first array.
fn first_dtype(values: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let first = values
        .try_iter()
        .and_then(|mut it| it.next().transpose())
        .map_err(|_| PyTypeError::new_err("values: expected a list of arrays"))?
        .ok_or_else(|| {
            PyValueError::new_err("values: expected at least one array, received none")
        })?;
    float_dtype("values[0]", &first)
}

/// A list of arrays of `T`, none of them None, `count` of them when given.
fn weight_arrays<'py, T: Float + Element>(
    name: &str,
    obj: &Bound<'py, PyAny>,
    count: Option<usize>,
) -> PyResult<Vec<PyReadonlyArray<'py, T, IxDyn>>> {
    let dtype = dtype_name(Dtype::of::<T>());
    let arrays =
        read_list::<T, IxDyn>(name, Some(obj), "(the weight's shape)", dtype)?.unwrap_or_default();
    if let Some(n) = count.filter(|&n| n != arrays.len()) {
        return Err(PyValueError::new_err(format!(
            "{name}: expected {n} arrays (one per value), received {}",
            arrays.len()
        )));
    }
    arrays
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.ok_or_else(|| {
                PyTypeError::new_err(format!("{name}[{i}]: expected an array, received None"))
            })
        })
        .collect()
}

/// A Python list of numpy arrays (no copies), or None.
fn array_list<'py, T: Element>(
    py: Python<'py>,
    arrays: Option<Vec<numpy::ndarray::ArrayD<T>>>,
) -> PyResult<Bound<'py, PyAny>> {
    match arrays {
        Some(arrays) => Ok(arrays
            .into_iter()
            .map(|a| to_numpy(py, a))
            .collect::<Vec<_>>()
            .into_pyobject(py)?
            .into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Bytes of freed large blocks the extension keeps for its next calls.
#[pyfunction]
pub fn cached_bytes() -> usize {
    super::ALLOCATOR.held()
}

/// Returns the freed large blocks the extension keeps to the system.
#[pyfunction]
pub fn release_cached_memory() {
    super::ALLOCATOR.release();
}

/// `(available, description)`: whether `device="cuda"` works here, with the GPU's name, or why
/// not (no GPU support in this build, CUDA libraries missing, no device...).
#[pyfunction]
pub fn cuda_status() -> (bool, String) {
    #[cfg(feature = "cuda")]
    {
        match crate::cuda::gpu() {
            Ok(gpu) => (true, gpu.name().to_string()),
            Err(why) => (false, why.to_string()),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        (false, NO_CUDA.to_string())
    }
}

/// Compiles the GPU kernels with NVRTC for compute capability `major.minor` and returns the
/// PTX's size in bytes; needs NVRTC, not a GPU. A RuntimeError carries NVRTC's log.
#[pyfunction]
pub fn compile_cuda_kernels(major: i32, minor: i32) -> PyResult<usize> {
    #[cfg(feature = "cuda")]
    {
        if !crate::cuda::has_nvrtc() {
            return Err(PyRuntimeError::new_err(
                "NVRTC (libnvrtc) could not be loaded",
            ));
        }
        crate::cuda::kernels::compile(major, minor)
            .map(|ptx| ptx.to_src().len())
            .map_err(PyRuntimeError::new_err)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (major, minor);
        Err(PyRuntimeError::new_err(NO_CUDA))
    }
}
