//! The time loop of a batch too small to split between threads by rows (one stream, say): the
//! units are split instead. Each block of units owns its columns of every gate of `U`, packed on
//! their own, and the blocks of a step run at once; a step starts once every block of the one
//! before is done, as each reads the whole previous `h`.
//!
//! The work goes by tickets, `step · blocks + block`, taken in order from one counter. Whoever
//! takes a ticket waits until every ticket of the earlier steps is done, then computes it. The
//! lowest ticket not yet done never waits, so the loop ends whatever number of threads join in,
//! one included: a thread the pool starts late finds the tickets taken. Every element is
//! computed as in the loop over batch slices (same products in the same order, same step math),
//! so the results are the same bits.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::{s, Array2, Array3, ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::{gate, Pointwise, RowStep, StepContext};
use crate::core::cell::CellKind;
use crate::core::Float;
use crate::cpu::alloc::zeros;
use crate::cpu::packed::{packed_product, PackedMatrix, NR};
use crate::error::Result;

/// The fewest units a block gets: below that the wait between steps costs more than the
/// block's share of the product saves.
const MIN_BLOCK_UNITS: usize = 64;

/// Spins a waiting thread does before it yields its core.
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// The blocks of units for `threads` threads, whole panels of the packed kernel each, or None
/// when there are too few units for two blocks.
pub(super) fn unit_blocks(units: usize, threads: usize) -> Option<Vec<Range<usize>>> {
    let parts = threads.min(units / MIN_BLOCK_UNITS);
    if parts < 2 {
        return None;
    }
    let panels = units.div_ceil(NR);
    let edge = |i: usize| (i * panels / parts * NR).min(units);
    Some((0..parts).map(|i| edge(i)..edge(i + 1)).collect())
}

/// A forward pass's buffers and tickets, shared by the threads of a unit-split time loop.
pub(super) struct UnitSplit<'a, T> {
    blocks: Vec<Range<usize>>,
    /// Per block, its columns of each gate's `U_g`, packed.
    packed: Vec<Vec<PackedMatrix<T>>>,
    steps: usize,
    batch: usize,
    /// `(steps, batch, gates · units)` pre-activations.
    pre: *mut T,
    /// `(steps + 1, batch, units)` hidden states, and cell states (LSTM; else null).
    hs: *mut T,
    cs: *mut T,
    /// `(steps, batch, units)` GRU recurrent h-gate terms (GRU `reset_after`; else null).
    rec_h: *mut T,
    next: AtomicUsize,
    done: AtomicUsize,
    stop: AtomicBool,
    buffers: PhantomData<&'a mut T>,
}

// SAFETY: the threads write disjoint blocks of the buffers and read the previous step's `h`
// only after every block of it is done (an acquire of `done` against each writer's release).
unsafe impl<T: Send> Sync for UnitSplit<'_, T> {}

