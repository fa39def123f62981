//! int8 products for quantized inference (`model.quantize("int8")`, Keras's spelling): the
//! weights quantized per output column, each product's left operand per row as it comes, the
//! sums in i32, the result scaled back to f32, as Keras's int8 `Dense` computes:
//!
//! * a column `w` of the weights becomes `q = clip(round(w · s_w), ±127)` with
//!   `s_w = 127 / (max |w| + ε)` (ε = 1e-7, Keras's `epsilon()`; rounding to nearest, ties to
//!   even);
//! * a row `x` of the left operand becomes `clip(round(x · s_x), ±127)` with
//!   `s_x = 127 / (max |x| + ε)`, at every call (the time loops' `h` at every step);
//! * each result is `(Σ q_x · q_w) / (s_w · s_x)`, the sum exact in i32.
//!
//! The weights are a quarter of the bytes of f32 ones: a batch of one, which streams the
//! recurrent kernel from cache at every step, streams a quarter as much.
//!
//! Three kernels compute the sums, chosen once per process from the CPU: AVX-512 VNNI
//! (`vpdpbusd`, four u8 × i8 products summed into each i32 lane: the row is offset by 128 into
//! u8 and `128 · Σ q_w` taken back off), the portable loop compiled for AVX2, or the portable
//! loop. Integer sums are exact, so all three give the same bits, whatever the thread count.

use std::sync::OnceLock;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::alloc::reserved;
use super::team;
use crate::error::Result;

/// Columns per panel: sixteen i32 sums, one AVX-512 register.
const PANEL: usize = 16;
/// Values of `k` per group: `vpdpbusd` sums four byte products into each lane.
const GROUP: usize = 4;
/// Bytes of one group of a panel: `PANEL` columns of `GROUP` values.
const GROUP_BYTES: usize = PANEL * GROUP;
/// Keras's `epsilon()`, added to each abs-max so that a row or column of zeros gets a finite
/// scale.
pub const EPSILON: f32 = 1e-7;
/// The largest magnitude of a quantized value (Keras's symmetric range `(-127, 127)`).
const LIMIT: f32 = 127.0;
/// The offset that makes a quantized row unsigned for `vpdpbusd`.
const OFFSET: i32 = 128;
/// Rows per job of [`par_product`] (a job's rows each stream the whole matrix).
const ROWS_PER_JOB: usize = 64;

/// Keras's abs-max scale of values whose largest magnitude is `abs_max`.
pub fn scale(abs_max: f32) -> f32 {
    LIMIT / (abs_max + EPSILON)
}

/// `1.5 · 2^23`: a value under 2^22 plus this has no fraction bits left, so the addition rounds
/// it to an integer as the rounding mode does (to nearest, ties to even), and the integer is
/// the sum's bits minus [`MAGIC`]'s. Plain arithmetic that vectorises, where `round_ties_even`
/// calls the C library without SSE4.1 and a float-to-i8 cast is one element at a time.
const MAGIC: f32 = 12_582_912.0;

/// The bits of `clip(x · scale, ±127) + MAGIC`: the rounded value plus `MAGIC`'s bits.
#[inline(always)]
fn rounded_bits(x: f32, scale: f32) -> u32 {
    ((x * scale).clamp(-LIMIT, LIMIT) + MAGIC).to_bits()
}

/// `x · scale` rounded to the nearest integer (ties to even), clipped to ±127.
#[inline(always)]
pub fn quantize(x: f32, scale: f32) -> i8 {
    // The low byte of the difference is the value in two's complement.
    rounded_bits(x, scale).wrapping_sub(MAGIC.to_bits()) as i8
}

/// [`quantize`] offset by 128 into `1..=255`, the unsigned operand of `vpdpbusd`.
#[inline(always)]
fn quantize_offset(x: f32, scale: f32) -> u8 {
    rounded_bits(x, scale)
        .wrapping_sub(MAGIC.to_bits())
        .wrapping_add(OFFSET as u32) as u8
}

/// The largest magnitude of `values` (0 for none), compared as bits: the order of non-negative
/// floats is that of their bit patterns, and integer maxima vectorise.
#[inline(always)]
fn abs_max<'a>(values: impl IntoIterator<Item = &'a f32>) -> f32 {
    f32::from_bits((values.into_iter()).fold(0, |m: u32, v| m.max(v.to_bits() & 0x7fff_ffff)))
}

