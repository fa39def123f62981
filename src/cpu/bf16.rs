//! bfloat16 products with f32 accumulation: the opt-in `mixed_bfloat16` compute mode of f32
//! passes (f32 weights, states and step math; only the matrix products round their operands to
//! bf16, as Keras's mixed policy and oneDNN's bf16 RNNs do).
//!
//! Operands are rounded to bf16 (to nearest, ties to even; subnormals to zero, as the CPU's
//! conversion instructions do) into padded buffers: `a` row-major with rows of a whole number
//! of 32 values, `b` as a [`Bf16Matrix`] of 16-column panels in the pairwise layout the
//! tiles read. Three kernels compute the products, chosen by `Kernel::for_rows` from the CPU
//! and the problem's rows: AMX tiles (`super::amx`, Intel since Sapphire Rapids), AVX512-BF16
//! dot products (`vdpbf16ps`: small batches on AMX CPUs, every product on AMD Zen 4), or a
//! portable tile, the mode then emulated (the same numbers within f32 rounding, no faster than
//! f32). They differ only in the rounding of their f32 sums.
//!
//! Every result element is one kernel's sums over `k` in order, wherever its rows and columns
//! land: results do not depend on how the work is split between threads.

use std::any::TypeId;
use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::alloc::reserved;
use super::amx::{self, TILE_K, TILE_ROWS};
use super::team;
use crate::error::Result;

/// Columns per panel: one result tile.
const PANEL: usize = 16;
/// Rows of `a` per block: a block's `a` (at most `512 × k` bf16) stays in L2 while every pair
/// of panels passes over it.
const BLOCK_ROWS: usize = 512;

/// `x` rounded to the nearest bf16 (ties to even), subnormals to signed zero, NaN kept NaN.
pub fn round(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7f80_0000 == 0 {
        return (bits >> 16) as u16 & 0x8000;
    }
    if x.is_nan() {
        return (bits >> 16) as u16 | 0x40;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 value of a bf16.
pub fn widen(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// `a` as an f32 view, when `T` is f32.
pub fn as_f32<T: 'static>(a: ArrayView2<'_, T>) -> Option<ArrayView2<'_, f32>> {
    // SAFETY: `T` is f32, so the view's type is the same type.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { (&raw const a).cast::<ArrayView2<f32>>().read() })
}

/// `a` as a mutable f32 view, when `T` is f32.
pub fn as_f32_mut<T: 'static>(a: ArrayViewMut2<'_, T>) -> Option<ArrayViewMut2<'_, f32>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    let a = std::mem::ManuallyDrop::new(a);
    // SAFETY: `T` is f32, so the view's type is the same type; the original is not used again.
    Some(unsafe { (&raw const *a).cast::<ArrayViewMut2<f32>>().read() })
}

/// Whether the products run on AMX tiles (else they are emulated: AVX512-BF16 dot products
/// where the CPU has them, as on AMD Zen 4, else the portable tile).
pub fn on_amx() -> bool {
    amx::available()
}

/// Products of at most this many rows use dot products even on AMX (a tile's 16 rows would be
/// mostly padding): a batch of one streams the packed kernel once per step.
const DOT_ROWS: usize = 4;

/// What computes a product's tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AMX tiles, 2 × 2 of 16 × 16.
    Amx,
    /// AVX512-BF16 `vdpbf16ps`, up to 4 rows × 4 panels of 16-wide accumulators.
    Dot,
    /// Plain f32 arithmetic.
    Portable,
}

impl Kernel {
    /// The kernel for products of `rows` rows on this CPU: chosen from the problem's shape only
    /// (the whole batch for the per-step products), so never from how threads split it.
    fn for_rows(rows: usize) -> Self {
        let dot = has_avx512_bf16();
        match (amx::available(), dot) {
            (true, true) if rows <= DOT_ROWS => Self::Dot,
            (true, _) => Self::Amx,
            (false, true) => Self::Dot,
            (false, false) => Self::Portable,
        }
    }
}

/// Whether the CPU has AVX512-BF16 (besides the AVX-512 subsets the other kernels use).
fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512bf16") && super::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Rounds `src` into `dst` (the same length).
fn round_slice(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len(), "round_slice lengths");
    #[cfg(target_arch = "x86_64")]
    if has_avx512_bf16() {
        // SAFETY: the CPU has the features, the lengths are equal.
        return unsafe { round_slice_avx512(src, dst) };
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = round(s);
    }
}

/// [`round_slice`] sixteen at a time with `vcvtneps2bf16` (which rounds as [`round`] does).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
unsafe fn round_slice_avx512(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::{
        __m256bh, __m256i, _mm256_storeu_si256, _mm512_cvtneps_pbh, _mm512_loadu_ps,
    };
    let whole = src.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr().add(i)));
        _mm256_storeu_si256(
            dst.as_mut_ptr().add(i).cast(),
            std::mem::transmute::<__m256bh, __m256i>(v),
        );
    }
    for i in whole..src.len() {
        dst[i] = round(src[i]);
    }
}

