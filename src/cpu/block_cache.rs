//! A global allocator that keeps recently freed large blocks for reuse.
//!
//! Every call of the sequence loop allocates megabytes of buffers and frees them on return (or
//! when Python drops the arrays it was handed). The system allocator maps such blocks fresh from
//! the OS each time, and the page faults of first touch then cost more than the arithmetic: 40%
//! of an LSTM forward pass at the guide's MNIST shape. Keeping the freed blocks and handing them
//! back for the next call of the same size removes those faults.
//!
//! Blocks of at least [`MIN_BLOCK`] bytes are rounded up to a multiple of [`GRANULE`], so the
//! repeated sizes of a training loop meet again; a freed block is kept while the cache holds at
//! most [`MAX_BLOCKS`] blocks and [`BlockCache::budget`] bytes, the oldest being released first.
//! Smaller blocks, and alignments above a cache line, go straight to the system allocator.
//!
//! The extension module and the benchmarks install it with `#[global_allocator]`; it only ever
//! sees the allocations of the binary that installs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Blocks smaller than this are not cached (glibc serves them from its heap).
pub const MIN_BLOCK: usize = 128 << 10;
/// Cached sizes are rounded up to a multiple of this.
pub const GRANULE: usize = 64 << 10;
/// The most blocks kept at once.
pub const MAX_BLOCKS: usize = 64;
/// The alignment of every cached block (a cache line); requests for more bypass the cache.
const BLOCK_ALIGN: usize = 64;

/// A caching wrapper around [`System`] for large blocks; see the module documentation.
pub struct BlockCache {
    budget: usize,
    held: AtomicUsize,
    blocks: Mutex<Blocks>,
}

/// The kept blocks, oldest first: `(rounded size, pointer)`.
struct Blocks {
    len: usize,
    entries: [(usize, *mut u8); MAX_BLOCKS],
}

// SAFETY: the pointers are blocks owned by the cache alone (freed by their previous owner and
// not yet handed out again); moving them between threads is what an allocator does.
unsafe impl Send for Blocks {}

impl BlockCache {
    /// A cache keeping at most `budget` bytes of freed blocks.
    pub const fn new(budget: usize) -> Self {
        Self {
            budget,
            held: AtomicUsize::new(0),
            blocks: Mutex::new(Blocks {
                len: 0,
                entries: [(0, std::ptr::null_mut()); MAX_BLOCKS],
            }),
        }
    }

    /// The most bytes of freed blocks kept.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes currently kept for reuse.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Returns every kept block to the system allocator.
    pub fn release(&self) {
        let mut released = [(0usize, std::ptr::null_mut::<u8>()); MAX_BLOCKS];
        let n = {
            let mut blocks = self.lock();
            let n = blocks.len;
            released[..n].copy_from_slice(&blocks.entries[..n]);
            blocks.len = 0;
            self.held.store(0, Ordering::Relaxed);
            n
        };
        free_blocks(&released[..n]);
    }

