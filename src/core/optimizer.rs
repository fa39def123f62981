//! Optimizer updates of every weight in one call (Adam, SGD, RMSprop, Adagrad), element by element, operation for operation
//! the arithmetic of Keras's optimizers (and of `rnnkit.optimizers`' numpy code), so the results
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
    /// AMSGrad's largest `v` so far, when AMSGrad is on (for every weight or for none).
    pub velocity_hat: Option<ArrayViewD<'a, T>>,
}

/// The new value, `m`, `v` and (AMSGrad) largest `v` of one weight.
pub type AdamUpdate<T> = (ArrayD<T>, ArrayD<T>, ArrayD<T>, Option<ArrayD<T>>);

impl<T: Float> AdamStep<T> {
    /// Steps every weight: `m ← m + (g − m)(1 − β₁)`, `v ← v + (g² − v)(1 − β₂)`,
    /// `v̂ ← max(v̂, v)` with AMSGrad, and `w ← w − m·α / (sqrt(v or v̂) + ε)`, each operation
    /// rounded as numpy rounds it.
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
        // The constants copied out of `self`: read through a captured reference, the compiler
        // reloads them after every store and the loops do not vectorize (measured 2x slower).
        let Self {
            alpha,
            one_minus_beta_1,
            one_minus_beta_2,
            epsilon,
        } = *self;
        let moments = move |m: T, v: T, g: T| {
            (
                m + (g - m) * one_minus_beta_1,
                v + (g * g - v) * one_minus_beta_2,
            )
        };
        let value = move |w: T, m: T, v: T| w - m * alpha / (v.sqrt() + epsilon);
        fn views<'s, T>(s: &'s AdamState<'_, T>) -> [ArrayViewD<'s, T>; 4] {
            [&s.value, &s.gradient, &s.momentum, &s.velocity].map(|a| a.view())
        }
        let with_hats: Option<Vec<[ArrayViewD<T>; 5]>> = states
            .iter()
            .map(|s| {
                let [w, g, m, v] = views(s);
                s.velocity_hat.as_ref().map(|h| [w, g, m, v, h.view()])
            })
            .collect();
        Ok(match with_hats {
            Some(inputs) if !inputs.is_empty() => {
                map_chunks(&inputs, |[w, g, m, v, hat], [wo, mo, vo, ho]| {
                    // Every slice cut to one length, so the loop runs without bounds checks.
                    let n = wo.len();
                    let (w, g, m, v, hat) = (&w[..n], &g[..n], &m[..n], &v[..n], &hat[..n]);
                    let (mo, vo, ho) = (&mut mo[..n], &mut vo[..n], &mut ho[..n]);
                    for i in 0..n {
                        let (m, v) = moments(m[i], v[i], g[i]);
                        let hat = nan_max(hat[i], v);
                        mo[i].write(m);
                        vo[i].write(v);
                        ho[i].write(hat);
                        wo[i].write(value(w[i], m, hat));
                    }
                })
                .into_iter()
                .map(|[w, m, v, hat]| (w, m, v, Some(hat)))
                .collect()
            }
            _ => {
                let inputs: Vec<_> = states.iter().map(views).collect();
                map_chunks(&inputs, |[w, g, m, v], [wo, mo, vo]| {
                    let n = wo.len();
                    let (w, g, m, v) = (&w[..n], &g[..n], &m[..n], &v[..n]);
                    let (mo, vo) = (&mut mo[..n], &mut vo[..n]);
                    for i in 0..n {
                        let (m, v) = moments(m[i], v[i], g[i]);
                        mo[i].write(m);
                        vo[i].write(v);
                        wo[i].write(value(w[i], m, v));
                    }
                })
                .into_iter()
                .map(|[w, m, v]| (w, m, v, None))
                .collect()
            }
        })
    }
}

