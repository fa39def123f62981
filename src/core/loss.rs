//! The softmax cross-entropy of integer class labels, from logits, and its gradient: per row
//! `log_softmax(z) = (z − max z) − log Σ exp(z − max z)`, the loss `−log_softmax(z)[label]`, and
//! the gradient `(softmax(z) − onehot(label)) · grad`, in the order of operations of
//! `rnnkit.losses`' numpy code. A label outside `[0, classes)` selects no class: its row has
//! loss 0 and gradient 0 (Keras's one-hot of such a label is all zeros).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Zip};

use super::Float;
use crate::error::{check_shape, Result};

/// The class a label selects, if it is one of `classes`.
fn class(label: i64, classes: usize) -> Option<usize> {
    usize::try_from(label).ok().filter(|&c| c < classes)
}

/// The per-row losses and the softmax probabilities (the backward pass's input) of `logits`,
/// one row per label.
///
/// # Errors
/// [`crate::Error::Shape`] when `labels` does not have one entry per row of `logits`.
pub fn sparse_softmax_cross_entropy<T: Float>(
    logits: ArrayView2<T>,
    labels: ArrayView1<i64>,
) -> Result<(Array1<T>, Array2<T>)> {
    check_shape("labels", &[logits.nrows()], labels.shape())?;
    let classes = logits.ncols();
    let mut probabilities = Array2::zeros(logits.raw_dim());
    let mut losses = Array1::zeros(logits.nrows());
    Zip::from(&mut losses)
        .and(probabilities.rows_mut())
        .and(logits.rows())
        .and(&labels)
        .for_each(|loss, mut p, z, &label| {
            let max = z.fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
            let mut total = T::zero();
            for &v in z {
                total += (v - max).exp();
            }
            let log_total = total.ln();
            Zip::from(&mut p)
                .and(z)
                .for_each(|p, &v| *p = ((v - max) - log_total).exp());
            if let Some(c) = class(label, classes) {
                *loss = -((z[c] - max) - log_total);
            }
        });
    Ok((losses, probabilities))
}

/// The gradient with respect to the logits of [`sparse_softmax_cross_entropy`]'s losses,
/// given their gradient `grad` and the `probabilities` it returned.
///
/// # Errors
/// [`crate::Error::Shape`] when `labels` or `grad` does not have one entry per row.
pub fn sparse_softmax_cross_entropy_backward<T: Float>(
    probabilities: ArrayView2<T>,
    labels: ArrayView1<i64>,
    grad: ArrayView1<T>,
) -> Result<Array2<T>> {
    let rows = [probabilities.nrows()];
    check_shape("labels", &rows, labels.shape())?;
    check_shape("grad", &rows, grad.shape())?;
    let classes = probabilities.ncols();
    let mut d_logits = Array2::zeros(probabilities.raw_dim());
    Zip::from(d_logits.rows_mut())
        .and(probabilities.rows())
        .and(&labels)
        .and(&grad)
        .for_each(|mut d, p, &label, &g| {
            if let Some(c) = class(label, classes) {
                Zip::from(&mut d).and(p).for_each(|d, &p| *d = p * g);
                d[c] = d[c] - g;
            }
        });
    Ok(d_logits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_loss_is_minus_the_log_softmax_of_the_label() {
        let logits = array![[1.0, 2.0, 3.0], [0.5, -0.5, 0.0]];
        let (losses, p) = sparse_softmax_cross_entropy(logits.view(), array![2, 0].view()).unwrap();
        let total: f64 = [1.0_f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        assert!((losses[0] - (total.ln() - 3.0)).abs() < 1e-14);
        assert!((p[[0, 1]] - 2.0_f64.exp() / total).abs() < 1e-15);
        assert!((p.row(1).sum() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn a_label_out_of_range_has_no_loss_and_no_gradient() {
        let logits = array![[1.0_f32, 2.0], [3.0, 4.0]];
        let labels = array![-1, 2];
        let (losses, p) = sparse_softmax_cross_entropy(logits.view(), labels.view()).unwrap();
        assert_eq!(losses, array![0.0, 0.0]);
        let d =
            sparse_softmax_cross_entropy_backward(p.view(), labels.view(), array![1.0, 1.0].view());
        assert_eq!(d.unwrap(), Array2::<f32>::zeros((2, 2)));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let logits = array![[0.3, -1.2, 2.0, 0.1], [1.5, 0.2, -0.4, 0.9]];
        let (labels, grad) = (array![2, 0], array![0.7, -1.3]);
        let loss = |z: &Array2<f64>| {
            let (l, _) = sparse_softmax_cross_entropy(z.view(), labels.view()).unwrap();
            (l * &grad).sum()
        };
        let (_, p) = sparse_softmax_cross_entropy(logits.view(), labels.view()).unwrap();
        let d =
            sparse_softmax_cross_entropy_backward(p.view(), labels.view(), grad.view()).unwrap();
        let h = 1e-6;
        for i in 0..2 {
            for j in 0..4 {
                let (mut up, mut down) = (logits.clone(), logits.clone());
                up[[i, j]] += h;
                down[[i, j]] -= h;
                let numeric = (loss(&up) - loss(&down)) / (2.0 * h);
                assert!((numeric - d[[i, j]]).abs() < 1e-8, "d[{i}, {j}]");
            }
        }
    }

    #[test]
    fn labels_of_the_wrong_length_are_shape_errors() {
        let logits = array![[1.0_f32, 2.0]];
        let out = sparse_softmax_cross_entropy(logits.view(), array![0, 1].view());
        assert!(
            matches!(out, Err(crate::Error::Shape { ref argument, .. }) if argument == "labels")
        );
    }
}
