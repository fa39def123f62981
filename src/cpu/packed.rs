//! The per-step recurrent products: a few rows times a weight matrix packed once per call.
//!
//! Each step of the time loop multiplies the slice's `h` (a few dozen rows at most) by the same
//! recurrent kernel. A general GEMM packs both operands on every call, which costs as much as the
//! product at these sizes; here the kernel is packed once, at the start of the call, into column
//! panels of [`NR`] values laid out row after row, and each step streams the panels through a
//! register tile of up to [`MR`] rows by one or more panels: one panel (two 8-wide registers a
//! row) with AVX2, four panels (four 16-wide registers a row, 24 accumulators of the 32) with
//! AVX-512, picked once per process from the CPU.
//!
//! The same tiles compute the weight gradients' `aᵀ · b` over all steps ([`product_tn`]),
//! reading `b` in place as its own panels: a general GEMM would pack it, a pass over memory as
//! long as the product's own at these shapes.
//!
//! Every element of the result is one chain of multiply-adds over `k` in order, starting from
//! zero or from the element's previous value, whatever tile the row falls in: results do not
//! depend on how the rows are split between threads.

#[cfg(target_arch = "x86_64")]
use std::any::TypeId;

use ndarray::{s, ArrayView2, ArrayViewMut2};

use super::alloc::reserved;
use super::bf16::{self, Bf16Matrix};
use super::int8::{self, Int8Matrix};
use crate::core::sequence::Precision;
use crate::core::Float;
use crate::error::Result;

/// Columns per panel: two AVX2 registers of f32, or one AVX-512 register.
pub const NR: usize = 16;
/// Rows per register tile.
pub const MR: usize = 6;

/// Bytes of a cache line, the alignment of packed panels.
const CACHE_LINE: usize = 64;
/// Inner-dimension chunk: 128 rows of a panel are 8 KiB.
pub const KC: usize = 128;

/// The most rows [`product_tn`] takes: every panel re-reads the `KC × m` chunk of `a`, which
/// must stay in L1 (measured: at m = 512 packing GEMMs were 20% faster, at 256 as fast, at
/// m ≤ 128 slower).
pub const TN_MAX_ROWS: usize = 128;

/// A `(k, n)` matrix stored as `⌈n / NR⌉` panels of `k` rows of `NR` values, the columns past
/// `n` zero; or, for bfloat16 and int8 products, rounded or quantized and packed for their
/// kernels.
#[derive(Clone, Debug)]
pub struct PackedMatrix<T> {
    k: usize,
    n: usize,
    /// The panels from index `start` on, which is where a cache line begins.
    panels: Vec<T>,
    start: usize,
    bf16: Option<Bf16Matrix>,
    int8: Option<Int8Matrix>,
}

impl<T: Float> PackedMatrix<T> {
    /// Packs `b`, a view with any strides, for products in `precision` (bfloat16 and int8 need
    /// f32) of at most `batch` rows.
    pub fn new(b: ArrayView2<T>, precision: Precision, batch: usize) -> Result<Self> {
        if precision != Precision::Full {
            let b = bf16::as_f32(b).expect("bfloat16 and int8 products of f32 only (checked)");
            let (k, n) = b.dim();
            let (bf16, int8) = match precision {
                Precision::Int8 => (None, Some(Int8Matrix::new(b)?)),
                _ => (Some(Bf16Matrix::new(b, 1)?.for_batch(batch)), None),
            };
            return Ok(Self {
                k,
                n,
                panels: Vec::new(),
                start: 0,
                bf16,
                int8,
            });
        }
        let (k, n) = b.dim();
        let count = n.div_ceil(NR);
        let len = count.saturating_mul(k.saturating_mul(NR));
        // Each panel row (`NR` values) starts a cache line: the tiles' loads then never
        // straddle two lines, which costs a streaming product (a batch of one) up to 15%.
        let lead = CACHE_LINE / size_of::<T>();
        let mut panels: Vec<T> = reserved(len.saturating_add(lead), "packed recurrent kernel")?;
        let start = panels.as_ptr().align_offset(CACHE_LINE).min(lead);
        panels.resize(start, T::zero());
        for p in 0..count {
            let block = b.slice(s![.., p * NR..n.min((p + 1) * NR)]);
            // Each row of the panel: a copy of the block's row where it is contiguous (the
            // forward pass's `U_g`), else read element by element (the backward's `U_gᵀ`; at
            // LSTM(64)'s four 64 × 64 blocks 4.2 us, against 6.9 us writing `U`'s rows down
            // the panels' columns), then zeros up to `NR` columns.
            for row in block.rows() {
                let start = panels.len();
                match row.to_slice() {
                    Some(row) => panels.extend_from_slice(row),
                    None => panels.extend((0..row.len()).map(|j| row[j])),
                }
                panels.resize(start + NR, T::zero());
            }
        }
        Ok(Self {
            k,
            n,
            panels,
            start,
            bf16: None,
            int8: None,
        })
    }