    /// The layout a cached request is served with, or `None` when it bypasses the cache.
    fn block_layout(layout: Layout) -> Option<Layout> {
        if layout.size() < MIN_BLOCK || layout.align() > BLOCK_ALIGN {
            return None;
        }
        let size = layout.size().checked_next_multiple_of(GRANULE)?;
        Layout::from_size_align(size, BLOCK_ALIGN).ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blocks> {
        // A panic never happens while the lock is held (no allocation or formatting inside),
        // but a poisoned lock would still hold consistent entries.
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes and returns a kept block of exactly `size` bytes, if any.
    fn take(&self, size: usize) -> Option<*mut u8> {
        let mut blocks = self.lock();
        let len = blocks.len;
        let i = blocks.entries[..len]
            .iter()
            .rposition(|&(s, _)| s == size)?;
        let (_, ptr) = blocks.entries[i];
        blocks.entries.copy_within(i + 1..len, i);
        blocks.len -= 1;
        self.held.fetch_sub(size, Ordering::Relaxed);
        Some(ptr)
    }

    /// Keeps `ptr` (of `block`'s layout), releasing the oldest blocks to make room.
    fn keep(&self, ptr: *mut u8, block: Layout) {
        if block.size() > self.budget {
            // SAFETY: `ptr` was allocated by `System` with `block`.
            return unsafe { System.dealloc(ptr, block) };
        }
        let mut released = [(0usize, std::ptr::null_mut::<u8>()); MAX_BLOCKS];
        let mut n_released = 0;
        {
            let mut blocks = self.lock();
            let mut held = self.held.load(Ordering::Relaxed);
            let mut drop_front = 0;
            while blocks.len - drop_front == MAX_BLOCKS || held + block.size() > self.budget {
                released[n_released] = blocks.entries[drop_front];
                held -= blocks.entries[drop_front].0;
                n_released += 1;
                drop_front += 1;
            }
            let len = blocks.len;
            blocks.entries.copy_within(drop_front..len, 0);
            blocks.len -= drop_front;
            let len = blocks.len;
            blocks.entries[len] = (block.size(), ptr);
            blocks.len += 1;
            self.held.store(held + block.size(), Ordering::Relaxed);
        }
        free_blocks(&released[..n_released]);
    }
}

// SAFETY: every block handed out is either fresh from `System` or a kept block of the same size
// and alignment that its previous owner has freed; blocks are returned to `System` with the
// layout they were allocated with.
unsafe impl GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::block_layout(layout) {
            None => System.alloc(layout),
            Some(block) => self
                .take(block.size())
                .unwrap_or_else(|| System.alloc(block)),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::block_layout(layout) {
            None => System.alloc_zeroed(layout),
            Some(block) => match self.take(block.size()) {
                Some(ptr) => {
                    std::ptr::write_bytes(ptr, 0, layout.size());
                    ptr
                }
                None => System.alloc_zeroed(block),
            },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::block_layout(layout) {
            None => System.dealloc(ptr, layout),
            Some(block) => self.keep(ptr, block),
        }
    }
}

/// Returns blocks the cache no longer keeps to the system allocator (outside the lock).
fn free_blocks(blocks: &[(usize, *mut u8)]) {
    for &(size, ptr) in blocks {
        let layout = Layout::from_size_align(size, BLOCK_ALIGN).expect("kept layouts are valid");
        // SAFETY: kept blocks were allocated by `System` with this size and alignment, and the
        // cache has just given them up.
        unsafe { System.dealloc(ptr, layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bytes: usize) -> Layout {
        Layout::from_size_align(bytes, 8).unwrap()
    }

    #[test]
    fn freed_blocks_come_back_zeroed_when_asked_and_within_the_budget() {
        // Requests of MIN_BLOCK + 1 ..= MIN_BLOCK + GRANULE bytes share one rounded size.
        let size = MIN_BLOCK + GRANULE;
        let cache = BlockCache::new(3 * size);
        unsafe {
            let a = cache.alloc(layout(size - 100));
            a.write_bytes(7, size - 100);
            cache.dealloc(a, layout(size - 100));
            assert_eq!(cache.held(), size);
            let b = cache.alloc_zeroed(layout(size - 10));
            assert_eq!(b, a);
            assert!(std::slice::from_raw_parts(b, size - 10)
                .iter()
                .all(|&v| v == 0));
            assert_eq!(cache.held(), 0);
            // Over the budget, the oldest kept block is released first.
            let c = cache.alloc(layout(2 * size));
            cache.dealloc(b, layout(size - 10));
            cache.dealloc(c, layout(2 * size));
            assert_eq!(cache.held(), 3 * size);
            let d = cache.alloc(layout(2 * size));
            assert_eq!((d, cache.held()), (c, size));
            let e = cache.alloc(layout(2 * size));
            cache.dealloc(e, layout(2 * size));
            cache.dealloc(d, layout(2 * size));
            assert_eq!(cache.held(), 2 * size); // `b` and `e` (oldest first) made room for `d`
                                                // Small blocks are not kept.
            let small = cache.alloc(layout(1024));
            cache.dealloc(small, layout(1024));
            assert_eq!(cache.held(), 2 * size);
            cache.release();
            assert_eq!(cache.held(), 0);
        }
    }
}