/// One weight's SGD state before the step: value, gradient and (with momentum) momentum.
pub type SgdState<'a, T> = (
    ArrayViewD<'a, T>,
    ArrayViewD<'a, T>,
    Option<ArrayViewD<'a, T>>,
);

/// The new value and (with momentum) momentum of one weight.
pub type SgdUpdate<T> = (ArrayD<T>, Option<ArrayD<T>>);

/// One SGD step's constants, in the weights' float type.
#[derive(Clone, Copy, Debug)]
pub struct SgdStep<T> {
    /// The learning rate.
    pub learning_rate: T,
    /// The momentum (0: none, and no momentum arrays).
    pub momentum: T,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl<T: Float> SgdStep<T> {
    /// Steps every weight `(value, gradient, momentum)`: `s = g·lr`, then `w ← w − s`, or with
    /// momentum `m ← m·μ − s` and `w ← w + m` (Nesterov: `w ← w + (m·μ − s)`), each operation
    /// rounded as numpy rounds it. Returns the new values and, with momentum, the new momentums.
    pub fn apply(&self, weights: &[SgdState<T>]) -> Result<Vec<SgdUpdate<T>>> {
        for (w, g, m) in weights {
            check_shape("gradient", w.shape(), g.shape())?;
            if let Some(m) = m {
                check_shape("momentum", w.shape(), m.shape())?;
            }
        }
        // Copied out of `self`, so the loops vectorize (see `AdamStep::apply`).
        let (lr, mu, nesterov) = (self.learning_rate, self.momentum, self.nesterov);
        let with_momentum: Option<Vec<[ArrayViewD<T>; 3]>> = weights
            .iter()
            .map(|(w, g, m)| m.as_ref().map(|m| [w.view(), g.view(), m.view()]))
            .collect();
        Ok(match with_momentum {
            Some(inputs) if !inputs.is_empty() => map_chunks(&inputs, |[w, g, m], [wo, mo]| {
                let n = wo.len();
                let (w, g, m, mo) = (&w[..n], &g[..n], &m[..n], &mut mo[..n]);
                for i in 0..n {
                    let step = g[i] * lr;
                    let m = m[i] * mu - step;
                    mo[i].write(m);
                    wo[i].write(w[i] + if nesterov { m * mu - step } else { m });
                }
            })
            .into_iter()
            .map(|[w, m]| (w, Some(m)))
            .collect(),
            _ => {
                let inputs: Vec<_> = weights
                    .iter()
                    .map(|(w, g, _)| [w.view(), g.view()])
                    .collect();
                map_chunks(&inputs, |[w, g], [wo]| {
                    let (w, g) = (&w[..wo.len()], &g[..wo.len()]);
                    for (i, wo) in wo.iter_mut().enumerate() {
                        wo.write(w[i] - g[i] * lr);
                    }
                })
                .into_iter()
                .map(|[w]| (w, None))
                .collect()
            }
        })
    }
}

/// One RMSprop step's constants, rounded to the weights' float type as numpy rounds them.
#[derive(Clone, Copy, Debug)]
pub struct RmspropStep<T> {
    /// The learning rate.
    pub learning_rate: T,
    /// The decay of the squared gradients' average, `ρ`.
    pub rho: T,
    /// `1 − ρ` (computed in f64, then rounded).
    pub one_minus_rho: T,
    /// Added under the square root.
    pub epsilon: T,
    /// The momentum (0: none, and no momentum arrays).
    pub momentum: T,
}

/// One weight's RMSprop state before the step.
pub struct RmspropState<'a, T> {
    /// The weight.
    pub value: ArrayViewD<'a, T>,
    /// Its gradient.
    pub gradient: ArrayViewD<'a, T>,
    /// The squared gradients' moving average `v`.
    pub velocity: ArrayViewD<'a, T>,
    /// The accumulated increments, with momentum (for every weight or for none).
    pub momentum: Option<ArrayViewD<'a, T>>,
    /// The gradients' moving average `a`, when centered (for every weight or for none).
    pub average: Option<ArrayViewD<'a, T>>,
}