/// A `(k, n)` f32 matrix quantized per column and packed for the sums: `⌈n / 16⌉` panels of
/// `⌈k / 4⌉` groups, each group 16 columns × 4 consecutive values of `k` (64 bytes, the layout
/// `vpdpbusd` reads), the padding zero.
#[derive(Clone, Debug)]
pub struct Int8Matrix {
    k: usize,
    n: usize,
    groups: usize,
    values: Vec<i8>,
    /// Per padded column, `128 · Σ_k q[k, j]`: what the row's offset adds to its sums.
    offsets: Vec<i32>,
    /// Per column, the scale `s_w` its values were quantized with.
    scales: Vec<f32>,
}

impl Int8Matrix {
    /// Quantizes and packs `b` (any strides).
    ///
    /// # Errors
    /// When the packed matrix cannot be allocated.
    pub fn new(b: ArrayView2<f32>) -> Result<Self> {
        // Row-major rows, read four at a time: a group's values of a column are adjacent in
        // the packed layout.
        let b = b.as_standard_layout();
        match kernel() {
            // SAFETY: the kernel was chosen from the CPU's features.
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { Self::pack_avx512(b.view()) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { Self::pack_avx2(b.view()) },
            _ => Self::pack(b.view()),
        }
    }

    /// [`Self::pack`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn pack_avx512(b: ArrayView2<f32>) -> Result<Self> {
        Self::pack(b)
    }

    /// [`Self::pack`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn pack_avx2(b: ArrayView2<f32>) -> Result<Self> {
        Self::pack(b)
    }

    /// Quantizes and packs `b`, whose rows are contiguous.
    #[inline(always)]
    fn pack(b: ArrayView2<f32>) -> Result<Self> {
        let (k, n) = b.dim();
        let (groups, panels) = (k.div_ceil(GROUP), n.div_ceil(PANEL));
        let rows: Vec<&[f32]> = (b.rows().into_iter())
            .map(|r| r.to_slice().expect("standard layout"))
            .collect();
        let mut maxes = vec![0u32; n];
        for row in &rows {
            for (m, &w) in maxes.iter_mut().zip(*row) {
                *m = (*m).max(w.to_bits() & 0x7fff_ffff);
            }
        }
        let scales: Vec<f32> = maxes
            .into_iter()
            .map(|m| scale(f32::from_bits(m)))
            .collect();
        let len = panels * groups * GROUP_BYTES;
        let mut values: Vec<i8> = reserved(len, "int8 kernel")?;
        values.resize(len, 0);
        let mut offsets = vec![0; panels * PANEL];
        let zeros = vec![0.0; n];
        for g in 0..groups {
            let group: [&[f32]; GROUP] =
                std::array::from_fn(|r| rows.get(g * GROUP + r).copied().unwrap_or(&zeros));
            for p in 0..panels {
                let at = (p * groups + g) * GROUP_BYTES;
                let dst = &mut values[at..at + GROUP_BYTES];
                let cols = p * PANEL..n.min((p + 1) * PANEL);
                if cols.len() < PANEL {
                    for (c, j) in cols.enumerate() {
                        for (r, row) in group.iter().enumerate() {
                            let q = quantize(row[j], scales[j]);
                            dst[c * GROUP + r] = q;
                            offsets[j] += OFFSET * i32::from(q);
                        }
                    }
                    continue;
                }
                // A whole panel in fixed-size arrays, which the compiler vectorises: each
                // column's four values become one little-endian u32 of the packed layout.
                let scales: &[f32; PANEL] = scales[cols.clone()].try_into().expect("a panel");
                let mut words = [0u32; PANEL];
                let mut sums = [0i32; PANEL];
                for (r, row) in group.iter().enumerate() {
                    let row: &[f32; PANEL] = row[cols.clone()].try_into().expect("a panel");
                    for c in 0..PANEL {
                        let q = quantize(row[c], scales[c]);
                        words[c] |= u32::from(q as u8) << (8 * r);
                        sums[c] += i32::from(q);
                    }
                }
                for (c, word) in words.iter().enumerate() {
                    dst[c * GROUP..(c + 1) * GROUP]
                        .copy_from_slice(&word.to_le_bytes().map(|b| b as i8));
                }
                for (o, sum) in offsets[cols].iter_mut().zip(sums) {
                    *o += OFFSET * sum;
                }
            }
        }
        Ok(Self {
            k,
            n,
            groups,
            values,
            offsets,
            scales,
        })
    }

    /// `(k, n)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// The per-column scales `s_w`.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
}

