//! The fused passes: `rnn_forward`/`rnn_backward` and `bidirectional_forward`/`_backward`,
//! written once over the float type and the engine, and the opaque object holding what a
//! forward pass saves for its backward pass.

use numpy::ndarray::{ArrayView2, ArrayViewD, Axis, Ix1, Ix2, IxDyn};
use numpy::{Element, PyReadonlyArray, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::cell_spec::{bias_shape, CellSpec};
use super::convert::{
    compute, dtype_name, float_dtype, guarded, instance, optional_array, read, read_list, read_opt,
    to_numpy, Elem,
};
use super::device::{gpu, with_engine, Device};
use super::ShapeError;
use crate::bidirectional::{self, BidirectionalSaved, Direction};
use crate::core::sequence::{last_output, Precision};
use crate::cuda::DeviceSaved;
use crate::error::ShapeDisplay;
use crate::{
    Cancel, Cpu, Engine, Float, Gradients, MergeMode, OutputGrad, Saved, SequenceInput,
    SequenceOptions, Weights, Zoneout,
};

/// Activations saved by a forward pass for its backward pass. Opaque; freed with the object
/// (weak references let tests see that a tape releases them).
#[pyclass(frozen, weakref, name = "SavedActivations", module = "rnnkit._core")]
pub struct SavedActivations {
    inner: SavedInner,
}

/// What each engine and float type saves.
enum SavedInner {
    Sequence32(Saved<f32>),
    Sequence64(Saved<f64>),
    Device(DeviceSaved),
    Bidirectional32(BidirectionalSaved<f32>),
    Bidirectional64(BidirectionalSaved<f64>),
    DeviceBidirectional(BidirectionalSaved<f32, DeviceSaved>),
}

/// `From` each saved type into its [`SavedInner`] variant.
macro_rules! saved_variants {
    ($($saved:ty => $variant:ident),* $(,)?) => {
        $(impl From<$saved> for SavedInner {
            fn from(saved: $saved) -> Self {
                Self::$variant(saved)
            }
        })*
    };
}

saved_variants!(
    Saved<f32> => Sequence32,
    Saved<f64> => Sequence64,
    DeviceSaved => Device,
    BidirectionalSaved<f32> => Bidirectional32,
    BidirectionalSaved<f64> => Bidirectional64,
    BidirectionalSaved<f32, DeviceSaved> => DeviceBidirectional,
);

#[pymethods]
impl SavedActivations {
    fn __repr__(&self) -> &'static str {
        match self.inner {
            SavedInner::Sequence32(_) | SavedInner::Sequence64(_) => {
                "<SavedActivations of a sequence pass>"
            }
            SavedInner::Device(_) => "<SavedActivations of a sequence pass on the GPU>",
            SavedInner::Bidirectional32(_) | SavedInner::Bidirectional64(_) => {
                "<SavedActivations of a bidirectional pass>"
            }
            SavedInner::DeviceBidirectional(_) => {
                "<SavedActivations of a bidirectional pass on the GPU>"
            }
        }
    }
}

/// What a pass returns as a Python object: its saved activations, or None for inference.
fn saved_object<'py>(py: Python<'py>, saved: Option<SavedInner>) -> PyResult<Bound<'py, PyAny>> {
    match saved {
        Some(inner) => Ok(Bound::new(py, SavedActivations { inner })?.into_any()),
        None => Ok(py.None().into_bound(py)),
    }
}

/// One direction's arrays, borrowed from numpy for the duration of a call.
struct DirectionArrays<'py, T: Element> {
    kernel: PyReadonlyArray2<'py, T>,
    /// `(units, gates·units)`, or IndRNN's `(units,)`.
    recurrent_kernel: PyReadonlyArray<'py, T, IxDyn>,
    bias: Option<PyReadonlyArray<'py, T, IxDyn>>,
    peephole: Option<PyReadonlyArray2<'py, T>>,
    projection: Option<PyReadonlyArray2<'py, T>>,
    layer_norm: Option<PyReadonlyArray2<'py, T>>,
    cell_norm: Option<PyReadonlyArray2<'py, T>>,
    initial_states: Option<Vec<PyReadonlyArray2<'py, T>>>,
    input_dropout: Option<PyReadonlyArray3<'py, T>>,
    recurrent_dropout: Option<PyReadonlyArray3<'py, T>>,
    zoneout: Option<ZoneoutArg<'py, T>>,
}

/// A direction's `zoneout`: weights per state, `(rate, seeds)` for masks drawn in the pass, or
/// the rate alone for the expectation.
enum ZoneoutArg<'py, T: Element> {
    Weights(Vec<PyReadonlyArray3<'py, T>>),
    Drawn { rate: f64, seeds: Vec<u64> },
    Expectation(f64),
}

