//! Adam's update of one weight in one pass over memory, operation for operation the
//! arithmetic of Keras's Adam (and of `rnnkit.optimizers.Adam`'s numpy code), so the results
//! are the same bits: a small model's training step then spends a few microseconds per weight
//! here instead of a dozen numpy calls.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn};

use super::Float;
use crate::cpu::team;
use crate::error::{check_shape, Result};

/// Elements per parallel task: a few tasks for the larger weights of a small model.
const CHUNK: usize = 1 << 14;

/// One Adam step's constants, rounded to the weights' float type as Keras rounds them.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep<T> {
    /// `learning_rate · sqrt(1 − β₂ᵗ) / (1 − β₁ᵗ)`.
    pub alpha: T,
    /// `1 − β₁`.
    pub one_minus_beta_1: T,
    /// `1 − β₂`.
    pub one_minus_beta_2: T,
    /// Added to `sqrt(v)`.
    pub epsilon: T,
}

/// One weight's Adam state before the step.
pub struct AdamState<'a, T> {
    /// The weight.
    pub value: ArrayViewD<'a, T>,
    /// Its gradient.
    pub gradient: ArrayViewD<'a, T>,
    /// The gradients' moving average `m`.
    pub momentum: ArrayViewD<'a, T>,
    /// The squared gradients' moving average `v`.
    pub velocity: ArrayViewD<'a, T>,
    /// AMSGrad's largest `v` so far, when AMSGrad is on.
    pub velocity_hat: Option<ArrayViewD<'a, T>>,
}

/// The new value, `m`, `v` and (AMSGrad) largest `v` of one weight.
pub type AdamUpdate<T> = (ArrayD<T>, ArrayD<T>, ArrayD<T>, Option<ArrayD<T>>);

impl<T: Float> AdamStep<T> {
    /// Steps every weight: `m ← m + (g − m)(1 − β₁)`, `v ← v + (g² − v)(1 − β₂)`,
    /// `v̂ ← max(v̂, v)` with AMSGrad, and `w ← w − m·α / (sqrt(v or v̂) + ε)`, each operation
    /// rounded as numpy rounds it, in one pass over each weight, split across the threads.
    pub fn apply(&self, states: &[AdamState<T>]) -> Result<Vec<AdamUpdate<T>>> {
        for s in states {
            let shape = s.value.shape();
            check_shape("gradient", shape, s.gradient.shape())?;
            check_shape("momentum", shape, s.momentum.shape())?;
            check_shape("velocity", shape, s.velocity.shape())?;
            if let Some(v_hat) = &s.velocity_hat {
                check_shape("velocity_hat", shape, v_hat.shape())?;
            }
        }
        let inputs: Vec<Inputs<T>> = states.iter().map(Inputs::new).collect();
        let mut outputs: Vec<Outputs<T>> = inputs.iter().map(Outputs::new).collect();
        let mut tasks = Vec::new();
        for (input, output) in inputs.iter().zip(&mut outputs) {
            let [w, m, v] = &mut output.arrays;
            let hat = output.hat.as_mut().map(|h| slice(h).chunks_mut(CHUNK));
            let mut hat = hat.into_iter().flatten();
            let chunks = slice(w)
                .chunks_mut(CHUNK)
                .zip(slice(m).chunks_mut(CHUNK))
                .zip(slice(v).chunks_mut(CHUNK));
            for (start, ((w, m), v)) in (0..).step_by(CHUNK).zip(chunks) {
                tasks.push((input, start, [w, m, v], hat.next()));
            }
        }
        let _ = team::for_each(tasks, |(input, start, out, hat)| {
            self.step_chunk(input, start, out, hat);
            Ok::<(), ()>(())
        });
        // SAFETY: every element of every output was written by exactly one chunk above.
        Ok(outputs
            .into_iter()
            .map(|o| unsafe { o.assume_init() })
            .collect())
    }

    /// Steps elements `start..start + out[0].len()` of one weight.
    fn step_chunk(
        &self,
        input: &Inputs<T>,
        start: usize,
        [w_out, m_out, v_out]: [&mut [MaybeUninit<T>]; 3],
        mut hat_out: Option<&mut [MaybeUninit<T>]>,
    ) {
        let range = start..start + w_out.len();
        let [w, g, m, v] = input
            .arrays
            .each_ref()
            .map(|a| &a.as_slice().expect("standard layout")[range.clone()]);
        let hat = input
            .hat
            .as_ref()
            .map(|h| &h.as_slice().expect("standard layout")[range.clone()]);
        for i in 0..w.len() {
            let m_new = m[i] + (g[i] - m[i]) * self.one_minus_beta_1;
            let v_new = v[i] + (g[i] * g[i] - v[i]) * self.one_minus_beta_2;
            let denominator = match hat {
                Some(hat) => nan_max(hat[i], v_new),
                None => v_new,
            };
            m_out[i].write(m_new);
            v_out[i].write(v_new);
            if let Some(hat_out) = hat_out.as_deref_mut() {
                hat_out[i].write(denominator);
            }
            w_out[i].write(w[i] - m_new * self.alpha / (denominator.sqrt() + self.epsilon));
        }
    }
}

/// A weight's arrays in standard layout (borrowed when they already are): value, gradient,
/// momentum, velocity, and AMSGrad's largest velocity.
struct Inputs<'a, T> {
    arrays: [CowArray<'a, T, IxDyn>; 4],
    hat: Option<CowArray<'a, T, IxDyn>>,
}