/// `k` rounded up to whole chunks of the tiles (one chunk of zeros for `k = 0`).
fn padded_k(k: usize) -> usize {
    k.div_ceil(TILE_K).max(1) * TILE_K
}

/// A `(k, n)` f32 matrix rounded to bf16 and packed for the tiles: `⌈n / 16⌉` panels, each
/// `k_pad / 2` rows of 16 columns × 2 values (rows `2r` and `2r + 1` of the column side by
/// side), zeros past `k` and `n`.
#[derive(Clone, Debug)]
pub struct Bf16Matrix {
    k: usize,
    n: usize,
    k_pad: usize,
    data: Lines,
    /// The kernel of its per-step products (see [`Bf16Matrix::for_batch`]).
    kernel: Kernel,
}

impl Bf16Matrix {
    /// Rounds and packs `b` (any strides), split by rows for `threads` threads.
    ///
    /// # Errors
    /// When the memory cannot be obtained.
    pub fn new(b: ArrayView2<f32>, threads: usize) -> Result<Self> {
        let (k, n) = b.dim();
        let k_pad = padded_k(k);
        let mut data = Lines::zeroed(
            n.div_ceil(PANEL).saturating_mul(k_pad * PANEL),
            "bf16 packed kernel",
        )?;
        let out = Out {
            ptr: data.as_mut_ptr().cast(),
            ldc: 0,
        };
        // Each job packs a range of chunks (16 row pairs) across every panel.
        let chunks = k.div_ceil(TILE_K);
        let per_job = chunks.div_ceil(threads.max(1)).max(1);
        let jobs: Vec<_> = (0..chunks)
            .step_by(per_job)
            .map(|c| c..chunks.min(c + per_job))
            .collect();
        team::each(jobs, |chunks| {
            for chunk in chunks {
                for p in 0..n.div_ceil(PANEL) {
                    let block = b.slice(ndarray::s![
                        chunk * TILE_K..k.min((chunk + 1) * TILE_K),
                        p * PANEL..n.min((p + 1) * PANEL)
                    ]);
                    // SAFETY: chunk `chunk` of panel `p` is 16 rows of 16 pairs inside `data`,
                    // written by this job only.
                    unsafe {
                        let dst = out
                            .base()
                            .cast::<u32>()
                            .add((p * k_pad / 2 + chunk * TILE_K / 2) * PANEL);
                        pack_block(block, dst, PANEL, true);
                    }
                }
            }
        });
        Ok(Self {
            k,
            n,
            k_pad,
            data,
            kernel: Kernel::for_rows(usize::MAX),
        })
    }

    /// This matrix for per-step products of a batch of `batch` rows, split between threads
    /// any way: their kernel is the batch's, whatever rows each product gets.
    #[must_use]
    pub fn for_batch(self, batch: usize) -> Self {
        Self {
            kernel: Kernel::for_rows(batch),
            ..self
        }
    }

    /// `(k, n)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    fn panel(&self, p: usize) -> *const u16 {
        self.data[p * self.k_pad * PANEL..].as_ptr()
    }
}

/// Writes `a` rounded to bf16 into `out` (zeros past `a`), row-major with rows of `k_pad`
/// values.
fn round_rows(a: ArrayView2<f32>, k_pad: usize, out: &mut [u16]) {
    let (m, k) = a.dim();
    assert!(
        out.len() >= m * k_pad && k_pad.is_multiple_of(TILE_K) && k <= k_pad,
        "round_rows buffer"
    );
    if a.strides()[1] == 1 || k <= 1 {
        for (row, dst) in a.rows().into_iter().zip(out.chunks_mut(k_pad)) {
            round_slice(row.as_slice().expect("contiguous row"), &mut dst[..k]);
        }
        return;
    }
    // Blocks of 16 rows × 32 columns, each a 16 × 16 block of bf16 pairs.
    for i0 in (0..m).step_by(TILE_ROWS) {
        for k0 in (0..k).step_by(TILE_K) {
            let block = a.slice(ndarray::s![
                i0..m.min(i0 + TILE_ROWS),
                k0..k.min(k0 + TILE_K)
            ]);
            // SAFETY: rows `i0..` of `out` hold `k_pad / 2` pairs each, pairs `k0 / 2..` of
            // them the block's.
            unsafe {
                let dst = out.as_mut_ptr().cast::<u32>().add(i0 * k_pad / 2 + k0 / 2);
                pack_block(block.reversed_axes(), dst, k_pad / 2, false);
            }
        }
    }
}