/// The raw Python arguments of one direction; `prefix` names them in messages (`""`, `"fw_"`, `"bw_"`).
struct DirectionArgs<'a, 'py> {
    prefix: &'static str,
    spec: crate::CellSpec,
    weights: &'a Bound<'py, PyAny>,
    initial_states: Option<&'a Bound<'py, PyAny>>,
    input_dropout: Option<&'a Bound<'py, PyAny>>,
    recurrent_dropout: Option<&'a Bound<'py, PyAny>>,
    zoneout: Option<&'a Bound<'py, PyAny>>,
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
        // Keras's three, then the extra weights the spec has, in this order.
        let extras: Vec<&str> = [
            (self.spec.peephole, "peephole"),
            (self.spec.projection.is_some(), "projection"),
            (self.spec.layer_norm, "layer_norm"),
            (self.spec.has_cell_norm(), "cell_norm"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        if !(2..=3 + extras.len()).contains(&items.len()) {
            let names = ["kernel", "recurrent_kernel", "bias"].iter().chain(&extras);
            let expected = names.copied().collect::<Vec<_>>().join(", ");
            return Err(PyValueError::new_err(format!(
                "{p}weights: expected ({expected}), received {} items",
                items.len()
            )));
        }
        let extra = |name: &str| -> PyResult<Option<PyReadonlyArray2<'py, T>>> {
            let at = extras.iter().position(|e| *e == name).map(|i| 3 + i);
            match at.and_then(|i| items.get(i)).filter(|w| !w.is_none()) {
                None => Ok(None),
                Some(w) => read(&format!("{p}{name}"), w, "(rows, units)", dn).map(Some),
            }
        };
        let kernel: PyReadonlyArray2<T> = read(
            &format!("{p}kernel"),
            &items[0],
            "(input_dim, gates*units)",
            dn,
        )?;
        let bias = match items.get(2).filter(|b| !b.is_none()) {
            None => None,
            Some(b) => Some(self.read_bias(b)?),
        };
        Ok(DirectionArrays {
            kernel,
            recurrent_kernel: self.read_recurrent_kernel(&items[1])?,
            bias,
            peephole: extra("peephole")?,
            projection: extra("projection")?,
            layer_norm: extra("layer_norm")?,
            cell_norm: extra("cell_norm")?,
            initial_states: self.read_initial_states()?,
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
            zoneout: self.read_zoneout()?,
        })
    }
}

impl<'py> DirectionArgs<'_, 'py> {
    /// The recurrent kernel: `(units, gates·units)`, or IndRNN's vector `(units,)`.
    fn read_recurrent_kernel<T: Elem>(
        &self,
        w: &Bound<'py, PyAny>,
    ) -> PyResult<PyReadonlyArray<'py, T, IxDyn>> {
        let name = format!("{}recurrent_kernel", self.prefix);
        let (ndim, dims) = match self.spec.kind {
            crate::CellKind::IndRnn => (1, "(units,)"),
            _ => (2, "(units, gates*units)"),
        };
        let arr: PyReadonlyArray<'py, T, IxDyn> = read(&name, w, dims, dtype_name(T::DTYPE))?;
        if arr.ndim() != ndim {
            return Err(ShapeError::new_err(format!(
                "{name}: expected a {ndim}-d array {dims}, received shape {}",
                ShapeDisplay(arr.shape())
            )));
        }
        Ok(arr)
    }

    /// The bias, whose shape the cell fixes: `(gates·units,)`, or `(2, 3·units)` for GRU with
    /// `reset_after`.
    fn read_bias<T: Elem>(
        &self,
        b: &Bound<'py, PyAny>,
    ) -> PyResult<PyReadonlyArray<'py, T, IxDyn>> {
        let (p, expected) = (self.prefix, bias_shape(&self.spec));
        let arr: PyReadonlyArray<'py, T, IxDyn> =
            read(&format!("{p}bias"), b, "", dtype_name(T::DTYPE))?;
        if arr.shape() != expected.as_slice() {
            return Err(ShapeError::new_err(format!(
                "{p}bias: expected shape {}, received {}",
                ShapeDisplay(&expected),
                ShapeDisplay(arr.shape())
            )));
        }
        Ok(arr)
    }

    /// The zoneout argument, if given: a `(rate, seeds)` tuple, a rate, else a list of arrays.
    fn read_zoneout<T: Elem>(&self) -> PyResult<Option<ZoneoutArg<'py, T>>> {
        let name = format!("{}zoneout", self.prefix);
        if let Some(Ok((rate, seeds))) = self.zoneout.map(|z| z.extract::<(f64, Vec<u64>)>()) {
            return Ok(Some(ZoneoutArg::Drawn { rate, seeds }));
        }
        if let Some(Ok(rate)) = self.zoneout.map(|z| z.extract::<f64>()) {
            return Ok(Some(ZoneoutArg::Expectation(rate)));
        }
        let weights = read_arrays(&name, self.zoneout, "(batch, time, units)")?;
        Ok(weights.map(ZoneoutArg::Weights))
    }

    /// The initial states, if given: a list of arrays, none of them None.
    fn read_initial_states<T: Elem>(&self) -> PyResult<Option<Vec<PyReadonlyArray2<'py, T>>>> {
        let name = format!("{}initial_states", self.prefix);
        read_arrays(&name, self.initial_states, "(batch, units)")
    }
}

