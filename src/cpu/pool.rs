//! Max and average pooling on the CPU (Keras's `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D`),
//! as direct loops over each sample's windows, in parallel over samples.
//!
//! The window geometry is a convolution's ([`ConvGeometry`] with `kernel` = the pool size, one
//! group and as many output channels as input channels). Padding with "same" is never read:
//! a max is over the window's positions inside the input, an average divides by their count
//! (Keras's and TensorFlow's definition).

use super::alloc;
use super::team;
use crate::core::conv::ConvGeometry;
use crate::core::Float;
use crate::error::Result;

/// Which reduction a pooling layer applies to each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value.
    Max,
    /// The mean of the values inside the input.
    Average,
}

/// A pooling's geometry with its table of which input position each window tap reads.
#[derive(Clone, Debug)]
pub struct Pool {
    geometry: ConvGeometry,
    table: Vec<Option<usize>>,
    kind: PoolKind,
}

impl Pool {
    /// Prepares the pooling of `geometry` (whose kernel is the pool size).
    pub fn new(geometry: ConvGeometry, kind: PoolKind) -> Self {
        let table = geometry.tap_table();
        Self {
            geometry,
            table,
            kind,
        }
    }

    /// The geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// Per output position, the input positions its window reads.
    fn windows(&self) -> impl Iterator<Item = impl Iterator<Item = usize> + '_> + '_ {
        self.table
            .chunks_exact(self.geometry.taps())
            .map(|taps| taps.iter().filter_map(|&at| at))
    }

    /// The pooled output of consecutive channels-last samples `x`, `(batch, *output, channels)`
    /// flat.
    pub fn forward<T: Float>(&self, x: &[T]) -> Result<Vec<T>> {
        let g = &self.geometry;
        let channels = g.in_channels;
        let (per_in, per_out) = (
            g.input_positions() * channels,
            g.output_positions() * channels,
        );
        let mut y = alloc::zeros(g.batch * per_out, "the pooled output")?
            .into_raw_vec_and_offset()
            .0;
        let items: Vec<_> = x
            .chunks(per_in.max(1))
            .zip(y.chunks_mut(per_out.max(1)))
            .collect();
        team::each(items, |(x, y)| {
            for (window, y) in self.windows().zip(y.chunks_exact_mut(channels)) {
                let mut count = 0usize;
                for at in window {
                    let x = &x[at * channels..][..channels];
                    for (y, &v) in y.iter_mut().zip(x) {
                        *y = match (self.kind, count) {
                            (_, 0) => v,
                            (PoolKind::Max, _) => {
                                if v > *y {
                                    v
                                } else {
                                    *y
                                }
                            }
                            (PoolKind::Average, _) => *y + v,
                        };
                    }
                    count += 1;
                }
                if self.kind == PoolKind::Average {
                    let scale = T::one() / T::from_usize(count).expect("a count is a float");
                    y.iter_mut().for_each(|v| *v *= scale);
                }
            }
        });
        Ok(y)
    }

    /// The gradient of the input given `dy`, that of the output: each output's gradient goes to
    /// its window's first largest value (max) or is shared by the window's values (average).
    pub fn backward<T: Float>(&self, x: &[T], dy: &[T]) -> Result<Vec<T>> {
        let g = &self.geometry;
        let channels = g.in_channels;
        let (per_in, per_out) = (
            g.input_positions() * channels,
            g.output_positions() * channels,
        );
        let mut dx = alloc::zeros(x.len(), "the input gradient")?
            .into_raw_vec_and_offset()
            .0;
        let items: Vec<_> = x
            .chunks(per_in.max(1))
            .zip(dy.chunks(per_out.max(1)))
            .zip(dx.chunks_mut(per_in.max(1)))
            .collect();
        team::each(items, |((x, dy), dx)| {
            let mut best = vec![(0usize, T::zero()); channels];
            for (window, dy) in self.windows().zip(dy.chunks_exact(channels)) {
                match self.kind {
                    PoolKind::Max => {
                        for (i, at) in window.enumerate() {
                            let x = &x[at * channels..][..channels];
                            for (b, &v) in best.iter_mut().zip(x) {
                                if i == 0 || v > b.1 {
                                    *b = (at, v);
                                }
                            }
                        }
                        for (c, (&(at, _), &d)) in best.iter().zip(dy).enumerate() {
                            dx[at * channels + c] += d;
                        }
                    }
                    PoolKind::Average => {
                        let positions: Vec<usize> = window.collect();
                        let scale =
                            T::one() / T::from_usize(positions.len()).expect("a count is a float");
                        for at in positions {
                            let dx = &mut dx[at * channels..][..channels];
                            for (d, &g) in dx.iter_mut().zip(dy) {
                                *d += g * scale;
                            }
                        }
                    }
                }
            }
        });
        Ok(dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conv::Padding;

    fn geometry(
        input: &[usize],
        pool: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> ConvGeometry {
        let ones = vec![1; input.len()];
        ConvGeometry::new(2, input, 3, pool, 3, strides, &ones, padding, 1).unwrap()
    }

    fn values(n: usize) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * 0.37).sin()).collect()
    }

    #[test]
    fn windows_pool_as_defined() {
        // 1-D, pool 2, stride 2, same: windows {0,1}, {2,3}, {4} for 5 steps.
        let pool = Pool::new(geometry(&[5], &[2], &[2], Padding::Same), PoolKind::Average);
        let x = values(2 * 5 * 3);
        let y = pool.forward(&x).unwrap();
        let at = |n: usize, t: usize, c: usize| x[(n * 5 + t) * 3 + c];
        assert!((y[3 * 3 + 2 * 3 + 1] - at(1, 4, 1)).abs() < 1e-15);
        assert!((y[3 + 1] - (at(0, 2, 1) + at(0, 3, 1)) / 2.0).abs() < 1e-15);
        let max = Pool::new(geometry(&[5], &[2], &[2], Padding::Same), PoolKind::Max);
        assert_eq!(
            max.forward(&x).unwrap()[3 + 1],
            at(0, 2, 1).max(at(0, 3, 1))
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        for kind in [PoolKind::Max, PoolKind::Average] {
            for g in [
                geometry(&[7], &[3], &[2], Padding::Same),
                geometry(&[4, 5], &[2, 3], &[1, 2], Padding::Valid),
                geometry(&[3, 4, 3], &[2, 2, 2], &[2, 2, 1], Padding::Same),
            ] {
                let pool = Pool::new(g.clone(), kind);
                let x = values(g.input_shape().iter().product());
                let dy: Vec<f64> = values(g.output_shape().iter().product())
                    .iter()
                    .map(|v| v * 1.7)
                    .collect();
                let loss = |x: &[f64]| {
                    pool.forward(x)
                        .unwrap()
                        .iter()
                        .zip(&dy)
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                };
                let dx = pool.backward(&x, &dy).unwrap();
                for i in 0..x.len() {
                    let (mut up, mut down) = (x.clone(), x.clone());
                    up[i] += 1e-7;
                    down[i] -= 1e-7;
                    let numeric = (loss(&up) - loss(&down)) / 2e-7;
                    assert!(
                        (dx[i] - numeric).abs() < 1e-6,
                        "{kind:?} {g:?} dx[{i}]: {} vs {numeric}",
                        dx[i]
                    );
                }
            }
        }
    }
}