/// Rounds `block` (at most 32 × 16, any strides) to bf16 pairs along its rows: the pair of rows
/// `2q`, `2q + 1` at column `j` goes to `dst[q · stride + j]` (`pairs_by_row`) or to
/// `dst[j · stride + q]`. Only the block's pairs are written (a row past an odd count is zero).
///
/// # Safety
/// Every destination of the block's pairs must be writable (any alignment).
unsafe fn pack_block(block: ArrayView2<f32>, dst: *mut u32, stride: usize, pairs_by_row: bool) {
    let (rows, cols) = block.dim();
    debug_assert!(rows <= TILE_K && cols <= PANEL);
    let at = |q: usize, j: usize| {
        if pairs_by_row {
            q * stride + j
        } else {
            j * stride + q
        }
    };
    #[cfg(target_arch = "x86_64")]
    if has_avx512_bf16() {
        // SAFETY (of both): the CPU has the features; the block is read at its strides.
        if block.strides()[1] == 1 || cols == 1 {
            let pairs = pairs_of_rows(block);
            for (q, row) in pairs.iter().enumerate().take(rows.div_ceil(2)) {
                for (j, &pair) in row.iter().enumerate().take(cols) {
                    dst.add(at(q, j)).write_unaligned(pair);
                }
            }
            return;
        }
        if block.strides()[0] == 1 {
            let pairs = pairs_of_columns(block);
            for (j, column) in pairs.iter().enumerate().take(cols) {
                for (q, &pair) in column.iter().enumerate().take(rows.div_ceil(2)) {
                    dst.add(at(q, j)).write_unaligned(pair);
                }
            }
            return;
        }
    }
    pack_block_portable(block, dst, stride, pairs_by_row);
}

/// [`pack_block`] element by element.
///
/// # Safety
/// As [`pack_block`].
unsafe fn pack_block_portable(
    block: ArrayView2<f32>,
    dst: *mut u32,
    stride: usize,
    pairs_by_row: bool,
) {
    let rows = block.nrows();
    for q in 0..rows.div_ceil(2) {
        for (j, column) in block.columns().into_iter().enumerate() {
            let odd = if 2 * q + 1 < rows {
                round(column[2 * q + 1])
            } else {
                0
            };
            let at = if pairs_by_row {
                q * stride + j
            } else {
                j * stride + q
            };
            dst.add(at)
                .write_unaligned(u32::from(round(column[2 * q])) | u32::from(odd) << 16);
        }
    }
}

/// The bf16 pairs of `block` (its rows contiguous): `out[q][j]` holds rows `2q` and `2q + 1` of
/// column `j`, zeros past the block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn pairs_of_rows(block: ArrayView2<f32>) -> [[u32; PANEL]; PANEL] {
    use std::arch::x86_64::*;
    let (rows, cols) = block.dim();
    let mut out = [[0u32; PANEL]; PANEL];
    let mask = ((1u32 << cols) - 1) as __mmask16;
    // Values 0..16 the even row's, 16..32 the odd row's; then 0, 16, 1, 17, ...
    let order = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0,
    );
    let row = |r: usize| match r < rows {
        true => _mm512_maskz_loadu_ps(mask, block.as_ptr().offset(r as isize * block.strides()[0])),
        false => _mm512_setzero_ps(),
    };
    for (q, out) in out.iter_mut().enumerate().take(rows.div_ceil(2)) {
        let both = _mm512_cvtne2ps_pbh(row(2 * q + 1), row(2 * q));
        let pairs = _mm512_permutexvar_epi16(order, std::mem::transmute::<__m512bh, __m512i>(both));
        _mm512_storeu_si512(out.as_mut_ptr().cast(), pairs);
    }
    out
}

/// The bf16 pairs of `block` (its columns contiguous): `out[j][q]` holds rows `2q` and `2q + 1`
/// of column `j`, zeros past the block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn pairs_of_columns(block: ArrayView2<f32>) -> [[u32; PANEL]; PANEL] {
    use std::arch::x86_64::*;
    let (rows, cols) = block.dim();
    let mut out = [[0u32; PANEL]; PANEL];
    let (low, high) = (rows.min(16), rows.saturating_sub(16));
    let mask = |n: usize| ((1u32 << n) - 1) as __mmask16;
    for (j, out) in out.iter_mut().enumerate().take(cols) {
        let column = block.as_ptr().offset(j as isize * block.strides()[1]);
        let lo = _mm512_maskz_loadu_ps(mask(low), column);
        let hi = _mm512_maskz_loadu_ps(mask(high), column.add(16));
        let pairs = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(out.as_mut_ptr().cast(), pairs);
    }
    out
}

/// Bf16 values whose first one starts a cache line, so that no 64-byte tile row straddles
/// two lines (a line split costs a streaming product up to 15%).
#[derive(Clone, Debug)]
struct Lines {
    /// The values from `start` on, then up to a line of slack.
    data: Vec<u16>,
    start: usize,
}

/// Values in a cache line.
const LINE: usize = 64 / size_of::<u16>();

impl Lines {
    const fn new() -> Self {
        Self {
            data: Vec::new(),
            start: 0,
        }
    }

    /// `len` zeros, or [`crate::error::Error::Allocation`].
    fn zeroed(len: usize, what: &'static str) -> Result<Self> {
        let data = zeroed(len.saturating_add(LINE), what)?;
        let start = data.as_ptr().align_offset(64).min(LINE);
        Ok(Self { data, start })
    }