/// A list of arrays, if given, none of them None.
fn read_arrays<'py, T: Elem, D: numpy::ndarray::Dimension>(
    name: &str,
    list: Option<&Bound<'py, PyAny>>,
    dims: &str,
) -> PyResult<Option<Vec<PyReadonlyArray<'py, T, D>>>> {
    let arrays = read_list::<T, D>(name, list, dims, dtype_name(T::DTYPE))?;
    arrays
        .map(|arrays| {
            (arrays.into_iter().enumerate())
                .map(|(i, a)| {
                    a.ok_or_else(|| {
                        PyTypeError::new_err(format!(
                            "{name}[{i}]: expected an array, received None"
                        ))
                    })
                })
                .collect::<PyResult<Vec<_>>>()
        })
        .transpose()
}

impl<'py, T: Elem> DirectionArrays<'py, T> {
    fn weights(&self) -> Weights<'_, T> {
        Weights {
            kernel: self.kernel.as_array(),
            recurrent_kernel: as_matrix(self.recurrent_kernel.as_array()),
            bias: self.bias.as_ref().map(|b| as_matrix(b.as_array())),
            peephole: self.peephole.as_ref().map(|w| w.as_array()),
            projection: self.projection.as_ref().map(|w| w.as_array()),
            layer_norm: self.layer_norm.as_ref().map(|w| w.as_array()),
            cell_norm: self.cell_norm.as_ref().map(|w| w.as_array()),
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
            zoneout: self.zoneout.as_ref().map(|z| match z {
                ZoneoutArg::Weights(w) => {
                    Zoneout::Weights(w.iter().map(|m| m.as_array()).collect())
                }
                ZoneoutArg::Drawn { rate, seeds } => Zoneout::Drawn {
                    rate: *rate,
                    seeds: seeds.clone(),
                },
                ZoneoutArg::Expectation(rate) => Zoneout::Expectation { rate: *rate },
            }),
            cancel: Cancel::default(),
        }
    }
}

/// A 1-d or 2-d array (the ranks [`DirectionArgs::read`] lets through) as a matrix, a vector
/// becoming one row.
fn as_matrix<T>(a: ArrayViewD<'_, T>) -> ArrayView2<'_, T> {
    match a.ndim() {
        1 => a
            .into_dimensionality::<Ix1>()
            .expect("1-d")
            .insert_axis(Axis(0)),
        _ => a.into_dimensionality::<Ix2>().expect("2-d"),
    }
}

/// `(d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_state, ...])`, then
/// `d_peephole`, `d_projection`, `d_layer_norm` and `d_cell_norm` for a cell with them; the bias gradient shaped like the bias and IndRNN's
/// recurrent gradient like its vector.
fn weight_grads<'py, T: Elem>(
    py: Python<'py>,
    g: Gradients<T>,
    spec: &crate::CellSpec,
) -> PyResult<Bound<'py, PyTuple>> {
    let vector = |a: numpy::ndarray::Array2<T>| to_numpy(py, a.index_axis_move(Axis(0), 0));
    let bias = match g.bias {
        Some(b) if spec.bias_rows() == 1 => vector(b),
        Some(b) => to_numpy(py, b),
        None => py.None().into_bound(py),
    };
    let recurrent_kernel = match spec.kind {
        crate::CellKind::IndRnn => vector(g.recurrent_kernel),
        _ => to_numpy(py, g.recurrent_kernel),
    };
    let states: Vec<_> = g
        .initial_states
        .into_iter()
        .map(|s| to_numpy(py, s))
        .collect();
    let grads = [
        to_numpy(py, g.kernel),
        recurrent_kernel,
        bias,
        states.into_pyobject(py)?.into_any(),
    ];
    let extras = [g.peephole, g.projection, g.layer_norm, g.cell_norm];
    let extras = extras.into_iter().flatten();
    let extras = extras.map(|w| to_numpy(py, w));
    PyTuple::new(py, grads.into_iter().chain(extras).collect::<Vec<_>>())
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
    args: &DirectionArgs<'_, 'py>,
    x: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyAny>>,
    options: SequenceOptions,
) -> PyResult<Bound<'py, PyTuple>>
where
    SavedInner: From<E::Saved>,
{
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
    let outputs = match options.last_output_only {
        true => to_numpy(py, last_output(&out.outputs)),
        false => to_numpy(py, out.outputs),
    };
    let saved = (!options.inference).then(|| out.saved.into());
    PyTuple::new(
        py,
        [
            outputs,
            states.into_pyobject(py)?.into_any(),
            saved_object(py, saved)?,
        ],
    )
}

