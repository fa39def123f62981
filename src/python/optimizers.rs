//! The fused optimizer steps: Adam's, SGD's, RMSprop's and Adagrad's update of every weight in
//! one call.

use numpy::ndarray::IxDyn;
use numpy::{Element, PyReadonlyArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{compute, dtype_name, float_dtype, guarded, read_list, to_numpy, Dtype, Elem};
use crate::core::optimizer::{
    AdagradStep, AdamState, AdamStep, RmspropState, RmspropStep, SgdStep,
};

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

fn adam_typed<'py, T: Elem>(
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

fn sgd_typed<'py, T: Elem>(
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

/// RMSprop's step for every weight at once: returns the new values, velocities, momentums
/// (None without momentum) and gradient averages (None unless centered), as lists in the
/// weights' order. All arrays share one float dtype, that of `values[0]`; the scalars are
/// rounded to it.
#[pyfunction]
#[pyo3(signature = (values, gradients, velocities, momentums = None, averages = None, *, learning_rate, rho, momentum = 0.0, epsilon))]
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    velocities: &Bound<'py, PyAny>,
    momentums: Option<&Bound<'py, PyAny>>,
    averages: Option<&Bound<'py, PyAny>>,
    learning_rate: f64,
    rho: f64,
    momentum: f64,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let lists = (values, gradients, velocities, momentums, averages);
        let constants = [learning_rate, rho, momentum, epsilon];
        match first_dtype(values)? {
            Dtype::F32 => rmsprop_typed::<f32>(py, lists, constants),
            Dtype::F64 => rmsprop_typed::<f64>(py, lists, constants),
        }
    })
}

/// The lists `rmsprop_update` takes: values, gradients, velocities, momentums, averages.
type RmspropLists<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);

fn rmsprop_typed<'py, T: Elem>(
    py: Python<'py>,
    (values, gradients, velocities, momentums, averages): RmspropLists<'_, 'py>,
    [learning_rate, rho, momentum, epsilon]: [f64; 4],
) -> PyResult<Bound<'py, PyTuple>> {
    let values = weight_arrays::<T>("values", values, None)?;
    let n = Some(values.len());
    let gradients = weight_arrays::<T>("gradients", gradients, n)?;
    let velocities = weight_arrays::<T>("velocities", velocities, n)?;
    let optional = |name: &str, obj: Option<&Bound<'py, PyAny>>| {
        obj.filter(|o| !o.is_none())
            .map(|obj| weight_arrays::<T>(name, obj, n))
            .transpose()
    };
    let (momentums, averages) = (
        optional("momentums", momentums)?,
        optional("averages", averages)?,
    );
    if momentums.is_some() != (momentum != 0.0) {
        return Err(PyValueError::new_err(format!(
            "momentums: expected a list exactly when momentum is not 0, received {} with momentum={momentum}",
            if momentums.is_some() { "a list" } else { "None" }
        )));
    }
    let scalar = |v: f64| T::from_f64(v).expect("a float converts to a float");
    let step = RmspropStep {
        learning_rate: scalar(learning_rate),
        rho: scalar(rho),
        one_minus_rho: scalar(1.0 - rho),
        epsilon: scalar(epsilon),
        momentum: scalar(momentum),
    };
    let states: Vec<_> = (0..values.len())
        .map(|i| RmspropState {
            value: values[i].as_array(),
            gradient: gradients[i].as_array(),
            velocity: velocities[i].as_array(),
            momentum: momentums.as_ref().map(|m| m[i].as_array()),
            average: averages.as_ref().map(|a| a[i].as_array()),
        })
        .collect();
    let size = states.iter().map(|s| s.value.len()).sum();
    let updates = compute(py, size, |_| step.apply(&states))?;
    let (mut new_values, mut new_v, mut new_m, mut new_a) = (vec![], vec![], vec![], vec![]);
    for (value, v, m, a) in updates {
        new_values.push(value);
        new_v.push(v);
        new_m.extend(m);
        new_a.extend(a);
    }
    PyTuple::new(
        py,
        [
            array_list(py, Some(new_values))?,
            array_list(py, Some(new_v))?,
            array_list(py, momentums.map(|_| new_m))?,
            array_list(py, averages.map(|_| new_a))?,
        ],
    )
}

/// Adagrad's step for every weight at once: returns the new values and accumulators, as lists
/// in the weights' order. All arrays share one float dtype, that of `values[0]`; the scalars
/// are rounded to it.
#[pyfunction]
#[pyo3(signature = (values, gradients, accumulators, *, learning_rate, epsilon))]
pub fn adagrad_update<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    gradients: &Bound<'py, PyAny>,
    accumulators: &Bound<'py, PyAny>,
    learning_rate: f64,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| match first_dtype(values)? {
        Dtype::F32 => adagrad_typed::<f32>(
            py,
            [values, gradients, accumulators],
            learning_rate,
            epsilon,
        ),
        Dtype::F64 => adagrad_typed::<f64>(
            py,
            [values, gradients, accumulators],
            learning_rate,
            epsilon,
        ),
    })
}

fn adagrad_typed<'py, T: Elem>(
    py: Python<'py>,
    [values, gradients, accumulators]: [&Bound<'py, PyAny>; 3],
    learning_rate: f64,
    epsilon: f64,
) -> PyResult<Bound<'py, PyTuple>> {
    let values = weight_arrays::<T>("values", values, None)?;
    let n = Some(values.len());
    let gradients = weight_arrays::<T>("gradients", gradients, n)?;
    let accumulators = weight_arrays::<T>("accumulators", accumulators, n)?;
    let scalar = |v: f64| T::from_f64(v).expect("a float converts to a float");
    let step = AdagradStep {
        learning_rate: scalar(learning_rate),
        epsilon: scalar(epsilon),
    };
    let states: Vec<_> = (0..values.len())
        .map(|i| [&values[i], &gradients[i], &accumulators[i]].map(|a| a.as_array()))
        .collect();
    let size = states.iter().map(|[w, _, _]| w.len()).sum();
    let updates = compute(py, size, |_| step.apply(&states))?;
    let (new_values, new_acc): (Vec<_>, Vec<_>) = updates.into_iter().unzip();
    PyTuple::new(
        py,
        [
            array_list(py, Some(new_values))?,
            array_list(py, Some(new_acc))?,
        ],
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
fn weight_arrays<'py, T: Elem>(
    name: &str,
    obj: &Bound<'py, PyAny>,
    count: Option<usize>,
) -> PyResult<Vec<PyReadonlyArray<'py, T, IxDyn>>> {
    let dtype = dtype_name(T::DTYPE);
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