/// The new value, `v`, momentum and average of one weight (the last two when kept).
pub type RmspropUpdate<T> = (ArrayD<T>, ArrayD<T>, Option<ArrayD<T>>, Option<ArrayD<T>>);

impl<T: Float> RmspropStep<T> {
    /// Steps every weight: `v ← ρ·v + (1 − ρ)·g²`, centered `a ← ρ·a + (1 − ρ)·g` and
    /// `d = v − a² + ε` (else `d = v + ε`), `s = lr·g / sqrt(d)`, with momentum `m ← μ·m + s`
    /// and `s = m`, then `w ← w − s`: each operation rounded as numpy rounds it.
    pub fn apply(&self, states: &[RmspropState<T>]) -> Result<Vec<RmspropUpdate<T>>> {
        for s in states {
            let shape = s.value.shape();
            check_shape("gradient", shape, s.gradient.shape())?;
            check_shape("velocity", shape, s.velocity.shape())?;
            for (name, a) in [("momentum", &s.momentum), ("average", &s.average)] {
                if let Some(a) = a {
                    check_shape(name, shape, a.shape())?;
                }
            }
        }
        let with_momentum = states.first().is_some_and(|s| s.momentum.is_some());
        let centered = states.first().is_some_and(|s| s.average.is_some());
        if states
            .iter()
            .any(|s| s.momentum.is_some() != with_momentum || s.average.is_some() != centered)
        {
            return Err(crate::error::Error::Value {
                argument: "momentums, averages".into(),
                expected: "arrays for every weight or for none".into(),
                received: "arrays for some weights".into(),
            });
        }
        // Absent arrays are stood in for by the gradient (read, never used).
        let inputs: Vec<[ArrayViewD<T>; 5]> = states
            .iter()
            .map(|s| {
                let (w, g, v) = (s.value.view(), s.gradient.view(), s.velocity.view());
                let m = s.momentum.as_ref().unwrap_or(&s.gradient).view();
                let a = s.average.as_ref().unwrap_or(&s.gradient).view();
                [w, g, v, m, a]
            })
            .collect();
        let step = *self;
        let updates = match (with_momentum, centered) {
            (false, false) => map_chunks(&inputs, |i, o| step.chunk::<false, false>(i, o)),
            (false, true) => map_chunks(&inputs, |i, o| step.chunk::<false, true>(i, o)),
            (true, false) => map_chunks(&inputs, |i, o| step.chunk::<true, false>(i, o)),
            (true, true) => map_chunks(&inputs, |i, o| step.chunk::<true, true>(i, o)),
        };
        Ok(updates
            .into_iter()
            .map(|[w, v, m, a]| (w, v, with_momentum.then_some(m), centered.then_some(a)))
            .collect())
    }

    /// One chunk: inputs `[w, g, v, m, a]`, outputs `[w, v, m, a]` (the unused ones written
    /// too, with zeros).
    #[inline(always)]
    fn chunk<const MOMENTUM: bool, const CENTERED: bool>(
        self,
        [w, g, v, m, a]: [&[T]; 5],
        [wo, vo, mo, ao]: [&mut [MaybeUninit<T>]; 4],
    ) {
        let Self {
            learning_rate,
            rho,
            one_minus_rho,
            epsilon,
            momentum,
        } = self;
        let n = wo.len();
        let (w, g, v, m, a) = (&w[..n], &g[..n], &v[..n], &m[..n], &a[..n]);
        let (vo, mo, ao) = (&mut vo[..n], &mut mo[..n], &mut ao[..n]);
        for i in 0..n {
            let velocity = rho * v[i] + one_minus_rho * (g[i] * g[i]);
            vo[i].write(velocity);
            let denominator = if CENTERED {
                let average = rho * a[i] + one_minus_rho * g[i];
                ao[i].write(average);
                velocity - average * average + epsilon
            } else {
                ao[i].write(T::zero());
                velocity + epsilon
            };
            let mut increment = learning_rate * g[i] / denominator.sqrt();
            if MOMENTUM {
                increment = momentum * m[i] + increment;
                mo[i].write(increment);
            } else {
                mo[i].write(T::zero());
            }
            wo[i].write(w[i] - increment);
        }
    }
}