/// Runs a cell over a sequence.
///
/// `weights` is `(kernel, recurrent_kernel, bias)` in Keras's layout (IndRNN's recurrent
/// kernel a `(units,)` vector, a projected LSTM's `(projection, 4·units)`; `bias` None without
/// bias), then for an LSTM spec `peephole` `(3, units)` with `peephole=True` and `projection`
/// `(units, projection)` with a projection, then with `layer_norm=True` the gains `layer_norm`
/// `(2, gates·units)` and (LSTM) `cell_norm` `(2, units)`. Returns `(outputs, final_states, saved)`: outputs `(batch, time, units)` in processing order
/// (`(batch, units)`, the last one, zeros for an empty sequence, with `return_sequences=False`),
/// the list of final states, and the activations `rnn_backward` needs (None with `inference`: no
/// backward pass follows, so no copy of the weights is kept). `zoneout` is None or, per state,
/// `(batch, time, state units)` weights `m` of each step's previous value (the state becomes
/// `m ⊙ s₋₁ + (1 - m) ⊙ s̃`), or a tuple `(rate, seeds)`: training masks the pass draws itself,
/// per state those of `zoneout_masks(seed, (time, batch, state units), rate)` with the first
/// two axes swapped, or a float `rate`: the expectation, every weight `rate`. `device` is "cpu" (or None) or "cuda".
#[pyfunction]
#[pyo3(signature = (spec, weights, x, *, initial_states = None, mask = None, input_dropout = None, recurrent_dropout = None, go_backwards = false, zero_output_for_mask = false, return_sequences = true, device = None, inference = false, compute_dtype = None, zoneout = None))]
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
    compute_dtype: Option<&str>,
    zoneout: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let device = Device::from_name(device)?;
        let precision = precision(compute_dtype)?;
        let args = DirectionArgs {
            prefix: "",
            spec: instance::<CellSpec>("spec", "CellSpec", spec)?.get().spec(),
            weights,
            initial_states,
            input_dropout,
            recurrent_dropout,
            zoneout,
        };
        let options = SequenceOptions {
            go_backwards,
            zero_output_for_mask,
            last_output_only: !return_sequences,
            inference,
            precision,
        };
        with_engine!(float_dtype("x", x)?, device, |T, engine| {
            sequence_forward::<T, _>(py, engine, &args, x, mask, options)
        })
    })
}

/// The `compute_dtype` argument: None (the input's float type), "bfloat16" (products with
/// bfloat16 operands and f32 sums) or "int8" (quantized products, for inference).
fn precision(compute_dtype: Option<&str>) -> PyResult<Precision> {
    match compute_dtype {
        None => Ok(Precision::Full),
        Some("bfloat16") => Ok(Precision::Bf16),
        Some("int8") => Ok(Precision::Int8),
        Some(other) => Err(PyValueError::new_err(format!(
            "compute_dtype: expected None, 'bfloat16' or 'int8', received '{other}'"
        ))),
    }
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
    let rest = weight_grads(py, g, E::spec(saved))?;
    PyTuple::new(
        py,
        std::iter::once(dx).chain(rest.iter()).collect::<Vec<_>>(),
    )
}

/// Backpropagation through time of an `rnn_forward` pass.
///
/// Give the gradient of every output (`d_outputs`, `(batch, time, units)`) or of the last one
/// (`d_last_output`), and optionally of the final states (a list; `None` entries are zeros).
/// Returns `(dx, d_kernel, d_recurrent_kernel, d_bias or None, [d_initial_states])`, then
/// `d_peephole`, `d_projection`, `d_layer_norm` and `d_cell_norm` for a cell with them; `dx` is None with `input_gradient=False` (its
/// product is then skipped).
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
    directions: [&DirectionArgs<'_, 'py>; 2],
    x: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyAny>>,
    options: [SequenceOptions; 2],
    merge_mode: MergeMode,
    return_sequences: bool,
) -> PyResult<Bound<'py, PyTuple>>
where
    SavedInner: From<BidirectionalSaved<T, E::Saved>>,
{
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
    let saved = saved_object(py, Some(out.saved.into()))?;
    PyTuple::new(
        py,
        [
            outputs,
            states(out.forward_states)?,
            states(out.backward_states)?,
            saved,
        ],
    )
}

