//! Batch normalization of the rows of a matrix (features along the last axis): the batch
//! moments, the normalization, and its gradient through the batch statistics, each operation
//! rounded as `rnnkit.layers.normalization`'s numpy code and Keras round it. numpy sums a
//! reduction over leading axes row after row, and so do these loops, so the results are the
//! same bits; one call replaces a dozen numpy temporaries of a small model's training step.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Zip};

use super::Float;
use crate::error::{check_shape, Error, Result};

/// The per-feature mean and biased variance of the rows of `x`.
pub struct Moments<T> {
    /// The mean of each column.
    pub mean: Array1<T>,
    /// The mean squared deviation from `mean` of each column.
    pub variance: Array1<T>,
}

/// The gradients of a batch normalization with respect to its input, scale and offset.
pub struct NormalizationGradients<T> {
    /// The input's gradient, of its shape.
    pub x: Array2<T>,
    /// The scale's gradient, when there is a scale.
    pub gamma: Option<Array1<T>>,
    /// The offset's gradient (the column sums of the output's gradient).
    pub beta: Array1<T>,
}

/// The column sums of `f(row)` over the rows of `x`, row after row (numpy's order).
fn column_sums<T: Float>(
    x: ArrayView2<T>,
    mut add_row: impl FnMut(&mut Array1<T>, ArrayView1<T>),
) -> Array1<T> {
    let mut sums = Array1::zeros(x.ncols());
    for row in x.rows() {
        add_row(&mut sums, row);
    }
    sums
}

/// The mean and biased variance of each column of `x`: `sum(x) / n`, then
/// `sum((x - mean)²) / n`.
///
/// # Errors
/// [`Error::Value`] when `x` has no rows.
pub fn moments<T: Float>(x: ArrayView2<T>) -> Result<Moments<T>> {
    if x.nrows() == 0 {
        return Err(Error::Value {
            argument: "x".into(),
            expected: "at least one row".into(),
            received: "none".into(),
        });
    }
    let count = T::from_usize(x.nrows()).expect("a count converts to a float");
    let sums = column_sums(x, |s, row| Zip::from(s).and(row).for_each(|s, &v| *s += v));
    let mean = sums.mapv(|s| s / count);
    let squares = column_sums(x, |s, row| {
        Zip::from(s).and(row).and(&mean).for_each(|s, &v, &m| {
            let d = v - m;
            *s += d * d;
        });
    });
    let variance = squares.mapv(|s| s / count);
    Ok(Moments { mean, variance })
}

/// The rows of a standard-layout matrix with `features` columns, as slices.
fn rows_of<'a, T: Float>(
    x: &'a ndarray::CowArray<'_, T, ndarray::Ix2>,
    features: usize,
) -> std::slice::ChunksExact<'a, T> {
    x.as_slice()
        .expect("a standard-layout array is one slice")
        .chunks_exact(features.max(1))
}

/// `1 / sqrt(variance + epsilon)` per column.
fn inverse_deviation<T: Float>(variance: ArrayView1<T>, epsilon: T) -> Array1<T> {
    variance.mapv(|v| T::one() / (v + epsilon).sqrt())
}

/// Checks that each of `params` has `features` entries.
fn check_params<T>(features: usize, params: &[(&str, Option<ArrayView1<T>>)]) -> Result<()> {
    for (name, p) in params {
        if let Some(p) = p {
            check_shape(name, &[features], p.shape())?;
        }
    }
    Ok(())
}