    /// `(k, n)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// `c = a · b`, or `c += a · b` with `accumulate`. The rows of `a` and of `c` must be contiguous
/// (any row stride).
///
/// The rows go through register tiles in even blocks of at most [`MR`]; each tile takes one or
/// more panels, the more the fewer its rows, so that enough independent multiply-add chains
/// are in flight to hide their latency.
#[inline(always)]
pub fn packed_product<T: Float>(
    a: ArrayView2<T>,
    b: &PackedMatrix<T>,
    accumulate: bool,
    c: &mut ArrayViewMut2<T>,
) {
    packed_product_on(isa::<T>(), a, b, accumulate, c);
}

/// [`packed_product`] with the given tile (which `T` and the CPU must support).
#[inline(always)]
fn packed_product_on<T: Float>(
    isa: Isa,
    a: ArrayView2<T>,
    b: &PackedMatrix<T>,
    accumulate: bool,
    c: &mut ArrayViewMut2<T>,
) {
    let (m, k) = a.dim();
    assert_eq!((k, c.dim()), (b.k, (m, b.n)), "packed product shapes");
    if let Some(b) = &b.bf16 {
        let (a, c) = (bf16::as_f32(a), bf16::as_f32_mut(c.view_mut()));
        return bf16::product(a.expect("f32"), b, accumulate, &mut c.expect("f32"));
    }
    if let Some(b) = &b.int8 {
        let (a, c) = (bf16::as_f32(a), bf16::as_f32_mut(c.view_mut()));
        return int8::product(a.expect("f32"), b, accumulate, &mut c.expect("f32"));
    }
    if m == 0 || b.n == 0 {
        return;
    }
    assert!(
        (k <= 1 || a.strides()[1] == 1) && (b.n <= 1 || c.strides()[1] == 1),
        "packed product rows must be contiguous"
    );
    let operands = Operands {
        m,
        k,
        n: b.n,
        a: a.as_ptr(),
        a_row: a.strides()[0] as usize,
        a_k: 1,
        b: b.panels[b.start..].as_ptr(),
        b_panel: k * NR,
        b_k: NR,
        c: c.as_mut_ptr(),
        ldc: c.strides()[0] as usize,
        sums: std::ptr::null_mut(),
    };
    // SAFETY: the shapes and the unit strides were checked above; panel `p` of `b` holds `k`
    // rows of `NR` values from `p · k · NR` on.
    unsafe { operands.run(accumulate, isa) }
}

/// `c = aᵀ · b`, or `c += aᵀ · b` with `accumulate`, for `a` `(k, m)` and `b` `(k, n)` read in
/// place, with no packing: the weight gradients, where `k` runs over every step and batch row.
/// `b`'s rows must be contiguous and `n` a multiple of [`NR`], so each panel is `NR`
/// consecutive columns of `b`; `c`'s rows contiguous. Returns false, computing nothing, when the
/// operands do not qualify, when `m` is over [`TN_MAX_ROWS`] or when the CPU has no fast tile
/// for `T` (only f32 with AVX2 and FMA has one): a packing GEMM is faster then.
pub fn product_tn<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    c: &mut ArrayViewMut2<T>,
    accumulate: bool,
) -> bool {
    product_tn_sums(a, b, c, None, accumulate)
}

/// Whether [`product_tn`] computes `c = aᵀ · b` for these operands (else it returns false):
/// `m` at most [`TN_MAX_ROWS`], a fast tile for `T`, `n` a multiple of [`NR`], `b`'s and `c`'s
/// rows contiguous, no negative strides.
pub fn tn_tiles_take<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, c: ArrayView2<T>) -> bool {
    let ((k, m), n) = (a.dim(), b.ncols());
    let b_rows = k == 0 || b.strides()[1] == 1;
    let c_rows = m == 0 || c.strides()[1] == 1;
    fast_tile::<T>()
        && m <= TN_MAX_ROWS
        && n % NR == 0
        && b_rows
        && c_rows
        && !a.strides().iter().chain(b.strides()).any(|&s| s < 0)
}

