//! The shapes of an N-d convolution (Keras's `Conv1D`/`Conv2D`/`Conv3D` and the convolutions
//! inside `ConvLSTM`): padding, output size and the checks, in channels-last layout.

use crate::error::{Error, Result};

/// How the input is padded before the kernel slides over it, as Keras names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: only positions where the whole kernel fits.
    Valid,
    /// Pads so that the output has `ceil(input / stride)` positions, the extra at the end.
    Same,
    /// Pads only at the start, by the dilated kernel's extent less one (1-D only).
    Causal,
}

impl Padding {
    /// Parses Keras's name (case-insensitive), naming `argument` in the error.
    pub fn parse(argument: &str, name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "valid" => Ok(Self::Valid),
            "same" => Ok(Self::Same),
            "causal" => Ok(Self::Causal),
            _ => Err(Error::Value {
                argument: argument.into(),
                expected: "one of 'valid', 'same', 'causal'".into(),
                received: format!("'{name}'"),
            }),
        }
    }
}

/// The geometry of a grouped N-d convolution over channels-last arrays.
///
/// Input `(batch, *input, in_channels)`, kernel `(*kernel, in_channels / groups, out_channels)`
/// (Keras's layout), output `(batch, *output, out_channels)`. Output channel `o` belongs to group
/// `o / (out_channels / groups)`, which reads input channels of the same group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Samples.
    pub batch: usize,
    /// The input's spatial sizes.
    pub input: Vec<usize>,
    /// Input channels.
    pub in_channels: usize,
    /// The kernel's spatial sizes.
    pub kernel: Vec<usize>,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Steps between output positions, per spatial axis.
    pub strides: Vec<usize>,
    /// Steps between kernel taps, per spatial axis.
    pub dilation: Vec<usize>,
    /// Zeros added before the input, per spatial axis.
    pub pad_before: Vec<usize>,
    /// The output's spatial sizes.
    pub output: Vec<usize>,
    /// Channel groups.
    pub groups: usize,
}

fn value_error(argument: &str, expected: impl Into<String>, received: impl Into<String>) -> Error {
    Error::Value {
        argument: argument.into(),
        expected: expected.into(),
        received: received.into(),
    }
}

/// Checks that `values` has one positive entry per spatial axis.
fn check_per_axis(argument: &str, values: &[usize], rank: usize) -> Result<()> {
    if values.len() != rank || values.contains(&0) {
        return Err(value_error(
            argument,
            format!("{rank} positive integers"),
            format!("{values:?}"),
        ));
    }
    Ok(())
}