/// `gamma · (x − mean) / sqrt(variance + epsilon) + beta` per column, computed as Keras does:
/// `x · scale + offset` with `scale = inv · gamma` and `offset = beta − mean · scale`.
///
/// # Errors
/// [`Error::Shape`] when a statistic or parameter does not have one entry per column of `x`.
pub fn normalize<T: Float>(
    x: ArrayView2<T>,
    mean: ArrayView1<T>,
    variance: ArrayView1<T>,
    gamma: Option<ArrayView1<T>>,
    beta: Option<ArrayView1<T>>,
    epsilon: T,
) -> Result<Array2<T>> {
    let params = [
        ("mean", Some(mean)),
        ("variance", Some(variance)),
        ("gamma", gamma),
        ("beta", beta),
    ];
    check_params(x.ncols(), &params)?;
    let mut scale = inverse_deviation(variance, epsilon);
    if let Some(gamma) = gamma {
        scale *= &gamma;
    }
    let mut offset = Zip::from(&mean).and(&scale).map_collect(|&m, &s| -m * s);
    if let Some(beta) = beta {
        // beta − mean · scale, rounded once as numpy's subtraction rounds it
        Zip::from(&mut offset)
            .and(&beta)
            .for_each(|o, &b| *o = b + *o);
    }
    let mut out = Array2::zeros(x.raw_dim());
    Zip::from(out.rows_mut())
        .and(x.rows())
        .for_each(|mut out, x| {
            Zip::from(&mut out)
                .and(x)
                .and(&scale)
                .and(&offset)
                .for_each(|o, &v, &s, &b| *o = v * s + b);
        });
    Ok(out)
}