/// [`product_tn`] that also writes the sums of `b`'s columns into `sums` (`n` values; added to
/// them with `accumulate`) in the same pass over `b`: a bias's gradient beside its kernel's.
/// Each sum is the chain `((0 + b₀) + b₁) + …` over `k` in order (a multiply-add by one rounds
/// as the addition does), the bits of a plain loop over the rows.
pub fn product_tn_sums<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    c: &mut ArrayViewMut2<T>,
    sums: Option<&mut [T]>,
    accumulate: bool,
) -> bool {
    let ((k, m), n) = (a.dim(), b.ncols());
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)), "product_tn shapes");
    assert!(
        sums.as_ref().is_none_or(|s| s.len() == n),
        "one sum per column"
    );
    if !tn_tiles_take(a, b, c.view()) {
        return false;
    }
    if n == 0 || (m == 0 && sums.is_none()) {
        return true;
    }
    let operands = Operands {
        m,
        k,
        n,
        a: a.as_ptr(),
        a_row: a.strides()[1] as usize,
        a_k: a.strides()[0] as usize,
        b: b.as_ptr(),
        b_panel: NR,
        b_k: b.strides()[0] as usize,
        c: c.as_mut_ptr(),
        ldc: c.strides()[0] as usize,
        sums: sums.map_or(std::ptr::null_mut(), <[T]>::as_mut_ptr),
    };
    // SAFETY: shapes checked above, strides non-negative; panel `p` is columns `p·NR..p·NR + NR`
    // of `b`, whole as `n` is a multiple of NR; `sums` holds `n` values.
    unsafe { operands.run(accumulate, isa::<T>()) };
    true
}

/// The register tile that runs for a product: the intrinsics tiles are f32 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// Plain multiply and add, any float type and CPU.
    Portable,
    /// 8-wide FMA registers.
    Avx2,
    /// 16-wide FMA registers and 32 of them: tiles of four panels.
    Avx512,
}

/// The best tile for `T` on this CPU (the CPU's answer is cached by the standard library).
fn isa<T: 'static>() -> Isa {
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        if super::has_avx512() {
            return Isa::Avx512;
        }
        if super::has_avx2_fma() {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Whether an intrinsics tile runs for `T`.
pub fn fast_tile<T: 'static>() -> bool {
    isa::<T>() != Isa::Portable
}

/// A product's operands as raw pointers and strides (in elements): row `i`, column `kk` of `a`
/// at `a + i·a_row + kk·a_k`; row `kk` of panel `p` of `b` (`NR` contiguous values) at
/// `b + p·b_panel + kk·b_k`; `c` row-major with contiguous rows `ldc` apart.
struct Operands<T> {
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    a_row: usize,
    a_k: usize,
    b: *const T,
    b_panel: usize,
    b_k: usize,
    c: *mut T,
    ldc: usize,
    /// Null, or where the `n` sums of `b`'s columns go (see [`product_tn_sums`]).
    sums: *mut T,
}

