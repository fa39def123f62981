//! The `ConvLSTM`'s recurrent convolution (stride 1, padding "same") and its two gradients as sums
//! of shifted products, with no window matrix (im2col).
//!
//! The states are copied once per step into a zero-padded buffer (`spatial + kernel - 1` along
//! each axis). Then one line of outputs (consecutive positions along the innermost axis) reads,
//! for each tap of the kernel, consecutive rows of that buffer: its output is the sum over taps
//! of those rows times the tap's `(filters, 4 · filters)` block of the kernel, each product a
//! call of the packed register tiles ([`super::packed`]) on matrices that stay in cache. The
//! input gradient is the same sum over the padded output gradient with the taps reversed and the
//! blocks transposed, and the kernel gradient of a tap the sum over lines of its shifted rows
//! transposed times the output gradient's rows.
//!
//! A convolution with fewer outputs than a panel of the tiles (a `Conv3D` of one filter) would
//! waste most of each product on padding columns; it multiplies the padded rows by all taps at
//! once instead (one product with a column per tap and output), then sums each output's taps
//! from their shifted rows; its gradients are the same products over the output gradient
//! scattered to the rows each tap reads.
//!
//! Work is split into lines (the outputs and input gradient) and into taps × column blocks (the
//! kernel gradient); each element is computed by one task in a fixed order, so results do not
//! depend on the threads.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, CowArray, Ix2};

use super::alloc;
use super::gemm::gemm;
use super::packed::{packed_product, product_tn, PackedMatrix};
use super::team;
use crate::core::conv::{ConvGeometry, Padding};
use crate::core::sequence::Precision;
use crate::core::Float;
use crate::error::Result;

/// Kernel-gradient columns per task: one group of four panels of the AVX-512 tile.
const GRADIENT_COLUMNS: usize = 64;
/// Kernel-gradient taps per task: a line's rows, read once, serve that many taps from cache
/// (one tap per task read every line again for each tap).
const GRADIENT_TAPS: usize = 5;
/// Convolutions with fewer outputs than this (a panel's columns) multiply by all taps at once.
const FEW_OUTPUTS: usize = super::packed::NR;
/// Rows per task of the all-taps product.
const TAP_PRODUCT_ROWS: usize = 240;

/// The stride-1 "same" convolution of `(batch · positions, channels)` states with a `(taps ·
/// channels, outputs)` kernel matrix, as shifted products over a padded copy of the states.
#[derive(Clone, Debug)]
pub struct ShiftedConv {
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    /// Padding before each axis (Keras's "same": `(kernel - 1) / 2`).
    before: Vec<usize>,
    /// Rows of the padded layout per unit step along each axis.
    strides: Vec<usize>,
    /// First row, in the padded layout, of each line's window for tap 0.
    line_bases: Vec<usize>,
    /// Rows from a line's base to its window for each tap (row-major taps).
    tap_offsets: Vec<usize>,
    /// Rows of the padded layout per sample.
    padded_positions: usize,
    batch: usize,
}

impl ShiftedConv {
    /// The convolution of `batch` samples of `spatial` positions with a kernel of `kernel` taps.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] for an empty spatial shape or a zero size.
    pub fn new(batch: usize, spatial: &[usize], kernel: &[usize]) -> Result<Self> {
        let ones = vec![1; spatial.len()];
        // The geometry checks the sizes and gives the "same" padding.
        let geometry =
            ConvGeometry::new(batch, spatial, 1, kernel, 1, &ones, &ones, Padding::Same, 1)?;
        let padded: Vec<usize> = spatial.iter().zip(kernel).map(|(s, k)| s + k - 1).collect();
        let rank = spatial.len();
        let mut strides = vec![1; rank];
        for d in (0..rank.saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * padded[d + 1];
        }
        let padded_positions = padded.iter().product();
        let offsets = |sizes: &[usize]| -> Vec<usize> {
            let mut all = vec![0];
            for (&size, &stride) in sizes.iter().zip(&strides) {
                all = all
                    .iter()
                    .flat_map(|&o| (0..size).map(move |i| o + i * stride))
                    .collect();
            }
            all
        };
        let outer = &spatial[..rank - 1];
        let line_bases = (0..batch)
            .flat_map(|n| {
                offsets(outer)
                    .into_iter()
                    .map(move |o| n * padded_positions + o)
            })
            .collect();
        Ok(Self {
            spatial: spatial.to_vec(),
            kernel: kernel.to_vec(),
            before: geometry.pad_before,
            tap_offsets: offsets(kernel),
            strides,
            line_bases,
            padded_positions,
            batch,
        })
    }