    /// Makes this `len` zeros, reusing the memory where it can.
    fn resize(&mut self, len: usize) {
        self.data.clear();
        self.data.resize(len + LINE, 0);
        self.start = self.data.as_ptr().align_offset(64).min(LINE);
    }
}

impl std::ops::Deref for Lines {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        let len = self.data.len().saturating_sub(LINE);
        &self.data[self.start..self.start + len]
    }
}

impl std::ops::DerefMut for Lines {
    fn deref_mut(&mut self) -> &mut [u16] {
        let len = self.data.len().saturating_sub(LINE);
        &mut self.data[self.start..self.start + len]
    }
}

/// A zeroed buffer of `len` values, or [`crate::error::Error::Allocation`]: the memory comes
/// zeroed from the allocator (fresh pages for large blocks), with no pass writing the zeros.
fn zeroed(len: usize, what: &'static str) -> Result<Vec<u16>> {
    let mut data = reserved::<u16>(0, what)?;
    if len > 0 {
        let layout = std::alloc::Layout::array::<u16>(len).map_err(|_| too_large(len, what))?;
        // SAFETY: the layout is not empty; zero is a valid u16; the Vec takes the block with
        // the layout it was allocated with.
        data = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<u16>();
            if ptr.is_null() {
                return Err(too_large(len, what));
            }
            Vec::from_raw_parts(ptr, len, len)
        };
    }
    Ok(data)
}

fn too_large(len: usize, what: &'static str) -> crate::error::Error {
    crate::error::Error::Allocation {
        what,
        elements: len.to_string(),
    }
}

thread_local! {
    /// Each thread's rounded rows of the per-step products, with their `(m, k, k_pad)` (the
    /// next call of the same shape overwrites the same elements: the padding stays zero).
    static ROUNDED: std::cell::RefCell<((usize, usize, usize), Lines)> =
        const { std::cell::RefCell::new(((0, 0, 0), Lines::new())) };
}

/// `c = a · b`, or `c += a · b` with `accumulate`, on this thread: the per-step products. `c`'s
/// rows must be contiguous.
pub fn product(a: ArrayView2<f32>, b: &Bf16Matrix, accumulate: bool, c: &mut ArrayViewMut2<f32>) {
    product_on(b.kernel, a, b, accumulate, c);
}

/// [`product`] on `kernel` (which the CPU must have).
fn product_on(
    kernel: Kernel,
    a: ArrayView2<f32>,
    b: &Bf16Matrix,
    accumulate: bool,
    c: &mut ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    assert_eq!((k, c.dim()), (b.k, (m, b.n)), "bf16 product shapes");
    assert!(
        b.n <= 1 || c.strides()[1] == 1,
        "bf16 product rows must be contiguous"
    );
    if m == 0 || b.n == 0 {
        return;
    }
    ROUNDED.with_borrow_mut(|(shape, rows)| {
        if *shape != (m, k, b.k_pad) {
            *shape = (m, k, b.k_pad);
            rows.resize(m.next_multiple_of(TILE_ROWS) * b.k_pad);
        }
        round_rows(a, b.k_pad, rows);
        let job = Job {
            kernel,
            rows,
            m,
            b,
            out: Out {
                ptr: c.as_mut_ptr(),
                ldc: c.strides()[0] as usize,
            },
            accumulate,
        };
        // SAFETY: `rows` holds `m` rounded rows padded to whole tiles; `c` is `m × n` with
        // contiguous rows `ldc` apart.
        unsafe { job.run(0..m.div_ceil(TILE_ROWS), 0..b.n.div_ceil(PANEL)) };
    });
}

/// `c = a · b`, or `c += a · b` with `accumulate`, for `threads` threads: the hoisted projections
/// and the gradients (`a` and `b` views of any strides, `c`'s rows contiguous).
///
/// # Errors
/// When the memory for the rounded operands cannot be obtained.
pub fn par_gemm(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    accumulate: bool,
    mut c: ArrayViewMut2<f32>,
    threads: usize,
) -> Result<()> {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)), "bf16 gemm shapes");
    assert!(
        n <= 1 || c.strides()[1] == 1,
        "bf16 gemm rows must be contiguous"
    );
    if m == 0 || n == 0 {
        return Ok(());
    }
    let b = Bf16Matrix::new(b, threads)?;
    let k_pad = b.k_pad;
    let row_tiles = m.div_ceil(TILE_ROWS);
    let mut rows = Lines::zeroed(row_tiles * TILE_ROWS * k_pad, "bf16 rows")?;
    // The rows are rounded in whole tiles, one block per thread.
    let per_thread = row_tiles.div_ceil(threads.max(1)).max(1) * TILE_ROWS;
    let parts: Vec<_> = rows
        .chunks_mut(per_thread * k_pad)
        .enumerate()
        .map(|(i, dst)| (i * per_thread..m.min((i + 1) * per_thread), dst))
        .filter(|(range, _)| !range.is_empty())
        .collect();
    team::each(parts, |(range, dst)| {
        round_rows(a.slice(ndarray::s![range, ..]), k_pad, dst);
    });
    let panels = n.div_ceil(PANEL);
    // Split the result tiles between threads: by rows when there are enough, else by panels.
    let jobs: Vec<(Range<usize>, Range<usize>)> = if row_tiles >= 2 * threads {
        let per = row_tiles.div_ceil(threads.max(1));
        (0..row_tiles)
            .step_by(per)
            .map(|r| (r..row_tiles.min(r + per), 0..panels))
            .collect()
    } else {
        let per = panels.div_ceil(threads.max(1));
        (0..panels)
            .step_by(per)
            .map(|p| (0..row_tiles, p..panels.min(p + per)))
            .collect()
    };
    let job = Job {
        kernel: Kernel::for_rows(m),
        rows: &rows,
        m,
        b: &b,
        out: Out {
            ptr: c.as_mut_ptr(),
            ldc: c.strides()[0] as usize,
        },
        accumulate,
    };
    team::each(jobs, |(row_tiles, panels)| {
        // SAFETY: as in `product`; the jobs' result tiles are disjoint.
        unsafe { job.run(row_tiles, panels) };
    });
    Ok(())
}