impl<T: Float> Operands<T> {
    /// Runs the register tiles of `isa` over the whole product (decided once per product, not
    /// per tile).
    ///
    /// # Safety
    /// Every element the layout describes for `m` rows, `k` columns of `a`, `⌈n / NR⌉` panels
    /// of `k` rows of `b`, `m × n` of `c` and `n` at `sums` (unless null) must be valid; `T` and
    /// the CPU must support `isa`.
    ///
    /// Not inlined: its tiles are compiled once per float type, not into every time loop (each
    /// intrinsics tile carries its own target features; only the portable f64 tile is then
    /// compiled for the baseline CPU).
    #[inline(never)]
    unsafe fn run(&self, accumulate: bool, isa: Isa) {
        let (m, k, n) = (self.m, self.k, self.n);
        let panels = n.div_ceil(NR);
        let one = [T::one()];
        // A single row (a batch of one) runs the 16-wide tile too: W5's core call (LSTM 128,
        // T 100) measured 13% faster with it than with the AVX2 tile (alternated in one
        // process; an earlier measurement, with a per-call copy of the kernel, had the AVX2
        // tile 3% ahead). Same bits either way.
        // The inner dimension goes in chunks of KC, so that a chunk of the panel and of the
        // rows stay in cache while every row block passes; each chunk continues the elements'
        // multiply-add chains where the previous one stored them, so the rounding is that of
        // one pass.
        for k0 in (0..k.max(1)).step_by(KC) {
            let kc = KC.min(k - k0);
            // SAFETY (of the pointer arithmetic): rows `row..row + ROWS` and columns
            // `k0..k0 + kc` of `a`, panels `p..p + count` from row `k0` on, and the matching
            // block of `c` are inside the operands (the caller's contract).
            let tile = |row: usize, p: usize, count: usize| Tile {
                k: kc,
                a: self.a.add(row * self.a_row + k0 * self.a_k),
                a_row: self.a_row,
                a_k: self.a_k,
                panel: self.b.add(p * self.b_panel + k0 * self.b_k),
                b_panel: self.b_panel,
                b_k: self.b_k,
                c: self.c.add(row * self.ldc + p * NR),
                ldc: self.ldc,
                last_cols: (n - (p + count - 1) * NR).min(NR),
                accumulate: accumulate || k0 > 0,
                isa,
            };
            // The rows go in blocks of at most MR, as even as can be (32 rows: 6, 6, 5, 5, 5, 5,
            // not five of 6 and a slow one of 2). Each block takes a group of panels at a time,
            // so that the group's chunk stays in cache while every block passes, as many panels
            // as keep enough independent multiply-add chains in flight to hide their latency
            // within the registers (the same group for every block: all have 3 rows or more
            // when there are several).
            let blocks = m.div_ceil(MR);
            let (base, longer) = (m / blocks.max(1), m % blocks.max(1));
            let group = panels_per_tile(isa, m.min(base + 1));
            for p in (0..panels).step_by(group) {
                let count = group.min(panels - p);
                for block in 0..blocks {
                    let rows = base + usize::from(block < longer);
                    tile(block * base + block.min(longer), p, count).run_shape(rows, count);
                }
                if !self.sums.is_null() {
                    // The column sums: a row of ones (one value read at stride 0; `1 · b` is
                    // exact) through the chunk the rows above have just brought into cache.
                    let ones = Tile {
                        a: one.as_ptr(),
                        a_row: 0,
                        a_k: 0,
                        c: self.sums.add(p * NR),
                        ldc: 0,
                        ..tile(0, p, count)
                    };
                    ones.run_shape(1, count);
                }
            }
        }
    }
}

/// Panels a tile of up to `rows` rows takes at once: one with AVX2 from 3 rows on (up to 12 of
/// the 16 registers accumulate) and more for fewer rows; four with AVX-512 (up to 24 of 32).
fn panels_per_tile(isa: Isa, rows: usize) -> usize {
    match (isa, rows) {
        (Isa::Avx512, _) => 4,
        (_, 1) => 4,
        (_, 2) => 2,
        _ => 1,
    }
}

/// Expands to the `match` from a run-time tile shape to the compiled tile of that shape.
macro_rules! shapes {
    ($tile:expr, $rows:expr, $count:expr; $($r:literal => [$($c:literal),*]),* $(,)?) => {
        match ($rows, $count) {
            $($(($r, $c) => $tile.run::<$r, $c>(),)*)*
            shape => unreachable!("no tile of {shape:?}"),
        }
    };
}

/// One register tile's operands, as raw pointers into checked views: `ROWS` rows of `a` times
/// `PANELS` consecutive panels, into the matching block of `c`.
struct Tile<T> {
    k: usize,
    a: *const T,
    a_row: usize,
    a_k: usize,
    panel: *const T,
    b_panel: usize,
    b_k: usize,
    c: *mut T,
    ldc: usize,
    /// Columns of the last panel inside `c` (the others are whole).
    last_cols: usize,
    accumulate: bool,
    /// Which tile runs (an intrinsics one only when `T` is f32).
    isa: Isa,
}

impl<T: Float> Tile<T> {
    /// Columns of panel `p` inside `c`.
    fn cols<const PANELS: usize>(&self, p: usize) -> usize {
        if p + 1 == PANELS {
            self.last_cols
        } else {
            NR
        }
    }

