//! N-d convolutions on the CPU: each sample's windows copied into the rows of a matrix (im2col),
//! then one product per channel group with the crate's GEMM ([`super::gemm`]); the backward pass
//! is the two transposed products and the scatter back (col2im). Stride-1 "same" convolutions
//! with enough channels run as shifted products instead ([`super::shifted_conv`]).
//!
//! Arrays are channels-last and contiguous: input `(batch, *input, in_channels)`, kernel
//! `(*kernel, in_channels / groups, out_channels)` seen as a `(taps · in/groups, out)` matrix,
//! output `(batch, *output, out_channels)` seen as `(batch · positions, out)`. The im2col
//! matrix holds, per output position, the groups one after the other, each as taps × channels,
//! so that a group's columns match the rows of the kernel matrix.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};

use super::alloc;
use super::gemm::{par_gemm_rows, par_gemm_tn};
use super::shifted_conv::ShiftedConv;
use super::team;
use crate::core::conv::ConvGeometry;
use crate::core::Float;
use crate::error::Result;

/// Convolutions with fewer input channels than this use the window matrix even where shifted
/// products apply: their products would be too thin for the register tiles.
const MIN_SHIFTED_CHANNELS: usize = 16;

/// The im2col matrix of one chunk of samples holds at most about this many elements (the chunk
/// is at least one sample), so memory stays bounded whatever the batch.
const CHUNK_ELEMENTS: usize = 1 << 22;

/// A convolution's geometry with its table of which input position each window tap reads.
#[derive(Clone, Debug)]
pub struct Conv {
    geometry: ConvGeometry,
    table: Vec<Option<usize>>,
}

impl Conv {
    /// Prepares the convolution of `geometry` (builds its tap table once).
    pub fn new(geometry: ConvGeometry) -> Self {
        let table = geometry.tap_table();
        Self { geometry, table }
    }

    /// The geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// Columns of the im2col matrix: every tap of every input channel.
    fn width(&self) -> usize {
        self.geometry.taps() * self.geometry.in_channels
    }

    /// Samples per chunk of the im2col matrix.
    fn chunk(&self) -> usize {
        let per_sample = self.geometry.output_positions() * self.width();
        (CHUNK_ELEMENTS / per_sample.max(1)).max(1)
    }

    /// Writes one sample's windows into `col` (`positions × width`).
    fn im2col<T: Float>(&self, x: &[T], col: &mut [T]) {
        let g = &self.geometry;
        let (channels, cg, taps) = (g.in_channels, g.group_in(), g.taps());
        let width = self.width();
        for (row, entries) in col
            .chunks_exact_mut(width)
            .zip(self.table.chunks_exact(taps))
        {
            for (tap, entry) in entries.iter().enumerate() {
                for group in 0..g.groups {
                    let dst = &mut row[group * taps * cg + tap * cg..][..cg];
                    match entry {
                        Some(at) => dst.copy_from_slice(&x[at * channels + group * cg..][..cg]),
                        None => dst.fill(T::zero()),
                    }
                }
            }
        }
    }