/// What computes the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AVX-512 VNNI `vpdpbusd`.
    Vnni,
    /// The portable loop compiled for AVX2 (which the compiler vectorises).
    Avx2,
    /// The portable loop.
    Portable,
}

/// The kernel for this CPU, chosen once per process.
fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Kernel::Vnni;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    })
}

/// The name of the kernel the int8 products use here: `"avx512_vnni"`, `"avx2"` or
/// `"portable"`.
pub fn kernel_name() -> &'static str {
    match kernel() {
        Kernel::Vnni => "avx512_vnni",
        Kernel::Avx2 => "avx2",
        Kernel::Portable => "portable",
    }
}

/// Row buffers up to this length live on the stack (a step's product allocates nothing).
const STACK: usize = 512;

/// `c = a · b`, or `c += a · b` with `accumulate`, `a` quantized per row (see the module's
/// notes). The rows of `a` and of `c` must be contiguous (any row stride).
pub fn product(a: ArrayView2<f32>, b: &Int8Matrix, accumulate: bool, c: &mut ArrayViewMut2<f32>) {
    let (m, k) = a.dim();
    assert_eq!((k, c.dim()), (b.k, (m, b.n)), "int8 product shapes");
    assert!(
        (k <= 1 || a.strides()[1] == 1) && (b.n <= 1 || c.strides()[1] == 1),
        "int8 product rows must be contiguous"
    );
    let (row_len, sums_len) = (b.groups * GROUP, b.offsets.len());
    let (mut row_stack, mut sums_stack) = ([0u8; STACK], [0i32; STACK]);
    let (mut row_heap, mut sums_heap) = (Vec::new(), Vec::new());
    let row: &mut [u8] = if row_len <= STACK {
        &mut row_stack[..row_len]
    } else {
        row_heap.resize(row_len, 0);
        &mut row_heap
    };
    let sums: &mut [i32] = if sums_len <= STACK {
        &mut sums_stack[..sums_len]
    } else {
        sums_heap.resize(sums_len, 0);
        &mut sums_heap
    };
    let kernel = kernel();
    for (x, mut out) in a.outer_iter().zip(c.outer_iter_mut()) {
        let x = x.to_slice().expect("contiguous rows");
        let out = out.as_slice_mut().expect("contiguous rows");
        let buffers = RowBuffers {
            row: &mut *row,
            sums: &mut *sums,
            out,
        };
        // SAFETY: the kernel was chosen from the CPU's features; the lengths match `b`.
        unsafe { row_product(kernel, x, b, buffers, accumulate) };
    }
}

/// One row's work arrays: the quantized row, its sums and its results.
struct RowBuffers<'r> {
    /// `⌈k / 4⌉ · 4` values.
    row: &'r mut [u8],
    /// One per padded column.
    sums: &'r mut [i32],
    /// `n` results.
    out: &'r mut [f32],
}

/// [`product`] with the rows of `a` split between `threads` threads (the input projection):
/// each row's result is the same wherever it runs.
pub fn par_product(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    accumulate: bool,
    mut c: ArrayViewMut2<f32>,
    threads: usize,
) -> Result<()> {
    let b = Int8Matrix::new(b)?;
    let per_job = a.nrows().div_ceil(threads.max(1)).clamp(1, ROWS_PER_JOB);
    let jobs: Vec<_> = (a.axis_chunks_iter(Axis(0), per_job))
        .zip(c.axis_chunks_iter_mut(Axis(0), per_job))
        .collect();
    team::each(jobs, |(a, mut c)| product(a, &b, accumulate, &mut c));
    Ok(())
}

/// Quantizes `x` into `row` offset by 128 (the padding past `x` is left as it is: the
/// matrix's padding is zero), returning its scale `s_x`.
#[inline(always)]
fn quantize_row(x: &[f32], row: &mut [u8]) -> f32 {
    let s = scale(abs_max(x));
    for (d, &v) in row.iter_mut().zip(x) {
        *d = quantize_offset(v, s);
    }
    s
}