impl ConvGeometry {
    /// Checks the arguments and computes the padding and output sizes.
    ///
    /// # Errors
    /// [`Error::Value`] when an argument does not fit the others (naming it): a per-axis list
    /// of the wrong length or with a zero, channels not divisible by `groups`, causal padding
    /// on more than one axis, or an input smaller than the dilated kernel with valid padding.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        input: &[usize],
        in_channels: usize,
        kernel: &[usize],
        out_channels: usize,
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
        groups: usize,
    ) -> Result<Self> {
        let rank = input.len();
        if rank == 0 || input.contains(&0) {
            return Err(value_error(
                "inputs",
                "at least one spatial axis, each of at least one position",
                format!("spatial sizes {input:?}"),
            ));
        }
        check_per_axis("kernel_size", kernel, rank)?;
        check_per_axis("strides", strides, rank)?;
        check_per_axis("dilation_rate", dilation, rank)?;
        if groups == 0
            || !in_channels.is_multiple_of(groups)
            || !out_channels.is_multiple_of(groups)
        {
            return Err(value_error(
                "groups",
                format!("a positive divisor of the input channels ({in_channels}) and of the filters ({out_channels})"),
                groups.to_string(),
            ));
        }
        if in_channels == 0 || out_channels == 0 {
            return Err(value_error(
                "channels",
                "at least one input channel and one filter",
                format!("{in_channels} and {out_channels}"),
            ));
        }
        if padding == Padding::Causal && rank != 1 {
            return Err(value_error(
                "padding",
                "'causal' only for 1-D convolutions",
                format!("'causal' with {rank} spatial axes"),
            ));
        }
        let (mut output, mut pad_before) = (Vec::with_capacity(rank), Vec::with_capacity(rank));
        for d in 0..rank {
            let extent = (kernel[d] - 1) * dilation[d] + 1;
            let (out, before) = match padding {
                Padding::Valid => {
                    if input[d] < extent {
                        return Err(value_error(
                            "inputs",
                            format!(
                                "at least {extent} positions on spatial axis {d} (the dilated kernel's extent) with padding 'valid'"
                            ),
                            input[d].to_string(),
                        ));
                    }
                    ((input[d] - extent) / strides[d] + 1, 0)
                }
                Padding::Same => {
                    let out = input[d].div_ceil(strides[d]);
                    let total = ((out.max(1) - 1) * strides[d] + extent).saturating_sub(input[d]);
                    (out, total / 2)
                }
                Padding::Causal => (
                    (input[d] + extent - 1).saturating_sub(extent) / strides[d] + 1,
                    extent - 1,
                ),
            };
            output.push(out);
            pad_before.push(before);
        }
        Ok(Self {
            batch,
            input: input.to_vec(),
            in_channels,
            kernel: kernel.to_vec(),
            out_channels,
            strides: strides.to_vec(),
            dilation: dilation.to_vec(),
            pad_before,
            output,
            groups,
        })
    }

    /// The geometry of the convolution whose input gradient is Keras's transposed convolution
    /// (`Conv1DTranspose`, ...) of `x` `(batch, *input, in_channels)` with a kernel `(*kernel,
    /// filters, in_channels)`: that convolution reads the transposed one's output `(batch,
    /// *output, filters)` and writes `x`'s shape. Sizes and padding follow Keras (its JAX
    /// backend's `conv_transpose`): `output_padding` None picks Keras's default.
    ///
    /// # Errors
    /// [`Error::Value`] for the same reasons as [`Self::new`], for causal padding, and for an
    /// `output_padding` not smaller than its stride.
    #[allow(clippy::too_many_arguments)]
    pub fn transposed(
        batch: usize,
        input: &[usize],
        in_channels: usize,
        kernel: &[usize],
        filters: usize,
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
        output_padding: Option<&[usize]>,
    ) -> Result<Self> {
        let rank = input.len();
        // Checks the per-axis arguments (the sizes it computes are not used).
        let mut geometry = Self::new(
            batch,
            input,
            in_channels,
            kernel,
            filters,
            strides,
            dilation,
            Padding::Same,
            1,
        )?;
        if padding == Padding::Causal {
            return Err(value_error("padding", "'valid' or 'same'", "'causal'"));
        }
        if let Some(op) = output_padding {
            if op.len() != rank || op.iter().zip(strides).any(|(&p, &s)| p >= s) {
                return Err(value_error(
                    "output_padding",
                    format!("{rank} integers each smaller than its stride {strides:?}"),
                    format!("{op:?}"),
                ));
            }
        }
        let (mut output, mut pad_before) = (Vec::with_capacity(rank), Vec::with_capacity(rank));
        for d in 0..rank {
            let extent = (kernel[d] - 1) * dilation[d] + 1;
            let (length, left) = match (padding, output_padding.map(|p| p[d])) {
                (Padding::Valid, None) => (
                    input[d] * strides[d] + extent.saturating_sub(strides[d]),
                    extent - 1,
                ),
                (Padding::Valid, Some(p)) => ((input[d] - 1) * strides[d] + extent + p, extent - 1),
                (_, None) => {
                    let pad = strides[d] + extent - 2;
                    (input[d] * strides[d], (pad / 2 + pad % 2).min(extent - 1))
                }
                (_, Some(p)) => {
                    let pad = extent + extent % 2 - 2 + p;
                    let length =
                        ((input[d] - 1) * strides[d] + extent + p).saturating_sub(2 * (extent / 2));
                    (length, (pad / 2 + pad % 2).min(extent - 1))
                }
            };
            if length == 0 {
                return Err(value_error(
                    "inputs",
                    "an output of at least one position",
                    format!("spatial sizes {input:?}"),
                ));
            }
            output.push(length);
            // The transposed convolution dilates its input by the stride, pads it with `left`
            // and slides the flipped kernel: its input gradient's convolution pads by the rest.
            pad_before.push(extent - 1 - left);
        }
        geometry.input = output;
        geometry.output = input.to_vec();
        geometry.in_channels = filters;
        geometry.out_channels = in_channels;
        geometry.pad_before = pad_before;
        Ok(geometry)
    }

    /// Input positions per sample.
    pub fn input_positions(&self) -> usize {
        self.input.iter().product()
    }

    /// Output positions per sample.
    pub fn output_positions(&self) -> usize {
        self.output.iter().product()
    }

    /// Kernel taps (positions of the kernel window).
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Input channels per group.
    pub fn group_in(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group.
    pub fn group_out(&self) -> usize {
        self.out_channels / self.groups
    }

    /// The input's full shape `(batch, *input, in_channels)`.
    pub fn input_shape(&self) -> Vec<usize> {
        [&[self.batch][..], &self.input, &[self.in_channels]].concat()
    }

    /// The kernel's full shape `(*kernel, in_channels / groups, out_channels)`.
    pub fn kernel_shape(&self) -> Vec<usize> {
        [&self.kernel[..], &[self.group_in(), self.out_channels]].concat()
    }

    /// The output's full shape `(batch, *output, out_channels)`.
    pub fn output_shape(&self) -> Vec<usize> {
        [&[self.batch][..], &self.output, &[self.out_channels]].concat()
    }

    /// Multiply-adds of one forward pass.
    pub fn work(&self) -> usize {
        self.batch * self.output_positions() * self.taps() * self.group_in() * self.out_channels
    }

    /// For every output position (row-major) and kernel tap (row-major), the input position it
    /// reads (row-major index), or `None` where the tap falls on padding.
    pub fn tap_table(&self) -> Vec<Option<usize>> {
        let rank = self.input.len();
        let (positions, taps) = (self.output_positions(), self.taps());
        let mut table = Vec::with_capacity(positions * taps);
        let mut out = vec![0usize; rank];
        for _ in 0..positions {
            let mut tap = vec![0usize; rank];
            for _ in 0..taps {
                let mut index = Some(0usize);
                for d in 0..rank {
                    let at = (out[d] * self.strides[d] + tap[d] * self.dilation[d])
                        .checked_sub(self.pad_before[d])
                        .filter(|&i| i < self.input[d]);
                    index = index.zip(at).map(|(i, a)| i * self.input[d] + a);
                }
                table.push(index);
                increment(&mut tap, &self.kernel);
            }
            increment(&mut out, &self.output);
        }
        table
    }
}