impl<'a, T: Float> UnitSplit<'a, T> {
    /// Packs the blocks' columns of `recurrent_kernel` and takes the forward pass's buffers.
    pub(super) fn new(
        blocks: Vec<Range<usize>>,
        recurrent_kernel: ArrayView2<T>,
        pre: &'a mut Array3<T>,
        hs: &'a mut Array3<T>,
        cs: Option<&'a mut Array3<T>>,
        rec_h: Option<&'a mut Array3<T>>,
    ) -> Result<Self> {
        let (steps, batch, _) = pre.dim();
        let units = hs.dim().2;
        let gates = recurrent_kernel.ncols() / units;
        let packed = blocks
            .iter()
            .map(|block| {
                (0..gates)
                    .map(|g| {
                        let columns = gate(recurrent_kernel, g, units);
                        PackedMatrix::new(columns.slice_move(s![.., block.clone()]))
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let pointer =
            |a: Option<&'a mut Array3<T>>| a.map_or(std::ptr::null_mut(), |a| a.as_mut_ptr());
        Ok(Self {
            blocks,
            packed,
            steps,
            batch,
            pre: pre.as_mut_ptr(),
            hs: hs.as_mut_ptr(),
            cs: pointer(cs),
            rec_h: pointer(rec_h),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            buffers: PhantomData,
        })
    }

    /// Runs `work` (one thread's part of the loop) on this thread and on one pool thread per
    /// further block. This thread starts at once, without a hand-off to the pool and back; the
    /// pool's threads join in as they wake.
    pub(super) fn run(&self, work: impl Fn() -> Result<()> + Sync) -> Result<()> {
        let failure = std::sync::Mutex::new(None);
        let mut result = Ok(());
        rayon::in_place_scope(|scope| {
            for _ in 1..self.blocks.len() {
                scope.spawn(|_| {
                    if let Err(err) = work() {
                        *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                    }
                });
            }
            result = work();
        });
        match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(err) => Err(err),
            None => result,
        }
    }

    /// Waits until `count` tickets are done; false when the loop was stopped meanwhile.
    fn wait_for(&self, count: usize) -> bool {
        let mut spins = 0u32;
        while self.done.load(Ordering::Acquire) < count {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            spins += 1;
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
    }
}

/// Raises the stop flag if the thread unwinds, so the others do not wait for its ticket.
struct StopOnPanic<'s>(&'s AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

impl<T: Float> StepContext<'_, T> {
    /// One thread's part of a unit-split time loop: tickets until none are left.
    #[inline(always)]
    pub(super) fn run_unit_split<P: Pointwise<T>>(
        &self,
        split: &UnitSplit<T>,
        p: &P,
    ) -> Result<()> {
        let _guard = StopOnPanic(&split.stop);
        let blocks = split.blocks.len();
        // GRU keeps each row's recurrent terms apart (this thread's blocks' columns of them).
        let mut rec = match self.spec.kind {
            CellKind::Gru { .. } => zeros((split.batch, self.spec.width()), "GRU recurrent terms")?,
            _ => Array2::zeros((0, 0)),
        };
        loop {
            let ticket = split.next.fetch_add(1, Ordering::Relaxed);
            if ticket >= split.steps * blocks {
                return Ok(());
            }
            let (step, block) = (ticket / blocks, ticket % blocks);
            if !split.wait_for(step * blocks) {
                return Ok(());
            }
            if let Err(err) = self.cancel.check() {
                split.stop.store(true, Ordering::Relaxed);
                return Err(err);
            }
            // SAFETY: this thread holds the ticket of `block` at `step`, and every block of the
            // steps before is done.
            unsafe { self.unit_step(split, step, block, &mut rec, p) };
            split.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Block `block` of step `step`: its columns of the recurrent products, then its units'
    /// step math in every row.
    ///
    /// # Safety
    /// The caller holds the ticket of (`step`, `block`) and every ticket of earlier steps is
    /// done.
    #[inline(always)]
    unsafe fn unit_step<P: Pointwise<T>>(
        &self,
        split: &UnitSplit<T>,
        step: usize,
        block: usize,
        rec: &mut Array2<T>,
        p: &P,
    ) {
        let (b, u, width) = (split.batch, self.spec.units, self.spec.width());
        let units = split.blocks[block].clone();
        let (a, n) = (units.start, units.len());
        let gru = matches!(self.spec.kind, CellKind::Gru { .. });
        let h_prev = ArrayView2::from_shape_ptr((b, u), split.hs.add(step * b * u));
        let pre = split.pre.add(step * b * width);
        // LSTM and SimpleRNN add the products into the pre-activations, GRU keeps them apart.
        for (g, packed) in split.packed[block].iter().enumerate() {
            let out = match gru {
                true => rec.as_mut_ptr().add(g * u + a),
                false => pre.add(g * u + a),
            };
            let mut out = ArrayViewMut2::from_shape_ptr((b, n).strides((width, 1)), out);
            packed_product(h_prev, packed, !gru, &mut out);
        }
        if let Some(bias) = self.recurrent_bias {
            for g in 0..self.spec.gates() {
                let columns = g * u + a..g * u + a + n;
                let mut terms = rec.slice_mut(s![.., columns.clone()]);
                terms += &bias.slice(s![columns]);
            }
        }
        let state = |base: *mut T, s: usize, r: usize| base.add((s * b + r) * u);
        for r in 0..b {
            let cell = |s: usize| (!split.cs.is_null()).then(|| state(split.cs, s, r).add(a));
            let row = RowStep {
                pre: pre.add(r * width),
                rec: if gru {
                    rec.as_ptr().add(r * width)
                } else {
                    std::ptr::null()
                },
                units: units.clone(),
                h_prev: std::slice::from_raw_parts(state(split.hs, step, r), u),
                h: std::slice::from_raw_parts_mut(state(split.hs, step + 1, r).add(a), n),
                c_prev: cell(step).map(|c| std::slice::from_raw_parts(c, n)),
                c: cell(step + 1).map(|c| std::slice::from_raw_parts_mut(c, n)),
                rec_h: (!split.rec_h.is_null())
                    .then(|| std::slice::from_raw_parts_mut(state(split.rec_h, step, r).add(a), n)),
            };
            self.cell_forward(p, row);
        }
    }
}