/// One row's results: `out[j] (+)= (Σ q_x · q_w)[j] / (s_w[j] · s_x)`.
///
/// # Safety
/// The CPU must have the kernel's features; the buffers must be sized for `b`.
#[inline(always)]
unsafe fn row_product(
    kernel: Kernel,
    x: &[f32],
    b: &Int8Matrix,
    buf: RowBuffers,
    accumulate: bool,
) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni => vnni::row_product(x, b, buf, accumulate),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => row_product_avx2(x, b, buf, accumulate),
        _ => portable_row_product(x, b, buf, accumulate),
    }
}

/// [`portable_row_product`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_product_avx2(x: &[f32], b: &Int8Matrix, buf: RowBuffers, accumulate: bool) {
    portable_row_product(x, b, buf, accumulate);
}

/// The sums with plain integer arithmetic.
#[inline(always)]
fn portable_row_product(x: &[f32], b: &Int8Matrix, buf: RowBuffers, accumulate: bool) {
    let s = quantize_row(x, buf.row);
    let panel_bytes = b.groups * GROUP_BYTES;
    for ((panel, sums), offsets) in (b.values.chunks_exact(panel_bytes))
        .zip(buf.sums.chunks_exact_mut(PANEL))
        .zip(b.offsets.chunks_exact(PANEL))
    {
        let mut acc = [0i32; PANEL];
        for (group, a) in panel
            .chunks_exact(GROUP_BYTES)
            .zip(buf.row.chunks_exact(GROUP))
        {
            for (acc, w) in acc.iter_mut().zip(group.chunks_exact(GROUP)) {
                for (&a, &w) in a.iter().zip(w) {
                    *acc += i32::from(a) * i32::from(w);
                }
            }
        }
        for ((d, a), o) in sums.iter_mut().zip(acc).zip(offsets) {
            *d = a - o;
        }
    }
    scale_back(buf.sums, &b.scales, s, accumulate, buf.out);
}