/// One Adagrad step's constants, in the weights' float type.
#[derive(Clone, Copy, Debug)]
pub struct AdagradStep<T> {
    /// The learning rate.
    pub learning_rate: T,
    /// Added under the square root.
    pub epsilon: T,
}

/// One weight's Adagrad state before the step: value, gradient, accumulator.
pub type AdagradState<'a, T> = [ArrayViewD<'a, T>; 3];

impl<T: Float> AdagradStep<T> {
    /// Steps every weight: `acc ← acc + g²`, `w ← w − lr·g / sqrt(acc + ε)`, each operation
    /// rounded as numpy rounds it. Returns the new values and accumulators.
    pub fn apply(&self, states: &[AdagradState<T>]) -> Result<Vec<(ArrayD<T>, ArrayD<T>)>> {
        for [w, g, acc] in states {
            check_shape("gradient", w.shape(), g.shape())?;
            check_shape("accumulator", w.shape(), acc.shape())?;
        }
        let Self {
            learning_rate,
            epsilon,
        } = *self;
        Ok(map_chunks(states, |[w, g, acc], [wo, ao]| {
            let n = wo.len();
            let (w, g, acc, ao) = (&w[..n], &g[..n], &acc[..n], &mut ao[..n]);
            for i in 0..n {
                let accumulated = acc[i] + g[i] * g[i];
                ao[i].write(accumulated);
                wo[i].write(w[i] - learning_rate * g[i] / (accumulated + epsilon).sqrt());
            }
        })
        .into_iter()
        .map(|[w, acc]| (w, acc))
        .collect())
    }
}

/// Runs `step` over every weight in chunks: `inputs[w]` holds weight `w`'s `I` arrays (of one
/// shape); `step` gets a chunk of each (same range) and writes every element of the matching
/// chunks of the weight's `O` new arrays. One pass per weight, the chunks run on the thread
/// team; each element's arithmetic is the same wherever it runs.
fn map_chunks<T: Float, const I: usize, const O: usize>(
    inputs: &[[ArrayViewD<T>; I]],
    step: impl Fn([&[T]; I], [&mut [MaybeUninit<T>]; O]) + Sync,
) -> Vec<[ArrayD<T>; O]> {
    let inputs: Vec<[CowArray<T, IxDyn>; I]> = inputs
        .iter()
        .map(|arrays| arrays.each_ref().map(standard))
        .collect();
    let mut outputs: Vec<[ArrayD<MaybeUninit<T>>; O]> = inputs
        .iter()
        .map(|a| std::array::from_fn(|_| ArrayD::uninit(a[0].raw_dim())))
        .collect();
    let mut tasks = Vec::new();
    for (input, output) in inputs.iter().zip(&mut outputs) {
        let mut chunks = output.each_mut().map(|o| {
            o.as_slice_mut()
                .expect("a new array is in standard layout")
                .chunks_mut(CHUNK)
        });
        for start in (0..input[0].len()).step_by(CHUNK) {
            let out = chunks
                .each_mut()
                .map(|c| c.next().expect("every output has this chunk"));
            tasks.push((input, start, out));
        }
    }
    team::each(tasks, |(input, start, out)| {
        let range = start..start + out[0].len();
        step(
            input
                .each_ref()
                .map(|a| &a.as_slice().expect("standard layout")[range.clone()]),
            out,
        );
    });
    // SAFETY: `step` wrote every element of every output chunk, and the chunks cover them.
    outputs
        .into_iter()
        .map(|o| o.map(|a| unsafe { a.assume_init() }))
        .collect()
}