    /// The convolution of `geometry` when it is one of these: stride 1, no dilation or groups,
    /// and the output of the input's size with Keras's "same" padding.
    pub fn of(geometry: &ConvGeometry) -> Option<Self> {
        let g = geometry;
        let ones = |v: &[usize]| v.iter().all(|&s| s == 1);
        if !(ones(&g.strides) && ones(&g.dilation) && g.groups == 1 && g.output == g.input) {
            return None;
        }
        let conv = Self::new(g.batch, &g.input, &g.kernel).ok()?;
        (conv.before == g.pad_before).then_some(conv)
    }

    /// `conv(x)` for `x` `(batch · positions, channels)` and `kernel` `(taps · channels,
    /// outputs)`: `(batch · positions, outputs)`, in parallel over lines.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    pub fn forward<T: Float>(&self, x: ArrayView2<T>, kernel: ArrayView2<T>) -> Result<Array2<T>> {
        let padded = self.padded_copy(x, &self.before)?;
        if kernel.ncols() < FEW_OUTPUTS {
            return self.forward_by_taps(padded.view(), kernel);
        }
        let packed = self.pack_kernel(kernel)?;
        let mut y = alloc::zeros((x.nrows(), kernel.ncols()), "the convolution's output")?;
        let lines: Vec<_> = y
            .axis_chunks_iter_mut(Axis(0), self.width())
            .enumerate()
            .collect();
        team::each(lines, |(line, mut y)| {
            self.forward_line(line, padded.view(), &packed, &mut y);
        });
        Ok(y)
    }

    /// The gradients of [`Self::forward`] given `dy`: of `x` (when `input_gradient`) and of
    /// `kernel`.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    pub fn backward<T: Float>(
        &self,
        x: ArrayView2<T>,
        kernel: ArrayView2<T>,
        dy: ArrayView2<T>,
        input_gradient: bool,
    ) -> Result<(Option<Array2<T>>, Array2<T>)> {
        let padded = self.padded_copy(x, &self.before)?;
        if kernel.ncols() < FEW_OUTPUTS {
            return self.backward_by_taps(padded.view(), kernel, dy, input_gradient);
        }
        let mut dkernel = alloc::zeros(kernel.dim(), "the kernel gradient")?;
        self.add_kernel_gradient(padded.view(), dy, dkernel.view_mut());
        if !input_gradient {
            return Ok((None, dkernel));
        }
        drop(padded);
        let padded = self.padded_copy(dy, &self.mirrored())?;
        let transposed = self.pack_transposed(kernel)?;
        let mut dx = alloc::zeros(x.dim(), "the input gradient")?;
        let lines: Vec<_> = dx
            .axis_chunks_iter_mut(Axis(0), self.width())
            .enumerate()
            .collect();
        team::each(lines, |(line, mut dx)| {
            self.input_gradient_line(line, padded.view(), &transposed, &mut dx);
        });
        Ok((Some(dx), dkernel))
    }

    /// `kernel` (`(taps · channels, outputs)`) with its taps side by side: `(channels, taps ·
    /// outputs)`, column `t · outputs + j` tap `t`'s column `j`.
    fn taps_side_by_side<T: Float>(&self, kernel: ArrayView2<T>) -> Array2<T> {
        let (taps, outputs) = (self.taps(), kernel.ncols());
        let channels = kernel.nrows() / taps;
        Array2::from_shape_fn((channels, taps * outputs), |(c, col)| {
            kernel[[col / outputs * channels + c, col % outputs]]
        })
    }

    /// [`Self::forward`] for few outputs, from the padded states: every padded row times every
    /// tap's columns (one product), then each output the sum of its taps' shifted rows.
    fn forward_by_taps<T: Float>(
        &self,
        padded: ArrayView2<T>,
        kernel: ArrayView2<T>,
    ) -> Result<Array2<T>> {
        let outputs = kernel.ncols();
        let by_taps = PackedMatrix::new(
            self.taps_side_by_side(kernel).view(),
            Precision::Full,
            TAP_PRODUCT_ROWS,
        )?;
        let mut z = alloc::zeros((padded.nrows(), by_taps.dim().1), "the per-tap outputs")?;
        let blocks: Vec<_> = z
            .axis_chunks_iter_mut(Axis(0), TAP_PRODUCT_ROWS)
            .zip(padded.axis_chunks_iter(Axis(0), TAP_PRODUCT_ROWS))
            .collect();
        team::each(blocks, |(mut z, rows)| {
            packed_product(rows, &by_taps, false, &mut z);
        });
        let width = self.width();
        let mut y = alloc::zeros((self.lines() * width, outputs), "the convolution's output")?;
        let lines: Vec<_> = y.axis_chunks_iter_mut(Axis(0), width).enumerate().collect();
        team::each(lines, |(line, mut y)| {
            for (t, offset) in self.tap_offsets.iter().enumerate() {
                let first = self.line_bases[line] + offset;
                let z = z.slice(s![first..first + width, t * outputs..(t + 1) * outputs]);
                y.zip_mut_with(&z, |y, &z| *y += z);
            }
        });
        Ok(y)
    }

    /// [`Self::backward`] for few outputs, from the padded states. Row `q` of `w` holds, at
    /// column `t · outputs + j`, the gradient of output `j` of the window whose tap `t` reads
    /// padded row `q` (zero where none does): the kernel gradient is `wᵀ` times the padded
    /// states, the padded input gradient `w` times the taps' kernels transposed.
    fn backward_by_taps<T: Float>(
        &self,
        padded: ArrayView2<T>,
        kernel: ArrayView2<T>,
        dy: ArrayView2<T>,
        input_gradient: bool,
    ) -> Result<(Option<Array2<T>>, Array2<T>)> {
        let (taps, channels, outputs, width) =
            (self.taps(), padded.ncols(), dy.ncols(), self.width());
        let mut w = alloc::zeros((padded.nrows(), taps * outputs), "the per-tap gradients")?;
        // Each sample's windows read only its own padded rows.
        let per_sample = self.lines() / self.batch;
        let samples: Vec<_> = w
            .axis_chunks_iter_mut(Axis(0), self.padded_positions)
            .enumerate()
            .collect();
        team::each(samples, |(n, mut w)| {
            for line in n * per_sample..(n + 1) * per_sample {
                let base = self.line_bases[line] - n * self.padded_positions;
                let dy = dy.slice(s![line * width..(line + 1) * width, ..]);
                for (t, offset) in self.tap_offsets.iter().enumerate() {
                    let first = base + offset;
                    w.slice_mut(s![first..first + width, t * outputs..(t + 1) * outputs])
                        .assign(&dy);
                }
            }
        });
        let mut by_taps = alloc::zeros((taps * outputs, channels), "the kernel gradient")?;
        if !product_tn(w.view(), padded, &mut by_taps.view_mut(), false) {
            gemm(w.t(), padded, T::zero(), &mut by_taps.view_mut());
        }
        let dkernel = Array2::from_shape_fn((taps * channels, outputs), |(row, j)| {
            by_taps[[row / channels * outputs + j, row % channels]]
        });
        if !input_gradient {
            return Ok((None, dkernel));
        }
        let transposed =
            PackedMatrix::new(self.taps_side_by_side(kernel).t(), Precision::Full, width)?;
        let inside = self.inside(&self.before);
        let mut dx = alloc::zeros((self.lines() * width, channels), "the input gradient")?;
        let lines: Vec<_> = dx
            .axis_chunks_iter_mut(Axis(0), width)
            .enumerate()
            .collect();
        team::each(lines, |(line, mut dx)| {
            let first = self.line_bases[line] + inside;
            packed_product(
                w.slice(s![first..first + width, ..]),
                &transposed,
                false,
                &mut dx,
            );
        });
        Ok((Some(dx), dkernel))
    }

    /// Positions along the innermost axis: the rows of a line.
    fn width(&self) -> usize {
        *self.spatial.last().expect("rank checked by the geometry")
    }

    fn taps(&self) -> usize {
        self.tap_offsets.len()
    }

    /// A zeroed padded buffer for states of `channels` channels.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    pub fn padded<T: Float>(&self, channels: usize) -> Result<Array2<T>> {
        alloc::zeros(
            (self.batch * self.padded_positions, channels),
            "the padded ConvLSTM states",
        )
    }

    /// Rows from a sample's first padded row to its first state row, with `before` padding
    /// positions along each axis.
    fn inside(&self, before: &[usize]) -> usize {
        before.iter().zip(&self.strides).map(|(b, s)| b * s).sum()
    }

    /// Copies `x` (`(batch · positions, channels)`), times `scale` where given, into the inside
    /// of `padded` that starts `before` positions in along each axis (the rest stays zero), in
    /// parallel over samples.
    fn pad<T: Float>(
        &self,
        x: ArrayView2<T>,
        scale: Option<ArrayView2<T>>,
        before: &[usize],
        padded: &mut Array2<T>,
    ) {
        let width = self.width();
        let inside = self.inside(before);
        // Sample 0's line bases are every sample's, from its first padded row.
        let per_sample = self.lines() / self.batch.max(1);
        let samples: Vec<_> = padded
            .axis_chunks_iter_mut(Axis(0), self.padded_positions)
            .enumerate()
            .collect();
        team::each(samples, |(n, mut padded)| {
            for (i, &base) in self.line_bases[..per_sample].iter().enumerate() {
                let first = (n * per_sample + i) * width;
                let rows = s![first..first + width, ..];
                let mut dst = padded.slice_mut(s![base + inside..base + inside + width, ..]);
                match scale {
                    None => dst.assign(&x.slice(rows)),
                    Some(m) => ndarray::Zip::from(&mut dst)
                        .and(&x.slice(rows))
                        .and(&m.slice(rows))
                        .for_each(|d, &v, &m| *d = v * m),
                }
            }
        });
    }

    /// Pads the states for [`Self::forward_line`].
    pub fn pad_states<T: Float>(
        &self,
        x: ArrayView2<T>,
        scale: Option<ArrayView2<T>>,
        padded: &mut Array2<T>,
    ) {
        self.pad(x, scale, &self.before, padded);
    }

    /// Pads an output gradient for [`Self::input_gradient_line`]: the windows of the
    /// transposed convolution need the padding mirrored.
    pub fn pad_gradient<T: Float>(&self, dy: ArrayView2<T>, padded: &mut Array2<T>) {
        self.pad(dy, None, &self.mirrored(), padded);
    }

    /// The padding before each axis of the transposed convolution's windows.
    fn mirrored(&self) -> Vec<usize> {
        self.kernel
            .iter()
            .zip(&self.before)
            .map(|(k, b)| k - 1 - b)
            .collect()
    }

    /// `x` padded with `before` positions along each axis: `x` itself when the kernel has one
    /// tap (no padding; the padded layout is then `x`'s), else a padded copy.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    fn padded_copy<'a, T: Float>(
        &self,
        x: ArrayView2<'a, T>,
        before: &[usize],
    ) -> Result<CowArray<'a, T, Ix2>> {
        if self.taps() == 1 {
            return Ok(x.into());
        }
        let mut padded = self.padded(x.ncols())?;
        self.pad(x, None, before, &mut padded);
        Ok(padded.into())
    }

    /// The per-tap blocks of `kernel` (`(taps · channels, outputs)`), packed for the forward
    /// products.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    pub fn pack_kernel<T: Float>(&self, kernel: ArrayView2<T>) -> Result<Vec<PackedMatrix<T>>> {
        let channels = kernel.nrows() / self.taps();
        (0..self.taps())
            .map(|t| {
                let block = kernel.slice(s![t * channels..(t + 1) * channels, ..]);
                PackedMatrix::new(block, Precision::Full, self.width())
            })
            .collect()
    }

    /// The per-tap blocks of `kernel` transposed, packed for the input gradient.
    ///
    /// # Errors
    /// [`crate::Error::Memory`] when the memory cannot be obtained.
    pub fn pack_transposed<T: Float>(&self, kernel: ArrayView2<T>) -> Result<Vec<PackedMatrix<T>>> {
        let channels = kernel.nrows() / self.taps();
        (0..self.taps())
            .map(|t| {
                let block = kernel.slice(s![t * channels..(t + 1) * channels, ..]);
                PackedMatrix::new(block.t(), Precision::Full, self.width())
            })
            .collect()
    }

    /// Lines (`width` rows each) in the order of the states' rows.
    pub fn lines(&self) -> usize {
        self.line_bases.len()
    }

    /// Rows of each line.
    pub fn line_rows(&self) -> usize {
        self.width()
    }

    /// `y += conv(x)` for line `line`: `padded` is `x` padded by [`Self::pad_states`], `kernel`
    /// from [`Self::pack_kernel`], `y` the line's `(width, outputs)` rows.
    pub fn forward_line<T: Float>(
        &self,
        line: usize,
        padded: ArrayView2<T>,
        kernel: &[PackedMatrix<T>],
        y: &mut ArrayViewMut2<T>,
    ) {
        let (base, width) = (self.line_bases[line], self.width());
        for (offset, block) in self.tap_offsets.iter().zip(kernel) {
            let first = base + offset;
            packed_product(padded.slice(s![first..first + width, ..]), block, true, y);
        }
    }

    /// `dx += ∂/∂x` of line `line`: `padded` is the output gradient (or some of its columns)
    /// padded by [`Self::pad_gradient`], `kernel` the matching columns from
    /// [`Self::pack_transposed`], `dx` the line's `(width, channels)` rows.
    pub fn input_gradient_line<T: Float>(
        &self,
        line: usize,
        padded: ArrayView2<T>,
        kernel: &[PackedMatrix<T>],
        dx: &mut ArrayViewMut2<T>,
    ) {
        let (base, width) = (self.line_bases[line], self.width());
        for (offset, block) in self.tap_offsets.iter().rev().zip(kernel) {
            let first = base + offset;
            packed_product(padded.slice(s![first..first + width, ..]), block, true, dx);
        }
    }

    /// `dkernel += ∂/∂kernel` given the states padded by [`Self::pad_states`] and the output
    /// gradient `dy` (`(batch · positions, outputs)`); `dkernel` is `(taps · channels, outputs)`.
    /// In parallel over blocks of taps and of columns; each task reads a line's rows once for
    /// all its taps.
    pub fn add_kernel_gradient<T: Float>(
        &self,
        padded: ArrayView2<T>,
        dy: ArrayView2<T>,
        mut dkernel: ArrayViewMut2<T>,
    ) {
        let (channels, width) = (padded.ncols(), self.width());
        let mut blocks = Vec::new();
        let tap_rows = GRADIENT_TAPS * channels;
        for (chunk, mut rest) in dkernel.axis_chunks_iter_mut(Axis(0), tap_rows).enumerate() {
            let mut first_col = 0;
            while rest.ncols() > 0 {
                let cols = GRADIENT_COLUMNS.min(rest.ncols());
                let (block, tail) = rest.split_at(Axis(1), cols);
                blocks.push((chunk * GRADIENT_TAPS, first_col, block));
                (rest, first_col) = (tail, first_col + cols);
            }
        }
        team::each(blocks, |(first_tap, first_col, mut block)| {
            let cols = s![.., first_col..first_col + block.ncols()];
            let taps = block.nrows() / channels;
            for (line, &base) in self.line_bases.iter().enumerate() {
                let b = dy.slice(s![line * width..(line + 1) * width, ..]);
                let b = b.slice(cols);
                for (t, offset) in self.tap_offsets[first_tap..first_tap + taps]
                    .iter()
                    .enumerate()
                {
                    let first = base + offset;
                    let a = padded.slice(s![first..first + width, ..]);
                    let mut c = block.slice_mut(s![t * channels..(t + 1) * channels, ..]);
                    if !product_tn(a, b, &mut c, true) {
                        gemm(a.t(), b, T::one(), &mut c);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::Conv;

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect()
    }

    /// Batch, spatial shape, kernel, channels and outputs.
    type Case = (usize, Vec<usize>, Vec<usize>, usize, usize);

    /// A case's shifted convolution, the im2col convolution of the same geometry, and inputs,
    /// kernel and output gradient (f64).
    struct Twins {
        shifted: ShiftedConv,
        reference: Conv,
        rows: usize,
        x: Vec<f64>,
        k: Vec<f64>,
        dy: Vec<f64>,
        channels: usize,
        outputs: usize,
    }

    impl Twins {
        fn new((batch, spatial, kernel, channels, outputs): &Case) -> Self {
            let ones = vec![1; spatial.len()];
            let g = ConvGeometry::new(
                *batch,
                spatial,
                *channels,
                kernel,
                *outputs,
                &ones,
                &ones,
                Padding::Same,
                1,
            )
            .unwrap();
            let rows = batch * spatial.iter().product::<usize>();
            Self {
                shifted: ShiftedConv::new(*batch, spatial, kernel).unwrap(),
                rows,
                x: values(rows * channels, 0.37),
                k: values(g.kernel_shape().iter().product(), 0.11),
                dy: values(rows * outputs, 0.23),
                channels: *channels,
                outputs: *outputs,
                reference: Conv::new(g),
            }
        }

        fn data(&self) -> (&[f64], &[f64], &[f64]) {
            (&self.x, &self.k, &self.dy)
        }

        fn xm(&self) -> ArrayView2<'_, f64> {
            ArrayView2::from_shape((self.rows, self.channels), &self.x).unwrap()
        }

        fn dym(&self) -> ArrayView2<'_, f64> {
            ArrayView2::from_shape((self.rows, self.outputs), &self.dy).unwrap()
        }
    }

    /// Fails unless `a` and `b` agree to 1e-12 everywhere.
    fn assert_close(a: &[f64], b: &[f64], what: &str, case: &Case) {
        let err = a
            .iter()
            .zip(b)
            .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(err < 1e-12, "{what} {case:?}: error {err}");
    }

    /// Shapes with odd and even kernels (asymmetric "same" padding), 1 to 3 axes, and a kernel
    /// wider than the states.
    fn cases() -> Vec<Case> {
        vec![
            (2, vec![7], vec![3], 3, 8),
            (2, vec![4, 5], vec![2, 3], 2, 8),
            (1, vec![3, 2, 4], vec![3, 2, 2], 4, 16),
            (3, vec![2, 3], vec![5, 4], 3, 12),
            (2, vec![5, 6], vec![3, 3], 12, 80),
        ]
    }

    #[test]
    fn matches_the_im2col_convolution_and_its_gradients() {
        for case in cases() {
            let t = Twins::new(&case);
            let (shifted, reference, (x, k, dy)) = (&t.shifted, &t.reference, t.data());
            let (xm, km, dym) = (t.xm(), reference.kernel_matrix(k), t.dym());
            let (rows, channels, outputs) = (t.rows, case.3, case.4);
            let close = |a: &[f64], b: &[f64], what: &str| assert_close(a, b, what, &case);

            let mut padded = shifted.padded(channels).unwrap();
            shifted.pad_states(xm, None, &mut padded);
            let packed = shifted.pack_kernel(km).unwrap();
            let mut y = Array2::zeros((rows, outputs));
            for (line, mut rows) in y
                .axis_chunks_iter_mut(Axis(0), shifted.line_rows())
                .enumerate()
            {
                shifted.forward_line(line, padded.view(), &packed, &mut rows);
            }
            let want = reference.forward(x, k, 1).unwrap();
            close(y.as_slice().unwrap(), want.as_slice().unwrap(), "forward");

            let (dx_want, dk_want) = reference.backward(x, k, dy, true, 1).unwrap();
            let mut padded_dy = shifted.padded(outputs).unwrap();
            shifted.pad_gradient(dym, &mut padded_dy);
            let transposed = shifted.pack_transposed(km).unwrap();
            let mut dx = Array2::zeros((rows, channels));
            for (line, mut rows) in dx
                .axis_chunks_iter_mut(Axis(0), shifted.line_rows())
                .enumerate()
            {
                shifted.input_gradient_line(line, padded_dy.view(), &transposed, &mut rows);
            }
            close(dx.as_slice().unwrap(), &dx_want.unwrap(), "input gradient");
            let mut dk = Array2::zeros(km.dim());
            shifted.add_kernel_gradient(padded.view(), dym, dk.view_mut());
            close(dk.as_slice().unwrap(), &dk_want, "kernel gradient");
        }
    }

    #[test]
    fn few_outputs_match_the_im2col_convolution_and_its_gradients() {
        // Odd, even and one-tap kernels, 1 to 3 axes, one output and a few; the channels stay under the
        // reference's own threshold for shifted products, so it uses the window matrix.
        let cases: Vec<Case> = vec![
            (2, vec![7], vec![3], 5, 1),
            (2, vec![4, 5], vec![2, 3], 3, 3),
            (2, vec![3, 4, 5], vec![3, 3, 3], 4, 1),
            (1, vec![3, 2, 4], vec![2, 2, 3], 6, 15),
            (2, vec![4, 5], vec![1, 1], 3, 2),
        ];
        for case in cases {
            let t = Twins::new(&case);
            let (shifted, reference, (x, k, dy)) = (&t.shifted, &t.reference, t.data());
            let (xm, km, dym) = (t.xm(), reference.kernel_matrix(k), t.dym());
            let close = |a: &[f64], b: &[f64], what: &str| assert_close(a, b, what, &case);
            let y = shifted.forward(xm, km).unwrap();
            let want = reference.forward(x, k, 1).unwrap();
            close(y.as_slice().unwrap(), want.as_slice().unwrap(), "forward");
            let (dx, dk) = shifted.backward(xm, km, dym, true).unwrap();
            let (dx_want, dk_want) = reference.backward(x, k, dy, true, 1).unwrap();
            close(
                dx.unwrap().as_slice().unwrap(),
                &dx_want.unwrap(),
                "input gradient",
            );
            close(dk.as_slice().unwrap(), &dk_want, "kernel gradient");
            let (none, dk_alone) = shifted.backward(xm, km, dym, false).unwrap();
            assert!(none.is_none());
            assert_eq!(dk_alone, dk);
        }
    }

    #[test]
    fn few_outputs_in_f32_on_the_fast_tiles_match_f64() {
        // 16 channels: the kernel gradient's product reads its operands in place.
        let (batch, spatial, kernel, channels) = (2, [3, 4, 5], [3, 3, 3], 16);
        let shifted = ShiftedConv::new(batch, &spatial, &kernel).unwrap();
        let rows = batch * 60;
        let x = Array2::from_shape_vec((rows, channels), values(rows * channels, 0.37)).unwrap();
        let k = Array2::from_shape_vec((27 * channels, 1), values(27 * channels, 0.11)).unwrap();
        let dy = Array2::from_shape_vec((rows, 1), values(rows, 0.23)).unwrap();
        let want = shifted
            .backward(x.view(), k.view(), dy.view(), true)
            .unwrap();
        let f32s = |a: &Array2<f64>| a.mapv(|v| v as f32);
        let got = shifted
            .backward(f32s(&x).view(), f32s(&k).view(), f32s(&dy).view(), true)
            .unwrap();
        let err = |a: &Array2<f64>, b: &Array2<f32>| {
            (a - &b.mapv(f64::from))
                .iter()
                .fold(0.0f64, |e, v| e.max(v.abs()))
        };
        let (dx, dx32) = (want.0.unwrap(), got.0.unwrap());
        assert!(err(&dx, &dx32) < 1e-4, "input gradient {}", err(&dx, &dx32));
        assert!(
            err(&want.1, &got.1) < 1e-4,
            "kernel gradient {}",
            err(&want.1, &got.1)
        );
    }

    #[test]
    fn only_stride_one_same_convolutions_are_shifted() {
        let geometry = |padding, stride, dilation| {
            ConvGeometry::new(2, &[9], 16, &[4], 16, &[stride], &[dilation], padding, 1).unwrap()
        };
        assert!(ShiftedConv::of(&geometry(Padding::Same, 1, 1)).is_some());
        for (padding, stride, dilation) in [
            (Padding::Causal, 1, 1),
            (Padding::Valid, 1, 1),
            (Padding::Same, 2, 1),
            (Padding::Same, 1, 2),
        ] {
            assert!(ShiftedConv::of(&geometry(padding, stride, dilation)).is_none());
        }
    }

    #[test]
    fn f32_products_on_the_fast_tiles_match_f64() {
        // 16 channels and 64 outputs: the kernel gradient reads its operands in place.
        let (batch, spatial, kernel, channels, outputs) = (2, [5, 9], [3, 3], 16, 64);
        let shifted = ShiftedConv::new(batch, &spatial, &kernel).unwrap();
        let rows = batch * 45;
        let x = Array2::from_shape_vec((rows, channels), values(rows * channels, 0.37)).unwrap();
        let dy = Array2::from_shape_vec((rows, outputs), values(rows * outputs, 0.23)).unwrap();
        fn gradient<T: Float>(shifted: &ShiftedConv, x: &Array2<T>, dy: &Array2<T>) -> Array2<T> {
            let mut padded = shifted.padded(x.ncols()).unwrap();
            shifted.pad_states(x.view(), None, &mut padded);
            let mut dk = Array2::from_elem((9 * x.ncols(), dy.ncols()), T::one());
            shifted.add_kernel_gradient(padded.view(), dy.view(), dk.view_mut());
            dk
        }
        let want = gradient(&shifted, &x, &dy);
        let got = gradient(&shifted, &x.mapv(|v| v as f32), &dy.mapv(|v| v as f32));
        let err = (&want - &got.mapv(f64::from))
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        assert!(err < 1e-4, "error {err}");
    }
}