    /// Computes a tile of `rows` rows and `count` panels (the shapes [`panels_per_tile`] makes).
    ///
    /// # Safety
    /// As [`Tile::run`].
    #[inline(always)]
    unsafe fn run_shape(&self, rows: usize, count: usize) {
        shapes!(self, rows, count;
            1 => [1, 2, 3, 4],
            2 => [1, 2, 3, 4],
            3 => [1, 2, 3, 4],
            4 => [1, 2, 3, 4],
            5 => [1, 2, 3, 4],
            6 => [1, 2, 3, 4],
        );
    }

    /// Computes the tile.
    ///
    /// # Safety
    /// `ROWS` rows of `k` values from `a`, `k` rows of `NR` values of `PANELS` panels, and `ROWS`
    /// rows of `c` with the panels' columns must be valid (at the strides of the fields).
    #[inline(always)]
    unsafe fn run<const ROWS: usize, const PANELS: usize>(&self) {
        #[cfg(target_arch = "x86_64")]
        match self.isa {
            // SAFETY: the ISA says T is f32, so the pointers are f32 pointers, and that the
            // CPU has the extensions (checked in `isa`).
            Isa::Avx512 => {
                return avx512::tile_f32::<ROWS, PANELS>(
                    &*(self as *const Self).cast::<Tile<f32>>(),
                )
            }
            Isa::Avx2 => {
                return avx2::tile_f32::<ROWS, PANELS>(&*(self as *const Self).cast::<Tile<f32>>())
            }
            Isa::Portable => {}
        }
        self.run_generic::<ROWS, PANELS>();
    }