/// Where the result goes: `m × n` f32 with contiguous rows `ldc` apart.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ldc: usize,
}

impl Out {
    /// The first element (a method, so closures capture the whole `Out`, which is `Sync`).
    fn base(self) -> *mut f32 {
        self.ptr
    }
}

// SAFETY: the jobs that share an `Out` write disjoint tiles of it.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// One product's rounded operands and result, and which tiles compute it.
struct Job<'a> {
    /// What computes the tiles (the CPU must have it).
    kernel: Kernel,
    /// The rounded `a`: all of its row tiles, `b.k_pad` values a row.
    rows: &'a [u16],
    m: usize,
    b: &'a Bf16Matrix,
    out: Out,
    accumulate: bool,
}

impl Job<'_> {
    /// Computes the result tiles of `row_tiles × panels`: row blocks of [`BLOCK_ROWS`], in each
    /// the panels two at a time, in each the row tiles two at a time.
    ///
    /// # Safety
    /// `out` must be valid for the `m × n` result, and no other thread may write these tiles.
    unsafe fn run(&self, row_tiles: Range<usize>, panels: Range<usize>) {
        #[cfg(target_arch = "x86_64")]
        if self.kernel == Kernel::Dot {
            let rows = row_tiles.start * TILE_ROWS..self.m.min(row_tiles.end * TILE_ROWS);
            return self.dot_products(rows, panels);
        }
        let body = || {
            let mut edges = [[[0f32; PANEL * TILE_ROWS]; 2]; 2];
            for block in row_tiles.clone().step_by(BLOCK_ROWS / TILE_ROWS) {
                let block_end = row_tiles.end.min(block + BLOCK_ROWS / TILE_ROWS);
                for p in panels.clone().step_by(2) {
                    let cols = (panels.end - p).min(2);
                    for r in (block..block_end).step_by(2) {
                        let tiles = (block_end - r).min(2);
                        self.tile_block(r..r + tiles, p..p + cols, &mut edges);
                    }
                }
            }
        };
        #[cfg(target_arch = "x86_64")]
        if self.kernel == Kernel::Amx {
            return amx::with_tiles(body);
        }
        body();
    }

    /// The result tiles of row tiles `rows` and panels `panels` (one or two of each). Tiles
    /// past the result's edge go through `edges` (copied in for `accumulate`, out after).
    ///
    /// # Safety
    /// As [`Job::run`], inside [`amx::with_tiles`] with AMX.
    #[inline(always)]
    unsafe fn tile_block(
        &self,
        rows: Range<usize>,
        panels: Range<usize>,
        edges: &mut [[[f32; PANEL * TILE_ROWS]; 2]; 2],
    ) {
        let (b, out, k_pad) = (self.b, self.out, self.b.k_pad);
        // Tile (i, j): its first row and column, its rows and columns inside the result.
        let shape = |i: usize, j: usize| {
            let (row, col) = ((rows.start + i) * TILE_ROWS, (panels.start + j) * PANEL);
            (row, col, TILE_ROWS.min(self.m - row), PANEL.min(b.n - col))
        };
        let mut c = [[amx::CTile {
            ptr: std::ptr::null_mut(),
            stride: 0,
        }; 2]; 2];
        for (i, (c, edges)) in c
            .iter_mut()
            .zip(edges.iter_mut())
            .enumerate()
            .take(rows.len())
        {
            for (j, (c, edge)) in c.iter_mut().zip(edges).enumerate().take(panels.len()) {
                let (row, col, h, w) = shape(i, j);
                let at = out.ptr.add(row * out.ldc + col);
                *c = if h == TILE_ROWS && w == PANEL {
                    amx::CTile {
                        ptr: at,
                        stride: out.ldc * 4,
                    }
                } else {
                    edge.fill(0.0);
                    if self.accumulate {
                        for y in 0..h {
                            let dst = edge[y * PANEL..].as_mut_ptr();
                            std::ptr::copy_nonoverlapping(at.add(y * out.ldc), dst, w);
                        }
                    }
                    amx::CTile {
                        ptr: edge.as_mut_ptr(),
                        stride: PANEL * 4,
                    }
                };
            }
        }
        let op = amx::Block {
            a: [
                self.rows[rows.start * TILE_ROWS * k_pad..].as_ptr(),
                self.rows[(rows.end - 1) * TILE_ROWS * k_pad..].as_ptr(),
            ],
            a_stride: k_pad * 2,
            b: [b.panel(panels.start), b.panel(panels.end - 1)],
            chunks: k_pad / TILE_K,
        };
        let shape_rc = (rows.len(), panels.len());
        #[cfg(target_arch = "x86_64")]
        let tiles_done = self.kernel == Kernel::Amx && {
            match shape_rc {
                (1, 1) => amx::block::<1, 1>(&op, &c, self.accumulate),
                (1, _) => amx::block::<1, 2>(&op, &c, self.accumulate),
                (_, 1) => amx::block::<2, 1>(&op, &c, self.accumulate),
                _ => amx::block::<2, 2>(&op, &c, self.accumulate),
            }
            true
        };
        #[cfg(not(target_arch = "x86_64"))]
        let tiles_done = false;
        if !tiles_done {
            portable_block(&op, &c, shape_rc, self.accumulate);
        }
        for (i, edges) in edges.iter().enumerate().take(rows.len()) {
            for (j, edge) in edges.iter().enumerate().take(panels.len()) {
                let (row, col, h, w) = shape(i, j);
                if h < TILE_ROWS || w < PANEL {
                    let at = out.ptr.add(row * out.ldc + col);
                    for y in 0..h {
                        std::ptr::copy_nonoverlapping(
                            edge[y * PANEL..].as_ptr(),
                            at.add(y * out.ldc),
                            w,
                        );
                    }
                }
            }
        }
    }
}