/// `out[j] (+)= sums[j] / (s_w[j] · s_x)`: Keras's de-scaling (the product of the scales
/// divides the sum).
#[inline(always)]
fn scale_back(sums: &[i32], scales: &[f32], s: f32, accumulate: bool, out: &mut [f32]) {
    let values = sums.iter().zip(scales).map(|(&v, &w)| v as f32 / (w * s));
    if accumulate {
        for (o, v) in out.iter_mut().zip(values) {
            *o += v;
        }
    } else {
        for (o, v) in out.iter_mut().zip(values) {
            *o = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    //! The AVX-512 VNNI kernel: per panel, sixteen i32 lanes each summing four u8 × i8
    //! products per `vpdpbusd`, several panels at a time for independent chains.

    use std::arch::x86_64::{
        __m512i, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512, _mm512_sub_epi32,
    };

    use super::{quantize_row, scale_back, Int8Matrix, RowBuffers, GROUP, GROUP_BYTES, PANEL};

    /// See [`super::row_product`].
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn row_product(x: &[f32], b: &Int8Matrix, buf: RowBuffers, accumulate: bool) {
        let s = quantize_row(x, buf.row);
        let (row, sums) = (&*buf.row, &mut *buf.sums);
        let panels = sums.len() / PANEL;
        let mut p = 0;
        // Eight chains hide `vpdpbusd`'s latency for a single row.
        while p + 8 <= panels {
            panels_sums::<8>(row, b, p, sums);
            p += 8;
        }
        while p + 4 <= panels {
            panels_sums::<4>(row, b, p, sums);
            p += 4;
        }
        while p < panels {
            panels_sums::<1>(row, b, p, sums);
            p += 1;
        }
        scale_back(sums, &b.scales, s, accumulate, buf.out);
    }

    /// The sums of panels `first..first + P`.
    #[inline(always)]
    unsafe fn panels_sums<const P: usize>(
        row: &[u8],
        b: &Int8Matrix,
        first: usize,
        sums: &mut [i32],
    ) {
        let mut acc: [__m512i; P] = [_mm512_setzero_si512(); P];
        let groups = b.groups;
        let values = b.values.as_ptr();
        for g in 0..groups {
            let a = row.as_ptr().add(g * GROUP).cast::<i32>().read_unaligned();
            let a = _mm512_set1_epi32(a);
            for (q, acc) in acc.iter_mut().enumerate() {
                let w = values.add(((first + q) * groups + g) * GROUP_BYTES);
                *acc = _mm512_dpbusd_epi32(*acc, a, _mm512_loadu_si512(w.cast()));
            }
        }
        for (q, acc) in acc.iter().enumerate() {
            let at = (first + q) * PANEL;
            let offsets = _mm512_loadu_si512(b.offsets.as_ptr().add(at).cast());
            _mm512_storeu_si512(
                sums.as_mut_ptr().add(at).cast(),
                _mm512_sub_epi32(*acc, offsets),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2};

    use super::*;

    /// The products in f64 from the quantization equations, for comparison.
    fn reference(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
        let (m, n) = (a.nrows(), b.ncols());
        let mut out = Array2::zeros((m, n));
        for i in 0..m {
            let sx = scale(abs_max(a.row(i)));
            for j in 0..n {
                let sw = scale(abs_max(b.column(j)));
                let sum: i64 = (0..a.ncols())
                    .map(|k| {
                        i64::from(quantize(a[[i, k]], sx)) * i64::from(quantize(b[[k, j]], sw))
                    })
                    .sum();
                out[[i, j]] = sum as f64 / (f64::from(sw) * f64::from(sx));
            }
        }
        out
    }

    fn filled(rows: usize, cols: usize, seed: f64) -> Array2<f32> {
        super::super::filled(rows, cols, seed).mapv(|v| v as f32)
    }

    #[test]
    fn every_kernel_matches_the_equations() {
        // Shapes with padding in k and n, and more panels than one 8-panel block.
        for (m, k, n) in [(1, 128, 128), (3, 37, 150), (5, 130, 40), (2, 1, 17)] {
            let (a, b) = (filled(m, k, 0.37), filled(k, n, 0.71));
            let packed = Int8Matrix::new(b.view()).unwrap();
            let expected = reference(a.view(), b.view());
            let mut kernels = vec![Kernel::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") {
                    kernels.push(Kernel::Avx2);
                }
                if std::is_x86_feature_detected!("avx512vnni") {
                    kernels.push(Kernel::Vnni);
                }
            }
            let mut first: Option<Array2<f32>> = None;
            for kernel in kernels {
                let mut c = Array2::<f32>::ones((m, n));
                let (mut row, mut sums) = (
                    vec![0u8; packed.groups * GROUP],
                    vec![0; packed.offsets.len()],
                );
                for (x, mut out) in a.outer_iter().zip(c.outer_iter_mut()) {
                    let buf = RowBuffers {
                        row: &mut row,
                        sums: &mut sums,
                        out: out.as_slice_mut().unwrap(),
                    };
                    // SAFETY: the kernel's features were detected above.
                    unsafe { row_product(kernel, x.as_slice().unwrap(), &packed, buf, true) };
                }
                for (got, want) in c.iter().zip(&expected) {
                    assert!(
                        (f64::from(*got) - 1.0 - want).abs() < 1e-5,
                        "{kernel:?}: {got} vs {want}"
                    );
                }
                match &first {
                    None => first = Some(c),
                    Some(f) => assert_eq!(f, &c, "{kernel:?} differs in bits"),
                }
            }
        }
    }

    #[test]
    fn quantization_follows_keras() {
        // Ties round to even; the abs-max maps to ±127.
        assert_eq!(quantize(2.5, 1.0), 2);
        assert_eq!(quantize(-3.5, 1.0), -4);
        assert_eq!(quantize(1000.0, 1.0), 127);
        let s = scale(0.5);
        assert_eq!(quantize(0.5, s), 127);
        assert_eq!(quantize(-0.5, s), -127);
        // A zero column has a finite scale and quantizes to zeros.
        let b = Array2::<f32>::zeros((3, 2));
        let packed = Int8Matrix::new(b.view()).unwrap();
        assert!(packed.scales().iter().all(|s| s.is_finite()));
        let mut c = Array2::<f32>::zeros((1, 2));
        product(filled(1, 3, 0.3).view(), &packed, false, &mut c.view_mut());
        assert_eq!(c, Array2::<f32>::zeros((1, 2)));
    }

    #[test]
    fn split_rows_give_the_same_bits() {
        let (a, b) = (filled(200, 24, 0.13), filled(24, 64, 0.29));
        let mut one = Array2::<f32>::zeros((200, 64));
        let mut many = one.clone();
        par_product(a.view(), b.view(), false, one.view_mut(), 1).unwrap();
        par_product(a.view(), b.view(), false, many.view_mut(), 7).unwrap();
        assert_eq!(one, many);
    }
}