/// `a` in standard layout, borrowed when it already is.
fn standard<'a, T: Float>(a: &ArrayViewD<'a, T>) -> CowArray<'a, T, IxDyn> {
    if a.is_standard_layout() {
        CowArray::from(a.clone())
    } else {
        CowArray::from(a.as_standard_layout().into_owned())
    }
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

    #[test]
    fn rmsprop_and_adagrad_steps_match_numpy() {
        // numpy, float32: w, g, v = [0.5, -1.25], [0.1, -2.0], [0.01, 0.2]; rho 0.9, lr 0.01
        //   v = 0.9 * v + (1 - 0.9) * np.square(g); w - 0.01 * g / np.sqrt(v + 1e-7)
        //   acc = v + np.square(g); w - 0.01 * g / np.sqrt(acc + 1e-7)
        let (w, g, v) = (
            arr1(&[0.5f32, -1.25]),
            arr1(&[0.1f32, -2.0]),
            arr1(&[0.01f32, 0.2]),
        );
        let step = RmspropStep {
            learning_rate: 0.01f32,
            rho: 0.9,
            one_minus_rho: (1.0 - 0.9f64) as f32,
            epsilon: 1e-7,
            momentum: 0.0,
        };
        let state = RmspropState {
            value: w.view().into_dyn(),
            gradient: g.view().into_dyn(),
            velocity: v.view().into_dyn(),
            momentum: None,
            average: None,
        };
        let (w2, v2, m2, a2) = step.apply(&[state]).unwrap().remove(0);
        assert!(m2.is_none() && a2.is_none());
        assert_eq!(v2.as_slice().unwrap(), &[0.01f32, 0.58]);
        assert_eq!(w2.as_slice().unwrap(), &[0.490_000_04f32, -1.223_738_7]);
        let adagrad = AdagradStep {
            learning_rate: 0.01f32,
            epsilon: 1e-7,
        };
        let states = [[w.view(), g.view(), v.view()].map(|a| a.into_dyn())];
        let (w3, acc) = adagrad.apply(&states).unwrap().remove(0);
        assert_eq!(acc.as_slice().unwrap(), &[0.02f32, 4.2]);
        assert_eq!(w3.as_slice().unwrap(), &[0.492_928_95f32, -1.240_241]);
    }

    #[test]
    fn sgd_steps_match_numpy() {
        // numpy, float32: w, g, m = [0.5, -1.25], [0.1, -2.0], [0.01, 0.2]; lr, mu = 0.01, 0.9
        //   step = g * lr; plain: w - step; momentum: m = m * mu - step; Nesterov: w + (m * mu - step)
        let (w, g, m) = (
            arr1(&[0.5f32, -1.25]),
            arr1(&[0.1f32, -2.0]),
            arr1(&[0.01f32, 0.2]),
        );
        let plain_weights = [(w.view().into_dyn(), g.view().into_dyn(), None)];
        let momentum_weights = [(
            w.view().into_dyn(),
            g.view().into_dyn(),
            Some(m.view().into_dyn()),
        )];
        let mut step = SgdStep {
            learning_rate: 0.01f32,
            momentum: 0.0,
            nesterov: false,
        };
        let (plain, none) = step.apply(&plain_weights).unwrap().remove(0);
        assert!(none.is_none());
        assert_eq!(plain.as_slice().unwrap(), &[0.499f32, -1.23]);
        (step.momentum, step.nesterov) = (0.9, true);
        let (w2, m2) = step.apply(&momentum_weights).unwrap().remove(0);
        assert_eq!(
            m2.unwrap().as_slice().unwrap(),
            &[0.007_999_999f32, 0.199_999_99]
        );
        assert_eq!(w2.as_slice().unwrap(), &[0.5062f32, -1.050_000_1]);
    }
}