impl Job<'_> {
    /// The rows `rows` × panels `panels` of the result by dot products: blocks of up to 4 rows
    /// × 4 panels.
    ///
    /// # Safety
    /// As [`Job::run`], on a CPU with AVX512-BF16.
    #[cfg(target_arch = "x86_64")]
    unsafe fn dot_products(&self, rows: Range<usize>, panels: Range<usize>) {
        macro_rules! shapes {
            ($r:expr, $p:expr, $op:expr; $($rows:literal => [$($count:literal),*]),*) => {
                match ($r, $p) {
                    $($(($rows, $count) => dot_block::<$rows, $count>($op),)*)*
                    shape => unreachable!("no dot block of {shape:?}"),
                }
            };
        }
        let pairs = self.b.k_pad / 2;
        for p in panels.clone().step_by(4) {
            let count = (panels.end - p).min(4);
            for r in rows.clone().step_by(DOT_ROWS) {
                let block = DotBlock {
                    a: self.rows.as_ptr().cast::<u32>().add(r * pairs),
                    pairs,
                    b: self.b.panel(p).cast::<u32>(),
                    c: self.out.ptr.add(r * self.out.ldc + p * PANEL),
                    ldc: self.out.ldc,
                    last_cols: (self.b.n - (p + count - 1) * PANEL).min(PANEL),
                    accumulate: self.accumulate,
                };
                shapes!((rows.end - r).min(DOT_ROWS), count, &block;
                    1 => [1, 2, 3, 4], 2 => [1, 2, 3, 4], 3 => [1, 2, 3, 4], 4 => [1, 2, 3, 4]);
            }
        }
    }
}

/// One dot-product block: rows of `a` as bf16 pairs (`pairs` a row), panels of `b` (`pairs`
/// rows of 16 pairs each), the block of `c` (the last panel's `last_cols` columns inside it).
#[cfg(target_arch = "x86_64")]
struct DotBlock {
    a: *const u32,
    pairs: usize,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    last_cols: usize,
    accumulate: bool,
}

/// `R` rows × `P` panels of `c` (+)= `a · b` with `vdpbf16ps`: per pair of `k`, each accumulator
/// adds the pair's two products.
///
/// # Safety
/// The block's operands must be valid; the CPU must have AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_block<const R: usize, const P: usize>(op: &DotBlock) {
    use std::arch::x86_64::*;
    let mask = |p: usize| -> __mmask16 {
        if p + 1 < P || op.last_cols == PANEL {
            !0
        } else {
            ((1u32 << op.last_cols) - 1) as __mmask16
        }
    };
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    if op.accumulate {
        for (i, acc) in acc.iter_mut().enumerate() {
            for (p, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_maskz_loadu_ps(mask(p), op.c.add(i * op.ldc + p * PANEL));
            }
        }
    }
    let panel = op.pairs * PANEL;
    for q in 0..op.pairs {
        let mut b = [_mm512_setzero_si512(); P];
        for (p, b) in b.iter_mut().enumerate() {
            *b = _mm512_loadu_si512(op.b.add(p * panel + q * PANEL).cast());
        }
        for (i, acc) in acc.iter_mut().enumerate() {
            let a = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(
                op.a.add(i * op.pairs + q).read_unaligned() as i32,
            ));
            for (acc, &b) in acc.iter_mut().zip(&b) {
                *acc = _mm512_dpbf16_ps(*acc, a, std::mem::transmute::<__m512i, __m512bh>(b));
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (p, &acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(op.c.add(i * op.ldc + p * PANEL), mask(p), acc);
        }
    }
}