    /// Adds one sample's window gradients `col` (`positions × width`) into its input gradient.
    fn col2im<T: Float>(&self, col: &[T], dx: &mut [T]) {
        let g = &self.geometry;
        let (channels, cg, taps) = (g.in_channels, g.group_in(), g.taps());
        for (row, entries) in col
            .chunks_exact(self.width())
            .zip(self.table.chunks_exact(taps))
        {
            for (tap, entry) in entries.iter().enumerate() {
                let Some(at) = entry else { continue };
                for group in 0..g.groups {
                    let src = &row[group * taps * cg + tap * cg..][..cg];
                    let dst = &mut dx[at * channels + group * cg..][..cg];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
    }

    /// A window matrix for the chunks of `x` (consecutive samples), reused by every chunk: the
    /// im2col matrix writes each of its elements.
    fn window_buffer<T: Float>(&self, x_len: usize) -> Result<Array2<T>> {
        let g = &self.geometry;
        let samples = x_len / (g.input_positions() * g.in_channels).max(1);
        let rows = self.chunk().min(samples) * g.output_positions();
        alloc::zeros((rows, self.width()), "the convolution's window matrix")
    }

    /// The im2col matrix of consecutive samples `x` in the first rows of `buffer`, filled in
    /// parallel over samples.
    fn columns<'a, T: Float>(&self, x: &[T], buffer: &'a mut Array2<T>) -> ArrayViewMut2<'a, T> {
        let g = &self.geometry;
        let per_input = g.input_positions() * g.in_channels;
        let rows = x.len() / per_input * g.output_positions();
        let mut col = buffer.slice_mut(s![..rows, ..]);
        let per_col = g.output_positions() * self.width();
        let items: Vec<_> = x
            .chunks(per_input)
            .zip(
                col.as_slice_mut()
                    .expect("rows of a fresh array")
                    .chunks_mut(per_col),
            )
            .collect();
        team::each(items, |(x, col)| self.im2col(x, col));
        col
    }

    /// `y = conv(x)` for consecutive samples `x` (channels-last), with `kernel` as its `(taps ·
    /// in/groups, out)` matrix; `y` is `(samples · positions, out)`.
    fn forward_into<T: Float>(
        &self,
        x: &[T],
        kernel: ArrayView2<T>,
        mut y: ArrayViewMut2<T>,
        threads: usize,
    ) -> Result<()> {
        let g = &self.geometry;
        let (per_input, positions) = (g.input_positions() * g.in_channels, g.output_positions());
        let chunk = self.chunk();
        let mut buffer = self.window_buffer(x.len())?;
        for (i, x) in x.chunks(per_input * chunk).enumerate() {
            let col = self.columns(x, &mut buffer);
            let rows = col.nrows();
            let mut y = y.slice_mut(s![i * chunk * positions.., ..]);
            let mut y = y.slice_mut(s![..rows, ..]);
            self.per_group(col.view(), kernel, |a, k, c0, c1| {
                par_gemm_rows(a, k, T::zero(), y.slice_mut(s![.., c0..c1]), threads);
            });
        }
        Ok(())
    }

    /// Calls `product(columns, kernel, first, end)` for each group: that group's columns of the
    /// im2col matrix, its block of the kernel matrix, and its output columns `first..end`.
    fn per_group<T: Float>(
        &self,
        col: ArrayView2<T>,
        kernel: ArrayView2<T>,
        mut product: impl FnMut(ArrayView2<T>, ArrayView2<T>, usize, usize),
    ) {
        let g = &self.geometry;
        let k = g.taps() * g.group_in();
        let out = kernel.ncols() / g.groups;
        for group in 0..g.groups {
            let (c0, c1) = (group * out, (group + 1) * out);
            product(
                col.slice(s![.., group * k..(group + 1) * k]),
                kernel.slice(s![.., c0..c1]),
                c0,
                c1,
            );
        }
    }

    /// The forward pass over the whole batch: `(batch · positions, out_channels)`.
    pub fn forward<T: Float>(&self, x: &[T], kernel: &[T], threads: usize) -> Result<Array2<T>> {
        if let Some(shifted) = self.shifted() {
            return shifted.forward(self.input_matrix(x), self.kernel_matrix(kernel));
        }
        let g = &self.geometry;
        let rows = g.batch * g.output_positions();
        let mut y = alloc::zeros((rows, g.out_channels), "the convolution's output")?;
        let kernel = self.kernel_matrix(kernel);
        self.forward_into(x, kernel, y.view_mut(), threads)?;
        Ok(y)
    }

    /// The same convolution as shifted products, where it is one ([`ShiftedConv::of`]) with
    /// input channels enough to fill the register tiles: no window matrix to write and read.
    fn shifted(&self) -> Option<ShiftedConv> {
        let g = &self.geometry;
        if g.in_channels < MIN_SHIFTED_CHANNELS {
            return None;
        }
        ShiftedConv::of(g)
    }

    /// `x` (channels-last, contiguous) as the `(batch · positions, in_channels)` matrix.
    fn input_matrix<'a, T: Float>(&self, x: &'a [T]) -> ArrayView2<'a, T> {
        let g = &self.geometry;
        ArrayView2::from_shape((g.batch * g.input_positions(), g.in_channels), x)
            .expect("input length checked by the caller")
    }

    /// `kernel` (Keras's layout, contiguous) as the `(taps · in/groups, out)` matrix.
    pub fn kernel_matrix<'a, T: Float>(&self, kernel: &'a [T]) -> ArrayView2<'a, T> {
        let g = &self.geometry;
        ArrayView2::from_shape((g.taps() * g.group_in(), g.out_channels), kernel)
            .expect("kernel length checked by the caller")
    }

    /// Adds the gradients of `y = conv(x)` given `dy`: `dkernel += ∂/∂kernel` (the
    /// `(taps · in/groups, out)` matrix) and, when given, `dx += ∂/∂x`.
    fn backward_into<T: Float>(
        &self,
        x: &[T],
        kernel: ArrayView2<T>,
        dy: ArrayView2<T>,
        mut dkernel: ArrayViewMut2<T>,
        mut dx: Option<&mut [T]>,
        threads: usize,
    ) -> Result<()> {
        let g = &self.geometry;
        let (per_input, positions) = (g.input_positions() * g.in_channels, g.output_positions());
        let chunk = self.chunk();
        let mut buffer = self.window_buffer(x.len())?;
        for (i, x) in x.chunks(per_input * chunk).enumerate() {
            let col = self.columns(x, &mut buffer);
            let rows = col.nrows();
            let first = i * chunk * positions;
            let dy = dy.slice(s![first..first + rows, ..]);
            self.per_group(col.view(), kernel, |a, _, c0, c1| {
                let (dy, dk) = (dy.slice(s![.., c0..c1]), dkernel.slice_mut(s![.., c0..c1]));
                par_gemm_tn(a, dy, T::one(), dk, None, threads);
            });
            if let Some(dx) = dx.as_deref_mut() {
                let dx = &mut dx[i * chunk * per_input..][..x.len()];
                self.add_input_gradient(kernel, dy, col, dx, threads);
            }
        }
        Ok(())
    }

    /// Adds to `dx` (consecutive samples) the input gradient of the rows `dy` of their outputs,
    /// with `dcol` (a window matrix of those samples, overwritten) as the scratch buffer.
    fn add_input_gradient<T: Float>(
        &self,
        kernel: ArrayView2<T>,
        dy: ArrayView2<T>,
        mut dcol: ArrayViewMut2<T>,
        dx: &mut [T],
        threads: usize,
    ) {
        let g = &self.geometry;
        let (k, out) = (g.taps() * g.group_in(), kernel.ncols() / g.groups);
        for group in 0..g.groups {
            let (c0, c1) = (group * out, (group + 1) * out);
            par_gemm_rows(
                dy.slice(s![.., c0..c1]),
                kernel.slice(s![.., c0..c1]).t(),
                T::zero(),
                dcol.slice_mut(s![.., group * k..(group + 1) * k]),
                threads,
            );
        }
        let per_input = g.input_positions() * g.in_channels;
        let per_col = g.output_positions() * self.width();
        let items: Vec<_> = dx
            .chunks_mut(per_input)
            .zip(
                dcol.as_slice()
                    .expect("rows of the window buffer")
                    .chunks(per_col),
            )
            .collect();
        team::each(items, |(dx, dcol)| self.col2im(dcol, dx));
    }

    /// The input gradient alone of `y = conv(x)` given `dy` (`(batch · positions, out)`), flat
    /// in `x`'s shape: the transposed convolution of `dy` (Keras's `Conv1DTranspose` forward).
    pub fn input_gradient<T: Float>(
        &self,
        kernel: &[T],
        dy: &[T],
        threads: usize,
    ) -> Result<Vec<T>> {
        let g = &self.geometry;
        let (per_input, positions) = (g.input_positions() * g.in_channels, g.output_positions());
        let mut dx = alloc::zeros(g.batch * per_input, "the input gradient")?
            .into_raw_vec_and_offset()
            .0;
        let dy = ArrayView2::from_shape((g.batch * positions, g.out_channels), dy)
            .expect("output gradient length checked by the caller");
        let kernel = self.kernel_matrix(kernel);
        let chunk = self.chunk();
        let mut buffer = self.window_buffer(dx.len())?;
        for (i, dx) in dx.chunks_mut(per_input * chunk).enumerate() {
            let rows = dx.len() / per_input.max(1) * positions;
            let first = i * chunk * positions;
            self.add_input_gradient(
                kernel,
                dy.slice(s![first..first + rows, ..]),
                buffer.slice_mut(s![..rows, ..]),
                dx,
                threads,
            );
        }
        Ok(dx)
    }

    /// The backward pass over the whole batch: the input gradient (when `input_gradient`) and
    /// the kernel gradient, in the shapes of `x` and `kernel` (flat, row-major).
    pub fn backward<T: Float>(
        &self,
        x: &[T],
        kernel: &[T],
        dy: &[T],
        input_gradient: bool,
        threads: usize,
    ) -> Result<(Option<Vec<T>>, Vec<T>)> {
        let g = &self.geometry;
        if let Some(shifted) = self.shifted() {
            let dy = ArrayView2::from_shape((g.batch * g.output_positions(), g.out_channels), dy)
                .expect("output gradient length checked by the caller");
            let (dx, dk) = shifted.backward(
                self.input_matrix(x),
                self.kernel_matrix(kernel),
                dy,
                input_gradient,
            )?;
            let flat = |a: Array2<T>| a.into_raw_vec_and_offset().0;
            return Ok((dx.map(flat), flat(dk)));
        }
        let mut dkernel = alloc::zeros(
            (g.taps() * g.group_in(), g.out_channels),
            "the kernel gradient",
        )?;
        let mut dx = if input_gradient {
            Some(
                alloc::zeros(x.len(), "the input gradient")?
                    .into_raw_vec_and_offset()
                    .0,
            )
        } else {
            None
        };
        let dy = ArrayView2::from_shape((g.batch * g.output_positions(), g.out_channels), dy)
            .expect("output gradient length checked by the caller");
        self.backward_into(
            x,
            self.kernel_matrix(kernel),
            dy,
            dkernel.view_mut(),
            dx.as_deref_mut(),
            threads,
        )?;
        Ok((dx, dkernel.into_raw_vec_and_offset().0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conv::Padding;

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect()
    }

    /// The convolution computed from its definition, one output element at a time.
    fn direct(g: &ConvGeometry, x: &[f64], kernel: &[f64]) -> Vec<f64> {
        let table = g.tap_table();
        let (positions, taps, cg, og) =
            (g.output_positions(), g.taps(), g.group_in(), g.group_out());
        let mut y = vec![0.0; g.batch * positions * g.out_channels];
        for n in 0..g.batch {
            for p in 0..positions {
                for o in 0..g.out_channels {
                    let group = o / og;
                    let mut sum = 0.0;
                    for t in 0..taps {
                        let Some(at) = table[p * taps + t] else {
                            continue;
                        };
                        for c in 0..cg {
                            let xi =
                                (n * g.input_positions() + at) * g.in_channels + group * cg + c;
                            sum += x[xi] * kernel[(t * cg + c) * g.out_channels + o];
                        }
                    }
                    y[(n * positions + p) * g.out_channels + o] = sum;
                }
            }
        }
        y
    }

    fn geometries() -> Vec<ConvGeometry> {
        vec![
            ConvGeometry::new(3, &[9], 4, &[3], 6, &[2], &[1], Padding::Same, 2).unwrap(),
            ConvGeometry::new(2, &[7], 3, &[2], 2, &[1], &[3], Padding::Causal, 1).unwrap(),
            ConvGeometry::new(
                2,
                &[5, 6],
                2,
                &[3, 2],
                3,
                &[1, 2],
                &[1, 1],
                Padding::Valid,
                1,
            )
            .unwrap(),
            // Shifted products of one output (all taps at once): stride 1, "same", 16
            // channels in.
            ConvGeometry::new(
                2,
                &[3, 2, 4],
                16,
                &[3, 2, 3],
                1,
                &[1, 1, 1],
                &[1, 1, 1],
                Padding::Same,
                1,
            )
            .unwrap(),
            // Shifted products of a one-tap kernel (the states unpadded).
            ConvGeometry::new(
                2,
                &[4, 5],
                16,
                &[1, 1],
                16,
                &[1, 1],
                &[1, 1],
                Padding::Same,
                1,
            )
            .unwrap(),
            // Shifted products: stride 1, "same", 16 channels in and out.
            ConvGeometry::new(
                2,
                &[4, 5],
                16,
                &[2, 3],
                16,
                &[1, 1],
                &[1, 1],
                Padding::Same,
                1,
            )
            .unwrap(),
            ConvGeometry::new(
                1,
                &[4, 3, 5],
                3,
                &[2, 2, 3],
                3,
                &[1, 1, 1],
                &[1, 1, 2],
                Padding::Same,
                3,
            )
            .unwrap(),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for g in geometries() {
            let x = values(g.input_shape().iter().product(), 0.37);
            let k = values(g.kernel_shape().iter().product(), 0.11);
            let y = Conv::new(g.clone()).forward(&x, &k, 2).unwrap();
            let want = direct(&g, &x, &k);
            let err = y
                .iter()
                .zip(&want)
                .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
            assert!(err < 1e-12, "{g:?}: error {err}");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for g in geometries() {
            let conv = Conv::new(g.clone());
            let x = values(g.input_shape().iter().product(), 0.37);
            let k = values(g.kernel_shape().iter().product(), 0.11);
            let dy = values(g.output_shape().iter().product(), 0.23);
            // loss = sum(dy * conv(x, k)) is linear in each argument: its gradient is exact.
            let loss = |x: &[f64], k: &[f64]| {
                direct(&g, x, k)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            };
            let (dx, dk) = conv.backward(&x, &k, &dy, true, 2).unwrap();
            let dx = dx.unwrap();
            for i in (0..x.len()).step_by(5) {
                let mut up = x.clone();
                up[i] += 1.0;
                let want = loss(&up, &k) - loss(&x, &k);
                assert!(
                    (dx[i] - want).abs() < 1e-9,
                    "{g:?} dx[{i}]: {} vs {want}",
                    dx[i]
                );
            }
            for i in (0..k.len()).step_by(3) {
                let mut up = k.clone();
                up[i] += 1.0;
                let want = loss(&x, &up) - loss(&x, &k);
                assert!(
                    (dk[i] - want).abs() < 1e-9,
                    "{g:?} dk[{i}]: {} vs {want}",
                    dk[i]
                );
            }
        }
    }

    #[test]
    fn chunks_and_threads_do_not_change_the_result() {
        // Enough samples for three chunks of the window matrix.
        let shape = |batch| {
            ConvGeometry::new(
                batch,
                &[64, 64],
                3,
                &[3, 3],
                4,
                &[1, 1],
                &[1, 1],
                Padding::Same,
                1,
            )
        };
        let g = shape(80).unwrap();
        let conv = Conv::new(g.clone());
        assert!(conv.chunk() * 2 < g.batch);
        let floats = |v: Vec<f64>| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let x = floats(values(g.input_shape().iter().product(), 0.37));
        let k = floats(values(g.kernel_shape().iter().product(), 0.11));
        let one = conv.forward(&x, &k, 1).unwrap();
        assert_eq!(one, conv.forward(&x, &k, 2).unwrap());
        // The last sample alone gives the last rows: the chunks' offsets are right.
        let last = Conv::new(shape(1).unwrap());
        let per_sample = g.input_positions() * g.in_channels;
        let alone = last.forward(&x[x.len() - per_sample..], &k, 1).unwrap();
        assert_eq!(alone, one.slice(s![one.nrows() - alone.nrows().., ..]));
        let dy = floats(values(g.output_shape().iter().product(), 0.23));
        let (dx, dk) = conv.backward(&x, &k, &dy, true, 1).unwrap();
        assert_eq!(
            (dx.clone(), dk),
            conv.backward(&x, &k, &dy, true, 2).unwrap()
        );
        let (dx_alone, _) = last
            .backward(
                &x[x.len() - per_sample..],
                &k,
                &dy[dy.len() - alone.len()..],
                true,
                1,
            )
            .unwrap();
        assert_eq!(dx_alone.unwrap(), dx.unwrap()[x.len() - per_sample..]);
    }
}