    /// The portable tile: plain multiply and add, in the same order as the intrinsics ones.
    #[inline(always)]
    unsafe fn run_generic<const ROWS: usize, const PANELS: usize>(&self) {
        let mut acc = [[[T::zero(); NR]; PANELS]; ROWS];
        if self.accumulate {
            for (i, acc) in acc.iter_mut().enumerate() {
                for (p, acc) in acc.iter_mut().enumerate() {
                    let c = self.c.add(i * self.ldc + p * NR);
                    for (j, v) in acc.iter_mut().enumerate().take(self.cols::<PANELS>(p)) {
                        *v = *c.add(j);
                    }
                }
            }
        }
        for kk in 0..self.k {
            for p in 0..PANELS {
                let b = std::slice::from_raw_parts(
                    self.panel.add(p * self.b_panel + kk * self.b_k),
                    NR,
                );
                for (i, acc) in acc.iter_mut().enumerate() {
                    let a = *self.a.add(i * self.a_row + kk * self.a_k);
                    for (v, &b) in acc[p].iter_mut().zip(b) {
                        *v += a * b;
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (p, acc) in acc.iter().enumerate() {
                let c = self.c.add(i * self.ldc + p * NR);
                for (j, &v) in acc.iter().enumerate().take(self.cols::<PANELS>(p)) {
                    *c.add(j) = v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Tile, NR};

    /// The f32 tile: two 8-wide FMA accumulators per row and panel.
    ///
    /// # Safety
    /// As [`Tile::run`], on a CPU with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_f32<const ROWS: usize, const PANELS: usize>(t: &Tile<f32>) {
        let mut acc = [[[_mm256_setzero_ps(); 2]; PANELS]; ROWS];
        let mut edge = [0f32; NR];
        if t.accumulate {
            for (i, acc) in acc.iter_mut().enumerate() {
                for (p, acc) in acc.iter_mut().enumerate() {
                    let c = t.c.add(i * t.ldc + p * NR);
                    let cols = t.cols::<PANELS>(p);
                    let src = if cols == NR {
                        c
                    } else {
                        std::ptr::copy_nonoverlapping(c, edge.as_mut_ptr(), cols);
                        edge.as_ptr()
                    };
                    *acc = [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))];
                }
            }
        }
        for kk in 0..t.k {
            for p in 0..PANELS {
                let b = t.panel.add(p * t.b_panel + kk * t.b_k);
                let (b0, b1) = (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let a = _mm256_set1_ps(*t.a.add(i * t.a_row + kk * t.a_k));
                    acc[p][0] = _mm256_fmadd_ps(a, b0, acc[p][0]);
                    acc[p][1] = _mm256_fmadd_ps(a, b1, acc[p][1]);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (p, acc) in acc.iter().enumerate() {
                let c = t.c.add(i * t.ldc + p * NR);
                let cols = t.cols::<PANELS>(p);
                if cols == NR {
                    _mm256_storeu_ps(c, acc[0]);
                    _mm256_storeu_ps(c.add(8), acc[1]);
                } else {
                    _mm256_storeu_ps(edge.as_mut_ptr(), acc[0]);
                    _mm256_storeu_ps(edge.as_mut_ptr().add(8), acc[1]);
                    std::ptr::copy_nonoverlapping(edge.as_ptr(), c, cols);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Tile, NR};

    /// The f32 tile: one 16-wide FMA accumulator per row and panel. Each element is the same
    /// chain of fused multiply-adds as in the AVX2 tile, so the two give the same bits.
    ///
    /// # Safety
    /// As [`Tile::run`], on a CPU with AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_f32<const ROWS: usize, const PANELS: usize>(t: &Tile<f32>) {
        let mut acc = [[_mm512_setzero_ps(); PANELS]; ROWS];
        // Columns of each panel inside `c`: all but the last are whole.
        let mask = |p: usize| -> __mmask16 {
            let cols = t.cols::<PANELS>(p);
            if cols == NR {
                !0
            } else {
                (1u16 << cols) - 1
            }
        };
        if t.accumulate {
            for (i, acc) in acc.iter_mut().enumerate() {
                for (p, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_maskz_loadu_ps(mask(p), t.c.add(i * t.ldc + p * NR));
                }
            }
        }
        for kk in 0..t.k {
            let mut b = [_mm512_setzero_ps(); PANELS];
            for (p, b) in b.iter_mut().enumerate() {
                *b = _mm512_loadu_ps(t.panel.add(p * t.b_panel + kk * t.b_k));
            }
            for (i, acc) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*t.a.add(i * t.a_row + kk * t.a_k));
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = _mm512_fmadd_ps(a, b, *acc);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (p, &acc) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(t.c.add(i * t.ldc + p * NR), mask(p), acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::filled;
    use ndarray::{s, Array2};

    #[test]
    fn packed_products_match_plain_ones_for_any_shape() {
        for (m, k, n) in [
            (1, 1, 1),
            (3, 7, 5),
            (4, 16, 16),
            (9, 33, 50),
            (17, 64, 256),
            (1, 9, 100),
            (2, 5, 70),
            (14, 64, 256),
            (7, 300, 33),
            (2, 0, 3),
        ] {
            let a = filled(m, k, 0.37);
            let b = filled(k, n, 0.11);
            let packed = PackedMatrix::new(b.view(), Precision::Full, m).unwrap();
            // A column-major view (the backward's transposed kernels) packs the same panels.
            let column_major = b.t().to_owned();
            let by_columns = PackedMatrix::new(column_major.t(), Precision::Full, m).unwrap();
            assert_eq!(
                by_columns.panels[by_columns.start..],
                packed.panels[packed.start..],
                "({m}, {k}, {n})"
            );
            for accumulate in [false, true] {
                let start = filled(m, n, 0.71);
                let want = if accumulate {
                    &start + &a.dot(&b)
                } else {
                    a.dot(&b)
                };
                let mut got = start.clone();
                packed_product(a.view(), &packed, accumulate, &mut got.view_mut());
                let err = (&want - &got).iter().fold(0.0f64, |e, v| e.max(v.abs()));
                assert!(
                    err < 1e-12,
                    "({m}, {k}, {n}) accumulate {accumulate}: error {err}"
                );
            }
        }
    }

    #[test]
    fn every_f32_tile_gives_the_same_bits() {
        let mut supported = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            supported.extend(crate::cpu::has_avx2_fma().then_some(Isa::Avx2));
            supported.extend(crate::cpu::has_avx512().then_some(Isa::Avx512));
        }
        for (m, k, n) in [
            (1, 70, 200),
            (2, 33, 80),
            (5, 130, 37),
            (6, 64, 256),
            (13, 40, 96),
            (32, 9, 48),
        ] {
            let a = filled(m, k, 0.37).mapv(|v| v as f32);
            let packed = PackedMatrix::new(
                filled(k, n, 0.11).mapv(|v| v as f32).view(),
                Precision::Full,
                m,
            )
            .unwrap();
            for accumulate in [false, true] {
                let results: Vec<_> = supported
                    .iter()
                    .map(|&isa| {
                        let mut c = filled(m, n, 0.71).mapv(|v| v as f32);
                        packed_product_on(isa, a.view(), &packed, accumulate, &mut c.view_mut());
                        c
                    })
                    .collect();
                // The fused tiles agree bit for bit; the portable one (unfused) within rounding.
                for (isa, c) in supported.iter().zip(&results).skip(2) {
                    assert_eq!(c, &results[1], "({m}, {k}, {n}) {isa:?}");
                }
                let err = (&results[0] - &results[results.len() - 1])
                    .iter()
                    .fold(0f32, |e, v| e.max(v.abs()));
                assert!(err < 1e-4, "({m}, {k}, {n}): error {err}");
            }
        }
    }

    #[test]
    fn in_place_transposed_products_match_plain_ones() {
        for (k, m, n) in [
            (1, 1, 16),
            (300, 7, 32),
            (129, 64, 48),
            (0, 3, 16),
            (5, 0, 16),
        ] {
            let wide = filled(k, n + 10, 0.11).mapv(|v| v as f32);
            let b = wide.slice(s![.., 5..n + 5]); // columns of a wider array
            let a = filled(k, m, 0.37).mapv(|v| v as f32);
            let mut got = Array2::<f32>::from_elem((m, n), 9.0);
            if !product_tn(a.view(), b, &mut got.view_mut(), false) {
                assert!(!crate::cpu::has_avx2_fma(), "({k}, {m}, {n}) refused");
                continue;
            }
            let want = a.t().mapv(f64::from).dot(&b.mapv(f64::from));
            let err = (&want - &got.mapv(f64::from))
                .iter()
                .fold(0.0f64, |e, v| e.max(v.abs()));
            assert!(err < 1e-3, "({k}, {m}, {n}): error {err}");
            // Accumulating adds the product to what `c` holds.
            assert!(product_tn(a.view(), b, &mut got.view_mut(), true));
            let err = (&want * 2.0 - &got.mapv(f64::from))
                .iter()
                .fold(0.0f64, |e, v| e.max(v.abs()));
            assert!(err < 2e-3, "({k}, {m}, {n}) accumulated: error {err}");
        }
        // Operands it cannot read in place are refused, untouched.
        let (a, b) = (filled(4, 3, 0.3), filled(4, 16, 0.2));
        let mut c = Array2::<f64>::zeros((3, 16));
        assert!(
            !product_tn(a.view(), b.view(), &mut c.view_mut(), false),
            "f64"
        );
        let (a, b) = (a.mapv(|v| v as f32), filled(4, 20, 0.2).mapv(|v| v as f32));
        let mut c = Array2::<f32>::zeros((3, 20));
        assert!(
            !product_tn(a.view(), b.view(), &mut c.view_mut(), false),
            "n = 20"
        );
        let column_major = filled(16, 4, 0.2).mapv(|v| v as f32);
        let mut c16 = Array2::<f32>::zeros((3, 16));
        assert!(!product_tn(
            a.view(),
            column_major.t(),
            &mut c16.view_mut(),
            false
        ));
        assert!(c.iter().chain(&c16).all(|&v| v == 0.0));
    }

    #[test]
    fn f32_rows_do_not_depend_on_their_tile_and_views_may_be_strided() {
        let a = filled(13, 40, 0.3).mapv(|v| v as f32);
        let wide = filled(40, 2 * 37, 0.2).mapv(|v| v as f32);
        let b = wide.slice(s![.., 37..]); // a column block of a wider matrix
        let packed = PackedMatrix::new(b, Precision::Full, 13).unwrap();
        let mut whole = Array2::<f32>::zeros((13, 37));
        packed_product(a.view(), &packed, false, &mut whole.view_mut());
        for r in 0..13 {
            let mut one = Array2::<f32>::zeros((1, 37));
            packed_product(
                a.slice(s![r..r + 1, ..]),
                &packed,
                false,
                &mut one.view_mut(),
            );
            assert_eq!(one.row(0), whole.row(r), "row {r}");
        }
        let want = a.mapv(f64::from).dot(&b.mapv(f64::from));
        let err = (&want - &whole.mapv(f64::from))
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        assert!(err < 1e-4, "error {err}");
        // `c` may be a column block of a wider array.
        let mut out = Array2::<f32>::zeros((13, 80));
        packed_product(a.view(), &packed, false, &mut out.slice_mut(s![.., 20..57]));
        assert_eq!(out.slice(s![.., 20..57]), whole);
        assert!(out
            .slice(s![.., ..20])
            .iter()
            .chain(out.slice(s![.., 57..]).iter())
            .all(|&v| v == 0.0));
    }
}