impl<'a, T: Float> Inputs<'a, T> {
    fn new(s: &AdamState<'a, T>) -> Self {
        let standard = |a: &ArrayViewD<'a, T>| {
            if a.is_standard_layout() {
                CowArray::from(a.clone())
            } else {
                CowArray::from(a.as_standard_layout().into_owned())
            }
        };
        Self {
            arrays: [&s.value, &s.gradient, &s.momentum, &s.velocity].map(standard),
            hat: s.velocity_hat.as_ref().map(standard),
        }
    }
}

/// A weight's new value, momentum and velocity (and largest velocity), not yet written.
struct Outputs<T> {
    arrays: [ArrayD<MaybeUninit<T>>; 3],
    hat: Option<ArrayD<MaybeUninit<T>>>,
}

impl<T: Float> Outputs<T> {
    fn new(input: &Inputs<T>) -> Self {
        let shape = input.arrays[0].raw_dim();
        let uninit = || ArrayD::uninit(shape.clone());
        Self {
            arrays: [uninit(), uninit(), uninit()],
            hat: input.hat.as_ref().map(|_| uninit()),
        }
    }

    /// # Safety
    /// Every element must have been written.
    unsafe fn assume_init(self) -> AdamUpdate<T> {
        let [w, m, v] = self.arrays;
        (
            w.assume_init(),
            m.assume_init(),
            v.assume_init(),
            self.hat.map(|h| h.assume_init()),
        )
    }
}

/// The elements of a new standard-layout array.
fn slice<T>(a: &mut ArrayD<MaybeUninit<T>>) -> &mut [MaybeUninit<T>] {
    a.as_slice_mut().expect("a new array is in standard layout")
}

/// numpy's `maximum`: NaN when either is NaN.
fn nan_max<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b > a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayView1};

    fn state<'a>(
        w: ArrayView1<'a, f32>,
        g: ArrayView1<'a, f32>,
        m: ArrayView1<'a, f32>,
        v: ArrayView1<'a, f32>,
    ) -> AdamState<'a, f32> {
        AdamState {
            value: w.into_dyn(),
            gradient: g.into_dyn(),
            momentum: m.into_dyn(),
            velocity: v.into_dyn(),
            velocity_hat: None,
        }
    }

    #[test]
    fn one_step_matches_numpy() {
        // numpy 2.4, float32 throughout:
        //   w, g = np.float32([0.5, -1.25]), np.float32([0.1, -2.0])
        //   m, v = np.float32([0.01, 0.2]), np.float32([0.001, 0.5])
        //   m = m + (g - m) * (1 - 0.9); v = v + (np.square(g) - v) * (1 - 0.999)
        //   alpha = np.float32(1e-3) * np.sqrt(1 - np.float32(0.999) ** np.float32(3)) / (1 - np.float32(0.9) ** np.float32(3))
        //   w = w - m * alpha / (np.sqrt(v) + 1e-7)   # alpha = 0.00020200988
        let step = AdamStep {
            alpha: 0.000_202_009_88f32,
            one_minus_beta_1: (1.0 - 0.9f64) as f32,
            one_minus_beta_2: (1.0 - 0.999f64) as f32,
            epsilon: 1e-7,
        };
        let (w, g) = (arr1(&[0.5f32, -1.25]), arr1(&[0.1f32, -2.0]));
        let (m, v) = (arr1(&[0.01f32, 0.2]), arr1(&[0.001f32, 0.5]));
        let (w2, m2, v2, hat) = step
            .apply(&[state(w.view(), g.view(), m.view(), v.view())])
            .unwrap()
            .remove(0);
        assert!(hat.is_none());
        assert_eq!(m2.as_slice().unwrap(), &[0.019_000_001f32, -0.020_000_01]);
        assert_eq!(v2.as_slice().unwrap(), &[0.001_009f32, 0.503_5]);
        assert_eq!(w2.as_slice().unwrap(), &[0.499_879_18f32, -1.249_994_3]);
    }

    #[test]
    fn amsgrad_divides_by_the_largest_velocity_and_shapes_are_checked() {
        let step = AdamStep {
            alpha: 0.1f32,
            one_minus_beta_1: 0.5,
            one_minus_beta_2: 0.5,
            epsilon: 0.0,
        };
        let (w, g, m, v) = (
            arr1(&[1.0f32]),
            arr1(&[0.0f32]),
            arr1(&[2.0f32]),
            arr1(&[4.0f32]),
        );
        let hat = arr1(&[16.0f32]);
        let mut s = state(w.view(), g.view(), m.view(), v.view());
        s.velocity_hat = Some(hat.view().into_dyn());
        let (w2, _, v2, hat2) = step.apply(std::slice::from_ref(&s)).unwrap().remove(0);
        assert_eq!((v2[0], hat2.unwrap()[0]), (2.0, 16.0));
        assert_eq!(w2[0], 1.0 - 1.0 * 0.1 / 4.0);
        let short = arr1(&[1.0f32, 2.0]);
        s.gradient = short.view().into_dyn();
        let err = step.apply(&[s]).unwrap_err().to_string();
        assert_eq!(err, "gradient: expected shape (1,), received (2,)");
    }
}