/// Advances a row-major multi-index within `sizes` (wrapping to zeros after the last).
fn increment(index: &mut [usize], sizes: &[usize]) {
    for d in (0..index.len()).rev() {
        index[d] += 1;
        if index[d] < sizes[d] {
            return;
        }
        index[d] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        padding: Padding,
    ) -> ConvGeometry {
        ConvGeometry::new(
            1,
            &[input],
            1,
            &[kernel],
            1,
            &[stride],
            &[dilation],
            padding,
            1,
        )
        .unwrap()
    }

    #[test]
    fn output_sizes_follow_keras() {
        // keras.ops.conv on (1, 10, 1) with these settings gives these lengths.
        assert_eq!(geometry(10, 3, 1, 1, Padding::Valid).output, [8]);
        assert_eq!(geometry(10, 3, 3, 1, Padding::Valid).output, [3]);
        assert_eq!(geometry(10, 3, 1, 2, Padding::Valid).output, [6]);
        assert_eq!(geometry(10, 4, 3, 1, Padding::Same).output, [4]);
        assert_eq!(geometry(10, 3, 1, 2, Padding::Causal).output, [10]);
        assert_eq!(geometry(10, 3, 2, 1, Padding::Causal).output, [5]);
        // Same padding puts the odd zero at the end: total 3 for kernel 4, one before.
        assert_eq!(geometry(10, 4, 1, 1, Padding::Same).pad_before, [1]);
        assert_eq!(geometry(10, 3, 1, 2, Padding::Causal).pad_before, [4]);
    }

    #[test]
    fn transposed_sizes_follow_keras() {
        let transposed = |input: usize,
                          kernel: usize,
                          stride: usize,
                          padding,
                          output_padding: Option<&[usize]>| {
            ConvGeometry::transposed(
                1,
                &[input],
                1,
                &[kernel],
                1,
                &[stride],
                &[1],
                padding,
                output_padding,
            )
            .unwrap()
        };
        // keras.layers.Conv1DTranspose on 5 steps: valid 5·s + max(k - s, 0), same 5·s, and
        // (5 - 1)·s + k - 2·(k / 2) + output_padding with an output padding.
        let g = transposed(5, 3, 2, Padding::Valid, None);
        assert_eq!(
            (g.input.clone(), g.output.clone(), g.pad_before.clone()),
            (vec![11], vec![5], vec![0])
        );
        let g = transposed(5, 4, 3, Padding::Same, None);
        assert_eq!((g.input.clone(), g.pad_before.clone()), (vec![15], vec![0]));
        let g = transposed(5, 3, 2, Padding::Same, Some(&[1]));
        assert_eq!(g.input, [10]);
        let err =
            ConvGeometry::transposed(1, &[5], 1, &[3], 1, &[2], &[1], Padding::Same, Some(&[2]))
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("output_padding: expected 1 integers each smaller"),
            "{err}"
        );
    }

    #[test]
    fn taps_on_padding_read_nothing() {
        let g = geometry(4, 3, 1, 1, Padding::Same);
        let table = g.tap_table();
        assert_eq!(&table[..3], &[None, Some(0), Some(1)]);
        assert_eq!(&table[9..], &[Some(2), Some(3), None]);
    }

    #[test]
    fn bad_arguments_are_named() {
        let err =
            ConvGeometry::new(1, &[4], 3, &[2], 4, &[1], &[1], Padding::Valid, 2).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("groups: expected a positive divisor"),
            "{err}"
        );
        let err =
            ConvGeometry::new(1, &[2], 1, &[3], 1, &[1], &[1], Padding::Valid, 1).unwrap_err();
        assert!(err.to_string().contains("at least 3 positions"), "{err}");
        let err = ConvGeometry::new(1, &[4, 4], 1, &[3], 1, &[1, 1], &[1, 1], Padding::Same, 1)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kernel_size: expected 2 positive"),
            "{err}"
        );
        let err = ConvGeometry::new(
            1,
            &[4, 4],
            1,
            &[3, 3],
            1,
            &[1, 1],
            &[1, 1],
            Padding::Causal,
            1,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("padding: expected 'causal' only"),
            "{err}"
        );
        assert!(Padding::parse("padding", "full").is_err());
    }
}