/// Runs a bidirectional pair over a sequence, both directions concurrently, and merges them.
///
/// The second direction runs with the opposite `go_backwards`; with `return_sequences` its
/// outputs are flipped back into time order before the merge. Returns `(output, forward_states,
/// backward_states, saved)`, `output` being a tuple of both outputs when `merge_mode` is None.
/// `device` and each direction's `zoneout` as in `rnn_forward` (on a GPU the directions run on
/// two streams); with `compute_dtype="int8"` the pass is for inference only (its `saved` cannot
/// be differentiated).
#[pyfunction]
#[pyo3(signature = (
    fw_spec, fw_weights, bw_spec, bw_weights, x, *, merge_mode = Some("concat"), return_sequences = false,
    mask = None, fw_initial_states = None, bw_initial_states = None, fw_input_dropout = None,
    fw_recurrent_dropout = None, bw_input_dropout = None, bw_recurrent_dropout = None,
    zero_output_for_mask = false, fw_go_backwards = false, device = None, compute_dtype = None,
    fw_zoneout = None, bw_zoneout = None
), text_signature = "(fw_spec, fw_weights, bw_spec, bw_weights, x, *, merge_mode='concat', return_sequences=False, mask=None, fw_initial_states=None, bw_initial_states=None, fw_input_dropout=None, fw_recurrent_dropout=None, bw_input_dropout=None, bw_recurrent_dropout=None, zero_output_for_mask=False, fw_go_backwards=False, device=None, compute_dtype=None, fw_zoneout=None, bw_zoneout=None)")]
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
    compute_dtype: Option<&str>,
    fw_zoneout: Option<&Bound<'py, PyAny>>,
    bw_zoneout: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let device = Device::from_name(device)?;
        let precision = precision(compute_dtype)?;
        let merge_mode = MergeMode::from_name(merge_mode)?;
        let fw = DirectionArgs {
            prefix: "fw_",
            spec: instance::<CellSpec>("fw_spec", "CellSpec", fw_spec)?
                .get()
                .spec(),
            weights: fw_weights,
            initial_states: fw_initial_states,
            input_dropout: fw_input_dropout,
            recurrent_dropout: fw_recurrent_dropout,
            zoneout: fw_zoneout,
        };
        let bw = DirectionArgs {
            prefix: "bw_",
            spec: instance::<CellSpec>("bw_spec", "CellSpec", bw_spec)?
                .get()
                .spec(),
            weights: bw_weights,
            initial_states: bw_initial_states,
            input_dropout: bw_input_dropout,
            recurrent_dropout: bw_recurrent_dropout,
            zoneout: bw_zoneout,
        };
        // int8 passes run inference only: no copy of the weights is kept for a backward pass.
        let inference = precision == Precision::Int8;
        let options = [
            SequenceOptions {
                go_backwards: fw_go_backwards,
                zero_output_for_mask,
                inference,
                precision,
                ..Default::default()
            },
            SequenceOptions {
                go_backwards: !fw_go_backwards,
                zero_output_for_mask,
                inference,
                precision,
                ..Default::default()
            },
        ];
        let (directions, m, rs) = ([&fw, &bw], merge_mode, return_sequences);
        with_engine!(float_dtype("x", x)?, device, |T, engine| {
            bidirectional_forward_typed::<T, _>(py, engine, directions, x, mask, options, m, rs)
        })
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
    let fw = weight_grads(py, g.forward, E::spec(&saved.forward))?;
    let bw = weight_grads(py, g.backward, E::spec(&saved.backward))?;
    PyTuple::new(
        py,
        [optional_array(py, g.input), fw.into_any(), bw.into_any()],
    )
}

/// Backward of a `bidirectional_forward` pass.
///
/// `d_outputs` is the gradient of the merged output (a pair for `merge_mode` None, entries may be
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
            SavedInner::DeviceBidirectional(s) => {
                bidirectional_backward_typed(py, gpu()?, s, d_out, d_fw, d_bw, ig)
            }
            _ => Err(PyTypeError::new_err(
                "saved: expected the result of bidirectional_forward, received that of rnn_forward",
            )),
        }
    })
}