/// The gradients of [`normalize`] with the batch's own [`moments`] of `x`, `mean` and
/// `variance` (the statistics
/// depend on `x`, so its gradient flows through them too), given the output's gradient `grad`.
///
/// With `x̂ = (x − mean) · inv` and `d = grad · gamma`: `d_gamma = Σ grad · x̂`,
/// `d_beta = Σ grad` and `d_x = (d − (x̂ · Σ d·x̂ + Σ d) / n) · inv`, sums over the rows.
///
/// # Errors
/// [`Error::Shape`] when `grad` is not of `x`'s shape or a statistic or parameter does not
/// have one entry per column.
pub fn normalize_backward<T: Float>(
    x: ArrayView2<T>,
    mean: ArrayView1<T>,
    variance: ArrayView1<T>,
    gamma: Option<ArrayView1<T>>,
    grad: ArrayView2<T>,
    epsilon: T,
) -> Result<NormalizationGradients<T>> {
    check_shape("grad", x.shape(), grad.shape())?;
    let params = [
        ("mean", Some(mean)),
        ("variance", Some(variance)),
        ("gamma", gamma),
    ];
    check_params(x.ncols(), &params)?;
    let features = x.ncols();
    // Plain slices in the loops below (they vectorize; ndarray's indexing does not). A missing
    // gamma multiplies by 1, which leaves every value as it is.
    let (x, grad) = (x.as_standard_layout(), grad.as_standard_layout());
    let (x_rows, grad_rows) = (rows_of(&x, features), rows_of(&grad, features));
    let (mean, inv) = (mean.to_vec(), inverse_deviation(variance, epsilon).to_vec());
    let scale = gamma.map_or_else(|| vec![T::one(); features], |g| g.to_vec());
    let (mut d_gamma, mut d_beta) = (vec![T::zero(); features], vec![T::zero(); features]);
    let (mut sum_d, mut sum_d_x_hat) = (vec![T::zero(); features], vec![T::zero(); features]);
    for (row, grad) in x_rows.clone().zip(grad_rows.clone()) {
        for j in 0..features {
            let (h, g) = ((row[j] - mean[j]) * inv[j], grad[j]);
            let d = g * scale[j];
            d_gamma[j] += g * h;
            d_beta[j] += g;
            sum_d[j] += d;
            sum_d_x_hat[j] += d * h;
        }
    }
    let count = T::from_usize(x.nrows()).expect("a count converts to a float");
    let mut d_x = Array2::zeros(x.raw_dim());
    let out_rows = d_x
        .as_slice_mut()
        .expect("a new array is contiguous")
        .chunks_exact_mut(features.max(1));
    for ((out, row), grad) in out_rows.zip(x_rows).zip(grad_rows) {
        for j in 0..features {
            let h = (row[j] - mean[j]) * inv[j];
            let through_stats = (h * sum_d_x_hat[j] + sum_d[j]) / count;
            out[j] = (grad[j] * scale[j] - through_stats) * inv[j];
        }
    }
    Ok(NormalizationGradients {
        x: d_x,
        gamma: gamma.map(|_| Array1::from(d_gamma)),
        beta: Array1::from(d_beta),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn sample() -> Array2<f64> {
        array![
            [1.0, -2.0, 0.5],
            [3.0, 0.0, 0.25],
            [-1.0, 4.0, 2.0],
            [0.5, 1.0, -3.0]
        ]
    }

    #[test]
    fn moments_are_the_column_mean_and_biased_variance() {
        let m = moments(sample().view()).unwrap();
        assert_eq!(m.mean, array![0.875, 0.75, -0.0625]);
        // column 0: deviations 0.125, 2.125, -1.875, -0.375 → squares sum 8.1875, / 4
        assert!((m.variance[0] - 8.1875 / 4.0).abs() < 1e-15);
    }

    #[test]
    fn no_rows_is_an_error() {
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(matches!(moments(empty.view()), Err(Error::Value { .. })));
    }

    #[test]
    fn normalized_columns_have_zero_mean_and_unit_variance() {
        let x = sample();
        let m = moments(x.view()).unwrap();
        let y = normalize(x.view(), m.mean.view(), m.variance.view(), None, None, 0.0).unwrap();
        let again = moments(y.view()).unwrap();
        for j in 0..3 {
            assert!(again.mean[j].abs() < 1e-12);
            assert!((again.variance[j] - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn parameters_of_the_wrong_length_are_shape_errors() {
        let x = sample();
        let m = moments(x.view()).unwrap();
        let gamma = array![1.0, 2.0];
        let out = normalize(
            x.view(),
            m.mean.view(),
            m.variance.view(),
            Some(gamma.view()),
            None,
            1e-3,
        );
        assert!(matches!(out, Err(Error::Shape { ref argument, .. }) if argument == "gamma"));
        let grad = Array2::zeros((4, 2));
        let back = normalize_backward(
            x.view(),
            m.mean.view(),
            m.variance.view(),
            None,
            grad.view(),
            1e-3,
        );
        assert!(matches!(back, Err(Error::Shape { ref argument, .. }) if argument == "grad"));
    }

    /// The loss `Σ w · normalize(x)` differentiated by central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let (gamma, beta, eps) = (array![0.5, -1.5, 2.0], array![0.1, 0.2, -0.3], 1e-3);
        let w = array![
            [0.3, -1.0, 0.2],
            [1.1, 0.4, -0.7],
            [-0.2, 0.9, 0.5],
            [0.6, -0.8, 1.3]
        ];
        let loss = |x: &Array2<f64>, gamma: &Array1<f64>, beta: &Array1<f64>| {
            let m = moments(x.view()).unwrap();
            let y = normalize(
                x.view(),
                m.mean.view(),
                m.variance.view(),
                Some(gamma.view()),
                Some(beta.view()),
                eps,
            );
            (y.unwrap() * &w).sum()
        };
        let x = sample();
        let m = moments(x.view()).unwrap();
        let grads = normalize_backward(
            x.view(),
            m.mean.view(),
            m.variance.view(),
            Some(gamma.view()),
            w.view(),
            eps,
        )
        .unwrap();
        let h = 1e-6;
        for i in 0..4 {
            for j in 0..3 {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[[i, j]] += h;
                down[[i, j]] -= h;
                let numeric = (loss(&up, &gamma, &beta) - loss(&down, &gamma, &beta)) / (2.0 * h);
                assert!((numeric - grads.x[[i, j]]).abs() < 1e-6, "d_x[{i}, {j}]");
            }
        }
        let d_gamma = grads.gamma.unwrap();
        for j in 0..3 {
            let (mut up, mut down) = (gamma.clone(), gamma.clone());
            up[j] += h;
            down[j] -= h;
            let numeric = (loss(&x, &up, &beta) - loss(&x, &down, &beta)) / (2.0 * h);
            assert!((numeric - d_gamma[j]).abs() < 1e-6, "d_gamma[{j}]");
            assert!(
                (grads.beta[j] - w.column(j).sum()).abs() < 1e-12,
                "d_beta[{j}]"
            );
        }
    }
}