/// The tiles' arithmetic without AMX, for `(rows, cols)` tiles: per chunk and pair of `k`, each
/// result adds the even product, then the odd one (each product of two bf16 is exact in f32).
unsafe fn portable_block(
    op: &amx::Block,
    c: &[[amx::CTile; 2]; 2],
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    for (c, &a_tile) in c.iter().zip(&op.a).take(rows) {
        for (&t, &b_tile) in c.iter().zip(&op.b).take(cols) {
            let mut acc = [[0f32; PANEL]; TILE_ROWS];
            if accumulate {
                for (y, acc) in acc.iter_mut().enumerate() {
                    let src = t.ptr.byte_add(y * t.stride);
                    acc.copy_from_slice(std::slice::from_raw_parts(src, PANEL));
                }
            }
            for kc in 0..op.chunks {
                let b = std::slice::from_raw_parts(
                    b_tile.add(kc * TILE_ROWS * 2 * PANEL),
                    TILE_ROWS * 2 * PANEL,
                );
                for (y, acc) in acc.iter_mut().enumerate() {
                    let a = std::slice::from_raw_parts(
                        a_tile.byte_add(y * op.a_stride).add(kc * TILE_K),
                        TILE_K,
                    );
                    for (a, b) in a.chunks_exact(2).zip(b.chunks_exact(2 * PANEL)) {
                        let (a0, a1) = (widen(a[0]), widen(a[1]));
                        for (v, b) in acc.iter_mut().zip(b.chunks_exact(2)) {
                            *v += a0 * widen(b[0]);
                            *v += a1 * widen(b[1]);
                        }
                    }
                }
            }
            for (y, acc) in acc.iter().enumerate() {
                std::ptr::copy_nonoverlapping(acc.as_ptr(), t.ptr.byte_add(y * t.stride), PANEL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::filled;
    use ndarray::{s, Array2};

    /// `a · b` in f64 from the operands rounded to bf16.
    fn reference(a: &Array2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
        let r = |v: &f32| f64::from(widen(round(*v)));
        a.map(r).dot(&b.map(r))
    }

    #[test]
    fn rounding_is_to_nearest_even_and_flushes_subnormals() {
        assert_eq!(round(1.0), 0x3f80);
        assert_eq!(round(f32::from_bits(0x3f80_8000)), 0x3f80); // tie: to even
        assert_eq!(round(f32::from_bits(0x3f81_8000)), 0x3f82); // tie: to even
        assert_eq!(round(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(round(-1e-40), 0x8000);
        assert_eq!(round(f32::INFINITY), 0x7f80);
        assert!(widen(round(f32::NAN)).is_nan());
        assert_eq!(round(f32::MAX), 0x7f80); // rounds up to infinity
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i as f32) * 0.37).sin() * 10f32.powi(i % 7 - 3))
            .collect();
        let mut fast = vec![0u16; values.len()];
        round_slice(&values, &mut fast);
        let plain: Vec<u16> = values.iter().map(|&v| round(v)).collect();
        assert_eq!(fast, plain);
    }

    #[test]
    fn products_match_the_rounded_operands_for_any_shape() {
        for (m, k, n) in [
            (1, 1, 1),
            (3, 7, 5),
            (16, 32, 16),
            (17, 33, 50),
            (40, 100, 70),
            (64, 512, 96),
            (2, 0, 3),
        ] {
            let a = filled(m, k, 0.37).mapv(|v| v as f32);
            let bm = filled(k, n, 0.11).mapv(|v| v as f32);
            let b = Bf16Matrix::new(bm.view(), 2).unwrap().for_batch(m);
            for accumulate in [false, true] {
                let start = filled(m, n, 0.71).mapv(|v| v as f32);
                let mut want = reference(&a, bm.view());
                if accumulate {
                    want += &start.mapv(f64::from);
                }
                let mut got = start.clone();
                product(a.view(), &b, accumulate, &mut got.view_mut());
                let err = (&want - &got.mapv(f64::from))
                    .iter()
                    .fold(0.0f64, |e, v| e.max(v.abs()));
                assert!(
                    err < 1e-5 * (k as f64 + 1.0),
                    "({m}, {k}, {n}) accumulate {accumulate}: error {err}"
                );
                let mut split = start.clone();
                par_gemm(a.view(), bm.view(), accumulate, split.view_mut(), 3).unwrap();
                assert_eq!(split, got, "({m}, {k}, {n}): parallel product");
            }
        }
    }

    #[test]
    fn every_kernel_gives_the_rounded_operands_product() {
        let kernels: Vec<_> = [Kernel::Portable, Kernel::Dot, Kernel::Amx]
            .into_iter()
            .filter(|&k| match k {
                Kernel::Amx => amx::available(),
                Kernel::Dot => has_avx512_bf16(),
                Kernel::Portable => true,
            })
            .collect();
        for (m, k, n) in [
            (1, 70, 200),
            (3, 33, 16),
            (4, 128, 512),
            (5, 64, 40),
            (21, 300, 70),
        ] {
            let a = filled(m, k, 0.37).mapv(|v| v as f32);
            let bm = filled(k, n, 0.11).mapv(|v| v as f32);
            let b = Bf16Matrix::new(bm.view(), 1).unwrap();
            let start = filled(m, n, 0.5).mapv(|v| v as f32);
            let want = reference(&a, bm.view()) + start.mapv(f64::from);
            for &kernel in &kernels {
                let mut got = start.clone();
                product_on(kernel, a.view(), &b, true, &mut got.view_mut());
                let err = (&want - &got.mapv(f64::from))
                    .iter()
                    .fold(0.0f64, |e, v| e.max(v.abs()));
                assert!(
                    err < 1e-5 * k as f64,
                    "({m}, {k}, {n}) {kernel:?}: error {err}"
                );
            }
        }
    }

    #[test]
    fn the_portable_tile_matches_the_amx_one() {
        let a = filled(37, 300, 0.37).mapv(|v| v as f32);
        let b = Bf16Matrix::new(filled(300, 70, 0.11).mapv(|v| v as f32).view(), 1).unwrap();
        let mut portable = filled(37, 70, 0.5).mapv(|v| v as f32);
        let mut tiles = portable.clone();
        product_on(
            Kernel::Portable,
            a.view(),
            &b,
            true,
            &mut portable.view_mut(),
        );
        product(a.view(), &b, true, &mut tiles.view_mut());
        let err = (&portable - &tiles)
            .iter()
            .fold(0f32, |e, v| e.max(v.abs()));
        assert!(err < 1e-4, "error {err}");
    }

    #[test]
    fn blocks_pack_alike_along_either_axis() {
        let wide = filled(40, 40, 0.3).mapv(|v| v as f32);
        for (rows, cols) in [(32, 16), (31, 16), (7, 5), (1, 1), (32, 3)] {
            for block in [
                wide.slice(s![..rows, 3..3 + cols]),
                wide.t().slice_move(s![..rows, 3..3 + cols]),
            ] {
                for pairs_by_row in [true, false] {
                    let (mut fast, mut plain) = ([7u32; 16 * 40], [7u32; 16 * 40]);
                    // SAFETY: 16 pairs of 16 columns at stride 40 fit in 640 values.
                    unsafe {
                        pack_block(block, fast.as_mut_ptr(), 40, pairs_by_row);
                        pack_block_portable(block, plain.as_mut_ptr(), 40, pairs_by_row);
                    }
                    assert_eq!(fast, plain, "({rows}, {cols}) by row {pairs_by_row}");
                }
            }
        }
    }

    #[test]
    fn views_may_be_transposed_and_results_column_blocks() {
        let wide = filled(70, 300, 0.3).mapv(|v| v as f32);
        let a = wide.slice(s![.., 10..50]).reversed_axes(); // (40, 70), column-major
        let b = filled(70, 33, 0.2).mapv(|v| v as f32);
        let want = reference(&a.to_owned(), b.view());
        let mut out = Array2::<f32>::zeros((40, 80));
        par_gemm(a, b.view(), false, out.slice_mut(s![.., 20..53]), 2).unwrap();
        let err = (&want - &out.slice(s![.., 20..53]).mapv(f64::from))
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        assert!(err < 1e-4, "error {err}");
        let mut from_columns = Array2::<f32>::zeros((40, 33));
        let b_columns = b.t().to_owned(); // (33, 70) row-major: `b` read down its columns
        par_gemm(a, b_columns.t(), false, from_columns.view_mut(), 2).unwrap();
        assert_eq!(from_columns, out.slice(s![.., 20..53]));
        assert!(out
            .slice(s![.., ..20])
            .iter()
            .chain(out.slice(s![.., 53..]).iter())
            .all(|&v| v == 0.0));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_split() {
        let a = filled(600, 70, 0.37).mapv(|v| v as f32);
        let b = filled(70, 100, 0.11).mapv(|v| v as f32);
        let runs: Vec<_> = [1, 2, 3, 7]
            .iter()
            .map(|&threads| {
                let mut c = Array2::<f32>::zeros((600, 100));
                par_gemm(a.view(), b.view(), false, c.view_mut(), threads).unwrap();
                c
            })
            .collect();
        assert!(runs.iter().all(|c| *c == runs[0]));
    }
}
